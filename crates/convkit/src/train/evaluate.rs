//! Loss and accuracy of a model on a dataset.

use serde::{Deserialize, Serialize};

use super::metrics::RunningMetrics;
use super::tta::Tta;
use crate::data::ImageDataset;
use crate::error::{Error, Result};
use crate::model::Model;

/// The result of [`train::evaluate`](crate::train::evaluate).
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

/// Evaluates the model on `data` at inference (no dropout, no augmentation, libtorch's
/// inference mode), in batches of `batch_size`, in the model's precision.
///
/// In a data-parallel run ([`crate::distributed`]) every process evaluates its part of
/// `data` and all get the result over the whole of it: every process must call it.
pub fn evaluate(model: &Model, data: &dyn ImageDataset, batch_size: usize) -> Result<Evaluation> {
    evaluate_with(model, data, batch_size, Tta::None)
}

/// [`train::evaluate`](crate::train::evaluate()) with test-time augmentation `tta`: loss and
/// accuracy come from the class probabilities averaged over the views of each image (see
/// [`Tta::logits`]), and the result records `tta`. [`Tta::HorizontalFlip`] runs the model
/// twice per image. Fails before computing anything when the model cannot be measured
/// that way ([`Tta::check`]); in a data-parallel run every process then fails alike.
pub fn evaluate_with(
    model: &Model,
    data: &dyn ImageDataset,
    batch_size: usize,
    tta: Tta,
) -> Result<Evaluation> {
    tta.check(model)?;
    if data.is_empty() {
        return Err(Error::InvalidConfig(
            "cannot evaluate on an empty dataset".into(),
        ));
    }
    match crate::distributed::default_group() {
        Some(group) if group.world_size() > 1 => super::data_parallel::DataParallel::new(&group)
            .evaluate_with(model, data, batch_size, tta),
        _ => evaluate_samples(model, data, None, batch_size, tta),
    }
}

/// [`evaluate_with`] over the samples at `order` (all when `None`); no sample gives a
/// count of 0 and NaN means.
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
