//! A convnet trained on a folder of images (sections 2 to 4).

use std::path::PathBuf;

use crate::models::ScratchModel;
use crate::runtime::Precision;
use crate::train::{FitConfig, Optimizer};
use crate::workflows::run_spec::{
    Checkpoint, DataSpec, ModelSource, ModelSpec, OutputSpec, RunKind, RunSpec,
};

/// The chapter's section-2 run on `data_dir`, writing to `out_dir`: the small convnet on
/// 180x180 images, 30 epochs of batches of 32, RMSprop with Keras' defaults, seed 42, bf16
/// where the hardware has bf16 units and fp32 elsewhere ([`Precision::Auto`]), 20% held
/// out (seeded) when the data has no `validation/` folder; the epoch with the lowest
/// validation loss is kept. Change the model source for transfer learning
/// (section 4), and add augmentation and dropout for section 3.
pub fn train(data_dir: PathBuf, out_dir: PathBuf) -> RunSpec {
    RunSpec::new(
        RunKind::Train,
        DataSpec::image_folder(data_dir),
        ModelSpec::new(ModelSource::Scratch {
            architecture: ScratchModel::SmallConvnet,
        }),
        FitConfig {
            epochs: 30,
            batch_size: 32,
            optimizer: Optimizer::rmsprop(),
            seed: 42,
            precision: Some(Precision::Auto),
            ..FitConfig::default()
        },
        OutputSpec {
            dir: out_dir,
            checkpoint: Checkpoint::LowestValidationLoss,
        },
    )
}
