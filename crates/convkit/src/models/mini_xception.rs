//! A small Xception-style convnet trained from scratch: residual blocks of depthwise
//! separable convolutions with batch normalization (Chollet, "Deep Learning with Python",
//! 2nd edition, section 9.3).

use super::residual::ResidualSpec;
use super::scratch_options::ScratchOptions;
use super::sequential::Sequential;
use crate::nn::{
    Activation, ActivationSpec, BatchNormalizationSpec, Conv2dSpec, MaxPool2dSpec,
    SeparableConv2dSpec,
};

/// Filters of the five residual blocks.
pub const BLOCK_FILTERS: [i64; 5] = [32, 64, 128, 256, 512];

/// Momentum of the moving statistics: PyTorch's default (0.1 weight on each batch) rather
/// than Keras' 0.99. Trained from scratch with RMSprop, the weights move so fast that a
/// 100-step average of the statistics describes a network that no longer exists: after
/// five epochs at 64x64 the moving statistics gave 54% accuracy on the training images,
/// the batch statistics 85%, and statistics re-estimated with the same weights 88%.
pub const BATCH_NORM_MOMENTUM: f64 = 0.9;

/// \[augmentation\] -> Rescaling(1/255) -> Conv2D(32, 5, no bias) -> five residual blocks ->
/// GlobalAveragePooling2D -> Dropout (0.5 unless set) -> Dense(1, sigmoid) (or
/// Dense(classes, softmax)).
///
/// Each block, with `size` filters from 32 to 512: BatchNormalization (momentum
/// [`BATCH_NORM_MOMENTUM`]), ReLU,
/// SeparableConv2D(size, 3, same, no bias), BatchNormalization, ReLU, SeparableConv2D,
/// MaxPooling2D(3, strides 2, same), added to a 1x1 strided projection of its input.
///
/// # Shapes
/// - input: `(batch, 3, size, size)` bytes
/// - output: `(batch, 1)` for two classes, `(batch, classes)` otherwise
pub fn mini_xception(options: &ScratchOptions) -> Sequential {
    let size = options.image_size;
    let mut spec = Sequential::new("mini_xception", [3, size, size]);
    for layer in &options.augmentation {
        spec = spec.add(layer.clone());
    }
    spec = spec
        .rescaling(1.0 / 255.0)
        .add(Conv2dSpec::new(32, 5, Activation::Linear).without_bias());
    let relu = || ActivationSpec {
        activation: Activation::Relu,
    };
    let batch_norm = || BatchNormalizationSpec {
        momentum: BATCH_NORM_MOMENTUM,
        ..BatchNormalizationSpec::default()
    };
    for filters in BLOCK_FILTERS {
        spec = spec.add(ResidualSpec::new([
            batch_norm().into(),
            relu().into(),
            SeparableConv2dSpec::xception(filters, 3).into(),
            batch_norm().into(),
            relu().into(),
            SeparableConv2dSpec::xception(filters, 3).into(),
            MaxPool2dSpec::same(3, 2).into(),
        ]));
    }
    spec.global_average_pooling2d()
        .dropout(options.dropout.unwrap_or(0.5))
        .classifier(options.classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Summary;

    #[test]
    fn shapes_and_counts_follow_the_recipe() {
        let spec = mini_xception(&ScratchOptions::default());
        spec.validate().unwrap();
        let shapes = spec.output_shapes().unwrap();
        // 180 -> 176 after the 5x5 convolution, then halved (rounding up) five times
        assert_eq!(shapes[1], [32, 176, 176]);
        let sides: Vec<i64> = shapes[2..7].iter().map(|s| s[1]).collect();
        assert_eq!(sides, [88, 44, 22, 11, 6]);
        assert_eq!(shapes[7], [512]);
        assert_eq!(spec.output_shape().unwrap(), [1]);
        // counted by hand from Keras' layer formulas
        let mut trainable = 5 * 5 * 3 * 32;
        let mut statistics = 0;
        let mut cin = 32;
        for s in BLOCK_FILTERS {
            trainable += 2 * cin + (9 * cin + cin * s) + 2 * s + (9 * s + s * s) + cin * s;
            statistics += 2 * cin + 2 * s;
            cin = s;
        }
        trainable += 512 + 1;
        let summary = Summary::of(&spec).unwrap();
        assert_eq!(summary.trainable_params, trainable);
        assert_eq!(summary.non_trainable_params, statistics);
        let text = summary.to_string();
        assert!(
            text.contains("separable_conv2d_1 (SeparableConv2D)"),
            "{text}"
        );
        assert!(text.contains("residual_4 (Residual)"), "{text}");
    }
}
