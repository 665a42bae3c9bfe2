//! The learning-rate finder (Leslie Smith's range test, as fastai's `Learner.lr_find`): a
//! short mock training whose learning rate grows exponentially at every step, recording
//! the loss, to see at which learning rates the model learns and where it diverges.

use serde::{Deserialize, Serialize};

use super::fit::epoch_seed;
use super::lr_suggestions::Suggestions;
use super::optimizer::Optimizer;
use crate::data::{shuffled_order, ImageDataset};
use crate::error::{Error, Result};
use crate::model::Model;

/// Settings of [`lr_find`]. The defaults are fastai's: from 1e-7 to 10 in 100 steps,
/// smoothing 0.98, stopping at 4 times the lowest smoothed loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrFindSettings {
    /// The learning rate of the first step.
    pub start_lr: f64,
    /// The learning rate the sweep heads for; step `i` of `n` uses
    /// `start_lr * (end_lr / start_lr)^(i / n)`, so the last step stays just below it (as
    /// fastai's `SchedExp`).
    pub end_lr: f64,
    /// Steps (batches) in the sweep; the data is gone through again, in a new order, when
    /// it has fewer batches.
    pub iterations: usize,
    /// Weight of the past in the smoothed loss: `avg = beta avg + (1 - beta) loss`, shown
    /// debiased as `avg / (1 - beta^step)` (fastai's `AvgSmoothLoss`).
    pub beta: f64,
    /// The sweep stops once the smoothed loss exceeds this many times its lowest value
    /// (fastai's `stop_div`); `None` runs every step.
    pub stop_factor: Option<f64>,
    /// Samples per step.
    pub batch_size: usize,
    /// Seeds the order of the samples and libtorch's generator (augmentation, dropout), as
    /// [`super::FitConfig::seed`] does: the sweep's first batches are the first epoch's of
    /// a fit with this seed.
    pub seed: u64,
    /// The optimizer, built afresh for the sweep; its learning rate is replaced at every
    /// step.
    pub optimizer: Optimizer,
}

impl Default for LrFindSettings {
    fn default() -> Self {
        LrFindSettings {
            start_lr: 1e-7,
            end_lr: 10.0,
            iterations: 100,
            beta: 0.98,
            stop_factor: Some(4.0),
            batch_size: 32,
            seed: 0,
            optimizer: Optimizer::default(),
        }
    }
}

impl LrFindSettings {
    /// Refuses settings the sweep cannot run with, saying which and why.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidConfig(what));
        if !(self.start_lr > 0.0 && self.start_lr.is_finite()) {
            return bad(format!(
                "the start learning rate must be above 0, not {}",
                self.start_lr
            ));
        }
        if !(self.end_lr > self.start_lr && self.end_lr.is_finite()) {
            return bad(format!(
                "the end learning rate ({}) must be above the start learning rate ({})",
                self.end_lr, self.start_lr
            ));
        }
        if self.iterations < 2 {
            return bad(format!(
                "the sweep needs at least 2 iterations, not {} (fastai's default is 100)",
                self.iterations
            ));
        }
        if !(0.0..1.0).contains(&self.beta) {
            return bad(format!(
                "the smoothing beta must be in [0, 1), not {}",
                self.beta
            ));
        }
        if self.stop_factor.is_some_and(|f| f.is_nan() || f <= 1.0) {
            return bad("the divergence factor must be above 1".into());
        }
        if self.batch_size == 0 {
            return bad("the batch size must be at least 1".into());
        }
        Ok(())
    }

    /// The learning rate of step `step` (from 0).
    pub fn learning_rate(&self, step: usize) -> f64 {
        let position = step as f64 / self.iterations as f64;
        self.start_lr * (self.end_lr / self.start_lr).powf(position)
    }
}

/// One step of the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrFindStep {
    /// The learning rate of this step's update.
    pub learning_rate: f64,
    /// The batch's loss (before the update).
    pub loss: f64,
    /// The smoothed loss after this batch, debiased.
    pub smoothed_loss: f64,
}

/// Why the sweep ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrFindEnd {
    /// It ran every step.
    Completed,
    /// The smoothed loss passed the divergence factor times its minimum.
    Diverged,
    /// The loss was not a number (infinite or NaN).
    NotFinite,
}

/// What [`lr_find`] recorded and suggests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSweep {
    /// The settings it ran with.
    pub settings: LrFindSettings,
    /// Every step run, in order (the one that ended it included).
    pub steps: Vec<LrFindStep>,
    /// Why it ended.
    pub end: LrFindEnd,
    /// The learning rates the rules suggest.
    pub suggestions: Suggestions,
}

impl LrSweep {
    /// The sweep as CSV: `step,learning_rate,loss,smoothed_loss`, one line per step.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from("step,learning_rate,loss,smoothed_loss\n");
        for (i, s) in self.steps.iter().enumerate() {
            csv.push_str(&format!(
                "{},{:e},{},{}\n",
                i + 1,
                s.learning_rate,
                s.loss,
                s.smoothed_loss
            ));
        }
        csv
    }
}

