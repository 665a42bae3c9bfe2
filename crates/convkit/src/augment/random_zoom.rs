//! Random zooms, as Keras' `RandomZoom`.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::affine::{matrices, Interpolation, Warp};
use super::factor::{uniform, Factor};
use super::fill_mode::FillMode;
use crate::error::Result;
use crate::nn::layer::{expect_rank, Layer};

/// Description of a layer that, in training, zooms each image about its centre by a random
/// amount; at inference it passes its input through.
///
/// As in Keras, a factor `z` stretches the sampling grid by `1 + z`: a positive `z` zooms
/// *out* (the content shrinks and the fill shows around it), a negative one zooms *in*
/// (`-0.5` shows the central half at twice the size). The amounts are drawn per image,
/// uniformly from the factor's range.
///
/// # Shapes
/// - input: `(batch, channels, height, width)`, bytes or floats
/// - output: the same shape; in training `f32` for bytes, floats keep their precision
///
/// ```
/// use convkit::augment::{Interpolation, RandomZoomSpec};
/// use convkit::nn::Layer;
/// use tch::Tensor;
///
/// // Zoom in 2x: the centre 2x2 block of a 4x4 image fills the output.
/// let spec = RandomZoomSpec {
///     interpolation: Interpolation::Nearest,
///     ..RandomZoomSpec::new((-0.5, -0.5))
/// };
/// let images = Tensor::arange(16, (tch::Kind::Float, tch::Device::Cpu)).view([1, 1, 4, 4]);
/// let out = spec.build().unwrap().forward(&images, true);
/// assert_eq!(Vec::<f32>::try_from(out.get(0).get(0).get(0)).unwrap(), [5.0, 5.0, 6.0, 6.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomZoomSpec {
    /// The vertical zoom range, within `[-1, 1]`: `f` for `[-f, f]`, or `[lower, upper]`.
    pub height_factor: Factor,
    /// The horizontal zoom range; `None` (Keras' default) zooms both axes by the height's
    /// amount, keeping the aspect ratio.
    #[serde(default)]
    pub width_factor: Option<Factor>,
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

impl RandomZoomSpec {
    /// Zooms within `height_factor` on both axes (aspect kept), other settings at Keras'
    /// defaults (reflect fill, bilinear sampling, fill value 0).
    pub fn new(height_factor: impl Into<Factor>) -> Self {
        RandomZoomSpec {
            height_factor: height_factor.into(),
            width_factor: None,
            fill_mode: FillMode::default(),
            interpolation: Interpolation::default(),
            fill_value: 0.0,
        }
    }

    /// Output shape per sample for an input `(channels, height, width)`: the same. Fails on
    /// invalid settings.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("random_zoom", input, 3)?;
        self.build()?;
        Ok(input.to_vec())
    }

    /// Builds the (parameter-free) layer, checking the settings.
    pub fn build(&self) -> Result<RandomZoom> {
        let height = self
            .height_factor
            .checked_bounds("random_zoom height_factor", -1.0, 1.0)?;
        let width = self
            .width_factor
            .map(|f| f.checked_bounds("random_zoom width_factor", -1.0, 1.0))
            .transpose()?;
        Ok(RandomZoom {
            height,
            width,
            warp: Warp::checked(
                "random_zoom",
                self.fill_mode,
                self.interpolation,
                self.fill_value,
            )?,
        })
    }
}

/// A built [`RandomZoomSpec`].
#[derive(Debug)]
pub struct RandomZoom {
    height: (f64, f64),
    width: Option<(f64, f64)>,
    warp: Warp,
}

impl Layer for RandomZoom {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        if !train {
            return xs.shallow_clone();
        }
        let (b, _, h, w) = xs
            .size4()
            .expect("images are (batch, channels, height, width)");
        let device = xs.device();
        let shifted = |(lower, upper): (f64, f64)| (1.0 + lower, 1.0 + upper);
        // Keras draws the height's zoom first, then the width's (if it has its own).
        let zy = uniform(shifted(self.height), b, device);
        let zx = match self.width {
            Some(width) => uniform(shifted(width), b, device),
            None => zy.shallow_clone(),
        };
        // Keras' zoom matrix: output (x, y) samples (zx x + dx, zy y + dy), the offsets
        // keeping the centre in place.
        let dx = (1.0 - &zx) * ((w - 1) as f64 / 2.0);
        let dy = (1.0 - &zy) * ((h - 1) as f64 / 2.0);
        let zeros = zx.zeros_like();
        let m = matrices([zx, zeros.shallow_clone(), dx, zeros, zy, dy]);
        self.warp.apply(xs, &m)
    }
}

