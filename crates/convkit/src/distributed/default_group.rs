//! The process group that `train::fit` and `train::evaluate` use, as
//! PyTorch's default process group (`torch.distributed.init_process_group`): joined once,
//! used by every `fit` that follows. It belongs to the thread that joined it (in practice
//! the main thread), since a group is used from one thread at a time.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tch::Device;

use super::process_group::ProcessGroup;
use super::rendezvous::Rendezvous;
use crate::error::Result;

thread_local! {
    static DEFAULT_GROUP: RefCell<Option<Rc<ProcessGroup>>> = const { RefCell::new(None) };
}

/// Joins the run that `rendezvous` describes and makes its group this thread's default.
/// Replaces (and leaves) any previous default group.
pub fn init_process_group(
    rendezvous: &Rendezvous,
    device: Device,
    timeout: Duration,
) -> Result<()> {
    let group = ProcessGroup::connect(rendezvous, device, timeout)?;
    DEFAULT_GROUP.with(|g| *g.borrow_mut() = Some(Rc::new(group)));
    Ok(())
}

/// Joins the run described by the environment (torchrun's `RANK`, `WORLD_SIZE`,
/// `MASTER_ADDR`, `MASTER_PORT`, ...) when there is one: returns its rendezvous, or `None`
/// (changing nothing) when the environment names no run.
pub fn init_from_env(device: Device, timeout: Duration) -> Result<Option<Rendezvous>> {
    let Some(rendezvous) = Rendezvous::from_env()? else {
        return Ok(None);
    };
    init_process_group(&rendezvous, device, timeout)?;
    Ok(Some(rendezvous))
}

/// Leaves the default group, if any: later `fit`s train alone. The group closes when its
/// last user lets go of it.
pub fn destroy_process_group() {
    DEFAULT_GROUP.with(|g| *g.borrow_mut() = None);
}

/// The default group, `None` when this process trains alone.
pub fn default_group() -> Option<Rc<ProcessGroup>> {
    DEFAULT_GROUP.with(|g| g.borrow().clone())
}

/// This process's rank in the default group (0 when it trains alone).
pub fn rank() -> usize {
    default_group().map_or(0, |g| g.rank())
}

/// Number of processes in the default group (1 when this process trains alone).
pub fn world_size() -> usize {
    default_group().map_or(1, |g| g.world_size())
}

/// Whether this process is rank 0, the one that writes the run folder (also when it trains
/// alone).
pub fn is_main_process() -> bool {
    rank() == 0
}
