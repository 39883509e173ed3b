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
    // Non-negative, so truncation is floor() (and no libm call without SSE4.1).
    (px[0] as f32 * 0.2989 + px[1] as f32 * 0.587 + px[2] as f32 * 0.114) as i32 as f32
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

/// One step of [`apply_color`]'s fused pass, on f32 values that are integers in 0..=255
/// between steps (each step ends with torchvision's truncation or rounding back to uint8).
#[derive(Clone, Copy, Debug)]
enum Step {
    /// `_blend(v, b, r)`: `v * r + k` with `k = b * (1 - r)`, clamped and truncated.
    Blend { r: f32, k: f32 },
    /// Saturation: blend with the pixel's floor()ed grayscale.
    Saturate { f: f32, one_minus_f: f32 },
    /// Lighting: `round(v + off[c])`, clamped.
    Light { off: [f32; 3] },
}

const LANES: usize = 8;

/// torchvision's grayscale weights, summed in its order.
#[inline(always)]
fn gray_lanes<const N: usize>(r: &[f32; N], g: &[f32; N], b: &[f32; N]) -> [f32; N] {
    std::array::from_fn(|i| (r[i] * 0.2989 + g[i] * 0.587 + b[i] * 0.114).floor())
}

#[inline(always)]
fn blend_lanes<const N: usize>(v: &mut [f32; N], r: f32, k: impl Fn(usize) -> f32) {
    for (i, x) in v.iter_mut().enumerate() {
        *x = (*x * r + k(i)).clamp(0.0, 255.0).trunc();
    }
}

/// 8 pixels as three planes of f32 lanes.
type Planes = [[f32; LANES]; 3];

/// Pixels per block of [`color_pass_body`]: the steps run as tight loops over a block held in
/// three small f32 planes.
const BLOCK: usize = 8 * LANES;

/// Applies `steps` to a block of pixels in planes.
#[inline(always)]
fn color_steps<const N: usize>(c: &mut [[f32; N]; 3], steps: &[Step]) {
    for step in steps {
        match *step {
            Step::Blend { r, k } => {
                for v in c.iter_mut() {
                    blend_lanes(v, r, |_| k);
                }
            }
            Step::Saturate { f, one_minus_f } => {
                let g = gray_lanes(&c[0], &c[1], &c[2]);
                for v in c.iter_mut() {
                    blend_lanes(v, f, |i| g[i] * one_minus_f);
                }
            }
            Step::Light { off } => {
                for (v, off) in c.iter_mut().zip(off) {
                    for x in v.iter_mut() {
                        // Round half away from zero (as f32::round) for y >= 0; below zero the
                        // clamp gives 0 either way.
                        let y = *x + off;
                        let fl = y.floor();
                        let rounded = if y - fl >= 0.5 { fl + 1.0 } else { fl };
                        *x = rounded.clamp(0.0, 255.0);
                    }
                }
            }
        }
    }
}

/// Moving 8 interleaved RGB pixels (24 bytes) in and out of [`Planes`]; the values stored are
/// integers in 0..=255.
trait PixelIo {
    /// # Safety
    /// The CPU must support what the implementation uses.
    unsafe fn load(px: &[u8; 3 * LANES]) -> Planes;
    /// # Safety
    /// As `load`.
    unsafe fn store(px: &mut [u8; 3 * LANES], c: &Planes);
}

/// Portable element-by-element moves.
struct ScalarIo;

impl PixelIo for ScalarIo {
    #[inline(always)]
    unsafe fn load(px: &[u8; 3 * LANES]) -> Planes {
        std::array::from_fn(|ch| std::array::from_fn(|i| px[3 * i + ch] as f32))
    }
    #[inline(always)]
    unsafe fn store(px: &mut [u8; 3 * LANES], c: &Planes) {
        for i in 0..LANES {
            for ch in 0..3 {
                px[3 * i + ch] = c[ch][i] as u8;
            }
        }
    }
}

/// Byte shuffles ([`crate::simd`]) and 8-lane conversions (AVX2): the element-by-element moves
/// cost more than the arithmetic.
#[cfg(target_arch = "x86_64")]
struct Avx2Io;

