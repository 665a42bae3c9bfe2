//! Labelled images from a folder of class sub-folders (Keras' `image_dataset_from_directory`):
//! decoded to RGB, resized, and held in memory as one byte tensor, so that later epochs never
//! decode again.

use std::path::{Path, PathBuf};

use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{ImageReader, Limits};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::dataset::Dataset;
use crate::error::{Error, Result};

/// File extensions read as images (any case).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "webp"];

/// Images larger than this on either side are refused rather than decoded.
const MAX_SIDE: u32 = 16_384;

/// How an image is decoded to a model's size, beyond the size itself: recorded with a
/// trained model (`model.json`) so that evaluation and prediction decode as training did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDecoding {
    /// See [`ImageOptions::crop_to_aspect_ratio`].
    #[serde(default)]
    pub crop_to_aspect_ratio: bool,
    /// See [`ImageOptions::antialias`].
    #[serde(default)]
    pub antialias: bool,
}

/// How images are turned into equal-size tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageOptions {
    /// Output `(height, width)` (chapter: 180 x 180).
    pub size: (u32, u32),
    /// Centre-crop each image to the output's aspect ratio before resizing, instead of
    /// stretching it (Keras' `crop_to_aspect_ratio`).
    pub crop_to_aspect_ratio: bool,
    /// Low-pass filter while shrinking (as PIL does) instead of plain bilinear interpolation
    /// (as Keras and TensorFlow do by default).
    pub antialias: bool,
}

impl ImageOptions {
    /// Images of `size` `(height, width)` decoded as `decoding` says.
    pub fn new(size: (u32, u32), decoding: ImageDecoding) -> Self {
        ImageOptions {
            size,
            crop_to_aspect_ratio: decoding.crop_to_aspect_ratio,
            antialias: decoding.antialias,
        }
    }

    /// The decoding settings, without the size.
    pub fn decoding(&self) -> ImageDecoding {
        ImageDecoding {
            crop_to_aspect_ratio: self.crop_to_aspect_ratio,
            antialias: self.antialias,
        }
    }
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            size: (180, 180),
            crop_to_aspect_ratio: false,
            antialias: false,
        }
    }
}

/// Decodes the image at `path` (JPEG, PNG, BMP, GIF or WebP, found by content; grayscale and
/// alpha converted to RGB) and resizes it: `(height * width * 3)` bytes, row-major RGB.
pub fn load_image(path: &Path, options: &ImageOptions) -> Result<Vec<u8>> {
    let (rgb, width, height) = decode_rgb(path)?;
    resize_rgb(rgb, width, height, options)
        .map_err(|e| Error::invalid_data(path, format!("cannot resize: {e}")))
}

/// Decodes the image at `path` as ImageNet classifiers are evaluated: the central square of
/// `fraction` of the shorter side, resized to `side x side` with a low-pass filter
/// (torchvision's resize to 256 then centre crop 224 is `fraction = 224 / 256`). Returns
/// `(side * side * 3)` bytes, row-major RGB.
pub fn load_image_center_crop(path: &Path, side: u32, fraction: f64) -> Result<Vec<u8>> {
    let invalid = |message: String| Error::invalid_data(path, message);
    let (rgb, width, height) = decode_rgb(path)?;
    let source = Image::from_vec_u8(width, height, rgb, PixelType::U8x3)
        .map_err(|e| invalid(e.to_string()))?;
    let crop = width.min(height) as f64 * fraction.clamp(0.01, 1.0);
    let resize = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(
            (width as f64 - crop) / 2.0,
            (height as f64 - crop) / 2.0,
            crop,
            crop,
        );
    let mut target = Image::new(side, side, PixelType::U8x3);
    Resizer::new()
        .resize(&source, &mut target, &resize)
        .map_err(|e| invalid(format!("cannot resize: {e}")))?;
    Ok(target.into_vec())
}

/// Decodes the image at `path` to RGB: bytes, width, height.
fn decode_rgb(path: &Path) -> Result<(Vec<u8>, u32, u32)> {
    let invalid = |message: String| Error::invalid_data(path, message);
    // The format comes from the content alone: a file named .png holding text is "not an
    // image", and a JPEG named .png still decodes.
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let Ok(format) = image::guess_format(&bytes) else {
        return Err(invalid(
            "not an image file (no known image format at its start)".into(),
        ));
    };
    let too_large = || {
        invalid(format!(
            "image too large to decode (more than {MAX_SIDE} pixels on a side, or over 1 GiB)"
        ))
    };
    if let Err(problem) = super::image_integrity::check_complete(&bytes, format) {
        // A huge image with nothing after its header is called huge, not truncated. (A
        // whole huge image is refused by the decoder's limits below.)
        let huge = super::image_integrity::declared_size(&bytes, format)
            .is_some_and(|(width, height)| width > MAX_SIDE || height > MAX_SIDE);
        return Err(if huge { too_large() } else { invalid(problem) });
    }
    let mut reader = ImageReader::with_format(std::io::Cursor::new(&bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(),
        other => invalid(format!("cannot decode image: {other}")),
    })?;
    let rgb = decoded.into_rgb8();
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err(invalid("image has no pixels".into()));
    }
    Ok((rgb.into_raw(), width, height))
}

