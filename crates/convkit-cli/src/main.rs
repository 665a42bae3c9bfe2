//! The `convkit` command: parses arguments, then hands off to one library call per
//! subcommand (see `convkit::workflows`).

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train, evaluate and inspect convolutional networks for image classification.
///
/// convkit runs the computer-vision chapter of "Deep Learning with Python" on libtorch.
/// Datasets are found through --data, else the $CONVKIT_DATA folder (e.g. $CONVKIT_DATA/mnist),
/// else ./data, else the user's cache folder (MNIST is downloaded there when missing).
#[derive(Debug, Parser)]
#[command(name = "convkit", version, about, long_about, propagate_version = true)]
struct Cli {
    /// Where to compute: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", value_name = "DEVICE")]
    device: String,

    /// CPU threads for libtorch (default: all cores). Benchmarks need a quiet machine:
    /// OpenMP threads slow down sharply when another process uses the same cores.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Mnist(commands::mnist::MnistArgs),
    Train(commands::train::TrainArgs),
    Finetune(commands::finetune::FinetuneArgs),
    Evaluate(commands::evaluate::EvaluateArgs),
    Predict(commands::predict::PredictArgs),
    AugmentPreview(commands::augment_preview::AugmentPreviewArgs),
    Summary(commands::summary::SummaryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    convkit::device::set_threads(cli.threads);
    let result = match cli.command {
        Command::Summary(args) => commands::summary::run(args),
        Command::Mnist(args) => commands::mnist::run(args, &cli.device),
        Command::Train(args) => commands::train::run(args, &cli.device),
        Command::Finetune(args) => commands::finetune::run(args, &cli.device),
        Command::Evaluate(args) => commands::evaluate::run(args, &cli.device),
        Command::Predict(args) => commands::predict::run(args, &cli.device),
        Command::AugmentPreview(args) => commands::augment_preview::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
