//! Cutout (DeVries & Taylor 2017): square holes with uniformly drawn centres, clipped at borders.

use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::rng::SampleRng;

/// Cutout settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cutout {
    /// Number of holes.
    pub holes: u32,
    /// Side of each hole in pixels.
    pub length: u32,
    /// Fill colour; by default the normalisation mean in 0..=255 (zero after normalisation).
    pub fill: [u8; 3],
}

/// One hole: (top, left, height, width) after clipping, as `torchvision.v2.functional.erase`'s i, j, h, w.
pub type CutoutBox = [u32; 4];

impl Cutout {
    /// Samples the holes for an image of `width` x `height`, as the reference implementation:
    /// centre (y, x) uniform over the image, box [y - L/2, y + L/2) clipped.
    pub fn sample(&self, rng: &mut SampleRng, width: u32, height: u32) -> Vec<CutoutBox> {
        (0..self.holes)
            .map(|_| {
                let y = rng.random_range(0..height) as i64;
                let x = rng.random_range(0..width) as i64;
                let half = (self.length / 2) as i64;
                let y1 = (y - half).clamp(0, height as i64) as u32;
                let y2 = (y + half).clamp(0, height as i64) as u32;
                let x1 = (x - half).clamp(0, width as i64) as u32;
                let x2 = (x + half).clamp(0, width as i64) as u32;
                [y1, x1, y2 - y1, x2 - x1]
            })
            .collect()
    }
}

/// Fills each box with `fill`.
pub fn apply_cutout(img: &mut RgbImage, boxes: &[CutoutBox], fill: [u8; 3]) {
    let stride = img.width() as usize * 3;
    let data: &mut [u8] = img;
    for &[top, left, h, w] in boxes {
        for y in top..top + h {
            let at = y as usize * stride + left as usize * 3;
            let row = &mut data[at..at + w as usize * 3];
            for px in row.as_chunks_mut::<3>().0 {
                *px = fill;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_clipped_inside() {
        let c = Cutout {
            holes: 3,
            length: 16,
            fill: [0; 3],
        };
        for i in 0..200 {
            let mut rng = crate::rng::sample_rng(1, 0, i);
            for [t, l, h, w] in c.sample(&mut rng, 32, 20) {
                assert!(t + h <= 20 && l + w <= 32 && h <= 16 && w <= 16);
            }
        }
    }
}
