//! A pretrained ImageNet convnet as one layer of a [`Sequential`](crate::nn::Sequential):
//! which network, whether it keeps its ImageNet classifier, and which of its layers train.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::efficientnet_lite0::{self, EfficientNetLite0};
use super::mobilenet_v2::{self, MobileNetV2};
use super::vgg16::{self, Vgg16};
use crate::error::{Error, Result};
use crate::nn::layer::{expect_rank, Layer};

/// The pretrained networks convkit knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneArch {
    /// VGG16's convolutional base (14,714,688 parameters; no classifier in the weights).
    Vgg16,
    /// MobileNetV2 with its ImageNet classifier (3,504,872 parameters).
    MobilenetV2,
    /// EfficientNet-Lite0 with its ImageNet classifier (4,652,008 parameters).
    EfficientnetLite0,
}

/// Names accepted by [`BackboneArch::from_name`].
pub const BACKBONE_NAMES: &[&str] = &["vgg16", "mobilenet_v2", "efficientnet_lite0"];

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

impl BackboneArch {
    /// Parses `vgg16`, `mobilenet_v2` or `efficientnet_lite0` (dashes work too).
    pub fn from_name(name: &str) -> Result<BackboneArch> {
        match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "vgg16" => Ok(BackboneArch::Vgg16),
            "mobilenet_v2" | "mobilenetv2" => Ok(BackboneArch::MobilenetV2),
            "efficientnet_lite0" => Ok(BackboneArch::EfficientnetLite0),
            other => Err(Error::InvalidConfig(format!(
                "unknown backbone `{other}`; known backbones: {}",
                BACKBONE_NAMES.join(", ")
            ))),
        }
    }

    /// The name used on the command line, in files and as the layer's name.
    pub fn name(&self) -> &'static str {
        match self {
            BackboneArch::Vgg16 => "vgg16",
            BackboneArch::MobilenetV2 => "mobilenet_v2",
            BackboneArch::EfficientnetLite0 => "efficientnet_lite0",
        }
    }

    /// The preprocessing its weights were trained with.
    pub fn preprocessing(&self) -> Preprocessing {
        match self {
            BackboneArch::Vgg16 | BackboneArch::MobilenetV2 => Preprocessing::ImagenetMeanStd,
            BackboneArch::EfficientnetLite0 => Preprocessing::Symmetric127,
        }
    }

    /// Whether its weights include the ImageNet classifier.
    pub fn has_classifier(&self) -> bool {
        !matches!(self, BackboneArch::Vgg16)
    }

    /// The weights file, relative to a models folder such as `$CONVKIT_MODELS`.
    pub fn weights_file(&self) -> &'static str {
        match self {
            BackboneArch::Vgg16 => "vgg16_convbase_torchvision/vgg16_convbase.safetensors",
            BackboneArch::MobilenetV2 => "mobilenet_v2_torchvision/mobilenet_v2.safetensors",
            BackboneArch::EfficientnetLite0 => "efficientnet_lite0/efficientnet_lite0.safetensors",
        }
    }

    /// Shape of the feature map for an input `(3, h, w)`.
    pub fn feature_shape(&self, input: &[i64]) -> Vec<i64> {
        match self {
            BackboneArch::Vgg16 => vgg16::feature_shape(input),
            BackboneArch::MobilenetV2 => mobilenet_v2::feature_shape(input),
            BackboneArch::EfficientnetLite0 => efficientnet_lite0::feature_shape(input),
        }
    }

    /// Its layers with parameters, input to output: what `freeze` and `unfreeze` name.
    pub fn layer_names(&self, include_top: bool) -> Vec<String> {
        match self {
            BackboneArch::Vgg16 => vgg16::layer_names(),
            BackboneArch::MobilenetV2 => mobilenet_v2::layer_names(include_top),
            BackboneArch::EfficientnetLite0 => efficientnet_lite0::layer_names(include_top),
        }
    }

    /// The layer (one of [`BackboneArch::layer_names`]) that the parameter `key` belongs
    /// to.
    pub fn layer_of(&self, key: &str) -> String {
        match self {
            BackboneArch::Vgg16 => key.split('.').next().unwrap_or(key).to_owned(),
            BackboneArch::MobilenetV2 => mobilenet_v2::layer_of(key),
            BackboneArch::EfficientnetLite0 => efficientnet_lite0::layer_of(key),
        }
    }

    /// Where the checkpoint tensor `key` goes.
    pub fn map_key(&self, key: &str, include_top: bool) -> KeyMap {
        let mapped = match self {
            BackboneArch::Vgg16 => vgg16::map_key(key),
            BackboneArch::MobilenetV2 => mobilenet_v2::map_key(key),
            BackboneArch::EfficientnetLite0 => efficientnet_lite0::map_key(key),
        };
        let is_head = |name: &str| {
            !include_top
                && self.has_classifier()
                && self.layer_names(true).last().map(String::as_str) == Some(&self.layer_of(name))
        };
        match mapped {
            KeyMap::To(name) if is_head(&name) => {
                KeyMap::Skip("ImageNet classifier, not built without the top")
            }
            other => other,
        }
    }
}

