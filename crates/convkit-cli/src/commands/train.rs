//! `convkit train`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::models::{BackboneArch, Head, ScratchModel};
use convkit::runtime::Precision;
use convkit::train::{EarlyStoppingSettings, ReduceLrOnPlateauSettings};
use convkit::workflows::presets;
use convkit::workflows::run_spec::{
    CallbackSpec, DataSource, Decoding, ModelSource, RunKind, RunSpec, StorageSpec, Unfreeze,
};
use convkit::workflows::transfer::TransferMode;
use convkit::workflows::{RunDir, RunOptions, Storage};

use super::augment_args::AugmentArgs;
use super::fit_args::FitArgs;
use super::TrainingCommand;

/// Train a convnet on image folders: from scratch or on a pretrained ImageNet base.
///
/// DIR holds one sub-folder of images per class (labels follow the sorted folder names), or
/// train/, validation/ and test/ folders laid out that way. Images (JPEG, PNG, BMP, GIF,
/// WebP) are decoded on all cores, resized, and kept in memory.
///
/// Writes a run folder: best.safetensors (the epoch with the lowest validation loss, the
/// chapter's ModelCheckpoint) and last.safetensors, or with --keep last (the fast recipe's)
/// model.safetensors alone; history.csv and curves.png (rewritten after every epoch),
/// metrics.json (validation and test accuracy of the kept epoch) and run.json.
///
/// With --base, a pretrained network ($CONVKIT_MODELS or --weights) sits frozen under a small
/// head. --mode features runs it once per image and caches the features on disk, so a second
/// run skips it; --mode frozen (the default) runs it at every step, which allows
/// augmentation. Continue with `convkit finetune RUN_DIR` to unfreeze its top layers.
///
/// TensorBoard logs in RUN/tensorboard: tensorboard --logdir RUN/tensorboard
///
/// Examples:
///   convkit train --data cats_vs_dogs                          # chapter 8.2: 30 epochs
///   convkit train --data cats_vs_dogs --augment --dropout 0.5 --epochs 100   # chapter 8.3
///   convkit train --data cats_vs_dogs --model mini-xception --augment --epochs 100
///   convkit train --data cats_vs_dogs --model mini-xception --augment --image-size 128 --recipe fast
///   convkit train --data cats_vs_dogs --base vgg16 --mode features --epochs 20  # 8.4, fast
///   convkit train --data cats_vs_dogs --base vgg16 --augment --epochs 50       # 8.4, end to end
///   convkit train --data cats_vs_dogs --base mobilenet_v2 --augment --epochs 10
///   convkit train --data photos --rotation 0.05 --contrast 0.2 --early-stopping 10
///   convkit train --data cats_vs_dogs --init-from runs/aug --augment --learning-rate 1e-4 --epochs 10
///   convkit train --resume runs/aug                             # continue a stopped run
///
/// The run folder keeps its state after every epoch (state/). A run stopped by Ctrl-C, a
/// kill or a crash continues with --resume RUN_DIR and ends exactly as if it had never
/// stopped (same device and --threads); fine-tuning runs resume the same way.
///
/// Data parallel (libtorch's c10d, Gloo on the CPU): start it under torchrun, one process
/// per core group or GPU. --batch-size is per process, as in PyTorch: 2 processes x 64
/// train as one process on batches of 128. Only rank 0 writes the run folder.
///   torchrun --standalone --nproc-per-node=2 --no-python convkit --threads 1 train --data cats_vs_dogs
///   # two machines: on the one at HOST --node-rank=0, on the other --node-rank=1
///   torchrun --nnodes=2 --node-rank=0 --nproc-per-node=1 --master-addr=HOST \
///     --master-port=29500 --no-python convkit train --data cats_vs_dogs
/// Every machine needs the data folder (and the decoded cache, built once per machine);
/// a resume needs the same number of processes.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct TrainArgs {
    /// Folder of class sub-folders, or of train/ validation/ test/ folders. A relative DIR
    /// that is not a folder here is looked for in $CONVKIT_DATA (--data cats_vs_dogs).
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub(super) data: Option<PathBuf>,

    /// The model trained from scratch: small-convnet (the chapter's, 991,041 parameters at
    /// 180x180) or mini-xception (residual separable convolutions with batch normalization,
    /// 721,857 parameters; dropout 0.5 unless --dropout says otherwise).
    #[arg(long, default_value_t = ScratchModel::SmallConvnet, conflicts_with = "base")]
    model: ScratchModel,

    /// A pretrained base under the head: vgg16, mobilenet_v2 or efficientnet_lite0.
    #[arg(long, value_name = "NAME", help_heading = "Pretrained base")]
    base: Option<String>,

    /// frozen: images through the frozen base at every step (augmentation possible);
    /// features: the base runs once per image, its features are cached, the head trains on them.
    #[arg(
        long,
        default_value_t = TransferMode::Frozen,
        value_parser = super::parse_setting::<TransferMode>,
        requires = "base",
        help_heading = "Pretrained base"
    )]
    mode: TransferMode,

    /// The base's weights, safetensors or PyTorch .pth (default: $CONVKIT_MODELS, then
    /// ~/.cache/convkit/models).
    #[arg(
        long,
        value_name = "PATH",
        requires = "base",
        help_heading = "Pretrained base"
    )]
    weights: Option<PathBuf>,

    /// The head: flatten (the chapter's Flatten, Dense 256, Dropout, Dense; VGG16's default)
    /// or pooled (global average pooling, Dropout, Dense; the default of the others).
    #[arg(long, value_parser = super::parse_setting::<Head>, requires = "base", help_heading = "Pretrained base")]
    head: Option<Head>,

    /// Folder of cached features (default: ~/.cache/convkit/features).
    #[arg(
        long,
        value_name = "DIR",
        requires = "base",
        help_heading = "Pretrained base"
    )]
    features_cache: Option<PathBuf>,

    /// Base layers to train too, by name or prefix (e.g. block5); see `convkit summary NAME`.
    #[arg(long, value_name = "NAME", num_args = 1.., requires = "base", help_heading = "Pretrained base")]
    unfreeze: Vec<String>,

    /// Train the last N layers of the base too.
    #[arg(
        long,
        value_name = "N",
        requires = "base",
        help_heading = "Pretrained base"
    )]
    unfreeze_last: Option<usize>,

    /// Images are resized to SIZE x SIZE.
    #[arg(long, default_value_t = 180, value_name = "SIZE")]
    image_size: u32,

    /// Centre-crop images to a square before resizing instead of stretching them.
    #[arg(long)]
    crop_to_aspect_ratio: bool,

    /// Images per gradient step, per process (under torchrun each step averages the
    /// gradients of one batch per process).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub(super) batch_size: usize,

    #[command(flatten)]
    augment: AugmentArgs,

    #[command(flatten)]
    pub(super) fit: FitArgs,

    /// Dropout rate before the classifier (the chapter uses 0.5 with augmentation).
    #[arg(long, value_name = "RATE")]
    dropout: Option<f64>,

    /// Start from a trained model instead of fresh weights: a run folder (its best
    /// checkpoint) or a .safetensors file. Its layers, weights and classes are kept, so
    /// --model and --dropout do not apply; augmentation flags add augmentation only to a
    /// model that has none. With a lower --learning-rate this continues a run past its
    /// plateau (what reduce-on-plateau does within one run).
    #[arg(long, value_name = "RUN_DIR|FILE", conflicts_with_all = ["base", "dropout"])]
    init_from: Option<PathBuf>,

    /// Stop after N epochs without a lower validation loss.
    #[arg(long, value_name = "N")]
    early_stopping: Option<usize>,

    /// Halve the learning rate after N epochs without a lower validation loss.
    #[arg(long, value_name = "N")]
    reduce_lr_patience: Option<usize>,

    /// Fraction of the training images held out for validation when DIR has no
    /// validation/ folder.
    #[arg(long, default_value_t = 0.2, value_name = "FRACTION")]
    pub(super) validation_split: f64,

    /// Seed of the weights, the sample order, augmentation and dropout.
    #[arg(long, default_value_t = 42)]
    pub(super) seed: u64,

    /// Stop at the first unreadable image instead of skipping it with a warning.
    #[arg(long)]
    strict: bool,

    /// Where the decoded images are kept: memory (one byte tensor per split), disk (decoded
    /// once into a memory-mapped file per split, reused by later runs and by every process
    /// of a data-parallel run, keyed by the files' content and the decoding settings;
    /// resident memory stays bounded whatever the dataset's size), or auto (disk above a
    /// quarter of this machine's memory, at most 4 GiB: about 44,000 images at 180x180).
    #[arg(long, default_value = "auto", value_name = "auto|memory|disk", value_parser = super::parse_setting::<Storage>)]
    storage: Storage,

    /// Folder of the on-disk decoded-image caches (default: ~/.cache/convkit/decoded). Old
    /// caches are never removed by convkit: delete the folder to reclaim the space.
    #[arg(long, value_name = "DIR")]
    decoded_cache: Option<PathBuf>,

    /// Run folder to write (default: runs/<model>-<date>-<time>).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,

    /// Continue the run in RUN_DIR (of `convkit train` or `convkit finetune`) from its last
    /// complete epoch, with the settings it started with (read from its run.json).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,

    /// Measure the kept checkpoint at the end with test-time augmentation: each validation
    /// and test image's class probabilities averaged with its mirror image's (see `convkit
    /// evaluate --help`); doubles the final evaluation's time, training is unchanged.
    /// metrics.json records "tta": "horizontal_flip" beside those scores.
    #[arg(long)]
    tta: bool,

    /// Print the final metrics as one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
}

