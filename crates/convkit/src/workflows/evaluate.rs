//! `convkit evaluate RUN_DIR`: reloads a saved run and measures it on test data.

use std::path::{Path, PathBuf};

use tch::Device;

use super::run_dir::RunDir;
use super::run_spec::{DataSource, RunSpec};
use crate::data::image_folder::{ImageDecoding, ImageFolder, ImageOptions, SplitFolders};
use crate::data::mnist::{load_mnist_datasets, locate_mnist};
use crate::data::{Dataset, ImageDataset};
use crate::error::{Error, Result};
use crate::json_file::read_json;
use crate::model::Model;
use crate::report::evaluation_report::{write_evaluation_report, EvaluationReport, ReportInput};
use crate::runtime::Precision;
use crate::train::{Evaluation, Tta};

/// Loads the checkpoint of the run in `run_dir` (the best epoch when the run kept one) and
/// evaluates it on the test data: `data` when given (for image runs, a folder of class
/// sub-folders, or a data folder whose `test/` is used), else the run's own test split (its
/// validation split when it has none). It computes in `precision`, or in the precision the
/// run trained in when `None`, so that the run's own score is reproduced; with test-time
/// augmentation `tta` (recorded in the result), see [`crate::train::evaluate_with`].
pub fn evaluate_run(
    run_dir: &Path,
    data: Option<&Path>,
    device: Device,
    precision: Option<Precision>,
    tta: Tta,
) -> Result<Evaluation> {
    let run = RunDir::open(run_dir)?;
    let model = run.load_checkpoint(device, precision)?;
    tta.check(&model)?;
    let split = evaluation_split(&run, &model, data)?;
    crate::train::evaluate_with(&model, &split.dataset, split.batch_size, tta)
}

/// Evaluates the run in `run_dir` as [`evaluate_run`] does, image by image, and writes its
/// evaluation report into `out` (default `RUN_DIR/report-<split>`, the split being the
/// evaluated folder's name, or `test` for MNIST): see [`write_evaluation_report`]. Its
/// accuracy, loss and count are [`evaluate_run`]'s with the same `tta`, and every figure,
/// picture and the page say when they come from test-time augmentation.
pub fn report_run(
    run_dir: &Path,
    data: Option<&Path>,
    out: Option<&Path>,
    device: Device,
    precision: Option<Precision>,
    tta: Tta,
) -> Result<EvaluationReport> {
    let run = RunDir::open(run_dir)?;
    let model = run.load_checkpoint(device, precision)?;
    tta.check(&model)?;
    let split = evaluation_split(&run, &model, data)?;
    let samples =
        crate::train::predict_samples_with(&model, &split.dataset, split.batch_size, tta)?;
    let out = out
        .map(Path::to_owned)
        .unwrap_or_else(|| run.root().join(format!("report-{}", split.name)));
    let run_name = std::fs::canonicalize(run.root())
        .unwrap_or_else(|_| run.root().to_owned())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| run.root().display().to_string());
    let input = ReportInput {
        run_name,
        data: split.description,
        checkpoint: run.checkpoint().unwrap_or_else(|| run.model()),
        samples: &samples,
        classes: model.classes(),
        names: &split.names,
        images: split.dataset.images(),
        curves: Some(run.curves()),
        settings: read_json::<serde_json::Value>(&run.config()).ok(),
    };
    write_evaluation_report(&out, &input)
}

/// The data a run is evaluated on, with what a report says about it.
struct EvaluationSplit {
    dataset: Dataset,
    /// Each image's file, or `test[i]` for MNIST's.
    names: Vec<String>,
    /// The split's short name: `test`, or the evaluated folder's name.
    name: String,
    /// What was evaluated, for a person.
    description: String,
    batch_size: usize,
}

