//! IDX files, the format MNIST and Fashion-MNIST ship in, plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number (two zero bytes, an element-type code, the number
//! of dimensions), one big-endian `u32` per dimension, then the elements in row-major
//! order. Only unsigned-byte files (type code `0x08`) are read here: every image and label
//! file of both datasets is of that type.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{Error, Result};

/// The element-type code of unsigned-byte IDX files.
const UBYTE: u8 = 0x08;
/// The most dimensions accepted; MNIST uses 1 (labels) and 3 (images).
const MAX_DIMS: usize = 4;

/// The most a gzipped IDX file may inflate to (MNIST's largest file is 47 MB).
const MAX_INFLATED_BYTES: usize = 1 << 30;
/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The content of an unsigned-byte IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension, outermost first, for example `[60000, 28, 28]`.
    /// Every size is at least 1.
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads the IDX file at `path`, gunzipping it first when it starts with the gzip magic
/// bytes (whatever its name).
///
/// Every problem with the content (a bad magic number, an unsupported type, a truncated or
/// corrupt file) is an [`Error::InvalidData`] that names the file; a file that cannot be
/// read is an [`Error::Io`].
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = if raw.starts_with(&GZIP_MAGIC) {
        // Decompress the header first, then no more than it declares (and one byte to see
        // trailing data): a small file that inflates without end is never held in memory.
        let corrupt = |e: std::io::Error| {
            Error::invalid_data(path, format!("corrupt or truncated gzip stream: {e}"))
        };
        let mut decoder = GzDecoder::new(raw.as_slice());
        let mut decoded = Vec::new();
        (&mut decoder)
            .take(4 + 4 * MAX_DIMS as u64)
            .read_to_end(&mut decoded)
            .map_err(corrupt)?;
        let declared = declared_len(&decoded).unwrap_or(decoded.len());
        if declared > MAX_INFLATED_BYTES {
            return Err(Error::invalid_data(
                path,
                format!(
                    "its header declares {declared} bytes, more than the {MAX_INFLATED_BYTES} \
                     that convkit inflates"
                ),
            ));
        }
        let rest = (declared + 1).saturating_sub(decoded.len()) as u64;
        (&mut decoder)
            .take(rest)
            .read_to_end(&mut decoded)
            .map_err(corrupt)?;
        decoded
    } else {
        raw
    };
    let (dims, header_len) = parse_header(&bytes, path)?;
    // Drop the header in place rather than copying tens of megabytes of pixels.
    bytes.drain(..header_len);
    Ok(IdxArray { dims, data: bytes })
}

/// The length (header and data) that an IDX header at the start of `bytes` declares, if
/// it can be read.
fn declared_len(bytes: &[u8]) -> Option<usize> {
    let ndims = usize::from(*bytes.get(3)?);
    let header = bytes.get(4..4 + 4 * ndims)?;
    header
        .chunks_exact(4)
        .map(|f| u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize)
        .try_fold(1usize, |acc, d| acc.checked_mul(d))?
        .checked_add(4 + 4 * ndims)
}

/// Parses an uncompressed IDX file held in memory; `path` is only used in error messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let (dims, header_len) = parse_header(bytes, path)?;
    Ok(IdxArray {
        dims,
        data: bytes[header_len..].to_vec(),
    })
}

