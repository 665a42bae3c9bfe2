//! `convkit evaluate RUN_DIR`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::workflows::evaluate_run;

/// Reload a saved run and evaluate it on its test data: the same numbers as at the end of
/// training.
///
/// Example: `convkit evaluate runs/mnist-20261129-101500 --json`
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The run folder written by `convkit mnist`.
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,

    /// Data folder to evaluate on (default: the one recorded in the run, else the usual
    /// search).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Print one JSON object with keys accuracy, loss and count.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvaluateArgs, device: &str) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let eval = evaluate_run(&args.run_dir, args.data.as_deref(), device)?;
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
