//! A built, trainable model: a [`Sequential`] description plus its parameters.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Device, Tensor};

use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};
use crate::models::BackboneSpec;
use crate::nn::{Activation, Layer, LayerSpec, Sequential};
use crate::train::Loss;
use crate::weights::{load_weights, save_weights};

/// What `model.json` holds beside `model.safetensors`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always `convkit.sequential`.
    pub format: String,
    /// Format version, 1.
    pub version: u32,
    /// The architecture.
    pub architecture: Sequential,
    /// Class names, indexed by the model's output.
    pub classes: Vec<String>,
}

const MODEL_FORMAT: &str = "convkit.sequential";

/// A sequential model with its parameters on a device.
///
/// The layers compute *logits*: a final softmax or sigmoid in the description is left out
/// of [`Model::forward`] (the loss works on logits, which is exact and stable) and applied
/// by [`Model::predict`].
#[derive(Debug)]
pub struct Model {
    spec: Sequential,
    vs: VarStore,
    layers: Vec<Box<dyn Layer>>,
    classes: Vec<String>,
}

impl Model {
    /// Builds `spec` on `device` with freshly initialised parameters, drawn from libtorch's
    /// generator seeded with `seed`.
    pub fn new(spec: &Sequential, device: Device, seed: u64) -> Result<Model> {
        spec.validate()?;
        tch::manual_seed(seed as i64);
        let vs = VarStore::new(device);
        let skip_last = spec.output_activation() != Activation::Linear;
        let mut input = spec.input_shape.clone();
        let mut layers = Vec::with_capacity(spec.layers.len());
        for (i, layer) in spec.layers.iter().enumerate() {
            let is_last = i + 1 == spec.layers.len();
            layers.push(layer.spec.build(
                vs.root().sub(&layer.name),
                &input,
                skip_last && is_last,
            )?);
            input = layer.spec.output_shape(&input)?;
        }
        let outputs = *spec.output_shape()?.last().unwrap_or(&1);
        let n_classes = if outputs == 1 { 2 } else { outputs };
        let classes = (0..n_classes).map(|i| i.to_string()).collect();
        let model = Model {
            spec: spec.clone(),
            vs,
            layers,
            classes,
        };
        model.apply_trainability();
        Ok(model)
    }

    /// Turns gradients off for the frozen layers of every backbone, on for the others, as
    /// the description says.
    fn apply_trainability(&self) {
        let variables = self.vs.variables();
        for layer in &self.spec.layers {
            let LayerSpec::Backbone(backbone) = &layer.spec else {
                continue;
            };
            let prefix = format!("{}.", layer.name);
            for (name, var) in &variables {
                if let Some(key) = name.strip_prefix(&prefix) {
                    let _ = var.set_requires_grad(backbone.is_trainable(key));
                }
            }
        }
    }

    /// Changes which layers of the backbone train: `change` gets its description. Fails
    /// when the model has no backbone or `change` fails; the optimizer must be rebuilt
    /// after (as Keras recompiles).
    pub fn set_backbone_trainability(
        &mut self,
        change: impl FnOnce(&mut BackboneSpec) -> Result<()>,
    ) -> Result<()> {
        let backbone = self
            .spec
            .layers
            .iter_mut()
            .find_map(|l| match &mut l.spec {
                LayerSpec::Backbone(b) => Some(b),
                _ => None,
            })
            .ok_or_else(|| Error::InvalidConfig("the model has no pretrained backbone".into()))?;
        change(backbone)?;
        self.apply_trainability();
        Ok(())
    }

