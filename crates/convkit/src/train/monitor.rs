//! Which number of an epoch's record a callback watches, and which way is better.

use serde::{Deserialize, Serialize};

use super::history::{EpochRecord, History};
use crate::error::{Error, Result};

/// Whether lower or higher values of a monitored column are better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Lower is better (losses).
    #[default]
    Min,
    /// Higher is better (accuracies).
    Max,
}

/// A column of the history (`val_loss`, `val_accuracy`, `loss`, `accuracy`, ...) and the
/// direction in which it improves, as Keras' `monitor` and `mode`. The default is Keras':
/// `val_loss`, lower is better.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    /// The history column, as in `history.csv`.
    pub column: String,
    /// Which way is better.
    pub mode: MonitorMode,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            column: "val_loss".into(),
            mode: MonitorMode::Min,
        }
    }
}

impl Monitor {
    /// Watches `column`; the mode is Keras' `auto`: higher is better for columns naming an
    /// accuracy, lower for the others. Fails on a column the history does not have.
    pub fn new(column: &str) -> Result<Monitor> {
        if !EpochRecord::COLUMNS.contains(&column) {
            return Err(Error::InvalidConfig(format!(
                "cannot monitor `{column}`; the history's columns: {}",
                EpochRecord::COLUMNS.join(", ")
            )));
        }
        let mode = if column.contains("accuracy") {
            MonitorMode::Max
        } else {
            MonitorMode::Min
        };
        Ok(Monitor {
            column: column.to_owned(),
            mode,
        })
    }

    /// The monitored value of `record`, if it has one (no validation, no `val_` columns).
    pub fn value(&self, record: &EpochRecord) -> Option<f64> {
        record.column(&self.column)
    }

    /// The first epoch of `history` with the best value (finite values only).
    pub fn best_in<'h>(&self, history: &'h History) -> Option<&'h EpochRecord> {
        let mut best: Option<(&EpochRecord, f64)> = None;
        for record in &history.epochs {
            if let Some(value) = self.value(record).filter(|v| v.is_finite()) {
                if self.improves(value, best.map(|(_, b)| b)) {
                    best = Some((record, value));
                }
            }
        }
        best.map(|(record, _)| record)
    }

    /// Whether `value` is better than `best`; anything beats `None`.
    pub fn improves(&self, value: f64, best: Option<f64>) -> bool {
        match (best, self.mode) {
            (None, _) => !value.is_nan(),
            (Some(best), MonitorMode::Min) => value < best,
            (Some(best), MonitorMode::Max) => value > best,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracies_improve_upwards_losses_downwards() {
        let accuracy = Monitor::new("val_accuracy").unwrap();
        assert_eq!(accuracy.mode, MonitorMode::Max);
        assert!(accuracy.improves(0.8, Some(0.7)));
        assert!(!Monitor::default().improves(0.8, Some(0.7)));
        assert!(Monitor::default().improves(0.8, None));
        let err = Monitor::new("val_f1").unwrap_err().to_string();
        assert!(err.contains("val_accuracy"), "{err}");
    }

    #[test]
    fn the_best_epoch_is_the_first_with_the_best_finite_value() {
        let record = |epoch, val_loss: f64, val_accuracy| EpochRecord {
            epoch,
            loss: 0.5,
            accuracy: 0.8,
            val_loss: Some(val_loss),
            val_accuracy: Some(val_accuracy),
            learning_rate: 1e-3,
            seconds: 2.0,
            images_per_second: 100.0,
            train_image_size: None,
        };
        let history = History {
            epochs: vec![
                record(1, 0.4, 0.70),
                record(2, 0.3, 0.75),
                record(3, f64::NAN, 0.80),
                record(4, 0.3, 0.80),
            ],
        };
        let epoch = |monitor: &Monitor| monitor.best_in(&history).map(|r| r.epoch);
        assert_eq!(epoch(&Monitor::default()), Some(2));
        assert_eq!(epoch(&Monitor::new("val_accuracy").unwrap()), Some(3));
        assert_eq!(Monitor::default().best_in(&History::default()), None);
    }
}
