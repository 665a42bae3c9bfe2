//! Random shifts, as Keras' `RandomTranslation`.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::affine::{matrices, Interpolation, Warp};
use super::factor::{uniform, Factor};
use super::fill_mode::FillMode;
use crate::error::Result;
use crate::nn::layer::{expect_rank, Layer};

/// Description of a layer that, in training, shifts each image by random fractions of its
/// height and width (positive: down and right); at inference it passes its input through.
///
/// # Shapes
/// - input: `(batch, channels, height, width)`, bytes or floats
/// - output: the same shape; in training `f32` for bytes, floats keep their precision
///
/// ```
/// use convkit::augment::{FillMode, Interpolation, RandomTranslationSpec};
/// use convkit::nn::Layer;
/// use tch::Tensor;
///
/// // One pixel of four to the right, wrapping around.
/// let spec = RandomTranslationSpec {
///     fill_mode: FillMode::Wrap,
///     interpolation: Interpolation::Nearest,
///     ..RandomTranslationSpec::new(0.0, (0.25, 0.25))
/// };
/// let images = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([1, 1, 1, 4]);
/// let out = spec.build().unwrap().forward(&images, true);
/// assert_eq!(Vec::<f32>::try_from(out.view([-1])).unwrap(), [4.0, 1.0, 2.0, 3.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomTranslationSpec {
    /// The vertical shift range as a fraction of the height, within `[-1, 1]`: `f` for
    /// `[-f, f]`, or `[lower, upper]`.
    pub height_factor: Factor,
    /// The horizontal shift range as a fraction of the width, within `[-1, 1]`.
    pub width_factor: Factor,
    /// What fills the space that comes from outside the image.
    #[serde(default)]
    pub fill_mode: FillMode,
    /// How the image is sampled between pixels.
    #[serde(default)]
    pub interpolation: Interpolation,
    /// The fill of [`FillMode::Constant`].
    #[serde(default)]
    pub fill_value: f64,
}

impl RandomTranslationSpec {
    /// Shifts within the two ranges, other settings at Keras' defaults (reflect fill,
    /// bilinear sampling, fill value 0).
    pub fn new(height_factor: impl Into<Factor>, width_factor: impl Into<Factor>) -> Self {
        RandomTranslationSpec {
            height_factor: height_factor.into(),
            width_factor: width_factor.into(),
            fill_mode: FillMode::default(),
            interpolation: Interpolation::default(),
            fill_value: 0.0,
        }
    }

    /// Output shape per sample for an input `(channels, height, width)`: the same. Fails on
    /// invalid settings.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("random_translation", input, 3)?;
        self.build()?;
        Ok(input.to_vec())
    }

    /// Builds the (parameter-free) layer, checking the settings.
    pub fn build(&self) -> Result<RandomTranslation> {
        Ok(RandomTranslation {
            height: self.height_factor.checked_bounds(
                "random_translation height_factor",
                -1.0,
                1.0,
            )?,
            width: self.width_factor.checked_bounds(
                "random_translation width_factor",
                -1.0,
                1.0,
            )?,
            warp: Warp::checked(
                "random_translation",
                self.fill_mode,
                self.interpolation,
                self.fill_value,
            )?,
        })
    }
}

/// A built [`RandomTranslationSpec`].
#[derive(Debug)]
pub struct RandomTranslation {
    height: (f64, f64),
    width: (f64, f64),
    warp: Warp,
}

impl Layer for RandomTranslation {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        if !train {
            return xs.shallow_clone();
        }
        let (b, _, h, w) = xs
            .size4()
            .expect("images are (batch, channels, height, width)");
        let device = xs.device();
        // Keras draws the vertical shift first; output (x, y) samples (x - dx, y - dy).
        let dy = uniform(self.height, b, device) * h as f64;
        let dx = uniform(self.width, b, device) * w as f64;
        let (ones, zeros) = (dx.ones_like(), dx.zeros_like());
        let m = matrices([
            ones.shallow_clone(),
            zeros.shallow_clone(),
            dx.neg(),
            zeros,
            ones,
            dy.neg(),
        ]);
        self.warp.apply(xs, &m)
    }
}

