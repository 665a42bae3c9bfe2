//! A whole [`Model`] as an ONNX file: the graph from `image` to `probabilities`, the opset,
//! and the metadata a server needs (class names, input size and range, output kind).

use std::path::{Path, PathBuf};

use prost::Message;
use serde::Serialize;

use super::lower::{lower_layer, Lowering, Value};
use super::onnx_graph::Attr;
use super::onnx_proto::{
    Dimension, ModelProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto, TypeProto,
    TypeProtoTensor, ValueInfoProto, DATA_TYPE_FLOAT,
};
use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::nn::Activation;

/// The ONNX operator set the graph is written for (ONNX 1.12, 2022; every current runtime
/// reads it).
pub const OPSET: i64 = 17;

/// The IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// The graph's input: float32 images `(batch, channels, height, width)` in `0..255`.
pub const INPUT_NAME: &str = "image";

/// The graph's output: `(batch, classes)` after a softmax, `(batch, 1)` after a sigmoid.
pub const OUTPUT_NAME: &str = "probabilities";

/// The name of the input's batch axis, which the caller chooses.
pub const BATCH_AXIS: &str = "batch";

/// What [`export_onnx`] wrote.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportSummary {
    /// The file written.
    pub path: PathBuf,
    /// Always `onnx`.
    pub format: String,
    /// The ONNX operator set version.
    pub opset: i64,
    /// The input's shape, the batch axis as `"batch"`.
    pub input_shape: Vec<serde_json::Value>,
    /// The output's shape, the batch axis as `"batch"`.
    pub output_shape: Vec<serde_json::Value>,
    /// `softmax`, `sigmoid` or `linear`: what the output holds.
    pub output: String,
    /// Class names, indexed by the output (a sigmoid's one output is the second class).
    pub classes: Vec<String>,
    /// Number of nodes in the graph.
    pub nodes: usize,
    /// Values in the model's parameters.
    pub parameters: i64,
    /// Float values stored in the file (parameters after batch norm folding, plus the
    /// preprocessing constants).
    pub stored_values: usize,
    /// Size of the file in bytes.
    pub bytes: usize,
}

/// The output's kind as the metadata names it.
fn output_kind(activation: Activation) -> &'static str {
    match activation {
        Activation::Softmax => "softmax",
        Activation::Sigmoid => "sigmoid",
        _ => "linear",
    }
}

fn entry(key: &str, value: impl Into<String>) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(key.to_owned()),
        value: Some(value.into()),
    }
}

fn tensor_info(name: &str, shape: &[i64]) -> ValueInfoProto {
    let dim = std::iter::once(Dimension::named(BATCH_AXIS))
        .chain(shape.iter().map(|&d| Dimension::fixed(d)))
        .collect();
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(DATA_TYPE_FLOAT),
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        ..Default::default()
    }
}

fn shape_json(shape: &[i64]) -> Vec<serde_json::Value> {
    std::iter::once(serde_json::Value::from(BATCH_AXIS))
        .chain(shape.iter().map(|&d| serde_json::Value::from(d)))
        .collect()
}

