//! Numeric checks of the pretrained backbones against the values in
//! `shared/models/MANIFEST.md`, computed there with torchvision and PyTorch: outputs for an
//! all-zero input, LPIPS distances through VGG16, and the top classes of two photos.
//!
//! The weights are found through `$CONVKIT_MODELS` (CI sets it) or `../shared/models`
//! beside the repository; without them the tests say so and pass, except under `CI=true`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use convkit::models::backbone::BackboneNetwork;
use convkit::models::backbone::Preprocessing;
use convkit::models::pretrained::{load_backbone_weights, read_checkpoint};
use convkit::models::vgg16::Vgg16;
use convkit::models::{efficientnet_lite0, mobilenet_v2};
use convkit::models::{BackboneArch, BackboneSpec};
use convkit::nn::Layer;
use convkit::runtime::Precision;
use convkit::workflows::imagenet_predict::{classify_imagenet, imagenet_classifier};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn shared(env: &str, sub: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared")
            .join(sub)
    });
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} not found: set {env}", dir.display());
    } else {
        eprintln!("skipped: {} not found (set {env})", dir.display());
        None
    }
}

fn models() -> Option<PathBuf> {
    shared("CONVKIT_MODELS", "models")
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tolerance: f64) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tolerance, "got {got:?}, want {want:?}");
    }
}

fn loaded<T>(
    arch: BackboneArch,
    include_top: bool,
    file: &Path,
    build: impl FnOnce(&VarStore) -> T,
) -> T {
    let mut vs = VarStore::new(Device::Cpu);
    let net = build(&vs);
    let spec = BackboneSpec {
        include_top,
        ..BackboneSpec::frozen_base(arch)
    };
    load_backbone_weights(&mut vs, "", &spec, file).unwrap();
    net
}

#[test]
fn vgg16_zero_input_matches_torchvision() {
    let Some(models) = models() else { return };
    let file = models.join(BackboneArch::Vgg16.weights_file());
    let net = loaded(BackboneArch::Vgg16, false, &file, |vs| {
        Vgg16::new(&vs.root()).unwrap()
    });
    let pool5 = tch::no_grad(|| {
        net.forward(
            &Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)),
            false,
        )
    });
    assert_eq!(pool5.size(), [1, 512, 7, 7]);
    assert_close(
        &[pool5.sum(Kind::Double).double_value(&[])],
        &[619.5168],
        2e-3,
    );
}

/// LPIPS (net-lin, VGG, v0.1) on the three 64x64 PNGs of `lpips_check/`: unit-normalised
/// block outputs, squared differences, the file's 1x1 "lin" weights, spatial mean, sum.
#[test]
fn vgg16_lpips_matches_the_reference() {
    let Some(models) = models() else { return };
    let file = models.join(BackboneArch::Vgg16.weights_file());
    let net = loaded(BackboneArch::Vgg16, false, &file, |vs| {
        Vgg16::new(&vs.root()).unwrap()
    });
    let tensors: BTreeMap<String, Tensor> = read_checkpoint(&file).unwrap().into_iter().collect();
    let check = file.parent().unwrap().join("lpips_check");
    let image = |name: &str| {
        let img = image::open(check.join(name)).unwrap().into_rgb8();
        let (w, h) = img.dimensions();
        let bytes = Tensor::from_slice(img.as_raw())
            .view([1, h as i64, w as i64, 3])
            .permute([0, 3, 1, 2]);
        // LPIPS maps pixels to [-1, 1] and shifts and scales them: the same as ImageNet's
        // mean and std on [0, 1]
        tch::no_grad(|| net.block_outputs(&Preprocessing::ImagenetMeanStd.apply(&bytes)))
    };
    let unit = |t: &Tensor| t / (t.square().sum_dim_intlist(1, true, Kind::Float).sqrt() + 1e-10);
    let lpips = |a: &[Tensor], b: &[Tensor]| -> f64 {
        a.iter()
            .zip(b)
            .enumerate()
            .map(|(k, (fa, fb))| {
                let lin = tensors[&format!("NetLinLayer_{k}.Conv_0.kernel")].permute([3, 2, 0, 1]);
                let d = (unit(fa) - unit(fb)).square();
                d.conv2d(&lin, None::<&Tensor>, [1, 1], [0, 0], [1, 1], 1)
                    .mean(Kind::Double)
                    .double_value(&[])
            })
            .sum()
    };
    let (reference, p0, p1) = (image("ex_ref.png"), image("ex_p0.png"), image("ex_p1.png"));
    assert_close(
        &[lpips(&reference, &p0), lpips(&reference, &p1)],
        &[0.5686, 0.4217],
        5e-4,
    );
}

