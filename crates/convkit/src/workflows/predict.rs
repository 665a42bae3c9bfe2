//! `convkit predict RUN_DIR PATH...`: the class and its probability for each image, of
//! images given one by one or as folders.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::evaluate::run_image_options;
use super::run_dir::RunDir;
use crate::data::image_folder::{is_image_name, load_image, ImageOptions};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::nn::Activation;
use crate::runtime::Precision;
use crate::train::Tta;

/// Images decoded and classified at a time: memory stays bounded for any folder size
/// ([`predict_images_with`]'s docs give the number).
const BATCH: usize = 64;

/// One image's prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The image.
    pub image: PathBuf,
    /// The most probable class.
    pub class: String,
    /// Its probability.
    pub probability: f64,
    /// Every class's probability, in class order.
    pub probabilities: Vec<f64>,
    /// The most probable classes with their probabilities, most probable first (as many
    /// as asked for, at most the number of classes).
    pub top: Vec<(String, f64)>,
    /// The test-time augmentation the probabilities come from.
    pub tta: Tta,
}

/// The images named by `inputs`: a file is taken as it is; a folder gives every image file
/// below it (by extension, recursively, in path order). Fails on a path that does not
/// exist, naming it.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut images = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let before = images.len();
            walk(input, &mut images)?;
            if images.len() == before {
                return Err(Error::invalid_data(
                    input,
                    "the folder holds no image files (jpg, jpeg, png, bmp, gif, webp)",
                ));
            }
        } else if input.exists() {
            images.push(input.clone());
        } else {
            return Err(Error::invalid_data(input, "no such file or folder"));
        }
    }
    Ok(images)
}

fn walk(dir: &Path, images: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, images)?;
        } else if is_image_name(&path) {
            images.push(path);
        }
    }
    Ok(())
}

/// Predicts each image with the checkpoint of the run in `run_dir` (the best epoch when the
/// run kept one), keeping the `top` most probable classes of each. Images are decoded and
/// resized as in training (the crop and antialias settings the model records), turned to
/// grayscale for a one-channel model, and classified 64 at a time; `each` hears
/// every batch's predictions as they come (to write them, or show progress). It computes
/// in `precision`, or in the run's own when `None`; with test-time augmentation `tta` the
/// probabilities are averaged over each image's views (see [`Tta::predict`]).
pub fn predict_images_with(
    run_dir: &Path,
    images: &[PathBuf],
    top: usize,
    device: Device,
    precision: Option<Precision>,
    tta: Tta,
    mut each: impl FnMut(&[Prediction]) -> Result<()>,
) -> Result<()> {
    let run = RunDir::open(run_dir)?;
    let model = run.load_checkpoint(device, precision)?;
    tta.check(&model)?;
    let options = run_image_options(&run, &model)?;
    for chunk in images.chunks(BATCH) {
        each(&predict_batch(&model, &options, chunk, top, tta)?)?;
    }
    Ok(())
}

/// [`predict_images_with`], collected.
pub fn predict_images(
    run_dir: &Path,
    images: &[PathBuf],
    top: usize,
    device: Device,
    precision: Option<Precision>,
    tta: Tta,
) -> Result<Vec<Prediction>> {
    let mut all = Vec::with_capacity(images.len());
    predict_images_with(run_dir, images, top, device, precision, tta, |batch| {
        all.extend_from_slice(batch);
        Ok(())
    })?;
    Ok(all)
}

fn predict_batch(
    model: &Model,
    options: &ImageOptions,
    images: &[PathBuf],
    top: usize,
    tta: Tta,
) -> Result<Vec<Prediction>> {
    let (h, w) = (options.size.0 as i64, options.size.1 as i64);
    let channels = model.spec().input_shape[0];
    let mut pixels = Vec::with_capacity(images.len() * (h * w * channels) as usize);
    for path in images {
        let rgb = load_image(path, options)?;
        if channels == 1 {
            // Grayscale models (MNIST) get the luma of the colour image (ITU-R BT.601).
            pixels.extend(rgb.chunks_exact(3).map(|p| {
                (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64).round() as u8
            }));
        } else {
            pixels.extend(rgb);
        }
    }
    let batch = Tensor::from_slice(&pixels)
        .view([images.len() as i64, h, w, channels])
        .permute([0, 3, 1, 2]);
    let outputs = tta
        .predict(model, &batch, 32)?
        .to_kind(Kind::Double)
        .to_device(Device::Cpu);
    let outputs: Vec<Vec<f64>> = Vec::<Vec<f64>>::try_from(outputs)?;
    let classes = model.classes();
    Ok(images
        .iter()
        .zip(outputs)
        .map(|(path, out)| {
            let probabilities = if model.spec().output_activation() == Activation::Sigmoid {
                vec![1.0 - out[0], out[0]]
            } else {
                out
            };
            let mut ranked: Vec<usize> = (0..probabilities.len()).collect();
            // Stable: a tie keeps the lower class first, as the accuracy counts it.
            ranked.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
            let best = ranked[0];
            Prediction {
                image: path.clone(),
                class: classes[best].clone(),
                probability: probabilities[best],
                top: ranked
                    .iter()
                    .take(top.max(1))
                    .map(|&c| (classes[c].clone(), probabilities[c]))
                    .collect(),
                probabilities,
                tta,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_give_their_images_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in ["b/2.jpg", "b/c/3.PNG", "a.jpg", "b/notes.txt", "b/1.webp"] {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        let found = collect_images(&[root.join("b"), root.join("a.jpg")]).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["b/1.webp", "b/2.jpg", "b/c/3.PNG", "a.jpg"]);
        let err = collect_images(&[root.join("missing.jpg")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing.jpg") && err.contains("no such file"),
            "{err}"
        );
        std::fs::create_dir_all(root.join("empty")).unwrap();
        let err = collect_images(&[root.join("empty")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("empty") && err.contains("no image files"),
            "{err}"
        );
    }
}
