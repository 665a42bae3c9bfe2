//! The registry of layers: the serialisable description of any layer convkit knows, which
//! is what a model file stores.
//!
//! Adding a layer: write its file in `nn` (a description implementing [`LayerDescription`]
//! and a built form implementing [`Layer`]), then add one line to the `register_layers!`
//! list below. The contract test of this module then runs the new layer's examples.

use serde::{Deserialize, Serialize};
use tch::nn::Path;

use super::backbone::BackboneSpec;
use super::residual::ResidualSpec;
use crate::augment::{
    RandomContrastSpec, RandomCropSpec, RandomFlipSpec, RandomRotationSpec, RandomTranslationSpec,
    RandomZoomSpec,
};
use crate::error::Result;
use crate::nn::{
    Activation, ActivationSpec, BatchNormalizationSpec, Conv2dSpec, DenseSpec, DropoutSpec,
    FlattenSpec, GlobalAveragePooling2dSpec, Layer, LayerDescription, MaxPool2dSpec, ParamCounts,
    RescalingSpec, SeparableConv2dSpec,
};

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

    /// The JSON of each augmentation layer, as a model file holds it: tag, settings, and the
    /// defaults of the settings a file leaves out.
    mod augmentation {
        use super::*;
        use crate::augment::{
            Factor, FillMode, FlipMode, Interpolation, RandomContrastSpec, RandomCropSpec,
            RandomFlipSpec, RandomRotationSpec, RandomTranslationSpec, RandomZoomSpec,
        };

        #[test]
        fn random_contrast_round_trips_through_json() {
            let spec = LayerSpec::RandomContrast(RandomContrastSpec {
                value_range: (0.0, 1.0),
                ..RandomContrastSpec::new((0.1, 0.3))
            });
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<LayerSpec>(&json).unwrap(), spec);
            let short: LayerSpec =
                serde_json::from_str(r#"{"type":"random_contrast","factor":0.2}"#).unwrap();
            assert_eq!(
                short,
                LayerSpec::RandomContrast(RandomContrastSpec::new(0.2))
            );
            assert_eq!(short.class_name(), "RandomContrast");
            assert_eq!(short.name_prefix(), "random_contrast");
            assert_eq!(short.output_shape(&[3, 4, 4]).unwrap(), [3, 4, 4]);
        }

        #[test]
        fn random_crop_round_trips_through_json() {
            let spec = LayerSpec::RandomCrop(RandomCropSpec::new(150, 160));
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(json, r#"{"type":"random_crop","height":150,"width":160}"#);
            assert_eq!(serde_json::from_str::<LayerSpec>(&json).unwrap(), spec);
            assert_eq!(spec.class_name(), "RandomCrop");
            assert_eq!(spec.name_prefix(), "random_crop");
            assert_eq!(spec.output_shape(&[3, 180, 180]).unwrap(), [3, 150, 160]);
            assert_eq!(spec.param_counts(&[3, 180, 180]).unwrap().total(), 0);
        }

        #[test]
        fn random_flip_round_trips_through_json() {
            let spec = LayerSpec::RandomFlip(RandomFlipSpec::new(FlipMode::Horizontal));
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(json, r#"{"type":"random_flip","mode":"horizontal"}"#);
            assert_eq!(serde_json::from_str::<LayerSpec>(&json).unwrap(), spec);
            let default: LayerSpec = serde_json::from_str(r#"{"type":"random_flip"}"#).unwrap();
            assert_eq!(
                default,
                LayerSpec::RandomFlip(RandomFlipSpec::new(FlipMode::HorizontalAndVertical))
            );
            assert_eq!(spec.class_name(), "RandomFlip");
            assert_eq!(spec.name_prefix(), "random_flip");
            assert_eq!(spec.output_shape(&[3, 5, 7]).unwrap(), [3, 5, 7]);
            assert_eq!(spec.param_counts(&[3, 5, 7]).unwrap().total(), 0);
            assert!(spec.output_shape(&[5, 7]).is_err());
        }

        #[test]
        fn random_rotation_round_trips_through_json() {
            let spec = LayerSpec::RandomRotation(RandomRotationSpec {
                fill_mode: FillMode::Wrap,
                ..RandomRotationSpec::new((-0.2, 0.3))
            });
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<LayerSpec>(&json).unwrap(), spec);
            let short: LayerSpec =
                serde_json::from_str(r#"{"type":"random_rotation","factor":0.1}"#).unwrap();
            assert_eq!(
                short,
                LayerSpec::RandomRotation(RandomRotationSpec::new(0.1))
            );
            assert_eq!(short.class_name(), "RandomRotation");
            assert_eq!(short.name_prefix(), "random_rotation");
            assert_eq!(short.output_shape(&[3, 5, 7]).unwrap(), [3, 5, 7]);
        }

        #[test]
        fn random_translation_round_trips_through_json() {
            let spec = LayerSpec::RandomTranslation(RandomTranslationSpec {
                fill_mode: FillMode::Nearest,
                interpolation: Interpolation::Nearest,
                ..RandomTranslationSpec::new((-0.1, 0.2), 0.3)
            });
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<LayerSpec>(&json).unwrap(), spec);
            let short: LayerSpec = serde_json::from_str(
                r#"{"type":"random_translation","height_factor":0.1,"width_factor":[-0.2,0.2]}"#,
            )
            .unwrap();
            assert_eq!(
                short,
                LayerSpec::RandomTranslation(RandomTranslationSpec::new(0.1, (-0.2, 0.2)))
            );
            assert_eq!(short.class_name(), "RandomTranslation");
            assert_eq!(short.name_prefix(), "random_translation");
            assert!(serde_json::from_str::<LayerSpec>(
                r#"{"type":"random_translation","height_factor":0.1}"#
            )
            .is_err());
        }

        #[test]
        fn random_zoom_round_trips_through_json() {
            let spec = LayerSpec::RandomZoom(RandomZoomSpec {
                width_factor: Some(Factor::Range(-0.1, 0.3)),
                fill_mode: FillMode::Constant,
                fill_value: 127.5,
                ..RandomZoomSpec::new(0.2)
            });
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<LayerSpec>(&json).unwrap(), spec);
            let short: LayerSpec =
                serde_json::from_str(r#"{"type":"random_zoom","height_factor":0.2}"#).unwrap();
            assert_eq!(short, LayerSpec::RandomZoom(RandomZoomSpec::new(0.2)));
            assert_eq!(short.class_name(), "RandomZoom");
            assert_eq!(short.name_prefix(), "random_zoom");
            assert_eq!(short.output_shape(&[1, 4, 6]).unwrap(), [1, 4, 6]);
        }
    }
}
