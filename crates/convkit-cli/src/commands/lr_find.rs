//! `convkit lr-find`.

use std::path::PathBuf;

use clap::{Args, CommandFactory as _};
use convkit::data::mnist::has_mnist_files;
use convkit::device::parse_device;
use convkit::runtime::Precision;
use convkit::train::LrFindEnd;
use convkit::workflows::run_spec::RunSpec;
use convkit::workflows::{find_learning_rate, LrFindJob, LrFindReport, RunOptions};

use super::mnist::{self, MnistSettings};
use super::train::TrainArgs;

/// Find a learning rate: a short training whose rate grows at every step, plotted.
///
/// Leslie Smith's learning-rate range test, as fastai's Learner.lr_find: the model a
/// `convkit train` with the same flags would build trains for --iterations batches (100)
/// with its optimizer, its augmentation and its dropout, while the learning rate grows
/// exponentially from --start-lr (1e-7) to --end-lr (10). The loss of every batch is
/// smoothed (exponential average, beta 0.98, debiased); the sweep stops early once the
/// smoothed loss passes 4 times its lowest value. The model is then thrown away: nothing is
/// trained.
///
/// Reading the plot (OUT/lr_find.png, smoothed loss against the learning rate, log scale):
/// flat on the left, where the rate is too small to change anything; then falling, where
/// the rates train (the steeper, the faster); then a bottom and a sharp rise, where the
/// rate is too large and training diverges. A good rate sits on the fall, well before the
/// bottom. A curve that stays flat until it rises says only where training diverges: the
/// model learns too slowly for 100 batches to show it (try more --iterations).
///
/// The suggestions, fastai's rules on the smoothed curve:
///   valley      (fastai's default) halfway along the longest falling stretch of steps
///   steep       where the loss falls fastest per decade of learning rate
///   minimum/10  a tenth of the rate at the lowest loss, a margin below divergence
///
/// On MNIST: --data naming a folder of MNIST's four IDX files (--data mnist, or
/// fashion-mnist) sweeps the chapter's MNIST convnet as `convkit mnist` trains it: batches
/// of 64 and a tenth held out unless --batch-size or --validation-split say otherwise, with
/// the --recipe and optimizer flags given. Flags only image folders have (--model,
/// --augment, --image-size, ...) are refused; the suggested command is a `convkit mnist`.
///
/// Noisy curves (small batches, strong augmentation) are worth a second run with another
/// --seed: trust a region both runs agree on, not one exact number.
///
/// Writes OUT/lr_find.png, OUT/lr_find.csv (step, learning rate, loss, smoothed loss) and
/// OUT/lr_find.json (the settings, the steps and the suggestions); prints the suggested
/// rate and the `convkit train` command that uses it. The flags are train's: the same
/// --data, --model, --base, --augment, --dropout, --image-size, --batch-size, --seed (and
/// the global --precision, --device) select the same data and model.
///
/// Examples:
///   convkit lr-find --data cats_vs_dogs --augment --dropout 0.5      # the chapter's convnet
///   convkit lr-find --data cats_vs_dogs --model mini-xception --augment
///   convkit lr-find --data cats_vs_dogs --base vgg16 --augment --out lr/vgg16
///   convkit lr-find --data mnist                  # the MNIST convnet, as `convkit mnist`
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    mut_arg("data", |a| a.help("Folder of class sub-folders (or of train/ validation/ test/ folders), or of MNIST's four IDX files; a relative DIR that is not a folder here is looked for in $CONVKIT_DATA (--data cats_vs_dogs, --data mnist)")),
    mut_arg("out", |a| a.help("Folder to write lr_find.png, lr_find.csv and lr_find.json to (default: runs/lr-find-<model>-<date>-<time>)")),
    mut_arg("quiet", |a| a.help("No progress bar")),
    mut_arg("json", |a| a.help("Print the report (settings, steps, suggestions) as one JSON object on stdout")),
    mut_arg("epochs", |a| a.hide(true)),
    mut_arg("early_stopping", |a| a.hide(true)),
    mut_arg("reduce_lr_patience", |a| a.hide(true)),
    mut_arg("resume", |a| a.hide(true)),
    mut_arg("learning_rate", |a| a.hide(true)),
    mut_arg("schedule", |a| a.hide(true)),
    mut_arg("warmup_epochs", |a| a.hide(true)),
    mut_arg("ema", |a| a.hide(true)),
    mut_arg("mixup", |a| a.hide(true)),
    mut_arg("progressive_resizing", |a| a.hide(true)),
    mut_arg("resizing_ramp", |a| a.hide(true)),
    mut_arg("keep", |a| a.hide(true)),
    mut_arg("tta", |a| a.hide(true)),
)]
pub struct LrFindArgs {
    #[command(flatten)]
    train: TrainArgs,

