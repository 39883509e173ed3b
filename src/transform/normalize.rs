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

    /// The mean as an RGB8 colour (what normalises to zero).
    pub fn mean_u8(&self) -> [u8; 3] {
        self.mean.map(|m| (m * 255.0).round() as u8)
    }

    /// Writes `(v / 255 - mean) / std` of an HWC u8 image into a CHW f32 slice.
    pub fn hwc_u8_to_chw_f32(&self, src: &[u8], dst: &mut [f32]) {
        let plane = src.len() / 3;
        let (scale, shift) = self.affine();
        for (i, px) in src.chunks_exact(3).enumerate() {
            for c in 0..3 {
                dst[c * plane + i] = px[c] as f32 * scale[c] + shift[c];
            }
        }
    }

    /// Per channel, `v * scale + shift` equals `(v / 255 - mean) / std`.
    fn affine(&self) -> ([f32; 3], [f32; 3]) {
        let scale = self.std.map(|s| 1.0 / (255.0 * s));
        let shift = [0, 1, 2].map(|c| -self.mean[c] / self.std[c]);
        (scale, shift)
    }

    /// As [`Normalize::hwc_u8_to_chw_f32`], keeping the HWC order.
    pub fn hwc_u8_to_hwc_f32(&self, src: &[u8], dst: &mut [f32]) {
        let (scale, shift) = self.affine();
        for (px, out) in src.chunks_exact(3).zip(dst.chunks_exact_mut(3)) {
            for c in 0..3 {
                out[c] = px[c] as f32 * scale[c] + shift[c];
            }
        }
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
}
