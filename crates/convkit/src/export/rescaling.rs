//! Input scaling as ONNX `Mul` and `Add`: a `Rescaling` layer (`x * scale + offset`), and a
//! backbone's preprocessing (ImageNet's mean and std per channel, or `(x - 127) / 128`),
//! with the same float32 constants the built layers multiply and add.

use super::lower::{Lowering, Value};
use crate::models::Preprocessing;
use crate::nn::RescalingSpec;

/// The rescaling `name` on `x`.
pub fn lower_rescaling(cx: &mut Lowering, name: &str, spec: &RescalingSpec, x: &Value) -> Value {
    let offset = (spec.offset != 0.0).then_some((vec![spec.offset as f32], vec![]));
    scale_and_shift(cx, name, x, (vec![spec.scale as f32], vec![]), offset)
}

/// A backbone's preprocessing `preprocessing` on images `x` `(batch, 3, h, w)` in
/// `0..=255`.
pub fn lower_preprocessing(
    cx: &mut Lowering,
    name: &str,
    preprocessing: Preprocessing,
    x: &Value,
) -> Value {
    // the constants exactly as `Preprocessing::apply` computes them, in f32
    let (scale, offset) = match preprocessing {
        Preprocessing::ImagenetMeanStd => {
            let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
            let scale: Vec<f32> = std.iter().map(|s| 1.0 / (255.0 * s)).collect();
            let offset: Vec<f32> = mean.iter().zip(&std).map(|(m, s)| -m / s).collect();
            ((scale, vec![1, 3, 1, 1]), (offset, vec![1, 3, 1, 1]))
        }
        Preprocessing::Symmetric127 => (
            (vec![1.0f32 / 128.0], vec![]),
            (vec![-127.0f32 / 128.0], vec![]),
        ),
    };
    scale_and_shift(cx, name, x, scale, Some(offset))
}

/// `x * scale (+ offset)`, each constant given as its values and its shape.
fn scale_and_shift(
    cx: &mut Lowering,
    name: &str,
    x: &Value,
    scale: (Vec<f32>, Vec<i64>),
    offset: Option<(Vec<f32>, Vec<i64>)>,
) -> Value {
    let s = cx
        .graph
        .initializer_f32(&format!("{name}/scale"), &scale.1, &scale.0);
    let mut y = cx.graph.node(name, "Mul", &[&x.name, &s], &[]);
    if let Some((values, dims)) = offset {
        let o = cx
            .graph
            .initializer_f32(&format!("{name}/offset"), &dims, &values);
        y = cx.graph.node(name, "Add", &[&y, &o], &[]);
    }
    Value::new(y, x.shape.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    /// The constants written to the graph reproduce `Preprocessing::apply` bit for bit.
    #[test]
    fn preprocessing_constants_match_the_built_layer() {
        for preprocessing in [Preprocessing::ImagenetMeanStd, Preprocessing::Symmetric127] {
            let mut cx = Lowering::new(Default::default());
            cx.graph.reserve("x").unwrap();
            lower_preprocessing(&mut cx, "p", preprocessing, &Value::new("x", vec![3, 1, 2]));
            let graph = cx.into_graph().finish("g");
            let constant = |i: usize| {
                let t = &graph.initializer[i];
                let raw = t.raw_data.as_ref().unwrap();
                let values: Vec<f32> = raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let dims: Vec<i64> = t.dims.clone();
                Tensor::from_slice(&values).view(dims.as_slice())
            };
            let xs = Tensor::from_slice(&[0u8, 255, 17, 128, 3, 250]).view([1, 3, 1, 2]);
            let ours = xs.to_kind(Kind::Float) * constant(0) + constant(1);
            let built = preprocessing.apply(&xs.to_device(Device::Cpu));
            assert!(ours.equal(&built), "{preprocessing:?}");
        }
    }
}
