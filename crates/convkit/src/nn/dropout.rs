//! Dropout, as Keras' `Dropout`: active only while training.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::layer::{Layer, LayerDescription, ParamCounts};
use crate::error::{Error, Result};

/// Description of a dropout that zeroes each value with probability `rate` during training
/// and scales the rest by `1 / (1 - rate)`; at inference it passes its input through.
///
/// # Shapes
/// Any input; the output has the same shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DropoutSpec {
    /// Fraction of values dropped, in `[0, 1)`.
    pub rate: f64,
}

impl DropoutSpec {
    /// Builds the layer, checking the rate.
    pub fn build(&self) -> Result<Dropout> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::InvalidConfig(format!(
                "dropout rate must be in [0, 1), got {}",
                self.rate
            )));
        }
        Ok(Dropout { rate: self.rate })
    }
}

/// A built [`DropoutSpec`].
#[derive(Debug)]
pub struct Dropout {
    rate: f64,
}

impl Layer for Dropout {
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.dropout(self.rate, train)
    }
}

impl LayerDescription for DropoutSpec {
    fn class_name(&self) -> &'static str {
        "Dropout"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        Ok(input.to_vec())
    }

    fn param_counts(&self, _input: &[i64]) -> Result<ParamCounts> {
        Ok(ParamCounts::default())
    }

    fn build(&self, _vs: Path, _input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        Ok(Box::new(DropoutSpec::build(self)?))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        vec![
            (DropoutSpec { rate: 0.5 }, vec![12]),
            (DropoutSpec { rate: 0.0 }, vec![2, 3, 3]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn identity_at_inference_and_active_in_training() {
        let layer = DropoutSpec { rate: 0.5 }.build().unwrap();
        let xs = Tensor::ones([10_000], (Kind::Float, Device::Cpu));
        assert!(layer.forward(&xs, false).equal(&xs));
        let ys = layer.forward(&xs, true);
        let zeros = ys.eq(0.0).sum(Kind::Float).double_value(&[]);
        assert!((4_000.0..6_000.0).contains(&zeros), "{zeros} zeros");
        assert!((ys.mean(Kind::Float).double_value(&[]) - 1.0).abs() < 0.05);
    }

    #[test]
    fn rejects_a_rate_of_one() {
        assert!(DropoutSpec { rate: 1.0 }.build().is_err());
    }
}
