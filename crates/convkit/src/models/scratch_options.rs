//! What a from-scratch architecture is built for.

use super::layer_spec::LayerSpec;

/// What a from-scratch architecture is built for: the input size, the classes, the
/// dropout and the augmentation in front of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScratchOptions {
    /// Side of the square input images (chapter: 180).
    pub image_size: i64,
    /// Number of classes: 2 gives one sigmoid output, more give a softmax.
    pub classes: usize,
    /// Dropout rate before the classifier; `None` is the architecture's own default (none for
    /// the small convnet, 0.5 for mini-Xception).
    pub dropout: Option<f64>,
    /// Augmentation layers put in front of the model, active only in training.
    pub augmentation: Vec<LayerSpec>,
}

impl Default for ScratchOptions {
    fn default() -> Self {
        ScratchOptions {
            image_size: 180,
            classes: 2,
            dropout: None,
            augmentation: Vec::new(),
        }
    }
}
