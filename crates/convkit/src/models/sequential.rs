//! A model as a stack of layers, described before it is built (Keras' `Sequential`).

use serde::{Deserialize, Serialize};

use super::layer_spec::LayerSpec;
use crate::error::{Error, Result};
use crate::nn::{
    Activation, Conv2dSpec, DenseSpec, DropoutSpec, FlattenSpec, GlobalAveragePooling2dSpec,
    MaxPool2dSpec, ParamCounts, RescalingSpec,
};

/// A layer of a [`Sequential`] with its name; the name prefixes its parameters
/// (`conv2d_1.weight`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedLayer {
    /// Unique name within the model.
    pub name: String,
    /// What the layer is.
    #[serde(flatten)]
    pub spec: LayerSpec,
}

/// The name Keras gives a new layer of `spec` after `existing`: its prefix, then `_1`,
/// `_2`, ... for the second and later layers with that prefix.
pub(crate) fn keras_name(existing: &[NamedLayer], spec: &LayerSpec) -> String {
    let prefix = spec.name_prefix();
    let taken = existing
        .iter()
        .filter(|l| l.spec.name_prefix() == prefix)
        .count();
    if taken == 0 {
        prefix.to_owned()
    } else {
        format!("{prefix}_{taken}")
    }
}

/// The output shape after each of `layers`, in order, for an `input`; an error names the
/// first layer that does not fit its input.
pub(crate) fn chain_shapes(layers: &[NamedLayer], input: &[i64]) -> Result<Vec<Vec<i64>>> {
    let mut shape = input.to_vec();
    layers
        .iter()
        .map(|layer| {
            shape = layer
                .spec
                .output_shape(&shape)
                .map_err(|e| Error::InvalidConfig(format!("layer `{}`: {e}", layer.name)))?;
            Ok(shape.clone())
        })
        .collect()
}

/// The architecture of a sequential model: an input shape and layers, serialisable to the
/// JSON that a saved model carries. Build it into a trainable `Model` (`convkit::Model::new`).
///
/// ```
/// use convkit::models::Sequential;
/// use convkit::nn::Activation;
///
/// let spec = Sequential::new("mnist_convnet", [1, 28, 28])
///     .rescaling(1.0 / 255.0)
///     .conv2d(32, 3, Activation::Relu)
///     .max_pool2d(2)
///     .conv2d(64, 3, Activation::Relu)
///     .max_pool2d(2)
///     .conv2d(128, 3, Activation::Relu)
///     .flatten()
///     .dense(10, Activation::Softmax);
/// assert_eq!(spec.param_count().unwrap(), 104_202);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequential {
    /// The model's name, shown by summaries.
    pub name: String,
    /// Shape of one input sample, channels first: `(channels, height, width)`.
    pub input_shape: Vec<i64>,
    /// The layers, first to last.
    pub layers: Vec<NamedLayer>,
}

impl Sequential {
    /// An empty model taking samples of `input_shape` (channels first).
    pub fn new(name: &str, input_shape: impl Into<Vec<i64>>) -> Self {
        Sequential {
            name: name.to_owned(),
            input_shape: input_shape.into(),
            layers: Vec::new(),
        }
    }

    /// Appends a layer, named as Keras would (`dense`, `dense_1`, ...).
    #[allow(clippy::should_implement_trait)] // Keras' name for it; not an arithmetic `+`.
    pub fn add(mut self, spec: impl Into<LayerSpec>) -> Self {
        let spec = spec.into();
        let name = keras_name(&self.layers, &spec);
        self.layers.push(NamedLayer { name, spec });
        self
    }

    /// Appends `x * scale` (for example `1 / 255`).
    pub fn rescaling(self, scale: f64) -> Self {
        self.add(LayerSpec::Rescaling(RescalingSpec { scale, offset: 0.0 }))
    }

    /// Appends a stride-1, `valid` convolution.
    pub fn conv2d(self, filters: i64, kernel_size: i64, activation: Activation) -> Self {
        self.add(LayerSpec::Conv2d(Conv2dSpec::new(
            filters,
            kernel_size,
            activation,
        )))
    }

    /// Appends a max pooling over non-overlapping `pool_size` windows.
    pub fn max_pool2d(self, pool_size: i64) -> Self {
        self.add(LayerSpec::MaxPool2d(MaxPool2dSpec::new(pool_size)))
    }

    /// Appends a flatten.
    pub fn flatten(self) -> Self {
        self.add(FlattenSpec {})
    }

    /// Appends a dropout of `rate`.
    pub fn dropout(self, rate: f64) -> Self {
        self.add(LayerSpec::Dropout(DropoutSpec { rate }))
    }

    /// Appends a global average pooling.
    pub fn global_average_pooling2d(self) -> Self {
        self.add(GlobalAveragePooling2dSpec {})
    }

    /// Appends a dense layer.
    pub fn dense(self, units: i64, activation: Activation) -> Self {
        self.add(LayerSpec::Dense(DenseSpec { units, activation }))
    }

    /// Appends the output layer for `classes` classes: `Dense(1, sigmoid)` for two (binary
    /// crossentropy), `Dense(classes, softmax)` for more.
    pub fn classifier(self, classes: usize) -> Self {
        if classes <= 2 {
            self.dense(1, Activation::Sigmoid)
        } else {
            self.dense(classes as i64, Activation::Softmax)
        }
    }

    /// The output shape of every layer, in order; fails on the first layer that does not
    /// fit its input.
    pub fn output_shapes(&self) -> Result<Vec<Vec<i64>>> {
        chain_shapes(&self.layers, &self.input_shape)
    }

