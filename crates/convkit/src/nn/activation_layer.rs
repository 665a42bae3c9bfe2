//! An activation as a layer of its own, as Keras' `Activation("relu")`: after a batch
//! normalization, where the convolution before it has none.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::activation::Activation;
use super::layer::{Layer, LayerDescription, ParamCounts};
use crate::error::Result;

/// Description of a layer applying `activation`.
///
/// # Shapes
/// Any input; the output has the same shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationSpec {
    /// The function applied.
    pub activation: Activation,
}

/// A built [`ActivationSpec`].
#[derive(Debug)]
pub struct ActivationLayer {
    activation: Activation,
}

impl Layer for ActivationLayer {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        // not in place: the input may feed another branch (a residual connection)
        self.activation.apply(xs)
    }
}

impl LayerDescription for ActivationSpec {
    fn class_name(&self) -> &'static str {
        "Activation"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        Ok(input.to_vec())
    }

    fn param_counts(&self, _input: &[i64]) -> Result<ParamCounts> {
        Ok(ParamCounts::default())
    }

    fn build(&self, _vs: Path, _input: &[i64], skip_activation: bool) -> Result<Box<dyn Layer>> {
        let activation = if skip_activation {
            Activation::Linear
        } else {
            self.activation
        };
        Ok(Box::new(ActivationLayer { activation }))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        vec![
            (
                ActivationSpec {
                    activation: Activation::Relu,
                },
                vec![3, 4, 4],
            ),
            (
                ActivationSpec {
                    activation: Activation::Softmax,
                },
                vec![5],
            ),
        ]
    }
}
