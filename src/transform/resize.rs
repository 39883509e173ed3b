//! Bilinear resizing with antialiasing (Pillow's convolution, which torchvision's
//! `antialias=True` reproduces), through fast_image_resize, plus the crop/pad helpers.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// A reusable resizer (one per worker: it keeps its scratch buffers between calls).
#[derive(Default)]
pub struct Resize {
    resizer: Resizer,
}

impl std::fmt::Debug for Resize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resize")
    }
}

impl Resize {
    /// A resizer using the best CPU extensions available.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resizes `src` to `width` x `height` and keeps only the `crop` window (top, left, height,
    /// width) of that resized image. The result equals a full resize followed by the crop,
    /// because the filter is evaluated in the coordinates of the full resize (see the test).
    pub fn resize_crop(
        &mut self,
        src: &RgbImage,
        width: u32,
        height: u32,
        crop: [u32; 4],
    ) -> RgbImage {
        if (width, height) == src.dimensions() {
            return crop_image(src, crop);
        }
        let [top, left, ch, cw] = crop;
        let sx = src.width() as f64 / width as f64;
        let sy = src.height() as f64 / height as f64;
        let window = [
            left as f64 * sx,
            top as f64 * sy,
            cw as f64 * sx,
            ch as f64 * sy,
        ];
        self.resize_window(src, window, cw, ch)
    }

    /// Resamples the window (x, y, width, height; fractional, in `src` pixels) of `src` to
    /// `out_w` x `out_h`. The filter reads pixels around the window too, as a full resize would.
    pub(crate) fn resize_window(
        &mut self,
        src: &RgbImage,
        [x0, y0, ww, wh]: [f64; 4],
        out_w: u32,
        out_h: u32,
    ) -> RgbImage {
        let view = ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x3)
            .expect("RgbImage buffer matches its dimensions");
        let len = out_w as usize * out_h as usize * 3;
        let mut dst = Image::from_vec_u8(out_w, out_h, crate::pool::take(len), PixelType::U8x3)
            .expect("buffer of the image's size");
        // Clamped: floating-point rounding may push the window a hair past the border.
        let opts = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
            .crop(
                x0,
                y0,
                ww.min(src.width() as f64 - x0),
                wh.min(src.height() as f64 - y0),
            );
        self.resizer
            .resize(&view, &mut dst, &opts)
            .expect("pixel types match");
        RgbImage::from_raw(out_w, out_h, dst.into_vec()).unwrap()
    }

    /// Resizes the whole of `src` to `width` x `height`.
    pub fn resize(&mut self, src: &RgbImage, width: u32, height: u32) -> RgbImage {
        self.resize_crop(src, width, height, [0, 0, height, width])
    }
}

/// Copies the window (top, left, height, width) out of `src`.
pub fn crop_image(src: &RgbImage, crop: [u32; 4]) -> RgbImage {
    let [top, left, h, w] = crop;
    let stride = src.width() as usize * 3;
    let mut out = crate::pool::take_empty(h as usize * w as usize * 3);
    for y in top..top + h {
        let row = y as usize * stride + left as usize * 3;
        out.extend_from_slice(&src.as_raw()[row..row + w as usize * 3]);
    }
    RgbImage::from_raw(w, h, out).unwrap()
}

/// torchvision's size for `Resize(size)` with an int: the shorter side becomes `short`, the longer
/// side `int(short * long / short_in)`. Returns (width, height).
pub fn shorter_side_size(width: u32, height: u32, short: u32) -> (u32, u32) {
    if width <= height {
        let h = (short as f64 * height as f64 / width as f64) as u32;
        (short, h.max(1))
    } else {
        let w = (short as f64 * width as f64 / height as f64) as u32;
        (w.max(1), short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 + y * 3) as u8,
                (x * x + y) as u8,
                ((y * 11) ^ x) as u8,
            ])
        })
    }

    #[test]
    fn resize_crop_equals_full_resize_then_crop() {
        let src = gradient(301, 199);
        let mut r = Resize::new();
        for (w, h, crop) in [
            (386, 256, [16, 81, 224, 224]),
            (150, 99, [3, 10, 64, 80]),
            (602, 398, [100, 300, 224, 224]),
        ] {
            let full = r.resize(&src, w, h);
            let want = crop_image(&full, crop);
            let got = r.resize_crop(&src, w, h, crop);
            let diff = want
                .as_raw()
                .iter()
                .zip(got.as_raw())
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max()
                .unwrap();
            assert!(diff <= 1, "max diff {diff} for {w}x{h} {crop:?}");
        }
    }

    #[test]
    fn shorter_side_matches_torchvision() {
        // torchvision.transforms.v2.functional.resize(img 500x375 (w x h), 256) -> 341 x 256
        assert_eq!(shorter_side_size(500, 375, 256), (341, 256));
        assert_eq!(shorter_side_size(375, 500, 256), (256, 341));
        assert_eq!(shorter_side_size(32, 32, 40), (40, 40));
    }
}
