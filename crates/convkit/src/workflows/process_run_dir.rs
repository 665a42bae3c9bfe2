//! Which run folder each process writes. Alone, or as rank 0 of a data-parallel run, a
//! process writes the run folder the user named; the other ranks compute exactly what rank
//! 0 computes (the same weights, the same evaluations) but write into a private scratch
//! folder, removed when they finish, so that one run folder exists, written by one process.

use std::path::{Path, PathBuf};

use super::run_dir::RunDir;
use crate::distributed::{default_group, ProcessGroup};
use crate::error::{Error, Result};

/// The run folder of this process (see the module's documentation).
#[derive(Debug)]
pub(crate) struct ProcessRunDir {
    root: PathBuf,
    scratch: bool,
}

/// What rank 0 sends before a resume: `run.json`, or why the run cannot resume.
const REFUSED: &[u8] = b"refused:";

impl ProcessRunDir {
    /// For a new run that writes to `out_dir`.
    pub(crate) fn new_run(out_dir: &Path) -> Result<ProcessRunDir> {
        match default_group() {
            Some(group) if group.rank() > 0 => scratch(&group),
            _ => Ok(ProcessRunDir {
                root: out_dir.to_owned(),
                scratch: false,
            }),
        }
    }

    /// For a run that continues the one in `run_dir`: rank 0 checks that it can resume and sends its `run.json` to the other ranks, which
    /// resume from a scratch folder holding it (the training state itself comes from rank 0
    /// in [`crate::train::fit()`]). A refusal on rank 0 is every rank's error.
    pub(crate) fn resume(run_dir: &Path) -> Result<ProcessRunDir> {
        let here = ProcessRunDir {
            root: run_dir.to_owned(),
            scratch: false,
        };
        let Some(group) = default_group().filter(|g| g.world_size() > 1) else {
            RunDir::at(run_dir).check_resumable()?;
            return Ok(here);
        };
        if group.rank() == 0 {
            let run = RunDir::at(run_dir);
            let checked = run
                .check_resumable()
                .and_then(|()| std::fs::read(run.config()).map_err(|e| Error::io(run.config(), e)));
            let message = match &checked {
                Ok(json) => json.clone(),
                Err(err) => [REFUSED, err.to_string().as_bytes()].concat(),
            };
            group.broadcast_bytes(message, 0)?;
            return checked.map(|_| here);
        }
        let message = group.broadcast_bytes(Vec::new(), 0)?;
        if let Some(reason) = message.strip_prefix(REFUSED) {
            return Err(Error::Distributed(format!(
                "rank 0 cannot resume {}: {}",
                run_dir.display(),
                String::from_utf8_lossy(reason)
            )));
        }
        let dir = scratch(&group)?;
        let config = RunDir::at(&dir.root).config();
        std::fs::write(&config, &message).map_err(|e| Error::io(&config, e))?;
        Ok(dir)
    }

    /// The folder this process writes.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Whether it is rank 0's (or a lone process's) folder, the one the user sees.
    pub(crate) fn is_main(&self) -> bool {
        !self.scratch
    }
}

impl Drop for ProcessRunDir {
    fn drop(&mut self) {
        if self.scratch {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A fresh scratch folder for this rank.
fn scratch(group: &ProcessGroup) -> Result<ProcessRunDir> {
    let root = std::env::temp_dir().join(format!(
        "convkit-rank{}-{}",
        group.rank(),
        std::process::id()
    ));
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    Ok(ProcessRunDir {
        root,
        scratch: true,
    })
}

/// Fails unless this run uses as many processes as the run it resumes (`recorded`): the
/// shards, and so the weights, depend on the number of processes.
pub(crate) fn check_same_world_size(recorded: usize, run_dir: &Path) -> Result<()> {
    let now = crate::distributed::world_size();
    if recorded != now {
        return Err(Error::invalid_data(
            RunDir::at(run_dir).config(),
            format!(
                "the run was trained by {recorded} process(es) and is resumed by {now}: resume \
                 it with the same number ({})",
                if recorded == 1 {
                    "a plain `convkit ... --resume`, without torchrun".to_owned()
                } else {
                    format!(
                        "{recorded} processes in all, e.g. `torchrun --nproc-per-node={recorded} \
                         --no-python convkit ... --resume`"
                    )
                }
            ),
        ));
    }
    Ok(())
}
