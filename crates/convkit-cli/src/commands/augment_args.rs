//! Augmentation flags shared by `convkit train` and `convkit augment-preview`.

use clap::Args;
use convkit::augment::{
    FillMode, FlipMode, RandomContrastSpec, RandomCropSpec, RandomFlipSpec, RandomRotationSpec,
    RandomTranslationSpec, RandomZoomSpec,
};
use convkit::models::LayerSpec;

/// Data augmentation, active only in training: one random draw per image.
#[derive(Debug, Args)]
pub struct AugmentArgs {
    /// The chapter's augmentation: --flip horizontal --rotation 0.1 --zoom 0.2 (each can be
    /// overridden by its own flag).
    #[arg(long, help_heading = "Augmentation")]
    augment: bool,

    /// Random mirror images: horizontal, vertical or horizontal_and_vertical.
    #[arg(long, value_name = "MODE", value_parser = super::parse_setting::<FlipMode>, help_heading = "Augmentation")]
    flip: Option<FlipMode>,

    /// Random rotation of up to F of a full turn either way (0.1 = 36 degrees).
    #[arg(long, value_name = "F", help_heading = "Augmentation")]
    rotation: Option<f64>,

    /// Random zoom by up to F either way (0.2 = 20% in or out).
    #[arg(long, value_name = "F", help_heading = "Augmentation")]
    zoom: Option<f64>,

    /// Random shift by up to F of the height and of the width.
    #[arg(long, value_name = "F", help_heading = "Augmentation")]
    translation: Option<f64>,

    /// Random contrast factor in [1 - F, 1 + F].
    #[arg(long, value_name = "F", help_heading = "Augmentation")]
    contrast: Option<f64>,

    /// Random N x N crop in training, the centre crop at inference.
    #[arg(long, value_name = "N", help_heading = "Augmentation")]
    crop: Option<i64>,

    /// How rotation, zoom and translation fill the pixels they uncover: reflect
    /// (d c b a | a b c d | d c b a), constant (0 0 0 0 | a b c d), nearest
    /// (a a a a | a b c d | d d d d) or wrap (a b c d | a b c d | a b c d).
    #[arg(
        long,
        value_name = "MODE",
        default_value_t = FillMode::default(),
        value_parser = super::parse_setting::<FillMode>,
        help_heading = "Augmentation"
    )]
    fill_mode: FillMode,
}

impl AugmentArgs {
    /// The augmentation layers these flags ask for, in the order they are applied: crop,
    /// flip, rotation, zoom, translation, contrast.
    pub fn layers(&self) -> anyhow::Result<Vec<LayerSpec>> {
        let fill_mode = self.fill_mode;
        let chapter = |value: Option<f64>, default: f64| value.or(self.augment.then_some(default));
        let flip = self.flip.or(self.augment.then_some(FlipMode::Horizontal));
        let mut layers = Vec::new();
        if let Some(n) = self.crop {
            layers.push(LayerSpec::RandomCrop(RandomCropSpec::new(n, n)));
        }
        if let Some(mode) = flip {
            layers.push(LayerSpec::RandomFlip(RandomFlipSpec::new(mode)));
        }
        if let Some(f) = chapter(self.rotation, 0.1) {
            layers.push(LayerSpec::RandomRotation(RandomRotationSpec {
                fill_mode,
                ..RandomRotationSpec::new(f)
            }));
        }
        if let Some(f) = chapter(self.zoom, 0.2) {
            layers.push(LayerSpec::RandomZoom(RandomZoomSpec {
                fill_mode,
                ..RandomZoomSpec::new(f)
            }));
        }
        if let Some(f) = self.translation {
            layers.push(LayerSpec::RandomTranslation(RandomTranslationSpec {
                fill_mode,
                ..RandomTranslationSpec::new(f, f)
            }));
        }
        if let Some(f) = self.contrast {
            layers.push(LayerSpec::RandomContrast(RandomContrastSpec::new(f)));
        }
        Ok(layers)
    }
}
