//! The `convkit` binary end to end, in temporary folders, on the real MNIST files.

mod common;

use common::{cats_slice, convkit, data_root, json, run_err, run_ok};
use std::path::Path;

#[test]
fn summary_shows_the_chapter_model() {
    let output = run_ok(convkit().args(["summary", "mnist"]));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Total params: 104,202"), "{text}");
    assert!(text.contains("conv2d_2 (Conv2D)"), "{text}");
    assert!(text.contains("(None, 128, 3, 3)"), "{text}");
}

#[test]
fn help_teaches_the_commands() {
    let text = String::from_utf8(run_ok(convkit().arg("--help")).stdout).unwrap();
    for command in [
        "mnist",
        "summary",
        "evaluate",
        "--device",
        "--threads",
        "--precision",
    ] {
        assert!(text.contains(command), "--help lacks {command}:\n{text}");
    }
    let text = String::from_utf8(run_ok(convkit().args(["mnist", "--help"])).stdout).unwrap();
    assert!(
        text.contains("CONVKIT_DATA") && text.contains("99.1%"),
        "{text}"
    );
}

/// In `convkit --help` each command's summary is one whole sentence on its own line (clap
/// wraps at 100 columns when not on a terminal), and a command's long help keeps its
/// examples as written.
#[test]
fn help_gives_each_command_one_whole_line() {
    let text =
        String::from_utf8(run_ok(convkit().env("COLUMNS", "100").arg("--help")).stdout).unwrap();
    let commands: Vec<&str> = text
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect();
    assert!(commands.len() >= 10, "{text}");
    for line in commands {
        let name = line.trim_start().split(' ').next().unwrap();
        assert!(
            line.starts_with("  ") && !line.starts_with("   "),
            "a summary runs on past its line: {line:?}\n{text}"
        );
        if name != "help" {
            assert!(
                line.ends_with('.'),
                "{name}'s summary is cut: {line:?}\n{text}"
            );
        }
    }
    let finetune = String::from_utf8(
        run_ok(convkit().env("COLUMNS", "100").args(["finetune", "--help"])).stdout,
    )
    .unwrap();
    assert!(
        finetune.contains(
            "\n  convkit finetune runs/vgg16-frozen --unfreeze block5            \
             # the chapter: lr 1e-5, 30 epochs\n"
        ),
        "{finetune}"
    );
}

/// A small MNIST run (1 epoch on 600 images) in `dir`, for the tests of evaluate and
/// predict that need a run but not a good one.
fn small_mnist_run(shared_data: &Path, dir: &Path) -> std::path::PathBuf {
    let out = dir.join("run");
    run_ok(
        convkit()
            .env("CONVKIT_DATA", shared_data)
            .args(["mnist", "--epochs", "1", "--limit", "600", "--seed", "1"])
            .args(["--quiet", "--device", "cpu", "--out"])
            .arg(&out),
    );
    out
}

