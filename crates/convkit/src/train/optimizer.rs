//! Optimizer settings, with Keras' defaults and Keras' update rules.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

use tch::{nn::VarStore, Tensor};

use super::adam::KerasAdam;
use super::rmsprop::KerasRmsProp;
use crate::error::{Error, Result};

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
    /// Adam as Keras computes it (see [`KerasAdam`]).
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
            } => OptimizerState::Adam(KerasAdam::new(vs, learning_rate, beta_1, beta_2, epsilon)),
        })
    }
}

/// A built optimizer, updating its variables one step at a time.
#[derive(Debug)]
pub enum OptimizerState {
    /// Keras' RMSprop, implemented in convkit.
    RmsProp(KerasRmsProp),
    /// Keras' Adam, implemented in convkit.
    Adam(KerasAdam),
}

/// What an optimizer has learnt: its step count and its per-variable tensors (RMSprop's
/// `velocity.NAME`; Adam's `m.NAME` and `v.NAME`), named after the variables they follow.
#[derive(Debug)]
pub struct OptimizerSnapshot {
    /// Updates applied so far.
    pub steps: u64,
    /// The optimizer's tensors, on the CPU, by name.
    pub tensors: Vec<(String, Tensor)>,
}

impl OptimizerState {
    /// Clears the gradients, back-propagates `loss`, and applies one update.
    pub fn backward_step(&mut self, loss: &tch::Tensor) {
        match self {
            OptimizerState::RmsProp(opt) => opt.backward_step(loss),
            OptimizerState::Adam(opt) => opt.backward_step(loss),
        }
    }

    /// Clears the gradients, back-propagates `loss`, lets `between` see (and change) the
    /// trained variables' fresh gradients, then applies one update: the hook where data
    /// parallel training averages the gradients over processes.
    pub fn backward_step_with(
        &mut self,
        loss: &Tensor,
        between: impl FnOnce(&[Tensor]) -> Result<()>,
    ) -> Result<()> {
        match self {
            OptimizerState::RmsProp(opt) => {
                opt.zero_grad();
                loss.backward();
                between(&opt.params)?;
                opt.step();
            }
            OptimizerState::Adam(opt) => {
                opt.zero_grad();
                loss.backward();
                between(&opt.params)?;
                opt.step();
            }
        }
        Ok(())
    }

    /// Sets the learning rate of the following steps.
    pub fn set_lr(&mut self, learning_rate: f64) {
        match self {
            OptimizerState::RmsProp(opt) => opt.set_learning_rate(learning_rate),
            OptimizerState::Adam(opt) => opt.set_learning_rate(learning_rate),
        }
    }

    /// The optimizer's state, its tensors named after the variables of `vs` they follow.
    pub fn snapshot(&self, vs: &VarStore) -> Result<OptimizerSnapshot> {
        let names = variable_names(vs);
        let name_of = |p: &Tensor| {
            names.get(&(p.data_ptr() as usize)).cloned().ok_or_else(|| {
                Error::InvalidConfig("an optimized tensor is not a variable of the model".into())
            })
        };
        let cpu = |t: &Tensor| t.to_device(tch::Device::Cpu).contiguous();
        let mut tensors = Vec::new();
        let steps = match self {
            OptimizerState::RmsProp(opt) => {
                for (p, v) in opt.params.iter().zip(&opt.velocities) {
                    if let Some(v) = v {
                        tensors.push((format!("velocity.{}", name_of(p)?), cpu(v)));
                    }
                }
                opt.steps
            }
            OptimizerState::Adam(opt) => {
                for (p, moments) in opt.params.iter().zip(&opt.moments) {
                    if let Some((m, v)) = moments {
                        let name = name_of(p)?;
                        tensors.push((format!("m.{name}"), cpu(m)));
                        tensors.push((format!("v.{name}"), cpu(v)));
                    }
                }
                opt.steps
            }
        };
        Ok(OptimizerSnapshot { steps, tensors })
    }

