//! The chapter's data augmentation, as layers to put in front of a model.
//!
//! The layers themselves live in [`crate::augment`]; this is the recipe that picks them.
//! Put them first in a model, before the rescaling, as the chapter does:
//!
//! ```
//! use convkit::models::{chapter_augmentation, Sequential};
//! use convkit::nn::Activation;
//!
//! let mut model = Sequential::new("augmented", [3, 180, 180]);
//! for layer in chapter_augmentation() {
//!     model = model.add(layer);
//! }
//! let model = model.rescaling(1.0 / 255.0).conv2d(32, 3, Activation::Relu);
//! assert_eq!(model.layers[1].name, "random_rotation");
//! assert_eq!(model.output_shape().unwrap(), [32, 178, 178]);
//! ```

use super::layer_spec::LayerSpec;
use crate::augment::{FlipMode, RandomFlipSpec, RandomRotationSpec, RandomZoomSpec};

/// The chapter's augmentation (section 8.3): `RandomFlip("horizontal")`,
/// `RandomRotation(0.1)` (up to a tenth of a turn either way) and `RandomZoom(0.2)`, every
/// other setting at Keras' defaults (reflect fill, bilinear sampling).
pub fn chapter_augmentation() -> Vec<LayerSpec> {
    vec![
        LayerSpec::RandomFlip(RandomFlipSpec::new(FlipMode::Horizontal)),
        LayerSpec::RandomRotation(RandomRotationSpec::new(0.1)),
        LayerSpec::RandomZoom(RandomZoomSpec::new(0.2)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chapter_augmentation_is_flip_rotation_zoom_at_keras_defaults() {
        let layers = chapter_augmentation();
        let json = serde_json::to_string(&layers).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"[{"type":"random_flip","mode":"horizontal"},"#,
                r#"{"type":"random_rotation","factor":0.1,"fill_mode":"reflect","#,
                r#""interpolation":"bilinear","fill_value":0.0},"#,
                r#"{"type":"random_zoom","height_factor":0.2,"width_factor":null,"#,
                r#""fill_mode":"reflect","interpolation":"bilinear","fill_value":0.0}]"#
            )
        );
    }
}
