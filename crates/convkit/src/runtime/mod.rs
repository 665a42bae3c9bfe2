//! What convkit adds to libtorch's execution beyond tch: mixed precision (autocast),
//! inference mode, memory formats, the multi-tensor optimizer kernels, CPU feature
//! detection and allocator settings. The libtorch calls go through a small C++ extension,
//! `csrc/libtorch_ext.cpp`, compiled against the libtorch that tch links.

mod allocator;
mod autocast;
mod cpu_features;
pub(crate) mod ffi;
mod gradients;
mod inference_mode;
mod memory_format;
mod precision;

pub use allocator::keep_freed_memory;
pub use autocast::Autocast;
pub use cpu_features::{cpu_features, CpuFeatures};
pub use gradients::{free_grad, free_grads, rmsprop_step};
pub use inference_mode::{inference_mode, InferenceMode};
pub use memory_format::{contiguous_in, is_contiguous_in, MemoryFormat};
pub use precision::{bf16_is_native, cuda_compute_capability, Precision, PRECISION_NAMES};
