//! The contract between a layer's description and its built, runnable form.

use tch::Tensor;

use crate::error::{Error, Result};

/// A built layer: parameters live in the model's variable store, this holds handles to them.
pub trait Layer: std::fmt::Debug + Send {
    /// Runs the layer on a batch. `train` switches training-only behaviour (dropout,
    /// augmentation) on.
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor;
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
