//! Iteration over a dataset in batches, optionally in a seeded random order.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::dataset::Dataset;

/// One batch: images `(B, C, H, W)` as stored (bytes) and labels `(B)`.
#[derive(Debug)]
pub struct Batch {
    /// The images.
    pub images: Tensor,
    /// The labels.
    pub labels: Tensor,
}

/// A seeded random permutation of `0..len`, drawn from a ChaCha8 generator: the same on
/// every machine for the same seed.
pub fn shuffled_order(len: usize, seed: u64) -> Vec<i64> {
    let mut index: Vec<i64> = (0..len as i64).collect();
    index.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    index
}

/// Iterator over the batches of a [`Dataset`]; the last batch may be smaller.
#[derive(Debug)]
pub struct Batches<'a> {
    dataset: &'a Dataset,
    order: Option<Tensor>,
    batch_size: usize,
    next: usize,
}

impl<'a> Batches<'a> {
    /// Batches of `batch_size` (at least 1) over `dataset`; `shuffle_seed` draws a random
    /// order from a ChaCha8 generator, the same on every machine for the same seed.
    pub fn new(dataset: &'a Dataset, batch_size: usize, shuffle_seed: Option<u64>) -> Self {
        let order = shuffle_seed.map(|seed| shuffled_order(dataset.len(), seed));
        Batches::in_order(dataset, order, batch_size)
    }

    /// Batches of `batch_size` (at least 1) over the samples at `order` (every sample in
    /// index order when `None`); indices may repeat and need not cover the dataset.
    pub fn in_order(dataset: &'a Dataset, order: Option<Vec<i64>>, batch_size: usize) -> Self {
        let order =
            order.map(|index| Tensor::from_slice(&index).to_device(dataset.images().device()));
        Batches {
            dataset,
            order,
            batch_size: batch_size.max(1),
            next: 0,
        }
    }

    /// Number of batches in all.
    pub fn batch_count(&self) -> usize {
        self.len_in_order().div_ceil(self.batch_size)
    }

    /// Number of samples this iterator visits.
    fn len_in_order(&self) -> usize {
        match &self.order {
            Some(order) => order.size()[0] as usize,
            None => self.dataset.len(),
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let n = self.len_in_order();
        if self.next >= n {
            return None;
        }
        let (start, len) = (self.next as i64, self.batch_size.min(n - self.next) as i64);
        self.next += len as usize;
        Some(match &self.order {
            Some(order) => {
                let index = order.narrow(0, start, len);
                Batch {
                    images: self.dataset.images().index_select(0, &index),
                    labels: self.dataset.labels().index_select(0, &index),
                }
            }
            None => Batch {
                images: self.dataset.images().narrow(0, start, len),
                labels: self.dataset.labels().narrow(0, start, len),
            },
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len_in_order();
        let left = (n - self.next.min(n)).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn dataset(n: i64) -> Dataset {
        let images = Tensor::arange(n, (Kind::Uint8, Device::Cpu)).view([n, 1, 1, 1]);
        Dataset::new(
            images,
            Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
            vec!["x".into()],
        )
        .unwrap()
    }

    fn firsts(batches: Batches<'_>) -> Vec<Vec<i64>> {
        batches
            .map(|b| Vec::<i64>::try_from(b.images.view([-1]).to_kind(Kind::Int64)).unwrap())
            .collect()
    }

    #[test]
    fn in_order_with_a_short_last_batch() {
        let data = dataset(5);
        assert_eq!(data.batches(2, None).batch_count(), 3);
        assert_eq!(
            firsts(data.batches(2, None)),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let data = dataset(50);
        let a: Vec<i64> = firsts(data.batches(7, Some(3))).concat();
        let b: Vec<i64> = firsts(data.batches(7, Some(3))).concat();
        let c: Vec<i64> = firsts(data.batches(7, Some(4))).concat();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }
}
