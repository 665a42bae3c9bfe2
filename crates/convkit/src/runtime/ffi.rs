//! The C functions of `csrc/libtorch_ext.cpp`, and the conversion of their error messages.
//!
//! Tensors are passed as tch passes them to libtorch (`*const C_tensor`, which is an
//! `at::Tensor*`); a function that can fail returns a null pointer or a message that
//! [`check`] turns into an [`Error`] and frees.

use std::ffi::{c_char, c_int, c_void, CStr};

use tch::Tensor;
use torch_sys::C_tensor;

use crate::error::{Error, Result};

extern "C" {
    pub(crate) fn convkit_free_message(text: *mut c_char);

    pub(crate) fn convkit_inference_mode_enter(
        enabled: bool,
        guard: *mut *mut c_void,
    ) -> *mut c_char;
    pub(crate) fn convkit_inference_mode_exit(guard: *mut c_void);
    pub(crate) fn convkit_inference_mode_is_enabled() -> bool;
    pub(crate) fn convkit_is_inference_tensor(tensor: *const C_tensor) -> bool;
    pub(crate) fn convkit_grad_mode_is_enabled() -> bool;

    pub(crate) fn convkit_autocast_enter(
        device: c_int,
        dtype: c_int,
        enabled: bool,
        state: *mut *mut c_void,
    ) -> *mut c_char;
    pub(crate) fn convkit_autocast_exit(state: *mut c_void);
    pub(crate) fn convkit_autocast_is_enabled(device: c_int) -> bool;
    pub(crate) fn convkit_autocast_dtype(device: c_int) -> c_int;

    pub(crate) fn convkit_contiguous_in(
        tensor: *const C_tensor,
        format: c_int,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    pub(crate) fn convkit_is_contiguous_in(tensor: *const C_tensor, format: c_int) -> bool;

    pub(crate) fn convkit_free_grad(tensor: *mut C_tensor) -> *mut c_char;
    pub(crate) fn convkit_rmsprop_step(
        params: *const *mut C_tensor,
        grads: *const *mut C_tensor,
        velocities: *const *mut C_tensor,
        count: usize,
        learning_rate: f64,
        rho: f64,
        epsilon: f64,
    ) -> *mut c_char;

    pub(crate) fn convkit_cuda_compute_capability(index: c_int) -> c_int;
}

/// `Ok` for a null message, else the message as [`Error::Torch`] (the message is freed).
pub(crate) fn check(message: *mut c_char) -> Result<()> {
    match take_message(message) {
        None => Ok(()),
        Some(text) => Err(Error::Torch(tch::TchError::Torch(text))),
    }
}

/// The text of a message from one of the C++ shims (`None` for a null pointer), which it
/// frees: every shim function that can fail returns such a message.
pub(crate) fn take_message(message: *mut c_char) -> Option<String> {
    if message.is_null() {
        return None;
    }
    // SAFETY: a non-null message is a NUL-terminated string from malloc, owned by us now.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    unsafe { convkit_free_message(message) };
    Some(text)
}

/// Takes ownership of a tensor the extension allocated.
///
/// # Safety
/// `ptr` must come from a successful call that returned `new at::Tensor(...)`.
pub(crate) unsafe fn take_tensor(ptr: *mut C_tensor) -> Tensor {
    Tensor::from_ptr(ptr)
}
