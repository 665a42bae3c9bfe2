//! Resumable training: what [`train::fit`](crate::train::fit()) writes at the end of every
//! epoch so that a killed run continues exactly where it stopped.
//!
//! A state lives in its own folder, `epoch-NNNN/`, under the state folder (`RUN/state/`):
//! `model.safetensors` (every variable), `optimizer.safetensors` (the optimizer's
//! tensors), `ema.safetensors` (the weights' moving average, when the run keeps one) and
//! `state.json` (epoch, learning rate, history, callbacks, step count). The
//! JSON is written last and atomically, so a folder without it is an incomplete write and
//! is ignored; older states are removed only once the new one is complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::callbacks::Callback;
use super::history::History;
use super::optimizer::OptimizerSnapshot;
use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};
use crate::weights::write_tensors;

const FORMAT: &str = "convkit-training-state";
/// Version 2 keys callback states by name; version 1 (still read) listed them by position.
const VERSION: u32 = 2;

/// The saved states of a fit's callbacks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CallbackStates {
    /// Each callback that carries state, under its [`Callback::name`].
    ByName(BTreeMap<String, serde_json::Value>),
    /// Version 1: one entry per callback given to `fit`, in order, `null` for callbacks
    /// without state.
    ByPosition(Vec<Option<serde_json::Value>>),
}

impl Default for CallbackStates {
    fn default() -> Self {
        CallbackStates::ByName(BTreeMap::new())
    }
}

/// Everything but the tensors of a resumable state (`state.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Always `convkit-training-state`.
    pub format: String,
    /// Format version (2; 1 is still read).
    pub version: u32,
    /// Epochs completed.
    pub epoch: usize,
    /// Epochs the run was asked for.
    pub epochs: usize,
    /// Whether a callback stopped the run after `epoch` (early stopping).
    pub stopped: bool,
    /// The learning rate in force for the next epoch.
    pub learning_rate: f64,
    /// Optimizer updates applied so far.
    pub optimizer_steps: u64,
    /// The seed of the run (each epoch's draws derive from it and the epoch).
    pub seed: u64,
    /// The states of the callbacks that carry one.
    pub callbacks: CallbackStates,
    /// Every epoch so far.
    pub history: History,
}

impl TrainingState {
    /// A state after `epoch` of `epochs` epochs.
    pub fn new(epoch: usize, epochs: usize, seed: u64) -> Self {
        TrainingState {
            format: FORMAT.into(),
            version: VERSION,
            epoch,
            epochs,
            stopped: false,
            learning_rate: 0.0,
            optimizer_steps: 0,
            seed,
            callbacks: CallbackStates::default(),
            history: History::default(),
        }
    }

    /// Whether the run needs no more epochs.
    pub fn is_finished(&self) -> bool {
        self.stopped || self.epoch >= self.epochs
    }
}

/// The states of `callbacks` to save: each one that carries state, under its name. Two
/// such callbacks with one name are refused: a resume could not tell them apart.
pub fn callback_states(callbacks: &[&mut dyn Callback]) -> Result<CallbackStates> {
    let mut states = BTreeMap::new();
    for callback in callbacks {
        if let Some(state) = callback.state() {
            let name = callback.name().to_owned();
            if states.insert(name.clone(), state).is_some() {
                return Err(Error::InvalidConfig(format!(
                    "two callbacks that keep state are both named `{name}`: give each its own \
                     name (Callback::name) so that a resumed run can tell them apart"
                )));
            }
        }
    }
    Ok(CallbackStates::ByName(states))
}

