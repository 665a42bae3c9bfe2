//! The training loop's extension point: a [`Callback`] hears the loop's events and steers it
//! through a [`TrainControl`]; the writers of a run's files are the simplest callbacks.

use std::path::PathBuf;
use std::time::Duration;

use super::history::History;
use super::metrics::RunningMetrics;
use crate::error::Result;
use crate::model::Model;

/// What callbacks may change in the loop: stop it, or set the learning rate from the next
/// step on. Handed to every event.
#[derive(Debug)]
pub struct TrainControl {
    learning_rate: f64,
    stop: bool,
}

impl TrainControl {
    /// A loop starting at `learning_rate`.
    pub fn new(learning_rate: f64) -> Self {
        TrainControl {
            learning_rate,
            stop: false,
        }
    }

    /// Asks the loop to stop after the current epoch.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Whether a callback asked to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop
    }

    /// The learning rate in force.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// Sets the learning rate used from the next step on.
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }
}

/// Where the loop is at the end of a batch.
pub struct BatchEnd<'a> {
    /// 1-based epoch.
    pub epoch: usize,
    /// Epochs in the run.
    pub epochs: usize,
    /// 0-based step within the epoch.
    pub step: usize,
    /// Steps in the epoch.
    pub steps: usize,
    /// Training time of the epoch so far.
    pub elapsed: Duration,
    pub(crate) metrics: &'a RunningMetrics,
}

impl BatchEnd<'_> {
    /// Mean loss and accuracy of the epoch so far. Reading them waits for the device, so
    /// callbacks read them now and then, not at every batch.
    pub fn loss_and_accuracy(&self) -> (f64, f64) {
        self.metrics.read()
    }

    /// Training images seen in the epoch so far.
    pub fn images(&self) -> usize {
        self.metrics.count()
    }
}

/// Something [`train::fit`](crate::train::fit()) tells about its progress, in this order:
/// train begin; per epoch: epoch begin, batch end after every step, epoch end (once the
/// epoch's record, validation included, is in the history); train end. Every event may
/// stop the loop or set the learning rate through `control`.
///
/// A callback that keeps state across epochs (a best value, a patience counter) exposes it
/// with [`Callback::state`] and takes it back with [`Callback::restore`], so that a run can
/// be resumed where it stopped. A resumed run gives each such callback the state saved
/// under its [`Callback::name`]; callbacks that only show things (progress bars) carry
/// none, so a run can be resumed with or without them.
pub trait Callback {
    /// The key of this callback's state in a saved training state: the type's name unless
    /// the callback says otherwise. Callbacks that carry state must have distinct names
    /// within one fit.
    fn name(&self) -> &str {
        let full = std::any::type_name::<Self>();
        let path = full.split('<').next().unwrap_or(full);
        path.rsplit("::").next().unwrap_or(path)
    }

    /// Before the first epoch.
    fn on_train_begin(&mut self, _model: &Model, _control: &mut TrainControl) -> Result<()> {
        Ok(())
    }

    /// Before epoch `epoch` (1-based) of `epochs`.
    fn on_epoch_begin(
        &mut self,
        _epoch: usize,
        _epochs: usize,
        _control: &mut TrainControl,
    ) -> Result<()> {
        Ok(())
    }

    /// After each optimizer step.
    fn on_batch_end(&mut self, _batch: &BatchEnd, _control: &mut TrainControl) -> Result<()> {
        Ok(())
    }

    /// After each epoch, its record in `history`.
    fn on_epoch_end(
        &mut self,
        _model: &Model,
        _history: &History,
        _control: &mut TrainControl,
    ) -> Result<()> {
        Ok(())
    }

    /// After the last epoch, or after a stop.
    fn on_train_end(&mut self, _model: &Model, _history: &History) -> Result<()> {
        Ok(())
    }

    /// The state this callback carries across epochs, as JSON; `None` for none.
    fn state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Takes back a state that [`Callback::state`] gave.
    fn restore(&mut self, _state: serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// The settings of a callback that a run description can name
/// ([`crate::workflows::run_spec::CallbackSpec`]): they build the callback.
pub trait CallbackSettings {
    /// A fresh callback with these settings.
    fn build(&self) -> Box<dyn Callback>;
}

/// Rewrites `history.csv` after every epoch, so a run stopped at any point keeps what it did.
#[derive(Debug)]
pub struct HistoryCsv(pub PathBuf);

impl Callback for HistoryCsv {
    fn on_epoch_end(&mut self, _: &Model, history: &History, _: &mut TrainControl) -> Result<()> {
        history.write_csv(&self.0)
    }
}

/// Saves the model after every epoch (atomically), so that the run folder always holds a
/// model that `evaluate` and `predict` can use, even while the run is under way.
#[derive(Debug)]
pub struct LatestModel(pub PathBuf);

impl Callback for LatestModel {
    fn on_epoch_end(&mut self, model: &Model, _: &History, _: &mut TrainControl) -> Result<()> {
        model.save(&self.0)
    }
}

/// The state of a callback that waits for improvements of a monitored value.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PatienceState {
    /// The best value seen.
    pub best: Option<f64>,
    /// The epoch it was seen in.
    pub best_epoch: usize,
}

impl PatienceState {
    /// Records `value` of `epoch` when it improves on the best; returns whether it did.
    pub fn update(&mut self, monitor: &super::Monitor, value: Option<f64>, epoch: usize) -> bool {
        match value {
            Some(v) if monitor.improves(v, self.best) => {
                self.best = Some(v);
                self.best_epoch = epoch;
                true
            }
            _ => false,
        }
    }
}

/// `state` as JSON (states are plain serialisable structs).
pub(crate) fn state_json<T: serde::Serialize>(state: &T) -> Option<serde_json::Value> {
    serde_json::to_value(state).ok()
}

/// `json` back as a state, or an error naming the callback.
pub(crate) fn state_from<T: serde::de::DeserializeOwned>(
    callback: &str,
    json: serde_json::Value,
) -> Result<T> {
    serde_json::from_value(json).map_err(|e| {
        crate::error::Error::InvalidConfig(format!("cannot restore the state of {callback}: {e}"))
    })
}
