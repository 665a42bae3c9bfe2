//! One pipeline for every run: load -> build -> fit -> evaluate -> report, driven by a
//! [`RunSpec`]. [`run`] starts a run, [`resume`] continues one from its folder.

use std::path::Path;
use std::time::Instant;

use tch::Device;

use super::build::build_model;
use super::load::{load_data, LoadedData};
use super::run_report::RunReport;
use crate::data::ImageDataset;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::json_file::write_json;
use crate::model::Model;
use crate::report::{CurvesPlot, TensorBoardLog};
use crate::runtime::{bf16_is_native, Precision};
use crate::train::{
    BestCheckpoint, Callback, Evaluation, FitConfig, History, HistoryCsv, LatestModel, Monitor,
    ProgressBars, Tta,
};
use crate::workflows::features::FeatureCache;
use crate::workflows::image_splits::Split;
use crate::workflows::process_run_dir::{check_same_world_size, ProcessRunDir};
use crate::workflows::run_dir::{peak_rss_bytes, RunDir};
use crate::workflows::run_spec::{Checkpoint, DataSource, Recorded, RunSpec};
use crate::workflows::transfer::{fit_on_features, prepare_features};

/// How a run is carried out, beyond what it computes.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Where to compute.
    pub device: Device,
    /// Progress bars and a line per epoch on stderr (rank 0 only in a data-parallel run).
    pub progress: bool,
}

/// Runs `spec` from its first epoch and writes its run folder (`spec.output.dir`):
/// `run.json` (the description, with what the run found), the checkpoints (`best` and
/// `last.safetensors`, or `model.safetensors` for runs that keep their last epoch),
/// `history.csv` and `curves.png` (rewritten after every epoch), `tensorboard/`, the
/// resumable `state/`, and `metrics.json` at the end.
///
/// In a data-parallel run ([`crate::distributed`]) every process calls it; rank 0 writes the
/// run folder, the others a scratch folder that is removed afterwards.
pub fn run(spec: &RunSpec, options: &RunOptions) -> Result<RunReport> {
    spec.check()?;
    let dir = ProcessRunDir::new_run(&spec.output.dir)?;
    // Before any image is decoded; the folder itself is made once the data has loaded (it
    // may sit inside the data folder, where it must not read as a class).
    if dir.is_main() {
        RunDir::at(dir.root()).start_fresh(spec.kind.command())?;
    }
    execute(&for_this_process(spec, &dir), options, &dir, false)
}

/// Continues the run in `run_dir` from its last complete state, with the description its
/// `run.json` holds, and finishes it as [`run`] would have: the same weights, history and
/// metrics as a run that was never interrupted, on the same device and thread count. It
/// computes in the precision the run started in (`auto` as it resolved then), on any
/// machine. A finished run is [`Error::RunFinished`]. Run folders written by earlier
/// versions of convkit are continued too.
pub fn resume(run_dir: &Path, options: &RunOptions) -> Result<RunReport> {
    let dir = ProcessRunDir::resume(run_dir)?;
    let mut spec = RunSpec::read(&RunDir::at(dir.root()).config())?;
    let recorded = spec.recorded.as_ref().ok_or_else(|| {
        Error::invalid_data(
            RunDir::at(run_dir).config(),
            "the run description records no start (device, threads): it has not run",
        )
    })?;
    check_same_world_size(recorded.world_size, run_dir)?;
    if options.progress && dir.is_main() {
        warn_if_not_reproducible(&recorded.device, recorded.threads, options.device);
        warn_if_emulated(recorded.precision, options.device);
    }
    spec.fit.precision = Some(recorded.precision);
    execute(&for_this_process(&spec, &dir), options, &dir, true)
}

/// `spec` as this process runs it: writing to its own run folder.
fn for_this_process(spec: &RunSpec, dir: &ProcessRunDir) -> RunSpec {
    let mut spec = spec.clone();
    spec.output.dir = dir.root().to_owned();
    spec
}

/// Warns when a resumed run computes on another device or thread count than it started on:
/// it continues correctly, but not bit for bit as the uninterrupted run would have.
fn warn_if_not_reproducible(recorded_device: &str, recorded_threads: usize, device: Device) {
    let threads = tch::get_num_threads().max(1) as usize;
    if recorded_device != device_name(device) || recorded_threads != threads {
        eprintln!(
            "warning: the run started on {recorded_device} with {} and continues on {} with \
             {}: its results will not be bit-identical to an uninterrupted run",
            threads_text(recorded_threads),
            device_name(device),
            threads_text(threads)
        );
    }
}

