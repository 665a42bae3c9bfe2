//! `convkit train`: a convnet trained from scratch on a folder of images, with the best
//! epoch kept, curves drawn, and the test split measured (the chapter's sections 2 and 3).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::features::FeatureCache;
use super::image_splits::{split_validation, Split, SplitReader, Storage};
use super::process_run_dir::{check_same_world_size, ProcessRunDir};
use super::run_dir::{peak_rss_bytes, RunDir};
use super::transfer::{fit_on_features, prepare_features, FeaturesReport, TransferMode};
use crate::data::image_folder::{ImageOptions, SplitFolders};
use crate::data::ImageDataset;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::json_file::{read_json, write_json};
use crate::model::Model;
use crate::models::pretrained::locate_weights;
use crate::models::{
    transfer_model, BackboneArch, Head, RecipeOptions, ScratchModel, TransferOptions,
};
use crate::models::{LayerSpec, Sequential};
use crate::runtime::Precision;
use crate::train::{
    BestCheckpoint, Callback, CurvesPlot, EarlyStopping, Evaluation, FitConfig, HistoryCsv,
    Optimizer, ProgressBars, ReduceLrOnPlateau, TensorBoardLog,
};

/// Settings of a training run on an image folder; [`TrainJob::new`] gives the chapter's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainJob {
    /// A folder of class sub-folders, or one with `train/`, `validation/`, `test/` in it.
    pub data_dir: PathBuf,
    /// The run folder to write.
    pub out_dir: PathBuf,
    /// The architecture trained from scratch when there is no `base` (chapter: the small
    /// convnet).
    #[serde(default)]
    pub model: ScratchModel,
    /// Side of the square images the model sees (chapter: 180).
    pub image_size: u32,
    /// How images are decoded and resized (size is taken from `image_size`).
    pub crop_to_aspect_ratio: bool,
    /// Low-pass filter when shrinking images.
    pub antialias: bool,
    /// Samples per step (chapter: 32).
    pub batch_size: usize,
    /// Passes over the training data (chapter: 30, or 100 with augmentation).
    pub epochs: usize,
    /// Augmentation layers in front of the model, active only in training.
    pub augmentation: Vec<LayerSpec>,
    /// Dropout before the classifier (chapter, section 3: 0.5).
    pub dropout: Option<f64>,
    /// Seed of the weights, the sample order, the augmentation draws and dropout.
    pub seed: u64,
    /// Fraction of the training images held out (seeded shuffle) when the data has no
    /// `validation/` folder.
    pub validation_split: f64,
    /// The optimizer (chapter: RMSprop with Keras' defaults).
    pub optimizer: Optimizer,
    /// Stop after this many epochs without a lower validation loss.
    pub early_stopping: Option<usize>,
    /// Halve the learning rate after this many epochs without a lower validation loss.
    pub reduce_lr_patience: Option<usize>,
    /// An unreadable image is an error rather than a skipped file.
    pub strict: bool,
    /// Progress bars and per-epoch lines on stderr.
    pub progress: bool,
    /// A pretrained base under a small head (the chapter's section 4) instead of the
    /// from-scratch convnet.
    #[serde(default)]
    pub base: Option<BackboneArch>,
    /// How the base is used: end to end (frozen) or through cached features.
    #[serde(default)]
    pub mode: TransferMode,
    /// The base's weights file (default: found via `$CONVKIT_MODELS` or the cache).
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// The head on the base (default: the chapter's for VGG16, pooled for the others).
    #[serde(default)]
    pub head: Option<Head>,
    /// Where features are cached (default: the user's cache folder).
    #[serde(default)]
    pub features_cache: Option<PathBuf>,
    /// Where the decoded images are kept: in memory, in the on-disk cache, or `auto` (on
    /// disk when they would not fit comfortably in memory).
    #[serde(default)]
    pub storage: Storage,
    /// Folder of the on-disk decoded-image caches (default: `decoded/` in the user's cache
    /// folder).
    #[serde(default)]
    pub decoded_cache: Option<PathBuf>,
    /// Start from this checkpoint rather than fresh weights (fine-tuning).
    #[serde(default)]
    pub init_from: Option<PathBuf>,
    /// Backbone layers to make trainable, by name or prefix (`block5`).
    #[serde(default)]
    pub unfreeze: Vec<String>,
    /// Make the last N layers of the backbone trainable.
    #[serde(default)]
    pub unfreeze_last: Option<usize>,
    /// The precision to train and evaluate in (`auto`: bf16 where the hardware runs it
    /// natively).
    #[serde(default)]
    pub precision: Precision,
}

