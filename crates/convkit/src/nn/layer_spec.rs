//! The serialisable description of any layer convkit knows: what a model file stores.

use serde::{Deserialize, Serialize};
use tch::nn::Path;

use super::activation::Activation;
use super::conv2d::Conv2dSpec;
use super::dense::DenseSpec;
use super::dropout::DropoutSpec;
use super::flatten::{flatten_output_shape, Flatten};
use super::global_average_pooling2d::{
    global_average_pooling2d_output_shape, GlobalAveragePooling2d,
};
use super::layer::Layer;
use super::max_pool2d::MaxPool2dSpec;
use super::rescaling::RescalingSpec;
use crate::augment::{
    RandomContrastSpec, RandomCropSpec, RandomFlipSpec, RandomRotationSpec, RandomTranslationSpec,
    RandomZoomSpec,
};
use crate::error::Result;
use crate::models::BackboneSpec;

/// One layer of a [`Sequential`](super::Sequential) model, tagged by its Keras-style type
/// name in JSON (`{"type": "conv2d", "filters": 32, ...}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    /// `x * scale + offset`.
    Rescaling(RescalingSpec),
    /// 2-D convolution.
    Conv2d(Conv2dSpec),
    /// 2-D max pooling.
    #[serde(rename = "max_pooling2d")]
    MaxPool2d(MaxPool2dSpec),
    /// Flattens each sample to one axis.
    Flatten,
    /// Random zeroing during training.
    Dropout(DropoutSpec),
    /// Fully connected layer.
    Dense(DenseSpec),
    /// Random mirror images during training.
    RandomFlip(RandomFlipSpec),
    /// Random rotations during training.
    RandomRotation(RandomRotationSpec),
    /// Random zooms during training.
    RandomZoom(RandomZoomSpec),
    /// Random shifts during training.
    RandomTranslation(RandomTranslationSpec),
    /// Random contrast changes during training.
    RandomContrast(RandomContrastSpec),
    /// Random crops during training, centre crops at inference.
    RandomCrop(RandomCropSpec),
    /// Mean of each channel over the image.
    #[serde(rename = "global_average_pooling2d")]
    GlobalAveragePooling2d,
    /// A pretrained ImageNet network (its own preprocessing included).
    Backbone(BackboneSpec),
}

