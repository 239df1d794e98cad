//! PNG decoding and encoding for the dataset's RGB images.
//!
//! The real images are 64x64 RGBA, 8 bits per channel. The reader also accepts RGB, grey and
//! grey+alpha PNGs of 8 bits (converted to RGBA with alpha 255), since re-saved copies of the
//! dataset often lose the alpha channel; palette and 16-bit images are expanded/stripped by the
//! decoder. Any other size is an error naming the file.
//!
//! Reads are bounded ([`crate::io`]): a file over [`MAX_PNG_BYTES`] or a special file is
//! refused by name before anything is read, the decoder may allocate at most
//! [`DECODER_LIMIT_BYTES`] for its own buffers, and the dataset readers check the header's
//! width and height (64x64) before allocating the image, so a hostile header cannot make them
//! allocate more than one 64x64 image.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::io;

/// Width and height of every image in the dataset.
pub const IMAGE_SIZE: usize = 64;

/// Largest PNG file the dataset readers accept: 1 MiB.
///
/// A 64x64 image holds 16 KiB of 8-bit RGBA pixels (32 KiB at 16 bits per channel). Even stored
/// without compression, a PNG adds only 64 filter bytes, 5 bytes per 64 KiB deflate block and
/// 12 bytes per chunk, so the largest legitimate encoding of the pixels is under 33 KiB; 1 MiB
/// is 30 times that and leaves room for metadata chunks (colour profiles, text, EXIF) that
/// editors add. The dataset's files are about 2-9 KiB.
pub const MAX_PNG_BYTES: u64 = 1 << 20;

/// Most the PNG decoder may allocate for its own buffers (chunk data, decompressed colour
/// profiles and text, row buffers): 4 MiB, four times the largest file accepted. The image
/// itself is allocated by the caller after the size check.
pub const DECODER_LIMIT_BYTES: usize = 4 << 20;

const WHAT: &str = "a 64x64 PNG image";

fn decoder(bytes: &[u8]) -> png::Decoder<std::io::Cursor<&[u8]>> {
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), png::Limits { bytes: DECODER_LIMIT_BYTES });
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    decoder
}

/// An 8-bit RGBA image, row-major, `width * height * 4` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbaImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

fn err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Png { path: path.to_path_buf(), reason: reason.into() }
}

/// Decodes PNG bytes into RGBA8; `path` is only used in error messages. Images of up to
/// 4096x4096 are accepted (up to 64 MiB of pixels): for charts and tests; the dataset readers
/// ([`read_dataset_png`], [`decode_dataset_png_into`]) accept 64x64 only.
pub fn decode_png(bytes: &[u8], path: &Path) -> Result<RgbaImage> {
    let mut reader = decoder(bytes).read_info().map_err(|e| err(path, e.to_string()))?;
    let (width, height) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    if width == 0 || height == 0 || width > 4096 || height > 4096 {
        return Err(err(path, format!("image is {width}x{height}; expected at most 4096x4096")));
    }
    let size = reader.output_buffer_size().ok_or_else(|| err(path, "image too large"))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| err(path, format!("corrupt or truncated image data: {e}")))?;
    buf.truncate(frame.buffer_size());
    let n = width * height;
    let pixels = match frame.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf.chunks_exact(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::GrayscaleAlpha => buf.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0], c[1]]).collect(),
        png::ColorType::Indexed => return Err(err(path, "palette image was not expanded")),
    };
    if pixels.len() != n * 4 {
        return Err(err(path, format!("decoded {} bytes, expected {}", pixels.len(), n * 4)));
    }
    Ok(RgbaImage { width, height, pixels })
}

/// Reads a PNG file that must be `IMAGE_SIZE` x `IMAGE_SIZE`: special files and files over
/// [`MAX_PNG_BYTES`] are refused before reading, the size is checked from the header before
/// the image is allocated.
pub fn read_dataset_png(path: &Path) -> Result<RgbaImage> {
    let mut bytes = Vec::new();
    read_dataset_png_bytes(path, &mut bytes)?;
    let mut pixels = vec![0u8; IMAGE_SIZE * IMAGE_SIZE * 4];
    decode_dataset_png_into(&bytes, path, &mut pixels)?;
    Ok(RgbaImage { width: IMAGE_SIZE, height: IMAGE_SIZE, pixels })
}

/// Reads the bytes of a dataset PNG into `buf` (a bounded read: special files and files over
/// [`MAX_PNG_BYTES`] are refused by name before anything is read).
pub fn read_dataset_png_bytes(path: &Path, buf: &mut Vec<u8>) -> Result<()> {
    Ok(io::read_bounded_into(path, MAX_PNG_BYTES, WHAT, buf)?)
}