/// Warns when a run that started in bf16 continues on a device without bf16 units: it
/// keeps its precision, so that it ends as it would have, but computes several times
/// slower than fp32 would.
fn warn_if_emulated(precision: Precision, device: Device) {
    if precision == Precision::Bf16 && !bf16_is_native(device) {
        eprintln!(
            "warning: the run started in bf16 and continues in bf16, which {} emulates \
             (several times slower than fp32)",
            device_name(device)
        );
    }
}

/// What the start line says in parentheses after the precision: the threads, and, where
/// the run asked for `auto`, why it computes in what it does (`1 thread; auto: no bf16
/// units on this CPU`).
fn compute_text(asked: Precision, device: Device, threads: usize) -> String {
    let threads = threads_text(threads);
    if asked != Precision::Auto {
        return threads;
    }
    let units = if bf16_is_native(device) {
        "bf16 units"
    } else {
        "no bf16 units"
    };
    format!("{threads}; auto: {units} on this {}", device_kind(device))
}

/// `CPU` or `GPU`, for messages.
fn device_kind(device: Device) -> &'static str {
    match device {
        Device::Cpu => "CPU",
        _ => "GPU",
    }
}

/// `1 thread`, `2 threads`.
fn threads_text(threads: usize) -> String {
    if threads == 1 {
        "1 thread".into()
    } else {
        format!("{threads} threads")
    }
}

