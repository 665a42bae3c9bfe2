//! Data augmentation: Keras' random image layers, active only while training.
//!
//! Each layer takes a batch `(batch, channels, height, width)` of bytes (`0..=255`) or
//! floats. In training it draws one random transformation per image from libtorch's
//! generator (so `tch::manual_seed`, which the fit loop calls, repeats a run) and returns
//! floats (`f32` for bytes, values still in `0..=255`); at inference it returns its input
//! unchanged (a [`RandomCropSpec`] centre-crops it). The whole batch is transformed by a
//! few tensor operations on its device, without a loop over images.
//!
//! Put them first in a model, before the rescaling, as the chapter does:
//!
//! ```
//! use convkit::augment::chapter_augmentation;
//! use convkit::nn::{Activation, Sequential};
//!
//! let mut model = Sequential::new("augmented", [3, 180, 180]);
//! for layer in chapter_augmentation() {
//!     model = model.add(layer);
//! }
//! let model = model.rescaling(1.0 / 255.0).conv2d(32, 3, Activation::Relu);
//! assert_eq!(model.layers[1].name, "random_rotation");
//! assert_eq!(model.output_shape().unwrap(), [32, 178, 178]);
//! ```
//!
//! Geometric layers ([`RandomRotationSpec`], [`RandomZoomSpec`],
//! [`RandomTranslationSpec`]) share a [`FillMode`] and an [`Interpolation`]; random amounts
//! are [`Factor`]s.

/// Implements [`LayerDescription`](crate::nn::layer::LayerDescription) for an augmentation
/// spec with inherent `output_shape` and `build` (`build` returning the layer, or a
/// `Result` of it with `fallible`): parameter-free, active only in training.
macro_rules! describe_augmentation {
    ($spec:ty, $class:literal, $examples:expr) => {
        describe_augmentation!(@impl $spec, $class, $examples, |spec: &$spec| -> $crate::error::Result<_> { Ok(spec.build()) });
    };
    ($spec:ty, $class:literal, fallible, $examples:expr) => {
        describe_augmentation!(@impl $spec, $class, $examples, |spec: &$spec| spec.build());
    };
    (@impl $spec:ty, $class:literal, $examples:expr, $build:expr) => {
        impl $crate::nn::layer::LayerDescription for $spec {
            fn class_name(&self) -> &'static str {
                $class
            }

            fn output_shape(&self, input: &[i64]) -> $crate::error::Result<Vec<i64>> {
                <$spec>::output_shape(self, input)
            }

            fn param_counts(
                &self,
                _input: &[i64],
            ) -> $crate::error::Result<$crate::nn::layer::ParamCounts> {
                Ok($crate::nn::layer::ParamCounts::default())
            }

            fn build(
                &self,
                _vs: tch::nn::Path,
                input: &[i64],
                _skip_activation: bool,
            ) -> $crate::error::Result<Box<dyn $crate::nn::Layer>> {
                <$spec>::output_shape(self, input)?;
                let build = $build;
                Ok(Box::new(build(self)?))
            }

            fn is_augmentation(&self) -> bool {
                true
            }

            fn examples() -> Vec<(Self, Vec<i64>)> {
                $examples
            }
        }
    };
}

pub mod affine;
pub mod factor;
pub mod fill_mode;
pub mod random_contrast;
pub mod random_crop;
pub mod random_flip;
pub mod random_rotation;
pub mod random_translation;
pub mod random_zoom;

pub use affine::Interpolation;
pub use factor::Factor;
pub use fill_mode::FillMode;
pub use random_contrast::{RandomContrast, RandomContrastSpec};
pub use random_crop::{RandomCrop, RandomCropSpec};
pub use random_flip::{FlipMode, RandomFlip, RandomFlipSpec};
pub use random_rotation::{RandomRotation, RandomRotationSpec};
pub use random_translation::{RandomTranslation, RandomTranslationSpec};
pub use random_zoom::{RandomZoom, RandomZoomSpec};

use tch::{Kind, Tensor};

use crate::nn::LayerSpec;

/// The chapter's augmentation (section 8.3): `RandomFlip("horizontal")`,
/// `RandomRotation(0.1)` (up to a tenth of a turn either way) and `RandomZoom(0.2)`, every
/// other setting at Keras' defaults (reflect fill, bilinear sampling).
pub fn chapter_augmentation() -> Vec<LayerSpec> {
    vec![
        LayerSpec::RandomFlip(RandomFlipSpec::new(FlipMode::Horizontal)),
        LayerSpec::RandomRotation(RandomRotationSpec::new(0.1)),
        LayerSpec::RandomZoom(RandomZoomSpec::new(0.2)),
    ]
}

