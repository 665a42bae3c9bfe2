//! Random contrast changes, as Keras' `RandomContrast`.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::factor::{uniform, Factor};
use super::float_images;
use crate::error::{Error, Result};
use crate::nn::layer::{expect_rank, Layer};

/// Description of a layer that, in training, scales each channel's deviation from its mean
/// by a contrast factor drawn per image, then clips to `value_range`:
/// `clip((x - mean) * c + mean)`, the mean taken over the channel's pixels. At inference it
/// passes its input through.
///
/// `factor` `f` draws `c` from `[1 - f, 1 + f]`; a pair `[lower, upper]` from
/// `[1 - lower, 1 + upper]`, as Keras writes it. Every number lies in `[0, 1]`.
///
/// # Shapes
/// - input: `(batch, channels, height, width)`, bytes or floats
/// - output: the same shape; in training `f32` for bytes, floats keep their precision
///
/// ```
/// use convkit::augment::RandomContrastSpec;
/// use convkit::nn::Layer;
/// use tch::Tensor;
///
/// let contrast = RandomContrastSpec::new(0.5).build().unwrap();
/// let images = Tensor::from_slice(&[100u8, 200]).view([1, 1, 1, 2]);
/// let out = Vec::<f32>::try_from(contrast.forward(&images, true).view([-1])).unwrap();
/// // The mean 150 stays; the deviation of 50 is scaled by a factor in [0.5, 1.5].
/// assert!((out[0] + out[1] - 300.0).abs() < 1e-3);
/// assert!((25.0..=75.0).contains(&(out[1] - 150.0)));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomContrastSpec {
    /// How far the contrast factor strays from 1 (see above).
    pub factor: Factor,
    /// The range of pixel values; outputs are clipped to it. Keras' default `[0, 255]`
    /// fits bytes; use `[0, 1]` after a rescaling.
    #[serde(default = "byte_range")]
    pub value_range: (f64, f64),
}

fn byte_range() -> (f64, f64) {
    (0.0, 255.0)
}

impl RandomContrastSpec {
    /// Contrast factors within `[1 - factor, 1 + factor]`, values clipped to `[0, 255]`.
    pub fn new(factor: impl Into<Factor>) -> Self {
        RandomContrastSpec {
            factor: factor.into(),
            value_range: byte_range(),
        }
    }

    /// Output shape per sample for an input `(channels, height, width)`: the same. Fails on
    /// invalid settings.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("random_contrast", input, 3)?;
        self.build()?;
        Ok(input.to_vec())
    }

    /// Builds the (parameter-free) layer, checking the settings.
    pub fn build(&self) -> Result<RandomContrast> {
        let (lower, upper) = match self.factor {
            Factor::Symmetric(f) => (f, f),
            Factor::Range(lower, upper) => (lower, upper),
        };
        if !(0.0..=1.0).contains(&lower) || !(0.0..=1.0).contains(&upper) {
            return Err(Error::InvalidConfig(format!(
                "random_contrast factor must lie in [0, 1], got {:?}",
                self.factor
            )));
        }
        let (low, high) = self.value_range;
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(Error::InvalidConfig(format!(
                "random_contrast value_range must be finite and increasing, got {:?}",
                self.value_range
            )));
        }
        Ok(RandomContrast {
            factors: (1.0 - lower, 1.0 + upper),
            value_range: self.value_range,
        })
    }
}

/// A built [`RandomContrastSpec`].
#[derive(Debug)]
pub struct RandomContrast {
    factors: (f64, f64),
    value_range: (f64, f64),
}

impl Layer for RandomContrast {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        if !train {
            return xs.shallow_clone();
        }
        let xs = float_images(xs);
        let b = xs.size()[0];
        let factor = uniform(self.factors, b, xs.device())
            .view([b, 1, 1, 1])
            .to_kind(xs.kind());
        let mean = xs.mean_dim(&[2i64, 3][..], true, xs.kind());
        ((&xs - &mean) * factor + mean).clamp(self.value_range.0, self.value_range.1)
    }
}