    /// Learning rate of the first step.
    #[arg(
        long,
        default_value_t = 1e-7,
        value_name = "LR",
        help_heading = "Sweep"
    )]
    start_lr: f64,

    /// Learning rate the sweep grows towards (the last step stays just below it).
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "LR",
        help_heading = "Sweep"
    )]
    end_lr: f64,

    /// Steps (batches) in the sweep; the training images are gone through again, in a new
    /// order, when they hold fewer batches.
    #[arg(long, default_value_t = 100, value_name = "N", help_heading = "Sweep")]
    iterations: usize,
}

/// Train's flags that a sweep has no use for, and why: refused when given.
const NOT_FOR_A_SWEEP: &[(&str, &str)] = &[
    ("epochs", "the sweep runs --iterations batches"),
    (
        "learning_rate",
        "the sweep tries every rate from --start-lr to --end-lr",
    ),
    (
        "early_stopping",
        "the sweep stops by itself when the loss diverges",
    ),
    (
        "reduce_lr_patience",
        "the sweep sets the learning rate itself",
    ),
    ("resume", "a sweep has no run folder to continue"),
    ("schedule", "the sweep sets the learning rate itself"),
    ("warmup_epochs", "the sweep sets the learning rate itself"),
    ("ema", "the sweep reads the loss of the weights it trains"),
    ("mixup", "the sweep trains on the images as they are"),
    (
        "progressive_resizing",
        "the sweep trains on the images at their size",
    ),
    (
        "resizing_ramp",
        "the sweep trains on the images at their size",
    ),
    ("keep", "the sweep keeps no model"),
    ("tta", "the sweep evaluates nothing"),
];

/// The sweep's own flags, left out of the suggested `convkit train` command.
const SWEEP_ONLY: &[&str] = &["start_lr", "end_lr", "iterations", "out", "quiet", "json"];

pub fn run(
    args: LrFindArgs,
    given: &clap::ArgMatches,
    device: &str,
    precision: Option<Precision>,
) -> anyhow::Result<()> {
    for (id, why) in NOT_FOR_A_SWEEP {
        if given.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
            anyhow::bail!("lr-find does not take --{}: {why}", id.replace('_', "-"));
        }
    }
    let quiet = given.get_flag("quiet");
    let mnist_dir = args
        .train
        .data
        .as_deref()
        .map(convkit::data::locate_data_folder)
        .filter(|dir| has_mnist_files(dir));
    let (mut run, trained_by) = match mnist_dir {
        Some(dir) => (describe_mnist(&args.train, dir, given, precision)?, "mnist"),
        None => (
            super::train::describe(&args.train, None, precision)?,
            "train",
        ),
    };
    let out_dir = given.get_one::<PathBuf>("out").cloned().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/lr-find-{}-{}",
            run.model.short_name(),
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    run.output.dir = out_dir.clone();
    let job = LrFindJob {
        run,
        start_lr: args.start_lr,
        end_lr: args.end_lr,
        iterations: args.iterations,
        out_dir,
    };
    let options = RunOptions {
        device: parse_device(device)?,
        progress: !quiet,
    };
    let report = find_learning_rate(&job, &options)
        .map_err(|e| anyhow::Error::new(e).context("the learning-rate sweep failed"))?;
    if given.get_flag("json") {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    print_report(
        &report,
        &train_command(trained_by, given, device, precision),
    )
}

