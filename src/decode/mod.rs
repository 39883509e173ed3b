//! Encoded bytes -> RGB8, with a pixel limit checked from the header before any large allocation.
//!
//! JPEGs go through the system libjpeg-turbo when the build found it (`cfg(augloader_libjpeg)`,
//! csrc/jpeg_region.c): it decodes only the window a pipeline reads ([`Region`]) and, where that
//! window is large enough ([`Region::max_scale`]), decodes at 1/2, 1/4 or 1/8 scale in the DCT.
//! A JPEG with restart markers is first cut down to the intervals around the window (`restart`);
//! [`add_restart_markers`] adds them losslessly. Everything else (and JPEGs without it, or in
//! CMYK) is decoded in full by the `image` crate.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits, RgbImage};

#[cfg(augloader_libjpeg)]
mod restart;

/// The JPEG decoder this build uses.
#[cfg(augloader_libjpeg)]
pub const JPEG_DECODER: &str = "libjpeg-turbo (window + DCT scaling)";
/// The JPEG decoder this build uses.
#[cfg(not(augloader_libjpeg))]
pub const JPEG_DECODER: &str = "image/zune-jpeg (whole image)";

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
    /// Truncated or corrupt data, as libjpeg-turbo reports it (a message, no error value).
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
    /// Truncated or corrupt data, as the `image` crate's decoders report it.
    #[error("corrupt or truncated image: {0}")]
    Decoder(#[source] image::ImageError),
    /// Re-encoding with restart markers would change the pixels (a progressive file that stops
    /// before full refinement, whose blocks libjpeg smooths): the original is to be kept.
    #[error(
        "re-encoding with restart markers would change {changed} pixel values (a progressive \
         file that stops before full refinement?); keep the original"
    )]
    NotLossless {
        /// Pixel values (bytes of the RGB decode) that would differ.
        changed: usize,
    },
    /// The pixels do not fit in memory (the allocation failed; the process goes on).
    #[error("{width}x{height} image needs {bytes} bytes of pixels, which could not be allocated")]
    OutOfMemory {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The bytes asked for.
        bytes: u64,
    },
    /// This build has no libjpeg-turbo, which the operation needs.
    #[error("this build has no libjpeg-turbo (needed to {0})")]
    NoLibjpeg(&'static str),
}

/// Decoding options.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// Refuse images with more pixels than this. By default [`DEFAULT_MAX_PIXELS`].
    pub max_pixels: u64,
    /// Allow reduced-size DCT decoding where a [`Region`] permits it (on by default). It changes
    /// pixels slightly against a full decode followed by resizing; off, results are exact.
    pub dct_scaling: bool,
    /// Pass libjpeg only the restart intervals around a window (on by default; the pixels are a
    /// full decode's). Off, to measure what the cut saves.
    pub restart_cuts: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_pixels: DEFAULT_MAX_PIXELS,
            dct_scaling: true,
            restart_cuts: true,
        }
    }
}

/// The part of an image a pipeline reads: a window in full-resolution pixels, and the largest
/// downscale (1, 2, 4 or 8) it accepts: the downscaled window stays at least twice the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First column.
    pub left: u32,
    /// First row.
    pub top: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Largest acceptable downscale factor.
    pub max_scale: u32,
}

/// A decoded image: all of it, or a window of it, possibly downscaled.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The pixels: a window of the image downscaled by `scale`.
    pub image: RgbImage,
    /// (left, top) of `image` in the downscaled full image.
    pub origin: (u32, u32),
    /// 1, 2, 4 or 8: the image was decoded at 1/scale of its size.
    pub scale: u32,
    /// Full-resolution (width, height).
    pub full_size: (u32, u32),
}

impl Decoded {
    /// True when this is the whole image at full resolution.
    pub fn is_full(&self) -> bool {
        self.scale == 1 && self.origin == (0, 0) && self.image.dimensions() == self.full_size
    }
}

