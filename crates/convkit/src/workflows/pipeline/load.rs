//! The first stage of a run: its data, read as its description says, into training,
//! validation and test splits.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use crate::data::image_folder::SplitFolders;
use crate::data::mnist::{load_mnist_datasets, locate_or_download_mnist, mnist_mirror};
use crate::data::ImageDataset;
use crate::error::{Error, Result};
use crate::workflows::image_splits::{split_validation, Split, SplitReader};
use crate::workflows::run_spec::{DataSource, RunSpec};
use crate::workflows::Storage;

/// A run's data, loaded.
pub(crate) struct LoadedData {
    /// The training split.
    pub train: Split,
    /// The validation split (empty for an MNIST run without one).
    pub validation: Split,
    /// The test split, when the data has one.
    pub test: Option<Split>,
    /// Where the data was found (for `run.json`).
    pub train_dir: PathBuf,
    /// The validation folder, when the data has one.
    pub validation_dir: Option<PathBuf>,
    /// The test folder, when the data has one.
    pub test_dir: Option<PathBuf>,
    /// Files skipped because they could not be decoded.
    pub skipped: usize,
    /// Seconds spent reading and decoding.
    pub seconds: f64,
    /// What was read, for the start line: `MNIST from DIR`, or the data folder.
    pub description: String,
    /// Images read from the sources (training, validation and skipped ones).
    pub read_count: usize,
}

impl LoadedData {
    /// Whether there is validation data.
    pub fn has_validation(&self) -> bool {
        !self.validation.data().is_empty()
    }
}

/// Reads the data `spec` describes. `progress` shows download and cache-building bars.
pub(crate) fn load_data(spec: &RunSpec, progress: bool) -> Result<LoadedData> {
    let start = Instant::now();
    match &spec.data.source {
        DataSource::Mnist { dir, limit } => {
            let dir = locate_or_download_mnist(dir.as_deref(), &mnist_mirror(), progress)?;
            let (train_all, test) = load_mnist_datasets(&dir)?;
            let train_all = match limit {
                Some(n) => train_all.take(*n),
                None => train_all,
            };
            let (train, validation) = train_all.split_validation(spec.data.validation_split)?;
            let read_count = train.len() + validation.len();
            Ok(LoadedData {
                train: Split::Memory(Rc::new(train)),
                validation: Split::Memory(Rc::new(validation)),
                test: Some(Split::Memory(Rc::new(test))),
                description: format!("MNIST from {}", dir.display()),
                train_dir: dir,
                validation_dir: None,
                test_dir: None,
                skipped: 0,
                seconds: start.elapsed().as_secs_f64(),
                read_count,
            })
        }
        DataSource::ImageFolder { dir } => load_image_folder(spec, dir, progress, start),
    }
}

fn load_image_folder(
    spec: &RunSpec,
    dir: &Path,
    progress: bool,
    start: Instant,
) -> Result<LoadedData> {
    let splits = SplitFolders::detect(dir);
    let decoding = spec.data.decoding();
    let options = decoding.image_options();
    let storage = match spec.data.storage.storage {
        // Features are computed from images in memory.
        Storage::Auto if spec.model.uses_cached_features() => Storage::Memory,
        storage => SplitReader::resolve(storage, &splits, decoding.image_size),
    };
    let reader = SplitReader {
        options: &options,
        strict: decoding.strict,
        storage,
        cache_dir: spec.data.storage.decoded_cache.clone(),
        progress,
    };
    let (train_all, mut skipped) = reader.read(&splits.train)?;
    let (train, validation) = match &splits.validation {
        Some(validation_dir) => {
            let (validation, validation_skipped) = reader.read(validation_dir)?;
            skipped += validation_skipped;
            check_same_classes(train_all.data(), validation.data(), validation_dir)?;
            (train_all, validation)
        }
        None => {
            if spec.data.validation_split <= 0.0 {
                return Err(Error::InvalidConfig(format!(
                    "{} has no validation/ folder: set a validation split above 0",
                    dir.display()
                )));
            }
            split_validation(train_all, spec.data.validation_split, spec.fit.seed)?
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let read_count = train.data().len() + validation.data().len() + skipped;
    let test = match &splits.test {
        Some(test_dir) => {
            let (test, _) = reader.read(test_dir)?;
            check_same_classes(train.data(), test.data(), test_dir)?;
            Some(test)
        }
        None => None,
    };
    Ok(LoadedData {
        train,
        validation,
        test,
        train_dir: splits.train,
        validation_dir: splits.validation,
        test_dir: splits.test,
        skipped,
        seconds,
        description: dir.display().to_string(),
        read_count,
    })
}

fn check_same_classes(
    train: &dyn ImageDataset,
    other: &dyn ImageDataset,
    dir: &Path,
) -> Result<()> {
    if train.classes() != other.classes() {
        return Err(Error::invalid_data(
            dir,
            format!(
                "its classes {:?} differ from the training classes {:?}",
                other.classes(),
                train.classes()
            ),
        ));
    }
    Ok(())
}