#[cfg(target_arch = "x86_64")]
impl PixelIo for Avx2Io {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(px: &[u8; 3 * LANES]) -> Planes {
        use std::arch::x86_64::*;
        let mut out = [[0f32; LANES]; 3];
        // SAFETY: the caller guarantees AVX2 (which implies SSSE3); `o` holds LANES = 8 f32s.
        unsafe {
            for (o, bytes) in out.iter_mut().zip(crate::simd::deinterleave8(px)) {
                let f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
                _mm256_storeu_ps(o.as_mut_ptr(), f);
            }
        }
        out
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store(px: &mut [u8; 3 * LANES], c: &Planes) {
        use std::arch::x86_64::*;
        #[inline]
        #[target_feature(enable = "avx2")]
        fn bytes(v: &[f32; LANES]) -> __m128i {
            // SAFETY: `v` holds LANES = 8 readable f32s.
            let i = _mm256_cvttps_epi32(unsafe { _mm256_loadu_ps(v.as_ptr()) });
            let w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
            _mm_packus_epi16(w, w)
        }
        // Safe calls: this function is compiled for AVX2, which covers what they need.
        crate::simd::interleave8([bytes(&c[0]), bytes(&c[1]), bytes(&c[2])], px);
    }
}

/// Applies `steps` to every pixel in one pass, a block of 64 pixels at a time in f32 planes (the
/// same f32 operations as the scalar ops, so the same results). Returns the sum of the floor()ed
/// grayscale of the result when `sum` is set (for a contrast that follows); with no steps the
/// image is only read.
///
/// # Safety
/// The CPU must support what `Io` uses.
#[inline(always)]
unsafe fn color_pass_body<Io: PixelIo>(data: &mut [u8], steps: &[Step], sum: bool) -> u64 {
    let mut total = 0u64;
    let mut blocks = data.chunks_exact_mut(3 * BLOCK);
    for px in &mut blocks {
        // SAFETY: our caller's guarantee for `Io`.
        total += unsafe { color_block::<Io>(px, BLOCK, steps, sum) };
    }
    let rest = blocks.into_remainder();
    if !rest.is_empty() {
        let mut pad = [0u8; 3 * BLOCK];
        pad[..rest.len()].copy_from_slice(rest);
        // SAFETY: as above.
        total += unsafe { color_block::<Io>(&mut pad, rest.len() / 3, steps, sum) };
        rest.copy_from_slice(&pad[..rest.len()]);
    }
    total
}

/// One block of [`color_pass_body`]: `px` holds 64 pixels, of which the first `valid` count in
/// the sum. (A function, not a closure: it must be inlined into the AVX2 caller to be compiled
/// for it.)
///
/// # Safety
/// The CPU must support what `Io` uses.
#[inline(always)]
unsafe fn color_block<Io: PixelIo>(px: &mut [u8], valid: usize, steps: &[Step], sum: bool) -> u64 {
    let mut c = [[0f32; BLOCK]; 3];
    for (k, group) in px.chunks_exact(3 * LANES).enumerate() {
        // SAFETY: our caller's guarantee for `Io`.
        let p = unsafe { Io::load(group.try_into().expect("24 bytes")) };
        for ch in 0..3 {
            c[ch][k * LANES..(k + 1) * LANES].copy_from_slice(&p[ch]);
        }
    }
    color_steps(&mut c, steps);
    if !steps.is_empty() {
        for (k, group) in px.chunks_exact_mut(3 * LANES).enumerate() {
            let p: Planes =
                std::array::from_fn(|ch| c[ch][k * LANES..(k + 1) * LANES].try_into().unwrap());
            // SAFETY: as for `load`.
            unsafe { Io::store(group.try_into().expect("24 bytes"), &p) };
        }
    }
    if sum {
        let mut g = gray_lanes(&c[0], &c[1], &c[2]);
        g[valid..].fill(0.0);
        // Integers of at most 64 * 255 in all: exact in f32 in any order, so the lanes add up
        // in parallel.
        let mut lanes = [0f32; LANES];
        for chunk in g.chunks_exact(LANES) {
            for (l, v) in lanes.iter_mut().zip(chunk) {
                *l += v;
            }
        }
        lanes.iter().sum::<f32>() as u64
    } else {
        0
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn color_pass_avx2(data: &mut [u8], steps: &[Step], sum: bool) -> u64 {
    // SAFETY: this function is compiled for, and only called on, CPUs with AVX2.
    unsafe { color_pass_body::<Avx2Io>(data, steps, sum) }
}

fn color_pass_portable(data: &mut [u8], steps: &[Step], sum: bool) -> u64 {
    // SAFETY: ScalarIo needs nothing of the CPU.
    unsafe { color_pass_body::<ScalarIo>(data, steps, sum) }
}

fn color_pass(data: &mut [u8], steps: &[Step], sum: bool) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::allowed() && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above), which implies SSSE3 and SSE4.1.
        return unsafe { color_pass_avx2(data, steps, sum) };
    }
    color_pass_portable(data, steps, sum)
}

