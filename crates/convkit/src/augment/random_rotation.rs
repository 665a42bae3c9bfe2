//! Random rotations, as Keras' `RandomRotation`.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::affine::{matrices, Interpolation, Warp};
use super::factor::{uniform, Factor};
use super::fill_mode::FillMode;
use crate::error::Result;
use crate::nn::layer::{expect_rank, Layer};

/// Description of a layer that, in training, rotates each image about its centre by an
/// angle drawn uniformly from `[lower, upper]` *turns* (`factor` `0.1` means up to 36
/// degrees either way; positive angles turn counter-clockwise); at inference it passes its
/// input through.
///
/// # Shapes
/// - input: `(batch, channels, height, width)`, bytes or floats
/// - output: the same shape; in training `f32` for bytes, floats keep their precision
///
/// ```
/// use convkit::augment::{Interpolation, RandomRotationSpec};
/// use convkit::nn::Layer;
/// use tch::Tensor;
///
/// // A quarter turn, counter-clockwise: the right column becomes the top row.
/// let spec = RandomRotationSpec {
///     interpolation: Interpolation::Nearest,
///     ..RandomRotationSpec::new((0.25, 0.25))
/// };
/// let images = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([1, 1, 2, 2]);
/// let out = spec.build().unwrap().forward(&images, true);
/// assert_eq!(Vec::<f32>::try_from(out.view([-1])).unwrap(), [2.0, 4.0, 1.0, 3.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomRotationSpec {
    /// The range of angles, in fractions of a full turn, within `[-1, 1]`: `f` for
    /// `[-f, f]`, or `[lower, upper]`.
    pub factor: Factor,
    /// What fills the corners that come from outside the image.
    #[serde(default)]
    pub fill_mode: FillMode,
    /// How the image is sampled between pixels.
    #[serde(default)]
    pub interpolation: Interpolation,
    /// The fill of [`FillMode::Constant`].
    #[serde(default)]
    pub fill_value: f64,
}

impl RandomRotationSpec {
    /// Rotations within `factor` turns, other settings at Keras' defaults (reflect fill,
    /// bilinear sampling, fill value 0).
    pub fn new(factor: impl Into<Factor>) -> Self {
        RandomRotationSpec {
            factor: factor.into(),
            fill_mode: FillMode::default(),
            interpolation: Interpolation::default(),
            fill_value: 0.0,
        }
    }

    /// Output shape per sample for an input `(channels, height, width)`: the same. Fails on
    /// invalid settings.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("random_rotation", input, 3)?;
        self.build()?;
        Ok(input.to_vec())
    }

    /// Builds the (parameter-free) layer, checking the settings.
    pub fn build(&self) -> Result<RandomRotation> {
        let what = "random_rotation factor";
        Ok(RandomRotation {
            turns: self.factor.checked_bounds(what, -1.0, 1.0)?,
            warp: Warp::checked(
                "random_rotation",
                self.fill_mode,
                self.interpolation,
                self.fill_value,
            )?,
        })
    }
}

/// A built [`RandomRotationSpec`].
#[derive(Debug)]
pub struct RandomRotation {
    turns: (f64, f64),
    warp: Warp,
}

impl Layer for RandomRotation {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        if !train {
            return xs.shallow_clone();
        }
        let (b, _, h, w) = xs
            .size4()
            .expect("images are (batch, channels, height, width)");
        let angle = uniform(self.turns, b, xs.device()) * (2.0 * PI);
        let (cos, sin) = (angle.cos(), angle.sin());
        // Keras' rotation matrix, in pixels: output (x, y) samples the input at
        // (cos x - sin y + dx, sin x + cos y + dy), the offsets keeping the centre in place.
        // With y pointing down, a positive angle turns the picture counter-clockwise.
        let (w1, h1) = ((w - 1) as f64, (h - 1) as f64);
        let dx = (w1 - (&cos * w1 - &sin * h1)) / 2.0;
        let dy = (h1 - (&sin * w1 + &cos * h1)) / 2.0;
        let m = matrices([cos.shallow_clone(), sin.neg(), dx, sin, cos, dy]);
        self.warp.apply(xs, &m)
    }
}

