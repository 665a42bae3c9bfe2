//! A pretrained ImageNet convnet as one layer of a [`Sequential`](super::Sequential):
//! which network, whether it keeps its ImageNet classifier, and which of its layers train.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

pub use super::backbone_network::{BackboneInfo, BackboneNetwork, KeyMap, Preprocessing};
use super::{efficientnet_lite0, mobilenet_v2, vgg16};
use crate::error::{Error, Result};
use crate::nn::layer::{expect_rank, Layer, LayerDescription, ParamCounts};
use crate::nn::Activation;

/// Declares [`BackboneArch`] from `Variant = "name" => row` lines.
macro_rules! register_backbones {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal => $row:expr, )*) => {
        /// The pretrained networks convkit knows.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum BackboneArch {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl BackboneArch {
            /// Every backbone, in the table's order.
            pub const ALL: &'static [BackboneArch] = &[$(BackboneArch::$variant),*];

            /// The name used on the command line, in files and as the layer's name.
            pub fn name(&self) -> &'static str {
                match self {
                    $( BackboneArch::$variant => $name, )*
                }
            }

            /// Its row of the backbone table.
            pub fn info(&self) -> &'static BackboneInfo {
                match self {
                    $( BackboneArch::$variant => &$row, )*
                }
            }
        }

        /// Names accepted by [`BackboneArch::from_name`].
        pub const BACKBONE_NAMES: &[&str] = &[$($name),*];
    };
}

register_backbones! {
    /// VGG16's convolutional base.
    Vgg16 = "vgg16" => vgg16::BACKBONE,
    /// MobileNetV2 with its ImageNet classifier.
    MobilenetV2 = "mobilenet_v2" => mobilenet_v2::BACKBONE,
    /// EfficientNet-Lite0 with its ImageNet classifier.
    EfficientnetLite0 = "efficientnet_lite0" => efficientnet_lite0::BACKBONE,
}

impl BackboneArch {
    /// Parses a backbone's name (`vgg16`, `mobilenet_v2`, `efficientnet_lite0`; case and
    /// dashes do not matter) or one of its aliases.
    pub fn from_name(name: &str) -> Result<BackboneArch> {
        let wanted = name.to_ascii_lowercase().replace('-', "_");
        BackboneArch::ALL
            .iter()
            .copied()
            .find(|arch| arch.name() == wanted || arch.info().aliases.contains(&wanted.as_str()))
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "unknown backbone `{wanted}`; known backbones: {}",
                    BACKBONE_NAMES.join(", ")
                ))
            })
    }

    /// The preprocessing its weights were trained with.
    pub fn preprocessing(&self) -> Preprocessing {
        self.info().preprocessing
    }

    /// Whether its weights include the ImageNet classifier.
    pub fn has_classifier(&self) -> bool {
        self.info().has_classifier
    }

    /// The weights file, relative to a models folder such as `$CONVKIT_MODELS`.
    pub fn weights_file(&self) -> &'static str {
        self.info().weights_file
    }

    /// Shape of the feature map for an input `(3, h, w)`.
    pub fn feature_shape(&self, input: &[i64]) -> Vec<i64> {
        self.info().network.feature_shape(input)
    }

    /// Its layers with parameters, input to output: what `freeze` and `unfreeze` name.
    pub fn layer_names(&self, include_top: bool) -> Vec<String> {
        let counts = self.info().network.layer_param_counts(include_top);
        counts.into_iter().map(|(name, _)| name).collect()
    }

    /// The layer (one of [`BackboneArch::layer_names`]) that the parameter `key` belongs
    /// to.
    pub fn layer_of(&self, key: &str) -> String {
        self.info().network.layer_of(key)
    }

    /// Where the checkpoint tensor `key` goes.
    pub fn map_key(&self, key: &str, include_top: bool) -> KeyMap {
        let mapped = self.info().network.map_key(key);
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

    /// Values in its parameters, the non-trainable ones counting frozen layers and
    /// batch-norm statistics; from the backbone table, without building anything.
    pub fn param_counts(&self) -> ParamCounts {
        self.architecture
            .info()
            .network
            .layer_param_counts(self.include_top)
            .into_iter()
            .map(|(name, counts)| {
                if self.trainable_layers.contains(&name) {
                    counts
                } else {
                    ParamCounts {
                        trainable: 0,
                        non_trainable: counts.total(),
                    }
                }
            })
            .sum()
    }

    /// Values in the parameters of each of its layers (batch-norm statistics included), in
    /// order, for summaries.
    pub fn layer_param_counts(&self) -> Vec<(String, i64)> {
        let counts = self
            .architecture
            .info()
            .network
            .layer_param_counts(self.include_top);
        counts
            .into_iter()
            .map(|(name, c)| (name, c.total()))
            .collect()
    }

    /// Builds the network under `vs`. Freezing is applied by the model, which owns the
    /// variables (`Model::new`).
    pub fn build(&self, vs: &Path, input: &[i64]) -> Result<BackboneLayer> {
        self.output_shape(input)?;
        Ok(BackboneLayer {
            net: self
                .architecture
                .info()
                .network
                .build(vs, self.include_top)?,
            preprocessing: self.architecture.preprocessing(),
        })
    }
}

/// A built [`BackboneSpec`]: its preprocessing, then the network.
#[derive(Debug)]
pub struct BackboneLayer {
    net: Box<dyn Layer>,
    preprocessing: Preprocessing,
}

impl Layer for BackboneLayer {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward(&self.preprocessing.apply(xs), train)
    }
}

impl LayerDescription for BackboneSpec {
    fn class_name(&self) -> &'static str {
        "Functional"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        BackboneSpec::output_shape(self, input)
    }

    fn param_counts(&self, _input: &[i64]) -> Result<ParamCounts> {
        Ok(BackboneSpec::param_counts(self))
    }

    fn build(&self, vs: Path, input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        // a backbone's head ends in logits already: the softmax is left to predict
        Ok(Box::new(BackboneSpec::build(self, &vs, input)?))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn activation(&self) -> Option<Activation> {
        self.include_top.then_some(Activation::Softmax)
    }

    fn name_prefix(&self) -> Option<&'static str> {
        Some(self.architecture.name())
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        let mut tuned = BackboneSpec::frozen_base(BackboneArch::EfficientnetLite0);
        tuned
            .unfreeze_last(2)
            .expect("EfficientNet-Lite0 has two layers to unfreeze");
        vec![
            (
                BackboneSpec::frozen_base(BackboneArch::Vgg16),
                vec![3, 32, 32],
            ),
            (
                BackboneSpec::classifier(BackboneArch::MobilenetV2).expect("has a classifier"),
                vec![3, 40, 32],
            ),
            (tuned, vec![3, 32, 36]),
        ]
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
        assert_eq!(
            spec.param_counts(),
            ParamCounts {
                trainable: 0,
                non_trainable: 14_714_688
            }
        );
        spec.unfreeze(&["block5".into()]).unwrap();
        assert_eq!(spec.param_counts().trainable, 3 * (512 * 512 * 9 + 512));
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
