//! Build script shared by the `convkit` library and the `convkit` binary.
//!
//! torch-sys links libtorch but leaves the run-time search path to its users; without it a
//! binary would only start with `LD_LIBRARY_PATH` set. This script records libtorch's `lib/`
//! folder in the rpath of every binary the package builds (the CLI, tests, examples).
//!
//! It also keeps `libtorch_cuda` linked when the libtorch has it: nothing in convkit calls
//! into that library directly, so the linker's `--as-needed` would drop it, and CUDA devices
//! would then be invisible at run time.

#[allow(dead_code)] // the library's build script calls `link_rpath` and has its own `main`
fn main() {
    link_rpath();
}

/// Records libtorch's `lib/` folder in the rpath and keeps `libtorch_cuda` linked.
pub fn link_rpath() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    // Resolve links (such as the repository's `.libtorch/torch`) so that a copied or
    // installed binary still finds the libraries.
    let lib_dir = std::fs::canonicalize(&lib_dir)
        .map(|p| p.display().to_string())
        .unwrap_or(lib_dir);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    let cuda = std::path::Path::new(&lib_dir).join("libtorch_cuda.so");
    if cuda.exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
