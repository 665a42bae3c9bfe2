//! `convkit chapter8`: the chapter's six workflows in order, each in its own run folder,
//! then one page (`chapter8.html`) and one JSON file (`chapter8.json`) that set convkit's
//! figures beside the book's.
//!
//! The workflows are the library's own, with the settings `convkit mnist`, `convkit train`
//! and `convkit finetune` use by default: [`run_mnist`], [`run_train`] and [`finetune_job`].
//! A run folder that holds a finished run is kept as it is; one that holds an interrupted
//! run is continued ([`resume_mnist`], [`resume_train`]), so that calling the same command
//! again after Ctrl-C picks up where it stopped. The page and the JSON file are rewritten
//! after every workflow, so a long run can be watched as it goes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tch::Device;

use super::finetune::{finetune_job, FinetuneOptions};
use super::mnist::{resume_mnist, run_mnist, MnistJob, MnistReport, MnistRunConfig};
use super::run_dir::RunDir;
use super::train::{resume_train, run_train, TrainJob, TrainReport, TrainRunConfig};
use super::transfer::TransferMode;
use crate::atomic_file::write_atomic;
use crate::cache::non_empty_env;
use crate::data::image_folder::{load_image, ImageFolder, ImageOptions};
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::json_file::{read_json, write_json};
use crate::models::chapter_augmentation;
use crate::models::pretrained::locate_weights;
use crate::models::BackboneArch;
use crate::report::augmentation_grid;
use crate::report::chapter8_page::{
    render_chapter8_page, BookFigure, Chapter8Summary, Figure, Machine, WorkflowResult,
    WorkflowStatus,
};
use crate::runtime::{cpu_features, Precision};

/// The workflows' names, in the order they run; each is also its run folder's name.
pub const WORKFLOW_NAMES: [&str; 6] = [
    "mnist",
    "scratch",
    "augmentation",
    "vgg16-features",
    "vgg16-frozen",
    "vgg16-finetune",
];

/// `--quick`: MNIST training images (before the validation split).
pub const QUICK_MNIST_IMAGES: usize = 6000;
/// `--quick`: cats-vs-dogs training images per class.
pub const QUICK_TRAIN_PER_CLASS: usize = 100;
/// `--quick`: cats-vs-dogs validation images per class.
pub const QUICK_VALIDATION_PER_CLASS: usize = 50;
/// `--quick`: image side of the from-scratch runs (the small convnet's last convolution
/// still has a 3x3 input: 90 -> 88 -> 44 -> 42 -> 21 -> 19 -> 9 -> 7 -> 3 -> 1).
pub const QUICK_SCRATCH_SIZE: u32 = 90;
/// `--quick`: image side of the VGG16 runs (features 2x2x512).
pub const QUICK_VGG16_SIZE: u32 = 64;

/// The file names written into the output folder.
const PAGE: &str = "chapter8.html";
const JSON: &str = "chapter8.json";
const GRID: &str = "augmentation-grid.png";

/// What to run; [`Chapter8Job::new`] gives the chapter's full settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Chapter8Job {
    /// The folder holding the six run folders, the page and its JSON.
    pub out_dir: PathBuf,
    /// A smoke test: small subsets, small images, 1-2 epochs per workflow.
    pub quick: bool,
    /// A folder holding `mnist/` and `cats_vs_dogs/`; `None`: MNIST is found as
    /// `convkit mnist` finds it, cats vs dogs at `$CONVKIT_DATA/cats_vs_dogs`, else
    /// `./data/cats_vs_dogs`.
    pub data_dir: Option<PathBuf>,
    /// The precision to train in; `None`: fp32 for new runs, the source run's own for
    /// fine-tuning (as the commands do).
    pub precision: Option<Precision>,
    /// Progress bars and per-epoch lines of each workflow on stderr.
    pub progress: bool,
}

impl Chapter8Job {
    /// The chapter (or, with `quick`, its smoke test), written to
    /// [`Chapter8Job::default_out_dir`].
    pub fn new(quick: bool) -> Self {
        Chapter8Job {
            out_dir: Self::default_out_dir(quick),
            quick,
            data_dir: None,
            precision: None,
            progress: false,
        }
    }

    /// `runs/chapter8`, or `runs/chapter8-quick` for the smoke test.
    pub fn default_out_dir(quick: bool) -> PathBuf {
        PathBuf::from(if quick {
            "runs/chapter8-quick"
        } else {
            "runs/chapter8"
        })
    }
}

