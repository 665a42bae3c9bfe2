//! The transfer-learning parts of `convkit train` and `convkit finetune`: a head on a
//! pretrained base, trained end to end or on cached features (the chapter's sections 4
//! and 5).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::features::{backbone_fingerprint, extract_features, FeatureCache};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::train::{BestCheckpoint, Callback, Evaluation, FitConfig, History, SaveCheckpoint};

/// How the pretrained base is used during training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    /// Images go through the frozen base at every step (augmentation works, slow on a CPU).
    #[default]
    Frozen,
    /// The base runs once per image, its features are cached, and the head trains on them
    /// (fast; no augmentation).
    Features,
}

crate::names::named_settings!(TransferMode, "transfer mode", ["frozen", "features"]);

/// What feature extraction did, recorded in `metrics.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeaturesReport {
    /// Whether every split's features came from the cache.
    pub cache_hit: bool,
    /// Seconds spent computing or reading features.
    pub seconds: f64,
    /// The cache folder.
    pub cache_dir: Option<PathBuf>,
}

/// Writes the whole model (base and head) with the head's parameters: the head is trained
/// alone, the checkpoint must work on images.
struct IntoWholeModel(Model);

impl SaveCheckpoint for IntoWholeModel {
    fn save_checkpoint(&mut self, head: &Model, path: &Path) -> Result<()> {
        self.0.copy_parameters_from(head)?;
        self.0.save(path)
    }
}

/// The splits' features and the head model that trains on them.
pub struct FeatureSplits {
    /// Training features.
    pub train: Dataset,
    /// Validation features.
    pub validation: Dataset,
    /// Test features, when there is a test split.
    pub test: Option<Dataset>,
    /// The head, cut from the whole model after its backbone.
    pub head: Model,
    /// Cache statistics.
    pub report: FeaturesReport,
}

/// Runs the whole model's backbone over each split once (or reads the cache) and cuts the
/// head off the model.
pub fn prepare_features(
    whole: &Model,
    weights: &Path,
    splits: [Option<&Dataset>; 3],
    cache: Option<FeatureCache>,
    batch_size: usize,
    progress: bool,
) -> Result<FeatureSplits> {
    let (backbone, _) = whole
        .backbone()
        .ok_or_else(|| Error::InvalidConfig("feature extraction needs a pretrained base".into()))?;
    let backbone = backbone.to_owned();
    let fingerprint = backbone_fingerprint(whole, &backbone, weights)?;
    let mut hits = true;
    let mut seconds = 0.0;
    let mut features = Vec::new();
    for data in splits {
        features.push(match data {
            Some(data) => {
                let f = extract_features(
                    whole,
                    &backbone,
                    &fingerprint,
                    data,
                    cache.as_ref(),
                    batch_size,
                    progress,
                )?;
                hits &= f.cache_hit;
                seconds += f.seconds;
                Some(f.dataset)
            }
            None => None,
        });
    }
    let (_, head_spec) = whole.spec().split_after(&backbone)?;
    let mut head = Model::new(&head_spec, whole.device(), 0)?;
    head.copy_parameters_from(whole)?;
    head.set_classes(whole.classes().to_vec())?;
    let mut features = features.into_iter();
    let missing = || Error::InvalidConfig("training and validation data are needed".into());
    Ok(FeatureSplits {
        train: features.next().flatten().ok_or_else(missing)?,
        validation: features.next().flatten().ok_or_else(missing)?,
        test: features.next().flatten(),
        head,
        report: FeaturesReport {
            cache_hit: hits,
            seconds,
            cache_dir: cache.map(|c| c.dir().to_owned()),
        },
    })
}

/// Trains `splits.head` on the cached features, saving the whole model (with the head's
/// parameters) to `best` at each new lowest validation loss and to `last` at the end.
/// Returns the whole model (last epoch), the history and the best epoch's validation and
/// test scores.
pub fn fit_on_features(
    whole: Model,
    splits: &mut FeatureSplits,
    config: &FitConfig,
    callbacks: &mut [&mut dyn Callback],
    best: &Path,
    last: &Path,
) -> Result<(Model, History, Evaluation, Option<Evaluation>)> {
    let mut checkpoint = BestCheckpoint::with_saver(best.to_owned(), IntoWholeModel(whole));
    let history = {
        let mut all: Vec<&mut dyn Callback> = Vec::with_capacity(callbacks.len() + 1);
        for callback in callbacks.iter_mut() {
            all.push(&mut **callback);
        }
        all.push(&mut checkpoint);
        crate::train::fit(
            &mut splits.head,
            &splits.train,
            Some(&splits.validation),
            config,
            &mut all,
        )?
    };
    let mut whole = checkpoint.into_saver().0;
    whole.copy_parameters_from(&splits.head)?;
    whole.save(last)?;
    let best_model = Model::load(best, whole.device())?;
    splits.head.copy_parameters_from(&best_model)?;
    let validation = crate::train::evaluate(&splits.head, &splits.validation, 256)?;
    let test = splits
        .test
        .as_ref()
        .map(|t| crate::train::evaluate(&splits.head, t, 256))
        .transpose()?;
    Ok((whole, history, validation, test))
}
