//! Keeping freed memory in the process, so that a training step does not page-fault.
//!
//! A training step allocates and frees the same large activation buffers every time. glibc's
//! malloc serves blocks over its mmap threshold (at most 32 MiB) with fresh `mmap`s and
//! returns freed memory to the kernel, so each step touches new pages: on the chapter's
//! 180x180 convnet, a sixth to a third of the CPU time went to the kernel's page faults, and
//! the step ran 1.3-1.5x faster without them (BENCHMARKS.md).

use std::sync::OnceLock;

/// Tells the C allocator to serve every block from its heap and never give freed memory
/// back to the kernel, so that the buffers of one step are reused by the next, as a caching
/// allocator would. The process keeps its peak memory until it ends, which is what a
/// training or inference run wants anyway.
///
/// The `convkit` command calls this at start; a program using the library calls it once,
/// early (later calls do nothing). It changes the allocator of the whole process. With a
/// C library other than glibc it does nothing. Returns whether the settings are in force.
pub fn keep_freed_memory() -> bool {
    static APPLIED: OnceLock<bool> = OnceLock::new();
    *APPLIED.get_or_init(apply)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: mallopt only changes glibc's malloc parameters.
    unsafe {
        // Never mmap: blocks of any size come from the heap and go back to it when freed.
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            // Never trim the top of the heap back to the kernel.
            && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
            // Grow the heap in steps of 64 MiB rather than page by page.
            && libc::mallopt(libc::M_TOP_PAD, 64 << 20) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_once_and_memory_still_works() {
        let first = keep_freed_memory();
        assert_eq!(keep_freed_memory(), first);
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(first);
        }
        // a block far above the old mmap threshold comes and goes
        let t = tch::Tensor::ones([64 << 20], (tch::Kind::Float, tch::Device::Cpu));
        assert_eq!(
            t.sum(tch::Kind::Double).double_value(&[]),
            (64 << 20) as f64
        );
    }
}
