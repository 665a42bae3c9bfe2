//! Random crops, as Keras' `RandomCrop`.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::float_images;
use crate::error::{Error, Result};
use crate::nn::layer::{expect_rank, Layer};

/// Description of a layer that cuts a `height x width` window out of each image: in
/// training at a random place drawn per image (every place equally likely), at inference in
/// the centre (an odd pixel left over goes to the bottom or right margin, as in Keras).
///
/// Keras 3 differs in two details: it draws one place for the whole batch, and at inference
/// it crops the largest centred window of the target's aspect ratio and resizes it. The
/// plain centre crop keeps inference pixels as they are, at the scale training saw.
///
/// # Shapes
/// - input: `(batch, channels, H, W)`, bytes or floats, with `H >= height` and
///   `W >= width`
/// - output: `(batch, channels, height, width)`; in training `f32` for bytes (floats keep
///   their precision), at inference the input's type
///
/// ```
/// use convkit::augment::RandomCropSpec;
/// use convkit::nn::Layer;
/// use tch::Tensor;
///
/// let crop = RandomCropSpec::new(2, 2).build().unwrap();
/// let images = Tensor::arange(16, (tch::Kind::Uint8, tch::Device::Cpu)).view([1, 1, 4, 4]);
/// assert_eq!(crop.forward(&images, true).size(), [1, 1, 2, 2]);
/// let centre = crop.forward(&images, false);
/// assert_eq!(Vec::<u8>::try_from(centre.reshape([-1])).unwrap(), [5, 6, 9, 10]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomCropSpec {
    /// Height of the window, in pixels.
    pub height: i64,
    /// Width of the window, in pixels.
    pub width: i64,
}

impl RandomCropSpec {
    /// Windows of `height x width` pixels.
    pub fn new(height: i64, width: i64) -> Self {
        RandomCropSpec { height, width }
    }

    /// Output shape per sample for an input `(channels, H, W)`: `(channels, height, width)`.
    /// Fails when the window does not fit.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("random_crop", input, 3)?;
        self.build()?;
        if input[1] < self.height || input[2] < self.width {
            return Err(Error::InvalidConfig(format!(
                "random_crop: a {}x{} window does not fit an input of shape {input:?}",
                self.height, self.width
            )));
        }
        Ok(vec![input[0], self.height, self.width])
    }

    /// Builds the (parameter-free) layer, checking the window's size.
    pub fn build(&self) -> Result<RandomCrop> {
        if self.height < 1 || self.width < 1 {
            return Err(Error::InvalidConfig(format!(
                "random_crop: the window must have at least one pixel, got {}x{}",
                self.height, self.width
            )));
        }
        Ok(RandomCrop {
            height: self.height,
            width: self.width,
        })
    }
}

/// A built [`RandomCropSpec`].
#[derive(Debug)]
pub struct RandomCrop {
    height: i64,
    width: i64,
}

impl Layer for RandomCrop {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let (b, c, h, w) = xs
            .size4()
            .expect("images are (batch, channels, height, width)");
        let (ch, cw) = (self.height, self.width);
        if !train {
            return xs.narrow(2, (h - ch) / 2, ch).narrow(3, (w - cw) / 2, cw);
        }
        let device = xs.device();
        // Per image, the rows top..top+ch and the columns left..left+cw, gathered for the
        // whole batch at once.
        let top = Tensor::randint(h - ch + 1, [b, 1], (Kind::Int64, device));
        let left = Tensor::randint(w - cw + 1, [b, 1], (Kind::Int64, device));
        let rows = (top + Tensor::arange(ch, (Kind::Int64, device)).view([1, ch]))
            .view([b, 1, ch, 1])
            .expand([b, c, ch, w], false);
        let cols = (left + Tensor::arange(cw, (Kind::Int64, device)).view([1, cw]))
            .view([b, 1, 1, cw])
            .expand([b, c, ch, cw], false);
        float_images(&xs.gather(2, &rows, false).gather(3, &cols, false))
    }
}

describe_augmentation!(
    RandomCropSpec,
    "RandomCrop",
    fallible,
    vec![(RandomCropSpec::new(4, 3), vec![3, 6, 5])]
);

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn grid(n: i64) -> Tensor {
        Tensor::arange(n * 36, (Kind::Float, Device::Cpu)).view([n, 1, 6, 6])
    }

    #[test]
    fn output_shape_is_the_window_and_must_fit() {
        let spec = RandomCropSpec::new(4, 5);
        assert_eq!(spec.output_shape(&[3, 6, 6]).unwrap(), [3, 4, 5]);
        assert_eq!(spec.output_shape(&[3, 4, 5]).unwrap(), [3, 4, 5]);
        let err = spec.output_shape(&[3, 3, 6]).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        assert!(RandomCropSpec::new(0, 5).build().is_err());
        assert!(RandomCropSpec::new(4, 5).output_shape(&[6, 6]).is_err());
    }

    #[test]
    fn inference_crops_the_centre() {
        let layer = RandomCropSpec::new(2, 3).build().unwrap();
        let bytes = grid(1).to_kind(Kind::Uint8);
        let ys = layer.forward(&bytes, false);
        assert_eq!(ys.kind(), Kind::Uint8);
        // Rows 2..4, columns 1..4 of a 6x6 grid numbered row by row.
        let values = Vec::<u8>::try_from(ys.reshape([-1])).unwrap();
        assert_eq!(values, [13, 14, 15, 19, 20, 21]);
        let same = RandomCropSpec::new(6, 6)
            .build()
            .unwrap()
            .forward(&bytes, false);
        assert!(same.equal(&bytes));
    }

    #[test]
    fn training_cuts_a_window_of_each_image_at_its_own_place() {
        let layer = RandomCropSpec::new(3, 2).build().unwrap();
        let xs = grid(64);
        let ys = layer.forward(&xs, true);
        assert_eq!(ys.size(), [64, 1, 3, 2]);
        assert_eq!(ys.kind(), Kind::Float);
        let mut places = std::collections::HashSet::new();
        for i in 0..64 {
            // The top-left value names the place; the rest of the window must follow it.
            let corner = ys.double_value(&[i, 0, 0, 0]) as i64 - 36 * i;
            let (top, left) = (corner / 6, corner % 6);
            assert!(top <= 3 && left <= 4, "window at ({top}, {left})");
            let expected = xs.get(i).narrow(1, top, 3).narrow(2, left, 2);
            assert!(ys.get(i).equal(&expected), "image {i}");
            places.insert((top, left));
        }
        assert!(places.len() > 5, "only {} places drawn", places.len());
    }

    #[test]
    fn the_same_seed_repeats_the_windows() {
        let layer = RandomCropSpec::new(3, 3).build().unwrap();
        let xs = grid(8).to_kind(Kind::Uint8);
        tch::manual_seed(8);
        let first = layer.forward(&xs, true);
        tch::manual_seed(8);
        let second = layer.forward(&xs, true);
        assert!(first.equal(&second));
    }
}
