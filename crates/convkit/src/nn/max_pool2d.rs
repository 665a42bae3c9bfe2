//! 2-D max pooling, as Keras' `MaxPooling2D`.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::layer::{expect_rank, Layer};
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
}

impl MaxPool2dSpec {
    /// Non-overlapping `pool_size x pool_size` windows.
    pub fn new(pool_size: i64) -> Self {
        MaxPool2dSpec {
            pool_size,
            strides: None,
        }
    }

    fn stride(&self) -> i64 {
        self.strides.unwrap_or(self.pool_size)
    }

    /// Output shape per sample for an input of shape `(channels, height, width)`.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("max_pooling2d", input, 3)?;
        let (p, s) = (self.pool_size, self.stride());
        if p < 1 || s < 1 || input[1] < p || input[2] < p {
            return Err(Error::InvalidConfig(format!(
                "max_pooling2d: a {p}x{p} window (stride {s}) does not fit an input of shape {input:?}"
            )));
        }
        Ok(vec![
            input[0],
            (input[1] - p) / s + 1,
            (input[2] - p) / s + 1,
        ])
    }

    /// Builds the (parameter-free) layer.
    pub fn build(&self) -> MaxPool2d {
        MaxPool2d {
            pool_size: self.pool_size,
            stride: self.stride(),
        }
    }
}

/// A built [`MaxPool2dSpec`].
#[derive(Debug)]
pub struct MaxPool2d {
    pool_size: i64,
    stride: i64,
}

impl Layer for MaxPool2d {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (p, s) = (self.pool_size, self.stride);
        xs.max_pool2d([p, p], [s, s], [0, 0], [1, 1], false)
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
    fn takes_the_window_maximum() {
        let xs = Tensor::from_slice(&[1.0f32, 5.0, 2.0, 3.0]).reshape([1, 1, 2, 2]);
        let ys = MaxPool2dSpec::new(2).build().forward(&xs, false);
        assert_eq!(ys.size(), [1, 1, 1, 1]);
        assert_eq!(ys.double_value(&[0, 0, 0, 0]), 5.0);
    }
}
