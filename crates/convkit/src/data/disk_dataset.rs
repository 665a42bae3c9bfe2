//! Labelled images from an on-disk cache of decoded images, for splits larger than memory:
//! decoded once into one memory-mapped file per split, then read a batch at a time, with
//! the next batches gathered on a background thread.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tch::Tensor;

use super::batches::Batch;
use super::cache_file::{write_cache_file, CacheFile};
use super::cache_key::CacheKey;
use super::cache_lock::CacheLock;
use super::dataset::Dataset;
use super::image_dataset::ImageDataset;
use super::image_folder::{ImageFolder, ImageOptions};
use super::prefetch::Prefetch;
use crate::error::{Error, Result};

/// Batches gathered ahead of the one the caller holds ([`DiskDataset`]'s docs and
/// [`DiskDataset::batches`]' give the number).
const PREFETCH_BATCHES: usize = 3;

/// The images of an [`ImageFolder`], decoded once into a cache file and read from it by
/// memory mapping: the same images, labels and order as [`ImageFolder::load`], without
/// holding them in memory.
///
/// Resident memory stays bounded whatever the dataset's size: each batch is copied out of
/// the mapping and the pages read are handed back to the kernel at once
/// (`madvise(MADV_DONTNEED)`), so a process holds the batches in flight (the caller's and
/// 3 more) plus the labels and paths, not the file. The kernel's page
/// cache still keeps what fits of the file, shared by every process reading it.
#[derive(Debug)]
pub struct DiskDataset {
    file: Arc<CacheFile>,
    path: PathBuf,
    paths: Vec<PathBuf>,
    skipped: Vec<(PathBuf, String)>,
    built: bool,
}

impl DiskDataset {
    /// Opens the cache of `folder`'s images decoded with `options` in `cache_dir`, building
    /// it first if there is none.
    ///
    /// Every call hashes every file's content (see [`CacheKey`]), far cheaper than decoding,
    /// so a cache is used only for exactly the files and settings it was built from. Its name
    /// holds the key: a changed, added or removed file or other settings lead to another
    /// file, and the old one is left alone (other runs may still use it; delete the folder
    /// to reclaim the space). A damaged file of the right name is rebuilt.
    ///
    /// Building decodes on all cores, a bounded chunk of images at a time, under an
    /// exclusive lock (`<cache>.lock`, `flock`): processes asking for the same cache at once
    /// build it once, and the others wait, then open it.
    ///
    /// A file that cannot be decoded is an error with `strict`, else it is left out and
    /// listed in [`DiskDataset::skipped`] (labels of the others are unchanged), on the build
    /// and on every later open. `progress` shows a bar on stderr while decoding.
    pub fn open_or_build(
        folder: &ImageFolder,
        options: &ImageOptions,
        cache_dir: &Path,
        strict: bool,
        progress: bool,
    ) -> Result<DiskDataset> {
        let key = CacheKey::compute(folder, options)?;
        let path = cache_dir.join(cache_file_name(folder, options, &key));
        if let Ok(dataset) = DiskDataset::open_built(&path, folder, &key) {
            return dataset.checked(strict);
        }
        std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
        let lock = path.with_file_name(format!(
            "{}.lock",
            path.file_name().expect("a name").to_string_lossy()
        ));
        let _lock = CacheLock::exclusive(&lock)?;
        // Another process may have built it while this one waited.
        if let Ok(dataset) = DiskDataset::open_built(&path, folder, &key) {
            return dataset.checked(strict);
        }
        remove_partial_builds(&path);
        write_cache_file(&path, folder, options, &key, strict, progress)?;
        let mut dataset = DiskDataset::open_built(&path, folder, &key)?;
        dataset.built = true;
        dataset.checked(strict)
    }

    /// The default folder for decoded-image caches: `decoded/` in the user's cache folder
    /// ([`crate::cache::cache_dir`]), `None` when there is no user cache folder.
    pub fn default_cache_dir() -> Option<PathBuf> {
        crate::cache::cache_dir("decoded")
    }

