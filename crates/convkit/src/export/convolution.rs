//! Convolutions as ONNX `Conv`: Keras' `Conv2D` and `SeparableConv2D` (a depthwise `Conv`
//! with one group per input channel, then a 1x1 `Conv`), with TensorFlow's `same` padding
//! written as `Conv`'s own, possibly uneven, `pads`.

use super::activation;
use super::lower::{Lowering, Value};
use super::onnx_graph::Attr;
use crate::error::{Error, Result};
use crate::nn::padding::same_total;
use crate::nn::{Activation, Conv2dSpec, Padding, SeparableConv2dSpec};

/// ONNX `pads` (`[top, left, bottom, right]`) of a window operation of `kernel` every
/// `stride` pixels on a `(c, h, w)` input: none for `valid`; for `same`, TensorFlow's
/// total with the odd pixel after, as `nn::padding` pads.
pub fn window_pads(padding: Padding, shape: &[i64], kernel: i64, stride: i64) -> [i64; 4] {
    match padding {
        Padding::Valid => [0; 4],
        Padding::Same => {
            let th = same_total(shape[1], kernel, stride);
            let tw = same_total(shape[2], kernel, stride);
            [th / 2, tw / 2, th - th / 2, tw - tw / 2]
        }
    }
}

/// The output side of a window of `kernel` every `stride` pixels along an axis of `n`
/// values padded with `before` and `after`.
pub fn output_side(n: i64, kernel: i64, stride: i64, before: i64, after: i64) -> i64 {
    (n + before + after - kernel) / stride + 1
}

/// Settings of one ONNX `Conv`.
#[derive(Clone, Copy, Debug)]
pub struct ConvSettings {
    /// Output channels.
    pub out_channels: i64,
    /// Side of the square kernel.
    pub kernel: i64,
    /// Stride along both axes.
    pub stride: i64,
    /// `[top, left, bottom, right]`.
    pub pads: [i64; 4],
    /// Groups: 1 for a full convolution, the input channels for a depthwise one.
    pub group: i64,
}

/// A `Conv` node on `x` `(batch, c, h, w)` with the graph initializers `weight` and
/// `bias`.
pub fn conv(
    cx: &mut Lowering,
    name: &str,
    x: &Value,
    weight: &str,
    bias: Option<&str>,
    s: ConvSettings,
) -> Value {
    let mut inputs = vec![x.name.as_str(), weight];
    inputs.extend(bias);
    let y = cx.graph.node(
        name,
        "Conv",
        &inputs,
        &[
            ("kernel_shape", Attr::Ints(vec![s.kernel, s.kernel])),
            ("strides", Attr::Ints(vec![s.stride, s.stride])),
            ("pads", Attr::Ints(s.pads.to_vec())),
            ("dilations", Attr::Ints(vec![1, 1])),
            ("group", Attr::Int(s.group)),
        ],
    );
    let [top, left, bottom, right] = s.pads;
    let shape = vec![
        s.out_channels,
        output_side(x.shape[1], s.kernel, s.stride, top, bottom),
        output_side(x.shape[2], s.kernel, s.stride, left, right),
    ];
    Value::new(y, shape)
}

/// Fails unless the lowered shape is the one the description computes (a lowering that
/// pads differently from the layer would show here first).
pub fn check_shape(name: &str, got: &Value, expected: &[i64]) -> Result<()> {
    if got.shape == expected {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "onnx export: layer `{name}` lowers to shape {:?}, its description says {expected:?}",
            got.shape
        )))
    }
}

/// The `Conv2D` layer `name` on `x`. Its activation is applied even on the last layer, as
/// the built layer applies it.
pub fn lower_conv2d(cx: &mut Lowering, name: &str, spec: &Conv2dSpec, x: &Value) -> Result<Value> {
    let expected = spec.output_shape(&x.shape)?;
    let (k, c) = (spec.kernel_size, x.shape[0]);
    let weight = format!("{name}.weight");
    let w = cx.parameter_initializer(&weight, &[spec.filters, c, k, k])?;
    let b = if spec.use_bias {
        let bias = format!("{name}.bias");
        Some(cx.parameter_initializer(&bias, &[spec.filters])?)
    } else {
        None
    };
    let settings = ConvSettings {
        out_channels: spec.filters,
        kernel: k,
        stride: spec.strides,
        pads: window_pads(spec.padding, &x.shape, k, spec.strides),
        group: 1,
    };
    let y = conv(cx, name, x, &w, b.as_deref(), settings);
    check_shape(name, &y, &expected)?;
    Ok(activation::lower(cx, name, spec.activation, &y))
}

/// The `SeparableConv2D` layer `name` on `x`; `skip_activation` leaves a final softmax or
/// sigmoid to the model.
pub fn lower_separable_conv2d(
    cx: &mut Lowering,
    name: &str,
    spec: &SeparableConv2dSpec,
    x: &Value,
    skip_activation: bool,
) -> Result<Value> {
    use crate::nn::LayerDescription;
    let expected = LayerDescription::output_shape(spec, &x.shape)?;
    let (k, c) = (spec.kernel_size, x.shape[0]);
    let depthwise = c * spec.depth_multiplier;
    let dw_name = format!("{name}.depthwise_kernel");
    let pw_name = format!("{name}.pointwise_kernel");
    let dw = cx.parameter_initializer(&dw_name, &[depthwise, 1, k, k])?;
    let pw = cx.parameter_initializer(&pw_name, &[spec.filters, depthwise, 1, 1])?;
    let hidden = conv(
        cx,
        &format!("{name}/depthwise"),
        x,
        &dw,
        None,
        ConvSettings {
            out_channels: depthwise,
            kernel: k,
            stride: spec.strides,
            pads: window_pads(spec.padding, &x.shape, k, spec.strides),
            group: c,
        },
    );
    let b = if spec.use_bias {
        let bias = format!("{name}.bias");
        Some(cx.parameter_initializer(&bias, &[spec.filters])?)
    } else {
        None
    };
    let y = conv(
        cx,
        &format!("{name}/pointwise"),
        &hidden,
        &pw,
        b.as_deref(),
        ConvSettings {
            out_channels: spec.filters,
            kernel: 1,
            stride: 1,
            pads: [0; 4],
            group: 1,
        },
    );
    check_shape(name, &y, &expected)?;
    let a = if skip_activation {
        Activation::Linear
    } else {
        spec.activation
    };
    Ok(activation::lower(cx, name, a, &y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pixel_after() {
        assert_eq!(window_pads(Padding::Same, &[1, 224, 7], 3, 2), [0, 1, 1, 1]);
        assert_eq!(window_pads(Padding::Same, &[1, 6, 6], 3, 1), [1, 1, 1, 1]);
        assert_eq!(window_pads(Padding::Valid, &[1, 6, 6], 3, 1), [0; 4]);
        assert_eq!(output_side(224, 3, 2, 0, 1), 112);
    }
}
