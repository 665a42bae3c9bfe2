//! The architectures a model trained from scratch on an image folder can have.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::mini_xception::mini_xception;
use super::scratch_options::ScratchOptions;
use super::sequential::Sequential;
use super::small_convnet::small_convnet;
use crate::error::{Error, Result};

/// A from-scratch architecture, by the name `convkit train --model` takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScratchModel {
    /// The chapter's convnet: five 3x3 convolutions with max pooling, Flatten, Dense
    /// (991,041 parameters at 180x180).
    #[default]
    SmallConvnet,
    /// Residual blocks of separable convolutions with batch normalization, global average
    /// pooling (the modern design of the book's next chapter).
    MiniXception,
    /// The chapter's MNIST convnet (section 1): 28x28 grey images, 10 classes.
    MnistConvnet,
}

impl ScratchModel {
    /// Every architecture for image folders, in the order help lists them (the MNIST convnet is
    /// `convkit mnist`'s).
    pub const ALL: [ScratchModel; 2] = [ScratchModel::SmallConvnet, ScratchModel::MiniXception];

    /// The name used on the command line and in run folders.
    pub fn name(&self) -> &'static str {
        match self {
            ScratchModel::SmallConvnet => "small-convnet",
            ScratchModel::MiniXception => "mini-xception",
            ScratchModel::MnistConvnet => "mnist-convnet",
        }
    }

    /// Whether it is the MNIST convnet, which takes MNIST's images only.
    pub fn is_mnist(&self) -> bool {
        *self == ScratchModel::MnistConvnet
    }

    /// The architecture for `options` (the MNIST convnet takes none: it is the chapter's,
    /// for 28x28x1 images and 10 classes).
    pub fn build(&self, options: &ScratchOptions) -> Sequential {
        match self {
            ScratchModel::SmallConvnet => small_convnet(options),
            ScratchModel::MiniXception => mini_xception(options),
            ScratchModel::MnistConvnet => super::mnist_convnet(),
        }
    }
}

impl fmt::Display for ScratchModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScratchModel {
    type Err = Error;

    /// Parses `small-convnet` or `mini-xception` (underscores work too).
    fn from_str(name: &str) -> Result<ScratchModel> {
        let wanted = name.to_ascii_lowercase().replace('_', "-");
        ScratchModel::ALL
            .into_iter()
            .find(|m| m.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = ScratchModel::ALL.iter().map(|m| m.name()).collect();
                Error::InvalidConfig(format!(
                    "unknown model `{name}`; known models: {}",
                    names.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for model in ScratchModel::ALL {
            assert_eq!(model.name().parse::<ScratchModel>().unwrap(), model);
            let json = serde_json::to_string(&model).unwrap();
            assert_eq!(json, format!("\"{}\"", model.name()));
        }
        assert_eq!(
            "mini_xception".parse::<ScratchModel>().unwrap(),
            ScratchModel::MiniXception
        );
        let err = "resnet".parse::<ScratchModel>().unwrap_err().to_string();
        assert!(err.contains("mini-xception"), "{err}");
    }
}
