//! `convkit chapter8 --quick` end to end on the real data (`$CONVKIT_DATA`,
//! `$CONVKIT_MODELS`): six run folders, the page, its JSON; a second call keeps every run,
//! a call with `--tta` adds flip-TTA figures to the kept runs without retraining them, and a
//! full-settings call on the quick runs is refused before anything trains.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{convkit, data_root, models_root, run_err, run_ok};

const WORKFLOWS: [&str; 6] = [
    "mnist",
    "scratch",
    "augmentation",
    "vgg16-features",
    "vgg16-frozen",
    "vgg16-finetune",
];

#[test]
fn the_help_says_what_runs_and_how_long() {
    let output = run_ok(convkit().args(["chapter8", "--help"]));
    let help = String::from_utf8_lossy(&output.stdout);
    for text in [
        "--quick",
        "--out",
        "--data",
        "vgg16-finetune",
        "14 hours",
        "--recipe fast 27 min",
        "mean nothing",
        "--tta",
    ] {
        assert!(help.contains(text), "{text} missing from:\n{help}");
    }
}

/// What a second call must leave untouched: every run's history and kept checkpoint.
fn fingerprints(out: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    WORKFLOWS
        .iter()
        .map(|name| {
            let run = out.join(name);
            let checkpoint = ["best.safetensors", "model.safetensors"]
                .iter()
                .map(|f| run.join(f))
                .find(|p| p.is_file())
                .unwrap_or_else(|| panic!("{name} has no checkpoint"));
            (
                name.to_string(),
                std::fs::read(run.join("history.csv")).unwrap(),
                std::fs::metadata(checkpoint).unwrap().modified().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_quick_chapter_runs_every_workflow_and_a_second_call_keeps_them() {
    let data = require!(data_root());
    let models = require!(models_root());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ch8");
    // An empty cache: the features are computed, and the user's cache stays untouched.
    let cache = dir.path().join("cache");
    let chapter8 = |extra: &[&str]| {
        let mut command = convkit();
        command
            .env("CONVKIT_DATA", &data)
            .env("CONVKIT_MODELS", &models)
            .env("XDG_CACHE_HOME", &cache)
            .args(["--threads", "2", "--device", "cpu", "chapter8", "--out"])
            .arg(&out)
            .args(extra);
        command
    };

    let first = run_ok(&mut chapter8(&["--quick"]));
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stdout.contains("QUICK RUN"), "{stdout}");
    assert!(stderr.contains("[quick 1/6] mnist"), "{stderr}");
    assert!(
        stderr.contains("[quick 6/6] vgg16-finetune done"),
        "{stderr}"
    );
    for name in WORKFLOWS {
        let run = out.join(name);
        assert!(
            run.join("metrics.json").is_file(),
            "{name}: no metrics.json"
        );
        assert!(run.join("history.csv").is_file(), "{name}: no history.csv");
        assert!(run.join("curves.png").is_file(), "{name}: no curves.png");
    }

    let page = std::fs::read_to_string(out.join("chapter8.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("QUICK RUN"));
    for name in WORKFLOWS {
        assert!(page.contains(&format!("id=\"{name}\"")), "{name} missing");
    }
    for book in [
        "99.1% test",
        "about 70% validation, 69.5% test",
        "about 83.5% test",
        "about 97% validation",
        "about 97.5-98%",
        "about 98.5% test",
    ] {
        assert!(page.contains(book), "book figure {book} missing");
    }
    // Six curves and figure 8.10, inlined.
    assert!(page.matches("data:image/png;base64,").count() >= 7);
    assert!(page.contains("Figure 8.10"));
    assert!(!page.contains("not available yet"));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("chapter8.json")).unwrap()).unwrap();
    assert_eq!(json["quick"], true);
    let workflows = json["workflows"].as_array().unwrap();
    assert_eq!(workflows.len(), 6);
    for (w, name) in workflows.iter().zip(WORKFLOWS) {
        assert_eq!(w["name"], name);
        assert_eq!(w["status"], "trained", "{w}");
        let accuracy = w["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{w}");
        assert!(w["book"]["accuracy"].as_f64().unwrap() > 0.69, "{w}");
        assert!(w["wall_seconds"].as_f64().unwrap() > 0.0, "{w}");
        assert!(w["settings"]["fit"]["epochs"].as_u64().unwrap() <= 2, "{w}");
    }
    assert_eq!(workflows[0]["split"], "test");
    assert_eq!(workflows[1]["split"], "validation");

    let before = fingerprints(&out);
    let start = Instant::now();
    let second = run_ok(&mut chapter8(&["--quick"]));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the second call took {took:?}"
    );
    assert_eq!(fingerprints(&out), before, "a kept run changed");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        stderr.matches("finished earlier, kept").count(),
        6,
        "{stderr}"
    );
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("chapter8.json")).unwrap()).unwrap();
    for (w, first) in again["workflows"].as_array().unwrap().iter().zip(workflows) {
        assert_eq!(w["status"], "kept", "{w}");
        assert_eq!(w["accuracy"], first["accuracy"]);
        assert_eq!(w["wall_seconds"], first["wall_seconds"]);
    }

    // --tta measures the kept cats-vs-dogs models again with flip TTA, as `evaluate --tta`
    // does, and retrains nothing; MNIST is not measured so.
    let third = run_ok(&mut chapter8(&["--quick", "--tta", "--quiet"]));
    assert_eq!(fingerprints(&out), before, "--tta changed a kept run");
    let stdout = String::from_utf8_lossy(&third.stdout);
    assert!(stdout.contains("(TTA "), "{stdout}");
    let page = std::fs::read_to_string(out.join("chapter8.html")).unwrap();
    assert!(page.contains("<th>with flip TTA</th>"), "{page}");
    assert!(page.contains("accuracy with flip TTA"));
    let with_tta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("chapter8.json")).unwrap()).unwrap();
    let rows = with_tta["workflows"].as_array().unwrap();
    assert!(rows[0].get("flip_tta").is_none(), "{}", rows[0]);
    for w in &rows[1..] {
        let tta = &w["flip_tta"];
        assert!(
            (0.0..=1.0).contains(&tta["accuracy"].as_f64().unwrap()),
            "{w}"
        );
        assert!(tta["seconds"].as_f64().unwrap() > 0.0, "{w}");
    }
    let evaluated = common::json(&run_ok(
        convkit()
            .args(["--threads", "2", "--device", "cpu", "evaluate"])
            .arg(out.join("scratch"))
            .args(["--tta", "--json"]),
    ));
    assert_eq!(rows[1]["flip_tta"]["accuracy"], evaluated["accuracy"]);
    assert_eq!(rows[1]["flip_tta"]["loss"], evaluated["loss"]);
    // A kept run's measurement is reused, not repeated.
    run_ok(&mut chapter8(&["--quick", "--tta", "--quiet"]));
    let reused: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("chapter8.json")).unwrap()).unwrap();
    for (w, earlier) in reused["workflows"].as_array().unwrap().iter().zip(rows) {
        assert_eq!(w.get("flip_tta"), earlier.get("flip_tta"), "{w}");
    }

    // The chapter's full settings do not pass for the quick runs: refused, naming why,
    // before anything trains.
    let err = run_err(&mut chapter8(&["--quiet"]));
    assert!(
        err.contains("epochs: the run has 1, chapter8 uses 5"),
        "{err}"
    );
    assert!(err.contains("--quick"), "{err}");
    assert_eq!(fingerprints(&out), before);
}
