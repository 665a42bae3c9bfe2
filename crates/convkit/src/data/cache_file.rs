//! The file of a decoded-image cache: every image of one split decoded and resized once,
//! stored raw so that an epoch reads bytes instead of decoding JPEGs, and memory-mapped so
//! that a split larger than memory is read a batch at a time.
//!
//! # Layout
//!
//! ```text
//! 0      8 bytes   magic "CKIMAGES"
//! 8      u32 LE    format version (CACHE_FORMAT_VERSION)
//! 12     u32 LE    0 (reserved)
//! 16     u64 LE    header offset = 4096 + N * C * H * W
//! 24     u64 LE    header length in bytes
//! 32     zeros up to 4096
//! 4096   N images of C x H x W bytes (u8, channels first), image i at 4096 + i * C * H * W
//! ...    the header: JSON (CacheHeader: key, N, C, H, W, classes, labels, skipped files)
//! ```
//!
//! The header comes last because labels and skipped files are known only once every image
//! has been decoded, and the pixels are written as they are decoded, never all held at once.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use memmap2::{Mmap, UncheckedAdvice};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::batches::Batch;
use super::cache_key::{CacheKey, CACHE_FORMAT_VERSION, CHANNELS};
use super::image_folder::{load_image, ImageFolder, ImageOptions};
use crate::error::{Error, Result};
use crate::progress_bar::count_bar;

/// The first bytes of a cache file.
pub const MAGIC: &[u8; 8] = b"CKIMAGES";

/// Where the pixels start: one page, so that every image's range can be handed back to the
/// kernel page by page.
pub const DATA_OFFSET: u64 = 4096;

/// Decoded images held in memory at once while building: bounded, so that building a cache
/// of any size needs about this much memory beyond the decoder's own.
const BUILD_CHUNK_BYTES: usize = 32 << 20;

/// What a cache file says about itself, stored as JSON after the pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheHeader {
    /// [`CacheKey::hex`] of the files and settings the cache was built from.
    pub key: String,
    /// Number of images stored (the files decoded; skipped ones are not stored).
    pub images: usize,
    /// Channels of each image (3).
    pub channels: usize,
    /// Height of each image.
    pub height: usize,
    /// Width of each image.
    pub width: usize,
    /// Class names, indexed by label.
    pub classes: Vec<String>,
    /// The label of each stored image.
    pub labels: Vec<i64>,
    /// Number of files in the folder scanned, stored or skipped.
    pub source_files: usize,
    /// Files that could not be decoded (and are not stored): their index among the
    /// folder's files, and why.
    pub skipped: Vec<SkippedFile>,
}

/// A file left out of a cache because it could not be decoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// Index among [`ImageFolder::files`].
    pub index: usize,
    /// Why it could not be decoded.
    pub reason: String,
}

