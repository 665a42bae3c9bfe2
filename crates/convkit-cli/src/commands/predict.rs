//! `convkit predict`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::models::BackboneArch;
use convkit::runtime::Precision;
use convkit::workflows::{collect_images, predict_imagenet, predict_images_with, Prediction};

/// Classify images: with a trained run, or with an ImageNet network.
///
/// With a run folder, uses its best checkpoint; images are decoded and resized as in
/// training. Give image files, or folders: every image below a folder is classified
/// (recursively), 64 at a time. Prints one line per image: its path, then its --top
/// classes with their probabilities. --csv writes one row per image: path, class,
/// probability, then the --top classes with their probabilities.
///
/// With --backbone, the first argument is an image too: the network's ImageNet
/// classifier gives its --top classes (images resized to 256 on the shorter side and
/// centre-cropped to 224, as torchvision evaluates).
///
/// --tta averages the class probabilities of each image and of its mirror image (flipped
/// left to right); each --json object then has "tta": "horizontal_flip".
///
/// Examples:
///   convkit predict runs/small-convnet-20261129-101500 cat.jpg dog.png --json
///   convkit predict runs/small-convnet-20261129-101500 photos/ --csv predictions.csv
///   convkit predict runs/small-convnet-20261129-101500 photos/ --tta --csv predictions.csv
///   convkit predict --backbone mobilenet_v2 cat.jpg --top 5
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PredictArgs {
    /// The run folder written by `convkit train` (or `convkit mnist`), then the images; only
    /// images with --backbone.
    #[arg(value_name = "RUN_DIR|IMAGE", required = true)]
    inputs: Vec<PathBuf>,

    /// An ImageNet classifier instead of a run: mobilenet_v2 or efficientnet_lite0.
    #[arg(long, value_name = "NAME", help_heading = "ImageNet")]
    backbone: Option<String>,

    /// Its weights, safetensors or PyTorch .pth (default: $CONVKIT_MODELS, then the cache).
    #[arg(
        long,
        value_name = "PATH",
        requires = "backbone",
        help_heading = "ImageNet"
    )]
    weights: Option<PathBuf>,

    /// The class names file (default: imagenet_classes.tsv in $CONVKIT_MODELS).
    #[arg(
        long,
        value_name = "TSV",
        requires = "backbone",
        help_heading = "ImageNet"
    )]
    classes: Option<PathBuf>,

    /// How many classes to keep per image, most probable first (at most the model's
    /// number of classes).
    #[arg(long, default_value_t = 5, value_name = "K")]
    top: usize,

    /// Print one JSON object per image.
    #[arg(long)]
    json: bool,

    /// Write the predictions to this CSV file (written whole, or not at all): path, class,
    /// probability, then top1_class, top1_probability, ... for --top classes.
    #[arg(long, value_name = "OUT.csv")]
    csv: Option<PathBuf>,

    /// Test-time augmentation: average the class probabilities of each image and of its
    /// mirror image (flipped left to right). Often a little steadier for a model trained
    /// with random flips (--augment); doubles the prediction time; wrong for images a
    /// mirror changes (digits, text). Runs only, not --backbone.
    #[arg(long, conflicts_with = "backbone")]
    tta: bool,
}

