//! Training and validation curves as a PNG (the chapter's figures 8.9 and 8.11).

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::element::MultiLineText;
use plotters::prelude::*;

use super::legend_corner::{points_along, quietest_corner};
use crate::atomic_file::write_atomic_with;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::train::{Callback, History, TrainControl};

/// plotters draws text with fonts registered by name; convkit embeds DejaVu Sans so that
/// plots look the same on every machine, with no system font lookup.
pub(crate) fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor, bool);

/// Draws loss (left) and accuracy (right) per epoch, training as dots and validation as a
/// line; when the learning rate changed during the run (a schedule, or a reduction on
/// plateau), the rate each epoch started with (a third panel); when the training images
/// changed size (progressive resizing), their side in each epoch (a panel after it).
/// Writes the PNG to `path` atomically.
pub fn plot_training_curves(history: &History, title: &str, path: &Path) -> Result<()> {
    draw_curves(history, title, false, path)
}

/// [`plot_training_curves`], with the training series labelled as measured on mixup's
/// blended images when `blended_training` is set.
fn draw_curves(history: &History, title: &str, blended_training: bool, path: &Path) -> Result<()> {
    register_fonts();
    let plot_error = |e: &dyn std::fmt::Display| Error::plot(path, e);
    let column = |f: &dyn Fn(&crate::train::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(255, 127, 14);
    let (training_loss, training_accuracy) = if blended_training {
        (
            "Training loss (blended images)",
            "Training accuracy (blended images)",
        )
    } else {
        ("Training loss", "Training accuracy")
    };
    let loss: Vec<Series> = vec![
        (training_loss, column(&|r| Some(r.loss)), blue, true),
        ("Validation loss", column(&|r| r.val_loss), orange, false),
    ];
    let accuracy: Vec<Series> = vec![
        (training_accuracy, column(&|r| Some(r.accuracy)), blue, true),
        (
            "Validation accuracy",
            column(&|r| r.val_accuracy),
            orange,
            false,
        ),
    ];
    let changes = |values: &[(f64, f64)]| values.windows(2).any(|w| w[0].1 != w[1].1);
    // The panels after loss and accuracy: caption, series, preferred legend corner, axis
    // from zero.
    let mut extra: Vec<(&str, Series, SeriesLabelPosition, bool)> = Vec::new();
    let rates = column(&|r| Some(r.learning_rate));
    if changes(&rates) {
        let green = RGBColor(44, 160, 44);
        let series = ("Learning rate (epoch start)", rates, green, false);
        extra.push((
            "Learning rate",
            series,
            SeriesLabelPosition::UpperRight,
            true,
        ));
    }
    let sizes = column(&|r| r.train_image_size.map(|side| side as f64));
    if changes(&sizes) {
        let purple = RGBColor(148, 103, 189);
        let series = ("Training image side (pixels)", sizes, purple, false);
        extra.push(("Image size", series, SeriesLabelPosition::LowerRight, false));
    }
    let width = 1200 + 600 * extra.len() as u32;
    write_atomic_with(path, |tmp| {
        // The temporary path keeps the .png extension, which the encoder needs.
        let root = BitMapBackend::new(tmp, (width, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(&e))?;
        let root = root
            .titled(title, ("sans-serif", 22).into_font())
            .map_err(|e| plot_error(&e))?;
        let (left, rest) = root.split_horizontally(600);
        let (middle, mut rest) = rest.split_horizontally(600);
        let epochs = history.epochs.len();
        draw_panel(
            &left,
            "Loss",
            &loss,
            epochs,
            SeriesLabelPosition::UpperRight,
            false,
        )
        .map_err(|e| plot_error(&e))?;
        draw_panel(
            &middle,
            "Accuracy",
            &accuracy,
            epochs,
            SeriesLabelPosition::LowerRight,
            false,
        )
        .map_err(|e| plot_error(&e))?;
        for (caption, series, legend, from_zero) in &extra {
            let (area, next) = rest.split_horizontally(600);
            draw_panel(
                &area,
                caption,
                std::slice::from_ref(series),
                epochs,
                legend.clone(),
                *from_zero,
            )
            .map_err(|e| plot_error(&e))?;
            rest = next;
        }
        root.present().map_err(|e| plot_error(&e))
    })
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    series: &[Series],
    epochs: usize,
    preferred_legend: SeriesLabelPosition,
    from_zero: bool,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = if from_zero {
        lo = 0.0;
        hi * 0.08
    } else {
        ((hi - lo) * 0.08).max(1e-3)
    };
    let bottom = if from_zero { 0.0 } else { lo - pad };
    let x_max = (epochs.max(2)) as f64 + 0.2;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.8..x_max, bottom..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("Epoch")
        .x_labels(epochs.clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if hi < 0.01 && *y != 0.0 {
                format!("{y:.1e}")
            } else if hi >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.3}")
            }
        })
        .label_style(("sans-serif", 13))
        .light_line_style(WHITE)
        .draw()?;
    for (name, points, color, dots) in series {
        if points.is_empty() {
            continue;
        }
        let color = *color;
        if *dots {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?
                .label(*name)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        } else {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
    }
    let label_font = ("sans-serif", 13).into_font();
    let legend = quietest_corner(
        legend_size(series, &label_font),
        chart.plotting_area().dim_in_pixel(),
        &pixels_drawn(chart.plotting_area(), series),
        preferred_legend,
    );
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(label_font)
        .margin(LEGEND_MARGIN)
        .legend_area_size(LEGEND_MARKER_WIDTH)
        .position(legend)
        .draw()
}

/// Padding inside a legend's border, in pixels (set, not left to plotters' default, so
/// that [`legend_size`] measures the box that is drawn).
const LEGEND_MARGIN: u32 = 10;

