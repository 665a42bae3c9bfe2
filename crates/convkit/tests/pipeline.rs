//! The one run pipeline, as a library user drives it: presets describe runs, `run` trains
//! them, `resume` continues them. Image runs use small generated folders (two classes told
//! apart by colour); MNIST and the pretrained base use the real files
//! (`$CONVKIT_DATA`, `$CONVKIT_MODELS`, or `../shared` beside the repository; without them
//! those tests say so and pass, except under `CI=true`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use convkit::models::BackboneArch;
use convkit::runtime::Precision;
use convkit::train::interrupt;
use convkit::workflows::pipeline::{resume, run, RunOptions, RunReport};
use convkit::workflows::presets;
use convkit::workflows::run_spec::{
    Checkpoint, DataSource, ModelSource, RunKind, RunSpec, Unfreeze,
};
use convkit::workflows::transfer::TransferMode;
use convkit::Error;
use image::{ImageFormat, Rgb, RgbImage};
use tch::Device;

fn shared(env: &str, sub: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared")
            .join(sub)
    });
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} not found: set {env}", dir.display());
    } else {
        eprintln!("skipped: {} not found (set {env})", dir.display());
        None
    }
}

const OPTIONS: RunOptions = RunOptions {
    device: Device::Cpu,
    progress: false,
};

/// `train/`, `validation/` and `test/`, each with `reds/` and `blues/` of `side` x `side`
/// PNGs: noisy images whose dominant colour is the class.
fn image_folder(root: &Path, side: u32) {
    for (split, per_class) in [("train", 24), ("validation", 8), ("test", 8)] {
        for (c, class) in ["blues", "reds"].iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..per_class {
                let mut state = (i as u64 * 31 + c as u64 * 7 + split.len() as u64) | 1;
                let image = RgbImage::from_fn(side, side, |x, y| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let noise = (state % 96) as u8;
                    let base = ((x + y) % 64) as u8;
                    if c == 0 {
                        Rgb([noise, base, 150 + noise])
                    } else {
                        Rgb([150 + noise, base, noise])
                    }
                });
                image
                    .save_with_format(dir.join(format!("{i:03}.png")), ImageFormat::Png)
                    .unwrap();
            }
        }
    }
}

fn small_run(data: &Path, out: PathBuf, epochs: usize) -> RunSpec {
    let mut spec = presets::train(data.to_owned(), out);
    spec.data.decoding.as_mut().unwrap().image_size = 90;
    spec.fit.epochs = epochs;
    spec.fit.batch_size = 8;
    spec.model.augmentation = convkit::models::chapter_augmentation();
    spec.model.dropout = Some(0.5);
    spec
}

fn weights(dir: &Path) -> Vec<(String, tch::Tensor)> {
    let mut tensors = tch::Tensor::read_safetensors(dir).unwrap();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

/// Everything in the history but the clock.
fn learnt(report: &RunReport, dir: &Path) -> Vec<(usize, u64, u64, Option<u64>, f64)> {
    assert_eq!(report.out_dir, dir);
    let history = convkit::train::History::read_csv(&dir.join("history.csv")).unwrap();
    history
        .epochs
        .iter()
        .map(|r| {
            (
                r.epoch,
                r.loss.to_bits(),
                r.accuracy.to_bits(),
                r.val_loss.map(f64::to_bits),
                r.learning_rate,
            )
        })
        .collect()
}

/// A from-scratch run with augmentation, dropout and callbacks, stopped in its third epoch
/// (as Ctrl-C stops it) and resumed, ends bit for bit as the run that never stopped; its
/// folder holds a version-2 description of what ran.
#[test]
fn an_interrupted_run_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    image_folder(&data, 90);
    let mut whole = small_run(&data, dir.path().join("whole"), 4);
    whole.callbacks.push(
        convkit::workflows::run_spec::CallbackSpec::ReduceLrOnPlateau(
            convkit::train::ReduceLrOnPlateauSettings::halving(1),
        ),
    );
    let uninterrupted = run(&whole, &OPTIONS).unwrap();
    assert_eq!(uninterrupted.epochs, 4);
    assert_eq!(uninterrupted.test.unwrap().count, 16);

    let stopped_dir = dir.path().join("stopped");
    let stopped = RunSpec {
        output: convkit::workflows::run_spec::OutputSpec {
            dir: stopped_dir.clone(),
            ..whole.output.clone()
        },
        ..whole.clone()
    };
    run_stopped_after(&stopped, 2);
    assert!(!stopped_dir.join("metrics.json").exists());
    let spec = RunSpec::read(&stopped_dir.join("run.json")).unwrap();
    assert_eq!(spec.version, convkit::workflows::run_spec::RUN_VERSION);
    assert_eq!(
        spec.recorded.as_ref().unwrap().test_dir,
        Some(data.join("test"))
    );
    let resumed = resume(&stopped_dir, &OPTIONS).unwrap();

    assert_eq!(
        learnt(&resumed, &stopped_dir),
        learnt(&uninterrupted, &dir.path().join("whole"))
    );
    assert_eq!(resumed.best_epoch, uninterrupted.best_epoch);
    assert_eq!(resumed.best_validation, uninterrupted.best_validation);
    assert_eq!(resumed.test, uninterrupted.test);
    assert_same_weights(&stopped_dir, &dir.path().join("whole"));
    let again = resume(&stopped_dir, &OPTIONS).unwrap_err();
    assert!(matches!(again, Error::RunFinished { .. }), "{again}");
}

