//! Flattening of all axes but the batch axis, as Keras' `Flatten`.

use tch::Tensor;

use super::layer::Layer;

/// Output shape of [`Flatten`]: one axis holding every value of a sample.
///
/// # Shapes
/// - input: `(batch, d1, d2, ...)`
/// - output: `(batch, d1 * d2 * ...)`
pub fn flatten_output_shape(input: &[i64]) -> Vec<i64> {
    vec![input.iter().product()]
}

/// The built flatten layer.
#[derive(Debug)]
pub struct Flatten;

impl Layer for Flatten {
    fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
        xs.flatten(1, -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn keeps_the_batch_axis() {
        assert_eq!(flatten_output_shape(&[128, 3, 3]), [1152]);
        let ys = Flatten.forward(
            &Tensor::zeros([2, 128, 3, 3], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(ys.size(), [2, 1152]);
    }
}