/// `model` as an ONNX model: what `Model::predict` computes, from images to probabilities,
/// at inference, in float32. Fails, naming the layer, on a layer the exporter cannot lower.
pub fn onnx_model(model: &Model) -> Result<(ModelProto, ExportSummary)> {
    let spec = model.spec();
    let input_shape = spec.input_shape.clone();
    let output_shape = spec.output_shape()?;
    let mut cx = Lowering::new(model.var_store().variables());
    cx.graph.reserve(INPUT_NAME)?;
    cx.graph.reserve(OUTPUT_NAME)?;
    let activation = spec.output_activation();
    let skip_last = activation != Activation::Linear;
    let mut x = Value::new(INPUT_NAME, input_shape.clone());
    for (i, layer) in spec.layers.iter().enumerate() {
        let is_last = i + 1 == spec.layers.len();
        x = lower_layer(&mut cx, &layer.name, &layer.spec, &x, skip_last && is_last)?;
    }
    if x.shape != output_shape {
        return Err(Error::InvalidConfig(format!(
            "onnx export: the graph computes shape {:?}, the model {output_shape:?}",
            x.shape
        )));
    }
    cx.check_all_used()?;
    let (op, attributes) = match activation {
        Activation::Softmax => ("Softmax", vec![("axis", Attr::Int(-1))]),
        Activation::Sigmoid => ("Sigmoid", vec![]),
        _ => ("Identity", vec![]),
    };
    cx.graph
        .node_into("output", op, &[&x.name], &attributes, OUTPUT_NAME);
    let graph_builder = cx.into_graph();
    let (nodes, stored_values) = (graph_builder.node_count(), graph_builder.parameter_count());
    let mut graph = graph_builder.finish(&spec.name);
    graph.input = vec![tensor_info(INPUT_NAME, &input_shape)];
    graph.output = vec![tensor_info(OUTPUT_NAME, &output_shape)];
    graph.doc_string = Some(format!(
        "{}: float32 images {INPUT_NAME} (batch, channels, height, width) holding pixel values \
         in 0..255, preprocessing included; {OUTPUT_NAME} (batch, outputs) after the model's \
         {}",
        spec.name,
        output_kind(activation)
    ));
    let version = env!("CARGO_PKG_VERSION");
    let classes_json = serde_json::to_string(model.classes()).map_err(|e| {
        Error::InvalidConfig(format!("onnx export: cannot write the class names: {e}"))
    })?;
    let (h, w) = match input_shape[..] {
        [_, h, w] => (h, w),
        _ => (0, 0),
    };
    let mut metadata = vec![
        entry("classes", classes_json),
        entry("input_size", format!("{h}x{w}")),
        entry("channels", input_shape[0].to_string()),
        entry("input_range", "0..255"),
        entry("input_layout", "NCHW"),
        entry("output", output_kind(activation)),
        entry("producer", format!("convkit {version}")),
        entry("model", spec.name.clone()),
    ];
    if input_shape.len() != 3 {
        metadata.retain(|e| e.key.as_deref() != Some("input_size"));
    }
    if let Some(decoding) = model.decoding() {
        // how training resized its images: a server should resize the same way
        let json = serde_json::to_string(&decoding).map_err(|e| {
            Error::InvalidConfig(format!("onnx export: cannot write the decoding: {e}"))
        })?;
        metadata.push(entry("decoding", json));
    }
    let proto = ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("convkit".into()),
        producer_version: Some(version.into()),
        model_version: Some(1),
        doc_string: Some(format!("{} exported by convkit {version}", spec.name)),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        metadata_props: metadata,
        ..Default::default()
    };
    let summary = ExportSummary {
        path: PathBuf::new(),
        format: "onnx".into(),
        opset: OPSET,
        input_shape: shape_json(&input_shape),
        output_shape: shape_json(&output_shape),
        output: output_kind(activation).into(),
        classes: model.classes().to_vec(),
        nodes,
        parameters: model.param_count(),
        stored_values,
        bytes: proto.encoded_len(),
    };
    Ok((proto, summary))
}

