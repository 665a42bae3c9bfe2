//! `convkit predict RUN_DIR IMAGE...`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::workflows::predict_images;

/// Classify images with a trained run: the class and its probability per image.
///
/// Uses the run's best checkpoint; images are decoded and resized as in training.
///
/// Example: `convkit predict runs/small-convnet-20261129-101500 cat.jpg dog.png --json`
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The run folder written by `convkit train` (or `convkit mnist`).
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,

    /// Images to classify.
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<PathBuf>,

    /// Print one JSON object per image (image, class, probability, probabilities).
    #[arg(long)]
    json: bool,
}

pub fn run(args: PredictArgs, device: &str) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    for prediction in predict_images(&args.run_dir, &args.images, device)? {
        if args.json {
            println!("{}", serde_json::to_string(&prediction)?);
        } else {
            println!(
                "{}: {} ({:.4})",
                prediction.image.display(),
                prediction.class,
                prediction.probability
            );
        }
    }
    Ok(())
}