/// Applies jitter then lighting exactly as [`apply_jitter`] followed by [`apply_lighting`], fused
/// into one pass over the pixels where the ops allow: a contrast needs the mean of the image
/// before it (computed by the pass that produces that image, or by a read-only pass), and hue
/// runs on its own.
pub fn apply_color(
    img: &mut RgbImage,
    jitter: Option<&JitterParams>,
    lighting: Option<&LightingParams>,
) {
    let n = (img.width() * img.height()).max(1) as f64;
    let mut steps: Vec<Step> = Vec::with_capacity(4);
    if let Some(p) = jitter {
        for op in p.order {
            match (op, p.brightness, p.contrast, p.saturation, p.hue) {
                (0, Some(f), ..) => steps.push(Step::Blend {
                    r: f,
                    k: 0.0 * (1.0 - f),
                }),
                (1, _, Some(f), ..) => {
                    let sum = color_pass(img, &steps, true);
                    steps.clear();
                    let mean = (sum as f64 / n) as f32;
                    steps.push(Step::Blend {
                        r: f,
                        k: mean * (1.0 - f),
                    });
                }
                (2, _, _, Some(f), _) => steps.push(Step::Saturate {
                    f,
                    one_minus_f: 1.0 - f,
                }),
                (3, _, _, _, Some(h)) => {
                    if !steps.is_empty() {
                        color_pass(img, &steps, false);
                        steps.clear();
                    }
                    adjust_hue(img, h);
                }
                _ => {}
            }
        }
    }
    if let Some(l) = lighting {
        steps.push(Step::Light {
            off: l.rgb.map(|x| 255.0 * x),
        });
    }
    if !steps.is_empty() {
        color_pass(img, &steps, false);
    }
}

#[cfg(test)]
mod fused_tests {
    use super::*;
    use crate::rng::sample_rng;

    #[test]
    fn fused_equals_op_by_op() {
        // 851 pixels: not a multiple of the 8 lanes, so the padded tail is exercised.
        let src = RgbImage::from_fn(37, 23, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 11 + x) as u8, (x * y) as u8])
        });
        for (strength, hue, light_std) in [(0.4, 0.1, 0.1), (0.4, 0.0, 0.1), (0.9, 0.0, 0.5)] {
            let jitter = ColorJitter {
                hue,
                ..ColorJitter::bcs(strength)
            };
            let light = Lighting::imagenet(light_std);
            for i in 0..300 {
                let mut rng = sample_rng(3, 0, i);
                let j = jitter.sample(&mut rng);
                let l = light.sample(&mut rng);
                let mut a = src.clone();
                apply_jitter(&mut a, &j);
                apply_lighting(&mut a, &l);
                let mut b = src.clone();
                apply_color(&mut b, Some(&j), Some(&l));
                assert_eq!(a, b, "params {j:?} {l:?}");
                // The portable build of the pass (no AVX2) agrees too.
                let mut c = src.clone();
                let steps = [
                    Step::Blend {
                        r: j.brightness.unwrap(),
                        k: 3.5,
                    },
                    Step::Saturate {
                        f: j.saturation.unwrap(),
                        one_minus_f: 1.0 - j.saturation.unwrap(),
                    },
                    Step::Light {
                        off: l.rgb.map(|x| 255.0 * x),
                    },
                ];
                let s1 = color_pass_portable(&mut c, &steps, true);
                let mut d = src.clone();
                let s2 = color_pass(&mut d, &steps, true);
                assert_eq!((c, s1), (d, s2));
            }
        }
    }
}
