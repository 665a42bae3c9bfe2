//! Helpers shared by the integration tests: the binary, the shared data, slices of it.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn convkit() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_convkit"));
    command.env_remove("CONVKIT_MNIST_MIRROR");
    command
}

/// A folder of `../shared` that a test needs: `$<env>`, else `../shared/<sub>` beside the
/// repository, if `marker` is in it. One rule for every test: with `CI=true` a missing
/// folder fails the test; elsewhere the test is skipped with one line naming what is
/// missing, so a contributor without `../shared` still gets an honest run of the rest.
pub fn shared_dir(env: &str, sub: &str, marker: &str) -> Option<PathBuf> {
    let root = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared")
            .join(sub)
    });
    if root.join(marker).exists() {
        return Some(root);
    }
    let what = format!("{} not found (set {env})", root.join(marker).display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}");
    }
    eprintln!("skipped: {what}");
    None
}

/// The shared data folder (`$CONVKIT_DATA`), holding `mnist/` and `cats_vs_dogs/`.
pub fn data_root() -> Option<PathBuf> {
    shared_dir("CONVKIT_DATA", "data", "mnist")
}

/// The shared models folder (`$CONVKIT_MODELS`), holding the ImageNet weights.
pub fn models_root() -> Option<PathBuf> {
    shared_dir("CONVKIT_MODELS", "models", "imagenet_classes.tsv")
}

/// The value of an `Option` the test needs, or the end of the test (skipped, see
/// [`shared_dir`]).
#[macro_export]
macro_rules! require {
    ($value:expr) => {
        match $value {
            Some(value) => value,
            None => return,
        }
    };
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
pub fn cats_slice(shared_data: &Path, root: &Path, n_train: usize, n_val: usize) {
    let source = shared_data.join("cats_vs_dogs");
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

/// torchrun from the virtual environment of `$CONVKIT_PYTHON` (`cargo xtask` sets it), or
/// `None`: skipped, or a failure under `CI=true` (as [`shared_dir`]).
pub fn torchrun() -> Option<PathBuf> {
    let found = std::env::var_os("CONVKIT_PYTHON")
        .map(PathBuf::from)
        .and_then(|python| python.parent().map(|bin| bin.join("torchrun")))
        .filter(|torchrun| torchrun.is_file());
    if found.is_none() {
        let what =
            "torchrun not found beside $CONVKIT_PYTHON (run the tests through `cargo xtask test`)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{what}");
        }
        eprintln!("skipped: {what}");
    }
    found
}
