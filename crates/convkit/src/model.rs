//! A built, trainable model: a [`Sequential`] description plus its parameters.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Device, Tensor};

use crate::atomic_file::write_atomic;
use crate::data::image_folder::{ImageDecoding, ImageOptions};
use crate::error::{Error, Result};
use crate::models::pretrained::load_backbone_weights;
use crate::models::BackboneSpec;
use crate::models::{LayerSpec, Sequential};
use crate::nn::{Activation, Layer, Loss};
use crate::runtime::{contiguous_in, Autocast, MemoryFormat, Precision};
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
    /// How its images were decoded in training (absent in models saved before convkit
    /// recorded it, and for models not trained on image files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding: Option<ImageDecoding>,
}

const MODEL_FORMAT: &str = "convkit.sequential";

/// A sequential model with its parameters on a device.
///
/// The layers compute *logits*: a final softmax or sigmoid in the description is left out
/// of [`Model::forward`] (the loss works on logits, which is exact and stable) and applied
/// by [`Model::predict`].
///
/// How it computes is the model's own setting, used by training and inference alike: its
/// [`Precision`] (fp32 by default, or bf16 mixed precision) and the [`MemoryFormat`] of its
/// kernels and feature maps (channels_last by default). Neither changes the parameters'
/// values or the checkpoint format.
#[derive(Debug)]
pub struct Model {
    spec: Sequential,
    vs: VarStore,
    layers: Vec<Box<dyn Layer>>,
    classes: Vec<String>,
    decoding: Option<ImageDecoding>,
    precision: Precision,
    memory_format: MemoryFormat,
}

impl Model {
    /// Builds `spec` on `device` with freshly initialised parameters, drawn from libtorch's
    /// generator seeded with `seed`.
    pub fn new(spec: &Sequential, device: Device, seed: u64) -> Result<Model> {
        spec.validate()?;
        check_size(spec)?;
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
        let mut model = Model {
            spec: spec.clone(),
            vs,
            layers,
            classes,
            decoding: None,
            precision: Precision::Fp32,
            memory_format: MemoryFormat::Contiguous,
        };
        model.apply_trainability();
        model.set_memory_format(MemoryFormat::default_for(device))?;
        Ok(model)
    }

    /// The precision the model computes in: [`Precision::Fp32`] or [`Precision::Bf16`]
    /// (never `Auto`, which [`Model::set_precision`] resolves).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Makes the model compute in `precision` from now on, in training and inference;
    /// `Auto` becomes bf16 where the device runs it natively, else fp32. Returns the
    /// precision in force. Parameters and optimizer state stay fp32 either way.
    pub fn set_precision(&mut self, precision: Precision) -> Precision {
        self.precision = precision.resolve(self.device());
        self.precision
    }

    /// The memory format of the kernels and feature maps.
    pub fn memory_format(&self) -> MemoryFormat {
        self.memory_format
    }

    /// How its images were decoded in training, when that is known.
    pub fn decoding(&self) -> Option<ImageDecoding> {
        self.decoding
    }

    /// Records how its images are decoded; saved with the model.
    pub fn set_decoding(&mut self, decoding: ImageDecoding) {
        self.decoding = Some(decoding);
    }

    /// How to decode an image for this model: its input size, and its decoding settings
    /// (`fallback` when the model does not record them).
    pub fn image_options(&self, fallback: ImageDecoding) -> ImageOptions {
        let shape = &self.spec.input_shape;
        let (h, w) = (shape[shape.len() - 2] as u32, shape[shape.len() - 1] as u32);
        ImageOptions::new((h, w), self.decoding.unwrap_or(fallback))
    }

    /// Lays the 4-D parameters (convolution kernels) and every image batch out in `format`
    /// from now on. The values do not change, and checkpoints are written in the standard
    /// layout whatever the format.
    pub fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        for (_, mut var) in self.vs.variables() {
            if var.dim() == 4 {
                let laid_out = contiguous_in(&var, format)?;
                var.set_data(&laid_out);
            }
        }
        self.memory_format = format;
        Ok(())
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

    /// The model's backbone layer, if it has one: its name and description.
    pub fn backbone(&self) -> Option<(&str, &BackboneSpec)> {
        self.spec()
            .layers
            .iter()
            .find_map(|layer| match &layer.spec {
                LayerSpec::Backbone(spec) => Some((layer.name.as_str(), spec)),
                _ => None,
            })
    }