describe_augmentation!(
    RandomContrastSpec,
    "RandomContrast",
    fallible,
    vec![(RandomContrastSpec::new(0.2), vec![3, 5, 5])]
);

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The layer with its factor fixed at `c`, which no spec allows beyond 2.
    fn fixed(c: f64) -> RandomContrast {
        RandomContrast {
            factors: (c, c),
            value_range: byte_range(),
        }
    }

    #[test]
    fn a_factor_of_two_doubles_the_deviation_and_clips() {
        // Channel 0: mean 100, deviations -50, 0, 50, 0 become -100, 0, 100, 0.
        // Channel 1: constant, unchanged.
        let xs = Tensor::from_slice(&[50.0f32, 100.0, 150.0, 100.0, 7.0, 7.0, 7.0, 7.0])
            .view([1, 2, 2, 2]);
        let ys = fixed(2.0).forward(&xs, true);
        let expected = Tensor::from_slice(&[0.0f32, 100.0, 200.0, 100.0, 7.0, 7.0, 7.0, 7.0]);
        assert!(
            ys.allclose(&expected.view([1, 2, 2, 2]), 1e-5, 1e-5, false),
            "{ys}"
        );
        let wide = Tensor::from_slice(&[0u8, 200, 250, 250]).view([1, 1, 2, 2]);
        let ys = Vec::<f32>::try_from(fixed(2.0).forward(&wide, true).view([-1])).unwrap();
        // Mean 175: 0 -> -175 (clipped to 0), 200 -> 225, 250 -> 325 (clipped to 255).
        assert_eq!(ys, [0.0, 225.0, 255.0, 255.0]);
    }

    #[test]
    fn the_factor_range_follows_keras() {
        let layer = RandomContrastSpec::new(0.2).build().unwrap();
        assert_eq!(layer.factors, (0.8, 1.2));
        let layer = RandomContrastSpec::new((0.1, 0.5)).build().unwrap();
        assert_eq!(layer.factors, (0.9, 1.5));
    }

    #[test]
    fn the_value_range_clips() {
        let spec = RandomContrastSpec {
            value_range: (0.0, 1.0),
            ..RandomContrastSpec::new(0.0)
        };
        let xs = Tensor::from_slice(&[0.5f64, 3.0]).view([1, 1, 1, 2]);
        let ys = spec.build().unwrap().forward(&xs, true);
        assert_eq!(ys.kind(), Kind::Double);
        assert_eq!(Vec::<f64>::try_from(ys.view([-1])).unwrap(), [0.5, 1.0]);
    }

    #[test]
    fn identity_at_inference() {
        let layer = RandomContrastSpec::new(0.5).build().unwrap();
        let bytes = Tensor::arange(16, (Kind::Uint8, Device::Cpu)).view([1, 1, 4, 4]);
        let ys = layer.forward(&bytes, false);
        assert_eq!(ys.kind(), Kind::Uint8);
        assert!(ys.equal(&bytes));
    }

    #[test]
    fn each_image_draws_its_factor_and_a_seed_repeats_them() {
        let layer = RandomContrastSpec::new(0.5).build().unwrap();
        let xs = (Tensor::rand([1, 3, 4, 4], (Kind::Float, Device::Cpu)) * 100.0 + 50.0)
            .repeat([6, 1, 1, 1]);
        tch::manual_seed(6);
        let first = layer.forward(&xs, true);
        tch::manual_seed(6);
        let second = layer.forward(&xs, true);
        assert!(first.equal(&second));
        for i in 1..6 {
            assert!(!first.get(0).equal(&first.get(i)), "images 0 and {i} match");
        }
        // One factor per image: all channels of an image scale their deviations alike.
        let pixels = &[2i64, 3][..];
        let deviation = |t: &Tensor| t - t.mean_dim(pixels, true, Kind::Float);
        let (d_in, d_out) = (deviation(&xs), deviation(&first));
        // Least-squares factor of each channel of each image: (B, C).
        let c = (&d_out * &d_in).sum_dim_intlist(pixels, false, Kind::Float)
            / (&d_in * &d_in).sum_dim_intlist(pixels, false, Kind::Float);
        let spread = c.amax(&[1i64][..], false) - c.amin(&[1i64][..], false);
        assert!(spread.max().double_value(&[]) < 1e-4, "{c}");
        assert!(c.min().double_value(&[]) >= 0.5 - 1e-4 && c.max().double_value(&[]) <= 1.5 + 1e-4);
    }

    #[test]
    fn invalid_factors_are_errors() {
        assert!(RandomContrastSpec::new(-0.1).build().is_err());
        assert!(RandomContrastSpec::new(1.5).build().is_err());
        assert!(RandomContrastSpec::new((0.2, 1.2)).build().is_err());
        assert!(RandomContrastSpec::new(f64::NAN).build().is_err());
        let spec = RandomContrastSpec {
            value_range: (1.0, 0.0),
            ..RandomContrastSpec::new(0.2)
        };
        assert!(spec.output_shape(&[3, 4, 4]).is_err());
    }
}