fn execute(
    spec: &RunSpec,
    options: &RunOptions,
    dir: &ProcessRunDir,
    resume: bool,
) -> Result<RunReport> {
    let start = Instant::now();
    let device = options.device;
    let progress = options.progress && dir.is_main();
    let data = load_data(spec, progress)?;
    let threads = tch::get_num_threads().max(1) as usize;
    let train = data.train.data();
    let (mut model, weights) = build_model(spec, train.classes(), device)?;
    if spec.data.decoding.is_some() {
        model.set_decoding(spec.data.decoding().image_options().decoding());
    }
    let precision = model.set_precision(spec.precision());
    if let Some(resizing) = &spec.fit.progressive_resizing {
        crate::train::fit::check_resizable(&model, resizing, train.image_shape()[1])?;
    }
    // Made and recorded once the model is built and its settings accepted, so that a
    // refused run leaves no folder behind, and no description to be mistaken for a run.
    let run = RunDir::create(&spec.output.dir)?;
    if !resume {
        let mut recorded = spec.clone();
        recorded.recorded = Some(Recorded {
            train_dir: data.train_dir.clone(),
            validation_dir: data.validation_dir.clone(),
            test_dir: data.test_dir.clone(),
            device: device_name(device),
            precision: spec.precision().resolve(device),
            threads,
            world_size: crate::distributed::world_size(),
        });
        recorded.write(&run.config())?;
    }
    if progress {
        print_start(spec, &data, &model, device, threads);
    }
    let config = FitConfig {
        precision: Some(precision),
        state_dir: Some(run.state()),
        ..spec.fit.clone()
    };
    let mut history_csv = HistoryCsv(run.history());
    let mut curves = CurvesPlot {
        path: run.curves(),
        title: curves_title(spec, &model),
        blended_training: spec.fit.mixup.is_some(),
    };
    let mut tensorboard = TensorBoardLog::for_run(run.root());
    if spec.data.decoding.is_some() {
        tensorboard.add_augmentation_grid(model.spec(), train, spec.fit.seed)?;
    }
    let mut steering: Vec<Box<dyn Callback>> = spec.callbacks.iter().map(|c| c.build()).collect();
    let mut latest = LatestModel(run.model());
    let mut progress_bars = ProgressBars::new();
    let mut callbacks: Vec<&mut dyn Callback> =
        vec![&mut history_csv, &mut curves, &mut tensorboard];
    callbacks.extend(steering.iter_mut().map(|c| &mut **c as &mut dyn Callback));
    if spec.output.checkpoint == Checkpoint::Last {
        callbacks.push(&mut latest);
    }
    if progress {
        callbacks.push(&mut progress_bars);
    }
    let validation = data.has_validation().then(|| data.validation.data());
    let eval_batch = evaluation_batch_size(spec);
    let tta = spec.evaluation.tta;
    let fitted = match (spec.model.uses_cached_features(), weights) {
        (true, Some(weights)) => {
            let cache = match &spec.model.source {
                crate::workflows::run_spec::ModelSource::Pretrained { features_cache, .. } => {
                    features_cache.clone().map(FeatureCache::new)
                }
                _ => None,
            }
            .or_else(FeatureCache::user_default);
            let mut splits = prepare_features(
                &model,
                &weights,
                [
                    data.train.in_memory(),
                    data.validation.in_memory(),
                    data.test.as_ref().and_then(Split::in_memory),
                ],
                cache,
                spec.fit.batch_size.max(32),
                progress,
            )?;
            if progress {
                let how = if splits.report.cache_hit {
                    "read from the cache"
                } else {
                    "computed"
                };
                eprintln!("features {how} in {:.1}s", splits.report.seconds);
            }
            let (whole, history, head_validation, head_test) = fit_on_features(
                model,
                &mut splits,
                &config,
                &mut callbacks,
                &run.best(),
                &run.last(),
            )?;
            model = whole;
            let (validation, test) = if tta.is_none() {
                (Some(head_validation), head_test)
            } else {
                // The cached features are of the images alone: their mirror images need the
                // whole model.
                let mut best_model = Model::load(&run.best(), device)?;
                best_model.set_precision(precision);
                measure(&best_model, validation, &data, eval_batch, tta)?
            };
            Fitted {
                history,
                validation,
                test,
                features: Some(splits.report),
            }
        }
        _ => match spec.output.checkpoint {
            Checkpoint::LowestValidationLoss => {
                let mut best = BestCheckpoint::new(run.best());
                callbacks.push(&mut best);
                let history =
                    crate::train::fit(&mut model, train, validation, &config, &mut callbacks)?;
                drop(callbacks);
                model.save(&run.last())?;
                let mut best_model = Model::load(&run.best(), device)?;
                best_model.set_precision(precision);
                let (validation, test) = measure(&best_model, validation, &data, eval_batch, tta)?;
                Fitted {
                    history,
                    validation,
                    test,
                    features: None,
                }
            }
            Checkpoint::Last => {
                let history =
                    crate::train::fit(&mut model, train, validation, &config, &mut callbacks)?;
                drop(callbacks);
                model.save(&run.model())?;
                // Plain validation scores of the last epoch are in the history already.
                let remeasured = validation.filter(|_| !tta.is_none());
                let (measured, test) = measure(&model, remeasured, &data, eval_batch, tta)?;
                let validation = measured.or_else(|| last_validation(&history, validation));
                Fitted {
                    history,
                    validation,
                    test,
                    features: None,
                }
            }
        },
    };
    let history = &fitted.history;
    let train_seconds = history.train_seconds();
    let epochs = history.epochs.len();
    let report = RunReport {
        kind: spec.kind,
        classes: train.classes().to_vec(),
        train_count: train.len(),
        validation_count: data.validation.data().len(),
        skipped_files: data.skipped,
        epochs,
        best_epoch: match spec.output.checkpoint {
            Checkpoint::LowestValidationLoss => {
                Monitor::default().best_in(history).map_or(0, |r| r.epoch)
            }
            Checkpoint::Last => history.last().map_or(0, |r| r.epoch),
        },
        best_validation: fitted.validation,
        test: fitted.test,
        load_seconds: data.seconds,
        load_images_per_second: data.read_count as f64 / data.seconds,
        train_seconds,
        images_per_second: (train.len() * epochs) as f64 / train_seconds,
        seconds_per_epoch: train_seconds / epochs.max(1) as f64,
        peak_memory_mib: peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
        params: model.param_count(),
        trainable_params: model.trainable_param_count(),
        features: fitted.features,
        wall_seconds: start.elapsed().as_secs_f64(),
        device: device_name(device),
        precision,
        threads,
        seed: spec.fit.seed,
        out_dir: run.root().to_owned(),
    };
    write_json(&run.metrics(), &report)?;
    Ok(report)
}