/// A new run into a folder that holds a finished run is refused, with the way out, and
/// leaves that run as it was.
#[test]
fn a_new_run_does_not_replace_a_finished_one() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let run = small_mnist_run(&shared_data, dir.path());
    let model = std::fs::read(run.join("model.safetensors")).unwrap();
    let metrics = std::fs::read(run.join("metrics.json")).unwrap();
    let err = run_err(
        convkit()
            .env("CONVKIT_DATA", &shared_data)
            .args(["mnist", "--epochs", "1", "--limit", "600", "--seed", "2"])
            .args(["--quiet", "--device", "cpu", "--out"])
            .arg(&run),
    );
    assert!(
        err.contains("holds a finished run (1 epoch") && err.contains("another folder with --out"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
    assert_eq!(std::fs::read(run.join("metrics.json")).unwrap(), metrics);
}

/// `--report` takes its folder as a user types it: `--report OUT`, `--report=OUT`, or alone
/// (RUN_DIR/report-<split>), last or before another flag, and `--report RUN_DIR` with the
/// run folder after it; without a run folder it says how to write the command.
#[test]
fn evaluate_report_takes_its_folder_either_way() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let run = small_mnist_run(&shared_data, dir.path());
    let report_of = |args: &[&std::ffi::OsStr]| -> String {
        let summary = json(&run_ok(
            convkit().args(["evaluate", "--device", "cpu"]).args(args),
        ));
        let report = summary["report"].as_str().unwrap().to_owned();
        assert!(
            Path::new(&report).join("report.html").is_file(),
            "{summary}"
        );
        assert_eq!(summary["count"], 10_000, "{summary}");
        report
    };
    let (out, out2) = (dir.path().join("out"), dir.path().join("out2"));
    let default = run.join("report-test");
    let mnist = shared_data.join("mnist");
    let equals = format!("--report={}", out2.display());
    for (args, expected) in [
        (
            vec![run.as_os_str(), "--data".as_ref(), mnist.as_os_str()]
                .into_iter()
                .chain(["--report".as_ref(), out.as_os_str(), "--json".as_ref()])
                .collect::<Vec<_>>(),
            &out,
        ),
        (
            vec![run.as_os_str(), equals.as_ref(), "--json".as_ref()],
            &out2,
        ),
        (
            vec![run.as_os_str(), "--json".as_ref(), "--report".as_ref()],
            &default,
        ),
        (
            vec![run.as_os_str(), "--report".as_ref(), "--json".as_ref()],
            &default,
        ),
        (
            vec!["--report".as_ref(), run.as_os_str(), "--json".as_ref()],
            &default,
        ),
        (
            vec![
                "--json".as_ref(),
                "--report".as_ref(),
                out.as_os_str(),
                run.as_os_str(),
            ],
            &out,
        ),
    ] {
        std::fs::remove_dir_all(expected).ok();
        assert_eq!(report_of(&args), expected.to_str().unwrap(), "{args:?}");
    }

    let nowhere = dir.path().join("nowhere");
    let stderr = run_err(convkit().args(["evaluate", "--report"]).arg(&nowhere));
    assert!(
        stderr.contains("run folder is missing")
            && stderr.contains(nowhere.to_str().unwrap())
            && stderr.contains("convkit evaluate RUN_DIR --report [OUT_DIR]"),
        "{stderr}"
    );
    assert!(!nowhere.exists());
    let stderr = run_err(convkit().args(["evaluate", "--report"]));
    assert!(stderr.contains("run folder is missing"), "{stderr}");
}

/// `predict --top K` prints the K most probable classes of each image with their
/// probabilities, as its --json holds them.
#[test]
fn predict_prints_the_top_classes() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let run = small_mnist_run(&shared_data, dir.path());
    let photo = shared_data.join("cats_vs_dogs/validation/cats/cat.2000.jpg");
    let predict = |json: bool| {
        let mut command = convkit();
        command
            .args(["predict", "--top", "3", "--device", "cpu"])
            .arg(&run)
            .arg(&photo);
        if json {
            command.arg("--json");
        }
        run_ok(&mut command)
    };
    let prediction = json(&predict(true));
    let top: Vec<String> = prediction["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            format!(
                "{} ({:.4})",
                pair[0].as_str().unwrap(),
                pair[1].as_f64().unwrap()
            )
        })
        .collect();
    assert_eq!(top.len(), 3, "{prediction}");
    let text = String::from_utf8(predict(false).stdout).unwrap();
    assert_eq!(
        text,
        format!("{}: {}\n", photo.display(), top.join(", ")),
        "{prediction}"
    );
}