/// How the arguments name the settings of the run description.
pub const SETTING_PATHS: &[(&str, &str)] = &[
    ("data", "data.source.dir"),
    ("validation_split", "data.validation_split"),
    ("image_size", "data.decoding.image_size"),
    ("crop_to_aspect_ratio", "data.decoding.crop_to_aspect_ratio"),
    ("strict", "data.decoding.strict"),
    ("storage", "data.storage.storage"),
    ("decoded_cache", "data.storage.decoded_cache"),
    ("model", "model.source"),
    ("base", "model.source"),
    ("mode", "model.source.mode"),
    ("weights", "model.source.weights"),
    ("head", "model.source.head"),
    ("features_cache", "model.source.features_cache"),
    ("unfreeze", "model.source.unfreeze"),
    ("unfreeze_last", "model.source.unfreeze"),
    ("init_from", "model.source"),
    ("dropout", "model.dropout"),
    ("batch_size", "fit.batch_size"),
    ("seed", "fit.seed"),
    ("precision", "fit.precision"),
    ("early_stopping", "callbacks"),
    ("reduce_lr_patience", "callbacks"),
    ("tta", "evaluation.tta"),
];

pub fn run(
    args: TrainArgs,
    given: &clap::ArgMatches,
    device: &str,
    precision: Option<Precision>,
) -> anyhow::Result<()> {
    let options = RunOptions {
        device: parse_device(device)?,
        progress: !args.quiet,
    };
    let command = TrainingCommand {
        kind: RunKind::Train,
        paths: SETTING_PATHS,
        context: "training failed",
    };
    let describe = |saved: Option<&RunSpec>| describe(&args, saved, precision);
    match command.run(args.resume.as_deref(), given, describe, &options)? {
        Some(report) => super::print_report(&report, args.json),
        None => Ok(()),
    }
}

