//! The chapter's models as named recipes.

pub mod mnist_convnet;
pub mod small_convnet;

pub use mnist_convnet::mnist_convnet;
pub use small_convnet::{small_convnet, SmallConvnetOptions};

use crate::error::{Error, Result};
use crate::nn::Sequential;

/// Names accepted by [`by_name`].
pub const MODEL_NAMES: &[&str] = &["mnist", "small-convnet"];

/// A built-in recipe by name, with its default settings: `mnist` (alias `mnist_convnet`),
/// `small-convnet` (alias `small_convnet`; 180x180, two classes).
pub fn by_name(name: &str) -> Result<Sequential> {
    match name {
        "mnist" | "mnist_convnet" | "mnist-convnet" => Ok(mnist_convnet()),
        "small-convnet" | "small_convnet" => Ok(small_convnet(&SmallConvnetOptions::default())),
        other => Err(Error::InvalidConfig(format!(
            "unknown model `{other}`; known models: {}",
            MODEL_NAMES.join(", ")
        ))),
    }
}
