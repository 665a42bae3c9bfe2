//! The training loop.

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::callbacks::{BatchEnd, Callback, TrainControl};
use super::data_parallel::DataParallel;
use super::ema::{Ema, WeightAverage};
use super::history::{EpochRecord, History};
use super::metrics::RunningMetrics;
use super::mixup::Mixup;
use super::optimizer::{Optimizer, OptimizerState};
use super::progressive_resizing::ProgressiveResizing;
use super::schedule::Schedule;
use super::training_state::{callback_states, restore_callback_states, StateDir, TrainingState};
use crate::data::{shuffled_order, ImageDataset};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::runtime::Precision;

/// Settings of [`train::fit`](crate::train::fit()). The defaults are Keras': 1 epoch, batches
/// of 32, RMSprop at a constant rate, no label smoothing, no weight average.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per gradient step, per process: in a data-parallel run of N processes each
    /// step averages the gradients of N batches of this size (as in PyTorch's
    /// `DistributedDataParallel`), so the effective batch is N times larger.
    pub batch_size: usize,
    /// The optimizer and its settings; its learning rate is the schedule's peak.
    pub optimizer: Optimizer,
    /// How the learning rate moves from step to step.
    #[serde(default)]
    pub schedule: Schedule,
    /// Label smoothing of the training loss (0: none; see
    /// [`Loss::smoothed_mean`](crate::nn::Loss::smoothed_mean)). Validation and evaluation
    /// losses stay unsmoothed, so they compare across runs.
    #[serde(default)]
    pub label_smoothing: f64,
    /// A moving average of the weights, validated, checkpointed and left in the model at the
    /// end in place of the raw weights ([`Ema`]); `None`: no average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<Ema>,
    /// Training on blends of two images ([`Mixup`]); `None`: on the images as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixup: Option<Mixup>,
    /// Training on smaller images in the first epochs ([`ProgressiveResizing`]); `None`:
    /// every epoch at the images' size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progressive_resizing: Option<ProgressiveResizing>,
    /// Seeds the order of samples (epoch `e` uses `seed + e`) and libtorch's generator
    /// (dropout, augmentation), reseeded at the start of every epoch from the seed and the
    /// epoch: the same seed on the same device and thread count gives the same run, and a
    /// resumed run continues with the draws the uninterrupted one would have made.
    pub seed: u64,
    /// The precision to train (and validate) in; `None` keeps the model's
    /// ([`Model::set_precision`]). The model keeps it after `fit`.
    #[serde(default)]
    pub precision: Option<Precision>,
    /// Where to keep the resumable state ([`StateDir`]): written after every epoch, and
    /// read at the start, so that `fit` continues a run where its last state ends. `None`
    /// keeps no state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 1,
            batch_size: 32,
            optimizer: Optimizer::rmsprop(),
            schedule: Schedule::Constant,
            label_smoothing: 0.0,
            ema: None,
            mixup: None,
            progressive_resizing: None,
            seed: 0,
            precision: None,
            state_dir: None,
        }
    }
}

impl FitConfig {
    /// Refuses settings that cannot train.
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::InvalidConfig(
                "the number of epochs must be at least 1".into(),
            ));
        }
        self.optimizer.check()?;
        self.schedule.check()?;
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(Error::InvalidConfig(format!(
                "label smoothing must be in [0, 1), not {}",
                self.label_smoothing
            )));
        }
        self.ema.as_ref().map(Ema::check).transpose()?;
        self.mixup.as_ref().map(Mixup::check).transpose()?;
        self.progressive_resizing
            .as_ref()
            .map(ProgressiveResizing::check)
            .transpose()?;
        Ok(())
    }
}

