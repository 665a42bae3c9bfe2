//! Mixup (Zhang et al., 2018): training on blends of two images, with the loss blended the
//! same way.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::nn::Loss;

/// Training on mixed batches: each batch is blended with a shuffled copy of itself,
/// `lambda * x + (1 - lambda) * x[perm]`, and the loss is `lambda * loss(y) + (1 - lambda) *
/// loss(y[perm])`, with one `lambda ~ Beta(alpha, alpha)` per batch (as the paper and timm's
/// batch mode). A regularizer: the model sees fewer of the exact training images, and learns
/// less confident, smoother boundaries between the classes. The draws come from libtorch's
/// generator, which the training loop seeds per epoch, so a mixed run resumes exactly.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mixup {
    /// The Beta distribution's parameter: 0.2 mixes lightly (most `lambda` near 0 or 1), 1.0
    /// draws `lambda` uniformly.
    pub alpha: f64,
}

impl Mixup {
    /// Refuses an `alpha` that is not positive and finite.
    pub fn check(&self) -> Result<()> {
        if self.alpha > 0.0 && self.alpha.is_finite() {
            Ok(())
        } else {
            Err(Error::InvalidConfig(format!(
                "the mixup alpha must be positive, not {}",
                self.alpha
            )))
        }
    }

    /// Blends `images` (a batch, any dtype) with a shuffled copy of itself.
    pub(crate) fn mix(&self, images: &Tensor, labels: &Tensor) -> MixedBatch {
        let lambda = self.draw_lambda();
        let size = images.size()[0];
        let order = Tensor::randperm(size, (Kind::Int64, images.device()));
        let images = if images.is_floating_point() {
            images.shallow_clone()
        } else {
            images.to_kind(Kind::Float)
        };
        let mixed = &images * lambda + images.index_select(0, &order) * (1.0 - lambda);
        MixedBatch {
            images: mixed,
            other_labels: labels.index_select(0, &order.to_device(labels.device())),
            lambda,
        }
    }

    /// One draw of `Beta(alpha, alpha)`, as two Gamma draws.
    fn draw_lambda(&self) -> f64 {
        let gammas = Tensor::from_slice(&[self.alpha, self.alpha]).internal_standard_gamma();
        let (a, b) = (gammas.double_value(&[0]), gammas.double_value(&[1]));
        if a + b > 0.0 {
            a / (a + b)
        } else {
            // Both draws underflowed (tiny alpha): the mixture is one of its two images.
            1.0
        }
    }
}

/// A batch blended by [`Mixup::mix`].
pub(crate) struct MixedBatch {
    /// The blended images (floating point).
    pub images: Tensor,
    /// The labels of the images blended in, in batch order.
    pub other_labels: Tensor,
    /// The weight of the batch's own images and labels.
    pub lambda: f64,
}

impl MixedBatch {
    /// The blended loss of `logits` against the batch's own `labels` and the others.
    pub fn loss(&self, loss: Loss, logits: &Tensor, labels: &Tensor, smoothing: f64) -> Tensor {
        loss.smoothed_mean(logits, labels, smoothing) * self.lambda
            + loss.smoothed_mean(logits, &self.other_labels, smoothing) * (1.0 - self.lambda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mixed_batch_blends_images_and_losses_with_one_lambda() {
        tch::manual_seed(7);
        let images = Tensor::from_slice(&[0u8, 100, 200, 250]).view([4, 1, 1, 1]);
        let labels = Tensor::from_slice(&[0i64, 1, 0, 1]);
        let mixup = Mixup { alpha: 0.4 };
        let mut lambdas = Vec::new();
        for _ in 0..200 {
            let batch = mixup.mix(&images, &labels);
            let l = batch.lambda;
            assert!((0.0..=1.0).contains(&l), "{l}");
            // Each blended pixel is l * own + (1 - l) * partner, and the other label is the
            // partner's: recover the partner from its pixel value.
            for i in 0..4 {
                if 1.0 - l < 1e-3 {
                    break;
                }
                let own = images.int64_value(&[i, 0, 0, 0]) as f64;
                let got = batch.images.double_value(&[i, 0, 0, 0]);
                let value = (got - l * own) / (1.0 - l);
                let partner = (0..4)
                    .find(|&j| (images.int64_value(&[j, 0, 0, 0]) as f64 - value).abs() < 0.5)
                    .expect("a partner in the batch");
                assert_eq!(
                    batch.other_labels.int64_value(&[i]),
                    labels.int64_value(&[partner])
                );
            }
            lambdas.push(l);
        }
        // Beta(0.4, 0.4) has mean 1/2 and puts most of its mass near 0 and 1.
        let mean = lambdas.iter().sum::<f64>() / lambdas.len() as f64;
        let extreme = lambdas.iter().filter(|l| **l < 0.1 || **l > 0.9).count();
        assert!((mean - 0.5).abs() < 0.1, "{mean}");
        assert!(extreme > 60, "{extreme}");
        // The loss is the blend of the two plain losses.
        let logits = Tensor::from_slice(&[0.3f32, -1.0, 2.0, 0.0]).view([4, 1]);
        let batch = mixup.mix(&images, &labels);
        let loss = Loss::BinaryCrossentropy;
        let expected = loss.mean(&logits, &labels).double_value(&[]) * batch.lambda
            + loss.mean(&logits, &batch.other_labels).double_value(&[]) * (1.0 - batch.lambda);
        let got = batch.loss(loss, &logits, &labels, 0.0).double_value(&[]);
        assert!((got - expected).abs() < 1e-6, "{got} {expected}");
        assert!(Mixup { alpha: 0.0 }.check().is_err() && mixup.check().is_ok());
    }
}