/// Runs the learning-rate range test on `model` with `train`, and gives the model back as
/// it came: every variable (weights and batch-norm statistics) is copied before the sweep
/// and copied back after it, on success and on failure alike.
///
/// Each step trains on one batch as [`super::fit()`] does (augmentation and dropout on,
/// batches in a seeded shuffled order, the model's own precision), with a learning rate
/// that grows exponentially from `start_lr` to `end_lr`, and records the batch's loss and
/// its smoothed value. The sweep stops early when the smoothed loss passes
/// `stop_factor` times its lowest value or is not a number. The same seed on the same
/// device and thread count gives the same sweep. `on_step` sees every step as it is
/// recorded (for a progress bar). A Ctrl-C ([`super::interrupt`]) stops it with
/// [`Error::Interrupted`], the model restored.
///
/// ```no_run
/// # use convkit::{data::Dataset, models, train::{lr_find, LrFindSettings}, Model};
/// # fn main() -> convkit::Result<()> {
/// # let train: Dataset = unimplemented!();
/// let mut model = Model::new(&models::mnist_convnet(), tch::Device::Cpu, 1)?;
/// let settings = LrFindSettings { batch_size: 64, ..LrFindSettings::default() };
/// let sweep = lr_find(&mut model, &train, &settings, &mut |_, _| {})?;
/// if let Some(valley) = sweep.suggestions.valley {
///     println!("train with a learning rate of {:.2e}", valley.learning_rate);
/// }
/// # Ok(()) }
/// ```
pub fn lr_find(
    model: &mut Model,
    train: &dyn ImageDataset,
    settings: &LrFindSettings,
    on_step: &mut dyn FnMut(usize, &LrFindStep),
) -> Result<LrSweep> {
    settings.check()?;
    if train.is_empty() {
        return Err(Error::InvalidConfig("no training samples".into()));
    }
    model.check_input(train)?;
    let saved: Vec<(String, tch::Tensor)> = model
        .var_store()
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.detach().copy()))
        .collect();
    let swept = sweep(model, train, settings, on_step);
    let variables = model.var_store().variables();
    tch::no_grad(|| {
        for (name, value) in &saved {
            variables[name].shallow_clone().copy_(value);
        }
    });
    swept
}