/// Width of a legend's column of markers, in pixels (as [`LEGEND_MARGIN`]).
const LEGEND_MARKER_WIDTH: u32 = 30;

/// Width and height in pixels of the legend drawn for `series` in `font`.
fn legend_size(series: &[Series], font: &FontDesc) -> (i32, i32) {
    let mut text = MultiLineText::<_, &str>::new((0, 0), font.clone());
    for (name, points, ..) in series {
        if !points.is_empty() {
            text.push_line(*name);
        }
    }
    let (width, height) = text
        .estimate_dimension()
        .unwrap_or((200, 20 * series.len() as i32));
    let margin = LEGEND_MARGIN as i32;
    (
        width + LEGEND_MARKER_WIDTH as i32 + 2 * margin,
        height + 2 * margin,
    )
}

/// The pixels (from the plotting area's upper left corner) that the series cover: every
/// dot, and points every few pixels along every line.
fn pixels_drawn<DB: DrawingBackend>(
    area: &DrawingArea<DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    series: &[Series],
) -> Vec<(i32, i32)> {
    let (left, top) = area.get_base_pixel();
    let pixel = |p: &(f64, f64)| {
        let (x, y) = area.map_coordinate(p);
        (x - left, y - top)
    };
    let mut pixels = Vec::new();
    for (_, points, _, dots) in series {
        let points: Vec<(i32, i32)> = points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(pixel)
            .collect();
        if *dots || points.len() < 2 {
            pixels.extend(points);
            continue;
        }
        for pair in points.windows(2) {
            let length = (pair[1].0 - pair[0].0)
                .abs()
                .max((pair[1].1 - pair[0].1).abs());
            pixels.extend(points_along(pair[0], pair[1], (length / 4).max(2) as usize));
        }
    }
    pixels
}

/// Redraws the loss and accuracy curves (PNG) after every epoch.
#[derive(Debug)]
pub struct CurvesPlot {
    /// The image written.
    pub path: PathBuf,
    /// Title over the plots.
    pub title: String,
    /// Whether training mixed image pairs (mixup): the training loss and accuracy are
    /// then measured on the blends, and their legends say so.
    pub blended_training: bool,
}

impl Callback for CurvesPlot {
    fn on_epoch_end(&mut self, _: &Model, history: &History, _: &mut TrainControl) -> Result<()> {
        draw_curves(history, &self.title, self.blended_training, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EpochRecord;

    #[test]
    fn writes_a_png() {
        let epochs = (1..=5)
            .map(|e| EpochRecord {
                epoch: e,
                loss: 1.0 / e as f64,
                accuracy: 1.0 - 0.5 / e as f64,
                val_loss: Some(1.2 / e as f64),
                val_accuracy: Some(0.9 - 0.4 / e as f64),
                learning_rate: 1e-3,
                seconds: 1.0,
                images_per_second: 10.0,
                train_image_size: None,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        plot_training_curves(&History { epochs }, "test", &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 5_000);
    }

    /// A run whose rate moved gets a third panel: the image is wider.
    #[test]
    fn a_schedule_adds_the_learning_rate_panel() {
        let history = |rate: &dyn Fn(usize) -> f64| History {
            epochs: (1..=6)
                .map(|e| EpochRecord {
                    epoch: e,
                    loss: 1.0 / e as f64,
                    accuracy: 0.5,
                    val_loss: None,
                    val_accuracy: None,
                    learning_rate: rate(e),
                    seconds: 1.0,
                    images_per_second: 10.0,
                    train_image_size: None,
                })
                .collect(),
        };
        let dir = tempfile::tempdir().unwrap();
        let width = |h: &History| {
            let path = dir.path().join("curves.png");
            plot_training_curves(h, "test", &path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            u32::from_be_bytes(bytes[16..20].try_into().unwrap())
        };
        assert_eq!(width(&history(&|_| 1e-3)), 1200);
        assert_eq!(width(&history(&|e| 1e-3 / e as f64)), 1800);
        // Progressive resizing adds a panel of the training image side.
        let mut resized = history(&|e| 1e-3 / e as f64);
        for (record, side) in resized.epochs.iter_mut().zip([64, 64, 96, 128, 128, 128]) {
            record.train_image_size = Some(side);
        }
        assert_eq!(width(&resized), 2400);
        let path = dir.path().join("resized.png");
        plot_training_curves(&resized, "resized", &path).unwrap();
    }

    /// Under mixup the training series are labelled as measured on blends, which changes
    /// the pixels of the legend and nothing else.
    #[test]
    fn mixup_labels_the_training_series_as_blended() {
        let history = History {
            epochs: (1..=3)
                .map(|e| EpochRecord {
                    epoch: e,
                    loss: 0.6,
                    accuracy: 0.7,
                    val_loss: Some(0.4),
                    val_accuracy: Some(0.85),
                    learning_rate: 1e-3,
                    seconds: 1.0,
                    images_per_second: 10.0,
                    train_image_size: None,
                })
                .collect(),
        };
        let dir = tempfile::tempdir().unwrap();
        let draw = |blended: bool| {
            let path = dir.path().join(format!("{blended}.png"));
            draw_curves(&history, "mixup", blended, &path).unwrap();
            std::fs::read(&path).unwrap()
        };
        assert_ne!(draw(true), draw(false));
        assert_eq!(draw(false), {
            let path = dir.path().join("public.png");
            plot_training_curves(&history, "mixup", &path).unwrap();
            std::fs::read(&path).unwrap()
        });
    }

    #[test]
    fn an_empty_history_still_draws() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        plot_training_curves(&History::default(), "empty", &path).unwrap();
        assert!(path.exists());
    }
}