/// What happens to a workflow's run folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// It trains from its first epoch.
    Train,
    /// It continues an interrupted run.
    Resume,
    /// It is finished: its results are read, nothing trains.
    Keep,
}

/// Progress of [`run_chapter8`], for the caller to show.
#[derive(Debug)]
pub enum Chapter8Event<'a> {
    /// A workflow begins.
    Start {
        /// Its position, from 1.
        index: usize,
        /// How many workflows there are.
        total: usize,
        /// Its name (and run folder's name).
        name: &'a str,
        /// Its title.
        title: &'a str,
        /// What happens to it.
        action: Action,
        /// Its run folder.
        run_dir: &'a Path,
    },
    /// A workflow is done.
    Done {
        /// Its position, from 1.
        index: usize,
        /// How many workflows there are.
        total: usize,
        /// Its numbers.
        result: &'a WorkflowResult,
    },
}

/// What [`run_chapter8`] wrote.
#[derive(Clone, Debug)]
pub struct Chapter8Report {
    /// Every workflow's numbers (also in `chapter8.json`).
    pub summary: Chapter8Summary,
    /// `OUT/chapter8.html`.
    pub page: PathBuf,
    /// `OUT/chapter8.json`.
    pub json: PathBuf,
}

/// How a workflow trains.
enum Recipe {
    Mnist(MnistJob),
    Train(TrainJob),
    /// Fine-tuning of the finished run in `source`.
    Finetune {
        source: PathBuf,
        options: FinetuneOptions,
    },
}

/// One workflow of the chapter.
struct Step {
    name: &'static str,
    title: &'static str,
    description: String,
    book: BookFigure,
    epochs: usize,
    recipe: Recipe,
}

impl Step {
    fn run_dir(&self, out: &Path) -> PathBuf {
        out.join(self.name)
    }

    fn uses_vgg16(&self) -> bool {
        match &self.recipe {
            Recipe::Train(job) => job.base.is_some(),
            Recipe::Finetune { .. } => true,
            Recipe::Mnist(_) => false,
        }
    }
}

/// The book's figure (chapter8.md): `text` on `split`, after `epochs`.
fn book(
    split: &str,
    accuracy: f64,
    accuracy_to: Option<f64>,
    text: &str,
    epochs: usize,
) -> BookFigure {
    BookFigure {
        split: split.into(),
        accuracy,
        accuracy_to,
        text: text.into(),
        epochs,
    }
}

