//! Reading event files back: for resuming a run, for tests, and for tools that compare runs.

use std::path::{Path, PathBuf};

use prost::Message;

use super::proto::{Event, Kind};
use super::record::split_records;
use crate::error::{Error, Result};

/// A scalar read back from an event file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// Its series, such as `epoch_loss`.
    pub tag: String,
    /// Its step.
    pub step: i64,
    /// Its value.
    pub value: f32,
}

/// An event and the record bytes it was decoded from.
pub(super) struct RawEvent<'a> {
    pub event: Event,
    pub record: &'a [u8],
}

/// The events of a file's `bytes` (read from `path`, which errors name), with the count of
/// bytes after the last complete record.
pub(super) fn decode_events<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(Vec<RawEvent<'a>>, usize)> {
    let records = split_records(bytes).map_err(|e| Error::invalid_data(path, e.to_string()))?;
    let events = records
        .records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let event = Event::decode(record).map_err(|e| {
                Error::invalid_data(path, format!("record {} is not an event: {e}", i + 1))
            })?;
            Ok(RawEvent { event, record })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((events, records.truncated_bytes))
}

/// Every complete event of the event file at `path`, checksums checked. A last record cut
/// short (a writer killed mid-write) is left out; a damaged one is an error naming the file.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (events, _) = decode_events(path, &bytes)?;
    Ok(events.into_iter().map(|raw| raw.event).collect())
}

/// The event files of `dir` (names holding `tfevents`, as TensorBoard picks them), in the
/// order TensorBoard reads them: by name. A missing folder has none. Hidden files, such as
/// an interrupted atomic rewrite, are not event files.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_events = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("tfevents") && !n.starts_with('.'));
        if is_events && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The events of every event file of `dir`, file after file ([`event_files`]).
pub fn read_event_dir(dir: &Path) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for path in event_files(dir)? {
        events.extend(read_events(&path)?);
    }
    Ok(events)
}

/// The scalars among `events`, in order.
pub fn scalars(events: &[Event]) -> Vec<Scalar> {
    events
        .iter()
        .flat_map(|event| {
            event
                .values()
                .iter()
                .filter_map(move |value| match value.kind {
                    Some(Kind::SimpleValue(v)) => Some(Scalar {
                        tag: value.tag.clone(),
                        step: event.step,
                        value: v,
                    }),
                    _ => None,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tensorboard::EventWriter;

    #[test]
    fn reads_a_folder_in_name_order_and_skips_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = EventWriter::create(dir.path()).unwrap();
        first.add_scalar("a", 1, 1.0).unwrap();
        first.flush().unwrap();
        let mut second = EventWriter::create(dir.path()).unwrap();
        second.add_scalar("a", 2, 2.0).unwrap();
        second.flush().unwrap();
        std::fs::write(dir.path().join(".events.out.tfevents.1.partial-x"), b"junk").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not events").unwrap();
        assert_eq!(event_files(dir.path()).unwrap().len(), 2);
        let values: Vec<(i64, f32)> = scalars(&read_event_dir(dir.path()).unwrap())
            .into_iter()
            .map(|s| (s.step, s.value))
            .collect();
        assert_eq!(values, [(1, 1.0), (2, 2.0)]);
        assert!(event_files(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.out.tfevents.damaged");
        std::fs::write(&path, b"0123456789abcdef").unwrap();
        let err = read_events(&path).unwrap_err().to_string();
        assert!(err.contains("events.out.tfevents.damaged"), "{err}");
        assert!(err.contains("checksum"), "{err}");
    }
}
