//! TensorBoard logs of a run, laid out as Keras' TensorBoard callback lays them out:
//! `RUN/tensorboard/train/` and `RUN/tensorboard/validation/`, one event file per process in
//! each (see [`crate::report::tensorboard`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tch::Device;

use crate::data::ImageDataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::models::Sequential;
use crate::report::augmentation_grid;
use crate::report::tensorboard::writer::png_size;
use crate::report::tensorboard::{discard_steps_after, remove_event_files, EventWriter};
use crate::train::{Callback, History, TrainControl};

/// The two runs of a training's logs, as TensorBoard lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSplit {
    /// `train/`: training loss, accuracy, learning rate, and the augmentation grid.
    Train,
    /// `validation/`: validation loss and accuracy.
    Validation,
}

impl LogSplit {
    /// The sub-folder's name.
    pub fn folder(self) -> &'static str {
        match self {
            LogSplit::Train => "train",
            LogSplit::Validation => "validation",
        }
    }
}

/// A PNG waiting for the logs to be opened.
#[derive(Debug)]
struct PendingImage {
    split: LogSplit,
    tag: String,
    step: i64,
    png: Vec<u8>,
    width: u32,
    height: u32,
}

/// Writes TensorBoard logs after every epoch, step = the 1-based epoch (as `history.csv`
/// counts; Keras counts from 0): `epoch_loss`, `epoch_accuracy` and `epoch_learning_rate`
/// in `train/`, `epoch_loss` and `epoch_accuracy` in `validation/` (when the run has
/// validation data). Images added before training (the augmentation grid, at step 0) are
/// written when the first epoch starts.
///
/// A resumed run continues the same series without duplicates: when the loop starts at
/// epoch K+1, the events of steps after K that a killed process had written are dropped
/// from the folder's files (each rewritten atomically), and new events go to a new file.
/// A run that starts at epoch 1 replaces the logs of an earlier run in the same folder.
///
/// ```no_run
/// # use convkit::{data::Dataset, report::TensorBoardLog, train::FitConfig, Model};
/// # fn main() -> convkit::Result<()> {
/// # let (mut model, train, validation): (Model, Dataset, Dataset) = unimplemented!();
/// let mut tensorboard = TensorBoardLog::for_run(std::path::Path::new("runs/a"));
/// convkit::train::fit(&mut model, &train, Some(&validation), &FitConfig::default(), &mut [&mut tensorboard])?;
/// // tensorboard --logdir runs/a/tensorboard
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TensorBoardLog {
    dir: PathBuf,
    pending: Vec<PendingImage>,
    /// The epochs already logged when the logs were opened; `None` before.
    resumed_after: Option<i64>,
    train: Option<EventWriter>,
    validation: Option<EventWriter>,
}

