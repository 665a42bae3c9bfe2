//! EfficientNet-Lite0 (Tan and Le, 2019; the Lite variant without squeeze-and-excitation,
//! with ReLU6), converted from Google's TensorFlow checkpoint: TensorFlow's `SAME` padding
//! and batch-norm eps 1e-3, with its 1000-class head.
//!
//! Parameters carry the names of the `efficientnet_pytorch` conversion (`_conv_stem.weight`,
//! `_blocks.3._depthwise_conv.weight`, `_fc.bias`), so its checkpoints load as they are.

use tch::{nn::Path, Tensor};

use super::backbone::KeyMap;
use crate::error::Result;
use crate::nn::conv_bn::{ConvBn, ConvBnSpec};
use crate::nn::inverted_residual::InvertedResidual;
use crate::nn::pooled_classifier::PooledClassifier;

/// Stages as (kernel, first stride, expansion, output channels, repeats); the stem gives
/// 32 channels.
const STAGES: [(i64, i64, i64, i64, usize); 7] = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
];

/// Channels of the last feature map.
pub const FEATURE_CHANNELS: i64 = 1280;

/// The layers that can be frozen or unfrozen: `stem`, `_blocks.0` to `_blocks.15`, `head`
/// (the last 1x1 convolution), then `_fc` when the classifier is built.
pub fn layer_names(include_top: bool) -> Vec<String> {
    let mut names = vec!["stem".to_owned()];
    names.extend((0..16).map(|i| format!("_blocks.{i}")));
    names.push("head".into());
    if include_top {
        names.push("_fc".into());
    }
    names
}

/// The layer (see [`layer_names`]) a parameter belongs to.
pub fn layer_of(key: &str) -> String {
    let mut parts = key.split('.');
    match (parts.next(), parts.next()) {
        (Some("_conv_stem" | "_bn0"), _) => "stem".into(),
        (Some("_conv_head" | "_bn1"), _) => "head".into(),
        (Some("_blocks"), Some(i)) => format!("_blocks.{i}"),
        (Some(first), _) => first.to_owned(),
        _ => key.to_owned(),
    }
}

/// Feature map shape for an input `(3, h, w)`: five stride-2 stages, each rounding up.
pub fn feature_shape(input: &[i64]) -> Vec<i64> {
    let side = |n: i64| (0..5).fold(n, |n, _| (n + 1) / 2);
    vec![FEATURE_CHANNELS, side(input[1]), side(input[2])]
}

/// The model's name for a checkpoint's key: the checkpoint's names are the model's.
pub fn map_key(key: &str) -> KeyMap {
    if key.ends_with("num_batches_tracked") {
        KeyMap::Skip("batch-norm step counter, unused in inference mode")
    } else {
        KeyMap::To(key.to_owned())
    }
}

/// One block (MBConv without squeeze-and-excitation) with the checkpoint's names under `vs`.
fn mb_conv(
    vs: &Path,
    cin: i64,
    cout: i64,
    kernel: i64,
    stride: i64,
    expansion: i64,
) -> Result<InvertedResidual> {
    let hidden = cin * expansion;
    let expand = if expansion == 1 {
        None
    } else {
        let spec = ConvBnSpec::new(cin, hidden, 1, 1).tensorflow();
        Some(ConvBn::new(&vs.sub("_expand_conv"), &vs.sub("_bn0"), spec)?)
    };
    let spec = ConvBnSpec::new(hidden, hidden, kernel, stride)
        .depthwise()
        .tensorflow();
    let depthwise = ConvBn::new(&vs.sub("_depthwise_conv"), &vs.sub("_bn1"), spec)?;
    let spec = ConvBnSpec::new(hidden, cout, 1, 1).linear().tensorflow();
    let project = ConvBn::new(&vs.sub("_project_conv"), &vs.sub("_bn2"), spec)?;
    Ok(InvertedResidual::new(
        expand,
        depthwise,
        project,
        stride == 1 && cin == cout,
    ))
}

/// The built network.
///
/// # Shapes
/// - input: `(batch, 3, h, w)`, preprocessed (see [`super::Preprocessing`])
/// - output: features `(batch, 1280, ceil(h / 32), ceil(w / 32))`, or logits
///   `(batch, 1000)` with the head
#[derive(Debug)]
pub struct EfficientNetLite0 {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    head: ConvBn,
    classifier: Option<PooledClassifier>,
}

impl EfficientNetLite0 {
    /// Creates the parameters under `vs`, with the 1000-class head when `include_top`.
    pub fn new(vs: &Path, include_top: bool) -> Result<EfficientNetLite0> {
        let stem = ConvBn::new(
            &vs.sub("_conv_stem"),
            &vs.sub("_bn0"),
            ConvBnSpec::new(3, 32, 3, 2).tensorflow(),
        )?;
        let mut blocks = Vec::new();
        let mut cin = 32;
        for &(kernel, stride, expansion, cout, repeats) in &STAGES {
            for i in 0..repeats {
                let stride = if i == 0 { stride } else { 1 };
                let path = vs.sub("_blocks").sub(blocks.len().to_string());
                blocks.push(mb_conv(&path, cin, cout, kernel, stride, expansion)?);
                cin = cout;
            }
        }
        let head = ConvBn::new(
            &vs.sub("_conv_head"),
            &vs.sub("_bn1"),
            ConvBnSpec::new(cin, FEATURE_CHANNELS, 1, 1).tensorflow(),
        )?;
        let classifier = include_top
            .then(|| PooledClassifier::new(&vs.sub("_fc"), FEATURE_CHANNELS, 1000, 0.2))
            .transpose()?;
        Ok(EfficientNetLite0 {
            stem,
            blocks,
            head,
            classifier,
        })
    }

    /// Features, or logits when the head was built (dropout 0.2 before it in training).
    pub fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = self
            .blocks
            .iter()
            .fold(self.stem.forward(xs), |xs, b| b.forward(&xs));
        let features = self.head.forward(&xs);
        match &self.classifier {
            None => features,
            Some(classifier) => classifier.forward(&features, train),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn counts_match_the_checkpoint() {
        let vs = VarStore::new(Device::Cpu);
        let net = EfficientNetLite0::new(&vs.root(), true).unwrap();
        let trainable: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(trainable, 4_652_008);
        assert_eq!(all - trainable, 42_016);
        assert!(vs
            .variables()
            .contains_key("_blocks.15._project_conv.weight"));
        assert!(!vs.variables().contains_key("_blocks.0._expand_conv.weight"));
        let ys = tch::no_grad(|| {
            net.forward(
                &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
                false,
            )
        });
        assert_eq!(ys.size(), [1, 1000]);
        assert_eq!(layer_of("_bn1.weight"), "head");
        assert_eq!(layer_of("_blocks.7._bn2.bias"), "_blocks.7");
    }
}