/// A pretrained network as a layer: it applies its own preprocessing to images in
/// `0..=255`, then computes its feature map, or ImageNet logits with `include_top`.
///
/// Only the layers listed in `trainable_layers` get gradients; the rest are frozen. Batch
/// norm always runs in inference mode (see [`crate::nn::batch_norm::BatchNorm2d`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackboneSpec {
    /// Which network.
    pub architecture: BackboneArch,
    /// Keep the ImageNet classifier (1000 logits) rather than ending at the feature map.
    #[serde(default)]
    pub include_top: bool,
    /// Names of the layers that train (see [`BackboneArch::layer_names`]); empty: frozen.
    #[serde(default)]
    pub trainable_layers: Vec<String>,
}

impl BackboneSpec {
    /// The frozen convolutional base of `architecture`, ending at its feature map.
    pub fn frozen_base(architecture: BackboneArch) -> Self {
        BackboneSpec {
            architecture,
            include_top: false,
            trainable_layers: Vec::new(),
        }
    }

    /// The frozen network with its ImageNet classifier.
    pub fn classifier(architecture: BackboneArch) -> Result<Self> {
        if !architecture.has_classifier() {
            return Err(Error::InvalidConfig(format!(
                "the {} weights have no ImageNet classifier; use mobilenet_v2 or efficientnet_lite0",
                architecture.name()
            )));
        }
        Ok(BackboneSpec {
            include_top: true,
            ..BackboneSpec::frozen_base(architecture)
        })
    }

    /// The layers this backbone has, input to output.
    pub fn layer_names(&self) -> Vec<String> {
        self.architecture.layer_names(self.include_top)
    }

    /// Makes trainable every layer matched by one of `patterns`: a layer's name, or its
    /// prefix followed by `_` or `.` (`block5` matches `block5_conv1` to `block5_conv3`).
    /// Fails on a pattern that matches nothing, listing the names.
    pub fn unfreeze(&mut self, patterns: &[String]) -> Result<()> {
        let names = self.layer_names();
        for pattern in patterns {
            let matched: Vec<&String> = names
                .iter()
                .filter(|n| {
                    n.as_str() == pattern
                        || n.strip_prefix(pattern.as_str())
                            .is_some_and(|rest| rest.starts_with(['_', '.']))
                })
                .collect();
            if matched.is_empty() {
                return Err(Error::InvalidConfig(format!(
                    "no layer of {} is named `{pattern}`; its layers: {}",
                    self.architecture.name(),
                    names.join(", ")
                )));
            }
            for name in matched {
                if !self.trainable_layers.contains(name) {
                    self.trainable_layers.push(name.clone());
                }
            }
        }
        self.trainable_layers
            .sort_by_key(|n| names.iter().position(|m| m == n));
        Ok(())
    }

    /// Makes the last `count` layers trainable (VGG16: 3 is `block5`).
    pub fn unfreeze_last(&mut self, count: usize) -> Result<()> {
        let names = self.layer_names();
        if count > names.len() {
            return Err(Error::InvalidConfig(format!(
                "{} has {} layers with parameters, cannot unfreeze {count}",
                self.architecture.name(),
                names.len()
            )));
        }
        let last: Vec<String> = names[names.len() - count..].to_vec();
        self.unfreeze(&last)
    }

    /// Freezes every layer.
    pub fn freeze_all(&mut self) {
        self.trainable_layers.clear();
    }

    /// Whether the parameter `key` (relative to the backbone) trains.
    pub fn is_trainable(&self, key: &str) -> bool {
        !key.ends_with("running_mean")
            && !key.ends_with("running_var")
            && self
                .trainable_layers
                .contains(&self.architecture.layer_of(key))
    }

    /// Output shape per sample for an input `(3, h, w)`.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank(self.architecture.name(), input, 3)?;
        if input[0] != 3 || input[1] < 32 || input[2] < 32 {
            return Err(Error::InvalidConfig(format!(
                "{} takes RGB images of at least 32x32, got shape {input:?}",
                self.architecture.name()
            )));
        }
        Ok(if self.include_top {
            vec![1000]
        } else {
            self.architecture.feature_shape(input)
        })
    }

    /// Values in its parameters as (trainable, not trained), the second counting frozen
    /// layers and batch-norm statistics. Builds the network on the CPU to count.
    pub fn param_counts(&self) -> (i64, i64) {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = self.build_net(&vs.root()).ok();
        vs.variables()
            .iter()
            .fold((0, 0), |(trained, fixed), (key, t)| {
                let n = t.numel() as i64;
                if self.is_trainable(key) {
                    (trained + n, fixed)
                } else {
                    (trained, fixed + n)
                }
            })
    }

    /// Values in the parameters of each of its layers (batch-norm statistics included), in
    /// order, for summaries.
    pub fn layer_param_counts(&self) -> Vec<(String, i64)> {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = self.build_net(&vs.root()).ok();
        let mut counts: Vec<(String, i64)> =
            self.layer_names().into_iter().map(|n| (n, 0)).collect();
        for (key, t) in vs.variables() {
            let layer = self.architecture.layer_of(&key);
            if let Some(entry) = counts.iter_mut().find(|(n, _)| *n == layer) {
                entry.1 += t.numel() as i64;
            }
        }
        counts
    }

    fn build_net(&self, vs: &Path) -> Result<Net> {
        Ok(match self.architecture {
            BackboneArch::Vgg16 => Net::Vgg16(Vgg16::new(vs)?),
            BackboneArch::MobilenetV2 => Net::MobilenetV2(MobileNetV2::new(vs, self.include_top)?),
            BackboneArch::EfficientnetLite0 => {
                Net::EfficientnetLite0(EfficientNetLite0::new(vs, self.include_top)?)
            }
        })
    }

    /// Builds the network under `vs`. Freezing is applied by the model, which owns the
    /// variables ([`crate::Model::new`]).
    pub fn build(&self, vs: &Path, input: &[i64]) -> Result<BackboneLayer> {
        self.output_shape(input)?;
        Ok(BackboneLayer {
            net: self.build_net(vs)?,
            preprocessing: self.architecture.preprocessing(),
        })
    }
}

