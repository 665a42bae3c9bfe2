//! `convkit mnist`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::runtime::Precision;
use convkit::train::Optimizer;
use convkit::workflows::mnist::MnistRunConfig;
use convkit::workflows::{resume_mnist, run_mnist, MnistJob};

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
    /// Folder holding the four MNIST files (.gz or raw), or a folder with mnist/ in it.
    /// Default: $CONVKIT_DATA/mnist, ./data/mnist, then the cache folder (downloaded
    /// there, with a sha256 check, when missing).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Passes over the training images.
    #[arg(long, default_value_t = 5)]
    epochs: usize,

    /// Images per gradient step, per process (under torchrun each step averages the
    /// gradients of one batch per process).
    #[arg(long, default_value_t = 64, value_name = "N")]
    batch_size: usize,

    /// Fraction of the training images held out for validation, taken from the end as
    /// Keras does (0 to disable).
    #[arg(long, default_value_t = 0.1, value_name = "FRACTION")]
    validation_split: f64,

    /// Seed of the initial weights and the sample order: the same seed gives the same
    /// numbers on the same device and thread count.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// RMSprop learning rate (Keras' default; --lr works too).
    #[arg(long, visible_alias = "lr", default_value_t = 1e-3, value_name = "LR")]
    learning_rate: f64,

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

/// How the arguments name the fields of [`MnistJob`].
const SETTING_KEYS: &[(&str, &str)] = &[
    ("data", "data_dir"),
    ("limit", "train_limit"),
    ("learning_rate", "optimizer"),
];

pub fn run(
    args: MnistArgs,
    given: &clap::ArgMatches,
    device: &str,
    precision: Option<Precision>,
) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let out = args.resume.clone().or(args.out.clone()).unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/mnist-{}",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    let job = MnistJob {
        data_dir: args.data,
        epochs: args.epochs,
        batch_size: args.batch_size,
        validation_split: args.validation_split,
        seed: args.seed,
        train_limit: args.limit,
        optimizer: Optimizer::rmsprop().with_learning_rate(args.learning_rate),
        progress: !args.quiet,
        precision: precision.unwrap_or_default(),
        ..MnistJob::new(out.clone())
    };
    let result = match &args.resume {
        Some(run_dir) => {
            super::refuse_changed_settings(
                run_dir,
                "mnist",
                given,
                SETTING_KEYS,
                |saved: MnistRunConfig| {
                    let saved = MnistJob {
                        out_dir: out.clone(),
                        ..saved.settings
                    };
                    Ok((saved, job.clone()))
                },
            )?;
            resume_mnist(run_dir, device, !args.quiet)
        }
        None => run_mnist(&job, device),
    };
    let Some(report) = super::training_result(result, "mnist", &out, "MNIST run failed")? else {
        return Ok(());
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "Test accuracy: {:.4} (loss {:.4}, {} images)",
        report.test_accuracy, report.test_loss, report.test_count
    );
    println!(
        "Trained {} epochs on {} images in {:.1} s ({:.0} images/s) on {} in {} with {} threads{}",
        report.epochs,
        report.train_count,
        report.train_seconds,
        report.images_per_second,
        report.device,
        report.precision,
        report.threads,
        report
            .peak_memory_mib
            .map(|m| format!(", peak memory {m:.0} MiB"))
            .unwrap_or_default()
    );
    println!(
        "Run folder: {} (model.safetensors, history.csv, curves.png, metrics.json)",
        report.out_dir.display()
    );
    Ok(())
}
