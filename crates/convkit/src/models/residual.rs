//! A residual block: layers whose output is added to their input, as Keras'
//! `layers.add([block(x), x])`, with a 1x1 projection of the input when shapes differ.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::layer_spec::LayerSpec;
use super::sequential::{chain_shapes, keras_name, NamedLayer};
use crate::error::{Error, Result};
use crate::nn::init::glorot_uniform;
use crate::nn::padding::same_output_len;
use crate::nn::{Layer, LayerDescription, ParamCounts};

/// Description of a residual block: `block(x) + x`, or `block(x) + projection(x)` when the
/// block changes the shape. The projection is Xception's: a 1x1 convolution without bias,
/// `same` padding, to the block's channels, with the stride that maps the input's size to
/// the output's (`Conv2D(filters, 1, strides=2, padding="same", use_bias=False)` after a
/// halving block).
///
/// # Shapes
/// - input: `(batch, channels, height, width)`, or any shape when the block keeps it
/// - output: the block's output
///
/// Parameters: each inner layer's under its name, the projection's as `projection.weight`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualSpec {
    /// The block's layers, first to last, named within the block.
    pub layers: Vec<NamedLayer>,
}

impl ResidualSpec {
    /// A block of `layers`, named as Keras names layers (`batch_normalization`,
    /// `batch_normalization_1`, ...).
    pub fn new(layers: impl IntoIterator<Item = LayerSpec>) -> Self {
        let mut named: Vec<NamedLayer> = Vec::new();
        for spec in layers {
            let name = keras_name(&named, &spec);
            named.push(NamedLayer { name, spec });
        }
        ResidualSpec { layers: named }
    }

    /// Shape after each inner layer, in order.
    fn block_shapes(&self, input: &[i64]) -> Result<Vec<Vec<i64>>> {
        chain_shapes(&self.layers, input)
    }

    /// The projection's `(filters, stride)` for `input`, or `None` when the block keeps the
    /// shape and the input is added as it is.
    fn projection(&self, input: &[i64], output: &[i64]) -> Result<Option<(i64, i64)>> {
        if input == output {
            return Ok(None);
        }
        let mismatch = || {
            Error::InvalidConfig(format!(
                "residual: no 1x1 projection maps the input {input:?} to the block's output {output:?}"
            ))
        };
        if input.len() != 3 || output.len() != 3 {
            return Err(mismatch());
        }
        let stride = (input[1] + output[1] - 1) / output[1];
        let fits = |i: usize| same_output_len(input[i], stride) == output[i];
        if fits(1) && fits(2) {
            Ok(Some((output[0], stride)))
        } else {
            Err(mismatch())
        }
    }
}

impl ResidualSpec {
    /// Values in the projection's kernel for `input` and the block's `output` (0 when the
    /// input is added as it is).
    pub(crate) fn projection_param_count(&self, input: &[i64], output: &[i64]) -> Result<i64> {
        Ok(match self.projection(input, output)? {
            Some((filters, _)) => input[0] * filters,
            None => 0,
        })
    }
}

/// A built [`ResidualSpec`].
#[derive(Debug)]
pub struct Residual {
    layers: Vec<Box<dyn Layer>>,
    projection: Option<(Tensor, i64)>,
}

impl Layer for Residual {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = xs.shallow_clone();
        for layer in &self.layers {
            ys = layer.forward(&ys, train);
        }
        let skip = match &self.projection {
            None => xs.shallow_clone(),
            Some((kernel, s)) => xs.conv2d(kernel, None::<&Tensor>, [*s, *s], [0, 0], [1, 1], 1),
        };
        ys + skip
    }
}

impl LayerDescription for ResidualSpec {
    fn class_name(&self) -> &'static str {
        "Residual"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        let output = self
            .block_shapes(input)?
            .pop()
            .unwrap_or_else(|| input.to_vec());
        self.projection(input, &output)?;
        Ok(output)
    }

    fn param_counts(&self, input: &[i64]) -> Result<ParamCounts> {
        let shapes = self.block_shapes(input)?;
        let inputs = std::iter::once(input).chain(shapes.iter().map(Vec::as_slice));
        let inner: ParamCounts = self
            .layers
            .iter()
            .zip(inputs)
            .map(|(layer, input)| layer.spec.param_counts(input))
            .sum::<Result<ParamCounts>>()?;
        let output = shapes.last().map(Vec::as_slice).unwrap_or(input);
        let projection = self.projection_param_count(input, output)?;
        Ok(inner + ParamCounts::trainable(projection))
    }

    fn build(&self, vs: Path, input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        let output = self.output_shape(input)?;
        let mut shape = input.to_vec();
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            layers.push(layer.spec.build(vs.sub(&layer.name), &shape, false)?);
            shape = layer.spec.output_shape(&shape)?;
        }
        let projection = match self.projection(input, &output)? {
            Some((filters, stride)) => {
                let init = glorot_uniform(input[0], filters);
                let kernel =
                    vs.sub("projection")
                        .f_var("weight", &[filters, input[0], 1, 1], init)?;
                Some((kernel, stride))
            }
            None => None,
        };
        Ok(Box::new(Residual { layers, projection }))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        use crate::nn::{Activation, ActivationSpec, BatchNormalizationSpec, Conv2dSpec};
        use crate::nn::{MaxPool2dSpec, SeparableConv2dSpec};
        let xception = ResidualSpec::new([
            BatchNormalizationSpec::default().into(),
            ActivationSpec {
                activation: Activation::Relu,
            }
            .into(),
            SeparableConv2dSpec::xception(6, 3).into(),
            MaxPool2dSpec::same(3, 2).into(),
        ]);
        let identity = ResidualSpec::new([Conv2dSpec::new(4, 3, Activation::Relu).same().into()]);
        vec![(xception, vec![4, 9, 8]), (identity, vec![4, 5, 5])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Conv2dSpec};
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn adds_the_input_when_the_block_keeps_the_shape() {
        let vs = VarStore::new(Device::Cpu);
        let spec = ResidualSpec::new([Conv2dSpec::new(2, 3, Activation::Linear).same().into()]);
        let block = spec.build(vs.root(), &[2, 4, 4], false).unwrap();
        tch::no_grad(|| {
            for (_, mut t) in vs.variables() {
                let _ = t.zero_();
            }
        });
        let xs = Tensor::randn([1, 2, 4, 4], (Kind::Float, Device::Cpu));
        assert!(block.forward(&xs, false).allclose(&xs, 1e-6, 1e-6, false));
        assert_eq!(
            spec.param_counts(&[2, 4, 4]).unwrap().trainable,
            2 * 2 * 9 + 2
        );
        assert_eq!(spec.layers[0].name, "conv2d");
    }

    #[test]
    fn projects_when_the_block_halves_and_widens() {
        let spec = ResidualSpec::new([
            Conv2dSpec::new(8, 3, Activation::Relu).same().into(),
            crate::nn::MaxPool2dSpec::same(3, 2).into(),
        ]);
        assert_eq!(spec.output_shape(&[4, 89, 88]).unwrap(), [8, 45, 44]);
        let counts = spec.param_counts(&[4, 89, 88]).unwrap();
        assert_eq!(counts.trainable, 4 * 8 * 9 + 8 + 4 * 8);
        let shrinking = ResidualSpec::new([Conv2dSpec::new(4, 3, Activation::Relu).into()]);
        let err = shrinking.output_shape(&[4, 9, 9]).unwrap_err().to_string();
        assert!(err.contains("projection"), "{err}");
    }
}
