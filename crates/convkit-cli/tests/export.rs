//! `convkit export`: every kind of model convkit trains, exported to ONNX through the binary
//! and checked by an independent runtime. onnx's checker must accept each file, and ONNX
//! Runtime, fed the pixels `convkit predict` decodes from real images (cats and dogs, MNIST
//! test digits written as PNG), must give the probabilities that `predict` gives, to 1e-4,
//! in one batch and image by image (the batch axis is dynamic).
//!
//! ONNX Runtime and onnx come from the Python of `$CONVKIT_PYTHON` (`cargo xtask` sets it);
//! without it the parity test is skipped, saying so, unless `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{convkit, data_root, json, models_root, run_err, run_ok};
use convkit::augment::{
    FlipMode, RandomContrastSpec, RandomCropSpec, RandomFlipSpec, RandomRotationSpec,
    RandomTranslationSpec, RandomZoomSpec,
};
use convkit::data::image_folder::{load_image, ImageDecoding};
use convkit::models::{
    mini_xception, mnist_convnet, small_convnet, transfer_model, BackboneArch, BackboneSpec,
    ScratchOptions, TransferOptions,
};
use convkit::models::{LayerSpec, Sequential};
use convkit::tch::{Device, Kind, Tensor};
use convkit::train::Tta;
use convkit::workflows::predict_images;
use convkit::Model;

/// Runs each case's file through onnx's checker and ONNX Runtime: the whole batch, then
/// each image alone. Prints one JSON array, a result per case.
const ONNX_RUNTIME_CHECK: &str = r#"
import json, sys
import numpy as np
import onnx
import onnxruntime as ort

results = []
for case in json.load(open(sys.argv[1])):
    model = onnx.load(case["model"])
    onnx.checker.check_model(model, full_check=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sess = ort.InferenceSession(case["model"], options, providers=["CPUExecutionProvider"])
    x = np.fromfile(case["input"], dtype="<f4").reshape(case["shape"])
    (batch,) = sess.run(None, {"image": x})
    single = [sess.run(None, {"image": x[i : i + 1]})[0][0].tolist() for i in range(len(x))]
    meta = sess.get_modelmeta()
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    results.append({
        "batch": batch.tolist(),
        "single": single,
        "metadata": meta.custom_metadata_map,
        "producer": meta.producer_name,
        "input": {"name": inp.name, "shape": inp.shape, "type": inp.type},
        "output": {"name": out.name, "shape": out.shape, "type": out.type},
        "opset": [[o.domain, o.version] for o in model.opset_import],
        "ir_version": model.ir_version,
    })
json.dump(results, sys.stdout)
"#;

/// The most the probabilities of the two runtimes may differ by.
const TOLERANCE: f64 = 1e-4;

/// The Python with onnx and onnxruntime, or `None` (skipped, or failed under `CI=true`).
fn python() -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("CONVKIT_PYTHON") {
        return Some(PathBuf::from(python));
    }
    let what = "CONVKIT_PYTHON is not set (run the tests through `cargo xtask test`)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}: the ONNX parity test needs onnx and onnxruntime");
    }
    eprintln!("skipped: {what}; the ONNX parity test needs onnx and onnxruntime");
    None
}

/// One kind of model to export, with the images it classifies.
struct Case {
    name: &'static str,
    spec: Sequential,
    images: Vec<PathBuf>,
    classes: Vec<String>,
    /// Statistics for its `BatchNormalization` layers from a few passes in training mode.
    train_batch_norm: bool,
}

/// `count` images of each class of the cats-vs-dogs validation split, in name order.
fn cats_and_dogs(data: &Path, count: usize) -> Vec<PathBuf> {
    ["cats", "dogs"]
        .iter()
        .flat_map(|class| {
            let dir = data.join("cats_vs_dogs/validation").join(class);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            files.truncate(count);
            files
        })
        .collect()
}

