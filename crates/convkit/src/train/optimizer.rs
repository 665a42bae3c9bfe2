//! Optimizer settings, with Keras' defaults and Keras' update rules.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

use tch::{nn::VarStore, Tensor};

use super::adam::KerasAdam;
use super::rmsprop::KerasRmsProp;
use super::sgd::Sgd;
use super::weight_decay::WeightDecay;
use crate::error::{Error, Result};

/// An optimizer and its settings. Weight decay applies to kernels and dense weights only
/// ([`WeightDecay`]); 0 (the default) is none.
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
        /// L2 weight decay, added to the gradient.
        #[serde(default)]
        weight_decay: f64,
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
        /// L2 weight decay, added to the gradient (as PyTorch's `Adam`; see AdamW).
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam with decoupled weight decay (Loshchilov and Hutter; PyTorch's `AdamW`):
    /// `w -= lr * weight_decay * w` beside Adam's step, so that the decay does not pass
    /// through Adam's per-weight scaling.
    #[serde(rename = "adamw")]
    AdamW {
        /// Step size.
        learning_rate: f64,
        /// Decay of the gradient average.
        beta_1: f64,
        /// Decay of the squared-gradient average.
        beta_2: f64,
        /// Added to the denominator.
        epsilon: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
    /// SGD with momentum, as PyTorch's (see [`Sgd`]).
    Sgd {
        /// Step size.
        learning_rate: f64,
        /// Momentum (0: plain SGD).
        momentum: f64,
        /// Nesterov's momentum rather than the classical kind.
        nesterov: bool,
        /// L2 weight decay, added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
}

/// The optimizers' names, as the CLI and run descriptions write them.
pub const OPTIMIZER_NAMES: [&str; 4] = ["rmsprop", "adam", "adamw", "sgd"];

impl Optimizer {
    /// RMSprop with Keras' defaults: learning rate 1e-3, rho 0.9, epsilon 1e-7, no momentum.
    /// (PyTorch's defaults differ: alpha 0.99, eps 1e-8.)
    pub fn rmsprop() -> Self {
        Optimizer::RmsProp {
            learning_rate: 1e-3,
            rho: 0.9,
            epsilon: 1e-7,
            weight_decay: 0.0,
        }
    }

    /// Adam with Keras' defaults: learning rate 1e-3, betas 0.9 and 0.999, epsilon 1e-7.
    pub fn adam() -> Self {
        Optimizer::Adam {
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
        }
    }

    /// AdamW with PyTorch's defaults: learning rate 1e-3, betas 0.9 and 0.999, weight decay
    /// 0.01 (epsilon 1e-7, as convkit's Adam).
    pub fn adamw() -> Self {
        Optimizer::AdamW {
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.01,
        }
    }

    /// SGD with Nesterov momentum 0.9 and learning rate 0.01 (Keras' SGD rate), no decay.
    pub fn sgd_nesterov() -> Self {
        Optimizer::Sgd {
            learning_rate: 0.01,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.0,
        }
    }

    /// The optimizer called `name` (one of [`OPTIMIZER_NAMES`]) with its defaults.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "rmsprop" => Ok(Self::rmsprop()),
            "adam" => Ok(Self::adam()),
            "adamw" => Ok(Self::adamw()),
            "sgd" => Ok(Self::sgd_nesterov()),
            _ => Err(Error::InvalidConfig(format!(
                "unknown optimizer `{name}`; the optimizers are {}",
                OPTIMIZER_NAMES.join(", ")
            ))),
        }
    }

    /// Its name (one of [`OPTIMIZER_NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::RmsProp { .. } => "rmsprop",
            Optimizer::Adam { .. } => "adam",
            Optimizer::AdamW { .. } => "adamw",
            Optimizer::Sgd { .. } => "sgd",
        }
    }

    /// The same optimizer with another learning rate.
    pub fn with_learning_rate(mut self, lr: f64) -> Self {
        match &mut self {
            Optimizer::RmsProp { learning_rate, .. }
            | Optimizer::Adam { learning_rate, .. }
            | Optimizer::AdamW { learning_rate, .. }
            | Optimizer::Sgd { learning_rate, .. } => *learning_rate = lr,
        }
        self
    }

    /// The same optimizer with another weight decay.
    pub fn with_weight_decay(mut self, rate: f64) -> Self {
        match &mut self {
            Optimizer::RmsProp { weight_decay, .. }
            | Optimizer::Adam { weight_decay, .. }
            | Optimizer::AdamW { weight_decay, .. }
            | Optimizer::Sgd { weight_decay, .. } => *weight_decay = rate,
        }
        self
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        match *self {
            Optimizer::RmsProp { learning_rate, .. }
            | Optimizer::Adam { learning_rate, .. }
            | Optimizer::AdamW { learning_rate, .. }
            | Optimizer::Sgd { learning_rate, .. } => learning_rate,
        }
    }

    /// The weight decay and how it applies.
    pub fn weight_decay(&self) -> WeightDecay {
        match *self {
            Optimizer::RmsProp { weight_decay, .. }
            | Optimizer::Adam { weight_decay, .. }
            | Optimizer::Sgd { weight_decay, .. } => WeightDecay {
                rate: weight_decay,
                decoupled: false,
            },
            Optimizer::AdamW { weight_decay, .. } => WeightDecay {
                rate: weight_decay,
                decoupled: true,
            },
        }
    }

    /// Refuses settings that cannot train.
    pub fn check(&self) -> Result<()> {
        let lr = self.learning_rate();
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::InvalidConfig(format!(
                "the learning rate must be above 0, not {lr}"
            )));
        }
        let decay = self.weight_decay().rate;
        if !(decay >= 0.0 && decay.is_finite()) {
            return Err(Error::InvalidConfig(format!(
                "the weight decay must be 0 or more, not {decay}"
            )));
        }
        if let Optimizer::Sgd { momentum, .. } = *self {
            if !(0.0..1.0).contains(&momentum) {
                return Err(Error::InvalidConfig(format!(
                    "SGD's momentum must be in [0, 1), not {momentum}"
                )));
            }
        }
        Ok(())
    }

    /// Builds the optimizer's state over the trainable variables of `vs`.
    pub fn build(&self, vs: &VarStore) -> Result<OptimizerState> {
        self.check()?;
        let decay = self.weight_decay();
        Ok(match *self {
            Optimizer::RmsProp {
                learning_rate,
                rho,
                epsilon,
                ..
            } => OptimizerState::RmsProp(KerasRmsProp::with_weight_decay(
                vs,
                learning_rate,
                rho,
                epsilon,
                decay,
            )),
            Optimizer::Adam {
                learning_rate,
                beta_1,
                beta_2,
                epsilon,
                ..
            }
            | Optimizer::AdamW {
                learning_rate,
                beta_1,
                beta_2,
                epsilon,
                ..
            } => OptimizerState::Adam(KerasAdam::with_weight_decay(
                vs,
                [learning_rate, beta_1, beta_2, epsilon],
                decay,
            )),
            Optimizer::Sgd {
                learning_rate,
                momentum,
                nesterov,
                ..
            } => OptimizerState::Sgd(Sgd::new(vs, learning_rate, momentum, nesterov, decay)),
        })
    }
}

