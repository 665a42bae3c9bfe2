//! The per-epoch progress bar and the line printed when an epoch ends.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::callbacks::{BatchEnd, Callback, TrainControl};
use super::history::{EpochRecord, History};
use crate::error::Result;
use crate::model::Model;

/// Progress bars over each epoch's batches and a line per finished epoch, on stderr (the
/// bars are hidden when stderr is not a terminal). Also says when the learning rate changes.
#[derive(Debug, Default)]
pub struct ProgressBars {
    bar: Option<ProgressBar>,
    epochs: usize,
    learning_rate: Option<f64>,
}

impl ProgressBars {
    /// Bars on stderr.
    pub fn new() -> Self {
        ProgressBars::default()
    }
}

impl Callback for ProgressBars {
    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        epochs: usize,
        control: &mut TrainControl,
    ) -> Result<()> {
        let lr = control.learning_rate();
        if let Some(previous) = self.learning_rate.filter(|&p| p != lr) {
            eprintln!("learning rate {previous:e} -> {lr:e}");
        }
        self.learning_rate = Some(lr);
        self.epochs = epochs;
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:28.cyan/blue}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("Epoch {epoch}/{epochs}"));
        self.bar = Some(bar);
        Ok(())
    }

    fn on_batch_end(&mut self, batch: &BatchEnd, _: &mut TrainControl) -> Result<()> {
        let Some(bar) = &self.bar else {
            return Ok(());
        };
        bar.set_length(batch.steps as u64);
        // reading the running metrics waits for the device: every 20 steps
        if batch.step % 20 == 0 {
            let (loss, accuracy) = batch.loss_and_accuracy();
            let rate = batch.images() as f64 / batch.elapsed.as_secs_f64();
            bar.set_message(format!(
                "loss {loss:.4} accuracy {accuracy:.4} {rate:.0} img/s"
            ));
        }
        bar.inc(1);
        Ok(())
    }

    fn on_epoch_end(&mut self, _: &Model, history: &History, _: &mut TrainControl) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(record) = history.last() {
            eprintln!("{}", epoch_line(record, self.epochs));
        }
        Ok(())
    }
}

/// `Epoch 2/5 - 14.1s 3824 img/s - loss 0.0512 accuracy 0.9841 - val_loss ... val_accuracy ...`
pub fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
    let mut line = format!(
        "Epoch {}/{epochs} - {:.1}s {:.0} img/s - loss {:.4} accuracy {:.4}",
        r.epoch, r.seconds, r.images_per_second, r.loss, r.accuracy
    );
    if let (Some(vl), Some(va)) = (r.val_loss, r.val_accuracy) {
        line.push_str(&format!(" - val_loss {vl:.4} val_accuracy {va:.4}"));
    }
    line
}
