//! The key of a decoded-image cache: what the cached bytes were made from, so that a cache
//! is used only for exactly the images and settings it holds.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::image_folder::{ImageFolder, ImageOptions};
use crate::error::{Error, Result};

/// The version of the decoded-cache format and of the decoding it holds: raise it whenever
/// the file layout or the decoded pixels would change (a new resizer, a new colour
/// conversion), so that caches of the old decoding are no longer found.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// Channels of a decoded image (RGB).
pub const CHANNELS: usize = 3;

/// A sha256 over the decoding settings (size, decoding mode, channels, format version,
/// convkit's version) and every image file's path relative to the folder, label and
/// content, in the folder's order.
///
/// The content is read, not trusted from sizes or times: a file rewritten in place with the
/// same size and modification time still changes the key. Paths are relative, so a folder
/// that is moved or copied keeps its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// Reads and hashes every file of `folder` (on all cores) with `options`.
    pub fn compute(folder: &ImageFolder, options: &ImageOptions) -> Result<CacheKey> {
        let contents: Vec<[u8; 32]> = folder
            .files
            .par_iter()
            .map(|(path, _)| file_digest(path))
            .collect::<Result<_>>()?;
        let mut key = Sha256::new();
        key.update(b"convkit decoded images\0");
        key.update(CACHE_FORMAT_VERSION.to_le_bytes());
        hash_bytes(&mut key, env!("CARGO_PKG_VERSION").as_bytes());
        key.update(options.size.0.to_le_bytes());
        key.update(options.size.1.to_le_bytes());
        key.update([
            options.crop_to_aspect_ratio as u8,
            options.antialias as u8,
            CHANNELS as u8,
        ]);
        key.update((folder.classes.len() as u64).to_le_bytes());
        for class in &folder.classes {
            hash_bytes(&mut key, class.as_bytes());
        }
        key.update((folder.files.len() as u64).to_le_bytes());
        for ((path, label), content) in folder.files.iter().zip(&contents) {
            let relative = path.strip_prefix(&folder.root).unwrap_or(path);
            hash_bytes(&mut key, relative.as_os_str().as_bytes());
            key.update(label.to_le_bytes());
            key.update(content);
        }
        Ok(CacheKey(key.finalize().into()))
    }

    /// The key in lowercase hex (64 digits).
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Length-prefixed, so that no two sequences of fields hash alike.
fn hash_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// sha256 of the file's length and bytes, read in blocks.
fn file_digest(path: &Path) -> Result<[u8; 32]> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        length += n as u64;
        hasher.update(&buffer[..n]);
    }
    hasher.update(length.to_le_bytes());
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb, RgbImage};
    use std::os::unix::ffi::OsStrExt;

    fn write_bmp(path: &Path, color: [u8; 3]) {
        RgbImage::from_pixel(6, 4, Rgb(color))
            .save_with_format(path, ImageFormat::Bmp)
            .unwrap();
    }

    fn folder(root: &Path) -> ImageFolder {
        for class in ["cats", "dogs"] {
            std::fs::create_dir_all(root.join(class)).unwrap();
            for i in 0..3 {
                write_bmp(&root.join(class).join(format!("{i}.bmp")), [i * 40, 9, 9]);
            }
        }
        ImageFolder::scan(root).unwrap()
    }

    /// Sets `path`'s access and modification times back to `times` (from `stat`).
    fn restore_times(path: &Path, metadata: &std::fs::Metadata) {
        use std::os::unix::fs::MetadataExt;
        let times = [
            libc::timespec {
                tv_sec: metadata.atime(),
                tv_nsec: metadata.atime_nsec(),
            },
            libc::timespec {
                tv_sec: metadata.mtime(),
                tv_nsec: metadata.mtime_nsec(),
            },
        ];
        let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string and two timespecs.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, name.as_ptr(), times.as_ptr(), 0) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    }

    #[test]
    fn the_key_follows_content_and_settings_only() {
        let dir = tempfile::tempdir().unwrap();
        let scanned = folder(dir.path());
        let options = ImageOptions::default();
        let key = CacheKey::compute(&scanned, &options).unwrap();
        assert_eq!(key, CacheKey::compute(&scanned, &options).unwrap());
        assert_eq!(key.hex().len(), 64);

        // The same bytes in another folder: the same key.
        let copy = tempfile::tempdir().unwrap();
        assert_eq!(
            key,
            CacheKey::compute(&folder(copy.path()), &options).unwrap()
        );

        // One file rewritten with other pixels, the same size and the same times.
        let changed = dir.path().join("dogs").join("1.bmp");
        let before = std::fs::metadata(&changed).unwrap();
        write_bmp(&changed, [1, 2, 3]);
        restore_times(&changed, &before);
        let after = std::fs::metadata(&changed).unwrap();
        assert_eq!(
            (before.len(), before.modified().unwrap()),
            (after.len(), after.modified().unwrap())
        );
        let rewritten = CacheKey::compute(&scanned, &options).unwrap();
        assert_ne!(key, rewritten);

        // Settings.
        for other in [
            ImageOptions {
                size: (180, 181),
                ..options.clone()
            },
            ImageOptions {
                crop_to_aspect_ratio: true,
                ..options.clone()
            },
            ImageOptions {
                antialias: true,
                ..options.clone()
            },
        ] {
            assert_ne!(rewritten, CacheKey::compute(&scanned, &other).unwrap());
        }

        // A file added, or one fewer.
        write_bmp(&dir.path().join("cats").join("9.bmp"), [0, 0, 0]);
        let added = ImageFolder::scan(dir.path()).unwrap();
        assert_ne!(rewritten, CacheKey::compute(&added, &options).unwrap());
        let mut fewer = scanned.clone();
        fewer.files.pop();
        assert_ne!(rewritten, CacheKey::compute(&fewer, &options).unwrap());
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let scanned = folder(dir.path());
        std::fs::remove_file(dir.path().join("cats").join("2.bmp")).unwrap();
        let err = CacheKey::compute(&scanned, &ImageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("2.bmp"), "{err}");
    }
}
