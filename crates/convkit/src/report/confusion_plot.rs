//! The confusion matrix as a picture: counts on the left, each row as fractions of its
//! class on the right, darker where more samples fall.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::classification_metrics::ClassificationMetrics;
use super::curves::register_fonts;
use crate::atomic_file::write_atomic_with;
use crate::error::{Error, Result};

/// Longest class name drawn in full; longer ones are cut with an ellipsis.
const MAX_LABEL: usize = 14;

/// Draws the confusion matrix of `metrics` twice, as counts and row-normalised, rows the
/// actual class and columns the predicted one, and writes the PNG to `path` atomically.
pub fn plot_confusion_matrix(
    metrics: &ClassificationMetrics,
    title: &str,
    path: &Path,
) -> Result<()> {
    register_fonts();
    let plot_error = |e: &dyn std::fmt::Display| Error::plot(path, e);
    let k = metrics.classes.len().max(1) as i32;
    let cell = (520 / k).clamp(12, 130);
    let font = (cell / 4).clamp(8, 18);
    let label_font = 14;
    let labels: Vec<String> = metrics.classes.iter().map(|c| short(c)).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as i32 * 8 + 16;
    let grid = cell * k;
    let panel_w = label_width + 30 + grid + 20;
    let (width, height) = (2 * panel_w, 60 + grid + label_width + 50);
    let normalised = metrics.row_normalised();
    write_atomic_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(&e))?;
        let root = root
            .titled(title, ("sans-serif", 20).into_font())
            .map_err(|e| plot_error(&e))?;
        let (left, right) = root.split_horizontally(panel_w);
        for (area, caption, as_fraction) in [
            (&left, "Counts", false),
            (&right, "Fraction of each actual class", true),
        ] {
            let x0 = label_width + 30;
            let y0 = 30;
            area.draw_text(
                caption,
                &("sans-serif", 16).into_font().color(&BLACK),
                (x0, 4),
            )
            .map_err(|e| plot_error(&e))?;
            for a in 0..k as usize {
                for (p, &share) in normalised[a].iter().enumerate() {
                    let (x, y) = (x0 + p as i32 * cell, y0 + a as i32 * cell);
                    let shade = blue(share);
                    area.draw(&Rectangle::new(
                        [(x, y), (x + cell, y + cell)],
                        shade.filled(),
                    ))
                    .map_err(|e| plot_error(&e))?;
                    area.draw(&Rectangle::new(
                        [(x, y), (x + cell, y + cell)],
                        RGBColor(255, 255, 255).stroke_width(1),
                    ))
                    .map_err(|e| plot_error(&e))?;
                    if cell >= 24 {
                        let text = if as_fraction {
                            format!("{:.0}%", 100.0 * share)
                        } else {
                            metrics.confusion[a][p].to_string()
                        };
                        let ink = if share > 0.5 { WHITE } else { BLACK };
                        let style = ("sans-serif", font)
                            .into_font()
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center));
                        area.draw_text(&text, &style, (x + cell / 2, y + cell / 2))
                            .map_err(|e| plot_error(&e))?;
                    }
                }
                let row_style = ("sans-serif", label_font)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center));
                area.draw_text(
                    &labels[a],
                    &row_style,
                    (x0 - 6, y0 + a as i32 * cell + cell / 2),
                )
                .map_err(|e| plot_error(&e))?;
                let column_style = ("sans-serif", label_font)
                    .into_font()
                    .transform(FontTransform::Rotate90)
                    .color(&BLACK);
                area.draw_text(
                    &labels[a],
                    &column_style,
                    (
                        x0 + a as i32 * cell + cell / 2 + label_font / 2,
                        y0 + grid + 6,
                    ),
                )
                .map_err(|e| plot_error(&e))?;
            }
            let axis = ("sans-serif", 15).into_font().color(&BLACK);
            area.draw_text(
                "Predicted class",
                &axis.clone().pos(Pos::new(HPos::Center, VPos::Top)),
                (x0 + grid / 2, y0 + grid + label_width + 8),
            )
            .map_err(|e| plot_error(&e))?;
            area.draw_text(
                "Actual class",
                &axis
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
                (4, y0 + grid / 2),
            )
            .map_err(|e| plot_error(&e))?;
        }
        root.present().map_err(|e| plot_error(&e))
    })
}

/// White (0) to dark blue (1).
fn blue(share: f64) -> RGBColor {
    let t = share.clamp(0.0, 1.0);
    let mix = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

fn short(name: &str) -> String {
    super::top_losses::ellipsize(name, MAX_LABEL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::SamplePredictions;

    #[test]
    fn draws_a_readable_picture_for_two_and_ten_classes() {
        let dir = tempfile::tempdir().unwrap();
        for k in [2usize, 10] {
            let samples = SamplePredictions {
                probabilities: (0..50)
                    .map(|i| {
                        (0..k)
                            .map(|c| if c == (i * 7) % k { 0.9 } else { 0.01 })
                            .collect()
                    })
                    .collect(),
                losses: vec![0.1; 50],
                labels: (0..50).map(|i| i % k).collect(),
                tta: Default::default(),
            };
            let classes: Vec<String> = (0..k).map(|c| format!("class {c}")).collect();
            let metrics = ClassificationMetrics::compute(&samples, &classes);
            let path = dir.path().join(format!("confusion-{k}.png"));
            plot_confusion_matrix(&metrics, "Confusion matrix", &path).unwrap();
            let picture = image::open(&path).unwrap().into_rgb8();
            assert!(picture.width() > 400 && picture.height() > 300);
            // Some cells are dark: the full rows are drawn.
            assert!(picture.pixels().any(|p| p.0[2] < 140 && p.0[0] < 60));
        }
        assert_eq!(
            short("a very long class name indeed").chars().count(),
            MAX_LABEL
        );
    }
}
