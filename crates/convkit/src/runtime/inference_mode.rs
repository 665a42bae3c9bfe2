//! libtorch's inference mode: no autograd bookkeeping at all, not only no gradients.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr;

use tch::Tensor;

use super::ffi;
use crate::error::Result;

/// While alive, the current thread runs in libtorch's `InferenceMode` (PyTorch's
/// `torch.inference_mode()`): besides recording no graph, as `no_grad` does, tensors carry no
/// version counters or view tracking, which saves work on every operation.
///
/// Tensors made inside are *inference tensors*: they cannot be saved for a backward pass
/// later (clone one outside the guard to train on it). Guards nest: dropping one restores
/// the state it found, so drop them in the reverse order of creation, as scopes do. The
/// guard belongs to its thread (it is neither `Send` nor `Sync`).
///
/// ```
/// use convkit::runtime::InferenceMode;
/// let x = tch::Tensor::ones([2], (tch::Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
/// let y = {
///     let _guard = InferenceMode::new();
///     assert!(InferenceMode::is_enabled());
///     &x * 2.0
/// };
/// assert!(!InferenceMode::is_enabled());
/// assert!(!y.requires_grad());
/// ```
#[derive(Debug)]
pub struct InferenceMode {
    guard: *mut c_void,
    /// Thread-bound: libtorch's mode is thread-local.
    _not_send: PhantomData<*mut ()>,
}

impl InferenceMode {
    /// Enters inference mode on this thread.
    pub fn new() -> InferenceMode {
        InferenceMode::set(true).expect("entering inference mode does not fail")
    }

    /// Enters (`true`) or leaves (`false`) inference mode until the guard is dropped.
    pub fn set(enabled: bool) -> Result<InferenceMode> {
        let mut guard = ptr::null_mut();
        // SAFETY: the extension writes a heap guard into `guard` on success.
        ffi::check(unsafe { ffi::convkit_inference_mode_enter(enabled, &mut guard) })?;
        Ok(InferenceMode {
            guard,
            _not_send: PhantomData,
        })
    }

    /// Whether this thread is in inference mode.
    pub fn is_enabled() -> bool {
        // SAFETY: reads thread-local state.
        unsafe { ffi::convkit_inference_mode_is_enabled() }
    }

    /// Whether `tensor` was made in inference mode.
    pub fn is_inference_tensor(tensor: &Tensor) -> bool {
        // SAFETY: `tensor` is a live tch tensor.
        unsafe { ffi::convkit_is_inference_tensor(tensor.as_ptr()) }
    }

    /// Whether gradients are being recorded on this thread (off under `no_grad` and in
    /// inference mode).
    pub fn grad_enabled() -> bool {
        // SAFETY: reads thread-local state.
        unsafe { ffi::convkit_grad_mode_is_enabled() }
    }
}

impl Default for InferenceMode {
    fn default() -> Self {
        InferenceMode::new()
    }
}

impl Drop for InferenceMode {
    fn drop(&mut self) {
        // SAFETY: `guard` came from `convkit_inference_mode_enter` and is dropped once.
        unsafe { ffi::convkit_inference_mode_exit(self.guard) }
    }
}

/// Runs `f` in inference mode.
pub fn inference_mode<T>(f: impl FnOnce() -> T) -> T {
    let _guard = InferenceMode::new();
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn guards_nest_and_restore() {
        assert!(!InferenceMode::is_enabled());
        {
            let _outer = InferenceMode::new();
            assert!(InferenceMode::is_enabled() && !InferenceMode::grad_enabled());
            {
                let _inner = InferenceMode::set(false).unwrap();
                assert!(!InferenceMode::is_enabled());
                assert!(InferenceMode::grad_enabled());
            }
            assert!(InferenceMode::is_enabled());
        }
        assert!(!InferenceMode::is_enabled() && InferenceMode::grad_enabled());
    }

    #[test]
    fn restores_when_the_guarded_code_fails() {
        fn fails() -> Result<()> {
            let _guard = InferenceMode::new();
            let _ = Tensor::zeros([2], (Kind::Float, Device::Cpu)).f_view([3])?;
            Ok(())
        }
        assert!(fails().is_err());
        assert!(!InferenceMode::is_enabled());
    }

    #[test]
    fn outputs_equal_no_grad_outputs_and_are_inference_tensors() {
        let w = Tensor::randn([4, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let x = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
        let expected = tch::no_grad(|| x.matmul(&w.tr()).relu());
        let got = inference_mode(|| x.matmul(&w.tr()).relu());
        assert!(got.equal(&expected));
        assert!(InferenceMode::is_inference_tensor(&got));
        assert!(!InferenceMode::is_inference_tensor(&expected));
        // outside the guard, an operation on it gives a normal tensor again
        assert!(!InferenceMode::is_inference_tensor(&(&got + 1.0)));
    }
}