/// Checks the header and that the data length matches it exactly; returns the dimensions
/// and the header length.
fn parse_header(bytes: &[u8], path: &Path) -> Result<(Vec<usize>, usize)> {
    let bad = |message: String| Error::invalid_data(path, message);
    if bytes.len() < 4 {
        return Err(bad(format!(
            "not an IDX file: {} bytes, too short for the 4-byte magic number",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "not an IDX file: magic number starts with 0x{:02x} 0x{:02x}, expected 0x00 0x00",
            bytes[0], bytes[1]
        )));
    }
    let type_code = bytes[2];
    if type_code != UBYTE {
        return Err(bad(format!(
            "unsupported IDX element type 0x{type_code:02x} ({}); only unsigned bytes (0x08) are supported",
            type_name(type_code)
        )));
    }
    let ndims = usize::from(bytes[3]);
    if ndims == 0 || ndims > MAX_DIMS {
        return Err(bad(format!(
            "unsupported number of dimensions {ndims}; expected 1 to {MAX_DIMS}"
        )));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(bad(format!(
            "truncated header: {ndims} dimensions need {header_len} header bytes, found {}",
            bytes.len()
        )));
    }
    let mut dims = Vec::with_capacity(ndims);
    for (i, field) in bytes[4..header_len].chunks_exact(4).enumerate() {
        let size = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
        if size == 0 {
            return Err(bad(format!(
                "dimension {i} has size 0; an empty array holds no data"
            )));
        }
        let size = usize::try_from(size).map_err(|_| {
            bad(format!(
                "dimension {i} has size {size}, too large for this platform"
            ))
        })?;
        dims.push(size);
    }
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            bad(format!(
                "dimensions {} overflow the address space",
                shape(&dims)
            ))
        })?;
    let found = bytes.len() - header_len;
    if found < expected {
        return Err(bad(format!(
            "truncated: expected {expected} bytes of data for shape {}, found {found}",
            shape(&dims)
        )));
    }
    if found > expected {
        return Err(bad(format!(
            "{} trailing bytes after the {expected} bytes of data for shape {}",
            found - expected,
            shape(&dims)
        )));
    }
    Ok((dims, header_len))
}

/// The IDX name of an element-type code, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0b => "short",
        0x0c => "int",
        0x0d => "float",
        0x0e => "double",
        _ => "not an IDX type",
    }
}

