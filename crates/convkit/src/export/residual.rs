//! A residual block as ONNX nodes: the block's layers, lowered one by one, then `Add` of
//! the block's input, through the 1x1 projection `Conv` when the block changes the shape.

use super::convolution::{check_shape, conv, ConvSettings};
use super::lower::{lower_layer, Lowering, Value};
use crate::error::Result;
use crate::models::ResidualSpec;
use crate::nn::LayerDescription;

/// The residual block `name` on `x`; its inner layers' parameters are under
/// `<name>.<inner name>`, the projection's under `<name>.projection`.
pub fn lower(cx: &mut Lowering, name: &str, spec: &ResidualSpec, x: &Value) -> Result<Value> {
    let output = spec.output_shape(&x.shape)?;
    let mut y = x.clone();
    for layer in &spec.layers {
        y = lower_layer(
            cx,
            &format!("{name}.{}", layer.name),
            &layer.spec,
            &y,
            false,
        )?;
    }
    let skip = if x.shape == output {
        x.clone()
    } else {
        // the stride that maps the input's size to the output's, as the block computes it
        let stride = (x.shape[1] + output[1] - 1) / output[1];
        let key = format!("{name}.projection.weight");
        let w = cx.parameter_initializer(&key, &[output[0], x.shape[0], 1, 1])?;
        let settings = ConvSettings {
            out_channels: output[0],
            kernel: 1,
            stride,
            pads: [0; 4],
            group: 1,
        };
        let projected = conv(cx, &format!("{name}.projection"), x, &w, None, settings);
        check_shape(name, &projected, &output)?;
        projected
    };
    let sum = cx.graph.node(name, "Add", &[&y.name, &skip.name], &[]);
    Ok(Value::new(sum, output))
}
