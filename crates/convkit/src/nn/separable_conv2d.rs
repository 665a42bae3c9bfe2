//! Depthwise separable convolution, as Keras' `SeparableConv2D`: a depthwise convolution
//! (one kernel per input channel), then a 1x1 pointwise convolution mixing channels.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::activation::Activation;
use super::init::glorot_uniform;
use super::layer::{expect_rank, Layer, LayerDescription, ParamCounts};
use super::padding::Padding;
use crate::error::{Error, Result};

/// Description of a separable convolution with `filters` outputs.
///
/// # Shapes
/// - input: `(batch, in, height, width)`
/// - output: `(batch, filters, height', width')`, `height'` as for [`super::Conv2dSpec`]
///
/// Parameters follow Keras' layout: `depthwise_kernel` (`in * depth_multiplier` kernels of
/// `k x k`, stored `(in * depth_multiplier, 1, k, k)`), `pointwise_kernel` (`(filters, in *
/// depth_multiplier, 1, 1)`) and `bias` (`filters`) unless `use_bias` is off: `k * k * in *
/// dm + in * dm * filters (+ filters)` values. Both kernels start from Glorot uniform with
/// Keras' fans, the bias from zeros.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeparableConv2dSpec {
    /// Number of output channels.
    pub filters: i64,
    /// Side of the square depthwise kernel.
    pub kernel_size: i64,
    /// Step of the depthwise convolution.
    #[serde(default = "one")]
    pub strides: i64,
    /// Border handling of the depthwise convolution.
    #[serde(default)]
    pub padding: Padding,
    /// Depthwise outputs per input channel.
    #[serde(default = "one")]
    pub depth_multiplier: i64,
    /// Activation applied to the output.
    #[serde(default)]
    pub activation: Activation,
    /// Whether the pointwise convolution adds a learned bias.
    #[serde(default = "yes")]
    pub use_bias: bool,
}

fn one() -> i64 {
    1
}

fn yes() -> bool {
    true
}

impl SeparableConv2dSpec {
    /// A stride-1 separable convolution with `same` padding, no activation and no bias:
    /// how Xception uses it, before a batch normalization.
    pub fn xception(filters: i64, kernel_size: i64) -> Self {
        SeparableConv2dSpec {
            filters,
            kernel_size,
            strides: 1,
            padding: Padding::Same,
            depth_multiplier: 1,
            activation: Activation::Linear,
            use_bias: false,
        }
    }

    fn depthwise_channels(&self, input: &[i64]) -> i64 {
        input[0] * self.depth_multiplier
    }
}

/// A built [`SeparableConv2dSpec`].
#[derive(Debug)]
pub struct SeparableConv2d {
    depthwise_kernel: Tensor,
    pointwise_kernel: Tensor,
    bias: Option<Tensor>,
    in_channels: i64,
    kernel_size: i64,
    strides: i64,
    padding: Padding,
    activation: Activation,
}

impl Layer for SeparableConv2d {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (xs, pad) = self
            .padding
            .prepare(xs, self.kernel_size, self.strides, 0.0);
        let s = self.strides;
        let none = None::<&Tensor>;
        let depthwise = xs.conv2d(
            &self.depthwise_kernel,
            none,
            [s, s],
            pad,
            [1, 1],
            self.in_channels,
        );
        let ys = depthwise.conv2d(
            &self.pointwise_kernel,
            self.bias.as_ref(),
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        );
        self.activation.apply_owned(ys)
    }
}

