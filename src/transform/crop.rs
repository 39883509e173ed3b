//! Crops: ResNet scale augmentation, RandomResizedCrop, resize + centre crop, five/ten crop,
//! CIFAR pad-and-crop. Each samples a [`GeometryParams`] and applies it with [`apply_geometry`].

use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::resize::{crop_image, shorter_side_size, Resize};
use crate::decode::{Decoded, Region};
use crate::rng::SampleRng;

/// The geometric part of a pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Geometry {
    /// ResNet scale augmentation: shorter side resized to L uniform in [min, max], then a random
    /// size x size crop.
    ScaleAug {
        /// Smallest L.
        min: u32,
        /// Largest L (inclusive).
        max: u32,
        /// Crop side.
        size: u32,
    },
    /// Inception-style RandomResizedCrop with torchvision's get_params.
    RandomResizedCrop {
        /// Output side.
        size: u32,
        /// Range of the crop's area as a fraction of the image.
        scale: (f64, f64),
        /// Range of the aspect ratio w/h (sampled log-uniformly).
        ratio: (f64, f64),
    },
    /// Resize the shorter side, then crop the centre.
    ResizeCenterCrop {
        /// Shorter side after resizing.
        resize: u32,
        /// Crop side.
        size: u32,
    },
    /// CIFAR: zero-pad each border, then a random size x size crop.
    PadCrop {
        /// Padding on each side.
        pad: u32,
        /// Crop side.
        size: u32,
    },
    /// Keep the image as it is.
    Identity,
}

/// What a geometry sampled, in torchvision's terms: crop boxes are (top, left, height, width).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GeometryParams {
    /// `resize(img, [h, w])` then `crop(resized, top, left, height, width)`.
    ResizeCrop {
        /// Resized (height, width).
        resize: [u32; 2],
        /// Crop box on the resized image.
        crop: [u32; 4],
    },
    /// `resized_crop(img, top, left, height, width, size)`: crop the input, then resize.
    CropResize {
        /// Crop box on the input.
        crop: [u32; 4],
        /// Output (height, width).
        size: [u32; 2],
    },
    /// `pad(img, pad, fill=0)` then `crop(padded, ...)`.
    PadCrop {
        /// Padding on each side.
        pad: u32,
        /// Crop box on the padded image.
        crop: [u32; 4],
    },
    /// Nothing.
    Identity,
}

/// Python's `round` (ties to even), which torchvision's box arithmetic uses.
fn py_round(x: f64) -> f64 {
    x.round_ties_even()
}

/// torchvision's `CenterCrop` box for a `ch` x `cw` crop of an `h` x `w` image.
pub fn center_box(h: u32, w: u32, ch: u32, cw: u32) -> [u32; 4] {
    let top = py_round((h as f64 - ch as f64) / 2.0).max(0.0) as u32;
    let left = py_round((w as f64 - cw as f64) / 2.0).max(0.0) as u32;
    [top, left, ch.min(h), cw.min(w)]
}

/// torchvision's `FiveCrop` boxes on an `h` x `w` image: top-left, top-right, bottom-left,
/// bottom-right, centre.
pub fn five_crop_boxes(h: u32, w: u32, ch: u32, cw: u32) -> [[u32; 4]; 5] {
    [
        [0, 0, ch, cw],
        [0, w - cw, ch, cw],
        [h - ch, 0, ch, cw],
        [h - ch, w - cw, ch, cw],
        center_box(h, w, ch, cw),
    ]
}