/// Runs `spec` and stops it (as Ctrl-C does) once the state of epoch `epoch` is saved.
fn run_stopped_after(spec: &RunSpec, epoch: usize) {
    let state = spec
        .output
        .dir
        .join(format!("state/epoch-{epoch:04}/state.json"));
    let watcher = std::thread::spawn(move || {
        while !state.is_file() {
            std::thread::sleep(Duration::from_millis(1));
        }
        interrupt::request_stop();
    });
    let err = run(spec, &OPTIONS).unwrap_err();
    watcher.join().unwrap();
    interrupt::clear();
    assert!(matches!(err, Error::Interrupted { .. }), "{err}");
}

/// The kept checkpoints of two run folders hold the same tensors, bit for bit.
fn assert_same_weights(a: &Path, b: &Path) {
    for file in ["last.safetensors", "best.safetensors"] {
        let (a, b) = (weights(&a.join(file)), weights(&b.join(file)));
        assert_eq!(a.len(), b.len());
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x.equal(y), "{file}: `{name}` differs");
        }
    }
}

/// A run asked for in `auto` precision and resumed on a machine where `auto` means the
/// other precision (bf16 units or not) continues in the precision it started in, bit for
/// bit. Here the run starts in the precision this machine's `auto` does not pick, and its
/// description then says `auto`, as on the machine it would have started on.
#[test]
fn a_resumed_run_keeps_the_precision_it_started_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    image_folder(&data, 90);
    let other = match Precision::Auto.resolve(Device::Cpu) {
        Precision::Bf16 => Precision::Fp32,
        _ => Precision::Bf16,
    };
    let mut whole = small_run(&data, dir.path().join("whole"), 2);
    whole.fit.precision = Some(other);
    let uninterrupted = run(&whole, &OPTIONS).unwrap();
    let stopped_dir = dir.path().join("stopped");
    let mut stopped = whole.clone();
    stopped.output.dir = stopped_dir.clone();
    run_stopped_after(&stopped, 1);
    let config = stopped_dir.join("run.json");
    let mut started = RunSpec::read(&config).unwrap();
    assert_eq!(started.recorded.as_ref().unwrap().precision, other);
    started.fit.precision = Some(Precision::Auto);
    started.write(&config).unwrap();

    let resumed = resume(&stopped_dir, &OPTIONS).unwrap();
    let whole_dir = dir.path().join("whole");
    assert_eq!(
        learnt(&resumed, &stopped_dir),
        learnt(&uninterrupted, &whole_dir)
    );
    assert_eq!(resumed.precision, other);
    assert_same_weights(&stopped_dir, &whole_dir);
}

/// Settings that cannot go together are refused before anything is read or written.
#[test]
fn impossible_descriptions_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = presets::train(dir.path().join("nowhere"), dir.path().join("run"));
    spec.model.source = ModelSource::Pretrained {
        base: BackboneArch::Vgg16,
        head: None,
        mode: TransferMode::Features,
        weights: None,
        features_cache: None,
        unfreeze: Unfreeze::default(),
    };
    spec.model.augmentation = convkit::models::chapter_augmentation();
    let err = run(&spec, &OPTIONS).unwrap_err().to_string();
    assert!(err.contains("augmentation needs --mode frozen"), "{err}");
    spec.model.augmentation = Vec::new();
    spec.output.checkpoint = Checkpoint::Last;
    let err = run(&spec, &OPTIONS).unwrap_err().to_string();
    assert!(err.contains("does not apply to --mode features"), "{err}");
    let mut mnist_on_images = presets::train(dir.path().into(), dir.path().join("run"));
    mnist_on_images.model.source = ModelSource::Scratch {
        architecture: convkit::models::ScratchModel::MnistConvnet,
    };
    let err = run(&mnist_on_images, &OPTIONS).unwrap_err().to_string();
    assert!(err.contains("mnist-convnet"), "{err}");
    // No epochs: once this loaded the data, trained nothing, and failed on a missing
    // best.json.
    let mut no_epochs = presets::train(dir.path().into(), dir.path().join("run"));
    no_epochs.fit.epochs = 0;
    let err = run(&no_epochs, &OPTIONS).unwrap_err().to_string();
    assert!(err.contains("epochs must be at least 1"), "{err}");
    assert!(!dir.path().join("run").exists());
}

