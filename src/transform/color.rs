//! Colour jitter with torchvision v2's uint8 formulas, and AlexNet PCA lighting.
//!
//! torchvision converts back to uint8 (truncating) after each of brightness, contrast and
//! saturation, and uses floor()ed grayscale for contrast and saturation; hue goes through HSV in
//! float and back with `mul(255.999).to(uint8)`. These kernels do the same, so a replay with
//! `torchvision.transforms.v2.functional` gives the same image.

use image::RgbImage;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::rng::SampleRng;

/// ColorJitter strengths, as torchvision's `ColorJitter(brightness, contrast, saturation, hue)`:
/// factors uniform in [max(0, 1 - x), 1 + x], hue in [-h, h]; 0 disables a component.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColorJitter {
    /// Brightness strength.
    pub brightness: f32,
    /// Contrast strength.
    pub contrast: f32,
    /// Saturation strength.
    pub saturation: f32,
    /// Hue strength, at most 0.5.
    pub hue: f32,
}

/// Sampled jitter: the order in which the four adjustments run (0 brightness, 1 contrast,
/// 2 saturation, 3 hue) and each factor (`None` when disabled).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct JitterParams {
    /// Permutation of 0..4, as torchvision's `fn_idx`.
    pub order: [u8; 4],
    /// Brightness factor.
    pub brightness: Option<f32>,
    /// Contrast factor.
    pub contrast: Option<f32>,
    /// Saturation factor.
    pub saturation: Option<f32>,
    /// Hue shift.
    pub hue: Option<f32>,
}

impl ColorJitter {
    /// The same strength for brightness, contrast and saturation, no hue.
    pub fn bcs(x: f32) -> Self {
        Self {
            brightness: x,
            contrast: x,
            saturation: x,
            hue: 0.0,
        }
    }

    /// Samples an order and the factors.
    pub fn sample(&self, rng: &mut SampleRng) -> JitterParams {
        let mut order = [0u8, 1, 2, 3];
        order.shuffle(rng);
        let mut factor = |x: f32| (x > 0.0).then(|| rng.random_range((1.0 - x).max(0.0)..=1.0 + x));
        let brightness = factor(self.brightness);
        let contrast = factor(self.contrast);
        let saturation = factor(self.saturation);
        let hue = (self.hue > 0.0).then(|| rng.random_range(-self.hue..=self.hue));
        JitterParams {
            order,
            brightness,
            contrast,
            saturation,
            hue,
        }
    }
}

/// Applies sampled jitter in its order.
pub fn apply_jitter(img: &mut RgbImage, p: &JitterParams) {
    for op in p.order {
        match op {
            0 => {
                if let Some(f) = p.brightness {
                    adjust_brightness(img, f)
                }
            }
            1 => {
                if let Some(f) = p.contrast {
                    adjust_contrast(img, f)
                }
            }
            2 => {
                if let Some(f) = p.saturation {
                    adjust_saturation(img, f)
                }
            }
            _ => {
                if let Some(h) = p.hue {
                    adjust_hue(img, h)
                }
            }
        }
    }
}

#[inline]
fn gray_floor(px: &[u8]) -> f32 {
    (px[0] as f32 * 0.2989 + px[1] as f32 * 0.587 + px[2] as f32 * 0.114).floor()
}

/// torchvision's `_blend` on uint8: clamp(a * r + b * (1 - r), 0, 255), truncated.
#[inline]
fn blend(a: u8, b: f32, r: f32) -> u8 {
    (a as f32 * r + b * (1.0 - r)).clamp(0.0, 255.0) as u8
}