    /// Number of values that get gradients.
    pub fn trainable_param_count(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .filter(|t| t.requires_grad())
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// The architecture.
    pub fn spec(&self) -> &Sequential {
        &self.spec
    }

    /// Where the parameters live.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The parameters.
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    /// The parameters, mutably (to change their precision or device, or load weights).
    pub fn var_store_mut(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    /// Class names, indexed by the model's output (`"0"`, `"1"`, ... until set).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Names the classes; their count must match the output.
    pub fn set_classes(&mut self, classes: Vec<String>) -> Result<()> {
        if classes.len() != self.classes.len() {
            return Err(Error::InvalidConfig(format!(
                "the model has {} classes, {} names given",
                self.classes.len(),
                classes.len()
            )));
        }
        self.classes = classes;
        Ok(())
    }

    /// The loss that matches the model's output: sparse categorical crossentropy after a
    /// softmax, binary crossentropy after a sigmoid.
    pub fn loss(&self) -> Result<Loss> {
        Loss::for_output(self.spec.output_activation())
    }

    /// Number of values in the parameters.
    pub fn param_count(&self) -> i64 {
        self.vs.variables().values().map(|t| t.numel() as i64).sum()
    }

    /// Fails unless `data`'s images have the shape the model takes.
    pub fn check_input(&self, data: &crate::data::Dataset) -> Result<()> {
        if data.image_shape() != self.spec.input_shape {
            return Err(Error::InvalidConfig(format!(
                "the model takes images of shape {:?}, the data has {:?}",
                self.spec.input_shape,
                data.image_shape()
            )));
        }
        Ok(())
    }

    /// Logits for a batch `(B, C, H, W)` of images as stored (bytes or floats).
    pub fn forward(&self, images: &Tensor, train: bool) -> Tensor {
        self.layers
            .iter()
            .fold(images.shallow_clone(), |xs, layer| {
                layer.forward(&xs, train)
            })
    }

    /// The output of the layer named `last` for a batch of images: the layers up to and
    /// including it, in inference mode (for example a backbone's features).
    pub fn forward_through(&self, images: &Tensor, last: &str) -> Result<Tensor> {
        let count = self
            .spec
            .layers
            .iter()
            .position(|l| l.name == last)
            .ok_or_else(|| Error::InvalidConfig(format!("the model has no layer `{last}`")))?
            + 1;
        Ok(self.layers[..count]
            .iter()
            .fold(images.shallow_clone(), |xs, layer| {
                layer.forward(&xs, false)
            }))
    }

    /// Copies the parameters the two models share by name from `other`: all of a head's
    /// into the whole model it was cut from, or back. Fails, copying nothing, unless the
    /// names of one model are all in the other with the same shapes.
    pub fn copy_parameters_from(&mut self, other: &Model) -> Result<()> {
        let mine = self.vs.variables();
        let theirs = other.vs.variables();
        let shared: Vec<&String> = theirs.keys().filter(|n| mine.contains_key(*n)).collect();
        let nested = shared.len() == mine.len().min(theirs.len());
        if !nested || shared.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "models `{}` and `{}` do not nest: cannot copy parameters between them",
                self.spec.name, other.spec.name
            )));
        }
        if let Some(name) = shared
            .iter()
            .find(|n| mine[**n].size() != theirs[**n].size())
        {
            return Err(Error::InvalidConfig(format!(
                "`{name}` is {:?} in `{}` and {:?} in `{}`",
                mine[*name].size(),
                self.spec.name,
                theirs[*name].size(),
                other.spec.name
            )));
        }
        tch::no_grad(|| {
            for name in shared {
                mine[name].shallow_clone().copy_(&theirs[name]);
            }
        });
        Ok(())
    }

    /// Class probabilities for `images`, computed in batches of `batch_size` without
    /// gradients: `(N, classes)` after a softmax, `(N, 1)` after a sigmoid.
    pub fn predict(&self, images: &Tensor, batch_size: usize) -> Tensor {
        let activation = self.spec.output_activation();
        let _guard = tch::no_grad_guard();
        let n = images.size()[0];
        let step = batch_size.max(1) as i64;
        let parts: Vec<Tensor> = (0..n)
            .step_by(step as usize)
            .map(|start| {
                let batch = images
                    .narrow(0, start, step.min(n - start))
                    .to_device(self.device());
                activation.apply(&self.forward(&batch, false))
            })
            .collect();
        Tensor::cat(&parts, 0)
    }

    /// Saves the parameters to `weights` (safetensors) and the architecture and class names
    /// to the same path with a `.json` extension. Both writes are atomic.
    pub fn save(&self, weights: &Path) -> Result<()> {
        let file = ModelFile {
            format: MODEL_FORMAT.to_owned(),
            version: 1,
            architecture: self.spec.clone(),
            classes: self.classes.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::Json {
            path: weights.into(),
            source: e,
        })?;
        save_weights(&self.vs, weights)?;
        write_atomic(&description_path(weights), &json)
    }

    /// Loads a model saved by [`Model::save`] onto `device`. Every parameter is checked
    /// against the architecture.
    pub fn load(weights: &Path, device: Device) -> Result<Model> {
        let json_path = description_path(weights);
        let text = std::fs::read_to_string(&json_path).map_err(|e| Error::io(&json_path, e))?;
        let file: ModelFile = serde_json::from_str(&text).map_err(|e| Error::Json {
            path: json_path.clone(),
            source: e,
        })?;
        if file.format != MODEL_FORMAT {
            return Err(Error::invalid_data(
                &json_path,
                format!("format is `{}`, expected `{MODEL_FORMAT}`", file.format),
            ));
        }
        let mut model = Model::new(&file.architecture, device, 0)?;
        load_weights(&mut model.vs, weights)?;
        model
            .set_classes(file.classes)
            .map_err(|e| Error::invalid_data(&json_path, e.to_string()))?;
        Ok(model)
    }
}

