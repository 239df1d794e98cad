//! TFRecord framing used by TensorBoard event files.
//!
//! Each record is `u64 length (LE) | u32 masked_crc32c(length bytes) | data |
//! u32 masked_crc32c(data)`, with `mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8`
//! (wrapping arithmetic).

use std::path::Path;

use prost::Message;

use super::proto::Event;
use crate::error::{Error, Result};

const MASK_DELTA: u32 = 0xa282_ead8;

/// TFRecord's masked CRC32-C of `data`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(MASK_DELTA)
}

/// Frame `data` as one TFRecord and append it to `out`.
pub fn encode_record(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.reserve(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Split a byte buffer into TFRecord payloads, verifying both checksums.
///
/// A trailing incomplete record (a writer still in progress) is ignored;
/// a checksum mismatch is an [`Error::CorruptRecord`].
pub fn decode_records(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= 12 {
        let start = pos;
        let len_bytes: [u8; 8] = bytes[pos..pos + 8].try_into().expect("8 bytes");
        let len_crc = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().expect("4 bytes"));
        let corrupt = |message: String| Error::CorruptRecord { path: path.to_owned(), offset: start as u64, message };
        if masked_crc32c(&len_bytes) != len_crc {
            return Err(corrupt("length checksum mismatch".into()));
        }
        let len = u64::from_le_bytes(len_bytes);
        let Some(end) = usize::try_from(len).ok().and_then(|l| (pos + 12).checked_add(l)).and_then(|e| e.checked_add(4)) else {
            return Err(corrupt(format!("record length {len} is too large")));
        };
        if end > bytes.len() {
            break; // incomplete trailing record
        }
        let data = &bytes[pos + 12..end - 4];
        let data_crc = u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes"));
        if masked_crc32c(data) != data_crc {
            return Err(corrupt("data checksum mismatch".into()));
        }
        out.push(data.to_vec());
        pos = end;
    }
    Ok(out)
}

/// Largest event file [`read_records`] / [`read_events`] read: 1 GiB. cilp's event files hold
/// a few scalars and small images per epoch (KiB to a few MiB); the limit only stops a hostile
/// or corrupt file from being read into memory whole. Special files are refused by name.
pub const MAX_EVENT_FILE_BYTES: u64 = 1 << 30;

/// Read every complete record of a TFRecord file (bounded, see [`MAX_EVENT_FILE_BYTES`]).
pub fn read_records(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = cilp_data::io::read_bounded(path, MAX_EVENT_FILE_BYTES, "a TensorBoard event file")?;
    decode_records(path, &bytes)
}

/// Read and decode every event of a TensorBoard event file.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    read_records(path)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Event::decode(r.as_slice()).map_err(|e| Error::Parse {
                path: path.to_owned(),
                line: None,
                expected: "a tensorboard.Event protobuf in every record",
                message: format!("record {i}: {e}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::manual_rotate)] // spell out the TFRecord mask formula on purpose
    fn crc_known_values() {
        // CRC-32C check value from RFC 3720.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let c = crc32c::crc32c(b"");
        assert_eq!(masked_crc32c(b""), ((c >> 15) | (c << 17)).wrapping_add(MASK_DELTA));
    }

    #[test]
    fn round_trip_and_partial_tail() {
        let mut buf = Vec::new();
        encode_record(b"hello", &mut buf);
        encode_record(b"", &mut buf);
        encode_record(&[7u8; 1000], &mut buf);
        let p = Path::new("mem");
        let recs = decode_records(p, &buf).unwrap();
        assert_eq!(recs, vec![b"hello".to_vec(), vec![], vec![7u8; 1000]]);
        // truncated tail is ignored
        let recs = decode_records(p, &buf[..buf.len() - 3]).unwrap();
        assert_eq!(recs.len(), 2);
        // flipped data byte is detected
        let mut bad = buf.clone();
        bad[13] ^= 1;
        let err = decode_records(p, &bad).unwrap_err().to_string();
        assert!(err.contains("data checksum"), "{err}");
    }
}
