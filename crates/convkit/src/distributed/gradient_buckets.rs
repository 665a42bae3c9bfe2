//! Averaging gradients across ranks after the backward pass, a bucket of them per
//! collective, as PyTorch's DistributedDataParallel does.

use std::time::{Duration, Instant};

use tch::Tensor;

use super::ProcessGroup;
use crate::error::Result;

/// DistributedDataParallel's default bucket size: 25 MiB of gradients per allreduce.
pub const DEFAULT_BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// What one [`average_gradients`] did and how long it took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradientSync {
    /// How many allreduce collectives it ran (one per bucket).
    pub buckets: usize,
    /// How many gradient values it averaged.
    pub values: usize,
    /// The time spent in the collectives, waiting for the other ranks included.
    pub communication: Duration,
    /// The whole call: flattening into buckets and copying back included.
    pub total: Duration,
}

/// Replaces the gradient of each of `params` by its mean over all ranks.
///
/// Parameters whose gradient is undefined are skipped; every rank must pass the same
/// parameters in the same order with the same gradients defined. Gradients are flattened,
/// in their logical (row-major) order whatever their memory layout (channels_last
/// included), into buckets of about `bucket_bytes` of one dtype; each bucket is summed with
/// one allreduce, divided by the world size and copied back into the gradients, which keep
/// their strides.
pub fn average_gradients(
    group: &ProcessGroup,
    params: &[Tensor],
    bucket_bytes: usize,
) -> Result<GradientSync> {
    let start = Instant::now();
    let mut sync = GradientSync::default();
    let grads: Vec<Tensor> = params
        .iter()
        .map(Tensor::grad)
        .filter(Tensor::defined)
        .collect();
    let scale = 1.0 / group.world_size() as f64;
    for bucket in buckets(&grads, bucket_bytes) {
        let mut flat = Tensor::cat(
            &bucket.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(),
            0,
        );
        let started = Instant::now();
        group.all_reduce_sum(std::slice::from_ref(&flat))?;
        sync.communication += started.elapsed();
        let _ = flat.g_mul_scalar_(scale);
        let mut offset = 0;
        for grad in bucket {
            let numel = grad.numel() as i64;
            let mut grad = grad.shallow_clone();
            grad.copy_(&flat.narrow(0, offset, numel).view(grad.size().as_slice()));
            offset += numel;
        }
        sync.buckets += 1;
        sync.values += offset as usize;
    }
    sync.total = start.elapsed();
    Ok(sync)
}

/// `grads` split, in order, into runs of one dtype and device of about `bucket_bytes` each
/// (a gradient larger than that is a bucket of its own).
fn buckets(grads: &[Tensor], bucket_bytes: usize) -> Vec<&[Tensor]> {
    let mut out = Vec::new();
    let mut first = 0;
    let mut bytes = 0;
    for (i, grad) in grads.iter().enumerate() {
        let size = grad.numel() * grad.kind().elt_size_in_bytes();
        let same_kind = i == first
            || (grad.kind() == grads[first].kind() && grad.device() == grads[first].device());
        if i > first && (!same_kind || bytes + size > bucket_bytes) {
            out.push(&grads[first..i]);
            first = i;
            bytes = 0;
        }
        bytes += size;
    }
    if first < grads.len() {
        out.push(&grads[first..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn grads(sizes: &[(i64, Kind)]) -> Vec<Tensor> {
        sizes
            .iter()
            .map(|&(n, kind)| Tensor::zeros([n], (kind, Device::Cpu)))
            .collect()
    }

    fn lengths(buckets: &[&[Tensor]]) -> Vec<usize> {
        buckets.iter().map(|b| b.len()).collect()
    }

    #[test]
    fn buckets_fill_up_to_the_size_in_order() {
        let g = grads(&[
            (10, Kind::Float),
            (10, Kind::Float),
            (30, Kind::Float),
            (5, Kind::Float),
        ]);
        // 40, 40, 120, 20 bytes into buckets of 100.
        assert_eq!(lengths(&buckets(&g, 100)), vec![2, 1, 1]);
        assert_eq!(lengths(&buckets(&g, 1 << 20)), vec![4]);
        assert_eq!(lengths(&buckets(&g, 1)), vec![1, 1, 1, 1]);
        assert!(buckets(&[], 100).is_empty());
    }

    #[test]
    fn a_bucket_holds_one_dtype() {
        let g = grads(&[
            (4, Kind::Float),
            (4, Kind::Double),
            (4, Kind::Double),
            (4, Kind::Float),
        ]);
        assert_eq!(lengths(&buckets(&g, 1 << 20)), vec![1, 2, 1]);
    }
}
