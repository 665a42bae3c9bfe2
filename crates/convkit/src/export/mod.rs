//! Exporting a trained model for other runtimes: ONNX.
//!
//! [`export_onnx`] writes a [`Model`](crate::Model) as an ONNX file (opset [`OPSET`]) that
//! computes what [`Model::predict`](crate::Model::predict) computes:
//!
//! - input `image`: float32 `(batch, channels, height, width)` holding pixel values in
//!   `0..255` (RGB, or one gray channel for MNIST), any batch size; the model's
//!   preprocessing (rescaling, a backbone's ImageNet mean and std) is inside the graph;
//! - output `probabilities`: `(batch, classes)` after a softmax, or `(batch, 1)` after a
//!   sigmoid (the probability of the second class);
//! - dropout and the random augmentations are left out (a random crop becomes its centre
//!   crop), batch norm uses its moving statistics (as `BatchNormalization`, or folded into
//!   the convolution for the backbones, as convkit computes them);
//! - metadata: `classes` (a JSON array), `input_size` (`HxW`), `channels`, `input_range`
//!   (`0..255`), `output` (`softmax` or `sigmoid`), `producer` (the convkit version), and
//!   `decoding` (how training resized its images, a JSON object) when the model records it.
//!
//! The protobuf messages are a hand-written subset of `onnx.proto` ([`onnx_proto`]); each
//! layer kind is lowered by a file of its own, dispatched from [`lower`].

pub mod activation;
pub mod backbone;
pub mod batch_normalization;
pub mod conv_bn;
pub mod convolution;
pub mod dense;
pub mod flatten;
pub mod inverted_residual_net;
pub mod lower;
pub mod onnx_graph;
pub mod onnx_model;
pub mod onnx_proto;
pub mod pooling;
pub mod random_crop;
pub mod rescaling;
pub mod residual;
pub mod vgg16;

pub use onnx_model::{
    export_onnx, onnx_model, ExportSummary, INPUT_NAME, IR_VERSION, OPSET, OUTPUT_NAME,
};
