//! Finding and loading the ImageNet weights of a backbone.
//!
//! Weights are looked up in `--weights PATH`, then `$CONVKIT_MODELS/<file>`, then the
//! user's cache (`~/.cache/convkit/models/<file>`), where `<file>` is
//! [`BackboneArch::weights_file`]. Both safetensors files and PyTorch `.pth` checkpoints
//! (the zip format, read without running any pickle code) load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{nn::VarStore, Tensor};

use super::backbone::{BackboneArch, BackboneSpec};
use super::backbone_network::KeyMap;
use crate::cache::{cache_dir, non_empty_env};
use crate::error::{Error, Result};
use crate::weights::{copy_checked, read_pth, read_weights};

/// The environment variable naming a folder of weights laid out as `shared/models` is.
pub const MODELS_ENV: &str = "CONVKIT_MODELS";

/// Where weights are cached for the user: `models` in
/// [`cache_root`](crate::cache::cache_root), `~/.cache/convkit/models` by default.
pub fn models_cache_dir() -> Option<PathBuf> {
    cache_dir("models")
}

/// The weights file of `arch`: `explicit` when given (it must exist), else the first of
/// `$CONVKIT_MODELS/<file>` and the cache that exists. The error lists where it looked and
/// how to get the file.
pub fn locate_weights(arch: BackboneArch, explicit: Option<&Path>) -> Result<PathBuf> {
    locate_weights_in(arch, explicit, &search_dirs())
}

/// The folder `$CONVKIT_MODELS` names, if set and not empty.
fn models_dir_from_env() -> Option<PathBuf> {
    non_empty_env(MODELS_ENV).map(PathBuf::from)
}

/// The folders a models-folder file is looked for in, in order: `$CONVKIT_MODELS`, then
/// the cache.
fn search_dirs() -> Vec<PathBuf> {
    models_dir_from_env()
        .into_iter()
        .chain(models_cache_dir())
        .collect()
}

/// `file` in each of `dirs`, in order.
fn candidates(file: &str, dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter().map(|dir| dir.join(file)).collect()
}

/// `file` (relative to a models folder) from `$CONVKIT_MODELS` or the cache, whichever has
/// it first; otherwise every place searched, for the error.
pub fn find_in_models_dirs(file: &str) -> std::result::Result<PathBuf, Vec<PathBuf>> {
    let searched = candidates(file, &search_dirs());
    searched
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(searched)
}

/// [`locate_weights`] searching `dirs` (instead of `$CONVKIT_MODELS` and the cache).
fn locate_weights_in(
    arch: BackboneArch,
    explicit: Option<&Path>,
    dirs: &[PathBuf],
) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_owned());
        }
        return Err(Error::io(
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let file = arch.weights_file();
    let searched = candidates(file, dirs);
    if let Some(found) = searched.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(Error::DataNotFound {
        what: format!(
            "the ImageNet weights of {} (`{file}`: pass --weights PATH, a safetensors file or \
             a PyTorch .pth as torchvision ships them, or set {MODELS_ENV} to a folder holding \
             `{file}`, or copy it into the cache folder)",
            arch.name()
        ),
        searched,
    })
}

/// Reads a weights file, safetensors or PyTorch checkpoint (told apart by content: a zip
/// archive, or a pickle for PyTorch's legacy format).
pub fn read_checkpoint(path: &Path) -> Result<Vec<(String, Tensor)>> {
    // safetensors starts with its header's length (8 bytes) then `{`
    let mut magic = [0u8; 9];
    let is_torch = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .map(|_| magic.starts_with(b"PK\x03\x04") || (magic[0] == 0x80 && magic[8] != b'{'))
        .unwrap_or(false);
    if is_torch {
        read_pth(path)
    } else {
        read_weights(path)
    }
}

/// Loads the checkpoint at `path` into the backbone `spec` whose parameters live in `vs`
/// under `prefix` (for example `vgg16.`). Every parameter must be in the file with its
/// shape; tensors the network does not use (a classifier without the top, LPIPS heads,
/// batch-norm counters) are skipped, anything else unknown is an error.
pub fn load_backbone_weights(
    vs: &mut VarStore,
    prefix: &str,
    spec: &BackboneSpec,
    path: &Path,
) -> Result<()> {
    let mut mapped = BTreeMap::new();
    let mut unknown = Vec::new();
    for (key, tensor) in read_checkpoint(path)? {
        match spec.architecture.map_key(&key, spec.include_top) {
            KeyMap::To(name) => {
                mapped.insert(name, tensor);
            }
            KeyMap::Permuted(name, axes) => {
                mapped.insert(name, tensor.permute(axes).contiguous());
            }
            KeyMap::Skip(_) => {}
            KeyMap::Unknown => unknown.push(format!("  unexpected: {key} {:?}", tensor.size())),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::WeightsMismatch {
            path: path.to_owned(),
            problems: unknown,
        });
    }
    copy_checked(vs, prefix, &mapped, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_explains_how_to_get_it() {
        let err = locate_weights(
            BackboneArch::Vgg16,
            Some(Path::new("/nowhere/v.safetensors")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nowhere/v.safetensors"), "{err}");
        let err = locate_weights_in(BackboneArch::MobilenetV2, None, &["/nowhere".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--weights") && err.contains("/nowhere/mobilenet_v2_torchvision"),
            "{err}"
        );
    }
}
