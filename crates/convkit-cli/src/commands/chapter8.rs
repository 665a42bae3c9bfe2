//! `convkit chapter8`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::report::chapter8_page::{format_duration, WorkflowResult};
use convkit::runtime::Precision;
use convkit::workflows::chapter8::{Action, Chapter8Event};
use convkit::workflows::run_spec::Recipe;
use convkit::workflows::{run_chapter8, Chapter8Job};

/// Run the whole chapter and set convkit's accuracy beside the book's on one page.
///
/// Runs the chapter's six workflows in order, then writes one page that sets convkit's
/// accuracy beside the book's.
///
/// What runs, each in its own run folder under OUT (the settings are those of
/// `convkit mnist`, `convkit train` and `convkit finetune` by default):
///   1  mnist            the MNIST convnet: 5 epochs, batches of 64, RMSprop
///   2  scratch          cats vs dogs from scratch: the small convnet, 180x180, 30 epochs,
///                       the epoch with the lowest validation loss kept
///   3  augmentation     the same with flip, rotation 0.1, zoom 0.2 and dropout 0.5,
///                       100 epochs
///   4  vgg16-features   VGG16's ImageNet base run once per image (features cached), the
///                       head Dense 256, Dropout, Dense 1 trained on them for 20 epochs
///   5  vgg16-frozen     augmentation, the frozen VGG16 base and the head, end to end,
///                       50 epochs
///   6  vgg16-finetune   run 5's best model with block5 unfrozen, RMSprop at 1e-5,
///                       30 epochs
///
/// Then OUT/chapter8.html: one self-contained page (images inlined) with, per workflow,
/// the accuracy and loss of the kept checkpoint beside the book's figure, the epochs, the
/// wall time, training images per second, the settings and the training curves, and the
/// chapter's figure 8.10 (one image augmented nine times). OUT/chapter8.json holds the
/// same numbers. Both are rewritten after every workflow.
///
/// Data: MNIST is found as `convkit mnist` finds it (--data DIR or DIR/mnist, else
/// $CONVKIT_DATA/mnist, ./data/mnist, the cache; downloaded when missing). Cats vs dogs is
/// DATA/cats_vs_dogs with train/ and validation/ (DATA: --data, else $CONVKIT_DATA, else
/// ./data). The data shipped with convkit has no test split, so the page gives validation
/// accuracy for cats vs dogs, and says so. VGG16's weights come from $CONVKIT_MODELS or
/// the cache, as for `convkit train --base vgg16`.
///
/// How long (BENCHMARKS.md): on a 2-core Intel Xeon with AMX, in bf16 (the default there),
/// the book's recipe took 4 h 14 min (1 thread, partly loaded; augmentation 1 h 45 min,
/// VGG16 frozen and fine-tuning 2 h) and --recipe fast 27 min with 2 threads. In fp32, or
/// on a CPU without bf16 units, it takes several times longer: the book's recipe took
/// about 14 hours on a 2-core AMD EPYC Zen 3. A CUDA GPU (--device cuda) should be far
/// faster (not measured yet).
///
/// Stopping and continuing: Ctrl-C stops at the next batch and prints the command that
/// continues: the same command again. Finished workflows are kept (their run folders are
/// read, nothing retrains), the interrupted one resumes from its last complete epoch, and
/// the rest follow. A run folder holding a run with other settings is refused.
///
/// --tta measures each cats-vs-dogs workflow's kept model a second time with test-time
/// augmentation (each image and its mirror image, class probabilities averaged, as
/// `convkit evaluate --tta`), once it has finished; the page and the table give both
/// figures, the plain one first. MNIST is not measured so: a mirror changes digits. A kept
/// workflow's earlier measurement is reused, so adding --tta to a finished chapter only
/// evaluates.
///
/// --quick is a smoke test of the same path in a few minutes (made for CI): MNIST for
/// 1 epoch on 6,000 images, cats vs dogs on 100 + 100 training and 50 + 50 validation
/// images (links in OUT/quick-data), 90x90 images from scratch and 64x64 through VGG16,
/// 1-2 epochs each. Its accuracies mean nothing; the page and the terminal say so.
///
/// Examples:
///   convkit chapter8 --quick                  # a few minutes: runs/chapter8-quick
///   convkit --threads 2 chapter8              # many hours on a CPU: runs/chapter8
///   convkit --device cuda chapter8 --out runs/ch8-gpu --data ~/datasets
///   convkit chapter8 --recipe fast --tta      # runs/chapter8-fast, with flip TTA figures
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct Chapter8Args {
    /// Folder for the six run folders, chapter8.html and chapter8.json (default:
    /// runs/chapter8, or runs/chapter8-quick with --quick).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// A smoke test in minutes: small subsets, small images, 1-2 epochs per workflow. Its
    /// accuracies mean nothing.
    #[arg(long)]
    quick: bool,

    /// How every workflow is fitted: book (the chapter's settings: RMSprop at a constant
    /// rate, 5 to 100 epochs) or fast (convkit's: AdamW, one-cycle, label smoothing and a
    /// weight average, with each row's epochs cut to what reaches the book's accuracy;
    /// runs/chapter8-fast unless --out says otherwise). The models and augmentation are the
    /// chapter's either way.
    #[arg(long, default_value_t = Recipe::Book, value_parser = super::parse_setting::<Recipe>)]
    recipe: Recipe,

    /// Also measure each cats-vs-dogs workflow's kept model with test-time augmentation by
    /// horizontal flip (its figure beside the plain one; about twice an evaluation's time).
    #[arg(long)]
    tta: bool,

    /// A folder holding mnist/ and cats_vs_dogs/ (default: $CONVKIT_DATA, then ./data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// No progress bars, no line per workflow: only the summary at the end.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: Chapter8Args, device: &str, precision: Option<Precision>) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let job = Chapter8Job {
        out_dir: args.out.clone().unwrap_or_else(|| {
            let dir = Chapter8Job::default_out_dir(args.quick);
            match args.recipe {
                Recipe::Book => dir,
                Recipe::Fast => PathBuf::from(format!("{}-fast", dir.display())),
            }
        }),
        quick: args.quick,
        data_dir: args.data.clone(),
        precision,
        progress: !args.quiet,
        recipe: args.recipe,
        flip_tta: args.tta,
    };
    let label = if job.quick { "quick " } else { "" };
    if !args.quiet {
        if job.quick {
            eprintln!(
                "convkit chapter8 --quick: a SMOKE TEST of the chapter's six workflows on small \
                 subsets with 1-2 epochs each; its accuracies mean nothing."
            );
        } else if job.recipe == Recipe::Fast {
            eprintln!(
                "convkit chapter8 --recipe fast: the chapter's six workflows, fitted with \
                 convkit's fast recipe (Ctrl-C stops, the same command continues)."
            );
        } else {
            eprintln!(
                "convkit chapter8: the chapter's six workflows with its settings (many hours \
                 on a CPU; Ctrl-C stops, the same command continues)."
            );
        }
    }
    let mut current: Option<String> = None;
    let result = run_chapter8(&job, device, &mut |event| match event {
        Chapter8Event::Start {
            index,
            total,
            name,
            title,
            action,
            run_dir,
        } => {
            current = Some(name.to_owned());
            if !args.quiet {
                let what = match action {
                    Action::Train => "training",
                    Action::Resume => "resuming the interrupted run",
                    Action::Keep => "finished earlier, kept",
                };
                eprintln!(
                    "[{label}{index}/{total}] {name} ({title}): {what} in {}",
                    run_dir.display()
                );
            }
        }
        Chapter8Event::Done {
            index,
            total,
            result,
        } => {
            if !args.quiet {
                eprintln!(
                    "[{label}{index}/{total}] {} done: {} (book: {}), {}",
                    result.name,
                    accuracy(result),
                    result.book.text,
                    timing(result)
                );
            }
        }
    });
    let report = match result {
        Ok(report) => report,
        Err(err @ convkit::Error::Interrupted { .. }) => {
            let mut command = format!("convkit chapter8 --out {}", job.out_dir.display());
            if job.quick {
                command.push_str(" --quick");
            }
            if job.recipe != Recipe::Book {
                command.push_str(&format!(" --recipe {}", job.recipe));
            }
            if job.flip_tta {
                command.push_str(" --tta");
            }
            if let Some(data) = &job.data_dir {
                command.push_str(&format!(" --data {}", data.display()));
            }
            // The workflows still to come must train as the finished ones did.
            if let Some(precision) = job.precision {
                command.push_str(&format!(" --precision {precision}"));
            }
            command.push_str(&super::same_threads());
            return Err(super::Interrupted(format!(
                "{err} (workflow {}).\nThe finished workflows are kept; continue the chapter \
                 with:\n  {command}",
                current.as_deref().unwrap_or("?")
            ))
            .into());
        }
        Err(err) => {
            let context = match &current {
                Some(name) => format!("chapter8: workflow `{name}` failed"),
                None => "chapter8 failed".to_owned(),
            };
            return Err(anyhow::Error::new(err).context(context));
        }
    };
    let summary = &report.summary;
    if summary.quick {
        println!(
            "QUICK RUN (--quick): a smoke test on small subsets; these accuracies mean nothing."
        );
    } else {
        println!("Chapter 8, full run:");
    }
    let width = if job.flip_tta { 31 } else { 18 };
    println!(
        "{:<2} {:<16} {:<width$} {:<34} {:>7} {:>12}",
        "#", "workflow", "convkit", "the book", "epochs", "wall time"
    );
    for (i, w) in summary.workflows.iter().enumerate() {
        let epochs = format!(
            "{}/{}",
            w.epochs.map_or("-".into(), |e| e.to_string()),
            w.epochs_planned
        );
        println!(
            "{:<2} {:<16} {:<width$} {:<34} {:>7} {:>12}",
            i + 1,
            w.name,
            accuracy(w),
            w.book.text,
            epochs,
            w.wall_seconds.map_or("-".into(), format_duration)
        );
    }
    println!(
        "Machine: {}, {} threads, {}",
        summary.machine.cpu, summary.machine.threads, summary.machine.device
    );
    println!(
        "Page: {} (numbers in {})",
        report.page.display(),
        report.json.display()
    );
    Ok(())
}

/// `99.12% test`, `98.30% validation (TTA 98.80%)`, or `-` before the workflow has a
/// number.
fn accuracy(w: &WorkflowResult) -> String {
    let Some(plain) = w.accuracy else {
        return "-".into();
    };
    let plain = format!("{:.2}% {}", 100.0 * plain, w.split);
    match w.flip_tta {
        Some(tta) => format!("{plain} (TTA {:.2}%)", 100.0 * tta.accuracy),
        None => plain,
    }
}

/// `epochs: 5 (kept: epoch 3), 1 min 35 s`.
fn timing(w: &WorkflowResult) -> String {
    format!(
        "epochs: {} (kept: {}), {}",
        w.epochs.map_or("-".into(), |e| e.to_string()),
        w.kept_epoch.map_or("-".into(), |e| format!("epoch {e}")),
        w.wall_seconds.map_or("-".into(), format_duration)
    )
}
