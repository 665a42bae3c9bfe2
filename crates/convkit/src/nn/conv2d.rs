//! 2-D convolution, as Keras' `Conv2D`.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::activation::Activation;
use super::init::glorot_uniform;
use super::layer::{expect_rank, Layer};
use crate::error::{Error, Result};

/// How a convolution treats the border.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: the output shrinks by `kernel_size - 1` (Keras' default).
    #[default]
    Valid,
    /// Zero padding so that a stride-1 output keeps the input's size (odd kernels).
    Same,
}

/// Description of a 2-D convolution: `filters` kernels of `kernel_size x kernel_size`.
///
/// # Shapes
/// - input: `(batch, in_channels, height, width)`
/// - output: `(batch, filters, height', width')`, with `height' = (height - k) / s + 1`
///   for `valid` padding and `ceil(height / s)` for `same`.
///
/// Kernels start from Glorot uniform, biases from zeros, as in Keras.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dSpec {
    /// Number of output channels.
    pub filters: i64,
    /// Side of the square kernel.
    pub kernel_size: i64,
    /// Step between two applications of the kernel.
    #[serde(default = "one")]
    pub strides: i64,
    /// Border handling.
    #[serde(default)]
    pub padding: Padding,
    /// Activation applied to the output.
    #[serde(default)]
    pub activation: Activation,
}

fn one() -> i64 {
    1
}

impl Conv2dSpec {
    /// A stride-1, `valid` convolution.
    pub fn new(filters: i64, kernel_size: i64, activation: Activation) -> Self {
        Conv2dSpec {
            filters,
            kernel_size,
            strides: 1,
            padding: Padding::Valid,
            activation,
        }
    }

    fn padding_pixels(&self) -> Result<i64> {
        match self.padding {
            Padding::Valid => Ok(0),
            Padding::Same if self.kernel_size % 2 == 1 && self.strides == 1 => {
                Ok(self.kernel_size / 2)
            }
            Padding::Same => Err(Error::InvalidConfig(
                "conv2d: `same` padding needs an odd kernel and stride 1".into(),
            )),
        }
    }

    /// Output shape per sample for an input of shape `(channels, height, width)`.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("conv2d", input, 3)?;
        if self.filters < 1 || self.kernel_size < 1 || self.strides < 1 {
            return Err(Error::InvalidConfig(format!(
                "conv2d: invalid settings {self:?}"
            )));
        }
        let pad = self.padding_pixels()?;
        let side = |n: i64| (n + 2 * pad - self.kernel_size) / self.strides + 1;
        let (h, w) = (side(input[1]), side(input[2]));
        if h < 1 || w < 1 {
            return Err(Error::InvalidConfig(format!(
                "conv2d: a {k}x{k} kernel does not fit an input of shape {input:?}",
                k = self.kernel_size
            )));
        }
        Ok(vec![self.filters, h, w])
    }

    /// Number of trainable values: kernel plus bias.
    pub fn param_count(&self, input: &[i64]) -> i64 {
        input[0] * self.filters * self.kernel_size * self.kernel_size + self.filters
    }

    /// Creates `weight` `(filters, in, k, k)` and `bias` `(filters)` under `vs`.
    pub fn build(&self, vs: Path, input: &[i64]) -> Result<Conv2d> {
        self.output_shape(input)?;
        let (c, k) = (input[0], self.kernel_size);
        let init = glorot_uniform(c * k * k, self.filters * k * k);
        Ok(Conv2d {
            weight: vs.f_var("weight", &[self.filters, c, k, k], init)?,
            bias: vs.f_zeros("bias", &[self.filters])?,
            strides: self.strides,
            padding: self.padding_pixels()?,
            activation: self.activation,
        })
    }
}

/// A built [`Conv2dSpec`].
#[derive(Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    strides: i64,
    padding: i64,
    activation: Activation,
}

impl Layer for Conv2d {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        let ys = xs.conv2d(
            &self.weight,
            Some(&self.bias),
            [self.strides, self.strides],
            [self.padding, self.padding],
            [1, 1],
            1,
        );
        self.activation.apply_owned(ys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn valid_padding_shrinks_by_kernel_minus_one() {
        let spec = Conv2dSpec::new(32, 3, Activation::Relu);
        assert_eq!(spec.output_shape(&[1, 28, 28]).unwrap(), [32, 26, 26]);
        assert_eq!(spec.param_count(&[1, 28, 28]), 320);
    }

    #[test]
    fn same_padding_keeps_the_size() {
        let spec = Conv2dSpec {
            padding: Padding::Same,
            ..Conv2dSpec::new(64, 3, Activation::Relu)
        };
        assert_eq!(spec.output_shape(&[3, 180, 180]).unwrap(), [64, 180, 180]);
    }

    #[test]
    fn too_small_an_input_is_an_error() {
        let spec = Conv2dSpec::new(8, 5, Activation::Linear);
        let err = spec.output_shape(&[1, 3, 3]).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn built_layer_matches_the_declared_shape_and_init() {
        let vs = VarStore::new(Device::Cpu);
        let spec = Conv2dSpec::new(4, 3, Activation::Relu);
        let layer = spec.build(vs.root(), &[2, 9, 9]).unwrap();
        let ys = layer.forward(
            &Tensor::ones([5, 2, 9, 9], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(ys.size(), [5, 4, 7, 7]);
        let limit = (6.0f64 / (2 * 9 + 4 * 9) as f64).sqrt();
        assert!(layer.weight.abs().max().double_value(&[]) <= limit);
        assert_eq!(layer.bias.abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
}