fn sweep(
    model: &Model,
    train: &dyn ImageDataset,
    settings: &LrFindSettings,
    on_step: &mut dyn FnMut(usize, &LrFindStep),
) -> Result<LrSweep> {
    let loss_fn = model.loss()?;
    let device = model.device();
    let mut optimizer = settings.optimizer.build(model.var_store())?;
    let mut steps: Vec<LrFindStep> = Vec::with_capacity(settings.iterations);
    let (mut average, mut lowest) = (0.0f64, f64::INFINITY);
    let mut end = LrFindEnd::Completed;
    let mut epoch = 0;
    'sweep: while steps.len() < settings.iterations {
        epoch += 1;
        tch::manual_seed(epoch_seed(settings.seed, epoch));
        let order = shuffled_order(train.len(), settings.seed.wrapping_add(epoch as u64));
        for batch in train.batches_in(Some(order), settings.batch_size) {
            let batch = batch?;
            let step = steps.len();
            let learning_rate = settings.learning_rate(step);
            optimizer.set_lr(learning_rate);
            let (images, labels) = (
                batch.images.to_device(device),
                batch.labels.to_device(device),
            );
            let logits = model.forward(&images, true);
            let loss_tensor = loss_fn.mean(&logits, &labels);
            let loss = loss_tensor.double_value(&[]);
            optimizer.backward_step(&loss_tensor);
            average = settings.beta * average + (1.0 - settings.beta) * loss;
            let smoothed_loss = average / (1.0 - settings.beta.powi(step as i32 + 1));
            let recorded = LrFindStep {
                learning_rate,
                loss,
                smoothed_loss,
            };
            steps.push(recorded);
            on_step(step, &recorded);
            lowest = lowest.min(smoothed_loss);
            if !loss.is_finite() || !smoothed_loss.is_finite() {
                end = LrFindEnd::NotFinite;
                break 'sweep;
            }
            if settings
                .stop_factor
                .is_some_and(|factor| smoothed_loss > factor * lowest)
            {
                end = LrFindEnd::Diverged;
                break 'sweep;
            }
            if super::interrupt::stop_requested() {
                return Err(Error::Interrupted { epoch });
            }
            if steps.len() == settings.iterations {
                break 'sweep;
            }
        }
    }
    let lrs: Vec<f64> = steps.iter().map(|s| s.learning_rate).collect();
    let losses: Vec<f64> = steps.iter().map(|s| s.smoothed_loss).collect();
    Ok(LrSweep {
        settings: settings.clone(),
        suggestions: Suggestions::from_sweep(&lrs, &losses, settings.iterations),
        steps,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::models::Sequential;
    use crate::nn::{Activation, BatchNormalizationSpec};
    use crate::train::test_support::weights;
    use tch::{Device, Kind, Tensor};

    /// Two classes told apart by the mean brightness of a 3x8x8 image: easy to learn at a
    /// good learning rate, and a model that diverges at a high one.
    fn data() -> Dataset {
        tch::manual_seed(5);
        let labels = Tensor::randint(2, [256], (Kind::Int64, Device::Cpu));
        let noise = Tensor::randint(96, [256, 3, 8, 8], (Kind::Int64, Device::Cpu));
        let images = (noise + labels.view([-1, 1, 1, 1]) * 128).to_kind(Kind::Uint8);
        Dataset::new(images, labels, vec!["dark".into(), "bright".into()]).unwrap()
    }

    fn model() -> Model {
        let spec = Sequential::new("synthetic", [3, 8, 8])
            .rescaling(1.0 / 255.0)
            .conv2d(4, 3, Activation::Relu)
            .add(BatchNormalizationSpec::default())
            .flatten()
            .dropout(0.2)
            .dense(2, Activation::Softmax);
        Model::new(&spec, Device::Cpu, 3).unwrap()
    }

    fn settings() -> LrFindSettings {
        LrFindSettings {
            batch_size: 16,
            seed: 7,
            ..LrFindSettings::default()
        }
    }

    #[test]
    fn the_sweep_is_seeded_restores_the_model_and_stops_on_divergence() {
        let data = data();
        let mut model = model();
        let before = weights(&model);
        let mut seen = 0;
        let sweep = lr_find(&mut model, &data, &settings(), &mut |_, _| seen += 1).unwrap();
        assert_eq!(weights(&model), before, "the sweep changed the model");
        assert_eq!(seen, sweep.steps.len());
        // 256 samples are 16 batches: the sweep went through the data several times.
        assert!(sweep.steps.len() > 16, "{}", sweep.steps.len());
        // RMSprop at learning rates near 10 diverges: the sweep stops before its end, at a
        // smoothed loss above 4 times the lowest, as fastai's.
        assert_eq!(sweep.end, LrFindEnd::Diverged, "{sweep:?}");
        assert!(sweep.steps.len() < 100);
        let last = sweep.steps.last().unwrap().smoothed_loss;
        let lowest = sweep
            .steps
            .iter()
            .map(|s| s.smoothed_loss)
            .fold(f64::INFINITY, f64::min);
        assert!(last > 4.0 * lowest, "{last} vs {lowest}");
        // The schedule is fastai's SchedExp.
        assert_eq!(sweep.steps[0].learning_rate, 1e-7);
        let expected = 1e-7 * (1e8f64).powf(10.0 / 100.0);
        assert!((sweep.steps[10].learning_rate / expected - 1.0).abs() < 1e-12);

        let again = lr_find(&mut model, &data, &settings(), &mut |_, _| {}).unwrap();
        assert_eq!(again, sweep, "the same seed gave another sweep");
        let other = LrFindSettings {
            seed: 8,
            ..settings()
        };
        let other = lr_find(&mut model, &data, &other, &mut |_, _| {}).unwrap();
        assert_ne!(other.steps, sweep.steps);
        assert_eq!(weights(&model), before);
    }

    #[test]
    fn the_valley_lies_where_the_loss_falls() {
        let data = data();
        let sweep = lr_find(&mut model(), &data, &settings(), &mut |_, _| {}).unwrap();
        let valley = sweep.suggestions.valley.expect("a valley");
        let lr = valley.learning_rate;
        assert!((1e-5..1.0).contains(&lr), "valley at {lr:e}");
        let index = sweep
            .steps
            .iter()
            .position(|s| s.learning_rate == lr)
            .unwrap();
        let smoothed: Vec<f64> = sweep.steps.iter().map(|s| s.smoothed_loss).collect();
        // Falling there: lower 5 steps on than 5 steps before, and well below where the
        // sweep started.
        assert!(smoothed[index + 5] < smoothed[index - 5], "{smoothed:?}");
        assert!(smoothed[index] < smoothed[10], "{smoothed:?}");
        let steep = sweep.suggestions.steep.unwrap().learning_rate;
        let minimum = sweep.suggestions.minimum.unwrap();
        assert!(steep < minimum.at_learning_rate, "{sweep:?}");
        assert!(lr < minimum.at_learning_rate, "{sweep:?}");
    }

    #[test]
    fn bad_settings_are_explained() {
        let data = data();
        let mut model = model();
        for (settings, says) in [
            (
                LrFindSettings {
                    start_lr: 1.0,
                    end_lr: 1.0,
                    ..settings()
                },
                "must be above the start",
            ),
            (
                LrFindSettings {
                    iterations: 0,
                    ..settings()
                },
                "at least 2 iterations",
            ),
            (
                LrFindSettings {
                    start_lr: 0.0,
                    ..settings()
                },
                "above 0",
            ),
            (
                LrFindSettings {
                    batch_size: 0,
                    ..settings()
                },
                "batch size",
            ),
        ] {
            let err = lr_find(&mut model, &data, &settings, &mut |_, _| {}).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
