//! `convkit evaluate RUN_DIR`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::runtime::Precision;
use convkit::workflows::evaluate_run;

/// Reload a saved run and evaluate it on test data: accuracy, loss and count.
///
/// Uses the run's best checkpoint (the epoch with the lowest validation loss) when it kept
/// one. Without --data: the run's own test split (MNIST's 10,000 test images; for image
/// folders, test/ if the data had one, else validation/), so the numbers match the end of
/// training.
///
/// Examples:
///   convkit evaluate runs/mnist-20261129-101500 --json
///   convkit evaluate runs/small-convnet-20261129-101500 --data cats_vs_dogs/test
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EvaluateArgs {
    /// The run folder written by `convkit mnist` or `convkit train`.
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,

    /// Data to evaluate on: for MNIST runs the folder of the four files; for image runs a
    /// folder of class sub-folders (or a data folder whose test/ is used).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Print one JSON object with keys accuracy, loss and count.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvaluateArgs, device: &str, precision: Option<Precision>) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let eval = evaluate_run(&args.run_dir, args.data.as_deref(), device, precision)?;
    if args.json {
        println!("{}", serde_json::to_string(&eval)?);
    } else {
        println!(
            "Test accuracy: {:.4} (loss {:.4}, {} images)",
            eval.accuracy, eval.loss, eval.count
        );
    }
    Ok(())
}