/// The six workflows with the chapter's settings (or the smoke test's), cats vs dogs read
/// from `cats`.
fn steps(job: &Chapter8Job, cats: &Path) -> Vec<Step> {
    let out = &job.out_dir;
    let q = job.quick;
    let precision = job.precision.unwrap_or_default();
    let mnist = MnistJob {
        data_dir: job.data_dir.clone(),
        epochs: if q { 1 } else { 5 },
        train_limit: q.then_some(QUICK_MNIST_IMAGES),
        progress: job.progress,
        precision,
        ..MnistJob::new(out.join("mnist"))
    };
    let train = |name: &str| TrainJob {
        progress: job.progress,
        precision,
        ..TrainJob::new(cats.to_owned(), out.join(name))
    };
    let scratch_size = if q { QUICK_SCRATCH_SIZE } else { 180 };
    let vgg_size = if q { QUICK_VGG16_SIZE } else { 180 };
    let scratch = TrainJob {
        image_size: scratch_size,
        epochs: if q { 2 } else { 30 },
        ..train("scratch")
    };
    let augmentation = TrainJob {
        image_size: scratch_size,
        epochs: if q { 2 } else { 100 },
        augmentation: chapter_augmentation(),
        dropout: Some(0.5),
        ..train("augmentation")
    };
    let features = TrainJob {
        image_size: vgg_size,
        epochs: if q { 2 } else { 20 },
        base: Some(BackboneArch::Vgg16),
        mode: TransferMode::Features,
        ..train("vgg16-features")
    };
    let frozen = TrainJob {
        image_size: vgg_size,
        epochs: if q { 2 } else { 50 },
        base: Some(BackboneArch::Vgg16),
        mode: TransferMode::Frozen,
        augmentation: chapter_augmentation(),
        ..train("vgg16-frozen")
    };
    let finetune = FinetuneOptions {
        epochs: if q { 1 } else { 30 },
        progress: job.progress,
        ..FinetuneOptions::new(vec!["block5".into()], out.join("vgg16-finetune"))
    };
    vec![
        Step {
            name: "mnist",
            title: "MNIST convnet",
            description: format!(
                "Conv2D 32/64/128 with max pooling, Flatten, Dense 10 softmax; RMSprop, \
                 batches of {}, epochs: {}{}; measured on the 10,000 test images (the \
                 previous chapter's dense network: 97.8%).",
                mnist.batch_size,
                mnist.epochs,
                if q {
                    format!(" on the first {QUICK_MNIST_IMAGES} training images")
                } else {
                    String::new()
                }
            ),
            book: book("test", 0.991, None, "99.1% test", 5),
            epochs: mnist.epochs,
            recipe: Recipe::Mnist(mnist),
        },
        Step {
            name: "scratch",
            title: "Cats vs dogs from scratch",
            description: format!(
                "The small convnet (five 3x3 convolutions, max pooling, Dense 1 sigmoid) on \
                 {s}x{s} images, RMSprop, {} epochs; the epoch with the lowest validation \
                 loss is kept (the book's overfits within about 10 epochs).",
                scratch.epochs,
                s = scratch.image_size
            ),
            book: book(
                "validation",
                0.70,
                None,
                "about 70% validation, 69.5% test",
                30,
            ),
            epochs: scratch.epochs,
            recipe: Recipe::Train(scratch),
        },
        Step {
            name: "augmentation",
            title: "Cats vs dogs with augmentation and dropout",
            description: format!(
                "The same convnet with RandomFlip(horizontal), RandomRotation(0.1), \
                 RandomZoom(0.2) in front and Dropout(0.5) before the classifier, on \
                 {s}x{s} images, {} epochs.",
                augmentation.epochs,
                s = augmentation.image_size
            ),
            book: book(
                "test",
                0.835,
                None,
                "about 83.5% test (3rd ed.: 83.9%)",
                100,
            ),
            epochs: augmentation.epochs,
            recipe: Recipe::Train(augmentation),
        },
        Step {
            name: "vgg16-features",
            title: "VGG16 feature extraction",
            description: format!(
                "The ImageNet VGG16 base runs once per {s}x{s} image (features cached), and \
                 Flatten, Dense 256, Dropout 0.5, Dense 1 trains on the features for {} \
                 epochs (RMSprop).",
                features.epochs,
                s = features.image_size
            ),
            book: book("validation", 0.97, None, "about 97% validation", 20),
            epochs: features.epochs,
            recipe: Recipe::Train(features),
        },
        Step {
            name: "vgg16-frozen",
            title: "VGG16 frozen base with augmentation, end to end",
            description: format!(
                "Augmentation, VGG16's preprocessing, the frozen base (0 trainable tensors) \
                 and the same head, trained end to end on {s}x{s} images for {} epochs.",
                frozen.epochs,
                s = frozen.image_size
            ),
            book: book(
                "validation and test",
                0.975,
                Some(0.98),
                "about 97.5-98%",
                50,
            ),
            epochs: frozen.epochs,
            recipe: Recipe::Train(frozen),
        },
        Step {
            name: "vgg16-finetune",
            title: "VGG16 fine-tuning of block5",
            description: format!(
                "vgg16-frozen's best model with block5_conv1..3 unfrozen, RMSprop at \
                 learning rate 1e-5, {} epochs, with its augmentation.",
                finetune.epochs
            ),
            book: book("test", 0.985, None, "about 98.5% test", 30),
            epochs: finetune.epochs,
            recipe: Recipe::Finetune {
                source: out.join("vgg16-frozen"),
                options: finetune,
            },
        },
    ]
}

/// Where a run folder stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Finished,
    InProgress,
    Fresh,
}

fn state_of(run: &RunDir) -> State {
    if run.metrics().is_file() {
        State::Finished
    } else if run.config().is_file() {
        State::InProgress
    } else {
        State::Fresh
    }
}

/// The cats-vs-dogs folder the job names: `DATA/cats_vs_dogs`, where `DATA` is
/// `job.data_dir`, else `$CONVKIT_DATA`, else `./data`.
fn cats_source(job: &Chapter8Job) -> Result<PathBuf> {
    let searched: Vec<PathBuf> = match &job.data_dir {
        Some(dir) => vec![dir.join("cats_vs_dogs")],
        None => non_empty_env("CONVKIT_DATA")
            .map(|d| PathBuf::from(d).join("cats_vs_dogs"))
            .into_iter()
            .chain(Some(PathBuf::from("data/cats_vs_dogs")))
            .collect(),
    };
    searched
        .iter()
        .find(|dir| dir.join("train").is_dir())
        .cloned()
        .ok_or_else(|| Error::DataNotFound {
            what: "cats vs dogs (a folder cats_vs_dogs/ holding train/ and validation/, each \
                   with cats/ and dogs/; give its parent with --data or $CONVKIT_DATA)"
                .into(),
            searched,
        })
}

