//! The learning-rate finder's plot, as fastai's `plot_lr_find`: the smoothed loss against
//! the learning rate on a log axis, with the suggested learning rates marked.

use std::path::Path;

use plotters::prelude::*;

use super::curves::register_fonts;
use crate::atomic_file::write_atomic_with;
use crate::error::{Error, Result};
use crate::train::{LrSweep, Suggestion};

/// Steps left off the end of the plot, as fastai's `skip_end`: the loss explodes there and
/// would squash the rest of the curve.
pub const SKIP_END: usize = 5;

/// Draws `sweep` and writes the PNG to `path` atomically: the smoothed loss (blue line) and
/// each batch's loss (grey dots, where they fall in range) against the learning rate on a
/// log axis, without the last [`SKIP_END`] steps; the valley suggestion as an orange dot
/// and dashed line, steep as a green dot, and the lowest loss as a red dot (minimum
/// suggests a tenth of its learning rate). The legend gives each suggested value.
pub fn plot_lr_find(sweep: &LrSweep, title: &str, path: &Path) -> Result<()> {
    register_fonts();
    let plot_error = |e: &dyn std::fmt::Display| Error::plot(path, e);
    let shown = if sweep.steps.len() > SKIP_END + 1 {
        &sweep.steps[..sweep.steps.len() - SKIP_END]
    } else {
        &sweep.steps[..]
    };
    let smoothed: Vec<(f64, f64)> = shown
        .iter()
        .filter(|s| s.smoothed_loss.is_finite())
        .map(|s| (s.learning_rate, s.smoothed_loss))
        .collect();
    let (lo, hi) = smoothed
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let (y_lo, y_hi) = (lo - pad, hi + pad);
    let raw: Vec<(f64, f64)> = shown
        .iter()
        .filter(|s| (y_lo..=y_hi).contains(&s.loss))
        .map(|s| (s.learning_rate, s.loss))
        .collect();
    let settings = &sweep.settings;
    let x_hi = shown
        .last()
        .map_or(settings.end_lr, |s| s.learning_rate)
        .max(settings.start_lr * 10.0);
    let suggestions = sweep.suggestions;
    let marks: Vec<(String, Suggestion, RGBColor)> = [
        ("valley", suggestions.valley, RGBColor(255, 127, 14)),
        ("steep", suggestions.steep, RGBColor(44, 160, 44)),
        ("minimum/10", suggestions.minimum, RGBColor(214, 39, 40)),
    ]
    .into_iter()
    .filter_map(|(name, s, color)| s.map(|s| (name, s, color)))
    .map(|(name, s, color)| {
        let label = if name == "minimum/10" {
            format!(
                "minimum/10: {:.1e} (dot: the minimum, {:.1e})",
                s.learning_rate, s.at_learning_rate
            )
        } else {
            format!("{name}: {:.1e}", s.learning_rate)
        };
        (label, s, color)
    })
    .collect();
    write_atomic_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(&e))?;
        let root = root
            .titled(title, ("sans-serif", 20).into_font())
            .map_err(|e| plot_error(&e))?;
        let blue = RGBColor(31, 119, 180);
        let draw = || -> std::result::Result<(), DrawingAreaErrorKind<_>> {
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    "loss falls where the model learns; pick a rate on the steep fall, before the bottom",
                    ("sans-serif", 14),
                )
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d((settings.start_lr..x_hi).log_scale(), y_lo..y_hi)?;
            chart
                .configure_mesh()
                .x_desc("Learning rate (log scale)")
                .y_desc("Loss")
                .x_label_formatter(&|x| format!("{x:.0e}"))
                .y_label_formatter(&|y| format!("{y:.3}"))
                .label_style(("sans-serif", 13))
                .light_line_style(WHITE)
                .draw()?;
            let grey = RGBColor(170, 170, 170);
            chart
                .draw_series(raw.iter().map(|&p| Circle::new(p, 2, grey.filled())))?
                .label("batch loss")
                .legend(move |(x, y)| Circle::new((x + 10, y), 2, grey.filled()));
            chart
                .draw_series(LineSeries::new(
                    smoothed.iter().copied(),
                    blue.stroke_width(2),
                ))?
                .label("smoothed loss")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2))
                });
            for (i, (label, s, color)) in marks.iter().enumerate() {
                let color = *color;
                if i == 0 {
                    let dashes = (0..24).map(|k| {
                        let a = y_lo + (y_hi - y_lo) * k as f64 / 24.0;
                        let b = a + (y_hi - y_lo) / 48.0;
                        PathElement::new(
                            vec![(s.learning_rate, a), (s.learning_rate, b)],
                            color.stroke_width(1),
                        )
                    });
                    chart.draw_series(dashes)?;
                }
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (s.at_learning_rate, s.at_loss),
                        6,
                        color.filled(),
                    )))?
                    .label(label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 13))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
            root.present()
        };
        draw().map_err(|e| plot_error(&e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{LrFindEnd, LrFindSettings, LrFindStep, Suggestions};

    #[test]
    fn writes_a_png_of_a_sweep() {
        let settings = LrFindSettings::default();
        let steps: Vec<LrFindStep> = (0..60)
            .map(|i| {
                let x = i as f64 / 60.0;
                let loss = 0.7 - 0.4 * (x * 6.0).tanh().max(0.0) + 2.0 * x.powi(8);
                LrFindStep {
                    learning_rate: settings.learning_rate(i),
                    loss: loss + 0.02 * (i as f64).sin(),
                    smoothed_loss: loss,
                }
            })
            .collect();
        let lrs: Vec<f64> = steps.iter().map(|s| s.learning_rate).collect();
        let losses: Vec<f64> = steps.iter().map(|s| s.smoothed_loss).collect();
        let sweep = LrSweep {
            suggestions: Suggestions::from_sweep(&lrs, &losses, 100),
            settings,
            steps,
            end: LrFindEnd::Diverged,
        };
        assert!(sweep.suggestions.valley.is_some());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lr_find.png");
        plot_lr_find(&sweep, "small convnet on test data", &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 5_000);
        // A sweep too short to suggest anything still draws.
        let short = LrSweep {
            steps: sweep.steps[..3].to_vec(),
            suggestions: Suggestions::default(),
            ..sweep
        };
        plot_lr_find(&short, "short", &path).unwrap();
    }
}
