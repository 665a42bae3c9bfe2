//! The warp shared by the geometric augmentations: one affine map per image, applied to the
//! whole batch by a single `grid_sampler` call.
//!
//! Coordinates follow Keras' `ops.image.affine_transform`: pixel centres sit at integer
//! positions `(x, y)`, `x` to the right and `y` down, and each image's matrix maps an
//! *output* pixel to the *input* point it samples. The layers write their matrices exactly
//! as Keras does; this module turns them into libtorch's normalized sampling grid.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::fill_mode::FillMode;
use super::float_images;
use crate::error::{Error, Result};
use crate::runtime::{Autocast, Precision};

/// How a warped image is sampled between pixels, as Keras' `interpolation`.
///
/// ```
/// use convkit::augment::Interpolation;
///
/// assert_eq!(Interpolation::default(), Interpolation::Bilinear);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Weighted mean of the four nearest pixels (Keras' default).
    #[default]
    Bilinear,
    /// The nearest pixel.
    Nearest,
}

impl Interpolation {
    /// libtorch's `grid_sampler` `interpolation_mode`.
    fn mode(self) -> i64 {
        match self {
            Interpolation::Bilinear => 0,
            Interpolation::Nearest => 1,
        }
    }
}

/// The sampling settings of a geometric layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Warp {
    pub fill_mode: FillMode,
    pub interpolation: Interpolation,
    pub fill_value: f64,
}

impl Warp {
    /// The settings, after checking that `fill_value` is a number; `layer` names the layer
    /// in the error.
    pub fn checked(
        layer: &str,
        fill_mode: FillMode,
        interpolation: Interpolation,
        fill_value: f64,
    ) -> Result<Warp> {
        if !fill_value.is_finite() {
            return Err(Error::InvalidConfig(format!(
                "{layer}: fill_value must be finite, got {fill_value}"
            )));
        }
        Ok(Warp {
            fill_mode,
            interpolation,
            fill_value,
        })
    }

    /// Warps each image `b` of `xs` `(B, C, H, W)` (bytes or floats) by `matrices[b]`
    /// `(B, 2, 3)`, which maps output pixel `(x, y, 1)` to the input point it samples.
    /// Returns floats (`f32` for bytes) of the input's shape.
    pub fn apply(&self, xs: &Tensor, matrices: &Tensor) -> Tensor {
        // Sampling positions need fp32: in bf16 they would be off by up to a pixel.
        let _fp32 = Autocast::new(xs.device(), Precision::Fp32).ok();
        let xs = float_images(xs);
        let (b, _, h, w) = xs
            .size4()
            .expect("images are (batch, channels, height, width)");
        let options = (xs.kind(), xs.device());
        // Output pixel centres as rows (x, y, 1), then the input points they sample.
        let cols = Tensor::arange(w, options)
            .view([1, w])
            .expand([h, w], false);
        let rows = Tensor::arange(h, options)
            .view([h, 1])
            .expand([h, w], false);
        let pixels = Tensor::stack(&[cols, rows, Tensor::ones([h, w], options)], -1);
        let points = pixels
            .view([1, h * w, 3])
            .matmul(&matrices.to_kind(options.0).transpose(1, 2));
        let (source, points, src_h, src_w) = match self.fill_mode {
            FillMode::Wrap => {
                // Wrap into [-0.5, size - 0.5) and sample a copy with one wrapped pixel on
                // each side, so that bilinear interpolation across the seam wraps too.
                let size = Tensor::from_slice(&[w as f32, h as f32]).to_device(options.1);
                let size = size.to_kind(options.0);
                let wrapped = (points + 0.5).remainder_tensor(&size) + 0.5;
                (
                    xs.pad([1, 1, 1, 1], "circular", None::<f64>),
                    wrapped,
                    h + 2,
                    w + 2,
                )
            }
            // Zeros padding around `x - k` is `k` around `x` once `k` is added back, also
            // for the neighbours that bilinear interpolation blends in.
            FillMode::Constant if self.fill_value != 0.0 => (&xs - self.fill_value, points, h, w),
            _ => (xs, points, h, w),
        };
        // Pixel centre i of a side of n pixels sits at (2i + 1) / n - 1 in libtorch's
        // normalized coordinates when align_corners is false.
        let size = Tensor::from_slice(&[src_w as f32, src_h as f32]).to_device(options.1);
        let grid = ((points * 2.0 + 1.0) / size.to_kind(options.0) - 1.0).view([b, h, w, 2]);
        let ys = source.grid_sampler(
            &grid,
            self.interpolation.mode(),
            self.fill_mode.padding_mode(),
            false,
        );
        if self.fill_mode == FillMode::Constant && self.fill_value != 0.0 {
            ys + self.fill_value
        } else {
            ys
        }
    }
}