impl TensorBoardLog {
    /// Logs under `dir`, in `dir/train/` and `dir/validation/`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TensorBoardLog {
            dir: dir.into(),
            pending: Vec::new(),
            resumed_after: None,
            train: None,
            validation: None,
        }
    }

    /// The logs of the run folder `run_dir`: `run_dir/tensorboard/`.
    pub fn for_run(run_dir: &Path) -> Self {
        TensorBoardLog::new(run_dir.join("tensorboard"))
    }

    /// The folder given to `tensorboard --logdir`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of `split`'s event files.
    pub fn split_dir(&self, split: LogSplit) -> PathBuf {
        self.dir.join(split.folder())
    }

    /// Adds the PNG image `png` (`width` x `height` pixels) as image `tag` at `step` of
    /// `split`. Before training starts it waits for the logs to be opened (and a resumed
    /// run, whose files already hold the images of its first process, writes only those of
    /// steps after the epochs done); after, it is written at once.
    pub fn add_png(
        &mut self,
        split: LogSplit,
        tag: &str,
        step: i64,
        png: Vec<u8>,
        width: u32,
        height: u32,
    ) -> Result<()> {
        let image = PendingImage {
            split,
            tag: tag.into(),
            step,
            png,
            width,
            height,
        };
        if self.resumed_after.is_none() {
            // Checked now, so that a bad image fails before training rather than after an
            // epoch.
            let (size, _) = png_size(&image.png)
                .map_err(|e| Error::InvalidConfig(format!("TensorBoard image `{tag}`: {e}")))?;
            if size != (width, height) {
                return Err(Error::InvalidConfig(format!(
                    "TensorBoard image `{tag}` is said to be {width}x{height} but its PNG is {}x{}",
                    size.0, size.1
                )));
            }
            self.pending.push(image);
            return Ok(());
        }
        self.write_image(&image)?;
        self.writer(split)?.flush()
    }

    /// Adds the augmentation grid ([`augmentation_grid()`]) of the first image of `data`
    /// through the leading augmentation layers of `model`, as image `augmentation` at step
    /// 0 of `train/`. Does nothing for a model without augmentation, or data that is not
    /// RGB. Reseeds libtorch's generator with `seed` (the fit loop reseeds every epoch, so
    /// the training draws do not change).
    pub fn add_augmentation_grid(
        &mut self,
        model: &Sequential,
        data: &dyn ImageDataset,
        seed: u64,
    ) -> Result<()> {
        let layers: Vec<_> = model
            .layers
            .iter()
            .take_while(|l| l.spec.is_augmentation())
            .map(|l| l.spec.clone())
            .collect();
        let shape = data.image_shape();
        if layers.is_empty() || data.is_empty() || shape[0] != 3 {
            return Ok(());
        }
        let (height, width) = (shape[1] as u32, shape[2] as u32);
        let first = match data.batches_in(Some(vec![0]), 1).next() {
            Some(batch) => batch?.images,
            None => return Ok(()),
        };
        let pixels = Vec::<u8>::try_from(
            first
                .get(0)
                .to_device(Device::Cpu)
                .permute([1, 2, 0])
                .contiguous()
                .view([-1]),
        )?;
        let png = png_of(|path| augmentation_grid(&pixels, height, width, &layers, seed, path))?;
        let ((width, height), _) = png_size(&png)
            .map_err(|e| Error::InvalidConfig(format!("the augmentation grid: {e}")))?;
        self.add_png(LogSplit::Train, "augmentation", 0, png, width, height)
    }

    /// Opens the logs for a loop that starts at `first_epoch`: prunes or clears what is
    /// there, then writes the pending images.
    fn open(&mut self, first_epoch: usize) -> Result<()> {
        let done = first_epoch.saturating_sub(1) as i64;
        for split in [LogSplit::Train, LogSplit::Validation] {
            let dir = self.split_dir(split);
            if done == 0 {
                remove_event_files(&dir)?;
            } else {
                discard_steps_after(&dir, done)?;
            }
        }
        self.resumed_after = Some(done);
        for image in std::mem::take(&mut self.pending) {
            if done == 0 || image.step > done {
                self.write_image(&image)?;
            }
        }
        self.flush()
    }

    fn write_image(&mut self, image: &PendingImage) -> Result<()> {
        self.writer(image.split)?.add_png(
            &image.tag,
            image.step,
            &image.png,
            image.width,
            image.height,
        )
    }

    /// The writer of `split`, created on first use (so that a run without validation data
    /// has no `validation/`).
    fn writer(&mut self, split: LogSplit) -> Result<&mut EventWriter> {
        let dir = self.split_dir(split);
        let slot = match split {
            LogSplit::Train => &mut self.train,
            LogSplit::Validation => &mut self.validation,
        };
        if slot.is_none() {
            *slot = Some(EventWriter::create(&dir)?);
        }
        Ok(slot.as_mut().expect("created above"))
    }

    fn flush(&mut self) -> Result<()> {
        for writer in [&mut self.train, &mut self.validation]
            .into_iter()
            .flatten()
        {
            writer.flush()?;
        }
        Ok(())
    }
}