/// What the fit stage hands on to the report.
struct Fitted {
    history: History,
    validation: Option<Evaluation>,
    test: Option<Evaluation>,
    features: Option<crate::workflows::transfer::FeaturesReport>,
}

/// The kept checkpoint `model` measured with test-time augmentation `tta` on the
/// validation data (when given) and the test split (when the data has one).
fn measure(
    model: &Model,
    validation: Option<&dyn ImageDataset>,
    data: &LoadedData,
    batch_size: usize,
    tta: Tta,
) -> Result<(Option<Evaluation>, Option<Evaluation>)> {
    let evaluate = |d: &dyn ImageDataset| crate::train::evaluate_with(model, d, batch_size, tta);
    let validation = validation.map(evaluate).transpose()?;
    let test = data.test.as_ref().map(|t| evaluate(t.data())).transpose()?;
    Ok((validation, test))
}

/// The last epoch's validation scores, as the history recorded them.
fn last_validation(history: &History, validation: Option<&dyn ImageDataset>) -> Option<Evaluation> {
    let last = history.last()?;
    Some(Evaluation {
        loss: last.val_loss?,
        accuracy: last.val_accuracy?,
        count: validation?.len(),
        tta: Tta::None,
    })
}

/// Batches of evaluation: MNIST's test set in batches of 1,000, images in the fit's.
fn evaluation_batch_size(spec: &RunSpec) -> usize {
    match spec.data.source {
        DataSource::Mnist { .. } => 1000,
        DataSource::ImageFolder { .. } => spec.fit.batch_size,
    }
}

fn curves_title(spec: &RunSpec, model: &Model) -> String {
    match &spec.data.source {
        DataSource::Mnist { .. } => "MNIST convnet".into(),
        DataSource::ImageFolder { dir } => format!("{} on {}", model.spec().name, dir.display()),
    }
}

/// The line that says what is about to train.
fn print_start(spec: &RunSpec, data: &LoadedData, model: &Model, device: Device, threads: usize) {
    let train = data.train.data();
    let counts = match data
        .test
        .as_ref()
        .filter(|_| matches!(spec.data.source, DataSource::Mnist { .. }))
    {
        Some(test) => format!(
            "{} training, {} validation, {} test images",
            train.len(),
            data.validation.data().len(),
            test.data().len()
        ),
        None => format!(
            "{} training, {} validation images of {} classes ({:?}), loaded in {:.1}s",
            train.len(),
            data.validation.data().len(),
            train.classes().len(),
            train.classes(),
            data.seconds
        ),
    };
    let world = crate::distributed::world_size();
    let processes = if world > 1 {
        format!(", rank 0 of {world} processes")
    } else {
        String::new()
    };
    eprintln!(
        "{}: {counts}; {} ({} parameters, {} trainable) on {} in {} ({}{processes})",
        data.description,
        model.spec().name,
        model.param_count(),
        model.trainable_param_count(),
        device_name(device),
        model.precision(),
        compute_text(spec.precision(), device, threads),
    );
    if let Some(resizing) = spec.fit.progressive_resizing {
        let (epochs, full) = (spec.fit.epochs, train.image_shape()[1]);
        let growth = match resizing.ramp_epochs(epochs) + 1 {
            from if from <= epochs => format!("growing to {full} by epoch {from}"),
            _ => format!(
                "growing to {} in the last epoch",
                resizing.size_at(epochs, epochs, full)
            ),
        };
        eprintln!(
            "Progressive resizing: training images {} pixels high in epoch 1, {growth}; \
             validation at {full}",
            resizing.size_at(1, epochs, full)
        );
    }
    if let Some(mixup) = spec.fit.mixup {
        eprintln!(
            "Mixup (alpha {}): training loss and accuracy are measured on blended image \
             pairs, not comparable with the validation figures",
            mixup.alpha
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cpu_features;

    #[test]
    fn the_start_line_says_why_auto_chose_its_precision() {
        assert_eq!(compute_text(Precision::Fp32, Device::Cpu, 1), "1 thread");
        assert_eq!(compute_text(Precision::Bf16, Device::Cpu, 2), "2 threads");
        let units = if cpu_features().native_bf16() {
            "bf16 units"
        } else {
            "no bf16 units"
        };
        assert_eq!(
            compute_text(Precision::Auto, Device::Cpu, 2),
            format!("2 threads; auto: {units} on this CPU")
        );
    }
}