/// A built optimizer, updating its variables one step at a time.
#[derive(Debug)]
pub enum OptimizerState {
    /// Keras' RMSprop, implemented in convkit.
    RmsProp(KerasRmsProp),
    /// Keras' Adam (and AdamW), implemented in convkit.
    Adam(KerasAdam),
    /// PyTorch's SGD with momentum, implemented in convkit.
    Sgd(Sgd),
}

/// What an optimizer has learnt: its step count and its per-variable tensors (RMSprop's
/// `velocity.NAME`; Adam's `m.NAME` and `v.NAME`; SGD's `momentum.NAME`), named after the
/// variables they follow.
#[derive(Debug)]
pub struct OptimizerSnapshot {
    /// Updates applied so far.
    pub steps: u64,
    /// The optimizer's tensors, on the CPU, by name.
    pub tensors: Vec<(String, Tensor)>,
}

/// What the training loop asks of each update rule.
trait UpdateRule {
    fn params(&self) -> &[Tensor];
    fn zero_grad(&mut self);
    fn step(&mut self);
    fn set_learning_rate(&mut self, learning_rate: f64);
    fn steps(&self) -> u64;
}

macro_rules! update_rule {
    ($($rule:ty),*) => {$(
        impl UpdateRule for $rule {
            fn params(&self) -> &[Tensor] {
                &self.params
            }
            fn zero_grad(&mut self) {
                <$rule>::zero_grad(self)
            }
            fn step(&mut self) {
                <$rule>::step(self)
            }
            fn set_learning_rate(&mut self, learning_rate: f64) {
                <$rule>::set_learning_rate(self, learning_rate)
            }
            fn steps(&self) -> u64 {
                self.steps
            }
        }
    )*};
}

