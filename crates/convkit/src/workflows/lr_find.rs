//! `convkit lr-find`: the learning-rate finder on the data and model a training run would
//! use, with its plot and its sweep written to a folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::pipeline::build::build_model;
use super::pipeline::load::load_data;
use super::pipeline::RunOptions;
use super::run_spec::RunSpec;
use crate::atomic_file::write_atomic;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::json_file::write_json;
use crate::progress_bar::count_bar;
use crate::report::plot_lr_find;
use crate::runtime::Precision;
use crate::train::{lr_find, LrFindSettings, LrSweep};

/// A learning-rate sweep to run: the training run whose data, model, batch size, seed,
/// optimizer and precision it uses, the sweep's range, and where its results go.
#[derive(Clone, Debug)]
pub struct LrFindJob {
    /// The run whose first steps the sweep tries out (its epochs, callbacks and output
    /// folder are not used).
    pub run: RunSpec,
    /// The learning rate of the first step.
    pub start_lr: f64,
    /// The learning rate the sweep heads for.
    pub end_lr: f64,
    /// Steps in the sweep.
    pub iterations: usize,
    /// The folder written: `lr_find.png`, `lr_find.csv` and `lr_find.json`.
    pub out_dir: PathBuf,
}

/// What [`find_learning_rate`] found, as `lr_find.json` holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LrFindReport {
    /// The model's name.
    pub model: String,
    /// What was read: the data folder, or `MNIST from DIR`.
    pub data: String,
    /// Training images the sweep drew its batches from.
    pub train_count: usize,
    /// Where it computed.
    pub device: String,
    /// The precision it computed in.
    pub precision: Precision,
    /// Seconds spent reading the data.
    pub load_seconds: f64,
    /// Seconds the sweep took.
    pub sweep_seconds: f64,
    /// The plot.
    pub plot: PathBuf,
    /// The sweep, one line per step.
    pub csv: PathBuf,
    /// The sweep, its settings and its suggestions.
    pub sweep: LrSweep,
}

/// Loads the data and builds the model of `job.run` as [`super::pipeline::run`] would,
/// sweeps the learning rate on its training split ([`lr_find`]: the model computes in the
/// run's precision, with its augmentation and dropout), and writes the plot
/// (`lr_find.png`), the steps (`lr_find.csv`) and the report (`lr_find.json`) to
/// `job.out_dir`. A run on cached features (`--mode features`) is refused: its head trains
/// on features, not images.
pub fn find_learning_rate(job: &LrFindJob, options: &RunOptions) -> Result<LrFindReport> {
    let spec = &job.run;
    spec.check()?;
    if spec.model.uses_cached_features() {
        return Err(Error::InvalidConfig(
            "the learning-rate finder trains on images: use --mode frozen (the default), not \
             --mode features"
                .into(),
        ));
    }
    let settings = LrFindSettings {
        start_lr: job.start_lr,
        end_lr: job.end_lr,
        iterations: job.iterations,
        batch_size: spec.fit.batch_size,
        seed: spec.fit.seed,
        optimizer: spec.fit.optimizer,
        ..LrFindSettings::default()
    };
    // Before any image is decoded.
    settings.check()?;
    let data = load_data(spec, options.progress)?;
    let train = data.train.data();
    let (mut model, _) = build_model(spec, train.classes(), options.device)?;
    let precision = model.set_precision(spec.precision());
    let description = &data.description;
    if options.progress {
        eprintln!(
            "lr-find: {} on {} ({} training images), batches of {}, {} steps from {:.0e} to \
             {:.0e}, on {} in {precision}",
            model.spec().name,
            description,
            train.len(),
            settings.batch_size,
            settings.iterations,
            settings.start_lr,
            settings.end_lr,
            device_name(options.device),
        );
    }
    let bar = count_bar(settings.iterations as u64, "lr-find", options.progress);
    let start = Instant::now();
    let sweep = lr_find(&mut model, train, &settings, &mut |_, _| bar.inc(1));
    bar.finish_and_clear();
    let sweep = sweep?;
    let sweep_seconds = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(&job.out_dir).map_err(|e| Error::io(&job.out_dir, e))?;
    let plot = job.out_dir.join("lr_find.png");
    let csv = job.out_dir.join("lr_find.csv");
    plot_lr_find(
        &sweep,
        &format!(
            "Learning-rate finder: {} on {description}",
            model.spec().name
        ),
        &plot,
    )?;
    write_atomic(&csv, sweep.to_csv().as_bytes())?;
    let report = LrFindReport {
        model: model.spec().name.clone(),
        data: data.description.clone(),
        train_count: train.len(),
        device: device_name(options.device),
        precision,
        load_seconds: data.seconds,
        sweep_seconds,
        plot,
        csv,
        sweep,
    };
    write_json(&report_path(&job.out_dir), &report)?;
    Ok(report)
}

/// Where [`find_learning_rate`] writes its report in `out_dir`.
pub fn report_path(out_dir: &Path) -> PathBuf {
    out_dir.join("lr_find.json")
}
