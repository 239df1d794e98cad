//! PNG decoding and encoding for the dataset's RGB images.
//!
//! The real images are 64x64 RGBA, 8 bits per channel. The reader also accepts RGB, grey and
//! grey+alpha PNGs of 8 bits (converted to RGBA with alpha 255), since re-saved copies of the
//! dataset often lose the alpha channel; palette and 16-bit images are expanded/stripped by the
//! decoder. Any other size is an error naming the file.

use std::path::Path;

use crate::error::{DataError, Result};

/// Width and height of every image in the dataset.
pub const IMAGE_SIZE: usize = 64;

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

/// Decodes PNG bytes into RGBA8; `path` is only used in error messages.
pub fn decode_png(bytes: &[u8], path: &Path) -> Result<RgbaImage> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| err(path, e.to_string()))?;
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

/// Reads a PNG file and checks it is `IMAGE_SIZE` x `IMAGE_SIZE`.
pub fn read_dataset_png(path: &Path) -> Result<RgbaImage> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "cannot read file", e))?;
    let img = decode_png(&bytes, path)?;
    if img.width != IMAGE_SIZE || img.height != IMAGE_SIZE {
        return Err(err(path, format!("image is {}x{}, expected {IMAGE_SIZE}x{IMAGE_SIZE}", img.width, img.height)));
    }
    Ok(img)
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
    fn wrong_size_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("small.png");
        write_rgba_png(&f, 32, 32, &vec![0; 32 * 32 * 4]).unwrap();
        let e = read_dataset_png(&f).unwrap_err().to_string();
        assert!(e.contains("32x32") && e.contains("64x64") && e.contains("small.png"), "{e}");
    }
}