// Every format of torchvision's IMG_EXTENSIONS (PNM covers .ppm/.pgm/.pbm).
const SUPPORTED: [ImageFormat; 6] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Bmp,
    ImageFormat::WebP,
    ImageFormat::Tiff,
    ImageFormat::Pnm,
];

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Decoder(image::ImageError::IoError(e)))?;
    match reader.format() {
        Some(f) if SUPPORTED.contains(&f) => Ok(reader),
        _ => Err(DecodeError::UnsupportedFormat),
    }
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Reads width and height from the header only.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    #[cfg(augloader_libjpeg)]
    if is_jpeg(bytes) {
        return libjpeg::info(bytes).map(|i| (i.width, i.height));
    }
    reader(bytes)?
        .into_dimensions()
        .map_err(DecodeError::Decoder)
}

/// What a header says, checked against the limits. The loader reads it once per sample: the
/// size to sample parameters from, then how the window they read can be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// libjpeg-turbo decodes it (a JPEG in a colour space it converts to RGB).
    libjpeg: bool,
    /// ... and can decode a window of it.
    window: bool,
}

/// Reads the header, refusing zero-sized images and images over the pixel limit.
pub(crate) fn read_header(bytes: &[u8], opts: &DecodeOptions) -> Result<Header, DecodeError> {
    #[cfg(augloader_libjpeg)]
    let jpeg = is_jpeg(bytes).then(|| libjpeg::info(bytes)).transpose()?;
    #[cfg(not(augloader_libjpeg))]
    let jpeg: Option<JpegInfo> = None;
    let header = match jpeg {
        Some(i) => Header {
            width: i.width,
            height: i.height,
            libjpeg: i.rgb,
            // Progressive images are decoded whole: block smoothing makes a window's pixels
            // depend on what lies around it. So are files that do not end with the EOI marker: a
            // window above a truncation would decode, and whether a file fails must not depend
            // on the window an epoch happens to draw.
            window: i.rgb && !i.progressive && bytes.ends_with(&[0xFF, 0xD9]),
        },
        None => {
            let (width, height) = dimensions(bytes)?;
            Header {
                width,
                height,
                libjpeg: false,
                window: false,
            }
        }
    };
    let (width, height) = (header.width, header.height);
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
    // Past a size that may not fit (the pixel limit lifted), ask for the memory first: a
    // failed allocation is an error naming the size, never an abort of the process.
    // (libjpeg-turbo's path reserves only its window's buffer, fallibly, itself.)
    if pixels > PROBE_PIXELS && !header.libjpeg {
        let bytes = pixels.saturating_mul(3);
        let fits = usize::try_from(bytes)
            .ok()
            .is_some_and(|b| Vec::<u8>::new().try_reserve_exact(b).is_ok());
        if !fits {
            return Err(DecodeError::OutOfMemory {
                width,
                height,
                bytes,
            });
        }
    }
    Ok(header)
}

/// Images above this many pixels have their memory asked for before decoding (48 MB and up).
const PROBE_PIXELS: u64 = 16 << 20;

/// Decodes JPEG (baseline, progressive, grayscale, CMYK), PNG (8/16-bit, gray, RGBA), BMP, WebP,
/// TIFF or PNM (PPM/PGM/PBM) to RGB8. The pixel limit is checked from the header before the pixel buffer is allocated.
pub fn decode_rgb8(bytes: &[u8], opts: &DecodeOptions) -> Result<RgbImage, DecodeError> {
    decode_region(bytes, opts, None).map(|d| d.image)
}

/// Decodes the window `region` of an image (all of it with `None`), at a reduced DCT scale where
/// `opts` allows: the header first, then only the rows and columns the window needs.
pub fn decode_region(
    bytes: &[u8],
    opts: &DecodeOptions,
    region: Option<Region>,
) -> Result<Decoded, DecodeError> {
    decode_window(bytes, &read_header(bytes, opts)?, opts, region)
}

