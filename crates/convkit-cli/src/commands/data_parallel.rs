//! Joining a data-parallel run before `mnist`, `train` or `finetune` trains: under torchrun
//! (or with `MASTER_ADDR`, `MASTER_PORT`, `RANK` and `WORLD_SIZE` set by hand) the process
//! joins its peers through libtorch's c10d, and `fit` trains with them.

use std::time::Duration;

use anyhow::Context as _;

/// Joins the run that the environment describes, if any, and returns the device this
/// process trains on: `device` itself, except that `auto` and `cuda` become
/// `cuda:LOCAL_RANK` (one GPU per process) when CUDA is there.
pub fn join_run(device: &str, timeout_seconds: u64) -> anyhow::Result<String> {
    let Some(rendezvous) = convkit::distributed::Rendezvous::from_env()? else {
        return Ok(device.to_owned());
    };
    let device = match device.trim().to_ascii_lowercase().as_str() {
        "auto" | "" if convkit::tch::Cuda::is_available() => {
            format!("cuda:{}", rendezvous.local_rank)
        }
        "cuda" | "gpu" => format!("cuda:{}", rendezvous.local_rank),
        other => other.to_owned(),
    };
    let parsed = convkit::device::parse_device(&device)?;
    convkit::distributed::init_process_group(
        &rendezvous,
        parsed,
        Duration::from_secs(timeout_seconds),
    )
    .with_context(|| {
        format!(
            "rank {} of {} could not join the run at {}:{}",
            rendezvous.rank, rendezvous.world_size, rendezvous.master_addr, rendezvous.master_port
        )
    })?;
    Ok(device)
}

/// Fails when the environment names a run of several processes: only `mnist`, `train` and
/// `finetune` train data-parallel; N copies of another command would race on its outputs.
pub fn refuse_parallel_launch() -> anyhow::Result<()> {
    match convkit::distributed::Rendezvous::from_env()? {
        Some(rendezvous) if rendezvous.world_size > 1 => anyhow::bail!(
            "this command runs in one process: start it without torchrun (WORLD_SIZE is {}); \
             only mnist, train and finetune train data-parallel",
            rendezvous.world_size
        ),
        _ => Ok(()),
    }
}
