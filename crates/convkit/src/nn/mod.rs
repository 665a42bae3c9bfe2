//! Layers and the sequential model description.
//!
//! Each layer has a *spec* (a small serialisable description, which knows its output shape
//! and parameter count) and a built form implementing [`Layer`].

pub mod activation;
pub mod batch_norm;
pub mod conv2d;
pub mod conv_bn;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod global_average_pooling2d;
pub mod init;
pub mod inverted_residual;
pub mod layer;
pub mod layer_spec;
pub mod max_pool2d;
pub mod pooled_classifier;
pub mod rescaling;
pub mod sequential;
pub mod summary;

pub use activation::Activation;
pub use conv2d::{Conv2dSpec, Padding};
pub use dense::DenseSpec;
pub use dropout::DropoutSpec;
pub use layer::Layer;
pub use layer_spec::LayerSpec;
pub use max_pool2d::MaxPool2dSpec;
pub use rescaling::RescalingSpec;
pub use sequential::{NamedLayer, Sequential};
pub use summary::Summary;
