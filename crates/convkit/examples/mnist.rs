//! The chapter's MNIST convnet through the library API, in a few lines.
//!
//! ```text
//! cargo run --release -p convkit --example mnist                 # 5 epochs, all of MNIST
//! cargo run --release -p convkit --example mnist -- 1 6000 0.90  # epochs, images, minimum accuracy
//! cargo run --release -p convkit --example mnist -- 1 6000 0.90 auto  # ... and precision
//! ```
//! The data is found as the CLI finds it: `$CONVKIT_DATA/mnist`, `./data/mnist`, the cache.

use convkit::data::mnist::{load_mnist_datasets, locate_mnist};
use convkit::models::Sequential;
use convkit::nn::Activation;
use convkit::runtime::Precision;
use convkit::train::{FitConfig, ProgressBars};
use convkit::Model;

fn main() -> convkit::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .map(|s| s.parse::<f64>().expect("numeric argument"))
    };
    let epochs = arg(0).unwrap_or(5.0) as usize;
    let limit = arg(1).map_or(usize::MAX, |n| n as usize);
    let min_accuracy = arg(2);
    let precision: Precision = args.get(3).map_or(Ok(Precision::Fp32), |p| p.parse())?;

    // The model, as in the book: the same layers as `convkit::models::mnist_convnet()`.
    let spec = Sequential::new("mnist_convnet", [1, 28, 28])
        .rescaling(1.0 / 255.0)
        .conv2d(32, 3, Activation::Relu)
        .max_pool2d(2)
        .conv2d(64, 3, Activation::Relu)
        .max_pool2d(2)
        .conv2d(128, 3, Activation::Relu)
        .flatten()
        .dense(10, Activation::Softmax);

    let (train, test) = load_mnist_datasets(&locate_mnist(None)?)?;
    convkit::runtime::keep_freed_memory();
    let mut model = Model::new(&spec, tch::Device::cuda_if_available(), 1)?;
    let config = FitConfig {
        epochs,
        batch_size: 64,
        precision: Some(precision),
        ..FitConfig::default()
    };
    convkit::train::fit(
        &mut model,
        &train.take(limit),
        None,
        &config,
        &mut [&mut ProgressBars::new()],
    )?;

    let result = convkit::train::evaluate(&model, &test, 1000)?;
    println!(
        "test accuracy {:.4}, loss {:.4} ({})",
        result.accuracy,
        result.loss,
        model.precision()
    );
    let first = model
        .predict(&test.images().narrow(0, 0, 1), 1)
        .argmax(-1, false)
        .int64_value(&[0]);
    println!(
        "first test image: predicted {first}, labelled {}",
        test.labels().int64_value(&[0])
    );
    if let Some(min) = min_accuracy {
        assert!(
            result.accuracy >= min,
            "accuracy {:.4} is below {min}",
            result.accuracy
        );
    }
    Ok(())
}
