//! A PCD v0.7 (Point Cloud Library) writer and a small reader for the files it writes.
//!
//! Files have the fields `x y z intensity`, all `F 4` (float32), `WIDTH` = number of points,
//! `HEIGHT 1` (unorganised), `VIEWPOINT 0 0 0 1 0 0 0` and `DATA ascii` or `DATA binary`
//! (little-endian, point-major). In cilp's export `intensity` is the LiDAR range in metres.

use std::fmt::Write as _;

use crate::error::{ReportError, Result};

/// Field names written by [`write_pcd`].
pub const FIELDS: [&str; 4] = ["x", "y", "z", "intensity"];

/// How the point data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcdEncoding {
    /// One line of text per point (shortest round-trip float formatting: lossless).
    #[default]
    Ascii,
    /// Little-endian float32 records.
    Binary,
}

/// Encodes points `[x, y, z, intensity]` as a PCD v0.7 file.
pub fn write_pcd(points: &[[f32; 4]], encoding: PcdEncoding) -> Vec<u8> {
    let n = points.len();
    let mut s = String::with_capacity(256 + n * 40);
    let _ = write!(
        s,
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION .7\nFIELDS {}\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n\
         WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {}\n",
        FIELDS.join(" "),
        match encoding {
            PcdEncoding::Ascii => "ascii",
            PcdEncoding::Binary => "binary",
        }
    );
    match encoding {
        PcdEncoding::Ascii => {
            for p in points {
                let _ = writeln!(s, "{} {} {} {}", p[0], p[1], p[2], p[3]);
            }
            s.into_bytes()
        }
        PcdEncoding::Binary => {
            let mut out = s.into_bytes();
            out.reserve(n * 16);
            for p in points {
                for v in p {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            out
        }
    }
}

/// A parsed PCD file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcd {
    pub fields: Vec<String>,
    pub width: usize,
    pub height: usize,
    pub viewpoint: Vec<f64>,
    pub encoding: PcdEncoding,
    /// One row per point, one value per field.
    pub points: Vec<Vec<f32>>,
}

fn bad(msg: impl Into<String>) -> ReportError {
    ReportError::Pcd(msg.into())
}

/// Parses PCD v0.7 files whose fields are all `F 4` with count 1 (what [`write_pcd`] writes),
/// stored `ascii` or `binary`. Checks the header's consistency (`POINTS = WIDTH * HEIGHT`,
/// matching SIZE/TYPE/COUNT lengths) and the amount of data.
pub fn read_pcd(bytes: &[u8]) -> Result<Pcd> {
    let mut pos = 0;
    let mut header: Vec<(String, Vec<String>)> = Vec::new();
    let mut encoding = None;
    while pos < bytes.len() {
        let end = bytes[pos..].iter().position(|&b| b == b'\n').map(|e| pos + e).unwrap_or(bytes.len());
        let line = std::str::from_utf8(&bytes[pos..end]).map_err(|_| bad("header is not UTF-8"))?.trim();
        pos = (end + 1).min(bytes.len());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let key = it.next().unwrap_or_default().to_ascii_uppercase();
        let vals: Vec<String> = it.map(str::to_owned).collect();
        if key == "DATA" {
            encoding = Some(match vals.first().map(String::as_str) {
                Some("ascii") => PcdEncoding::Ascii,
                Some("binary") => PcdEncoding::Binary,
                other => return Err(bad(format!("unsupported DATA {other:?}"))),
            });
            break;
        }
        header.push((key, vals));
    }
    let encoding = encoding.ok_or_else(|| bad("no DATA line"))?;
    let get = |k: &str| header.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).ok_or_else(|| bad(format!("missing {k}")));
    let version = get("VERSION")?;
    if version.first().map(String::as_str) != Some(".7") && version.first().map(String::as_str) != Some("0.7") {
        return Err(bad(format!("VERSION {version:?}, expected .7")));
    }
    let fields = get("FIELDS")?;
    let nf = fields.len();
    let (size, ty, count) = (get("SIZE")?, get("TYPE")?, get("COUNT").unwrap_or_else(|_| vec!["1".into(); nf]));
    if size.len() != nf || ty.len() != nf || count.len() != nf {
        return Err(bad("SIZE/TYPE/COUNT do not match FIELDS"));
    }
    if size.iter().any(|s| s != "4") || ty.iter().any(|t| t != "F") || count.iter().any(|c| c != "1") {
        return Err(bad("only F 4 fields with COUNT 1 are supported"));
    }
    let num = |k: &str| -> Result<usize> { get(k)?.first().and_then(|v| v.parse().ok()).ok_or_else(|| bad(format!("bad {k}"))) };
    let (width, height, n) = (num("WIDTH")?, num("HEIGHT")?, num("POINTS")?);
    if width * height != n {
        return Err(bad(format!("POINTS {n} != WIDTH {width} * HEIGHT {height}")));
    }
    let viewpoint: Vec<f64> = get("VIEWPOINT")?.iter().map(|v| v.parse().map_err(|_| bad("bad VIEWPOINT"))).collect::<Result<_>>()?;
    if viewpoint.len() != 7 {
        return Err(bad("VIEWPOINT needs 7 numbers"));
    }
    let data = &bytes[pos..];
    let points = match encoding {
        PcdEncoding::Ascii => {
            let text = std::str::from_utf8(data).map_err(|_| bad("ascii data is not UTF-8"))?;
            let rows: Vec<Vec<f32>> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let r: Vec<f32> =
                        l.split_whitespace().map(|v| v.parse().map_err(|_| bad(format!("bad number in {l:?}")))).collect::<Result<_>>()?;
                    if r.len() != nf { Err(bad(format!("{} values in a row, expected {nf}", r.len()))) } else { Ok(r) }
                })
                .collect::<Result<_>>()?;
            rows
        }
        PcdEncoding::Binary => {
            if data.len() != n * nf * 4 {
                return Err(bad(format!("{} data bytes, expected {}", data.len(), n * nf * 4)));
            }
            data.chunks_exact(nf * 4)
                .map(|rec| rec.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
                .collect()
        }
    };
    if points.len() != n {
        return Err(bad(format!("{} points, header says {n}", points.len())));
    }
    Ok(Pcd { fields, width, height, viewpoint, encoding, points })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_encodings() {
        let pts = vec![[1.0f32, -2.5, 3.25, 20.0], [0.1, 1e-7, -0.333_333_34, 49.99], [f32::MIN_POSITIVE, 7.0, 8.0, 9.0]];
        for enc in [PcdEncoding::Ascii, PcdEncoding::Binary] {
            let bytes = write_pcd(&pts, enc);
            let p = read_pcd(&bytes).unwrap();
            assert_eq!(p.fields, FIELDS);
            assert_eq!((p.width, p.height, p.encoding), (3, 1, enc));
            assert_eq!(p.viewpoint, vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
            let back: Vec<[f32; 4]> = p.points.iter().map(|r| [r[0], r[1], r[2], r[3]]).collect();
            assert_eq!(back, pts, "{enc:?}");
        }
        let empty = read_pcd(&write_pcd(&[], PcdEncoding::Ascii)).unwrap();
        assert_eq!(empty.points.len(), 0);
    }

    #[test]
    fn header_is_exact() {
        let text = String::from_utf8(write_pcd(&[[1.0, 2.0, 3.0, 4.0]], PcdEncoding::Ascii)).unwrap();
        assert_eq!(
            text,
            "# .PCD v0.7 - Point Cloud Data file format\nVERSION .7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\n\
             COUNT 1 1 1 1\nWIDTH 1\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 1\nDATA ascii\n1 2 3 4\n"
        );
    }

    #[test]
    fn rejects_bad_files() {
        let good = String::from_utf8(write_pcd(&[[1.0, 2.0, 3.0, 4.0]], PcdEncoding::Ascii)).unwrap();
        for (from, to) in
            [("POINTS 1", "POINTS 2"), ("VERSION .7", "VERSION .6"), ("1 2 3 4", "1 2 3"), ("DATA ascii", "DATA binary_compressed")]
        {
            assert!(read_pcd(good.replace(from, to).as_bytes()).is_err(), "{from} -> {to}");
        }
        let mut bin = write_pcd(&[[1.0, 2.0, 3.0, 4.0]], PcdEncoding::Binary);
        bin.pop();
        assert!(read_pcd(&bin).is_err());
    }
}