/// Trains on a slice of real MNIST (1 epoch, 6,000 images), checks that it learned, that
/// the run folder is complete, that it computed in `auto` precision (no `--precision`
/// given: bf16 where this CPU has bf16 units), and that `evaluate` reloads the same model
/// and numbers.
#[test]
fn mnist_learns_and_evaluate_reproduces_the_test_score() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = run_ok(
        convkit()
            .current_dir(dir.path())
            .env("CONVKIT_DATA", &shared_data)
            .args([
                "mnist",
                "--epochs",
                "1",
                "--limit",
                "6000",
                "--validation-split",
                "0.1",
            ])
            .args([
                "--seed", "1", "--quiet", "--json", "--device", "cpu", "--out",
            ])
            .arg(&out),
    );
    let metrics = json(&output);
    let accuracy = metrics["test"]["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.90,
        "1 epoch on 6,000 images should pass 90%, got {accuracy}"
    );
    assert_eq!(metrics["test"]["count"], 10_000);
    assert_eq!(metrics["params"], 104_202);
    for file in [
        "model.safetensors",
        "model.json",
        "history.csv",
        "curves.png",
        "metrics.json",
        "run.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert!(
        history.starts_with("epoch,loss,accuracy,val_loss,val_accuracy"),
        "{history}"
    );
    assert_eq!(history.lines().count(), 2, "{history}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(saved["test"]["accuracy"], metrics["test"]["accuracy"]);
    let native = convkit::runtime::cpu_features().native_bf16();
    let resolved = if native { "bf16" } else { "fp32" };
    assert_eq!(metrics["precision"], resolved, "{metrics}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["fit"]["precision"], "auto", "{run}");
    assert_eq!(run["recorded"]["precision"], resolved, "{run}");

    let evaluated = json(&run_ok(
        convkit()
            .args(["evaluate", "--json", "--device", "cpu"])
            .arg(&out),
    ));
    assert_eq!(evaluated["accuracy"], metrics["test"]["accuracy"]);
    assert_eq!(evaluated["count"], 10_000);
    let loss = evaluated["loss"].as_f64().unwrap();
    assert!((loss - metrics["test"]["loss"].as_f64().unwrap()).abs() < 1e-9);

    // A colour photo goes through a one-channel model as grayscale: a digit comes out.
    let photo = shared_data.join("cats_vs_dogs/validation/cats/cat.2000.jpg");
    let prediction = json(&run_ok(
        convkit().args(["predict", "--json"]).arg(&out).arg(&photo),
    ));
    let digit = prediction["class"].as_str().unwrap();
    assert!(
        digit.len() == 1 && digit.chars().all(|c| c.is_ascii_digit()),
        "{prediction}"
    );
    assert_eq!(prediction["probabilities"].as_array().unwrap().len(), 10);
}

/// bf16 mixed precision learns as fp32 does, records itself, and `evaluate` reuses it.
#[test]
fn mnist_learns_in_bf16_and_evaluate_keeps_the_precision() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let metrics = json(&run_ok(
        convkit()
            .env("CONVKIT_DATA", &shared_data)
            .args(["mnist", "--epochs", "1", "--limit", "6000", "--seed", "1"])
            .args([
                "--precision",
                "bf16",
                "--quiet",
                "--json",
                "--device",
                "cpu",
                "--out",
            ])
            .arg(&out),
    ));
    let accuracy = metrics["test"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.90, "bf16, 1 epoch on 6,000 images: {accuracy}");
    assert_eq!(metrics["precision"], "bf16");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["recorded"]["precision"], "bf16");
    assert_eq!(run["fit"]["precision"], "bf16");
    // the run's own precision by default: the same score again
    let evaluated = json(&run_ok(
        convkit()
            .args(["evaluate", "--json", "--device", "cpu"])
            .arg(&out),
    ));
    assert_eq!(evaluated["accuracy"], metrics["test"]["accuracy"]);
    // fp32 on request: within a few images of it
    let in_fp32 = json(&run_ok(
        convkit()
            .args([
                "evaluate",
                "--json",
                "--device",
                "cpu",
                "--precision",
                "fp32",
            ])
            .arg(&out),
    ));
    let gap = (in_fp32["accuracy"].as_f64().unwrap() - accuracy).abs();
    assert!(gap < 0.005, "fp32 {in_fp32} against bf16 {accuracy}");
    let err = run_err(convkit().args(["mnist", "--precision", "fp8"]));
    assert!(err.contains("fp32") && err.contains("bf16"), "{err}");
}

/// Same seed, same numbers; another seed, other numbers.
#[test]
fn runs_are_repeatable_with_a_seed() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let train = |seed: &str, name: &str| {
        let output = run_ok(
            convkit()
                .env("CONVKIT_DATA", &shared_data)
                .args([
                    "mnist",
                    "--epochs",
                    "1",
                    "--limit",
                    "1500",
                    "--quiet",
                    "--json",
                    "--threads",
                    "2",
                ])
                .args(["--device", "cpu", "--seed", seed, "--out"])
                .arg(dir.path().join(name)),
        );
        let metrics = json(&output);
        (
            metrics["test"]["loss"].as_f64().unwrap(),
            metrics["test"]["accuracy"].as_f64().unwrap(),
        )
    };
    let a = train("7", "a");
    let b = train("7", "b");
    let c = train("8", "c");
    assert_eq!(a, b, "same seed, same thread count: identical results");
    assert_ne!(a.0, c.0, "another seed should change the result");
    let history =
        |name: &str| std::fs::read_to_string(dir.path().join(name).join("history.csv")).unwrap();
    let strip = |h: String| -> Vec<String> {
        // Timing columns differ between runs; the learning columns must not.
        h.lines()
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(strip(history("a")), strip(history("b")));
}

