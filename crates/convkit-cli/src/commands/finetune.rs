//! `convkit finetune RUN_DIR`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::runtime::Precision;
use convkit::workflows::presets;
use convkit::workflows::run_spec::{ModelSource, RunKind, RunSpec, Unfreeze};
use convkit::workflows::RunOptions;

use super::augment_args::AugmentArgs;
use super::fit_args::FitArgs;
use super::TrainingCommand;

/// Fine-tune a transfer-learning run: train the top of its base on at a low rate.
///
/// Unfreezes the top of the base and trains on with a low learning rate (the chapter's
/// section 5).
///
/// Starts from RUN_DIR's best checkpoint (a `convkit train --base ...` run), reads its data
/// and settings from its run.json, and writes a new run folder. Batch norm stays in
/// inference mode. Without augmentation flags the first run's augmentation is kept (a
/// features run had none: add --augment).
///
/// TensorBoard logs in RUN/tensorboard: tensorboard --logdir RUN/tensorboard
///
/// Examples:
///   convkit finetune runs/vgg16-frozen --unfreeze block5            # the chapter: lr 1e-5, 30 epochs
///   convkit finetune runs/mobilenet --unfreeze-last 3 --epochs 10 --out runs/mobilenet-ft
///   convkit finetune --resume runs/vgg16-frozen-finetune            # continue a stopped run
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct FinetuneArgs {
    /// The run folder of a `convkit train --base ...` run.
    #[arg(value_name = "RUN_DIR", required_unless_present = "resume")]
    run_dir: Option<PathBuf>,

    /// Base layers to train, by name or prefix (VGG16: block5 = block5_conv1..3); see
    /// `convkit summary NAME` for the names.
    #[arg(long, value_name = "NAME", num_args = 1.., required_unless_present_any = ["unfreeze_last", "resume"])]
    unfreeze: Vec<String>,

    /// Train the last N layers of the base (VGG16: 3 = block5).
    #[arg(long, value_name = "N")]
    unfreeze_last: Option<usize>,

    #[command(flatten)]
    augment: AugmentArgs,

    #[command(flatten)]
    fit: FitArgs,

    /// Run folder to write (default: RUN_DIR-finetune).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,

    /// Continue the fine-tuning run in FINETUNE_DIR from its last complete epoch, with the
    /// settings it started with (read from its run.json).
    #[arg(long, value_name = "FINETUNE_DIR", conflicts_with = "run_dir")]
    resume: Option<PathBuf>,

    /// Print the final metrics as one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
}

/// How the arguments name the settings of the run description.
pub const SETTING_PATHS: &[(&str, &str)] = &[
    ("unfreeze", "model.source.unfreeze"),
    ("unfreeze_last", "model.source.unfreeze"),
    ("precision", "fit.precision"),
];

pub fn run(
    args: FinetuneArgs,
    given: &clap::ArgMatches,
    device: &str,
    precision: Option<Precision>,
) -> anyhow::Result<()> {
    let options = RunOptions {
        device: parse_device(device)?,
        progress: !args.quiet,
    };
    let command = TrainingCommand {
        kind: RunKind::Finetune,
        paths: SETTING_PATHS,
        context: "fine-tuning failed",
    };
    let describe = |saved: Option<&RunSpec>| describe(&args, saved, precision);
    match command.run(args.resume.as_deref(), given, describe, &options)? {
        Some(report) => super::print_report(&report, args.json),
        None => Ok(()),
    }
}

/// The fine-tuning run the arguments describe: of RUN_DIR, or (beside `--resume`) the
/// saved run with the arguments applied.
fn describe(
    args: &FinetuneArgs,
    saved: Option<&RunSpec>,
    precision: Option<Precision>,
) -> anyhow::Result<RunSpec> {
    let unfreeze = Unfreeze {
        layers: args.unfreeze.clone(),
        last: args.unfreeze_last,
    };
    let mut spec = match saved {
        Some(saved) => {
            let mut spec = saved.clone();
            if let ModelSource::Checkpoint { unfreeze: u, .. } = &mut spec.model.source {
                *u = unfreeze;
            }
            spec
        }
        None => {
            let source = args
                .run_dir
                .clone()
                .expect("clap requires RUN_DIR without --resume");
            let out = args.out.clone().unwrap_or_else(|| {
                let mut name = source.file_name().unwrap_or_default().to_os_string();
                name.push("-finetune");
                source.with_file_name(name)
            });
            presets::finetune(&source, unfreeze, out)?
        }
    };
    let augmentation = args.augment.layers()?;
    if !augmentation.is_empty() {
        spec.model.augmentation = augmentation;
    }
    if let Some(precision) = precision {
        spec.fit.precision = Some(precision);
    }
    args.fit.apply(&mut spec)?;
    Ok(spec)
}
