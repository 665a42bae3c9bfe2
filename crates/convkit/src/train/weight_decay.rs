//! Weight decay, shared by the optimizers.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// How much an optimizer pulls weights towards 0, and how.
///
/// Only kernels and dense weights (variables of 2 dimensions or more) decay; biases and
/// batch-norm scales and shifts do not, as timm and fastai train by default: decaying them
/// constrains nothing that overfits, and costs accuracy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightDecay {
    /// The coefficient (0: none).
    pub rate: f64,
    /// Decoupled (AdamW: `w -= lr * rate * w` beside the step) rather than coupled (L2:
    /// `rate * w` added to the gradient, as PyTorch's SGD, Adam and RMSprop do).
    pub decoupled: bool,
}

impl WeightDecay {
    /// Whether `variable` decays.
    pub fn applies_to(&self, variable: &Tensor) -> bool {
        self.rate != 0.0 && variable.dim() >= 2
    }

    /// The gradient the step uses for `variable`: with coupled decay, `g + rate * w`.
    pub fn gradient(&self, variable: &Tensor, gradient: Tensor) -> Tensor {
        if !self.decoupled && self.applies_to(variable) {
            gradient + variable.detach() * self.rate
        } else {
            gradient
        }
    }

    /// With decoupled decay, shrinks `variable` by `1 - learning_rate * rate` (call under
    /// `no_grad`, before the step).
    pub fn shrink(&self, variable: &mut Tensor, learning_rate: f64) {
        if self.decoupled && self.applies_to(variable) {
            *variable *= 1.0 - learning_rate * self.rate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matrices_and_kernels_decay() {
        let decay = WeightDecay {
            rate: 0.1,
            decoupled: false,
        };
        let bias = Tensor::from_slice(&[1.0f32, 2.0]);
        let kernel = Tensor::ones([2, 2], (tch::Kind::Float, tch::Device::Cpu));
        assert!(!decay.applies_to(&bias));
        assert!(decay.applies_to(&kernel));
        let g = decay.gradient(&kernel, kernel.zeros_like());
        assert_eq!(
            Vec::<f32>::try_from(g.flatten(0, -1)).unwrap(),
            vec![0.1; 4]
        );
        let mut k = kernel.copy();
        WeightDecay {
            rate: 0.1,
            decoupled: true,
        }
        .shrink(&mut k, 0.5);
        assert_eq!(
            Vec::<f32>::try_from(k.flatten(0, -1)).unwrap(),
            vec![0.95; 4]
        );
    }
}