impl Callback for TensorBoardLog {
    fn on_epoch_begin(&mut self, epoch: usize, _: usize, _: &mut TrainControl) -> Result<()> {
        if self.resumed_after.is_none() {
            self.open(epoch)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _: &Model, history: &History, _: &mut TrainControl) -> Result<()> {
        let Some(record) = history.last() else {
            return Ok(());
        };
        if self.resumed_after.is_none() {
            self.open(record.epoch)?;
        }
        let step = record.epoch as i64;
        let train = self.writer(LogSplit::Train)?;
        train.add_scalar("epoch_loss", step, record.loss)?;
        train.add_scalar("epoch_accuracy", step, record.accuracy)?;
        train.add_scalar("epoch_learning_rate", step, record.learning_rate)?;
        if record.val_loss.is_some() || record.val_accuracy.is_some() {
            let validation = self.writer(LogSplit::Validation)?;
            if let Some(loss) = record.val_loss {
                validation.add_scalar("epoch_loss", step, loss)?;
            }
            if let Some(accuracy) = record.val_accuracy {
                validation.add_scalar("epoch_accuracy", step, accuracy)?;
            }
        }
        self.flush()
    }

    fn on_train_end(&mut self, _: &Model, history: &History) -> Result<()> {
        if self.resumed_after.is_none() {
            // A resumed run that had no epoch left: its logs are pruned all the same.
            self.open(history.last().map_or(1, |r| r.epoch + 1))?;
        }
        self.flush()
    }
}

/// The bytes of the PNG that `write` writes to the path it is given (a temporary file,
/// removed after), for reports that write their image to a file.
fn png_of(write: impl FnOnce(&Path) -> Result<()>) -> Result<Vec<u8>> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "convkit-tensorboard-{}-{}.png",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write(&path).and_then(|()| std::fs::read(&path).map_err(|e| Error::io(&path, e)));
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::report::tensorboard::proto::Kind;
    use crate::report::tensorboard::{read_event_dir, scalars};
    use crate::train::test_support::{feed, with_val_losses};
    use std::collections::BTreeMap;

    fn model() -> Model {
        let spec = Sequential::new("tiny", [1, 2, 2])
            .flatten()
            .dense(2, crate::nn::Activation::Softmax);
        Model::new(&spec, Device::Cpu, 0).unwrap()
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::new(width, height);
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
        bytes.into_inner()
    }

    /// Each (tag, step) of a folder and how many times it was written.
    fn counts(dir: &Path) -> BTreeMap<(String, i64), usize> {
        let mut counts = BTreeMap::new();
        for event in read_event_dir(dir).unwrap() {
            for value in event.values() {
                *counts.entry((value.tag.clone(), event.step)).or_default() += 1;
            }
        }
        counts
    }

    /// Runs the loop's events for epochs `first..=last` of `history`, as `fit` would.
    fn run(log: &mut TensorBoardLog, history: &History, first: usize, last: usize) {
        let model = model();
        let mut control = TrainControl::new(1e-3);
        log.on_train_begin(&model, &mut control).unwrap();
        for epoch in first..=last {
            log.on_epoch_begin(epoch, last, &mut control).unwrap();
            let seen = History {
                epochs: history.epochs[..epoch].to_vec(),
            };
            log.on_epoch_end(&model, &seen, &mut control).unwrap();
        }
        log.on_train_end(&model, history).unwrap();
    }