#[test]
fn a_missing_data_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let stderr = run_err(
        convkit()
            .args(["mnist", "--quiet", "--data"])
            .arg(&missing)
            .arg("--out")
            .arg(dir.path().join("r")),
    );
    assert!(
        stderr.contains("MNIST") && stderr.contains("nowhere"),
        "{stderr}"
    );
}

#[test]
fn a_truncated_data_file_is_named() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    for entry in std::fs::read_dir(shared_data.join("mnist")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, data.join(path.file_name().unwrap())).unwrap();
    }
    let labels = data.join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() / 2]).unwrap();
    let stderr = run_err(
        convkit()
            .args(["mnist", "--quiet", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join("r")),
    );
    assert!(stderr.contains("t10k-labels-idx1-ubyte.gz"), "{stderr}");
    assert!(!dir.path().join("r").join("model.safetensors").exists());
}

#[test]
fn evaluate_explains_a_folder_that_is_not_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(convkit().arg("evaluate").arg(dir.path()));
    assert!(stderr.contains("not a convkit run folder"), "{stderr}");
}

#[test]
fn unknown_model_and_device_are_explained() {
    let stderr = run_err(convkit().args(["summary", "resnet9000"]));
    assert!(
        stderr.contains("unknown model `resnet9000`") && stderr.contains("mnist"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(
        convkit()
            .args(["mnist", "--device", "tpu", "--out"])
            .arg(dir.path()),
    );
    assert!(stderr.contains("unknown device `tpu`"), "{stderr}");
}

/// Settings that cannot train are refused before anything is read or written, in their own
/// words (no "training failed:" before them). `--epochs 0` once loaded the data, trained
/// nothing and failed on a missing best.json.
#[test]
fn settings_that_cannot_train_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(
        convkit()
            .args(["train", "--quiet", "--epochs", "0", "--data"])
            .arg(dir.path().join("nowhere"))
            .arg("--out")
            .arg(dir.path().join("run")),
    );
    assert_eq!(
        stderr.trim(),
        "error: the number of epochs must be at least 1",
        "{stderr}"
    );
    assert!(!dir.path().join("run").exists());
}

/// Progressive resizing on real images: the chapter's Flatten convnet is refused, naming
/// why, and leaves no run folder behind; the mini-Xception trains its first epoch on
/// smaller images and says so.
#[test]
fn progressive_resizing_trains_a_pooled_model_and_refuses_a_flattened_one() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 8, 4);
    let train = |model: &str, out: &str| {
        let mut command = convkit();
        command
            .args(["--threads", "1", "train", "--data"])
            .arg(&data)
            .args(["--model", model, "--image-size", "96", "--epochs", "2"])
            .args(["--progressive-resizing", "48", "--out"])
            .arg(dir.path().join(out));
        command
    };
    let stderr = run_err(&mut train("small-convnet", "flat"));
    assert!(
        stderr.contains("progressive resizing needs a model that takes any image size")
            && !stderr.contains("growing to"),
        "{stderr}"
    );
    assert!(!dir.path().join("flat").exists());
    let output = run_ok(&mut train("mini-xception", "pooled"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("training images 48 pixels high in epoch 1, growing to 96 by epoch 2"),
        "{stderr}"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("pooled/run.json")).unwrap())
            .unwrap();
    assert_eq!(
        run["fit"]["progressive_resizing"],
        serde_json::json!({"start_size": 48, "ramp": 0.5})
    );
}

