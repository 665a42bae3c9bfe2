//! The per-epoch progress bar and the line printed when an epoch ends.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::history::EpochRecord;

/// A bar counting `total` items of a long job (`label` in front, items/s and time left
/// after), on stderr when `enabled`.
pub fn count_bar(total: u64, label: &str, enabled: bool) -> ProgressBar {
    let target = if enabled {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:28.cyan/blue}] {pos}/{len} {per_sec} {elapsed_precise}<{eta_precise}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    bar
}

/// A progress bar over one epoch's batches, on stderr (hidden when stderr is not a
/// terminal, or when progress is off).
#[derive(Debug)]
pub struct EpochProgress {
    bar: ProgressBar,
    enabled: bool,
}

impl EpochProgress {
    /// A bar for epoch `epoch` of `epochs`, over `batches` steps.
    pub fn new(epoch: usize, epochs: usize, batches: usize, enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(batches as u64), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:28.cyan/blue}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("Epoch {epoch}/{epochs}"));
        EpochProgress { bar, enabled }
    }

    /// Advances by one batch; `metrics` (loss, accuracy, images/s), when given, refresh the
    /// message.
    pub fn step(&self, metrics: Option<(f64, f64, f64)>) {
        if let Some((loss, accuracy, rate)) = metrics {
            self.bar.set_message(format!(
                "loss {loss:.4} accuracy {accuracy:.4} {rate:.0} img/s"
            ));
        }
        self.bar.inc(1);
    }

    /// Clears the bar and prints the epoch's summary line (always, unless progress is off).
    pub fn finish(&self, record: &EpochRecord, epochs: usize) {
        self.bar.finish_and_clear();
        if self.enabled {
            eprintln!("{}", epoch_line(record, epochs));
        }
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
