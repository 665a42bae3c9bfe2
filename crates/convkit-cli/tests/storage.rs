//! `convkit train --storage disk` on a slice of the real cats and dogs: the run trains
//! exactly as with the images in memory, and the decoded cache it builds is reused by a
//! later data-parallel run under torchrun (both ranks, one machine) without another build.

mod common;

use common::{cats_slice, convkit, data_root, json, run_ok};
use std::path::{Path, PathBuf};

/// The columns of `history.csv` that do not depend on timing.
fn untimed_history(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("history.csv"))
        .unwrap()
        .lines()
        .map(|line| line.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckimages"))
        .collect();
    files.sort();
    files
}

fn modified(files: &[PathBuf]) -> Vec<std::time::SystemTime> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
        .collect()
}

#[test]
fn a_run_from_the_disk_cache_equals_one_from_memory_and_shares_the_cache() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 60, 20);
    let cache = dir.path().join("decoded");
    let train = |storage: &str, out: &str| {
        let mut command = convkit();
        command
            .args(["--device", "cpu", "--threads", "1", "train", "--data"])
            .arg(&data)
            .args(["--image-size", "96", "--epochs", "2", "--seed", "5"])
            .args(["--quiet", "--json", "--storage", storage, "--decoded-cache"])
            .arg(&cache)
            .arg("--out")
            .arg(dir.path().join(out));
        command
    };
    let in_memory = json(&run_ok(&mut train("memory", "memory")));
    assert!(!cache.exists(), "--storage memory wrote a cache");
    let on_disk = json(&run_ok(&mut train("disk", "disk")));
    let built = cache_files(&cache);
    assert_eq!(built.len(), 3, "one cache per split: {built:?}");
    assert_eq!(
        untimed_history(&dir.path().join("disk")),
        untimed_history(&dir.path().join("memory"))
    );
    assert_eq!(on_disk["best_validation"], in_memory["best_validation"]);
    assert_eq!(on_disk["test"], in_memory["test"]);

    // Two processes under torchrun read the same caches: none is built again.
    let Some(torchrun) = common::torchrun() else {
        return;
    };
    let before = modified(&built);
    let train_cmd = train("disk", "parallel");
    let output = std::process::Command::new(torchrun)
        .args(["--standalone", "--nproc-per-node=2", "--no-python"])
        .arg(train_cmd.get_program())
        .args(train_cmd.get_args())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(cache_files(&cache), built);
    assert_eq!(modified(&built), before, "a cache was rebuilt");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("parallel/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(report["test"]["count"], 40);
}