/// The first `count` MNIST test digits, written as PNG files into `dir`.
fn mnist_pngs(data: &Path, dir: &Path, count: i64) -> Vec<PathBuf> {
    let (_, test) = convkit::data::mnist::load_mnist_datasets(&data.join("mnist")).unwrap();
    (0..count)
        .map(|i| {
            let digit = test.images().get(i).reshape([-1]);
            let pixels = Vec::<u8>::try_from(&digit).unwrap();
            let path = dir.join(format!("digit-{i}.png"));
            image::GrayImage::from_raw(28, 28, pixels)
                .unwrap()
                .save(&path)
                .unwrap();
            path
        })
        .collect()
}

fn cats_dogs() -> Vec<String> {
    vec!["cats".into(), "dogs".into()]
}

fn cases(data: &Path, scratch: &Path) -> Vec<Case> {
    let chapter_augmentation: Vec<LayerSpec> = vec![
        RandomFlipSpec::new(FlipMode::Horizontal).into(),
        RandomRotationSpec::new(0.1).into(),
        RandomZoomSpec::new(0.2).into(),
        RandomTranslationSpec::new(0.1, 0.1).into(),
        RandomContrastSpec::new(0.2).into(),
    ];
    let small = ScratchOptions {
        dropout: Some(0.5),
        augmentation: chapter_augmentation,
        ..ScratchOptions::default()
    };
    let xception = ScratchOptions {
        augmentation: vec![
            RandomCropSpec::new(164, 164).into(),
            RandomFlipSpec::new(FlipMode::Horizontal).into(),
        ],
        ..ScratchOptions::default()
    };
    let transfer = |arch| transfer_model(&TransferOptions::new(arch));
    let mut fine_tuned = transfer(BackboneArch::EfficientnetLite0);
    if let LayerSpec::Backbone(backbone) = &mut fine_tuned.layers[0].spec {
        backbone.unfreeze_last(3).unwrap();
    }
    let imagenet = Sequential::new("mobilenet_v2", [3, 224, 224]).add(LayerSpec::Backbone(
        BackboneSpec::classifier(BackboneArch::MobilenetV2).unwrap(),
    ));
    let case = |name, spec, images, classes, train_batch_norm| Case {
        name,
        spec,
        images,
        classes,
        train_batch_norm,
    };
    vec![
        case(
            "mnist_convnet",
            mnist_convnet(),
            mnist_pngs(data, scratch, 4),
            (0..10).map(|d| d.to_string()).collect(),
            false,
        ),
        case(
            "small_convnet + augmentation + dropout",
            small_convnet(&small),
            cats_and_dogs(data, 2),
            cats_dogs(),
            false,
        ),
        case(
            "mini_xception + crop",
            mini_xception(&xception),
            cats_and_dogs(data, 2),
            cats_dogs(),
            true,
        ),
        case(
            "vgg16 + flatten/dense head",
            transfer(BackboneArch::Vgg16),
            cats_and_dogs(data, 1),
            cats_dogs(),
            false,
        ),
        case(
            "mobilenet_v2 + pooled head",
            transfer(BackboneArch::MobilenetV2),
            cats_and_dogs(data, 2),
            cats_dogs(),
            false,
        ),
        case(
            "efficientnet_lite0 (fine-tuned) + pooled head",
            fine_tuned,
            cats_and_dogs(data, 2),
            cats_dogs(),
            false,
        ),
        case(
            "mobilenet_v2 ImageNet classifier",
            imagenet,
            cats_and_dogs(data, 1),
            (0..1000).map(|i| format!("class {i}")).collect(),
            false,
        ),
    ]
}

