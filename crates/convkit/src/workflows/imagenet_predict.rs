//! `convkit predict --backbone NAME IMAGE...`: ImageNet's most probable classes per image,
//! from a pretrained network with its classifier.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::data::image_folder::load_image_center_crop;
use crate::error::Result;
use crate::model::Model;
use crate::models::imagenet::{locate_imagenet_classes, read_imagenet_classes};
use crate::models::pretrained::locate_weights;
use crate::models::{BackboneArch, BackboneSpec};
use crate::models::{LayerSpec, Sequential};
use crate::runtime::Precision;

/// Side of the images ImageNet classifiers are evaluated on.
pub const IMAGENET_SIDE: u32 = 224;

/// The central fraction kept before resizing (torchvision: resize 256, crop 224).
pub const IMAGENET_CROP_FRACTION: f64 = 224.0 / 256.0;

/// One class and its probability.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelledProbability {
    /// ImageNet index, 0 to 999.
    pub index: i64,
    /// Class name.
    pub label: String,
    /// Softmax probability.
    pub probability: f64,
}

/// The top classes of one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImagenetPrediction {
    /// The image.
    pub image: PathBuf,
    /// The most probable classes, most probable first.
    pub top: Vec<LabelledProbability>,
}

/// An ImageNet classifier of `arch` with its weights loaded (from `weights`, or found as
/// [`locate_weights`] says), computing in `precision`.
pub fn imagenet_classifier(
    arch: BackboneArch,
    weights: Option<&Path>,
    device: Device,
    precision: Precision,
) -> Result<Model> {
    let side = IMAGENET_SIDE as i64;
    let spec = Sequential::new(&format!("{}_imagenet", arch.name()), [3, side, side])
        .add(LayerSpec::Backbone(BackboneSpec::classifier(arch)?));
    let mut model = Model::new(&spec, device, 0)?;
    model.load_pretrained(&locate_weights(arch, weights)?)?;
    model.set_precision(precision);
    Ok(model)
}

/// Classifies each image with `model` (from [`imagenet_classifier`]) and returns the `top`
/// most probable of `classes` for each.
pub fn classify_imagenet(
    model: &Model,
    classes: &[String],
    images: &[PathBuf],
    top: usize,
) -> Result<Vec<ImagenetPrediction>> {
    let side = IMAGENET_SIDE as i64;
    let mut pixels = Vec::with_capacity(images.len() * (side * side * 3) as usize);
    for path in images {
        pixels.extend(load_image_center_crop(
            path,
            IMAGENET_SIDE,
            IMAGENET_CROP_FRACTION,
        )?);
    }
    let batch = Tensor::from_slice(&pixels)
        .view([images.len() as i64, side, side, 3])
        .permute([0, 3, 1, 2]);
    let probabilities = model
        .predict(&batch, 16)
        .to_device(Device::Cpu)
        .to_kind(Kind::Double);
    let k = top.clamp(1, classes.len()) as i64;
    let (values, indices) = probabilities.topk(k, 1, true, true);
    Ok(images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let values = Vec::<f64>::try_from(values.get(i as i64)).unwrap_or_default();
            let indices = Vec::<i64>::try_from(indices.get(i as i64)).unwrap_or_default();
            ImagenetPrediction {
                image: image.clone(),
                top: indices
                    .into_iter()
                    .zip(values)
                    .map(|(index, probability)| LabelledProbability {
                        index,
                        label: classes[index as usize].clone(),
                        probability,
                    })
                    .collect(),
            }
        })
        .collect())
}

/// [`imagenet_classifier`] and [`classify_imagenet`] in one call, with the class names
/// from `classes_file` or found beside the weights (`$CONVKIT_MODELS`).
pub fn predict_imagenet(
    arch: BackboneArch,
    weights: Option<&Path>,
    classes_file: Option<&Path>,
    images: &[PathBuf],
    top: usize,
    device: Device,
    precision: Precision,
) -> Result<Vec<ImagenetPrediction>> {
    let model = imagenet_classifier(arch, weights, device, precision)?;
    let classes = read_imagenet_classes(&locate_imagenet_classes(classes_file)?)?;
    classify_imagenet(&model, &classes, images, top)
}
