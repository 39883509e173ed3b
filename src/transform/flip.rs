//! Horizontal flip.

use image::RgbImage;
use rand::Rng;

use crate::rng::SampleRng;

/// Samples a flip with probability `p`.
pub(crate) fn sample_flip(rng: &mut SampleRng, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

/// Mirrors `img` left-right in place.
pub fn hflip(img: &mut RgbImage) {
    let w = img.width() as usize;
    if w == 0 {
        return;
    }
    let mut reversed = vec![0u8; w * 3];
    for row in img.chunks_exact_mut(w * 3) {
        if reverse_simd(row, &mut reversed) {
            row.copy_from_slice(&reversed);
        } else {
            row.as_chunks_mut::<3>().0.reverse();
        }
    }
}

/// Byte shuffles where the CPU has them (5 pixels at a time); false where it does not.
fn reverse_simd(row: &[u8], out: &mut [u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    return crate::simd::reverse_pixels(row, out);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (row, out);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_moves_columns() {
        let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let mut f = img.clone();
        hflip(&mut f);
        assert_eq!(f.get_pixel(0, 1).0, [2, 1, 9]);
        assert_eq!(f.get_pixel(2, 0).0, [0, 0, 9]);
        // Rows longer than a shuffle's 5 pixels, odd widths.
        for w in [6, 11, 224, 225] {
            let img = RgbImage::from_fn(w, 3, |x, y| image::Rgb([x as u8, y as u8, (x * y) as u8]));
            let mut f = img.clone();
            hflip(&mut f);
            for (x, y, p) in f.enumerate_pixels() {
                assert_eq!(p, img.get_pixel(w - 1 - x, y));
            }
        }
    }
}
