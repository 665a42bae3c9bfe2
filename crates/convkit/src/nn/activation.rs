//! Activation functions applied at the end of a layer.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The activation a layer applies to its output, named as in Keras.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// No activation: the output is the affine result itself.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + exp(-x))`, for a binary classifier's single output.
    Sigmoid,
    /// Normalised exponentials over the last axis, for a multi-class classifier.
    Softmax,
}

impl Activation {
    /// Applies the activation to `xs`.
    pub fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Activation::Linear => xs.shallow_clone(),
            Activation::Relu => xs.relu(),
            Activation::Sigmoid => xs.sigmoid(),
            Activation::Softmax => xs.softmax(-1, xs.kind()),
        }
    }

    /// Applies the activation to `xs`, which the caller owns and no longer needs: ReLU
    /// works in place, saving a copy of the feature map (its gradient needs only the
    /// output, so this is safe in training too).
    pub fn apply_owned(self, mut xs: Tensor) -> Tensor {
        match self {
            Activation::Relu => {
                let _ = xs.relu_();
                xs
            }
            other => other.apply(&xs),
        }
    }

    /// Whether this activation turns logits into class probabilities, so that a model ending
    /// in it can be trained on its logits with a numerically stable loss.
    pub fn is_probabilistic(self) -> bool {
        matches!(self, Activation::Sigmoid | Activation::Softmax)
    }
}

/// `min(max(x, 0), 6)` (MobileNet's ReLU6) of a tensor the caller owns: in place when no
/// gradient flows through it (the in-place form's gradient would need a copy of the input).
pub fn clamp_relu6(mut xs: Tensor) -> Tensor {
    if xs.requires_grad() {
        xs.clamp(0.0, 6.0)
    } else {
        let _ = xs.clamp_(0.0, 6.0);
        xs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_their_definitions() {
        let x = Tensor::from_slice(&[-1.0f32, 0.0, 2.0]);
        let relu: Vec<f32> = Vec::try_from(Activation::Relu.apply(&x)).unwrap();
        assert_eq!(relu, [0.0, 0.0, 2.0]);
        let softmax: Vec<f32> = Vec::try_from(Activation::Softmax.apply(&x)).unwrap();
        assert!((softmax.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let sigmoid: Vec<f32> = Vec::try_from(Activation::Sigmoid.apply(&x)).unwrap();
        assert!((sigmoid[1] - 0.5).abs() < 1e-7);
    }

    #[test]
    fn in_place_forms_equal_the_plain_ones() {
        let x = Tensor::from_slice(&[-1.0f32, 0.5, 7.0]);
        let relu: Vec<f32> = Vec::try_from(Activation::Relu.apply_owned(x.copy())).unwrap();
        assert_eq!(relu, [0.0, 0.5, 7.0]);
        let relu6: Vec<f32> = Vec::try_from(clamp_relu6(x.copy())).unwrap();
        assert_eq!(relu6, [0.0, 0.5, 6.0]);
        // with a gradient flowing, ReLU6 is not in place and the gradient is right
        let w = x.copy().set_requires_grad(true);
        clamp_relu6(&w * 1.0).sum(tch::Kind::Float).backward();
        let grad: Vec<f32> = Vec::try_from(w.grad()).unwrap();
        assert_eq!(grad, [0.0, 1.0, 0.0]);
    }

    #[test]
    fn serialises_as_keras_names() {
        assert_eq!(
            serde_json::to_string(&Activation::Relu).unwrap(),
            "\"relu\""
        );
    }
}
