//! The rules that read a learning-rate sweep ([`super::lr_find`]) and suggest a learning
//! rate, as fastai's `valley`, `minimum` and `steep` (`fastai/callback/schedule.py`).
//!
//! Every rule sees what fastai's `Learner.lr_find` gives its rules: the smoothed losses
//! without the first tenth of the sweep's planned steps (the loss barely moves there and
//! its smoothing is still young) and without its last 5 steps (where it diverges), cut at
//! the first loss that is not a number.

use serde::{Deserialize, Serialize};

/// One suggested learning rate, and the point of the curve it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The learning rate to train with.
    pub learning_rate: f64,
    /// The learning rate of the point of the curve the rule picked (for `minimum`, ten
    /// times the suggestion).
    pub at_learning_rate: f64,
    /// The smoothed loss at that point.
    pub at_loss: f64,
}

/// What the three rules suggest; a rule suggests nothing when the sweep left it fewer
/// than two steps to read (it stopped very early).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Suggestions {
    /// fastai's default (ESRI's rule): the longest valley of the curve, the longest run
    /// of steps over which the loss keeps falling (as a longest decreasing subsequence),
    /// and the step halfway along it, well before the bottom. The run can begin in the
    /// flat part of the curve, which moves the suggestion towards the top of the fall.
    pub valley: Option<Suggestion>,
    /// A tenth of the learning rate at the lowest loss: the lowest loss is near where
    /// training starts to become unstable, so a tenth of it is a safe rate.
    pub minimum: Option<Suggestion>,
    /// The learning rate where the loss falls fastest per unit of log learning rate.
    pub steep: Option<Suggestion>,
}

impl Suggestions {
    /// Applies the three rules to a sweep of `planned` steps that recorded learning rates
    /// `lrs` and smoothed losses `losses` (the same length).
    pub fn from_sweep(lrs: &[f64], losses: &[f64], planned: usize) -> Suggestions {
        let (lrs, losses) = readable_part(lrs, losses, planned);
        let at = |i: usize| Suggestion {
            learning_rate: lrs[i],
            at_learning_rate: lrs[i],
            at_loss: losses[i],
        };
        Suggestions {
            valley: valley(losses).map(at),
            minimum: minimum(losses).map(|i| Suggestion {
                learning_rate: lrs[i] / 10.0,
                ..at(i)
            }),
            steep: steep(lrs, losses).map(at),
        }
    }
}

/// The steps the rules read: from `planned / 10`, without the last 5, up to the first NaN.
fn readable_part<'a>(lrs: &'a [f64], losses: &'a [f64], planned: usize) -> (&'a [f64], &'a [f64]) {
    let start = planned / 10;
    let end = losses.len().saturating_sub(5);
    if start >= end {
        return (&[], &[]);
    }
    let losses = &losses[start..end];
    let end = losses
        .iter()
        .position(|l| l.is_nan())
        .unwrap_or(losses.len());
    (&lrs[start..start + end], &losses[..end])
}

/// fastai's `valley`, step for step: `lds[i]` is the length of the longest decreasing run
/// ending at `i`; the longest one ends at `max_end` and starts at `max_start`, and the
/// suggestion is at `max_start + s + s / 2` with `s` a third of its length. (fastai updates
/// `max_start` inside the inner loop, so a run that lengthens further at the same `i` keeps
/// its earlier start; kept as it is so the suggestions agree.)
fn valley(losses: &[f64]) -> Option<usize> {
    let n = losses.len();
    if n < 2 {
        return None;
    }
    let (mut max_start, mut max_end) = (0i64, 0usize);
    let mut lds = vec![1usize; n];
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as i64 - lds[max_end] as i64;
            }
        }
    }
    let sections = (max_end as i64 - max_start) as f64 / 3.0;
    let idx = max_start + sections as i64 + (sections / 2.0) as i64;
    // fastai's start can be -1 (a run from the first step), where Python would index the
    // last element; the first is what the rule means.
    Some(idx.clamp(0, n as i64 - 1) as usize)
}

/// The index of the lowest loss (the first, on a tie).
fn minimum(losses: &[f64]) -> Option<usize> {
    if losses.len() < 2 {
        return None;
    }
    (0..losses.len()).reduce(|best, i| if losses[i] < losses[best] { i } else { best })
}

/// The index `k` where `(loss[k+1] - loss[k]) / (ln lr[k+1] - ln lr[k])` is lowest.
fn steep(lrs: &[f64], losses: &[f64]) -> Option<usize> {
    if losses.len() < 2 {
        return None;
    }
    let slope = |k: usize| (losses[k + 1] - losses[k]) / (lrs[k + 1].ln() - lrs[k].ln());
    (0..losses.len() - 1).reduce(|best, k| if slope(k) < slope(best) { k } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A curve worked through by hand with fastai's code: flat, a long fall with a bump,
    /// a bottom, a rise.
    #[test]
    fn the_rules_pick_the_points_fastai_picks() {
        let losses = [2.0, 2.0, 1.9, 1.5, 1.6, 1.0, 0.8, 0.7, 0.75, 1.2, 3.0];
        let lrs: Vec<f64> = (0..losses.len())
            .map(|i| 10f64.powi(i as i32 - 6))
            .collect();
        // Longest decreasing run: 2.0 1.9 1.5 1.0 0.8 0.7 (6 long), ending at 7; fastai's
        // max_start = 7 - 6 = 1; sections = 2, idx = 1 + 2 + 1 = 4.
        assert_eq!(valley(&losses), Some(4));
        assert_eq!(minimum(&losses), Some(7));
        // Steepest fall per decade: 1.6 -> 1.0 at k = 4.
        assert_eq!(steep(&lrs, &losses), Some(4));
        // Through from_sweep with 10 planned steps: the first one and the last 5 are cut.
        let s = Suggestions::from_sweep(&lrs, &losses, 10);
        // Read part: [2.0, 1.9, 1.5, 1.6, 1.0]; run 2.0 1.9 1.5 1.0 ends at 4, start 4 - 4
        // = 0, sections 4/3, idx 0 + 1 + 0 = 1.
        assert_eq!(s.valley.unwrap().learning_rate, lrs[2]);
        let minimum = s.minimum.unwrap();
        assert_eq!(minimum.at_learning_rate, lrs[5]);
        assert!((minimum.learning_rate - lrs[5] / 10.0).abs() < 1e-18);
        assert_eq!(s.steep.unwrap().learning_rate, lrs[4]);
    }

    #[test]
    fn too_short_a_sweep_suggests_nothing_and_nan_cuts_the_curve() {
        let s = Suggestions::from_sweep(&[1e-3; 6], &[1.0; 6], 100);
        assert_eq!(s, Suggestions::default());
        let lrs: Vec<f64> = (0..12).map(|i| 10f64.powi(i - 7)).collect();
        let mut losses = vec![
            3.0,
            2.5,
            2.0,
            1.0,
            f64::NAN,
            0.1,
            0.1,
            0.1,
            0.1,
            0.1,
            0.1,
            0.1,
        ];
        let s = Suggestions::from_sweep(&lrs, &losses, 10);
        assert_eq!(s.minimum.unwrap().at_learning_rate, lrs[3]);
        losses[4] = 0.5;
        let s = Suggestions::from_sweep(&lrs, &losses, 10);
        assert_eq!(s.minimum.unwrap().at_learning_rate, lrs[5]);
    }
}
