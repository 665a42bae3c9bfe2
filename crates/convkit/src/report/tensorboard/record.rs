//! The record framing of TensorBoard event files (TFRecord): each record is its length as a
//! `u64`, a masked CRC-32C of those eight bytes, the data, and a masked CRC-32C of the data,
//! all little-endian.

use std::fmt;

/// Bytes before a record's data: the length and its checksum.
const HEADER: usize = 12;
/// Bytes after a record's data: its checksum.
const FOOTER: usize = 4;

/// TFRecord's mask over a CRC-32C: a checksum of data that itself holds checksums would
/// otherwise be weak, so the CRC is rotated right by 15 bits and offset by a constant.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The masked CRC-32C of `data`, as records carry it.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}

/// Appends `data` to `out` as one record.
pub fn encode_record(data: &[u8], out: &mut Vec<u8>) {
    let length = (data.len() as u64).to_le_bytes();
    out.reserve(HEADER + data.len() + FOOTER);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// The records of a file's bytes.
#[derive(Debug, Default, PartialEq)]
pub struct Records<'a> {
    /// The data of each complete record, in order.
    pub records: Vec<&'a [u8]>,
    /// Bytes after the last complete record: a record cut short (the writer was killed
    /// mid-write). Zero for a complete file.
    pub truncated_bytes: usize,
}

/// A record whose checksum does not match: the file is damaged, not merely cut short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptRecord {
    /// Where the record starts in the file.
    pub offset: usize,
    /// Which checksum failed.
    pub what: &'static str,
}

impl fmt::Display for CorruptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the record at byte {} has a wrong {} checksum: not a TensorBoard event file, or a damaged one",
            self.offset, self.what
        )
    }
}

impl std::error::Error for CorruptRecord {}

/// Splits `bytes` into records, checking both checksums of each. A last record that is cut
/// short is left out (counted in [`Records::truncated_bytes`]), as a writer killed
/// mid-write leaves one; a wrong checksum anywhere is a [`CorruptRecord`].
pub fn split_records(bytes: &[u8]) -> Result<Records<'_>, CorruptRecord> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < HEADER {
            break;
        }
        let (length, length_crc) = rest[..HEADER].split_at(8);
        if masked_crc32c(length) != u32::from_le_bytes(length_crc.try_into().unwrap()) {
            return Err(CorruptRecord {
                offset,
                what: "length",
            });
        }
        let length = u64::from_le_bytes(length.try_into().unwrap());
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| length.checked_add(HEADER))
            .filter(|end| end.checked_add(FOOTER).is_some_and(|e| e <= rest.len()));
        let Some(end) = end else {
            break;
        };
        let (data, data_crc) = (&rest[HEADER..end], &rest[end..end + FOOTER]);
        if masked_crc32c(data) != u32::from_le_bytes(data_crc.try_into().unwrap()) {
            return Err(CorruptRecord {
                offset,
                what: "data",
            });
        }
        records.push(data);
        offset += end + FOOTER;
    }
    Ok(Records {
        records,
        truncated_bytes: bytes.len() - offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check value of CRC-32C (Castagnoli), from the catalogue of parametrised CRCs.
    #[test]
    fn crc32c_of_the_check_string() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    /// Masking as TensorFlow's `crc32c::Mask`: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
    #[test]
    fn masking_rotates_and_offsets() {
        assert_eq!(mask(0), 0xa282_ead8);
        // CRC-32C("123456789") rotated: 0x2507c60d; plus the offset, wrapping.
        assert_eq!(mask(0xE306_9283), 0xC78A_B0E5);
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn a_record_is_length_crc_data_crc() {
        let mut out = Vec::new();
        encode_record(b"abc", &mut out);
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(
            &out[8..12],
            &masked_crc32c(&3u64.to_le_bytes()).to_le_bytes()
        );
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(&out[15..], &masked_crc32c(b"abc").to_le_bytes());
    }

    #[test]
    fn records_split_back() {
        let mut out = Vec::new();
        for data in [&b"first"[..], b"", b"third record"] {
            encode_record(data, &mut out);
        }
        let records = split_records(&out).unwrap();
        assert_eq!(records.records, vec![&b"first"[..], b"", b"third record"]);
        assert_eq!(records.truncated_bytes, 0);
    }

    /// A kill mid-write leaves any prefix of the last record: each is dropped, not an error.
    #[test]
    fn a_truncated_last_record_is_dropped() {
        let mut out = Vec::new();
        encode_record(b"kept", &mut out);
        let whole = out.len();
        encode_record(b"cut short", &mut out);
        for cut in whole..out.len() {
            let records = split_records(&out[..cut]).unwrap();
            assert_eq!(records.records, vec![&b"kept"[..]], "cut at {cut}");
            assert_eq!(records.truncated_bytes, cut - whole);
        }
    }

    #[test]
    fn a_wrong_checksum_is_an_error() {
        let mut out = Vec::new();
        encode_record(b"one", &mut out);
        let second = out.len();
        encode_record(b"two", &mut out);
        let mut bad_data = out.clone();
        bad_data[second + 12] ^= 1;
        assert_eq!(
            split_records(&bad_data).unwrap_err(),
            CorruptRecord {
                offset: second,
                what: "data"
            }
        );
        let mut bad_length = out.clone();
        bad_length[second] ^= 1;
        let err = split_records(&bad_length).unwrap_err();
        assert_eq!(err.what, "length");
        assert!(err.to_string().contains(&format!("byte {second}")), "{err}");
        // Not an event file at all.
        assert!(split_records(b"PK\x03\x04 this is a zip, not records").is_err());
    }
}