/// Loads the data that `run`'s `model` is evaluated on: `data` when given, else the run's
/// own test split (its validation split when it has none).
fn evaluation_split(run: &RunDir, model: &Model, data: Option<&Path>) -> Result<EvaluationSplit> {
    let spec = run.spec()?;
    let recorded = spec.recorded.as_ref();
    match &spec.data.source {
        DataSource::Mnist { .. } => {
            let dir = match data {
                Some(dir) => locate_mnist(Some(dir))?,
                None => match recorded.map(|r| r.train_dir.clone()).filter(|d| d.is_dir()) {
                    Some(dir) => dir,
                    None => locate_mnist(None)?,
                },
            };
            let (_, test) = load_mnist_datasets(&dir)?;
            Ok(EvaluationSplit {
                names: (0..test.len()).map(|i| format!("test[{i}]")).collect(),
                name: "test".into(),
                description: format!("the MNIST test split in {}", dir.display()),
                dataset: test,
                batch_size: 1000,
            })
        }
        DataSource::ImageFolder { .. } => {
            let dir = match data {
                Some(dir) => evaluation_folder(dir)?,
                None => recorded
                    .and_then(|r| r.test_dir.clone().or(r.validation_dir.clone()))
                    .ok_or_else(|| {
                        Error::InvalidConfig(
                            "the run's data had no test or validation folder: pass --data DIR"
                                .into(),
                        )
                    })?,
            };
            // models saved before they recorded their decoding: the run's settings
            let options = model.image_options(recorded_decoding(&spec));
            let loaded = ImageFolder::scan(&dir)?.load(&options, false)?;
            if !loaded.skipped.is_empty() {
                eprintln!(
                    "warning: skipped {} unreadable file(s) in {}",
                    loaded.skipped.len(),
                    dir.display()
                );
            }
            check_classes(model, &loaded.dataset, &dir)?;
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".into());
            Ok(EvaluationSplit {
                names: loaded
                    .paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                name,
                description: dir.display().to_string(),
                dataset: loaded.dataset,
                batch_size: 64,
            })
        }
    }
}

/// How the run's settings say images are decoded (before models recorded it).
fn recorded_decoding(spec: &RunSpec) -> ImageDecoding {
    let decoding = spec.data.decoding();
    ImageDecoding {
        crop_to_aspect_ratio: decoding.crop_to_aspect_ratio,
        antialias: decoding.antialias,
    }
}

/// Checks that an evaluation folder has the model's classes, in the model's order.
pub fn check_classes(model: &Model, data: &dyn ImageDataset, dir: &Path) -> Result<()> {
    if data.classes() != model.classes() {
        return Err(Error::invalid_data(
            dir,
            format!(
                "its classes {:?} are not the model's {:?}: labels would be wrong",
                data.classes(),
                model.classes()
            ),
        ));
    }
    Ok(())
}

/// The folder to evaluate on for `--data DIR`: `DIR` itself when it holds class folders;
/// its `test/` when it is split into train/, validation/ and test/; its `validation/`
/// (saying so on stderr) when it has no `test/`. A folder with `train/` alone is refused:
/// a score on the training images would pass for a test score.
fn evaluation_folder(dir: &Path) -> Result<PathBuf> {
    let splits = SplitFolders::detect(dir);
    if splits.train == dir {
        return Ok(dir.to_owned());
    }
    match (splits.test, splits.validation) {
        (Some(test), _) => Ok(test),
        (None, Some(validation)) => {
            eprintln!(
                "note: {} has no test/ folder; evaluating on {}",
                dir.display(),
                validation.display()
            );
            Ok(validation)
        }
        (None, None) => Err(Error::invalid_data(
            dir,
            "it has a train/ folder but neither test/ nor validation/: pass the folder of \
             class sub-folders to evaluate on",
        )),
    }
}

/// How to decode images for the checkpoint of `run`: the model's own record, else (runs
/// saved before models recorded it) the run's settings, else plain resizing.
pub(crate) fn run_image_options(run: &RunDir, model: &Model) -> Result<ImageOptions> {
    let fallback = match model.decoding() {
        Some(_) => ImageDecoding::default(),
        None => recorded_decoding(&run.spec()?),
    };
    Ok(model.image_options(fallback))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders(root: &Path, names: &[&str]) {
        for name in names {
            std::fs::create_dir_all(root.join(name).join("cats")).unwrap();
        }
    }

    #[test]
    fn data_folders_evaluate_on_test_then_validation_never_train() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        folders(root, &["split/train", "split/validation", "split/test"]);
        assert_eq!(
            evaluation_folder(&root.join("split")).unwrap(),
            root.join("split/test")
        );
        folders(root, &["no_test/train", "no_test/validation"]);
        assert_eq!(
            evaluation_folder(&root.join("no_test")).unwrap(),
            root.join("no_test/validation")
        );
        folders(root, &["only_train/train"]);
        let err = evaluation_folder(&root.join("only_train"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("only_train") && err.contains("test/"), "{err}");
        folders(root, &["classes/dogs"]);
        assert_eq!(
            evaluation_folder(&root.join("classes")).unwrap(),
            root.join("classes")
        );
    }
}
