//! Whether an image file is whole: decoders fill what they cannot read of a truncated file
//! (a JPEG cut in half decodes, its lower half grey), so convkit checks each format's own
//! end marker or declared length before decoding, as PIL refuses "image file is truncated".
//! The checks walk the file's structure, not its pixels: their cost is a small fraction of
//! decoding.

use image::ImageFormat;

/// Checks that `bytes`, an image in `format`, is complete; the problem in words otherwise.
pub fn check_complete(bytes: &[u8], format: ImageFormat) -> Result<(), String> {
    match format {
        ImageFormat::Jpeg => jpeg_is_complete(bytes),
        ImageFormat::Png => png_is_complete(bytes),
        ImageFormat::Gif => gif_is_complete(bytes),
        ImageFormat::WebP => webp_is_complete(bytes),
        ImageFormat::Bmp => bmp_is_complete(bytes),
        _ => Ok(()),
    }
}

/// The width and height that the file's header declares, read without decoding (and
/// without allocating anything of the image's size); `None` when the header cannot be read.
pub fn declared_size(bytes: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    if format == ImageFormat::Png {
        // IHDR is the first chunk: width and height at bytes 16..24.
        let ihdr = bytes.get(12..24)?;
        if &ihdr[..4] != b"IHDR" {
            return None;
        }
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        return Some((be(&ihdr[4..8]), be(&ihdr[8..12])));
    }
    let mut header = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    header.no_limits();
    header.into_dimensions().ok()
}

const TRUNCATED: &str = "the image file is truncated";

/// A JPEG's segments, walked from SOI: every scan must be followed by more segments and,
/// in the end, the EOI marker.
fn jpeg_is_complete(bytes: &[u8]) -> Result<(), String> {
    let missing_end = || format!("{TRUNCATED} (its JPEG data ends before the end-of-image marker)");
    let mut at = 2; // after SOI
    loop {
        // The next marker: 0xFF, any fill 0xFF bytes, then the marker code.
        while at < bytes.len() && bytes[at] == 0xFF {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else {
            return Err(missing_end());
        };
        at += 1;
        match marker {
            0xD9 => return Ok(()),          // EOI
            0x01 | 0xD0..=0xD7 => continue, // TEM, RST: no length
            _ => {}
        }
        let Some(len) = bytes.get(at..at + 2) else {
            return Err(missing_end());
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 {
            return Err(format!(
                "the JPEG is corrupt (a segment at byte {} declares a length of {len})",
                at - 2
            ));
        }
        if at + len > bytes.len() {
            return Err(missing_end());
        }
        at += len;
        if marker == 0xDA {
            // Entropy-coded data: it ends at the first 0xFF not followed by 0x00 (a stuffed
            // byte) or a restart marker.
            loop {
                let Some(offset) = bytes[at..].iter().position(|&b| b == 0xFF) else {
                    return Err(missing_end());
                };
                at += offset;
                match bytes.get(at + 1) {
                    None => return Err(missing_end()),
                    Some(0x00 | 0xD0..=0xD7) => at += 2,
                    Some(_) => break,
                }
            }
        } else if bytes.get(at).is_some_and(|&b| b != 0xFF) {
            return Err(format!(
                "the JPEG is corrupt (a segment at byte {at} does not start with a marker)"
            ));
        }
    }
}

/// A PNG's chunks, walked from the signature: the last must be IEND, each whole.
fn png_is_complete(bytes: &[u8]) -> Result<(), String> {
    let mut at = 8;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let end = at.saturating_add(12).saturating_add(len);
        if end > bytes.len() {
            break;
        }
        if &header[4..8] == b"IEND" {
            return Ok(());
        }
        at = end;
    }
    Err(format!("{TRUNCATED} (its PNG chunks end before IEND)"))
}

/// A GIF ends with its trailer byte, `;`.
fn gif_is_complete(bytes: &[u8]) -> Result<(), String> {
    match bytes.last() {
        Some(0x3B) => Ok(()),
        _ => Err(format!(
            "{TRUNCATED} (the GIF does not end with its trailer)"
        )),
    }
}

/// A WebP's RIFF header declares its length.
fn webp_is_complete(bytes: &[u8]) -> Result<(), String> {
    let declared = bytes
        .get(4..8)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize + 8);
    match declared {
        Some(len) if len <= bytes.len() => Ok(()),
        Some(len) => Err(format!(
            "{TRUNCATED} ({} of the {len} bytes its RIFF header declares)",
            bytes.len()
        )),
        None => Err(format!("{TRUNCATED} (no RIFF header)")),
    }
}

/// An uncompressed BMP's pixel rows must all be there.
fn bmp_is_complete(bytes: &[u8]) -> Result<(), String> {
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u16_at = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let (Some(offset), Some(header), Some(width), Some(height), Some(bits), Some(compression)) = (
        u32_at(10),
        u32_at(14),
        u32_at(18),
        u32_at(22),
        u16_at(28),
        u32_at(30),
    ) else {
        return Err(format!("{TRUNCATED} (its BMP header is incomplete)"));
    };
    // Only BITMAPINFOHEADER-style files without compression (BI_RGB, BI_BITFIELDS) have a
    // size known from the header.
    if header < 40 || !(compression == 0 || compression == 3) {
        return Ok(());
    }
    let width = u64::from((width as i32).unsigned_abs());
    let height = u64::from((height as i32).unsigned_abs());
    let row = (width * u64::from(bits)).div_ceil(32) * 4;
    let needed = u64::from(offset).saturating_add(row.saturating_mul(height));
    if needed > bytes.len() as u64 {
        return Err(format!(
            "{TRUNCATED} ({} of the {needed} bytes its pixel rows need)",
            bytes.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A photo-like image (smooth gradients and noise) in `format`.
    fn encoded(format: ImageFormat) -> Vec<u8> {
        let image = image::RgbImage::from_fn(97, 61, |x, y| {
            let noise = ((x * 7919 + y * 104_729) % 31) as u8;
            image::Rgb([(x * 2) as u8 ^ noise, (y * 4) as u8, noise * 8])
        });
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    }

    #[test]
    fn whole_files_pass_and_every_truncation_is_caught() {
        for format in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::Gif,
            ImageFormat::WebP,
            ImageFormat::Bmp,
        ] {
            let bytes = encoded(format);
            assert_eq!(check_complete(&bytes, format), Ok(()), "{format:?}");
            for cut in [1, 2, 7, bytes.len() / 10, bytes.len() / 2, bytes.len() - 3] {
                let cut = bytes.len() - cut;
                let err = check_complete(&bytes[..cut], format)
                    .expect_err(&format!("{format:?} cut to {cut} of {}", bytes.len()));
                assert!(
                    err.contains("truncated") || err.contains("corrupt"),
                    "{err}"
                );
            }
        }
    }

    /// A JPEG with data after its end marker (cameras append some) is whole.
    #[test]
    fn trailing_bytes_after_a_jpeg_are_accepted() {
        let mut bytes = encoded(ImageFormat::Jpeg);
        bytes.extend_from_slice(b"\xFF\xDAtrailer");
        assert_eq!(check_complete(&bytes, ImageFormat::Jpeg), Ok(()));
    }
}
