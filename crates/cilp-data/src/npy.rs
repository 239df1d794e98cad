//! A small, strict reader and writer for NumPy `.npy` files holding little-endian floats.
//!
//! Supported on read: format versions 1.0, 2.0 and 3.0, dtype `<f4` (float32) and `<f8`
//! (float64, converted to `f32`), C order. Everything else (integers, big-endian floats,
//! Fortran order, object arrays, a data section of the wrong length) is an error that names the
//! file and says what was expected. The parser never panics on any input (fuzzed in `fuzz/`).
//!
//! The header must be the Python dict NumPy writes, with exactly the keys `descr`,
//! `fortran_order` and `shape`: an unknown key is refused (as NumPy refuses it), and so is a
//! duplicate key (NumPy's `literal_eval` would silently keep the last one; a reader keeping the
//! first would see another array, so cilp refuses the ambiguity).
//!
//! Files are read with bounded reads ([`crate::io`]): special files (FIFOs, devices) are
//! refused by name, the header is read first, and the file's size must be exactly header +
//! data as the header's dtype and shape say (shorter = truncated, longer = trailing bytes)
//! before the data is read; nothing larger than the header + data is ever allocated. A file
//! over [`MAX_NPY_BYTES`] (or, with an expected shape, over what that shape allows) is refused
//! before anything is read.
//!
//! Writes are always version 1.0, `<f4`, C order: exactly what `numpy.save` writes for a
//! C-contiguous float32 array.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::io;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers larger than this are refused (NumPy itself caps them at 10,000 bytes by default).
const MAX_HEADER_LEN: usize = 1 << 16;
/// Bytes before the header: magic, version and the header length (4 bytes in versions 2 and 3).
const MAX_PREAMBLE_LEN: usize = 12;
/// Largest `.npy` file [`read_npy`] reads (64 MiB). cilp's arrays are 64x64 depth maps
/// (16 KiB as float32) and 64-entry angle lists; this leaves room for arrays thousands of times
/// larger while a hostile file cannot make the reader allocate more than this.
pub const MAX_NPY_BYTES: u64 = 64 << 20;

/// A decoded `.npy` array: its shape and its values in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Element type found in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

fn err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Npy { path: path.to_path_buf(), reason: reason.into() }
}

/// The largest `.npy` file that can hold an array of shape `shape`: the longest header, plus
/// the data as float64 (the larger of the two dtypes read). `None` on overflow.
pub fn max_npy_file_len(shape: &[usize]) -> Option<u64> {
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
    let data = count.checked_mul(Dtype::F64.size())?;
    (MAX_PREAMBLE_LEN + MAX_HEADER_LEN).checked_add(data).map(|n| n as u64)
}

/// Reads and parses a `.npy` file of floats, of at most [`MAX_NPY_BYTES`] bytes (see the
/// module docs for the checks made before reading).
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let mut scratch = Vec::new();
    let (header, mut file) = read_header(path, None, MAX_NPY_BYTES, &mut scratch)?;
    let mut data = vec![0f32; header.count];
    read_payload(path, &header, &mut file, &mut scratch, &mut data)?;
    Ok(NpyArray { shape: header.shape, data })
}

/// Reads a `.npy` file and checks that its shape is exactly `expected`. The shape is checked
/// from the header, before the data is read, and a file larger than that shape allows (see
/// [`max_npy_file_len`]) is refused before anything is read.
pub fn read_npy_shape(path: &Path, expected: &[usize]) -> Result<NpyArray> {
    let count = expected
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| err(path, format!("expected shape {expected:?} overflows")))?;
    let mut data = vec![0f32; count];
    read_npy_into(path, expected, &mut data, &mut Vec::new())?;
    Ok(NpyArray { shape: expected.to_vec(), data })
}

/// Reads a `.npy` file whose shape must be exactly `expected`, decoding straight into `out`
/// (whose length must be the product of `expected`); `scratch` holds the raw bytes and keeps
/// its capacity between calls. Same checks as [`read_npy_shape`].
pub fn read_npy_into(path: &Path, expected: &[usize], out: &mut [f32], scratch: &mut Vec<u8>) -> Result<()> {
    let max = max_npy_file_len(expected).ok_or_else(|| err(path, format!("expected shape {expected:?} overflows")))?;
    let count: usize = expected.iter().product(); // no overflow: checked by max_npy_file_len
    if out.len() != count {
        return Err(err(path, format!("output buffer holds {} values, shape {expected:?} has {count}", out.len())));
    }
    let (header, mut file) = read_header(path, Some(expected), max, scratch)?;
    read_payload(path, &header, &mut file, scratch, out)
}

