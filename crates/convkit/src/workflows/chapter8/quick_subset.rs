//! Where `convkit chapter8` finds cats vs dogs, and the `--quick` smoke test's subset of it.

use std::path::{Path, PathBuf};

use super::recipes::{QUICK_TRAIN_PER_CLASS, QUICK_VALIDATION_PER_CLASS};
use crate::cache::non_empty_env;
use crate::data::image_folder::ImageFolder;
use crate::error::{Error, Result};

/// The cats-vs-dogs folder: `DATA/cats_vs_dogs`, where `DATA` is `data_dir`, else
/// `$CONVKIT_DATA`, else `./data`.
pub fn cats_source(data_dir: Option<&Path>) -> Result<PathBuf> {
    let searched: Vec<PathBuf> = match data_dir {
        Some(dir) => vec![dir.join("cats_vs_dogs")],
        None => non_empty_env("CONVKIT_DATA")
            .map(|d| PathBuf::from(d).join("cats_vs_dogs"))
            .into_iter()
            .chain(Some(PathBuf::from("data/cats_vs_dogs")))
            .collect(),
    };
    searched
        .iter()
        .find(|dir| dir.join("train").is_dir())
        .cloned()
        .ok_or_else(|| Error::DataNotFound {
            what: "cats vs dogs (a folder cats_vs_dogs/ holding train/ and validation/, each \
                   with cats/ and dogs/; give its parent with --data or $CONVKIT_DATA)"
                .into(),
            searched,
        })
}

/// The folder of the smoke test's subset, inside the output folder.
pub fn quick_cats_dir(out: &Path) -> PathBuf {
    out.join("quick-data").join("cats_vs_dogs")
}

/// Lays out the first images of each class of `source` (sorted by name) in `dest`, as
/// links (copies where links are not available): the same folder structure, so that the
/// very same workflows run on it. Links already there are kept.
pub fn make_quick_subset(source: &Path, dest: &Path) -> Result<()> {
    for (split, per_class) in [
        ("train", QUICK_TRAIN_PER_CLASS),
        ("validation", QUICK_VALIDATION_PER_CLASS),
    ] {
        let folder = ImageFolder::scan(&source.join(split))?;
        for (label, class) in folder.classes.iter().enumerate() {
            let dir = dest.join(split).join(class);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let files = folder
                .files
                .iter()
                .filter(|(_, l)| *l == label as i64)
                .take(per_class);
            for (file, _) in files {
                let Some(name) = file.file_name() else {
                    continue;
                };
                let link = dir.join(name);
                if link.symlink_metadata().is_ok() {
                    continue;
                }
                let target = file.canonicalize().map_err(|e| Error::io(file, e))?;
                link_or_copy(&target, &link)?;
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn link_or_copy(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(|e| Error::io(link, e))
}

#[cfg(not(unix))]
fn link_or_copy(target: &Path, link: &Path) -> Result<()> {
    std::fs::copy(target, link)
        .map(|_| ())
        .map_err(|e| Error::io(link, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_the_data_names_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let err = cats_source(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("cats_vs_dogs"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn the_quick_subset_links_the_first_images_of_each_class() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        for split in ["train", "validation"] {
            for class in ["cats", "dogs"] {
                let d = source.join(split).join(class);
                std::fs::create_dir_all(&d).unwrap();
                for k in 0..120 {
                    std::fs::write(d.join(format!("{class}.{k:03}.jpg")), b"x").unwrap();
                }
            }
        }
        let dest = dir.path().join("quick");
        make_quick_subset(&source, &dest).unwrap();
        make_quick_subset(&source, &dest).unwrap(); // a second call keeps the links
        let count = |p: PathBuf| std::fs::read_dir(p).unwrap().count();
        assert_eq!(count(dest.join("train/cats")), QUICK_TRAIN_PER_CLASS);
        assert_eq!(
            count(dest.join("validation/dogs")),
            QUICK_VALIDATION_PER_CLASS
        );
        assert!(dest.join("train/dogs/dogs.000.jpg").is_file());
        assert!(!dest.join("train/dogs/dogs.100.jpg").exists());
    }
}