/// The pixels `predict_images` feeds the model, as float32 `(N, C, H, W)`: decoded and
/// resized as the model records, gray as the luma of the colour image.
fn decoded_pixels(model: &Model, images: &[PathBuf]) -> Vec<f32> {
    let options = model.image_options(ImageDecoding::default());
    let (h, w) = (options.size.0 as usize, options.size.1 as usize);
    let channels = model.spec().input_shape[0] as usize;
    let mut values = Vec::with_capacity(images.len() * channels * h * w);
    for path in images {
        let rgb = load_image(path, &options).unwrap();
        if channels == 1 {
            values.extend(rgb.chunks_exact(3).map(|p| {
                (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64).round() as f32
            }));
        } else {
            for c in 0..3 {
                values.extend((0..h * w).map(|i| rgb[i * 3 + c] as f32));
            }
        }
    }
    values
}

/// Gives the batch norms of `model` trained-looking parameters: scales and shifts away
/// from 1 and 0, and moving statistics from a few passes over `images` in training mode.
fn train_batch_norms(model: &Model, images: &Tensor) {
    convkit::tch::no_grad(|| {
        for (name, var) in model.var_store().variables() {
            if !name.contains("batch_normalization") {
                continue;
            }
            let fresh = Tensor::rand(var.size().as_slice(), (Kind::Float, Device::Cpu));
            if name.ends_with(".weight") {
                var.shallow_clone().copy_(&(fresh + 0.5));
            } else if name.ends_with(".bias") {
                var.shallow_clone().copy_(&(fresh - 0.5));
            }
        }
        for _ in 0..6 {
            let _ = model.forward(images, true);
        }
    });
}

