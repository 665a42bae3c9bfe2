//! EfficientNet-Lite0 (Tan and Le, 2019; the Lite variant without squeeze-and-excitation,
//! with ReLU6), converted from Google's TensorFlow checkpoint: TensorFlow's `SAME` padding
//! and batch-norm eps 1e-3, with its 1000-class head.
//!
//! Parameters carry the names of the `efficientnet_pytorch` conversion (`_conv_stem.weight`,
//! `_blocks.3._depthwise_conv.weight`, `_fc.bias`), so its checkpoints load as they are.

use super::backbone_network::{BackboneInfo, Preprocessing};
use super::inverted_residual_net::{
    BlockKeys, ConvBnKeys, ConvStyle, InvertedResidualNet, KeyScheme, Stage,
};

/// Stages as (kernel, first stride, expansion, output channels, repeats); the stem gives
/// 32 channels.
const STAGES: [Stage; 7] = [
    Stage::new(3, 1, 1, 16, 1),
    Stage::new(3, 2, 6, 24, 2),
    Stage::new(5, 2, 6, 40, 2),
    Stage::new(3, 2, 6, 80, 3),
    Stage::new(5, 1, 6, 112, 3),
    Stage::new(5, 2, 6, 192, 4),
    Stage::new(3, 1, 6, 320, 1),
];

/// The `efficientnet_pytorch` names: `_conv_stem`/`_bn0`, `_blocks.<i>`, `_conv_head`/`_bn1`,
/// `_fc`.
struct EfficientNetNames;

impl KeyScheme for EfficientNetNames {
    fn stem(&self) -> ConvBnKeys {
        ConvBnKeys::new("_conv_stem", "_bn0")
    }

    fn block(&self, index: usize, expands: bool) -> BlockKeys {
        let key = |name: &str| format!("_blocks.{index}.{name}");
        BlockKeys {
            expand: expands.then(|| ConvBnKeys::new(key("_expand_conv"), key("_bn0"))),
            depthwise: ConvBnKeys::new(key("_depthwise_conv"), key("_bn1")),
            project: ConvBnKeys::new(key("_project_conv"), key("_bn2")),
        }
    }

    fn head(&self) -> ConvBnKeys {
        ConvBnKeys::new("_conv_head", "_bn1")
    }

    fn classifier(&self) -> String {
        "_fc".into()
    }

    /// `stem`, `_blocks.0` to `_blocks.15`, `head` (the last 1x1 convolution), then `_fc`.
    fn layer_names(&self, blocks: usize, include_top: bool) -> Vec<String> {
        let mut names = vec!["stem".to_owned()];
        names.extend((0..blocks).map(|i| format!("_blocks.{i}")));
        names.push("head".into());
        if include_top {
            names.push("_fc".into());
        }
        names
    }

    fn layer_of(&self, key: &str) -> String {
        let mut parts = key.split('.');
        match (parts.next(), parts.next()) {
            (Some("_conv_stem" | "_bn0"), _) => "stem".into(),
            (Some("_conv_head" | "_bn1"), _) => "head".into(),
            (Some("_blocks"), Some(i)) => format!("_blocks.{i}"),
            (Some(first), _) => first.to_owned(),
            _ => key.to_owned(),
        }
    }
}

/// The network.
pub static NETWORK: InvertedResidualNet = InvertedResidualNet {
    stem_channels: 32,
    stages: &STAGES,
    feature_channels: 1280,
    classifier_dropout: 0.2,
    style: ConvStyle::TensorFlow,
    keys: &EfficientNetNames,
};

/// Its row of the backbone table.
pub static BACKBONE: BackboneInfo = BackboneInfo {
    aliases: &[],
    description: "EfficientNet-Lite0 with its ImageNet classifier (4,652,008 parameters)",
    weights_file: "efficientnet_lite0/efficientnet_lite0.safetensors",
    preprocessing: Preprocessing::Symmetric127,
    input_size: 224,
    has_classifier: true,
    network: &NETWORK,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::backbone_network::BackboneNetwork;
    use tch::{nn::VarStore, Device, Kind, Tensor};

    #[test]
    fn counts_match_the_checkpoint() {
        let vs = VarStore::new(Device::Cpu);
        let net = NETWORK.build(&vs.root(), true).unwrap();
        let trainable: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(trainable, 4_652_008);
        assert_eq!(all - trainable, 42_016);
        let declared: crate::nn::ParamCounts = NETWORK
            .layer_param_counts(true)
            .into_iter()
            .map(|(_, c)| c)
            .sum();
        assert_eq!(
            (declared.trainable, declared.non_trainable),
            (trainable, all - trainable)
        );
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
        assert_eq!(NETWORK.layer_of("_bn1.weight"), "head");
        assert_eq!(NETWORK.layer_of("_blocks.7._bn2.bias"), "_blocks.7");
    }
}
