//! A run folder's `run.json`: [`RunSpec::read`] takes this version's and the files earlier
//! versions of convkit wrote (converted by [`super::legacy_v1`]); [`RunSpec::write`]
//! writes this version's.

use std::path::Path;

use super::description::{RunSpec, RUN_FORMAT, RUN_VERSION};
use super::legacy_v1;
use crate::error::{Error, Result};
use crate::json_file::{read_json, write_json};

impl RunSpec {
    /// Reads a `run.json`: this version's, or one written by an earlier convkit (converted;
    /// see [`super::legacy_v1`]). Anything else is refused with a message naming the file
    /// and saying why.
    pub fn read(path: &Path) -> Result<RunSpec> {
        let value: serde_json::Value = read_json(path)?;
        let format = value.get("format").and_then(|f| f.as_str());
        let version = value.get("version").and_then(|v| v.as_u64());
        match (format, version) {
            (Some(RUN_FORMAT), Some(v)) if v == u64::from(RUN_VERSION) => {
                serde_json::from_value(value).map_err(|e| Error::Json {
                    path: path.to_owned(),
                    reason: e,
                })
            }
            (Some(RUN_FORMAT), Some(v)) => Err(Error::invalid_data(
                path,
                format!(
                    "a run description of version {v}, written by a newer convkit (this one \
                     reads versions 1 to {RUN_VERSION}): upgrade convkit to use this run"
                ),
            )),
            (None, _) if value.get("job").is_some() => legacy_v1::convert(value, path),
            _ => Err(Error::invalid_data(
                path,
                "not a convkit run description (no `format: convkit-run`, and not the `job` \
                 file of convkit before version 2)",
            )),
        }
    }

    /// Writes the description to `path` (atomically, as pretty JSON).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }
}