    /// Loads ImageNet weights into the model's backbone from `path` (see
    /// [`load_backbone_weights`]).
    pub fn load_pretrained(&mut self, path: &Path) -> Result<()> {
        let (name, spec) = self
            .backbone()
            .map(|(n, s)| (n.to_owned(), s.clone()))
            .ok_or_else(|| Error::InvalidConfig("the model has no pretrained backbone".into()))?;
        load_backbone_weights(self.var_store_mut(), &format!("{name}."), &spec, path)
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
    pub fn check_input(&self, data: &dyn crate::data::ImageDataset) -> Result<()> {
        if data.image_shape() != self.spec.input_shape {
            return Err(Error::InvalidConfig(format!(
                "the model takes images of shape {:?}, the data has {:?}",
                self.spec.input_shape,
                data.image_shape()
            )));
        }
        Ok(())
    }

    /// Logits for a batch `(B, C, H, W)` of images as stored (bytes or floats), computed
    /// in the model's precision and memory format; the logits are fp32.
    pub fn forward(&self, images: &Tensor, train: bool) -> Tensor {
        self.run_layers(&self.layers, images, train)
    }

    /// `layers` on `images`, in the model's precision and memory format, with an fp32
    /// result.
    fn run_layers(&self, layers: &[Box<dyn Layer>], images: &Tensor, train: bool) -> Tensor {
        // Only the CPU and CUDA have autocast; elsewhere everything is fp32 anyway.
        let _autocast = Autocast::new(self.device(), self.precision).ok();
        let xs =
            contiguous_in(images, self.memory_format).unwrap_or_else(|_| images.shallow_clone());
        let ys = layers
            .iter()
            .fold(xs, |xs, layer| layer.forward(&xs, train));
        match ys.kind() {
            tch::Kind::BFloat16 | tch::Kind::Half => ys.to_kind(tch::Kind::Float),
            _ => ys,
        }
    }

    /// The output of the layer named `last` for a batch of images: the layers up to and
    /// including it, at inference (for example a backbone's features), as fp32.
    pub fn forward_through(&self, images: &Tensor, last: &str) -> Result<Tensor> {
        let count = self
            .spec
            .layers
            .iter()
            .position(|l| l.name == last)
            .ok_or_else(|| Error::InvalidConfig(format!("the model has no layer `{last}`")))?
            + 1;
        Ok(self.run_layers(&self.layers[..count], images, false))
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

    /// Class probabilities for `images`, computed in batches of `batch_size` in inference
    /// mode: `(N, classes)` after a softmax, `(N, 1)` after a sigmoid.
    pub fn predict(&self, images: &Tensor, batch_size: usize) -> Tensor {
        self.predict_with(images, batch_size, |batch| Ok(self.forward(batch, false)))
            .expect("a plain forward pass reports no error")
    }

    /// Class probabilities from `logits` of each batch of `batch_size` images (moved to the
    /// model's device), in inference mode: [`Model::predict`]'s loop, for other ways of
    /// computing the logits (test-time augmentation).
    pub(crate) fn predict_with(
        &self,
        images: &Tensor,
        batch_size: usize,
        logits: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let activation = self.spec.output_activation();
        let n = images.size().first().copied().unwrap_or(0);
        let step = batch_size.max(1) as i64;
        let parts = crate::runtime::inference_mode(|| {
            (0..n)
                .step_by(step as usize)
                .map(|start| {
                    let batch = images
                        .narrow(0, start, step.min(n - start))
                        .to_device(self.device());
                    Ok(activation.apply(&logits(&batch)?))
                })
                .collect::<Result<Vec<Tensor>>>()
        })?;
        // Joined outside inference mode: a normal tensor, usable in anything, training too.
        Ok(Tensor::cat(&parts, 0))
    }

    /// Saves the parameters to `weights` (safetensors) and the architecture and class names
    /// to the same path with a `.json` extension. Both writes are atomic.
    pub fn save(&self, weights: &Path) -> Result<()> {
        let file = ModelFile {
            format: MODEL_FORMAT.to_owned(),
            version: 1,
            architecture: self.spec.clone(),
            classes: self.classes.clone(),
            decoding: self.decoding,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::Json {
            path: weights.into(),
            reason: e,
        })?;
        // The description first: a stop between the two writes leaves no weights file
        // without its description (the first save), or a description that still fits.
        write_atomic(&description_path(weights), &json)?;
        save_weights(&self.vs, weights)
    }

    /// Loads a model saved by [`Model::save`] onto `device`. Every parameter is checked
    /// against the architecture.
    pub fn load(weights: &Path, device: Device) -> Result<Model> {
        let json_path = description_path(weights);
        let text = std::fs::read_to_string(&json_path).map_err(|e| Error::io(&json_path, e))?;
        let file: ModelFile = serde_json::from_str(&text).map_err(|e| Error::Json {
            path: json_path.clone(),
            reason: e,
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
        model.decoding = file.decoding;
        Ok(model)
    }
}

/// The most parameters a model may have (VGG16 whole has 138 million): a description
/// that claims more is refused before anything is allocated.
const MAX_PARAMS: i64 = 1_000_000_000;

/// The largest image side a model may take.
const MAX_INPUT_SIDE: i64 = 16_384;

/// Refuses descriptions too large to be real models (a corrupt or hostile `model.json`).
fn check_size(spec: &Sequential) -> Result<()> {
    if spec.input_shape.iter().any(|&d| d > MAX_INPUT_SIDE) {
        return Err(Error::InvalidConfig(format!(
            "input shape {:?}: a side above {MAX_INPUT_SIDE} is not supported",
            spec.input_shape
        )));
    }
    let params = spec.param_count()?;
    if params > MAX_PARAMS {
        return Err(Error::InvalidConfig(format!(
            "the architecture has {params} parameters, more than the {MAX_PARAMS} convkit builds"
        )));
    }
    Ok(())
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
    fn the_decoding_travels_with_the_saved_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let mut model = Model::new(&mnist_convnet(), Device::Cpu, 0).unwrap();
        model.save(&path).unwrap();
        let json = std::fs::read_to_string(description_path(&path)).unwrap();
        assert!(
            !json.contains("decoding"),
            "nothing recorded, nothing written: {json}"
        );
        assert_eq!(Model::load(&path, Device::Cpu).unwrap().decoding(), None);
        let decoding = ImageDecoding {
            crop_to_aspect_ratio: true,
            antialias: true,
        };
        model.set_decoding(decoding);
        model.save(&path).unwrap();
        let loaded = Model::load(&path, Device::Cpu).unwrap();
        assert_eq!(loaded.decoding(), Some(decoding));
        let options = loaded.image_options(ImageDecoding::default());
        assert_eq!(options.size, (28, 28));
        assert!(options.crop_to_aspect_ratio && options.antialias);
    }

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
    fn channels_last_computes_the_same_and_saves_the_same_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut nchw = Model::new(&mnist_convnet(), Device::Cpu, 5).unwrap();
        nchw.set_memory_format(MemoryFormat::Contiguous).unwrap();
        let nhwc = Model::new(&mnist_convnet(), Device::Cpu, 5).unwrap();
        assert_eq!(nhwc.memory_format(), MemoryFormat::ChannelsLast);
        let kernel = &nhwc.var_store().variables()["conv2d_1.weight"];
        assert!(crate::runtime::is_contiguous_in(
            kernel,
            MemoryFormat::ChannelsLast
        ));
        let images = Tensor::randint(256, [6, 1, 28, 28], (Kind::Uint8, Device::Cpu));
        let (a, b) = (nchw.forward(&images, false), nhwc.forward(&images, false));
        let diff = (&a - &b).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "channels_last logits differ by {diff}");
        let (pa, pb) = (
            dir.path().join("a.safetensors"),
            dir.path().join("b.safetensors"),
        );
        nchw.save(&pa).unwrap();
        nhwc.save(&pb).unwrap();
        assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
        // and a channels_last model loads the standard file
        let loaded = Model::load(&pa, Device::Cpu).unwrap();
        assert_eq!(loaded.memory_format(), MemoryFormat::ChannelsLast);
        assert!(loaded
            .forward(&images, false)
            .allclose(&b, 1e-5, 1e-5, false));
    }

    #[test]
    fn inference_mode_outputs_equal_no_grad_outputs() {
        let model = Model::new(&mnist_convnet(), Device::Cpu, 4).unwrap();
        let images = Tensor::randint(256, [7, 1, 28, 28], (Kind::Uint8, Device::Cpu));
        let expected = tch::no_grad(|| Activation::Softmax.apply(&model.forward(&images, false)));
        let got = model.predict(&images, 7);
        assert!(got.equal(&expected));
        // predict hands back a normal tensor, fit for anything
        assert!(!crate::runtime::InferenceMode::is_inference_tensor(&got));
    }

    #[test]
    fn bf16_logits_are_fp32_and_close_to_fp32_logits() {
        let mut model = Model::new(&mnist_convnet(), Device::Cpu, 4).unwrap();
        let images = Tensor::randint(256, [8, 1, 28, 28], (Kind::Uint8, Device::Cpu));
        let fp32 = model.forward(&images, false);
        assert_eq!(model.set_precision(Precision::Bf16), Precision::Bf16);
        let bf16 = model.forward(&images, false);
        assert_eq!(bf16.kind(), Kind::Float);
        let scale = fp32.abs().max().double_value(&[]);
        let diff = (&bf16 - &fp32).abs().max().double_value(&[]);
        assert!(diff > 0.0 && diff < 0.02 * scale, "{diff} of {scale}");
        // parameters stay fp32
        assert!(model
            .var_store()
            .variables()
            .values()
            .all(|t| t.kind() == Kind::Float));
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

    /// Models that start with augmentation layers.
    mod augmented {
        use super::*;
        use crate::augment::{
            FlipMode, RandomContrastSpec, RandomCropSpec, RandomFlipSpec, RandomRotationSpec,
            RandomTranslationSpec, RandomZoomSpec,
        };

        fn augmented_model() -> Sequential {
            Sequential::new("m", [3, 8, 8])
                .add(LayerSpec::RandomFlip(RandomFlipSpec::new(
                    FlipMode::Horizontal,
                )))
                .add(LayerSpec::RandomRotation(RandomRotationSpec::new(0.1)))
                .add(LayerSpec::RandomZoom(RandomZoomSpec::new(0.2)))
                .add(LayerSpec::RandomTranslation(RandomTranslationSpec::new(
                    0.1, 0.1,
                )))
                .add(LayerSpec::RandomContrast(RandomContrastSpec::new(0.2)))
                .add(LayerSpec::RandomCrop(RandomCropSpec::new(6, 7)))
                .rescaling(1.0 / 255.0)
                .conv2d(4, 3, Activation::Relu)
                .flatten()
                .dense(2, Activation::Softmax)
        }

        #[test]
        fn a_sequential_with_augmentation_validates_and_has_the_right_shapes() {
            let spec = augmented_model();
            spec.validate().unwrap();
            let shapes = spec.output_shapes().unwrap();
            for shape in &shapes[..5] {
                assert_eq!(shape, &[3, 8, 8]);
            }
            assert_eq!(shapes[5], [3, 6, 7]);
            assert_eq!(shapes[6], [3, 6, 7]);
            assert_eq!(shapes[7], [4, 4, 5]);
            assert_eq!(spec.output_shape().unwrap(), [2]);
            assert!(spec.layer_param_counts().unwrap()[..7]
                .iter()
                .all(|c| c.total() == 0));
            let json = serde_json::to_string_pretty(&spec).unwrap();
            assert_eq!(serde_json::from_str::<Sequential>(&json).unwrap(), spec);
        }

        #[test]
        fn a_built_model_augments_byte_batches_in_training_only() {
            let model = Model::new(&augmented_model(), Device::Cpu, 3).unwrap();
            let images = Tensor::randint(256, [5, 3, 8, 8], (Kind::Uint8, Device::Cpu));
            let train = tch::no_grad(|| model.forward(&images, true));
            assert_eq!(train.size(), [5, 2]);
            let first = tch::no_grad(|| model.forward(&images, false));
            let again = tch::no_grad(|| model.forward(&images, false));
            assert_eq!(first.size(), [5, 2]);
            assert!(first.equal(&again));
        }

        #[test]
        fn invalid_settings_fail_validation_with_the_layer_name() {
            let spec = Sequential::new("m", [3, 8, 8])
                .add(LayerSpec::RandomFlip(RandomFlipSpec::new(
                    FlipMode::Vertical,
                )))
                .add(LayerSpec::RandomRotation(RandomRotationSpec::new((
                    0.2, 0.1,
                ))));
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains("random_rotation"), "{err}");
            assert!(Model::new(&spec, Device::Cpu, 0).is_err());
        }
    }
}
