//! The model's gradients, from libtorch's autograd through convkit's layers, against central
//! finite differences in double precision.

use convkit::models::Sequential;
use convkit::nn::Activation;
use convkit::runtime::MemoryFormat;
use convkit::Model;
use tch::{Device, Kind, Tensor};

fn loss_of(model: &Model, images: &Tensor, labels: &Tensor) -> Tensor {
    let logits = model.forward(images, true);
    model.loss().unwrap().mean(&logits, labels)
}

/// Checks the gradients of `spec` with its kernels and feature maps in both memory formats.
fn check(spec: &Sequential, labels: Tensor) {
    for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
        check_in(spec, &labels, format);
    }
}

fn check_in(spec: &Sequential, labels: &Tensor, format: MemoryFormat) {
    let mut model = Model::new(spec, Device::Cpu, 11).unwrap();
    model.set_memory_format(format).unwrap();
    model.var_store_mut().double();
    let mut shape = vec![3];
    shape.extend(&spec.input_shape);
    tch::manual_seed(5);
    let images = Tensor::rand(shape.as_slice(), (Kind::Double, Device::Cpu));

    let labels = labels.shallow_clone();
    let loss = loss_of(&model, &images, &labels);
    let params = model.var_store().variables();
    let grads: Vec<(String, Tensor)> = {
        let names: Vec<&String> = params.keys().collect();
        let tensors: Vec<&Tensor> = names.iter().map(|n| &params[*n]).collect();
        let grads = Tensor::run_backward(&[&loss], &tensors, false, false);
        names.into_iter().cloned().zip(grads).collect()
    };

    let h = 1e-6;
    let mut checked = 0;
    for (name, grad) in &grads {
        let param = &params[name];
        // Entries are addressed in the logical (NCHW) order whatever the strides are.
        let n = param.numel() as i64;
        let set = |index: i64, value: f64| {
            tch::no_grad(|| {
                let flat = param.contiguous().view([-1]).copy();
                let _ = flat.get(index).fill_(value);
                param
                    .shallow_clone()
                    .copy_(&flat.view(param.size().as_slice()));
            });
        };
        // A handful of entries per tensor, spread over it.
        for k in 0..5 {
            let index = (k * 7919 + 13) % n;
            let original = param.contiguous().view([-1]).double_value(&[index]);
            let perturbed = |value: f64| {
                set(index, value);
                tch::no_grad(|| loss_of(&model, &images, &labels).double_value(&[]))
            };
            let numeric = (perturbed(original + h) - perturbed(original - h)) / (2.0 * h);
            set(index, original);
            let analytic = grad.contiguous().view([-1]).double_value(&[index]);
            let scale = analytic.abs().max(numeric.abs()).max(1e-4);
            assert!(
                (analytic - numeric).abs() / scale < 1e-4,
                "{name}[{index}] ({format:?}): autograd {analytic:e}, finite differences {numeric:e}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5 * 4, "checked only {checked} entries");
}

#[test]
fn convnet_with_softmax_head() {
    let spec = Sequential::new("small", [1, 10, 10])
        .rescaling(2.0)
        .conv2d(4, 3, Activation::Relu)
        .max_pool2d(2)
        .conv2d(6, 3, Activation::Relu)
        .flatten()
        .dense(5, Activation::Softmax);
    check(&spec, Tensor::from_slice(&[0i64, 3, 4]));
}

#[test]
fn convnet_with_sigmoid_head() {
    let spec = Sequential::new("binary", [3, 8, 8])
        .conv2d(4, 3, Activation::Relu)
        .max_pool2d(2)
        .flatten()
        .dense(6, Activation::Relu)
        .dense(1, Activation::Sigmoid);
    check(&spec, Tensor::from_slice(&[1i64, 0, 1]));
}