/// The run the arguments describe; the data folder of `saved` when `--data` is not given
/// beside `--resume`. `lr-find` describes its sweep's run with it too.
pub(super) fn describe(
    args: &TrainArgs,
    saved: Option<&RunSpec>,
    precision: Option<Precision>,
) -> anyhow::Result<RunSpec> {
    let data = match (&args.data, saved.map(|s| &s.data.source)) {
        (Some(data), _) => convkit::data::locate_data_folder(data),
        (None, Some(DataSource::ImageFolder { dir })) => dir.clone(),
        _ => anyhow::bail!("--data DIR is needed to start a run"),
    };
    let base = args
        .base
        .as_deref()
        .map(BackboneArch::from_name)
        .transpose()?;
    let source = match (&args.init_from, base) {
        (Some(init), _) => ModelSource::Checkpoint {
            path: init_checkpoint(init.clone())?,
            unfreeze: unfreeze(args),
        },
        (None, Some(base)) => ModelSource::Pretrained {
            base,
            head: args.head,
            mode: args.mode,
            weights: args.weights.clone(),
            features_cache: args.features_cache.clone(),
            unfreeze: unfreeze(args),
        },
        (None, None) => ModelSource::Scratch {
            architecture: args.model,
        },
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/{}-{}",
            base.map_or(args.model.name(), |b| b.name()),
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    let mut spec = presets::train(data, out);
    spec.data.validation_split = args.validation_split;
    spec.data.decoding = Some(Decoding {
        image_size: args.image_size,
        crop_to_aspect_ratio: args.crop_to_aspect_ratio,
        antialias: false,
        strict: args.strict,
    });
    spec.data.storage = StorageSpec {
        storage: args.storage,
        decoded_cache: args.decoded_cache.clone(),
    };
    spec.model.source = source;
    spec.model.augmentation = args.augment.layers()?;
    spec.model.dropout = args.dropout;
    spec.fit.batch_size = args.batch_size;
    spec.fit.seed = args.seed;
    if precision.is_some() {
        spec.fit.precision = precision;
    }
    args.fit.apply(&mut spec)?;
    spec.evaluation.tta = super::evaluate::tta_of(args.tta);
    spec.callbacks.extend(args.early_stopping.map(|patience| {
        CallbackSpec::EarlyStopping(EarlyStoppingSettings {
            patience,
            monitor: Default::default(),
        })
    }));
    spec.callbacks.extend(
        args.reduce_lr_patience
            .map(|p| CallbackSpec::ReduceLrOnPlateau(ReduceLrOnPlateauSettings::halving(p))),
    );
    Ok(spec)
}

fn unfreeze(args: &TrainArgs) -> Unfreeze {
    Unfreeze {
        layers: args.unfreeze.clone(),
        last: args.unfreeze_last,
    }
}

/// The checkpoint that `--init-from` names: a run folder's best checkpoint, or a file.
fn init_checkpoint(path: PathBuf) -> anyhow::Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path);
    }
    let run = RunDir::open(&path)?;
    Ok(run
        .checkpoint()
        .expect("RunDir::open checked that it has one"))
}
