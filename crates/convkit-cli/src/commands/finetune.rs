//! `convkit finetune RUN_DIR`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use convkit::device::parse_device;
use convkit::runtime::Precision;
use convkit::workflows::{finetune_job, run_train, FinetuneOptions};

use super::augment_args::AugmentArgs;
use super::train::print_report;

/// Fine-tune a transfer-learning run: unfreeze the top of its base and train on with a low
/// learning rate (the chapter's section 5).
///
/// Starts from RUN_DIR's best checkpoint (a `convkit train --base ...` run), reads its data
/// and settings from its run.json, and writes a new run folder. Batch norm stays in
/// inference mode. Without augmentation flags the first run's augmentation is kept (a
/// features run had none: add --augment).
///
/// Examples:
///   convkit finetune runs/vgg16-frozen --unfreeze block5            # the chapter: lr 1e-5, 30 epochs
///   convkit finetune runs/mobilenet --unfreeze-last 3 --epochs 10 --out runs/mobilenet-ft
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct FinetuneArgs {
    /// The run folder of a `convkit train --base ...` run.
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,

    /// Base layers to train, by name or prefix (VGG16: block5 = block5_conv1..3); see
    /// `convkit summary NAME` for the names.
    #[arg(long, value_name = "NAME", num_args = 1.., required_unless_present = "unfreeze_last")]
    unfreeze: Vec<String>,

    /// Train the last N layers of the base (VGG16: 3 = block5).
    #[arg(long, value_name = "N")]
    unfreeze_last: Option<usize>,

    /// RMSprop learning rate (the chapter's fine-tuning rate; --lr works too).
    #[arg(long, visible_alias = "lr", default_value_t = 1e-5, value_name = "LR")]
    learning_rate: f64,

    /// Passes over the training images.
    #[arg(long, default_value_t = 30)]
    epochs: usize,

    #[command(flatten)]
    augment: AugmentArgs,

    /// Run folder to write (default: RUN_DIR-finetune).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Print the final metrics as one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: FinetuneArgs, device: &str, precision: Option<Precision>) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let out = args.out.unwrap_or_else(|| {
        let mut name = args.run_dir.file_name().unwrap_or_default().to_os_string();
        name.push("-finetune");
        args.run_dir.with_file_name(name)
    });
    let augmentation = args.augment.layers()?;
    let options = FinetuneOptions {
        unfreeze_last: args.unfreeze_last,
        learning_rate: args.learning_rate,
        epochs: args.epochs,
        augmentation: (!augmentation.is_empty()).then_some(augmentation),
        progress: !args.quiet,
        ..FinetuneOptions::new(args.unfreeze, out)
    };
    let mut job = finetune_job(&args.run_dir, &options)?;
    if let Some(precision) = precision {
        job.precision = precision;
    }
    let report = run_train(&job, device).context("fine-tuning failed")?;
    print_report(&report, args.json)
}
