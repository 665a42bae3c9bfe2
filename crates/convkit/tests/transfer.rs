//! Freezing, in the library: a fine-tuning step changes only the unfrozen parameters, and
//! frozen ones get no gradient and no optimizer state. And the names of the transfer modes.

use convkit::data::Dataset;
use convkit::models::{transfer_model, BackboneArch, TransferOptions};
use convkit::train::{FitConfig, KerasRmsProp};
use convkit::workflows::transfer::TransferMode;
use convkit::Model;
use tch::{Device, Kind, Tensor};

#[test]
fn a_fine_tuning_step_changes_only_the_unfrozen_parameters() {
    // random weights are enough: the test is about which tensors move
    let options = TransferOptions {
        image_size: 64,
        ..TransferOptions::new(BackboneArch::Vgg16)
    };
    let mut model = Model::new(&transfer_model(&options), Device::Cpu, 3).unwrap();
    assert_eq!(model.trainable_param_count(), 2 * 2 * 512 * 256 + 256 + 257);
    model
        .set_backbone_trainability(|b| b.unfreeze(&["block5".into()]))
        .unwrap();
    let before: Vec<(String, Tensor)> = model
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let images = Tensor::randint(256, [8, 3, 64, 64], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::from_slice(&[0i64, 1, 0, 1, 1, 0, 1, 0]);
    let data = Dataset::new(images, labels, vec!["cats".into(), "dogs".into()]).unwrap();
    let config = FitConfig {
        batch_size: 8,
        ..FitConfig::default()
    };
    convkit::train::fit(&mut model, &data, None, &config, &mut []).unwrap();
    let after = model.var_store().variables();
    let mut changed = Vec::new();
    for (name, old) in &before {
        let frozen = name.starts_with("vgg16.") && !name.starts_with("vgg16.block5");
        if frozen {
            assert!(old.equal(&after[name]), "frozen `{name}` changed");
            assert!(
                !after[name].grad().defined(),
                "frozen `{name}` has a gradient"
            );
        } else if !old.equal(&after[name]) {
            changed.push(name.clone());
        }
    }
    changed.sort();
    assert_eq!(
        changed,
        [
            "dense.bias",
            "dense.weight",
            "dense_1.bias",
            "dense_1.weight",
            "vgg16.block5_conv1.bias",
            "vgg16.block5_conv1.weight",
            "vgg16.block5_conv2.bias",
            "vgg16.block5_conv2.weight",
            "vgg16.block5_conv3.bias",
            "vgg16.block5_conv3.weight",
        ]
    );
    let mut optimizer = KerasRmsProp::new(model.var_store(), 1e-5, 0.9, 1e-7);
    let logits = model.forward(data.images(), true);
    optimizer.backward_step(&model.loss().unwrap().mean(&logits, data.labels()));
    assert_eq!(
        optimizer.state_count(),
        10,
        "only trainable tensors get optimizer state"
    );
}

#[test]
fn every_listed_transfer_mode_parses_and_prints_back() {
    for name in TransferMode::NAMES {
        let mode: TransferMode = name.parse().unwrap();
        assert_eq!(mode.to_string(), *name);
    }
    assert_eq!(
        "features".parse::<TransferMode>().unwrap(),
        TransferMode::Features
    );
}