/// torchvision's `RandomResizedCrop.get_params` on an `h` x `w` image: ten tries, then the
/// centre-crop fallback. Returns (top, left, height, width).
pub fn random_resized_crop_box(
    rng: &mut SampleRng,
    h: u32,
    w: u32,
    scale: (f64, f64),
    ratio: (f64, f64),
) -> [u32; 4] {
    let area = h as f64 * w as f64;
    let log_ratio = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.random_range(scale.0..=scale.1);
        let aspect = rng.random_range(log_ratio.0..=log_ratio.1).exp();
        let cw = py_round((target_area * aspect).sqrt()) as i64;
        let chh = py_round((target_area / aspect).sqrt()) as i64;
        if 0 < cw && cw <= w as i64 && 0 < chh && chh <= h as i64 {
            let top = rng.random_range(0..=(h as i64 - chh)) as u32;
            let left = rng.random_range(0..=(w as i64 - cw)) as u32;
            return [top, left, chh as u32, cw as u32];
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (cw, ch) = if in_ratio < ratio.0.min(ratio.1) {
        (w, py_round(w as f64 / ratio.0.min(ratio.1)) as u32)
    } else if in_ratio > ratio.0.max(ratio.1) {
        (py_round(h as f64 * ratio.0.max(ratio.1)) as u32, h)
    } else {
        (w, h)
    };
    [(h - ch) / 2, (w - cw) / 2, ch, cw]
}

fn random_box(rng: &mut SampleRng, h: u32, w: u32, size: u32) -> [u32; 4] {
    let ch = size.min(h);
    let cw = size.min(w);
    let top = rng.random_range(0..=h - ch);
    let left = rng.random_range(0..=w - cw);
    [top, left, ch, cw]
}

impl Geometry {
    /// Samples the parameters for an input of `width` x `height`.
    pub fn sample(&self, rng: &mut SampleRng, width: u32, height: u32) -> GeometryParams {
        match *self {
            Geometry::ScaleAug { min, max, size } => {
                let l = rng.random_range(min..=max);
                let (w, h) = shorter_side_size(width, height, l);
                GeometryParams::ResizeCrop {
                    resize: [h, w],
                    crop: random_box(rng, h, w, size),
                }
            }
            Geometry::RandomResizedCrop { size, scale, ratio } => GeometryParams::CropResize {
                crop: random_resized_crop_box(rng, height, width, scale, ratio),
                size: [size, size],
            },
            Geometry::ResizeCenterCrop { resize, size } => {
                let (w, h) = shorter_side_size(width, height, resize);
                GeometryParams::ResizeCrop {
                    resize: [h, w],
                    crop: center_box(h, w, size, size),
                }
            }
            Geometry::PadCrop { pad, size } => {
                // Inputs smaller than the crop get enough extra padding to hold it.
                let pad = pad.max(size.saturating_sub(width.min(height)).div_ceil(2));
                GeometryParams::PadCrop {
                    pad,
                    crop: random_box(rng, height + 2 * pad, width + 2 * pad, size),
                }
            }
            Geometry::Identity => GeometryParams::Identity,
        }
    }

    /// The fixed output (height, width), when the geometry has one.
    pub fn output_size(&self) -> Option<(u32, u32)> {
        match *self {
            Geometry::ScaleAug { size, .. }
            | Geometry::RandomResizedCrop { size, .. }
            | Geometry::ResizeCenterCrop { size, .. }
            | Geometry::PadCrop { size, .. } => Some((size, size)),
            Geometry::Identity => None,
        }
    }
}

/// Zero-pads `src` by `pad` on every side.
pub fn pad_image(src: &RgbImage, pad: u32) -> RgbImage {
    let mut out = RgbImage::new(src.width() + 2 * pad, src.height() + 2 * pad);
    image::imageops::replace(&mut out, src, pad as i64, pad as i64);
    out
}

/// Applies sampled geometry parameters.
pub fn apply_geometry(src: &RgbImage, p: &GeometryParams, resize: &mut Resize) -> RgbImage {
    match *p {
        GeometryParams::ResizeCrop {
            resize: [h, w],
            crop,
        } => resize.resize_crop(src, w, h, crop),
        GeometryParams::CropResize { crop, size: [h, w] } => {
            let cropped = crop_image(src, crop);
            resize.resize(&cropped, w, h)
        }
        GeometryParams::PadCrop { pad, crop } => padded_crop(src, pad, crop),
        GeometryParams::Identity => src.clone(),
    }
}

/// `crop_image(&pad_image(src, pad), crop)` without making the padded image: only the crop is
/// allocated (a 1 x 99,000,000 input padded whole would take gigabytes), and the part of it
/// that overlaps the input is copied row by row.
pub(crate) fn padded_crop(src: &RgbImage, pad: u32, crop: [u32; 4]) -> RgbImage {
    let [top, left, h, w] = crop.map(u64::from);
    let (pad, sw, sh) = (
        u64::from(pad),
        u64::from(src.width()),
        u64::from(src.height()),
    );
    let mut out = RgbImage::new(w as u32, h as u32);
    // Input columns x0..x1 land at output columns from x0 + pad - left.
    let x0 = left.saturating_sub(pad).min(sw);
    let x1 = (left + w).saturating_sub(pad).min(sw);
    if x0 < x1 {
        let at = (x0 + pad - left) as usize * 3;
        let n = (x1 - x0) as usize * 3;
        for y in 0..h {
            let Some(sy) = (top + y).checked_sub(pad).filter(|&sy| sy < sh) else {
                continue;
            };
            let from = (sy * sw + x0) as usize * 3;
            let to = y as usize * w as usize * 3 + at;
            out.as_mut()[to..to + n].copy_from_slice(&src.as_raw()[from..from + n]);
        }
    }
    out
}

/// Largest DCT downscale for an output `factor` times smaller than what it is made from. The
/// DCT-scaled image must stay at least twice the output's size: the antialiased resize that
/// follows then does most of the shrinking, and the result stays within 2 grey levels of
/// torchvision's resize of the full decode (a DCT downscale alone, to just the output size,
/// is a different filter and differed by 2.5 on fine detail).
fn max_scale(factor: f64) -> u32 {
    (factor / 2.0).floor().clamp(1.0, 8.0) as u32
}

impl GeometryParams {
    /// The window of a `width` x `height` input that applying these parameters reads (`None`:
    /// all of it), for decoding only that part.
    pub(crate) fn region(&self, width: u32, height: u32) -> Option<Region> {
        match *self {
            GeometryParams::ResizeCrop {
                resize: [rh, rw],
                crop: [top, left, ch, cw],
            } => {
                if (rw, rh) == (width, height) {
                    return Some(Region {
                        left,
                        top,
                        width: cw,
                        height: ch,
                        max_scale: 1,
                    });
                }
                let sx = width as f64 / rw as f64;
                let sy = height as f64 / rh as f64;
                // The bilinear filter reaches max(scale, 1) source pixels from each output
                // pixel's centre; two more pixels of margin absorb rounding.
                let span = |start: u32, len: u32, s: f64, limit: u32| {
                    let margin = s.max(1.0).ceil() + 2.0;
                    let a = (start as f64 * s - margin).floor().max(0.0) as u32;
                    let b = (((start + len) as f64 * s + margin).ceil() as u32).min(limit);
                    (a.min(limit.saturating_sub(1)), b)
                };
                let (x0, x1) = span(left, cw, sx, width);
                let (y0, y1) = span(top, ch, sy, height);
                Some(Region {
                    left: x0,
                    top: y0,
                    width: x1.max(x0 + 1) - x0,
                    height: y1.max(y0 + 1) - y0,
                    max_scale: max_scale(sx.min(sy)),
                })
            }
            GeometryParams::CropResize {
                crop: [top, left, ch, cw],
                size: [oh, ow],
            } => Some(Region {
                left,
                top,
                width: cw,
                height: ch,
                max_scale: max_scale((cw as f64 / ow as f64).min(ch as f64 / oh as f64)),
            }),
            GeometryParams::PadCrop { .. } | GeometryParams::Identity => None,
        }
    }
}

/// Applies sampled geometry parameters to a decoded image that may be only the
/// [`GeometryParams::region`] of the input, possibly downscaled. At full scale the result equals
/// [`apply_geometry`] on the whole image (within one grey level where resizing is involved).
pub(crate) fn apply_geometry_decoded(
    d: Decoded,
    p: &GeometryParams,
    resize: &mut Resize,
) -> RgbImage {
    if d.is_full() {
        return match p {
            GeometryParams::Identity => d.image,
            p => {
                let out = apply_geometry(&d.image, p, resize);
                crate::pool::give(d.image.into_raw());
                out
            }
        };
    }
    let out = apply_geometry_window(&d, p, resize);
    crate::pool::give(d.image.into_raw());
    out
}

fn apply_geometry_window(d: &Decoded, p: &GeometryParams, resize: &mut Resize) -> RgbImage {
    let k = d.scale as f64;
    let (ox, oy) = (d.origin.0 as f64, d.origin.1 as f64);
    let (width, height) = d.full_size;
    match *p {
        GeometryParams::ResizeCrop {
            resize: [rh, rw],
            crop: [top, left, ch, cw],
        } => {
            if d.scale == 1 && (rw, rh) == (width, height) {
                crop_image(&d.image, [top - d.origin.1, left - d.origin.0, ch, cw])
            } else {
                let sx = width as f64 / rw as f64 / k;
                let sy = height as f64 / rh as f64 / k;
                let window = [
                    left as f64 * sx - ox,
                    top as f64 * sy - oy,
                    cw as f64 * sx,
                    ch as f64 * sy,
                ];
                resize.resize_window(&d.image, window, cw, ch)
            }
        }
        GeometryParams::CropResize {
            crop: [top, left, ch, cw],
            size: [oh, ow],
        } => {
            if d.scale == 1 {
                // torchvision crops first: the filter sees nothing outside the crop.
                let cropped = crop_image(&d.image, [top - d.origin.1, left - d.origin.0, ch, cw]);
                let out = resize.resize(&cropped, ow, oh);
                crate::pool::give(cropped.into_raw());
                out
            } else {
                let window = [
                    left as f64 / k - ox,
                    top as f64 / k - oy,
                    cw as f64 / k,
                    ch as f64 / k,
                ];
                resize.resize_window(&d.image, window, ow, oh)
            }
        }
        GeometryParams::PadCrop { .. } | GeometryParams::Identity => {
            unreachable!("these geometries read the whole image")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_crop_equals_cropping_the_padded_image() {
        let src = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 7]));
        for pad in [0, 1, 4, 9] {
            let (ph, pw) = (5 + 2 * pad, 7 + 2 * pad);
            for (h, w) in [(1, 1), (3, 4), (ph.min(6), pw.min(6)), (ph, pw)] {
                for top in 0..=ph - h {
                    for left in 0..=pw - w {
                        let crop = [top, left, h, w];
                        assert_eq!(
                            padded_crop(&src, pad, crop),
                            crop_image(&pad_image(&src, pad), crop),
                            "pad {pad}, crop {crop:?}"
                        );
                    }
                }
            }
        }
        // A very long, thin input: only the 32 x 32 crop is made.
        let thin = RgbImage::new(1, 1_000_000);
        assert_eq!(
            padded_crop(&thin, 16, [500_000, 3, 32, 32]).dimensions(),
            (32, 32)
        );
    }

    #[test]
    fn center_and_five_crop_match_torchvision_boxes() {
        // torchvision.transforms.v2.functional.five_crop on a 256x341 (h x w) image, size 224:
        // crop_top = round((256-224)/2) = 16, crop_left = round((341-224)/2) = round(58.5) = 58.
        assert_eq!(center_box(256, 341, 224, 224), [16, 58, 224, 224]);
        assert_eq!(
            five_crop_boxes(256, 341, 224, 224),
            [
                [0, 0, 224, 224],
                [0, 117, 224, 224],
                [32, 0, 224, 224],
                [32, 117, 224, 224],
                [16, 58, 224, 224]
            ]
        );
    }

    #[test]
    fn rrc_fallback_is_torchvision_centre_crop() {
        // With an impossible scale every try fails; a very wide image falls back to
        // h = height, w = round(h * 4/3), centred.
        let mut rng = crate::rng::sample_rng(0, 0, 0);
        let b = random_resized_crop_box(&mut rng, 100, 1000, (5.0, 5.0), (3.0 / 4.0, 4.0 / 3.0));
        assert_eq!(b, [0, (1000 - 133) / 2, 100, 133]);
        let b = random_resized_crop_box(&mut rng, 1000, 100, (5.0, 5.0), (3.0 / 4.0, 4.0 / 3.0));
        assert_eq!(b, [(1000 - 133) / 2, 0, 133, 100]);
        let b = random_resized_crop_box(&mut rng, 100, 110, (5.0, 5.0), (3.0 / 4.0, 4.0 / 3.0));
        assert_eq!(b, [0, 0, 100, 110]);
    }
}
