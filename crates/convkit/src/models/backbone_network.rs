//! What every pretrained network provides: its row of the backbone table
//! ([`BackboneInfo`]), its structure ([`BackboneNetwork`]), its preprocessing, and where its
//! checkpoint's tensors go. `backbone.rs` lists the networks; each network's file fills
//! these in.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use crate::error::Result;
use crate::nn::layer::{Layer, ParamCounts};

/// What a pretrained network is, known without building it: one row of the backbone
/// table. A new backbone is a file with its network and its row, plus one line in
/// `register_backbones!` in `backbone.rs`.
pub struct BackboneInfo {
    /// Other spellings [`BackboneArch::from_name`](super::BackboneArch::from_name) accepts (dashes always work).
    pub aliases: &'static [&'static str],
    /// One line for help texts.
    pub description: &'static str,
    /// The weights file, relative to a models folder such as `$CONVKIT_MODELS`.
    pub weights_file: &'static str,
    /// The preprocessing its weights were trained with.
    pub preprocessing: Preprocessing,
    /// Side of the images it was trained on.
    pub input_size: i64,
    /// Whether its weights include the ImageNet classifier.
    pub has_classifier: bool,
    /// Its layers, names and shapes.
    pub network: &'static dyn BackboneNetwork,
}

/// A pretrained network's structure: what it computes, what its layers hold, how its
/// checkpoints name them, and how to build it.
pub trait BackboneNetwork: Sync {
    /// Shape of the feature map for an input `(3, h, w)`.
    fn feature_shape(&self, input: &[i64]) -> Vec<i64>;

    /// Its freezable layers, input to output, with the values in each (the trainable ones,
    /// and batch-norm statistics apart), counted from its tables without building it.
    fn layer_param_counts(&self, include_top: bool) -> Vec<(String, ParamCounts)>;

    /// The layer that the parameter `key` (relative to the network) belongs to.
    fn layer_of(&self, key: &str) -> String;

    /// Where the checkpoint tensor `key` goes (before the classifier is skipped).
    fn map_key(&self, key: &str) -> KeyMap;

    /// Creates its parameters under `vs`; `include_top` adds the ImageNet classifier.
    fn build(&self, vs: &Path, include_top: bool) -> Result<Box<dyn Layer>>;
}

/// How a network wants its input, from RGB values in `0..=255`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preprocessing {
    /// torchvision's: `(x / 255 - mean) / std` with ImageNet's mean
    /// `(0.485, 0.456, 0.406)` and std `(0.229, 0.224, 0.225)`.
    ImagenetMeanStd,
    /// TensorFlow EfficientNet-Lite's: `(x - 127) / 128`.
    Symmetric127,
}

impl Preprocessing {
    /// Applies the preprocessing to a batch `(B, 3, H, W)` of bytes or floats in `0..=255`.
    pub fn apply(&self, images: &Tensor) -> Tensor {
        // (x - mean) / std as x * (1 / std) + (-mean / std): the byte-to-float conversion
        // happens inside the multiplication, and the addition works in place.
        let (scale, offset) = match self {
            Preprocessing::ImagenetMeanStd => {
                let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
                let scale: Vec<f32> = std.iter().map(|s| 1.0 / (255.0 * s)).collect();
                let offset: Vec<f32> = mean.iter().zip(&std).map(|(m, s)| -m / s).collect();
                (
                    Tensor::from_slice(&scale).view([1, 3, 1, 1]),
                    Tensor::from_slice(&offset).view([1, 3, 1, 1]),
                )
            }
            Preprocessing::Symmetric127 => (
                Tensor::from(1.0f32 / 128.0),
                Tensor::from(-127.0f32 / 128.0),
            ),
        };
        let device = images.device();
        // bytes times an f32 tensor are promoted to f32
        let mut ys = images * scale.to_device(device);
        let _ = ys.g_add_(&offset.to_device(device));
        ys
    }
}

/// Where a checkpoint's tensor goes in the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMap {
    /// To the parameter of this name, as it is.
    To(String),
    /// To the parameter of this name after permuting the axes (HWIO kernels to OIHW).
    Permuted(String, [i64; 4]),
    /// Nowhere, for the reason given (a part of the file the network does not use).
    Skip(&'static str),
    /// Nowhere known: an error.
    Unknown,
}
