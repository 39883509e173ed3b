//! MixUp and CutMix on whole batches, as torchvision v2's `MixUp`/`CutMix`: one lambda per batch
//! from Beta(alpha, alpha), each image paired with the one before it (the batch rolled by one),
//! CutMix's lambda corrected by its clipped box's area; optionally timm's per-batch choice
//! between the two. Targets become soft: one-hot rows mixed with the same lambda, label
//! smoothing folded in. Drawn from `Rng(seed, epoch, batch)`, so mixed batches do not depend on
//! worker count or timing and replay on resume.

use image::RgbImage;
use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::rng::SampleRng;

/// Batch mixing settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    /// MixUp's Beta alpha (`None`: no MixUp).
    pub mixup: Option<f64>,
    /// CutMix's Beta alpha (`None`: no CutMix).
    pub cutmix: Option<f64>,
    /// With both: the probability that a batch uses CutMix (timm's `switch_prob`; torchvision's
    /// reference recipe picks either with 0.5).
    pub switch_prob: f64,
    /// Label smoothing folded into the targets (0..1).
    pub label_smoothing: f64,
}

/// What one batch drew.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum MixParams {
    /// `x = lam * x + (1 - lam) * roll(x, 1)`.
    Mixup {
        /// The weight of each image itself.
        lam: f64,
    },
    /// The box of `roll(x, 1)` pasted into each image; `lam` is the share of the image kept.
    Cutmix {
        /// 1 - box area / image area.
        lam: f64,
        /// (top, left, height, width) of the pasted box.
        rect: [u32; 4],
    },
}

impl MixParams {
    /// The weight of each sample's own label.
    pub fn lam(&self) -> f64 {
        match *self {
            MixParams::Mixup { lam } | MixParams::Cutmix { lam, .. } => lam,
        }
    }
}

impl Mix {
    /// The batch mixing and label smoothing a named training recipe uses: `tv2-train`
    /// (torchvision's v2 recipe: MixUp 0.2, CutMix 1.0, either with probability 0.5, label
    /// smoothing 0.1) and `deit-train` (MixUp 0.8, CutMix 1.0, switch 0.5, smoothing 0.1).
    pub fn recipe(preset: &str) -> Option<Mix> {
        let (mixup, cutmix) = match preset {
            "tv2-train" => (0.2, 1.0),
            "deit-train" => (0.8, 1.0),
            _ => return None,
        };
        Some(Mix {
            mixup: Some(mixup),
            cutmix: Some(cutmix),
            switch_prob: 0.5,
            label_smoothing: 0.1,
        })
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        let alpha_ok = |a: Option<f64>| a.is_none_or(|a| a.is_finite() && a > 0.0 && a <= 100.0);
        if !alpha_ok(self.mixup) || !alpha_ok(self.cutmix) {
            return Err(format!(
                "mixup {:?} / cutmix {:?}: alphas must be in (0, 100]",
                self.mixup, self.cutmix
            ));
        }
        if !(0.0..=1.0).contains(&self.switch_prob) || !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(format!(
                "switch probability {} (0..=1), label smoothing {} (0..1)",
                self.switch_prob, self.label_smoothing
            ));
        }
        Ok(())
    }

    /// Whether any mixing happens.
    pub fn active(&self) -> bool {
        self.mixup.is_some() || self.cutmix.is_some()
    }

    /// Draws the batch's mixing for images of `width` x `height`.
    pub fn sample(&self, rng: &mut SampleRng, width: u32, height: u32) -> Option<MixParams> {
        let cut = match (self.mixup, self.cutmix) {
            (None, None) => return None,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(_), Some(_)) => rng.random::<f64>() < self.switch_prob,
        };
        let alpha = if cut { self.cutmix } else { self.mixup }.expect("chosen one is set");
        let lam: f64 = Beta::new(alpha, alpha)
            .expect("alpha validated")
            .sample(rng);
        if !cut {
            return Some(MixParams::Mixup { lam });
        }
        // torchvision's CutMix: centre uniform, half-sides int(r * side), clipped.
        let (w, h) = (width as i64, height as i64);
        let (rx, ry) = (rng.random_range(0..w.max(1)), rng.random_range(0..h.max(1)));
        let r = 0.5 * (1.0 - lam).sqrt();
        let (rw, rh) = ((r * w as f64) as i64, (r * h as f64) as i64);
        let (x1, y1) = ((rx - rw).max(0), (ry - rh).max(0));
        let (x2, y2) = ((rx + rw).min(w), (ry + rh).min(h));
        let area = ((x2 - x1) * (y2 - y1)) as f64;
        Some(MixParams::Cutmix {
            lam: 1.0 - area / (w * h).max(1) as f64,
            rect: [y1 as u32, x1 as u32, (y2 - y1) as u32, (x2 - x1) as u32],
        })
    }

    /// Soft targets, `labels.len()` rows of `classes`: one-hot (smoothed) mixed with the row
    /// before (rolled by one) as `p` says. Rows sum to 1.
    pub fn targets(&self, labels: &[i64], classes: usize, p: Option<&MixParams>) -> Vec<f32> {
        let n = labels.len();
        let eps = self.label_smoothing;
        let (on, off) = (1.0 - eps + eps / classes as f64, eps / classes as f64);
        let lam = p.map_or(1.0, MixParams::lam);
        let mut t = vec![off as f32; n * classes];
        for (i, &y) in labels.iter().enumerate() {
            let prev = labels[(i + n - 1) % n];
            let row = &mut t[i * classes..(i + 1) * classes];
            let add = |row: &mut [f32], y: i64, wt: f64| {
                if let Some(v) = usize::try_from(y).ok().and_then(|y| row.get_mut(y)) {
                    *v += ((on - off) * wt) as f32;
                }
            };
            add(row, y, lam);
            add(row, prev, 1.0 - lam);
        }
        t
    }
}

