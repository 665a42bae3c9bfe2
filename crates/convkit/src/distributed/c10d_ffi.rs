//! The C functions of `csrc/distributed.cpp`, and the conversion of their messages into
//! [`Error::Distributed`].

use std::ffi::{c_char, c_int, c_void};

use torch_sys::C_tensor;

use crate::error::{Error, Result};
use crate::runtime::ffi::take_message;

extern "C" {
    pub(crate) fn convkit_dist_connect(
        master_addr: *const c_char,
        master_port: u16,
        rank: c_int,
        world_size: c_int,
        agent_store: bool,
        prefix: *const c_char,
        timeout_ms: i64,
        device: c_int,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    pub(crate) fn convkit_dist_free(group: *mut c_void);
    pub(crate) fn convkit_dist_broadcast(
        group: *mut c_void,
        tensors: *const *mut C_tensor,
        count: usize,
        root: c_int,
    ) -> *mut c_char;
    pub(crate) fn convkit_dist_all_reduce_sum(
        group: *mut c_void,
        tensors: *const *mut C_tensor,
        count: usize,
    ) -> *mut c_char;
    pub(crate) fn convkit_dist_barrier(group: *mut c_void) -> *mut c_char;
}

/// `Ok` for a null message, else the message as [`Error::Distributed`] (the message is
/// freed; the shim's messages begin with the rank that reports them).
pub(crate) fn check(message: *mut c_char) -> Result<()> {
    match take_message(message) {
        None => Ok(()),
        Some(text) => Err(Error::Distributed(text)),
    }
}
