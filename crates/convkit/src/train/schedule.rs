//! Learning-rate schedules: how the learning rate moves over the steps of a run.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the learning rate changes from step to step, as a factor of the optimizer's
/// learning rate (the peak): the rate of a step is a function of the step's place in the
/// run only, so a resumed run takes the steps an uninterrupted one would. A callback that
/// changes the learning rate (reduce on plateau) scales the peak, and the schedule goes on
/// from there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Schedule {
    /// The same rate throughout (Keras' default, and the book's).
    #[default]
    Constant,
    /// A linear rise from almost 0 to the peak over the first `warmup_epochs`, then a
    /// half cosine down to `final_fraction` of the peak at the last step (as timm's and
    /// Hugging Face's `cosine` with warmup).
    WarmupCosine {
        /// Epochs of the linear rise (fractions allowed: 0.5 is half an epoch of steps).
        warmup_epochs: f64,
        /// The rate at the last step, as a fraction of the peak.
        final_fraction: f64,
    },
    /// Leslie Smith's one-cycle policy as fastai's `fit_one_cycle` and PyTorch's
    /// `OneCycleLR` draw it: a half cosine up from `peak / div_factor` to the peak over the
    /// first `warmup_fraction` of the steps, then a half cosine down to
    /// `peak / div_factor / final_div_factor`.
    OneCycle {
        /// Fraction of the steps spent rising (fastai 0.25, PyTorch 0.3).
        warmup_fraction: f64,
        /// The first rate is the peak divided by this (both libraries: 25).
        div_factor: f64,
        /// The last rate is the first divided by this (fastai 1e5, PyTorch 1e4).
        final_div_factor: f64,
    },
}

impl Schedule {
    /// Warmup for `warmup_epochs`, then cosine to 0.
    pub fn warmup_cosine(warmup_epochs: f64) -> Self {
        Schedule::WarmupCosine {
            warmup_epochs,
            final_fraction: 0.0,
        }
    }

    /// One-cycle with fastai's defaults: 25% of the steps rising, from peak / 25 to
    /// peak / 25 / 1e5.
    pub fn one_cycle() -> Self {
        Schedule::OneCycle {
            warmup_fraction: 0.25,
            div_factor: 25.0,
            final_div_factor: 1e5,
        }
    }

