//! 2-D max pooling, as Keras' `MaxPooling2D`.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use tch::nn::Path;

use super::layer::{expect_rank, Layer, LayerDescription, ParamCounts};
use super::padding::Padding;
use crate::error::{Error, Result};

/// Description of a max pooling over `pool_size x pool_size` windows.
///
/// # Shapes
/// - input: `(batch, channels, height, width)`
/// - output: `(batch, channels, floor((height - p) / s) + 1, ...)` with `s` the stride
///   (the pool size unless set), as Keras' `valid` padding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxPool2dSpec {
    /// Side of the square window.
    pub pool_size: i64,
    /// Step between windows; `None` means `pool_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strides: Option<i64>,
    /// Border handling: `valid` (Keras' default) drops windows that do not fit, `same`
    /// pads with `-inf` to `ceil(size / strides)` outputs.
    #[serde(default, skip_serializing_if = "is_valid")]
    pub padding: Padding,
}

fn is_valid(padding: &Padding) -> bool {
    *padding == Padding::Valid
}

impl MaxPool2dSpec {
    /// Non-overlapping `pool_size x pool_size` windows.
    pub fn new(pool_size: i64) -> Self {
        MaxPool2dSpec {
            pool_size,
            strides: None,
            padding: Padding::Valid,
        }
    }

    /// Windows of `pool_size` every `strides` pixels, padded `same` (Xception's pooling:
    /// `MaxPooling2D(3, strides=2, padding="same")`).
    pub fn same(pool_size: i64, strides: i64) -> Self {
        MaxPool2dSpec {
            pool_size,
            strides: Some(strides),
            padding: Padding::Same,
        }
    }

    fn stride(&self) -> i64 {
        self.strides.unwrap_or(self.pool_size)
    }

    /// Output shape per sample for an input of shape `(channels, height, width)`.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("max_pooling2d", input, 3)?;
        let (p, s) = (self.pool_size, self.stride());
        let (h, w) = (
            self.padding.output_len(input[1], p, s),
            self.padding.output_len(input[2], p, s),
        );
        if p < 1 || s < 1 || h < 1 || w < 1 {
            return Err(Error::InvalidConfig(format!(
                "max_pooling2d: a {p}x{p} window (stride {s}) does not fit an input of shape {input:?}"
            )));
        }
        Ok(vec![input[0], h, w])
    }

    /// Builds the (parameter-free) layer.
    pub fn build(&self) -> MaxPool2d {
        MaxPool2d {
            pool_size: self.pool_size,
            stride: self.stride(),
            padding: self.padding,
        }
    }
}

/// A built [`MaxPool2dSpec`].
#[derive(Debug)]
pub struct MaxPool2d {
    pool_size: i64,
    stride: i64,
    padding: Padding,
}

impl Layer for MaxPool2d {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (p, s) = (self.pool_size, self.stride);
        let (xs, pad) = self.padding.prepare(xs, p, s, f64::NEG_INFINITY);
        xs.max_pool2d([p, p], [s, s], pad, [1, 1], false)
    }
}

impl LayerDescription for MaxPool2dSpec {
    fn class_name(&self) -> &'static str {
        "MaxPooling2D"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        MaxPool2dSpec::output_shape(self, input)
    }

    fn param_counts(&self, _input: &[i64]) -> Result<ParamCounts> {
        Ok(ParamCounts::default())
    }

    fn build(&self, _vs: Path, input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        MaxPool2dSpec::output_shape(self, input)?;
        Ok(Box::new(MaxPool2dSpec::build(self)))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        vec![
            (MaxPool2dSpec::new(2), vec![3, 9, 8]),
            (MaxPool2dSpec::same(3, 2), vec![2, 9, 8]),
            (MaxPool2dSpec::same(3, 2), vec![2, 1, 2]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_and_floors_odd_sides() {
        let spec = MaxPool2dSpec::new(2);
        assert_eq!(spec.output_shape(&[32, 26, 26]).unwrap(), [32, 13, 13]);
        assert_eq!(spec.output_shape(&[64, 11, 11]).unwrap(), [64, 5, 5]);
    }

    #[test]
    fn same_pads_with_minus_infinity_after() {
        let spec = MaxPool2dSpec::same(3, 2);
        assert_eq!(spec.output_shape(&[8, 176, 175]).unwrap(), [8, 88, 88]);
        let xs = -Tensor::arange(16, (tch::Kind::Float, tch::Device::Cpu)).reshape([1, 1, 4, 4]);
        let ys = spec.build().forward(&xs, false);
        assert_eq!(ys.size(), [1, 1, 2, 2]);
        // windows start at 0 and 2; the last one covers rows and columns 2, 3 and the pad
        assert_eq!(ys.double_value(&[0, 0, 1, 1]), -10.0);
        assert_eq!(ys.double_value(&[0, 0, 0, 0]), 0.0);
    }

    #[test]
    fn takes_the_window_maximum() {
        let xs = Tensor::from_slice(&[1.0f32, 5.0, 2.0, 3.0]).reshape([1, 1, 2, 2]);
        let ys = MaxPool2dSpec::new(2).build().forward(&xs, false);
        assert_eq!(ys.size(), [1, 1, 1, 1]);
        assert_eq!(ys.double_value(&[0, 0, 0, 0]), 5.0);
    }
}