/// Stacks per-image entries `[a0, a1, a2, b0, b1, b2]`, each of shape `(B)`, into the
/// `(B, 2, 3)` matrices `[[a0, a1, a2], [b0, b1, b2]]` of [`Warp::apply`].
pub(crate) fn matrices(entries: [Tensor; 6]) -> Tensor {
    let b = entries[0].size()[0];
    Tensor::stack(&entries, 1)
        .to_kind(Kind::Float)
        .view([b, 2, 3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The matrix of a shift right by `dx` pixels, for a batch of one.
    fn shift(dx: f64) -> Tensor {
        Tensor::from_slice(&[1.0f32, 0.0, -dx as f32, 0.0, 1.0, 0.0]).view([1, 2, 3])
    }

    fn row(values: &[f32]) -> Tensor {
        Tensor::from_slice(values).view([1, 1, 1, values.len() as i64])
    }

    fn warp(fill_mode: FillMode, interpolation: Interpolation) -> Warp {
        Warp {
            fill_mode,
            interpolation,
            fill_value: 9.0,
        }
    }

    fn values(xs: &Tensor) -> Vec<f32> {
        Vec::try_from(xs.view([-1])).unwrap()
    }

    #[test]
    fn the_identity_returns_the_input_in_every_mode() {
        let xs = Tensor::arange(12, (Kind::Float, Device::Cpu)).view([1, 1, 3, 4]);
        let identity = matrices([1.0, 0.0, 0.0, 0.0, 1.0, 0.0].map(|v| Tensor::from_slice(&[v])));
        for mode in [
            FillMode::Reflect,
            FillMode::Constant,
            FillMode::Nearest,
            FillMode::Wrap,
        ] {
            for interpolation in [Interpolation::Bilinear, Interpolation::Nearest] {
                let ys = warp(mode, interpolation).apply(&xs, &identity);
                assert!(
                    ys.allclose(&xs, 1e-5, 1e-5, false),
                    "{mode:?} {interpolation:?}"
                );
            }
        }
    }

    #[test]
    fn bytes_become_floats_with_the_same_values() {
        let xs = Tensor::from_slice(&[0u8, 128, 255, 7]).view([1, 1, 1, 4]);
        let ys = warp(FillMode::Reflect, Interpolation::Nearest).apply(&xs, &shift(0.0));
        assert_eq!(ys.kind(), Kind::Float);
        assert_eq!(values(&ys), [0.0, 128.0, 255.0, 7.0]);
    }

    #[test]
    fn fill_modes_follow_the_keras_diagrams() {
        // a b c d shifted right by two pixels: the two left outputs come from x = -2, -1.
        let xs = row(&[1.0, 2.0, 3.0, 4.0]);
        let expect = [
            (FillMode::Reflect, [2.0f32, 1.0, 1.0, 2.0]),
            (FillMode::Constant, [9.0, 9.0, 1.0, 2.0]),
            (FillMode::Nearest, [1.0, 1.0, 1.0, 2.0]),
            (FillMode::Wrap, [3.0, 4.0, 1.0, 2.0]),
        ];
        for (mode, expected) in expect {
            for interpolation in [Interpolation::Nearest, Interpolation::Bilinear] {
                let ys = warp(mode, interpolation).apply(&xs, &shift(2.0));
                let got = values(&ys);
                for (g, e) in got.iter().zip(expected) {
                    assert!((g - e).abs() < 1e-4, "{mode:?} {interpolation:?}: {got:?}");
                }
            }
        }
    }

    #[test]
    fn bilinear_wrap_blends_across_the_seam_and_constant_blends_the_fill() {
        let xs = row(&[1.0, 2.0, 3.0, 4.0]);
        let wrapped = warp(FillMode::Wrap, Interpolation::Bilinear).apply(&xs, &shift(0.5));
        assert!(wrapped.allclose(&row(&[2.5, 1.5, 2.5, 3.5]), 1e-5, 1e-5, false));
        let constant = warp(FillMode::Constant, Interpolation::Bilinear).apply(&xs, &shift(0.5));
        assert!(constant.allclose(&row(&[5.0, 1.5, 2.5, 3.5]), 1e-5, 1e-5, false));
    }

    #[test]
    fn doubles_stay_doubles() {
        let xs = row(&[1.0, 2.0, 3.0, 4.0]).to_kind(Kind::Double);
        let ys = warp(FillMode::Reflect, Interpolation::Bilinear).apply(&xs, &shift(1.0));
        assert_eq!(ys.kind(), Kind::Double);
        let expected = row(&[1.0, 1.0, 2.0, 3.0]).to_kind(Kind::Double);
        assert!(ys.allclose(&expected, 1e-12, 1e-12, false));
    }
}
