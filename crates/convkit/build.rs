//! The library's build script: the rpath of its tests and examples (shared with the CLI),
//! and the C++ extension (`csrc/libtorch_ext.cpp`) compiled against the libtorch that
//! torch-sys links, for what tch does not expose (see `src/runtime/`).

#[path = "../../build/libtorch_rpath.rs"]
mod libtorch_rpath;

use std::path::PathBuf;

fn main() {
    libtorch_rpath::link_rpath();
    println!("cargo:rerun-if-changed=csrc/libtorch_ext.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        // torch-sys built with `doc-only`: nothing to link against.
        return;
    };
    let include = PathBuf::from(&lib_dir).join("..").join("include");
    // PyPI's and pytorch.org's libtorch 2.x use the C++11 string ABI, as torch-sys assumes.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++20")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .define("GLOG_USE_GLOG_EXPORT", None)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .file("csrc/libtorch_ext.cpp")
        .compile("convkit_libtorch_ext");
}
