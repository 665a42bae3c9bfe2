//! 2-D convolution, as Keras' `Conv2D`.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::activation::Activation;
use super::init::glorot_uniform;
use super::layer::{expect_rank, Layer, LayerDescription, ParamCounts};
use super::padding::Padding;
use crate::error::{Error, Result};

/// Description of a 2-D convolution: `filters` kernels of `kernel_size x kernel_size`.
///
/// # Shapes
/// - input: `(batch, in_channels, height, width)`
/// - output: `(batch, filters, height', width')`, with `height' = (height - k) / s + 1`
///   for `valid` padding and `ceil(height / s)` for `same`.
///
/// Kernels start from Glorot uniform, biases from zeros, as in Keras; `use_bias: false`
/// leaves the bias out (before a batch normalization, which has its own).
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
    /// Whether the layer adds a learned bias.
    #[serde(default = "yes")]
    pub use_bias: bool,
}

fn one() -> i64 {
    1
}

fn yes() -> bool {
    true
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
            use_bias: true,
        }
    }

    /// The same with `same` padding.
    pub fn same(self) -> Self {
        Conv2dSpec {
            padding: Padding::Same,
            ..self
        }
    }

    /// The same with a stride of `strides`.
    pub fn strided(self, strides: i64) -> Self {
        Conv2dSpec { strides, ..self }
    }

    /// The same without a bias.
    pub fn without_bias(self) -> Self {
        Conv2dSpec {
            use_bias: false,
            ..self
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
        let side = |n: i64| self.padding.output_len(n, self.kernel_size, self.strides);
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
        input[0] * self.filters * self.kernel_size * self.kernel_size
            + if self.use_bias { self.filters } else { 0 }
    }

    /// Creates `weight` `(filters, in, k, k)` and, unless `use_bias` is off, `bias`
    /// `(filters)` under `vs`.
    pub fn build(&self, vs: Path, input: &[i64]) -> Result<Conv2d> {
        self.output_shape(input)?;
        let (c, k) = (input[0], self.kernel_size);
        let init = glorot_uniform(c * k * k, self.filters * k * k);
        Ok(Conv2d {
            weight: vs.f_var("weight", &[self.filters, c, k, k], init)?,
            bias: self
                .use_bias
                .then(|| vs.f_zeros("bias", &[self.filters]))
                .transpose()?,
            kernel_size: k,
            strides: self.strides,
            padding: self.padding,
            activation: self.activation,
        })
    }
}

impl LayerDescription for Conv2dSpec {
    fn class_name(&self) -> &'static str {
        "Conv2D"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        Conv2dSpec::output_shape(self, input)
    }

    fn param_counts(&self, input: &[i64]) -> Result<ParamCounts> {
        Ok(ParamCounts::trainable(self.param_count(input)))
    }

    fn build(&self, vs: Path, input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Conv2dSpec::build(self, vs, input)?))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        let base = Conv2dSpec::new(6, 3, Activation::Relu);
        vec![
            (base.clone(), vec![2, 9, 8]),
            (base.clone().same().strided(2), vec![3, 9, 8]),
            (
                Conv2dSpec::new(4, 1, Activation::Linear)
                    .same()
                    .strided(2)
                    .without_bias(),
                vec![5, 7, 6],
            ),
            (base.strided(2), vec![2, 10, 11]),
        ]
    }
}

/// A built [`Conv2dSpec`].
#[derive(Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    kernel_size: i64,
    strides: i64,
    padding: Padding,
    activation: Activation,
}

impl Layer for Conv2d {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (xs, pad) = self
            .padding
            .prepare(xs, self.kernel_size, self.strides, 0.0);
        let s = self.strides;
        let ys = xs.conv2d(&self.weight, self.bias.as_ref(), [s, s], pad, [1, 1], 1);
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
    fn same_padding_with_a_stride_rounds_up() {
        let spec = Conv2dSpec::new(64, 1, Activation::Linear)
            .same()
            .strided(2)
            .without_bias();
        assert_eq!(spec.output_shape(&[32, 89, 88]).unwrap(), [64, 45, 44]);
        assert_eq!(spec.param_count(&[32, 89, 88]), 32 * 64);
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
        let bias = layer.bias.as_ref().unwrap();
        assert_eq!(bias.abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
}
