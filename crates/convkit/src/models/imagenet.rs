//! ImageNet's 1000 class names, for backbones that keep their classifier.

use std::path::{Path, PathBuf};

use super::pretrained::{find_in_models_dirs, MODELS_ENV};
use crate::error::{Error, Result};

/// The file of class names, relative to a models folder: `index`, `wnid`, `name` per line,
/// tab-separated, in ILSVRC-2012 order (index 0 is tench).
pub const CLASSES_FILE: &str = "imagenet_classes.tsv";

/// Reads the 1000 class names from a TSV file as [`CLASSES_FILE`] describes; checks that
/// there are 1000, in index order.
pub fn read_imagenet_classes(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut names = Vec::with_capacity(1000);
    for (line_no, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        if line_no == 0 && fields.first() == Some(&"index") {
            continue;
        }
        match fields.as_slice() {
            [index, _wnid, name] if index.parse::<usize>() == Ok(names.len()) => {
                names.push(name.to_string())
            }
            _ => {
                return Err(Error::invalid_data(
                    path,
                    format!(
                        "line {}: expected `{}<TAB>wnid<TAB>name`",
                        line_no + 1,
                        names.len()
                    ),
                ))
            }
        }
    }
    if names.len() != 1000 {
        return Err(Error::invalid_data(
            path,
            format!("{} class names, ImageNet has 1000", names.len()),
        ));
    }
    Ok(names)
}

/// The class names file: `explicit`, else `$CONVKIT_MODELS/imagenet_classes.tsv`, else the
/// cache's.
pub fn locate_imagenet_classes(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    find_in_models_dirs(CLASSES_FILE).map_err(|searched| Error::DataNotFound {
        what: format!(
            "the ImageNet class names (`{CLASSES_FILE}`: pass --classes or set {MODELS_ENV})"
        ),
        searched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_misnumbered_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.tsv");
        std::fs::write(
            &path,
            "index\twnid\tname\n0\tn01\ttench\n2\tn02\tgoldfish\n",
        )
        .unwrap();
        let err = read_imagenet_classes(&path).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("c.tsv"), "{err}");
        std::fs::write(&path, "0\tn01\ttench\n").unwrap();
        let err = read_imagenet_classes(&path).unwrap_err().to_string();
        assert!(err.contains("1 class names"), "{err}");
    }
}