impl LayerSpec {
    /// The Keras class name, shown by summaries: `Conv2D`, `MaxPooling2D`, ...
    pub fn class_name(&self) -> &'static str {
        match self {
            LayerSpec::Rescaling(_) => "Rescaling",
            LayerSpec::Conv2d(_) => "Conv2D",
            LayerSpec::MaxPool2d(_) => "MaxPooling2D",
            LayerSpec::Flatten => "Flatten",
            LayerSpec::Dropout(_) => "Dropout",
            LayerSpec::Dense(_) => "Dense",
            LayerSpec::RandomFlip(_) => "RandomFlip",
            LayerSpec::RandomRotation(_) => "RandomRotation",
            LayerSpec::RandomZoom(_) => "RandomZoom",
            LayerSpec::RandomTranslation(_) => "RandomTranslation",
            LayerSpec::RandomContrast(_) => "RandomContrast",
            LayerSpec::RandomCrop(_) => "RandomCrop",
            LayerSpec::GlobalAveragePooling2d => "GlobalAveragePooling2D",
            LayerSpec::Backbone(_) => "Functional",
        }
    }

    /// Whether this is a random augmentation layer (active only in training).
    pub fn is_augmentation(&self) -> bool {
        matches!(
            self,
            LayerSpec::RandomFlip(_)
                | LayerSpec::RandomRotation(_)
                | LayerSpec::RandomZoom(_)
                | LayerSpec::RandomTranslation(_)
                | LayerSpec::RandomContrast(_)
                | LayerSpec::RandomCrop(_)
        )
    }

    /// The prefix of automatic layer names (`conv2d`, `conv2d_1`, ...), as Keras names them.
    pub fn name_prefix(&self) -> &'static str {
        match self {
            LayerSpec::Rescaling(_) => "rescaling",
            LayerSpec::Conv2d(_) => "conv2d",
            LayerSpec::MaxPool2d(_) => "max_pooling2d",
            LayerSpec::Flatten => "flatten",
            LayerSpec::Dropout(_) => "dropout",
            LayerSpec::Dense(_) => "dense",
            LayerSpec::RandomFlip(_) => "random_flip",
            LayerSpec::RandomRotation(_) => "random_rotation",
            LayerSpec::RandomZoom(_) => "random_zoom",
            LayerSpec::RandomTranslation(_) => "random_translation",
            LayerSpec::RandomContrast(_) => "random_contrast",
            LayerSpec::RandomCrop(_) => "random_crop",
            LayerSpec::GlobalAveragePooling2d => "global_average_pooling2d",
            LayerSpec::Backbone(spec) => spec.architecture.name(),
        }
    }

    /// Output shape per sample (no batch axis) for an input of shape `input`.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        match self {
            LayerSpec::Conv2d(spec) => spec.output_shape(input),
            LayerSpec::MaxPool2d(spec) => spec.output_shape(input),
            LayerSpec::Flatten => Ok(flatten_output_shape(input)),
            LayerSpec::Dense(spec) => spec.output_shape(input),
            LayerSpec::Rescaling(_) | LayerSpec::Dropout(_) => Ok(input.to_vec()),
            LayerSpec::RandomFlip(spec) => spec.output_shape(input),
            LayerSpec::RandomRotation(spec) => spec.output_shape(input),
            LayerSpec::RandomZoom(spec) => spec.output_shape(input),
            LayerSpec::RandomTranslation(spec) => spec.output_shape(input),
            LayerSpec::RandomContrast(spec) => spec.output_shape(input),
            LayerSpec::RandomCrop(spec) => spec.output_shape(input),
            LayerSpec::GlobalAveragePooling2d => global_average_pooling2d_output_shape(input),
            LayerSpec::Backbone(spec) => spec.output_shape(input),
        }
    }

    /// Number of trainable values for an input of shape `input`.
    pub fn param_count(&self, input: &[i64]) -> i64 {
        match self {
            LayerSpec::Conv2d(spec) => spec.param_count(input),
            LayerSpec::Dense(spec) => spec.param_count(input),
            LayerSpec::Backbone(spec) => spec.param_counts().0,
            _ => 0,
        }
    }

    /// Number of values that are not trained: frozen layers and batch-norm statistics.
    pub fn non_trainable_param_count(&self) -> i64 {
        match self {
            LayerSpec::Backbone(spec) => spec.param_counts().1,
            _ => 0,
        }
    }

    /// The activation at the end of the layer, if it has one.
    pub fn activation(&self) -> Option<Activation> {
        match self {
            LayerSpec::Conv2d(spec) => Some(spec.activation),
            LayerSpec::Dense(spec) => Some(spec.activation),
            LayerSpec::Backbone(spec) if spec.include_top => Some(Activation::Softmax),
            _ => None,
        }
    }

    /// Builds the layer, creating its parameters under `vs`. `skip_activation` builds a
    /// dense layer without its activation (used for a model's final softmax or sigmoid).
    pub fn build(&self, vs: Path, input: &[i64], skip_activation: bool) -> Result<Box<dyn Layer>> {
        Ok(match self {
            LayerSpec::Rescaling(spec) => Box::new(spec.build()),
            LayerSpec::Conv2d(spec) => Box::new(spec.build(vs, input)?),
            LayerSpec::MaxPool2d(spec) => Box::new(spec.build()),
            LayerSpec::Flatten => Box::new(Flatten),
            LayerSpec::Dropout(spec) => Box::new(spec.build()?),
            LayerSpec::Dense(spec) => {
                let activation = if skip_activation {
                    Activation::Linear
                } else {
                    spec.activation
                };
                Box::new(spec.build(vs, input, activation)?)
            }
            LayerSpec::RandomFlip(spec) => Box::new(spec.build()),
            LayerSpec::RandomRotation(spec) => Box::new(spec.build()?),
            LayerSpec::RandomZoom(spec) => Box::new(spec.build()?),
            LayerSpec::RandomTranslation(spec) => Box::new(spec.build()?),
            LayerSpec::RandomContrast(spec) => Box::new(spec.build()?),
            LayerSpec::RandomCrop(spec) => {
                spec.output_shape(input)?;
                Box::new(spec.build()?)
            }
            LayerSpec::GlobalAveragePooling2d => {
                global_average_pooling2d_output_shape(input)?;
                Box::new(GlobalAveragePooling2d)
            }
            // a backbone's head ends in logits already: the softmax is left to predict
            LayerSpec::Backbone(spec) => Box::new(spec.build(&vs, input)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_tagged_by_type() {
        let spec = LayerSpec::MaxPool2d(MaxPool2dSpec::new(2));
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, r#"{"type":"max_pooling2d","pool_size":2}"#);
        assert_eq!(serde_json::from_str::<LayerSpec>(&json).unwrap(), spec);
        let flatten: LayerSpec = serde_json::from_str(r#"{"type":"flatten"}"#).unwrap();
        assert_eq!(flatten, LayerSpec::Flatten);
    }

    #[test]
    fn unknown_layer_types_are_rejected() {
        let err = serde_json::from_str::<LayerSpec>(r#"{"type":"lstm"}"#).unwrap_err();
        assert!(err.to_string().contains("lstm"), "{err}");
    }
}
