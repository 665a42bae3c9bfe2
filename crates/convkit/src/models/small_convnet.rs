//! The chapter's convnet trained from scratch on cats and dogs (sections 2 and 3).

use super::scratch_options::ScratchOptions;
use super::sequential::Sequential;
use crate::nn::Activation;

/// \[augmentation\] -> Rescaling(1/255) -> Conv2D 32 -> MaxPool -> Conv2D 64 -> MaxPool ->
/// Conv2D 128 -> MaxPool -> Conv2D 256 -> MaxPool -> Conv2D 256 -> Flatten -> \[Dropout\] ->
/// Dense(1, sigmoid) (or Dense(classes, softmax)); 3x3 `valid` convolutions with ReLU.
/// At 180x180 with two classes: 991,041 parameters, as in the chapter.
///
/// # Shapes
/// - input: `(batch, 3, size, size)` bytes
/// - output: `(batch, 1)` for two classes, `(batch, classes)` otherwise
pub fn small_convnet(options: &ScratchOptions) -> Sequential {
    let size = options.image_size;
    let mut spec = Sequential::new("small_convnet", [3, size, size]);
    for layer in &options.augmentation {
        spec = spec.add(layer.clone());
    }
    spec = spec.rescaling(1.0 / 255.0);
    for (i, filters) in [32, 64, 128, 256, 256].into_iter().enumerate() {
        spec = spec.conv2d(filters, 3, Activation::Relu);
        if i < 4 {
            spec = spec.max_pool2d(2);
        }
    }
    spec = spec.flatten();
    if let Some(rate) = options.dropout {
        spec = spec.dropout(rate);
    }
    spec.classifier(options.classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_chapter_parameter_count() {
        let spec = small_convnet(&ScratchOptions::default());
        assert_eq!(spec.param_count().unwrap(), 991_041);
        let shapes = spec.output_shapes().unwrap();
        assert_eq!(shapes[shapes.len() - 3], [256, 7, 7]);
        assert_eq!(spec.output_shape().unwrap(), [1]);
    }

    #[test]
    fn dropout_and_classes_change_the_head() {
        let options = ScratchOptions {
            dropout: Some(0.5),
            classes: 5,
            ..Default::default()
        };
        let spec = small_convnet(&options);
        assert_eq!(
            spec.layers[spec.layers.len() - 2].spec.class_name(),
            "Dropout"
        );
        assert_eq!(spec.output_shape().unwrap(), [5]);
        assert_eq!(
            spec.param_count().unwrap(),
            991_041 - 12_545 + 12_544 * 5 + 5
        );
    }
}
