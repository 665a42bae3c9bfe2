//! The two sides of a layer: its description ([`LayerDescription`], what a model file
//! stores) and its built, runnable form ([`Layer`]).

use tch::{nn::Path, Tensor};

use super::activation::Activation;
use crate::error::{Error, Result};

/// A built layer or block: parameters live in the model's variable store, this holds
/// handles to them. Every runnable part of a model is one of these, from a user's `Dense`
/// to a block of a pretrained backbone.
pub trait Layer: std::fmt::Debug + Send {
    /// Runs the layer on a batch. `train` switches training-only behaviour (dropout,
    /// augmentation, batch statistics) on.
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor;
}

/// Values in a layer's parameters, split as Keras' summary splits them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamCounts {
    /// Values that get gradients.
    pub trainable: i64,
    /// Values that do not: frozen layers, batch-norm statistics.
    pub non_trainable: i64,
}

impl ParamCounts {
    /// Counts of a layer whose values all train.
    pub fn trainable(count: i64) -> ParamCounts {
        ParamCounts {
            trainable: count,
            non_trainable: 0,
        }
    }

    /// Both counts together.
    pub fn total(&self) -> i64 {
        self.trainable + self.non_trainable
    }
}

impl std::ops::Add for ParamCounts {
    type Output = ParamCounts;
    fn add(self, other: ParamCounts) -> ParamCounts {
        ParamCounts {
            trainable: self.trainable + other.trainable,
            non_trainable: self.non_trainable + other.non_trainable,
        }
    }
}

impl std::iter::Sum for ParamCounts {
    fn sum<I: Iterator<Item = ParamCounts>>(iter: I) -> ParamCounts {
        iter.fold(ParamCounts::default(), |a, b| a + b)
    }
}

/// What every layer's description knows without being built. A new layer is a file with a
/// description type implementing this trait and a built type implementing [`Layer`], plus
/// one line in the registry of `models::layer_spec`; the contract test in that module checks
/// every registered layer against its own [`LayerDescription::examples`].
///
/// Shapes are per sample, channels first, without the batch axis.
pub trait LayerDescription {
    /// The Keras class name, shown by summaries: `Conv2D`, `MaxPooling2D`, ...
    fn class_name(&self) -> &'static str;

    /// Output shape for an input of shape `input`; an error says why the input does not fit.
    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>>;

    /// Values in the parameters that [`LayerDescription::build`] creates for `input`.
    fn param_counts(&self, input: &[i64]) -> Result<ParamCounts>;

    /// Creates the parameters under `vs` and returns the runnable layer. `skip_activation`
    /// leaves a final softmax or sigmoid out (the model applies it in `predict`, the loss
    /// works on logits).
    fn build(&self, vs: Path, input: &[i64], skip_activation: bool) -> Result<Box<dyn Layer>>;

    /// Whether this is a random augmentation, active only in training.
    fn is_augmentation(&self) -> bool;

    /// The activation at the end of the layer, if it has one.
    fn activation(&self) -> Option<Activation> {
        None
    }

    /// The prefix of automatic layer names when it is not the layer's type tag (a backbone
    /// is named after its network).
    fn name_prefix(&self) -> Option<&'static str> {
        None
    }

    /// Instances with an input shape each, covering the layer's settings: what the contract
    /// test builds and runs.
    fn examples() -> Vec<(Self, Vec<i64>)>
    where
        Self: Sized;
}

/// Fails unless `shape` (per sample, without the batch axis) has `rank` axes.
pub(crate) fn expect_rank(layer: &str, shape: &[i64], rank: usize) -> Result<()> {
    if shape.len() == rank {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{layer} expects inputs with {rank} axes per sample, got shape {shape:?}"
        )))
    }
}
