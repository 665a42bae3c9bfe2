//! JSON files read and written whole: settings, metrics, training state. Writes are atomic
//! (see [`crate::atomic_file`]); errors name the file.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(value).map_err(|e| Error::Json {
        path: path.to_owned(),
        reason: e,
    })?;
    json.push(b'\n');
    write_atomic(path, &json)
}

/// Reads JSON from `path`, naming the file in any error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Json {
        path: path.to_owned(),
        reason: e,
    })
}
