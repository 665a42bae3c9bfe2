//! The model part of a run description: a from-scratch recipe, a pretrained base with a
//! head, or a checkpoint to continue from; and the augmentation and dropout around it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::models::LayerSpec;
use crate::models::{BackboneArch, Head, ScratchModel};
use crate::workflows::transfer::TransferMode;

/// Which layers of a pretrained base train too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unfreeze {
    /// Layers by name or prefix (`block5`).
    #[serde(default)]
    pub layers: Vec<String>,
    /// The last N layers of the base.
    #[serde(default)]
    pub last: Option<usize>,
}

impl Unfreeze {
    /// Whether it unfreezes nothing.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty() && self.last.is_none()
    }
}

/// Where the model's architecture and weights come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// A recipe with fresh weights (seeded).
    Scratch {
        /// The recipe.
        architecture: ScratchModel,
    },
    /// A pretrained ImageNet base under a new head.
    Pretrained {
        /// The base.
        base: BackboneArch,
        /// The head (default: the chapter's for VGG16, pooled for the others).
        #[serde(default)]
        head: Option<Head>,
        /// End to end through the frozen base, or on its cached features.
        #[serde(default)]
        mode: TransferMode,
        /// The base's weights file (default: found via `$CONVKIT_MODELS` or the cache).
        #[serde(default)]
        weights: Option<PathBuf>,
        /// Where features are cached (default: the user's cache folder).
        #[serde(default)]
        features_cache: Option<PathBuf>,
        /// Base layers that train too.
        #[serde(default)]
        unfreeze: Unfreeze,
    },
    /// A trained model's layers, weights and classes (fine-tuning, or training on past a
    /// plateau).
    Checkpoint {
        /// The `.safetensors` checkpoint.
        path: PathBuf,
        /// Base layers that train too.
        #[serde(default)]
        unfreeze: Unfreeze,
    },
}

/// The model of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Where it comes from.
    pub source: ModelSource,
    /// Augmentation layers in front, active only in training (added to a checkpoint only
    /// when it has none).
    #[serde(default)]
    pub augmentation: Vec<LayerSpec>,
    /// Dropout before the classifier (`None`: the recipe's default; 0.5 under a
    /// pretrained base's head).
    #[serde(default)]
    pub dropout: Option<f64>,
}

impl ModelSpec {
    /// `source` without augmentation or dropout.
    pub fn new(source: ModelSource) -> Self {
        ModelSpec {
            source,
            augmentation: Vec::new(),
            dropout: None,
        }
    }

    /// The layers of a pretrained base that train.
    pub fn unfreeze(&self) -> Unfreeze {
        match &self.source {
            ModelSource::Pretrained { unfreeze, .. } | ModelSource::Checkpoint { unfreeze, .. } => {
                unfreeze.clone()
            }
            ModelSource::Scratch { .. } => Unfreeze::default(),
        }
    }

    /// Whether the head trains on cached features of a pretrained base.
    pub fn uses_cached_features(&self) -> bool {
        matches!(
            self.source,
            ModelSource::Pretrained {
                mode: TransferMode::Features,
                ..
            }
        )
    }

    /// The pretrained base, when there is one to build (not for a checkpoint).
    pub fn base(&self) -> Option<BackboneArch> {
        match self.source {
            ModelSource::Pretrained { base, .. } => Some(base),
            _ => None,
        }
    }

    /// A short name for run folders: the recipe's or the base's.
    pub fn short_name(&self) -> String {
        match &self.source {
            ModelSource::Scratch { architecture } => architecture.name().into(),
            ModelSource::Pretrained { base, .. } => base.name().into(),
            ModelSource::Checkpoint { .. } => "finetune".into(),
        }
    }
}