describe_augmentation!(
    RandomRotationSpec,
    "RandomRotation",
    fallible,
    vec![(RandomRotationSpec::new(0.1), vec![3, 7, 6])]
);

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn rotation(turns: f64, interpolation: Interpolation) -> RandomRotation {
        RandomRotationSpec {
            interpolation,
            ..RandomRotationSpec::new((turns, turns))
        }
        .build()
        .unwrap()
    }

    fn square() -> Tensor {
        Tensor::arange(2 * 16, (Kind::Float, Device::Cpu)).view([1, 2, 4, 4])
    }

    #[test]
    fn a_quarter_turn_is_rot90_counter_clockwise() {
        let xs = square();
        let expected = xs.rot90(1, [2, 3]);
        let nearest = rotation(0.25, Interpolation::Nearest).forward(&xs, true);
        assert!(nearest.equal(&expected), "{nearest}");
        let bilinear = rotation(0.25, Interpolation::Bilinear).forward(&xs, true);
        assert!(
            bilinear.allclose(&expected, 1e-4, 1e-4, false),
            "{bilinear}"
        );
        let clockwise = rotation(-0.25, Interpolation::Nearest).forward(&xs, true);
        assert!(clockwise.equal(&xs.rot90(-1, [2, 3])), "{clockwise}");
    }

    #[test]
    fn a_half_turn_of_a_wide_image_flips_both_axes() {
        let xs = Tensor::arange(2 * 5, (Kind::Float, Device::Cpu)).view([1, 1, 2, 5]);
        let ys = rotation(0.5, Interpolation::Bilinear).forward(&xs, true);
        assert!(ys.allclose(&xs.flip([2, 3]), 1e-4, 1e-4, false), "{ys}");
    }

    #[test]
    fn constant_fill_shows_in_the_corners_of_a_small_turn() {
        let spec = RandomRotationSpec {
            fill_mode: FillMode::Constant,
            fill_value: -1.0,
            interpolation: Interpolation::Nearest,
            ..RandomRotationSpec::new((0.125, 0.125))
        };
        let xs = Tensor::ones([1, 1, 9, 9], (Kind::Float, Device::Cpu));
        let ys = spec.build().unwrap().forward(&xs, true);
        assert_eq!(ys.double_value(&[0, 0, 0, 0]), -1.0);
        assert_eq!(ys.double_value(&[0, 0, 8, 8]), -1.0);
        assert_eq!(ys.double_value(&[0, 0, 4, 4]), 1.0);
    }

    #[test]
    fn identity_at_inference() {
        let layer = RandomRotationSpec::new(0.5).build().unwrap();
        let bytes = square().to_kind(Kind::Uint8);
        let ys = layer.forward(&bytes, false);
        assert_eq!(ys.kind(), Kind::Uint8);
        assert!(ys.equal(&bytes));
        assert_eq!(layer.forward(&bytes, true).kind(), Kind::Float);
    }

    #[test]
    fn each_image_draws_its_angle_and_a_seed_repeats_them() {
        let layer = RandomRotationSpec::new(0.1).build().unwrap();
        let xs = Tensor::rand([1, 1, 8, 8], (Kind::Float, Device::Cpu)).repeat([6, 1, 1, 1]);
        tch::manual_seed(3);
        let first = layer.forward(&xs, true);
        tch::manual_seed(3);
        let second = layer.forward(&xs, true);
        assert!(first.equal(&second));
        for i in 1..6 {
            assert!(!first.get(0).equal(&first.get(i)), "images 0 and {i} match");
        }
    }

    #[test]
    fn invalid_factors_are_errors() {
        assert!(RandomRotationSpec::new((0.2, 0.1)).build().is_err());
        assert!(RandomRotationSpec::new(1.5).build().is_err());
        let spec = RandomRotationSpec {
            fill_value: f64::INFINITY,
            ..RandomRotationSpec::new(0.1)
        };
        assert!(spec.output_shape(&[3, 4, 4]).is_err());
    }
}
