//! The one interface through which training and evaluation read labelled images, whether
//! they are held in memory ([`Dataset`]) or in an on-disk cache
//! ([`super::DiskDataset`]).

use super::batches::Batch;
use super::dataset::Dataset;
use crate::error::Result;

/// Labelled images that can be read in batches, in any order of their indices.
///
/// Images come as bytes `(B, C, H, W)`, labels as `i64` `(B)`; the tensors may live on the
/// CPU or where the data is kept, and the training loop moves them to the model's device.
pub trait ImageDataset {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class names, indexed by label.
    fn classes(&self) -> &[String];

    /// Shape of one image, `(C, H, W)`.
    fn image_shape(&self) -> Vec<i64>;

    /// The samples at `order` (all of them in index order when `None`), in batches of
    /// `batch_size` (at least 1; the last batch may be smaller). An implementation may
    /// prepare the next batches in the background while the caller uses this one.
    fn batches_in(
        &self,
        order: Option<Vec<i64>>,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_>;
}

impl ImageDataset for Dataset {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn classes(&self) -> &[String] {
        Dataset::classes(self)
    }

    fn image_shape(&self) -> Vec<i64> {
        Dataset::image_shape(self)
    }

    fn batches_in(
        &self,
        order: Option<Vec<i64>>,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        Box::new(super::batches::Batches::in_order(self, order, batch_size).map(Ok))
    }
}