/// Writes `model` to `path` as an ONNX file (atomically: a stop leaves the old file or the
/// new one). The graph takes float32 images `image` `(batch, channels, height, width)` in
/// `0..255` and returns `probabilities`, what [`Model::predict`] returns; see
/// [`crate::export`].
pub fn export_onnx(model: &Model, path: &Path) -> Result<ExportSummary> {
    let (proto, mut summary) = onnx_model(model)?;
    let bytes = proto.encode_to_vec();
    write_atomic(path, &bytes)?;
    summary.path = path.to_owned();
    summary.bytes = bytes.len();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::{RandomCropSpec, RandomFlipSpec};
    use crate::models::{
        mnist_convnet, transfer_model, BackboneArch, BackboneSpec, TransferOptions,
    };
    use crate::models::{LayerSpec, ResidualSpec, Sequential};
    use crate::nn::{
        ActivationSpec, BatchNormalizationSpec, Conv2dSpec, MaxPool2dSpec, SeparableConv2dSpec,
    };
    use tch::Device;

    fn ops(proto: &ModelProto) -> Vec<String> {
        let graph = proto.graph.as_ref().unwrap();
        graph
            .node
            .iter()
            .map(|n| n.op_type.clone().unwrap())
            .collect()
    }

    fn metadata(proto: &ModelProto, key: &str) -> String {
        let entry = proto
            .metadata_props
            .iter()
            .find(|e| e.key.as_deref() == Some(key));
        entry.and_then(|e| e.value.clone()).unwrap_or_default()
    }

    #[test]
    fn the_mnist_convnet_lowers_to_its_layers() {
        let mut model = Model::new(&mnist_convnet(), Device::Cpu, 0).unwrap();
        let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        model.set_classes(digits).unwrap();
        let (proto, summary) = onnx_model(&model).unwrap();
        assert_eq!(
            ops(&proto),
            [
                "Mul", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Conv", "Relu",
                "Flatten", "Gemm", "Softmax"
            ]
        );
        let graph = proto.graph.as_ref().unwrap();
        assert_eq!(graph.input, [tensor_info(INPUT_NAME, &[1, 28, 28])]);
        assert_eq!(graph.output, [tensor_info(OUTPUT_NAME, &[10])]);
        assert_eq!(graph.node.last().unwrap().output, [OUTPUT_NAME]);
        assert_eq!(
            metadata(&proto, "classes"),
            r#"["0","1","2","3","4","5","6","7","8","9"]"#
        );
        assert_eq!(metadata(&proto, "input_size"), "28x28");
        assert_eq!(metadata(&proto, "channels"), "1");
        assert_eq!(metadata(&proto, "output"), "softmax");
        assert_eq!(proto.opset_import[0].version, Some(OPSET));
        // the rescaling constant, then every parameter
        assert_eq!(summary.stored_values as i64, model.param_count() + 1);
        assert_eq!(
            summary.output_shape,
            [serde_json::json!("batch"), 10.into()]
        );
    }

    /// Every layer kind of the registry but the backbones, in one model: all of it lowers,
    /// every parameter lands in the graph, the inference-only layers vanish.
    #[test]
    fn every_layer_kind_lowers() {
        let relu = || ActivationSpec {
            activation: Activation::Relu,
        };
        let spec = Sequential::new("all", [3, 20, 21])
            .add(RandomFlipSpec::new(crate::augment::FlipMode::Horizontal))
            .add(RandomCropSpec::new(17, 18))
            .rescaling(1.0 / 255.0)
            .add(Conv2dSpec::new(4, 3, Activation::Relu).same().strided(2))
            .add(BatchNormalizationSpec::default())
            .add(ResidualSpec::new([
                BatchNormalizationSpec::default().into(),
                LayerSpec::from(relu()),
                SeparableConv2dSpec::xception(6, 3).into(),
                MaxPool2dSpec::same(3, 2).into(),
            ]))
            .add(ResidualSpec::new([Conv2dSpec::new(6, 3, Activation::Relu)
                .same()
                .into()]))
            .max_pool2d(2)
            .global_average_pooling2d()
            .dropout(0.5)
            .dense(3, Activation::Relu)
            .add(BatchNormalizationSpec::default())
            .classifier(2);
        let model = Model::new(&spec, Device::Cpu, 0).unwrap();
        let (proto, summary) = onnx_model(&model).unwrap();
        let ops = ops(&proto);
        assert_eq!(ops[0], "Slice", "{ops:?}");
        assert_eq!(ops.last().unwrap(), "Sigmoid");
        for op in [
            "BatchNormalization",
            "Add",
            "GlobalAveragePool",
            "Gemm",
            "MaxPool",
        ] {
            assert!(ops.iter().any(|o| o == op), "{op} missing: {ops:?}");
        }
        assert!(!ops.iter().any(|o| o == "Dropout"));
        // the dense layer keeps its ReLU; the final sigmoid is the output's only one
        assert_eq!(ops.iter().filter(|o| *o == "Sigmoid").count(), 1);
        assert_eq!(summary.output, "sigmoid");
        assert_eq!(summary.output_shape, [serde_json::json!("batch"), 1.into()]);
    }

    #[test]
    fn backbones_lower_with_their_preprocessing() {
        for arch in [BackboneArch::MobilenetV2, BackboneArch::EfficientnetLite0] {
            let mut options = TransferOptions::new(arch);
            options.image_size = 40;
            let model = Model::new(&transfer_model(&options), Device::Cpu, 0).unwrap();
            let (proto, summary) = onnx_model(&model).unwrap();
            let ops = ops(&proto);
            assert_eq!(ops[..3], ["Mul", "Add", "Conv"], "{arch:?}");
            assert!(ops.iter().any(|o| o == "Clip"), "{arch:?}");
            assert_eq!(summary.output, "sigmoid");
            // the classifier of the whole ImageNet network too
            let spec = Sequential::new("imagenet", [3, 32, 32])
                .add(LayerSpec::Backbone(BackboneSpec::classifier(arch).unwrap()));
            let model = Model::new(&spec, Device::Cpu, 0).unwrap();
            let (_, summary) = onnx_model(&model).unwrap();
            assert_eq!(summary.output, "softmax");
            assert_eq!(summary.output_shape[1], 1000);
        }
        let mut options = TransferOptions::new(BackboneArch::Vgg16);
        options.image_size = 32;
        let model = Model::new(&transfer_model(&options), Device::Cpu, 0).unwrap();
        let (proto, _) = onnx_model(&model).unwrap();
        let ops = ops(&proto);
        assert_eq!(ops.iter().filter(|o| *o == "MaxPool").count(), 5);
        assert_eq!(ops.iter().filter(|o| *o == "Conv").count(), 13);
    }

    #[test]
    fn the_file_is_the_encoded_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        let model = Model::new(&mnist_convnet(), Device::Cpu, 0).unwrap();
        let summary = export_onnx(&model, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(summary.bytes, bytes.len());
        assert_eq!(summary.path, path);
        let decoded = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded, onnx_model(&model).unwrap().0);
    }
}