/// `model.safetensors` -> `model.json`.
pub fn description_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mnist_convnet;
    use tch::Kind;

    #[test]
    fn built_parameters_match_the_description() {
        let model = Model::new(&mnist_convnet(), Device::Cpu, 0).unwrap();
        assert_eq!(model.param_count(), 104_202);
        let names: Vec<String> = {
            let mut v: Vec<_> = model.var_store().variables().into_keys().collect();
            v.sort();
            v
        };
        assert_eq!(names[0], "conv2d.bias");
        assert!(names.contains(&"dense.weight".to_owned()));
        let logits = model.forward(
            &Tensor::zeros([3, 1, 28, 28], (Kind::Uint8, Device::Cpu)),
            false,
        );
        assert_eq!(logits.size(), [3, 10]);
    }

    #[test]
    fn same_seed_same_parameters() {
        let a = Model::new(&mnist_convnet(), Device::Cpu, 7).unwrap();
        let b = Model::new(&mnist_convnet(), Device::Cpu, 7).unwrap();
        let c = Model::new(&mnist_convnet(), Device::Cpu, 8).unwrap();
        let (va, vb, vc) = (
            a.var_store().variables(),
            b.var_store().variables(),
            c.var_store().variables(),
        );
        assert!(va["dense.weight"].equal(&vb["dense.weight"]));
        assert!(!va["dense.weight"].equal(&vc["dense.weight"]));
    }

    #[test]
    fn predict_returns_probabilities() {
        let model = Model::new(&mnist_convnet(), Device::Cpu, 0).unwrap();
        let images = Tensor::randint(256, [5, 1, 28, 28], (Kind::Uint8, Device::Cpu));
        let probs = model.predict(&images, 2);
        assert_eq!(probs.size(), [5, 10]);
        let sums = probs.sum_dim_intlist(1, false, Kind::Float);
        assert!(sums.allclose(
            &Tensor::ones([5], (Kind::Float, Device::Cpu)),
            1e-5,
            1e-6,
            false
        ));
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let mut model = Model::new(&mnist_convnet(), Device::Cpu, 3).unwrap();
        let classes: Vec<String> = (0..10).map(|d| format!("digit {d}")).collect();
        model.set_classes(classes.clone()).unwrap();
        model.save(&path).unwrap();
        assert!(dir.path().join("model.json").exists());
        let loaded = Model::load(&path, Device::Cpu).unwrap();
        assert_eq!(loaded.spec(), model.spec());
        assert_eq!(loaded.classes(), classes.as_slice());
        let images = Tensor::randint(256, [4, 1, 28, 28], (Kind::Uint8, Device::Cpu));
        assert!(loaded.predict(&images, 4).equal(&model.predict(&images, 4)));
    }

    #[test]
    fn loading_into_another_architecture_names_the_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        Model::new(&mnist_convnet(), Device::Cpu, 3)
            .unwrap()
            .save(&path)
            .unwrap();
        let json = std::fs::read_to_string(dir.path().join("model.json")).unwrap();
        std::fs::write(
            dir.path().join("model.json"),
            json.replace("\"units\": 10", "\"units\": 9"),
        )
        .unwrap();
        let err = Model::load(&path, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("wrong shape: dense.weight"), "{err}");
    }
}
