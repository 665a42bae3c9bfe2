//! `--tta` (test-time augmentation by horizontal flip) end to end, on a small run of real
//! cats and dogs.

mod common;

use common::{cats_slice, convkit, data_root, json, run_err, run_ok};
use std::path::Path;

/// A small run (one epoch on 80 images) with `args` added, in `dir/name`; its metrics.
fn small_run(data: &Path, dir: &Path, name: &str, args: &[&str]) -> serde_json::Value {
    json(&run_ok(
        convkit()
            .args(["train", "--data"])
            .arg(data)
            .args(["--image-size", "80", "--epochs", "1", "--seed", "1"])
            .args(["--quiet", "--json", "--device", "cpu"])
            .args(args)
            .arg("--out")
            .arg(dir.join(name)),
    ))
}

/// A run trained with `--tta` measures its kept checkpoint with it and records it beside
/// the figures; `evaluate --tta` gives those figures again and records them as TTA figures,
/// plain `evaluate` records none, the report and `predict` say so too, and a resumed run
/// cannot change the setting.
#[test]
fn tta_is_recorded_beside_every_figure_it_gives() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 40, 20);
    let metrics = small_run(&data, dir.path(), "tta", &["--tta"]);
    let run = dir.path().join("tta");
    assert_eq!(
        metrics["best_validation"]["tta"], "horizontal_flip",
        "{metrics}"
    );
    assert_eq!(metrics["test"]["tta"], "horizontal_flip", "{metrics}");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["evaluation"]["tta"], "horizontal_flip", "{spec}");

    let evaluate = |args: &[&str]| {
        run_ok(
            convkit()
                .args(["evaluate", "--device", "cpu"])
                .args(args)
                .arg(&run),
        )
    };
    let tta = json(&evaluate(&["--tta", "--json"]));
    assert_eq!(tta["tta"], "horizontal_flip", "{tta}");
    assert_eq!(tta["count"], 40, "{tta}");
    assert_eq!(tta["accuracy"], metrics["test"]["accuracy"], "{tta}");
    let (a, b) = (
        tta["loss"].as_f64().unwrap(),
        metrics["test"]["loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-5, "{a} against {b}");
    let plain = json(&evaluate(&["--json"]));
    assert_eq!(plain["tta"], "none", "{plain}");
    assert_ne!(plain["loss"], tta["loss"], "the flip changed nothing");
    let text = String::from_utf8(evaluate(&["--tta"]).stdout).unwrap();
    assert!(text.contains("; TTA: horizontal flip)"), "{text}");

    let report = dir.path().join("report");
    let summary = json(&run_ok(
        convkit()
            .args(["evaluate", "--device", "cpu", "--tta", "--json"])
            .arg(&run)
            .arg("--report")
            .arg(&report),
    ));
    assert_eq!(summary["tta"], "horizontal_flip", "{summary}");
    assert_eq!(summary["accuracy"], tta["accuracy"], "{summary}");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(written["tta"], "horizontal_flip");
    let page = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(page.contains("Test-time augmentation (horizontal flip)"));

    let cat = data.join("test/cats");
    let prediction = json(&run_ok(
        convkit()
            .args(["predict", "--tta", "--json", "--device", "cpu"])
            .arg(&run)
            .arg(
                std::fs::read_dir(&cat)
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path(),
            ),
    ));
    assert_eq!(prediction["tta"], "horizontal_flip", "{prediction}");

    // A run measured plainly stays so: --tta beside --resume would change its figures.
    let plain_metrics = small_run(&data, dir.path(), "plain", &[]);
    assert_eq!(plain_metrics["test"]["tta"], "none", "{plain_metrics}");
    let stderr = run_err(
        convkit()
            .args(["train", "--tta", "--quiet", "--resume"])
            .arg(dir.path().join("plain")),
    );
    assert!(stderr.contains("evaluation.tta"), "{stderr}");
    // ImageNet classifiers are not runs: refused before anything loads.
    let stderr =
        run_err(convkit().args(["predict", "--backbone", "mobilenet_v2", "--tta", "x.jpg"]));
    assert!(stderr.contains("--tta"), "{stderr}");
}