impl CacheHeader {
    /// Bytes of one image.
    pub fn image_bytes(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// A cache file, memory-mapped for reading.
#[derive(Debug)]
pub struct CacheFile {
    map: Mmap,
    header: CacheHeader,
}

impl CacheFile {
    /// Maps the cache at `path` and reads its header, checking the magic, the version and
    /// that the file holds as many bytes as its header says.
    pub fn open(path: &Path) -> Result<CacheFile> {
        let invalid = |message: String| Error::invalid_data(path, message);
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: a cache file is never written once it has its name: it is written under
        // a temporary name and renamed into place, and a newer one replaces it by another
        // rename, which leaves this mapping on the old file.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        if map.len() < DATA_OFFSET as usize || &map[..8] != MAGIC {
            return Err(invalid("not a convkit decoded-image cache".into()));
        }
        let word = |at: usize| u64::from_le_bytes(map[at..at + 8].try_into().expect("8 bytes"));
        let version = u32::from_le_bytes(map[8..12].try_into().expect("4 bytes"));
        if version != CACHE_FORMAT_VERSION {
            return Err(invalid(format!(
                "cache format version {version}, this convkit reads {CACHE_FORMAT_VERSION}"
            )));
        }
        let (offset, length) = (word(16), word(24));
        if offset.checked_add(length) != Some(map.len() as u64) || offset < DATA_OFFSET {
            return Err(invalid(format!(
                "truncated or damaged: header at {offset} of {length} bytes in a file of {}",
                map.len()
            )));
        }
        let header: CacheHeader = serde_json::from_slice(&map[offset as usize..])
            .map_err(|e| invalid(format!("damaged header: {e}")))?;
        let expected = (header.images as u64)
            .checked_mul(header.image_bytes() as u64)
            .and_then(|pixels| pixels.checked_add(DATA_OFFSET));
        if expected != Some(offset)
            || header.labels.len() != header.images
            || header.channels != CHANNELS
        {
            return Err(invalid(format!(
                "header does not match the file: {} images of {}x{}x{} and {} labels, pixels ending at {offset}",
                header.images,
                header.channels,
                header.height,
                header.width,
                header.labels.len()
            )));
        }
        Ok(CacheFile { map, header })
    }

    /// The header.
    pub fn header(&self) -> &CacheHeader {
        &self.header
    }

    /// The images and labels at `indices`, copied out of the mapping into fresh tensors:
    /// images `u8` `(B, C, H, W)`, labels `i64` `(B)`.
    ///
    /// The pages read are handed back to the kernel as soon as they are copied, so they do
    /// not stay in this process's resident memory: however large the file, reading it costs
    /// the batch and nothing more (the kernel keeps what it can in its page cache, shared and
    /// reclaimable, for the next epoch).
    pub fn gather(&self, indices: &[i64]) -> Result<Batch> {
        let header = &self.header;
        let bytes = header.image_bytes();
        let mut pixels = vec![0u8; indices.len() * bytes];
        let mut labels = Vec::with_capacity(indices.len());
        for (&index, target) in indices.iter().zip(pixels.chunks_exact_mut(bytes)) {
            if index < 0 || index as usize >= header.images {
                return Err(Error::InvalidConfig(format!(
                    "image index {index} out of range for a dataset of {} images",
                    header.images
                )));
            }
            let start = DATA_OFFSET as usize + index as usize * bytes;
            target.copy_from_slice(&self.map[start..start + bytes]);
            labels.push(header.labels[index as usize]);
        }
        // The whole mapping, not the images' ranges: a fault maps the pages around the one
        // touched too (the kernel's fault-around, 64 KB by default), pages of other images
        // that would otherwise pile up over an epoch. Unmapped stretches cost nothing here.
        //
        // SAFETY: the mapping is a read-only shared mapping of a file, so dropping its pages
        // loses nothing: a later read faults the same bytes back in from the file (or the
        // page cache). No reference into it outlives the copies above.
        unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, 0, self.map.len())
        }
        .map_err(|e| Error::io("(madvise on the decoded-image cache)", e))?;
        let shape = [
            indices.len() as i64,
            header.channels as i64,
            header.height as i64,
            header.width as i64,
        ];
        Ok(Batch {
            images: Tensor::from_slice(&pixels).view(shape),
            labels: Tensor::from_slice(&labels),
        })
    }
}

/// Decodes every image of `folder` with `options` (on all cores, a bounded chunk at a time)
/// into a new cache file at `path`, written under a temporary name and renamed into place.
/// A file that cannot be decoded is an error with `strict`, else recorded in the header's
/// `skipped` and left out.
pub fn write_cache_file(
    path: &Path,
    folder: &ImageFolder,
    options: &ImageOptions,
    key: &CacheKey,
    strict: bool,
    progress: bool,
) -> Result<()> {
    crate::atomic_file::write_atomic_with(path, |tmp| {
        let file = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let header = write_pixels_and_header(&file, tmp, folder, options, key, strict, progress)?;
        file.sync_all().map_err(|e| Error::io(tmp, e))?;
        if header.images == 0 {
            return Err(Error::invalid_data(
                &folder.root,
                "no image could be decoded",
            ));
        }
        Ok(())
    })
}

