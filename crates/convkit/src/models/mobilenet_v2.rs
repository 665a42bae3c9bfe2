//! MobileNetV2 (Sandler et al., 2018) as torchvision builds it: inverted residual blocks of
//! depthwise convolutions, batch norm (eps 1e-5) and ReLU6, with its 1000-class head.
//!
//! Parameters carry torchvision's names (`features.0.0.weight`, `features.1.conv.0.1.bias`,
//! `classifier.1.weight`), so its checkpoints load as they are.

use super::backbone_network::{BackboneInfo, Preprocessing};
use super::inverted_residual_net::{
    BlockKeys, ConvBnKeys, ConvStyle, InvertedResidualNet, KeyScheme, Stage,
};

/// Stages of the paper's table 2 as (kernel, stride s, expansion t, channels c, repeats n),
/// all with 3x3 depthwise kernels.
const STAGES: [Stage; 7] = [
    Stage::new(3, 1, 1, 16, 1),
    Stage::new(3, 2, 6, 24, 2),
    Stage::new(3, 2, 6, 32, 3),
    Stage::new(3, 2, 6, 64, 4),
    Stage::new(3, 1, 6, 96, 3),
    Stage::new(3, 2, 6, 160, 3),
    Stage::new(3, 1, 6, 320, 1),
];

/// torchvision's names: `features.<i>` modules, `classifier.1` the dense layer.
struct TorchvisionNames;

impl KeyScheme for TorchvisionNames {
    fn stem(&self) -> ConvBnKeys {
        ConvBnKeys::new("features.0.0", "features.0.1")
    }

    /// `features.<index + 1>.conv.<j>`: torchvision numbers the sub-modules in order, so
    /// the indices shift when the expansion is absent.
    fn block(&self, index: usize, expands: bool) -> BlockKeys {
        let conv = format!("features.{}.conv", index + 1);
        let pair = |j: usize| ConvBnKeys::new(format!("{conv}.{j}.0"), format!("{conv}.{j}.1"));
        let first = usize::from(expands);
        BlockKeys {
            expand: expands.then(|| pair(0)),
            depthwise: pair(first),
            project: ConvBnKeys::new(
                format!("{conv}.{}", first + 1),
                format!("{conv}.{}", first + 2),
            ),
        }
    }

    fn head(&self) -> ConvBnKeys {
        ConvBnKeys::new("features.18.0", "features.18.1")
    }

    fn classifier(&self) -> String {
        "classifier.1".into()
    }

    /// `features.0` (stem) to `features.18` (the last 1x1 convolution), then `classifier`.
    fn layer_names(&self, blocks: usize, include_top: bool) -> Vec<String> {
        let mut names: Vec<String> = (0..=blocks + 1).map(|i| format!("features.{i}")).collect();
        if include_top {
            names.push("classifier".into());
        }
        names
    }

    fn layer_of(&self, key: &str) -> String {
        let mut parts = key.split('.');
        match (parts.next(), parts.next()) {
            (Some("features"), Some(i)) => format!("features.{i}"),
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
    style: ConvStyle::Torchvision,
    keys: &TorchvisionNames,
};

/// Its row of the backbone table.
pub static BACKBONE: BackboneInfo = BackboneInfo {
    aliases: &["mobilenetv2"],
    description: "MobileNetV2 with its ImageNet classifier (3,504,872 parameters)",
    weights_file: "mobilenet_v2_torchvision/mobilenet_v2.safetensors",
    preprocessing: Preprocessing::ImagenetMeanStd,
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
    fn counts_match_torchvision() {
        let vs = VarStore::new(Device::Cpu);
        let net = NETWORK.build(&vs.root(), true).unwrap();
        let trainable: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(trainable, 3_504_872);
        assert_eq!(all - trainable, 34_112);
        let declared: crate::nn::ParamCounts = NETWORK
            .layer_param_counts(true)
            .into_iter()
            .map(|(_, c)| c)
            .sum();
        assert_eq!(
            (declared.trainable, declared.non_trainable),
            (trainable, all - trainable)
        );
        assert!(vs.variables().contains_key("features.1.conv.1.weight"));
        assert!(vs.variables().contains_key("features.2.conv.3.running_var"));
        let ys = tch::no_grad(|| {
            net.forward(
                &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
                false,
            )
        });
        assert_eq!(ys.size(), [1, 1000]);
        assert_eq!(NETWORK.feature_shape(&[3, 180, 180]), [1280, 6, 6]);
        assert_eq!(NETWORK.layer_of("features.17.conv.2.weight"), "features.17");
        assert_eq!(NETWORK.layer_of("classifier.1.bias"), "classifier");
        let names: Vec<String> = NETWORK
            .layer_param_counts(true)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names.len(), 20);
        assert_eq!(names[18], "features.18");
    }
}