#[test]
fn every_model_kind_exports_and_matches_predict() {
    let models = require!(models_root());
    let data = require!(data_root());
    let python = require!(python());
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut checks = Vec::new();
    for (i, case) in cases(&data, dir.path()).into_iter().enumerate() {
        let run = dir.path().join(format!("run-{i}"));
        std::fs::create_dir_all(&run).unwrap();
        let mut model = Model::new(&case.spec, Device::Cpu, 7 + i as u64).unwrap();
        if let Some((_, backbone)) = model.backbone() {
            let weights = models.join(backbone.architecture.weights_file());
            model.load_pretrained(&weights).unwrap();
        }
        model.set_classes(case.classes.clone()).unwrap();
        model.set_decoding(ImageDecoding::default());
        let shape: Vec<i64> = std::iter::once(case.images.len() as i64)
            .chain(model.spec().input_shape.iter().copied())
            .collect();
        let pixels = decoded_pixels(&model, &case.images);
        if case.train_batch_norm {
            let batch = Tensor::from_slice(&pixels).view(shape.as_slice());
            train_batch_norms(&model, &batch);
        }
        model.save(&run.join("model.safetensors")).unwrap();

        let summary = json(&run_ok(
            convkit()
                .args(["export", "--device", "cpu", "--json"])
                .arg(&run),
        ));
        let onnx = run.join("model.onnx");
        assert_eq!(summary["path"], onnx.to_str().unwrap(), "{summary}");
        assert_eq!(summary["opset"], 17, "{summary}");

        let predictions =
            predict_images(&run, &case.images, 1, Device::Cpu, None, Tta::None).unwrap();
        let input = run.join("input.f32");
        let bytes: Vec<u8> = pixels.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&input, bytes).unwrap();
        checks.push((
            case,
            model.spec().output_activation(),
            predictions,
            onnx,
            input,
            shape,
        ));
    }

    let manifest: Vec<serde_json::Value> = checks
        .iter()
        .map(|(_, _, _, onnx, input, shape)| {
            serde_json::json!({"model": onnx, "input": input, "shape": shape})
        })
        .collect();
    let manifest_path = dir.path().join("cases.json");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let output = std::process::Command::new(&python)
        .args(["-c", ONNX_RUNTIME_CHECK])
        .arg(&manifest_path)
        .output()
        .expect("the Python of CONVKIT_PYTHON starts");
    assert!(
        output.status.success(),
        "onnx checker or ONNX Runtime failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();

    let mut failures = Vec::new();
    for ((case, activation, predictions, _, _, shape), result) in checks.iter().zip(&results) {
        let metadata = &result["metadata"];
        let classes: Vec<String> =
            serde_json::from_str(metadata["classes"].as_str().unwrap()).unwrap();
        assert_eq!(classes, case.classes, "{}", case.name);
        assert_eq!(
            metadata["input_size"],
            format!("{}x{}", shape[2], shape[3]),
            "{}",
            case.name
        );
        assert_eq!(metadata["channels"], shape[1].to_string(), "{}", case.name);
        assert_eq!(metadata["input_range"], "0..255", "{}", case.name);
        assert_eq!(
            metadata["decoding"], r#"{"crop_to_aspect_ratio":false,"antialias":false}"#,
            "{}",
            case.name
        );
        assert!(
            metadata["producer"]
                .as_str()
                .unwrap()
                .starts_with("convkit "),
            "{metadata}"
        );
        assert_eq!(result["producer"], "convkit");
        assert_eq!(result["opset"], serde_json::json!([["", 17]]));
        assert_eq!(result["input"]["name"], "image");
        assert_eq!(result["input"]["type"], "tensor(float)");
        assert_eq!(
            result["input"]["shape"],
            serde_json::json!(["batch", shape[1], shape[2], shape[3]]),
            "{}",
            case.name
        );
        assert_eq!(result["output"]["name"], "probabilities");
        assert_eq!(result["output"]["shape"][0], "batch");

        let sigmoid = *activation == convkit::nn::Activation::Sigmoid;
        assert_eq!(
            metadata["output"],
            if sigmoid { "sigmoid" } else { "softmax" },
            "{}",
            case.name
        );
        let mut max_diff = 0f64;
        let (mut low, mut high) = (f64::MAX, f64::MIN);
        for key in ["batch", "single"] {
            let rows = result[key].as_array().unwrap();
            assert_eq!(rows.len(), predictions.len(), "{} {key}", case.name);
            for (row, prediction) in rows.iter().zip(predictions) {
                let ours: Vec<f64> = row
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                let theirs = if sigmoid {
                    vec![prediction.probabilities[1]]
                } else {
                    prediction.probabilities.clone()
                };
                assert_eq!(ours.len(), theirs.len(), "{} {key}", case.name);
                for (a, b) in ours.iter().zip(&theirs) {
                    max_diff = max_diff.max((a - b).abs());
                    low = low.min(*b);
                    high = high.max(*b);
                }
            }
        }
        println!(
            "export parity: {:<48} max |difference| {max_diff:.2e} over {} images \
             (batch of {} and one by one), probabilities in [{low:.4}, {high:.4}]",
            case.name,
            predictions.len(),
            predictions.len()
        );
        if max_diff > TOLERANCE {
            failures.push(format!("{}: {max_diff:e}", case.name));
        }
    }
    println!(
        "export parity: {} kinds in {:.1} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "ONNX Runtime differs from predict by more than {TOLERANCE}: {failures:?}"
    );
}

#[test]
fn export_writes_where_asked_and_explains_a_wrong_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    Model::new(&mnist_convnet(), Device::Cpu, 0)
        .unwrap()
        .save(&run.join("model.safetensors"))
        .unwrap();
    let out = dir.path().join("elsewhere.onnx");
    let output = run_ok(
        convkit()
            .args(["export", "--device", "cpu", "--format", "onnx"])
            .arg(&run)
            .arg("--out")
            .arg(&out),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("elsewhere.onnx") && text.contains("opset 17"),
        "{text}"
    );
    assert!(text.contains("(batch, 1, 28, 28)"), "{text}");
    assert!(out.is_file() && !run.join("model.onnx").exists());

    let err = run_err(convkit().args(["export"]).arg(dir.path()));
    assert!(err.contains("not a convkit run folder"), "{err}");
    let help = run_ok(convkit().args(["export", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains(r#"sess.run(None, {"image": x})"#), "{help}");
}