/// `xs` as floats: bytes become `f32` with the same values, floats keep their precision.
pub(crate) fn float_images(xs: &Tensor) -> Tensor {
    if xs.is_floating_point() {
        xs.shallow_clone()
    } else {
        xs.to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Sequential};
    use crate::Model;
    use tch::Device;

    #[test]
    fn the_chapter_augmentation_is_flip_rotation_zoom_at_keras_defaults() {
        let layers = chapter_augmentation();
        let json = serde_json::to_string(&layers).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"[{"type":"random_flip","mode":"horizontal"},"#,
                r#"{"type":"random_rotation","factor":0.1,"fill_mode":"reflect","#,
                r#""interpolation":"bilinear","fill_value":0.0},"#,
                r#"{"type":"random_zoom","height_factor":0.2,"width_factor":null,"#,
                r#""fill_mode":"reflect","interpolation":"bilinear","fill_value":0.0}]"#
            )
        );
    }

    fn augmented_model() -> Sequential {
        Sequential::new("m", [3, 8, 8])
            .add(LayerSpec::RandomFlip(RandomFlipSpec::new(
                FlipMode::Horizontal,
            )))
            .add(LayerSpec::RandomRotation(RandomRotationSpec::new(0.1)))
            .add(LayerSpec::RandomZoom(RandomZoomSpec::new(0.2)))
            .add(LayerSpec::RandomTranslation(RandomTranslationSpec::new(
                0.1, 0.1,
            )))
            .add(LayerSpec::RandomContrast(RandomContrastSpec::new(0.2)))
            .add(LayerSpec::RandomCrop(RandomCropSpec::new(6, 7)))
            .rescaling(1.0 / 255.0)
            .conv2d(4, 3, Activation::Relu)
            .flatten()
            .dense(2, Activation::Softmax)
    }

    #[test]
    fn a_sequential_with_augmentation_validates_and_has_the_right_shapes() {
        let spec = augmented_model();
        spec.validate().unwrap();
        let shapes = spec.output_shapes().unwrap();
        for shape in &shapes[..5] {
            assert_eq!(shape, &[3, 8, 8]);
        }
        assert_eq!(shapes[5], [3, 6, 7]);
        assert_eq!(shapes[6], [3, 6, 7]);
        assert_eq!(shapes[7], [4, 4, 5]);
        assert_eq!(spec.output_shape().unwrap(), [2]);
        assert!(spec.layer_param_counts().unwrap()[..7]
            .iter()
            .all(|c| c.total() == 0));
        let json = serde_json::to_string_pretty(&spec).unwrap();
        assert_eq!(serde_json::from_str::<Sequential>(&json).unwrap(), spec);
    }

    #[test]
    fn a_built_model_augments_byte_batches_in_training_only() {
        let model = Model::new(&augmented_model(), Device::Cpu, 3).unwrap();
        let images = Tensor::randint(256, [5, 3, 8, 8], (Kind::Uint8, Device::Cpu));
        let train = tch::no_grad(|| model.forward(&images, true));
        assert_eq!(train.size(), [5, 2]);
        let first = tch::no_grad(|| model.forward(&images, false));
        let again = tch::no_grad(|| model.forward(&images, false));
        assert_eq!(first.size(), [5, 2]);
        assert!(first.equal(&again));
    }

    #[test]
    fn invalid_settings_fail_validation_with_the_layer_name() {
        let spec = Sequential::new("m", [3, 8, 8])
            .add(LayerSpec::RandomFlip(RandomFlipSpec::new(
                FlipMode::Vertical,
            )))
            .add(LayerSpec::RandomRotation(RandomRotationSpec::new((
                0.2, 0.1,
            ))));
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("random_rotation"), "{err}");
        assert!(Model::new(&spec, Device::Cpu, 0).is_err());
    }

    #[test]
    fn float_images_converts_bytes_only() {
        let bytes = Tensor::from_slice(&[3u8, 250]);
        assert_eq!(float_images(&bytes).kind(), Kind::Float);
        let doubles = Tensor::from_slice(&[0.5f64]);
        assert_eq!(float_images(&doubles).kind(), Kind::Double);
    }
}
