//! Making a run's event files agree with its resumable state: a run killed after writing
//! epoch K+1's events but before saving its state resumes after epoch K, and would write
//! epoch K+1 again.

use std::path::Path;

use super::reader::{decode_events, event_files};
use super::record::encode_record;
use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};

/// Keeps in every event file of `dir` only the events of steps up to `last_step`, rewriting
/// each file that changes atomically, and drops a last record cut short. A file left with
/// no summary (only its file-version event) is removed, as are rewrites that a kill
/// interrupted. Records are kept byte for byte.
pub fn discard_steps_after(dir: &Path, last_step: i64) -> Result<()> {
    remove_interrupted_rewrites(dir)?;
    for path in event_files(dir)? {
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (events, truncated_bytes) = decode_events(&path, &bytes)?;
        let count = events.len();
        let kept: Vec<_> = events
            .into_iter()
            .filter(|raw| raw.event.step <= last_step)
            .collect();
        if !kept.iter().any(|raw| !raw.event.values().is_empty()) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        } else if kept.len() != count || truncated_bytes > 0 {
            let mut out = Vec::with_capacity(bytes.len());
            for raw in &kept {
                encode_record(raw.record, &mut out);
            }
            write_atomic(&path, &out)?;
        }
    }
    Ok(())
}

/// Removes every event file of `dir`: a fresh run in the folder of an earlier one replaces
/// its logs, as it replaces its history.
pub fn remove_event_files(dir: &Path) -> Result<()> {
    remove_interrupted_rewrites(dir)?;
    for path in event_files(dir)? {
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// Removes the temporary files of atomic rewrites ([`crate::atomic_file`]) that a kill left
/// in `dir`: TensorBoard would read them as event files, since their names hold `tfevents`.
fn remove_interrupted_rewrites(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let partial = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.starts_with('.') && n.contains(".partial-") && n.contains("tfevents")
        });
        if partial {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tensorboard::{read_event_dir, scalars, EventWriter};

    fn steps(dir: &Path) -> Vec<i64> {
        scalars(&read_event_dir(dir).unwrap())
            .into_iter()
            .map(|s| s.step)
            .collect()
    }

    fn write_epochs(dir: &Path, epochs: std::ops::RangeInclusive<i64>) -> std::path::PathBuf {
        let mut writer = EventWriter::create(dir).unwrap();
        for epoch in epochs {
            writer
                .add_scalar("epoch_loss", epoch, epoch as f64)
                .unwrap();
        }
        writer.flush().unwrap();
        writer.path().to_owned()
    }

    #[test]
    fn later_steps_are_dropped_and_earlier_ones_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_epochs(dir.path(), 1..=5);
        let before = std::fs::read(&path).unwrap();
        discard_steps_after(dir.path(), 3).unwrap();
        assert_eq!(steps(dir.path()), [1, 2, 3]);
        let after = std::fs::read(&path).unwrap();
        assert!(before.starts_with(&after), "the kept records are unchanged");
        // Nothing to drop: the file is left alone.
        discard_steps_after(dir.path(), 3).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), after);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_truncated_tail_is_dropped_and_an_emptied_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_epochs(dir.path(), 1..=2);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let later = write_epochs(dir.path(), 4..=4);
        std::fs::write(dir.path().join(".events.out.tfevents.9.partial-x"), b"half").unwrap();
        discard_steps_after(dir.path(), 3).unwrap();
        assert_eq!(steps(dir.path()), [1]);
        assert!(!later.exists(), "left with no summary");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_file_is_an_error_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_epochs(dir.path(), 1..=2);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = discard_steps_after(dir.path(), 1).unwrap_err().to_string();
        assert!(err.contains("tfevents"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_fresh_run_removes_the_old_files() {
        let dir = tempfile::tempdir().unwrap();
        write_epochs(dir.path(), 1..=2);
        remove_event_files(dir.path()).unwrap();
        assert!(event_files(dir.path()).unwrap().is_empty());
        remove_event_files(&dir.path().join("missing")).unwrap();
    }
}