/// `adjust_brightness`: blend with black.
pub fn adjust_brightness(img: &mut RgbImage, factor: f32) {
    let lut: Vec<u8> = (0..=255u8).map(|v| blend(v, 0.0, factor)).collect();
    for v in img.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `adjust_contrast`: blend with the mean of the floor()ed grayscale image.
pub fn adjust_contrast(img: &mut RgbImage, factor: f32) {
    let n = (img.width() * img.height()).max(1) as f64;
    let mean = (img
        .chunks_exact(3)
        .map(|p| gray_floor(p) as f64)
        .sum::<f64>()
        / n) as f32;
    let lut: Vec<u8> = (0..=255u8).map(|v| blend(v, mean, factor)).collect();
    for v in img.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `adjust_saturation`: blend each pixel with its floor()ed grayscale value.
pub fn adjust_saturation(img: &mut RgbImage, factor: f32) {
    for px in img.chunks_exact_mut(3) {
        let g = gray_floor(px);
        for v in px.iter_mut() {
            *v = blend(*v, g, factor);
        }
    }
}

/// `adjust_hue`: rotate the hue by `shift` (in turns, -0.5..=0.5) in HSV space.
pub fn adjust_hue(img: &mut RgbImage, shift: f32) {
    for px in img.chunks_exact_mut(3) {
        let [r, g, b] = [px[0], px[1], px[2]].map(|v| v as f32 / 255.0);
        let maxc = r.max(g).max(b);
        let minc = r.min(g).min(b);
        let range = maxc - minc;
        let (h, s) = if range == 0.0 {
            (0.0, 0.0)
        } else {
            let rc = (maxc - r) / range;
            let gc = (maxc - g) / range;
            let bc = (maxc - b) / range;
            let h = if maxc == r {
                bc - gc
            } else if maxc == g {
                2.0 + rc - bc
            } else {
                4.0 + gc - rc
            };
            ((h / 6.0 + 1.0) % 1.0, range / maxc)
        };
        let h = (h + shift).rem_euclid(1.0);
        let v = maxc;
        let h6 = h * 6.0;
        let i = h6.floor();
        let f = h6 - i;
        let p = (v * (1.0 - s)).clamp(0.0, 1.0);
        let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
        let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
        let (r, g, b) = match (i as i32).rem_euclid(6) {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        for (dst, c) in px.iter_mut().zip([r, g, b]) {
            *dst = (c * 255.999) as u8;
        }
    }
}

/// AlexNet-style PCA lighting noise (fb.resnet.torch): alpha ~ N(0, std) per channel, added along
/// the RGB eigenvectors scaled by their eigenvalues, on the [0, 1] image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lighting {
    /// Standard deviation of alpha (0.1 in AlexNet and ResNet).
    pub std: f32,
    /// Eigenvalues of the RGB covariance.
    pub eigval: [f32; 3],
    /// Eigenvectors as columns: `eigvec[channel][component]`.
    pub eigvec: [[f32; 3]; 3],
}

/// ImageNet's eigenvalues, as in fb.resnet.torch.
pub const IMAGENET_EIGVAL: [f32; 3] = [0.2175, 0.0188, 0.0045];
/// ImageNet's eigenvectors, as in fb.resnet.torch.
pub const IMAGENET_EIGVEC: [[f32; 3]; 3] = [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
];

/// Sampled lighting: alphas and the per-channel offset they give (in [0, 1] units).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LightingParams {
    /// alpha per principal component.
    pub alpha: [f32; 3],
    /// Offset added to R, G, B: eigvec * (alpha * eigval).
    pub rgb: [f32; 3],
}

impl Lighting {
    /// ImageNet statistics with the given alpha std.
    pub fn imagenet(std: f32) -> Self {
        Self {
            std,
            eigval: IMAGENET_EIGVAL,
            eigvec: IMAGENET_EIGVEC,
        }
    }

    /// Samples alphas.
    pub fn sample(&self, rng: &mut SampleRng) -> LightingParams {
        let normal = Normal::new(0.0f32, self.std.max(0.0)).expect("finite std");
        let alpha = [0; 3].map(|_| normal.sample(rng));
        let mut rgb = [0.0f32; 3];
        for (c, out) in rgb.iter_mut().enumerate() {
            *out = (0..3)
                .map(|k| self.eigvec[c][k] * alpha[k] * self.eigval[k])
                .sum();
        }
        LightingParams { alpha, rgb }
    }
}

/// Adds the lighting offset: `round(v + 255 * rgb[c])`, clamped to 0..=255.
pub fn apply_lighting(img: &mut RgbImage, p: &LightingParams) {
    let luts: Vec<[u8; 256]> = p
        .rgb
        .iter()
        .map(|off| {
            let mut lut = [0u8; 256];
            for (v, o) in lut.iter_mut().enumerate() {
                *o = (v as f32 + 255.0 * off).round().clamp(0.0, 255.0) as u8;
            }
            lut
        })
        .collect();
    for px in img.chunks_exact_mut(3) {
        for c in 0..3 {
            px[c] = luts[c][px[c] as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> RgbImage {
        RgbImage::from_fn(17, 9, |x, y| {
            image::Rgb([(x * 15) as u8, (y * 28) as u8, (x * y) as u8])
        })
    }

    #[test]
    fn factor_one_is_identity() {
        let src = img();
        let mut a = src.clone();
        adjust_brightness(&mut a, 1.0);
        adjust_contrast(&mut a, 1.0);
        adjust_saturation(&mut a, 1.0);
        assert_eq!(a, src);
    }

    #[test]
    fn hue_zero_is_near_identity() {
        let src = img();
        let mut a = src.clone();
        adjust_hue(&mut a, 0.0);
        let worst = a
            .iter()
            .zip(src.iter())
            .map(|(x, y)| (*x as i32 - *y as i32).abs())
            .max();
        assert!(worst.unwrap() <= 1);
    }

    #[test]
    fn saturation_zero_is_gray() {
        let mut a = img();
        adjust_saturation(&mut a, 0.0);
        assert!(a.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
    }
}

/// Per-channel lookup tables not yet written to the image: the per-channel ops (brightness,
/// contrast, lighting) compose into them, so a run of such ops costs one pass over the pixels.
struct PendingLut([[u8; 256]; 3]);

impl PendingLut {
    fn identity() -> Self {
        let mut l = [[0u8; 256]; 3];
        for c in &mut l {
            for (v, o) in c.iter_mut().enumerate() {
                *o = v as u8;
            }
        }
        PendingLut(l)
    }

    fn is_identity(&self) -> bool {
        self.0
            .iter()
            .all(|c| c.iter().enumerate().all(|(v, o)| *o == v as u8))
    }

    /// Composes `f` (per channel) after the pending tables.
    fn then(&mut self, f: impl Fn(usize, u8) -> u8) {
        for (c, lut) in self.0.iter_mut().enumerate() {
            for o in lut.iter_mut() {
                *o = f(c, *o);
            }
        }
    }

    fn flush(&mut self, img: &mut RgbImage) {
        if self.is_identity() {
            return;
        }
        let [r, g, b] = &self.0;
        for px in img.chunks_exact_mut(3) {
            px[0] = r[px[0] as usize];
            px[1] = g[px[1] as usize];
            px[2] = b[px[2] as usize];
        }
        *self = PendingLut::identity();
    }
}

/// Tables of `v * w` in f32 for the grayscale weights, so that the sum below is bit-identical to
/// torchvision's `r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114)`.
struct GrayLut([[f32; 256]; 3]);

impl GrayLut {
    fn new() -> Self {
        let w = [0.2989f32, 0.587, 0.114];
        GrayLut(w.map(|w| std::array::from_fn(|v| v as f32 * w)))
    }

    /// floor(gray) (the sum is non-negative, so truncation is floor).
    #[inline]
    fn floor(&self, r: u8, g: u8, b: u8) -> u32 {
        ((self.0[0][r as usize] + self.0[1][g as usize]) + self.0[2][b as usize]) as u32
    }
}

/// Applies jitter then lighting exactly as [`apply_jitter`] followed by [`apply_lighting`], fusing
/// consecutive per-channel ops into one pass (a contrast needs one extra read-only pass for its
/// mean; saturation and hue each make one pass).
pub fn apply_color(
    img: &mut RgbImage,
    jitter: Option<&JitterParams>,
    lighting: Option<&LightingParams>,
) {
    let gray = GrayLut::new();
    let mut lut = PendingLut::identity();
    if let Some(p) = jitter {
        for op in p.order {
            match (op, p.brightness, p.contrast, p.saturation, p.hue) {
                (0, Some(f), ..) => lut.then(|_, v| blend(v, 0.0, f)),
                (1, _, Some(f), ..) => {
                    let [lr, lg, lb] = &lut.0;
                    let sum: u64 = img
                        .chunks_exact(3)
                        .map(|px| {
                            gray.floor(lr[px[0] as usize], lg[px[1] as usize], lb[px[2] as usize])
                                as u64
                        })
                        .sum();
                    let mean = (sum as f64 / (img.width() * img.height()).max(1) as f64) as f32;
                    lut.then(|_, v| blend(v, mean, f));
                }
                (2, _, _, Some(f), _) => {
                    let [lr, lg, lb] = &lut.0;
                    let scaled: [f32; 256] = std::array::from_fn(|v| v as f32 * f);
                    // The grey value is an integer 0..=255 after floor: tabulate its share too.
                    let grey_part: [f32; 256] = std::array::from_fn(|g| g as f32 * (1.0 - f));
                    let out = |s: f32, m: f32| (s + m).clamp(0.0, 255.0) as u8;
                    for px in img.chunks_exact_mut(3) {
                        let (r, g, b) =
                            (lr[px[0] as usize], lg[px[1] as usize], lb[px[2] as usize]);
                        let m = grey_part[gray.floor(r, g, b).min(255) as usize];
                        px[0] = out(scaled[r as usize], m);
                        px[1] = out(scaled[g as usize], m);
                        px[2] = out(scaled[b as usize], m);
                    }
                    lut = PendingLut::identity();
                }
                (3, _, _, _, Some(h)) => {
                    lut.flush(img);
                    adjust_hue(img, h);
                }
                _ => {}
            }
        }
    }
    if let Some(l) = lighting {
        lut.then(|c, v| (v as f32 + 255.0 * l.rgb[c]).round().clamp(0.0, 255.0) as u8);
    }
    lut.flush(img);
}

#[cfg(test)]
mod fused_tests {
    use super::*;
    use crate::rng::sample_rng;

    #[test]
    fn fused_equals_op_by_op() {
        let src = RgbImage::from_fn(37, 23, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 11 + x) as u8, (x * y) as u8])
        });
        let jitter = ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.1,
        };
        let light = Lighting::imagenet(0.1);
        for i in 0..200 {
            let mut rng = sample_rng(3, 0, i);
            let j = jitter.sample(&mut rng);
            let l = light.sample(&mut rng);
            let mut a = src.clone();
            apply_jitter(&mut a, &j);
            apply_lighting(&mut a, &l);
            let mut b = src.clone();
            apply_color(&mut b, Some(&j), Some(&l));
            assert_eq!(a, b, "params {j:?} {l:?}");
        }
    }
}
