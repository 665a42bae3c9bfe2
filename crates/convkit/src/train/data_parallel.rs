//! What [`train::fit`](crate::train::fit()) does differently when several processes train one model together
//! (data parallel, as PyTorch's `DistributedDataParallel`): every process starts from rank
//! 0's weights (and rank 0's saved state when the run resumes), trains on its shard of each
//! epoch's seeded order, averages the gradients with the others before every update, and
//! reports loss and accuracy summed over all of them, so that every process takes the same
//! decisions (learning-rate schedule, early stopping) and ends with the same weights.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tch::nn::VarStore;
use tch::Tensor;

use super::evaluation::{evaluate_samples, Evaluation};
use super::metrics::RunningMetrics;
use super::training_state::{SavedState, StateDir};
use super::tta::Tta;
use crate::data::{evaluation_shard, shard_order, ImageDataset};
use crate::distributed::{average_gradients, ProcessGroup, DEFAULT_BUCKET_BYTES};
use crate::error::{Error, Result};
use crate::model::Model;

/// The files of a saved state, in the order they travel.
const STATE_FILES: [&str; 3] = ["model.safetensors", "optimizer.safetensors", "state.json"];

/// One process's part in a data-parallel `fit`.
pub(crate) struct DataParallel<'g> {
    group: &'g ProcessGroup,
    /// Time spent in the gradient allreduce since the last [`DataParallel::report_epoch`].
    communication: Cell<Duration>,
}

/// A scratch folder that holds a state received from rank 0 until it is loaded.
pub(crate) struct ReceivedState {
    root: PathBuf,
    /// The state, read from the scratch folder.
    pub saved: SavedState,
}

impl Drop for ReceivedState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl<'g> DataParallel<'g> {
    pub(crate) fn new(group: &'g ProcessGroup) -> Self {
        DataParallel {
            group,
            communication: Cell::new(Duration::ZERO),
        }
    }

    /// Whether this process writes the run's state (rank 0).
    pub(crate) fn is_main(&self) -> bool {
        self.group.rank() == 0
    }

    /// Rank 0's latest saved state, on every process: rank 0 sends its files, the others
    /// write them to a scratch folder and read them from there. `None` on every process
    /// when rank 0 starts afresh.
    pub(crate) fn share_saved_state(
        &self,
        states: Option<&StateDir>,
    ) -> Result<(Option<SavedState>, Option<ReceivedState>)> {
        if self.is_main() {
            let saved = states.map(StateDir::latest).transpose()?.flatten();
            let bundle = match &saved {
                Some(saved) => pack(&saved.dir)?,
                None => Vec::new(),
            };
            self.group.broadcast_bytes(bundle, 0)?;
            return Ok((saved, None));
        }
        let bundle = self.group.broadcast_bytes(Vec::new(), 0)?;
        if bundle.is_empty() {
            return Ok((None, None));
        }
        let root = std::env::temp_dir().join(format!(
            "convkit-state-rank{}-{}",
            self.group.rank(),
            std::process::id()
        ));
        let dir = root.join("epoch-0000");
        unpack(&bundle, &dir)?;
        let saved = StateDir::new(&root).latest()?.ok_or_else(|| {
            Error::Distributed(format!(
                "rank {}: the state received from rank 0 has no state.json",
                self.group.rank()
            ))
        })?;
        Ok((None, Some(ReceivedState { root, saved })))
    }

    /// Makes every variable (weights and running statistics) equal to rank 0's.
    pub(crate) fn broadcast_variables(&self, vs: &VarStore) -> Result<()> {
        let variables = sorted_variables(vs, |_| true);
        tch::no_grad(|| self.group.broadcast(&variables, 0))
    }

    /// Makes the batch-normalization statistics equal to rank 0's, as DDP's
    /// `broadcast_buffers` does (once per epoch here, before validation and saving).
    pub(crate) fn broadcast_running_statistics(&self, vs: &VarStore) -> Result<()> {
        let buffers = sorted_variables(vs, |name| {
            name.ends_with("running_mean") || name.ends_with("running_var")
        });
        if buffers.is_empty() {
            return Ok(());
        }
        tch::no_grad(|| self.group.broadcast(&buffers, 0))
    }

    /// This process's part of an epoch's order.
    pub(crate) fn shard(&self, order: &[i64]) -> Vec<i64> {
        shard_order(order, self.group.rank(), self.group.world_size())
    }

    /// Replaces every gradient of `params` by its mean over the processes.
    pub(crate) fn average_gradients(&self, params: &[Tensor]) -> Result<()> {
        let sync = average_gradients(self.group, params, DEFAULT_BUCKET_BYTES)?;
        self.communication
            .set(self.communication.get() + sync.communication);
        Ok(())
    }

