//! A dense layer as ONNX `Gemm`: `x W^T + b` with convkit's `(units, features)` weight.

use super::activation;
use super::lower::{Lowering, Value};
use super::onnx_graph::Attr;
use crate::error::{Error, Result};
use crate::nn::{Activation, DenseSpec};

/// The dense layer `name` on `x` `(batch, features)`; `skip_activation` leaves its final
/// softmax or sigmoid to the model.
pub fn lower(
    cx: &mut Lowering,
    name: &str,
    spec: &DenseSpec,
    x: &Value,
    skip_activation: bool,
) -> Result<Value> {
    let [features] = x.shape[..] else {
        return Err(Error::InvalidConfig(format!(
            "onnx export: dense layer `{name}` takes vectors, got shape {:?}",
            x.shape
        )));
    };
    let weight = format!("{name}.weight");
    let bias = format!("{name}.bias");
    let w = cx.parameter_initializer(&weight, &[spec.units, features])?;
    let b = cx.parameter_initializer(&bias, &[spec.units])?;
    let y = cx.graph.node(
        name,
        "Gemm",
        &[&x.name, &w, &b],
        &[("transB", Attr::Int(1))],
    );
    let y = Value::new(y, vec![spec.units]);
    let a = if skip_activation {
        Activation::Linear
    } else {
        spec.activation
    };
    Ok(activation::lower(cx, name, a, &y))
}