/// Trains the model on `train` for `config.epochs` epochs and, after each epoch,
/// evaluates it on `validation` (when given) and runs the callbacks. Returns the
/// history; stops early when a callback asks.
///
/// With a [`FitConfig::state_dir`], the state after each epoch (weights, optimizer,
/// learning rate, callbacks, history) is written there, and a state found there at the
/// start is continued: the run ends with exactly the weights and history of an
/// uninterrupted one (same device, thread count and precision). The callbacks that keep
/// state must be the same (matched by [`Callback::name`]); those that only show things
/// may differ. A Ctrl-C ([`super::interrupt`]) stops at the next batch
/// with [`Error::Interrupted`].
///
/// When this process belongs to a data-parallel run ([`crate::distributed`]'s default
/// group), every process trains on its shard of each epoch's seeded order (as PyTorch's
/// `DistributedSampler` shards it), the gradients are averaged over the processes before
/// every update, loss and accuracy are summed over all of them, and only rank 0 writes
/// the state; a resumed run takes rank 0's state. Every process must call `fit` with the
/// same data, settings and callbacks, and ends with the same weights and history.
///
/// ```no_run
/// # use convkit::{data::Dataset, models, train::FitConfig, Model};
/// # fn main() -> convkit::Result<()> {
/// # let (train, test): (Dataset, Dataset) = unimplemented!();
/// let mut model = Model::new(&models::mnist_convnet(), tch::Device::Cpu, 1)?;
/// let config = FitConfig { epochs: 5, batch_size: 64, ..FitConfig::default() };
/// let history = convkit::train::fit(&mut model, &train, None, &config, &mut [])?;
/// println!("test accuracy {:.4}", convkit::train::evaluate(&model, &test, 1000)?.accuracy);
/// # Ok(()) }
/// ```
pub fn fit(
    model: &mut Model,
    train: &dyn ImageDataset,
    validation: Option<&dyn ImageDataset>,
    config: &FitConfig,
    callbacks: &mut [&mut dyn Callback],
) -> Result<History> {
    let group = crate::distributed::default_group();
    let parallel = group.as_deref().map(DataParallel::new);
    fit_with(
        model,
        train,
        validation,
        config,
        callbacks,
        parallel.as_ref(),
    )
}

