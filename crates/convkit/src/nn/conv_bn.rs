//! Convolution without bias, batch norm, optional ReLU6: the unit of MobileNet-style nets.

use tch::{nn::Path, Tensor};

use super::batch_norm::BatchNorm2d;
use super::init::glorot_uniform;
use super::layer::{Layer, ParamCounts};
use super::padding::same_input;
use crate::error::Result;

/// How a backbone's convolutions pad their input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BorderPadding {
    /// `(k - 1) / 2` on every side (PyTorch models).
    Symmetric,
    /// TensorFlow's `SAME`: a total of `max((ceil(n / s) - 1) s + k - n, 0)`, half of it
    /// (rounded down) before and the rest after (checkpoints converted from TensorFlow).
    TfSame,
}

/// Settings of a [`ConvBn`].
#[derive(Clone, Copy, Debug)]
pub struct ConvBnSpec {
    /// Input channels.
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Side of the square kernel.
    pub kernel_size: i64,
    /// Stride.
    pub stride: i64,
    /// Depthwise (one kernel per channel, `in == out`) rather than a full convolution.
    pub depthwise: bool,
    /// ReLU6 after the batch norm.
    pub relu6: bool,
    /// Border handling.
    pub padding: BorderPadding,
    /// Batch-norm epsilon.
    pub bn_eps: f64,
}

impl ConvBnSpec {
    /// A full convolution followed by batch norm (eps 1e-5) and ReLU6, padded
    /// symmetrically: PyTorch's defaults.
    pub fn new(in_channels: i64, out_channels: i64, kernel_size: i64, stride: i64) -> Self {
        ConvBnSpec {
            in_channels,
            out_channels,
            kernel_size,
            stride,
            depthwise: false,
            relu6: true,
            padding: BorderPadding::Symmetric,
            bn_eps: 1e-5,
        }
    }

    /// The same as a depthwise convolution (`out_channels` must equal `in_channels`).
    pub fn depthwise(self) -> Self {
        ConvBnSpec {
            depthwise: true,
            ..self
        }
    }

    /// The same without the ReLU6 (a linear projection).
    pub fn linear(self) -> Self {
        ConvBnSpec {
            relu6: false,
            ..self
        }
    }

    /// The same as a TensorFlow checkpoint computes it: `SAME` padding and batch-norm eps
    /// 1e-3.
    pub fn tensorflow(self) -> Self {
        ConvBnSpec {
            padding: BorderPadding::TfSame,
            bn_eps: 1e-3,
            ..self
        }
    }

    /// Values in the kernel and the batch norm's scale and shift (trainable), and in its
    /// statistics (not), known without building.
    pub fn param_counts(&self) -> ParamCounts {
        let in_per_group = if self.depthwise { 1 } else { self.in_channels };
        let k = self.kernel_size;
        ParamCounts {
            trainable: self.out_channels * in_per_group * k * k + 2 * self.out_channels,
            non_trainable: 2 * self.out_channels,
        }
    }
}

/// A built [`ConvBnSpec`]: `conv` (no bias) and `bn` under their own names.
///
/// # Shapes
/// - input: `(batch, in_channels, h, w)`
/// - output: `(batch, out_channels, ceil(h / stride), ceil(w / stride))`
#[derive(Debug)]
pub struct ConvBn {
    weight: Tensor,
    bn: BatchNorm2d,
    spec: ConvBnSpec,
}

impl ConvBn {
    /// Creates the kernel as `conv.weight` and the batch norm under `bn`, where the caller
    /// names both paths (checkpoints name them differently).
    pub fn new(conv: &Path, bn: &Path, spec: ConvBnSpec) -> Result<ConvBn> {
        let k = spec.kernel_size;
        let in_per_group = if spec.depthwise { 1 } else { spec.in_channels };
        let init = glorot_uniform(in_per_group * k * k, spec.out_channels * k * k);
        Ok(ConvBn {
            weight: conv.f_var("weight", &[spec.out_channels, in_per_group, k, k], init)?,
            bn: BatchNorm2d::new(bn, spec.out_channels, spec.bn_eps)?,
            spec,
        })
    }

    fn convolve(&self, xs: &Tensor, kernel: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let s = &self.spec;
        let groups = if s.depthwise { s.in_channels } else { 1 };
        let symmetric = (s.kernel_size - 1) / 2;
        let (xs, pad) = match s.padding {
            BorderPadding::Symmetric => (xs.shallow_clone(), [symmetric, symmetric]),
            BorderPadding::TfSame => same_input(xs, s.kernel_size, s.stride, 0.0),
        };
        xs.conv2d(kernel, bias, [s.stride, s.stride], pad, [1, 1], groups)
    }
}

