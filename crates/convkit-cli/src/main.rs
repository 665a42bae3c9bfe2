//! The `convkit` command: parses arguments, then hands off to one library call per
//! subcommand (see `convkit::workflows`).

mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Train, evaluate and inspect convolutional networks for image classification.
///
/// convkit runs the computer-vision chapter of "Deep Learning with Python" on libtorch.
/// Datasets are found through --data, else the $CONVKIT_DATA folder (e.g. $CONVKIT_DATA/mnist),
/// else ./data, else the user's cache folder (MNIST is downloaded there when missing). A
/// relative --data DIR that is not a folder here is looked for in $CONVKIT_DATA.
#[derive(Debug, Parser)]
#[command(name = "convkit", version, about, long_about, propagate_version = true)]
struct Cli {
    /// Where to compute: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", value_name = "DEVICE")]
    device: String,

    /// CPU threads for libtorch (default: $OMP_NUM_THREADS when set, as torchrun sets it
    /// to 1 for several processes per machine, else all cores). Benchmarks need a quiet
    /// machine: OpenMP threads slow down sharply when another process uses the same cores.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,

    /// Data-parallel runs (under torchrun): how long a process waits for the others (to
    /// join, or in a gradient exchange) before it fails naming the rank that died or hung.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 300)]
    dist_timeout: u64,

    /// Numeric precision: fp32; bf16 (mixed precision, as torch.autocast: fp32 weights and
    /// optimizer, bf16 convolutions and matrix products, fp32 loss and metrics); or auto
    /// (bf16 where the hardware has bf16 matrix units: CPUs with AMX or AVX512-BF16, CUDA
    /// GPUs of compute capability 8.0+; fp32 elsewhere). Default: auto for a new run (mnist,
    /// train, lr-find, chapter8) and for predict --backbone; the run's own precision for
    /// finetune, evaluate, predict and a resumed run.
    #[arg(long, global = true, value_name = "fp32|bf16|auto")]
    precision: Option<convkit::runtime::Precision>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Mnist(commands::mnist::MnistArgs),
    Train(commands::train::TrainArgs),
    Finetune(commands::finetune::FinetuneArgs),
    LrFind(commands::lr_find::LrFindArgs),
    Chapter8(commands::chapter8::Chapter8Args),
    Evaluate(commands::evaluate::EvaluateArgs),
    Predict(commands::predict::PredictArgs),
    Export(commands::export::ExportArgs),
    AugmentPreview(commands::augment_preview::AugmentPreviewArgs),
    Summary(commands::summary::SummaryArgs),
}

/// `err` and its causes on one line, `outer: inner`, each cause said once: a library error
/// that already names its cause (`path: reason`) is not followed by the reason again.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.ends_with(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = matches
        .subcommand()
        .map(|(_, sub)| sub.clone())
        .unwrap_or_default();
    if let Err(err) = convkit::train::interrupt::install_handler() {
        eprintln!("warning: {err}");
    }
    convkit::device::set_threads(cli.threads);
    // Reuse freed buffers rather than page-faulting on fresh ones at every step.
    convkit::runtime::keep_freed_memory();
    let precision = cli.precision;
    let device = match &cli.command {
        Command::Mnist(_) | Command::Train(_) | Command::Finetune(_) => {
            match commands::data_parallel::join_run(&cli.device, cli.dist_timeout) {
                Ok(device) => device,
                Err(err) => {
                    eprintln!("error: {}", error_text(&err));
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => match commands::data_parallel::refuse_parallel_launch() {
            Ok(()) => cli.device.clone(),
            Err(err) => {
                eprintln!("error: {}", error_text(&err));
                return ExitCode::FAILURE;
            }
        },
    };
    let result = match cli.command {
        Command::Summary(args) => commands::summary::run(args),
        Command::Mnist(args) => commands::mnist::run(args, &given, &device, precision),
        Command::Train(args) => commands::train::run(args, &given, &device, precision),
        Command::Finetune(args) => commands::finetune::run(args, &given, &device, precision),
        Command::LrFind(args) => commands::lr_find::run(args, &given, &device, precision),
        Command::Chapter8(args) => commands::chapter8::run(args, &cli.device, precision),
        Command::Evaluate(args) => commands::evaluate::run(args, &cli.device, precision),
        Command::Predict(args) => commands::predict::run(args, &cli.device, precision),
        Command::Export(args) => commands::export::run(args, &cli.device),
        Command::AugmentPreview(args) => commands::augment_preview::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(interrupted) = err.downcast_ref::<commands::Interrupted>() {
                eprintln!("{interrupted}");
                return ExitCode::from(130);
            }
            eprintln!("error: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn a_cause_already_in_its_error_is_said_once() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(convkit::Error::io("run/best.json", missing))
            .context("training failed");
        assert_eq!(
            error_text(&err),
            "training failed: run/best.json: no such file"
        );
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&err), "outer: inner");
    }
}
