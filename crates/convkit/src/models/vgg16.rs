//! VGG16's convolutional base (Simonyan and Zisserman, 2014), the chapter's pretrained
//! network: 13 3x3 convolutions in five blocks, each block ending in a 2x2 max pool.
//!
//! Parameters are named as Keras names the layers, `block1_conv1.weight` (OIHW) and
//! `block1_conv1.bias`. Checkpoints load from three namings: convkit's own, torchvision's
//! (`features.0.weight`, ...; its classifier is skipped) and the Flax/LPIPS file in
//! `shared/models` (`VGG16_0.Conv_0.kernel`, HWIO, transposed on load; its LPIPS heads
//! are skipped).

use tch::{nn::Path, Tensor};

use super::backbone_network::{BackboneInfo, BackboneNetwork, KeyMap, Preprocessing};
use crate::error::Result;
use crate::nn::init::glorot_uniform;
use crate::nn::{Layer, ParamCounts};

/// Output channels of each block, and its number of convolutions.
const BLOCKS: [(i64, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];

/// torchvision's index in `features` of each convolution, in order.
const TORCHVISION_INDEX: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];

/// The 13 convolution names, `block1_conv1` to `block5_conv3`: the layers that can be
/// frozen or unfrozen (the pools have no parameters).
pub fn layer_names() -> Vec<String> {
    BLOCKS
        .iter()
        .enumerate()
        .flat_map(|(b, &(_, convs))| (1..=convs).map(move |c| format!("block{}_conv{c}", b + 1)))
        .collect()
}

/// Feature map shape for an input `(3, h, w)`: `(512, h / 32, w / 32)`, each pool
/// rounding down (180 -> 5).
pub fn feature_shape(input: &[i64]) -> Vec<i64> {
    let side = |n: i64| (0..5).fold(n, |n, _| n / 2);
    vec![512, side(input[1]), side(input[2])]
}

/// The model's name for a checkpoint's key.
pub fn map_key(key: &str) -> KeyMap {
    let names = layer_names();
    if let Some(rest) = key.strip_prefix("VGG16_0.Conv_") {
        let (index, field) = rest.split_once('.').unwrap_or((rest, ""));
        if let Some(name) = index.parse::<usize>().ok().and_then(|i| names.get(i)) {
            return match field {
                "kernel" => KeyMap::Permuted(format!("{name}.weight"), [3, 2, 0, 1]),
                "bias" => KeyMap::To(format!("{name}.bias")),
                _ => KeyMap::Unknown,
            };
        }
        return KeyMap::Unknown;
    }
    if key.starts_with("NetLinLayer_") {
        return KeyMap::Skip("LPIPS head, not part of VGG16");
    }
    if key.starts_with("classifier.") {
        return KeyMap::Skip("VGG16's dense classifier; convkit uses the convolutional base");
    }
    if let Some(rest) = key.strip_prefix("features.") {
        let (index, field) = rest.split_once('.').unwrap_or((rest, ""));
        let position = index
            .parse::<usize>()
            .ok()
            .and_then(|i| TORCHVISION_INDEX.iter().position(|&t| t == i));
        return match (position, field) {
            (Some(p), "weight" | "bias") => KeyMap::To(format!("{}.{field}", names[p])),
            _ => KeyMap::Unknown,
        };
    }
    KeyMap::To(key.to_owned())
}

/// The built convolutional base.
///
/// # Shapes
/// - input: `(batch, 3, h, w)`, preprocessed (see [`super::Preprocessing`])
/// - output: `(batch, 512, h / 32, w / 32)`
#[derive(Debug)]
pub struct Vgg16 {
    /// Per block, its convolutions as (weight, bias).
    blocks: Vec<Vec<(Tensor, Tensor)>>,
}

impl Vgg16 {
    /// Creates the 26 parameter tensors under `vs` (Glorot-initialised until loaded).
    pub fn new(vs: &Path) -> Result<Vgg16> {
        let mut names = layer_names().into_iter();
        let mut in_channels = 3;
        let mut blocks = Vec::new();
        for &(out, convs) in &BLOCKS {
            let mut block = Vec::new();
            for _ in 0..convs {
                let name = names.next().expect("13 names");
                let layer = vs.sub(&name);
                let init = glorot_uniform(in_channels * 9, out * 9);
                block.push((
                    layer.f_var("weight", &[out, in_channels, 3, 3], init)?,
                    layer.f_zeros("bias", &[out])?,
                ));
                in_channels = out;
            }
            blocks.push(block);
        }
        Ok(Vgg16 { blocks })
    }