fn write_pixels_and_header(
    file: &File,
    tmp: &Path,
    folder: &ImageFolder,
    options: &ImageOptions,
    key: &CacheKey,
    strict: bool,
    progress: bool,
) -> Result<CacheHeader> {
    let io = |e| Error::io(tmp, e);
    let (height, width) = (options.size.0 as usize, options.size.1 as usize);
    let mut header = CacheHeader {
        key: key.hex(),
        images: 0,
        channels: CHANNELS,
        height,
        width,
        classes: folder.classes.clone(),
        labels: Vec::new(),
        source_files: folder.files.len(),
        skipped: Vec::new(),
    };
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&[0; DATA_OFFSET as usize]).map_err(io)?;
    let chunk = (BUILD_CHUNK_BYTES / header.image_bytes().max(1)).max(1);
    let bar = count_bar(folder.files.len() as u64, "decoding", progress);
    for (c, files) in folder.files.chunks(chunk).enumerate() {
        let decoded: Vec<Result<Vec<u8>>> = files
            .par_iter()
            .map(|(path, _)| load_image(path, options).map(|hwc| hwc_to_chw(&hwc, height, width)))
            .collect();
        for (i, result) in decoded.into_iter().enumerate() {
            let index = c * chunk + i;
            match result {
                Ok(chw) => {
                    out.write_all(&chw).map_err(io)?;
                    header.labels.push(folder.files[index].1);
                    header.images += 1;
                }
                Err(e) if strict => return Err(e),
                Err(e) => header.skipped.push(SkippedFile {
                    index,
                    reason: reason_of(e),
                }),
            }
        }
        bar.inc(files.len() as u64);
    }
    bar.finish_and_clear();
    let json = serde_json::to_vec(&header).map_err(|e| Error::Json {
        path: tmp.to_owned(),
        reason: e,
    })?;
    out.write_all(&json).map_err(io)?;
    let mut preamble = Vec::with_capacity(32);
    preamble.extend_from_slice(MAGIC);
    preamble.extend_from_slice(&CACHE_FORMAT_VERSION.to_le_bytes());
    preamble.extend_from_slice(&0u32.to_le_bytes());
    let offset = DATA_OFFSET + (header.images * header.image_bytes()) as u64;
    preamble.extend_from_slice(&offset.to_le_bytes());
    preamble.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.seek(SeekFrom::Start(0)).map_err(io)?;
    out.write_all(&preamble).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(header)
}

/// An error's message without the file name, which the cache keeps beside it.
fn reason_of(error: Error) -> String {
    match error {
        Error::InvalidData { message, .. } => message,
        Error::Io { reason, .. } => reason.to_string(),
        other => other.to_string(),
    }
}

/// Row-major RGB `(H, W, 3)` to channels first `(3, H, W)`, as tensors hold images.
fn hwc_to_chw(hwc: &[u8], height: usize, width: usize) -> Vec<u8> {
    let plane = height * width;
    let mut chw = vec![0u8; plane * CHANNELS];
    let (red, rest) = chw.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    for (p, pixel) in hwc.chunks_exact(CHANNELS).enumerate() {
        red[p] = pixel[0];
        green[p] = pixel[1];
        blue[p] = pixel[2];
    }
    chw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_move_first() {
        // 1 x 2 pixels: (1, 2, 3) and (4, 5, 6).
        assert_eq!(hwc_to_chw(&[1, 2, 3, 4, 5, 6], 1, 2), [1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn a_damaged_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ckimages");
        std::fs::write(&path, b"hello").unwrap();
        let err = CacheFile::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("x.ckimages") && err.contains("not a convkit"),
            "{err}"
        );
        let mut bytes = vec![0u8; 5000];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8..12].copy_from_slice(&CACHE_FORMAT_VERSION.to_le_bytes());
        bytes[16..24].copy_from_slice(&4096u64.to_le_bytes());
        bytes[24..32].copy_from_slice(&100u64.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let err = CacheFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
