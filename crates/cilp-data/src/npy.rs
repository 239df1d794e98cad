//! A small, strict reader and writer for NumPy `.npy` files holding little-endian floats.
//!
//! Supported on read: format versions 1.0, 2.0 and 3.0, dtype `<f4` (float32) and `<f8`
//! (float64, converted to `f32`), C order. Everything else (integers, big-endian floats,
//! Fortran order, object arrays, a data section of the wrong length) is an error that names the
//! file and says what was expected. The parser never panics on any input (fuzzed in `fuzz/`).
//!
//! Writes are always version 1.0, `<f4`, C order: exactly what `numpy.save` writes for a
//! C-contiguous float32 array.

use std::path::Path;

use crate::error::{DataError, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers larger than this are refused (NumPy itself caps them at 10,000 bytes by default).
const MAX_HEADER_LEN: usize = 1 << 16;

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

fn err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Npy { path: path.to_path_buf(), reason: reason.into() }
}

/// Reads and parses a `.npy` file of floats.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "cannot read file", e))?;
    parse_npy(&bytes, path)
}

/// Reads a `.npy` file and checks that its shape is exactly `expected`.
pub fn read_npy_shape(path: &Path, expected: &[usize]) -> Result<NpyArray> {
    let arr = read_npy(path)?;
    if arr.shape != expected {
        return Err(err(path, format!("expected shape {expected:?}, found {:?}", arr.shape)));
    }
    Ok(arr)
}

/// Parses the bytes of a `.npy` file; `path` is only used in error messages.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let parts = parse_parts(bytes, path)?;
    let mut data = vec![0f32; parts.count];
    decode_payload(&parts, &mut data);
    Ok(NpyArray { shape: parts.shape, data })
}

/// Parses `.npy` bytes whose shape must be exactly `expected`, decoding straight into `out`
/// (whose length must be the product of `expected`). Same checks and messages as
/// [`parse_npy`] followed by the shape check of [`read_npy_shape`], without allocating the
/// data.
pub fn parse_npy_into(bytes: &[u8], path: &Path, expected: &[usize], out: &mut [f32]) -> Result<()> {
    let parts = parse_parts(bytes, path)?;
    if parts.shape != expected {
        return Err(err(path, format!("expected shape {expected:?}, found {:?}", parts.shape)));
    }
    if out.len() != parts.count {
        return Err(err(path, format!("output buffer holds {} values, shape {expected:?} has {}", out.len(), parts.count)));
    }
    decode_payload(&parts, out);
    Ok(())
}

/// A validated header and the data section it describes.
struct Parts<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    count: usize,
    payload: &'a [u8],
}

fn decode_payload(parts: &Parts<'_>, out: &mut [f32]) {
    match parts.dtype {
        Dtype::F32 => {
            for (o, c) in out.iter_mut().zip(parts.payload.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Dtype::F64 => {
            for (o, c) in out.iter_mut().zip(parts.payload.chunks_exact(8)) {
                *o = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32;
            }
        }
    }
}

fn parse_parts<'a>(bytes: &'a [u8], path: &Path) -> Result<Parts<'a>> {
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
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(err(path, format!("truncated: header says {header_len} bytes, file has {}", bytes.len() - header_start)));
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| err(path, "header is not valid UTF-8/ASCII"))?;
    let (dtype, fortran, shape) = parse_header(header).map_err(|r| err(path, r))?;
    if fortran {
        return Err(err(path, "array is stored in Fortran order (fortran_order: True); expected C order"));
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| err(path, format!("shape {shape:?} overflows")))?;
    let item = match dtype {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
    };
    let payload = &bytes[data_start..];
    let expected = count.checked_mul(item).ok_or_else(|| err(path, format!("shape {shape:?} overflows")))?;
    if payload.len() != expected {
        return Err(err(
            path,
            format!("data section has {} bytes, shape {shape:?} of {} needs {expected}", payload.len(), dtype_name(dtype)),
        ));
    }
    Ok(Parts { dtype, shape, count, payload })
}

fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::F32 => "float32",
        Dtype::F64 => "float64",
    }
}

/// Parses the Python-literal header dict, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (64, 64), }`.
fn parse_header(h: &str) -> std::result::Result<(Dtype, bool, Vec<usize>), String> {
    let h = h.trim_end_matches(['\n', ' ', '\0']).trim();
    let inner = h
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| format!("header is not a Python dict: {:?}", truncate(h)))?;
    let descr = dict_value(inner, "descr").ok_or("header has no 'descr' key")?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let dtype = match descr {
        "<f4" | "float32" => Dtype::F32,
        "<f8" | "float64" => Dtype::F64,
        ">f4" | ">f8" => return Err(format!("dtype {descr} is big-endian; expected little-endian float32 ('<f4')")),
        other => return Err(format!("dtype {other:?} is not supported; expected float32 ('<f4') or float64 ('<f8')")),
    };
    let fortran = match dict_value(inner, "fortran_order").map(str::trim) {
        Some("False") => false,
        Some("True") => true,
        Some(v) => return Err(format!("fortran_order must be True or False, found {:?}", truncate(v))),
        None => return Err("header has no 'fortran_order' key".into()),
    };
    let shape_src = dict_value(inner, "shape").ok_or("header has no 'shape' key")?.trim();
    let shape_inner = shape_src
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("shape is not a tuple: {:?}", truncate(shape_src)))?;
    let mut shape = Vec::new();
    for part in shape_inner.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let part = part.strip_suffix('L').unwrap_or(part);
        shape.push(part.parse::<usize>().map_err(|_| format!("shape entry {:?} is not a non-negative integer", truncate(part)))?);
    }
    if shape.len() > 8 {
        return Err(format!("shape has {} dimensions; at most 8 are supported", shape.len()));
    }
    Ok((dtype, fortran, shape))
}

/// Finds `'key': value` in the dict body and returns the raw value text (up to the next
/// top-level comma; tuples are kept whole).
fn dict_value<'a>(inner: &'a str, key: &str) -> Option<&'a str> {
    for quote in ['\'', '"'] {
        let pat = format!("{quote}{key}{quote}");
        if let Some(pos) = inner.find(&pat) {
            let rest = inner[pos + pat.len()..].trim_start().strip_prefix(':')?;
            let mut depth = 0i32;
            for (i, c) in rest.char_indices() {
                match c {
                    '(' | '[' => depth += 1,
                    ')' | ']' => depth -= 1,
                    ',' if depth == 0 => return Some(&rest[..i]),
                    _ => {}
                }
            }
            return Some(rest);
        }
    }
    None
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
            (with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }\n", &[]), "overflow"),
        ];
        for (bytes, want) in cases {
            let e = parse_npy(&bytes, p()).unwrap_err().to_string();
            assert!(e.contains("x.npy") && e.contains(want), "error {e:?} should mention {want:?}");
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
