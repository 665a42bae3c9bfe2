//! The result of an evaluation, and the loop that computes it in one process.

use serde::{Deserialize, Serialize};

use super::metrics::RunningMetrics;
use super::tta::Tta;
use crate::data::ImageDataset;
use crate::error::Result;
use crate::model::Model;

/// The result of [`train::evaluate`](crate::train::evaluate()).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean loss per sample.
    pub loss: f64,
    /// Fraction of samples classified correctly.
    pub accuracy: f64,
    /// Number of samples.
    pub count: usize,
    /// The test-time augmentation the figures come from ([`Tta::None`] in files written
    /// before convkit recorded it).
    #[serde(default)]
    pub tta: Tta,
}

/// The model evaluated in this process on the samples of `data` at `order` (all when
/// `None`) with test-time augmentation `tta`, in batches of `batch_size`; no sample gives
/// a count of 0 and NaN means. [`train::evaluate_with`](crate::train::evaluate_with) calls
/// it directly or, in a data-parallel run, on each process's part.
pub(crate) fn evaluate_samples(
    model: &Model,
    data: &dyn ImageDataset,
    order: Option<Vec<i64>>,
    batch_size: usize,
    tta: Tta,
) -> Result<Evaluation> {
    model.check_input(data)?;
    let loss = model.loss()?;
    let _guard = crate::runtime::InferenceMode::new();
    let device = model.device();
    let mut metrics = RunningMetrics::new(device);
    for batch in data.batches_in(order, batch_size) {
        let batch = batch?;
        let (images, labels) = (
            batch.images.to_device(device),
            batch.labels.to_device(device),
        );
        let logits = tta.logits(model, &images)?;
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
        tta,
    })
}