/// The run a sweep on MNIST's files in `dir` tries out: `convkit mnist`'s, with the flags
/// given here that `mnist` takes too (its batch size and validation split by default, not
/// train's); flags for image folders are refused.
fn describe_mnist(
    train: &TrainArgs,
    dir: PathBuf,
    given: &clap::ArgMatches,
    precision: Option<Precision>,
) -> anyhow::Result<RunSpec> {
    let command = crate::Cli::command();
    let subcommand = |name| {
        command
            .find_subcommand(name)
            .expect("lr-find and mnist are subcommands")
    };
    let mnist_ids: Vec<&str> = subcommand("mnist")
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .collect();
    let from_command_line =
        |id: &str| given.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    for arg in subcommand("lr-find").get_arguments() {
        let id = arg.get_id().as_str();
        if from_command_line(id) && !mnist_ids.contains(&id) && !SWEEP_ONLY.contains(&id) {
            anyhow::bail!(
                "lr-find does not take --{} on MNIST: {} holds MNIST's files, so the sweep \
                 tries `convkit mnist`'s convnet, which has no such setting (it is for image \
                 folders)",
                arg.get_long().unwrap_or(id),
                dir.display()
            );
        }
    }
    let settings = MnistSettings {
        validation_split: if from_command_line("validation_split") {
            train.validation_split
        } else {
            mnist::VALIDATION_SPLIT
        },
        batch_size: if from_command_line("batch_size") {
            train.batch_size
        } else {
            mnist::BATCH_SIZE
        },
        seed: train.seed,
        data: Some(dir),
        limit: None,
    };
    mnist::describe(&settings, &train.fit, precision, PathBuf::new())
}

fn print_report(report: &LrFindReport, train_command: &str) -> anyhow::Result<()> {
    let sweep = &report.sweep;
    let ran = sweep.steps.len();
    let ended = match sweep.end {
        LrFindEnd::Completed => format!("{ran} steps"),
        LrFindEnd::Diverged => format!(
            "{ran} of {} steps (stopped: the loss diverged at {:.1e})",
            sweep.settings.iterations,
            sweep.steps.last().map_or(0.0, |s| s.learning_rate)
        ),
        LrFindEnd::NotFinite => format!(
            "{ran} of {} steps (stopped: the loss was not a number at {:.1e})",
            sweep.settings.iterations,
            sweep.steps.last().map_or(0.0, |s| s.learning_rate)
        ),
    };
    println!(
        "Swept {ended} in {:.1} s on {} in {} ({} images loaded in {:.1} s)",
        report.sweep_seconds,
        report.device,
        report.precision,
        report.train_count,
        report.load_seconds
    );
    let s = &sweep.suggestions;
    let Some(valley) = s.valley else {
        anyhow::bail!(
            "the sweep ran {ran} steps, too few to suggest a learning rate (the rules skip the \
             first tenth and the last 5): raise --iterations, or lower --start-lr if the loss \
             diverged at once; the curve is in {}",
            report.plot.display()
        );
    };
    let others: Vec<String> = [("steep", s.steep), ("minimum/10", s.minimum)]
        .into_iter()
        .filter_map(|(name, s)| s.map(|s| format!("{name} {:.1e}", s.learning_rate)))
        .collect();
    println!(
        "Suggested learning rate: {:.1e} (valley; also {})",
        valley.learning_rate,
        others.join(", ")
    );
    println!("Train with it:");
    println!(
        "  {train_command} --learning-rate {:.1e}",
        valley.learning_rate
    );
    println!(
        "Plot: {} (sweep in {} and lr_find.json)",
        report.plot.display(),
        report.csv.display()
    );
    Ok(())
}

/// `convkit train` (or `convkit mnist`, as `subcommand` says) with the data and model flags
/// of this command line (and its --device and --precision), for the suggested learning rate
/// to follow.
fn train_command(
    subcommand: &str,
    given: &clap::ArgMatches,
    device: &str,
    precision: Option<Precision>,
) -> String {
    let command = crate::Cli::command();
    let lr_find = command
        .find_subcommand("lr-find")
        .expect("lr-find is a subcommand");
    let mut words = vec!["convkit".to_owned(), subcommand.to_owned()];
    if device != "auto" {
        words.extend(["--device".to_owned(), device.to_owned()]);
    }
    if let Some(precision) = precision {
        words.extend(["--precision".to_owned(), precision.to_string()]);
    }
    for arg in lr_find.get_arguments() {
        let id = arg.get_id().as_str();
        if SWEEP_ONLY.contains(&id)
            || given.value_source(id) != Some(clap::parser::ValueSource::CommandLine)
        {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        words.push(format!("--{long}"));
        if arg.get_action().takes_values() {
            if let Some(values) = given.get_raw(id) {
                words.extend(values.map(|v| shell_word(&v.to_string_lossy())));
            }
        }
    }
    words.join(" ")
}

/// `word` as a shell reads it back: quoted when it holds anything but plain characters.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
