//! `convkit mnist`: the chapter's MNIST convnet, trained, evaluated and written to a run
//! folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use super::process_run_dir::{check_same_world_size, ProcessRunDir};
use super::run_dir::{peak_rss_bytes, RunDir};
use crate::data::mnist::{load_mnist_datasets, locate_or_download_mnist, mnist_mirror};
use crate::data::ImageDataset;
use crate::device::device_name;
use crate::error::Result;
use crate::json_file::{read_json, write_json};
use crate::model::Model;
use crate::models::mnist_convnet;
use crate::runtime::Precision;
use crate::train::{
    Callback, CurvesPlot, Evaluation, FitConfig, History, HistoryCsv, LatestModel, Optimizer,
    ProgressBars, TensorBoardLog,
};

/// Settings of an MNIST run; [`MnistJob::new`] gives the chapter's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MnistJob {
    /// Folder holding the four MNIST files (or a folder with `mnist/` in it); `None`
    /// searches `$CONVKIT_DATA/mnist`, `./data/mnist` and the cache, then downloads.
    pub data_dir: Option<PathBuf>,
    /// The run folder to write.
    pub out_dir: PathBuf,
    /// Passes over the training data (chapter: 5).
    pub epochs: usize,
    /// Samples per step (chapter: 64).
    pub batch_size: usize,
    /// Fraction of the training set held out for validation, from its end (Keras'
    /// `validation_split`); 0 disables validation.
    pub validation_split: f64,
    /// Seed of the initial weights, the sample order and dropout.
    pub seed: u64,
    /// Use only the first N training images (before the validation split): quick runs.
    pub train_limit: Option<usize>,
    /// The optimizer (chapter: RMSprop with Keras' defaults).
    pub optimizer: Optimizer,
    /// Progress bars and per-epoch lines on stderr.
    pub progress: bool,
    /// The precision to train and evaluate in (`auto`: bf16 where the hardware runs it
    /// natively).
    #[serde(default)]
    pub precision: Precision,
}

impl MnistJob {
    /// The chapter's settings, writing to `out_dir`.
    pub fn new(out_dir: PathBuf) -> Self {
        MnistJob {
            data_dir: None,
            out_dir,
            epochs: 5,
            batch_size: 64,
            validation_split: 0.1,
            seed: 42,
            train_limit: None,
            optimizer: Optimizer::rmsprop(),
            progress: false,
            precision: Precision::default(),
        }
    }
}

/// What `run.json` of an MNIST run holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MnistRunConfig {
    /// Always `mnist`.
    pub job: String,
    /// The folder the data was read from.
    pub data_dir: PathBuf,
    /// The job's settings.
    pub settings: MnistJob,
    /// Device the run trained on.
    pub device: String,
    /// The precision it computed in (`auto` resolved).
    #[serde(default)]
    pub precision: Precision,
    /// libtorch CPU threads.
    pub threads: usize,
    /// Processes that trained it together (data parallel; 1 alone).
    #[serde(default = "one")]
    pub world_size: usize,
}

fn one() -> usize {
    1
}

/// The results of an MNIST run, also written to `metrics.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MnistReport {
    /// Accuracy on the 10,000 test images.
    pub test_accuracy: f64,
    /// Mean loss on the test images.
    pub test_loss: f64,
    /// Number of test images.
    pub test_count: usize,
    /// Validation accuracy after the last epoch (absent without validation).
    pub val_accuracy: Option<f64>,
    /// Training images per epoch.
    pub train_count: usize,
    /// Epochs run.
    pub epochs: usize,
    /// Seconds spent in training steps (validation excluded).
    pub train_seconds: f64,
    /// Training images per second over all epochs.
    pub images_per_second: f64,
    /// Peak resident memory of the process, in MiB.
    pub peak_memory_mib: Option<f64>,
    /// Number of parameters.
    pub params: i64,
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

/// Trains the chapter's MNIST convnet as `job` says, evaluates it on the test set, and
/// writes the run folder: `model.safetensors` + `model.json` (the model after the latest
/// epoch, rewritten after each; after the last, it is the model the chapter evaluates), `history.csv`, `curves.png`, `metrics.json`,
/// `run.json`.
///
/// In a data-parallel run ([`crate::distributed`]) every process calls it; rank 0 writes the
/// run folder, the others a scratch folder that is removed afterwards.
pub fn run_mnist(job: &MnistJob, device: Device) -> Result<MnistReport> {
    let dir = ProcessRunDir::new_run(&job.out_dir)?;
    mnist(&for_this_process(job, &dir), device, false)
}

