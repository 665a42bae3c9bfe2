//! An exponential moving average of a model's weights (Polyak averaging, as timm's
//! `ModelEmaV2` and Keras' `use_ema`).

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

use crate::error::{Error, Result};

/// Keeping an exponential moving average of the weights, updated after every step:
/// `average = d * average + (1 - d) * weight` with `d = min(decay, (1 + n) / (10 + n))` after
/// `n` updates (the warm-up of TensorFlow's `ExponentialMovingAverage`, so that the average
/// of a short run does not stay near its random start). The trained variables and the
/// batch-norm statistics are averaged; frozen weights (a pretrained base) are left alone, as
/// they never move. When it is on, the average is what is validated, checkpointed, evaluated and
/// exported; training steps go on from the raw weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    /// The decay: 0.999 averages over about the last 1,000 steps.
    pub decay: f64,
}

impl Ema {
    /// Refuses a decay outside (0, 1).
    pub fn check(&self) -> Result<()> {
        if self.decay > 0.0 && self.decay < 1.0 {
            Ok(())
        } else {
            Err(Error::InvalidConfig(format!(
                "the EMA decay must be between 0 and 1, not {}",
                self.decay
            )))
        }
    }

    /// The decay used for the update after `updates` earlier ones.
    pub fn decay_after(&self, updates: u64) -> f64 {
        self.decay
            .min((1.0 + updates as f64) / (10.0 + updates as f64))
    }
}

/// The average itself, beside the model's variables.
#[derive(Debug)]
pub(crate) struct WeightAverage {
    settings: Ema,
    /// The model's variables that move in training, by name (shallow: the model's own
    /// storage).
    variables: Vec<(String, Tensor)>,
    averages: Vec<Tensor>,
    /// Whether the model's variables hold the averages now (and `averages` the raw weights).
    swapped: bool,
}

impl WeightAverage {
    /// An average starting at the current weights of `vs`, over the variables that train
    /// now (so it is made after layers are frozen) and the batch-norm statistics.
    pub fn new(vs: &VarStore, settings: Ema) -> Self {
        let mut variables: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(name, t)| t.is_floating_point() && (t.requires_grad() || is_statistic(name)))
            .collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let averages = tch::no_grad(|| variables.iter().map(|(_, t)| t.detach().copy()).collect());
        WeightAverage {
            settings,
            variables,
            averages,
            swapped: false,
        }
    }

    /// Folds the current weights in, after the optimizer's `steps`-th step.
    pub fn update(&mut self, steps: u64) {
        debug_assert!(!self.swapped);
        let weight = 1.0 - self.settings.decay_after(steps.saturating_sub(1));
        tch::no_grad(|| {
            for ((_, variable), average) in self.variables.iter().zip(&mut self.averages) {
                let _ = average.lerp_(variable, weight);
            }
        });
    }

    /// Puts the averages in the model (`true`) or the raw weights back (`false`).
    pub fn use_average(&mut self, average: bool) {
        if self.swapped == average {
            return;
        }
        tch::no_grad(|| {
            for ((_, variable), other) in self.variables.iter_mut().zip(&mut self.averages) {
                let held = variable.detach().copy();
                variable.copy_(other);
                other.copy_(&held);
            }
        });
        self.swapped = average;
    }

    /// The averages, on the CPU, named after their variables (the raw weights must be in
    /// the model).
    pub fn snapshot(&self) -> Vec<(String, Tensor)> {
        debug_assert!(!self.swapped);
        self.variables
            .iter()
            .zip(&self.averages)
            .map(|((name, _), a)| (name.clone(), a.to_device(tch::Device::Cpu).contiguous()))
            .collect()
    }

    /// Takes back a [`WeightAverage::snapshot`]: every variable's average must be there,
    /// with its shape.
    pub fn restore(&mut self, saved: Vec<(String, Tensor)>, from: &std::path::Path) -> Result<()> {
        let mut saved: std::collections::BTreeMap<String, Tensor> = saved.into_iter().collect();
        for ((name, variable), average) in self.variables.iter().zip(&mut self.averages) {
            let t = saved.remove(name).ok_or_else(|| {
                Error::invalid_data(from, format!("the saved average lacks `{name}`"))
            })?;
            if t.size() != variable.size() {
                return Err(Error::invalid_data(
                    from,
                    format!(
                        "the saved average of `{name}` has shape {:?}, the variable {:?}",
                        t.size(),
                        variable.size()
                    ),
                ));
            }
            tch::no_grad(|| average.copy_(&t));
        }
        match saved.keys().next() {
            Some(extra) => Err(Error::invalid_data(
                from,
                format!("the saved average has `{extra}`, which the model lacks"),
            )),
            None => Ok(()),
        }
    }
}

/// Whether `name` is a batch-norm running statistic, which moves without a gradient.
fn is_statistic(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Init, Device};

    #[test]
    fn the_average_follows_the_formula_and_swaps_in_and_out() {
        let vs = VarStore::new(Device::Cpu);
        let mut w = vs.root().var("w", &[1], Init::Const(0.0));
        let settings = Ema { decay: 0.9 };
        let mut average = WeightAverage::new(&vs, settings);
        let mut expected = 0.0f64;
        for step in 1..=30u64 {
            tch::no_grad(|| {
                let _ = w.fill_(step as f64);
            });
            average.update(step);
            let d = settings.decay_after(step - 1);
            expected = d * expected + (1.0 - d) * step as f64;
        }
        assert!(settings.decay_after(0) < 0.11 && settings.decay_after(1000) == 0.9);
        average.use_average(true);
        assert!(
            (w.double_value(&[0]) - expected).abs() < 1e-4,
            "{w} {expected}"
        );
        average.use_average(true);
        assert!((w.double_value(&[0]) - expected).abs() < 1e-4);
        average.use_average(false);
        assert_eq!(w.double_value(&[0]), 30.0);
        let saved = average.snapshot();
        let mut other = WeightAverage::new(&vs, settings);
        other
            .restore(saved, std::path::Path::new("ema.safetensors"))
            .unwrap();
        other.use_average(true);
        assert!((w.double_value(&[0]) - expected).abs() < 1e-4);
        assert!(Ema { decay: 1.0 }.check().is_err());
    }

    #[test]
    fn frozen_weights_are_not_averaged_but_statistics_are() {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let _trained = (&root / "head").var("weight", &[2], Init::Const(1.0));
        let _frozen = (&root / "base").zeros_no_train("weight", &[3]);
        let _mean = (&root / "bn").zeros_no_train("running_mean", &[4]);
        let average = WeightAverage::new(&vs, Ema { decay: 0.9 });
        let names: Vec<&str> = average.variables.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["bn.running_mean", "head.weight"]);
    }
}