impl TrainJob {
    /// The chapter's section-2 settings on `data_dir`, writing to `out_dir`.
    pub fn new(data_dir: PathBuf, out_dir: PathBuf) -> Self {
        TrainJob {
            data_dir,
            out_dir,
            model: ScratchModel::SmallConvnet,
            image_size: 180,
            crop_to_aspect_ratio: false,
            antialias: false,
            batch_size: 32,
            epochs: 30,
            augmentation: Vec::new(),
            dropout: None,
            seed: 42,
            validation_split: 0.2,
            optimizer: Optimizer::rmsprop(),
            early_stopping: None,
            reduce_lr_patience: None,
            strict: false,
            progress: false,
            base: None,
            mode: TransferMode::Frozen,
            weights: None,
            head: None,
            features_cache: None,
            storage: Storage::Auto,
            decoded_cache: None,
            init_from: None,
            unfreeze: Vec::new(),
            unfreeze_last: None,
            precision: Precision::default(),
        }
    }

    /// How this job decodes images.
    pub fn image_options(&self) -> ImageOptions {
        ImageOptions {
            size: (self.image_size, self.image_size),
            crop_to_aspect_ratio: self.crop_to_aspect_ratio,
            antialias: self.antialias,
        }
    }
}

/// What `run.json` of a training run holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainRunConfig {
    /// Always `train`.
    pub job: String,
    /// The splits found in the data folder.
    pub train_dir: PathBuf,
    /// Validation folder, when the data has one.
    pub validation_dir: Option<PathBuf>,
    /// Test folder, when the data has one.
    pub test_dir: Option<PathBuf>,
    /// The job's settings.
    pub settings: TrainJob,
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

/// The results of a training run, also written to `metrics.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainReport {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Training images per epoch.
    pub train_count: usize,
    /// Validation images.
    pub validation_count: usize,
    /// Files skipped because they could not be decoded.
    pub skipped_files: usize,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch with the lowest validation loss (the kept checkpoint).
    pub best_epoch: usize,
    /// The best checkpoint on the validation data.
    pub best_validation: Evaluation,
    /// The best checkpoint on the test split, when the data has one.
    pub test: Option<Evaluation>,
    /// Seconds spent decoding and resizing the images.
    pub load_seconds: f64,
    /// Images decoded and resized per second.
    pub load_images_per_second: f64,
    /// Seconds spent in training steps.
    pub train_seconds: f64,
    /// Training images per second over all epochs.
    pub images_per_second: f64,
    /// Mean seconds per epoch (training steps only).
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

/// Trains the chapter's from-scratch convnet as `job` says and writes the run folder:
/// `best.safetensors` (lowest validation loss) and `last.safetensors`, each with its `.json`,
/// `history.csv` and `curves.png` (rewritten every epoch), `metrics.json`, `run.json`.
///
/// In a data-parallel run ([`crate::distributed`]) every process calls it; rank 0 writes the
/// run folder, the others a scratch folder that is removed afterwards.
pub fn run_train(job: &TrainJob, device: Device) -> Result<TrainReport> {
    let dir = ProcessRunDir::new_run(&job.out_dir)?;
    train(&for_this_process(job, &dir), device, false)
}

/// `job` as this process runs it: writing to its run folder, quiet unless it is rank 0.
fn for_this_process(job: &TrainJob, dir: &ProcessRunDir) -> TrainJob {
    TrainJob {
        out_dir: dir.root().to_owned(),
        progress: job.progress && dir.is_main(),
        ..job.clone()
    }
}

fn one() -> usize {
    1
}

