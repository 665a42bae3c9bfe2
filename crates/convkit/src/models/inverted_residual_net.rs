//! The network that MobileNetV2 and EfficientNet-Lite0 share: a strided stem convolution,
//! stages of inverted residual blocks, a 1x1 convolution to the feature channels, and an
//! optional pooled ImageNet classifier. A network is a stage table, a convolution style and
//! a [`KeyScheme`] that names its parameters as its checkpoints do.

use tch::{nn::Path, Tensor};

use super::backbone_network::{BackboneNetwork, KeyMap};
use crate::error::Result;
use crate::nn::conv_bn::{ConvBn, ConvBnSpec};
use crate::nn::inverted_residual::InvertedResidual;
use crate::nn::pooled_classifier::PooledClassifier;
use crate::nn::{Layer, ParamCounts};

/// Repeated blocks with the same output channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Side of the depthwise kernel.
    pub kernel: i64,
    /// Stride of the stage's first block (the others have 1).
    pub stride: i64,
    /// Hidden channels per input channel (1: no expansion convolution).
    pub expansion: i64,
    /// Output channels.
    pub channels: i64,
    /// Number of blocks.
    pub repeats: usize,
}

impl Stage {
    /// A stage of `repeats` blocks to `channels`, the first with `stride`.
    pub const fn new(
        kernel: i64,
        stride: i64,
        expansion: i64,
        channels: i64,
        repeats: usize,
    ) -> Stage {
        Stage {
            kernel,
            stride,
            expansion,
            channels,
            repeats,
        }
    }
}

/// How the convolutions compute, after the framework the weights come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvStyle {
    /// PyTorch's: symmetric padding, batch-norm eps 1e-5.
    Torchvision,
    /// TensorFlow's: `SAME` padding, batch-norm eps 1e-3.
    TensorFlow,
}

/// Checkpoint names of a convolution's module and of the batch norm after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvBnKeys {
    /// The convolution (its kernel is `<conv>.weight`).
    pub conv: String,
    /// The batch norm (`<bn>.weight`, `<bn>.running_mean`, ...).
    pub bn: String,
}

impl ConvBnKeys {
    /// Keys `conv` and `bn`.
    pub fn new(conv: impl Into<String>, bn: impl Into<String>) -> Self {
        ConvBnKeys {
            conv: conv.into(),
            bn: bn.into(),
        }
    }
}

/// Checkpoint names of one block's convolutions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockKeys {
    /// The 1x1 expansion, absent when the expansion is 1.
    pub expand: Option<ConvBnKeys>,
    /// The depthwise convolution.
    pub depthwise: ConvBnKeys,
    /// The linear 1x1 projection.
    pub project: ConvBnKeys,
}

/// How a network's checkpoints name its parameters and its freezable layers.
pub trait KeyScheme: Sync {
    /// The stem convolution.
    fn stem(&self) -> ConvBnKeys;
    /// Block `index` (from 0, over all stages); `expands` says whether it has an expansion.
    fn block(&self, index: usize, expands: bool) -> BlockKeys;
    /// The last 1x1 convolution.
    fn head(&self) -> ConvBnKeys;
    /// The classifier's dense layer.
    fn classifier(&self) -> String;
    /// The freezable layers, input to output, for a network of `blocks` blocks.
    fn layer_names(&self, blocks: usize, include_top: bool) -> Vec<String>;
    /// The layer (one of [`KeyScheme::layer_names`]) that the parameter `key` belongs to.
    fn layer_of(&self, key: &str) -> String;
}

/// An inverted-residual network: its tables and its names.
pub struct InvertedResidualNet {
    /// Output channels of the 3x3, stride-2 stem.
    pub stem_channels: i64,
    /// The stages, input to output.
    pub stages: &'static [Stage],
    /// Channels of the last feature map.
    pub feature_channels: i64,
    /// Dropout before the classifier, in training.
    pub classifier_dropout: f64,
    /// Padding and batch-norm epsilon.
    pub style: ConvStyle,
    /// The checkpoint's names.
    pub keys: &'static dyn KeyScheme,
}

/// One block's settings and names (the ONNX export reads them too).
pub(crate) struct BlockPlan {
    pub(crate) keys: BlockKeys,
    pub(crate) expand: Option<ConvBnSpec>,
    pub(crate) depthwise: ConvBnSpec,
    pub(crate) project: ConvBnSpec,
    pub(crate) residual: bool,
}

impl InvertedResidualNet {
    fn styled(&self, spec: ConvBnSpec) -> ConvBnSpec {
        match self.style {
            ConvStyle::Torchvision => spec,
            ConvStyle::TensorFlow => spec.tensorflow(),
        }
    }

    pub(crate) fn stem_spec(&self) -> ConvBnSpec {
        self.styled(ConvBnSpec::new(3, self.stem_channels, 3, 2))
    }

    fn last_channels(&self) -> i64 {
        self.stages
            .last()
            .map_or(self.stem_channels, |stage| stage.channels)
    }

    pub(crate) fn head_spec(&self) -> ConvBnSpec {
        self.styled(ConvBnSpec::new(
            self.last_channels(),
            self.feature_channels,
            1,
            1,
        ))
    }

