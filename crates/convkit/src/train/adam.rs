//! Adam exactly as Keras computes it.
//!
//! Keras folds the bias corrections into the step size and adds epsilon to `sqrt(v)`:
//! `lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t);  w -= lr_t m / (sqrt(v) + epsilon)`.
//! Implemented in convkit (rather than taken from libtorch) so that its moments and step
//! count can be saved and restored when a run resumes.

use tch::{nn::VarStore, Tensor};

use super::weight_decay::WeightDecay;

/// Adam state over the trainable variables of a variable store:
/// `m = beta_1 m + (1 - beta_1) g;  v = beta_2 v + (1 - beta_2) g^2;
/// w -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) m / (sqrt(v) + epsilon)`.
///
/// Variables with `requires_grad` off (frozen layers) get no gradient, no state and no
/// update.
#[derive(Debug)]
pub struct KerasAdam {
    pub(crate) params: Vec<Tensor>,
    /// First and second moments, per variable, once it has trained.
    pub(crate) moments: Vec<Option<(Tensor, Tensor)>>,
    pub(crate) steps: u64,
    learning_rate: f64,
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    weight_decay: WeightDecay,
}

impl KerasAdam {
    /// Adam over the trainable variables of `vs`, without weight decay.
    pub fn new(vs: &VarStore, learning_rate: f64, beta_1: f64, beta_2: f64, epsilon: f64) -> Self {
        Self::with_weight_decay(
            vs,
            [learning_rate, beta_1, beta_2, epsilon],
            WeightDecay::default(),
        )
    }

    /// Adam with `weight_decay`: coupled (Adam with L2, as PyTorch's `Adam`) or decoupled
    /// (AdamW: `w -= lr * rate * w` before the step, as PyTorch's `AdamW`). `settings` are
    /// the learning rate, beta 1, beta 2 and epsilon.
    pub fn with_weight_decay(vs: &VarStore, settings: [f64; 4], weight_decay: WeightDecay) -> Self {
        let [learning_rate, beta_1, beta_2, epsilon] = settings;
        let params = vs.trainable_variables();
        let moments = params.iter().map(|_| None).collect();
        KerasAdam {
            params,
            moments,
            steps: 0,
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        }
    }

    /// Sets the learning rate of the following steps.
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    /// Clears the gradients, back-propagates `loss`, and applies one update.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// Drops the gradients (the next backward pass stores fresh ones).
    pub fn zero_grad(&mut self) {
        crate::runtime::free_grads(&mut self.params);
    }

    /// Applies one update from the current gradients.
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let t = self.steps as f64;
        let step_size =
            self.learning_rate * (1.0 - self.beta_2.powf(t)).sqrt() / (1.0 - self.beta_1.powf(t));
        for (p, moments) in self.params.iter_mut().zip(&mut self.moments) {
            let g = p.grad();
            if !p.requires_grad() || !g.defined() {
                continue;
            }
            let g = self.weight_decay.gradient(p, g);
            self.weight_decay.shrink(p, self.learning_rate);
            let (m, v) = moments.get_or_insert_with(|| (p.zeros_like(), p.zeros_like()));
            *m *= self.beta_1;
            *m += &g * (1.0 - self.beta_1);
            *v *= self.beta_2;
            *v += g.square() * (1.0 - self.beta_2);
            let update = &*m / (v.sqrt() + self.epsilon) * step_size;
            *p -= update;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Init, Device, Kind};

    /// Three steps by hand with Keras' formula.
    #[test]
    fn matches_keras_formula() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[2], Init::Const(0.0));
        let mut opt = KerasAdam::new(&vs, 1e-2, 0.9, 0.999, 1e-7);
        let slopes = [3e-3f64, -2.0];
        let slope_tensor = Tensor::from_slice(&slopes).to_kind(Kind::Float);
        let (mut m, mut v, mut expected) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
        for t in 1..=3 {
            opt.backward_step(&(&w * &slope_tensor).sum(Kind::Float));
            let lr_t = 1e-2 * (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.9f64.powi(t));
            for (i, g) in slopes.into_iter().enumerate() {
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                expected[i] -= lr_t * m[i] / (v[i].sqrt() + 1e-7);
            }
        }
        let got: Vec<f32> = Vec::try_from(&w).unwrap();
        for (g, e) in got.iter().zip(expected) {
            assert!((*g as f64 - e).abs() <= 1e-6, "{got:?} vs {expected:?}");
        }
        assert_eq!(opt.steps, 3);
    }
}