update_rule!(KerasRmsProp, KerasAdam, Sgd);

impl OptimizerState {
    fn rule(&self) -> &dyn UpdateRule {
        match self {
            OptimizerState::RmsProp(opt) => opt,
            OptimizerState::Adam(opt) => opt,
            OptimizerState::Sgd(opt) => opt,
        }
    }

    fn rule_mut(&mut self) -> &mut dyn UpdateRule {
        match self {
            OptimizerState::RmsProp(opt) => opt,
            OptimizerState::Adam(opt) => opt,
            OptimizerState::Sgd(opt) => opt,
        }
    }

    /// Clears the gradients, back-propagates `loss`, and applies one update.
    pub fn backward_step(&mut self, loss: &tch::Tensor) {
        let rule = self.rule_mut();
        rule.zero_grad();
        loss.backward();
        rule.step();
    }

    /// Clears the gradients, back-propagates `loss`, lets `between` see (and change) the
    /// trained variables' fresh gradients, then applies one update: the hook where data
    /// parallel training averages the gradients over processes.
    pub fn backward_step_with(
        &mut self,
        loss: &Tensor,
        between: impl FnOnce(&[Tensor]) -> Result<()>,
    ) -> Result<()> {
        let rule = self.rule_mut();
        rule.zero_grad();
        loss.backward();
        between(rule.params())?;
        rule.step();
        Ok(())
    }

    /// Updates applied so far.
    pub fn steps(&self) -> u64 {
        self.rule().steps()
    }

    /// Sets the learning rate of the following steps.
    pub fn set_lr(&mut self, learning_rate: f64) {
        self.rule_mut().set_learning_rate(learning_rate)
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
            OptimizerState::Sgd(opt) => {
                for (p, b) in opt.params.iter().zip(&opt.momenta) {
                    if let Some(b) = b {
                        tensors.push((format!("momentum.{}", name_of(p)?), cpu(b)));
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
                restore_one_per_variable(
                    &opt.params,
                    &mut opt.velocities,
                    "velocity",
                    &names,
                    &mut saved,
                )?;
                opt.steps = snapshot.steps;
            }
            OptimizerState::Sgd(opt) => {
                restore_one_per_variable(
                    &opt.params,
                    &mut opt.momenta,
                    "momentum",
                    &names,
                    &mut saved,
                )?;
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

/// Takes each variable's `PREFIX.NAME` tensor out of `saved` into `slots` (none where the
/// snapshot has none: the variable had not trained yet).
fn restore_one_per_variable(
    params: &[Tensor],
    slots: &mut [Option<Tensor>],
    prefix: &str,
    names: &HashMap<usize, String>,
    saved: &mut BTreeMap<String, Tensor>,
) -> Result<()> {
    for (p, slot) in params.iter().zip(slots) {
        let Some(name) = names.get(&(p.data_ptr() as usize)) else {
            continue;
        };
        let key = format!("{prefix}.{name}");
        *slot = if saved.contains_key(&key) {
            Some(take_like(saved, key, p)?)
        } else {
            None
        };
    }
    Ok(())
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
        for optimizer in [
            Optimizer::rmsprop(),
            Optimizer::adam(),
            Optimizer::adamw(),
            Optimizer::sgd_nesterov(),
        ] {
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
            let other = if matches!(optimizer, Optimizer::RmsProp { .. }) {
                Optimizer::adam()
            } else {
                Optimizer::rmsprop()
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