/// `job` as this process runs it: writing to its run folder, quiet unless it is rank 0.
fn for_this_process(job: &MnistJob, dir: &ProcessRunDir) -> MnistJob {
    MnistJob {
        out_dir: dir.root().to_owned(),
        progress: job.progress && dir.is_main(),
        ..job.clone()
    }
}

/// Continues the MNIST run in `run_dir` from its last complete state, with the settings its
/// `run.json` records, and finishes it as [`run_mnist`] would have: bit for bit, on the same
/// device, thread count and precision. A finished run is [`Error::RunFinished`].
///
/// [`Error::RunFinished`]: crate::Error::RunFinished
pub fn resume_mnist(run_dir: &Path, device: Device, progress: bool) -> Result<MnistReport> {
    let dir = ProcessRunDir::resume(run_dir, "mnist")?;
    let config: MnistRunConfig = read_json(&RunDir::at(dir.root()).config())?;
    check_same_world_size(config.world_size, run_dir)?;
    let mut job = config.settings;
    job.progress = progress;
    let job = for_this_process(&job, &dir);
    if job.progress {
        super::train::warn_if_not_reproducible(&config.device, config.threads, device);
    }
    mnist(&job, device, true)
}

fn mnist(job: &MnistJob, device: Device, resume: bool) -> Result<MnistReport> {
    if !resume {
        RunDir::at(&job.out_dir).start_fresh("mnist")?;
    }
    let data_dir =
        locate_or_download_mnist(job.data_dir.as_deref(), &mnist_mirror(), job.progress)?;
    let (train_all, test) = load_mnist_datasets(&data_dir)?;
    let train_all = match job.train_limit {
        Some(n) => train_all.take(n),
        None => train_all,
    };
    let (train, validation) = train_all.split_validation(job.validation_split)?;
    let run = RunDir::create(&job.out_dir)?;
    let threads = tch::get_num_threads().max(1) as usize;
    if !resume {
        write_json(
            &run.config(),
            &MnistRunConfig {
                job: "mnist".into(),
                data_dir: data_dir.clone(),
                settings: job.clone(),
                device: device_name(device),
                precision: job.precision.resolve(device),
                threads,
                world_size: crate::distributed::world_size(),
            },
        )?;
    }
    if job.progress {
        eprintln!(
            "MNIST from {}: {} training, {} validation, {} test images; mnist_convnet on {} in {} ({} threads)",
            data_dir.display(),
            train.len(),
            validation.len(),
            test.len(),
            device_name(device),
            job.precision.resolve(device),
            threads
        );
    }
    let mut model = Model::new(&mnist_convnet(), device, job.seed)?;
    model.set_classes(train.classes().to_vec())?;
    let config = FitConfig {
        epochs: job.epochs,
        batch_size: job.batch_size,
        optimizer: job.optimizer,
        seed: job.seed,
        precision: Some(job.precision),
        state_dir: Some(run.state()),
    };
    let mut history_csv = HistoryCsv(run.history());
    let mut curves = CurvesPlot {
        path: run.curves(),
        title: "MNIST convnet".into(),
    };
    let validation: Option<&dyn ImageDataset> = (!validation.is_empty()).then_some(&validation);
    let mut progress = ProgressBars::new();
    let mut latest = LatestModel(run.model());
    let mut tensorboard = TensorBoardLog::for_run(run.root());
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut history_csv, &mut curves, &mut latest];
    callbacks.push(&mut tensorboard);
    if job.progress {
        callbacks.push(&mut progress);
    }
    let history = model.fit(&train, validation, &config, &mut callbacks)?;
    model.save(&run.model())?;
    let test_eval = model.evaluate(&test, 1000)?;
    let report = report(
        job,
        &model,
        &history,
        &test_eval,
        train.len(),
        device,
        threads,
        run.root(),
    );
    write_json(&run.metrics(), &report)?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn report(
    job: &MnistJob,
    model: &Model,
    history: &History,
    test: &Evaluation,
    train_count: usize,
    device: Device,
    threads: usize,
    out_dir: &Path,
) -> MnistReport {
    let train_seconds = history.train_seconds();
    MnistReport {
        test_accuracy: test.accuracy,
        test_loss: test.loss,
        test_count: test.count,
        val_accuracy: history.last().and_then(|r| r.val_accuracy),
        train_count,
        epochs: history.epochs.len(),
        train_seconds,
        images_per_second: (train_count * history.epochs.len()) as f64 / train_seconds,
        peak_memory_mib: peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
        params: model.param_count(),
        device: device_name(device),
        precision: model.precision(),
        threads,
        seed: job.seed,
        out_dir: out_dir.to_owned(),
    }
}