/// Decodes PNG bytes that must be an `IMAGE_SIZE` x `IMAGE_SIZE` image straight into `out`
/// (`64*64*4` RGBA bytes). Same checks and messages as [`decode_png`] plus the size check of
/// [`read_dataset_png`]; 8-bit RGBA images (the dataset's) decode without a temporary buffer.
pub fn decode_dataset_png_into(bytes: &[u8], path: &Path, out: &mut [u8]) -> Result<()> {
    let n = IMAGE_SIZE * IMAGE_SIZE * 4;
    if out.len() != n {
        return Err(err(path, format!("output buffer holds {} bytes, a {IMAGE_SIZE}x{IMAGE_SIZE} RGBA image needs {n}", out.len())));
    }
    let mut reader = decoder(bytes).read_info().map_err(|e| err(path, e.to_string()))?;
    let (width, height) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    if width != IMAGE_SIZE || height != IMAGE_SIZE {
        return Err(err(path, format!("image is {width}x{height}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")));
    }
    if reader.output_color_type() == (png::ColorType::Rgba, png::BitDepth::Eight) && reader.output_buffer_size() == Some(n) {
        reader.next_frame(out).map_err(|e| err(path, format!("corrupt or truncated image data: {e}")))?;
        return Ok(());
    }
    // Other colour types: decode the usual way and convert.
    drop(reader);
    let img = decode_png(bytes, path)?;
    out.copy_from_slice(&img.pixels);
    Ok(())
}

/// Encodes RGBA8 pixels as a PNG (8-bit RGBA, like the real dataset).
pub fn encode_rgba_png(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    encode_png(width, height, pixels, png::ColorType::Rgba)
}

/// Encodes RGB8 pixels as a PNG (used for charts and previews).
pub fn encode_rgb_png(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    encode_png(width, height, pixels, png::ColorType::Rgb)
}

fn encode_png(width: usize, height: usize, pixels: &[u8], color: png::ColorType) -> Vec<u8> {
    let channels = if color == png::ColorType::Rgba { 4 } else { 3 };
    assert_eq!(pixels.len(), width * height * channels, "pixel buffer does not match {width}x{height}x{channels}");
    let mut out = Vec::with_capacity(pixels.len() / 4 + 128);
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header().expect("writing a PNG header to memory cannot fail");
        w.write_image_data(pixels).expect("writing PNG data to memory cannot fail");
    }
    out
}