/// Gives each of `callbacks` the state saved for it (`saved`, read from `path`). Callbacks
/// that carry no state (progress bars) are neither given one nor counted, so a run resumes
/// with or without them; a stateful callback without a saved state, or a saved state
/// without its callback, is an error naming it.
pub fn restore_callback_states(
    callbacks: &mut [&mut dyn Callback],
    saved: &CallbackStates,
    path: &Path,
) -> Result<()> {
    let stateful: Vec<usize> = (0..callbacks.len())
        .filter(|&i| callbacks[i].state().is_some())
        .collect();
    match saved {
        CallbackStates::ByName(states) => {
            for &i in &stateful {
                let name = callbacks[i].name().to_owned();
                let Some(state) = states.get(&name) else {
                    return Err(Error::invalid_data(
                        path,
                        format!(
                            "the run was saved without the callback `{name}`, and is resumed \
                             with it: resume it with the settings it started with"
                        ),
                    ));
                };
                callbacks[i].restore(state.clone())?;
            }
            let names: Vec<String> = stateful
                .iter()
                .map(|&i| callbacks[i].name().to_owned())
                .collect();
            if let Some(missing) = states.keys().find(|k| !names.contains(k)) {
                return Err(Error::invalid_data(
                    path,
                    format!(
                        "the run was saved with the callback `{missing}`, and is resumed \
                         without it: resume it with the settings it started with"
                    ),
                ));
            }
        }
        // Version 1 listed every callback by position, `null` for those without state: the
        // stateful ones are matched in order.
        CallbackStates::ByPosition(states) => {
            let states: Vec<&serde_json::Value> = states.iter().flatten().collect();
            if states.len() != stateful.len() {
                return Err(Error::invalid_data(
                    path,
                    format!(
                        "the run was saved with {} callbacks that keep state, and is resumed \
                         with {}",
                        states.len(),
                        stateful.len()
                    ),
                ));
            }
            for (&i, state) in stateful.iter().zip(states) {
                callbacks[i].restore(state.clone())?;
            }
        }
    }
    Ok(())
}

/// A complete state read back: the JSON part and where its tensors are.
#[derive(Debug)]
pub struct SavedState {
    /// The JSON part.
    pub state: TrainingState,
    /// Its folder.
    pub dir: PathBuf,
}

