//! Models as descriptions: the [`Sequential`] stack of layers (Keras' `keras.models`), the
//! [`LayerSpec`] registry of every layer kind it can hold, its [`Summary`], and the
//! chapter's models as named architectures, pretrained backbones included.

pub mod augmentation;
pub mod backbone;
mod backbone_network;
pub mod efficientnet_lite0;
pub mod imagenet;
pub mod inverted_residual_net;
pub mod layer_spec;
pub mod mini_xception;
pub mod mnist_convnet;
pub mod mobilenet_v2;
pub mod pretrained;
pub mod residual;
pub mod scratch_model;
pub mod scratch_options;
pub mod sequential;
pub mod small_convnet;
pub mod summary;
pub mod transfer;
pub mod vgg16;

pub use augmentation::chapter_augmentation;
pub use backbone::{BackboneArch, BackboneSpec, Preprocessing, BACKBONE_NAMES};
pub use layer_spec::LayerSpec;
pub use mini_xception::mini_xception;
pub use mnist_convnet::mnist_convnet;
pub use residual::ResidualSpec;
pub use scratch_model::ScratchModel;
pub use scratch_options::ScratchOptions;
pub use sequential::{NamedLayer, Sequential};
pub use small_convnet::small_convnet;
pub use summary::Summary;
pub use transfer::{transfer_model, Head, TransferOptions};

use crate::error::{Error, Result};

/// Names accepted by [`by_name`].
pub const MODEL_NAMES: &[&str] = &[
    "mnist",
    "small-convnet",
    "mini-xception",
    "vgg16",
    "mobilenet_v2",
    "efficientnet_lite0",
];

/// A built-in model by name, with its default settings: `mnist` (alias `mnist_convnet`),
/// `small-convnet` or `mini-xception` (underscores work too; 180x180, two classes), or a
/// pretrained network at 224x224 with every layer trainable (`vgg16`: the convolutional base; `mobilenet_v2`,
/// `efficientnet_lite0`: with the ImageNet classifier).
pub fn by_name(name: &str) -> Result<Sequential> {
    match name {
        "mnist" | "mnist_convnet" | "mnist-convnet" => Ok(mnist_convnet()),
        "small-convnet" | "small_convnet" => Ok(small_convnet(&ScratchOptions::default())),
        "mini-xception" | "mini_xception" => Ok(mini_xception(&ScratchOptions::default())),
        other if BackboneArch::from_name(other).is_ok() => {
            let arch = BackboneArch::from_name(other)?;
            let mut spec = BackboneSpec {
                include_top: arch.has_classifier(),
                ..BackboneSpec::frozen_base(arch)
            };
            let count = spec.layer_names().len();
            spec.unfreeze_last(count)?;
            Ok(Sequential::new(arch.name(), [3, 224, 224]).add(LayerSpec::Backbone(spec)))
        }
        other => Err(Error::InvalidConfig(format!(
            "unknown model `{other}`; known models: {}",
            MODEL_NAMES.join(", ")
        ))),
    }
}
