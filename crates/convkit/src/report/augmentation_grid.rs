//! One image augmented nine times, as a 3x3 grid (the chapter's figure 8.10).

use std::path::Path;

use image::RgbImage;
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::atomic_file::write_atomic_with;
use crate::error::{Error, Result};
use crate::models::LayerSpec;

/// Gap between tiles, in pixels.
const GAP: u32 = 6;

/// Runs `image` (`(height * width * 3)` RGB bytes) through `layers` in training mode nine
/// times, with libtorch's generator seeded by `seed`, and writes the nine results as a 3x3
/// PNG grid to `path` (atomically).
pub fn augmentation_grid(
    image: &[u8],
    height: u32,
    width: u32,
    layers: &[LayerSpec],
    seed: u64,
    path: &Path,
) -> Result<()> {
    let (h, w) = (height as i64, width as i64);
    let input = Tensor::from_slice(image)
        .view([1, h, w, 3])
        .permute([0, 3, 1, 2])
        .repeat([9, 1, 1, 1]);
    let vs = VarStore::new(Device::Cpu);
    let mut shape = vec![3, h, w];
    let mut built = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        built.push(layer.build(vs.root().sub(i), &shape, false)?);
        shape = layer.output_shape(&shape)?;
    }
    tch::manual_seed(seed as i64);
    let output = tch::no_grad(|| {
        built
            .iter()
            .fold(input, |xs, layer| layer.forward(&xs, true))
    });
    let (th, tw) = (shape[1], shape[2]);
    let tiles = output
        .to_kind(Kind::Float)
        .clamp(0.0, 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous();
    let bytes = Vec::<u8>::try_from(tiles.view([-1]))?;
    let (tile_w, tile_h) = (tw as u32, th as u32);
    let mut grid = RgbImage::from_pixel(
        3 * tile_w + 4 * GAP,
        3 * tile_h + 4 * GAP,
        image::Rgb([255, 255, 255]),
    );
    let tile_len = (tile_w * tile_h * 3) as usize;
    for (k, tile) in bytes.chunks_exact(tile_len).enumerate() {
        let (x0, y0) = (
            GAP + (k as u32 % 3) * (tile_w + GAP),
            GAP + (k as u32 / 3) * (tile_h + GAP),
        );
        for (i, px) in tile.chunks_exact(3).enumerate() {
            let (x, y) = (i as u32 % tile_w, i as u32 / tile_w);
            grid.put_pixel(x0 + x, y0 + y, image::Rgb([px[0], px[1], px[2]]));
        }
    }
    write_atomic_with(path, |tmp| {
        grid.save_with_format(tmp, image::ImageFormat::Png)
            .map_err(|e| Error::plot(path, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_augmentation_the_nine_tiles_are_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        let image: Vec<u8> = (0..4 * 5 * 3).map(|v| (v * 4) as u8).collect();
        augmentation_grid(&image, 4, 5, &[], 0, &path).unwrap();
        let grid = image::open(&path).unwrap().into_rgb8();
        assert_eq!(grid.dimensions(), (3 * 5 + 4 * GAP, 3 * 4 + 4 * GAP));
        for k in 0..9u32 {
            let (x0, y0) = (GAP + (k % 3) * (5 + GAP), GAP + (k / 3) * (4 + GAP));
            assert_eq!(grid.get_pixel(x0 + 1, y0).0, [3 * 4, 3 * 4 + 4, 3 * 4 + 8]);
        }
        assert_eq!(grid.get_pixel(0, 0).0, [255, 255, 255]);
    }
}