    /// Opens the cache at `path` if it was built from `folder` as `key` says.
    fn open_built(path: &Path, folder: &ImageFolder, key: &CacheKey) -> Result<DiskDataset> {
        let file = CacheFile::open(path)?;
        let header = file.header();
        let mismatch =
            |what: &str| Error::invalid_data(path, format!("cache built from other {what}"));
        if header.key != key.hex() {
            return Err(mismatch("files or settings (key differs)"));
        }
        if header.classes != folder.classes || header.source_files != folder.files.len() {
            return Err(mismatch("classes or files"));
        }
        let skipped_at: HashSet<usize> = header.skipped.iter().map(|s| s.index).collect();
        let kept: Vec<&(PathBuf, i64)> = (0..folder.files.len())
            .filter(|i| !skipped_at.contains(i))
            .map(|i| &folder.files[i])
            .collect();
        if kept.len() != header.images || kept.iter().zip(&header.labels).any(|(f, l)| f.1 != *l) {
            return Err(mismatch("labels"));
        }
        let skipped = header
            .skipped
            .iter()
            .filter_map(|s| {
                let file = &folder.files.get(s.index)?.0;
                Some((file.clone(), format!("{}: {}", file.display(), s.reason)))
            })
            .collect();
        Ok(DiskDataset {
            paths: kept.into_iter().map(|(p, _)| p.clone()).collect(),
            skipped,
            file: Arc::new(file),
            path: path.to_owned(),
            built: false,
        })
    }

