//! Transfer learning in a few library calls: a head on a frozen pretrained base, trained on
//! cached features, then fine-tuned end to end with the base's last layers unfrozen.
//!
//! ```text
//! CONVKIT_DATA=../shared/data CONVKIT_MODELS=../shared/models \
//!   cargo run --release -p convkit --example transfer -- [BACKBONE] [EPOCHS]
//! ```
//! BACKBONE is vgg16, mobilenet_v2 or efficientnet_lite0 (default); the data is
//! `$CONVKIT_DATA/cats_vs_dogs` (train/ and validation/ folders).

use std::path::PathBuf;

use convkit::data::image_folder::{ImageFolder, ImageOptions};
use convkit::models::pretrained::locate_weights;
use convkit::models::{transfer_model, BackboneArch, TransferOptions};
use convkit::train::{FitConfig, Optimizer, ProgressBars};
use convkit::workflows::features::FeatureCache;
use convkit::workflows::transfer::prepare_features;
use convkit::Model;

fn main() -> convkit::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch = BackboneArch::from_name(args.first().map_or("efficientnet_lite0", String::as_str))?;
    let epochs: usize = args
        .get(1)
        .map_or(5, |e| e.parse().expect("EPOCHS is a number"));
    let data = PathBuf::from(std::env::var_os("CONVKIT_DATA").expect("set CONVKIT_DATA"))
        .join("cats_vs_dogs");
    let device = convkit::device::parse_device("auto")?;
    convkit::runtime::keep_freed_memory();

    let options = ImageOptions::default(); // 180x180, bilinear, as the chapter
    let train = ImageFolder::scan(&data.join("train"))?
        .load(&options, false)?
        .dataset;
    let validation = ImageFolder::scan(&data.join("validation"))?
        .load(&options, false)?
        .dataset;

    // A head on a frozen base: the base's weights come from $CONVKIT_MODELS (or the cache)
    let mut model = Model::new(&transfer_model(&TransferOptions::new(arch)), device, 1)?;
    model.set_classes(train.classes().to_vec())?;
    let weights = locate_weights(arch, None)?;
    model.load_pretrained(&weights)?;
    println!(
        "{}: {} parameters, {} trainable",
        model.spec().name,
        model.param_count(),
        model.trainable_param_count()
    );

    // Features, computed once per image and cached on disk; the head trains on them alone
    let mut splits = prepare_features(
        &model,
        &weights,
        [Some(&train), Some(&validation), None],
        FeatureCache::user_default(),
        32,
        true,
    )?;
    let config = FitConfig {
        epochs,
        ..FitConfig::default()
    };
    convkit::train::fit(
        &mut splits.head,
        &splits.train,
        Some(&splits.validation),
        &config,
        &mut [&mut ProgressBars::new()],
    )?;
    model.copy_parameters_from(&splits.head)?;
    println!(
        "head on features: validation accuracy {:.4}",
        convkit::train::evaluate(&model, &validation, 32)?.accuracy
    );

    // Fine-tuning: unfreeze the base's last two layers, RMSprop at 1e-5, end to end
    model.set_backbone_trainability(|base| base.unfreeze_last(2))?;
    let config = FitConfig {
        epochs: 1,
        optimizer: Optimizer::rmsprop().with_learning_rate(1e-5),
        ..FitConfig::default()
    };
    convkit::train::fit(
        &mut model,
        &train,
        Some(&validation),
        &config,
        &mut [&mut ProgressBars::new()],
    )?;
    println!(
        "fine-tuned: validation accuracy {:.4}",
        convkit::train::evaluate(&model, &validation, 32)?.accuracy
    );
    Ok(())
}