/// Opens `path` with a bounded open, reads and validates its header, checks the shape against
/// `expected` and the file size against header + data. Leaves the file at the data section.
fn read_header(path: &Path, expected: Option<&[usize]>, max_bytes: u64, scratch: &mut Vec<u8>) -> Result<(Header, std::fs::File)> {
    let what = match expected {
        Some(s) => format!("a .npy file of shape {s:?}"),
        None => "a .npy file".to_owned(),
    };
    let (mut file, size) = io::open_bounded(path, max_bytes, &what)?;
    // `size <= max_bytes`, which fits in memory: the caller's limit is what may be allocated.
    let size = size as usize;
    scratch.clear();
    io::read_exact_len(path, &mut file, size.min(10), scratch)?;
    if scratch.len() == 10 && &scratch[..6] == MAGIC && matches!(scratch[6], 2 | 3) {
        // Versions 2 and 3 have a 4-byte header length.
        io::read_exact_len(path, &mut file, (size - 10).min(2), scratch)?;
    }
    let (header_start, header_len) = preamble(scratch, path)?;
    let more = header_start + header_len;
    if size < more {
        return Err(err(path, format!("truncated: header says {header_len} bytes, file has {}", size.saturating_sub(header_start))));
    }
    io::read_exact_len(path, &mut file, more - scratch.len(), scratch)?;
    let header = parse_header_block(scratch, path, header_start, header_len)?;
    if let Some(expected) = expected
        && header.shape != expected
    {
        return Err(err(path, format!("expected shape {expected:?}, found {:?}", header.shape)));
    }
    check_len(path, &header, size)?;
    Ok((header, file))
}

fn read_payload(path: &Path, header: &Header, file: &mut std::fs::File, scratch: &mut Vec<u8>, out: &mut [f32]) -> Result<()> {
    scratch.clear();
    io::read_exact_len(path, file, header.data_len, scratch)?;
    decode_payload(header.dtype, scratch, out);
    Ok(())
}

/// Parses the bytes of a `.npy` file; `path` is only used in error messages.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let (header, payload) = parse_parts(bytes, path)?;
    let mut data = vec![0f32; header.count];
    decode_payload(header.dtype, payload, &mut data);
    Ok(NpyArray { shape: header.shape, data })
}

/// Parses `.npy` bytes whose shape must be exactly `expected`, decoding straight into `out`
/// (whose length must be the product of `expected`). Same checks and messages as
/// [`parse_npy`] followed by the shape check of [`read_npy_shape`], without allocating the
/// data.
pub fn parse_npy_into(bytes: &[u8], path: &Path, expected: &[usize], out: &mut [f32]) -> Result<()> {
    let (header, payload) = parse_parts(bytes, path)?;
    if header.shape != expected {
        return Err(err(path, format!("expected shape {expected:?}, found {:?}", header.shape)));
    }
    if out.len() != header.count {
        return Err(err(path, format!("output buffer holds {} values, shape {expected:?} has {}", out.len(), header.count)));
    }
    decode_payload(header.dtype, payload, out);
    Ok(())
}

/// A validated header: the data section's type, shape, position and length.
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
    count: usize,
    data_start: usize,
    data_len: usize,
}

fn decode_payload(dtype: Dtype, payload: &[u8], out: &mut [f32]) {
    match dtype {
        Dtype::F32 => {
            for (o, c) in out.iter_mut().zip(payload.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Dtype::F64 => {
            for (o, c) in out.iter_mut().zip(payload.chunks_exact(8)) {
                *o = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32;
            }
        }
    }
}

/// The magic string and version: returns where the header starts and its length. Needs the
/// first 10 bytes of the file (12 for versions 2 and 3).
fn preamble(bytes: &[u8], path: &Path) -> Result<(usize, usize)> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err(path, "missing the \\x93NUMPY magic string (not a .npy file)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err(path, "truncated header"));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => return Err(err(path, format!("unsupported format version {major}.{minor} (expected 1.0, 2.0 or 3.0)"))),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(err(path, format!("header length {header_len} is larger than {MAX_HEADER_LEN} bytes")));
    }
    Ok((header_start, header_len))
}

/// Parses the header dict held in `bytes[header_start..header_start + header_len]`.
fn parse_header_block(bytes: &[u8], path: &Path, header_start: usize, header_len: usize) -> Result<Header> {
    let data_start = header_start + header_len;
    let header = std::str::from_utf8(&bytes[header_start..data_start]).map_err(|_| err(path, "header is not valid UTF-8/ASCII"))?;
    let (dtype, fortran, shape) = parse_header(header).map_err(|r| err(path, r))?;
    if fortran {
        return Err(err(path, "array is stored in Fortran order (fortran_order: True); expected C order"));
    }
    let count =
        shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| err(path, format!("shape {shape:?} overflows")))?;
    let data_len = count.checked_mul(dtype.size()).ok_or_else(|| err(path, format!("shape {shape:?} overflows")))?;
    Ok(Header { dtype, shape, count, data_start, data_len })
}

