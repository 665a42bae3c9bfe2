//! Throughput of convkit's hot paths, measured the way `shared/bench/torch_reference.py`
//! measures PyTorch's: 2 warm-up steps, then steps for at least `--seconds`, one JSON line.
//!
//! ```text
//! cargo run --release -p convkit --example bench -- a [--seconds 10] [--precision fp32|bf16]
//!     [--memory-format channels_last|contiguous] [--system-allocator]
//! ```
//! Every workload runs in the `--precision` given (default fp32; bf16 is autocast, as the
//! reference's `--bf16`) and with the model's default memory format (channels_last) unless
//! `--memory-format` says otherwise. Inference runs in libtorch's inference mode, as the
//! reference's `torch.inference_mode()`. `--system-allocator` skips
//! `runtime::keep_freed_memory()`, which the `convkit` command calls at start.
//!
//! Workloads:
//! - `a`: a training step of the MNIST convnet (forward, loss, backward, RMSprop), batch 64,
//!   synthetic input, through the same code as `train::fit`.
//! - `a_inf`: MNIST convnet inference, batch 64.
//! - `b`: a training step of the chapter's cats-vs-dogs convnet, 180x180x3, batch 32.
//! - `c [--backbone NAME] [--size N]`: inference of a pretrained network's convolutional
//!   base (default VGG16, as the reference's `c`; also mobilenet_v2, efficientnet_lite0),
//!   batch 16, 180x180 (`--size`), random weights, without gradients.
//! - `d --data DIR [--threads N]`: decode + resize to 180x180 of the JPEGs under DIR, on N
//!   threads (default: all cores; the reference uses one process).
//! - `d_check`: reading the same files and checking that each is whole
//!   (`data::image_integrity`), without decoding: the check's share of `d`.
//! - `state [--model mnist|cats|vgg16]`: the cost of the resumable state written after
//!   every epoch (weights, optimizer moments, `state.json`): seconds per write and bytes, for
//!   the MNIST convnet, the chapter's cats convnet, or VGG16 frozen under the chapter's head.
//! - `e`: a training step of EfficientNet-Lite0 frozen + the chapter's augmentation (flip,
//!   rotation 0.1, zoom 0.2) + pooled head, 224x224, batch 32 (`bench/backbones_reference.py
//!   e` in PyTorch).

use std::time::Instant;

use convkit::data::image_folder::{load_image, ImageOptions};
use convkit::data::image_integrity::check_complete;
use convkit::models::chapter_augmentation;
use convkit::models::{
    mnist_convnet, small_convnet, transfer_model, BackboneArch, BackboneSpec, Head, ScratchOptions,
    TransferOptions,
};
use convkit::models::{LayerSpec, Sequential};
use convkit::runtime::{InferenceMode, MemoryFormat, Precision};
use convkit::train::Optimizer;
use convkit::Model;
use image::ImageFormat;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

fn rate(mut step: impl FnMut(), batch: usize, seconds: f64, warmup: usize) -> f64 {
    for _ in 0..warmup {
        step();
    }
    let (mut n, start) = (0usize, Instant::now());
    while n < 3 || start.elapsed().as_secs_f64() < seconds {
        step();
        n += 1;
    }
    (n * batch) as f64 / start.elapsed().as_secs_f64()
}

