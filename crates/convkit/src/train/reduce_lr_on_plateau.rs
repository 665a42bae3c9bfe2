//! Lowering the learning rate on a plateau: Keras' `ReduceLROnPlateau`.

use serde::{Deserialize, Serialize};

use super::callbacks::{
    state_from, state_json, Callback, CallbackSettings, PatienceState, TrainControl,
};
use super::history::History;
use super::monitor::Monitor;
use crate::error::Result;
use crate::model::Model;

/// Multiplies the learning rate by `factor` when the monitored value (default: the
/// validation loss) has not improved for `patience` epochs, down to `min_learning_rate`;
/// patience starts again after each reduction.
#[derive(Debug)]
pub struct ReduceLrOnPlateau {
    factor: f64,
    patience: usize,
    min_learning_rate: f64,
    monitor: Monitor,
    state: PlateauState,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct PlateauState {
    best: PatienceState,
    last_reduction_epoch: usize,
}

impl ReduceLrOnPlateau {
    /// Keras' defaults are `factor` 0.1, `patience` 10, `min_learning_rate` 0.
    pub fn new(factor: f64, patience: usize, min_learning_rate: f64) -> Self {
        ReduceLrOnPlateau {
            factor,
            patience,
            min_learning_rate,
            monitor: Monitor::default(),
            state: PlateauState::default(),
        }
    }

    /// The same watching `monitor`.
    pub fn monitoring(self, monitor: Monitor) -> Self {
        ReduceLrOnPlateau { monitor, ..self }
    }
}

/// The settings of [`ReduceLrOnPlateau`], as a run description holds them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateauSettings {
    /// The learning rate is multiplied by this.
    pub factor: f64,
    /// Epochs without improvement before each reduction.
    pub patience: usize,
    /// The learning rate never goes below this.
    pub min_learning_rate: f64,
    /// The watched value (default: the validation loss).
    #[serde(default)]
    pub monitor: Monitor,
}

impl ReduceLrOnPlateauSettings {
    /// convkit's `--reduce-lr-patience N`: halve after `patience` epochs, down to 1e-6.
    pub fn halving(patience: usize) -> Self {
        ReduceLrOnPlateauSettings {
            factor: 0.5,
            patience,
            min_learning_rate: 1e-6,
            monitor: Monitor::default(),
        }
    }
}

impl CallbackSettings for ReduceLrOnPlateauSettings {
    fn build(&self) -> Box<dyn Callback> {
        Box::new(
            ReduceLrOnPlateau::new(self.factor, self.patience, self.min_learning_rate)
                .monitoring(self.monitor.clone()),
        )
    }
}

impl Callback for ReduceLrOnPlateau {
    fn name(&self) -> &str {
        "reduce_lr_on_plateau"
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
        let state = &mut self.state;
        state
            .best
            .update(&self.monitor, self.monitor.value(last), last.epoch);
        if state.best.best.is_none() {
            return Ok(());
        }
        let since = state.best.best_epoch.max(state.last_reduction_epoch);
        if last.epoch - since >= self.patience {
            let lr = (control.learning_rate() * self.factor).max(self.min_learning_rate);
            if lr < control.learning_rate() {
                control.set_learning_rate(lr);
                state.last_reduction_epoch = last.epoch;
            }
        }
        Ok(())
    }

    fn state(&self) -> Option<serde_json::Value> {
        state_json(&self.state)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.state = state_from("ReduceLrOnPlateau", state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::test_support::with_val_losses;

    #[test]
    fn lowers_the_rate_once_per_plateau() {
        let model = Model::new(&crate::models::mnist_convnet(), tch::Device::Cpu, 0).unwrap();
        let mut reduce = ReduceLrOnPlateau::new(0.5, 2, 1e-4);
        let history = with_val_losses(&[0.5, 0.4, 0.45, 0.41, 0.42]);
        let mut control = TrainControl::new(1e-3);
        for epoch in 1..=3 {
            control = feed_with(&mut reduce, &model, &history, epoch, control);
        }
        assert_eq!(control.learning_rate(), 1e-3);
        control = feed_with(&mut reduce, &model, &history, 4, control);
        assert_eq!(control.learning_rate(), 5e-4);
        control = feed_with(&mut reduce, &model, &history, 5, control);
        assert_eq!(
            control.learning_rate(),
            5e-4,
            "patience restarts after a reduction"
        );
    }

    fn feed_with(
        callback: &mut ReduceLrOnPlateau,
        model: &Model,
        history: &History,
        epochs: usize,
        mut control: TrainControl,
    ) -> TrainControl {
        let upto = History {
            epochs: history.epochs[..epochs].to_vec(),
        };
        callback.on_epoch_end(model, &upto, &mut control).unwrap();
        control
    }
}
