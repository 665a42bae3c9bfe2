//! `convkit mnist` trained data-parallel by two processes on one machine, end to end on a
//! slice of real MNIST: under torchrun (one run folder, written by rank 0, that records the
//! world size, and a model that learned), and launched by hand with a rank killed (the
//! other fails naming it, in bounded time).

mod common;

use common::{convkit, data_root, torchrun};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Scratch folders that ranks above 0 write in the temporary folder `tmp`.
fn scratch_folders(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("convkit-"))
        })
        .collect()
}

#[test]
fn mnist_under_torchrun_writes_one_run_folder_that_records_the_world_size() {
    let shared_data = require!(data_root());
    let torchrun = require!(torchrun());
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = dir.path().join("run");
    let output = std::process::Command::new(torchrun)
        .current_dir(dir.path())
        .env("CONVKIT_DATA", &shared_data)
        .env("TMPDIR", &tmp)
        .args(["--standalone", "--nproc-per-node=2", "--no-python"])
        .arg(env!("CARGO_BIN_EXE_convkit"))
        .args([
            "--device", "cpu", "mnist", "--epochs", "1", "--limit", "6000",
        ])
        .args(["--seed", "1", "--quiet", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "torchrun failed:\n{stdout}\n{stderr}"
    );
    // One report, rank 0's.
    let reports: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(reports.len(), 1, "{stdout}");
    let report: serde_json::Value = serde_json::from_str(reports[0]).unwrap();
    let accuracy = report["test"]["accuracy"].as_f64().unwrap();
    // 5,400 images in 42 steps of 2 x 64. It learned, and as one process does on batches of
    // 128 (the same samples per step; only the order of float additions differs).
    assert!(accuracy > 0.75, "test accuracy {accuracy}");
    let alone = common::run_ok(
        convkit()
            .current_dir(dir.path())
            .env("CONVKIT_DATA", &shared_data)
            .args([
                "--device",
                "cpu",
                "--threads",
                "1",
                "mnist",
                "--epochs",
                "1",
            ])
            .args([
                "--limit",
                "6000",
                "--batch-size",
                "128",
                "--seed",
                "1",
                "--quiet",
            ])
            .arg("--json")
            .arg("--out")
            .arg(dir.path().join("alone")),
    );
    let alone: serde_json::Value = serde_json::from_slice(&alone.stdout).unwrap();
    let alone_accuracy = alone["test"]["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - alone_accuracy).abs() < 0.02,
        "2 processes x 64: {accuracy}, 1 process x 128: {alone_accuracy}"
    );
    std::fs::remove_dir_all(dir.path().join("alone")).unwrap();
    assert_eq!(report["out_dir"].as_str().unwrap(), out.to_str().unwrap());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(config["recorded"]["world_size"], 2, "{config}");
    assert!(out.join("model.safetensors").is_file() && out.join("metrics.json").is_file());
    // Nothing else was written: no second run folder, no scratch folder left.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(scratch_folders(&tmp), Vec::<PathBuf>::new());
}

#[test]
fn a_killed_rank_fails_the_other_naming_it() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let spawn = |rank: usize| {
        convkit()
            .current_dir(dir.path())
            .env("CONVKIT_DATA", &shared_data)
            .env("TMPDIR", dir.path())
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", "2")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", &port)
            .args(["--device", "cpu", "--threads", "1", "--dist-timeout", "20"])
            .args(["mnist", "--epochs", "3", "--quiet", "--out"])
            .arg(dir.path().join("run"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut rank0 = spawn(0);
    let mut rank1 = spawn(1);
    // Kill rank 1 once training is under way (rank 0 has written run.json).
    let start = Instant::now();
    while !dir.path().join("run/run.json").is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    rank1.kill().unwrap();
    rank1.wait().unwrap();
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = rank0.try_wait().unwrap() {
            break status;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "rank 0 still runs 40 s after rank 1 was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut rank0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("rank 1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A 2-process run started with `--quiet`, killed (both ranks, SIGKILL) after its first
/// epoch, resumes without `--quiet`: rank 0 shows progress, rank 1 never does, and the
/// states of the callbacks that keep one (early stopping, the best checkpoint) are matched
/// by name on every rank.
#[test]
fn a_two_process_run_resumes_without_quiet() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cats");
    common::cats_slice(&shared_data, &data, 24, 12);
    let run = dir.path().join("run");
    let spawn = |rank: usize, port: &str, args: &[&str]| {
        convkit()
            .current_dir(dir.path())
            .env("TMPDIR", dir.path())
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", "2")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port)
            .args(["--device", "cpu", "--threads", "1", "--dist-timeout", "30"])
            .arg("train")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let data_arg = data.display().to_string();
    let run_arg = run.display().to_string();
    let fresh = [
        "--data",
        &data_arg,
        "--image-size",
        "80",
        "--batch-size",
        "4",
        "--epochs",
        "3",
        "--early-stopping",
        "5",
        "--quiet",
        "--out",
        &run_arg,
    ];
    let port = free_port().to_string();
    let mut ranks = [spawn(0, &port, &fresh), spawn(1, &port, &fresh)];
    let start = Instant::now();
    while !run.join("state/epoch-0001/state.json").is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the first epoch was never saved"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for rank in &mut ranks {
        rank.kill().unwrap();
        rank.wait().unwrap();
    }
    let port = free_port().to_string();
    let resume = ["--resume", &run_arg];
    let resumed = [spawn(0, &port, &resume), spawn(1, &port, &resume)];
    let mut said = Vec::new();
    for rank in resumed {
        let output = rank.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        said.push(stderr);
    }
    assert!(
        said[0].contains("Epoch 3/3"),
        "rank 0 shows progress:\n{}",
        said[0]
    );
    assert!(
        !said[1].contains("Epoch"),
        "rank 1 stays quiet:\n{}",
        said[1]
    );
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["epochs"], 3);
}
