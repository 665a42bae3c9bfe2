//! What a geometric augmentation shows where its output looks outside the input image.

use serde::{Deserialize, Serialize};

/// How points outside the input are filled, as Keras' `fill_mode` (shown on a row
/// `a b c d`, with the input between the bars).
///
/// ```
/// use convkit::augment::FillMode;
///
/// assert_eq!(FillMode::default(), FillMode::Reflect);
/// assert_eq!(serde_json::to_string(&FillMode::Wrap).unwrap(), r#""wrap""#);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillMode {
    /// `d c b a | a b c d | d c b a`: mirrored about the outer edge of the last pixel
    /// (Keras' default).
    #[default]
    Reflect,
    /// `k k k k | a b c d | k k k k`: the layer's `fill_value` `k`.
    Constant,
    /// `a a a a | a b c d | d d d d`: the nearest edge pixel.
    Nearest,
    /// `a b c d | a b c d | a b c d`: wrapped around to the opposite edge.
    Wrap,
}

crate::names::named_settings!(
    FillMode,
    "fill mode",
    ["reflect", "constant", "nearest", "wrap"]
);

impl FillMode {
    /// The `padding_mode` of libtorch's `grid_sampler` that implements the mode (`0` zeros,
    /// `1` border, `2` reflection). With `align_corners = false`, reflection mirrors about
    /// the pixel edges, which is Keras' `reflect`. `Constant` samples zeros around a shifted
    /// image and `Wrap` samples wrapped coordinates inside a padded copy (see
    /// [`super::affine`]); the border mode only guards the latter against rounding.
    pub(crate) fn padding_mode(self) -> i64 {
        match self {
            FillMode::Constant => 0,
            FillMode::Nearest | FillMode::Wrap => 1,
            FillMode::Reflect => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_keras_names() {
        for (mode, name) in [
            (FillMode::Reflect, "reflect"),
            (FillMode::Constant, "constant"),
            (FillMode::Nearest, "nearest"),
            (FillMode::Wrap, "wrap"),
        ] {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<FillMode>(&json).unwrap(), mode);
        }
        assert!(serde_json::from_str::<FillMode>(r#""mirror""#).is_err());
    }

    #[test]
    fn every_listed_name_parses_and_prints_back() {
        crate::names::assert_names_round_trip::<FillMode>(FillMode::NAMES);
    }
}
