//! Random mirror images, as Keras' `RandomFlip`.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::float_images;
use crate::error::Result;
use crate::nn::layer::{expect_rank, Layer};

/// Which mirror images [`RandomFlipSpec`] draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipMode {
    /// Left-right mirror images.
    Horizontal,
    /// Upside-down images.
    Vertical,
    /// Both, each drawn on its own (Keras' default mode).
    #[default]
    HorizontalAndVertical,
}

crate::names::named_settings!(
    FlipMode,
    "flip mode",
    ["horizontal", "vertical", "horizontal_and_vertical"]
);

/// Description of a layer that, in training, mirrors each image with probability 1/2
/// (left-right, upside-down, or each of the two on its own draw); at inference it passes
/// its input through.
///
/// # Shapes
/// - input: `(batch, channels, height, width)`, bytes or floats
/// - output: the same shape; in training `f32` for bytes, floats keep their precision
///
/// ```
/// use convkit::augment::{FlipMode, RandomFlipSpec};
/// use convkit::nn::Layer;
/// use tch::Tensor;
///
/// let flip = RandomFlipSpec::new(FlipMode::Horizontal).build();
/// let images = Tensor::from_slice(&[1u8, 2, 3]).view([1, 1, 1, 3]);
/// let out = Vec::<f32>::try_from(flip.forward(&images, true).view([-1])).unwrap();
/// assert!(out == [1.0, 2.0, 3.0] || out == [3.0, 2.0, 1.0]);
/// assert!(flip.forward(&images, false).equal(&images));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomFlipSpec {
    /// The axes flipped.
    #[serde(default)]
    pub mode: FlipMode,
}

impl RandomFlipSpec {
    /// Flips along `mode`.
    pub fn new(mode: FlipMode) -> Self {
        RandomFlipSpec { mode }
    }

    /// Output shape per sample for an input `(channels, height, width)`: the same.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("random_flip", input, 3)?;
        Ok(input.to_vec())
    }

    /// Builds the (parameter-free) layer.
    pub fn build(&self) -> RandomFlip {
        RandomFlip { mode: self.mode }
    }
}

/// A built [`RandomFlipSpec`].
#[derive(Debug)]
pub struct RandomFlip {
    mode: FlipMode,
}

/// Flips the images of `xs` along `axis` where a fresh draw (per image) says so.
fn flip_some(xs: &Tensor, axis: i64) -> Tensor {
    let b = xs.size()[0];
    let chosen = Tensor::rand([b, 1, 1, 1], (Kind::Float, xs.device())).lt(0.5);
    xs.flip([axis]).where_self(&chosen, xs)
}

impl Layer for RandomFlip {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        if !train {
            return xs.shallow_clone();
        }
        let xs = float_images(xs);
        match self.mode {
            FlipMode::Horizontal => flip_some(&xs, 3),
            FlipMode::Vertical => flip_some(&xs, 2),
            FlipMode::HorizontalAndVertical => flip_some(&flip_some(&xs, 3), 2),
        }
    }
}

describe_augmentation!(
    RandomFlipSpec,
    "RandomFlip",
    vec![
        (RandomFlipSpec::new(FlipMode::Horizontal), vec![3, 5, 6]),
        (
            RandomFlipSpec::new(FlipMode::HorizontalAndVertical),
            vec![1, 4, 4]
        )
    ]
);

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The 2x3 image `1 2 3 / 4 5 6`, repeated `n` times.
    fn batch(n: i64) -> Tensor {
        Tensor::arange_start(1, 7, (Kind::Float, Device::Cpu))
            .view([1, 1, 2, 3])
            .repeat([n, 1, 1, 1])
    }

    fn image(values: [f32; 6]) -> Tensor {
        Tensor::from_slice(&values).view([1, 2, 3])
    }

    /// For each output image, the index of the candidate it equals (panics if none).
    fn outcomes(ys: &Tensor, candidates: &[Tensor]) -> Vec<usize> {
        (0..ys.size()[0])
            .map(|i| {
                let y = ys.get(i);
                candidates
                    .iter()
                    .position(|c| y.equal(c))
                    .unwrap_or_else(|| panic!("unexpected image {y}"))
            })
            .collect()
    }

    fn forward(mode: FlipMode, xs: &Tensor) -> Tensor {
        RandomFlipSpec::new(mode).build().forward(xs, true)
    }

    #[test]
    fn every_listed_mode_parses_and_prints_back() {
        crate::names::assert_names_round_trip::<FlipMode>(FlipMode::NAMES);
        assert_eq!(
            "horizontal-and-vertical".parse::<FlipMode>().unwrap(),
            FlipMode::HorizontalAndVertical
        );
        let err = "mirror".parse::<FlipMode>().unwrap_err().to_string();
        assert!(err.contains("horizontal_and_vertical"), "{err}");
    }

    #[test]
    fn a_horizontal_flip_reverses_the_columns() {
        let original = image([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let reversed = image([3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        let seen = outcomes(
            &forward(FlipMode::Horizontal, &batch(64)),
            &[original, reversed],
        );
        assert!(seen.contains(&0) && seen.contains(&1), "{seen:?}");
    }

    #[test]
    fn a_vertical_flip_reverses_the_rows() {
        let original = image([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let upside_down = image([4.0, 5.0, 6.0, 1.0, 2.0, 3.0]);
        let seen = outcomes(
            &forward(FlipMode::Vertical, &batch(64)),
            &[original, upside_down],
        );
        assert!(seen.contains(&0) && seen.contains(&1), "{seen:?}");
    }

    #[test]
    fn both_axes_are_drawn_independently() {
        let candidates = [
            image([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            image([3.0, 2.0, 1.0, 6.0, 5.0, 4.0]),
            image([4.0, 5.0, 6.0, 1.0, 2.0, 3.0]),
            image([6.0, 5.0, 4.0, 3.0, 2.0, 1.0]),
        ];
        let seen = outcomes(
            &forward(FlipMode::HorizontalAndVertical, &batch(200)),
            &candidates,
        );
        for k in 0..4 {
            let share = seen.iter().filter(|&&s| s == k).count();
            assert!((20..=80).contains(&share), "outcome {k}: {share} of 200");
        }
    }

    #[test]
    fn bytes_become_floats_in_training_and_pass_through_at_inference() {
        let layer = RandomFlipSpec::new(FlipMode::Horizontal).build();
        let bytes = batch(4).to_kind(Kind::Uint8);
        let ys = layer.forward(&bytes, true);
        assert_eq!(ys.kind(), Kind::Float);
        assert_eq!(ys.sum(Kind::Float).double_value(&[]), 4.0 * 21.0);
        let same = layer.forward(&bytes, false);
        assert_eq!(same.kind(), Kind::Uint8);
        assert!(same.equal(&bytes));
        let doubles = batch(2).to_kind(Kind::Double);
        assert_eq!(layer.forward(&doubles, true).kind(), Kind::Double);
    }

    #[test]
    fn the_same_seed_repeats_the_draws() {
        let xs = batch(32);
        tch::manual_seed(11);
        let first = forward(FlipMode::HorizontalAndVertical, &xs);
        tch::manual_seed(11);
        let second = forward(FlipMode::HorizontalAndVertical, &xs);
        assert!(first.equal(&second));
    }
}
