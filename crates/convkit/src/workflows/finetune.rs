//! `convkit finetune RUN_DIR`: continue a transfer-learning run with the top of its base
//! unfrozen and a low learning rate (the chapter's section 5).

use std::path::{Path, PathBuf};

use super::run_dir::RunDir;
use super::train::{TrainJob, TrainRunConfig};
use super::transfer::TransferMode;
use crate::error::{Error, Result};
use crate::json_file::read_json;
use crate::models::LayerSpec;
use crate::train::Optimizer;

/// What to change when fine-tuning; [`FinetuneOptions::new`] gives the chapter's.
#[derive(Clone, Debug, PartialEq)]
pub struct FinetuneOptions {
    /// Base layers to unfreeze, by name or prefix (chapter: `block5`).
    pub unfreeze: Vec<String>,
    /// Unfreeze the last N layers of the base.
    pub unfreeze_last: Option<usize>,
    /// RMSprop learning rate (chapter: 1e-5).
    pub learning_rate: f64,
    /// Epochs (chapter: 30).
    pub epochs: usize,
    /// The new run folder.
    pub out_dir: PathBuf,
    /// Augmentation to use instead of the first run's (needed after a features run, which
    /// had none).
    pub augmentation: Option<Vec<LayerSpec>>,
    /// Progress bars and per-epoch lines on stderr.
    pub progress: bool,
}

impl FinetuneOptions {
    /// The chapter's settings: unfreeze `unfreeze`, RMSprop at 1e-5, 30 epochs.
    pub fn new(unfreeze: Vec<String>, out_dir: PathBuf) -> Self {
        FinetuneOptions {
            unfreeze,
            unfreeze_last: None,
            learning_rate: 1e-5,
            epochs: 30,
            out_dir,
            augmentation: None,
            progress: false,
        }
    }
}

/// The training job that fine-tunes the run in `run_dir`: its data and settings, starting
/// from its best checkpoint, end to end through the base, with `options` applied. Run it
/// with [`super::run_train`].
pub fn finetune_job(run_dir: &Path, options: &FinetuneOptions) -> Result<TrainJob> {
    let run = RunDir::open(run_dir)?;
    if options.unfreeze.is_empty() && options.unfreeze_last.is_none() {
        return Err(Error::InvalidConfig(
            "say which layers of the base to train: --unfreeze NAME or --unfreeze-last N".into(),
        ));
    }
    let config: TrainRunConfig = read_json(&run.config())?;
    if config.job != "train" || config.settings.base.is_none() {
        return Err(Error::invalid_data(
            run.config(),
            "fine-tuning continues a run trained on a pretrained base (`convkit train --base ...`)",
        ));
    }
    let mut job = config.settings;
    job.init_from = run.checkpoint();
    job.mode = TransferMode::Frozen;
    job.unfreeze = options.unfreeze.clone();
    job.unfreeze_last = options.unfreeze_last;
    job.optimizer = Optimizer::rmsprop().with_learning_rate(options.learning_rate);
    job.epochs = options.epochs;
    job.out_dir = options.out_dir.clone();
    job.progress = options.progress;
    if let Some(augmentation) = &options.augmentation {
        job.augmentation = augmentation.clone();
    }
    Ok(job)
}
