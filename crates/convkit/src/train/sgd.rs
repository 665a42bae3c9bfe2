//! Stochastic gradient descent with momentum, Nesterov's or the classical kind, as
//! PyTorch's `torch.optim.SGD` computes it.

use tch::{nn::VarStore, Tensor};

use super::weight_decay::WeightDecay;

/// SGD state over the trainable variables of a variable store, PyTorch's update with no
/// dampening: `g += wd w` (coupled decay); `b = momentum b + g` (`b = g` at the first
/// step); Nesterov: `w -= lr (g + momentum b)`, classical: `w -= lr b`.
///
/// Variables with `requires_grad` off (frozen layers) get no gradient, no state and no
/// update.
#[derive(Debug)]
pub struct Sgd {
    pub(crate) params: Vec<Tensor>,
    /// The momentum buffer per variable, once it has trained.
    pub(crate) momenta: Vec<Option<Tensor>>,
    pub(crate) steps: u64,
    learning_rate: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: WeightDecay,
}

impl Sgd {
    /// SGD over the trainable variables of `vs`.
    pub fn new(
        vs: &VarStore,
        learning_rate: f64,
        momentum: f64,
        nesterov: bool,
        weight_decay: WeightDecay,
    ) -> Self {
        let params = vs.trainable_variables();
        let momenta = params.iter().map(|_| None).collect();
        Sgd {
            params,
            momenta,
            steps: 0,
            learning_rate,
            momentum,
            nesterov,
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
        for (p, buffer) in self.params.iter_mut().zip(&mut self.momenta) {
            let g = p.grad();
            if !p.requires_grad() || !g.defined() {
                continue;
            }
            let g = self.weight_decay.gradient(p, g);
            self.weight_decay.shrink(p, self.learning_rate);
            if self.momentum == 0.0 {
                *p -= g * self.learning_rate;
                continue;
            }
            let b = match buffer {
                Some(b) => {
                    *b *= self.momentum;
                    *b += &g;
                    b
                }
                None => buffer.insert(g.copy()),
            };
            let update = if self.nesterov {
                g + &*b * self.momentum
            } else {
                b.shallow_clone()
            };
            *p -= update * self.learning_rate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Init, Device, Kind};

    /// Three steps by hand with PyTorch's formula, Nesterov and classical, with decay.
    #[test]
    fn matches_pytorch_formula() {
        for nesterov in [true, false] {
            let vs = VarStore::new(Device::Cpu);
            let w = vs.root().var("w", &[1, 2], Init::Const(1.0));
            let decay = WeightDecay {
                rate: 0.01,
                decoupled: false,
            };
            let mut opt = Sgd::new(&vs, 0.1, 0.9, nesterov, decay);
            let slopes = [0.5f64, -2.0];
            let slope_tensor = Tensor::from_slice(&slopes)
                .to_kind(Kind::Float)
                .view([1, 2]);
            let (mut w_hand, mut b) = ([1.0f64; 2], [0.0f64; 2]);
            for t in 0..3 {
                opt.backward_step(&(&w * &slope_tensor).sum(Kind::Float));
                for i in 0..2 {
                    let g = slopes[i] + 0.01 * w_hand[i];
                    b[i] = if t == 0 { g } else { 0.9 * b[i] + g };
                    let step = if nesterov { g + 0.9 * b[i] } else { b[i] };
                    w_hand[i] -= 0.1 * step;
                }
            }
            let got: Vec<f32> = Vec::try_from(w.flatten(0, -1)).unwrap();
            for (g, e) in got.iter().zip(w_hand) {
                assert!((*g as f64 - e).abs() <= 1e-5, "{got:?} vs {w_hand:?}");
            }
            assert_eq!(opt.steps, 3);
        }
    }
}
