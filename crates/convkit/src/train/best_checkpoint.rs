//! Keeping the best epoch: Keras' `ModelCheckpoint(save_best_only=True)`.

use std::path::{Path, PathBuf};

use super::callbacks::{state_from, state_json, Callback, PatienceState, TrainControl};
use super::history::History;
use super::monitor::Monitor;
use crate::error::Result;
use crate::model::Model;

/// How a checkpoint is written from the model being trained.
pub trait SaveCheckpoint {
    /// Writes the checkpoint of `model` to `path` (atomically).
    fn save_checkpoint(&mut self, model: &Model, path: &Path) -> Result<()>;
}

/// Saves the trained model itself.
#[derive(Debug, Default)]
pub struct SaveModel;

impl SaveCheckpoint for SaveModel {
    fn save_checkpoint(&mut self, model: &Model, path: &Path) -> Result<()> {
        model.save(path)
    }
}

/// Saves the model whenever the monitored value (default: the validation loss) reaches a
/// new best. Writes are atomic; `S` says what is written (the model itself by default; a
/// head trained on cached features writes the whole model it belongs to).
#[derive(Debug)]
pub struct BestCheckpoint<S = SaveModel> {
    path: PathBuf,
    monitor: Monitor,
    state: PatienceState,
    saver: S,
}

impl BestCheckpoint {
    /// Checkpoints to `path` (safetensors, with the architecture beside it as `.json`)
    /// at each new lowest validation loss.
    pub fn new(path: PathBuf) -> Self {
        BestCheckpoint::with_saver(path, SaveModel)
    }
}

impl<S: SaveCheckpoint> BestCheckpoint<S> {
    /// Checkpoints with `saver` at each new lowest validation loss.
    pub fn with_saver(path: PathBuf, saver: S) -> Self {
        BestCheckpoint {
            path,
            monitor: Monitor::default(),
            state: PatienceState::default(),
            saver,
        }
    }

    /// The same watching `monitor`.
    pub fn monitoring(self, monitor: Monitor) -> Self {
        BestCheckpoint { monitor, ..self }
    }

    /// The best monitored value seen.
    pub fn best(&self) -> Option<f64> {
        self.state.best
    }

    /// The saver, once training is over.
    pub fn into_saver(self) -> S {
        self.saver
    }
}

impl<S: SaveCheckpoint> Callback for BestCheckpoint<S> {
    fn name(&self) -> &str {
        "best_checkpoint"
    }

    fn on_epoch_end(
        &mut self,
        model: &Model,
        history: &History,
        _: &mut TrainControl,
    ) -> Result<()> {
        let Some(last) = history.last() else {
            return Ok(());
        };
        if self
            .state
            .update(&self.monitor, self.monitor.value(last), last.epoch)
        {
            self.saver.save_checkpoint(model, &self.path)?;
        }
        Ok(())
    }

    fn state(&self) -> Option<serde_json::Value> {
        state_json(&self.state)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.state = state_from("BestCheckpoint", state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::test_support::with_val_losses;

    #[test]
    fn saves_only_improvements_and_restores_its_best() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("best.safetensors");
        let model = Model::new(&crate::models::mnist_convnet(), tch::Device::Cpu, 0).unwrap();
        let mut control = TrainControl::new(1e-3);
        let mut checkpoint = BestCheckpoint::new(path.clone());
        checkpoint
            .on_epoch_end(&model, &with_val_losses(&[0.5]), &mut control)
            .unwrap();
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
        checkpoint
            .on_epoch_end(&model, &with_val_losses(&[0.5, 0.6]), &mut control)
            .unwrap();
        assert!(
            !path.exists(),
            "a worse epoch must not overwrite the best checkpoint"
        );
        assert_eq!(checkpoint.best(), Some(0.5));
        let mut resumed = BestCheckpoint::new(path.clone());
        resumed.restore(checkpoint.state().unwrap()).unwrap();
        assert_eq!(resumed.best(), Some(0.5));
        let mut by_accuracy =
            BestCheckpoint::new(path.clone()).monitoring(Monitor::new("val_accuracy").unwrap());
        by_accuracy
            .on_epoch_end(&model, &with_val_losses(&[0.5]), &mut control)
            .unwrap();
        assert_eq!(by_accuracy.best(), Some(0.5));
    }
}
