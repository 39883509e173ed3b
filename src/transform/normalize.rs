//! Normalisation constants and the u8 HWC -> f32 CHW conversion used at collation.

use serde::{Deserialize, Serialize};

/// Per-channel mean and std on the [0, 1] scale.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Mean of R, G, B.
    pub mean: [f32; 3],
    /// Standard deviation of R, G, B.
    pub std: [f32; 3],
}

impl Normalize {
    /// ImageNet statistics, as torchvision's reference scripts.
    pub const IMAGENET: Normalize = Normalize {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    /// CIFAR-10 statistics.
    pub const CIFAR: Normalize = Normalize {
        mean: [0.4914, 0.4822, 0.4465],
        std: [0.2470, 0.2435, 0.2616],
    };

    /// Checks the statistics: means finite, standard deviations finite and above 0 (a zero
    /// std divides by zero).
    pub fn validate(&self) -> Result<(), String> {
        if self.mean.iter().all(|m| m.is_finite())
            && self.std.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            Ok(())
        } else {
            Err(format!(
                "normalisation mean {:?} must be finite and std {:?} finite and above 0",
                self.mean, self.std
            ))
        }
    }

    /// The mean as an RGB8 colour (what normalises to zero).
    pub fn mean_u8(&self) -> [u8; 3] {
        self.mean.map(|m| (m * 255.0).round() as u8)
    }

    /// Writes `(v / 255 - mean) / std` of an HWC u8 image into a CHW f32 slice: a block of
    /// pixels at a time, split into planes (SIMD), then each plane converted in a loop that the
    /// compiler vectorises.
    pub(crate) fn hwc_u8_to_chw_f32(&self, src: &[u8], dst: &mut [f32]) {
        const BLOCK: usize = 2048;
        let plane = src.len() / 3;
        assert_eq!(dst.len(), 3 * plane, "destination size");
        let (scale, shift) = self.affine();
        let (r, rest) = dst.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        let mut tmp = [[0u8; BLOCK]; 3];
        for (k, px) in src.chunks(3 * BLOCK).enumerate() {
            let (m, at) = (px.len() / 3, k * BLOCK);
            let [tr, tg, tb] = &mut tmp;
            split_planes(px, &mut tr[..m], &mut tg[..m], &mut tb[..m]);
            for (c, out) in [&mut *r, &mut *g, &mut *b].into_iter().enumerate() {
                for (d, &v) in out[at..at + m].iter_mut().zip(&tmp[c][..m]) {
                    *d = v as f32 * scale[c] + shift[c];
                }
            }
        }
    }

    /// Per channel, `v * scale + shift` equals `(v / 255 - mean) / std`.
    fn affine(&self) -> ([f32; 3], [f32; 3]) {
        let scale = self.std.map(|s| 1.0 / (255.0 * s));
        let shift = [0, 1, 2].map(|c| -self.mean[c] / self.std[c]);
        (scale, shift)
    }

    /// As [`Normalize::hwc_u8_to_chw_f32`], keeping the HWC order: 16 pixels per step, whose
    /// per-value scale and shift (the channel pattern repeats every 3) are fixed arrays.
    pub(crate) fn hwc_u8_to_hwc_f32(&self, src: &[u8], dst: &mut [f32]) {
        assert_eq!(dst.len(), src.len(), "destination size");
        let (scale, shift) = self.affine();
        let sc: [f32; 48] = std::array::from_fn(|i| scale[i % 3]);
        let sh: [f32; 48] = std::array::from_fn(|i| shift[i % 3]);
        let mut s = src.chunks_exact(48);
        let mut d = dst.chunks_exact_mut(48);
        for (s, d) in (&mut s).zip(&mut d) {
            for i in 0..48 {
                d[i] = s[i] as f32 * sc[i] + sh[i];
            }
        }
        // The remainder starts at a multiple of 48, so value i is channel i % 3.
        for (i, (v, d)) in s.remainder().iter().zip(d.into_remainder()).enumerate() {
            *d = *v as f32 * scale[i % 3] + shift[i % 3];
        }
    }
}

/// HWC RGB bytes -> three planes (SIMD where the CPU has it); collation uses it too.
pub(crate) fn split_planes(src: &[u8], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    crate::simd::split_planes(src, r, g, b);
    #[cfg(not(target_arch = "x86_64"))]
    for (((px, r), g), b) in src.chunks_exact(3).zip(r).zip(g).zip(b) {
        (*r, *g, *b) = (px[0], px[1], px[2]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_by_hand_values() {
        let n = Normalize::IMAGENET;
        let mut out = [0.0f32; 6];
        n.hwc_u8_to_chw_f32(&[255, 0, 128, 0, 255, 128], &mut out);
        let want = [
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (1.0 - 0.456) / 0.224,
            (128.0 / 255.0 - 0.406) / 0.225,
            (128.0 / 255.0 - 0.406) / 0.225,
        ];
        for (a, b) in out.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    /// The block-wise kernels equal the per-value formula on images that end mid-block and
    /// mid-step, in both orders.
    #[test]
    fn kernels_equal_the_formula_at_every_length() {
        let n = Normalize::CIFAR;
        let (scale, shift) = n.affine();
        for pixels in [1, 15, 16, 17, 2047, 2048, 2049, 5000] {
            let src: Vec<u8> = (0..3 * pixels).map(|i| (i * 7 % 256) as u8).collect();
            let (mut chw, mut hwc) = (vec![0.0; 3 * pixels], vec![0.0; 3 * pixels]);
            n.hwc_u8_to_chw_f32(&src, &mut chw);
            n.hwc_u8_to_hwc_f32(&src, &mut hwc);
            for (i, &v) in src.iter().enumerate() {
                let (p, c) = (i / 3, i % 3);
                let want = v as f32 * scale[c] + shift[c];
                assert_eq!(hwc[i], want, "hwc {pixels} px, value {i}");
                assert_eq!(chw[c * pixels + p], want, "chw {pixels} px, value {i}");
            }
        }
    }
}
