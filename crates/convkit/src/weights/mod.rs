//! Saving and loading a variable store as safetensors, with every key and shape checked.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{nn::VarStore, Tensor};

use crate::atomic_file::write_atomic_with;
use crate::error::{Error, Result};

mod pickle;
pub mod pth;
pub use pth::read_pth;

/// Writes every variable of `vs` to `path` in safetensors format, atomically: a run stopped
/// mid-write keeps the previous file.
pub fn save_weights(vs: &VarStore, path: &Path) -> Result<()> {
    write_tensors(path, &cpu_variables(vs))
}

/// Every variable of `vs` by name, in name order, as contiguous CPU tensors: what a
/// safetensors file holds.
pub fn cpu_variables(vs: &VarStore) -> Vec<(String, Tensor)> {
    let named: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    named
        .into_iter()
        .map(|(name, t)| (name, t.to_device(tch::Device::Cpu).contiguous()))
        .collect()
}

/// Writes `tensors` to `path` in safetensors format, atomically.
pub fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        Tensor::write_safetensors(tensors, tmp).map_err(|e| Error::invalid_data(tmp, e.to_string()))
    })
}

/// Reads a safetensors file into name/tensor pairs, naming the file in any error.
pub fn read_weights(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    Tensor::read_safetensors(path)
        .map_err(|e| Error::invalid_data(path, format!("not a readable safetensors file: {e}")))
}

/// Loads `path` into `vs`. Every variable must be present with its exact shape and the file
/// may hold nothing else; otherwise nothing is loaded and the error lists each missing,
/// unexpected and mis-shaped tensor.
pub fn load_weights(vs: &mut VarStore, path: &Path) -> Result<()> {
    let file: BTreeMap<String, Tensor> = read_weights(path)?.into_iter().collect();
    copy_checked(vs, "", &file, path)
}

/// Copies `tensors` into the variables of `vs` whose names start with `prefix` (the
/// tensors' names are relative to it). The same checks as [`load_weights`]: all or nothing,
/// every problem named, `source` (the file they came from) in the error.
pub fn copy_checked(
    vs: &mut VarStore,
    prefix: &str,
    tensors: &BTreeMap<String, Tensor>,
    source: &Path,
) -> Result<()> {
    let vars: BTreeMap<String, Tensor> = vs
        .variables()
        .into_iter()
        .filter_map(|(name, t)| name.strip_prefix(prefix).map(|n| (n.to_owned(), t)))
        .collect();
    let mut problems = Vec::new();
    for (name, var) in &vars {
        match tensors.get(name) {
            None => problems.push(format!("  missing: {name} {:?}", var.size())),
            Some(t) if t.size() != var.size() => problems.push(format!(
                "  wrong shape: {name}: the model has {:?}, the file {:?}",
                var.size(),
                t.size()
            )),
            Some(_) => {}
        }
    }
    for name in tensors.keys().filter(|n| !vars.contains_key(*n)) {
        problems.push(format!("  unexpected: {name} {:?}", tensors[name].size()));
    }
    if !problems.is_empty() {
        return Err(Error::WeightsMismatch {
            path: source.to_owned(),
            problems,
        });
    }
    tch::no_grad(|| {
        for (name, var) in &vars {
            let mut var = var.shallow_clone();
            var.f_copy_(&tensors[name].to_kind(var.kind()).to_device(var.device()))?;
        }
        Ok::<_, tch::TchError>(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Init, Device, Kind};

    fn store(out: i64) -> VarStore {
        let vs = VarStore::new(Device::Cpu);
        let _ =
            vs.root()
                .sub("dense")
                .var("weight", &[out, 3], Init::Uniform { lo: -1.0, up: 1.0 });
        let _ = vs.root().sub("dense").var("bias", &[out], Init::Const(0.5));
        vs
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a = store(2);
        save_weights(&a, &path).unwrap();
        let mut b = store(2);
        load_weights(&mut b, &path).unwrap();
        let (va, vb) = (a.variables(), b.variables());
        for (name, t) in &va {
            assert!(t.equal(&vb[name]), "{name}");
        }
    }

    #[test]
    fn mismatches_are_all_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let extra = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        let wrong = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
        Tensor::write_safetensors(&[("dense.weight", &wrong), ("other", &extra)], &path).unwrap();
        let err = load_weights(&mut store(2), &path).unwrap_err().to_string();
        assert!(err.contains("missing: dense.bias [2]"), "{err}");
        assert!(
            err.contains("wrong shape: dense.weight: the model has [2, 3], the file [4, 3]"),
            "{err}"
        );
        assert!(err.contains("unexpected: other [1]"), "{err}");
        assert!(err.contains("w.safetensors"), "{err}");
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        std::fs::write(&path, b"not safetensors").unwrap();
        let err = load_weights(&mut store(2), &path).unwrap_err().to_string();
        assert!(err.contains("bad.safetensors"), "{err}");
    }
}
