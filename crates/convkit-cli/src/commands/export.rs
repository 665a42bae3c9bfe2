//! `convkit export RUN_DIR`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use convkit::device::parse_device;
use convkit::workflows::export_run;

/// The file formats `convkit export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// ONNX, opset 17: runs in ONNX Runtime, OpenVINO, TensorRT, browsers (onnxruntime-web).
    Onnx,
}

/// Export a trained run's model for serving without convkit: an ONNX file.
///
/// Uses the run's best checkpoint when it kept one (the one evaluate and predict use) and
/// writes RUN_DIR/model.onnx unless --out says otherwise. The file holds the whole inference
/// computation with its float32 weights, opset 17:
///
///   input   image          float32 (batch, channels, height, width), pixel values 0..255,
///                          RGB (1 gray channel for MNIST), any batch size; the model's
///                          preprocessing (rescaling, ImageNet mean/std) is inside
///   output  probabilities  (batch, classes) after softmax, or (batch, 1) after sigmoid:
///                          the probability of the second class; what `convkit predict`
///                          computes
///   metadata               classes (JSON array), input_size (HxW), channels,
///                          input_range (0..255), output (softmax|sigmoid), producer,
///                          decoding (how training resized: crop_to_aspect_ratio, antialias)
///
/// Dropout and augmentation layers are left out (a random crop becomes its centre crop);
/// batch norm uses its moving statistics. Resize images to input_size (bilinear) before
/// feeding them, as training did.
///
/// Serving it with ONNX Runtime in Python (pip install onnxruntime pillow numpy):
///
///   import json, numpy as np, onnxruntime as ort
///   from PIL import Image
///   sess = ort.InferenceSession("model.onnx")
///   meta = sess.get_modelmeta().custom_metadata_map
///   h, w = map(int, meta["input_size"].split("x"))
///   mode = "L" if meta["channels"] == "1" else "RGB"
///   img = Image.open("cat.jpg").convert(mode).resize((w, h), Image.BILINEAR)
///   x = np.asarray(img, dtype=np.float32).reshape(h, w, -1).transpose(2, 0, 1)[None]
///   (probs,) = sess.run(None, {"image": x})  # (1, classes), or (1, 1) after a sigmoid
///   print(json.loads(meta["classes"]), probs[0])
///
/// Examples:
///   convkit export runs/small-convnet-20261129-101500
///   convkit export runs/mnist-20261129-101500 --out mnist.onnx --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExportArgs {
    /// The run folder written by `convkit mnist`, `convkit train` or `convkit finetune`.
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,

    /// The file format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Onnx)]
    format: ExportFormat,

    /// Where to write the file (default: RUN_DIR/model.onnx).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,

    /// Print one JSON object describing the file (path, opset, shapes, classes, sizes).
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExportArgs, device: &str) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let summary = match args.format {
        ExportFormat::Onnx => export_run(&args.run_dir, args.out.as_deref(), device)?,
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    let shape = |dims: &[serde_json::Value]| {
        dims.iter()
            .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "wrote {} (ONNX opset {}, {} nodes, {} parameters, {:.1} MB)",
        summary.path.display(),
        summary.opset,
        summary.nodes,
        summary.parameters,
        summary.bytes as f64 / 1e6
    );
    println!(
        "  input  image          float32 ({}), pixel values 0..255",
        shape(&summary.input_shape)
    );
    println!(
        "  output probabilities  float32 ({}), after {}; classes: {}",
        shape(&summary.output_shape),
        summary.output,
        summary.classes.join(", ")
    );
    Ok(())
}
