//! MobileNetV2 (Sandler et al., 2018) as torchvision builds it: inverted residual blocks of
//! depthwise convolutions, batch norm (eps 1e-5) and ReLU6, with its 1000-class head.
//!
//! Parameters carry torchvision's names (`features.0.0.weight`, `features.1.conv.0.1.bias`,
//! `classifier.1.weight`), so its checkpoints load as they are.

use tch::{nn::Path, Tensor};

use super::backbone::KeyMap;
use crate::error::Result;
use crate::nn::conv_bn::{ConvBn, ConvBnSpec};
use crate::nn::inverted_residual::InvertedResidual;
use crate::nn::pooled_classifier::PooledClassifier;

/// Stages as (expansion t, output channels c, repeats n, first stride s).
const STAGES: [(i64, i64, usize, i64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Channels of the last feature map.
pub const FEATURE_CHANNELS: i64 = 1280;

/// The layers that can be frozen or unfrozen: `features.0` (stem) to `features.18` (the
/// last 1x1 convolution), then `classifier` when the head is built.
pub fn layer_names(include_top: bool) -> Vec<String> {
    let mut names: Vec<String> = (0..=18).map(|i| format!("features.{i}")).collect();
    if include_top {
        names.push("classifier".into());
    }
    names
}

/// The layer (see [`layer_names`]) a parameter belongs to.
pub fn layer_of(key: &str) -> String {
    let mut parts = key.split('.');
    match (parts.next(), parts.next()) {
        (Some("features"), Some(i)) => format!("features.{i}"),
        (Some(first), _) => first.to_owned(),
        _ => key.to_owned(),
    }
}

/// Feature map shape for an input `(3, h, w)`: five stride-2 stages, each rounding up.
pub fn feature_shape(input: &[i64]) -> Vec<i64> {
    let side = |n: i64| (0..5).fold(n, |n, _| (n + 1) / 2);
    vec![FEATURE_CHANNELS, side(input[1]), side(input[2])]
}

/// The model's name for a checkpoint's key: torchvision's names are the model's.
pub fn map_key(key: &str) -> KeyMap {
    if key.ends_with("num_batches_tracked") {
        KeyMap::Skip("batch-norm step counter, unused in inference mode")
    } else {
        KeyMap::To(key.to_owned())
    }
}

/// One block with torchvision's names under `vs` (`conv.0.0`, `conv.0.1`, ...).
fn inverted_residual(
    vs: &Path,
    cin: i64,
    cout: i64,
    stride: i64,
    t: i64,
) -> Result<InvertedResidual> {
    let conv = vs.sub("conv");
    let hidden = cin * t;
    // torchvision numbers the sub-modules in order, so the indices shift when the
    // expansion convolution is absent (t = 1).
    let (expand, first) = if t == 1 {
        (None, 0)
    } else {
        let c = conv.sub("0");
        (
            Some(ConvBn::new(
                &c.sub("0"),
                &c.sub("1"),
                ConvBnSpec::new(cin, hidden, 1, 1),
            )?),
            1,
        )
    };
    let dw = conv.sub(first.to_string());
    let depthwise = ConvBn::new(
        &dw.sub("0"),
        &dw.sub("1"),
        ConvBnSpec::new(hidden, hidden, 3, stride).depthwise(),
    )?;
    let project = ConvBn::new(
        &conv.sub((first + 1).to_string()),
        &conv.sub((first + 2).to_string()),
        ConvBnSpec::new(hidden, cout, 1, 1).linear(),
    )?;
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
pub struct MobileNetV2 {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    last: ConvBn,
    classifier: Option<PooledClassifier>,
}

impl MobileNetV2 {
    /// Creates the parameters under `vs`, with the 1000-class head when `include_top`.
    pub fn new(vs: &Path, include_top: bool) -> Result<MobileNetV2> {
        let features = vs.sub("features");
        let f0 = features.sub("0");
        let stem = ConvBn::new(&f0.sub("0"), &f0.sub("1"), ConvBnSpec::new(3, 32, 3, 2))?;
        let mut blocks = Vec::new();
        let mut cin = 32;
        for &(t, c, n, s) in &STAGES {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let index = blocks.len() + 1;
                blocks.push(inverted_residual(
                    &features.sub(index.to_string()),
                    cin,
                    c,
                    stride,
                    t,
                )?);
                cin = c;
            }
        }
        let f18 = features.sub("18");
        let last = ConvBn::new(
            &f18.sub("0"),
            &f18.sub("1"),
            ConvBnSpec::new(cin, FEATURE_CHANNELS, 1, 1),
        )?;
        let classifier = include_top
            .then(|| {
                PooledClassifier::new(&vs.sub("classifier").sub("1"), FEATURE_CHANNELS, 1000, 0.2)
            })
            .transpose()?;
        Ok(MobileNetV2 {
            stem,
            blocks,
            last,
            classifier,
        })
    }

    /// Features, or logits when the head was built (dropout 0.2 before it in training).
    pub fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = self
            .blocks
            .iter()
            .fold(self.stem.forward(xs), |xs, b| b.forward(&xs));
        let features = self.last.forward(&xs);
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
    fn counts_match_torchvision() {
        let vs = VarStore::new(Device::Cpu);
        let net = MobileNetV2::new(&vs.root(), true).unwrap();
        let trainable: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(trainable, 3_504_872);
        assert_eq!(all - trainable, 34_112);
        assert!(vs.variables().contains_key("features.1.conv.1.weight"));
        assert!(vs.variables().contains_key("features.2.conv.3.running_var"));
        let ys = tch::no_grad(|| {
            net.forward(
                &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
                false,
            )
        });
        assert_eq!(ys.size(), [1, 1000]);
        assert_eq!(feature_shape(&[3, 180, 180]), [1280, 6, 6]);
        assert_eq!(layer_of("features.17.conv.2.weight"), "features.17");
        assert_eq!(layer_of("classifier.1.bias"), "classifier");
    }
}
