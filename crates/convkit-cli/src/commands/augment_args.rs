//! Augmentation flags shared by `convkit train` and `convkit augment-preview`.

use clap::Args;
use convkit::nn::LayerSpec;

/// Data augmentation (active only in training).
#[derive(Debug, Args)]
pub struct AugmentArgs {
    /// The chapter's augmentation: horizontal flip, rotation 0.1, zoom 0.2.
    #[arg(long)]
    augment: bool,
}

impl AugmentArgs {
    /// The augmentation layers these flags ask for, in the order they are applied.
    pub fn layers(&self) -> anyhow::Result<Vec<LayerSpec>> {
        anyhow::ensure!(!self.augment, "augmentation is not available yet");
        Ok(Vec::new())
    }
}