#[derive(Debug)]
enum Net {
    Vgg16(Vgg16),
    MobilenetV2(MobileNetV2),
    EfficientnetLite0(EfficientNetLite0),
}

/// A built [`BackboneSpec`].
#[derive(Debug)]
pub struct BackboneLayer {
    net: Net,
    preprocessing: Preprocessing,
}

impl BackboneLayer {
    /// The VGG16 network, when that is what this is (for block outputs, as LPIPS uses).
    pub fn vgg16(&self) -> Option<&Vgg16> {
        match &self.net {
            Net::Vgg16(net) => Some(net),
            _ => None,
        }
    }
}

impl Layer for BackboneLayer {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = self.preprocessing.apply(xs);
        match &self.net {
            Net::Vgg16(net) => net.forward(&xs),
            Net::MobilenetV2(net) => net.forward(&xs, train),
            Net::EfficientnetLite0(net) => net.forward(&xs, train),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfreeze_by_block_or_count() {
        let mut spec = BackboneSpec::frozen_base(BackboneArch::Vgg16);
        spec.unfreeze(&["block5".into()]).unwrap();
        assert_eq!(
            spec.trainable_layers,
            ["block5_conv1", "block5_conv2", "block5_conv3"]
        );
        let mut by_count = BackboneSpec::frozen_base(BackboneArch::Vgg16);
        by_count.unfreeze_last(3).unwrap();
        assert_eq!(by_count, spec);
        assert!(spec.is_trainable("block5_conv2.weight"));
        assert!(!spec.is_trainable("block4_conv3.weight"));
        let err = spec.unfreeze(&["block6".into()]).unwrap_err().to_string();
        assert!(err.contains("block1_conv1"), "{err}");
    }

    #[test]
    fn prefixes_do_not_match_other_numbers() {
        let mut spec = BackboneSpec::frozen_base(BackboneArch::MobilenetV2);
        spec.unfreeze(&["features.1".into()]).unwrap();
        assert_eq!(spec.trainable_layers, ["features.1"]);
        assert!(!spec.is_trainable("features.1.conv.0.1.running_mean"));
        assert!(spec.is_trainable("features.1.conv.0.1.weight"));
    }

    #[test]
    fn counts_split_trainable_from_frozen() {
        let mut spec = BackboneSpec::frozen_base(BackboneArch::Vgg16);
        assert_eq!(spec.param_counts(), (0, 14_714_688));
        spec.unfreeze(&["block5".into()]).unwrap();
        assert_eq!(spec.param_counts().0, 3 * (512 * 512 * 9 + 512));
    }

    #[test]
    fn classifier_keys_are_skipped_without_the_top() {
        let arch = BackboneArch::MobilenetV2;
        assert!(matches!(
            arch.map_key("classifier.1.weight", false),
            KeyMap::Skip(_)
        ));
        assert_eq!(
            arch.map_key("classifier.1.weight", true),
            KeyMap::To("classifier.1.weight".into())
        );
        assert!(BackboneSpec::classifier(BackboneArch::Vgg16).is_err());
        assert_eq!(
            BackboneArch::from_name("EfficientNet-Lite0").unwrap(),
            BackboneArch::EfficientnetLite0
        );
    }

    #[test]
    fn preprocessing_matches_the_formulas() {
        let xs = Tensor::from_slice(&[255u8, 0, 127]).view([1, 3, 1, 1]);
        let ys: Vec<f32> =
            Vec::try_from(Preprocessing::ImagenetMeanStd.apply(&xs).view([-1])).unwrap();
        assert!((ys[0] - (1.0 - 0.485) / 0.229).abs() < 1e-5);
        assert!((ys[1] - (-0.456 / 0.224)).abs() < 1e-5);
        let ys: Vec<f32> =
            Vec::try_from(Preprocessing::Symmetric127.apply(&xs).view([-1])).unwrap();
        assert_eq!(ys, [1.0, -127.0 / 128.0, 0.0]);
    }
}