impl SavedState {
    /// `model.safetensors`: every variable of the model.
    pub fn weights(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// The optimizer's tensors and step count.
    pub fn optimizer(&self) -> Result<OptimizerSnapshot> {
        let path = self.dir.join("optimizer.safetensors");
        Ok(OptimizerSnapshot {
            steps: self.state.optimizer_steps,
            tensors: crate::weights::read_weights(&path)?,
        })
    }

    /// The moving average of the weights, when the run keeps one.
    pub fn averages(&self) -> Result<Option<Vec<(String, Tensor)>>> {
        let path = self.averages_path();
        if !path.is_file() {
            return Ok(None);
        }
        crate::weights::read_weights(&path).map(Some)
    }

    /// `ema.safetensors`.
    pub fn averages_path(&self) -> PathBuf {
        self.dir.join("ema.safetensors")
    }
}

/// The state folder of a run (`RUN/state/`).
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state folder at `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The latest complete state, if any. A `state.json` that exists but cannot be read is
    /// an error naming it (it is written atomically, so it is not a half-written file).
    pub fn latest(&self) -> Result<Option<SavedState>> {
        for dir in self.epoch_dirs()?.into_iter().rev() {
            let path = dir.join("state.json");
            if !path.is_file() {
                continue;
            }
            let state: TrainingState = crate::json_file::read_json(&path)?;
            if state.format != FORMAT || !(1..=VERSION).contains(&state.version) {
                return Err(Error::invalid_data(
                    &path,
                    format!(
                        "not a convkit training state of versions 1 to {VERSION} (format `{}`, version {})",
                        state.format, state.version
                    ),
                ));
            }
            return Ok(Some(SavedState { state, dir }));
        }
        Ok(None)
    }

    /// Writes the state after `state.epoch`: the model's variables, the optimizer's tensors,
    /// the weights' moving average (when given), then `state.json`; then removes every other
    /// state folder. On error the previous state stays complete and loadable.
    pub fn save(
        &self,
        state: &TrainingState,
        weights: &[(String, Tensor)],
        optimizer: &OptimizerSnapshot,
        averages: Option<&[(String, Tensor)]>,
    ) -> Result<()> {
        let dir = self.root.join(format!("epoch-{:04}", state.epoch));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_tensors(&dir.join("model.safetensors"), weights)?;
        write_tensors(&dir.join("optimizer.safetensors"), &optimizer.tensors)?;
        if let Some(averages) = averages {
            write_tensors(&dir.join("ema.safetensors"), averages)?;
        }
        fault_injection_pause();
        let mut state = state.clone();
        state.optimizer_steps = optimizer.steps;
        let path = dir.join("state.json");
        let mut json = serde_json::to_vec_pretty(&state).map_err(|e| Error::Json {
            path: path.clone(),
            reason: e,
        })?;
        json.push(b'\n');
        write_atomic(&path, &json)?;
        for other in self.epoch_dirs()? {
            if other != dir {
                std::fs::remove_dir_all(&other).map_err(|e| Error::io(&other, e))?;
            }
        }
        Ok(())
    }

    /// Removes every state (a fresh run in the same folder).
    pub fn clear(&self) -> Result<()> {
        if self.root.exists() {
            std::fs::remove_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        }
        Ok(())
    }

    /// The `epoch-NNNN` folders, oldest first.
    fn epoch_dirs(&self) -> Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("epoch-"))
            })
            .collect();
        dirs.sort();
        Ok(dirs)
    }
}

/// For the fault-injection tests: `CONVKIT_FAULT_STATE_PAUSE_MS` holds a state write
/// between its tensors and its `state.json`, so that a test can kill the process there.
fn fault_injection_pause() {
    if let Some(ms) = std::env::var("CONVKIT_FAULT_STATE_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn snapshot() -> OptimizerSnapshot {
        OptimizerSnapshot {
            steps: 7,
            tensors: vec![(
                "velocity.w".into(),
                Tensor::ones([2], (Kind::Float, Device::Cpu)),
            )],
        }
    }

    #[test]
    fn keeps_the_latest_complete_state_only() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDir::new(dir.path().join("state"));
        assert!(states.latest().unwrap().is_none());
        let weights = vec![(
            "w".to_string(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        )];
        for epoch in 1..=3 {
            states
                .save(
                    &TrainingState::new(epoch, 5, 1),
                    &weights,
                    &snapshot(),
                    None,
                )
                .unwrap();
        }
        // An incomplete write of epoch 4: tensors, no state.json.
        std::fs::create_dir_all(states.root().join("epoch-0004")).unwrap();
        let latest = states.latest().unwrap().unwrap();
        assert_eq!(latest.state.epoch, 3);
        assert_eq!(latest.state.optimizer_steps, 7);
        assert_eq!(latest.optimizer().unwrap().tensors.len(), 1);
        assert!(latest.weights().is_file());
        let left: Vec<_> = std::fs::read_dir(states.root()).unwrap().collect();
        assert_eq!(left.len(), 2, "epoch 3 and the incomplete epoch 4");
        assert!(!latest.state.is_finished());
    }

    /// The history comes back bit for bit (serde_json's `float_roundtrip`: its default
    /// parser can be one unit in the last place off, as it was for this loss).
    #[test]
    fn the_history_reads_back_bit_for_bit() {
        let mut state = TrainingState::new(1, 2, 0);
        let mut record = crate::train::test_support::with_val_losses(&[0.5]).epochs[0].clone();
        record.loss = 0.973_632_097_244_262_7;
        record.val_loss = Some(f64::from_bits(0x3FE5_5555_5555_5555));
        state.history.epochs.push(record);
        let json = serde_json::to_string(&state).unwrap();
        let back: TrainingState = serde_json::from_str(&json).unwrap();
        let bits = |s: &TrainingState| {
            let r = &s.history.epochs[0];
            (r.loss.to_bits(), r.val_loss.unwrap().to_bits())
        };
        assert_eq!(bits(&back), bits(&state));
    }

    /// A write that fails (here: a file where the state folder should be created) names the
    /// path and leaves the previous state loadable.
    #[test]
    fn a_failed_write_keeps_the_previous_state() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDir::new(dir.path().join("state"));
        let weights = vec![(
            "w".to_string(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        )];
        states
            .save(&TrainingState::new(1, 5, 1), &weights, &snapshot(), None)
            .unwrap();
        std::fs::write(states.root().join("epoch-0002"), b"in the way").unwrap();
        let err = states
            .save(&TrainingState::new(2, 5, 1), &weights, &snapshot(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("epoch-0002"), "{err}");
        assert_eq!(states.latest().unwrap().unwrap().state.epoch, 1);
    }

    /// States are matched by name: a callback without state (a progress bar) may come and
    /// go between the save and the resume, in any position.
    #[test]
    fn callback_states_are_restored_by_name_whatever_shows_progress() {
        use crate::train::{EarlyStopping, ProgressBars, ReduceLrOnPlateau};
        let mut early = EarlyStopping::new(3);
        let mut reduce = ReduceLrOnPlateau::new(0.5, 2, 1e-6);
        let history = crate::train::test_support::with_val_losses(&[0.5, 0.4, 0.6]);
        let model =
            crate::Model::new(&crate::models::mnist_convnet(), tch::Device::Cpu, 0).unwrap();
        crate::train::test_support::feed(&mut early, &model, &history, 3);
        crate::train::test_support::feed(&mut reduce, &model, &history, 3);
        let mut bars = ProgressBars::new();
        let saved = callback_states(&[&mut bars, &mut early, &mut reduce]).unwrap();
        let CallbackStates::ByName(map) = &saved else {
            panic!("version 2 saves by name")
        };
        assert_eq!(
            map.keys().collect::<Vec<_>>(),
            ["early_stopping", "reduce_lr_on_plateau"]
        );
        let (mut early2, mut reduce2) =
            (EarlyStopping::new(3), ReduceLrOnPlateau::new(0.5, 2, 1e-6));
        let path = Path::new("state.json");
        restore_callback_states(&mut [&mut reduce2, &mut early2], &saved, path).unwrap();
        assert_eq!(early2.state(), early.state());
        assert_eq!(reduce2.state(), reduce.state());
        let err = restore_callback_states(&mut [&mut EarlyStopping::new(3)], &saved, path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("saved with the callback `reduce_lr_on_plateau`"),
            "{err}"
        );
        let mut best = crate::train::BestCheckpoint::new("best.safetensors".into());
        let err =
            restore_callback_states(&mut [&mut early2, &mut reduce2, &mut best], &saved, path)
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("saved without the callback `best_checkpoint`"),
            "{err}"
        );
    }

    /// Version 1 listed every callback by position, `null` for those without state; its
    /// stateful entries go to the stateful callbacks in order.
    #[test]
    fn version_1_states_are_matched_in_order() {
        use crate::train::{EarlyStopping, ProgressBars};
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-v1/scratch/state.json"),
        )
        .unwrap();
        let state: TrainingState = serde_json::from_str(&text).unwrap();
        assert_eq!(state.version, 1);
        assert!(matches!(state.callbacks, CallbackStates::ByPosition(_)));
        let mut early = EarlyStopping::new(3);
        let mut reduce = crate::train::ReduceLrOnPlateau::new(0.5, 2, 1e-6);
        let mut best = crate::train::BestCheckpoint::new("best.safetensors".into());
        let mut bars = ProgressBars::new();
        let path = Path::new("state.json");
        restore_callback_states(
            &mut [&mut bars, &mut early, &mut reduce, &mut best],
            &state.callbacks,
            path,
        )
        .unwrap();
        assert_eq!(best.best(), Some(0.6903103551864624));
        let err = restore_callback_states(&mut [&mut early, &mut best], &state.callbacks, path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("saved with 3 callbacks that keep state"),
            "{err}"
        );
    }
}
