//! Flatten as ONNX `Flatten(axis = 1)`: `(batch, c, h, w)` becomes `(batch, c * h * w)` in
//! the channels-first order of convkit's `Flatten` (PyTorch's, not Keras' channels-last
//! one), so a dense layer after it reads its weights as trained.

use super::lower::{Lowering, Value};
use super::onnx_graph::Attr;

/// `x` flattened after the batch axis.
pub fn lower(cx: &mut Lowering, name: &str, x: &Value) -> Value {
    let y = cx
        .graph
        .node(name, "Flatten", &[&x.name], &[("axis", Attr::Int(1))]);
    Value::new(y, vec![x.shape.iter().product()])
}
