//! A frozen backbone's features, computed once per image and cached on disk (the chapter's
//! fast feature extraction, section 4).
//!
//! A cache entry is keyed by the sha256 of everything that determines the features: the
//! layers up to the backbone (its name, head or not), the weights file's content, and the
//! decoded images and labels. A second run on the same data skips the backbone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::atomic_file::write_atomic_with;
use crate::cache::cache_dir;
use crate::data::download::sha256_file;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::runtime::{contiguous_in, MemoryFormat, Precision};
use crate::weights::read_weights;

/// A folder of cached feature files, `<key>.safetensors`.
#[derive(Clone, Debug)]
pub struct FeatureCache {
    dir: PathBuf,
}

/// Features of one dataset, and whether they came from the cache.
#[derive(Debug)]
pub struct Features {
    /// Features `(N, C, H, W)` as `f32`, with the data's labels and classes.
    pub dataset: Dataset,
    /// Whether the backbone was skipped.
    pub cache_hit: bool,
    /// Seconds spent (computing or reading).
    pub seconds: f64,
    /// The cache file, when there is a cache.
    pub file: Option<PathBuf>,
}

impl FeatureCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: PathBuf) -> Self {
        FeatureCache { dir }
    }

    /// The user's cache: `features` in [`cache_root`](crate::cache::cache_root),
    /// `~/.cache/convkit/features` by default.
    pub fn user_default() -> Option<Self> {
        cache_dir("features").map(FeatureCache::new)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What identifies a backbone's output: the description of the layers up to it and the
/// content of its weights file. Compute once per run, then key each dataset with
/// [`features_key`].
pub fn backbone_fingerprint(model: &Model, through: &str, weights: &Path) -> Result<String> {
    let layers: Vec<_> = model
        .spec()
        .layers
        .iter()
        .take_while(|l| l.name != through)
        .chain(model.spec().layers.iter().find(|l| l.name == through))
        .collect();
    let description = serde_json::to_string(&layers).expect("layer specs serialise");
    // bf16 features differ from fp32 ones in the last bits; fp32 keeps the earlier keys.
    let precision = match model.precision() {
        Precision::Fp32 => String::new(),
        other => format!("\nprecision {other}"),
    };
    Ok(format!(
        "{description}\n{}{precision}",
        sha256_file(weights)?
    ))
}

/// The cache key of `data`'s features under a backbone of `fingerprint`.
pub fn features_key(fingerprint: &str, data: &Dataset) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(b"convkit features v1\n");
    hasher.update(fingerprint.as_bytes());
    hasher.update(
        format!(
            "\n{:?} {:?} {:?}\n",
            data.images().size(),
            data.images().kind(),
            data.classes()
        )
        .as_bytes(),
    );
    let images = Vec::<u8>::try_from(data.images().to_kind(Kind::Uint8).flatten(0, -1))?;
    hasher.update(&images);
    let labels = Vec::<i64>::try_from(data.labels())?;
    for label in labels {
        hasher.update(label.to_le_bytes());
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..32]
        .to_owned())
}

/// The output of `model`'s layer `through` for every image of `data`, from `cache` when it
/// holds them (under `fingerprint`, see [`backbone_fingerprint`]), else computed in batches
/// without gradients and written to the cache.
pub fn extract_features(
    model: &Model,
    through: &str,
    fingerprint: &str,
    data: &Dataset,
    cache: Option<&FeatureCache>,
    batch_size: usize,
    progress: bool,
) -> Result<Features> {
    let start = Instant::now();
    let file = match cache {
        Some(cache) => Some(
            cache
                .dir
                .join(format!("{}.safetensors", features_key(fingerprint, data)?)),
        ),
        None => None,
    };
    if let Some(file) = file.as_ref().filter(|f| f.is_file()) {
        match read_cached(file, data) {
            Ok(dataset) => {
                return Ok(Features {
                    dataset,
                    cache_hit: true,
                    seconds: start.elapsed().as_secs_f64(),
                    file: Some(file.clone()),
                })
            }
            Err(e) if progress => eprintln!("warning: ignoring a broken cache entry: {e}"),
            Err(_) => {}
        }
    }
    let bar = crate::progress_bar::count_bar(data.len() as u64, "features", progress);
    let step = batch_size.max(1) as i64;
    let n = data.len() as i64;
    let parts = crate::runtime::inference_mode(|| {
        (0..n)
            .step_by(step as usize)
            .map(|at| {
                let batch = data
                    .images()
                    .narrow(0, at, step.min(n - at))
                    .to_device(model.device());
                let out = model
                    .forward_through(&batch, through)?
                    .to_device(Device::Cpu);
                bar.inc((step.min(n - at)) as u64);
                Ok(out)
            })
            .collect::<Result<Vec<Tensor>>>()
    })?;
    bar.finish_and_clear();
    // Joined outside inference mode, in the standard layout: a normal tensor that training
    // can save for its backward pass, and a cache file in NCHW order.
    let features = contiguous_in(&Tensor::cat(&parts, 0), MemoryFormat::Contiguous)?;
    if let Some(file) = &file {
        std::fs::create_dir_all(file.parent().expect("cache file has a folder"))
            .map_err(|e| Error::io(file, e))?;
        write_atomic_with(file, |tmp| {
            Tensor::write_safetensors(&[("features", &features), ("labels", data.labels())], tmp)
                .map_err(|e| Error::invalid_data(tmp, e.to_string()))
        })?;
    }
    Ok(Features {
        dataset: Dataset::new(
            features,
            data.labels().shallow_clone(),
            data.classes().to_vec(),
        )?,
        cache_hit: false,
        seconds: start.elapsed().as_secs_f64(),
        file,
    })
}

fn read_cached(file: &Path, data: &Dataset) -> Result<Dataset> {
    let mut tensors = read_weights(file)?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    match tensors.as_slice() {
        [(f, features), (l, labels)]
            if f == "features" && l == "labels" && labels.equal(data.labels()) =>
        {
            Dataset::new(
                features.shallow_clone(),
                labels.shallow_clone(),
                data.classes().to_vec(),
            )
        }
        _ => Err(Error::invalid_data(
            file,
            "not a features cache entry for this data",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_the_content() {
        let images = Tensor::randint(256, [4, 3, 8, 8], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 1, 0, 1]);
        let classes = vec!["a".to_owned(), "b".to_owned()];
        let data = Dataset::new(images.copy(), labels.copy(), classes.clone()).unwrap();
        let same = Dataset::new(images.copy(), labels.copy(), classes.clone()).unwrap();
        let changed = images.copy();
        let _ = changed.get(0).get(0).get(0).get(0).fill_(7);
        let _ = changed.get(0).get(0).get(0).get(1).fill_(9);
        let other = Dataset::new(changed, labels.copy(), classes).unwrap();
        let key = features_key("vgg16", &data).unwrap();
        assert_eq!(key, features_key("vgg16", &same).unwrap());
        assert_ne!(key, features_key("vgg16", &other).unwrap());
        assert_ne!(key, features_key("mobilenet_v2", &data).unwrap());
    }
}
