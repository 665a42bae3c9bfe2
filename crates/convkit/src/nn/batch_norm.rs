//! Batch normalisation with stored statistics, as pretrained backbones use it.

use tch::{nn::Path, Tensor};

use crate::error::Result;

/// A 2-D batch normalisation that always runs in inference mode: it normalises with the
/// running mean and variance it was loaded with and never updates them.
///
/// Pretrained backbones keep their statistics fixed in convkit, frozen or not: a few
/// thousand images would shift statistics learned on ImageNet (Keras advises the same for
/// fine-tuning, and the chapter keeps frozen batch norm in inference mode).
///
/// # Shapes
/// - input and output: `(batch, channels, height, width)`
///
/// Parameters, named as PyTorch names them: `weight`, `bias` (trainable), `running_mean`,
/// `running_var` (never trained).
#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    eps: f64,
}

impl BatchNorm2d {
    /// Creates the four tensors of a `channels`-wide batch norm under `vs`; `eps` is added
    /// to the variance (PyTorch: 1e-5, TensorFlow checkpoints: 1e-3).
    pub fn new(vs: &Path, channels: i64, eps: f64) -> Result<BatchNorm2d> {
        Ok(BatchNorm2d {
            weight: vs.f_ones("weight", &[channels])?,
            bias: vs.f_zeros("bias", &[channels])?,
            running_mean: vs.f_zeros_no_train("running_mean", &[channels])?,
            running_var: vs.f_ones_no_train("running_var", &[channels])?,
            eps,
        })
    }

    /// The kernel and bias of a convolution followed by this batch norm, as one convolution:
    /// `w * s` and `beta - mean * s` with `s = gamma / sqrt(var + eps)` per output channel.
    /// Exact algebra for inference-mode batch norm, so gradients still reach the kernel,
    /// `gamma` and `beta`; it saves a pass over the feature map at every step.
    pub fn fold_into(&self, kernel: &Tensor) -> (Tensor, Tensor) {
        let scale = &self.weight * (&self.running_var + self.eps).rsqrt();
        let shape: Vec<i64> = std::iter::once(-1)
            .chain(std::iter::repeat_n(1, kernel.dim() - 1))
            .collect();
        let folded_kernel = kernel * scale.view(shape.as_slice());
        let folded_bias = &self.bias - &self.running_mean * &scale;
        (folded_kernel, folded_bias)
    }

    /// Normalises `xs` with the stored statistics.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        Tensor::batch_norm(
            xs,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            false,
            0.0,
            self.eps,
            false,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn normalises_with_the_stored_statistics() {
        let vs = VarStore::new(Device::Cpu);
        let bn = BatchNorm2d::new(&vs.root(), 2, 1e-3).unwrap();
        tch::no_grad(|| {
            bn.running_mean
                .shallow_clone()
                .copy_(&Tensor::from_slice(&[1.0f32, -1.0]));
            bn.running_var
                .shallow_clone()
                .copy_(&Tensor::from_slice(&[4.0f32, 1.0]));
            let _ = bn.bias.shallow_clone().fill_(0.5);
        });
        let xs = Tensor::ones([1, 2, 1, 1], (Kind::Float, Device::Cpu));
        let ys: Vec<f32> = Vec::try_from(bn.forward(&xs).flatten(0, -1)).unwrap();
        assert!((ys[0] - 0.5).abs() < 1e-6, "{ys:?}");
        assert!(
            (ys[1] - (2.0 / 1.001f32.sqrt() + 0.5)).abs() < 1e-5,
            "{ys:?}"
        );
        let mut names: Vec<_> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(names, ["bias", "running_mean", "running_var", "weight"]);
        assert_eq!(vs.trainable_variables().len(), 2);
    }
}
