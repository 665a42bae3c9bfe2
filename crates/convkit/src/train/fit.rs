//! The training loop.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::callbacks::{BatchEnd, Callback, TrainControl};
use super::history::{EpochRecord, History};
use super::metrics::RunningMetrics;
use super::optimizer::Optimizer;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::runtime::Precision;

/// Settings of [`Model::fit`]. The defaults are Keras': 1 epoch, batches of 32, RMSprop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per gradient step.
    pub batch_size: usize,
    /// The optimizer and its settings.
    pub optimizer: Optimizer,
    /// Seeds the order of samples (epoch `e` uses `seed + e`) and libtorch's generator
    /// (dropout): the same seed on the same device and thread count gives the same run.
    pub seed: u64,
    /// The precision to train (and validate) in; `None` keeps the model's
    /// ([`Model::set_precision`]). The model keeps it after `fit`.
    #[serde(default)]
    pub precision: Option<Precision>,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 1,
            batch_size: 32,
            optimizer: Optimizer::rmsprop(),
            seed: 0,
            precision: None,
        }
    }
}

impl Model {
    /// Trains the model on `train` for `config.epochs` epochs and, after each epoch,
    /// evaluates it on `validation` (when given) and runs the callbacks. Returns the
    /// history; stops early when a callback asks.
    ///
    /// ```no_run
    /// # use convkit::{data::Dataset, models, train::FitConfig, Model};
    /// # fn main() -> convkit::Result<()> {
    /// # let (train, test): (Dataset, Dataset) = unimplemented!();
    /// let mut model = Model::new(&models::mnist_convnet(), tch::Device::Cpu, 1)?;
    /// let config = FitConfig { epochs: 5, batch_size: 64, ..FitConfig::default() };
    /// let history = model.fit(&train, None, &config, &mut [])?;
    /// println!("test accuracy {:.4}", model.evaluate(&test, 1000)?.accuracy);
    /// # Ok(()) }
    /// ```
    pub fn fit(
        &mut self,
        train: &Dataset,
        validation: Option<&Dataset>,
        config: &FitConfig,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        if train.is_empty() {
            return Err(Error::InvalidConfig("no training samples".into()));
        }
        self.check_input(train)?;
        let loss_fn = self.loss()?;
        if let Some(precision) = config.precision {
            self.set_precision(precision);
        }
        let device = self.device();
        let train = train.to_device(device);
        let mut optimizer = config.optimizer.build(self.var_store())?;
        tch::manual_seed(config.seed as i64);
        let mut history = History::default();
        let mut control = TrainControl::new(config.optimizer.learning_rate());
        let mut applied_lr = control.learning_rate();
        for callback in callbacks.iter_mut() {
            callback.on_train_begin(self, &mut control)?;
        }
        for epoch in 1..=config.epochs {
            for callback in callbacks.iter_mut() {
                callback.on_epoch_begin(epoch, config.epochs, &mut control)?;
            }
            let learning_rate = control.learning_rate();
            if learning_rate != applied_lr {
                optimizer.set_lr(learning_rate);
                applied_lr = learning_rate;
            }
            let batches = train.batches(
                config.batch_size,
                Some(config.seed.wrapping_add(epoch as u64)),
            );
            let steps = batches.batch_count();
            let mut metrics = RunningMetrics::new(device);
            let start = Instant::now();
            for (step, batch) in batches.enumerate() {
                let logits = self.forward(&batch.images, true);
                let loss = loss_fn.mean(&logits, &batch.labels);
                optimizer.backward_step(&loss);
                let size = batch.labels.size()[0];
                metrics.add(
                    &(loss.detach() * size as f64),
                    &loss_fn.correct(&logits.detach(), &batch.labels),
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
                if control.learning_rate() != applied_lr {
                    applied_lr = control.learning_rate();
                    optimizer.set_lr(applied_lr);
                }
            }
            let (loss, accuracy) = metrics.read();
            let seconds = start.elapsed().as_secs_f64();
            if !loss.is_finite() {
                return Err(Error::InvalidConfig(format!(
                    "training diverged in epoch {epoch}: the loss is {loss}; try a lower learning rate"
                )));
            }
            let val = validation
                .map(|v| self.evaluate(v, config.batch_size))
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
            });
            for callback in callbacks.iter_mut() {
                callback.on_epoch_end(self, &history, &mut control)?;
            }
            if control.stop_requested() {
                break;
            }
        }
        for callback in callbacks.iter_mut() {
            callback.on_train_end(self, &history)?;
        }
        Ok(history)
    }
}
