//! Progressive resizing: the first epochs train on smaller images.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// Progressive resizing, as fastai's DAWNBench runs and EfficientNet-V2's progressive
/// learning use it: the training images of epoch 1 are shrunk to `start_size` pixels
/// high (the width in proportion), the size grows linearly over the first `ramp` of the
/// epochs, and the rest of the run trains at full size. Small images make the early epochs
/// cheaper (a convolution's cost grows with the square of the side) while the model learns
/// the coarse features; the full-size epochs at the end adapt it, and its batch-norm
/// statistics, to the size it is validated and used at. Validation is always at full size.
///
/// Sizes are rounded down to a multiple of 8 and never fall below `start_size`. The size of
/// an epoch depends on the epoch alone, so a resumed run trains at the sizes an
/// uninterrupted one would. The model must take any image size: a global pooling before its
/// classifier (the mini-Xception, MobileNetV2), not a Flatten into a Dense layer (the
/// chapter's convnets, VGG16's Flatten head).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressiveResizing {
    /// Side of the training images in the first epoch, in pixels.
    pub start_size: i64,
    /// Fraction of the epochs over which the side grows to the full size (fastai's
    /// DAWNBench schedule: about half).
    pub ramp: f64,
}

impl ProgressiveResizing {
    /// Growing from `start_size` over the first half of the epochs.
    pub fn from(start_size: i64) -> Self {
        ProgressiveResizing {
            start_size,
            ramp: 0.5,
        }
    }

    /// Refuses a start size under 8 pixels and a ramp outside (0, 1].
    pub fn check(&self) -> Result<()> {
        if self.start_size < 8 {
            return Err(Error::InvalidConfig(format!(
                "progressive resizing: the start size must be at least 8 pixels, not {}",
                self.start_size
            )));
        }
        if !(self.ramp > 0.0 && self.ramp <= 1.0) {
            return Err(Error::InvalidConfig(format!(
                "progressive resizing: the ramp must be a fraction of the epochs in (0, 1], \
                 not {}",
                self.ramp
            )));
        }
        Ok(())
    }

    /// Refuses images of side `full` that are not larger than the start size.
    pub fn check_full_size(&self, full: i64) -> Result<()> {
        if self.start_size >= full {
            return Err(Error::InvalidConfig(format!(
                "progressive resizing: the start size ({}) must be smaller than the images \
                 ({full}x{full})",
                self.start_size
            )));
        }
        Ok(())
    }

    /// The number of epochs, of `epochs`, that grow the images: every later epoch trains at
    /// full size (none, with a ramp of 1).
    pub fn ramp_epochs(&self, epochs: usize) -> usize {
        (self.ramp * epochs as f64).round().max(1.0) as usize
    }

    /// The side (the height, for images that are not square) of the training images in
    /// `epoch` (1-based) of `epochs`, for images of side `full`.
    pub fn size_at(&self, epoch: usize, epochs: usize, full: i64) -> i64 {
        let ramp_epochs = self.ramp_epochs(epochs);
        if epoch > ramp_epochs || self.start_size >= full {
            return full;
        }
        let progress = (epoch - 1) as f64 / ramp_epochs as f64;
        let size = self.start_size as f64 + progress * (full - self.start_size) as f64;
        ((size as i64) / 8 * 8).clamp(self.start_size, full)
    }

    /// `images` (a batch `(B, C, H, W)`, bytes or floats) shrunk to a height of `size`
    /// pixels, the width in proportion, with an antialiased bilinear filter (as PIL's and
    /// torchvision's `antialias=True`); floats come out, on the scale the images had.
    /// Images already that height come back as they are.
    pub(crate) fn resize(images: &Tensor, size: i64) -> Tensor {
        let (h, w) = (images.size()[2], images.size()[3]);
        if h == size {
            return images.shallow_clone();
        }
        let width = (w as f64 * size as f64 / h as f64).round() as i64;
        let floats = if images.is_floating_point() {
            images.shallow_clone()
        } else {
            images.to_kind(Kind::Float)
        };
        floats.internal_upsample_bilinear2d_aa([size, width], false, None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_grows_over_the_ramp_then_stays_full() {
        let resizing = ProgressiveResizing::from(96);
        let sizes: Vec<i64> = (1..=10).map(|e| resizing.size_at(e, 10, 128)).collect();
        // 5 ramp epochs: 96 + k * 32 / 5 = 96, 102.4, 108.8, 115.2, 121.6, rounded down to 8.
        assert_eq!(sizes, [96, 96, 104, 112, 120, 128, 128, 128, 128, 128]);
        assert_eq!(resizing.ramp_epochs(10), 5);
        let whole = ProgressiveResizing {
            start_size: 64,
            ramp: 1.0,
        };
        assert_eq!(whole.size_at(1, 4, 128), 64);
        assert_eq!(whole.size_at(4, 4, 128), 112);
        assert_eq!(whole.ramp_epochs(4), 4);
        assert_eq!(ProgressiveResizing::from(200).size_at(1, 10, 128), 128);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(ProgressiveResizing::from(4).check().is_err());
        let no_ramp = ProgressiveResizing {
            start_size: 64,
            ramp: 0.0,
        };
        assert!(no_ramp.check().is_err());
        assert!(ProgressiveResizing::from(64).check().is_ok());
        let err = ProgressiveResizing::from(128)
            .check_full_size(128)
            .unwrap_err();
        assert!(err.to_string().contains("smaller than the images"), "{err}");
    }

    #[test]
    fn resizing_keeps_the_scale_and_averages_neighbours() {
        let bytes = Tensor::from_slice(&[0u8, 0, 255, 255])
            .view([1, 1, 1, 4])
            .repeat([2, 3, 4, 1]);
        let small = ProgressiveResizing::resize(&bytes, 2);
        assert_eq!(small.size(), [2, 3, 2, 2]);
        assert_eq!(small.kind(), Kind::Float);
        // Dark on the left, light on the right, each side blurred towards the other by
        // the antialiasing filter, symmetrically.
        let row: Vec<f32> = Vec::try_from(small.get(0).get(0).get(0)).unwrap();
        assert!(row[0] < 64.0 && row[1] > 191.0, "{row:?}");
        assert!((row[0] + row[1] - 255.0).abs() < 1e-3, "{row:?}");
        let grey = Tensor::full([1, 3, 8, 8], 200.0, (Kind::Float, tch::Device::Cpu));
        let small = ProgressiveResizing::resize(&grey, 5);
        assert_eq!(small.size(), [1, 3, 5, 5]);
        assert!((small - 200.0).abs().max().double_value(&[]) < 1e-3);
        let same = ProgressiveResizing::resize(&bytes, 4);
        assert_eq!(same.kind(), Kind::Uint8);
    }
}