/// Checks that a file of `len` bytes is exactly header + data.
fn check_len(path: &Path, h: &Header, len: usize) -> Result<()> {
    let have = len - h.data_start;
    if have == h.data_len {
        return Ok(());
    }
    let problem = if have < h.data_len { "truncated".to_owned() } else { format!("{} trailing bytes after the data", have - h.data_len) };
    Err(err(
        path,
        format!("data section has {have} bytes, shape {:?} of {} needs {} ({problem})", h.shape, dtype_name(h.dtype), h.data_len),
    ))
}

fn parse_parts<'a>(bytes: &'a [u8], path: &Path) -> Result<(Header, &'a [u8])> {
    let (header_start, header_len) = preamble(bytes, path)?;
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(err(path, format!("truncated: header says {header_len} bytes, file has {}", bytes.len() - header_start)));
    }
    let header = parse_header_block(bytes, path, header_start, header_len)?;
    check_len(path, &header, bytes.len())?;
    Ok((header, &bytes[data_start..]))
}

fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::F32 => "float32",
        Dtype::F64 => "float64",
    }
}

/// A value of the header dict.
enum Value<'a> {
    Str(&'a str),
    Ident(&'a str),
    Tuple(Vec<&'a str>),
}

/// A cursor over the header text: the subset of Python literals NumPy writes.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.s[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn rest(&self) -> String {
        truncate(&self.s[self.pos..])
    }

    /// A quoted string without escapes.
    fn string(&mut self) -> std::result::Result<&'a str, String> {
        let q = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(format!("expected a quoted string at {:?}", self.rest())),
        };
        let body = &self.s[self.pos + 1..];
        let end = body.find(q).ok_or_else(|| format!("unterminated string at {:?}", self.rest()))?;
        let v = &body[..end];
        if v.contains('\\') {
            return Err(format!("escapes in header strings are not supported: {:?}", truncate(v)));
        }
        self.pos += end + 2;
        Ok(v)
    }

    /// A run of characters up to the next delimiter (`,`, `)`, `}`, `:` or whitespace).
    fn token(&mut self) -> &'a str {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let n = rest.find(|c: char| matches!(c, ',' | ')' | '}' | ':' | '(' | '[' | '{') || c.is_whitespace()).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    fn value(&mut self) -> std::result::Result<Value<'a>, String> {
        match self.peek() {
            Some('\'' | '"') => self.string().map(Value::Str),
            Some('(') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(')') {
                        return Ok(Value::Tuple(items));
                    }
                    let t = self.token();
                    if t.is_empty() {
                        return Err(format!("malformed tuple at {:?}", self.rest()));
                    }
                    items.push(t);
                    if !self.eat(',') && self.peek() != Some(')') {
                        return Err(format!("malformed tuple at {:?}", self.rest()));
                    }
                }
            }
            Some('[') => Err("structured dtypes (a list as 'descr') are not supported; expected float32 ('<f4')".into()),
            _ => {
                let t = self.token();
                if t.is_empty() {
                    return Err(format!("expected a value at {:?}", self.rest()));
                }
                Ok(Value::Ident(t))
            }
        }
    }
}

