//! Horizontal flip.

use image::RgbImage;
use rand::Rng;

use crate::rng::SampleRng;

/// Samples a flip with probability `p`.
pub fn sample_flip(rng: &mut SampleRng, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

/// Mirrors `img` left-right in place.
pub fn hflip(img: &mut RgbImage) {
    let w = img.width() as usize;
    if w == 0 {
        return;
    }
    for row in img.chunks_exact_mut(w * 3) {
        // Whole pixels: three times fewer swaps than byte by byte.
        row.as_chunks_mut::<3>().0.reverse();
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
    }
}
