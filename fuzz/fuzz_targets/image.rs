//! `cargo +nightly fuzz run image`: convkit's Image parser on libFuzzer's inputs.
#![no_main]

use convkit::fuzzing::{parse, Parser};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static SCRATCH: tempfile::TempDir = tempfile::tempdir().expect("a scratch folder");
}

fuzz_target!(|data: &[u8]| {
    SCRATCH.with(|dir| {
        parse(Parser::Image, data, dir.path(), None);
    });
});
