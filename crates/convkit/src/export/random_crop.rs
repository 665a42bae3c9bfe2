//! A random crop at inference: its centre crop, as ONNX `Slice` on the two image axes (an
//! odd pixel left over goes to the bottom or right margin, as the built layer crops).

use super::lower::{Lowering, Value};
use crate::augment::RandomCropSpec;
use crate::error::Result;

/// The centre `height x width` window of `x` `(batch, c, h, w)`.
pub fn lower(cx: &mut Lowering, name: &str, spec: &RandomCropSpec, x: &Value) -> Result<Value> {
    let shape = spec.output_shape(&x.shape)?;
    let (top, left) = (
        (x.shape[1] - spec.height) / 2,
        (x.shape[2] - spec.width) / 2,
    );
    let starts = cx
        .graph
        .initializer_i64(&format!("{name}/starts"), &[2], &[top, left]);
    let ends = cx.graph.initializer_i64(
        &format!("{name}/ends"),
        &[2],
        &[top + spec.height, left + spec.width],
    );
    let axes = cx
        .graph
        .initializer_i64(&format!("{name}/axes"), &[2], &[2, 3]);
    let y = cx
        .graph
        .node(name, "Slice", &[&x.name, &starts, &ends, &axes], &[]);
    Ok(Value::new(y, shape))
}
