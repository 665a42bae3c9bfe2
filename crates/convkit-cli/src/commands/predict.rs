//! `convkit predict`.

use std::path::PathBuf;

use clap::Args;
use convkit::device::parse_device;
use convkit::models::BackboneArch;
use convkit::runtime::Precision;
use convkit::workflows::{predict_imagenet, predict_images};

/// Classify images: with a trained run, or with an ImageNet network.
///
/// With a run folder, uses its best checkpoint; images are decoded and resized as in
/// training. With --backbone, the first argument is an image too: the network's ImageNet
/// classifier gives its --top classes (images resized to 256 on the shorter side and
/// centre-cropped to 224, as torchvision evaluates).
///
/// Examples:
///   convkit predict runs/small-convnet-20261129-101500 cat.jpg dog.png --json
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

    /// How many classes to show per image.
    #[arg(long, default_value_t = 5, value_name = "K", help_heading = "ImageNet")]
    top: usize,

    /// Print one JSON object per image.
    #[arg(long)]
    json: bool,
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
            precision.unwrap_or_default(),
        )?;
        for prediction in predictions {
            if args.json {
                println!("{}", serde_json::to_string(&prediction)?);
                continue;
            }
            println!("{}:", prediction.image.display());
            for class in &prediction.top {
                println!(
                    "  {:.4}  {} ({})",
                    class.probability, class.label, class.index
                );
            }
        }
        return Ok(());
    }
    let (run_dir, images) = args.inputs.split_first().expect("clap requires one input");
    anyhow::ensure!(
        !images.is_empty(),
        "give images to classify after the run folder"
    );
    for prediction in predict_images(run_dir, images, device, precision)? {
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
