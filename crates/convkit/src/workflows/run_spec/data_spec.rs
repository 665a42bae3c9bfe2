//! The data part of a run description: where the images are, how they are split, decoded
//! and stored.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::image_folder::ImageOptions;
use crate::workflows::Storage;

/// Where the images come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// The MNIST files.
    Mnist {
        /// A folder holding the four files (or a folder with `mnist/` in it); `None`
        /// searches `$CONVKIT_DATA/mnist`, `./data/mnist` and the cache, then downloads.
        dir: Option<PathBuf>,
        /// Only the first N training images (before the validation split): quick runs.
        #[serde(default)]
        limit: Option<usize>,
    },
    /// A folder of class sub-folders, or one with `train/`, `validation/` and `test/` in
    /// it.
    ImageFolder {
        /// The folder.
        dir: PathBuf,
    },
}

/// How images are decoded and resized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decoding {
    /// Side of the square images the model sees (chapter: 180).
    pub image_size: u32,
    /// Centre-crop to a square before resizing instead of stretching.
    #[serde(default)]
    pub crop_to_aspect_ratio: bool,
    /// Low-pass filter while shrinking.
    #[serde(default)]
    pub antialias: bool,
    /// An unreadable image is an error rather than a skipped file.
    #[serde(default)]
    pub strict: bool,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding {
            image_size: 180,
            crop_to_aspect_ratio: false,
            antialias: false,
            strict: false,
        }
    }
}

impl Decoding {
    /// The image loader's options.
    pub fn image_options(&self) -> ImageOptions {
        ImageOptions {
            size: (self.image_size, self.image_size),
            crop_to_aspect_ratio: self.crop_to_aspect_ratio,
            antialias: self.antialias,
        }
    }
}

/// Where decoded images are kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageSpec {
    /// In memory, in the on-disk cache, or `auto` (on disk when they would not fit
    /// comfortably in memory).
    #[serde(default)]
    pub storage: Storage,
    /// Folder of the on-disk caches (default: `decoded/` in the user's cache folder).
    #[serde(default)]
    pub decoded_cache: Option<PathBuf>,
}

/// The data of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Where the images come from.
    pub source: DataSource,
    /// Fraction of the training images held out for validation when the data has no
    /// validation split: MNIST's from the end (Keras' `validation_split`), an image
    /// folder's by a seeded shuffle. 0 disables validation (MNIST only).
    pub validation_split: f64,
    /// How images are decoded (image folders; MNIST's are 28x28 already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding: Option<Decoding>,
    /// Where decoded images are kept (image folders).
    #[serde(default)]
    pub storage: StorageSpec,
}

impl DataSpec {
    /// MNIST from `dir` (searched for when `None`), 10% held out for validation.
    pub fn mnist(dir: Option<PathBuf>) -> Self {
        DataSpec {
            source: DataSource::Mnist { dir, limit: None },
            validation_split: 0.1,
            decoding: None,
            storage: StorageSpec::default(),
        }
    }

    /// The image folder `dir`, decoded at 180x180, 20% held out when it has no
    /// `validation/` folder.
    pub fn image_folder(dir: PathBuf) -> Self {
        DataSpec {
            source: DataSource::ImageFolder { dir },
            validation_split: 0.2,
            decoding: Some(Decoding::default()),
            storage: StorageSpec::default(),
        }
    }

    /// The decoding of an image folder (the defaults for MNIST, which has none).
    pub fn decoding(&self) -> Decoding {
        self.decoding.clone().unwrap_or_default()
    }
}
