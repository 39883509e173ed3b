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
pub(crate) fn inverse_matrix(
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
    if let Some(shift) = integer_shift(m) {
        // A whole-pixel translation samples every pixel exactly: rows copied, both modes.
        let outside = fill.map_or([0; 3], |f| f.map(to_u8));
        shift_rows(src, shift, outside, &mut out);
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
    let (wf, hf) = (w as f32, h as f32);
    let data: &[u8] = src;
    let stride = w * 3;
    let dst: &mut [u8] = &mut out;
    // Per row: the source coordinates of every output pixel (a vectorised pass), then the
    // gather.
    let (mut ix, mut iy) = (vec![0f32; w], vec![0f32; w]);
    for (oy, row) in dst.chunks_exact_mut(stride).enumerate() {
        let yc = y0 + oy as f32;
        let (bx, by) = (yc * t[1] + t[2], yc * t[4] + t[5]);
        for (ox, (sx, sy)) in ix.iter_mut().zip(iy.iter_mut()).enumerate() {
            let xc = x0 + ox as f32;
            *sx = ((xc * t[0] + bx + 1.0) * wf - 1.0) * 0.5;
            *sy = ((xc * t[3] + by + 1.0) * hf - 1.0) * 0.5;
        }
        let px = row.as_chunks_mut::<3>().0;
        match interp {
            Interpolation::Nearest => {
                let outside = fill.map_or([0; 3], |f| f.map(to_u8));
                nearest_row(data, (w, h), &ix, &iy, outside, px)
            }
            Interpolation::Bilinear => bilinear_row(data, (w, h), &ix, &iy, fill, px),
        }
    }
    out
}

/// The (dx, dy) of a matrix that only translates by whole pixels (output = input moved by it).
fn integer_shift(m: &[f64; 6]) -> Option<(i64, i64)> {
    let whole = |v: f64| v.fract() == 0.0 && v.abs() < 1e9;
    (m[0] == 1.0 && m[1] == 0.0 && m[3] == 0.0 && m[4] == 1.0 && whole(m[2]) && whole(m[5]))
        .then(|| (-m[2] as i64, -m[5] as i64))
}

/// `out(x, y) = src(x - dx, y - dy)`, `fill` outside.
fn shift_rows(src: &RgbImage, (dx, dy): (i64, i64), fill: [u8; 3], out: &mut RgbImage) {
    let (w, h) = (src.width() as i64, src.height() as i64);
    let stride = w as usize * 3;
    let data: &[u8] = src;
    let dst: &mut [u8] = out;
    for (y, row) in dst.chunks_exact_mut(stride).enumerate() {
        let sy = y as i64 - dy;
        // Output columns [lo, hi) come from source columns [lo - dx, hi - dx).
        let (lo, hi) = (dx.clamp(0, w), (w + dx).clamp(0, w));
        if !(0..h).contains(&sy) || lo >= hi {
            row.as_chunks_mut::<3>().0.fill(fill);
            continue;
        }
        let s = &data[sy as usize * stride..(sy as usize + 1) * stride];
        let (lo, hi) = (lo as usize, hi as usize);
        let from = (lo as i64 - dx) as usize;
        row[lo * 3..hi * 3].copy_from_slice(&s[from * 3..(from + hi - lo) * 3]);
        row[..lo * 3].as_chunks_mut::<3>().0.fill(fill);
        row[hi * 3..].as_chunks_mut::<3>().0.fill(fill);
    }
}

/// Round half to even for |v| < 2^22 (the pixel range; larger values are outside anyway):
/// adding and removing 1.5 * 2^23 rounds in the FPU's default mode, with no libm call.
#[inline(always)]
fn rne(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    // NaN (a degenerate matrix) becomes a coordinate outside the image.
    let v = if v.is_nan() {
        -4_000_000.0
    } else {
        v.clamp(-4_000_000.0, 4_000_000.0)
    };
    // SAFETY: v is finite and within i32's range after the line above.
    unsafe { ((v + MAGIC) - MAGIC).to_int_unchecked::<i32>() }
}

/// floor() without a libm call.
#[inline(always)]
fn floor_i(v: f32) -> i32 {
    let v = if v.is_nan() {
        -4_000_000.0
    } else {
        v.clamp(-4_000_000.0, 4_000_000.0)
    };
    // SAFETY: finite and within i32's range after the line above.
    let t = unsafe { v.to_int_unchecked::<i32>() };
    t - ((t as f32) > v) as i32
}

fn nearest_row(
    data: &[u8],
    (w, h): (usize, usize),
    ix: &[f32],
    iy: &[f32],
    fill: [u8; 3],
    out: &mut [[u8; 3]],
) {
    // Source offsets first (rounding and bounds in lanes), then the gather.
    const OUTSIDE: u32 = u32::MAX;
    let mut offs = [0u32; 64];
    for ((out, ix), iy) in out.chunks_mut(64).zip(ix.chunks(64)).zip(iy.chunks(64)) {
        for ((o, &sx), &sy) in offs.iter_mut().zip(ix).zip(iy) {
            let (x, y) = (rne(sx), rne(sy));
            let inside = (x as u32 as usize) < w && (y as u32 as usize) < h;
            *o = if inside {
                (y as u32 * w as u32 + x as u32) * 3
            } else {
                OUTSIDE
            };
        }
        for (px, &o) in out.iter_mut().zip(&offs) {
            *px = if o == OUTSIDE {
                fill
            } else {
                let at = o as usize;
                [data[at], data[at + 1], data[at + 2]]
            };
        }
    }
}

fn bilinear_row(
    data: &[u8],
    (w, h): (usize, usize),
    ix: &[f32],
    iy: &[f32],
    fill: Option<[f32; 3]>,
    out: &mut [[u8; 3]],
) {
    let stride = w * 3;
    for ((px, &sx), &sy) in out.iter_mut().zip(ix).zip(iy) {
        let (x0, y0) = (floor_i(sx), floor_i(sy));
        let (dx, dy) = (sx - x0 as f32, sy - y0 as f32);
        let wts = [
            (1.0 - dx) * (1.0 - dy),
            dx * (1.0 - dy),
            (1.0 - dx) * dy,
            dx * dy,
        ];
        let mut acc = [0f32; 3];
        if x0 >= 0 && y0 >= 0 && (x0 as usize) + 1 < w && (y0 as usize) + 1 < h {
            // All four neighbours inside (the common case): no mask.
            let at = y0 as usize * stride + x0 as usize * 3;
            let (top, bottom) = (&data[at..at + 6], &data[at + stride..at + stride + 6]);
            let v = |k: usize| {
                wts[0] * top[k] as f32
                    + wts[1] * top[k + 3] as f32
                    + wts[2] * bottom[k] as f32
                    + wts[3] * bottom[k + 3] as f32
            };
            *px = [to_u8(v(0)), to_u8(v(1)), to_u8(v(2))];
            continue;
        }
        let mut mask = 0f32;
        for (k, (ddx, ddy)) in [(0, 0), (1, 0), (0, 1), (1, 1)].into_iter().enumerate() {
            let (x, y) = (x0 + ddx, y0 + ddy);
            if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                let at = y as usize * stride + x as usize * 3;
                for c in 0..3 {
                    acc[c] += wts[k] * data[at + c] as f32;
                }
                mask += wts[k];
            }
        }
        if let Some(f) = fill {
            // torchvision: (sampled - fill) * mask + fill, with the mask sampled as a channel.
            for c in 0..3 {
                acc[c] = (acc[c] - f[c]) * mask + f[c];
            }
        }
        *px = acc.map(to_u8);
    }
}

