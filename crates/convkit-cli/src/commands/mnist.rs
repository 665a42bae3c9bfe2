//! `convkit mnist`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::runtime::Precision;
use convkit::workflows::presets;
use convkit::workflows::run_spec::{DataSource, RunKind, RunSpec};
use convkit::workflows::RunOptions;

use super::fit_args::FitArgs;
use super::TrainingCommand;

/// Train the chapter's MNIST convnet and evaluate it on the 10,000 test images.
///
/// Writes a run folder: model.safetensors + model.json, history.csv, curves.png,
/// metrics.json and run.json.
///
/// The defaults reproduce the chapter: 5 epochs, batches of 64,
/// RMSprop (learning rate 1e-3, rho 0.9, epsilon 1e-7), inputs / 255, and 10% of the
/// training images held out for validation. Expect about 99.1% test accuracy.
///
/// TensorBoard logs in RUN/tensorboard: tensorboard --logdir RUN/tensorboard
///
/// Examples:
///   convkit mnist
///   convkit mnist --data ~/datasets/mnist --epochs 10 --seed 3 --out runs/mnist-10
///   convkit mnist --limit 6000 --epochs 1        # a quick check, about 90%
///   convkit mnist --resume runs/mnist-10         # continue a run that was stopped
///
/// The run folder keeps its state after every epoch (state/). A run stopped by Ctrl-C, a
/// kill or a crash continues with --resume RUN_DIR and ends exactly as if it had never
/// stopped (same device and --threads).
///
/// Data parallel (libtorch's c10d, Gloo on the CPU): start it under torchrun, one process
/// per core group or GPU. --batch-size is per process, as in PyTorch: 2 processes x 64
/// train as one process on batches of 128. Only rank 0 writes the run folder.
///   torchrun --standalone --nproc-per-node=2 --no-python convkit --threads 1 mnist
///   # two machines: on the one at HOST --node-rank=0, on the other --node-rank=1
///   torchrun --nnodes=2 --node-rank=0 --nproc-per-node=1 --master-addr=HOST \
///     --master-port=29500 --no-python convkit mnist
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MnistArgs {
    /// Folder holding the four MNIST files (.gz or raw), or a folder with mnist/ in it. A
    /// relative DIR that is not a folder here is looked for in $CONVKIT_DATA (--data
    /// fashion-mnist). Default: $CONVKIT_DATA/mnist, ./data/mnist, then the cache folder
    /// (downloaded there, with a sha256 check, when missing).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Images per gradient step, per process (under torchrun each step averages the
    /// gradients of one batch per process).
    #[arg(long, default_value_t = BATCH_SIZE, value_name = "N")]
    batch_size: usize,

    /// Fraction of the training images held out for validation, taken from the end as
    /// Keras does (0 to disable).
    #[arg(long, default_value_t = VALIDATION_SPLIT, value_name = "FRACTION")]
    validation_split: f64,

    /// Seed of the initial weights and the sample order: the same seed gives the same
    /// numbers on the same device and thread count.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    #[command(flatten)]
    fit: FitArgs,

    /// Train on the first N training images only (before the validation split).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    /// Run folder to write (default: runs/mnist-<date>-<time>).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,

    /// Continue the run in RUN_DIR from its last complete epoch, with the settings it
    /// started with (read from its run.json).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,

    /// Print the final metrics as one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,

    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
}

/// The chapter's batch size for MNIST.
pub(super) const BATCH_SIZE: usize = 64;

/// The fraction of MNIST's training images held out for validation.
pub(super) const VALIDATION_SPLIT: f64 = 0.1;

/// The settings of an MNIST run that are not the fit's, as `mnist`'s flags give them.
pub(super) struct MnistSettings {
    /// The folder of the four files (`None`: where `mnist` looks by default).
    pub data: Option<PathBuf>,
    /// Train on the first N training images only.
    pub limit: Option<usize>,
    /// Fraction of the training images held out for validation.
    pub validation_split: f64,
    /// Images per gradient step.
    pub batch_size: usize,
    /// Seed of the weights and the sample order.
    pub seed: u64,
}

/// The chapter's MNIST run with `settings`, `fit` and `precision` over its defaults,
/// writing to `out`. `lr-find` describes an MNIST sweep's run with it too.
pub(super) fn describe(
    settings: &MnistSettings,
    fit: &FitArgs,
    precision: Option<Precision>,
    out: PathBuf,
) -> anyhow::Result<RunSpec> {
    let mut spec = presets::mnist(out);
    spec.data.source = DataSource::Mnist {
        dir: settings.data.clone(),
        limit: settings.limit,
    };
    spec.data.validation_split = settings.validation_split;
    spec.fit.batch_size = settings.batch_size;
    spec.fit.seed = settings.seed;
    if precision.is_some() {
        spec.fit.precision = precision;
    }
    fit.apply(&mut spec)?;
    Ok(spec)
}

/// How the arguments name the settings of the run description.
pub const SETTING_PATHS: &[(&str, &str)] = &[
    ("data", "data.source.dir"),
    ("limit", "data.source.limit"),
    ("validation_split", "data.validation_split"),
    ("batch_size", "fit.batch_size"),
    ("seed", "fit.seed"),
    ("precision", "fit.precision"),
];

pub fn run(
    args: MnistArgs,
    given: &clap::ArgMatches,
    device: &str,
    precision: Option<Precision>,
) -> anyhow::Result<()> {
    let options = RunOptions {
        device: parse_device(device)?,
        progress: !args.quiet,
    };
    let command = TrainingCommand {
        kind: RunKind::Mnist,
        paths: SETTING_PATHS,
        context: "MNIST run failed",
    };
    let describe = |_saved: Option<&RunSpec>| {
        let out = args.out.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "runs/mnist-{}",
                chrono::Local::now().format("%Y%m%d-%H%M%S")
            ))
        });
        let settings = MnistSettings {
            data: args.data.as_deref().map(convkit::data::locate_data_folder),
            limit: args.limit,
            validation_split: args.validation_split,
            batch_size: args.batch_size,
            seed: args.seed,
        };
        describe(&settings, &args.fit, precision, out)
    };
    match command.run(args.resume.as_deref(), given, describe, &options)? {
        Some(report) => super::print_report(&report, args.json),
        None => Ok(()),
    }
}
