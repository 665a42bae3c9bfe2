//! Layers: the building blocks of a model, and the losses on their output.
//!
//! Each layer has a *spec* (a small serialisable description implementing
//! [`LayerDescription`], which knows its output shape and parameter counts without being
//! built) and a built form implementing [`Layer`]. The registry of every layer kind, and
//! the sequential model made of them, are one floor up in `models` (`models::LayerSpec`,
//! `models::Sequential`); a new layer is one file here plus one line there.

pub mod activation;
pub mod activation_layer;
pub mod batch_norm;
pub mod batch_normalization;
pub mod conv2d;
pub mod conv_bn;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod global_average_pooling2d;
pub mod init;
pub mod inverted_residual;
pub mod layer;
pub mod loss;
pub mod max_pool2d;
pub mod padding;
pub mod pooled_classifier;
pub mod rescaling;
pub mod separable_conv2d;

pub use activation::Activation;
pub use activation_layer::ActivationSpec;
pub use batch_normalization::BatchNormalizationSpec;
pub use conv2d::Conv2dSpec;
pub use dense::DenseSpec;
pub use dropout::DropoutSpec;
pub use flatten::FlattenSpec;
pub use global_average_pooling2d::GlobalAveragePooling2dSpec;
pub use layer::{Layer, LayerDescription, ParamCounts};
pub use loss::Loss;
pub use max_pool2d::MaxPool2dSpec;
pub use padding::Padding;
pub use rescaling::RescalingSpec;
pub use separable_conv2d::SeparableConv2dSpec;
