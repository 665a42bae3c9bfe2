//! How window operations (convolutions, pooling) treat the border: Keras' `valid` and
//! `same`. TensorFlow's `same` gives `ceil(n / stride)` values per axis, with the odd extra
//! pixel, when there is one, added after the input rather than before it.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// How a convolution or pooling treats the border.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: windows that do not fit are dropped (Keras' default).
    #[default]
    Valid,
    /// Padding so that the output has `ceil(size / strides)` values per axis, the odd
    /// extra pixel after the input, as TensorFlow pads.
    Same,
}

impl Padding {
    /// Output length along an axis of `n` values for windows of `kernel` every `stride`
    /// (below 1 when a `valid` window does not fit).
    /// A kernel or stride below 1 gives 0, which callers refuse as a window that does not
    /// fit.
    pub fn output_len(self, n: i64, kernel: i64, stride: i64) -> i64 {
        if kernel < 1 || stride < 1 {
            return 0;
        }
        match self {
            Padding::Valid => (n - kernel) / stride + 1,
            Padding::Same => same_output_len(n, stride),
        }
    }

    /// `xs` ready for a window operation of `kernel` and `stride`, with the padding to pass
    /// to it (see [`same_input`]); `fill` is the value of padded pixels.
    pub(crate) fn prepare(
        self,
        xs: &Tensor,
        kernel: i64,
        stride: i64,
        fill: f64,
    ) -> (Tensor, [i64; 2]) {
        match self {
            Padding::Valid => (xs.shallow_clone(), [0, 0]),
            Padding::Same => same_input(xs, kernel, stride, fill),
        }
    }
}

/// Output length of a `same` window of any size along an axis of `n` values.
pub(crate) fn same_output_len(n: i64, stride: i64) -> i64 {
    if stride < 1 {
        return 0;
    }
    (n + stride - 1) / stride
}

/// Total padding `same` adds along an axis of `n` values.
pub(crate) fn same_total(n: i64, kernel: i64, stride: i64) -> i64 {
    let out = same_output_len(n, stride);
    ((out - 1) * stride + kernel - n).max(0)
}

/// `xs` `(batch, channels, h, w)` ready for a window operation of `kernel` and `stride` that
/// computes `same`, with the padding to pass to that operation: the operation pads itself
/// when the padding is as much before as after (every stride-1 layer), else `xs` is padded
/// here with `fill`, before the operation, which then pads nothing.
pub(crate) fn same_input(xs: &Tensor, kernel: i64, stride: i64, fill: f64) -> (Tensor, [i64; 2]) {
    let size = xs.size();
    let (th, tw) = (
        same_total(size[2], kernel, stride),
        same_total(size[3], kernel, stride),
    );
    if th % 2 == 0 && tw % 2 == 0 {
        (xs.shallow_clone(), [th / 2, tw / 2])
    } else {
        let pad = [tw / 2, tw - tw / 2, th / 2, th - th / 2];
        (xs.pad(pad, "constant", fill), [0, 0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn the_extra_pixel_goes_after() {
        assert_eq!(same_total(224, 3, 2), 1);
        assert_eq!(same_total(224, 5, 2), 3);
        assert_eq!(same_total(7, 3, 1), 2);
        assert_eq!(same_total(176, 1, 2), 0);
        let xs = Tensor::ones([1, 1, 4, 4], (Kind::Float, Device::Cpu));
        let (padded, pad) = same_input(&xs, 3, 2, -1.0);
        assert_eq!(pad, [0, 0]);
        assert_eq!(padded.size(), [1, 1, 5, 5]);
        assert_eq!(padded.double_value(&[0, 0, 0, 0]), 1.0);
        assert_eq!(padded.double_value(&[0, 0, 4, 4]), -1.0);
        let (same, pad) = same_input(&xs, 3, 1, 0.0);
        assert_eq!((same.size(), pad), (vec![1, 1, 4, 4], [1, 1]));
    }
}