/// `[60000, 28, 28]` as `60000x28x28`.
fn shape(dims: &[usize]) -> String {
    dims.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// Builders for IDX bytes, shared with the other data modules' tests.
#[cfg(test)]
pub(crate) mod test_util {
    use std::io::Write;

    /// An unsigned-byte IDX file with the given dimensions and data (not checked).
    pub(crate) fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    /// `bytes` gzip-compressed.
    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{gzip, idx_bytes};
    use super::*;

    fn message(err: Error) -> String {
        assert!(
            matches!(err, Error::InvalidData { .. }),
            "expected InvalidData, got {err:?}"
        );
        err.to_string()
    }

    /// Writes `bytes` to a file in a fresh temp dir and reads it back with `read_idx`.
    fn read_written(name: &str, bytes: &[u8]) -> (tempfile::TempDir, Result<IdxArray>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let result = read_idx(&path);
        (dir, result)
    }

    #[test]
    fn reads_a_good_file_raw_and_gzipped() {
        let data: Vec<u8> = (0..24).collect();
        let bytes = idx_bytes(&[2, 3, 4], &data);
        let expected = IdxArray {
            dims: vec![2, 3, 4],
            data: data.clone(),
        };

        assert_eq!(parse_idx(&bytes, Path::new("mem")).unwrap(), expected);
        let (_dir, raw) = read_written("images-idx3-ubyte", &bytes);
        assert_eq!(raw.unwrap(), expected);
        // Named without .gz on purpose: the magic bytes decide, not the name.
        let (_dir, gz) = read_written("images-idx3-ubyte", &gzip(&bytes));
        assert_eq!(gz.unwrap(), expected);
    }

    #[test]
    fn reads_one_dimensional_labels() {
        let array = parse_idx(&idx_bytes(&[5], &[0, 1, 2, 3, 9]), Path::new("labels")).unwrap();
        assert_eq!(array.dims, vec![5]);
        assert_eq!(array.data, vec![0, 1, 2, 3, 9]);
    }

    #[test]
    fn truncated_data_is_reported_with_both_lengths() {
        let bytes = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5]);
        let (dir, result) = read_written("short-idx2-ubyte", &bytes);
        let msg = message(result.unwrap_err());
        assert!(
            msg.contains(&dir.path().join("short-idx2-ubyte").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("truncated: expected 6 bytes of data"), "{msg}");
        assert!(msg.contains("found 5"), "{msg}");
    }

    #[test]
    fn truncated_header_is_reported() {
        let bytes = idx_bytes(&[2, 3], &[0; 6]);
        let msg = message(parse_idx(&bytes[..9], Path::new("cut.idx")).unwrap_err());
        assert!(msg.starts_with("cut.idx: truncated header"), "{msg}");
        for len in 0..4 {
            let msg = message(parse_idx(&bytes[..len], Path::new("tiny.idx")).unwrap_err());
            assert!(
                msg.contains("tiny.idx") && msg.contains("too short"),
                "{msg}"
            );
        }
    }

    #[test]
    fn wrong_magic_is_reported() {
        let mut bytes = idx_bytes(&[1], &[7]);
        bytes[0] = 0x50;
        bytes[1] = 0x4b;
        let msg = message(parse_idx(&bytes, Path::new("archive.zip")).unwrap_err());
        assert!(msg.contains("archive.zip"), "{msg}");
        assert!(
            msg.contains("not an IDX file") && msg.contains("0x50 0x4b"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_type_code_is_reported() {
        let mut bytes = idx_bytes(&[1], &[0, 0, 0, 0]);
        bytes[2] = 0x0d;
        bytes.truncate(8);
        bytes.extend_from_slice(&1.0f32.to_be_bytes());
        let msg = message(parse_idx(&bytes, Path::new("floats.idx")).unwrap_err());
        assert!(msg.contains("floats.idx"), "{msg}");
        assert!(msg.contains("element type 0x0d (float)"), "{msg}");
    }

    #[test]
    fn too_many_or_zero_dimensions_are_reported() {
        let bytes = idx_bytes(&[1, 1, 1, 1, 1], &[0]);
        let msg = message(parse_idx(&bytes, Path::new("five.idx")).unwrap_err());
        assert!(
            msg.contains("five.idx") && msg.contains("number of dimensions 5"),
            "{msg}"
        );
        let msg = message(parse_idx(&idx_bytes(&[], &[]), Path::new("zero.idx")).unwrap_err());
        assert!(
            msg.contains("zero.idx") && msg.contains("number of dimensions 0"),
            "{msg}"
        );
    }

    #[test]
    fn empty_dimensions_and_overflow_are_reported() {
        let msg = message(parse_idx(&idx_bytes(&[3, 0], &[]), Path::new("empty.idx")).unwrap_err());
        assert!(
            msg.contains("empty.idx") && msg.contains("dimension 1 has size 0"),
            "{msg}"
        );
        let huge = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX, u32::MAX], &[]);
        let msg = message(parse_idx(&huge, Path::new("huge.idx")).unwrap_err());
        assert!(
            msg.contains("huge.idx") && msg.contains("overflow"),
            "{msg}"
        );
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let bytes = idx_bytes(&[2], &[1, 2, 3, 4, 5]);
        let msg = message(parse_idx(&bytes, Path::new("long.idx")).unwrap_err());
        assert!(
            msg.contains("long.idx") && msg.contains("3 trailing bytes"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_gzip_is_invalid_data_naming_the_file() {
        let gz = gzip(&idx_bytes(&[10, 10], &[42; 100]));
        let (dir, result) = read_written("cut-idx2-ubyte.gz", &gz[..gz.len() / 2]);
        let msg = message(result.unwrap_err());
        assert!(
            msg.contains(&dir.path().join("cut-idx2-ubyte.gz").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("gzip"), "{msg}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent-idx1-ubyte");
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn never_panics_on_any_short_prefix_or_byte_flip() {
        let good = idx_bytes(&[2, 2, 2], &[1; 8]);
        for len in 0..=good.len() + 1 {
            let mut bytes = good.clone();
            bytes.resize(len, 0xff);
            let _ = parse_idx(&bytes, Path::new("fuzz"));
        }
        for i in 0..good.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bytes = good.clone();
                bytes[i] = v;
                let _ = parse_idx(&bytes, Path::new("fuzz"));
            }
        }
    }
}
