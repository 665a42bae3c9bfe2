//! Pretrained backbones through the `convkit` binary: summaries, ImageNet predictions, the
//! features cache, and fine-tuning, on the real weights (`$CONVKIT_MODELS`) and images.

mod common;

use common::{cats_slice, convkit, data_root, json, models_root, run_err, run_ok};

fn with_models(command: &mut std::process::Command) -> &mut std::process::Command {
    command.env(
        "CONVKIT_MODELS",
        models_root().expect("checked by the test"),
    )
}

#[test]
fn summaries_count_the_backbones() {
    let vgg = run_ok(convkit().args(["summary", "vgg16"]));
    let text = String::from_utf8_lossy(&vgg.stdout);
    assert!(text.contains("Total params: 14,714,688"), "{text}");
    assert!(text.contains("block5_conv3"), "{text}");
    let mobilenet = run_ok(convkit().args(["summary", "mobilenet_v2"]));
    let text = String::from_utf8_lossy(&mobilenet.stdout);
    assert!(text.contains("Trainable params: 3,504,872"), "{text}");
    assert!(text.contains("Non-trainable params: 34,112"), "{text}");
}

#[test]
fn imagenet_prediction_names_the_cat() {
    require!(models_root());
    let shared_data = require!(data_root());
    let cat = shared_data.join("cats_vs_dogs/validation/cats/cat.2000.jpg");
    let output = run_ok(
        with_models(&mut convkit())
            .args([
                "predict",
                "--backbone",
                "mobilenet_v2",
                "--top",
                "3",
                "--json",
            ])
            .arg(&cat),
    );
    let prediction = json(&output);
    assert_eq!(
        prediction["top"][0]["label"], "Egyptian cat",
        "{prediction}"
    );
    assert_eq!(prediction["top"].as_array().unwrap().len(), 3);
    // an empty cache too: the user's own may hold the weights
    let empty_cache = tempfile::tempdir().unwrap();
    let err = run_err(
        convkit()
            .env("CONVKIT_MODELS", "/nowhere")
            .env("XDG_CACHE_HOME", empty_cache.path())
            .args(["predict", "--backbone", "efficientnet_lite0"])
            .arg(&cat),
    );
    assert!(
        err.contains("--weights") && err.contains("/nowhere"),
        "{err}"
    );
}

/// Feature extraction trains well on a small slice, the second run reads the cache, and
/// fine-tuning the result trains end to end with the top layer unfrozen.
#[test]
fn features_are_cached_and_the_run_fine_tunes() {
    require!(models_root());
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 100, 50);
    let cache = dir.path().join("cache");
    let train = |out: &str| {
        json(&run_ok(
            with_models(&mut convkit())
                .args(["train", "--base", "mobilenet_v2", "--mode", "features"])
                .args([
                    "--image-size",
                    "128",
                    "--epochs",
                    "5",
                    "--seed",
                    "1",
                    "--quiet",
                    "--json",
                ])
                .arg("--data")
                .arg(&data)
                .arg("--features-cache")
                .arg(&cache)
                .arg("--out")
                .arg(dir.path().join(out)),
        ))
    };
    let first = train("first");
    assert_eq!(first["features"]["cache_hit"], false, "{first}");
    let accuracy = first["test"]["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.85,
        "pretrained features should separate cats from dogs: {first}"
    );
    let second = train("second");
    assert_eq!(second["features"]["cache_hit"], true, "{second}");
    assert_eq!(second["best_validation"], first["best_validation"]);

    let evaluated = json(&run_ok(
        convkit()
            .arg("evaluate")
            .arg(dir.path().join("first"))
            .arg("--data")
            .arg(data.join("test"))
            .arg("--json"),
    ));
    assert!(
        (evaluated["accuracy"].as_f64().unwrap() - accuracy).abs() < 1e-9,
        "{evaluated}"
    );

    let tuned = json(&run_ok(
        convkit()
            .args([
                "finetune",
                "--unfreeze",
                "features.18",
                "--epochs",
                "1",
                "--quiet",
                "--json",
            ])
            .arg(dir.path().join("first"))
            .arg("--out")
            .arg(dir.path().join("tuned")),
    ));
    // the head (1,281) and features.18's convolution and batch norm (409,600 + 2,560)
    assert_eq!(
        tuned["trainable_params"],
        1281 + 409_600 + 2 * 1280,
        "{tuned}"
    );
    assert!(tuned["test"]["accuracy"].as_f64().unwrap() > 0.8, "{tuned}");
}

#[test]
fn features_mode_refuses_augmentation() {
    require!(models_root());
    let shared_data = require!(data_root());
    let err = run_err(
        with_models(&mut convkit())
            .args([
                "train",
                "--base",
                "vgg16",
                "--mode",
                "features",
                "--augment",
            ])
            .arg("--data")
            .arg(shared_data.join("cats_vs_dogs")),
    );
    assert!(err.contains("--mode frozen"), "{err}");
}