    /// Refuses, as [`ImageFolder::load`] does with `strict`, a cache that left files out.
    fn checked(self, strict: bool) -> Result<DiskDataset> {
        let first = self.file.header().skipped.first();
        match (first, self.skipped.first()) {
            (Some(skipped), Some((path, _))) if strict => {
                Err(Error::invalid_data(path, skipped.reason.clone()))
            }
            _ => Ok(self),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.file.header().images
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class names, indexed by label.
    pub fn classes(&self) -> &[String] {
        &self.file.header().classes
    }

    /// Shape of one image, `(C, H, W)`.
    pub fn image_shape(&self) -> Vec<i64> {
        let header = self.file.header();
        vec![
            header.channels as i64,
            header.height as i64,
            header.width as i64,
        ]
    }

    /// The label of each image.
    pub fn labels(&self) -> &[i64] {
        &self.file.header().labels
    }

    /// The file each image was decoded from, in the dataset's order (as
    /// [`super::image_folder::LoadedImages::paths`]).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Files that could not be decoded and are left out, with the reason (as
    /// [`super::image_folder::LoadedImages::skipped`]).
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cache's key ([`CacheKey::hex`]).
    pub fn key(&self) -> &str {
        &self.file.header().key
    }

    /// Whether this open decoded the images (no usable cache existed), rather than reusing a
    /// cache.
    pub fn built(&self) -> bool {
        self.built
    }

    /// The samples at `order` (all of them in index order when `None`), in batches of
    /// `batch_size` (at least 1), gathered 3 ahead on a background
    /// thread. An index out of range ends the batches with an `Err`.
    pub fn batches(&self, order: Option<Vec<i64>>, batch_size: usize) -> Result<Prefetch<Batch>> {
        let order = order.unwrap_or_else(|| (0..self.len() as i64).collect());
        let batch_size = batch_size.max(1);
        let file = self.file.clone();
        let batches = (0..order.len().div_ceil(batch_size)).map(move |b| {
            let end = ((b + 1) * batch_size).min(order.len());
            file.gather(&order[b * batch_size..end])
        });
        Prefetch::new("convkit-batches", PREFETCH_BATCHES, batches)
    }

    /// Every image in memory, as [`ImageFolder::load`] would give it: for sets that fit.
    pub fn to_memory(&self) -> Result<Dataset> {
        let all: Vec<i64> = (0..self.len() as i64).collect();
        let batch = self.file.gather(&all)?;
        Dataset::new(batch.images, batch.labels, self.classes().to_vec())
    }

    /// The labels as a tensor, `i64` `(N)`.
    pub fn labels_tensor(&self) -> Tensor {
        Tensor::from_slice(self.labels())
    }
}

impl ImageDataset for DiskDataset {
    fn len(&self) -> usize {
        DiskDataset::len(self)
    }

    fn classes(&self) -> &[String] {
        DiskDataset::classes(self)
    }

    fn image_shape(&self) -> Vec<i64> {
        DiskDataset::image_shape(self)
    }

    fn batches_in(
        &self,
        order: Option<Vec<i64>>,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        match self.batches(order, batch_size) {
            Ok(batches) => Box::new(batches),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}

/// `<folder name>-<H>x<W>-<first 16 hex digits of the key>.ckimages`: readable in a listing,
/// and different for every key in practice (the header holds the whole key, checked on open).
fn cache_file_name(folder: &ImageFolder, options: &ImageOptions, key: &CacheKey) -> String {
    let name: String = folder
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "images".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let (height, width) = options.size;
    format!("{name}-{height}x{width}-{}.ckimages", &key.hex()[..16])
}

/// Removes what killed builds of `path` left (their temporary files), which only a holder
/// of the lock may do: no build of this cache is under way.
fn remove_partial_builds(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let prefix = format!(".{name}.");
    let suffix = format!(".partial-{name}");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&prefix) && file.ends_with(&suffix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batches::{shuffled_order, Batches};
    use image::{ImageFormat, Rgb, RgbImage};
    use std::os::unix::fs::MetadataExt;
    use tch::Kind;

    /// Two classes of images of varied sizes and colours (so that resizing matters), one
    /// PNG among them, and a truncated JPEG in the first class.
    fn folder(root: &Path) -> ImageFolder {
        for (c, class) in ["cats", "dogs"].iter().enumerate() {
            std::fs::create_dir_all(root.join(class)).unwrap();
            for i in 0..7u32 {
                let image = RgbImage::from_fn(20 + 3 * i, 15 + 5 * i, |x, y| {
                    Rgb([
                        (x * 9 + i) as u8,
                        (y * 7) as u8,
                        (c as u32 * 100 + i * 20) as u8,
                    ])
                });
                let format = if i == 3 {
                    ImageFormat::Png
                } else {
                    ImageFormat::Jpeg
                };
                let ext = if i == 3 { "png" } else { "jpg" };
                image
                    .save_with_format(root.join(class).join(format!("{i}.{ext}")), format)
                    .unwrap();
            }
        }
        let good = std::fs::read(root.join("cats").join("1.jpg")).unwrap();
        std::fs::write(root.join("cats").join("2b.jpg"), &good[..good.len() / 2]).unwrap();
        ImageFolder::scan(root).unwrap()
    }

    fn options() -> ImageOptions {
        ImageOptions {
            size: (12, 16),
            ..ImageOptions::default()
        }
    }

    fn same_batches(disk: &DiskDataset, memory: &Dataset, order: Vec<i64>, batch_size: usize) {
        let from_disk: Vec<Batch> = disk
            .batches(Some(order.clone()), batch_size)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let from_memory: Vec<Batch> = Batches::in_order(memory, Some(order), batch_size).collect();
        assert_eq!(from_disk.len(), from_memory.len());
        for (d, m) in from_disk.iter().zip(&from_memory) {
            assert_eq!(d.images.kind(), Kind::Uint8);
            assert_eq!(d.images.size(), m.images.size());
            assert!(d.images.equal(&m.images), "pixels differ");
            assert!(d.labels.equal(&m.labels), "labels differ");
        }
    }

    #[test]
    fn batches_match_the_in_memory_load_pixel_for_pixel() {
        let dir = tempfile::tempdir().unwrap();
        let scanned = folder(&dir.path().join("train"));
        let loaded = scanned.load(&options(), false).unwrap();
        let disk = DiskDataset::open_or_build(
            &scanned,
            &options(),
            &dir.path().join("cache"),
            false,
            false,
        )
        .unwrap();
        assert_eq!(disk.len(), 14);
        assert_eq!(disk.classes(), ["cats", "dogs"]);
        assert_eq!(disk.image_shape(), [3, 12, 16]);
        assert_eq!(disk.paths(), loaded.paths);
        assert_eq!(disk.skipped(), loaded.skipped);
        assert_eq!(
            disk.labels(),
            Vec::<i64>::try_from(loaded.dataset.labels()).unwrap()
        );
        assert!(disk
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("train-12x16-{}", &disk.key()[..16])));
        same_batches(&disk, &loaded.dataset, shuffled_order(14, 7), 4);
        same_batches(&disk, &loaded.dataset, vec![3, 3, 0, 13], 3);
        assert!(disk
            .to_memory()
            .unwrap()
            .images()
            .equal(loaded.dataset.images()));

        // Through the trait, in index order.
        let all: Vec<Batch> = ImageDataset::batches_in(&disk, None, 5)
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            all.iter().map(|b| b.images.size()[0]).collect::<Vec<_>>(),
            [5, 5, 4]
        );
        assert!(all[2]
            .images
            .equal(&loaded.dataset.images().narrow(0, 10, 4)));
    }

    #[test]
    fn a_cache_is_reused_and_a_changed_file_leads_to_another() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let scanned = folder(&dir.path().join("train"));
        let first = DiskDataset::open_or_build(&scanned, &options(), &cache, false, false).unwrap();
        assert!(first.built());
        let before = std::fs::metadata(first.path()).unwrap();
        let again = DiskDataset::open_or_build(&scanned, &options(), &cache, false, false).unwrap();
        assert!(!again.built(), "the second open decoded again");
        assert_eq!(again.path(), first.path());
        let after = std::fs::metadata(again.path()).unwrap();
        assert_eq!(
            (before.ino(), before.mtime(), before.mtime_nsec()),
            (after.ino(), after.mtime(), after.mtime_nsec()),
            "the cache was rewritten"
        );

        // Other pixels in one file: another cache; the old one is left alone.
        let changed = &scanned.files[4].0;
        let mut bytes = std::fs::read(changed).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x55; // inside the entropy-coded data, before the end marker
        std::fs::write(changed, &bytes).unwrap();
        let rebuilt =
            DiskDataset::open_or_build(&scanned, &options(), &cache, false, false).unwrap();
        assert!(rebuilt.built());
        assert_ne!(rebuilt.path(), first.path());
        assert!(first.path().exists());
        // Other settings: another cache too.
        let bigger = ImageOptions {
            size: (13, 16),
            ..options()
        };
        assert!(
            DiskDataset::open_or_build(&scanned, &bigger, &cache, false, false)
                .unwrap()
                .built()
        );
    }

    #[test]
    fn a_damaged_cache_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let scanned = folder(&dir.path().join("train"));
        let path = DiskDataset::open_or_build(&scanned, &options(), &cache, false, false)
            .unwrap()
            .path()
            .to_owned();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let reopened =
            DiskDataset::open_or_build(&scanned, &options(), &cache, false, false).unwrap();
        assert!(reopened.built());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn strict_refuses_a_broken_file_when_building_and_when_reusing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let scanned = folder(&dir.path().join("train"));
        let err = DiskDataset::open_or_build(&scanned, &options(), &cache, true, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2b.jpg"), "{err}");
        DiskDataset::open_or_build(&scanned, &options(), &cache, false, false).unwrap();
        let err = DiskDataset::open_or_build(&scanned, &options(), &cache, true, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2b.jpg"), "{err}");
    }

    #[test]
    fn an_index_out_of_range_is_an_error_item() {
        let dir = tempfile::tempdir().unwrap();
        let scanned = folder(&dir.path().join("train"));
        let disk =
            DiskDataset::open_or_build(&scanned, &options(), &dir.path().join("c"), false, false)
                .unwrap();
        let items: Vec<Result<Batch>> = disk
            .batches(Some(vec![0, 1, 2, 99, 4]), 2)
            .unwrap()
            .collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        let err = items[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("99") && err.contains("14 images"), "{err}");
    }

    #[test]
    fn two_threads_asking_at_once_build_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let scanned = folder(&dir.path().join("train"));
        let start = std::sync::Barrier::new(3);
        let built: Vec<bool> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        DiskDataset::open_or_build(&scanned, &options(), &cache, false, false)
                            .unwrap()
                            .built()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(built.iter().filter(|&&b| b).count(), 1, "{built:?}");
        let files: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 2, "the cache and its lock only: {files:?}");
    }

    /// The real cats-vs-dogs validation images (the first 100 of each class), where
    /// `$CONVKIT_DATA` has them.
    #[test]
    fn real_images_match_the_in_memory_load() {
        let Some(root) = crate::cache::non_empty_env("CONVKIT_DATA")
            .map(|d| PathBuf::from(d).join("cats_vs_dogs").join("validation"))
            .filter(|p| p.is_dir())
        else {
            eprintln!("skipped: no $CONVKIT_DATA/cats_vs_dogs/validation");
            return;
        };
        let mut scanned = ImageFolder::scan(&root).unwrap();
        let mut per_class = [0; 2];
        scanned.files.retain(|(_, label)| {
            per_class[*label as usize] += 1;
            per_class[*label as usize] <= 100
        });
        let options = ImageOptions::default();
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskDataset::open_or_build(&scanned, &options, dir.path(), true, false).unwrap();
        let loaded = scanned.load(&options, true).unwrap();
        assert_eq!(disk.len(), 200);
        assert_eq!(disk.image_shape(), [3, 180, 180]);
        same_batches(&disk, &loaded.dataset, shuffled_order(200, 1), 32);
    }
}
