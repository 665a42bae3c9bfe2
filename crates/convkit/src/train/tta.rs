//! Test-time augmentation (TTA): a model's class probabilities averaged over views of each
//! image, here the image and its mirror image. Chapter 8's models learn with random flips,
//! so both views are ones they know; averaging the two smooths out what one view alone gets
//! wrong, for twice the inference time.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::nn::Activation;

/// Which views of each image a measurement or prediction averages the model's class
/// probabilities over. Recorded beside every figure it gives (`"tta": "horizontal_flip"`),
/// so that a TTA figure is never taken for a plain one.
///
/// ```
/// use convkit::train::Tta;
///
/// assert_eq!(Tta::default(), Tta::None);
/// assert_eq!(serde_json::to_string(&Tta::HorizontalFlip).unwrap(), "\"horizontal_flip\"");
/// assert_eq!(Tta::HorizontalFlip.views(), 2);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tta {
    /// The image alone: the model's plain output.
    #[default]
    None,
    /// The image and its copy flipped left to right (along the width): their probabilities
    /// (softmax, or a sigmoid's) are averaged, and loss and accuracy come from the average.
    HorizontalFlip,
}

impl Tta {
    /// Whether this is no augmentation.
    pub fn is_none(self) -> bool {
        self == Tta::None
    }

    /// The name written in files: `none`, `horizontal_flip`.
    pub fn name(self) -> &'static str {
        match self {
            Tta::None => "none",
            Tta::HorizontalFlip => "horizontal_flip",
        }
    }

    /// How many times the model runs on each image.
    pub fn views(self) -> usize {
        match self {
            Tta::None => 1,
            Tta::HorizontalFlip => 2,
        }
    }

    /// Fails unless `model` can be measured this way: an augmentation needs a model that
    /// takes images `(C, H, W)` and ends in a softmax or a sigmoid (it averages
    /// probabilities).
    pub fn check(self, model: &Model) -> Result<()> {
        if self.is_none() {
            return Ok(());
        }
        let spec = model.spec();
        if spec.input_shape.len() != 3 {
            return Err(Error::InvalidConfig(format!(
                "test-time augmentation ({self}) flips images, and the model `{}` takes \
                 inputs of shape {:?}, not images (channels, height, width)",
                spec.name, spec.input_shape
            )));
        }
        if !spec.output_activation().is_probabilistic() {
            return Err(Error::InvalidConfig(format!(
                "test-time augmentation ({self}) averages class probabilities, and the model \
                 `{}` ends in {:?}, not a softmax or a sigmoid",
                spec.name,
                spec.output_activation()
            )));
        }
        Ok(())
    }

    /// Logits for a batch `(B, C, H, W)` of images whose activation is the probabilities
    /// averaged over the views, so that the model's loss on them is the cross-entropy of
    /// the averaged probabilities and their argmax (or sign) its prediction: the model's
    /// own logits with [`Tta::None`]; with [`Tta::HorizontalFlip`], the log of the averaged
    /// softmax, or the logit of the averaged sigmoid. Computed stably in log space, at
    /// inference (no dropout, no augmentation layer), as fp32.
    ///
    /// # Shapes
    /// `images`: `(B, C, H, W)`, as stored (bytes or floats); result: `(B, classes)`, or
    /// `(B, 1)` for a sigmoid.
    pub fn logits(self, model: &Model, images: &Tensor) -> Result<Tensor> {
        if self.is_none() {
            return Ok(model.forward(images, false));
        }
        self.check(model)?;
        if images.dim() != 4 {
            return Err(Error::InvalidConfig(format!(
                "test-time augmentation ({self}) takes a batch of images (B, C, H, W), not a \
                 tensor of shape {:?}",
                images.size()
            )));
        }
        let plain = model.forward(images, false);
        // NCHW whatever the memory format (channels_last only changes the strides): the
        // width is the last dimension.
        let flipped = model.forward(&images.f_flip([3])?, false);
        let log_mean = |a: Tensor, b: Tensor| {
            Tensor::stack(&[a, b], 0).logsumexp([0], false) - std::f64::consts::LN_2
        };
        Ok(match model.spec().output_activation() {
            Activation::Sigmoid => {
                // logit(p) = log p - log(1 - p), each the log of a mean of two sigmoids
                let log_p = log_mean(plain.log_sigmoid(), flipped.log_sigmoid());
                let log_q = log_mean((-&plain).log_sigmoid(), (-&flipped).log_sigmoid());
                log_p - log_q
            }
            _ => log_mean(plain.log_softmax(-1, None), flipped.log_softmax(-1, None)),
        })
    }

    /// Class probabilities for `images`, computed in batches of `batch_size` in inference
    /// mode, averaged over the views: [`Model::predict`] with [`Tta::None`].
    ///
    /// # Shapes
    /// `images`: `(N, C, H, W)`; result: `(N, classes)` after a softmax, `(N, 1)` after a
    /// sigmoid.
    pub fn predict(self, model: &Model, images: &Tensor, batch_size: usize) -> Result<Tensor> {
        if self.is_none() {
            return Ok(model.predict(images, batch_size));
        }
        self.check(model)?;
        model.predict_with(images, batch_size, |batch| self.logits(model, batch))
    }
}