/// Round half to even and clamp, as `round_().to(uint8)`.
#[inline(always)]
fn to_u8(v: f32) -> u8 {
    rne(v).clamp(0, 255) as u8
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
    fn whole_pixel_shifts_equal_the_sampling_grid() {
        let img = ramp(9, 7);
        for (dx, dy) in [(2.0, 0.0), (-3.0, 1.0), (0.0, -6.0), (12.0, 0.0)] {
            let m = inverse_matrix([0.0, 0.0], 0.0, [dx, dy], 1.0, [0.0, 0.0]);
            let mut fast = RgbImage::new(9, 7);
            shift_rows(&img, integer_shift(&m).unwrap(), [1, 2, 3], &mut fast);
            let mut slow = RgbImage::new(9, 7);
            for (y, row) in slow.chunks_exact_mut(27).enumerate() {
                let (mut ix, mut iy) = (vec![0f32; 9], vec![0f32; 9]);
                for x in 0..9 {
                    ix[x] = x as f32 - dx as f32;
                    iy[x] = y as f32 - dy as f32;
                }
                nearest_row(
                    &img,
                    (9, 7),
                    &ix,
                    &iy,
                    [1, 2, 3],
                    row.as_chunks_mut::<3>().0,
                );
            }
            assert_eq!(fast, slow, "shift ({dx}, {dy})");
        }
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
