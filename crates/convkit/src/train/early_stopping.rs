//! Stopping when the monitored value stops improving: Keras' `EarlyStopping`.

use serde::{Deserialize, Serialize};

use super::callbacks::{
    state_from, state_json, Callback, CallbackSettings, PatienceState, TrainControl,
};
use super::history::History;
use super::monitor::Monitor;
use crate::error::Result;
use crate::model::Model;

/// Stops when the monitored value (default: the validation loss) has not improved for
/// `patience` epochs.
#[derive(Debug)]
pub struct EarlyStopping {
    patience: usize,
    monitor: Monitor,
    state: PatienceState,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without a new lowest validation loss.
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            patience,
            monitor: Monitor::default(),
            state: PatienceState::default(),
        }
    }

    /// The same watching `monitor`.
    pub fn monitoring(self, monitor: Monitor) -> Self {
        EarlyStopping { monitor, ..self }
    }
}

/// The settings of [`EarlyStopping`], as a run description holds them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStoppingSettings {
    /// Epochs without improvement before the run stops.
    pub patience: usize,
    /// The watched value (default: the validation loss).
    #[serde(default)]
    pub monitor: Monitor,
}

impl CallbackSettings for EarlyStoppingSettings {
    fn build(&self) -> Box<dyn Callback> {
        Box::new(EarlyStopping::new(self.patience).monitoring(self.monitor.clone()))
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &str {
        "early_stopping"
    }

    fn on_epoch_end(
        &mut self,
        _: &Model,
        history: &History,
        control: &mut TrainControl,
    ) -> Result<()> {
        let Some(last) = history.last() else {
            return Ok(());
        };
        self.state
            .update(&self.monitor, self.monitor.value(last), last.epoch);
        if self.state.best.is_some() && last.epoch - self.state.best_epoch >= self.patience {
            control.stop();
        }
        Ok(())
    }

    fn state(&self) -> Option<serde_json::Value> {
        state_json(&self.state)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.state = state_from("EarlyStopping", state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::test_support::{feed, with_val_losses};

    #[test]
    fn waits_for_patience() {
        let model = Model::new(&crate::models::mnist_convnet(), tch::Device::Cpu, 0).unwrap();
        let mut stop = EarlyStopping::new(2);
        let history = with_val_losses(&[0.5, 0.4, 0.45, 0.41]);
        let control = feed(&mut stop, &model, &history, 3);
        assert!(!control.stop_requested());
        let control = feed(&mut stop, &model, &history, 4);
        assert!(control.stop_requested());
    }
}
