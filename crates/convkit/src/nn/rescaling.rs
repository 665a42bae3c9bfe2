//! Input scaling, as Keras' `Rescaling`: `x * scale + offset`, computed in float.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Tensor};

use super::layer::{Layer, LayerDescription, ParamCounts};
use crate::error::Result;

/// Description of a rescaling; `Rescaling(1/255)` turns bytes into `[0, 1]`.
///
/// # Shapes
/// Any input; the output has the same shape, as `f32`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RescalingSpec {
    /// Multiplier.
    pub scale: f64,
    /// Added after scaling.
    #[serde(default)]
    pub offset: f64,
}

impl RescalingSpec {
    /// Builds the (parameter-free) layer.
    pub fn build(&self) -> Rescaling {
        Rescaling {
            scale: self.scale,
            offset: self.offset,
        }
    }
}

/// A built [`RescalingSpec`]. Byte images go in, `f32` images come out (floating inputs keep
/// their precision), so datasets can stay as compact `u8` tensors until the batch reaches
/// the model.
#[derive(Debug)]
pub struct Rescaling {
    scale: f64,
    offset: f64,
}

impl Layer for Rescaling {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        // An integer tensor times a float scalar comes out f32 from the same pass: bytes
        // become floats without a separate conversion.
        let ys = xs * self.scale;
        if self.offset == 0.0 {
            ys
        } else {
            ys + self.offset
        }
    }
}

impl LayerDescription for RescalingSpec {
    fn class_name(&self) -> &'static str {
        "Rescaling"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        Ok(input.to_vec())
    }

    fn param_counts(&self, _input: &[i64]) -> Result<ParamCounts> {
        Ok(ParamCounts::default())
    }

    fn build(&self, _vs: Path, _input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        Ok(Box::new(RescalingSpec::build(self)))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        vec![
            (
                RescalingSpec {
                    scale: 1.0 / 255.0,
                    offset: 0.0,
                },
                vec![3, 4, 5],
            ),
            (
                RescalingSpec {
                    scale: 2.0,
                    offset: -1.0,
                },
                vec![6],
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn maps_bytes_to_unit_floats() {
        let xs = Tensor::from_slice(&[0u8, 255, 51]);
        let ys = RescalingSpec {
            scale: 1.0 / 255.0,
            offset: 0.0,
        }
        .build()
        .forward(&xs, false);
        assert_eq!(ys.kind(), Kind::Float);
        let ys: Vec<f32> = Vec::try_from(ys).unwrap();
        for (y, e) in ys.iter().zip([0.0f32, 1.0, 0.2]) {
            assert!((y - e).abs() < 1e-6, "{ys:?}");
        }
    }
}