    /// With `CONVKIT_DIST_PROFILE=1` in the environment, rank 0 prints the share of the
    /// epoch's training time (`seconds`) that the gradient allreduce took.
    pub(crate) fn report_epoch(&self, epoch: usize, seconds: f64) {
        let communication = self.communication.replace(Duration::ZERO).as_secs_f64();
        if self.is_main() && std::env::var_os("CONVKIT_DIST_PROFILE").is_some_and(|v| v == "1") {
            eprintln!(
                "epoch {epoch}: gradient allreduce {communication:.2} s of {seconds:.2} s \
                 ({:.1}%), {} processes",
                100.0 * communication / seconds,
                self.group.world_size()
            );
        }
    }

    /// Whether any process wants to stop (Ctrl-C reaches the processes at different
    /// batches; they must stop at the same one).
    pub(crate) fn any_wants_to_stop(&self, local: bool) -> Result<bool> {
        let mut flag = [f64::from(u8::from(local))];
        self.group.all_reduce_f64(&mut flag)?;
        Ok(flag[0] > 0.0)
    }

    /// `(mean loss, accuracy)` over the samples of every process.
    pub(crate) fn reduce_metrics(&self, metrics: &RunningMetrics) -> Result<(f64, f64)> {
        let (loss, accuracy) = metrics.read();
        let n = metrics.count() as f64;
        let mut sums = [loss * n, accuracy * n, n];
        self.group.all_reduce_f64(&mut sums)?;
        Ok((sums[0] / sums[2], sums[1] / sums[2]))
    }

    /// The model evaluated on `data`, each process taking a contiguous part of it.
    pub(crate) fn evaluate(
        &self,
        model: &Model,
        data: &dyn ImageDataset,
        batch_size: usize,
    ) -> Result<Evaluation> {
        self.evaluate_with(model, data, batch_size, Tta::None)
    }

    /// [`DataParallel::evaluate`] with test-time augmentation `tta` (it works image by
    /// image, so the processes' parts add up as they do without it).
    pub(crate) fn evaluate_with(
        &self,
        model: &Model,
        data: &dyn ImageDataset,
        batch_size: usize,
        tta: Tta,
    ) -> Result<Evaluation> {
        let part = evaluation_shard(data.len(), self.group.rank(), self.group.world_size());
        let mut sums = if part.is_empty() {
            [0.0; 3]
        } else {
            let e = evaluate_samples(model, data, Some(part), batch_size, tta)?;
            let n = e.count as f64;
            [e.loss * n, e.accuracy * n, n]
        };
        self.group.all_reduce_f64(&mut sums)?;
        Ok(Evaluation {
            loss: sums[0] / sums[2],
            accuracy: sums[1] / sums[2],
            count: sums[2] as usize,
            tta,
        })
    }
}

/// The variables of `vs` whose names pass `keep`, sorted by name (the same order in every
/// process).
fn sorted_variables(vs: &VarStore, keep: impl Fn(&str) -> bool) -> Vec<Tensor> {
    let mut variables: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(name, _)| keep(name))
        .collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    variables.into_iter().map(|(_, t)| t).collect()
}

/// The state files of `dir` as one byte string: per file, its length (8 bytes, little
/// endian) and its bytes, in [`STATE_FILES`] order.
fn pack(dir: &Path) -> Result<Vec<u8>> {
    let mut bundle = Vec::new();
    for name in STATE_FILES {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        bundle.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        bundle.extend_from_slice(&bytes);
    }
    Ok(bundle)
}

/// Writes the files of a [`pack`]ed state into `dir`.
fn unpack(bundle: &[u8], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut rest = bundle;
    for name in STATE_FILES {
        let truncated =
            || Error::Distributed(format!("the state from rank 0 is cut short at {name}"));
        let (len, tail) = rest.split_at_checked(8).ok_or_else(truncated)?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        let (bytes, tail) = tail.split_at_checked(len).ok_or_else(truncated)?;
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        rest = tail;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_state_unpacks_to_the_same_files() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(&from).unwrap();
        for (i, name) in STATE_FILES.iter().enumerate() {
            std::fs::write(from.join(name), vec![i as u8; 10 * i + 1]).unwrap();
        }
        let bundle = pack(&from).unwrap();
        let to = dir.path().join("to");
        unpack(&bundle, &to).unwrap();
        for name in STATE_FILES {
            assert_eq!(
                std::fs::read(from.join(name)).unwrap(),
                std::fs::read(to.join(name)).unwrap()
            );
        }
        assert!(unpack(&bundle[..bundle.len() - 1], &to).is_err());
    }
}