/// Decodes at least `region` of the image whose header is `header` (all of it for `None`),
/// downscaled in the DCT by up to the region's `max_scale` when `opts.dct_scaling` allows.
/// Formats and JPEGs that cannot be decoded partially come back whole, at full resolution.
pub(crate) fn decode_window(
    bytes: &[u8],
    header: &Header,
    opts: &DecodeOptions,
    region: Option<Region>,
) -> Result<Decoded, DecodeError> {
    let full_size = (header.width, header.height);
    #[cfg(augloader_libjpeg)]
    if header.libjpeg {
        let region = region.filter(|_| header.window);
        return libjpeg::decode(bytes, full_size, region, opts);
    }
    #[cfg(not(augloader_libjpeg))]
    let _ = region;
    Ok(Decoded {
        image: decode_full(bytes, opts)?,
        origin: (0, 0),
        scale: 1,
        full_size,
    })
}

/// Whether this build can [`add_restart_markers`] (it needs libjpeg-turbo).
pub fn can_add_restart_markers() -> bool {
    cfg!(augloader_libjpeg)
}

/// Re-encodes a JPEG losslessly (the same DCT coefficients, so a decode gives the same pixels) as
/// one baseline scan with a restart marker every `interval` MCUs (APPn and COM markers kept).
/// A window decode of such a file reads only the restart intervals around the window: its rows,
/// and its columns where `interval` divides the MCUs of a row.
/// Images over [`DEFAULT_MAX_PIXELS`] are refused from the header (all their coefficients are
/// held in memory). The result is decoded and compared with the original's decode: a file whose
/// pixels would change is refused.
pub fn add_restart_markers(bytes: &[u8], interval: u16) -> Result<Vec<u8>, DecodeError> {
    if !is_jpeg(bytes) {
        return Err(DecodeError::UnsupportedFormat);
    }
    read_header(bytes, &DecodeOptions::default())?;
    #[cfg(augloader_libjpeg)]
    {
        let out = libjpeg::add_restarts(bytes, interval)?;
        // Lossless in the coefficients is not always lossless in the pixels: libjpeg smooths the
        // blocks of a progressive file that stops before full refinement, and not those of the
        // baseline re-encoding. Such a file is refused (callers keep the original).
        let exact = DecodeOptions {
            dct_scaling: false,
            ..DecodeOptions::default()
        };
        let (before, after) = (decode_rgb8(bytes, &exact)?, decode_rgb8(&out, &exact)?);
        if before != after {
            let changed = before
                .as_raw()
                .iter()
                .zip(after.as_raw())
                .filter(|(a, b)| a != b)
                .count();
            return Err(DecodeError::NotLossless { changed });
        }
        Ok(out)
    }
    #[cfg(not(augloader_libjpeg))]
    {
        let _ = interval;
        Err(DecodeError::NoLibjpeg("add restart markers"))
    }
}

/// A JPEG ends its last scan with the EOI marker (FF D9); neither marker can occur inside
/// entropy-coded data, and an embedded thumbnail's markers come before the main scans.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|i| bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

fn decode_full(bytes: &[u8], opts: &DecodeOptions) -> Result<RgbImage, DecodeError> {
    // zune-jpeg fills a truncated scan with grey and carries on; libjpeg-turbo reports it.
    if is_jpeg(bytes) && !jpeg_has_end(bytes) {
        return Err(DecodeError::Corrupt(
            "truncated JPEG: no end-of-image marker after the last scan".into(),
        ));
    }
    let mut reader = reader(bytes)?;
    let mut limits = Limits::default();
    // Room for a 16-bit RGBA intermediate of an image at the limit, nothing more.
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    let img = reader.decode().map_err(DecodeError::Decoder)?;
    use image::DynamicImage as D;
    Ok(match img {
        D::ImageRgb8(rgb) => rgb,
        // 16 bits to 8 by truncation (v >> 8), as Pillow reads them; the image crate rounds.
        D::ImageRgb16(_) | D::ImageRgba16(_) | D::ImageLuma16(_) | D::ImageLumaA16(_) => {
            let (w, h) = (img.width(), img.height());
            let wide = img.to_rgb16().into_raw();
            RgbImage::from_raw(w, h, wide.into_iter().map(|v| (v >> 8) as u8).collect())
                .expect("the same size")
        }
        other => other.to_rgb8(),
    })
}