/// The folder of the smoke test's subset, inside the output folder.
fn quick_cats_dir(out: &Path) -> PathBuf {
    out.join("quick-data").join("cats_vs_dogs")
}

/// Lays out the first images of each class of `source` (sorted by name) in `dest`, as
/// links (copies where links are not available): the same folder structure, so that the
/// very same workflows run on it. Links already there are kept.
fn make_quick_subset(source: &Path, dest: &Path) -> Result<()> {
    for (split, per_class) in [
        ("train", QUICK_TRAIN_PER_CLASS),
        ("validation", QUICK_VALIDATION_PER_CLASS),
    ] {
        let folder = ImageFolder::scan(&source.join(split))?;
        for (label, class) in folder.classes.iter().enumerate() {
            let dir = dest.join(split).join(class);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let files = folder
                .files
                .iter()
                .filter(|(_, l)| *l == label as i64)
                .take(per_class);
            for (file, _) in files {
                let Some(name) = file.file_name() else {
                    continue;
                };
                let link = dir.join(name);
                if link.symlink_metadata().is_ok() {
                    continue;
                }
                let target = file.canonicalize().map_err(|e| Error::io(file, e))?;
                link_or_copy(&target, &link)?;
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn link_or_copy(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(|e| Error::io(link, e))
}

#[cfg(not(unix))]
fn link_or_copy(target: &Path, link: &Path) -> Result<()> {
    std::fs::copy(target, link)
        .map(|_| ())
        .map_err(|e| Error::io(link, e))
}

/// Settings that may differ between a kept run and the recipe: where things are, how they
/// are shown, and the precision (a run keeps the one it started in).
const NOT_RECIPE: &[&str] = &[
    "data_dir",
    "out_dir",
    "progress",
    "precision",
    "weights",
    "features_cache",
    "init_from",
];

/// The recipe's settings that differ from those `recorded`, one line each.
fn differences(recorded: &Value, expected: &Value) -> Vec<String> {
    let (Some(recorded), Some(expected)) = (recorded.as_object(), expected.as_object()) else {
        return vec!["the settings cannot be compared".into()];
    };
    let mut keys: Vec<&String> = recorded.keys().chain(expected.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !NOT_RECIPE.contains(&k.as_str()))
        .filter_map(|k| {
            let (a, b) = (
                recorded.get(k).unwrap_or(&Value::Null),
                expected.get(k).unwrap_or(&Value::Null),
            );
            (a != b).then(|| format!("{k}: the run has {a}, chapter8 uses {b}"))
        })
        .collect()
}

fn to_value(value: &impl serde::Serialize, path: &Path) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Json {
        path: path.to_owned(),
        source: e,
    })
}

/// Refuses a run folder that holds another run than `step` would make: a kept run must be
/// the chapter's, or the page would set the wrong numbers beside the book's.
fn check_recorded(run: &RunDir, step: &Step, quick: bool) -> Result<()> {
    let config = run.config();
    if !config.is_file() {
        return Err(Error::invalid_data(
            run.root(),
            "holds metrics.json but no run.json: not a run of `convkit chapter8`; remove the \
             folder to train it again, or use another --out",
        ));
    }
    let kind = if matches!(step.recipe, Recipe::Mnist(_)) {
        "mnist"
    } else {
        "train"
    };
    let recorded_kind = run.recorded_job()?;
    if recorded_kind != kind {
        return Err(Error::invalid_data(
            &config,
            format!(
                "this is a `{recorded_kind}` run, not the chapter's `{}` workflow: use another \
                 --out",
                step.name
            ),
        ));
    }
    let (recorded, expected) = match &step.recipe {
        Recipe::Mnist(job) => (
            to_value(&read_json::<MnistRunConfig>(&config)?.settings, &config)?,
            to_value(job, &config)?,
        ),
        Recipe::Train(job) => (
            to_value(&read_json::<TrainRunConfig>(&config)?.settings, &config)?,
            to_value(job, &config)?,
        ),
        Recipe::Finetune { source, options } => {
            // The source run defines most of the settings; without it, nothing to compare.
            if RunDir::at(source).checkpoint().is_none() {
                return Ok(());
            }
            (
                to_value(&read_json::<TrainRunConfig>(&config)?.settings, &config)?,
                to_value(&finetune_job(source, options)?, &config)?,
            )
        }
    };
    let changed = differences(&recorded, &expected);
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::invalid_data(
        &config,
        format!(
            "the run in this folder was made with other settings than `convkit chapter8{}` \
             uses:\n  {}\nWas it made {} --quick? Use another --out, or remove the folder to \
             train it again.",
            if quick { " --quick" } else { "" },
            changed.join("\n  "),
            if quick { "without" } else { "with" }
        ),
    ))
}

/// A finished workflow's report, of either kind.
enum Outcome {
    Mnist(MnistReport),
    Train(TrainReport),
}

fn run_step(
    step: &Step,
    state: State,
    job: &Chapter8Job,
    device: Device,
) -> Result<(Outcome, Action)> {
    let dir = step.run_dir(&job.out_dir);
    let run = RunDir::at(&dir);
    let read = |step: &Step| -> Result<Outcome> {
        Ok(match step.recipe {
            Recipe::Mnist(_) => Outcome::Mnist(read_json(&run.metrics())?),
            _ => Outcome::Train(read_json(&run.metrics())?),
        })
    };
    let finished_meanwhile = |result: Result<Outcome>| match result {
        Err(Error::RunFinished { .. }) => read(step),
        other => other,
    };
    match (state, &step.recipe) {
        (State::Finished, _) => Ok((read(step)?, Action::Keep)),
        (State::InProgress, Recipe::Mnist(_)) => Ok((
            finished_meanwhile(resume_mnist(&dir, device, job.progress).map(Outcome::Mnist))?,
            Action::Resume,
        )),
        (State::InProgress, _) => Ok((
            finished_meanwhile(resume_train(&dir, device, job.progress).map(Outcome::Train))?,
            Action::Resume,
        )),
        (State::Fresh, Recipe::Mnist(mnist)) => {
            Ok((Outcome::Mnist(run_mnist(mnist, device)?), Action::Train))
        }
        (State::Fresh, Recipe::Train(train)) => {
            Ok((Outcome::Train(run_train(train, device)?), Action::Train))
        }
        (State::Fresh, Recipe::Finetune { source, options }) => {
            let mut train = finetune_job(source, options)?;
            if let Some(precision) = job.precision {
                train.precision = precision;
            }
            Ok((Outcome::Train(run_train(&train, device)?), Action::Train))
        }
    }
}

/// The workflow as the page shows it before it has run.
fn pending(step: &Step, out: &Path) -> WorkflowResult {
    let run_dir = step.run_dir(out);
    WorkflowResult {
        name: step.name.into(),
        title: step.title.into(),
        description: step.description.clone(),
        status: WorkflowStatus::Pending,
        split: if matches!(step.recipe, Recipe::Mnist(_)) {
            "test".into()
        } else {
            "validation".into()
        },
        accuracy: None,
        loss: None,
        count: None,
        epochs: None,
        epochs_planned: step.epochs,
        kept_epoch: None,
        checkpoint: if matches!(step.recipe, Recipe::Mnist(_)) {
            "the last epoch".into()
        } else {
            "lowest validation loss".into()
        },
        wall_seconds: None,
        train_images_per_second: None,
        book: step.book.clone(),
        settings: Value::Null,
        figures: vec![curves_figure(&run_dir)],
        run_dir,
    }
}

fn curves_figure(run_dir: &Path) -> Figure {
    let path = RunDir::at(run_dir).curves();
    Figure {
        caption: "Training and validation loss and accuracy per epoch".into(),
        png: std::fs::read(&path).ok(),
        path,
    }
}

/// The run's settings from its `run.json`, without where it was written and how it showed
/// progress.
fn recorded_settings(run: &RunDir) -> Value {
    let mut settings = read_json::<Value>(&run.config())
        .ok()
        .and_then(|v| v.get("settings").cloned())
        .unwrap_or(Value::Null);
    if let Some(map) = settings.as_object_mut() {
        map.remove("out_dir");
        map.remove("progress");
    }
    settings
}

/// Fills `result` with a finished run's numbers.
fn fill(result: &mut WorkflowResult, outcome: &Outcome) {
    let run = RunDir::at(&result.run_dir);
    match outcome {
        Outcome::Mnist(r) => {
            result.split = "test".into();
            result.accuracy = Some(r.test_accuracy);
            result.loss = Some(r.test_loss);
            result.count = Some(r.test_count);
            result.epochs = Some(r.epochs);
            result.kept_epoch = Some(r.epochs);
            result.checkpoint =
                "the last epoch: the chapter evaluates the model as training left it".into();
            result.train_images_per_second = Some(r.images_per_second);
        }
        Outcome::Train(r) => {
            let (split, eval) = match &r.test {
                Some(test) => ("test", test),
                None => ("validation", &r.best_validation),
            };
            result.split = split.into();
            result.accuracy = Some(eval.accuracy);
            result.loss = Some(eval.loss);
            result.count = Some(eval.count);
            result.epochs = Some(r.epochs);
            result.kept_epoch = Some(r.best_epoch);
            result.checkpoint = "lowest validation loss".into();
            result.train_images_per_second = Some(r.images_per_second);
        }
    }
    result.settings = recorded_settings(&run);
    result.figures[0] = curves_figure(&result.run_dir);
}

/// Draws the chapter's figure 8.10 for the augmentation run, from its first training image
/// and with its own augmentation layers, image size and seed.
fn draw_augmentation_grid(run: &RunDir, path: &Path) -> Result<()> {
    let config: TrainRunConfig = read_json(&run.config())?;
    let folder = ImageFolder::scan(&config.train_dir)?;
    let (image, _) = folder
        .files
        .first()
        .ok_or_else(|| Error::invalid_data(&config.train_dir, "holds no image"))?;
    let size = config.settings.image_size;
    let options = ImageOptions {
        size: (size, size),
        ..ImageOptions::default()
    };
    let pixels = load_image(image, &options)?;
    augmentation_grid(
        &pixels,
        size,
        size,
        &config.settings.augmentation,
        config.settings.seed,
        path,
    )
}

fn grid_figure(run: &RunDir, out: &Path) -> Figure {
    let path = out.join(GRID);
    let caption = "Figure 8.10: the first training image augmented nine times by the run's \
                   augmentation layers (in training mode, the run's seed)";
    let drawn = if path.is_file() {
        Ok(())
    } else {
        draw_augmentation_grid(run, &path)
    };
    Figure {
        caption: match &drawn {
            Ok(()) => caption.into(),
            Err(err) => format!("{caption}; it could not be drawn: {err}"),
        },
        png: drawn.ok().and_then(|()| std::fs::read(&path).ok()),
        path,
    }
}

/// The machine this process runs on, computing on `device`.
pub fn this_machine(device: Device) -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH));
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads: tch::get_num_threads().max(1) as usize,
        device: device_name(device),
        bf16: cpu_features().describe(),
    }
}

