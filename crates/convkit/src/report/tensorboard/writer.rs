//! Writing an event file: scalars and PNG images, one event each, as Keras' TensorBoard
//! callback writes them.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::proto::{Event, Image, Kind, Summary, Value, What, FILE_VERSION};
use super::record::encode_record;
use crate::error::{Error, Result};

/// Numbers the files this process opens, as TensorFlow's writers do, so that two files
/// opened in the same second get distinct names.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An event file being written: `DIR/events.out.tfevents.<unix secs>.<host>.<pid>.<n>.v2`.
/// Events are buffered; [`EventWriter::flush`] (or dropping the writer) puts them on disk.
///
/// ```
/// # fn main() -> convkit::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("convkit-doc-{}", std::process::id()));
/// use convkit::report::tensorboard::{read_event_dir, EventWriter};
///
/// let mut writer = EventWriter::create(&dir.join("train"))?;
/// writer.add_scalar("epoch_loss", 1, 0.25)?;
/// writer.flush()?;
/// let events = read_event_dir(&dir.join("train"))?;
/// assert_eq!(events.last().unwrap().step, 1);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
    buffer: Vec<u8>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, which starts with the
    /// file-version event.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (host, pid) = (hostname(), std::process::id());
        let (path, file) = loop {
            let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("events.out.tfevents.{seconds}.{host}.{pid}.{n}.v2"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                // Another process of the same pid and second (a container restarted).
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&path, e)),
            }
        };
        let mut writer = EventWriter {
            path,
            file: BufWriter::new(file),
            buffer: Vec::new(),
        };
        writer.write_event(&Event {
            wall_time: wall_time(),
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.into())),
        })?;
        writer.flush()?;
        Ok(writer)
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds the scalar `value` of series `tag` at `step` (stored as a 32-bit float, as
    /// TensorBoard's `simple_value`).
    pub fn add_scalar(&mut self, tag: &str, step: i64, value: f64) -> Result<()> {
        self.write_summary(step, tag, Kind::SimpleValue(value as f32))
    }

    /// Adds the PNG image `png`, `width` x `height` pixels, as image `tag` at `step`. The
    /// bytes must be a PNG of that size (its header is checked, so that TensorBoard shows
    /// what was meant).
    pub fn add_png(
        &mut self,
        tag: &str,
        step: i64,
        png: &[u8],
        width: u32,
        height: u32,
    ) -> Result<()> {
        let invalid = |message: String| Error::invalid_data(&self.path, message);
        let (actual, colorspace) =
            png_size(png).map_err(|e| invalid(format!("image `{tag}` at step {step}: {e}")))?;
        if actual != (width, height) {
            return Err(invalid(format!(
                "image `{tag}` at step {step} is said to be {width}x{height} but its PNG is {}x{}",
                actual.0, actual.1
            )));
        }
        let side = |v: u32| {
            i32::try_from(v).map_err(|_| invalid(format!("image `{tag}` is too large: {v}")))
        };
        let image = Image {
            height: side(height)?,
            width: side(width)?,
            colorspace,
            encoded_image_string: png.to_vec(),
        };
        self.write_summary(step, tag, Kind::Image(image))
    }

    /// Writes `event` as it is (its wall time and step included).
    pub fn write_event(&mut self, event: &Event) -> Result<()> {
        self.buffer.clear();
        encode_record(&event.encode_to_vec(), &mut self.buffer);
        self.file
            .write_all(&self.buffer)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Puts the events written so far into the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }

    fn write_summary(&mut self, step: i64, tag: &str, kind: Kind) -> Result<()> {
        self.write_event(&Event {
            wall_time: wall_time(),
            step,
            what: Some(What::Summary(Summary {
                value: vec![Value {
                    tag: tag.into(),
                    kind: Some(kind),
                }],
            })),
        })
    }
}

/// The size of the PNG `png` and TensorBoard's colorspace for it (1 gray, 2 gray and
/// alpha, 3 RGB, 4 RGBA), from its header.
pub(crate) fn png_size(png: &[u8]) -> std::result::Result<((u32, u32), i32), String> {
    use image::{ColorType, ImageDecoder};
    let decoder = image::codecs::png::PngDecoder::new(std::io::Cursor::new(png))
        .map_err(|e| format!("not a PNG: {e}"))?;
    let colorspace = match decoder.color_type() {
        ColorType::L8 | ColorType::L16 => 1,
        ColorType::La8 | ColorType::La16 => 2,
        ColorType::Rgba8 | ColorType::Rgba16 | ColorType::Rgba32F => 4,
        _ => 3,
    };
    Ok((decoder.dimensions(), colorspace))
}

/// Seconds since the Unix epoch, with the fraction.
fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's name, as TensorFlow puts it in event file names (`localhost` when it
/// cannot be read; characters other than letters, digits, `-` and `_` become `_`, so the
/// name stays one field of the file name).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length, which is what is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = String::from_utf8_lossy(&buf[..len])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if rc != 0 || name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tensorboard::read_events;

    pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb([10, 20, 30]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn files_are_named_as_tensorflow_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = EventWriter::create(dir.path()).unwrap();
        let b = EventWriter::create(dir.path()).unwrap();
        assert_ne!(a.path(), b.path());
        let name = a.path().file_name().unwrap().to_str().unwrap();
        let fields: Vec<&str> = name.split('.').collect();
        assert_eq!(fields[..3], ["events", "out", "tfevents"], "{name}");
        assert!(fields[3].parse::<u64>().unwrap() > 1_600_000_000, "{name}");
        assert_eq!(fields[5], std::process::id().to_string(), "{name}");
        assert_eq!(fields.len(), 8, "{name}");
        assert_eq!(fields[7], "v2");
    }

    #[test]
    fn writes_the_version_then_scalars_and_images() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        writer.add_scalar("epoch_loss", 1, 0.5).unwrap();
        writer.add_png("grid", 0, &png(4, 3), 4, 3).unwrap();
        writer.flush().unwrap();
        let events = read_events(writer.path()).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].what,
            Some(What::FileVersion("brain.Event:2".into()))
        );
        assert!(events[0].wall_time > 1.6e9);
        assert_eq!(events[1].step, 1);
        assert_eq!(events[1].values()[0].tag, "epoch_loss");
        assert_eq!(events[1].values()[0].kind, Some(Kind::SimpleValue(0.5)));
        let Some(Kind::Image(image)) = &events[2].values()[0].kind else {
            panic!("not an image: {:?}", events[2]);
        };
        assert_eq!((image.width, image.height, image.colorspace), (4, 3, 3));
        assert_eq!(image.encoded_image_string, png(4, 3));
    }

    #[test]
    fn an_image_of_another_size_or_not_a_png_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        let err = writer.add_png("grid", 0, &png(4, 3), 3, 4).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("4x3"), "{message}");
        assert!(message.contains("tfevents"), "names the file: {message}");
        let err = writer.add_png("grid", 0, b"GIF89a", 1, 1).unwrap_err();
        assert!(err.to_string().contains("not a PNG"), "{err}");
    }
}
