//! The registry of layers: the serialisable description of any layer convkit knows, which
//! is what a model file stores.
//!
//! Adding a layer: write its file (a description implementing
//! [`LayerDescription`](super::layer::LayerDescription) and a built form implementing
//! [`Layer`]), then add one line to the `register_layers!` list below. The contract test of
//! this module then runs the new layer's examples.

use serde::{Deserialize, Serialize};
use tch::nn::Path;

use super::activation::Activation;
use super::activation_layer::ActivationSpec;
use super::batch_normalization::BatchNormalizationSpec;
use super::conv2d::Conv2dSpec;
use super::dense::DenseSpec;
use super::dropout::DropoutSpec;
use super::flatten::FlattenSpec;
use super::global_average_pooling2d::GlobalAveragePooling2dSpec;
use super::layer::{Layer, LayerDescription, ParamCounts};
use super::max_pool2d::MaxPool2dSpec;
use super::rescaling::RescalingSpec;
use super::residual::ResidualSpec;
use super::separable_conv2d::SeparableConv2dSpec;
use crate::augment::{
    RandomContrastSpec, RandomCropSpec, RandomFlipSpec, RandomRotationSpec, RandomTranslationSpec,
    RandomZoomSpec,
};
use crate::error::Result;
use crate::models::BackboneSpec;