/// `seconds` since 1970 as `YYYY-MM-DD HH:MM UTC` (the proleptic Gregorian calendar).
pub fn utc_date(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let (hour, minute) = (seconds % 86_400 / 3600, seconds % 3600 / 60);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

fn now_utc() -> String {
    utc_date(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

fn notes(job: &Chapter8Job) -> Vec<String> {
    let mut notes = vec![
        "convkit's figure for MNIST is on its 10,000 test images. For cats vs dogs it is on \
         the data's test split when it has one, else on its validation split: the data \
         shipped with convkit has none (2,000 training and 1,000 validation images), so \
         the cats-vs-dogs figures here are validation accuracy of the kept checkpoint, \
         beside the book's test figures where the book gives only those."
            .to_owned(),
        "Wall time counts loading, training and evaluation over the invocations that worked \
         on the workflow; training images per second counts training steps only (for \
         vgg16-features: the head trained on the cached features)."
            .to_owned(),
    ];
    if job.quick {
        notes.push(format!(
            "Quick run: MNIST for 1 epoch on its first {QUICK_MNIST_IMAGES} training images; \
             cats vs dogs on {QUICK_TRAIN_PER_CLASS} training and {QUICK_VALIDATION_PER_CLASS} \
             validation images per class (links in {}), {QUICK_SCRATCH_SIZE}x\
             {QUICK_SCRATCH_SIZE} images from scratch and {QUICK_VGG16_SIZE}x\
             {QUICK_VGG16_SIZE} through VGG16, 1-2 epochs each. It checks that the whole \
             path works; its accuracies say nothing about the chapter.",
            quick_cats_dir(&job.out_dir).display()
        ));
    }
    notes
}

/// Per workflow, what an earlier invocation recorded in `chapter8.json`: status and wall
/// time.
fn previous_walls(path: &Path) -> HashMap<String, (WorkflowStatus, Option<f64>)> {
    read_json::<Chapter8Summary>(path)
        .map(|s| {
            s.workflows
                .into_iter()
                .map(|w| (w.name, (w.status, w.wall_seconds)))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the chapter's six workflows in order in `job.out_dir` (keeping finished runs,
/// continuing interrupted ones), and writes `chapter8.html` and `chapter8.json` there
/// after each. `on_event` hears when each workflow starts and ends.
///
/// # Errors
/// The first workflow's error, after the page shows what was done; an interruption
/// (Ctrl-C) is [`Error::Interrupted`], and calling this again continues. A run folder
/// holding a run with other settings than the recipe's is refused, naming them.
pub fn run_chapter8(
    job: &Chapter8Job,
    device: Device,
    on_event: &mut dyn FnMut(Chapter8Event<'_>),
) -> Result<Chapter8Report> {
    let out = &job.out_dir;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let page = out.join(PAGE);
    let json = out.join(JSON);
    let cats = if job.quick {
        quick_cats_dir(out)
    } else {
        cats_source(job).unwrap_or_else(|_| PathBuf::from("data/cats_vs_dogs"))
    };
    let steps = steps(job, &cats);
    let states: Vec<State> = steps
        .iter()
        .map(|s| state_of(&RunDir::at(&s.run_dir(out))))
        .collect();
    // Fail before hours of training, not in the middle: every input the remaining
    // workflows need must be there.
    let to_run = |s: &(&Step, &State)| *s.1 != State::Finished;
    if steps
        .iter()
        .zip(&states)
        .any(|s| to_run(&s) && s.0.name != "mnist")
    {
        let source = cats_source(job)?;
        if job.quick {
            make_quick_subset(&source, &cats)?;
        }
    }
    if steps
        .iter()
        .zip(&states)
        .any(|s| to_run(&s) && s.0.uses_vgg16())
    {
        locate_weights(BackboneArch::Vgg16, None)?;
    }
    let previous = previous_walls(&json);
    let mut summary = Chapter8Summary {
        quick: job.quick,
        date: now_utc(),
        convkit_version: env!("CARGO_PKG_VERSION").into(),
        machine: this_machine(device),
        notes: notes(job),
        workflows: steps.iter().map(|s| pending(s, out)).collect(),
    };
    let write = |summary: &mut Chapter8Summary| -> Result<()> {
        summary.date = now_utc();
        write_json(&json, summary)?;
        write_atomic(&page, render_chapter8_page(summary).as_bytes())
    };
    let total = steps.len();
    for (i, (step, &state)) in steps.iter().zip(&states).enumerate() {
        let run_dir = step.run_dir(out);
        let run = RunDir::at(&run_dir);
        if state != State::Fresh {
            check_recorded(&run, step, job.quick)?;
        }
        let action = match state {
            State::Finished => Action::Keep,
            State::InProgress => Action::Resume,
            State::Fresh => Action::Train,
        };
        on_event(Chapter8Event::Start {
            index: i + 1,
            total,
            name: step.name,
            title: step.title,
            action,
            run_dir: &run_dir,
        });
        let earlier = previous.get(step.name).copied();
        let partial = match earlier {
            Some((WorkflowStatus::Interrupted, wall)) => wall.unwrap_or(0.0),
            _ => 0.0,
        };
        let start = Instant::now();
        let outcome = run_step(step, state, job, device);
        let elapsed = start.elapsed().as_secs_f64();
        let result = &mut summary.workflows[i];
        match outcome {
            Ok((outcome, action)) => {
                fill(result, &outcome);
                (result.status, result.wall_seconds) = match action {
                    Action::Keep => (
                        WorkflowStatus::Kept,
                        match earlier {
                            Some((status, wall)) if status.is_finished() => wall,
                            _ => match &outcome {
                                Outcome::Train(r) if r.wall_seconds > 0.0 => Some(r.wall_seconds),
                                _ => None,
                            },
                        },
                    ),
                    Action::Resume => (WorkflowStatus::Resumed, Some(partial + elapsed)),
                    Action::Train => (WorkflowStatus::Trained, Some(partial + elapsed)),
                };
                if step.name == "augmentation" {
                    let figure = grid_figure(&run, out);
                    result.figures.push(figure);
                }
            }
            Err(err @ Error::Interrupted { .. }) => {
                result.status = WorkflowStatus::Interrupted;
                result.wall_seconds = Some(partial + elapsed);
                write(&mut summary)?;
                return Err(err);
            }
            Err(err) => return Err(err),
        }
        write(&mut summary)?;
        on_event(Chapter8Event::Done {
            index: i + 1,
            total,
            result: &summary.workflows[i],
        });
    }
    Ok(Chapter8Report {
        summary,
        page,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_735_787_045), "2025-01-02 03:04 UTC");
    }

    #[test]
    fn the_recipes_are_the_chapters_and_the_quick_ones_are_small() {
        let cats = Path::new("cats");
        let full = steps(&Chapter8Job::new(false), cats);
        let names: Vec<&str> = full.iter().map(|s| s.name).collect();
        assert_eq!(names, WORKFLOW_NAMES);
        let epochs: Vec<usize> = full.iter().map(|s| s.epochs).collect();
        assert_eq!(epochs, [5, 30, 100, 20, 50, 30]);
        let Recipe::Train(aug) = &full[2].recipe else {
            panic!("augmentation trains")
        };
        assert_eq!(aug.augmentation, chapter_augmentation());
        assert_eq!((aug.dropout, aug.image_size), (Some(0.5), 180));
        let Recipe::Train(features) = &full[3].recipe else {
            panic!("features train")
        };
        assert_eq!(features.mode, TransferMode::Features);
        let Recipe::Finetune { options, source } = &full[5].recipe else {
            panic!("the last one fine-tunes")
        };
        assert_eq!(options.unfreeze, ["block5"]);
        assert_eq!(options.learning_rate, 1e-5);
        assert_eq!(source, &PathBuf::from("runs/chapter8/vgg16-frozen"));
        let quick = steps(&Chapter8Job::new(true), cats);
        assert!(quick.iter().all(|s| s.epochs <= 2));
        let Recipe::Mnist(mnist) = &quick[0].recipe else {
            panic!("MNIST first")
        };
        assert_eq!(mnist.train_limit, Some(QUICK_MNIST_IMAGES));
        assert_eq!(mnist.out_dir, PathBuf::from("runs/chapter8-quick/mnist"));
    }

    #[test]
    fn the_quick_image_sizes_fit_the_small_convnet() {
        use crate::models::{RecipeOptions, ScratchModel};
        let spec = ScratchModel::SmallConvnet.build(&RecipeOptions {
            image_size: QUICK_SCRATCH_SIZE as i64,
            classes: 2,
            dropout: Some(0.5),
            augmentation: chapter_augmentation(),
        });
        assert_eq!(spec.output_shape().unwrap(), [1]);
    }

    #[test]
    fn differences_ignore_paths_and_name_the_rest() {
        let a = serde_json::json!({"epochs": 30, "data_dir": "a", "precision": "fp32"});
        let b = serde_json::json!({"epochs": 2, "data_dir": "b", "precision": "bf16"});
        assert_eq!(
            differences(&a, &b),
            ["epochs: the run has 30, chapter8 uses 2"]
        );
        assert!(differences(&a, &a).is_empty());
    }

    #[test]
    fn a_folder_without_the_data_names_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let job = Chapter8Job {
            data_dir: Some(dir.path().to_owned()),
            ..Chapter8Job::new(false)
        };
        let err = cats_source(&job).unwrap_err().to_string();
        assert!(err.contains("cats_vs_dogs"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn the_quick_subset_links_the_first_images_of_each_class() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        for split in ["train", "validation"] {
            for class in ["cats", "dogs"] {
                let d = source.join(split).join(class);
                std::fs::create_dir_all(&d).unwrap();
                for k in 0..120 {
                    std::fs::write(d.join(format!("{class}.{k:03}.jpg")), b"x").unwrap();
                }
            }
        }
        let dest = dir.path().join("quick");
        make_quick_subset(&source, &dest).unwrap();
        make_quick_subset(&source, &dest).unwrap(); // a second call keeps the links
        let count = |p: PathBuf| std::fs::read_dir(p).unwrap().count();
        assert_eq!(count(dest.join("train/cats")), QUICK_TRAIN_PER_CLASS);
        assert_eq!(
            count(dest.join("validation/dogs")),
            QUICK_VALIDATION_PER_CLASS
        );
        assert!(dest.join("train/dogs/dogs.000.jpg").is_file());
        assert!(!dest.join("train/dogs/dogs.100.jpg").exists());
    }
}