/// Resizes a row-major RGB image to `options.size`.
pub fn resize_rgb(
    rgb: Vec<u8>,
    width: u32,
    height: u32,
    options: &ImageOptions,
) -> std::result::Result<Vec<u8>, String> {
    let (out_h, out_w) = options.size;
    let source =
        Image::from_vec_u8(width, height, rgb, PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut target = Image::new(out_w, out_h, PixelType::U8x3);
    let algorithm = if options.antialias {
        ResizeAlg::Convolution(FilterType::Bilinear)
    } else {
        ResizeAlg::Interpolation(FilterType::Bilinear)
    };
    let mut resize = ResizeOptions::new().resize_alg(algorithm);
    if options.crop_to_aspect_ratio {
        resize = resize.fit_into_destination(None);
    }
    Resizer::new()
        .resize(&source, &mut target, &resize)
        .map_err(|e| e.to_string())?;
    Ok(target.into_vec())
}

/// The files of a folder of class sub-folders, before decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFolder {
    /// The folder.
    pub root: PathBuf,
    /// Class names: the sub-folder names, sorted.
    pub classes: Vec<String>,
    /// Every image file with its label (index into `classes`), sorted by class then name.
    pub files: Vec<(PathBuf, i64)>,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

pub(crate) fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

impl ImageFolder {
    /// Lists `root`'s class sub-folders (sorted by name, so labels never depend on the file
    /// system's order) and their image files. Fails, naming the folder, when `root` is not a
    /// folder, has fewer than two classes, or a class has no image.
    pub fn scan(root: &Path) -> Result<ImageFolder> {
        if !root.is_dir() {
            return Err(Error::invalid_data(
                root,
                "not a folder (expected one sub-folder per class)",
            ));
        }
        let class_dirs: Vec<PathBuf> = sorted_entries(root)?
            .into_iter()
            .filter(|p| {
                p.is_dir()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        if class_dirs.len() < 2 {
            let mnist = if super::mnist::has_mnist_files(root) {
                "; it holds IDX files named as MNIST's (MNIST or Fashion-MNIST), which `convkit mnist --data` reads"
            } else {
                ""
            };
            return Err(Error::invalid_data(
                root,
                format!(
                    "found {} class sub-folder(s){}; a classifier needs at least two (one sub-folder of images per class){mnist}",
                    class_dirs.len(),
                    class_dirs.first().map(|d| format!(" ({})", d.display())).unwrap_or_default()
                ),
            ));
        }
        let mut classes = Vec::new();
        let mut files = Vec::new();
        for (label, dir) in class_dirs.iter().enumerate() {
            let images: Vec<PathBuf> = sorted_entries(dir)?
                .into_iter()
                .filter(|p| p.is_file() && is_image_name(p))
                .collect();
            if images.is_empty() {
                return Err(Error::invalid_data(
                    dir,
                    format!(
                        "class folder holds no image ({})",
                        IMAGE_EXTENSIONS.join(", ")
                    ),
                ));
            }
            classes.push(
                dir.file_name()
                    .expect("a sub-folder has a name")
                    .to_string_lossy()
                    .into_owned(),
            );
            files.extend(images.into_iter().map(|p| (p, label as i64)));
        }
        Ok(ImageFolder {
            root: root.to_owned(),
            classes,
            files,
        })
    }

    /// Decodes and resizes every image on all cores. A file that cannot be read as an image
    /// is skipped and reported in [`LoadedImages::skipped`]; with `strict`, it is an error
    /// instead. Labels of the images kept are unchanged: a skipped file never shifts them.
    pub fn load(&self, options: &ImageOptions, strict: bool) -> Result<LoadedImages> {
        let results: Vec<(usize, Result<Vec<u8>>)> = self
            .files
            .par_iter()
            .enumerate()
            .map(|(i, (path, _))| (i, load_image(path, options)))
            .collect();
        let (h, w) = (options.size.0 as i64, options.size.1 as i64);
        let mut pixels = Vec::with_capacity(self.files.len() * (h * w * 3) as usize);
        let mut labels = Vec::with_capacity(self.files.len());
        let mut skipped = Vec::new();
        let mut paths = Vec::with_capacity(self.files.len());
        for (i, result) in results {
            match result {
                Ok(bytes) => {
                    pixels.extend_from_slice(&bytes);
                    labels.push(self.files[i].1);
                    paths.push(self.files[i].0.clone());
                }
                Err(e) if strict => return Err(e),
                Err(e) => skipped.push((self.files[i].0.clone(), e.to_string())),
            }
        }
        if labels.is_empty() {
            return Err(Error::invalid_data(&self.root, "no image could be decoded"));
        }
        let n = labels.len() as i64;
        // HWC bytes per image -> (N, 3, H, W).
        let images = Tensor::from_slice(&pixels)
            .view([n, h, w, 3])
            .permute([0, 3, 1, 2])
            .contiguous();
        let dataset = Dataset::new(images, Tensor::from_slice(&labels), self.classes.clone())?;
        Ok(LoadedImages {
            dataset,
            paths,
            skipped,
        })
    }
}

/// The result of [`ImageFolder::load`].
#[derive(Debug)]
pub struct LoadedImages {
    /// The decoded images, in file order.
    pub dataset: Dataset,
    /// The file of each image of `dataset`, in the same order.
    pub paths: Vec<PathBuf>,
    /// Files that were skipped, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The splits of a data folder laid out as `train/`, `validation/`, `test/` (each with class
/// sub-folders), or a single folder of class sub-folders (then only `train` is set).
#[derive(Clone, Debug, PartialEq)]
pub struct SplitFolders {
    /// Training images.
    pub train: PathBuf,
    /// Validation images, if present.
    pub validation: Option<PathBuf>,
    /// Test images, if present.
    pub test: Option<PathBuf>,
}

impl SplitFolders {
    /// Recognises `root/train` (+ `validation` or `val`, + `test`); otherwise `root` itself
    /// is the training folder.
    pub fn detect(root: &Path) -> SplitFolders {
        let dir = |names: &[&str]| names.iter().map(|n| root.join(n)).find(|p| p.is_dir());
        match dir(&["train"]) {
            Some(train) => SplitFolders {
                train,
                validation: dir(&["validation", "val"]),
                test: dir(&["test"]),
            },
            None => SplitFolders {
                train: root.to_owned(),
                validation: None,
                test: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb, RgbImage};
    use tch::Kind;

    fn write_image(path: &Path, width: u32, height: u32, color: [u8; 3], format: ImageFormat) {
        RgbImage::from_pixel(width, height, Rgb(color))
            .save_with_format(path, format)
            .unwrap();
    }

    /// A folder with classes `b_dogs` and `a_cats` (created in that order, so that sorting,
    /// not creation order, must decide the labels).
    fn two_classes(root: &Path) {
        for (class, color) in [("b_dogs", [200, 10, 10]), ("a_cats", [10, 200, 10])] {
            std::fs::create_dir_all(root.join(class)).unwrap();
            write_image(
                &root.join(class).join("x1.jpg"),
                40,
                30,
                color,
                ImageFormat::Jpeg,
            );
            write_image(
                &root.join(class).join("x2.png"),
                20,
                50,
                color,
                ImageFormat::Png,
            );
        }
    }

    #[test]
    fn labels_follow_sorted_folder_names_and_images_are_resized() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        std::fs::write(dir.path().join("a_cats").join("notes.txt"), "not an image").unwrap();
        let folder = ImageFolder::scan(dir.path()).unwrap();
        assert_eq!(folder.classes, ["a_cats", "b_dogs"]);
        assert_eq!(folder.files.len(), 4, "the .txt file is not an image name");
        let options = ImageOptions {
            size: (8, 12),
            ..ImageOptions::default()
        };
        let loaded = folder.load(&options, true).unwrap();
        let data = &loaded.dataset;
        assert_eq!(data.images().size(), [4, 3, 8, 12]);
        assert_eq!(data.images().kind(), Kind::Uint8);
        assert_eq!(Vec::<i64>::try_from(data.labels()).unwrap(), [0, 0, 1, 1]);
        // Cats are green, dogs red: the colour follows the label.
        let green = data.images().int64_value(&[0, 1, 4, 6]);
        let red = data.images().int64_value(&[3, 0, 4, 6]);
        assert!(green > 150 && red > 150, "green {green}, red {red}");
    }

    #[test]
    fn a_broken_image_is_skipped_or_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let broken = dir.path().join("a_cats").join("broken.jpg");
        let bytes = std::fs::read(dir.path().join("a_cats").join("x1.jpg")).unwrap();
        std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
        let fake = dir.path().join("b_dogs").join("fake.png");
        std::fs::write(&fake, "this is text").unwrap();
        let folder = ImageFolder::scan(dir.path()).unwrap();
        let options = ImageOptions {
            size: (8, 8),
            ..ImageOptions::default()
        };
        let loaded = folder.load(&options, false).unwrap();
        assert_eq!(loaded.dataset.len(), 4);
        assert_eq!(loaded.skipped.len(), 2);
        assert!(loaded
            .skipped
            .iter()
            .any(|(p, why)| p == &broken && why.contains("broken.jpg")));
        assert!(
            loaded
                .skipped
                .iter()
                .any(|(p, why)| p == &fake && why.contains("not an image")),
            "{:?}",
            loaded.skipped
        );
        // The labels of the images kept are unchanged.
        assert_eq!(
            Vec::<i64>::try_from(loaded.dataset.labels()).unwrap(),
            [0, 0, 1, 1]
        );
        let err = folder.load(&options, true).unwrap_err().to_string();
        assert!(err.contains("broken.jpg"), "{err}");
    }

    #[test]
    fn folder_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = ImageFolder::scan(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing") && err.contains("not a folder"),
            "{err}"
        );
        std::fs::create_dir(dir.path().join("only")).unwrap();
        write_image(
            &dir.path().join("only").join("a.png"),
            4,
            4,
            [0, 0, 0],
            ImageFormat::Png,
        );
        let err = ImageFolder::scan(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("found 1 class") && err.contains("at least two") && !err.contains("MNIST"),
            "{err}"
        );
        // A folder of MNIST's files, given where images are expected: the error says what reads it.
        let mnist = tempfile::tempdir().unwrap();
        for name in [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte",
            "t10k-labels.idx1-ubyte",
        ] {
            std::fs::write(mnist.path().join(name), b"").unwrap();
        }
        let err = ImageFolder::scan(mnist.path()).unwrap_err().to_string();
        assert!(
            err.contains("found 0 class") && err.contains("`convkit mnist --data` reads"),
            "{err}"
        );
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let err = ImageFolder::scan(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains("holds no image"),
            "{err}"
        );
    }

    /// A PNG whose header claims 100,000 x 100,000 pixels: refused before any allocation.
    #[test]
    fn a_huge_image_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        let mut crc = flate2::Crc::new();
        crc.update(&ihdr);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc.sum().to_be_bytes());
        std::fs::write(&path, png).unwrap();
        let err = load_image(&path, &ImageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("huge.png") && err.contains("too large"),
            "{err}"
        );
    }

    #[test]
    fn grayscale_and_alpha_become_rgb_and_crop_keeps_the_aspect() {
        let dir = tempfile::tempdir().unwrap();
        let gray = dir.path().join("gray.png");
        image::GrayImage::from_pixel(10, 10, image::Luma([77]))
            .save(&gray)
            .unwrap();
        let pixels = load_image(
            &gray,
            &ImageOptions {
                size: (4, 4),
                ..ImageOptions::default()
            },
        )
        .unwrap();
        assert_eq!(pixels.len(), 48);
        assert!(pixels.iter().all(|&v| v == 77));
        let rgba = dir.path().join("rgba.png");
        image::RgbaImage::from_pixel(6, 6, image::Rgba([1, 2, 3, 255]))
            .save(&rgba)
            .unwrap();
        let pixels = load_image(
            &rgba,
            &ImageOptions {
                size: (2, 2),
                ..ImageOptions::default()
            },
        )
        .unwrap();
        assert_eq!(&pixels[..3], &[1, 2, 3]);
        // A 20x10 image, left half black, right half white: a centre crop to a square keeps
        // the middle, half black and half white; stretching keeps it too. Both give 2x2.
        let wide = dir.path().join("wide.png");
        let img = RgbImage::from_fn(20, 10, |x, _| {
            if x < 10 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        img.save(&wide).unwrap();
        let options = ImageOptions {
            size: (2, 2),
            crop_to_aspect_ratio: true,
            ..ImageOptions::default()
        };
        let pixels = load_image(&wide, &options).unwrap();
        assert!(pixels[0] < 60 && pixels[3] > 195, "{pixels:?}");
    }

    #[test]
    fn split_layout_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SplitFolders::detect(dir.path()).train, dir.path());
        for split in ["train", "validation", "test"] {
            std::fs::create_dir(dir.path().join(split)).unwrap();
        }
        let splits = SplitFolders::detect(dir.path());
        assert_eq!(splits.train, dir.path().join("train"));
        assert_eq!(splits.validation, Some(dir.path().join("validation")));
        assert_eq!(splits.test, Some(dir.path().join("test")));
    }
}
