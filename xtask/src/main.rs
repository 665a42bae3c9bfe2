//! `cargo xtask`: makes sure a libtorch that tch 0.26 can build against is present, then runs
//! cargo with the arguments given.
//!
//! ```text
//! cargo xtask setup                           # only fetch / locate libtorch
//! cargo xtask run --release -- mnist          # = cargo run --release -- mnist, after setup
//! cargo xtask test --workspace --release      # = cargo test ..., after setup
//! ```
//!
//! Where libtorch comes from, in order:
//! 1. `LIBTORCH` or `LIBTORCH_USE_PYTORCH` set by the user: used as is, nothing is fetched.
//! 2. `.libtorch/torch` in the repository (a link made by an earlier run).
//! 3. A Python virtual environment holding PyPI's `torch==2.13.0` wheel, at
//!    `$CONVKIT_TORCH_VENV`, else `$XDG_CACHE_HOME/convkit/torch-2.13.0`, else
//!    `~/.cache/convkit/torch-2.13.0`. It is created with `python3 -m venv` and pip when
//!    missing (about 2.7 GB, once per machine), and `.libtorch/torch` is linked to its
//!    `torch` package, which holds `include/` and `lib/`.
//!
//! That environment also gets the tests' checkers (TensorBoard, onnx, onnxruntime, pinned),
//! and cargo gets its Python as `CONVKIT_PYTHON`.
//!
//! The wheel ships c10d's headers but not Gloo's, which c10d's `ProcessGroupGloo.hpp`
//! includes; convkit's distributed layer (`crates/convkit/csrc/distributed.cpp`) needs them
//! to compile. They come from Debian's `libgloo-dev` (headers only: libtorch links its own
//! Gloo), fetched once with `apt-get download` and unpacked with `dpkg-deb -x` into
//! `~/.cache/convkit/gloo-headers-<debian version>/`; cargo gets the folder as
//! `CONVKIT_GLOO_INCLUDE`. A user's own `CONVKIT_GLOO_INCLUDE` is used as is. Without the
//! headers convkit builds without the distributed layer (an error in CI, see the build
//! script).
//!
//! `.cargo/config.toml` points `LIBTORCH` at `.libtorch/torch`, so once this has run,
//! plain `cargo build`, `cargo run` and `cargo test` work too.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// The PyTorch release that tch 0.26 is built for.
const TORCH_VERSION: &str = "2.13.0";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        eprintln!("{}", USAGE);
        exit(if args.is_empty() { 2 } else { 0 });
    }
    let repo = repo_root();
    if let Err(message) = ensure_libtorch(&repo) {
        eprintln!("error: {message}");
        exit(1);
    }
    let python = match ensure_test_tools(&repo) {
        Ok(python) => python,
        Err(message) => {
            eprintln!("error: {message}");
            exit(1);
        }
    };
    let gloo_include = match ensure_gloo_headers() {
        Ok(dir) => Some(dir),
        Err(message) => {
            eprintln!(
                "warning: {message}\nwarning: convkit builds without its distributed layer \
                 (convkit::distributed returns an error)"
            );
            None
        }
    };
    if args[0] == "setup" {
        return;
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    if let Some(python) = python {
        command.env("CONVKIT_PYTHON", python);
    }
    if let Some(dir) = gloo_include {
        command.env("CONVKIT_GLOO_INCLUDE", dir);
    }
    let status = command
        .args(&args)
        .current_dir(&repo)
        .status()
        .unwrap_or_else(|err| {
            eprintln!("error: could not start cargo: {err}");
            exit(1)
        });
    exit(status.code().unwrap_or(1));
}

const USAGE: &str = "\
usage: cargo xtask setup | cargo xtask <cargo arguments>

Finds or fetches libtorch 2.13 (PyPI's torch wheel in a virtual environment under the user's
cache folder) and links it as .libtorch/torch, then runs `cargo <cargo arguments>`:
  cargo xtask run --release -- mnist
  cargo xtask test --workspace --release
Set LIBTORCH (a libtorch folder) or LIBTORCH_USE_PYTORCH=1 to use a libtorch of your own,
or CONVKIT_TORCH_VENV to choose where the virtual environment goes.";

