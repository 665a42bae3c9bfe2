//! MobileNetV2 and EfficientNet-Lite0 as ONNX nodes: the stem, the inverted residual blocks
//! (expansion, depthwise convolution, linear projection, `Add` of the input when shapes
//! allow), the last 1x1 convolution, and the ImageNet classifier when the backbone keeps
//! it (`GlobalAveragePool`, `Flatten`, `Gemm`; its dropout vanishes at inference).

use super::conv_bn;
use super::lower::{Lowering, Value};
use super::onnx_graph::Attr;
use crate::error::Result;
use crate::models::inverted_residual_net::InvertedResidualNet;

/// `net` on preprocessed images `x`, its parameters under `<prefix>.` as the network's
/// checkpoints name them: features, or 1000 logits with `include_top`.
pub fn lower(
    cx: &mut Lowering,
    prefix: &str,
    net: &InvertedResidualNet,
    include_top: bool,
    x: &Value,
) -> Result<Value> {
    let mut y = conv_bn::lower(cx, prefix, &net.keys.stem(), &net.stem_spec(), x)?;
    for plan in net.blocks() {
        let input = y.clone();
        if let (Some(keys), Some(spec)) = (&plan.keys.expand, &plan.expand) {
            y = conv_bn::lower(cx, prefix, keys, spec, &y)?;
        }
        y = conv_bn::lower(cx, prefix, &plan.keys.depthwise, &plan.depthwise, &y)?;
        y = conv_bn::lower(cx, prefix, &plan.keys.project, &plan.project, &y)?;
        if plan.residual {
            let hint = format!("{prefix}.{}", plan.keys.project.conv);
            let sum = cx.graph.node(&hint, "Add", &[&y.name, &input.name], &[]);
            y = Value::new(sum, y.shape.clone());
        }
    }
    let features = conv_bn::lower(cx, prefix, &net.keys.head(), &net.head_spec(), &y)?;
    if !include_top {
        return Ok(features);
    }
    let key = format!("{prefix}.{}", net.keys.classifier());
    let channels = features.shape[0];
    let pooled = cx
        .graph
        .node(&key, "GlobalAveragePool", &[&features.name], &[]);
    let flat = cx
        .graph
        .node(&key, "Flatten", &[&pooled], &[("axis", Attr::Int(1))]);
    let weight = format!("{key}.weight");
    let classes = cx.parameter(&weight)?.size()[0];
    let w = cx.parameter_initializer(&weight, &[classes, channels])?;
    let b = cx.parameter_initializer(&format!("{key}.bias"), &[classes])?;
    let logits = cx
        .graph
        .node(&key, "Gemm", &[&flat, &w, &b], &[("transB", Attr::Int(1))]);
    Ok(Value::new(logits, vec![classes]))
}
