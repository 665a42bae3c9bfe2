//! The second stage of a run: the model its description asks for, on the data's classes.

use std::path::PathBuf;

use tch::Device;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::models::pretrained::locate_weights;
use crate::models::{transfer_model, Head, ScratchOptions, TransferOptions};
use crate::models::{LayerSpec, Sequential};
use crate::workflows::run_spec::{ModelSource, RunSpec, Unfreeze};

/// The model `spec` trains for `classes`, and the pretrained weights file it loaded, if
/// any. Fresh weights are seeded by the fit's seed.
pub(crate) fn build_model(
    spec: &RunSpec,
    classes: &[String],
    device: Device,
) -> Result<(Model, Option<PathBuf>)> {
    let model_spec = &spec.model;
    let seed = spec.fit.seed;
    let image_size = spec.data.decoding().image_size;
    match &model_spec.source {
        ModelSource::Scratch { architecture } => {
            let network = architecture.build(&ScratchOptions {
                image_size: i64::from(image_size),
                classes: classes.len(),
                dropout: model_spec.dropout,
                augmentation: model_spec.augmentation.clone(),
            });
            let mut model = Model::new(&network, device, seed)?;
            model.set_classes(classes.to_vec())?;
            Ok((model, None))
        }
        ModelSource::Pretrained {
            base,
            head,
            weights,
            unfreeze,
            ..
        } => {
            let network = transfer_model(&TransferOptions {
                backbone: *base,
                image_size: i64::from(image_size),
                classes: classes.len(),
                head: head.unwrap_or(Head::default_for(*base)),
                dropout: model_spec.dropout.unwrap_or(0.5),
                augmentation: model_spec.augmentation.clone(),
            });
            let mut model = Model::new(&network, device, seed)?;
            model.set_classes(classes.to_vec())?;
            let weights = locate_weights(*base, weights.as_deref())?;
            model.load_pretrained(&weights)?;
            apply_unfreeze(&mut model, unfreeze)?;
            Ok((model, Some(weights)))
        }
        ModelSource::Checkpoint { path, unfreeze } => {
            let model = Model::load(path, device)?;
            if model.classes() != classes {
                return Err(Error::invalid_data(
                    path,
                    format!(
                        "the model's classes {:?} are not the data's {classes:?}",
                        model.classes()
                    ),
                ));
            }
            let size = i64::from(image_size);
            if model.spec().input_shape[1..] != [size, size] {
                return Err(Error::invalid_data(
                    path,
                    format!(
                        "the model takes images of shape {:?}, not {size}x{size}: set the image \
                         size to the model's",
                        model.spec().input_shape
                    ),
                ));
            }
            let mut model = with_augmentation(model, &model_spec.augmentation, seed)?;
            apply_unfreeze(&mut model, unfreeze)?;
            Ok((model, None))
        }
    }
}

fn apply_unfreeze(model: &mut Model, unfreeze: &Unfreeze) -> Result<()> {
    if unfreeze.is_empty() {
        return Ok(());
    }
    model.set_backbone_trainability(|b| {
        if let Some(n) = unfreeze.last {
            b.unfreeze_last(n)?;
        }
        b.unfreeze(&unfreeze.layers)
    })
}

/// `model` with `augmentation` in front when it has none yet (fine-tuning a head trained
/// on cached features with augmentation); the parameters are kept.
fn with_augmentation(model: Model, augmentation: &[LayerSpec], seed: u64) -> Result<Model> {
    let spec = model.spec();
    if augmentation.is_empty() || spec.layers.iter().any(|l| l.spec.is_augmentation()) {
        return Ok(model);
    }
    let mut augmented = Sequential::new(&spec.name, spec.input_shape.clone());
    for layer in augmentation {
        augmented = augmented.add(layer.clone());
    }
    augmented.layers.extend(spec.layers.iter().cloned());
    let mut rebuilt = Model::new(&augmented, model.device(), seed)?;
    rebuilt.copy_parameters_from(&model)?;
    rebuilt.set_classes(model.classes().to_vec())?;
    Ok(rebuilt)
}
