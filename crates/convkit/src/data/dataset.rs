//! An in-memory labelled image dataset, kept as compact bytes until a batch is drawn.

use tch::{Device, Kind, Tensor};

use super::batches::{shuffled_order, Batches};
use super::idx::IdxArray;
use crate::error::{Error, Result};

/// Images and labels as tensors: images `u8` `(N, channels, height, width)`, labels `i64`
/// `(N)`, plus the class names that the labels index.
#[derive(Debug)]
pub struct Dataset {
    images: Tensor,
    labels: Tensor,
    classes: Vec<String>,
}

/// Fails unless `fraction` is a valid validation split, in `[0, 1)`.
fn check_fraction(fraction: f64) -> Result<()> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::InvalidConfig(format!(
            "validation split must be in [0, 1), got {fraction}"
        )));
    }
    Ok(())
}

/// The indices `0..len` in a seeded random order ([`shuffled_order`]), split into
/// `(training, validation)`, the validation part holding `fraction` of them.
pub(crate) fn shuffled_split(len: usize, fraction: f64, seed: u64) -> Result<(Vec<i64>, Vec<i64>)> {
    check_fraction(fraction)?;
    let mut train = shuffled_order(len, seed);
    let validation = train.split_off(len - (len as f64 * fraction).round() as usize);
    Ok((train, validation))
}

impl Dataset {
    /// A dataset from tensors; checks that counts agree and that labels index `classes`.
    pub fn new(images: Tensor, labels: Tensor, classes: Vec<String>) -> Result<Dataset> {
        let (n_images, n_labels) = (
            images.size().first().copied(),
            labels.size().first().copied(),
        );
        if images.dim() != 4 || labels.dim() != 1 || n_images != n_labels {
            return Err(Error::InvalidConfig(format!(
                "a dataset needs images (N, C, H, W) and labels (N), got {:?} and {:?}",
                images.size(),
                labels.size()
            )));
        }
        if labels.numel() > 0 {
            let max = labels.max().int64_value(&[]);
            let min = labels.min().int64_value(&[]);
            if min < 0 || max as usize >= classes.len() {
                return Err(Error::InvalidConfig(format!(
                    "labels range over {min}..={max} but there are {} classes",
                    classes.len()
                )));
            }
        }
        Ok(Dataset {
            images,
            labels: labels.to_kind(Kind::Int64),
            classes,
        })
    }

    /// A dataset from IDX arrays as MNIST stores them: images `N x H x W` bytes (one
    /// channel) and labels `N`.
    pub fn from_idx(images: &IdxArray, labels: &IdxArray, classes: Vec<String>) -> Result<Dataset> {
        let dims: Vec<i64> = images.dims.iter().map(|&d| d as i64).collect();
        if dims.len() != 3 || labels.dims.len() != 1 {
            return Err(Error::InvalidConfig(format!(
                "expected images N x H x W and labels N, got {:?} and {:?}",
                images.dims, labels.dims
            )));
        }
        let images = Tensor::from_slice(&images.data).view([dims[0], 1, dims[1], dims[2]]);
        let labels = Tensor::from_slice(&labels.data).to_kind(Kind::Int64);
        Dataset::new(images, labels, classes)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All images, `(N, C, H, W)`.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// All labels, `(N)`.
    pub fn labels(&self) -> &Tensor {
        &self.labels
    }

    /// Class names, indexed by label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Shape of one image, `(C, H, W)`.
    pub fn image_shape(&self) -> Vec<i64> {
        self.images.size()[1..].to_vec()
    }

    /// Samples `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Dataset {
        let (start, end) = (start.min(self.len()) as i64, end.min(self.len()) as i64);
        Dataset {
            images: self.images.narrow(0, start, end - start.min(end)),
            labels: self.labels.narrow(0, start, end - start.min(end)),
            classes: self.classes.clone(),
        }
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[i64]) -> Dataset {
        let index = Tensor::from_slice(indices).to_device(self.images.device());
        Dataset {
            images: self.images.index_select(0, &index),
            labels: self.labels.index_select(0, &index),
            classes: self.classes.clone(),
        }
    }

    /// Splits the samples at random (seeded) into `(training, validation)`, the
    /// validation part holding `fraction` of them, as Keras' `image_dataset_from_directory`
    /// does with `validation_split` and `seed`.
    pub fn split_validation_shuffled(
        &self,
        fraction: f64,
        seed: u64,
    ) -> Result<(Dataset, Dataset)> {
        let (train, validation) = shuffled_split(self.len(), fraction, seed)?;
        Ok((self.select(&train), self.select(&validation)))
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Dataset {
        self.slice(0, n)
    }

    /// Splits off the last `fraction` of the samples as validation data, before any
    /// shuffling, as Keras' `validation_split` does. Returns `(training, validation)`.
    pub fn split_validation(&self, fraction: f64) -> Result<(Dataset, Dataset)> {
        check_fraction(fraction)?;
        let n_val = (self.len() as f64 * fraction).round() as usize;
        let n_train = self.len() - n_val;
        Ok((self.slice(0, n_train), self.slice(n_train, self.len())))
    }

    /// The same data on `device` (a copy unless it is already there).
    pub fn to_device(&self, device: Device) -> Dataset {
        Dataset {
            images: self.images.to_device(device),
            labels: self.labels.to_device(device),
            classes: self.classes.clone(),
        }
    }

    /// Batches of `batch_size`, in a seeded random order when `shuffle_seed` is given.
    pub fn batches(&self, batch_size: usize, shuffle_seed: Option<u64>) -> Batches<'_> {
        Batches::new(self, batch_size, shuffle_seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten() -> Dataset {
        let images = Tensor::arange(10, (Kind::Uint8, Device::Cpu)).view([10, 1, 1, 1]);
        let labels = Tensor::from_slice(&[0i64, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        Dataset::new(images, labels, vec!["a".into(), "b".into()]).unwrap()
    }

    #[test]
    fn validation_split_takes_the_tail() {
        let (train, val) = ten().split_validation(0.3).unwrap();
        assert_eq!((train.len(), val.len()), (7, 3));
        assert_eq!(val.images().int64_value(&[0, 0, 0, 0]), 7);
    }

    #[test]
    fn rejects_labels_beyond_the_classes() {
        let images = Tensor::zeros([2, 1, 1, 1], (Kind::Uint8, Device::Cpu));
        let err = Dataset::new(
            images,
            Tensor::from_slice(&[0i64, 2]),
            vec!["a".into(), "b".into()],
        );
        assert!(err.unwrap_err().to_string().contains("2 classes"));
    }

    #[test]
    fn rejects_mismatched_counts() {
        let images = Tensor::zeros([3, 1, 1, 1], (Kind::Uint8, Device::Cpu));
        assert!(Dataset::new(
            images,
            Tensor::from_slice(&[0i64, 1]),
            vec!["a".into(), "b".into()]
        )
        .is_err());
    }
}