fn fit_with(
    model: &mut Model,
    train: &dyn ImageDataset,
    validation: Option<&dyn ImageDataset>,
    config: &FitConfig,
    callbacks: &mut [&mut dyn Callback],
    parallel: Option<&DataParallel<'_>>,
) -> Result<History> {
    if train.is_empty() {
        return Err(Error::InvalidConfig("no training samples".into()));
    }
    config.check()?;
    model.check_input(train)?;
    let full_side = train.image_shape()[1];
    if let Some(resizing) = &config.progressive_resizing {
        check_resizable(model, resizing, full_side)?;
    }
    let loss_fn = model.loss()?;
    if let Some(precision) = config.precision {
        model.set_precision(precision);
    }
    let device = model.device();
    let mut optimizer = config.optimizer.build(model.var_store())?;
    let mut average = config
        .ema
        .map(|settings| WeightAverage::new(model.var_store(), settings));
    let mut history = History::default();
    let mut control = TrainControl::new(config.optimizer.learning_rate());
    for callback in callbacks.iter_mut() {
        callback.on_train_begin(model, &mut control)?;
    }
    let states = config.state_dir.as_ref().map(StateDir::new);
    // In a data-parallel run, rank 0's state is every process's; only rank 0 saves.
    let (saved, received) = match parallel {
        Some(parallel) => parallel.share_saved_state(states.as_ref())?,
        None => (
            states.as_ref().map(StateDir::latest).transpose()?.flatten(),
            None,
        ),
    };
    let states = states.filter(|_| parallel.is_none_or(DataParallel::is_main));
    let mut first_epoch = 1;
    if let Some(saved) = saved.as_ref().or(received.as_ref().map(|r| &r.saved)) {
        let state = &saved.state;
        crate::weights::load_weights(model.var_store_mut(), &saved.weights())?;
        optimizer.restore(model.var_store(), saved.optimizer()?)?;
        if let Some(average) = &mut average {
            let averages = saved.averages()?.ok_or_else(|| {
                Error::invalid_data(
                    &saved.dir,
                    "the run keeps a moving average of its weights, and this state has none",
                )
            })?;
            average.restore(averages, &saved.averages_path())?;
        }
        restore_callback_states(callbacks, &state.callbacks, &saved.dir.join("state.json"))?;
        control.set_learning_rate(state.learning_rate);
        if state.stopped {
            control.stop();
        }
        history = state.history.clone();
        first_epoch = state.epoch + 1;
    }
    drop(received);
    if let Some(parallel) = parallel {
        parallel.broadcast_variables(model.var_store())?;
    }
    let mut applied_lr = config.optimizer.learning_rate();
    let last_epoch = if control.stop_requested() {
        0
    } else {
        config.epochs
    };
    for epoch in first_epoch..=last_epoch {
        tch::manual_seed(epoch_seed(config.seed, epoch));
        for callback in callbacks.iter_mut() {
            callback.on_epoch_begin(epoch, config.epochs, &mut control)?;
        }
        let order = shuffled_order(train.len(), config.seed.wrapping_add(epoch as u64));
        let order = match parallel {
            Some(parallel) => parallel.shard(&order),
            None => order,
        };
        let steps = order.len().div_ceil(config.batch_size.max(1));
        // The rate of a step: the peak (which callbacks may lower) times the schedule's factor.
        let rate_at = |step: usize, control: &TrainControl| {
            let global = ((epoch - 1) * steps + step) as u64;
            control.learning_rate() * config.schedule.factor(global, steps as u64, config.epochs)
        };
        let side = config
            .progressive_resizing
            .map_or(full_side, |r| r.size_at(epoch, config.epochs, full_side));
        let learning_rate = rate_at(0, &control);
        let mut metrics = RunningMetrics::new(device);
        let start = Instant::now();
        for (step, batch) in train.batches_in(Some(order), config.batch_size).enumerate() {
            let batch = batch?;
            let rate = rate_at(step, &control);
            if rate != applied_lr {
                optimizer.set_lr(rate);
                applied_lr = rate;
            }
            let (images, labels) = (
                batch.images.to_device(device),
                batch.labels.to_device(device),
            );
            let images = if side < full_side {
                ProgressiveResizing::resize(&images, side)
            } else {
                images
            };
            let mixed = config.mixup.map(|mixup| mixup.mix(&images, &labels));
            let logits = model.forward(mixed.as_ref().map_or(&images, |m| &m.images), true);
            let loss = match &mixed {
                Some(mixed) => mixed.loss(loss_fn, &logits, &labels, config.label_smoothing),
                None => loss_fn.smoothed_mean(&logits, &labels, config.label_smoothing),
            };
            match parallel {
                Some(parallel) => optimizer
                    .backward_step_with(&loss, |params| parallel.average_gradients(params))?,
                None => optimizer.backward_step(&loss),
            }
            if let Some(average) = &mut average {
                average.update(optimizer.steps());
            }
            let size = labels.size()[0];
            metrics.add(
                &(loss.detach() * size as f64),
                &loss_fn.correct(&logits.detach(), &labels),
                size as usize,
            );
            let event = BatchEnd {
                epoch,
                epochs: config.epochs,
                step,
                steps,
                elapsed: start.elapsed(),
                metrics: &metrics,
            };
            for callback in callbacks.iter_mut() {
                callback.on_batch_end(&event, &mut control)?;
            }
            let interrupted = match parallel {
                Some(parallel) => parallel.any_wants_to_stop(super::interrupt::stop_requested())?,
                None => super::interrupt::stop_requested(),
            };
            if interrupted {
                return Err(Error::Interrupted { epoch });
            }
        }
        let (loss, accuracy) = match parallel {
            Some(parallel) => {
                parallel.broadcast_running_statistics(model.var_store())?;
                parallel.reduce_metrics(&metrics)?
            }
            None => metrics.read(),
        };
        let seconds = start.elapsed().as_secs_f64();
        if let Some(parallel) = parallel {
            parallel.report_epoch(epoch, seconds);
        }
        if !loss.is_finite() {
            return Err(Error::InvalidConfig(format!(
                "training diverged in epoch {epoch}: the loss is {loss}; try a lower learning rate"
            )));
        }
        // Validated, checkpointed by the callbacks: the average, when the run keeps one.
        if let Some(average) = &mut average {
            average.use_average(true);
        }
        let val = validation
            .map(|v| match parallel {
                Some(parallel) => parallel.evaluate(model, v, config.batch_size),
                None => crate::train::evaluate(model, v, config.batch_size),
            })
            .transpose()?;
        history.epochs.push(EpochRecord {
            epoch,
            loss,
            accuracy,
            val_loss: val.map(|v| v.loss),
            val_accuracy: val.map(|v| v.accuracy),
            learning_rate,
            seconds,
            images_per_second: train.len() as f64 / seconds,
            train_image_size: config.progressive_resizing.map(|_| side),
        });
        for callback in callbacks.iter_mut() {
            callback.on_epoch_end(model, &history, &mut control)?;
        }
        if let Some(average) = &mut average {
            average.use_average(false);
        }
        if let Some(states) = &states {
            let mut state = TrainingState::new(epoch, config.epochs, config.seed);
            state.stopped = control.stop_requested();
            state.learning_rate = control.learning_rate();
            state.callbacks = callback_states(callbacks)?;
            state.history = history.clone();
            save_state(model, states, &state, &optimizer, average.as_ref())?;
        }
        if control.stop_requested() {
            break;
        }
    }
    if let Some(average) = &mut average {
        average.use_average(true);
    }
    for callback in callbacks.iter_mut() {
        callback.on_train_end(model, &history)?;
    }
    Ok(history)
}

