//! A c10d process group: the processes of a distributed run, and the collectives between
//! them.

use std::ffi::{c_int, c_void, CString};
use std::ptr::NonNull;
use std::time::Duration;

use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

use super::c10d_ffi::{self as ffi, check};
use super::Rendezvous;
use crate::error::{Error, Result};

/// The processes of a distributed run, joined over c10d: Gloo over TCP for CPU tensors
/// (NCCL for CUDA tensors is not built yet).
///
/// Every collective must be called by every rank, in the same order, with tensors of the
/// same shapes and dtypes. Each rank also runs a heartbeat (a key in the store it increments
/// every second), so that when a collective fails or times out the error names the rank
/// whose heartbeat stopped ("rank 1 stopped: no heartbeat for 3 s (killed or hung?)"), or
/// says that the store's host is gone.
///
/// Dropping the group stops the heartbeat and closes the connections. The group may move to
/// another thread but is used from one at a time.
pub struct ProcessGroup {
    handle: NonNull<c_void>,
    rank: usize,
    world_size: usize,
}

// SAFETY: the C++ group holds no thread-local state; it is used from one thread at a time
// (`ProcessGroup` is not `Sync`), and its heartbeat thread only touches its own store
// connection.
unsafe impl Send for ProcessGroup {}

impl ProcessGroup {
    /// Joins the run that `rendezvous` describes, for tensors on `device` (CPU: Gloo).
    ///
    /// Rank 0 hosts the key-value store at `master_addr:master_port` (or, under torchrun, the
    /// launcher's agent does and every rank connects to it); `timeout` bounds the connection
    /// to the store, the meeting of all ranks, and then every collective.
    pub fn connect(
        rendezvous: &Rendezvous,
        device: Device,
        timeout: Duration,
    ) -> Result<ProcessGroup> {
        let rank = rendezvous.rank;
        if cfg!(convkit_no_c10d) {
            return Err(Error::Distributed(
                "this build has no c10d: run `cargo xtask setup` to fetch the Gloo headers"
                    .to_owned(),
            ));
        }
        let device_code = match device {
            Device::Cpu => 0,
            Device::Cuda(_) => 1,
            other => {
                return Err(Error::Distributed(format!(
                    "rank {rank}: no process group for {other:?} tensors (CPU only)"
                )))
            }
        };
        let to_c = |what: &str, text: String| {
            CString::new(text).map_err(|_| {
                Error::Distributed(format!("rank {rank}: the {what} holds a NUL byte"))
            })
        };
        let addr = to_c("master address", rendezvous.master_addr.clone())?;
        let prefix = to_c("store prefix", rendezvous.store_prefix())?;
        let timeout_ms = i64::try_from(timeout.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut handle = std::ptr::null_mut();
        // SAFETY: the strings outlive the call; on success `handle` is a group we own.
        check(unsafe {
            ffi::convkit_dist_connect(
                addr.as_ptr(),
                rendezvous.master_port,
                rank as c_int,
                rendezvous.world_size as c_int,
                rendezvous.agent_store,
                prefix.as_ptr(),
                timeout_ms,
                device_code,
                &mut handle,
            )
        })?;
        let handle = NonNull::new(handle).ok_or_else(|| {
            Error::Distributed(format!("rank {rank}: the process group was not created"))
        })?;
        Ok(ProcessGroup {
            handle,
            rank,
            world_size: rendezvous.world_size,
        })
    }

    /// This process's rank, from 0 to `world_size() - 1`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// How many processes take part.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Whether this is rank 0, the one that saves checkpoints and writes reports.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// The c10d backend's name: `"gloo"`.
    pub fn backend(&self) -> &'static str {
        "gloo"
    }

    /// Overwrites `tensors`, in place, with rank `root`'s (the same shapes and dtypes on
    /// every rank; any memory layout).
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<()> {
        self.check_root(root, "broadcast")?;
        let pointers = pointers(tensors);
        // SAFETY: the pointers are live tensors for the duration of the call.
        check(unsafe {
            ffi::convkit_dist_broadcast(
                self.handle.as_ptr(),
                pointers.as_ptr(),
                pointers.len(),
                root as c_int,
            )
        })
    }

    /// Replaces each of `tensors`, in place, by its sum over all ranks (the same shapes and
    /// dtypes on every rank; any memory layout).
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> Result<()> {
        let pointers = pointers(tensors);
        // SAFETY: the pointers are live tensors for the duration of the call.
        check(unsafe {
            ffi::convkit_dist_all_reduce_sum(
                self.handle.as_ptr(),
                pointers.as_ptr(),
                pointers.len(),
            )
        })
    }

    /// Replaces each of `values` by its sum over all ranks (losses, counts of correct
    /// predictions): one collective for all of them, in double precision.
    pub fn all_reduce_f64(&self, values: &mut [f64]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let tensor = Tensor::from_slice(values);
        self.all_reduce_sum(std::slice::from_ref(&tensor))?;
        tensor.copy_data(values, values.len());
        Ok(())
    }

    /// Rank `root`'s `bytes`, on every rank (what the others pass is ignored): a length,
    /// then the bytes.
    pub fn broadcast_bytes(&self, bytes: Vec<u8>, root: usize) -> Result<Vec<u8>> {
        self.check_root(root, "broadcast_bytes")?;
        let length = Tensor::from_slice(&[bytes.len() as i64]);
        self.broadcast(std::slice::from_ref(&length), root)?;
        let length = usize::try_from(length.int64_value(&[0])).map_err(|_| {
            Error::Distributed(format!(
                "rank {}: rank {root} broadcast a negative length",
                self.rank
            ))
        })?;
        if length == 0 {
            return Ok(Vec::new());
        }
        let data = if self.rank == root {
            Tensor::from_slice(&bytes)
        } else {
            Tensor::zeros([length as i64], (Kind::Uint8, Device::Cpu))
        };
        self.broadcast(std::slice::from_ref(&data), root)?;
        let mut out = vec![0u8; length];
        data.copy_data(&mut out, length);
        Ok(out)
    }

    /// Returns once every rank has called it (or fails, naming a rank that will not).
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: the handle is a live group.
        check(unsafe { ffi::convkit_dist_barrier(self.handle.as_ptr()) })
    }

    fn check_root(&self, root: usize, what: &str) -> Result<()> {
        if root < self.world_size {
            return Ok(());
        }
        Err(Error::Distributed(format!(
            "rank {}: {what} from rank {root}, but the run has {} ranks",
            self.rank, self.world_size
        )))
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful connect and is freed once.
        unsafe { ffi::convkit_dist_free(self.handle.as_ptr()) }
    }
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("backend", &self.backend())
            .finish()
    }
}

fn pointers(tensors: &[Tensor]) -> Vec<*mut C_tensor> {
    tensors
        .iter()
        .map(|t| t.as_ptr() as *mut C_tensor)
        .collect()
}