impl LayerDescription for SeparableConv2dSpec {
    fn class_name(&self) -> &'static str {
        "SeparableConv2D"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("separable_conv2d", input, 3)?;
        let (k, s) = (self.kernel_size, self.strides);
        if self.filters < 1 || k < 1 || s < 1 || self.depth_multiplier < 1 {
            return Err(Error::InvalidConfig(format!(
                "separable_conv2d: invalid settings {self:?}"
            )));
        }
        let side = |n: i64| self.padding.output_len(n, k, s);
        let (h, w) = (side(input[1]), side(input[2]));
        if h < 1 || w < 1 {
            return Err(Error::InvalidConfig(format!(
                "separable_conv2d: a {k}x{k} kernel does not fit an input of shape {input:?}"
            )));
        }
        Ok(vec![self.filters, h, w])
    }

    fn param_counts(&self, input: &[i64]) -> Result<ParamCounts> {
        let depthwise = self.depthwise_channels(input);
        let bias = if self.use_bias { self.filters } else { 0 };
        Ok(ParamCounts::trainable(
            self.kernel_size * self.kernel_size * depthwise + depthwise * self.filters + bias,
        ))
    }

    fn build(&self, vs: Path, input: &[i64], skip_activation: bool) -> Result<Box<dyn Layer>> {
        self.output_shape(input)?;
        let (c, k, m) = (input[0], self.kernel_size, self.depth_multiplier);
        let depthwise = c * m;
        Ok(Box::new(SeparableConv2d {
            // Keras' fans for a (k, k, in, multiplier) kernel
            depthwise_kernel: vs.f_var(
                "depthwise_kernel",
                &[depthwise, 1, k, k],
                glorot_uniform(k * k * c, k * k * m),
            )?,
            pointwise_kernel: vs.f_var(
                "pointwise_kernel",
                &[self.filters, depthwise, 1, 1],
                glorot_uniform(depthwise, self.filters),
            )?,
            bias: self
                .use_bias
                .then(|| vs.f_zeros("bias", &[self.filters]))
                .transpose()?,
            in_channels: c,
            kernel_size: k,
            strides: self.strides,
            padding: self.padding,
            activation: if skip_activation {
                Activation::Linear
            } else {
                self.activation
            },
        }))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        let relu = SeparableConv2dSpec {
            padding: Padding::Valid,
            activation: Activation::Relu,
            use_bias: true,
            depth_multiplier: 2,
            ..SeparableConv2dSpec::xception(5, 3)
        };
        vec![
            (SeparableConv2dSpec::xception(8, 3), vec![4, 7, 6]),
            (relu.clone(), vec![3, 8, 8]),
            (SeparableConv2dSpec { strides: 2, ..relu }, vec![3, 9, 8]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn counts_follow_keras() {
        // keras.layers.SeparableConv2D(64, 3, padding="same", use_bias=False) on 32 channels
        let spec = SeparableConv2dSpec::xception(64, 3);
        assert_eq!(
            spec.param_counts(&[32, 88, 88]).unwrap().trainable,
            9 * 32 + 32 * 64
        );
        let with_bias = SeparableConv2dSpec {
            use_bias: true,
            ..spec.clone()
        };
        assert_eq!(
            with_bias.param_counts(&[32, 88, 88]).unwrap().trainable,
            9 * 32 + 32 * 64 + 64
        );
        assert_eq!(spec.output_shape(&[32, 88, 87]).unwrap(), [64, 88, 87]);
    }

    #[test]
    fn equals_a_depthwise_then_a_pointwise_convolution() {
        let vs = VarStore::new(Device::Cpu);
        let spec = SeparableConv2dSpec::xception(4, 3);
        let layer = spec.build(vs.root(), &[3, 6, 6], false).unwrap();
        let xs = Tensor::randn([2, 3, 6, 6], (Kind::Float, Device::Cpu));
        let vars = vs.variables();
        let none = None::<&Tensor>;
        let expected = xs
            .conv2d(&vars["depthwise_kernel"], none, [1, 1], [1, 1], [1, 1], 3)
            .conv2d(&vars["pointwise_kernel"], none, [1, 1], [0, 0], [1, 1], 1);
        assert!(layer
            .forward(&xs, false)
            .allclose(&expected, 1e-5, 1e-5, false));
    }
}