/// Refuses progressive resizing for a model that takes one image size only, or for images
/// no larger than its start size. `fit` checks it; the run pipeline too, before it
/// announces the sizes.
pub(crate) fn check_resizable(
    model: &Model,
    resizing: &ProgressiveResizing,
    full_side: i64,
) -> Result<()> {
    if !model.spec().takes_any_image_size() {
        return Err(Error::InvalidConfig(format!(
            "progressive resizing needs a model that takes any image size: {} flattens its \
             feature map into a Dense layer, which fixes the size (models with a global \
             pooling take any: the mini-xception, or a mobilenet_v2 or efficientnet_lite0 base)",
            model.spec().name
        )));
    }
    resizing.check_full_size(full_side)
}

fn save_state(
    model: &Model,
    states: &StateDir,
    state: &TrainingState,
    optimizer: &OptimizerState,
    average: Option<&WeightAverage>,
) -> Result<()> {
    let weights = crate::weights::cpu_variables(model.var_store());
    let averages = average.map(WeightAverage::snapshot);
    states.save(
        state,
        &weights,
        &optimizer.snapshot(model.var_store())?,
        averages.as_deref(),
    )
}

/// The seed of libtorch's generator for `epoch`: a mix of the run's seed and the epoch, so
/// that every epoch's draws are known without replaying the earlier ones.
pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> i64 {
    // SplitMix64's finaliser over the pair.
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as i64 >> 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::{FlipMode, RandomFlipSpec};
    use crate::data::Dataset;
    use crate::models::Sequential;
    use crate::nn::{Activation, BatchNormalizationSpec};
    use crate::train::test_support::weights;
    use crate::train::{BestCheckpoint, EarlyStopping, ReduceLrOnPlateau};
    use tch::{Device, Kind, Tensor};

    fn data(seed: i64) -> Dataset {
        random_images(seed, 48, 8)
    }

    /// `count` random images of `side` x `side` pixels with random labels of two classes.
    fn random_images(seed: i64, count: i64, side: i64) -> Dataset {
        tch::manual_seed(seed);
        let images = Tensor::randint(256, [count, 3, side, side], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::randint(2, [count], (Kind::Int64, Device::Cpu));
        Dataset::new(images, labels, vec!["a".into(), "b".into()]).unwrap()
    }

    /// Every kind of random draw and state: augmentation, dropout, batch-norm statistics,
    /// RMSprop's moments, a plateau schedule, early stopping and a best checkpoint.
    fn model() -> Model {
        let spec = features("resumable", 8)
            .flatten()
            .dropout(0.5)
            .dense(2, Activation::Softmax);
        Model::new(&spec, Device::Cpu, 3).unwrap()
    }

    /// A flip, a convolution and batch norm, for images of `side` x `side`.
    fn features(name: &str, side: i64) -> Sequential {
        Sequential::new(name, [3, side, side])
            .add(RandomFlipSpec::new(FlipMode::Horizontal))
            .rescaling(1.0 / 255.0)
            .conv2d(4, 3, Activation::Relu)
            .add(BatchNormalizationSpec::default())
    }

    fn train_for(model: &mut Model, epochs: usize, dir: &std::path::Path) -> Result<History> {
        let config = FitConfig {
            optimizer: Optimizer::rmsprop().with_learning_rate(1e-2),
            ..FitConfig::default()
        };
        train_with(model, epochs, dir, config, None)
    }

    /// Fails as epoch `at` begins, as a killed process would stop after the state of the
    /// epoch before it: the run's settings (its schedule's length) stay those of the whole run.
    struct CrashAt(usize);

    impl Callback for CrashAt {
        fn name(&self) -> &str {
            "crash"
        }

        fn on_epoch_begin(&mut self, epoch: usize, _: usize, _: &mut TrainControl) -> Result<()> {
            if epoch == self.0 {
                return Err(Error::InvalidConfig("crashed".into()));
            }
            Ok(())
        }
    }

    /// The fast recipe's settings: AdamW, one-cycle, label smoothing and a weight average.
    fn fast_settings() -> FitConfig {
        FitConfig {
            optimizer: Optimizer::adamw()
                .with_learning_rate(3e-3)
                .with_weight_decay(0.05),
            schedule: Schedule::one_cycle(),
            label_smoothing: 0.1,
            ema: Some(Ema { decay: 0.99 }),
            mixup: Some(Mixup { alpha: 0.4 }),
            ..FitConfig::default()
        }
    }

    fn train_with(
        model: &mut Model,
        epochs: usize,
        dir: &std::path::Path,
        settings: FitConfig,
        crash_at: Option<usize>,
    ) -> Result<History> {
        let (train, validation) = (data(1), data(2));
        let config = FitConfig {
            epochs,
            batch_size: 8,
            seed: 9,
            state_dir: Some(dir.join("state")),
            ..settings
        };
        let mut best = BestCheckpoint::new(dir.join("best.safetensors"));
        let mut reduce = ReduceLrOnPlateau::new(0.5, 1, 1e-6);
        let mut early = EarlyStopping::new(50);
        let mut crash = CrashAt(crash_at.unwrap_or(0));
        let mut callbacks: Vec<&mut dyn Callback> =
            vec![&mut best, &mut reduce, &mut early, &mut crash];
        crate::train::fit(model, &train, Some(&validation), &config, &mut callbacks)
    }

    fn without_timings(history: &History) -> Vec<EpochRecord> {
        history
            .epochs
            .iter()
            .map(|r| EpochRecord {
                seconds: 0.0,
                images_per_second: 0.0,
                ..r.clone()
            })
            .collect()
    }

    #[test]
    fn a_resumed_run_ends_bit_for_bit_as_an_uninterrupted_one() {
        let whole_dir = tempfile::tempdir().unwrap();
        let mut whole = model();
        let expected = train_for(&mut whole, 6, whole_dir.path()).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let mut first = model();
        train_for(&mut first, 2, dir.path()).unwrap();
        // A fresh process: new weights, new optimizer, new callbacks, other global draws.
        tch::manual_seed(12345);
        let mut resumed = model();
        let history = train_for(&mut resumed, 6, dir.path()).unwrap();

        assert_eq!(without_timings(&history), without_timings(&expected));
        assert_eq!(weights(&resumed), weights(&whole));
        assert_eq!(
            std::fs::read(dir.path().join("best.safetensors")).unwrap(),
            std::fs::read(whole_dir.path().join("best.safetensors")).unwrap()
        );
        // The state of a finished run resumes to no more epochs.
        let again = train_for(&mut resumed, 6, dir.path()).unwrap();
        assert_eq!(again.epochs.len(), 6);
        assert_eq!(weights(&resumed), weights(&whole));
    }

    /// The same with every fast-convergence setting: the schedule's step count, SGD's and
    /// AdamW's state and the weight average all come back; the kept model is the average.
    #[test]
    fn a_resumed_fast_run_ends_bit_for_bit_as_an_uninterrupted_one() {
        for optimizer in [
            Optimizer::adamw().with_learning_rate(3e-3),
            Optimizer::sgd_nesterov().with_weight_decay(5e-4),
        ] {
            let settings = FitConfig {
                optimizer,
                ..fast_settings()
            };
            let whole_dir = tempfile::tempdir().unwrap();
            let mut whole = model();
            let expected =
                train_with(&mut whole, 5, whole_dir.path(), settings.clone(), None).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut first = model();
            let crashed = train_with(&mut first, 5, dir.path(), settings.clone(), Some(3));
            assert!(crashed.is_err());
            tch::manual_seed(54321);
            let mut resumed = model();
            let history = train_with(&mut resumed, 5, dir.path(), settings.clone(), None).unwrap();
            assert_eq!(without_timings(&history), without_timings(&expected));
            assert_eq!(weights(&resumed), weights(&whole));
            assert_eq!(
                std::fs::read(dir.path().join("best.safetensors")).unwrap(),
                std::fs::read(whole_dir.path().join("best.safetensors")).unwrap()
            );
            // The state keeps the average beside the raw weights, and they differ.
            let saved = StateDir::new(dir.path().join("state"))
                .latest()
                .unwrap()
                .unwrap();
            let averages = saved.averages().unwrap().expect("an ema.safetensors");
            let raw = crate::weights::read_weights(&saved.weights()).unwrap();
            let named = |list: &[(String, Tensor)], name: &str| {
                list.iter()
                    .find(|(n, _)| n == name)
                    .unwrap()
                    .1
                    .shallow_clone()
            };
            let kernel = "conv2d.weight";
            assert!(!named(&averages, kernel).equal(&named(&raw, kernel)));
            // The model left by fit holds the average.
            assert!(named(&averages, kernel).equal(&model_var(&whole, kernel)));
            // The learning rate followed the one-cycle: up, then down to almost 0.
            let rates: Vec<f64> = history.epochs.iter().map(|r| r.learning_rate).collect();
            assert!(rates[1] > rates[0] && rates[4] < rates[1], "{rates:?}");
        }
    }

    /// A model that takes any image size: batch norm and a global average pooling.
    fn pooled_model() -> Model {
        let spec = features("pooled", 32)
            .global_average_pooling2d()
            .dense(2, Activation::Softmax);
        Model::new(&spec, Device::Cpu, 3).unwrap()
    }

    fn train_resized(
        model: &mut Model,
        dir: &std::path::Path,
        resizing: Option<ProgressiveResizing>,
        crash_at: Option<usize>,
    ) -> Result<History> {
        let train = random_images(1, 24, 32);
        let config = FitConfig {
            epochs: 5,
            batch_size: 8,
            seed: 9,
            progressive_resizing: resizing,
            state_dir: Some(dir.join("state")),
            ..fast_settings()
        };
        let mut crash = CrashAt(crash_at.unwrap_or(0));
        crate::train::fit(model, &train, Some(&train), &config, &mut [&mut crash])
    }

    /// Epochs at 8, 16 and 24 pixels, then 32: a run killed after the second epoch resumes
    /// at the third's size and ends as the run left alone; the sizes change the run.
    #[test]
    fn a_progressively_resized_run_resumes_bit_for_bit() {
        let resizing = ProgressiveResizing {
            start_size: 8,
            ramp: 0.6,
        };
        let sizes: Vec<i64> = (1..=5).map(|e| resizing.size_at(e, 5, 32)).collect();
        assert_eq!(sizes, [8, 16, 24, 32, 32]);
        let whole_dir = tempfile::tempdir().unwrap();
        let mut whole = pooled_model();
        let expected = train_resized(&mut whole, whole_dir.path(), Some(resizing), None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let crashed = train_resized(&mut pooled_model(), dir.path(), Some(resizing), Some(3));
        assert!(crashed.is_err());
        tch::manual_seed(777);
        let mut resumed = pooled_model();
        let history = train_resized(&mut resumed, dir.path(), Some(resizing), None).unwrap();
        assert_eq!(without_timings(&history), without_timings(&expected));
        assert_eq!(weights(&resumed), weights(&whole));
        let recorded: Vec<Option<i64>> =
            history.epochs.iter().map(|r| r.train_image_size).collect();
        assert_eq!(recorded, sizes.iter().map(|&s| Some(s)).collect::<Vec<_>>());

        let plain_dir = tempfile::tempdir().unwrap();
        let plain = train_resized(&mut pooled_model(), plain_dir.path(), None, None).unwrap();
        assert_ne!(plain.epochs[0].loss, expected.epochs[0].loss);
        assert_eq!(plain.epochs[0].train_image_size, None);
    }

    #[test]
    fn progressive_resizing_refuses_a_model_of_one_size() {
        let dir = tempfile::tempdir().unwrap();
        let config = FitConfig {
            progressive_resizing: Some(ProgressiveResizing::from(4)),
            ..FitConfig::default()
        };
        let err = crate::train::fit(&mut model(), &data(1), None, &config, &mut []).unwrap_err();
        assert!(err.to_string().contains("at least 8 pixels"), "{err}");
        let config = FitConfig {
            progressive_resizing: Some(ProgressiveResizing::from(8)),
            state_dir: Some(dir.path().into()),
            ..FitConfig::default()
        };
        let err = crate::train::fit(&mut model(), &data(1), None, &config, &mut []).unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("takes any image size") && err.contains("resumable"),
            "{err}"
        );
        let config = FitConfig {
            progressive_resizing: Some(ProgressiveResizing::from(32)),
            ..config
        };
        let err = crate::train::fit(
            &mut pooled_model(),
            &random_images(1, 24, 32),
            None,
            &config,
            &mut [],
        )
        .unwrap_err();
        assert!(err.to_string().contains("smaller than the images"), "{err}");
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    fn model_var(model: &Model, name: &str) -> Tensor {
        model.var_store().variables()[name]
            .to_device(Device::Cpu)
            .contiguous()
    }

    #[test]
    fn epoch_seeds_differ_by_epoch_and_by_seed() {
        let seeds: std::collections::HashSet<i64> = (0..4u64)
            .flat_map(|s| (1..50).map(move |e| epoch_seed(s, e)))
            .collect();
        assert_eq!(seeds.len(), 4 * 49);
    }
}
