//! Dropping gradients, and the multi-tensor optimizer step.

use tch::Tensor;
use torch_sys::C_tensor;

use super::ffi;
use crate::error::Result;

/// Drops the gradient of `tensor` (PyTorch's `zero_grad(set_to_none=True)`): the next
/// backward pass stores its gradient as it is instead of adding it into a zeroed buffer,
/// which saves a pass over every gradient and lets the memory be reused.
pub fn free_grad(tensor: &mut Tensor) -> Result<()> {
    // SAFETY: `tensor` is live and exclusively borrowed.
    ffi::check(unsafe { ffi::convkit_free_grad(tensor.as_mut_ptr()) })
}

/// [`free_grad`] for every tensor of `tensors` that holds a gradient: an optimizer's
/// `zero_grad`.
pub fn free_grads(tensors: &mut [Tensor]) {
    for t in tensors {
        if t.grad().defined() {
            free_grad(t).expect("dropping a gradient does not fail");
        }
    }
}

/// Keras' RMSprop step over whole lists of tensors at once, in five multi-tensor kernels
/// (libtorch's `_foreach_*`, one fused kernel per list on CUDA):
/// `v = rho v + (1 - rho) g^2;  w -= lr g / sqrt(v + epsilon)`.
/// `params`, `grads` and `velocities` have the same length and shapes, index by index.
pub fn rmsprop_step(
    params: &[Tensor],
    grads: &[Tensor],
    velocities: &[Tensor],
    learning_rate: f64,
    rho: f64,
    epsilon: f64,
) -> Result<()> {
    assert!(params.len() == grads.len() && grads.len() == velocities.len());
    let pointers = |list: &[Tensor]| -> Vec<*mut C_tensor> {
        list.iter().map(|t| t.as_ptr() as *mut C_tensor).collect()
    };
    let (p, g, v) = (pointers(params), pointers(grads), pointers(velocities));
    // SAFETY: three live lists of `len` tensors; the extension updates `p` and `v` in place.
    ffi::check(unsafe {
        ffi::convkit_rmsprop_step(
            p.as_ptr(),
            g.as_ptr(),
            v.as_ptr(),
            p.len(),
            learning_rate,
            rho,
            epsilon,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn freed_gradients_are_undefined_and_come_back_fresh() {
        let mut w = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        (&w * 2.0).sum(Kind::Float).backward();
        assert_eq!(w.grad().double_value(&[0]), 2.0);
        free_grad(&mut w).unwrap();
        assert!(!w.grad().defined());
        (&w * 3.0).sum(Kind::Float).backward();
        // not 2 + 3: the old gradient is gone
        assert_eq!(w.grad().double_value(&[0]), 3.0);
    }

    #[test]
    fn rmsprop_step_matches_the_formula() {
        let p = Tensor::from_slice(&[1.0f32, -1.0]);
        let g = Tensor::from_slice(&[0.5f32, 1e-4]);
        let v = Tensor::from_slice(&[0.2f32, 0.0]);
        rmsprop_step(
            &[p.shallow_clone()],
            &[g],
            &[v.shallow_clone()],
            1e-2,
            0.9,
            1e-7,
        )
        .unwrap();
        let got: Vec<f32> = Vec::try_from(&p).unwrap();
        let velocity: Vec<f32> = Vec::try_from(&v).unwrap();
        for (i, (w, g, v0)) in [(1.0f64, 0.5f64, 0.2f64), (-1.0, 1e-4, 0.0)]
            .into_iter()
            .enumerate()
        {
            let v1 = 0.9 * v0 + 0.1 * g * g;
            assert!((velocity[i] as f64 - v1).abs() < 1e-7, "{velocity:?}");
            let expected = w - 1e-2 * g / (v1 + 1e-7).sqrt();
            assert!((got[i] as f64 - expected).abs() < 1e-6, "{got:?}");
        }
    }
}
