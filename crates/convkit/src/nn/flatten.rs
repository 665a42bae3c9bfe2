//! Flattening each sample to one axis, as Keras' `Flatten`.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::layer::{Layer, LayerDescription, ParamCounts};
use crate::error::Result;

/// Description of a flatten: `(channels, height, width)` becomes `channels * height *
/// width` values, in that order.
///
/// # Shapes
/// - input: `(batch, ...)`
/// - output: `(batch, product of the other axes)`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenSpec {}

/// The built layer.
#[derive(Debug)]
pub struct Flatten;

impl Layer for Flatten {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        xs.flatten(1, -1)
    }
}

impl LayerDescription for FlattenSpec {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        Ok(vec![input.iter().product()])
    }

    fn param_counts(&self, _input: &[i64]) -> Result<ParamCounts> {
        Ok(ParamCounts::default())
    }

    fn build(&self, _vs: Path, _input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Flatten))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        vec![(FlattenSpec {}, vec![4, 3, 3]), (FlattenSpec {}, vec![5])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn keeps_the_batch_axis() {
        assert_eq!(FlattenSpec {}.output_shape(&[128, 3, 3]).unwrap(), [1152]);
        let ys = Flatten.forward(
            &Tensor::zeros([2, 128, 3, 3], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(ys.size(), [2, 1152]);
    }
}
