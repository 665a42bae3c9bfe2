//! Fully connected layer, as Keras' `Dense`.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::activation::Activation;
use super::init::glorot_uniform;
use super::layer::{expect_rank, Layer, LayerDescription, ParamCounts};
use crate::error::{Error, Result};

/// Description of a dense layer with `units` outputs.
///
/// # Shapes
/// - input: `(batch, features)`
/// - output: `(batch, units)`
///
/// The kernel starts from Glorot uniform, the bias from zeros, as in Keras.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseSpec {
    /// Number of outputs.
    pub units: i64,
    /// Activation applied to the output.
    #[serde(default)]
    pub activation: Activation,
}

impl DenseSpec {
    /// Output shape per sample.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("dense", input, 1)?;
        if self.units < 1 {
            return Err(Error::InvalidConfig(format!(
                "dense: units must be positive, got {}",
                self.units
            )));
        }
        Ok(vec![self.units])
    }

    /// Number of trainable values: kernel plus bias.
    pub fn param_count(&self, input: &[i64]) -> i64 {
        input[0] * self.units + self.units
    }

    /// Creates `weight` `(units, features)` and `bias` `(units)` under `vs`. The layer
    /// applies `activation`, which the caller may override (the built model keeps a final
    /// softmax or sigmoid out of the training graph).
    pub fn build(&self, vs: Path, input: &[i64], activation: Activation) -> Result<Dense> {
        self.output_shape(input)?;
        Ok(Dense {
            weight: vs.f_var(
                "weight",
                &[self.units, input[0]],
                glorot_uniform(input[0], self.units),
            )?,
            bias: vs.f_zeros("bias", &[self.units])?,
            activation,
        })
    }
}

/// A built [`DenseSpec`].
#[derive(Debug)]
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
    activation: Activation,
}

impl Layer for Dense {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        self.activation
            .apply_owned(xs.linear(&self.weight, Some(&self.bias)))
    }
}

impl LayerDescription for DenseSpec {
    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        DenseSpec::output_shape(self, input)
    }

    fn param_counts(&self, input: &[i64]) -> Result<ParamCounts> {
        Ok(ParamCounts::trainable(self.param_count(input)))
    }

    fn build(&self, vs: Path, input: &[i64], skip_activation: bool) -> Result<Box<dyn Layer>> {
        let activation = if skip_activation {
            Activation::Linear
        } else {
            self.activation
        };
        Ok(Box::new(DenseSpec::build(self, vs, input, activation)?))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        let dense = |units, activation| DenseSpec { units, activation };
        vec![
            (dense(3, Activation::Relu), vec![7]),
            (dense(5, Activation::Softmax), vec![4]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn counts_kernel_and_bias() {
        let spec = DenseSpec {
            units: 10,
            activation: Activation::Softmax,
        };
        assert_eq!(spec.param_count(&[1152]), 11_530);
        assert!(spec.output_shape(&[3, 3]).is_err());
    }

    #[test]
    fn computes_x_w_plus_b() {
        let vs = VarStore::new(Device::Cpu);
        let mut layer = DenseSpec {
            units: 2,
            activation: Activation::Linear,
        }
        .build(vs.root(), &[3], Activation::Linear)
        .unwrap();
        tch::no_grad(|| {
            layer
                .weight
                .copy_(&Tensor::from_slice(&[1.0f32, 2.0, 3.0, 0.0, 0.0, 1.0]).reshape([2, 3]));
            layer.bias.copy_(&Tensor::from_slice(&[0.5f32, -1.0]));
        });
        let ys = layer.forward(
            &Tensor::from_slice(&[1.0f32, 1.0, 2.0]).reshape([1, 3]),
            false,
        );
        let ys: Vec<f32> = Vec::try_from(ys.to_kind(Kind::Float).view([-1])).unwrap();
        assert_eq!(ys, [9.5, 1.0]);
    }
}