impl std::fmt::Display for Tta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Sequential;
    use tch::{Device, Kind};

    /// A convnet whose output depends on where things are in the image: a flip changes it.
    fn asymmetric(activation: Activation, units: i64) -> Model {
        let spec = Sequential::new("asymmetric", [3, 6, 7])
            .rescaling(1.0 / 255.0)
            .conv2d(4, 3, Activation::Relu)
            .flatten()
            .dense(units, activation);
        Model::new(&spec, Device::Cpu, 11).unwrap()
    }

    fn images(n: i64) -> Tensor {
        tch::manual_seed(5);
        Tensor::randint(256, [n, 3, 6, 7], (Kind::Uint8, Device::Cpu))
    }

    #[test]
    fn flip_probabilities_are_the_mean_of_the_two_passes() {
        for (activation, units) in [(Activation::Softmax, 3), (Activation::Sigmoid, 1)] {
            let model = asymmetric(activation, units);
            let images = images(9);
            let plain = activation.apply(&model.forward(&images, false));
            let mirrored = activation.apply(&model.forward(&images.flip([3]), false));
            let by_hand = (&plain + &mirrored) / 2.0;
            assert!(
                !plain.allclose(&mirrored, 1e-4, 1e-4, false),
                "{activation:?}: the model must not be flip-invariant for this test"
            );
            let got = Tta::HorizontalFlip.predict(&model, &images, 4).unwrap();
            assert_eq!(got.size(), by_hand.size());
            let diff = (&got - &by_hand).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{activation:?}: off by {diff}");
            // and the logits carry them: activation and loss agree with the average
            let logits = Tta::HorizontalFlip.logits(&model, &images).unwrap();
            assert!(activation
                .apply(&logits)
                .allclose(&by_hand, 1e-6, 1e-6, false));
        }
    }

    #[test]
    fn the_loss_of_flip_logits_is_the_cross_entropy_of_the_averaged_probabilities() {
        let model = asymmetric(Activation::Softmax, 3);
        let images = images(6);
        let labels = Tensor::from_slice(&[0i64, 1, 2, 2, 1, 0]);
        let averaged = Tta::None
            .predict(&model, &images, 6)
            .unwrap()
            .g_add(&Tta::None.predict(&model, &images.flip([3]), 6).unwrap())
            / 2.0;
        let expected = -averaged
            .log()
            .gather(1, &labels.view([-1, 1]), false)
            .sum(Kind::Double)
            .double_value(&[]);
        let logits = Tta::HorizontalFlip.logits(&model, &images).unwrap();
        let loss = model
            .loss()
            .unwrap()
            .sum(&logits, &labels)
            .double_value(&[]);
        assert!((loss - expected).abs() < 1e-5, "{loss} against {expected}");
    }

    #[test]
    fn images_of_the_wrong_rank_or_models_without_images_are_refused() {
        let model = asymmetric(Activation::Softmax, 2);
        let err = Tta::HorizontalFlip
            .logits(
                &model,
                &Tensor::zeros([3, 6, 7], (Kind::Uint8, Device::Cpu)),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("(B, C, H, W)"), "{err}");
        let features = Sequential::new("head", [16]).dense(2, Activation::Softmax);
        let head = Model::new(&features, Device::Cpu, 0).unwrap();
        let err = Tta::HorizontalFlip.check(&head).unwrap_err().to_string();
        assert!(err.contains("not images") && err.contains("head"), "{err}");
        assert!(Tta::None.check(&head).is_ok());
    }
}