    pub(crate) fn blocks(&self) -> Vec<BlockPlan> {
        let mut plans = Vec::new();
        let mut cin = self.stem_channels;
        for stage in self.stages {
            for i in 0..stage.repeats {
                let stride = if i == 0 { stage.stride } else { 1 };
                let hidden = cin * stage.expansion;
                let expands = stage.expansion != 1;
                plans.push(BlockPlan {
                    keys: self.keys.block(plans.len(), expands),
                    expand: expands.then(|| self.styled(ConvBnSpec::new(cin, hidden, 1, 1))),
                    depthwise: self
                        .styled(ConvBnSpec::new(hidden, hidden, stage.kernel, stride).depthwise()),
                    project: self.styled(ConvBnSpec::new(hidden, stage.channels, 1, 1).linear()),
                    residual: stride == 1 && cin == stage.channels,
                });
                cin = stage.channels;
            }
        }
        plans
    }

    /// Number of blocks over all stages.
    pub fn block_count(&self) -> usize {
        self.stages.iter().map(|s| s.repeats).sum()
    }
}

/// `vs` followed by the dot-separated `key` (`features.1.conv`).
fn sub_path<'a>(vs: &Path<'a>, key: &str) -> Path<'a> {
    key.split('.').fold(vs.clone(), |path, part| path.sub(part))
}

fn conv_bn(vs: &Path, keys: &ConvBnKeys, spec: ConvBnSpec) -> Result<ConvBn> {
    ConvBn::new(&sub_path(vs, &keys.conv), &sub_path(vs, &keys.bn), spec)
}

impl BackboneNetwork for InvertedResidualNet {
    /// Five stride-2 stages, each rounding up.
    fn feature_shape(&self, input: &[i64]) -> Vec<i64> {
        let side = |n: i64| (0..5).fold(n, |n, _| (n + 1) / 2);
        vec![self.feature_channels, side(input[1]), side(input[2])]
    }

    fn layer_param_counts(&self, include_top: bool) -> Vec<(String, ParamCounts)> {
        let mut counts = vec![self.stem_spec().param_counts()];
        counts.extend(self.blocks().iter().map(|b| {
            let expand = b.expand.map(|e| e.param_counts()).unwrap_or_default();
            expand + b.depthwise.param_counts() + b.project.param_counts()
        }));
        counts.push(self.head_spec().param_counts());
        if include_top {
            let classifier = PooledClassifier::param_count(self.feature_channels, 1000);
            counts.push(ParamCounts::trainable(classifier));
        }
        let names = self.keys.layer_names(self.block_count(), include_top);
        names.into_iter().zip(counts).collect()
    }

    fn layer_of(&self, key: &str) -> String {
        self.keys.layer_of(key)
    }

    /// The checkpoint's names are the model's; the step counters are not needed.
    fn map_key(&self, key: &str) -> KeyMap {
        if key.ends_with("num_batches_tracked") {
            KeyMap::Skip("batch-norm step counter, unused in inference mode")
        } else {
            KeyMap::To(key.to_owned())
        }
    }

    fn build(&self, vs: &Path, include_top: bool) -> Result<Box<dyn Layer>> {
        let stem = conv_bn(vs, &self.keys.stem(), self.stem_spec())?;
        let blocks = self
            .blocks()
            .into_iter()
            .map(|plan| {
                let expand = match (&plan.keys.expand, plan.expand) {
                    (Some(keys), Some(spec)) => Some(conv_bn(vs, keys, spec)?),
                    _ => None,
                };
                let depthwise = conv_bn(vs, &plan.keys.depthwise, plan.depthwise)?;
                let project = conv_bn(vs, &plan.keys.project, plan.project)?;
                Ok(InvertedResidual::new(
                    expand,
                    depthwise,
                    project,
                    plan.residual,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let head = conv_bn(vs, &self.keys.head(), self.head_spec())?;
        let classifier = include_top
            .then(|| {
                let path = sub_path(vs, &self.keys.classifier());
                PooledClassifier::new(&path, self.feature_channels, 1000, self.classifier_dropout)
            })
            .transpose()?;
        Ok(Box::new(InvertedResidualNetwork {
            stem,
            blocks,
            head,
            classifier,
        }))
    }
}

/// A built [`InvertedResidualNet`].
///
/// # Shapes
/// - input: `(batch, 3, h, w)`, preprocessed (see [`super::Preprocessing`])
/// - output: features `(batch, feature_channels, ceil(h / 32), ceil(w / 32))`, or logits
///   `(batch, 1000)` with the classifier
#[derive(Debug)]
pub struct InvertedResidualNetwork {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    head: ConvBn,
    classifier: Option<PooledClassifier>,
}

impl Layer for InvertedResidualNetwork {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = self
            .blocks
            .iter()
            .fold(self.stem.forward(xs, train), |xs, b| b.forward(&xs, train));
        let features = self.head.forward(&xs, train);
        match &self.classifier {
            None => features,
            Some(classifier) => classifier.forward(&features, train),
        }
    }
}