/// Declares [`LayerSpec`] from `Variant(SpecType) = "json_tag"` lines: the enum, its
/// dispatch to [`LayerDescription`], the list of tags, every layer's examples, and a `From`
/// conversion from each description type.
macro_rules! register_layers {
    ($( $(#[$doc:meta])* $variant:ident($spec:ty) = $tag:literal, )*) => {
        /// One layer of a [`Sequential`](super::Sequential) model, tagged by its type name
        /// in JSON (`{"type": "conv2d", "filters": 32, ...}`).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum LayerSpec {
            $( $(#[$doc])* #[serde(rename = $tag)] $variant($spec), )*
        }

        impl LayerSpec {
            /// The JSON `type` of every registered layer.
            pub const TYPES: &'static [&'static str] = &[$($tag),*];

            /// The layer's description, whatever its type.
            pub fn description(&self) -> &dyn LayerDescription {
                match self {
                    $( LayerSpec::$variant(spec) => spec, )*
                }
            }

            /// The JSON `type` of this layer.
            pub fn type_tag(&self) -> &'static str {
                match self {
                    $( LayerSpec::$variant(_) => $tag, )*
                }
            }

            /// The examples of every registered layer, with their input shapes.
            pub fn examples() -> Vec<(LayerSpec, Vec<i64>)> {
                let mut all = Vec::new();
                $(
                    all.extend(
                        <$spec as LayerDescription>::examples()
                            .into_iter()
                            .map(|(spec, input)| (LayerSpec::$variant(spec), input)),
                    );
                )*
                all
            }
        }

        $(
            impl From<$spec> for LayerSpec {
                fn from(spec: $spec) -> LayerSpec {
                    LayerSpec::$variant(spec)
                }
            }
        )*
    };
}

register_layers! {
    /// `x * scale + offset`.
    Rescaling(RescalingSpec) = "rescaling",
    /// 2-D convolution.
    Conv2d(Conv2dSpec) = "conv2d",
    /// Depthwise separable 2-D convolution.
    SeparableConv2d(SeparableConv2dSpec) = "separable_conv2d",
    /// Batch normalization with moving statistics.
    BatchNormalization(BatchNormalizationSpec) = "batch_normalization",
    /// An activation function on its own.
    Activation(ActivationSpec) = "activation",
    /// 2-D max pooling.
    MaxPool2d(MaxPool2dSpec) = "max_pooling2d",
    /// Flattens each sample to one axis.
    Flatten(FlattenSpec) = "flatten",
    /// Mean of each channel over the image.
    GlobalAveragePooling2d(GlobalAveragePooling2dSpec) = "global_average_pooling2d",
    /// Random zeroing during training.
    Dropout(DropoutSpec) = "dropout",
    /// Fully connected layer.
    Dense(DenseSpec) = "dense",
    /// Layers whose output is added to their input.
    Residual(ResidualSpec) = "residual",
    /// Random mirror images during training.
    RandomFlip(RandomFlipSpec) = "random_flip",
    /// Random rotations during training.
    RandomRotation(RandomRotationSpec) = "random_rotation",
    /// Random zooms during training.
    RandomZoom(RandomZoomSpec) = "random_zoom",
    /// Random shifts during training.
    RandomTranslation(RandomTranslationSpec) = "random_translation",
    /// Random contrast changes during training.
    RandomContrast(RandomContrastSpec) = "random_contrast",
    /// Random crops during training, centre crops at inference.
    RandomCrop(RandomCropSpec) = "random_crop",
    /// A pretrained ImageNet network (its own preprocessing included).
    Backbone(BackboneSpec) = "backbone",
}

impl LayerSpec {
    /// The Keras class name, shown by summaries: `Conv2D`, `MaxPooling2D`, ...
    pub fn class_name(&self) -> &'static str {
        self.description().class_name()
    }

    /// Whether this is a random augmentation layer (active only in training).
    pub fn is_augmentation(&self) -> bool {
        self.description().is_augmentation()
    }

    /// The prefix of automatic layer names (`conv2d`, `conv2d_1`, ...), as Keras names them.
    pub fn name_prefix(&self) -> &'static str {
        self.description()
            .name_prefix()
            .unwrap_or_else(|| self.type_tag())
    }

    /// Output shape per sample (no batch axis) for an input of shape `input`.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        self.description().output_shape(input)
    }

    /// Values in the parameters for an input of shape `input`, trainable and not.
    pub fn param_counts(&self, input: &[i64]) -> Result<ParamCounts> {
        self.description().param_counts(input)
    }

    /// The activation at the end of the layer, if it has one.
    pub fn activation(&self) -> Option<Activation> {
        self.description().activation()
    }

    /// Builds the layer, creating its parameters under `vs`. `skip_activation` builds the
    /// layer without its final activation (used for a model's final softmax or sigmoid).
    pub fn build(&self, vs: Path, input: &[i64], skip_activation: bool) -> Result<Box<dyn Layer>> {
        self.description().build(vs, input, skip_activation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind, Tensor};

    #[test]
    fn json_is_tagged_by_type() {
        let spec = LayerSpec::MaxPool2d(MaxPool2dSpec::new(2));
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, r#"{"type":"max_pooling2d","pool_size":2}"#);
        assert_eq!(serde_json::from_str::<LayerSpec>(&json).unwrap(), spec);
        let flatten: LayerSpec = serde_json::from_str(r#"{"type":"flatten"}"#).unwrap();
        assert_eq!(flatten, LayerSpec::Flatten(FlattenSpec {}));
        assert_eq!(
            serde_json::to_string(&flatten).unwrap(),
            r#"{"type":"flatten"}"#
        );
    }

    #[test]
    fn unknown_layer_types_are_rejected() {
        let err = serde_json::from_str::<LayerSpec>(r#"{"type":"lstm"}"#).unwrap_err();
        assert!(err.to_string().contains("lstm"), "{err}");
    }

    /// The contract every registered layer keeps, checked on its own examples: the counts
    /// equal the sizes of the tensors `build` creates (trainable ones apart), `forward`
    /// returns the declared shape in training and at inference, the JSON form reads back
    /// as the same layer, and the name prefix and class name are set.
    #[test]
    fn every_registered_layer_keeps_its_contract() {
        let examples = LayerSpec::examples();
        for tag in LayerSpec::TYPES {
            assert!(
                examples.iter().any(|(spec, _)| spec.type_tag() == *tag),
                "layer `{tag}` has no examples"
            );
        }
        for (i, (spec, input)) in examples.iter().enumerate() {
            let what = format!("example {i} ({}) on {input:?}", spec.type_tag());
            let vs = VarStore::new(Device::Cpu);
            let layer = spec
                .build(vs.root().sub("layer"), input, false)
                .expect(&what);
            let counts = spec.param_counts(input).expect(&what);
            let trainable: i64 = vs
                .trainable_variables()
                .iter()
                .map(|t| t.numel() as i64)
                .sum();
            let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
            if matches!(spec, LayerSpec::Backbone(_)) {
                // the model, not the layer, turns gradients off for a backbone's frozen layers
                assert_eq!(
                    all,
                    counts.total(),
                    "{what}: built tensors against declared counts"
                );
            } else {
                assert_eq!(
                    (trainable, all - trainable),
                    (counts.trainable, counts.non_trainable),
                    "{what}: built tensors against declared counts"
                );
            }
            let expected = spec.output_shape(input).expect(&what);
            let batch: Vec<i64> = std::iter::once(2).chain(input.iter().copied()).collect();
            let xs = Tensor::rand(batch.as_slice(), (Kind::Float, Device::Cpu)) * 255.0;
            for train in [true, false] {
                let ys = tch::no_grad(|| layer.forward(&xs, train));
                assert_eq!(ys.size()[1..], expected[..], "{what}, train {train}");
                assert_eq!(ys.size()[0], 2, "{what}, train {train}");
            }
            let json = serde_json::to_string(spec).expect(&what);
            assert_eq!(
                &serde_json::from_str::<LayerSpec>(&json).unwrap(),
                spec,
                "{what}"
            );
            assert!(!spec.class_name().is_empty() && !spec.name_prefix().is_empty());
        }
    }
}
