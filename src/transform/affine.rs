//! The affine family (rotate, shear, translate) as torchvision v2 computes it on uint8 tensors:
//! the inverse matrix of `_get_inverse_affine_matrix`, the sampling grid of `_affine_grid`
//! (pixel centres, the image centre as origin), `grid_sample` without aligned corners, zeros
//! outside (or `fill` through torchvision's mask channel), rounded back to u8. Arithmetic is
//! f32, as torchvision's, so that nearest sampling picks the same pixels.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// How the affine ops sample the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// The nearest pixel (torchvision's auto-augment default).
    #[default]
    Nearest,
    /// Bilinear between the four nearest pixels.
    Bilinear,
}

impl Interpolation {
    /// By name: `nearest` or `bilinear`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "nearest" => Some(Self::Nearest),
            "bilinear" => Some(Self::Bilinear),
            _ => None,
        }
    }
}

/// An affine transform in torchvision's terms (`F.affine`): degrees, pixels, a scale factor,
/// shear degrees, and the centre in pixels (`None`: the image centre).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    /// Rotation angle in degrees (clockwise on screen, as `F.affine`).
    pub angle: f64,
    /// Translation (x, y) in pixels.
    pub translate: [f64; 2],
    /// Scale factor.
    pub scale: f64,
    /// Shear angles (x, y) in degrees.
    pub shear: [f64; 2],
    /// Centre (x, y) in pixels; `None` is the image centre.
    pub center: Option<[f64; 2]>,
}

impl Affine {
    /// The identity.
    pub const IDENTITY: Affine = Affine {
        angle: 0.0,
        translate: [0.0, 0.0],
        scale: 1.0,
        shear: [0.0, 0.0],
        center: None,
    };
}

/// torchvision's `_get_inverse_affine_matrix` (inverted): output -> input, in coordinates whose
/// origin is the image centre.
pub fn inverse_matrix(
    center: [f64; 2],
    angle: f64,
    translate: [f64; 2],
    scale: f64,
    shear: [f64; 2],
) -> [f64; 6] {
    let rot = angle.to_radians();
    let (sx, sy) = (shear[0].to_radians(), shear[1].to_radians());
    let [cx, cy] = center;
    let [tx, ty] = translate;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(a * sx.tan() + rot.sin());
    let c = (rot - sy).sin() / sy.cos();
    let d = rot.cos() - c * sx.tan();
    let mut m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0];
    m[2] += cx - m[0] * (cx + tx) - m[1] * (cy + ty);
    m[5] += cy - m[3] * (cx + tx) - m[4] * (cy + ty);
    m
}

/// `F.affine(image, ...)` on an RGB image: the same size out.
pub fn affine(
    src: &RgbImage,
    t: &Affine,
    interp: Interpolation,
    fill: Option<[f32; 3]>,
) -> RgbImage {
    let (w, h) = (src.width() as f64, src.height() as f64);
    let center = t
        .center
        .map_or([0.0, 0.0], |[x, y]| [x - w * 0.5, y - h * 0.5]);
    let m = inverse_matrix(center, t.angle, t.translate, t.scale, t.shear);
    warp(src, &m, interp, fill)
}

/// `F.rotate(image, angle)` (counter-clockwise degrees, same size, about the centre), with
/// torchvision's exact fast paths for multiples of 90 degrees.
pub fn rotate(
    src: &RgbImage,
    angle: f64,
    interp: Interpolation,
    fill: Option<[f32; 3]>,
) -> RgbImage {
    let a = angle.rem_euclid(360.0);
    let square = src.width() == src.height();
    if a == 0.0 {
        return src.clone();
    }
    if a == 180.0 {
        return image::imageops::rotate180(src);
    }
    if square && a == 90.0 {
        return image::imageops::rotate270(src); // rot90 k=1: counter-clockwise
    }
    if square && a == 270.0 {
        return image::imageops::rotate90(src);
    }
    let m = inverse_matrix([0.0, 0.0], -a, [0.0, 0.0], 1.0, [0.0, 0.0]);
    warp(src, &m, interp, fill)
}