/// Continues the training run in `run_dir` (a `convkit train` or `convkit finetune` run)
/// from its last complete state, with the settings its `run.json` records, and finishes it
/// as [`run_train`] would have: the same weights, history and metrics as a run that was
/// never interrupted, on the same device, thread count and precision. A finished run is
/// [`Error::RunFinished`].
pub fn resume_train(run_dir: &Path, device: Device, progress: bool) -> Result<TrainReport> {
    let dir = ProcessRunDir::resume(run_dir, "train")?;
    let config: TrainRunConfig = read_json(&RunDir::at(dir.root()).config())?;
    check_same_world_size(config.world_size, run_dir)?;
    let mut job = config.settings;
    job.progress = progress;
    let job = for_this_process(&job, &dir);
    if job.progress {
        warn_if_not_reproducible(&config.device, config.threads, device);
    }
    train(&job, device, true)
}

/// Warns when a resumed run computes on another device or thread count than it started on:
/// it continues correctly, but not bit for bit as the uninterrupted run would have.
pub(crate) fn warn_if_not_reproducible(
    recorded_device: &str,
    recorded_threads: usize,
    device: Device,
) {
    let threads = tch::get_num_threads().max(1) as usize;
    if recorded_device != device_name(device) || recorded_threads != threads {
        eprintln!(
            "warning: the run started on {recorded_device} with {recorded_threads} threads and \
             continues on {} with {threads}: its results will not be bit-identical to an \
             uninterrupted run",
            device_name(device)
        );
    }
}