pub fn run(args: PredictArgs, device: &str, precision: Option<Precision>) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    if let Some(name) = &args.backbone {
        let arch = BackboneArch::from_name(name)?;
        let predictions = predict_imagenet(
            arch,
            args.weights.as_deref(),
            args.classes.as_deref(),
            &args.inputs,
            args.top,
            device,
            precision.unwrap_or(Precision::Auto),
        )?;
        let out = StdoutLines::new(true);
        for prediction in predictions {
            if args.json {
                out.line(&serde_json::to_string(&prediction)?);
                continue;
            }
            out.line(&format!("{}:", prediction.image.display()));
            for class in &prediction.top {
                out.line(&format!(
                    "  {:.4}  {} ({})",
                    class.probability, class.label, class.index
                ));
            }
        }
        return Ok(());
    }
    let (run_dir, inputs) = args.inputs.split_first().expect("clap requires one input");
    anyhow::ensure!(
        !inputs.is_empty(),
        "give images (or folders of images) to classify after the run folder"
    );
    let images = collect_images(inputs)?;
    let (top, tta) = (args.top, super::evaluate::tta_of(args.tta));
    // Without --csv, a closed stdout (`| head`) ends the command: nothing else is wanted.
    let out = StdoutLines::new(args.csv.is_none());
    let print = |batch: &[Prediction]| -> convkit::Result<()> {
        for prediction in batch {
            if args.json {
                out.line(&serde_json::to_string(prediction).expect("predictions serialise"));
            } else {
                out.line(&text_line(prediction));
            }
        }
        Ok(())
    };
    let Some(csv_path) = &args.csv else {
        predict_images_with(run_dir, &images, top, device, precision, tta, print)?;
        return Ok(());
    };
    let bar = indicatif::ProgressBar::new(images.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "predict {bar:30} {pos}/{len} images, {per_sec}, eta {eta}",
        )
        .expect("a valid template"),
    );
    let mut written = 0;
    convkit::atomic_file::write_atomic_with(csv_path, |tmp| {
        let mut out = csv::Writer::from_path(tmp).map_err(|e| csv_error(tmp, e))?;
        let mut header_written = false;
        predict_images_with(run_dir, &images, top, device, precision, tta, |batch| {
            if !header_written {
                let mut header = vec!["path".to_owned(), "class".into(), "probability".into()];
                for k in 1..=batch[0].top.len() {
                    header.push(format!("top{k}_class"));
                    header.push(format!("top{k}_probability"));
                }
                out.write_record(&header).map_err(|e| csv_error(tmp, e))?;
                header_written = true;
            }
            for prediction in batch {
                let mut row = vec![
                    prediction.image.display().to_string(),
                    prediction.class.clone(),
                    format!("{:.6}", prediction.probability),
                ];
                for (class, probability) in &prediction.top {
                    row.push(class.clone());
                    row.push(format!("{probability:.6}"));
                }
                out.write_record(&row).map_err(|e| csv_error(tmp, e))?;
            }
            written += batch.len();
            bar.inc(batch.len() as u64);
            if args.json {
                print(batch)?;
            }
            Ok(())
        })?;
        out.flush().map_err(|e| convkit::Error::io(tmp, e))
    })?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {written} predictions to {}{}",
        csv_path.display(),
        match tta {
            convkit::train::Tta::None => "",
            _ => " (TTA: horizontal flip)",
        }
    );
    Ok(())
}

/// One line per image: its path, then its --top classes, most probable first, each with
/// its probability: `cat.jpg: cats (0.9876), dogs (0.0124)`.
fn text_line(prediction: &Prediction) -> String {
    let classes: Vec<String> = prediction
        .top
        .iter()
        .map(|(class, probability)| format!("{class} ({probability:.4})"))
        .collect();
    format!("{}: {}", prediction.image.display(), classes.join(", "))
}

/// Standard output, line by line, for a reader that may stop early (`convkit predict ... |
/// head`): once the pipe is closed, the command exits quietly (`exit_when_closed`) or goes
/// on without printing (while it writes a CSV file, which must still be finished).
struct StdoutLines {
    exit_when_closed: bool,
    closed: std::cell::Cell<bool>,
}

impl StdoutLines {
    fn new(exit_when_closed: bool) -> Self {
        StdoutLines {
            exit_when_closed,
            closed: std::cell::Cell::new(false),
        }
    }

    fn line(&self, text: &str) {
        use std::io::Write;
        if self.closed.get() {
            return;
        }
        if let Err(e) = writeln!(std::io::stdout().lock(), "{text}") {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("Error: cannot print to standard output: {e}");
                std::process::exit(1);
            }
            if self.exit_when_closed {
                std::process::exit(0);
            }
            self.closed.set(true);
        }
    }
}

fn csv_error(path: &std::path::Path, e: csv::Error) -> convkit::Error {
    convkit::Error::invalid_data(path, format!("cannot write CSV: {e}"))
}