/// Samples `src` at the inverse-mapped centre of every output pixel (grid_sample semantics).
fn warp(src: &RgbImage, m: &[f64; 6], interp: Interpolation, fill: Option<[f32; 3]>) -> RgbImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let mut out = RgbImage::new(w as u32, h as u32);
    if w == 0 || h == 0 {
        return out;
    }
    // _affine_grid: theta rescaled by (w/2, h/2), in f32; then the unnormalisation of
    // grid_sample (align_corners=False): ix = ((gx + 1) * w - 1) / 2.
    let (hw, hh) = (0.5 * w as f32, 0.5 * h as f32);
    let t = [
        m[0] as f32 / hw,
        m[1] as f32 / hw,
        m[2] as f32 / hw,
        m[3] as f32 / hh,
        m[4] as f32 / hh,
        m[5] as f32 / hh,
    ];
    let (x0, y0) = ((1.0 - w as f32) * 0.5, (1.0 - h as f32) * 0.5);
    let data: &[u8] = src;
    let stride = w * 3;
    let dst: &mut [u8] = &mut out;
    for (oy, row) in dst.chunks_exact_mut(stride).enumerate() {
        let yc = y0 + oy as f32;
        for (ox, px) in row.as_chunks_mut::<3>().0.iter_mut().enumerate() {
            let xc = x0 + ox as f32;
            let gx = xc * t[0] + yc * t[1] + t[2];
            let gy = xc * t[3] + yc * t[4] + t[5];
            let ix = ((gx + 1.0) * w as f32 - 1.0) * 0.5;
            let iy = ((gy + 1.0) * h as f32 - 1.0) * 0.5;
            *px = match interp {
                Interpolation::Nearest => nearest(data, w, h, ix, iy, fill),
                Interpolation::Bilinear => bilinear(data, w, h, ix, iy, fill),
            };
        }
    }
    out
}

fn nearest(data: &[u8], w: usize, h: usize, ix: f32, iy: f32, fill: Option<[f32; 3]>) -> [u8; 3] {
    let (x, y) = (ix.round_ties_even(), iy.round_ties_even());
    if x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h {
        let at = (y as usize * w + x as usize) * 3;
        [data[at], data[at + 1], data[at + 2]]
    } else {
        fill.map_or([0; 3], |f| f.map(to_u8))
    }
}

fn bilinear(data: &[u8], w: usize, h: usize, ix: f32, iy: f32, fill: Option<[f32; 3]>) -> [u8; 3] {
    let (fx, fy) = (ix.floor(), iy.floor());
    let (dx, dy) = (ix - fx, iy - fy);
    let (x0, y0) = (fx as i64, fy as i64);
    let corners = [
        (x0, y0, (1.0 - dx) * (1.0 - dy)),
        (x0 + 1, y0, dx * (1.0 - dy)),
        (x0, y0 + 1, (1.0 - dx) * dy),
        (x0 + 1, y0 + 1, dx * dy),
    ];
    let mut acc = [0f32; 3];
    let mut mask = 0f32;
    for (x, y, wt) in corners {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            let at = (y as usize * w + x as usize) * 3;
            for c in 0..3 {
                acc[c] += wt * data[at + c] as f32;
            }
            mask += wt;
        }
    }
    if let Some(f) = fill {
        // torchvision: (sampled - fill) * mask + fill, with the mask sampled as a channel.
        for c in 0..3 {
            acc[c] = (acc[c] - f[c]) * mask + f[c];
        }
    }
    acc.map(to_u8)
}

/// Round half to even, as `round_().to(uint8)`.
fn to_u8(v: f32) -> u8 {
    v.round_ties_even().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
        })
    }

    #[test]
    fn identity_and_right_angles_are_exact() {
        let img = ramp(9, 7);
        assert_eq!(
            affine(&img, &Affine::IDENTITY, Interpolation::Nearest, None),
            img
        );
        assert_eq!(
            affine(&img, &Affine::IDENTITY, Interpolation::Bilinear, None),
            img
        );
        // 180 degrees through the grid equals the fast path.
        let m = inverse_matrix([0.0, 0.0], -180.0, [0.0, 0.0], 1.0, [0.0, 0.0]);
        assert_eq!(
            warp(&img, &m, Interpolation::Nearest, None),
            rotate(&img, 180.0, Interpolation::Nearest, None)
        );
    }

    #[test]
    fn translation_moves_pixels_and_fills_the_border() {
        let img = ramp(8, 6);
        let t = Affine {
            translate: [2.0, 0.0],
            ..Affine::IDENTITY
        };
        let out = affine(&img, &t, Interpolation::Nearest, Some([9.0, 8.0, 7.0]));
        assert_eq!(out.get_pixel(5, 3), img.get_pixel(3, 3));
        assert_eq!(out.get_pixel(1, 3).0, [9, 8, 7]);
    }
}
