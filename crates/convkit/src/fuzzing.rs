//! The parsers of user files, each fed one untrusted input: the entry points of the fuzz
//! harnesses (`tests/fuzz.rs` on stable, `fuzz/` for `cargo fuzz`). Not part of the API.

use std::path::Path;

use tch::Device;

use crate::data::idx::read_idx;
use crate::data::image_folder::{load_image, ImageOptions};
use crate::workflows::run_spec::RunSpec;

/// A parser that reads a file a user hands to convkit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parser {
    /// An IDX array (MNIST), raw or gzipped.
    Idx,
    /// An image file (JPEG, PNG, GIF, WebP, BMP), decoded and resized.
    Image,
    /// A safetensors weights file.
    Safetensors,
    /// A PyTorch checkpoint (zip or legacy container, and its pickle).
    Pth,
    /// A model description (`model.json`), built into a model with its weights.
    ModelJson,
    /// A run's settings (`run.json`), of a training or an MNIST run.
    RunJson,
}

impl Parser {
    /// Every parser.
    pub const ALL: [Parser; 6] = [
        Parser::Idx,
        Parser::Image,
        Parser::Safetensors,
        Parser::Pth,
        Parser::ModelJson,
        Parser::RunJson,
    ];

    /// The file name the input is written under.
    fn file_name(self) -> &'static str {
        match self {
            Parser::Idx => "input.idx",
            Parser::Image => "input.img",
            Parser::Safetensors => "input.safetensors",
            Parser::Pth => "input.pth",
            Parser::ModelJson => "model.json",
            Parser::RunJson => "run.json",
        }
    }
}

/// Writes `bytes` into `scratch` (a folder) and runs `parser` on it; returns whether the
/// input was accepted. `companion` is the weights file for [`Parser::ModelJson`] (the
/// description is loaded with them, as `Model::load` does). Errors are the expected
/// answer to bad input; a panic or a hang is a bug.
pub fn parse(parser: Parser, bytes: &[u8], scratch: &Path, companion: Option<&[u8]>) -> bool {
    let path = scratch.join(parser.file_name());
    if std::fs::write(&path, bytes).is_err() {
        return false;
    }
    match parser {
        Parser::Idx => read_idx(&path).is_ok(),
        Parser::Image => {
            load_image(&path, &ImageOptions::new((24, 24), Default::default())).is_ok()
        }
        Parser::Safetensors => crate::weights::read_weights(&path).is_ok(),
        Parser::Pth => crate::weights::read_pth(&path).is_ok(),
        Parser::ModelJson => {
            let weights = scratch.join("model.safetensors");
            if std::fs::write(&weights, companion.unwrap_or_default()).is_err() {
                return false;
            }
            crate::Model::load(&weights, Device::Cpu).is_ok()
        }
        Parser::RunJson => RunSpec::read(&path).is_ok(),
    }
}
