//! Optimizer settings, with Keras' defaults and Keras' update rules.

use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig as _, VarStore};

use super::rmsprop::KerasRmsProp;
use crate::error::Result;

/// An optimizer and its settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Optimizer {
    /// RMSprop as Keras computes it: `v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + epsilon)`
    /// (see [`KerasRmsProp`]).
    #[serde(rename = "rmsprop")]
    RmsProp {
        /// Step size.
        learning_rate: f64,
        /// Decay of the squared-gradient average.
        rho: f64,
        /// Added to the denominator.
        epsilon: f64,
    },
    /// Adam (libtorch's; it adds epsilon after the bias correction of `sqrt(v)`, where Keras
    /// adds it before, a difference of order epsilon).
    Adam {
        /// Step size.
        learning_rate: f64,
        /// Decay of the gradient average.
        beta_1: f64,
        /// Decay of the squared-gradient average.
        beta_2: f64,
        /// Added to the denominator.
        epsilon: f64,
    },
}

impl Optimizer {
    /// RMSprop with Keras' defaults: learning rate 1e-3, rho 0.9, epsilon 1e-7, no momentum.
    /// (PyTorch's defaults differ: alpha 0.99, eps 1e-8.)
    pub fn rmsprop() -> Self {
        Optimizer::RmsProp {
            learning_rate: 1e-3,
            rho: 0.9,
            epsilon: 1e-7,
        }
    }

    /// Adam with Keras' defaults: learning rate 1e-3, betas 0.9 and 0.999, epsilon 1e-7.
    pub fn adam() -> Self {
        Optimizer::Adam {
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        }
    }

    /// The same optimizer with another learning rate.
    pub fn with_learning_rate(mut self, lr: f64) -> Self {
        match &mut self {
            Optimizer::RmsProp { learning_rate, .. } | Optimizer::Adam { learning_rate, .. } => {
                *learning_rate = lr
            }
        }
        self
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        match *self {
            Optimizer::RmsProp { learning_rate, .. } | Optimizer::Adam { learning_rate, .. } => {
                learning_rate
            }
        }
    }

    /// Builds the optimizer's state over the trainable variables of `vs`.
    pub fn build(&self, vs: &VarStore) -> Result<OptimizerState> {
        Ok(match *self {
            Optimizer::RmsProp {
                learning_rate,
                rho,
                epsilon,
            } => OptimizerState::RmsProp(KerasRmsProp::new(vs, learning_rate, rho, epsilon)),
            Optimizer::Adam {
                learning_rate,
                beta_1,
                beta_2,
                epsilon,
            } => OptimizerState::Torch(
                nn::Adam {
                    beta1: beta_1,
                    beta2: beta_2,
                    wd: 0.0,
                    eps: epsilon,
                    amsgrad: false,
                }
                .build(vs, learning_rate)?,
            ),
        })
    }
}

/// A built optimizer, updating its variables one step at a time.
#[derive(Debug)]
pub enum OptimizerState {
    /// Keras' RMSprop, implemented in convkit.
    RmsProp(KerasRmsProp),
    /// One of libtorch's optimizers.
    Torch(nn::Optimizer),
}

impl OptimizerState {
    /// Clears the gradients, back-propagates `loss`, and applies one update.
    pub fn backward_step(&mut self, loss: &tch::Tensor) {
        match self {
            OptimizerState::RmsProp(opt) => opt.backward_step(loss),
            OptimizerState::Torch(opt) => opt.backward_step(loss),
        }
    }

    /// Sets the learning rate of the following steps.
    pub fn set_lr(&mut self, learning_rate: f64) {
        match self {
            OptimizerState::RmsProp(opt) => opt.set_learning_rate(learning_rate),
            OptimizerState::Torch(opt) => opt.set_lr(learning_rate),
        }
    }
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::rmsprop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Init, Device, Kind, Tensor};

    /// One RMSprop step from zero state, computed by hand with Keras' formula.
    #[test]
    fn rmsprop_step_matches_keras_formula() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[2], Init::Const(1.0));
        let mut opt = Optimizer::rmsprop().build(&vs).unwrap();
        let target = Tensor::from_slice(&[0.0f32, 3.0]);
        let loss = (&w - &target).square().sum(Kind::Float);
        opt.backward_step(&loss);
        // g = 2 (w - t) = [2, -4]; v = 0.1 g^2; step = lr g / sqrt(v + eps), as Keras
        let expected: Vec<f64> = [2.0f64, -4.0]
            .iter()
            .map(|g| 1.0 - 1e-3 * g / (0.1 * g * g + 1e-7).sqrt())
            .collect();
        let got: Vec<f32> = Vec::try_from(&w).unwrap();
        for (g, e) in got.iter().zip(&expected) {
            assert!((*g as f64 - e).abs() < 1e-6, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn learning_rate_is_settable() {
        assert_eq!(
            Optimizer::rmsprop()
                .with_learning_rate(1e-5)
                .learning_rate(),
            1e-5
        );
        let json = serde_json::to_string(&Optimizer::rmsprop()).unwrap();
        assert!(json.contains("\"name\":\"rmsprop\""), "{json}");
    }
}
