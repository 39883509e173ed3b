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