fn train(job: &TrainJob, device: Device, resume: bool) -> Result<TrainReport> {
    check_settings(job)?;
    if !resume {
        // Before any image is decoded; the folder itself is made once the data has loaded
        // (it may sit inside the data folder, where it must not read as a class).
        RunDir::at(&job.out_dir).start_fresh("train")?;
    }
    let splits = SplitFolders::detect(&job.data_dir);
    let options = job.image_options();
    let features_mode = job.mode == TransferMode::Features && job.init_from.is_none();
    let storage = match job.storage {
        // Features are computed from images in memory.
        Storage::Auto if features_mode => Storage::Memory,
        storage => SplitReader::resolve(storage, &splits, job.image_size),
    };
    let reader = SplitReader {
        options: &options,
        strict: job.strict,
        storage,
        cache_dir: job.decoded_cache.clone(),
        progress: job.progress,
    };
    let start = Instant::now();
    let (train_all, mut skipped) = reader.read(&splits.train)?;
    let (train, validation) = match &splits.validation {
        Some(dir) => {
            let (validation, validation_skipped) = reader.read(dir)?;
            skipped += validation_skipped;
            check_same_classes(train_all.data(), validation.data(), dir)?;
            (train_all, validation)
        }
        None => {
            if job.validation_split <= 0.0 {
                return Err(Error::InvalidConfig(format!(
                    "{} has no validation/ folder: set a validation split above 0",
                    job.data_dir.display()
                )));
            }
            split_validation(train_all, job.validation_split, job.seed)?
        }
    };
    let (train_split, validation_split) = (&train, &validation);
    let (train, validation) = (train.data(), validation.data());
    let load_seconds = start.elapsed().as_secs_f64();
    let loaded_count = train.len() + validation.len() + skipped;

    let run = RunDir::create(&job.out_dir)?;
    let threads = tch::get_num_threads().max(1) as usize;
    if !resume {
        write_json(
            &run.config(),
            &TrainRunConfig {
                job: "train".into(),
                train_dir: splits.train.clone(),
                validation_dir: splits.validation.clone(),
                test_dir: splits.test.clone(),
                settings: job.clone(),
                device: device_name(device),
                precision: job.precision.resolve(device),
                threads,
                world_size: crate::distributed::world_size(),
            },
        )?;
    }
    let (mut model, weights) = build_model(job, train.classes(), device)?;
    model.set_decoding(options.decoding());
    let precision = model.set_precision(job.precision);
    let spec = model.spec().clone();
    if job.progress {
        eprintln!(
            "{}: {} training, {} validation images of {} classes ({:?}), loaded in {:.1}s; {} ({} parameters, {} trainable) on {} in {} ({} threads)",
            job.data_dir.display(),
            train.len(),
            validation.len(),
            train.classes().len(),
            train.classes(),
            load_seconds,
            spec.name,
            model.param_count(),
            model.trainable_param_count(),
            device_name(device),
            precision,
            threads
        );
    }
    let config = FitConfig {
        epochs: job.epochs,
        batch_size: job.batch_size,
        optimizer: job.optimizer,
        seed: job.seed,
        precision: Some(precision),
        state_dir: Some(run.state()),
    };
    let mut history_csv = HistoryCsv(run.history());
    let mut curves = CurvesPlot {
        path: run.curves(),
        title: format!("{} on {}", spec.name, job.data_dir.display()),
    };
    let mut early = job.early_stopping.map(EarlyStopping::new);
    let mut reduce = job
        .reduce_lr_patience
        .map(|p| ReduceLrOnPlateau::new(0.5, p, 1e-6));
    let mut progress = ProgressBars::new();
    let mut tensorboard = TensorBoardLog::for_run(run.root());
    tensorboard.add_augmentation_grid(&spec, train, job.seed)?;
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut history_csv, &mut curves];
    callbacks.push(&mut tensorboard);
    if job.progress {
        callbacks.push(&mut progress);
    }
    if let Some(early) = early.as_mut() {
        callbacks.push(early);
    }
    if let Some(reduce) = reduce.as_mut() {
        callbacks.push(reduce);
    }
    let test_split = match &splits.test {
        Some(dir) => {
            let (test, _) = reader.read(dir)?;
            check_classes(&model, test.data(), dir)?;
            Some(test)
        }
        None => None,
    };
    let test_data = test_split.as_ref().map(Split::data);
    let (history, best_validation, test, features) = match (job.mode, weights) {
        (TransferMode::Features, Some(weights)) => {
            let cache = job
                .features_cache
                .clone()
                .map(FeatureCache::new)
                .or_else(FeatureCache::user_default);
            let mut splits = prepare_features(
                &model,
                &weights,
                [
                    train_split.in_memory(),
                    validation_split.in_memory(),
                    test_split.as_ref().and_then(Split::in_memory),
                ],
                cache,
                job.batch_size.max(32),
                job.progress,
            )?;
            if job.progress {
                let how = if splits.report.cache_hit {
                    "read from the cache"
                } else {
                    "computed"
                };
                eprintln!("features {how} in {:.1}s", splits.report.seconds);
            }
            let (whole, history, validation, test) = fit_on_features(
                model,
                &mut splits,
                &config,
                &mut callbacks,
                &run.best(),
                &run.last(),
            )?;
            model = whole;
            (history, validation, test, Some(splits.report))
        }
        _ => {
            let mut best = BestCheckpoint::new(run.best());
            callbacks.push(&mut best);
            let history = model.fit(train, Some(validation), &config, &mut callbacks)?;
            drop(callbacks);
            model.save(&run.last())?;
            let mut best_model = Model::load(&run.best(), device)?;
            best_model.set_precision(precision);
            let validation = best_model.evaluate(validation, job.batch_size)?;
            let test = test_data
                .map(|t| best_model.evaluate(t, job.batch_size))
                .transpose()?;
            (history, validation, test, None)
        }
    };
    let train_seconds = history.train_seconds();
    let report = TrainReport {
        classes: train.classes().to_vec(),
        train_count: train.len(),
        validation_count: validation.len(),
        skipped_files: skipped,
        epochs: history.epochs.len(),
        best_epoch: history.best_by_val_loss().map_or(0, |r| r.epoch),
        best_validation,
        test,
        load_seconds,
        load_images_per_second: loaded_count as f64 / load_seconds,
        train_seconds,
        images_per_second: (train.len() * history.epochs.len()) as f64 / train_seconds,
        seconds_per_epoch: train_seconds / history.epochs.len().max(1) as f64,
        peak_memory_mib: peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
        params: model.param_count(),
        trainable_params: model.trainable_param_count(),
        features,
        wall_seconds: start.elapsed().as_secs_f64(),
        device: device_name(device),
        precision,
        threads,
        seed: job.seed,
        out_dir: run.root().to_owned(),
    };
    write_json(&run.metrics(), &report)?;
    Ok(report)
}

