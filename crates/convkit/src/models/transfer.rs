//! The chapter's transfer-learning model: \[augmentation\] -> pretrained base -> a small
//! classifier head (sections 4 and 5).

use serde::{Deserialize, Serialize};

use super::backbone::{BackboneArch, BackboneSpec};
use super::layer_spec::LayerSpec;
use super::sequential::Sequential;
use crate::nn::Activation;

/// The classifier put on a pretrained base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// The chapter's: Flatten -> Dense(256, relu) -> Dropout -> Dense.
    Flatten,
    /// GlobalAveragePooling2D -> Dropout -> Dense: a few thousand parameters, the usual head
    /// of modern backbones (a flattened 6x6x1280 map would need 12 million).
    Pooled,
}

crate::names::named_settings!(Head, "head", ["flatten", "pooled"]);

impl Head {
    /// The chapter's head for VGG16, the pooled head for the others.
    pub fn default_for(backbone: BackboneArch) -> Head {
        match backbone {
            BackboneArch::Vgg16 => Head::Flatten,
            _ => Head::Pooled,
        }
    }
}

/// Options of [`transfer_model`]; [`TransferOptions::new`] gives the chapter's.
#[derive(Clone, Debug, PartialEq)]
pub struct TransferOptions {
    /// The pretrained base (frozen).
    pub backbone: BackboneArch,
    /// Side of the square input images (chapter: 180).
    pub image_size: i64,
    /// Number of classes: 2 gives one sigmoid output, more give a softmax.
    pub classes: usize,
    /// The classifier on top.
    pub head: Head,
    /// Dropout rate in the head (chapter: 0.5).
    pub dropout: f64,
    /// Augmentation layers in front, active only in training.
    pub augmentation: Vec<LayerSpec>,
}

impl TransferOptions {
    /// The chapter's settings on `backbone`: 180x180, two classes, dropout 0.5, the
    /// backbone's default head, no augmentation.
    pub fn new(backbone: BackboneArch) -> Self {
        TransferOptions {
            backbone,
            image_size: 180,
            classes: 2,
            head: Head::default_for(backbone),
            dropout: 0.5,
            augmentation: Vec::new(),
        }
    }
}

/// \[augmentation\] -> frozen `backbone` (with its preprocessing) -> head.
///
/// # Shapes
/// - input: `(batch, 3, size, size)` bytes in `0..=255`
/// - output: `(batch, 1)` for two classes, `(batch, classes)` otherwise
///
/// ```
/// use convkit::models::{transfer_model, BackboneArch, TransferOptions};
///
/// let spec = transfer_model(&TransferOptions::new(BackboneArch::Vgg16));
/// let names: Vec<_> = spec.layers.iter().map(|l| l.name.as_str()).collect();
/// assert_eq!(names, ["vgg16", "flatten", "dense", "dropout", "dense_1"]);
/// assert_eq!(spec.output_shapes().unwrap()[0], [512, 5, 5]);
/// ```
pub fn transfer_model(options: &TransferOptions) -> Sequential {
    let size = options.image_size;
    let mut spec = Sequential::new(
        &format!("{}_transfer", options.backbone.name()),
        [3, size, size],
    );
    for layer in &options.augmentation {
        spec = spec.add(layer.clone());
    }
    spec = spec.add(LayerSpec::Backbone(BackboneSpec::frozen_base(
        options.backbone,
    )));
    spec = match options.head {
        Head::Flatten => spec
            .flatten()
            .dense(256, Activation::Relu)
            .dropout(options.dropout),
        Head::Pooled => spec.global_average_pooling2d().dropout(options.dropout),
    };
    spec.classifier(options.classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chapter_head_on_vgg16_counts_as_keras() {
        let spec = transfer_model(&TransferOptions::new(BackboneArch::Vgg16));
        // Keras: 14,714,688 frozen + 3,277,056 + 257 in the head at 180x180
        assert_eq!(spec.param_count().unwrap(), 5 * 5 * 512 * 256 + 256 + 257);
        let pooled = transfer_model(&TransferOptions::new(BackboneArch::MobilenetV2));
        assert_eq!(pooled.output_shapes().unwrap()[1], [1280]);
        assert_eq!(pooled.param_count().unwrap(), 1281);
    }

    #[test]
    fn every_listed_head_parses_and_prints_back() {
        crate::names::assert_names_round_trip::<Head>(Head::NAMES);
    }
}
