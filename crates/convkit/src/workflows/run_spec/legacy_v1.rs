//! `run.json` as convkit wrote it before run descriptions had a format and a version
//! ("version 1"): a `job` (`mnist` or `train`), the job's flat settings, and what the run
//! found. [`convert`] turns one into today's [`RunSpec`], so that every run folder made
//! since convkit 0.1 can still be evaluated, reported on, continued and fine-tuned.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::callback_spec::CallbackSpec;
use super::data_spec::{DataSource, DataSpec, Decoding, StorageSpec};
use super::description::{Checkpoint, OutputSpec, Recorded, RunKind, RunSpec};
use super::model_spec::{ModelSource, ModelSpec, Unfreeze};
use crate::error::{Error, Result};
use crate::models::LayerSpec;
use crate::models::{BackboneArch, Head, ScratchModel};
use crate::runtime::Precision;
use crate::train::{EarlyStoppingSettings, FitConfig, Optimizer, ReduceLrOnPlateauSettings};
use crate::workflows::transfer::TransferMode;
use crate::workflows::Storage;

/// `run.json` of a version-1 MNIST run.
#[derive(Deserialize)]
struct MnistRun {
    data_dir: PathBuf,
    settings: MnistJob,
    #[serde(flatten)]
    started: Started,
}

/// What both kinds of version-1 `run.json` recorded of where the run computed.
#[derive(Deserialize)]
struct Started {
    device: String,
    #[serde(default)]
    precision: Precision,
    threads: usize,
    #[serde(default = "one")]
    world_size: usize,
}

impl Started {
    /// Today's record, with the data's folders.
    fn recorded(
        self,
        train_dir: PathBuf,
        validation_dir: Option<PathBuf>,
        test_dir: Option<PathBuf>,
    ) -> Recorded {
        Recorded {
            train_dir,
            validation_dir,
            test_dir,
            device: self.device,
            precision: self.precision,
            threads: self.threads,
            world_size: self.world_size,
        }
    }
}

/// The fit settings both kinds of version-1 job held, flat among the others.
#[derive(Deserialize)]
struct Fit {
    epochs: usize,
    batch_size: usize,
    seed: u64,
    optimizer: Optimizer,
    #[serde(default)]
    precision: Precision,
}

impl From<Fit> for FitConfig {
    fn from(fit: Fit) -> FitConfig {
        FitConfig {
            epochs: fit.epochs,
            batch_size: fit.batch_size,
            optimizer: fit.optimizer,
            seed: fit.seed,
            precision: Some(fit.precision),
            ..FitConfig::default()
        }
    }
}

#[derive(Deserialize)]
struct MnistJob {
    data_dir: Option<PathBuf>,
    out_dir: PathBuf,
    validation_split: f64,
    train_limit: Option<usize>,
    #[serde(flatten)]
    fit: Fit,
}

/// `run.json` of a version-1 image-folder run (`convkit train`, and `convkit finetune`,
/// which wrote `train` too).
#[derive(Deserialize)]
struct TrainRun {
    train_dir: PathBuf,
    validation_dir: Option<PathBuf>,
    test_dir: Option<PathBuf>,
    settings: TrainJob,
    #[serde(flatten)]
    started: Started,
}

#[derive(Deserialize)]
struct TrainJob {
    data_dir: PathBuf,
    out_dir: PathBuf,
    #[serde(default)]
    model: ScratchModel,
    image_size: u32,
    crop_to_aspect_ratio: bool,
    antialias: bool,
    augmentation: Vec<LayerSpec>,
    dropout: Option<f64>,
    validation_split: f64,
    early_stopping: Option<usize>,
    reduce_lr_patience: Option<usize>,
    strict: bool,
    #[serde(default)]
    base: Option<BackboneArch>,
    #[serde(default)]
    mode: TransferMode,
    #[serde(default)]
    weights: Option<PathBuf>,
    #[serde(default)]
    head: Option<Head>,
    #[serde(default)]
    features_cache: Option<PathBuf>,
    #[serde(default)]
    storage: Storage,
    #[serde(default)]
    decoded_cache: Option<PathBuf>,
    #[serde(default)]
    init_from: Option<PathBuf>,
    #[serde(default)]
    unfreeze: Vec<String>,
    #[serde(default)]
    unfreeze_last: Option<usize>,
    #[serde(flatten)]
    fit: Fit,
}

fn one() -> usize {
    1
}

/// Today's description of the version-1 `run.json` `value`, read from `path`.
pub fn convert(value: Value, path: &Path) -> Result<RunSpec> {
    let json_error = |e| Error::Json {
        path: path.to_owned(),
        reason: e,
    };
    match value.get("job").and_then(Value::as_str) {
        Some("mnist") => Ok(mnist(serde_json::from_value(value).map_err(json_error)?)),
        Some("train") => Ok(train(serde_json::from_value(value).map_err(json_error)?)),
        other => Err(Error::invalid_data(
            path,
            format!(
                "a run of an unknown kind ({}): convkit before version 2 wrote `mnist` and \
                 `train` runs only",
                other.map_or("no `job`".to_owned(), |j| format!("`{j}`"))
            ),
        )),
    }
}

fn mnist(run: MnistRun) -> RunSpec {
    let job = run.settings;
    let data = DataSpec {
        source: DataSource::Mnist {
            dir: job.data_dir,
            limit: job.train_limit,
        },
        validation_split: job.validation_split,
        decoding: None,
        storage: StorageSpec::default(),
    };
    let fit = FitConfig::from(job.fit);
    let output = OutputSpec {
        dir: job.out_dir,
        checkpoint: Checkpoint::Last,
    };
    let model = ModelSpec::new(ModelSource::Scratch {
        architecture: ScratchModel::MnistConvnet,
    });
    let mut spec = RunSpec::new(RunKind::Mnist, data, model, fit, output);
    spec.recorded = Some(run.started.recorded(run.data_dir, None, None));
    spec
}

