//! PNG encoding helpers for TensorBoard images.

use crate::error::{Error, Result};

/// Basic facts read from a PNG header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// TensorBoard colorspace: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
    pub colorspace: i32,
}

/// Read width, height and colorspace from PNG bytes (header only).
pub fn png_info(png_bytes: &[u8]) -> Result<PngInfo> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let reader = decoder.read_info().map_err(|e| Error::Image { what: "PNG header".into(), message: e.to_string() })?;
    let info = reader.info();
    let colorspace = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb | png::ColorType::Indexed => 3,
        png::ColorType::Rgba => 4,
    };
    Ok(PngInfo { width: info.width, height: info.height, colorspace })
}

fn encode(pixels: &[u8], width: u32, height: u32, color: png::ColorType, channels: usize) -> Result<Vec<u8>> {
    let what = || format!("{width}x{height} {color:?} image");
    let expected = width as usize * height as usize * channels;
    if width == 0 || height == 0 {
        return Err(Error::Image { what: what(), message: "width and height must be positive".into() });
    }
    if pixels.len() != expected {
        return Err(Error::Image {
            what: what(),
            message: format!("expected {expected} bytes ({width}*{height}*{channels}), got {}", pixels.len()),
        });
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| Error::Image { what: what(), message: e.to_string() })?;
        w.write_image_data(pixels).map_err(|e| Error::Image { what: what(), message: e.to_string() })?;
        w.finish().map_err(|e| Error::Image { what: what(), message: e.to_string() })?;
    }
    Ok(out)
}

/// Encode raw row-major RGB8 pixels (`width * height * 3` bytes) as PNG.
pub fn encode_png_rgb8(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    encode(rgb, width, height, png::ColorType::Rgb, 3)
}

/// Encode raw row-major 8-bit greyscale pixels (`width * height` bytes) as PNG.
pub fn encode_png_gray8(gray: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    encode(gray, width, height, png::ColorType::Grayscale, 1)
}

/// Viridis colour map sampled at 9 stops (matplotlib's default colormap).
const VIRIDIS: [[f32; 3]; 9] = [
    [68.0, 1.0, 84.0],
    [71.0, 44.0, 122.0],
    [59.0, 81.0, 139.0],
    [44.0, 113.0, 142.0],
    [33.0, 144.0, 141.0],
    [39.0, 173.0, 129.0],
    [92.0, 200.0, 99.0],
    [170.0, 220.0, 50.0],
    [253.0, 231.0, 37.0],
];

/// Map `t` in `[0, 1]` (clamped; NaN -> 0) to an RGB viridis colour.
pub fn viridis(t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (VIRIDIS.len() - 1) as f32;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f32;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    std::array::from_fn(|c| (a[c] + (b[c] - a[c]) * f).round() as u8)
}

/// Render a row-major `rows x cols` matrix (e.g. the 32x32 RGB-LiDAR similarity
/// matrix) as an RGB8 heatmap with `cell_px x cell_px` pixels per cell, using
/// the viridis colour map over `[min, max]` of the finite values.
/// Returns `(pixels, width, height)`, ready for [`encode_png_rgb8`] or
/// [`crate::EventWriter::add_image_rgb8`].
pub fn heatmap_rgb8(values: &[f32], rows: usize, cols: usize, cell_px: usize) -> Result<(Vec<u8>, u32, u32)> {
    if rows == 0 || cols == 0 || cell_px == 0 || values.len() != rows * cols {
        return Err(Error::Image {
            what: "heatmap".into(),
            message: format!(
                "expected rows*cols = {}*{} values and positive sizes, got {} values, cell_px {cell_px}",
                rows,
                cols,
                values.len()
            ),
        });
    }
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (w, h) = (cols * cell_px, rows * cell_px);
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let v = values[(y / cell_px) * cols + x / cell_px];
            px.extend_from_slice(&viridis(if lo.is_finite() { (v - lo) / span } else { 0.0 }));
        }
    }
    Ok((px, w as u32, h as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_inspect() {
        let rgb: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8).collect();
        let png = encode_png_rgb8(&rgb, 4, 3).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(png_info(&png).unwrap(), PngInfo { width: 4, height: 3, colorspace: 3 });
        // decode back
        let mut r = png::Decoder::new(std::io::Cursor::new(&png)).read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        r.next_frame(&mut buf).unwrap();
        assert_eq!(buf, rgb);
        let g = encode_png_gray8(&[0, 255], 2, 1).unwrap();
        assert_eq!(png_info(&g).unwrap().colorspace, 1);
    }

    #[test]
    fn heatmap() {
        let (px, w, h) = heatmap_rgb8(&[0.0, 1.0, 0.5, f32::NAN], 2, 2, 3).unwrap();
        assert_eq!((w, h), (6, 6));
        assert_eq!(px.len(), 6 * 6 * 3);
        assert_eq!(&px[0..3], &[68, 1, 84]); // min -> dark purple
        assert_eq!(&px[9..12], &[253, 231, 37]); // max -> yellow
        assert!(heatmap_rgb8(&[0.0; 3], 2, 2, 1).is_err());
        encode_png_rgb8(&px, w, h).unwrap();
    }

    #[test]
    fn wrong_size_is_reported() {
        let err = encode_png_rgb8(&[0; 5], 2, 2).unwrap_err().to_string();
        assert!(err.contains("expected 12 bytes"), "{err}");
        assert!(png_info(b"not a png").is_err());
    }
}