    /// Shape of one output sample.
    pub fn output_shape(&self) -> Result<Vec<i64>> {
        Ok(self
            .output_shapes()?
            .pop()
            .unwrap_or_else(|| self.input_shape.clone()))
    }

    /// Values in the parameters of every layer, in order, trainable and not.
    pub fn layer_param_counts(&self) -> Result<Vec<ParamCounts>> {
        let shapes = self.output_shapes()?;
        let inputs = std::iter::once(&self.input_shape).chain(shapes.iter());
        self.layers
            .iter()
            .zip(inputs)
            .map(|(l, input)| l.spec.param_counts(input))
            .collect()
    }

    /// Total number of trainable values.
    pub fn param_count(&self) -> Result<i64> {
        Ok(self.layer_param_counts()?.iter().map(|c| c.trainable).sum())
    }

    /// Whether the model takes images of any size: none of its layers flattens a feature
    /// map (a Flatten into a Dense layer fixes the size the model was built for; a global
    /// pooling does not).
    pub fn takes_any_image_size(&self) -> bool {
        !self
            .layers
            .iter()
            .any(|l| matches!(l.spec, LayerSpec::Flatten(_)))
    }

    /// The final activation when it turns logits into probabilities (softmax or sigmoid).
    /// A built model leaves it out of training, where the loss works on logits, and applies
    /// it in `Model::predict`.
    pub fn output_activation(&self) -> Activation {
        match self.layers.last().and_then(|l| l.spec.activation()) {
            Some(a) if a.is_probabilistic() => a,
            _ => Activation::Linear,
        }
    }

    /// Splits the model after the layer named `name`: the layers up to it, and the rest as
    /// a model of its own (named `<name>_head`) taking the first part's output. A head
    /// trained alone on cached outputs has the parameter names it has in the whole model.
    pub fn split_after(&self, name: &str) -> Result<(Sequential, Sequential)> {
        let at = self
            .layers
            .iter()
            .position(|l| l.name == name)
            .ok_or_else(|| Error::InvalidConfig(format!("no layer is named `{name}`")))?;
        let base = Sequential {
            name: self.name.clone(),
            input_shape: self.input_shape.clone(),
            layers: self.layers[..=at].to_vec(),
        };
        let head = Sequential {
            name: format!("{}_head", self.name),
            input_shape: base.output_shape()?,
            layers: self.layers[at + 1..].to_vec(),
        };
        Ok((base, head))
    }

    /// Checks that the layers fit together and that names are unique.
    pub fn validate(&self) -> Result<()> {
        if self.input_shape.is_empty() || self.input_shape.iter().any(|&d| d < 1) {
            return Err(Error::InvalidConfig(format!(
                "invalid input shape {:?}",
                self.input_shape
            )));
        }
        if let Some(bad) = self
            .layers
            .iter()
            .find(|l| l.name.is_empty() || l.name.contains('.'))
        {
            return Err(Error::InvalidConfig(format!(
                "layer name `{}`: names are not empty and hold no `.` (it separates the \
                 parts of a weight's name)",
                bad.name
            )));
        }
        let mut names = std::collections::HashSet::new();
        if let Some(dup) = self.layers.iter().find(|l| !names.insert(l.name.as_str())) {
            return Err(Error::InvalidConfig(format!(
                "two layers are named `{}`",
                dup.name
            )));
        }
        self.output_shapes().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chapter_mnist() -> Sequential {
        Sequential::new("m", [1, 28, 28])
            .conv2d(32, 3, Activation::Relu)
            .max_pool2d(2)
            .conv2d(64, 3, Activation::Relu)
            .max_pool2d(2)
            .conv2d(128, 3, Activation::Relu)
            .flatten()
            .dense(10, Activation::Softmax)
    }

    #[test]
    fn shapes_and_counts_match_the_chapter() {
        let spec = chapter_mnist();
        let shapes = spec.output_shapes().unwrap();
        let expected: Vec<Vec<i64>> = vec![
            vec![32, 26, 26],
            vec![32, 13, 13],
            vec![64, 11, 11],
            vec![64, 5, 5],
            vec![128, 3, 3],
            vec![1152],
            vec![10],
        ];
        assert_eq!(shapes, expected);
        let counts: Vec<i64> = spec
            .layer_param_counts()
            .unwrap()
            .iter()
            .map(|c| c.trainable)
            .collect();
        assert_eq!(counts, [320, 0, 18_496, 0, 73_856, 0, 11_530]);
        assert_eq!(spec.param_count().unwrap(), 104_202);
    }

    #[test]
    fn names_follow_keras() {
        let names: Vec<_> = chapter_mnist().layers.into_iter().map(|l| l.name).collect();
        assert_eq!(
            names,
            [
                "conv2d",
                "max_pooling2d",
                "conv2d_1",
                "max_pooling2d_1",
                "conv2d_2",
                "flatten",
                "dense"
            ]
        );
    }

    #[test]
    fn json_round_trip() {
        let spec = chapter_mnist();
        let json = serde_json::to_string_pretty(&spec).unwrap();
        assert_eq!(serde_json::from_str::<Sequential>(&json).unwrap(), spec);
    }

    #[test]
    fn a_layer_that_does_not_fit_names_itself() {
        let spec = Sequential::new("m", [1, 4, 4])
            .conv2d(8, 3, Activation::Relu)
            .conv2d(8, 3, Activation::Relu);
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("conv2d_1"), "{err}");
    }

    #[test]
    fn output_activation_is_the_final_softmax() {
        assert_eq!(chapter_mnist().output_activation(), Activation::Softmax);
        let spec = Sequential::new("m", [4]).dense(3, Activation::Relu);
        assert_eq!(spec.output_activation(), Activation::Linear);
    }
}
