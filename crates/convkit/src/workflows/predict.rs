//! `convkit predict RUN_DIR IMAGE...`: the class and its probability for each image.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::evaluate::run_image_options;
use super::run_dir::RunDir;
use crate::data::image_folder::load_image;
use crate::error::Result;
use crate::nn::Activation;
use crate::runtime::Precision;

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
}

/// Predicts each image with the checkpoint of the run in `run_dir` (the best epoch when the
/// run kept one). Images are decoded and resized as in training (the crop and antialias
/// settings the model records), and turned to grayscale for
/// a one-channel model. It computes in `precision`, or in the run's own when `None`.
pub fn predict_images(
    run_dir: &Path,
    images: &[PathBuf],
    device: Device,
    precision: Option<Precision>,
) -> Result<Vec<Prediction>> {
    let run = RunDir::open(run_dir)?;
    let model = run.load_checkpoint(device, precision)?;
    let options = run_image_options(&run, &model)?;
    let (h, w) = (options.size.0 as i64, options.size.1 as i64);
    let channels = model.spec().input_shape[0];
    let mut pixels = Vec::with_capacity(images.len() * (h * w * channels) as usize);
    for path in images {
        let rgb = load_image(path, &options)?;
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
    let outputs = model
        .predict(&batch, 32)
        .to_kind(Kind::Double)
        .to_device(Device::Cpu);
    let outputs: Vec<Vec<f64>> = Vec::<Vec<f64>>::try_from(outputs)?;
    Ok(images
        .iter()
        .zip(outputs)
        .map(|(path, out)| {
            let probabilities = if model.spec().output_activation() == Activation::Sigmoid {
                vec![1.0 - out[0], out[0]]
            } else {
                out
            };
            let (index, &probability) = probabilities
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("at least one class");
            Prediction {
                image: path.clone(),
                class: model.classes()[index].clone(),
                probability,
                probabilities,
            }
        })
        .collect())
}
