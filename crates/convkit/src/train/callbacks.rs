//! Work done at the end of each epoch: writing the history, the curves, the best checkpoint,
//! and deciding to stop early.

use std::path::PathBuf;

use super::history::History;
use crate::error::Result;
use crate::model::Model;
use crate::report::plot_training_curves;

/// Something [`Model::fit`](crate::Model::fit) calls after every epoch.
pub trait Callback {
    /// Called once the epoch's record (validation included) is in `history`.
    fn on_epoch_end(&mut self, model: &Model, history: &History) -> Result<()>;

    /// Whether training should stop after this epoch.
    fn should_stop(&self) -> bool {
        false
    }

    /// A new learning rate for the next epochs, when the callback sets one.
    fn new_learning_rate(&mut self) -> Option<f64> {
        None
    }
}

/// Rewrites `history.csv` after every epoch, so a run stopped at any point keeps what it did.
#[derive(Debug)]
pub struct HistoryCsv(pub PathBuf);

impl Callback for HistoryCsv {
    fn on_epoch_end(&mut self, _model: &Model, history: &History) -> Result<()> {
        history.write_csv(&self.0)
    }
}

/// Redraws the loss and accuracy curves (PNG) after every epoch.
#[derive(Debug)]
pub struct CurvesPlot {
    /// The image written.
    pub path: PathBuf,
    /// Title over the plots.
    pub title: String,
}

impl Callback for CurvesPlot {
    fn on_epoch_end(&mut self, _model: &Model, history: &History) -> Result<()> {
        plot_training_curves(history, &self.title, &self.path)
    }
}

/// Saves the model whenever the validation loss reaches a new low (Keras'
/// `ModelCheckpoint(save_best_only=True, monitor="val_loss")`). Writes are atomic.
#[derive(Debug)]
pub struct BestCheckpoint {
    path: PathBuf,
    best: f64,
}

impl BestCheckpoint {
    /// Checkpoints to `path` (safetensors, with the architecture beside it as `.json`).
    pub fn new(path: PathBuf) -> Self {
        BestCheckpoint {
            path,
            best: f64::INFINITY,
        }
    }

    /// The lowest validation loss seen.
    pub fn best(&self) -> f64 {
        self.best
    }
}

impl Callback for BestCheckpoint {
    fn on_epoch_end(&mut self, model: &Model, history: &History) -> Result<()> {
        match history.last().and_then(|r| r.val_loss) {
            Some(loss) if loss < self.best => {
                self.best = loss;
                model.save(&self.path)
            }
            _ => Ok(()),
        }
    }
}

/// Stops when the validation loss has not improved for `patience` epochs.
#[derive(Debug)]
pub struct EarlyStopping {
    patience: usize,
    stop: bool,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without a new lowest validation loss.
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            patience,
            stop: false,
        }
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, _model: &Model, history: &History) -> Result<()> {
        if let (Some(best), Some(last)) = (history.best_by_val_loss(), history.last()) {
            self.stop = last.epoch - best.epoch >= self.patience;
        }
        Ok(())
    }

    fn should_stop(&self) -> bool {
        self.stop
    }
}

/// Multiplies the learning rate by `factor` when the validation loss has not improved for
/// `patience` epochs (Keras' `ReduceLROnPlateau`), down to `min_learning_rate`.
#[derive(Debug)]
pub struct ReduceLrOnPlateau {
    factor: f64,
    patience: usize,
    min_learning_rate: f64,
    last_reduction_epoch: usize,
    pending: Option<f64>,
}

impl ReduceLrOnPlateau {
    /// Keras' defaults are `factor` 0.1, `patience` 10, `min_learning_rate` 0.
    pub fn new(factor: f64, patience: usize, min_learning_rate: f64) -> Self {
        ReduceLrOnPlateau {
            factor,
            patience,
            min_learning_rate,
            last_reduction_epoch: 0,
            pending: None,
        }
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_epoch_end(&mut self, _model: &Model, history: &History) -> Result<()> {
        let (Some(best), Some(last)) = (history.best_by_val_loss(), history.last()) else {
            return Ok(());
        };
        let since = best.epoch.max(self.last_reduction_epoch);
        if last.epoch - since >= self.patience {
            let lr = (last.learning_rate * self.factor).max(self.min_learning_rate);
            if lr < last.learning_rate {
                self.pending = Some(lr);
                self.last_reduction_epoch = last.epoch;
            }
        }
        Ok(())
    }

    fn new_learning_rate(&mut self) -> Option<f64> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EpochRecord;

    fn with_val_losses(losses: &[f64]) -> History {
        let epochs = losses
            .iter()
            .enumerate()
            .map(|(i, &v)| EpochRecord {
                epoch: i + 1,
                loss: v,
                accuracy: 0.5,
                val_loss: Some(v),
                val_accuracy: Some(0.5),
                learning_rate: 1e-3,
                seconds: 1.0,
                images_per_second: 1.0,
            })
            .collect();
        History { epochs }
    }

    #[test]
    fn early_stopping_waits_for_patience() {
        let model = Model::new(&crate::models::mnist_convnet(), tch::Device::Cpu, 0).unwrap();
        let mut stop = EarlyStopping::new(2);
        stop.on_epoch_end(&model, &with_val_losses(&[0.5, 0.4, 0.45]))
            .unwrap();
        assert!(!stop.should_stop());
        stop.on_epoch_end(&model, &with_val_losses(&[0.5, 0.4, 0.45, 0.41]))
            .unwrap();
        assert!(stop.should_stop());
    }

    #[test]
    fn reduce_on_plateau_lowers_the_rate_once_per_plateau() {
        let model = Model::new(&crate::models::mnist_convnet(), tch::Device::Cpu, 0).unwrap();
        let mut reduce = ReduceLrOnPlateau::new(0.5, 2, 1e-4);
        reduce
            .on_epoch_end(&model, &with_val_losses(&[0.5, 0.4, 0.45]))
            .unwrap();
        assert_eq!(reduce.new_learning_rate(), None);
        reduce
            .on_epoch_end(&model, &with_val_losses(&[0.5, 0.4, 0.45, 0.41]))
            .unwrap();
        assert_eq!(reduce.new_learning_rate(), Some(5e-4));
        assert_eq!(reduce.new_learning_rate(), None, "taken once");
        reduce
            .on_epoch_end(&model, &with_val_losses(&[0.5, 0.4, 0.45, 0.41, 0.42]))
            .unwrap();
        assert_eq!(
            reduce.new_learning_rate(),
            None,
            "patience restarts after a reduction"
        );
    }

    #[test]
    fn best_checkpoint_saves_only_improvements() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("best.safetensors");
        let model = Model::new(&crate::models::mnist_convnet(), tch::Device::Cpu, 0).unwrap();
        let mut checkpoint = BestCheckpoint::new(path.clone());
        checkpoint
            .on_epoch_end(&model, &with_val_losses(&[0.5]))
            .unwrap();
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
        checkpoint
            .on_epoch_end(&model, &with_val_losses(&[0.5, 0.6]))
            .unwrap();
        assert!(
            !path.exists(),
            "a worse epoch must not overwrite the best checkpoint"
        );
        assert_eq!(checkpoint.best(), 0.5);
    }
}