/// Writes RGBA8 pixels as a PNG file.
pub fn write_rgba_png(path: &Path, width: usize, height: usize, pixels: &[u8]) -> Result<()> {
    std::fs::write(path, encode_rgba_png(width, height, pixels)).map_err(|e| DataError::io(path, "cannot write file", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() {
        let px: Vec<u8> = (0..64 * 64 * 4).map(|i| (i % 251) as u8).collect();
        let bytes = encode_rgba_png(64, 64, &px);
        let img = decode_png(&bytes, Path::new("a.png")).unwrap();
        assert_eq!(img.pixels, px);
        // Truncated files fail with the path in the message, never panic.
        // (A file cut inside the trailing IEND chunk still holds the whole image and decodes.)
        for n in [0, 8, 20, bytes.len() / 2] {
            let Err(e) = decode_png(&bytes[..n], Path::new("a.png")) else { panic!("truncated at {n} decoded") };
            let e = e.to_string();
            assert!(e.contains("a.png"), "{e}");
        }
        // RGB input is expanded to RGBA with opaque alpha.
        let rgb = encode_rgb_png(2, 1, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(decode_png(&rgb, Path::new("b.png")).unwrap().pixels, vec![1, 2, 3, 255, 4, 5, 6, 255]);
    }

    #[test]
    fn decode_into_matches_decode() {
        let px: Vec<u8> = (0..64 * 64 * 4).map(|i| (i % 253) as u8).collect();
        let mut out = vec![0u8; 64 * 64 * 4];
        decode_dataset_png_into(&encode_rgba_png(64, 64, &px), Path::new("a.png"), &mut out).unwrap();
        assert_eq!(out, px);
        // RGB input goes through the conversion path.
        let rgb: Vec<u8> = (0..64 * 64 * 3).map(|i| (i % 7) as u8).collect();
        decode_dataset_png_into(&encode_rgb_png(64, 64, &rgb), Path::new("b.png"), &mut out).unwrap();
        assert_eq!(&out[..8], &[0, 1, 2, 255, 3, 4, 5, 255]);
        let e = decode_dataset_png_into(&encode_rgba_png(2, 2, &[0; 16]), Path::new("c.png"), &mut out).unwrap_err().to_string();
        assert!(e.contains("c.png") && e.contains("2x2") && e.contains("expected 64x64"), "{e}");
        let bytes = encode_rgba_png(64, 64, &px);
        let e = decode_dataset_png_into(&bytes[..bytes.len() / 2], Path::new("d.png"), &mut out).unwrap_err().to_string();
        assert!(e.contains("d.png"), "{e}");
    }

    /// The fuzz seed corpus (`fuzz/corpus/png`): every file but `truncated`/`bad_*` decodes.
    #[test]
    fn fuzz_seed_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/png");
        let Ok(rd) = std::fs::read_dir(&dir) else { return };
        for e in rd.flatten().filter(|e| e.path().is_file()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = decode_png(&std::fs::read(e.path()).unwrap(), &e.path());
            if name.starts_with("truncated") || name.starts_with("bad_") {
                assert!(r.is_err(), "{name} decoded");
            } else {
                let img = r.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(img.pixels.len(), img.width * img.height * 4);
            }
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    /// A valid 64x64 PNG whose IHDR claims `width` x `height` (CRC fixed up).
    fn with_ihdr_size(width: u32, height: u32) -> Vec<u8> {
        let mut b = encode_rgba_png(64, 64, &vec![7; 64 * 64 * 4]);
        // Signature (8), length (4), "IHDR" (4), then width and height.
        assert_eq!(&b[12..16], b"IHDR");
        b[16..20].copy_from_slice(&width.to_be_bytes());
        b[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&b[12..29]);
        b[29..33].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn hostile_header_sizes_are_refused_before_allocating() {
        assert!(decode_png(&with_ihdr_size(64, 64), Path::new("ok.png")).is_ok(), "the CRC fix-up works");
        let mut out = vec![0u8; 64 * 64 * 4];
        for (w, h) in [(1 << 30, 1 << 30), (0x7fff_ffff, 1), (1, 0x7fff_ffff), (65, 64), (4096, 4096)] {
            let bytes = with_ihdr_size(w, h);
            // Dataset decoder: refused from the header (or by the decoder's own allocation limit
            // for absurd widths), before the image buffer exists.
            let e = decode_dataset_png_into(&bytes, Path::new("h.png"), &mut out).unwrap_err().to_string();
            assert!(e.contains("h.png"), "{w}x{h}: {e}");
            let e = decode_png(&bytes, Path::new("g.png")).unwrap_err().to_string();
            assert!(e.contains("g.png"), "{w}x{h}: {e}");
        }
        let e = decode_dataset_png_into(&with_ihdr_size(1 << 30, 1 << 30), Path::new("h.png"), &mut out).unwrap_err().to_string();
        assert!(e.contains("1073741824x1073741824") || e.contains("limit"), "{e}");
    }

    #[test]
    fn huge_and_special_files_are_refused_by_name_before_reading() {
        crate::testutil::under_memory_limit(
            "image::tests::huge_and_special_files_are_refused_by_name_before_reading",
            huge_and_special_files_check,
        );
    }

    fn huge_and_special_files_check() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("huge.png");
        // A valid image followed by 5 GB of holes: sparse, no disk used.
        std::fs::write(&f, encode_rgba_png(64, 64, &vec![1; 64 * 64 * 4])).unwrap();
        std::fs::File::options().write(true).open(&f).unwrap().set_len(5_000_000_000).unwrap();
        let e = read_dataset_png(&f).unwrap_err().to_string();
        assert!(e.contains("huge.png") && e.contains("5000000000 bytes") && e.contains("1048576-byte limit for a 64x64 PNG image"), "{e}");
        // Just over the cap: refused; a valid image is well under it.
        std::fs::File::options().write(true).open(&f).unwrap().set_len(MAX_PNG_BYTES + 1).unwrap();
        assert!(read_dataset_png(&f).unwrap_err().to_string().contains("1048577 bytes"));
        let fifo = dir.path().join("fifo.png");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let zero = dir.path().join("zero.png");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (p, kind) in [(&fifo, "FIFO"), (&zero, "character device")] {
            let e = read_dataset_png(p).unwrap_err().to_string();
            assert!(e.contains(&p.display().to_string()) && e.contains(kind) && e.contains("a 64x64 PNG image"), "{e}");
        }
    }

    #[test]
    fn wrong_size_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("small.png");
        write_rgba_png(&f, 32, 32, &vec![0; 32 * 32 * 4]).unwrap();
        let e = read_dataset_png(&f).unwrap_err().to_string();
        assert!(e.contains("32x32") && e.contains("64x64") && e.contains("small.png"), "{e}");
    }
}
