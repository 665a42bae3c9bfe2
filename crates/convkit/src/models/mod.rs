//! The chapter's models as named recipes.

pub mod mnist_convnet;

pub use mnist_convnet::mnist_convnet;

use crate::error::{Error, Result};
use crate::nn::Sequential;

/// Names accepted by [`by_name`].
pub const MODEL_NAMES: &[&str] = &["mnist"];

/// A built-in recipe by name: `mnist` (alias `mnist_convnet`).
pub fn by_name(name: &str) -> Result<Sequential> {
    match name {
        "mnist" | "mnist_convnet" | "mnist-convnet" => Ok(mnist_convnet()),
        other => Err(Error::InvalidConfig(format!(
            "unknown model `{other}`; known models: {}",
            MODEL_NAMES.join(", ")
        ))),
    }
}