/// What libjpeg-turbo read from a JPEG header.
#[derive(Clone, Copy, Debug)]
struct JpegInfo {
    width: u32,
    height: u32,
    /// libjpeg converts the colour space to RGB (not CMYK, YCCK).
    rgb: bool,
    progressive: bool,
}

#[cfg(augloader_libjpeg)]
mod libjpeg {
    use super::{DecodeError, DecodeOptions, Decoded, JpegInfo as Info, Region};
    use image::RgbImage;
    use std::ffi::{c_char, c_int, c_uint, c_ulong, CStr};

    const MSG_LEN: usize = 256;

    extern "C" {
        fn al_jpeg_info(
            data: *const u8,
            len: c_ulong,
            width: *mut c_uint,
            height: *mut c_uint,
            rgb_ok: *mut c_int,
            progressive: *mut c_int,
            msg: *mut c_char,
        ) -> c_int;
        #[allow(clippy::too_many_arguments)]
        fn al_jpeg_decode(
            data: *const u8,
            len: c_ulong,
            scale_denom: c_uint,
            x: c_uint,
            y: c_uint,
            w: c_uint,
            h: c_uint,
            out: *mut u8,
            cap: usize,
            out_x: *mut c_uint,
            out_w: *mut c_uint,
            msg: *mut c_char,
        ) -> c_int;
    }

    extern "C" {
        fn al_jpeg_add_restarts(
            data: *const u8,
            len: c_ulong,
            interval: c_uint,
            out: *mut *mut u8,
            out_len: *mut c_ulong,
            msg: *mut c_char,
        ) -> c_int;
        fn al_free(p: *mut u8);
    }

