//! RMSprop exactly as Keras computes it.
//!
//! Keras divides by `sqrt(v + epsilon)`; PyTorch (and so libtorch's optimizer) by
//! `sqrt(v) + epsilon`. With Keras' epsilon of 1e-7 the two differ by up to 10x for
//! parameters whose gradients are small: Keras' form caps their steps. The chapter's numbers
//! come from Keras' form, so convkit implements it.

use tch::{nn::VarStore, Tensor};

use super::weight_decay::WeightDecay;

/// RMSprop state over the trainable variables of a variable store:
/// `v = rho v + (1 - rho) g^2;  w -= lr g / sqrt(v + epsilon)`.
///
/// Variables with `requires_grad` off (frozen layers) get no gradient, no state and no
/// update.
#[derive(Debug)]
pub struct KerasRmsProp {
    pub(crate) params: Vec<Tensor>,
    pub(crate) velocities: Vec<Option<Tensor>>,
    /// Updates applied so far.
    pub(crate) steps: u64,
    learning_rate: f64,
    rho: f64,
    epsilon: f64,
    weight_decay: WeightDecay,
}

impl KerasRmsProp {
    /// RMSprop over the trainable variables of `vs`, without weight decay.
    pub fn new(vs: &VarStore, learning_rate: f64, rho: f64, epsilon: f64) -> Self {
        Self::with_weight_decay(vs, learning_rate, rho, epsilon, WeightDecay::default())
    }

    /// RMSprop with `weight_decay` (coupled: added to the gradient, as PyTorch's).
    pub fn with_weight_decay(
        vs: &VarStore,
        learning_rate: f64,
        rho: f64,
        epsilon: f64,
        weight_decay: WeightDecay,
    ) -> Self {
        let params = vs.trainable_variables();
        let velocities = params.iter().map(|_| None).collect();
        KerasRmsProp {
            params,
            velocities,
            steps: 0,
            learning_rate,
            rho,
            epsilon,
            weight_decay,
        }
    }

    /// Sets the learning rate of the following steps.
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    /// Drops the gradients (rather than zeroing them: the next backward pass stores fresh
    /// ones, with no pass over a zeroed buffer).
    pub fn zero_grad(&mut self) {
        crate::runtime::free_grads(&mut self.params);
    }

    /// Applies one update from the current gradients, to every trained variable at once
    /// ([`crate::runtime::rmsprop_step`]: five multi-tensor kernels, not seven per variable).
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let (mut params, mut grads, mut velocities) = (Vec::new(), Vec::new(), Vec::new());
        for (p, velocity) in self.params.iter().zip(&mut self.velocities) {
            if !p.requires_grad() {
                continue;
            }
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            // Shaped and laid out as the parameter (channels_last kernels included).
            let v = velocity.get_or_insert_with(|| p.zeros_like());
            params.push(p.shallow_clone());
            velocities.push(v.shallow_clone());
            grads.push(self.weight_decay.gradient(p, g));
        }
        crate::runtime::rmsprop_step(
            &params,
            &grads,
            &velocities,
            self.learning_rate,
            self.rho,
            self.epsilon,
        )
        .expect("the RMSprop kernels take tensors of matching shapes");
    }

    /// Clears the gradients, back-propagates `loss`, and applies one update.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// Number of variables that have optimizer state (trained at least once).
    pub fn state_count(&self) -> usize {
        self.velocities.iter().filter(|v| v.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Init, Device, Kind};

    /// Two steps by hand with Keras' formula; a tiny gradient makes it differ from PyTorch's.
    #[test]
    fn matches_keras_formula_not_pytorch() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[2], Init::Const(0.0));
        let mut opt = KerasRmsProp::new(&vs, 1e-3, 0.9, 1e-7);
        let slopes = Tensor::from_slice(&[1e-4f64, -2.0]).to_kind(Kind::Float);
        let (mut v, mut expected) = ([0.0f64; 2], [0.0f64; 2]);
        for _ in 0..2 {
            opt.backward_step(&(&w * &slopes).sum(Kind::Float));
            for (i, g) in [1e-4f64, -2.0].into_iter().enumerate() {
                v[i] = 0.9 * v[i] + 0.1 * g * g;
                expected[i] -= 1e-3 * g / (v[i] + 1e-7).sqrt();
            }
        }
        let got: Vec<f32> = Vec::try_from(&w).unwrap();
        for (g, e) in got.iter().zip(expected) {
            assert!(
                (*g as f64 - e).abs() <= 1e-6 * e.abs().max(1e-3),
                "{got:?} vs {expected:?}"
            );
        }
        // PyTorch's sqrt(v) + eps would have moved the first weight about 10x further.
        assert!((got[0] as f64).abs() < 1e-3, "{got:?}");
    }

    #[test]
    fn frozen_variables_get_no_state_and_no_update() {
        let vs = VarStore::new(Device::Cpu);
        let a = vs.root().var("a", &[1], Init::Const(1.0));
        let mut b = vs.root().var("b", &[1], Init::Const(1.0));
        let _ = b.requires_grad_(false);
        let mut opt = KerasRmsProp::new(&vs, 1e-2, 0.9, 1e-7);
        opt.backward_step(&(&a * 3.0 + &b * 3.0).sum(Kind::Float));
        assert_eq!(b.double_value(&[0]), 1.0);
        assert!(a.double_value(&[0]) < 1.0);
        assert_eq!(opt.state_count(), 1);
    }
}
