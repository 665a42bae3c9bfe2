//! A backbone's convolution + batch norm (+ ReLU6) unit as one ONNX `Conv` (+ `Clip`): the
//! batch norm folded into the kernel and a bias exactly as the built unit folds it at every
//! step (`nn::batch_norm::BatchNorm2d::fold_into`), so both compute with the same numbers.

use tch::Tensor;

use super::activation::lower_relu6;
use super::convolution::{conv, output_side, ConvSettings};
use super::lower::{Lowering, Value};
use crate::error::Result;
use crate::models::inverted_residual_net::ConvBnKeys;
use crate::nn::conv_bn::{BorderPadding, ConvBnSpec};
use crate::nn::padding::same_total;

/// `[top, left, bottom, right]` pads of `spec` on an input `(c, h, w)`.
fn pads(spec: &ConvBnSpec, shape: &[i64]) -> [i64; 4] {
    let (k, s) = (spec.kernel_size, spec.stride);
    match spec.padding {
        BorderPadding::Symmetric => [(k - 1) / 2; 4],
        BorderPadding::TfSame => {
            let (th, tw) = (same_total(shape[1], k, s), same_total(shape[2], k, s));
            [th / 2, tw / 2, th - th / 2, tw - tw / 2]
        }
    }
}

/// `kernel * s` and `beta - mean * s` with `s = gamma / sqrt(var + eps)` per output
/// channel: the same operations, in the same order, as the built unit.
fn fold(
    kernel: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> (Tensor, Tensor) {
    let scale = gamma * (var + eps).rsqrt();
    let folded_kernel = kernel * scale.view([-1, 1, 1, 1]);
    let folded_bias = beta - mean * &scale;
    (folded_kernel, folded_bias)
}

/// The unit `spec` on `x`, its kernel at `<prefix>.<keys.conv>.weight` and its batch norm
/// under `<prefix>.<keys.bn>`; `name` names the nodes.
pub fn lower(
    cx: &mut Lowering,
    prefix: &str,
    keys: &ConvBnKeys,
    spec: &ConvBnSpec,
    x: &Value,
) -> Result<Value> {
    let (k, cout) = (spec.kernel_size, spec.out_channels);
    let in_per_group = if spec.depthwise { 1 } else { spec.in_channels };
    let conv_key = format!("{prefix}.{}", keys.conv);
    let bn_key = format!("{prefix}.{}", keys.bn);
    let kernel = cx.parameter_shaped(&format!("{conv_key}.weight"), &[cout, in_per_group, k, k])?;
    let mut bn = Vec::with_capacity(4);
    for field in ["weight", "bias", "running_mean", "running_var"] {
        bn.push(cx.parameter_shaped(&format!("{bn_key}.{field}"), &[cout])?);
    }
    let (kernel, bias) =
        tch::no_grad(|| fold(&kernel, &bn[0], &bn[1], &bn[2], &bn[3], spec.bn_eps));
    let w = cx
        .graph
        .initializer_tensor(&format!("{conv_key}.weight_folded"), &kernel)?;
    let b = cx
        .graph
        .initializer_tensor(&format!("{conv_key}.bias_folded"), &bias)?;
    let settings = ConvSettings {
        out_channels: cout,
        kernel: k,
        stride: spec.stride,
        pads: pads(spec, &x.shape),
        group: if spec.depthwise { spec.in_channels } else { 1 },
    };
    let y = conv(cx, &conv_key, x, &w, Some(&b), settings);
    debug_assert_eq!(
        y.shape[1],
        output_side(
            x.shape[1],
            k,
            spec.stride,
            settings.pads[0],
            settings.pads[2]
        )
    );
    Ok(if spec.relu6 {
        lower_relu6(cx, &conv_key, &y)
    } else {
        y
    })
}