    #[test]
    fn logs_each_epoch_in_train_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let history = with_val_losses(&[0.5, 0.25]);
        let mut log = TensorBoardLog::for_run(dir.path());
        log.add_png(LogSplit::Train, "augmentation", 0, png(5, 4), 5, 4)
            .unwrap();
        run(&mut log, &history, 1, 2);
        let train = read_event_dir(&dir.path().join("tensorboard/train")).unwrap();
        let mut values: Vec<_> = scalars(&train)
            .into_iter()
            .map(|s| (s.tag, s.step, s.value))
            .collect();
        values.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        assert_eq!(
            values,
            [
                ("epoch_accuracy".to_string(), 1, 0.5),
                ("epoch_accuracy".to_string(), 2, 0.5),
                ("epoch_learning_rate".to_string(), 1, 1e-3),
                ("epoch_learning_rate".to_string(), 2, 1e-3),
                ("epoch_loss".to_string(), 1, 0.5),
                ("epoch_loss".to_string(), 2, 0.25),
            ]
        );
        let image = train
            .iter()
            .flat_map(|e| e.values())
            .find(|v| v.tag == "augmentation")
            .unwrap();
        assert!(matches!(&image.kind, Some(Kind::Image(i)) if (i.width, i.height) == (5, 4)));
        let validation =
            scalars(&read_event_dir(&dir.path().join("tensorboard/validation")).unwrap());
        assert_eq!(validation.len(), 4);
        assert!(validation
            .iter()
            .any(|s| (s.tag.as_str(), s.step, s.value) == ("epoch_loss", 2, 0.25)));
    }

    /// Epochs 1 to 5 written, the process killed with its state after epoch 3, the run
    /// resumed: every (tag, step) once, the resumed values in place of the killed ones.
    #[test]
    fn a_resumed_run_has_one_value_per_tag_and_step() {
        let dir = tempfile::tempdir().unwrap();
        let killed = with_val_losses(&[0.9, 0.8, 0.7, 0.6, 0.5]);
        let mut first = TensorBoardLog::for_run(dir.path());
        first
            .add_png(LogSplit::Train, "augmentation", 0, png(2, 2), 2, 2)
            .unwrap();
        run(&mut first, &killed, 1, 5);
        drop(first);

        let resumed = with_val_losses(&[0.9, 0.8, 0.7, 0.4, 0.3]);
        let mut second = TensorBoardLog::for_run(dir.path());
        second
            .add_png(LogSplit::Train, "augmentation", 0, png(2, 2), 2, 2)
            .unwrap();
        run(&mut second, &resumed, 4, 5);

        for split in ["train", "validation"] {
            let counts = counts(&dir.path().join("tensorboard").join(split));
            assert!(counts.values().all(|&n| n == 1), "{split}: {counts:?}");
            let steps: Vec<i64> = counts
                .keys()
                .filter(|(tag, _)| tag == "epoch_loss")
                .map(|(_, step)| *step)
                .collect();
            assert_eq!(steps, [1, 2, 3, 4, 5], "{split}");
        }
        let train = counts(&dir.path().join("tensorboard/train"));
        assert_eq!(train[&("augmentation".to_string(), 0)], 1);
        let loss: Vec<(i64, f32)> =
            scalars(&read_event_dir(&dir.path().join("tensorboard/validation")).unwrap())
                .into_iter()
                .filter(|s| s.tag == "epoch_loss")
                .map(|s| (s.step, s.value))
                .collect();
        assert_eq!(loss, [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.4), (5, 0.3)]);
    }

    #[test]
    fn a_fresh_run_replaces_an_earlier_runs_logs() {
        let dir = tempfile::tempdir().unwrap();
        let history = with_val_losses(&[0.5, 0.4, 0.3]);
        run(&mut TensorBoardLog::for_run(dir.path()), &history, 1, 3);
        let mut again = TensorBoardLog::for_run(dir.path());
        run(&mut again, &with_val_losses(&[0.5]), 1, 1);
        let counts = counts(&dir.path().join("tensorboard/train"));
        assert_eq!(counts.len(), 3, "one epoch, three tags: {counts:?}");
    }

    /// The loop's helper for callbacks that hear only epoch ends.
    #[test]
    fn epoch_ends_alone_are_enough() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TensorBoardLog::for_run(dir.path());
        feed(&mut log, &model(), &with_val_losses(&[0.5, 0.4]), 2);
        drop(log);
        assert_eq!(counts(&dir.path().join("tensorboard/train")).len(), 6);
    }

    #[test]
    fn a_png_of_the_wrong_size_fails_before_training() {
        let mut log = TensorBoardLog::new("unused");
        let err = log
            .add_png(LogSplit::Validation, "confusion", 3, png(2, 2), 3, 3)
            .unwrap_err();
        assert!(err.to_string().contains("2x2"), "{err}");
        assert!(log
            .add_png(LogSplit::Validation, "confusion", 3, b"nope".to_vec(), 1, 1)
            .is_err());
    }

    #[test]
    fn the_augmentation_grid_is_logged_for_a_model_with_augmentation() {
        use crate::augment::{FlipMode, RandomFlipSpec};
        let images = tch::Tensor::randint(256, [2, 3, 6, 8], (tch::Kind::Uint8, Device::Cpu));
        let labels = tch::Tensor::from_slice(&[0i64, 1]);
        let data = Dataset::new(images, labels, vec!["a".into(), "b".into()]).unwrap();
        let plain = Sequential::new("plain", [3, 6, 8]).flatten();
        let augmented = Sequential::new("augmented", [3, 6, 8])
            .add(RandomFlipSpec::new(FlipMode::Horizontal))
            .flatten();
        let mut log = TensorBoardLog::new("unused");
        log.add_augmentation_grid(&plain, &data, 1).unwrap();
        assert!(log.pending.is_empty());
        log.add_augmentation_grid(&augmented, &data, 1).unwrap();
        let image = &log.pending[0];
        assert_eq!((image.tag.as_str(), image.step), ("augmentation", 0));
        // 3x3 tiles of 8x6 with 6-pixel gaps.
        assert_eq!((image.width, image.height), (3 * 8 + 24, 3 * 6 + 24));
    }
}
