//! A grid of the images a model gets most wrong, each with its file, its true class, what
//! was predicted and how sure the model was (fastai's `plot_top_losses`).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::curves::register_fonts;
use crate::atomic_file::write_atomic_with;
use crate::error::{Error, Result};

/// One image of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledImage {
    /// Pixels, row by row, `channels` bytes each (1: grayscale, 3: RGB).
    pub pixels: Vec<u8>,
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
    /// 1 or 3.
    pub channels: u32,
    /// Lines of text drawn above the image, the first in bold.
    pub caption: Vec<String>,
}

/// Images are drawn at least this wide (small ones are enlarged by a whole factor, with
/// sharp pixels) and at most this wide (large ones shrink).
const TILE: u32 = 180;
const CAPTION_LINE: u32 = 16;
const GAP: u32 = 12;

/// Draws `images` in rows of `columns`, each under its caption, and writes the PNG to
/// `path` atomically. An empty list draws a note saying there is nothing to show.
pub fn plot_labelled_images(
    images: &[LabelledImage],
    columns: usize,
    title: &str,
    path: &Path,
) -> Result<()> {
    register_fonts();
    let plot_error = |e: &dyn std::fmt::Display| Error::plot(path, e);
    let columns = columns.clamp(1, images.len().max(1)) as u32;
    let rows = images.len().div_ceil(columns as usize).max(1) as u32;
    let lines = images.iter().map(|i| i.caption.len()).max().unwrap_or(0) as u32;
    let cell_w = TILE + GAP;
    let cell_h = lines * CAPTION_LINE + 4 + TILE + GAP;
    let (width, height) = (columns * cell_w + GAP, 40 + rows * cell_h);
    let mut canvas = vec![255u8; (width * height * 3) as usize];
    for (n, image) in images.iter().enumerate() {
        let (x0, y0) = (
            GAP + (n as u32 % columns) * cell_w,
            40 + (n as u32 / columns) * cell_h + lines * CAPTION_LINE + 4,
        );
        blit(&mut canvas, width, image, x0, y0);
    }
    let note = images
        .is_empty()
        .then_some("No images to show: every image was classified correctly.");
    write_atomic_with(path, |tmp| {
        {
            let root = BitMapBackend::with_buffer(&mut canvas, (width, height)).into_drawing_area();
            let heading = ("sans-serif", 20)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Top));
            root.draw_text(note.unwrap_or(title), &heading, (GAP as i32, 10))
                .map_err(|e| plot_error(&e))?;
            for (n, image) in images.iter().enumerate() {
                let x = (GAP + (n as u32 % columns) * cell_w) as i32;
                let y = (40 + (n as u32 / columns) * cell_h) as i32;
                for (l, line) in image.caption.iter().enumerate() {
                    let style = if l == 0 {
                        FontStyle::Bold
                    } else {
                        FontStyle::Normal
                    };
                    let font = ("sans-serif", 13)
                        .into_font()
                        .style(style)
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Top));
                    root.draw_text(
                        &fit(line, TILE),
                        &font,
                        (x, y + (l as u32 * CAPTION_LINE) as i32),
                    )
                    .map_err(|e| plot_error(&e))?;
                }
            }
            root.present().map_err(|e| plot_error(&e))?;
        }
        image::save_buffer_with_format(
            tmp,
            &canvas,
            width,
            height,
            image::ColorType::Rgb8,
            image::ImageFormat::Png,
        )
        .map_err(|e| plot_error(&e))
    })
}

/// Copies `image` into the RGB `canvas` (`width` pixels wide) at `(x0, y0)`, scaled to
/// fit a `TILE` square: nearest neighbour, so an enlarged digit keeps sharp pixels.
fn blit(canvas: &mut [u8], width: u32, image: &LabelledImage, x0: u32, y0: u32) {
    let side = image.height.max(image.width).max(1);
    let scale = TILE as f64 / side as f64;
    let scale = if scale >= 1.0 { scale.floor() } else { scale };
    let (out_w, out_h) = (
        ((image.width as f64 * scale) as u32).max(1),
        ((image.height as f64 * scale) as u32).max(1),
    );
    let c = image.channels as usize;
    for y in 0..out_h {
        for x in 0..out_w {
            let sx = ((x as f64 / scale) as u32).min(image.width - 1);
            let sy = ((y as f64 / scale) as u32).min(image.height - 1);
            let from = ((sy * image.width + sx) as usize) * c;
            let rgb = if c == 1 {
                [image.pixels[from]; 3]
            } else {
                [
                    image.pixels[from],
                    image.pixels[from + 1],
                    image.pixels[from + 2],
                ]
            };
            let to = (((y0 + y) * width + x0 + x) * 3) as usize;
            canvas[to..to + 3].copy_from_slice(&rgb);
        }
    }
}

/// `text` cut to about `pixels` wide at 13 px (7 px a character), with an ellipsis.
fn fit(text: &str, pixels: u32) -> String {
    ellipsize(text, (pixels / 7) as usize)
}

/// `text` cut to at most `max` characters, the last an ellipsis when it was cut.
pub(crate) fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enlarges_small_images_and_draws_every_tile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("top_losses.png");
        let digit = LabelledImage {
            pixels: vec![0; 28 * 28],
            height: 28,
            width: 28,
            channels: 1,
            caption: vec!["test[3]".into(), "true 7, predicted 1".into()],
        };
        let photo = LabelledImage {
            pixels: vec![200; 360 * 240 * 3],
            height: 240,
            width: 360,
            channels: 3,
            caption: vec!["cat.1.jpg".into()],
        };
        plot_labelled_images(&[digit.clone(), photo, digit], 2, "Top losses", &path).unwrap();
        let grid = image::open(&path).unwrap().into_rgb8();
        assert_eq!(grid.width(), 2 * (TILE + GAP) + GAP);
        // The digit fills 6 x 28 = 168 px of black.
        let y0 = 40 + 2 * CAPTION_LINE + 4;
        assert_eq!(grid.get_pixel(GAP + 100, y0 + 100).0, [0, 0, 0]);
        assert_eq!(grid.get_pixel(GAP + 170, y0 + 100).0, [255, 255, 255]);
        // The photo shrinks to 180 x 120.
        assert_eq!(
            grid.get_pixel(2 * GAP + TILE + 179, y0 + 119).0,
            [200, 200, 200]
        );
        assert_eq!(
            grid.get_pixel(2 * GAP + TILE + 100, y0 + 125).0,
            [255, 255, 255]
        );
        assert_eq!(
            fit("abcdefghijklmnopqrstuvwxyz0123456789", 140)
                .chars()
                .count(),
            20
        );
    }

    #[test]
    fn an_empty_list_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.png");
        plot_labelled_images(&[], 4, "Top losses", &path).unwrap();
        assert!(image::open(&path).is_ok());
    }
}
