//! Mean over the spatial axes, as Keras' `GlobalAveragePooling2D`.

use serde::{Deserialize, Serialize};
use tch::{nn::Path, Kind, Tensor};

use super::layer::{expect_rank, Layer, LayerDescription, ParamCounts};
use crate::error::Result;

/// Description of a global average pooling: the mean of each channel over the image.
///
/// # Shapes
/// - input: `(batch, channels, height, width)`
/// - output: `(batch, channels)`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalAveragePooling2dSpec {}

/// The built layer.
#[derive(Debug)]
pub struct GlobalAveragePooling2d;

impl Layer for GlobalAveragePooling2d {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        xs.mean_dim([2i64, 3].as_slice(), false, Kind::Float)
    }
}

impl LayerDescription for GlobalAveragePooling2dSpec {
    fn class_name(&self) -> &'static str {
        "GlobalAveragePooling2D"
    }

    fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        expect_rank("global_average_pooling2d", input, 3)?;
        Ok(vec![input[0]])
    }

    fn param_counts(&self, _input: &[i64]) -> Result<ParamCounts> {
        Ok(ParamCounts::default())
    }

    fn build(&self, _vs: Path, input: &[i64], _skip_activation: bool) -> Result<Box<dyn Layer>> {
        self.output_shape(input)?;
        Ok(Box::new(GlobalAveragePooling2d))
    }

    fn is_augmentation(&self) -> bool {
        false
    }

    fn examples() -> Vec<(Self, Vec<i64>)> {
        vec![(GlobalAveragePooling2dSpec {}, vec![6, 5, 4])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn averages_each_channel() {
        let spec = GlobalAveragePooling2dSpec {};
        assert_eq!(spec.output_shape(&[1280, 6, 6]).unwrap(), [1280]);
        assert!(spec.output_shape(&[1280]).is_err());
        let xs = Tensor::arange(8, (Kind::Float, Device::Cpu)).view([1, 2, 2, 2]);
        let ys: Vec<f32> =
            Vec::try_from(GlobalAveragePooling2d.forward(&xs, false).view([-1])).unwrap();
        assert_eq!(ys, [1.5, 5.5]);
    }
}