/// Parses the Python-literal header dict, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (64, 64), }`: exactly the keys
/// `descr`, `fortran_order` and `shape`, each once, in any order.
fn parse_header(h: &str) -> std::result::Result<(Dtype, bool, Vec<usize>), String> {
    let h = h.trim_end_matches(['\n', ' ', '\0']).trim();
    let not_dict = || format!("header is not a Python dict: {:?}", truncate(h));
    let mut c = Cursor { s: h, pos: 0 };
    if !c.eat('{') {
        return Err(not_dict());
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        if c.eat('}') {
            break;
        }
        let key = c.string().map_err(|_| not_dict())?;
        if !c.eat(':') {
            return Err(not_dict());
        }
        let value = c.value()?;
        let slot = match key {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            other => {
                return Err(format!(
                    "unknown header key {:?}; a .npy header has exactly 'descr', 'fortran_order' and 'shape'",
                    truncate(other)
                ));
            }
        };
        if slot.is_some() {
            return Err(format!("header key '{key}' appears more than once"));
        }
        *slot = Some(value);
        if !c.eat(',') && c.peek() != Some('}') {
            return Err(not_dict());
        }
    }
    if c.peek().is_some() {
        return Err(format!("unexpected text after the header dict: {:?}", c.rest()));
    }
    let dtype = match descr.ok_or("header has no 'descr' key")? {
        Value::Str("<f4" | "float32") => Dtype::F32,
        Value::Str("<f8" | "float64") => Dtype::F64,
        Value::Str(d @ (">f4" | ">f8")) => {
            return Err(format!("dtype {d} is big-endian; expected little-endian float32 ('<f4')"));
        }
        Value::Str(other) => {
            return Err(format!("dtype {other:?} is not supported; expected float32 ('<f4') or float64 ('<f8')"));
        }
        _ => return Err("'descr' is not a string; expected float32 ('<f4') or float64 ('<f8')".into()),
    };
    let fortran = match fortran.ok_or("header has no 'fortran_order' key")? {
        Value::Ident("False") => false,
        Value::Ident("True") => true,
        Value::Ident(v) | Value::Str(v) => return Err(format!("fortran_order must be True or False, found {:?}", truncate(v))),
        Value::Tuple(_) => return Err("fortran_order must be True or False, found a tuple".into()),
    };
    let Value::Tuple(items) = shape.ok_or("header has no 'shape' key")? else {
        return Err("shape is not a tuple".into());
    };
    let mut shape = Vec::with_capacity(items.len().min(9));
    for part in items {
        let part = part.strip_suffix('L').unwrap_or(part);
        shape.push(part.parse::<usize>().map_err(|_| format!("shape entry {:?} is not a non-negative integer", truncate(part)))?);
        if shape.len() > 8 {
            return Err("shape has more than 8 dimensions; at most 8 are supported".into());
        }
    }
    Ok((dtype, fortran, shape))
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Encodes a float32 C-order array as `.npy` (version 1.0) bytes, as `numpy.save` does.
///
/// Panics if `shape`'s product differs from `data.len()` (a programming error).
pub fn encode_npy(shape: &[usize], data: &[f32]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), data.len(), "npy shape {shape:?} does not match {} values", data.len());
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Pad with spaces so that magic + version + len + header (+ '\n') is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes a float32 array as a `.npy` file.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    std::fs::write(path, encode_npy(shape, data)).map_err(|e| DataError::io(path, "cannot write file", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("x.npy")
    }

    fn with_header(header: &str, payload: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn roundtrip_2d_and_1d() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        let bytes = encode_npy(&[3, 4], &data);
        assert_eq!((bytes.len() - data.len() * 4) % 64, 0, "header must be 64-byte aligned");
        let a = parse_npy(&bytes, p()).unwrap();
        assert_eq!(a.shape, vec![3, 4]);
        assert_eq!(a.data, data);
        let b = parse_npy(&encode_npy(&[5], &data[..5]), p()).unwrap();
        assert_eq!(b.shape, vec![5]);
        assert_eq!(b.data, &data[..5]);
    }

    #[test]
    fn numpy_written_header_is_accepted() {
        // Exactly what numpy 1.x/2.x writes for np.save('x.npy', np.zeros((64,), np.float64)).
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }          \n";
        let mut payload = Vec::new();
        payload.extend_from_slice(&1.5f64.to_le_bytes());
        payload.extend_from_slice(&(-0.25f64).to_le_bytes());
        let a = parse_npy(&with_header(h, &payload), p()).unwrap();
        assert_eq!(a.data, vec![1.5, -0.25]);
    }

    #[test]
    fn rejects_bad_files_with_reasons() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not numpy".to_vec(), "magic"),
            (with_header("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }\n", &[0; 4]), "not supported"),
            (with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", &[0; 4]), "big-endian"),
            (with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1), }\n", &[0; 4]), "Fortran"),
            (with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n", &[0; 12]), "data section"),
            (with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", &[0; 4]), "non-negative"),
            (with_header("{'descr': '<f4', 'fortran_order': False, }\n", &[0; 4]), "'shape'"),
            (
                with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }\n", &[]),
                "overflow",
            ),
        ];
        for (bytes, want) in cases {
            let e = parse_npy(&bytes, p()).unwrap_err().to_string();
            assert!(e.contains("x.npy") && e.contains(want), "error {e:?} should mention {want:?}");
        }
    }

    #[test]
    fn duplicate_and_unknown_header_keys_are_refused() {
        let f = |h: &str| parse_npy(&with_header(h, &[0; 4]), p()).map(|a| a.data).map_err(|e| e.to_string());
        // The same header without the extra key is fine.
        assert!(f("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n").is_ok());
        assert!(f("{\"shape\": (1,), 'fortran_order' : False,'descr':'<f4'}").is_ok(), "any order, both quotes");
        for (h, want) in [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (0,), }\n", "'shape' appears more than once"),
            ("{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", "'descr' appears more than once"),
            ("{'descr': '<f4', 'fortran_order': False, 'fortran_order': False, 'shape': (1,)}\n", "appears more than once"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1, }\n", "unknown header key \"extra\""),
            // A key hidden inside another value used to be found by the old substring search.
            ("{'descr': '<f4', 'note': \"'shape': (1,)\", 'fortran_order': False}\n", "unknown header key \"note\""),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing\n", "after the header dict"),
            ("{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}\n", "not a Python dict"),
            ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}\n", "structured"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}\n", "True or False"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': 1}\n", "not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}\n", "malformed tuple"),
        ] {
            let e = f(h).unwrap_err();
            assert!(e.contains("x.npy") && e.contains(want), "header {h:?}: error {e:?} should mention {want:?}");
        }
    }

    #[test]
    fn trailing_bytes_and_truncation_are_named() {
        let mut bytes = encode_npy(&[2], &[1.0, 2.0]);
        bytes.extend_from_slice(&[0; 3]);
        let e = parse_npy(&bytes, p()).unwrap_err().to_string();
        assert!(e.contains("x.npy") && e.contains("3 trailing bytes") && e.contains("needs 8"), "{e}");
        let good = encode_npy(&[2], &[1.0, 2.0]);
        let e = parse_npy(&good[..good.len() - 1], p()).unwrap_err().to_string();
        assert!(e.contains("data section has 7 bytes") && e.contains("truncated"), "{e}");
        // The same from files, through the bounded readers.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.npy");
        std::fs::write(&f, &bytes).unwrap();
        for e in [read_npy(&f).unwrap_err(), read_npy_shape(&f, &[2]).unwrap_err()] {
            let e = e.to_string();
            assert!(e.contains("t.npy") && e.contains("3 trailing bytes"), "{e}");
        }
        std::fs::write(&f, &good[..good.len() - 1]).unwrap();
        let e = read_npy(&f).unwrap_err().to_string();
        assert!(e.contains("t.npy") && e.contains("truncated"), "{e}");
        // Shorter than the header, shorter than the preamble, empty.
        for n in [0, 5, 11, 40] {
            std::fs::write(&f, &good[..n]).unwrap();
            let e = read_npy(&f).unwrap_err().to_string();
            assert!(e.contains("t.npy"), "{n}: {e}");
        }
    }

    #[test]
    fn file_readers_match_the_parser_for_all_versions() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v.npy");
        for version in [1u8, 2, 3] {
            let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }\n";
            let mut v = MAGIC.to_vec();
            v.push(version);
            v.push(0);
            if version == 1 {
                v.extend_from_slice(&(h.len() as u16).to_le_bytes());
            } else {
                v.extend_from_slice(&(h.len() as u32).to_le_bytes());
            }
            v.extend_from_slice(h.as_bytes());
            v.extend_from_slice(&0.5f64.to_le_bytes());
            v.extend_from_slice(&(-4.0f64).to_le_bytes());
            std::fs::write(&f, &v).unwrap();
            let a = read_npy(&f).unwrap();
            assert_eq!(a, parse_npy(&v, &f).unwrap());
            assert_eq!(a.data, vec![0.5, -4.0]);
            assert_eq!(read_npy_shape(&f, &[2, 1]).unwrap(), a);
            let mut out = [0f32; 2];
            let mut scratch = Vec::new();
            read_npy_into(&f, &[2, 1], &mut out, &mut scratch).unwrap();
            assert_eq!(out, [0.5, -4.0]);
            assert!(read_npy_into(&f, &[2, 1], &mut [0f32; 3], &mut scratch).is_err());
        }
    }

    #[test]
    fn huge_sparse_file_is_refused_before_reading() {
        crate::testutil::under_memory_limit("npy::tests::huge_sparse_file_is_refused_before_reading", huge_sparse_file_check);
    }

    fn huge_sparse_file_check() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("huge.npy");
        // A valid 64x64 header, then 5 GB of holes: no disk used, but reading it would allocate 5 GB.
        std::fs::write(&f, encode_npy(&[64, 64], &[1.0; 64 * 64])).unwrap();
        std::fs::File::options().write(true).open(&f).unwrap().set_len(5_000_000_000).unwrap();
        let e = read_npy_shape(&f, &[64, 64]).unwrap_err().to_string();
        let max = max_npy_file_len(&[64, 64]).unwrap();
        assert!(e.contains("huge.npy") && e.contains("5000000000 bytes") && e.contains(&format!("{max}-byte limit")), "{e}");
        let e = read_npy(&f).unwrap_err().to_string();
        assert!(e.contains("huge.npy") && e.contains(&format!("{MAX_NPY_BYTES}-byte limit")), "{e}");
        // A header that claims a huge shape, in a small file: refused from the header, nothing allocated.
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }\n";
        std::fs::write(&f, with_header(h, &[0; 16])).unwrap();
        let e = read_npy(&f).unwrap_err().to_string();
        assert!(e.contains("needs 4000000000") && e.contains("truncated"), "{e}");
        let e = read_npy_shape(&f, &[64, 64]).unwrap_err().to_string();
        assert!(e.contains("expected shape [64, 64], found [1000000000]"), "{e}");
    }

    #[test]
    fn special_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.npy");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let zero = dir.path().join("zero.npy");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (f, kind) in [(&fifo, "FIFO"), (&zero, "character device")] {
            for e in [read_npy(f).unwrap_err(), read_npy_shape(f, &[64, 64]).unwrap_err()] {
                let e = e.to_string();
                assert!(e.contains(&f.display().to_string()) && e.contains(kind) && e.contains("not a regular file"), "{e}");
            }
        }
    }

    #[test]
    fn truncated_prefixes_never_panic() {
        let bytes = encode_npy(&[4, 4], &[1.0; 16]);
        for n in 0..bytes.len() {
            assert!(parse_npy(&bytes[..n], p()).is_err());
        }
    }

    #[test]
    fn parse_into_checks_shape_and_decodes() {
        let data: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let bytes = encode_npy(&[2, 3], &data);
        let mut out = [0f32; 6];
        parse_npy_into(&bytes, p(), &[2, 3], &mut out).unwrap();
        assert_eq!(out.to_vec(), data);
        let e = parse_npy_into(&bytes, p(), &[3, 2], &mut out).unwrap_err().to_string();
        assert!(e.contains("x.npy") && e.contains("expected shape [3, 2], found [2, 3]"), "{e}");
        assert!(parse_npy_into(&bytes, p(), &[2, 3], &mut [0f32; 5]).is_err());
        // float64 is converted.
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n";
        let mut out = [0f32; 1];
        parse_npy_into(&with_header(h, &2.5f64.to_le_bytes()), p(), &[1], &mut out).unwrap();
        assert_eq!(out[0], 2.5);
    }

    /// The fuzz seed corpus (`fuzz/corpus/npy`): `valid_*` files parse, `bad_*` files do not
    /// (except `bad_nan`, whose values are only rejected by the dataset's depth check).
    #[test]
    fn fuzz_seed_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/npy");
        let Ok(rd) = std::fs::read_dir(&dir) else { return };
        for e in rd.flatten().filter(|e| e.path().is_file()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = parse_npy(&std::fs::read(e.path()).unwrap(), &e.path());
            if name.starts_with("valid_") || name == "bad_nan.npy" {
                assert!(r.is_ok(), "{name}: {r:?}");
            } else if name.starts_with("bad_") {
                assert!(r.is_err(), "{name} parsed");
            }
        }
    }

    #[test]
    fn shape_check() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.npy");
        write_npy(&f, &[2, 3], &[0.0; 6]).unwrap();
        assert!(read_npy_shape(&f, &[2, 3]).is_ok());
        let e = read_npy_shape(&f, &[64, 64]).unwrap_err().to_string();
        assert!(e.contains("expected shape [64, 64]") && e.contains("a.npy"), "{e}");
    }
}
