//! Helpers shared by the integration tests: the binary, the shared data, slices of it.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn convkit() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_convkit"));
    command.env_remove("CONVKIT_MNIST_MIRROR");
    command
}

/// The shared data folder: `$CONVKIT_DATA`, else `../shared/data` beside the repository.
pub fn data_root() -> PathBuf {
    let root = std::env::var_os("CONVKIT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        root.join("mnist").is_dir(),
        "these tests read the real MNIST files: set CONVKIT_DATA to the folder holding mnist/ (tried {})",
        root.display()
    );
    root
}

pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("convkit starts");
    assert!(
        output.status.success(),
        "convkit failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn run_err(command: &mut Command) -> String {
    let output = command.output().expect("convkit starts");
    assert!(
        !output.status.success(),
        "convkit should have failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A slice of the real cats-vs-dogs images laid out as train/ validation/ test/, with links
/// (no copies): `n_train` per class for training, `n_val` per class for validation and test.
pub fn cats_slice(root: &Path, n_train: usize, n_val: usize) {
    let source = data_root().join("cats_vs_dogs");
    assert!(
        source.is_dir(),
        "these tests read the real cats_vs_dogs images under {}",
        source.display()
    );
    for class in ["cats", "dogs"] {
        let mut train: Vec<PathBuf> = std::fs::read_dir(source.join("train").join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        train.sort();
        let mut val: Vec<PathBuf> = std::fs::read_dir(source.join("validation").join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        val.sort();
        let place = |split: &str, files: &[PathBuf]| {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for file in files {
                std::os::unix::fs::symlink(file, dir.join(file.file_name().unwrap())).unwrap();
            }
        };
        place("train", &train[..n_train]);
        place("validation", &val[..n_val]);
        place("test", &val[n_val..2 * n_val]);
    }
}
