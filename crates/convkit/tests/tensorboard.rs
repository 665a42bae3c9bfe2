//! TensorBoard event files: what convkit writes, read back by TensorBoard's own Python reader
//! (`EventAccumulator`, from the venv of `cargo xtask`, given as `$CONVKIT_PYTHON`), and what
//! TensorBoard's writer writes (the fixture), read back by convkit's reader.
//!
//! Without `$CONVKIT_PYTHON` the Python checks say so and pass, except under `CI=true`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use convkit::augment::{FlipMode, RandomFlipSpec};
use convkit::data::Dataset;
use convkit::models::Sequential;
use convkit::nn::Activation;
use convkit::report::tensorboard::proto::{Kind, What};
use convkit::report::tensorboard::{read_events, scalars, EventWriter};
use convkit::report::TensorBoardLog;
use convkit::train::{Callback, FitConfig, HistoryCsv};
use convkit::Model;
use tch::{Device, Tensor};

/// Reads each folder with TensorBoard's `EventAccumulator` and prints, per folder, every
/// scalar as `[step, value]` and every image as `[step, width, height, bytes]`, by tag.
const READ_WITH_TENSORBOARD: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

out = {}
for folder in sys.argv[1:]:
    acc = EventAccumulator(folder, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    out[folder] = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "images": {
            t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in acc.Images(t)]
            for t in tags["images"]
        },
    }
print(json.dumps(out))
"#;

fn python() -> Option<PathBuf> {
    match std::env::var_os("CONVKIT_PYTHON") {
        Some(python) => Some(PathBuf::from(python)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CONVKIT_PYTHON is not set: run the tests through `cargo xtask`")
        }
        None => {
            eprintln!("skipped: CONVKIT_PYTHON is not set (run through `cargo xtask test`)");
            None
        }
    }
}

/// What TensorBoard reads in one folder.
#[derive(Debug, Default, serde::Deserialize)]
struct Read {
    scalars: BTreeMap<String, Vec<(i64, f64)>>,
    images: BTreeMap<String, Vec<(i64, u32, u32, usize)>>,
}

fn read_with_tensorboard(python: &Path, folders: &[&Path]) -> Vec<Read> {
    let output = Command::new(python)
        .arg("-c")
        .arg(READ_WITH_TENSORBOARD)
        .args(folders)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "TensorBoard's reader failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut all: BTreeMap<String, Read> = serde_json::from_slice(&output.stdout).unwrap();
    folders
        .iter()
        .map(|f| all.remove(f.to_str().unwrap()).unwrap_or_default())
        .collect()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x * 40) as u8, (y * 40) as u8, 128, 255])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

#[test]
fn tensorboard_reads_every_scalar_and_image_convkit_writes() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut writer = EventWriter::create(dir.path()).unwrap();
    let losses = [std::f64::consts::LN_2, 0.1, 1e-7, 12.5];
    for (i, loss) in losses.iter().enumerate() {
        let step = i as i64 + 1;
        writer.add_scalar("epoch_loss", step, *loss).unwrap();
        writer
            .add_scalar("epoch_accuracy", step, 1.0 / step as f64)
            .unwrap();
    }
    let image = png(7, 5);
    writer.add_png("augmentation", 0, &image, 7, 5).unwrap();
    writer.add_png("confusion", 4, &png(3, 3), 3, 3).unwrap();
    drop(writer);

    let read = read_with_tensorboard(&python, &[dir.path()]).remove(0);
    let as_f32 = |v: f64| f64::from(v as f32);
    let expected_loss: Vec<(i64, f64)> = (1..)
        .zip(losses)
        .map(|(step, loss)| (step, as_f32(loss)))
        .collect();
    assert_eq!(read.scalars["epoch_loss"], expected_loss);
    let expected_accuracy: Vec<(i64, f64)> = (1..=4).map(|s| (s, as_f32(1.0 / s as f64))).collect();
    assert_eq!(read.scalars["epoch_accuracy"], expected_accuracy);
    assert_eq!(read.scalars.len(), 2);
    assert_eq!(read.images["augmentation"], [(0, 7, 5, image.len())]);
    let (step, width, height, _) = read.images["confusion"][0];
    assert_eq!((step, width, height), (4, 3, 3));
}