describe_augmentation!(
    RandomZoomSpec,
    "RandomZoom",
    fallible,
    vec![(RandomZoomSpec::new(0.2), vec![3, 6, 7])]
);

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn zoom(factor: f64, fill_mode: FillMode) -> RandomZoom {
        RandomZoomSpec {
            interpolation: Interpolation::Nearest,
            fill_mode,
            fill_value: -1.0,
            ..RandomZoomSpec::new((factor, factor))
        }
        .build()
        .unwrap()
    }

    fn grid4() -> Tensor {
        Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4])
    }

    #[test]
    fn zooming_in_twice_upsamples_the_central_block() {
        let ys = zoom(-0.5, FillMode::Reflect).forward(&grid4(), true);
        let centre = grid4().narrow(2, 1, 2).narrow(3, 1, 2);
        let expected = centre
            .repeat_interleave_self_int(2, 2i64, None::<i64>)
            .repeat_interleave_self_int(2, 3i64, None::<i64>);
        assert!(ys.equal(&expected), "{ys}");
    }

    #[test]
    fn zooming_out_shows_the_constant_fill_at_the_border() {
        let ys = zoom(0.5, FillMode::Constant).forward(&grid4(), true);
        // Output x samples 1.5 x - 0.75: -0.75 and 3.75 fall outside, 0.75 and 2.25 round
        // to pixels 1 and 2.
        let expected = Tensor::from_slice(&[
            -1.0f32, -1.0, -1.0, -1.0, //
            -1.0, 5.0, 6.0, -1.0, //
            -1.0, 9.0, 10.0, -1.0, //
            -1.0, -1.0, -1.0, -1.0,
        ])
        .view([1, 1, 4, 4]);
        assert!(ys.equal(&expected), "{ys}");
    }

    #[test]
    fn width_factor_zooms_the_columns_on_their_own() {
        let spec = RandomZoomSpec {
            width_factor: Some(Factor::Range(0.0, 0.0)),
            interpolation: Interpolation::Nearest,
            ..RandomZoomSpec::new((-0.5, -0.5))
        };
        let ys = spec.build().unwrap().forward(&grid4(), true);
        // Rows 1, 1, 2, 2 of the image, columns unchanged.
        let expected = grid4().index_select(2, &Tensor::from_slice(&[1i64, 1, 2, 2]));
        assert!(ys.equal(&expected), "{ys}");
    }

    #[test]
    fn identity_at_inference() {
        let layer = RandomZoomSpec::new(0.2).build().unwrap();
        let bytes = grid4().to_kind(Kind::Uint8);
        let ys = layer.forward(&bytes, false);
        assert_eq!(ys.kind(), Kind::Uint8);
        assert!(ys.equal(&bytes));
    }

    #[test]
    fn each_image_draws_its_zoom_and_a_seed_repeats_them() {
        let layer = RandomZoomSpec::new(0.2).build().unwrap();
        let xs = Tensor::rand([1, 3, 8, 8], (Kind::Float, Device::Cpu)).repeat([6, 1, 1, 1]);
        tch::manual_seed(4);
        let first = layer.forward(&xs, true);
        tch::manual_seed(4);
        let second = layer.forward(&xs, true);
        assert!(first.equal(&second));
        for i in 1..6 {
            assert!(!first.get(0).equal(&first.get(i)), "images 0 and {i} match");
        }
    }

    #[test]
    fn invalid_factors_are_errors() {
        assert!(RandomZoomSpec::new((0.3, -0.3)).build().is_err());
        let spec = RandomZoomSpec {
            width_factor: Some(Factor::Symmetric(1.2)),
            ..RandomZoomSpec::new(0.2)
        };
        let err = spec.build().unwrap_err().to_string();
        assert!(err.contains("width_factor"), "{err}");
    }
}
