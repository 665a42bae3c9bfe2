//! The files of a run folder, and the measurements every run records.

use std::path::{Path, PathBuf};

use tch::Device;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::runtime::Precision;
use crate::workflows::run_spec::RunSpec;

/// The standard files of a run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates the folder (and its parents) if needed.
    pub fn create(root: &Path) -> Result<RunDir> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        Ok(RunDir {
            root: root.to_owned(),
        })
    }

    /// The run folder at `root`, neither created nor checked.
    pub fn at(root: &Path) -> RunDir {
        RunDir {
            root: root.to_owned(),
        }
    }

    /// An existing run folder; fails with a clear message if it is not one.
    pub fn open(root: &Path) -> Result<RunDir> {
        let run = RunDir {
            root: root.to_owned(),
        };
        if run.checkpoint().is_none() {
            return Err(Error::invalid_data(
                root,
                "not a convkit run folder: it holds no best.safetensors or model.safetensors \
                 (train one with `convkit mnist` or `convkit train`)",
            ));
        }
        Ok(run)
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `model.safetensors`: the trained parameters (with `model.json` beside it).
    pub fn model(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }

    /// `best.safetensors`: the epoch with the lowest validation loss (with `best.json`).
    pub fn best(&self) -> PathBuf {
        self.root.join("best.safetensors")
    }

    /// `last.safetensors`: the model after the last epoch (with `last.json`).
    pub fn last(&self) -> PathBuf {
        self.root.join("last.safetensors")
    }

    /// The checkpoint that evaluation and prediction use: `best.safetensors` when the run
    /// kept one, else `model.safetensors`.
    pub fn checkpoint(&self) -> Option<PathBuf> {
        [self.best(), self.model()]
            .into_iter()
            .find(|p| p.is_file())
    }

    /// `history.csv`: one row per epoch.
    pub fn history(&self) -> PathBuf {
        self.root.join("history.csv")
    }

    /// `curves.png`: loss and accuracy per epoch.
    pub fn curves(&self) -> PathBuf {
        self.root.join("curves.png")
    }

    /// `metrics.json`: final numbers of the run.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.json")
    }

    /// `run.json`: what was asked for (job, data, settings), so the run can be evaluated
    /// and repeated.
    pub fn config(&self) -> PathBuf {
        self.root.join("run.json")
    }

    /// `state/`: the resumable training state ([`crate::train::StateDir`]).
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// The run's description (`run.json`), of this version or an earlier one.
    pub fn spec(&self) -> Result<RunSpec> {
        RunSpec::read(&self.config())
    }

    /// Makes the folder ready for a new run of `command`. Refuses one that holds a finished
    /// run (`metrics.json`) or a run in progress (a saved state), so that a new run never
    /// replaces the weights and results of another; clears the state of a run that stopped
    /// before its first epoch was saved.
    pub fn start_fresh(&self, command: &str) -> Result<()> {
        if self.metrics().is_file() {
            let epochs = self.epochs_in_history();
            return Err(Error::InvalidConfig(format!(
                "{} holds a finished run ({epochs} epoch{}, with its model and metrics.json), \
                 which a new run would replace: write to another folder with --out, or remove \
                 this one to train again",
                self.root.display(),
                if epochs == 1 { "" } else { "s" },
            )));
        }
        let states = crate::train::StateDir::new(self.state());
        if let Some(saved) = states.latest()? {
            return Err(Error::InvalidConfig(format!(
                "{} holds a run in progress ({} of {} epochs done): continue it with \
                 `convkit {command} --resume {}`, or write to another folder with --out",
                self.root.display(),
                saved.state.epoch,
                saved.state.epochs,
                self.root.display()
            )));
        }
        states.clear()
    }

    /// The epochs `history.csv` holds (0 when it is missing or unreadable), for messages.
    fn epochs_in_history(&self) -> usize {
        crate::train::History::read_csv(&self.history()).map_or(0, |h| h.epochs.len())
    }

    /// Checks that the folder holds an unfinished run, to be resumed, and removes the
    /// temporary files that a killed write left behind.
    pub fn check_resumable(&self) -> Result<()> {
        if !self.config().is_file() {
            return Err(Error::invalid_data(
                &self.root,
                "not a convkit run folder: it has no run.json to resume from",
            ));
        }
        if self.metrics().is_file() {
            let epochs = self.epochs_in_history();
            return Err(Error::RunFinished {
                run_dir: self.root.clone(),
                epochs,
            });
        }
        for entry in std::fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let path = entry.map_err(|e| Error::io(&self.root, e))?.path();
            let partial = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.contains(".partial-"));
            if partial {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// The precision the run computed in, as `run.json` records it (fp32 for runs made
    /// before convkit recorded it, or without a readable `run.json`).
    pub fn recorded_precision(&self) -> Precision {
        self.spec()
            .ok()
            .and_then(|spec| spec.recorded)
            .map_or(Precision::Fp32, |r| r.precision)
    }

    /// The run's checkpoint ([`RunDir::checkpoint`]) loaded on `device`, computing in
    /// `precision`, or in the run's own when `None`.
    pub fn load_checkpoint(&self, device: Device, precision: Option<Precision>) -> Result<Model> {
        let path = self
            .checkpoint()
            .ok_or_else(|| Error::invalid_data(&self.root, "the run folder holds no checkpoint"))?;
        let mut model = Model::load(&path, device)?;
        model.set_precision(precision.unwrap_or_else(|| self.recorded_precision()));
        Ok(model)
    }
}

/// The process's peak resident memory so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_memory_is_read_on_linux() {
        let peak = peak_rss_bytes().unwrap();
        assert!(peak > 1 << 20, "{peak}");
    }

    #[test]
    fn opening_a_folder_without_a_model_explains() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a convkit run folder"), "{err}");
    }
}
