//! Batch normalization as a layer of its own, as Keras' `BatchNormalization`: batch
//! statistics in training, moving averages of them at inference.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::layer::{Layer, LayerDescription, ParamCounts};
use crate::error::{Error, Result};

/// Description of a batch normalization over the channel axis (the first axis of a sample:
/// channels of a feature map, or features of a vector).
///
/// In training it normalises with the batch's mean and variance and updates the moving
/// averages, `moving = moving * momentum + batch * (1 - momentum)`; at inference it
/// normalises with the moving averages. Keras' defaults: momentum 0.99, epsilon 1e-3.
///
/// # Shapes
/// - input: `(batch, channels, ...)`
/// - output: the same
///
/// Parameters, named as PyTorch names them: `weight` (Keras' `gamma`, ones) and `bias`
/// (`beta`, zeros) train; `running_mean` (zeros) and `running_var` (ones) do not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNormalizationSpec {
    /// Weight of the old value in the moving averages, in `[0, 1)`.
    #[serde(default = "keras_momentum")]
    pub momentum: f64,
    /// Added to the variance before its square root.
    #[serde(default = "keras_epsilon")]
    pub epsilon: f64,
}

fn keras_momentum() -> f64 {
    0.99
}

fn keras_epsilon() -> f64 {
    1e-3
}

impl Default for BatchNormalizationSpec {
    fn default() -> Self {
        BatchNormalizationSpec {
            momentum: keras_momentum(),
            epsilon: keras_epsilon(),
        }
    }
}

/// A built [`BatchNormalizationSpec`].
#[derive(Debug)]
pub struct BatchNormalization {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f64,
    epsilon: f64,
}

impl Layer for BatchNormalization {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        Tensor::batch_norm(
            xs,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            // libtorch weighs the new value: 1 - Keras' momentum
            1.0 - self.momentum,
            self.epsilon,
            false,
        )
    }
}

impl LayerDescription for BatchNormalizationSpec {
    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        if input.is_empty() {
            return Err(Error::InvalidConfig(
                "batch_normalization needs a channel axis".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) || self.epsilon <= 0.0 {
            return Err(Error::InvalidConfig(format!(
                "batch_normalization: momentum must be in [0, 1) and epsilon positive, got {self:?}"
            )));
        }
        Ok(input.to_vec())
    }

    fn param_counts(&self, input: &[i64]) -> Result<ParamCounts> {
        let channels = input.first().copied().unwrap_or(0);
        Ok(ParamCounts {
            trainable: 2 * channels,
            non_trainable: 2 * channels,
        })
    }

    fn build(&self, vs: Path, input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        self.output_shape(input)?;
        let channels = input[0];
        Ok(Box::new(BatchNormalization {
            weight: vs.f_ones("weight", &[channels])?,
            bias: vs.f_zeros("bias", &[channels])?,
            running_mean: vs.f_zeros_no_train("running_mean", &[channels])?,
            running_var: vs.f_ones_no_train("running_var", &[channels])?,
            momentum: self.momentum,
            epsilon: self.epsilon,
        }))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        vec![
            (BatchNormalizationSpec::default(), vec![4, 5, 6]),
            (BatchNormalizationSpec::default(), vec![7]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn trains_on_batch_statistics_and_infers_with_the_moving_ones() {
        let vs = VarStore::new(Device::Cpu);
        let spec = BatchNormalizationSpec::default();
        let layer = spec.build(vs.root(), &[2, 3, 3], false).unwrap();
        let xs = Tensor::randn([8, 2, 3, 3], (Kind::Float, Device::Cpu)) * 3.0 + 5.0;
        let ys = layer.forward(&xs, true);
        let mean = ys.mean(Kind::Float).double_value(&[]);
        assert!(mean.abs() < 1e-4, "mean {mean}");
        // one step moved the moving mean 1% of the way to the batch mean (about 5)
        let moved = vs.variables()["running_mean"]
            .mean(Kind::Float)
            .double_value(&[]);
        assert!((0.03..0.07).contains(&moved), "moving mean {moved}");
        // at inference nothing moves, and the moving statistics are used
        let before = vs.variables()["running_var"].copy();
        let inferred = layer.forward(&xs, false);
        assert!(vs.variables()["running_var"].equal(&before));
        assert!(inferred.mean(Kind::Float).double_value(&[]) > 4.0);
        assert_eq!(
            spec.param_counts(&[32, 9, 9]).unwrap(),
            ParamCounts {
                trainable: 64,
                non_trainable: 64
            }
        );
    }
}