impl MixParams {
    /// Mixes float target rows (multi-hot or regression, `width` each) as the images were:
    /// `lam * row + (1 - lam) * previous row` (the batch rolled by one).
    pub(crate) fn mix_rows(&self, rows: &[f32], width: usize) -> Vec<f32> {
        let n = rows.len() / width.max(1);
        let lam = self.lam() as f32;
        let mut out = rows.to_vec();
        for i in 0..n {
            let prev = (i + n - 1) % n;
            for c in 0..width {
                out[i * width + c] =
                    lam * rows[i * width + c] + (1.0 - lam) * rows[prev * width + c];
            }
        }
        out
    }
}

/// Mixes each image with the one before it (the batch rolled by one), in place; every image has
/// the same size. MixUp rounds to the nearest level.
pub(crate) fn apply_mix(images: &mut [RgbImage], p: &MixParams) {
    let n = images.len();
    if n < 2 {
        return;
    }
    let rolled: Vec<RgbImage> = (0..n).map(|i| images[(i + n - 1) % n].clone()).collect();
    for (img, other) in images.iter_mut().zip(&rolled) {
        match *p {
            MixParams::Mixup { lam } => {
                let (a, b) = (lam as f32, (1.0 - lam) as f32);
                let dst: &mut [u8] = img;
                for (v, &o) in dst.iter_mut().zip(other.as_raw()) {
                    *v = (a * *v as f32 + b * o as f32).round().clamp(0.0, 255.0) as u8;
                }
            }
            MixParams::Cutmix {
                rect: [top, left, h, w],
                ..
            } => {
                let stride = img.width() as usize * 3;
                let dst: &mut [u8] = img;
                for y in top as usize..(top + h) as usize {
                    let at = y * stride + left as usize * 3;
                    let len = w as usize * 3;
                    dst[at..at + len].copy_from_slice(&other.as_raw()[at..at + len]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_sum_to_one_and_mix_the_rolled_labels() {
        let m = Mix {
            mixup: Some(0.2),
            cutmix: None,
            switch_prob: 0.5,
            label_smoothing: 0.1,
        };
        let t = m.targets(&[0, 2, 1], 4, Some(&MixParams::Mixup { lam: 0.7 }));
        for row in t.chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // Row 1: label 2 at 0.7, label 0 (the row before) at 0.3, smoothing 0.1 / 4 each.
        let want = [0.025 + 0.9 * 0.3, 0.025, 0.025 + 0.9 * 0.7, 0.025];
        for (a, b) in t[4..8].iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?}", &t[4..8]);
        }
    }

    #[test]
    fn cutmix_lambda_is_the_share_kept() {
        let m = Mix {
            mixup: None,
            cutmix: Some(1.0),
            switch_prob: 0.5,
            label_smoothing: 0.0,
        };
        for i in 0..200 {
            let Some(MixParams::Cutmix {
                lam,
                rect: [t, l, h, w],
            }) = m.sample(&mut crate::rng::sample_rng(3, 0, i), 40, 30)
            else {
                panic!("cutmix only")
            };
            assert!(t + h <= 30 && l + w <= 40);
            assert!((lam - (1.0 - (h * w) as f64 / 1200.0)).abs() < 1e-12);
        }
    }
}
