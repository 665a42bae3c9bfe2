//! What a run reports when it ends, also written to its `metrics.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::json_file::read_json;
use crate::runtime::Precision;
use crate::train::{Evaluation, Tta};
use crate::workflows::run_spec::RunKind;
use crate::workflows::transfer::FeaturesReport;

/// The results of a run, of any kind (`metrics.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// The kind of run.
    #[serde(default = "train_kind")]
    pub kind: RunKind,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Training images per epoch.
    pub train_count: usize,
    /// Validation images.
    pub validation_count: usize,
    /// Files skipped because they could not be decoded.
    #[serde(default)]
    pub skipped_files: usize,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch of the kept checkpoint: the lowest validation loss, or the last epoch.
    pub best_epoch: usize,
    /// The kept checkpoint on the validation data (`None` without validation).
    pub best_validation: Option<Evaluation>,
    /// The kept checkpoint on the test split, when the data has one.
    pub test: Option<Evaluation>,
    /// Seconds spent reading and decoding the data.
    #[serde(default)]
    pub load_seconds: f64,
    /// Images read and decoded per second.
    #[serde(default)]
    pub load_images_per_second: f64,
    /// Seconds spent in training steps.
    pub train_seconds: f64,
    /// Training images per second over all epochs.
    pub images_per_second: f64,
    /// Mean seconds per epoch (training steps only).
    #[serde(default)]
    pub seconds_per_epoch: f64,
    /// Peak resident memory of the process, in MiB.
    pub peak_memory_mib: Option<f64>,
    /// Number of parameters.
    pub params: i64,
    /// Number of parameters that trained.
    #[serde(default)]
    pub trainable_params: i64,
    /// Feature extraction, when the run trained on cached features.
    #[serde(default)]
    pub features: Option<FeaturesReport>,
    /// Seconds from start to end, loading and evaluation included.
    #[serde(default)]
    pub wall_seconds: f64,
    /// Device used.
    pub device: String,
    /// The precision it computed in (`auto` resolved).
    #[serde(default)]
    pub precision: Precision,
    /// libtorch CPU threads.
    pub threads: usize,
    /// Seed used.
    pub seed: u64,
    /// The run folder.
    pub out_dir: PathBuf,
}

fn train_kind() -> RunKind {
    RunKind::Train
}

/// `metrics.json` of an MNIST run before version 2.
#[derive(Deserialize)]
struct LegacyMnistReport {
    test_accuracy: f64,
    test_loss: f64,
    test_count: usize,
    val_accuracy: Option<f64>,
    train_count: usize,
    epochs: usize,
    train_seconds: f64,
    images_per_second: f64,
    peak_memory_mib: Option<f64>,
    params: i64,
    device: String,
    #[serde(default)]
    precision: Precision,
    threads: usize,
    seed: u64,
    out_dir: PathBuf,
}

impl RunReport {
    /// Reads `metrics.json`: this version's, or one an earlier convkit wrote.
    pub fn read(path: &Path) -> Result<RunReport> {
        let value: serde_json::Value = read_json(path)?;
        let json_error = |reason| crate::error::Error::Json {
            path: path.to_owned(),
            reason,
        };
        if value.get("test_accuracy").is_some() {
            let old: LegacyMnistReport = serde_json::from_value(value).map_err(json_error)?;
            return Ok(RunReport {
                kind: RunKind::Mnist,
                classes: (0..10).map(|d| d.to_string()).collect(),
                train_count: old.train_count,
                validation_count: 0,
                skipped_files: 0,
                epochs: old.epochs,
                best_epoch: old.epochs,
                best_validation: old.val_accuracy.map(|accuracy| Evaluation {
                    loss: f64::NAN,
                    accuracy,
                    count: 0,
                    tta: Tta::None,
                }),
                test: Some(Evaluation {
                    loss: old.test_loss,
                    accuracy: old.test_accuracy,
                    count: old.test_count,
                    tta: Tta::None,
                }),
                load_seconds: 0.0,
                load_images_per_second: 0.0,
                train_seconds: old.train_seconds,
                images_per_second: old.images_per_second,
                seconds_per_epoch: old.train_seconds / old.epochs.max(1) as f64,
                peak_memory_mib: old.peak_memory_mib,
                params: old.params,
                trainable_params: old.params,
                features: None,
                wall_seconds: 0.0,
                device: old.device,
                precision: old.precision,
                threads: old.threads,
                seed: old.seed,
                out_dir: old.out_dir,
            });
        }
        serde_json::from_value(value).map_err(json_error)
    }

    /// The figure a run is judged by: test accuracy when there is a test split, else the
    /// kept checkpoint's validation accuracy; with the split's name.
    pub fn headline(&self) -> Option<(&'static str, &Evaluation)> {
        match (&self.test, &self.best_validation) {
            (Some(test), _) => Some(("test", test)),
            (None, Some(validation)) => Some(("validation", validation)),
            (None, None) => None,
        }
    }
}
