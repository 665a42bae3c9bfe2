//! Mean over the spatial axes, as Keras' `GlobalAveragePooling2D`.

use tch::{Kind, Tensor};

use super::layer::{expect_rank, Layer};
use crate::error::Result;

/// Output shape of [`GlobalAveragePooling2d`] for an input `(channels, height, width)`.
///
/// # Shapes
/// - input: `(batch, channels, height, width)`
/// - output: `(batch, channels)`
pub fn global_average_pooling2d_output_shape(input: &[i64]) -> Result<Vec<i64>> {
    expect_rank("global_average_pooling2d", input, 3)?;
    Ok(vec![input[0]])
}

/// The built layer: the mean of each channel.
#[derive(Debug)]
pub struct GlobalAveragePooling2d;

impl Layer for GlobalAveragePooling2d {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        xs.mean_dim([2i64, 3].as_slice(), false, Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn averages_each_channel() {
        assert_eq!(
            global_average_pooling2d_output_shape(&[1280, 6, 6]).unwrap(),
            [1280]
        );
        let xs = Tensor::arange(8, (Kind::Float, Device::Cpu)).view([1, 2, 2, 2]);
        let ys: Vec<f32> =
            Vec::try_from(GlobalAveragePooling2d.forward(&xs, false).view([-1])).unwrap();
        assert_eq!(ys, [1.5, 5.5]);
    }
}
