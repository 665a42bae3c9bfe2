//! The run description: everything a training run is asked to do, as data. A run folder's
//! `run.json` is this type, written with its format and version; every reader of
//! `run.json` reads it through [`RunSpec::read`], which also takes the files that earlier
//! versions of convkit wrote (see [`super::legacy_v1`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::callback_spec::CallbackSpec;
use super::data_spec::{DataSource, DataSpec};
use super::evaluation_spec::EvaluationSpec;
use super::model_spec::{ModelSource, ModelSpec};
use super::recipe::Recipe;
use crate::error::{Error, Result};
use crate::runtime::Precision;
use crate::train::FitConfig;

/// The `format` of every `run.json` convkit writes.
pub const RUN_FORMAT: &str = "convkit-run";
/// The version of `run.json` this convkit writes. Version 1 had no `format` field (see
/// [`super::legacy_v1`]).
pub const RUN_VERSION: u32 = 2;

/// What kind of run a description makes: which preset made it, and which command shows
/// it best.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// The chapter's MNIST convnet (`convkit mnist`).
    Mnist,
    /// A model trained on a folder of images, from scratch or on a pretrained base
    /// (`convkit train`).
    Train,
    /// A transfer-learning run continued with part of its base unfrozen (`convkit
    /// finetune`).
    Finetune,
}

impl RunKind {
    /// The command that starts (and resumes) runs of this kind.
    pub fn command(self) -> &'static str {
        match self {
            RunKind::Mnist => "mnist",
            RunKind::Train => "train",
            RunKind::Finetune => "finetune",
        }
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.command())
    }
}

/// Which trained model a run keeps, evaluates and predicts with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checkpoint {
    /// The epoch with the lowest validation loss (`best.safetensors`, the chapter's
    /// `ModelCheckpoint(save_best_only=True)`), with the last epoch in `last.safetensors`.
    #[default]
    LowestValidationLoss,
    /// The model as training left it (`model.safetensors`, rewritten after every epoch):
    /// what the chapter evaluates for MNIST.
    Last,
}

/// Where a run writes, and what it keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// The run folder.
    pub dir: PathBuf,
    /// The checkpoint the run keeps and is measured with.
    #[serde(default)]
    pub checkpoint: Checkpoint,
}

/// What a run found when it started: the data's folders, the device, the precision and
/// the thread count it computed with. Written with the description when the run starts;
/// absent from a description that has not run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The folder the training data was read from (MNIST: the folder of its four files;
    /// images: `train/`, or the data folder itself when it has no splits).
    pub train_dir: PathBuf,
    /// The validation folder, when the data has one.
    #[serde(default)]
    pub validation_dir: Option<PathBuf>,
    /// The test folder, when the data has one.
    #[serde(default)]
    pub test_dir: Option<PathBuf>,
    /// The device it trained on (`cpu`, `cuda:0`).
    pub device: String,
    /// The precision it computed in (`auto` resolved).
    pub precision: Precision,
    /// libtorch CPU threads.
    pub threads: usize,
    /// Processes that trained it together (data parallel; 1 alone).
    pub world_size: usize,
}

/// A training run, described as data: what to read, which model to build, how to fit it,
/// which callbacks watch it, how it is measured at the end, and where it writes.
/// [`crate::workflows::presets`] make the chapter's; [`crate::workflows::pipeline::run`]
/// runs any of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Always [`RUN_FORMAT`].
    pub format: String,
    /// [`RUN_VERSION`] when written by this convkit.
    pub version: u32,
    /// Which kind of run this is.
    pub kind: RunKind,
    /// The data: where it is, how it is split, decoded and stored.
    pub data: DataSpec,
    /// The model: where its architecture and weights come from.
    pub model: ModelSpec,
    /// The recipe the fitting settings started from (`fit` holds them, overrides included).
    #[serde(default)]
    pub recipe: Recipe,
    /// How it is fitted: epochs, batch size, optimizer and learning rate, schedule,
    /// regularizers, precision, seed.
    pub fit: FitConfig,
    /// Callbacks that steer the fit (early stopping, learning-rate changes), by name.
    #[serde(default)]
    pub callbacks: Vec<CallbackSpec>,
    /// How the kept checkpoint is measured at the end (absent from descriptions written
    /// before convkit had it: the plain evaluation).
    #[serde(default)]
    pub evaluation: EvaluationSpec,
    /// Where it writes.
    pub output: OutputSpec,
    /// What the run found when it started; `None` before it has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Recorded>,
}

impl RunSpec {
    /// A description of `kind` with these parts, in this convkit's format.
    pub fn new(
        kind: RunKind,
        data: DataSpec,
        model: ModelSpec,
        fit: FitConfig,
        output: OutputSpec,
    ) -> Self {
        RunSpec {
            format: RUN_FORMAT.into(),
            version: RUN_VERSION,
            kind,
            data,
            model,
            recipe: Recipe::Book,
            fit,
            callbacks: Vec::new(),
            evaluation: EvaluationSpec::default(),
            output,
            recorded: None,
        }
    }

    /// The precision asked for (`auto` unresolved); fp32 when the fit leaves it open.
    pub fn precision(&self) -> Precision {
        self.fit.precision.unwrap_or_default()
    }

    /// Refuses settings that cannot go together, before any image is decoded.
    pub fn check(&self) -> Result<()> {
        let features = self.model.uses_cached_features();
        let mnist = matches!(self.data.source, DataSource::Mnist { .. });
        if mnist != matches!(self.kind, RunKind::Mnist) {
            return Err(Error::InvalidConfig(format!(
                "a `{}` run cannot read {}",
                self.kind,
                if mnist { "MNIST" } else { "an image folder" }
            )));
        }
        if let ModelSource::Scratch { architecture } = &self.model.source {
            if architecture.is_mnist() != mnist {
                return Err(Error::InvalidConfig(format!(
                    "the {} model takes {}",
                    architecture.name(),
                    if mnist {
                        "colour images of an image folder, not MNIST"
                    } else {
                        "MNIST's 28x28 grey images, not an image folder"
                    }
                )));
            }
        }
        if features && self.data.storage.storage == crate::workflows::Storage::Disk {
            return Err(Error::InvalidConfig(
                "--storage disk cannot go with --mode features: the features are computed once \
                 from images in memory (use --storage memory, or --mode frozen)"
                    .into(),
            ));
        }
        if features && !self.model.augmentation.is_empty() {
            return Err(Error::InvalidConfig(
                "augmentation needs --mode frozen: cached features are computed once per image"
                    .into(),
            ));
        }
        if features && !self.model.unfreeze().is_empty() {
            return Err(Error::InvalidConfig(
                "unfreezing needs --mode frozen: cached features come from a fixed base".into(),
            ));
        }
        if features && self.output.checkpoint == Checkpoint::Last {
            return Err(Error::InvalidConfig(
                "keeping the last epoch (--keep last) does not apply to --mode features: \
                 feature extraction keeps the epoch with the lowest validation loss"
                    .into(),
            ));
        }
        if self.fit.batch_size == 0 {
            return Err(Error::InvalidConfig(
                "the batch size must be at least 1".into(),
            ));
        }
        self.fit.check()
    }
}