/// The MNIST preset: the last epoch kept as `model.safetensors`, measured on the 10,000
/// test images.
#[test]
fn the_mnist_preset_runs_through_the_pipeline() {
    let Some(data) = shared("CONVKIT_DATA", "data") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut spec = presets::mnist(dir.path().join("mnist"));
    spec.data.source = DataSource::Mnist {
        dir: Some(data.join("mnist")),
        limit: Some(1200),
    };
    spec.fit.epochs = 1;
    let report = run(&spec, &OPTIONS).unwrap();
    assert_eq!(report.kind, RunKind::Mnist);
    assert_eq!((report.train_count, report.validation_count), (1080, 120));
    let test = report.test.unwrap();
    assert_eq!(test.count, 10_000);
    assert!(test.accuracy > 0.5, "well above chance (0.1): {test:?}");
    assert_eq!(report.best_epoch, 1);
    assert!(dir.path().join("mnist/model.safetensors").is_file());
    assert!(!dir.path().join("mnist/best.safetensors").exists());
    let read = RunReport::read(&dir.path().join("mnist/metrics.json")).unwrap();
    assert_eq!(read.test, report.test);
}

/// Transfer learning on VGG16's real weights: the head on cached features, the frozen base
/// end to end, then fine-tuning of block5 from the features run, recorded as what it is.
#[test]
fn features_frozen_and_fine_tuning_run_through_the_pipeline() {
    let Some(models) = shared("CONVKIT_MODELS", "models") else {
        return;
    };
    let weights = models.join("vgg16_convbase_torchvision/vgg16_convbase.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    image_folder(&data, 32);
    let on_vgg16 = |name: &str, mode: TransferMode| {
        let mut spec = presets::train(data.clone(), dir.path().join(name));
        spec.data.decoding.as_mut().unwrap().image_size = 32;
        spec.fit.epochs = 2;
        spec.model.source = ModelSource::Pretrained {
            base: BackboneArch::Vgg16,
            head: None,
            mode,
            weights: Some(weights.clone()),
            features_cache: Some(dir.path().join("features-cache")),
            unfreeze: Unfreeze::default(),
        };
        spec
    };
    let features = run(&on_vgg16("features", TransferMode::Features), &OPTIONS).unwrap();
    assert!(features.features.is_some());
    assert_eq!(features.trainable_params, features.params - 14_714_688);
    let mut frozen = on_vgg16("frozen", TransferMode::Frozen);
    frozen.model.augmentation = vec![convkit::models::LayerSpec::RandomFlip(
        convkit::augment::RandomFlipSpec::new(convkit::augment::FlipMode::Horizontal),
    )];
    let frozen = run(&frozen, &OPTIONS).unwrap();
    assert!(frozen.features.is_none());
    assert_eq!(frozen.trainable_params, features.trainable_params);

    let unfreeze = Unfreeze {
        layers: vec!["block5".into()],
        last: None,
    };
    let mut finetune = presets::finetune(
        &dir.path().join("features"),
        unfreeze,
        dir.path().join("ft"),
    )
    .unwrap();
    finetune.fit.epochs = 1;
    finetune.model.augmentation = convkit::models::chapter_augmentation();
    let tuned = run(&finetune, &OPTIONS).unwrap();
    assert_eq!(tuned.kind, RunKind::Finetune);
    assert_eq!(
        tuned.trainable_params,
        features.trainable_params + 7_079_424,
        "block5's three convolutions train too"
    );
    let recorded = RunSpec::read(&dir.path().join("ft/run.json")).unwrap();
    assert_eq!(recorded.kind, RunKind::Finetune);
    assert!(matches!(
        recorded.model.source,
        ModelSource::Checkpoint { ref path, .. } if path.ends_with("features/best.safetensors")
    ));
    assert_eq!(recorded.fit.optimizer.learning_rate(), 1e-5);
}
