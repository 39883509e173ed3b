//! Random erasing (Zhong et al. 2017) as torchvision's `RandomErasing`, in the place the recipes
//! put it: after `Normalize`. Values are therefore given in normalised units and written as the
//! pixels that normalise to them: 0 is the normalisation mean, `random` is per-pixel N(0, 1)
//! (mean + z * std, rounded and clipped to 0..=255).

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::normalize::Normalize;
use crate::rng::SampleRng;

/// What erased pixels become, in normalised units (torchvision's `value`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EraseValue {
    /// One value per channel (0 everywhere is the mean colour).
    Channels([f32; 3]),
    /// Per-pixel standard normal noise (torchvision's `value="random"`).
    Random,
}

impl EraseValue {
    /// `0`, `random`, one number or `r,g,b` (normalised units).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "random" {
            return Ok(Self::Random);
        }
        let v: Result<Vec<f32>, _> = s.split(',').map(|x| x.trim().parse::<f32>()).collect();
        match v.as_deref() {
            Ok([x]) if x.is_finite() => Ok(Self::Channels([*x; 3])),
            Ok([r, g, b]) if [r, g, b].iter().all(|x| x.is_finite()) => Ok(Self::Channels([*r, *g, *b])),
            _ => Err(format!(
                "erase value `{s}`: expected `random`, a number or three numbers `r,g,b` (normalised units)"
            )),
        }
    }
}

/// RandomErasing settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomErasing {
    /// Probability of erasing one box.
    pub p: f64,
    /// Range of the box's share of the image area.
    pub scale: (f64, f64),
    /// Range of the box's aspect ratio (height / width), drawn log-uniformly.
    pub ratio: (f64, f64),
    /// The erased pixels' value.
    pub value: EraseValue,
}

/// A sampled erasure: the box (top, left, height, width) and, for random values, the seed of
/// the noise.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EraseParams {
    /// (top, left, height, width), as `F.erase`'s i, j, h, w.
    pub rect: [u32; 4],
    /// Seed of the per-pixel noise (random values only).
    pub noise_seed: Option<u64>,
}

impl RandomErasing {
    /// torchvision's defaults with probability `p`: scale (0.02, 0.33), ratio (0.3, 3.3),
    /// value 0.
    pub fn with_p(p: f64) -> Self {
        Self {
            p,
            scale: (0.02, 0.33),
            ratio: (0.3, 3.3),
            value: EraseValue::Channels([0.0; 3]),
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        let ok = |(a, b): (f64, f64)| a.is_finite() && b.is_finite() && 0.0 < a && a <= b;
        if !(0.0..=1.0).contains(&self.p)
            || !ok(self.scale)
            || self.scale.1 > 1.0
            || !ok(self.ratio)
        {
            return Err(format!(
                "random erasing p {} (0..=1), scale {:?} (0 < a <= b <= 1), ratio {:?} (0 < a <= b)",
                self.p, self.scale, self.ratio
            ));
        }
        Ok(())
    }

    /// torchvision's `_get_params`: up to 10 tries for a box that fits, else nothing.
    pub fn sample(&self, rng: &mut SampleRng, width: u32, height: u32) -> Option<EraseParams> {
        if self.p <= 0.0 || rng.random::<f64>() >= self.p {
            return None;
        }
        let area = width as f64 * height as f64;
        let (lo, hi) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let erase_area = area * rng.random_range(self.scale.0..=self.scale.1);
            let aspect = rng.random_range(lo..=hi).exp();
            let h = (erase_area * aspect).sqrt().round() as u32;
            let w = (erase_area / aspect).sqrt().round() as u32;
            if !(h < height && w < width) {
                continue;
            }
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            // Drawn last: the box is the same whatever the value.
            let noise_seed = (self.value == EraseValue::Random).then(|| rng.random::<u64>());
            return Some(EraseParams {
                rect: [top, left, h, w],
                noise_seed,
            });
        }
        None
    }
}

/// The pixel that normalises to `v` in channel `c`.
fn pixel(n: &Normalize, c: usize, v: f32) -> u8 {
    ((n.mean[c] + v * n.std[c]) * 255.0)
        .round()
        .clamp(0.0, 255.0) as u8
}

/// Erases the box with `value` under normalisation `n`.
pub fn apply_erase(img: &mut RgbImage, p: &EraseParams, value: EraseValue, n: &Normalize) {
    let [top, left, h, w] = p.rect;
    let stride = img.width() as usize * 3;
    let data: &mut [u8] = img;
    let fixed = match value {
        EraseValue::Channels(v) => Some([pixel(n, 0, v[0]), pixel(n, 1, v[1]), pixel(n, 2, v[2])]),
        EraseValue::Random => None,
    };
    let mut noise = rand_chacha::ChaCha8Rng::seed_from_u64(p.noise_seed.unwrap_or(0));
    for y in top..top + h {
        let at = y as usize * stride + left as usize * 3;
        for px in data[at..at + w as usize * 3].as_chunks_mut::<3>().0 {
            *px = fixed.unwrap_or_else(|| {
                std::array::from_fn(|c| pixel(n, c, StandardNormal.sample(&mut noise)))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_fit_and_follow_the_probability() {
        let e = RandomErasing::with_p(0.5);
        let mut n = 0;
        for i in 0..400 {
            if let Some(p) = e.sample(&mut crate::rng::sample_rng(1, 0, i), 64, 48) {
                let [t, l, h, w] = p.rect;
                assert!(t + h <= 48 && l + w <= 64 && h > 0 && w > 0);
                n += 1;
            }
        }
        assert!((160..240).contains(&n), "{n} of 400 erased at p 0.5");
    }

    #[test]
    fn zero_is_the_mean_colour_and_values_parse() {
        let mut img = RgbImage::new(4, 4);
        let n = Normalize::IMAGENET;
        let p = EraseParams {
            rect: [1, 1, 2, 2],
            noise_seed: None,
        };
        apply_erase(&mut img, &p, EraseValue::Channels([0.0; 3]), &n);
        assert_eq!(img.get_pixel(1, 1).0, n.mean_u8());
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(EraseValue::parse("random"), Ok(EraseValue::Random));
        assert_eq!(
            EraseValue::parse("1,0,-1"),
            Ok(EraseValue::Channels([1.0, 0.0, -1.0]))
        );
        assert!(EraseValue::parse("nan").is_err() && EraseValue::parse("1,2").is_err());
    }
}