fn repo_root() -> PathBuf {
    // xtask/ sits at the repository root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent folder")
        .to_path_buf()
}

fn ensure_libtorch(repo: &Path) -> Result<(), String> {
    let link = repo.join(".libtorch").join("torch");
    // Cargo's [env] sets LIBTORCH to our own link: only a different value is the user's.
    let user_libtorch = env::var_os("LIBTORCH")
        .map(PathBuf::from)
        .filter(|p| !p.ends_with(".libtorch/torch"));
    if let Some(dir) = user_libtorch {
        return check_libtorch(&dir).map(|()| eprintln!("libtorch: {} (LIBTORCH)", dir.display()));
    }
    if env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        eprintln!("libtorch: from the python3 on PATH (LIBTORCH_USE_PYTORCH)");
        return Ok(());
    }
    if check_libtorch(&link).is_ok() {
        return Ok(());
    }
    let venv = venv_dir()?;
    let torch = match find_torch_package(&venv) {
        Some(torch) => torch,
        None => {
            install_torch(&venv)?;
            find_torch_package(&venv).ok_or_else(|| {
                format!("pip finished but {} holds no torch package", venv.display())
            })?
        }
    };
    check_libtorch(&torch)?;
    std::fs::create_dir_all(link.parent().expect("link has a parent"))
        .map_err(|e| format!("cannot create {}: {e}", link.display()))?;
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&torch, &link)
        .map_err(|e| format!("cannot link {} -> {}: {e}", link.display(), torch.display()))?;
    eprintln!("libtorch: {} -> {}", link.display(), torch.display());
    Ok(())
}

/// The Python packages the tests check convkit's files with, pinned: TensorBoard's event
/// reader, and ONNX's checker and ONNX Runtime for exported models.
const TEST_TOOLS: &[&str] = &["tensorboard==2.21.0", "onnx==1.23.2", "onnxruntime==1.32.0"];

/// When libtorch comes from the virtual environment (the `.libtorch/torch` link), makes
/// sure that environment also holds [`TEST_TOOLS`] (installing them once, about 100 MB), and
/// returns its Python, which `cargo xtask` hands to cargo as `CONVKIT_PYTHON`. A libtorch of
/// the user's own gives `None`: the tests that need the tools then say they are skipped
/// (and fail under CI=true).
fn ensure_test_tools(repo: &Path) -> Result<Option<PathBuf>, String> {
    if let Some(python) = env::var_os("CONVKIT_PYTHON") {
        return Ok(Some(PathBuf::from(python)));
    }
    let Ok(torch) = std::fs::canonicalize(repo.join(".libtorch").join("torch")) else {
        return Ok(None);
    };
    // <venv>/lib/python3.X/site-packages/torch
    let Some(venv) = torch.ancestors().nth(4) else {
        return Ok(None);
    };
    let python = venv.join("bin").join("python");
    if !python.exists() {
        return Ok(None);
    }
    let has_tools = Command::new(&python)
        .args(["-c", "import tensorboard, onnx, onnxruntime"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_tools {
        eprintln!(
            "installing the test tools into {}: {}",
            venv.display(),
            TEST_TOOLS.join(" ")
        );
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(TEST_TOOLS))?;
    }
    Ok(Some(python))
}

fn check_libtorch(dir: &Path) -> Result<(), String> {
    let lib = dir.join("lib").join("libtorch_cpu.so");
    let header = dir.join("include").join("torch").join("torch.h");
    let header_api = dir.join("include/torch/csrc/api/include/torch/torch.h");
    if lib.exists() && (header.exists() || header_api.exists()) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a libtorch folder (expected lib/libtorch_cpu.so and include/)",
            dir.display()
        ))
    }
}

fn venv_dir() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("CONVKIT_TORCH_VENV") {
        return Ok(PathBuf::from(dir));
    }
    let cache =
        convkit_cache().ok_or("neither XDG_CACHE_HOME nor HOME is set; set CONVKIT_TORCH_VENV")?;
    Ok(cache.join(format!("torch-{TORCH_VERSION}")))
}

