//! The chapter's MNIST convnet (section 1).

use super::sequential::Sequential;
use crate::nn::Activation;

/// Conv2D(32) -> MaxPool -> Conv2D(64) -> MaxPool -> Conv2D(128) -> Flatten ->
/// Dense(10, softmax), all 3x3 `valid` convolutions with ReLU, on 28x28x1 bytes scaled by
/// 1/255: 104,202 parameters. Train it with RMSprop (Keras' defaults), batches of 64,
/// 5 epochs.
///
/// # Shapes
/// - input: `(batch, 1, 28, 28)` bytes (the rescaling is the model's first layer)
/// - output: `(batch, 10)`
pub fn mnist_convnet() -> Sequential {
    Sequential::new("mnist_convnet", [1, 28, 28])
        .rescaling(1.0 / 255.0)
        .conv2d(32, 3, Activation::Relu)
        .max_pool2d(2)
        .conv2d(64, 3, Activation::Relu)
        .max_pool2d(2)
        .conv2d(128, 3, Activation::Relu)
        .flatten()
        .dense(10, Activation::Softmax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_chapter_parameter_count() {
        assert_eq!(mnist_convnet().param_count().unwrap(), 104_202);
        assert_eq!(mnist_convnet().output_shape().unwrap(), [10]);
    }
}