    /// The output of every block before its pool (relu1_2, relu2_2, relu3_3, relu4_3,
    /// relu5_3): what perceptual metrics such as LPIPS compare.
    pub fn block_outputs(&self, xs: &Tensor) -> Vec<Tensor> {
        let mut outputs: Vec<Tensor> = Vec::with_capacity(5);
        let mut xs = xs.shallow_clone();
        for (i, block) in self.blocks.iter().enumerate() {
            if i > 0 {
                xs = xs.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
            for (w, b) in block {
                xs = xs.conv2d(w, Some(b), [1, 1], [1, 1], [1, 1], 1).relu_();
            }
            outputs.push(xs.shallow_clone());
        }
        outputs
    }
}

impl Layer for Vgg16 {
    /// The feature map after the last pool.
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        let last = self.block_outputs(xs).pop().expect("five blocks");
        last.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
    }
}

/// VGG16's convolutional base as a backbone.
pub struct Vgg16Network;

impl BackboneNetwork for Vgg16Network {
    fn feature_shape(&self, input: &[i64]) -> Vec<i64> {
        feature_shape(input)
    }

    /// The 13 convolutions: `3 * 3 * in * out` kernel values and `out` biases each.
    fn layer_param_counts(&self, _include_top: bool) -> Vec<(String, ParamCounts)> {
        let mut in_channels = 3;
        let channels = BLOCKS
            .iter()
            .flat_map(|&(out, convs)| std::iter::repeat_n(out, convs));
        layer_names()
            .into_iter()
            .zip(channels)
            .map(|(name, out)| {
                let count = 9 * in_channels * out + out;
                in_channels = out;
                (name, ParamCounts::trainable(count))
            })
            .collect()
    }

    fn layer_of(&self, key: &str) -> String {
        key.split('.').next().unwrap_or(key).to_owned()
    }

    fn map_key(&self, key: &str) -> KeyMap {
        map_key(key)
    }

    fn build(&self, vs: &Path, _include_top: bool) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Vgg16::new(vs)?))
    }
}

/// Its row of the backbone table.
pub static BACKBONE: BackboneInfo = BackboneInfo {
    aliases: &[],
    description: "VGG16's convolutional base (14,714,688 parameters; no classifier in the weights)",
    weights_file: "vgg16_convbase_torchvision/vgg16_convbase.safetensors",
    preprocessing: Preprocessing::ImagenetMeanStd,
    input_size: 224,
    has_classifier: false,
    network: &Vgg16Network,
};

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn shapes_and_count_match_keras() {
        let vs = VarStore::new(Device::Cpu);
        let net = Vgg16::new(&vs.root()).unwrap();
        let count: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(count, 14_714_688);
        let declared: i64 = Vgg16Network
            .layer_param_counts(false)
            .iter()
            .map(|(_, c)| c.total())
            .sum();
        assert_eq!(declared, count);
        assert_eq!(vs.variables().len(), 26);
        assert_eq!(feature_shape(&[3, 180, 180]), [512, 5, 5]);
        assert_eq!(feature_shape(&[3, 150, 150]), [512, 4, 4]);
        let ys = tch::no_grad(|| {
            net.forward(
                &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
                false,
            )
        });
        assert_eq!(ys.size(), [1, 512, 2, 2]);
    }

    #[test]
    fn checkpoint_names_map_to_keras_names() {
        assert_eq!(
            map_key("VGG16_0.Conv_12.kernel"),
            KeyMap::Permuted("block5_conv3.weight".into(), [3, 2, 0, 1])
        );
        assert_eq!(
            map_key("features.5.bias"),
            KeyMap::To("block2_conv1.bias".into())
        );
        assert_eq!(map_key("features.4.weight"), KeyMap::Unknown);
        assert!(matches!(
            map_key("NetLinLayer_0.Conv_0.kernel"),
            KeyMap::Skip(_)
        ));
        assert_eq!(
            map_key("block1_conv1.weight"),
            KeyMap::To("block1_conv1.weight".into())
        );
    }
}
