//! Optimizer settings, with Keras' defaults, built on libtorch's own optimizers.

use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig as _, VarStore};

use crate::error::Result;

/// An optimizer and its settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Optimizer {
    /// RMSprop: `v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + epsilon)`.
    #[serde(rename = "rmsprop")]
    RmsProp {
        /// Step size.
        learning_rate: f64,
        /// Decay of the squared-gradient average.
        rho: f64,
        /// Added to the denominator.
        epsilon: f64,
    },
    /// Adam.
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

    /// Builds libtorch's optimizer over the trainable variables of `vs`.
    pub fn build(&self, vs: &VarStore) -> Result<nn::Optimizer> {
        Ok(match *self {
            Optimizer::RmsProp {
                learning_rate,
                rho,
                epsilon,
            } => nn::RmsProp {
                alpha: rho,
                eps: epsilon,
                wd: 0.0,
                momentum: 0.0,
                centered: false,
            }
            .build(vs, learning_rate)?,
            Optimizer::Adam {
                learning_rate,
                beta_1,
                beta_2,
                epsilon,
            } => nn::Adam {
                beta1: beta_1,
                beta2: beta_2,
                wd: 0.0,
                eps: epsilon,
                amsgrad: false,
            }
            .build(vs, learning_rate)?,
        })
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
        // g = 2 (w - t) = [2, -4]; v = 0.1 g^2; step = lr g / (sqrt(v) + eps)
        let expected: Vec<f64> = [2.0f64, -4.0]
            .iter()
            .map(|g| 1.0 - 1e-3 * g / ((0.1 * g * g).sqrt() + 1e-7))
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