fn train(run: TrainRun) -> RunSpec {
    let job = run.settings;
    let unfreeze = Unfreeze {
        layers: job.unfreeze,
        last: job.unfreeze_last,
    };
    // `convkit finetune` wrote a `train` run starting from the source run's checkpoint, on
    // its pretrained base; `train --init-from` could not name a base.
    let kind = if job.init_from.is_some() && job.base.is_some() {
        RunKind::Finetune
    } else {
        RunKind::Train
    };
    let source = match (job.init_from, job.base) {
        (Some(path), _) => ModelSource::Checkpoint { path, unfreeze },
        (None, Some(base)) => ModelSource::Pretrained {
            base,
            head: job.head,
            mode: job.mode,
            weights: job.weights,
            features_cache: job.features_cache,
            unfreeze,
        },
        (None, None) => ModelSource::Scratch {
            architecture: job.model,
        },
    };
    let data = DataSpec {
        source: DataSource::ImageFolder { dir: job.data_dir },
        validation_split: job.validation_split,
        decoding: Some(Decoding {
            image_size: job.image_size,
            crop_to_aspect_ratio: job.crop_to_aspect_ratio,
            antialias: job.antialias,
            strict: job.strict,
        }),
        storage: StorageSpec {
            storage: job.storage,
            decoded_cache: job.decoded_cache,
        },
    };
    let model = ModelSpec {
        source,
        augmentation: job.augmentation,
        dropout: job.dropout,
    };
    let fit = FitConfig::from(job.fit);
    let output = OutputSpec {
        dir: job.out_dir,
        checkpoint: Checkpoint::LowestValidationLoss,
    };
    let mut spec = RunSpec::new(kind, data, model, fit, output);
    // In the order version 1 gave them to `fit`, which its saved states follow.
    spec.callbacks.extend(job.early_stopping.map(|patience| {
        CallbackSpec::EarlyStopping(EarlyStoppingSettings {
            patience,
            monitor: Default::default(),
        })
    }));
    spec.callbacks.extend(
        job.reduce_lr_patience
            .map(|p| CallbackSpec::ReduceLrOnPlateau(ReduceLrOnPlateauSettings::halving(p))),
    );
    spec.recorded = Some(
        run.started
            .recorded(run.train_dir, run.validation_dir, run.test_dir),
    );
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::presets;
    use crate::workflows::run_spec::{differences, Compared};

    fn fixture(run: &str) -> RunSpec {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/run-v1")
            .join(run)
            .join("run.json");
        RunSpec::read(&path).unwrap()
    }

    #[test]
    fn an_mnist_run_reads_as_the_mnist_preset() {
        let spec = fixture("mnist");
        assert_eq!(spec.kind, RunKind::Mnist);
        let mut expected = presets::mnist("mnist".into());
        expected.data.source = DataSource::Mnist {
            dir: None,
            limit: Some(1200),
        };
        expected.fit.epochs = 1;
        // It asked for fp32, which the preset's default was then (`auto` since issue 21).
        expected.fit.precision = Some(Precision::Fp32);
        let found = differences(&spec, &expected, Compared::AllBut(&[]));
        assert!(found.is_empty(), "{found:?}");
        let recorded = spec.recorded.unwrap();
        assert_eq!(recorded.train_dir, PathBuf::from("/work/shared/data/mnist"));
        assert_eq!((recorded.threads, recorded.world_size), (1, 1));
    }

    #[test]
    fn a_train_run_keeps_its_callbacks_in_order() {
        let spec = fixture("scratch");
        assert_eq!(spec.kind, RunKind::Train);
        let names: Vec<String> = spec
            .callbacks
            .iter()
            .map(|c| {
                serde_json::to_value(c).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names, ["early_stopping", "reduce_lr_on_plateau"]);
        assert_eq!(spec.model.dropout, Some(0.5));
        assert_eq!(spec.model.augmentation.len(), 3);
        assert_eq!(spec.data.decoding().image_size, 90);
        assert_eq!(spec.output.checkpoint, Checkpoint::LowestValidationLoss);
        spec.check().unwrap();
    }

    #[test]
    fn features_and_finetune_runs_read_as_what_they_are() {
        let features = fixture("features");
        assert_eq!(features.kind, RunKind::Train);
        assert!(features.model.uses_cached_features());
        assert_eq!(features.model.base(), Some(BackboneArch::Vgg16));
        let finetune = fixture("finetune");
        assert_eq!(finetune.kind, RunKind::Finetune, "finetune wrote `train`");
        let ModelSource::Checkpoint { path, unfreeze } = &finetune.model.source else {
            panic!("a fine-tuning run starts from a checkpoint")
        };
        assert_eq!(path, &PathBuf::from("features/best.safetensors"));
        assert_eq!(unfreeze.layers, ["block5"]);
        assert_eq!(finetune.fit.optimizer.learning_rate(), 1e-5);
    }

    #[test]
    fn unknown_files_are_refused_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        std::fs::write(&path, r#"{"job": "predict"}"#).unwrap();
        let err = RunSpec::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("unknown kind") && err.contains("predict"),
            "{err}"
        );
        std::fs::write(&path, r#"{"format": "convkit-run", "version": 9}"#).unwrap();
        let err = RunSpec::read(&path).unwrap_err().to_string();
        assert!(err.contains("newer convkit"), "{err}");
        std::fs::write(&path, r#"{"hello": 1}"#).unwrap();
        let err = RunSpec::read(&path).unwrap_err().to_string();
        assert!(err.contains("not a convkit run description"), "{err}");
    }
}
