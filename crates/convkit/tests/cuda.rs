//! The CUDA path: the same training step and evaluation on a GPU as on the CPU. Skipped (with
//! a note) where libtorch sees no CUDA device; run on a GPU machine to exercise it.

use convkit::data::Dataset;
use convkit::device::parse_device;
use convkit::models::mnist_convnet;
use convkit::train::FitConfig;
use convkit::Model;
use tch::{Device, Kind, Tensor};

fn synthetic(n: i64) -> Dataset {
    tch::manual_seed(0);
    let images = Tensor::randint(256, [n, 1, 28, 28], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    Dataset::new(images, labels, (0..10).map(|d| d.to_string()).collect()).unwrap()
}

#[test]
fn trains_and_evaluates_on_cuda_like_on_cpu() {
    if !tch::Cuda::is_available() {
        eprintln!("skipped: no CUDA device visible to libtorch");
        return;
    }
    let device = parse_device("cuda").unwrap();
    assert_eq!(device, Device::Cuda(0));
    assert_eq!(parse_device("auto").unwrap(), Device::Cuda(0));
    let data = synthetic(256);
    let config = FitConfig {
        epochs: 1,
        batch_size: 64,
        ..FitConfig::default()
    };
    let mut gpu = Model::new(&mnist_convnet(), device, 3).unwrap();
    let mut cpu = Model::new(&mnist_convnet(), Device::Cpu, 3).unwrap();
    let h_gpu = convkit::train::fit(&mut gpu, &data, Some(&data), &config, &mut []).unwrap();
    let h_cpu = convkit::train::fit(&mut cpu, &data, Some(&data), &config, &mut []).unwrap();
    let (g, c) = (h_gpu.last().unwrap(), h_cpu.last().unwrap());
    assert!(
        (g.loss - c.loss).abs() < 1e-3,
        "gpu {} cpu {}",
        g.loss,
        c.loss
    );
    assert!((g.val_loss.unwrap() - c.val_loss.unwrap()).abs() < 1e-3);
    // Saved on the GPU, loaded on the CPU.
    let dir = tempfile::tempdir().unwrap();
    gpu.save(&dir.path().join("m.safetensors")).unwrap();
    let back = Model::load(&dir.path().join("m.safetensors"), Device::Cpu).unwrap();
    let e_back = convkit::train::evaluate(&back, &data, 100).unwrap();
    let e_gpu = convkit::train::evaluate(&gpu, &data, 100).unwrap();
    assert!((e_back.loss - e_gpu.loss).abs() < 1e-4);
}

/// bf16 autocast on the GPU: `auto` follows the compute capability, a bf16 epoch lands
/// near the fp32 one, and the parameters stay fp32.
#[test]
fn bf16_on_cuda_follows_the_compute_capability() {
    use convkit::runtime::{bf16_is_native, cuda_compute_capability, Precision};
    if !tch::Cuda::is_available() {
        eprintln!("skipped: no CUDA device visible to libtorch");
        return;
    }
    let capability = cuda_compute_capability(0).expect("a visible GPU has a compute capability");
    assert_eq!(bf16_is_native(Device::Cuda(0)), capability >= (8, 0));
    let expected = if capability >= (8, 0) {
        Precision::Bf16
    } else {
        Precision::Fp32
    };
    assert_eq!(Precision::Auto.resolve(Device::Cuda(0)), expected);
    let data = synthetic(256);
    let run = |precision| {
        let mut model = Model::new(&mnist_convnet(), Device::Cuda(0), 3).unwrap();
        let config = FitConfig {
            epochs: 1,
            batch_size: 64,
            precision: Some(precision),
            ..FitConfig::default()
        };
        let history =
            convkit::train::fit(&mut model, &data, Some(&data), &config, &mut []).unwrap();
        assert!(model
            .var_store()
            .variables()
            .values()
            .all(|t| t.kind() == Kind::Float));
        history.last().unwrap().val_loss.unwrap()
    };
    let (fp32, bf16) = (run(Precision::Fp32), run(Precision::Bf16));
    assert!((fp32 - bf16).abs() < 0.05 * fp32, "fp32 {fp32} bf16 {bf16}");
}
