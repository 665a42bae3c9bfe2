//! Lowering a model's layers to ONNX nodes: the context every lowering shares (the graph
//! being built, the model's parameters) and the dispatch from a [`LayerSpec`] to the file
//! that lowers it.
//!
//! Each lowering computes at inference what the built layer computes in `Model::forward`
//! with `train` off: dropout and the random augmentations vanish, a random crop becomes its
//! centre crop, batch norm uses its moving statistics.

use std::collections::{BTreeSet, HashMap};

use tch::Tensor;

use super::onnx_graph::GraphBuilder;
use super::{
    activation, backbone, batch_normalization, convolution, dense, flatten, pooling, random_crop,
    rescaling, residual,
};
use crate::error::{Error, Result};
use crate::models::LayerSpec;

/// A value of the graph and its shape per sample (without the batch axis), as the layer
/// descriptions compute it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// Its name in the graph.
    pub name: String,
    /// Its shape per sample, channels first.
    pub shape: Vec<i64>,
}

impl Value {
    /// The value `name` of per-sample `shape`.
    pub fn new(name: impl Into<String>, shape: Vec<i64>) -> Value {
        Value {
            name: name.into(),
            shape,
        }
    }
}

/// What every lowering works with: the graph being built and the model's parameters, by
/// their variable-store names (`conv2d.weight`, `mobilenet_v2.features.0.0.weight`).
pub struct Lowering {
    /// The graph being built.
    pub graph: GraphBuilder,
    parameters: HashMap<String, Tensor>,
    used: BTreeSet<String>,
}

impl Lowering {
    /// A lowering into an empty graph, reading `parameters`.
    pub fn new(parameters: HashMap<String, Tensor>) -> Lowering {
        Lowering {
            graph: GraphBuilder::new(),
            parameters,
            used: BTreeSet::new(),
        }
    }

    /// The parameter `name` (detached from autograd), marked as exported; an error names
    /// it when the model has none of that name.
    pub fn parameter(&mut self, name: &str) -> Result<Tensor> {
        let tensor = self.parameters.get(name).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "onnx export: the model has no parameter `{name}`, which its description \
                 implies"
            ))
        })?;
        self.used.insert(name.to_owned());
        Ok(tensor.detach())
    }

    /// The parameter `name`, checked to have `shape`, as a graph initializer of the same
    /// name; returns its name in the graph.
    pub fn parameter_initializer(&mut self, name: &str, shape: &[i64]) -> Result<String> {
        let tensor = self.parameter_shaped(name, shape)?;
        self.graph.initializer_tensor(name, &tensor)
    }

    /// The parameter `name`, checked to have `shape`.
    pub fn parameter_shaped(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let tensor = self.parameter(name)?;
        if tensor.size() != shape {
            return Err(Error::InvalidConfig(format!(
                "onnx export: parameter `{name}` is {:?}, the description implies {shape:?}",
                tensor.size()
            )));
        }
        Ok(tensor)
    }

    /// Fails, naming them, if some parameters of the model were never exported: a lowering
    /// that left part of a layer out would compute something else.
    pub fn check_all_used(&self) -> Result<()> {
        let mut unused: Vec<&String> = self
            .parameters
            .keys()
            .filter(|name| !self.used.contains(*name))
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        unused.sort();
        Err(Error::InvalidConfig(format!(
            "onnx export: the lowered graph does not use the parameters {}",
            unused
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Consumes the lowering, returning its graph builder.
    pub fn into_graph(self) -> GraphBuilder {
        self.graph
    }
}

/// Lowers the layer `spec`, named `name` (also the prefix of its parameters), applied to
/// `x`; `skip_activation` leaves a final softmax or sigmoid out, as the built layer does
/// (the model applies it after the last layer).
pub fn lower_layer(
    cx: &mut Lowering,
    name: &str,
    spec: &LayerSpec,
    x: &Value,
    skip_activation: bool,
) -> Result<Value> {
    // Not matched exhaustively on purpose: a layer added to the registry without a lowering
    // here makes `convkit export` refuse the model, naming the layer, rather than stopping
    // the build.
    #[allow(unreachable_patterns)]
    match spec {
        LayerSpec::Rescaling(s) => Ok(rescaling::lower_rescaling(cx, name, s, x)),
        LayerSpec::Conv2d(s) => convolution::lower_conv2d(cx, name, s, x),
        LayerSpec::SeparableConv2d(s) => {
            convolution::lower_separable_conv2d(cx, name, s, x, skip_activation)
        }
        LayerSpec::BatchNormalization(s) => batch_normalization::lower(cx, name, s, x),
        LayerSpec::Activation(s) => {
            let a = if skip_activation {
                crate::nn::Activation::Linear
            } else {
                s.activation
            };
            Ok(activation::lower(cx, name, a, x))
        }
        LayerSpec::MaxPool2d(s) => pooling::lower_max_pool2d(cx, name, s, x),
        LayerSpec::Flatten(_) => Ok(flatten::lower(cx, name, x)),
        LayerSpec::GlobalAveragePooling2d(_) => {
            pooling::lower_global_average_pooling2d(cx, name, x)
        }
        LayerSpec::Dense(s) => dense::lower(cx, name, s, x, skip_activation),
        LayerSpec::Residual(s) => residual::lower(cx, name, s, x),
        LayerSpec::RandomCrop(s) => random_crop::lower(cx, name, s, x),
        // identity at inference
        LayerSpec::Dropout(_)
        | LayerSpec::RandomFlip(_)
        | LayerSpec::RandomRotation(_)
        | LayerSpec::RandomZoom(_)
        | LayerSpec::RandomTranslation(_)
        | LayerSpec::RandomContrast(_) => Ok(x.clone()),
        LayerSpec::Backbone(s) => backbone::lower(cx, name, s, x),
        other => Err(unsupported(name, other.type_tag())),
    }
}

/// The error for a layer the exporter has no lowering for.
pub fn unsupported(name: &str, kind: &str) -> Error {
    Error::InvalidConfig(format!(
        "onnx export: layer `{name}` of type `{kind}` has no ONNX lowering in convkit {}; \
         the model cannot be exported",
        env!("CARGO_PKG_VERSION")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn parameters_are_looked_up_and_accounted_for() {
        let mut params = HashMap::new();
        params.insert(
            "a.weight".to_owned(),
            Tensor::ones([2, 3], (Kind::Float, Device::Cpu)),
        );
        params.insert(
            "a.bias".to_owned(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        );
        let mut cx = Lowering::new(params);
        assert!(cx.parameter_shaped("a.weight", &[2, 3]).is_ok());
        let err = cx
            .parameter_shaped("a.weight", &[3, 2])
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.weight") && err.contains("[3, 2]"), "{err}");
        let err = cx.parameter("b.weight").unwrap_err().to_string();
        assert!(err.contains("`b.weight`"), "{err}");
        let err = cx.check_all_used().unwrap_err().to_string();
        assert!(
            err.contains("`a.bias`") && !err.contains("a.weight"),
            "{err}"
        );
        cx.parameter_initializer("a.bias", &[2]).unwrap();
        cx.check_all_used().unwrap();
    }

    #[test]
    fn an_unsupported_layer_is_named() {
        let err = unsupported("lstm_1", "lstm").to_string();
        assert!(err.contains("`lstm_1`") && err.contains("`lstm`"), "{err}");
    }
}
