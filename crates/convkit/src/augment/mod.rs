//! Data augmentation: Keras' random image layers, active only while training.
//!
//! Each layer takes a batch `(batch, channels, height, width)` of bytes (`0..=255`) or
//! floats. In training it draws one random transformation per image from libtorch's
//! generator (so `tch::manual_seed`, which the fit loop calls, repeats a run) and returns
//! floats (`f32` for bytes, values still in `0..=255`); at inference it returns its input
//! unchanged (a [`RandomCropSpec`] centre-crops it). The whole batch is transformed by a
//! few tensor operations on its device, without a loop over images.
//!
//! Put them first in a model, before the rescaling, as the chapter does (the recipe that
//! picks the chapter's three is `models::chapter_augmentation`).
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

    #[test]
    fn float_images_converts_bytes_only() {
        let bytes = Tensor::from_slice(&[3u8, 250]);
        assert_eq!(float_images(&bytes).kind(), Kind::Float);
        let doubles = Tensor::from_slice(&[0.5f64]);
        assert_eq!(float_images(&doubles).kind(), Kind::Double);
    }
}