/// `$XDG_CACHE_HOME/convkit`, else `~/.cache/convkit` (the build script looks there too).
fn convkit_cache() -> Option<PathBuf> {
    env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|cache| cache.join("convkit"))
}

/// The folder holding `gloo/` (Gloo's headers) that convkit's distributed layer compiles
/// against: the user's `CONVKIT_GLOO_INCLUDE`, else an earlier download in the cache, else
/// Debian's `libgloo-dev` fetched now (about 50 kB) and unpacked into
/// `<cache>/gloo-headers-<debian version>/`.
fn ensure_gloo_headers() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("CONVKIT_GLOO_INCLUDE") {
        let dir = PathBuf::from(dir);
        return if has_gloo_headers(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "CONVKIT_GLOO_INCLUDE={} holds no gloo/context.h",
                dir.display()
            ))
        };
    }
    let cache = convkit_cache().ok_or("neither XDG_CACHE_HOME nor HOME is set")?;
    if let Some(dir) = cached_gloo_headers(&cache) {
        return Ok(dir);
    }
    fetch_gloo_headers(&cache)
}

fn has_gloo_headers(include: &Path) -> bool {
    include.join("gloo").join("context.h").exists()
}

/// The newest `<cache>/gloo-headers-*/usr/include` holding Gloo's headers.
fn cached_gloo_headers(cache: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("gloo-headers-"))
        .map(|e| e.path().join("usr").join("include"))
        .filter(|include| has_gloo_headers(include))
        .collect();
    found.sort();
    found.pop()
}

fn fetch_gloo_headers(cache: &Path) -> Result<PathBuf, String> {
    let missing = |tool: &str| {
        format!(
            "Gloo's headers are missing and `{tool}` is not available to fetch Debian's \
             libgloo-dev; unpack its usr/include (or any Gloo checkout's headers matching \
             libtorch's) and set CONVKIT_GLOO_INCLUDE to the folder holding gloo/"
        )
    };
    for tool in ["apt-get", "dpkg-deb"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(missing(tool));
        }
    }
    eprintln!(
        "fetching Gloo's headers (Debian's libgloo-dev, headers only) into {}",
        cache.display()
    );
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let work = cache.join(format!(".gloo-download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let result = (|| {
        run(Command::new("apt-get")
            .args(["download", "libgloo-dev"])
            .current_dir(&work))?;
        let deb = std::fs::read_dir(&work)
            .map_err(|e| format!("cannot read {}: {e}", work.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or("apt-get download libgloo-dev left no .deb file")?;
        let version = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg("Version")
            .output()
            .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
        let version = String::from_utf8_lossy(&version.stdout)
            .trim()
            .replace(['/', ':'], "_");
        if version.is_empty() {
            return Err(format!("dpkg-deb found no Version in {}", deb.display()));
        }
        let unpacked = work.join("unpacked");
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
        if !has_gloo_headers(&unpacked.join("usr").join("include")) {
            return Err(format!(
                "{} holds no usr/include/gloo/context.h",
                deb.display()
            ));
        }
        let target = cache.join(format!("gloo-headers-{version}"));
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&unpacked, &target)
            .map_err(|e| format!("cannot move the headers to {}: {e}", target.display()))?;
        eprintln!("Gloo headers: {}", target.display());
        Ok(target.join("usr").join("include"))
    })();
    let _ = std::fs::remove_dir_all(&work);
    result.map_err(|e| format!("could not fetch Gloo's headers: {e}"))
}

/// `<venv>/lib/python3.X/site-packages/torch`, when torch is installed there.
fn find_torch_package(venv: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(venv.join("lib")).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages").join("torch"))
        .find(|torch| torch.join("lib").join("libtorch_cpu.so").exists())
}

fn install_torch(venv: &Path) -> Result<(), String> {
    eprintln!(
        "libtorch not found: installing PyPI's torch=={TORCH_VERSION} into {} \
         (about 2.7 GB, once per machine)",
        venv.display()
    );
    let python = env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    if !venv.join("bin").join("pip").exists() {
        run(Command::new(&python).args(["-m", "venv"]).arg(venv))?;
    }
    run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--disable-pip-version-check",
        &format!("torch=={TORCH_VERSION}"),
    ]))
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}
