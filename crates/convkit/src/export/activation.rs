//! Activation functions as ONNX operators: `Relu`, `Sigmoid`, `Softmax` over the last axis,
//! and MobileNet's ReLU6 as `Clip(0, 6)`.

use super::lower::{Lowering, Value};
use super::onnx_graph::Attr;
use crate::nn::Activation;

/// `activation` applied to `x` (no node for `linear`); `name` names the node.
pub fn lower(cx: &mut Lowering, name: &str, activation: Activation, x: &Value) -> Value {
    let (op, attributes) = match activation {
        Activation::Linear => return x.clone(),
        Activation::Relu => ("Relu", vec![]),
        Activation::Sigmoid => ("Sigmoid", vec![]),
        // opset 13 and later: a softmax over one axis, as `Tensor::softmax(-1)`
        Activation::Softmax => ("Softmax", vec![("axis", Attr::Int(-1))]),
    };
    let y = cx.graph.node(name, op, &[&x.name], &attributes);
    Value::new(y, x.shape.clone())
}

/// `min(max(x, 0), 6)`: ReLU6, as `Clip` with its bounds as inputs (opset 11 and later).
pub fn lower_relu6(cx: &mut Lowering, name: &str, x: &Value) -> Value {
    let low = cx
        .graph
        .initializer_f32(&format!("{name}/relu6_min"), &[], &[0.0]);
    let high = cx
        .graph
        .initializer_f32(&format!("{name}/relu6_max"), &[], &[6.0]);
    let y = cx.graph.node(name, "Clip", &[&x.name, &low, &high], &[]);
    Value::new(y, x.shape.clone())
}