describe_augmentation!(
    RandomTranslationSpec,
    "RandomTranslation",
    fallible,
    vec![(RandomTranslationSpec::new(0.1, 0.2), vec![3, 6, 6])]
);

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The row `a b c d` = `1 2 3 4` shifted right by `pixels` (of 4) with `fill_mode`.
    fn shifted_row(pixels: f64, fill_mode: FillMode) -> Vec<f32> {
        let spec = RandomTranslationSpec {
            fill_mode,
            fill_value: 9.0,
            interpolation: Interpolation::Nearest,
            ..RandomTranslationSpec::new(0.0, (pixels / 4.0, pixels / 4.0))
        };
        let xs = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([1, 1, 1, 4]);
        let ys = spec.build().unwrap().forward(&xs, true);
        Vec::try_from(ys.view([-1])).unwrap()
    }

    #[test]
    fn one_pixel_right_fills_per_the_mode() {
        assert_eq!(shifted_row(1.0, FillMode::Reflect), [1.0, 1.0, 2.0, 3.0]);
        assert_eq!(shifted_row(1.0, FillMode::Constant), [9.0, 1.0, 2.0, 3.0]);
        assert_eq!(shifted_row(1.0, FillMode::Nearest), [1.0, 1.0, 2.0, 3.0]);
        assert_eq!(shifted_row(1.0, FillMode::Wrap), [4.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn two_pixels_left_tell_reflect_from_nearest() {
        // Outputs 2 and 3 come from x = 4 and 5, beyond `d`.
        assert_eq!(shifted_row(-2.0, FillMode::Reflect), [3.0, 4.0, 4.0, 3.0]);
        assert_eq!(shifted_row(-2.0, FillMode::Constant), [3.0, 4.0, 9.0, 9.0]);
        assert_eq!(shifted_row(-2.0, FillMode::Nearest), [3.0, 4.0, 4.0, 4.0]);
        assert_eq!(shifted_row(-2.0, FillMode::Wrap), [3.0, 4.0, 1.0, 2.0]);
    }

    #[test]
    fn a_vertical_shift_moves_rows_down() {
        let spec = RandomTranslationSpec {
            fill_mode: FillMode::Constant,
            ..RandomTranslationSpec::new((0.5, 0.5), 0.0)
        };
        let xs = Tensor::arange_start(1, 9, (Kind::Float, Device::Cpu)).view([1, 1, 4, 2]);
        let ys = spec.build().unwrap().forward(&xs, true);
        let expected = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        assert!(
            ys.allclose(&expected.view([1, 1, 4, 2]), 1e-5, 1e-5, false),
            "{ys}"
        );
    }

    #[test]
    fn identity_at_inference() {
        let layer = RandomTranslationSpec::new(0.2, 0.2).build().unwrap();
        let bytes = Tensor::arange(16, (Kind::Uint8, Device::Cpu)).view([1, 1, 4, 4]);
        let ys = layer.forward(&bytes, false);
        assert_eq!(ys.kind(), Kind::Uint8);
        assert!(ys.equal(&bytes));
    }

    #[test]
    fn each_image_draws_its_shift_and_a_seed_repeats_them() {
        let layer = RandomTranslationSpec::new(0.2, 0.2).build().unwrap();
        let xs = Tensor::rand([1, 2, 8, 8], (Kind::Float, Device::Cpu)).repeat([6, 1, 1, 1]);
        tch::manual_seed(5);
        let first = layer.forward(&xs, true);
        tch::manual_seed(5);
        let second = layer.forward(&xs, true);
        assert!(first.equal(&second));
        for i in 1..6 {
            assert!(!first.get(0).equal(&first.get(i)), "images 0 and {i} match");
        }
    }

    #[test]
    fn invalid_factors_are_errors() {
        assert!(RandomTranslationSpec::new((0.2, -0.2), 0.1)
            .build()
            .is_err());
        assert!(RandomTranslationSpec::new(0.1, 2.0).build().is_err());
    }
}