impl Layer for ConvBn {
    /// Convolution, batch norm, then ReLU6 when the spec says so. The batch norm is folded
    /// into the convolution ([`BatchNorm2d::fold_into`]): one convolution with a bias.
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (kernel, bias) = self.bn.fold_into(&self.weight);
        let ys = self.convolve(xs, &kernel, Some(&bias));
        if self.spec.relu6 {
            super::activation::clamp_relu6(ys)
        } else {
            ys
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::padding::same_total;
    use tch::{nn::VarStore, Device, Kind};

    /// A layer of `spec` whose convolution lives under `name` and batch norm under
    /// `<name>_bn` in `vs`.
    fn conv_bn_named(vs: &VarStore, name: &str, spec: ConvBnSpec) -> ConvBn {
        ConvBn::new(
            &vs.root().sub(name),
            &vs.root().sub(format!("{name}_bn")),
            spec,
        )
        .unwrap()
    }

    #[test]
    fn folded_batch_norm_equals_the_unfolded_pair() {
        let vs = VarStore::new(Device::Cpu);
        for depthwise in [false, true] {
            let mut spec = ConvBnSpec::new(8, 8, 3, 2).tensorflow();
            if depthwise {
                spec = spec.depthwise();
            }
            let layer = conv_bn_named(&vs, &format!("dw{depthwise}"), spec);
            // statistics and affine terms far from the identity, as a trained net has
            tch::no_grad(|| {
                for (key, t) in vs.variables() {
                    let lo = match key.rsplit('.').next() {
                        Some("weight") if key.contains("_bn") => 0.5,
                        Some("running_var") => 0.1,
                        _ if key.contains("_bn") => -1.0,
                        _ => continue,
                    };
                    let fresh = Tensor::rand([8], (Kind::Float, Device::Cpu)) * 1.5 + lo;
                    t.shallow_clone().copy_(&fresh);
                }
            });
            let xs = Tensor::randn([2, 8, 13, 13], (Kind::Float, Device::Cpu));
            let unfolded = layer
                .bn
                .forward(&layer.convolve(&xs, &layer.weight, None))
                .clamp(0.0, 6.0);
            let folded = layer.forward(&xs, false);
            let diff = (&folded - &unfolded).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "depthwise {depthwise}: max difference {diff}");
        }
    }

    #[test]
    fn tf_same_without_a_copy_equals_explicit_padding() {
        let vs = VarStore::new(Device::Cpu);
        for (kernel, stride, side) in [(3, 1, 12), (5, 1, 11), (3, 2, 12), (5, 2, 13), (3, 2, 13)] {
            let spec = ConvBnSpec {
                relu6: false,
                ..ConvBnSpec::new(4, 4, kernel, stride).tensorflow()
            };
            let name = format!("k{kernel}s{stride}n{side}");
            let layer = conv_bn_named(&vs, &name, spec);
            let xs = Tensor::randn([1, 4, side, side], (Kind::Float, Device::Cpu));
            let total = same_total(side, kernel, stride);
            let padded =
                xs.constant_pad_nd([total / 2, total - total / 2, total / 2, total - total / 2]);
            let explicit = padded.conv2d(
                &layer.weight,
                None::<&Tensor>,
                [stride, stride],
                [0, 0],
                [1, 1],
                1,
            );
            let got = layer.convolve(&xs, &layer.weight, None);
            assert_eq!(got.size(), explicit.size(), "{name}");
            assert!(got.allclose(&explicit, 1e-5, 1e-5, false), "{name}");
        }
    }

    #[test]
    fn output_size_is_input_over_stride_rounded_up() {
        let vs = VarStore::new(Device::Cpu);
        for padding in [BorderPadding::Symmetric, BorderPadding::TfSame] {
            let spec = ConvBnSpec {
                in_channels: 8,
                out_channels: 8,
                kernel_size: 5,
                stride: 2,
                depthwise: true,
                relu6: true,
                padding,
                bn_eps: 1e-3,
            };
            let layer = ConvBn::new(&vs.root().sub("c"), &vs.root().sub("b"), spec).unwrap();
            let ys = layer.forward(
                &Tensor::randn([2, 8, 45, 45], (Kind::Float, Device::Cpu)),
                false,
            );
            assert_eq!(ys.size(), [2, 8, 23, 23]);
            assert!(ys.max().double_value(&[]) <= 6.0 && ys.min().double_value(&[]) >= 0.0);
        }
    }
}
