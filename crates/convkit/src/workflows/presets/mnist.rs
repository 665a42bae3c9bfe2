//! The chapter's MNIST convnet (section 1).

use std::path::PathBuf;

use crate::models::ScratchModel;
use crate::runtime::Precision;
use crate::train::{FitConfig, Optimizer};
use crate::workflows::run_spec::{
    Checkpoint, DataSpec, ModelSource, ModelSpec, OutputSpec, RunKind, RunSpec,
};

/// The MNIST convnet as the chapter trains it, writing to `out_dir`: MNIST found as
/// [`crate::data::mnist::locate_or_download_mnist`] finds it, the last 10% of the training
/// images held out, 5 epochs of batches of 64, RMSprop with Keras' defaults, seed 42, bf16
/// where the hardware has bf16 units and fp32 elsewhere ([`Precision::Auto`]); the model
/// of the last epoch is kept and measured on the 10,000 test images.
pub fn mnist(out_dir: PathBuf) -> RunSpec {
    RunSpec::new(
        RunKind::Mnist,
        DataSpec::mnist(None),
        ModelSpec::new(ModelSource::Scratch {
            architecture: ScratchModel::MnistConvnet,
        }),
        FitConfig {
            epochs: 5,
            batch_size: 64,
            optimizer: Optimizer::rmsprop(),
            seed: 42,
            precision: Some(Precision::Auto),
            ..FitConfig::default()
        },
        OutputSpec {
            dir: out_dir,
            checkpoint: Checkpoint::Last,
        },
    )
}
