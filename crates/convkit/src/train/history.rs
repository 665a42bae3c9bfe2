//! What happened in each epoch, kept in memory and written as CSV.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};

/// One epoch's numbers. Validation columns are empty when there is no validation data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (with dropout active, as in Keras).
    pub loss: f64,
    /// Training accuracy over the epoch.
    pub accuracy: f64,
    /// Loss on the validation data after the epoch.
    pub val_loss: Option<f64>,
    /// Accuracy on the validation data after the epoch.
    pub val_accuracy: Option<f64>,
    /// Learning rate in force during the epoch.
    pub learning_rate: f64,
    /// Wall time of the epoch's training steps, in seconds (validation excluded).
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// The side the training images were shrunk to in this epoch, in a run with
    /// progressive resizing ([`crate::train::ProgressiveResizing`]); empty otherwise (and
    /// in histories written before convkit recorded it).
    #[serde(default)]
    pub train_image_size: Option<i64>,
}

impl EpochRecord {
    /// The numeric columns, as `history.csv` names them.
    pub const COLUMNS: &'static [&'static str] = &[
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
        "images_per_second",
    ];

    /// The value of the column `name` (one of [`EpochRecord::COLUMNS`]), if the record
    /// has it.
    pub fn column(&self, name: &str) -> Option<f64> {
        match name {
            "loss" => Some(self.loss),
            "accuracy" => Some(self.accuracy),
            "val_loss" => self.val_loss,
            "val_accuracy" => self.val_accuracy,
            "learning_rate" => Some(self.learning_rate),
            "seconds" => Some(self.seconds),
            "images_per_second" => Some(self.images_per_second),
            _ => None,
        }
    }
}

/// Every epoch so far, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per finished epoch.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The last finished epoch.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// Training seconds summed over epochs.
    pub fn train_seconds(&self) -> f64 {
        self.epochs.iter().map(|r| r.seconds).sum()
    }

    /// The history as CSV, one row per epoch; the header starts with
    /// `epoch,loss,accuracy,val_loss,val_accuracy`.
    pub fn to_csv(&self) -> Result<String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let invalid = |e: csv::Error| Error::InvalidConfig(format!("cannot write CSV: {e}"));
        if self.epochs.is_empty() {
            writer
                .write_record([
                    "epoch",
                    "loss",
                    "accuracy",
                    "val_loss",
                    "val_accuracy",
                    "learning_rate",
                    "seconds",
                    "images_per_second",
                    "train_image_size",
                ])
                .map_err(invalid)?;
        }
        for record in &self.epochs {
            writer.serialize(record).map_err(invalid)?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| Error::InvalidConfig(e.to_string()))?;
        Ok(String::from_utf8(bytes).expect("CSV of numbers is UTF-8"))
    }

    /// Writes [`History::to_csv`] to `path`, atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_csv()?.as_bytes())
    }

    /// Reads a history written by [`History::write_csv`].
    pub fn read_csv(path: &Path) -> Result<History> {
        let mut reader =
            csv::Reader::from_path(path).map_err(|e| Error::invalid_data(path, e.to_string()))?;
        let epochs = reader
            .deserialize()
            .collect::<Result<Vec<EpochRecord>, _>>()
            .map_err(|e| Error::invalid_data(path, e.to_string()))?;
        Ok(History { epochs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, val_loss: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 0.5,
            accuracy: 0.8,
            val_loss,
            val_accuracy: val_loss.map(|_| 0.75),
            learning_rate: 1e-3,
            seconds: 2.0,
            images_per_second: 100.0,
            train_image_size: None,
        }
    }

    #[test]
    fn csv_round_trip_with_empty_validation() {
        let history = History {
            epochs: vec![record(1, Some(0.4)), record(2, None)],
        };
        let csv = history.to_csv().unwrap();
        assert!(
            csv.starts_with("epoch,loss,accuracy,val_loss,val_accuracy,"),
            "{csv}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        history.write_csv(&path).unwrap();
        assert_eq!(History::read_csv(&path).unwrap(), history);
    }

    /// A run with progressive resizing records each epoch's training size; a history
    /// written before that column existed still reads, without it.
    #[test]
    fn the_training_image_size_is_a_column_and_may_be_missing() {
        let mut resized = record(1, Some(0.4));
        resized.train_image_size = Some(96);
        let history = History {
            epochs: vec![resized, record(2, Some(0.3))],
        };
        let csv = history.to_csv().unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(
            lines[0].ends_with(",images_per_second,train_image_size"),
            "{csv}"
        );
        assert!(
            lines[1].ends_with(",96") && lines[2].ends_with(','),
            "{csv}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        history.write_csv(&path).unwrap();
        assert_eq!(History::read_csv(&path).unwrap(), history);
        let older = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,\
                     images_per_second\n1,0.5,0.8,0.4,0.75,0.001,2.0,100.0\n";
        std::fs::write(&path, older).unwrap();
        let read = History::read_csv(&path).unwrap();
        assert_eq!(read.epochs[0].train_image_size, None);
        assert_eq!(read.epochs[0].val_loss, Some(0.4));
    }

    #[test]
    fn train_seconds_sum_the_epochs() {
        let history = History {
            epochs: vec![
                record(1, Some(0.4)),
                record(2, Some(0.3)),
                record(3, Some(0.35)),
            ],
        };
        assert_eq!(history.train_seconds(), 6.0);
    }
}