#[test]
fn mobilenet_v2_zero_input_matches_torchvision_from_both_files() {
    let Some(models) = models() else { return };
    let folder = models.join("mobilenet_v2_torchvision");
    for file in ["mobilenet_v2.safetensors", "mobilenet_v2-b0353104.pth"] {
        let net = loaded(BackboneArch::MobilenetV2, true, &folder.join(file), |vs| {
            mobilenet_v2::NETWORK.build(&vs.root(), true).unwrap()
        });
        let logits = tch::no_grad(|| {
            net.forward(
                &Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)),
                false,
            )
        });
        assert_close(
            &values(&logits.narrow(1, 0, 5)),
            &[-0.2259, 0.5897, -0.1021, -0.0379, 0.0679],
            2e-4,
        );
        assert_eq!(logits.argmax(1, false).int64_value(&[0]), 111, "{file}");
        assert_close(&[logits.max().double_value(&[])], &[3.4371], 2e-4);
    }
}

#[test]
fn efficientnet_lite0_zero_input_matches_the_reference() {
    let Some(models) = models() else { return };
    let file = models.join(BackboneArch::EfficientnetLite0.weights_file());
    let net = loaded(BackboneArch::EfficientnetLite0, true, &file, |vs| {
        efficientnet_lite0::NETWORK.build(&vs.root(), true).unwrap()
    });
    let logits = tch::no_grad(|| {
        net.forward(
            &Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)),
            false,
        )
    });
    assert_close(
        &values(&logits.narrow(1, 0, 5)),
        &[0.0326, -0.0157, 0.0050, 0.0577, 0.0594],
        2e-4,
    );
    assert_eq!(logits.argmax(1, false).int64_value(&[0]), 649);
    assert_close(&[logits.max().double_value(&[])], &[0.1166], 2e-4);
}

/// The MANIFEST's top-1 classes of two validation photos (PIL resized them there; the
/// probabilities move a little with another resizer, the winner does not).
#[test]
fn photos_get_the_reference_top_class() {
    let (Some(models), Some(data)) = (models(), shared("CONVKIT_DATA", "data")) else {
        return;
    };
    let classes =
        convkit::models::imagenet::read_imagenet_classes(&models.join("imagenet_classes.tsv"))
            .unwrap();
    let photos = vec![
        data.join("cats_vs_dogs/validation/cats/cat.2000.jpg"),
        data.join("cats_vs_dogs/validation/dogs/dog.2001.jpg"),
    ];
    let cases = [
        (
            BackboneArch::MobilenetV2,
            [
                ("Egyptian cat", 0.439),
                ("American Staffordshire terrier", 0.464),
            ],
        ),
        (
            BackboneArch::EfficientnetLite0,
            [("Egyptian cat", 0.235), ("Labrador retriever", 0.697)],
        ),
    ];
    // bf16 (autocast) must name the same classes with nearly the same confidence.
    for precision in [Precision::Fp32, Precision::Bf16] {
        for (arch, expected) in cases {
            let weights = models.join(arch.weights_file());
            let model = imagenet_classifier(arch, Some(&weights), Device::Cpu, precision).unwrap();
            let predictions = classify_imagenet(&model, &classes, &photos, 5).unwrap();
            for (prediction, (label, probability)) in predictions.iter().zip(expected) {
                let top = &prediction.top[0];
                assert_eq!(top.label, label, "{arch:?} {precision}: {prediction:?}");
                assert!(
                    (top.probability - probability).abs() < 0.12,
                    "{arch:?} {precision}: {prediction:?}"
                );
            }
        }
    }
}