    /// Takes back a [`OptimizerState::snapshot`] of the same optimizer over the same
    /// variables. Every tensor must name a trained variable of `vs` and have its shape.
    pub fn restore(&mut self, vs: &VarStore, snapshot: OptimizerSnapshot) -> Result<()> {
        let names = variable_names(vs);
        let mut saved: BTreeMap<String, Tensor> = snapshot.tensors.into_iter().collect();
        match self {
            OptimizerState::RmsProp(opt) => {
                let keys: Vec<Option<String>> = opt
                    .params
                    .iter()
                    .map(|p| names.get(&(p.data_ptr() as usize)).cloned())
                    .collect();
                for ((p, v), name) in opt.params.iter().zip(&mut opt.velocities).zip(keys) {
                    let Some(name) = name else { continue };
                    let key = format!("velocity.{name}");
                    *v = if saved.contains_key(&key) {
                        Some(take_like(&mut saved, key, p)?)
                    } else {
                        None
                    };
                }
                opt.steps = snapshot.steps;
            }
            OptimizerState::Adam(opt) => {
                for (p, moments) in opt.params.iter().zip(&mut opt.moments) {
                    let Some(name) = names.get(&(p.data_ptr() as usize)) else {
                        continue;
                    };
                    let key = format!("m.{name}");
                    *moments = if saved.contains_key(&key) {
                        Some((
                            take_like(&mut saved, key, p)?,
                            take_like(&mut saved, format!("v.{name}"), p)?,
                        ))
                    } else {
                        None
                    };
                }
                opt.steps = snapshot.steps;
            }
        }
        if let Some(key) = saved.keys().next() {
            return Err(Error::InvalidConfig(format!(
                "the saved optimizer state has `{key}`, which no trained variable of the model \
                 matches (a different optimizer or model?)"
            )));
        }
        Ok(())
    }
}

/// Removes `key` from `saved` and returns it as a tensor laid out as `like` (channels_last
/// kernels included), checking its shape.
fn take_like(saved: &mut BTreeMap<String, Tensor>, key: String, like: &Tensor) -> Result<Tensor> {
    let t = saved
        .remove(&key)
        .ok_or_else(|| Error::InvalidConfig(format!("the saved optimizer state lacks `{key}`")))?;
    if t.size() != like.size() {
        return Err(Error::InvalidConfig(format!(
            "the saved optimizer tensor `{key}` has shape {:?}, the variable {:?}",
            t.size(),
            like.size()
        )));
    }
    let mut out = like.zeros_like();
    tch::no_grad(|| out.copy_(&t));
    Ok(out)
}

/// The names of the variables of `vs`, by the address of their data.
fn variable_names(vs: &VarStore) -> HashMap<usize, String> {
    vs.variables()
        .into_iter()
        .map(|(name, t)| (t.data_ptr() as usize, name))
        .collect()
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

    /// A snapshot taken after some steps, restored into a fresh optimizer, continues exactly
    /// as the original does.
    #[test]
    fn snapshot_restores_the_exact_trajectory() {
        for optimizer in [Optimizer::rmsprop(), Optimizer::adam()] {
            let make = || {
                let vs = VarStore::new(Device::Cpu);
                let layer = vs.root() / "layer";
                let w = layer.var("w", &[3], Init::Const(1.0));
                let _b = layer.var("b", &[1], Init::Const(0.5));
                (vs, w)
            };
            let target = Tensor::from_slice(&[0.0f32, 3.0, -1.0]);
            let loss = |w: &Tensor| (w - &target).square().sum(Kind::Float);
            let (vs, w) = make();
            let mut opt = optimizer.build(&vs).unwrap();
            for _ in 0..3 {
                opt.backward_step(&loss(&w));
            }
            let snapshot = opt.snapshot(&vs).unwrap();
            assert_eq!(snapshot.steps, 3);
            let (mut vs2, w2) = make();
            tch::no_grad(|| vs2.copy(&vs)).unwrap();
            let mut opt2 = optimizer.build(&vs2).unwrap();
            opt2.restore(&vs2, snapshot).unwrap();
            for _ in 0..3 {
                opt.backward_step(&loss(&w));
                opt2.backward_step(&loss(&w2));
            }
            assert_eq!(
                Vec::<f32>::try_from(&w).unwrap(),
                Vec::<f32>::try_from(&w2).unwrap()
            );
            // A snapshot of another optimizer is refused, naming the tensor.
            let other = if matches!(optimizer, Optimizer::Adam { .. }) {
                Optimizer::rmsprop()
            } else {
                Optimizer::adam()
            };
            let mut opt3 = other.build(&vs2).unwrap();
            let err = opt3.restore(&vs2, opt.snapshot(&vs).unwrap()).unwrap_err();
            assert!(err.to_string().contains("layer.w"), "{err}");
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
