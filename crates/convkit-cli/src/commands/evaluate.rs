//! `convkit evaluate RUN_DIR`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::runtime::Precision;
use convkit::train::Tta;
use convkit::workflows::{evaluate_run, report_run, RunDir};

/// Reload a saved run and evaluate it on test data: accuracy, loss and count.
///
/// Uses the run's best checkpoint (the epoch with the lowest validation loss) when it kept
/// one. Without --data: the run's own test split (MNIST's 10,000 test images; for image
/// folders, test/ if the data had one, else validation/), so the numbers match the end of
/// training.
///
/// --report also writes a folder that shows what the model gets right and wrong:
///   report.html        one page with everything below, pictures inlined (open it in a browser)
///   metrics.json       accuracy, loss, per-class precision/recall/F1/support, macro and
///                      weighted averages, ROC AUC (two classes), top-5 accuracy (> 5 classes),
///                      the confusion matrix and the most confused class pairs
///   confusion.png/.csv the confusion matrix, as counts and as fractions of each actual class
///   top_losses.png     the 16 images with the highest loss, with file, class, prediction
///   misclassified.csv  path, actual, predicted, probability and loss of every mistake
///
/// --tta (test-time augmentation) classifies every image twice, as it is and mirrored left
/// to right, and averages the two class probabilities: accuracy, loss and the report come
/// from the average. Every figure it gives says so ("tta": "horizontal_flip" in JSON, TTA
/// in the printed line and on the report's page).
///
/// Examples:
///   convkit evaluate runs/mnist-20261129-101500 --json
///   convkit evaluate runs/small-convnet-20261129-101500 --data cats_vs_dogs/test
///   convkit evaluate runs/small-convnet-20261129-101500 --report    # -> RUN/report-validation
///   convkit evaluate runs/mnist-20261129-101500 --report reports/mnist
///   convkit evaluate runs/small-convnet-20261129-101500 --tta --report
///
/// --report takes the next argument as OUT_DIR unless it starts with a dash, so give
/// RUN_DIR first. `convkit evaluate --report RUN_DIR` also works when RUN_DIR is a run
/// folder (the report then goes to RUN_DIR/report-<split>); otherwise it is refused as
/// lacking RUN_DIR.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EvaluateArgs {
    /// The run folder written by `convkit mnist` or `convkit train`.
    // Optional to clap only so that `--report RUN_DIR` can be read as intended: see
    // `run_and_report`.
    #[arg(value_name = "RUN_DIR", required_unless_present = "report")]
    run_dir: Option<PathBuf>,

    /// Data to evaluate on: for MNIST runs the folder of the four files; for image runs a
    /// folder of class sub-folders (or a data folder whose test/ is used). A relative DIR
    /// that is not a folder here is looked for in $CONVKIT_DATA.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Print one JSON object with keys accuracy, loss, count and tta (and, with --report,
    /// the report's folder).
    #[arg(long)]
    json: bool,

    /// Write an evaluation report into OUT_DIR (--report OUT_DIR or --report=OUT_DIR), or,
    /// with --report alone, into RUN_DIR/report-<split> (e.g. report-validation or
    /// report-test).
    #[arg(long, value_name = "OUT_DIR", num_args = 0..=1)]
    report: Option<Option<PathBuf>>,

    /// Test-time augmentation: average the class probabilities of each image and of its
    /// mirror image (flipped left to right), and measure that average. Often a little more
    /// accurate for a model trained with random flips (--augment); doubles the evaluation
    /// time; wrong for images a mirror changes (digits, text). The results record
    /// "tta": "horizontal_flip".
    #[arg(long)]
    tta: bool,
}

/// The augmentation `--tta` asks for.
pub fn tta_of(flag: bool) -> Tta {
    if flag {
        Tta::HorizontalFlip
    } else {
        Tta::None
    }
}

/// What a printed line of figures adds when they come from test-time augmentation:
/// `; TTA: horizontal flip`.
pub fn tta_suffix(tta: Tta) -> &'static str {
    match tta {
        Tta::None => "",
        Tta::HorizontalFlip => "; TTA: horizontal flip",
    }
}

/// The run folder and the report's folder (`None`: no report; `Some(None)`: the default
/// folder) from the arguments as clap read them. Clap gives `--report` the argument after
/// it, so `convkit evaluate --report RUN_DIR` arrives without RUN_DIR: when that argument
/// is a run folder it is RUN_DIR, with the report in its default folder; otherwise RUN_DIR
/// is missing, and the error says how to write the command.
fn run_and_report(
    run_dir: Option<PathBuf>,
    report: Option<Option<PathBuf>>,
) -> anyhow::Result<(PathBuf, Option<Option<PathBuf>>)> {
    match (run_dir, report) {
        (Some(run_dir), report) => Ok((run_dir, report)),
        (None, Some(Some(value))) if RunDir::at(&value).checkpoint().is_some() => {
            Ok((value, Some(None)))
        }
        (None, Some(Some(value))) => anyhow::bail!(
            "the run folder is missing: --report took `{}` as the folder to write the report \
             into. Give the run folder first: convkit evaluate RUN_DIR --report [OUT_DIR]",
            value.display()
        ),
        (None, _) => anyhow::bail!(
            "the run folder is missing: convkit evaluate RUN_DIR [--report [OUT_DIR]]"
        ),
    }
}

pub fn run(args: EvaluateArgs, device: &str, precision: Option<Precision>) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let (run_dir, report) = run_and_report(args.run_dir, args.report)?;
    let tta = tta_of(args.tta);
    let data = args.data.as_deref().map(convkit::data::locate_data_folder);
    let Some(out) = report else {
        let eval = evaluate_run(&run_dir, data.as_deref(), device, precision, tta)?;
        if args.json {
            println!("{}", serde_json::to_string(&eval)?);
        } else {
            println!(
                "Test accuracy: {:.4} (loss {:.4}, {} images{})",
                eval.accuracy,
                eval.loss,
                eval.count,
                tta_suffix(eval.tta)
            );
        }
        return Ok(());
    };
    let report = report_run(
        &run_dir,
        data.as_deref(),
        out.as_deref(),
        device,
        precision,
        tta,
    )?;
    let m = &report.metrics;
    if args.json {
        let summary = serde_json::json!({
            "accuracy": m.accuracy,
            "loss": m.loss,
            "count": m.count,
            "tta": m.tta,
            "report": report.dir,
        });
        println!("{summary}");
        return Ok(());
    }
    println!(
        "Test accuracy: {:.4} (loss {:.4}, {} images{})",
        m.accuracy,
        m.loss,
        m.count,
        tta_suffix(m.tta)
    );
    println!(
        "  {:<20} {:>9} {:>9} {:>9} {:>8}",
        "class", "precision", "recall", "f1", "support"
    );
    for s in m.per_class.iter().chain([&m.macro_avg, &m.weighted_avg]) {
        println!(
            "  {:<20} {:>9.4} {:>9.4} {:>9.4} {:>8}",
            s.class, s.precision, s.recall, s.f1, s.support
        );
    }
    if let Some(auc) = m.roc_auc {
        println!("  ROC AUC {auc:.4}");
    }
    if let Some(top5) = m.top5_accuracy {
        println!("  top-5 accuracy {top5:.4}");
    }
    if let Some(pair) = m.most_confused.first() {
        println!(
            "  most confused: {} predicted as {} ({} images)",
            pair.actual, pair.predicted, pair.count
        );
    }
    println!("Report: {}", report.dir.join("report.html").display());
    Ok(())
}
