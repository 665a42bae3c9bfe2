//! The ImageNet head of MobileNet-style networks: global average pooling, dropout, dense.

use tch::{nn::Path, Tensor};

use super::init::glorot_uniform;
use super::layer::Layer;
use crate::error::Result;

/// A built head with `weight` `(classes, channels)` and `bias` `(classes)`.
///
/// # Shapes
/// - input: `(batch, channels, h, w)`
/// - output: logits `(batch, classes)`
#[derive(Debug)]
pub struct PooledClassifier {
    weight: Tensor,
    bias: Tensor,
    dropout: f64,
}

impl PooledClassifier {
    /// Creates the dense layer's parameters under `vs`; `dropout` applies in training.
    pub fn new(vs: &Path, channels: i64, classes: i64, dropout: f64) -> Result<Self> {
        Ok(PooledClassifier {
            weight: vs.f_var(
                "weight",
                &[classes, channels],
                glorot_uniform(channels, classes),
            )?,
            bias: vs.f_zeros("bias", &[classes])?,
            dropout,
        })
    }

    /// Values in the weight and bias, known without building.
    pub fn param_count(channels: i64, classes: i64) -> i64 {
        channels * classes + classes
    }
}

impl Layer for PooledClassifier {
    /// Logits of a feature map.
    fn forward(&self, features: &Tensor, train: bool) -> Tensor {
        features
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .dropout(self.dropout, train)
            .linear(&self.weight, Some(&self.bias))
    }
}
