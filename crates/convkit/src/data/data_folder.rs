//! Where a data folder named on the command line is found.

use std::path::{Path, PathBuf};

use crate::cache::non_empty_env;

/// `dir` when it is a folder; else, when it is a relative path, `$CONVKIT_DATA/dir` if that
/// is a folder, so that `--data cats_vs_dogs` names the shared data from anywhere once
/// `CONVKIT_DATA` is set. Anything else comes back as given, for the reader to name it in
/// its error.
pub fn locate_data_folder(dir: &Path) -> PathBuf {
    let root = non_empty_env("CONVKIT_DATA").map(PathBuf::from);
    locate_in(dir, root.as_deref())
}

fn locate_in(dir: &Path, data_root: Option<&Path>) -> PathBuf {
    if dir.is_dir() || dir.is_absolute() {
        return dir.to_owned();
    }
    data_root
        .map(|root| root.join(dir))
        .filter(|candidate| candidate.is_dir())
        .unwrap_or_else(|| dir.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_looked_for_here_then_in_the_data_folder() {
        let temp = tempfile::tempdir().unwrap();
        let data = temp.path();
        std::fs::create_dir_all(data.join("cats_vs_dogs/train")).unwrap();
        let root = Some(data);
        let here = Path::new("src");
        assert_eq!(locate_in(here, root), here);
        let absolute = data.join("nowhere");
        assert_eq!(locate_in(&absolute, root), absolute);
        let name = Path::new("cats_vs_dogs");
        assert_eq!(locate_in(name, root), data.join("cats_vs_dogs"));
        assert_eq!(locate_in(name, None), name);
        let split = Path::new("cats_vs_dogs/train");
        assert_eq!(locate_in(split, root), data.join(split));
        assert_eq!(locate_in(Path::new("missing"), root), Path::new("missing"));
    }
}