/// The chapter's from-scratch convnet on a slice of real cats and dogs (smaller images, 10
/// epochs: with 6, seed 3 ends at 59% test on an Intel Xeon with AMX): it must learn, keep
/// its best epoch, and evaluate and predict from the run.
#[test]
fn train_learns_cats_vs_dogs_and_the_run_evaluates_and_predicts() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 500, 150);
    let out = dir.path().join("run");
    let output = run_ok(
        convkit()
            .args(["train", "--data"])
            .arg(&data)
            .args([
                "--image-size",
                "96",
                "--epochs",
                "10",
                "--seed",
                "3",
                "--quiet",
                "--json",
                "--device",
                "cpu",
                "--out",
            ])
            .arg(&out),
    );
    let metrics = json(&output);
    let val = metrics["best_validation"]["accuracy"].as_f64().unwrap();
    let test = metrics["test"]["accuracy"].as_f64().unwrap();
    assert!(
        val > 0.6 && test > 0.6,
        "should beat chance clearly: validation {val}, test {test}"
    );
    assert_eq!(metrics["classes"], serde_json::json!(["cats", "dogs"]));
    assert_eq!(metrics["test"]["count"], 300);
    for file in [
        "best.safetensors",
        "best.json",
        "last.safetensors",
        "history.csv",
        "curves.png",
        "metrics.json",
        "run.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // evaluate reloads the best checkpoint: the same test numbers, by default and by --data.
    let evaluated = json(&run_ok(convkit().args(["evaluate", "--json"]).arg(&out)));
    assert_eq!(evaluated["accuracy"], metrics["test"]["accuracy"]);
    assert_eq!(evaluated["count"], 300);
    let on_validation = json(&run_ok(
        convkit()
            .args(["evaluate", "--json"])
            .arg(&out)
            .arg("--data")
            .arg(data.join("validation")),
    ));
    assert_eq!(
        on_validation["accuracy"],
        metrics["best_validation"]["accuracy"]
    );
    // --init-from starts from the best checkpoint: with a vanishing learning rate, the first
    // epoch's validation accuracy is the first run's best.
    let continued = dir.path().join("continued");
    let train_on = |image_size: &str| {
        let mut command = convkit();
        command
            .args(["train", "--data"])
            .arg(&data)
            .arg("--init-from")
            .arg(&out);
        command.args([
            "--image-size",
            image_size,
            "--learning-rate",
            "1e-12",
            "--epochs",
            "1",
        ]);
        command
            .args(["--quiet", "--json", "--device", "cpu", "--out"])
            .arg(&continued);
        command
    };
    let stderr = run_err(&mut train_on("180"));
    assert!(
        stderr.contains("best.safetensors") && stderr.contains("96"),
        "{stderr}"
    );
    let again = json(&run_ok(&mut train_on("96")));
    assert_eq!(
        again["best_validation"]["accuracy"],
        metrics["best_validation"]["accuracy"]
    );
    let (before, after) = (
        metrics["best_validation"]["loss"].as_f64().unwrap(),
        again["best_validation"]["loss"].as_f64().unwrap(),
    );
    assert!((before - after).abs() < 1e-4, "{before} vs {after}");
    // predict names a class and a probability per image.
    let cat = std::fs::read_dir(data.join("test/cats"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let output = run_ok(convkit().args(["predict", "--json"]).arg(&out).arg(&cat));
    let prediction: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(["cats", "dogs"].contains(&prediction["class"].as_str().unwrap()));
    let p = prediction["probability"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&p), "{p}");
    report_agrees_with_evaluate(&out, &evaluated);
    // predict takes folders, recursively, and writes every image to --csv.
    let csv = dir.path().join("predictions.csv");
    run_ok(
        convkit()
            .arg("predict")
            .arg(&out)
            .arg(data.join("test"))
            .arg("--csv")
            .arg(&csv),
    );
    let rows = std::fs::read_to_string(&csv).unwrap();
    let mut lines = rows.lines();
    assert_eq!(
        lines.next().unwrap(),
        "path,class,probability,top1_class,top1_probability,top2_class,top2_probability"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 300);
    let correct = rows
        .iter()
        .filter(|r| r[0].contains(&format!("/{}/", r[1])))
        .count();
    let accuracy = evaluated["accuracy"].as_f64().unwrap();
    assert_eq!(correct, (accuracy * 300.0).round() as usize);
    for row in &rows {
        let (p1, p2): (f64, f64) = (row[4].parse().unwrap(), row[6].parse().unwrap());
        assert_eq!(row[1], row[3]);
        assert!(p1 >= p2 && (p1 + p2 - 1.0).abs() < 1e-5, "{row:?}");
    }
    // A reader that stops after the first line (`| head -1`) ends predict quietly.
    let mut child = convkit()
        .arg("predict")
        .arg(&out)
        .arg(data.join("test"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let closed = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(first.contains("test/"), "{first}");
    assert!(closed.status.success() && stderr.is_empty(), "{stderr}");
}

/// `evaluate --report` on the run's own test split: the numbers of `evaluate --json`, a
/// confusion matrix that sums to the image count, every file of the report, and a page
/// with its pictures inlined.
fn report_agrees_with_evaluate(run: &Path, evaluated: &serde_json::Value) {
    let summary = json(&run_ok(
        convkit().args(["evaluate", "--json", "--report"]).arg(run),
    ));
    let report = run.join("report-test");
    assert_eq!(summary["report"], report.to_str().unwrap());
    assert_eq!(summary["accuracy"], evaluated["accuracy"]);
    let (a, b) = (
        summary["loss"].as_f64().unwrap(),
        evaluated["loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("metrics.json")).unwrap()).unwrap();
    let cells: Vec<u64> = metrics["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .collect();
    assert_eq!(cells.iter().sum::<u64>(), 300);
    let right = cells[0] + cells[3];
    assert_eq!(
        right as f64 / 300.0,
        evaluated["accuracy"].as_f64().unwrap()
    );
    assert_eq!(
        metrics["per_class"][0]["support"].as_u64().unwrap(),
        cells[0] + cells[1]
    );
    let auc = metrics["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.5 && auc <= 1.0, "{auc}");
    let misclassified = std::fs::read_to_string(report.join("misclassified.csv")).unwrap();
    assert_eq!(misclassified.lines().count() as u64, 1 + 300 - right);
    for file in ["confusion.png", "top_losses.png", "confusion.csv"] {
        assert!(report.join(file).is_file(), "{file} missing");
    }
    let page = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(page.matches("data:image/png;base64,").count() >= 3);
    assert!(page.contains("Per class") && page.contains("cats") && page.contains("ROC AUC"));
}

#[test]
fn evaluating_on_other_classes_is_refused() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 40, 10);
    let out = dir.path().join("run");
    run_ok(
        convkit()
            .args(["train", "--data"])
            .arg(&data)
            .args(["--image-size", "80", "--epochs", "1", "--quiet", "--out"])
            .arg(&out),
    );
    let other = dir.path().join("other");
    for class in ["birds", "cats"] {
        std::fs::create_dir_all(other.join(class)).unwrap();
        let src = std::fs::read_dir(data.join("test/cats"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::os::unix::fs::symlink(src, other.join(class).join("a.jpg")).unwrap();
    }
    let stderr = run_err(
        convkit()
            .arg("evaluate")
            .arg(&out)
            .arg("--data")
            .arg(&other),
    );
    assert!(
        stderr.contains("not the model's") && stderr.contains("birds"),
        "{stderr}"
    );
}

#[test]
fn a_folder_with_one_class_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cats")).unwrap();
    let stderr = run_err(
        convkit()
            .args(["train", "--quiet", "--data"])
            .arg(dir.path())
            .arg("--out")
            .arg(dir.path().join("r")),
    );
    assert!(stderr.contains("at least two"), "{stderr}");
}

#[test]
fn augment_preview_draws_a_three_by_three_grid() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    run_ok(
        convkit()
            .args(["augment-preview", "--image-size", "60", "--data"])
            .arg(shared_data.join("cats_vs_dogs"))
            .arg("--out")
            .arg(&out),
    );
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // 3 tiles of 60 pixels and 4 gaps of 6 on each side.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (3 * 60 + 4 * 6, 3 * 60 + 4 * 6));
    let stderr = run_err(
        convkit()
            .args(["augment-preview", "--rotation", "2", "--data"])
            .arg(shared_data.join("cats_vs_dogs")),
    );
    assert!(stderr.contains("random_rotation"), "{stderr}");
}

/// `lr-find` on a small slice of cats and dogs: it writes the plot and the sweep, prints a
/// suggestion that parses inside the swept range in a `convkit train` line with the same
/// data flags, and explains bad sweep settings and train flags it has no use for.
#[test]
fn lr_find_writes_its_plot_and_suggests_a_learning_rate() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 60, 10);
    let out = dir.path().join("lr");
    let sweep = |extra: &[&str]| {
        let mut command = convkit();
        command
            .args(["lr-find", "--data"])
            .arg(&data)
            .args(["--image-size", "96", "--batch-size", "8", "--seed", "2"])
            .args(["--quiet", "--device", "cpu", "--out"])
            .arg(&out)
            .args(extra);
        command
    };
    let output = run_ok(&mut sweep(&["--iterations", "30", "--dropout", "0.5"]));
    let text = String::from_utf8(output.stdout).unwrap();
    let png = std::fs::read(out.join("lr_find.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let csv = std::fs::read_to_string(out.join("lr_find.csv")).unwrap();
    assert!(
        csv.starts_with("step,learning_rate,loss,smoothed_loss\n"),
        "{csv}"
    );
    let rows = csv.lines().count() - 1;
    assert!((8..=30).contains(&rows), "{csv}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("lr_find.json")).unwrap()).unwrap();
    assert_eq!(report["sweep"]["steps"].as_array().unwrap().len(), rows);
    let line = text
        .lines()
        .find(|l| l.contains("convkit train"))
        .unwrap_or_else(|| panic!("no train command:\n{text}"));
    assert!(
        line.contains("--data")
            && line.contains("--dropout 0.5")
            && line.contains("--image-size 96"),
        "{line}"
    );
    assert!(
        !line.contains("--iterations") && !line.contains("--out"),
        "{line}"
    );
    let lr: f64 = line
        .rsplit("--learning-rate ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!((1e-7..10.0).contains(&lr), "{lr}");
    // Printed with two significant digits.
    let valley = report["sweep"]["suggestions"]["valley"]["learning_rate"]
        .as_f64()
        .unwrap();
    assert!((lr / valley - 1.0).abs() < 0.06, "{lr} vs {valley}");
    assert!(text.contains("Suggested learning rate:"), "{text}");

    for (args, says) in [
        (
            &["--start-lr", "1", "--end-lr", "0.1"][..],
            "must be above the start",
        ),
        (&["--iterations", "0"][..], "at least 2 iterations"),
        (&["--epochs", "3"][..], "does not take --epochs"),
        (
            &["--learning-rate", "1e-3"][..],
            "does not take --learning-rate",
        ),
    ] {
        let stderr = run_err(&mut sweep(args));
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let help = String::from_utf8(run_ok(convkit().args(["lr-find", "--help"])).stdout).unwrap();
    for words in [
        "valley",
        "--start-lr",
        "--augment",
        "diverges",
        "Learner.lr_find",
    ] {
        assert!(help.contains(words), "--help lacks {words}:\n{help}");
    }
    assert!(!help.contains("--epochs"), "{help}");
}

/// `lr-find --data mnist` (a name looked for in `$CONVKIT_DATA`) sweeps the MNIST convnet on
/// the real MNIST files with `convkit mnist`'s batch size, suggests a `convkit mnist`
/// command that runs as printed, and refuses the flags only image folders have.
#[test]
fn lr_find_sweeps_mnist_as_the_mnist_command_trains_it() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lr");
    let sweep = |extra: &[&str]| {
        let mut command = convkit();
        command
            .current_dir(dir.path())
            .env("CONVKIT_DATA", &shared_data)
            .args(["--threads", "1", "lr-find", "--data", "mnist"])
            .args(["--iterations", "40", "--seed", "3", "--quiet", "--out"])
            .arg(&out)
            .args(extra);
        command
    };
    let text = String::from_utf8(run_ok(&mut sweep(&[])).stdout).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("lr_find.json")).unwrap()).unwrap();
    assert_eq!(report["model"], "mnist_convnet", "{report}");
    assert_eq!(report["train_count"], 54_000, "{report}");
    assert_eq!(report["sweep"]["settings"]["batch_size"], 64, "{report}");
    assert!(out.join("lr_find.png").is_file());
    let line = text
        .lines()
        .find(|l| l.contains("convkit mnist"))
        .unwrap_or_else(|| panic!("no mnist command:\n{text}"));
    assert!(
        line.contains("--data mnist") && line.contains("--seed 3 ") && !line.contains("--out"),
        "{line}"
    );
    // The suggested command trains, from the same folder, on the same files.
    let mut words = line.split_whitespace().skip(2).collect::<Vec<_>>();
    words.extend(["--epochs", "1", "--limit", "600", "--quiet", "--json"]);
    let trained = run_ok(
        convkit()
            .current_dir(dir.path())
            .env("CONVKIT_DATA", &shared_data)
            .args(["--threads", "1", "mnist"])
            .args(&words)
            .args(["--out", "run"]),
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/run.json")).unwrap())
            .unwrap();
    assert_eq!(
        spec["data"]["source"]["dir"],
        shared_data.join("mnist").to_str().unwrap(),
        "{}",
        String::from_utf8_lossy(&trained.stdout)
    );
    for flag in [
        &["--augment"][..],
        &["--image-size", "28"],
        &["--model", "mini-xception"],
    ] {
        let stderr = run_err(&mut sweep(flag));
        assert!(
            stderr.contains(&format!("does not take {} on MNIST", flag[0]))
                && stderr.contains("for image folders"),
            "{flag:?}: {stderr}"
        );
    }
}

/// `--recipe fast` sets how the run is fitted, flags beside it override it, and a resume
/// with another recipe is refused.
#[test]
fn a_recipe_sets_the_fit_and_flags_override_it() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 20, 10);
    let out = dir.path().join("run");
    run_ok(
        convkit()
            .args(["--threads", "1", "train", "--data"])
            .arg(&data)
            .args(["--image-size", "80", "--augment", "--recipe", "fast"])
            .args([
                "--epochs",
                "2",
                "--learning-rate",
                "5e-4",
                "--mixup",
                "0.2",
                "--quiet",
                "--out",
            ])
            .arg(&out),
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let fit = &spec["fit"];
    assert_eq!(spec["recipe"], "fast");
    assert_eq!(fit["epochs"], 2, "{fit}");
    assert_eq!(fit["optimizer"]["name"], "adamw", "{fit}");
    assert_eq!(fit["optimizer"]["learning_rate"], 5e-4, "{fit}");
    assert_eq!(fit["schedule"]["name"], "one_cycle", "{fit}");
    assert!(fit["label_smoothing"].as_f64().unwrap() > 0.0, "{fit}");
    assert!(fit["ema"]["decay"].as_f64().is_some(), "{fit}");
    assert_eq!(fit["mixup"]["alpha"], 0.2, "{fit}");
    // The fast recipe keeps the last epoch: the run has model.safetensors, no best.
    assert_eq!(spec["output"]["checkpoint"], "last", "{spec}");
    assert!(out.join("model.safetensors").is_file() && !out.join("best.safetensors").exists());
    // The same augmentation as without a recipe: the recipe leaves the model alone.
    assert_eq!(spec["model"]["augmentation"].as_array().unwrap().len(), 3);
    let stderr = run_err(
        convkit()
            .args(["train", "--recipe", "book", "--resume"])
            .arg(&out),
    );
    assert!(stderr.contains("recipe"), "{stderr}");
    // A plain run keeps the book's settings.
    let help = run_ok(convkit().args(["train", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--recipe") && help.contains("one-cycle"),
        "{help}"
    );
}

/// `--data NAME` that is not a folder here is found in `$CONVKIT_DATA`, by `train` and by
/// `evaluate`, and the run records the folder it read; without `CONVKIT_DATA` the error
/// names the folder as given.
#[test]
fn a_data_name_is_found_in_the_data_folder() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shared");
    cats_slice(&shared_data, &root.join("slice"), 20, 10);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = dir.path().join("run");
    let train = |data_root: Option<&Path>| {
        let mut command = convkit();
        command.current_dir(&elsewhere).env_remove("CONVKIT_DATA");
        if let Some(data_root) = data_root {
            command.env("CONVKIT_DATA", data_root);
        }
        command
            .args([
                "train",
                "--data",
                "slice",
                "--image-size",
                "80",
                "--epochs",
                "1",
            ])
            .args(["--quiet", "--json", "--device", "cpu", "--out"])
            .arg(&out);
        command
    };
    let err = run_err(&mut train(None));
    assert!(err.contains("slice"), "{err}");
    let metrics = json(&run_ok(&mut train(Some(&root))));
    assert_eq!(metrics["train_count"], 40, "{metrics}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run["data"]["source"]["dir"],
        root.join("slice").to_str().unwrap(),
        "{run}"
    );
    let evaluated = json(&run_ok(
        convkit()
            .current_dir(&elsewhere)
            .env("CONVKIT_DATA", &root)
            .args(["evaluate", "--json", "--data", "slice/validation"])
            .arg(&out),
    ));
    assert_eq!(evaluated["count"], 20, "{evaluated}");
}