    /// The name the CLI and run descriptions use.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::WarmupCosine { .. } => "warmup_cosine",
            Schedule::OneCycle { .. } => "one_cycle",
        }
    }

    /// Refuses settings that draw no schedule.
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidConfig(format!("schedule: {what}")));
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::WarmupCosine {
                warmup_epochs,
                final_fraction,
            } => {
                if !(warmup_epochs >= 0.0 && warmup_epochs.is_finite()) {
                    bad(&format!(
                        "warmup epochs must be 0 or more, not {warmup_epochs}"
                    ))
                } else if !(0.0..=1.0).contains(&final_fraction) {
                    bad(&format!(
                        "the final fraction must be in [0, 1], not {final_fraction}"
                    ))
                } else {
                    Ok(())
                }
            }
            Schedule::OneCycle {
                warmup_fraction,
                div_factor,
                final_div_factor,
            } => {
                if !(0.0..1.0).contains(&warmup_fraction) {
                    bad(&format!(
                        "the warmup fraction must be in [0, 1), not {warmup_fraction}"
                    ))
                } else if !(div_factor >= 1.0 && final_div_factor >= 1.0) {
                    bad("the division factors must be 1 or more")
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The factor of the peak rate at 0-based `step` of a run of `steps_per_epoch` x
    /// `epochs` steps.
    pub fn factor(&self, step: u64, steps_per_epoch: u64, epochs: usize) -> f64 {
        let total = (steps_per_epoch * epochs as u64).max(1);
        let step = step.min(total - 1);
        match *self {
            Schedule::Constant => 1.0,
            Schedule::WarmupCosine {
                warmup_epochs,
                final_fraction,
            } => {
                let warmup = ((warmup_epochs * steps_per_epoch as f64).round() as u64).min(total);
                if step < warmup {
                    (step + 1) as f64 / warmup as f64
                } else {
                    let span = (total - warmup).max(1) as f64;
                    let progress = (step - warmup) as f64 / (span - 1.0).max(1.0);
                    cosine_between(1.0, final_fraction, progress)
                }
            }
            Schedule::OneCycle {
                warmup_fraction,
                div_factor,
                final_div_factor,
            } => {
                // PyTorch's OneCycleLR: phase ends at steps (pct * total - 1) and (total - 1).
                let first = 1.0 / div_factor;
                let last = first / final_div_factor;
                let peak_step = (warmup_fraction * total as f64 - 1.0).max(0.0);
                let step = step as f64;
                if step <= peak_step && peak_step > 0.0 {
                    cosine_between(first, 1.0, step / peak_step)
                } else {
                    let span = (total as f64 - 1.0 - peak_step).max(1.0);
                    cosine_between(1.0, last, (step - peak_step) / span)
                }
            }
        }
    }
}

/// Half a cosine from `start` (progress 0) to `end` (progress 1).
fn cosine_between(start: f64, end: f64, progress: f64) -> f64 {
    let progress = progress.clamp(0.0, 1.0);
    end + (start - end) * (1.0 + (PI * progress).cos()) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factors(schedule: Schedule, steps_per_epoch: u64, epochs: usize) -> Vec<f64> {
        (0..steps_per_epoch * epochs as u64)
            .map(|s| schedule.factor(s, steps_per_epoch, epochs))
            .collect()
    }

    #[test]
    fn constant_is_one() {
        assert!(factors(Schedule::Constant, 7, 3).iter().all(|&f| f == 1.0));
    }

    #[test]
    fn warmup_rises_linearly_then_cosine_falls_to_the_final_fraction() {
        let schedule = Schedule::WarmupCosine {
            warmup_epochs: 1.0,
            final_fraction: 0.1,
        };
        let f = factors(schedule, 10, 5);
        assert!(f[..3]
            .iter()
            .zip([0.1, 0.2, 0.3])
            .all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(f[9], 1.0);
        assert_eq!(f[10], 1.0);
        assert!((f[49] - 0.1).abs() < 1e-12, "{}", f[49]);
        // Halfway through the cosine: halfway between the peak and the end.
        assert!((schedule.factor(10 + 39 / 2, 10, 5) - 0.55).abs() < 0.02);
        assert!(f[10..].windows(2).all(|w| w[1] <= w[0]));
    }

    /// PyTorch's `OneCycleLR(max_lr=1, total_steps=20, pct_start=0.25, anneal_strategy='cos',
    /// div_factor=25, final_div_factor=1e4, cycle_momentum=False)` gives these rates.
    #[test]
    fn one_cycle_matches_pytorch() {
        let schedule = Schedule::OneCycle {
            warmup_fraction: 0.25,
            div_factor: 25.0,
            final_div_factor: 1e4,
        };
        let f = factors(schedule, 4, 5);
        // Formula: up over steps 0..=4 from 0.04 to 1, down over 4..=19 to 4e-6.
        assert!((f[0] - 0.04).abs() < 1e-12);
        assert!((f[4] - 1.0).abs() < 1e-12);
        assert!((f[2] - 0.52).abs() < 1e-12, "{}", f[2]);
        assert!((f[19] - 4e-6).abs() < 1e-12);
        let expected = 4e-6 + (1.0 - 4e-6) * (1.0 + (PI * 7.0 / 15.0).cos()) / 2.0;
        assert!((f[11] - expected).abs() < 1e-12, "{}", f[11]);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Schedule::OneCycle {
            warmup_fraction: 1.0,
            div_factor: 25.0,
            final_div_factor: 1e4
        }
        .check()
        .is_err());
        assert!(Schedule::WarmupCosine {
            warmup_epochs: -1.0,
            final_fraction: 0.0
        }
        .check()
        .is_err());
        assert!(Schedule::one_cycle().check().is_ok());
    }
}