    pub(super) fn add_restarts(bytes: &[u8], interval: u16) -> Result<Vec<u8>, DecodeError> {
        let (mut out, mut out_len) = (std::ptr::null_mut(), 0);
        let mut msg = [0 as c_char; MSG_LEN];
        // SAFETY: the pointers are valid for the call; the C side only reads `len` bytes of data
        // and, on success, leaves in `out` a buffer of `out_len` bytes that we free with al_free.
        let rc = unsafe {
            al_jpeg_add_restarts(
                bytes.as_ptr(),
                bytes.len() as c_ulong,
                interval as c_uint,
                &mut out,
                &mut out_len,
                msg.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(error(&msg));
        }
        // SAFETY: as above; the bytes are copied before the buffer is freed.
        let v = unsafe { std::slice::from_raw_parts(out, out_len as usize).to_vec() };
        unsafe { al_free(out) };
        Ok(v)
    }

    fn error(msg: &[c_char; MSG_LEN]) -> DecodeError {
        // SAFETY: the C side always writes a NUL-terminated message (snprintf) before failing.
        let text = unsafe { CStr::from_ptr(msg.as_ptr()) };
        DecodeError::Corrupt(text.to_string_lossy().into_owned())
    }

    pub(super) fn info(bytes: &[u8]) -> Result<Info, DecodeError> {
        let (mut w, mut h, mut ok, mut prog) = (0, 0, 0, 0);
        let mut msg = [0 as c_char; MSG_LEN];
        // SAFETY: the pointers are valid for the call; the C side only reads `len` bytes of data.
        let rc = unsafe {
            al_jpeg_info(
                bytes.as_ptr(),
                bytes.len() as c_ulong,
                &mut w,
                &mut h,
                &mut ok,
                &mut prog,
                msg.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(error(&msg));
        }
        Ok(Info {
            width: w,
            height: h,
            rgb: ok != 0,
            progressive: prog != 0,
        })
    }

    /// `r` at 1/`scale` in an image of `(sw, sh)` scaled pixels: (x, y, width, height).
    fn scaled_window(r: &Region, scale: u32, (sw, sh): (u32, u32)) -> (u32, u32, u32, u32) {
        // Two more columns each side: at the window's own edges, fancy chroma upsampling sees
        // no neighbours and would differ from a full decode.
        let x0 = (r.left / scale).min(sw - 1).saturating_sub(2);
        let y0 = (r.top / scale).min(sh - 1);
        let x1 = ((r.left + r.width).div_ceil(scale) + 2).clamp(x0 + 1, sw);
        let y1 = (r.top + r.height).div_ceil(scale).clamp(y0 + 1, sh);
        (x0, y0, x1 - x0, y1 - y0)
    }

    /// Decodes a JPEG in a colour space libjpeg converts to RGB.
    pub(super) fn decode(
        bytes: &[u8],
        (width, height): (u32, u32),
        region: Option<Region>,
        opts: &DecodeOptions,
    ) -> Result<Decoded, DecodeError> {
        let max_scale = match region {
            Some(r) if opts.dct_scaling => r.max_scale.clamp(1, 8),
            _ => 1,
        };
        // libjpeg's scaled size is ceil(size / scale).
        let scale = [8, 4, 2, 1]
            .into_iter()
            .find(|&s| s <= max_scale)
            .unwrap_or(1);
        // With restart intervals, only the MCUs around the window are passed on.
        let splice = region
            .filter(|_| opts.restart_cuts)
            .and_then(|r| super::restart::splice(bytes, &r));
        let (data, (cut_x, cut_y), (fw, fh)) = match &splice {
            Some(s) => (&s.bytes[..], s.origin, s.size),
            None => (bytes, (0, 0), (width, height)),
        };
        let (sw, sh) = (fw.div_ceil(scale), fh.div_ceil(scale));
        let region = region.map(|r| Region {
            left: r.left - cut_x,
            top: r.top - cut_y,
            ..r
        });
        let (x, y, w, h) = match region {
            Some(r) => scaled_window(&r, scale, (sw, sh)),
            None => (0, 0, sw, sh),
        };
        // The left edge may move down by up to one iMCU (at most 32 columns).
        let cap = (w as usize + 32) * h as usize * 3;
        let mut buf = crate::pool::try_take_empty(cap).map_err(|_| DecodeError::OutOfMemory {
            width: w,
            height: h,
            bytes: cap as u64,
        })?;
        let (mut out_x, mut out_w) = (0, 0);
        let mut msg = [0 as c_char; MSG_LEN];
        // SAFETY: `buf` has room for `cap` bytes; the C side writes at most `cap` bytes (it checks
        // before writing) and only reads `len` bytes of data.
        let rc = unsafe {
            al_jpeg_decode(
                data.as_ptr(),
                data.len() as c_ulong,
                scale,
                x,
                y,
                w,
                h,
                buf.as_mut_ptr(),
                cap,
                &mut out_x,
                &mut out_w,
                msg.as_mut_ptr(),
            )
        };
        if let Some(s) = splice {
            crate::pool::give(s.bytes);
        }
        if rc != 0 {
            return Err(error(&msg));
        }
        let len = out_w as usize * h as usize * 3;
        assert!(len <= cap && out_x <= x, "libjpeg wrote outside the window");
        // SAFETY: on success the C side has written all `h` rows of `out_w` RGB pixels.
        unsafe { buf.set_len(len) };
        let image = RgbImage::from_raw(out_w, h, buf).expect("buffer matches its size");
        Ok(Decoded {
            image,
            // The cut starts on whole MCUs, which scale to whole pixels.
            origin: (out_x + cut_x / scale, y + cut_y / scale),
            scale,
            full_size: (width, height),
        })
    }
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