fn main() -> convkit::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workload = args.first().map(String::as_str).unwrap_or("a").to_owned();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds = flag("--seconds").map_or(10.0, |s| s.parse().expect("--seconds takes a number"));
    let threads = convkit::device::set_threads(
        flag("--threads").map(|n| n.parse().expect("--threads takes a number")),
    );
    if !args.iter().any(|a| a == "--system-allocator") {
        convkit::runtime::keep_freed_memory();
    }
    let precision: Precision = flag("--precision").map_or(Ok(Precision::Fp32), |p| p.parse())?;
    let memory_format = match flag("--memory-format").as_deref() {
        None | Some("channels_last") => MemoryFormat::ChannelsLast,
        Some("contiguous") => MemoryFormat::Contiguous,
        Some(other) => panic!("--memory-format takes channels_last or contiguous, not {other}"),
    };
    let build = |spec: &Sequential| -> convkit::Result<Model> {
        let mut model = Model::new(spec, Device::Cpu, 1)?;
        model.set_precision(precision);
        model.set_memory_format(memory_format)?;
        Ok(model)
    };
    tch::manual_seed(1);
    if workload == "state" {
        return state_cost(&flag("--model").unwrap_or("mnist".into()), &build);
    }
    let images_per_s = match workload.as_str() {
        "a" => {
            let model = build(&mnist_convnet())?;
            let loss = model.loss()?;
            let mut optimizer = Optimizer::rmsprop().build(model.var_store())?;
            let x = Tensor::rand([64, 1, 28, 28], (Kind::Float, Device::Cpu)) * 255.0;
            let y = Tensor::randint(10, [64], (Kind::Int64, Device::Cpu));
            rate(
                || optimizer.backward_step(&loss.mean(&model.forward(&x, true), &y)),
                64,
                seconds,
                2,
            )
        }
        "a_inf" => {
            let model = build(&mnist_convnet())?;
            let x = Tensor::rand([64, 1, 28, 28], (Kind::Float, Device::Cpu)) * 255.0;
            let _guard = InferenceMode::new();
            rate(|| drop(model.forward(&x, false)), 64, seconds, 2)
        }
        "b" => {
            let model = build(&small_convnet(&ScratchOptions::default()))?;
            let loss = model.loss()?;
            let mut optimizer = Optimizer::rmsprop().build(model.var_store())?;
            let x = Tensor::rand([32, 3, 180, 180], (Kind::Float, Device::Cpu)) * 255.0;
            let y = Tensor::randint(2, [32], (Kind::Int64, Device::Cpu));
            rate(
                || optimizer.backward_step(&loss.mean(&model.forward(&x, true), &y)),
                32,
                seconds,
                2,
            )
        }
        "c" => {
            let arch = BackboneArch::from_name(&flag("--backbone").unwrap_or("vgg16".into()))?;
            let size: i64 =
                flag("--size").map_or(180, |s| s.parse().expect("--size takes a number"));
            let spec = Sequential::new("bench", [3, size, size])
                .add(LayerSpec::Backbone(BackboneSpec::frozen_base(arch)));
            let model = build(&spec)?;
            let x = Tensor::rand([16, 3, size, size], (Kind::Float, Device::Cpu)) * 255.0;
            let _guard = InferenceMode::new();
            rate(|| drop(model.forward(&x, false)), 16, seconds, 1)
        }
        "d" | "d_check" => {
            let dir = flag("--data").expect("d needs --data DIR");
            let mut files = Vec::new();
            let mut stack = vec![std::path::PathBuf::from(dir)];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).expect("readable folder") {
                    let path = entry.expect("entry").path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| {
                        e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg")
                    }) {
                        files.push(path);
                    }
                }
            }
            files.sort();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            let options = ImageOptions::default();
            let start = Instant::now();
            let check_only = workload == "d_check";
            let decoded: usize = pool.install(|| {
                files
                    .par_iter()
                    .map(|f| {
                        if check_only {
                            let bytes = std::fs::read(f).expect("readable file");
                            let whole = check_complete(&bytes, ImageFormat::Jpeg).is_ok();
                            usize::from(whole)
                        } else {
                            load_image(f, &options).map(|p| p.len()).unwrap_or(0)
                        }
                    })
                    .filter(|&n| n > 0)
                    .count()
            });
            assert_eq!(decoded, files.len(), "every file decodes and is whole");
            decoded as f64 / start.elapsed().as_secs_f64()
        }
        "e" => {
            let spec = transfer_model(&TransferOptions {
                image_size: 224,
                head: Head::Pooled,
                augmentation: chapter_augmentation(),
                ..TransferOptions::new(BackboneArch::EfficientnetLite0)
            });
            let model = build(&spec)?;
            let loss = model.loss()?;
            let mut optimizer = Optimizer::rmsprop().build(model.var_store())?;
            let x = Tensor::randint(256, [32, 3, 224, 224], (Kind::Uint8, Device::Cpu));
            let y = Tensor::randint(2, [32], (Kind::Int64, Device::Cpu));
            rate(
                || optimizer.backward_step(&loss.mean(&model.forward(&x, true), &y)),
                32,
                seconds,
                2,
            )
        }
        other => {
            eprintln!("unknown workload `{other}`: a, a_inf, b, c, d or e");
            std::process::exit(2);
        }
    };
    let workload = match (workload.as_str(), flag("--backbone")) {
        ("c", Some(backbone)) => format!("c_{backbone}"),
        _ => workload,
    };
    println!(
        "{{\"engine\": \"convkit {} (tch 0.26, libtorch 2.13)\", \"threads\": {threads}, \"workload\": \"{workload}\", \"precision\": \"{precision}\", \"memory_format\": \"{}\", \"images_per_s\": {images_per_s:.1}}}",
        env!("CARGO_PKG_VERSION"),
        memory_format.name()
    );
    Ok(())
}

/// Times the resumable state's write for one of the chapter's models, after one training
/// step (so that the optimizer has its moments), and prints one JSON line.
fn state_cost(
    name: &str,
    build: &dyn Fn(&Sequential) -> convkit::Result<Model>,
) -> convkit::Result<()> {
    use convkit::train::{OptimizerSnapshot, StateDir, TrainingState};
    let spec = match name {
        "mnist" => mnist_convnet(),
        "cats" => small_convnet(&ScratchOptions::default()),
        "vgg16" => transfer_model(&TransferOptions::new(BackboneArch::Vgg16)),
        other => panic!("--model takes mnist, cats or vgg16, not {other}"),
    };
    let model = build(&spec)?;
    let mut optimizer = Optimizer::rmsprop().build(model.var_store())?;
    let mut shape = vec![4];
    shape.extend(&spec.input_shape);
    let x = Tensor::randint(256, shape.as_slice(), (Kind::Uint8, Device::Cpu));
    let y = Tensor::randint(2, [4], (Kind::Int64, Device::Cpu));
    let loss = model.loss()?;
    optimizer.backward_step(&loss.mean(&model.forward(&x, true), &y));
    let dir = tempfile::tempdir().expect("a scratch folder");
    let states = StateDir::new(dir.path().join("state"));
    let saves = 5;
    let start = Instant::now();
    for epoch in 1..=saves {
        let weights = convkit::weights::cpu_variables(model.var_store());
        let snapshot: OptimizerSnapshot = optimizer.snapshot(model.var_store())?;
        states.save(
            &TrainingState::new(epoch, 100, 0),
            &weights,
            &snapshot,
            None,
        )?;
    }
    let seconds = start.elapsed().as_secs_f64() / saves as f64;
    let latest = states.latest()?.expect("a state was written");
    let bytes: u64 = std::fs::read_dir(&latest.dir)
        .expect("the state folder")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum();
    println!(
        "{{\"workload\": \"state\", \"model\": \"{name}\", \"params\": {}, \"trainable_params\": {}, \"seconds_per_write\": {seconds:.4}, \"bytes\": {bytes}}}",
        model.param_count(),
        model.trainable_param_count()
    );
    Ok(())
}
