//! VGG16's convolutional base as ONNX nodes: per block, its 3x3 convolutions (padding 1,
//! ReLU), then a 2x2 max pool.

use super::activation;
use super::convolution::{conv, ConvSettings};
use super::lower::{Lowering, Value};
use super::onnx_graph::Attr;
use crate::error::Result;
use crate::models::vgg16::layer_names;
use crate::nn::Activation;

/// The base on preprocessed images `x` `(batch, 3, h, w)`, its parameters under
/// `<prefix>.block1_conv1`, ...: features `(batch, 512, h / 32, w / 32)`.
pub fn lower(cx: &mut Lowering, prefix: &str, x: &Value) -> Result<Value> {
    let names = layer_names();
    let mut y = x.clone();
    for (i, name) in names.iter().enumerate() {
        let key = format!("{prefix}.{name}");
        let weight = cx.parameter(&format!("{key}.weight"))?;
        let out_channels = weight.size()[0];
        let w =
            cx.parameter_initializer(&format!("{key}.weight"), &[out_channels, y.shape[0], 3, 3])?;
        let b = cx.parameter_initializer(&format!("{key}.bias"), &[out_channels])?;
        let settings = ConvSettings {
            out_channels,
            kernel: 3,
            stride: 1,
            pads: [1; 4],
            group: 1,
        };
        y = conv(cx, &key, &y, &w, Some(&b), settings);
        y = activation::lower(cx, &key, Activation::Relu, &y);
        // `block1_conv2` ends block 1 when the next name starts another block
        let block = |n: &str| n.split('_').next().map(str::to_owned);
        let ends_block = names
            .get(i + 1)
            .is_none_or(|next| block(next) != block(name));
        if ends_block {
            let pooled = cx.graph.node(
                &format!("{prefix}.{}_pool", block(name).unwrap_or_default()),
                "MaxPool",
                &[&y.name],
                &[
                    ("kernel_shape", Attr::Ints(vec![2, 2])),
                    ("strides", Attr::Ints(vec![2, 2])),
                ],
            );
            y = Value::new(pooled, vec![y.shape[0], y.shape[1] / 2, y.shape[2] / 2]);
        }
    }
    Ok(y)
}
