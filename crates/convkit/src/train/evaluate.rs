//! Loss and accuracy of a model on a dataset.

use serde::{Deserialize, Serialize};

use super::metrics::RunningMetrics;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;

/// The result of [`Model::evaluate`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean loss per sample.
    pub loss: f64,
    /// Fraction of samples classified correctly.
    pub accuracy: f64,
    /// Number of samples.
    pub count: usize,
}

impl Model {
    /// Evaluates the model on `data` at inference (no dropout, no augmentation, libtorch's
    /// inference mode), in batches of `batch_size`, in the model's precision.
    pub fn evaluate(&self, data: &Dataset, batch_size: usize) -> Result<Evaluation> {
        if data.is_empty() {
            return Err(Error::InvalidConfig(
                "cannot evaluate on an empty dataset".into(),
            ));
        }
        self.check_input(data)?;
        let loss = self.loss()?;
        let _guard = crate::runtime::InferenceMode::new();
        let device = self.device();
        let mut metrics = RunningMetrics::new(device);
        for batch in data.batches(batch_size, None) {
            let (images, labels) = (
                batch.images.to_device(device),
                batch.labels.to_device(device),
            );
            let logits = self.forward(&images, false);
            metrics.add(
                &loss.sum(&logits, &labels),
                &loss.correct(&logits, &labels),
                labels.size()[0] as usize,
            );
        }
        let (loss, accuracy) = metrics.read();
        Ok(Evaluation {
            loss,
            accuracy,
            count: metrics.count(),
        })
    }
}