/// Refuses settings that cannot go together, before any image is decoded.
fn check_settings(job: &TrainJob) -> Result<()> {
    let features = job.mode == TransferMode::Features && job.init_from.is_none();
    if features && job.base.is_none() {
        return Err(Error::InvalidConfig(
            "feature extraction needs a pretrained base (--base)".into(),
        ));
    }
    if features && job.storage == Storage::Disk {
        return Err(Error::InvalidConfig(
            "--storage disk cannot go with --mode features: the features are computed once from \
             images in memory (use --storage memory, or --mode frozen)"
                .into(),
        ));
    }
    if features && !job.augmentation.is_empty() {
        return Err(Error::InvalidConfig(
            "augmentation needs --mode frozen: cached features are computed once per image".into(),
        ));
    }
    if features && (!job.unfreeze.is_empty() || job.unfreeze_last.is_some()) {
        return Err(Error::InvalidConfig(
            "unfreezing needs --mode frozen: cached features come from a fixed base".into(),
        ));
    }
    Ok(())
}

/// The model a job trains, and the pretrained weights file it loaded, if any.
fn build_model(
    job: &TrainJob,
    classes: &[String],
    device: Device,
) -> Result<(Model, Option<PathBuf>)> {
    let unfreeze = |model: &mut Model| {
        if job.unfreeze.is_empty() && job.unfreeze_last.is_none() {
            return Ok(());
        }
        model.set_backbone_trainability(|b| {
            if let Some(n) = job.unfreeze_last {
                b.unfreeze_last(n)?;
            }
            b.unfreeze(&job.unfreeze)
        })
    };
    if let Some(init) = &job.init_from {
        let model = Model::load(init, device)?;
        if model.classes() != classes {
            return Err(Error::invalid_data(
                init,
                format!(
                    "the model's classes {:?} are not the data's {classes:?}",
                    model.classes()
                ),
            ));
        }
        let size = i64::from(job.image_size);
        if model.spec().input_shape[1..] != [size, size] {
            return Err(Error::invalid_data(
                init,
                format!(
                    "the model takes images of shape {:?}, not {size}x{size}: set the image \
                     size to the model's",
                    model.spec().input_shape
                ),
            ));
        }
        let mut model = with_augmentation(model, &job.augmentation, job.seed)?;
        unfreeze(&mut model)?;
        return Ok((model, None));
    }
    let Some(arch) = job.base else {
        let spec = job.model.build(&RecipeOptions {
            image_size: job.image_size as i64,
            classes: classes.len(),
            dropout: job.dropout,
            augmentation: job.augmentation.clone(),
        });
        let mut model = Model::new(&spec, device, job.seed)?;
        model.set_classes(classes.to_vec())?;
        return Ok((model, None));
    };
    let spec = transfer_model(&TransferOptions {
        backbone: arch,
        image_size: job.image_size as i64,
        classes: classes.len(),
        head: job.head.unwrap_or(Head::default_for(arch)),
        dropout: job.dropout.unwrap_or(0.5),
        augmentation: job.augmentation.clone(),
    });
    let mut model = Model::new(&spec, device, job.seed)?;
    model.set_classes(classes.to_vec())?;
    let weights = locate_weights(arch, job.weights.as_deref())?;
    model.load_pretrained(&weights)?;
    unfreeze(&mut model)?;
    Ok((model, Some(weights)))
}

/// `model` with `augmentation` in front when it has none yet (fine-tuning a head trained
/// on cached features with augmentation); the parameters are kept.
fn with_augmentation(model: Model, augmentation: &[LayerSpec], seed: u64) -> Result<Model> {
    let spec = model.spec();
    if augmentation.is_empty() || spec.layers.iter().any(|l| l.spec.is_augmentation()) {
        return Ok(model);
    }
    let mut augmented = Sequential::new(&spec.name, spec.input_shape.clone());
    for layer in augmentation {
        augmented = augmented.add(layer.clone());
    }
    augmented.layers.extend(spec.layers.iter().cloned());
    let mut rebuilt = Model::new(&augmented, model.device(), seed)?;
    rebuilt.copy_parameters_from(&model)?;
    rebuilt.set_classes(model.classes().to_vec())?;
    Ok(rebuilt)
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
