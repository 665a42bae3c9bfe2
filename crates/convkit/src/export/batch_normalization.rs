//! A `BatchNormalization` layer at inference, as ONNX's `BatchNormalization` operator with
//! the layer's moving statistics: `(x - mean) / sqrt(var + epsilon) * gamma + beta` per
//! channel (axis 1), for feature maps and vectors alike.

use super::lower::{Lowering, Value};
use super::onnx_graph::Attr;
use crate::error::Result;
use crate::nn::{BatchNormalizationSpec, LayerDescription};

/// The batch normalization `name` on `x` `(batch, channels, ...)`.
pub fn lower(
    cx: &mut Lowering,
    name: &str,
    spec: &BatchNormalizationSpec,
    x: &Value,
) -> Result<Value> {
    let shape = spec.output_shape(&x.shape)?;
    let channels = x.shape[0];
    let mut inputs = vec![x.name.clone()];
    // ONNX's order: scale (gamma), bias (beta), mean, variance
    for field in ["weight", "bias", "running_mean", "running_var"] {
        let key = format!("{name}.{field}");
        inputs.push(cx.parameter_initializer(&key, &[channels])?);
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    // training_mode stays at its default, 0: the moving statistics are used
    let y = cx.graph.node(
        name,
        "BatchNormalization",
        &inputs,
        &[("epsilon", Attr::Float(spec.epsilon as f32))],
    );
    Ok(Value::new(y, shape))
}
