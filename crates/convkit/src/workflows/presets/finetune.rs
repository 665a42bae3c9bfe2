//! Fine-tuning a transfer-learning run (section 5).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::train::Optimizer;
use crate::workflows::run_dir::RunDir;
use crate::workflows::run_spec::{ModelSource, RunKind, RunSpec, Unfreeze};

/// Fine-tuning of the run in `source` (a run on a pretrained base) as the chapter does it,
/// writing to `out_dir`: its data, augmentation, callbacks and precision, starting from its
/// kept checkpoint with `unfreeze` trainable, end to end through the base, RMSprop at
/// 1e-5 for 30 epochs.
pub fn finetune(source: &Path, unfreeze: Unfreeze, out_dir: PathBuf) -> Result<RunSpec> {
    let run = RunDir::open(source)?;
    if unfreeze.is_empty() {
        return Err(Error::InvalidConfig(
            "say which layers of the base to train: --unfreeze NAME or --unfreeze-last N".into(),
        ));
    }
    let source_spec = RunSpec::read(&run.config())?;
    let on_a_base = match &source_spec.model.source {
        ModelSource::Pretrained { .. } => true,
        // A fine-tuning run can be fine-tuned further.
        ModelSource::Checkpoint { .. } => source_spec.kind == RunKind::Finetune,
        ModelSource::Scratch { .. } => false,
    };
    if !on_a_base {
        return Err(Error::invalid_data(
            run.config(),
            "fine-tuning continues a run trained on a pretrained base (`convkit train --base ...`)",
        ));
    }
    let checkpoint = run
        .checkpoint()
        .expect("RunDir::open checked that it has one");
    Ok(finetune_of(source_spec, checkpoint, unfreeze, out_dir))
}

/// The fine-tuning of a run described by `source_spec` whose best model is (or will be) at
/// `checkpoint`: the same data, augmentation and precision, the layers of `unfreeze`
/// trained with RMSprop at 1e-5 for 30 epochs (the chapter's).
pub fn finetune_of(
    source_spec: RunSpec,
    checkpoint: PathBuf,
    unfreeze: Unfreeze,
    out_dir: PathBuf,
) -> RunSpec {
    let mut spec = source_spec;
    spec.kind = RunKind::Finetune;
    spec.recorded = None;
    spec.model.source = ModelSource::Checkpoint {
        path: checkpoint,
        unfreeze,
    };
    spec.fit.optimizer = Optimizer::rmsprop().with_learning_rate(1e-5);
    spec.fit.epochs = 30;
    spec.output.dir = out_dir;
    spec
}
