//! The library's build script: the rpath of its tests and examples (shared with the CLI),
//! and the C++ extensions compiled against the libtorch that torch-sys links:
//! `csrc/libtorch_ext.cpp`, for what tch does not expose (see `src/runtime/`), and
//! `csrc/distributed.cpp`, c10d's process groups (see `src/distributed/`).
//!
//! The distributed shim needs Gloo's headers, which the PyTorch wheel lacks: from
//! `CONVKIT_GLOO_INCLUDE` (set by `cargo xtask`), else from where `cargo xtask setup`
//! unpacks them (`$XDG_CACHE_HOME` or `~/.cache`, `convkit/gloo-headers-*/usr/include`).
//! Without them the shim is compiled as stubs, the `convkit_no_c10d` cfg is set, and
//! `convkit::distributed` returns an error saying so; under `CI=true` the build fails
//! instead, so that CI never silently skips the distributed tests.

#[path = "../../build/libtorch_rpath.rs"]
mod libtorch_rpath;

use std::path::PathBuf;

fn main() {
    libtorch_rpath::link_rpath();
    println!("cargo:rerun-if-changed=csrc/libtorch_ext.cpp");
    println!("cargo:rerun-if-changed=csrc/distributed.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-env-changed=CONVKIT_GLOO_INCLUDE");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo::rustc-check-cfg=cfg(convkit_no_c10d)");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        // torch-sys built with `doc-only`: nothing to link against.
        return;
    };
    let include = PathBuf::from(&lib_dir).join("..").join("include");
    // PyPI's and pytorch.org's libtorch 2.x use the C++11 string ABI, as torch-sys assumes.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let libtorch_build = || {
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .pic(true)
            .std("c++20")
            .include(&include)
            .include(include.join("torch/csrc/api/include"))
            .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
            .define("GLOG_USE_GLOG_EXPORT", None)
            .flag_if_supported("-Wno-unused-parameter")
            .flag_if_supported("-Wno-deprecated-declarations");
        build
    };
    libtorch_build()
        .file("csrc/libtorch_ext.cpp")
        .compile("convkit_libtorch_ext");

    let mut distributed = libtorch_build();
    match gloo_include() {
        Some(gloo) => {
            println!("cargo:rerun-if-changed={}", gloo.join("gloo").display());
            distributed
                .include(&gloo)
                .define("USE_C10D_GLOO", None)
                .define("CONVKIT_HAVE_C10D", None);
        }
        None if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!(
            "Gloo's headers were not found (CONVKIT_GLOO_INCLUDE, or ~/.cache/convkit/\
             gloo-headers-*): run `cargo xtask setup`; CI must build the distributed layer"
        ),
        None => {
            println!(
                "cargo:warning=Gloo's headers were not found: convkit is built without \
                 c10d (run `cargo xtask setup` to fetch them)"
            );
            println!("cargo:rustc-cfg=convkit_no_c10d");
        }
    }
    distributed
        .file("csrc/distributed.cpp")
        .compile("convkit_distributed");
}

/// The folder holding `gloo/context.h`: `CONVKIT_GLOO_INCLUDE`, else the newest of
/// `<cache>/convkit/gloo-headers-*/usr/include` (where `cargo xtask setup` puts them).
fn gloo_include() -> Option<PathBuf> {
    let has_headers = |dir: &PathBuf| dir.join("gloo").join("context.h").exists();
    if let Some(dir) = std::env::var_os("CONVKIT_GLOO_INCLUDE") {
        return Some(PathBuf::from(dir)).filter(has_headers);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?
        .join("convkit");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("gloo-headers-"))
        .map(|e| e.path().join("usr").join("include"))
        .filter(has_headers)
        .collect();
    found.sort();
    found.pop()
}
