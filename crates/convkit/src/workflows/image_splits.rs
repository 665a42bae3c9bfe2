//! The splits of an image-folder run, decoded into memory or into the on-disk cache
//! ([`DiskDataset`]), and handed to training through the one [`ImageDataset`] interface.

use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::image_folder::{ImageFolder, ImageOptions, SplitFolders};
use crate::data::{Dataset, DiskDataset, ImageDataset, Subset};
use crate::error::{Error, Result};

/// Where a run keeps its decoded images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// In memory up to [`auto_disk_threshold`] bytes of decoded images, on disk above.
    #[default]
    Auto,
    /// In memory, one byte tensor per split: the fastest, for sets that fit.
    Memory,
    /// In a memory-mapped file per split, decoded once and reused by later runs and by
    /// every process of a data-parallel run; resident memory stays bounded.
    Disk,
}

impl FromStr for Storage {
    type Err = Error;

    fn from_str(text: &str) -> Result<Storage> {
        match text {
            "auto" => Ok(Storage::Auto),
            "memory" => Ok(Storage::Memory),
            "disk" => Ok(Storage::Disk),
            _ => Err(Error::InvalidConfig(format!(
                "unknown storage `{text}`: use auto, memory or disk"
            ))),
        }
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Storage::Auto => "auto",
            Storage::Memory => "memory",
            Storage::Disk => "disk",
        })
    }
}

/// Above this many bytes of decoded images, `auto` keeps them on disk: a quarter of the
/// machine's memory, at most 4 GiB (about 44,000 images at 180x180).
pub fn auto_disk_threshold() -> u64 {
    let quarter = memory_total_bytes().map_or(u64::MAX, |total| total / 4);
    quarter.min(4 << 30)
}

/// `MemTotal` of `/proc/meminfo`.
fn memory_total_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One split, decoded.
pub(crate) enum Split {
    /// In memory.
    Memory(Rc<Dataset>),
    /// In the on-disk cache, or a view of one.
    Disk(Rc<dyn ImageDataset>),
}

impl Split {
    /// The split as training and evaluation read it.
    pub(crate) fn data(&self) -> &dyn ImageDataset {
        match self {
            Split::Memory(data) => data.as_ref(),
            Split::Disk(data) => data.as_ref(),
        }
    }

    /// The split as tensors, when it is in memory.
    pub(crate) fn in_memory(&self) -> Option<&Dataset> {
        match self {
            Split::Memory(data) => Some(data),
            Split::Disk(_) => None,
        }
    }
}

/// Reads the splits of a run's data folders.
pub(crate) struct SplitReader<'a> {
    /// How images are decoded and resized.
    pub options: &'a ImageOptions,
    /// Whether an unreadable file is an error (else it is skipped with a warning).
    pub strict: bool,
    /// Memory or disk (`auto` resolved by [`SplitReader::resolve`]).
    pub storage: Storage,
    /// Folder of the on-disk caches.
    pub cache_dir: Option<PathBuf>,
    /// Whether to show a progress bar while building a cache.
    pub progress: bool,
}

impl SplitReader<'_> {
    /// `auto` made concrete for `folders`: disk when their decoded images would exceed
    /// [`auto_disk_threshold`].
    pub(crate) fn resolve(storage: Storage, folders: &SplitFolders, image_size: u32) -> Storage {
        if storage != Storage::Auto {
            return storage;
        }
        let count: usize = [
            Some(&folders.train),
            folders.validation.as_ref(),
            folders.test.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|dir| ImageFolder::scan(dir).ok())
        .map(|f| f.files.len())
        .sum();
        let bytes = count as u64 * 3 * u64::from(image_size) * u64::from(image_size);
        if bytes > auto_disk_threshold() {
            Storage::Disk
        } else {
            Storage::Memory
        }
    }

    /// The images of `dir`, and the number of files skipped.
    pub(crate) fn read(&self, dir: &Path) -> Result<(Split, usize)> {
        let folder = ImageFolder::scan(dir)?;
        let (split, skipped) = match self.storage {
            Storage::Disk => {
                let cache_dir = self
                    .cache_dir
                    .clone()
                    .or_else(DiskDataset::default_cache_dir)
                    .ok_or_else(|| {
                        Error::InvalidConfig(
                            "no folder for the decoded-image cache: set --decoded-cache DIR (or HOME)"
                                .into(),
                        )
                    })?;
                let data = DiskDataset::open_or_build(
                    &folder,
                    self.options,
                    &cache_dir,
                    self.strict,
                    self.progress,
                )?;
                let skipped: Vec<String> =
                    data.skipped().iter().map(|(_, why)| why.clone()).collect();
                (Split::Disk(Rc::new(data)), skipped)
            }
            Storage::Memory | Storage::Auto => {
                let loaded = folder.load(self.options, self.strict)?;
                let skipped = loaded.skipped.iter().map(|(_, why)| why.clone()).collect();
                (Split::Memory(Rc::new(loaded.dataset)), skipped)
            }
        };
        // A warning, not progress: printed with --quiet too.
        if !skipped.is_empty() {
            eprintln!(
                "warning: skipped {} unreadable file(s) in {}:",
                skipped.len(),
                dir.display()
            );
            for reason in skipped.iter().take(10) {
                eprintln!("  {reason}");
            }
        }
        Ok((split, skipped.len()))
    }
}

/// Splits `all` at random (seeded) into `(training, validation)`, `fraction` of it for
/// validation: the same samples in memory and on disk.
pub(crate) fn split_validation(all: Split, fraction: f64, seed: u64) -> Result<(Split, Split)> {
    Ok(match all {
        Split::Memory(data) => {
            let (train, validation) = data.split_validation_shuffled(fraction, seed)?;
            (
                Split::Memory(Rc::new(train)),
                Split::Memory(Rc::new(validation)),
            )
        }
        Split::Disk(data) => {
            let (train, validation) = Subset::split_validation_shuffled(data, fraction, seed)?;
            (
                Split::Disk(Rc::new(train)),
                Split::Disk(Rc::new(validation)),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_round_trip_and_auto_is_bounded() {
        for storage in [Storage::Auto, Storage::Memory, Storage::Disk] {
            assert_eq!(storage.to_string().parse::<Storage>().unwrap(), storage);
        }
        assert!("ram"
            .parse::<Storage>()
            .unwrap_err()
            .to_string()
            .contains("memory"));
        let threshold = auto_disk_threshold();
        assert!(threshold > 0 && threshold <= 4 << 30);
    }
}
