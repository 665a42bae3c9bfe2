//! Loss and accuracy of a model on a dataset.

use super::data_parallel::DataParallel;
use super::evaluation::{evaluate_samples, Evaluation};
use super::tta::Tta;
use crate::data::ImageDataset;
use crate::error::{Error, Result};
use crate::model::Model;

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
        Some(group) if group.world_size() > 1 => {
            DataParallel::new(&group).evaluate_with(model, data, batch_size, tta)
        }
        _ => evaluate_samples(model, data, None, batch_size, tta),
    }
}
