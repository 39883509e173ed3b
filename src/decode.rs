//! Encoded bytes -> RGB8, with a pixel limit checked from the header before any large allocation.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits, RgbImage};

/// By default, images over 100 megapixels are refused.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Why an image could not be decoded. The loader adds the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The file holds no bytes.
    #[error("empty file (0 bytes)")]
    Empty,
    /// The bytes are not a format this crate reads.
    #[error("unsupported or unrecognised image format")]
    UnsupportedFormat,
    /// The header declares more pixels than allowed (e.g. a decompression bomb).
    #[error("image is {width}x{height} = {pixels} pixels, over the limit of {limit}")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// width * height.
        pixels: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A zero-sized image.
    #[error("image has zero width or height")]
    ZeroSized,
    /// Truncated or corrupt data, as reported by the decoder.
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
}

/// Decoding options.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// Refuse images with more pixels than this. By default [`DEFAULT_MAX_PIXELS`].
    pub max_pixels: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

const SUPPORTED: [ImageFormat; 4] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Bmp,
    ImageFormat::WebP,
];

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    match reader.format() {
        Some(f) if SUPPORTED.contains(&f) => Ok(reader),
        _ => Err(DecodeError::UnsupportedFormat),
    }
}

/// Reads width and height from the header only.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    reader(bytes)?
        .into_dimensions()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))
}

/// Decodes JPEG (baseline, progressive, grayscale, CMYK), PNG (8/16-bit, gray, RGBA), BMP or WebP
/// to RGB8. The pixel limit is checked from the header before the pixel buffer is allocated.
pub fn decode_rgb8(bytes: &[u8], opts: &DecodeOptions) -> Result<RgbImage, DecodeError> {
    let (width, height) = dimensions(bytes)?;
    let pixels = width as u64 * height as u64;
    if pixels > opts.max_pixels {
        return Err(DecodeError::TooLarge {
            width,
            height,
            pixels,
            limit: opts.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(DecodeError::ZeroSized);
    }
    let mut reader = reader(bytes)?;
    let mut limits = Limits::default();
    // Room for a 16-bit RGBA intermediate of an image at the limit, nothing more.
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    Ok(match img {
        image::DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_are_errors() {
        let o = DecodeOptions::default();
        assert!(matches!(decode_rgb8(&[], &o), Err(DecodeError::Empty)));
        assert!(matches!(
            decode_rgb8(b"hello world, not an image", &o),
            Err(DecodeError::UnsupportedFormat)
        ));
    }
}
