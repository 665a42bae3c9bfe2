//! `convkit train`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use convkit::device::parse_device;
use convkit::train::Optimizer;
use convkit::workflows::{run_train, TrainJob};

use super::augment_args::AugmentArgs;

/// Train a convnet from scratch on a folder of images (the chapter's cats vs dogs).
///
/// DIR holds one sub-folder of images per class (labels follow the sorted folder names), or
/// train/, validation/ and test/ folders laid out that way. Images (JPEG, PNG, BMP, GIF,
/// WebP) are decoded on all cores, resized, and kept in memory.
///
/// Writes a run folder: best.safetensors (the epoch with the lowest validation loss, the
/// chapter's ModelCheckpoint), last.safetensors, history.csv and curves.png (rewritten after
/// every epoch), metrics.json (validation and test accuracy of the best epoch) and run.json.
///
/// Examples:
///   convkit train --data cats_vs_dogs                          # chapter 8.2: 30 epochs
///   convkit train --data cats_vs_dogs --augment --dropout 0.5 --epochs 100   # chapter 8.3
///   convkit train --data photos --rotation 0.05 --contrast 0.2 --early-stopping 10
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct TrainArgs {
    /// Folder of class sub-folders, or of train/ validation/ test/ folders.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,

    /// The model: small-convnet (the chapter's, 991,041 parameters at 180x180).
    #[arg(long, default_value = "small-convnet")]
    model: String,

    /// Images are resized to SIZE x SIZE.
    #[arg(long, default_value_t = 180, value_name = "SIZE")]
    image_size: u32,

    /// Centre-crop images to a square before resizing instead of stretching them.
    #[arg(long)]
    crop_to_aspect_ratio: bool,

    /// Images per gradient step.
    #[arg(long, default_value_t = 32, value_name = "N")]
    batch_size: usize,

    /// Passes over the training images.
    #[arg(long, default_value_t = 30)]
    epochs: usize,

    #[command(flatten)]
    augment: AugmentArgs,

    /// Dropout rate before the classifier (the chapter uses 0.5 with augmentation).
    #[arg(long, value_name = "RATE")]
    dropout: Option<f64>,

    /// RMSprop learning rate.
    #[arg(long, default_value_t = 1e-3, value_name = "LR")]
    learning_rate: f64,

    /// Stop after N epochs without a lower validation loss.
    #[arg(long, value_name = "N")]
    early_stopping: Option<usize>,

    /// Halve the learning rate after N epochs without a lower validation loss.
    #[arg(long, value_name = "N")]
    reduce_lr_patience: Option<usize>,

    /// Fraction of the training images held out for validation when DIR has no
    /// validation/ folder.
    #[arg(long, default_value_t = 0.2, value_name = "FRACTION")]
    validation_split: f64,

    /// Seed of the weights, the sample order, augmentation and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Stop at the first unreadable image instead of skipping it with a warning.
    #[arg(long)]
    strict: bool,

    /// Run folder to write (default: runs/<model>-<date>-<time>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Print the final metrics as one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: TrainArgs, device: &str) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    anyhow::ensure!(
        matches!(args.model.as_str(), "small-convnet" | "small_convnet"),
        "unknown model `{}`; `convkit train` knows: small-convnet",
        args.model
    );
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/{}-{}",
            args.model,
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    let job = TrainJob {
        image_size: args.image_size,
        crop_to_aspect_ratio: args.crop_to_aspect_ratio,
        batch_size: args.batch_size,
        epochs: args.epochs,
        augmentation: args.augment.layers()?,
        dropout: args.dropout,
        seed: args.seed,
        validation_split: args.validation_split,
        optimizer: Optimizer::rmsprop().with_learning_rate(args.learning_rate),
        early_stopping: args.early_stopping,
        reduce_lr_patience: args.reduce_lr_patience,
        strict: args.strict,
        progress: !args.quiet,
        ..TrainJob::new(args.data, out)
    };
    let report = run_train(&job, device).context("training failed")?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let v = &report.best_validation;
    println!(
        "Best epoch: {} of {} - validation accuracy {:.4} (loss {:.4}, {} images)",
        report.best_epoch, report.epochs, v.accuracy, v.loss, v.count
    );
    if let Some(t) = &report.test {
        println!(
            "Test accuracy: {:.4} (loss {:.4}, {} images)",
            t.accuracy, t.loss, t.count
        );
    }
    println!(
        "Loaded {} images in {:.1} s ({:.0} images/s); trained {:.1} s per epoch ({:.0} images/s) on {} with {} threads{}",
        report.train_count + report.validation_count,
        report.load_seconds,
        report.load_images_per_second,
        report.seconds_per_epoch,
        report.images_per_second,
        report.device,
        report.threads,
        report.peak_memory_mib.map(|m| format!(", peak memory {m:.0} MiB")).unwrap_or_default()
    );
    println!(
        "Run folder: {} (best.safetensors, last.safetensors, history.csv, curves.png, metrics.json)",
        report.out_dir.display()
    );
    Ok(())
}
