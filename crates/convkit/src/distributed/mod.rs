//! Data-parallel training across processes: c10d's process groups (Gloo over TCP for CPU
//! tensors) through the C++ shim `csrc/distributed.cpp`.
//!
//! Each process reads its place in the run from the environment that `torchrun` (or a
//! launcher of one's own) sets ([`Rendezvous::from_env`]), joins the group
//! ([`ProcessGroup::connect`]), broadcasts the initial weights from rank 0, and after every
//! backward pass averages the gradients ([`average_gradients`]). A rank that dies or hangs
//! makes the others fail within the timeout, with an [`Error::Distributed`] naming it.
//!
//! `train::fit` does all of that by itself once the process has joined a default
//! group ([`init_from_env`], as PyTorch's `init_process_group`): it shards each epoch's
//! seeded order as `DistributedSampler` does, averages the gradients before every update,
//! reduces loss and accuracy over the ranks, and only rank 0 writes the state. The batch
//! size is per process, as in PyTorch. `convkit mnist|train|finetune` join when started by
//! `torchrun --nproc-per-node=N --no-python convkit ...`.
//!
//! ```no_run
//! use std::time::Duration;
//! use convkit::distributed::{average_gradients, ProcessGroup, Rendezvous, DEFAULT_BUCKET_BYTES};
//!
//! # fn main() -> convkit::Result<()> {
//! # let params: Vec<convkit::tch::Tensor> = Vec::new();
//! if let Some(rendezvous) = Rendezvous::from_env()? {
//!     let group = ProcessGroup::connect(&rendezvous, convkit::tch::Device::Cpu, Duration::from_secs(60))?;
//!     group.broadcast(&params, 0)?;
//!     // ... forward, backward ...
//!     average_gradients(&group, &params, DEFAULT_BUCKET_BYTES)?;
//! }
//! # Ok(()) }
//! ```
//!
//! [`Error::Distributed`]: crate::Error::Distributed

mod c10d_ffi;
mod default_group;
mod gradient_buckets;
mod process_group;
mod rendezvous;

pub use default_group::{
    default_group, destroy_process_group, init_from_env, init_process_group, is_main_process, rank,
    world_size,
};
pub use gradient_buckets::{average_gradients, GradientSync, DEFAULT_BUCKET_BYTES};
pub use process_group::ProcessGroup;
pub use rendezvous::Rendezvous;
