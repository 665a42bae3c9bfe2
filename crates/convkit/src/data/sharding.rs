//! How the processes of a data-parallel run split the samples between them.

/// The part of `order` that process `rank` of `world_size` trains on, as PyTorch's
/// `DistributedSampler` (with `drop_last=False`) draws it: `order` is padded to a multiple of
/// `world_size` by repeating its beginning, then process `rank` takes every
/// `world_size`-th index starting at `rank`. Every process gets the same count, so they take
/// the same number of steps; batch `k` of all processes together holds exactly the indices
/// that batch `k` of one process would hold with a `world_size` times larger batch.
pub fn shard_order(order: &[i64], rank: usize, world_size: usize) -> Vec<i64> {
    assert!(rank < world_size, "rank {rank} of a world of {world_size}");
    if order.is_empty() {
        return Vec::new();
    }
    let total = order.len().div_ceil(world_size) * world_size;
    (rank..total)
        .step_by(world_size)
        .map(|i| order[i % order.len()])
        .collect()
}

/// The indices `0..len` that process `rank` of `world_size` evaluates: contiguous chunks,
/// no index repeated or left out (so that counts summed over processes are exact); the last
/// processes may get fewer, or none.
pub fn evaluation_shard(len: usize, rank: usize, world_size: usize) -> Vec<i64> {
    assert!(rank < world_size, "rank {rank} of a world of {world_size}");
    let chunk = len.div_ceil(world_size);
    let start = (rank * chunk).min(len);
    let end = ((rank + 1) * chunk).min(len);
    (start as i64..end as i64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_pad_by_wrapping_and_interleave_as_pytorch() {
        // torch: DistributedSampler(range(5), num_replicas=2, shuffle=False) gives
        // rank 0: [0, 2, 4], rank 1: [1, 3, 0].
        let order = [0, 1, 2, 3, 4];
        assert_eq!(shard_order(&order, 0, 2), vec![0, 2, 4]);
        assert_eq!(shard_order(&order, 1, 2), vec![1, 3, 0]);
        assert_eq!(shard_order(&order, 0, 1), order.to_vec());
    }

    #[test]
    fn batch_k_of_all_shards_is_batch_k_of_one_process_with_the_summed_batch() {
        let order: Vec<i64> = crate::data::shuffled_order(24, 7);
        let (world, batch) = (3, 2);
        let shards: Vec<Vec<i64>> = (0..world).map(|r| shard_order(&order, r, world)).collect();
        for (k, whole) in order.chunks(batch * world).enumerate() {
            let mut together: Vec<i64> = shards
                .iter()
                .flat_map(|s| s[k * batch..(k + 1) * batch].to_vec())
                .collect();
            let mut whole = whole.to_vec();
            together.sort();
            whole.sort();
            assert_eq!(together, whole);
        }
    }

    #[test]
    fn evaluation_shards_cover_every_index_once() {
        for (len, world) in [(10, 3), (2, 4), (0, 2), (7, 1)] {
            let all: Vec<i64> = (0..world)
                .flat_map(|r| evaluation_shard(len, r, world))
                .collect();
            assert_eq!(all, (0..len as i64).collect::<Vec<_>>());
        }
    }
}
