//! Losses, computed on logits.

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use super::activation::Activation;
use crate::error::{Error, Result};

/// A classification loss. Both work on logits, which equals Keras' loss on the softmax or
/// sigmoid output without its clipping of probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Cross-entropy of a softmax over classes, against integer labels.
    SparseCategoricalCrossentropy,
    /// Cross-entropy of a sigmoid output, against 0/1 labels.
    BinaryCrossentropy,
}

impl Loss {
    /// The loss that matches a model's final activation.
    pub fn for_output(activation: Activation) -> Result<Loss> {
        match activation {
            Activation::Softmax => Ok(Loss::SparseCategoricalCrossentropy),
            Activation::Sigmoid => Ok(Loss::BinaryCrossentropy),
            other => Err(Error::InvalidConfig(format!(
                "a classifier must end in a softmax or a sigmoid, this one ends in {other:?}"
            ))),
        }
    }

    fn compute(
        self,
        logits: &Tensor,
        labels: &Tensor,
        reduction: Reduction,
        smoothing: f64,
    ) -> Tensor {
        match self {
            Loss::SparseCategoricalCrossentropy => {
                logits.cross_entropy_loss::<Tensor>(labels, None, reduction, -100, smoothing)
            }
            Loss::BinaryCrossentropy => {
                let targets = labels.to_kind(logits.kind());
                let targets = if smoothing > 0.0 {
                    targets * (1.0 - smoothing) + 0.5 * smoothing
                } else {
                    targets
                };
                logits
                    .view([-1])
                    .binary_cross_entropy_with_logits::<Tensor>(&targets, None, None, reduction)
            }
        }
    }

    /// Mean loss over the batch (what is minimised).
    pub fn mean(self, logits: &Tensor, labels: &Tensor) -> Tensor {
        self.compute(logits, labels, Reduction::Mean, 0.0)
    }

    /// Mean loss over the batch against labels smoothed by `smoothing` (Szegedy et al.), as
    /// Keras' and PyTorch's `label_smoothing`: each one-hot target becomes
    /// `(1 - smoothing) * target + smoothing / classes`, with 2 classes for a sigmoid output
    /// (`1 -> 1 - smoothing / 2`, `0 -> smoothing / 2`). 0 is the plain loss.
    pub fn smoothed_mean(self, logits: &Tensor, labels: &Tensor, smoothing: f64) -> Tensor {
        self.compute(logits, labels, Reduction::Mean, smoothing)
    }

    /// Summed loss over the batch (what evaluation accumulates).
    pub fn sum(self, logits: &Tensor, labels: &Tensor) -> Tensor {
        self.compute(logits, labels, Reduction::Sum, 0.0)
    }

    /// Each sample's loss, shape `(B,)`.
    pub fn per_sample(self, logits: &Tensor, labels: &Tensor) -> Tensor {
        self.compute(logits, labels, Reduction::None, 0.0)
    }

    /// Number of correct predictions in the batch, as a 0-d tensor.
    pub fn correct(self, logits: &Tensor, labels: &Tensor) -> Tensor {
        let predicted = match self {
            Loss::SparseCategoricalCrossentropy => logits.argmax(-1, false),
            Loss::BinaryCrossentropy => logits.view([-1]).gt(0.0).to_kind(Kind::Int64),
        };
        predicted.eq_tensor(labels).sum(Kind::Int64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categorical_matches_the_formula() {
        let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let labels = Tensor::from_slice(&[0i64, 0]);
        let loss = Loss::SparseCategoricalCrossentropy;
        let expected = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + 1.0f64.exp()).ln()) / 2.0;
        assert!((loss.mean(&logits, &labels).double_value(&[]) - expected).abs() < 1e-6);
        assert_eq!(loss.correct(&logits, &labels).int64_value(&[]), 1);
    }

    #[test]
    fn binary_matches_the_formula() {
        let logits = Tensor::from_slice(&[0.0f32, 3.0]).view([2, 1]);
        let labels = Tensor::from_slice(&[1i64, 0]);
        let loss = Loss::BinaryCrossentropy;
        let expected = 2.0f64.ln() + (1.0 + 3.0f64.exp()).ln();
        assert!((loss.sum(&logits, &labels).double_value(&[]) - expected).abs() < 1e-5);
        assert_eq!(loss.correct(&logits, &labels).int64_value(&[]), 0);
    }

    /// Smoothed targets by hand: categorical over 2 classes and binary give the same
    /// numbers for the same logit gap (0.1 smoothing: targets 0.95 and 0.05).
    #[test]
    fn label_smoothing_matches_the_formula() {
        let (eps, gap) = (0.1f64, 2.0f64);
        let p = 1.0 / (1.0 + (-gap).exp());
        let expected = -((1.0 - eps / 2.0) * p.ln() + eps / 2.0 * (1.0 - p).ln());
        let categorical = Loss::SparseCategoricalCrossentropy.smoothed_mean(
            &Tensor::from_slice(&[gap as f32, 0.0]).view([1, 2]),
            &Tensor::from_slice(&[0i64]),
            eps,
        );
        let binary = Loss::BinaryCrossentropy.smoothed_mean(
            &Tensor::from_slice(&[gap as f32]).view([1, 1]),
            &Tensor::from_slice(&[1i64]),
            eps,
        );
        for got in [categorical, binary] {
            assert!((got.double_value(&[]) - expected).abs() < 1e-6, "{got}");
        }
    }

    #[test]
    fn a_linear_output_has_no_classification_loss() {
        assert!(Loss::for_output(Activation::Relu).is_err());
    }
}
