//! The inverted residual block of MobileNetV2 and EfficientNet(-Lite): a 1x1 expansion, a
//! depthwise convolution, a linear 1x1 projection, and a skip connection when shapes allow.

use tch::Tensor;

use super::conv_bn::ConvBn;
use super::layer::Layer;

/// A built block, from its three convolutions (each network names them its own way).
///
/// # Shapes
/// - input: `(batch, in, h, w)`
/// - output: `(batch, out, ceil(h / stride), ceil(w / stride))`
#[derive(Debug)]
pub struct InvertedResidual {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl InvertedResidual {
    /// A block of the given convolutions; `residual` adds the input to the output (stride 1
    /// and as many channels out as in). Drop-connect on that path, a training regulariser of
    /// EfficientNet, is left out: the pretrained networks run as at inference.
    pub fn new(expand: Option<ConvBn>, depthwise: ConvBn, project: ConvBn, residual: bool) -> Self {
        InvertedResidual {
            expand,
            depthwise,
            project,
            residual,
        }
    }
}

impl Layer for InvertedResidual {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let hidden = match &self.expand {
            Some(expand) => expand.forward(xs, train),
            None => xs.shallow_clone(),
        };
        let ys = self
            .project
            .forward(&self.depthwise.forward(&hidden, train), train);
        if self.residual {
            ys + xs
        } else {
            ys
        }
    }
}
