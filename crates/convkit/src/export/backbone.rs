//! A pretrained backbone as ONNX nodes: its own preprocessing, then its network.

use super::lower::{unsupported, Lowering, Value};
use super::{inverted_residual_net, rescaling, vgg16};
use crate::error::Result;
use crate::models::{efficientnet_lite0, mobilenet_v2, BackboneArch, BackboneSpec};

/// The backbone layer `name` on images `x` `(batch, 3, h, w)` in `0..=255`.
pub fn lower(cx: &mut Lowering, name: &str, spec: &BackboneSpec, x: &Value) -> Result<Value> {
    let expected = spec.output_shape(&x.shape)?;
    let arch = spec.architecture;
    let input = rescaling::lower_preprocessing(
        cx,
        &format!("{name}/preprocessing"),
        arch.preprocessing(),
        x,
    );
    // Not matched exhaustively on purpose, as `lower_layer`: a new backbone without a
    // lowering is refused by name.
    #[allow(unreachable_patterns)]
    let y = match arch {
        BackboneArch::Vgg16 => vgg16::lower(cx, name, &input)?,
        BackboneArch::MobilenetV2 => inverted_residual_net::lower(
            cx,
            name,
            &mobilenet_v2::NETWORK,
            spec.include_top,
            &input,
        )?,
        BackboneArch::EfficientnetLite0 => inverted_residual_net::lower(
            cx,
            name,
            &efficientnet_lite0::NETWORK,
            spec.include_top,
            &input,
        )?,
        other => return Err(unsupported(name, &format!("backbone {}", other.name()))),
    };
    super::convolution::check_shape(name, &y, &expected)?;
    Ok(y)
}