/// A run of the real fit loop, killed after its fifth epoch's events but with its state
/// after the third, then resumed: TensorBoard reads each tag once per epoch, with the
/// resumed run's values, and the augmentation grid once.
#[test]
fn a_resumed_fit_logs_each_epoch_once() {
    let Some(python) = python() else { return };
    let run = tempfile::tempdir().unwrap();
    let state = run.path().join("state");
    let fit = |epochs: usize| {
        let data = data();
        let mut model = model();
        let config = FitConfig {
            epochs,
            batch_size: 4,
            seed: 3,
            state_dir: Some(state.clone()),
            ..FitConfig::default()
        };
        let mut tensorboard = TensorBoardLog::for_run(run.path());
        tensorboard
            .add_augmentation_grid(model.spec(), &data, 3)
            .unwrap();
        let mut history = HistoryCsv(run.path().join("history.csv"));
        let mut callbacks: Vec<&mut dyn Callback> = vec![&mut history, &mut tensorboard];
        convkit::train::fit(&mut model, &data, Some(&data), &config, &mut callbacks).unwrap()
    };
    fit(3);
    let saved = run.path().join("state-after-3");
    copy_dir(&state, &saved);
    fit(5);
    // The kill: the events of epochs 4 and 5 are on disk, the state is that of epoch 3.
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::rename(&saved, &state).unwrap();
    let history = fit(5);

    let train = run.path().join("tensorboard/train");
    let validation = run.path().join("tensorboard/validation");
    let read = read_with_tensorboard(&python, &[&train, &validation]);
    let (train, validation) = (&read[0], &read[1]);
    let steps = |series: &[(i64, f64)]| series.iter().map(|(s, _)| *s).collect::<Vec<_>>();
    for tag in ["epoch_loss", "epoch_accuracy", "epoch_learning_rate"] {
        assert_eq!(steps(&train.scalars[tag]), [1, 2, 3, 4, 5], "train {tag}");
    }
    for tag in ["epoch_loss", "epoch_accuracy"] {
        assert_eq!(
            steps(&validation.scalars[tag]),
            [1, 2, 3, 4, 5],
            "validation {tag}"
        );
    }
    let f32_of = |v: f64| f64::from(v as f32);
    for (record, (_, loss)) in history.epochs.iter().zip(&train.scalars["epoch_loss"]) {
        assert_eq!(*loss, f32_of(record.loss), "epoch {}", record.epoch);
    }
    for (record, (_, loss)) in history.epochs.iter().zip(&validation.scalars["epoch_loss"]) {
        assert_eq!(
            Some(*loss),
            record.val_loss.map(f32_of),
            "epoch {}",
            record.epoch
        );
    }
    let grid = &train.images["augmentation"];
    assert_eq!(grid.len(), 1, "{grid:?}");
    assert_eq!(
        (grid[0].0, grid[0].1, grid[0].2),
        (0, 3 * 8 + 24, 3 * 6 + 24)
    );
    assert!(validation.images.is_empty());
}

/// The fixture was written by PyTorch's `SummaryWriter` (TensorBoard's event-file writer);
/// `make_tensorboard_fixture.py` beside it made it. Both checksums of every record are
/// verified by the reader; the histogram is a kind convkit does not read and is skipped.
#[test]
fn convkit_reads_an_event_file_tensorboard_wrote() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_summary_writer.tfevents");
    let events = read_events(&path).unwrap();
    assert_eq!(events.len(), 1 + 6 + 1 + 1);
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".into()))
    );
    let got: Vec<(String, i64, f32)> = scalars(&events)
        .into_iter()
        .map(|s| (s.tag, s.step, s.value))
        .collect();
    let expected = [
        ("epoch_loss", 1, 0.5),
        ("epoch_accuracy", 1, 0.75),
        ("epoch_loss", 2, 0.25),
        ("epoch_accuracy", 2, 0.875),
        ("epoch_loss", 3, 0.125),
        ("epoch_accuracy", 3, 0.9375),
    ]
    .map(|(tag, step, value)| (tag.to_string(), step, value));
    assert_eq!(got, expected);
    let value = &events[7].values()[0];
    assert_eq!((value.tag.as_str(), events[7].step), ("grid", 0));
    let Some(Kind::Image(image)) = &value.kind else {
        panic!("not an image: {value:?}");
    };
    assert_eq!((image.width, image.height, image.colorspace), (3, 2, 3));
    let decoded = image::load_from_memory(&image.encoded_image_string).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (3, 2));
    let histogram = &events[8].values()[0];
    assert_eq!(
        (histogram.tag.as_str(), histogram.kind.is_none()),
        ("weights", true)
    );
}

fn data() -> Dataset {
    tch::manual_seed(0);
    let images = Tensor::randint(256, [12, 3, 6, 8], (tch::Kind::Uint8, Device::Cpu));
    let labels = Tensor::randint(2, [12], (tch::Kind::Int64, Device::Cpu));
    Dataset::new(images, labels, vec!["a".into(), "b".into()]).unwrap()
}

fn model() -> Model {
    let spec = Sequential::new("logged", [3, 6, 8])
        .add(RandomFlipSpec::new(FlipMode::Horizontal))
        .rescaling(1.0 / 255.0)
        .flatten()
        .dense(2, Activation::Softmax);
    Model::new(&spec, Device::Cpu, 1).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
