//! A view of some samples of any [`ImageDataset`], by index, without copying them.

use std::rc::Rc;

use super::batches::Batch;
use super::image_dataset::ImageDataset;
use crate::error::Result;

/// The samples of `data` at `indices`, in that order, as a dataset of its own (sample `i`
/// of the subset is sample `indices[i]` of `data`).
pub struct Subset {
    data: Rc<dyn ImageDataset>,
    indices: Vec<i64>,
}

impl Subset {
    /// The view; every index must be below `data.len()`.
    pub fn new(data: Rc<dyn ImageDataset>, indices: Vec<i64>) -> Self {
        assert!(
            indices.iter().all(|&i| i >= 0 && (i as usize) < data.len()),
            "subset indices must lie in 0..{}",
            data.len()
        );
        Subset { data, indices }
    }

    /// Splits `data` at random (seeded) into `(training, validation)` views, the
    /// validation part holding `fraction` of the samples: the same split as
    /// [`super::Dataset::split_validation_shuffled`] makes of the same samples.
    pub fn split_validation_shuffled(
        data: Rc<dyn ImageDataset>,
        fraction: f64,
        seed: u64,
    ) -> Result<(Subset, Subset)> {
        let (train, validation) = super::dataset::shuffled_split(data.len(), fraction, seed)?;
        Ok((
            Subset::new(data.clone(), train),
            Subset::new(data, validation),
        ))
    }
}

impl ImageDataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn classes(&self) -> &[String] {
        self.data.classes()
    }

    fn image_shape(&self) -> Vec<i64> {
        self.data.image_shape()
    }

    fn batches_in(
        &self,
        order: Option<Vec<i64>>,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        let order = match order {
            Some(order) => order.iter().map(|&i| self.indices[i as usize]).collect(),
            None => self.indices.clone(),
        };
        self.data.batches_in(Some(order), batch_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use tch::{Device, Kind, Tensor};

    fn ten() -> Dataset {
        let images = Tensor::arange(10, (Kind::Uint8, Device::Cpu)).view([10, 1, 1, 1]);
        let labels = Tensor::from_slice(&[0i64, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        Dataset::new(images, labels, vec!["a".into(), "b".into()]).unwrap()
    }

    fn pixels(data: &dyn ImageDataset, order: Option<Vec<i64>>) -> Vec<i64> {
        data.batches_in(order, 3)
            .flat_map(|b| {
                Vec::<i64>::try_from(b.unwrap().images.view([-1]).to_kind(Kind::Int64)).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_shuffled_split_of_views_matches_the_split_of_tensors() {
        let data = Rc::new(ten());
        let (train, validation) = data.split_validation_shuffled(0.3, 4).unwrap();
        let (train_view, validation_view) =
            Subset::split_validation_shuffled(data.clone(), 0.3, 4).unwrap();
        assert_eq!(pixels(&train_view, None), pixels(&train, None));
        assert_eq!(pixels(&validation_view, None), pixels(&validation, None));
        // An order over the view indexes the view.
        assert_eq!(
            pixels(&train_view, Some(vec![2, 0])),
            pixels(&train, Some(vec![2, 0]))
        );
    }
}
