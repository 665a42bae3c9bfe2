//! Pooling as ONNX operators: `MaxPooling2D` as `MaxPool` (its `same` padding as uneven
//! `pads`, which `MaxPool` never takes the maximum over, as the built layer's `-inf`), and
//! `GlobalAveragePooling2D` as `GlobalAveragePool` then `Flatten`.

use super::convolution::{check_shape, output_side, window_pads};
use super::lower::{Lowering, Value};
use super::onnx_graph::Attr;
use crate::error::{Error, Result};
use crate::nn::MaxPool2dSpec;

/// The max pooling `name` on `x` `(batch, c, h, w)`.
pub fn lower_max_pool2d(
    cx: &mut Lowering,
    name: &str,
    spec: &MaxPool2dSpec,
    x: &Value,
) -> Result<Value> {
    let expected = spec.output_shape(&x.shape)?;
    let p = spec.pool_size;
    let s = spec.strides.unwrap_or(p);
    let pads = window_pads(spec.padding, &x.shape, p, s);
    let y = cx.graph.node(
        name,
        "MaxPool",
        &[&x.name],
        &[
            ("kernel_shape", Attr::Ints(vec![p, p])),
            ("strides", Attr::Ints(vec![s, s])),
            ("pads", Attr::Ints(pads.to_vec())),
        ],
    );
    let y = Value::new(
        y,
        vec![
            x.shape[0],
            output_side(x.shape[1], p, s, pads[0], pads[2]),
            output_side(x.shape[2], p, s, pads[1], pads[3]),
        ],
    );
    check_shape(name, &y, &expected)?;
    Ok(y)
}

/// The mean of each channel of `x` `(batch, c, h, w)`: `(batch, c)`.
pub fn lower_global_average_pooling2d(cx: &mut Lowering, name: &str, x: &Value) -> Result<Value> {
    if x.shape.len() != 3 {
        return Err(Error::InvalidConfig(format!(
            "onnx export: layer `{name}` pools feature maps, got shape {:?}",
            x.shape
        )));
    }
    let pooled = cx.graph.node(name, "GlobalAveragePool", &[&x.name], &[]);
    let y = cx
        .graph
        .node(name, "Flatten", &[&pooled], &[("axis", Attr::Int(1))]);
    Ok(Value::new(y, vec![x.shape[0]]))
}
