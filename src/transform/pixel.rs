//! Pixel ops on uint8 RGB with the semantics of `torchvision.transforms.v2.functional`:
//! posterize, solarize, invert, autocontrast and equalize (per channel, as lookup tables over
//! the interleaved pixels), sharpness (its 3x3 kernel on the interior), grayscale and gaussian
//! blur (separable, reflect padding). Conversions to u8 truncate or round as torchvision's do.

use image::RgbImage;

/// Applies one table per channel to interleaved RGB (the loop the compiler vectorises best).
fn map_channels(img: &mut RgbImage, lut: &[[u8; 256]; 3]) {
    let data: &mut [u8] = img;
    for px in data.as_chunks_mut::<3>().0 {
        *px = [
            lut[0][px[0] as usize],
            lut[1][px[1] as usize],
            lut[2][px[2] as usize],
        ];
    }
}

fn map_all(img: &mut RgbImage, lut: &[u8; 256]) {
    let data: &mut [u8] = img;
    for v in data.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `F.posterize(image, bits)`: keeps the `bits` high bits (0..=8).
pub fn posterize(img: &mut RgbImage, bits: u8) {
    if bits >= 8 {
        return;
    }
    let mask = (((1u16 << bits) - 1) << (8 - bits)) as u8;
    let data: &mut [u8] = img;
    for v in data.iter_mut() {
        *v &= mask;
    }
}

/// `F.solarize(image, threshold)`: inverts every value at or above `threshold`.
pub fn solarize(img: &mut RgbImage, threshold: f64) {
    let lut: [u8; 256] = std::array::from_fn(|v| {
        if v as f64 >= threshold {
            255 - v as u8
        } else {
            v as u8
        }
    });
    map_all(img, &lut);
}

/// `F.invert(image)`.
pub fn invert(img: &mut RgbImage) {
    let data: &mut [u8] = img;
    for v in data.iter_mut() {
        *v = !*v;
    }
}

/// Per-channel (min, max) and histograms of interleaved RGB.
fn histograms(img: &RgbImage) -> [[u32; 256]; 3] {
    let mut h = [[0u32; 256]; 3];
    let data: &[u8] = img;
    for px in data.as_chunks::<3>().0 {
        h[0][px[0] as usize] += 1;
        h[1][px[1] as usize] += 1;
        h[2][px[2] as usize] += 1;
    }
    h
}

/// `F.autocontrast(image)`: each channel stretched to 0..255 from its own min and max (in f32,
/// truncated).
pub fn autocontrast(img: &mut RgbImage) {
    if img.width() == 0 || img.height() == 0 {
        return;
    }
    let hist = histograms(img);
    let lut: [[u8; 256]; 3] = std::array::from_fn(|c| {
        let lo = hist[c].iter().position(|&n| n > 0).unwrap_or(0) as f32;
        let hi = hist[c].iter().rposition(|&n| n > 0).unwrap_or(255) as f32;
        let (lo, inv_scale) = if hi == lo {
            (0.0, 1.0)
        } else {
            (lo, (hi - lo) * (1.0 / 255.0))
        };
        std::array::from_fn(|v| ((v as f32 - lo) / inv_scale).clamp(0.0, 255.0) as u8)
    });
    map_channels(img, &lut);
}

/// `F.equalize(image)`: per-channel histogram equalisation with PIL's lookup table.
pub fn equalize(img: &mut RgbImage) {
    let n = img.width() as u64 * img.height() as u64;
    if n == 0 {
        return;
    }
    let hist = histograms(img);
    let lut: [[u8; 256]; 3] = std::array::from_fn(|c| {
        let h = &hist[c];
        let last = h.iter().rposition(|&k| k > 0).unwrap_or(0);
        let step = (n - h[last] as u64) / 255;
        if step == 0 {
            return std::array::from_fn(|v| v as u8);
        }
        let mut lut = [0u8; 256];
        let mut cum = 0u64;
        for v in 1..256 {
            cum += h[v - 1] as u64;
            lut[v] = ((cum + step / 2) / step).min(255) as u8;
        }
        lut
    });
    map_channels(img, &lut);
}

/// `F.rgb_to_grayscale(image, num_output_channels=3)`: 0.2989 R + 0.587 G + 0.114 B, truncated.
pub fn grayscale(img: &mut RgbImage) {
    let data: &mut [u8] = img;
    for px in data.as_chunks_mut::<3>().0 {
        let l = (px[0] as f32 * 0.2989 + px[1] as f32 * 0.587 + px[2] as f32 * 0.114) as u8;
        *px = [l; 3];
    }
}

/// `F.adjust_sharpness(image, factor)`: blends each interior pixel with the rounded 3x3 blur
/// (weights 1, centre 5, over 13); the border stays as it is.
pub fn sharpness(img: &mut RgbImage, factor: f32) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w <= 2 || h <= 2 {
        return;
    }
    let src = img.as_raw().clone();
    let k = if factor.is_finite() {
        1.0 - factor
    } else {
        0.0
    };
    let stride = w * 3;
    let dst: &mut [u8] = img;
    let mut sums = vec![0u16; stride];
    for y in 1..h - 1 {
        let up = &src[(y - 1) * stride..y * stride];
        let mid = &src[y * stride..(y + 1) * stride];
        let down = &src[(y + 1) * stride..(y + 2) * stride];
        // Column sums of the three rows, then the horizontal 3 taps: integer lanes.
        for (((s, &a), &b), &c) in sums.iter_mut().zip(up).zip(mid).zip(down) {
            *s = a as u16 + b as u16 + c as u16;
        }
        let out = &mut dst[y * stride + 3..(y + 1) * stride - 3];
        let n = out.len();
        let (left, centre, right) = (&sums[..n], &sums[3..3 + n], &sums[6..6 + n]);
        for i in 0..n {
            let x = mid[i + 3] as u32;
            // 8 around + 5 x centre over 13, rounded: (sum + 6) / 13 is exact (13 is odd).
            let total = left[i] as u32 + centre[i] as u32 + right[i] as u32 + 4 * x;
            let blurred = ((total + 6) / 13) as f32;
            let xf = x as f32;
            let v = (xf + k * (blurred - xf)).clamp(0.0, 255.0);
            // SAFETY: finite (k is, below) and within 0..=255; truncates as `.to(uint8)`.
            out[i] = unsafe { v.to_int_unchecked::<u8>() };
        }
    }
}

/// The 1-D gaussian kernel of `F.gaussian_blur`: `size` taps (odd) with standard deviation
/// `sigma`, normalised to sum 1.
fn gaussian_kernel(size: usize, sigma: f32) -> Vec<f32> {
    let half = (size as f32 - 1.0) * 0.5;
    let k: Vec<f32> = (0..size)
        .map(|i| {
            let x = -half + i as f32;
            (-0.5 * (x / sigma) * (x / sigma)).exp()
        })
        .collect();
    let sum: f32 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// Reflect padding index (`torch.nn.functional.pad(mode="reflect")`).
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

/// `F.gaussian_blur(image, kernel_size=[kx, ky], sigma=[sx, sy])`: separable, reflect padding,
/// f32, rounded. Kernel sizes are odd and positive; sigmas positive.
pub fn gaussian_blur(img: &mut RgbImage, kernel: [usize; 2], sigma: [f32; 2]) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return;
    }
    let (kx, ky) = (
        gaussian_kernel(kernel[0], sigma[0]),
        gaussian_kernel(kernel[1], sigma[1]),
    );
    let (rx, ry) = ((kernel[0] / 2) as isize, (kernel[1] / 2) as isize);
    let src: &[u8] = img;
    // Vertical pass into f32 planes (interleaved), then horizontal back into u8.
    let stride = w * 3;
    let mut tmp = vec![0f32; h * stride];
    for y in 0..h {
        let row = &mut tmp[y * stride..(y + 1) * stride];
        for (t, &wt) in ky.iter().enumerate() {
            let sy = reflect(y as isize + t as isize - ry, h);
            let srow = &src[sy * stride..(sy + 1) * stride];
            for (o, &s) in row.iter_mut().zip(srow) {
                *o += wt * s as f32;
            }
        }
    }
    let mut out = vec![0u8; h * stride];
    for y in 0..h {
        let row = &tmp[y * stride..(y + 1) * stride];
        for x in 0..w {
            let mut acc = [0f32; 3];
            for (t, &wt) in kx.iter().enumerate() {
                let sx = reflect(x as isize + t as isize - rx, w);
                for c in 0..3 {
                    acc[c] += wt * row[sx * 3 + c];
                }
            }
            for c in 0..3 {
                out[y * stride + x * 3 + c] = acc[c].round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
    }
    img.copy_from_slice(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(values: &[[u8; 3]], w: u32) -> RgbImage {
        RgbImage::from_raw(w, values.len() as u32 / w, values.concat()).unwrap()
    }

    #[test]
    fn posterize_solarize_invert_by_hand() {
        let mut a = img(&[[255, 128, 7], [64, 200, 3]], 2);
        posterize(&mut a, 2);
        assert_eq!(a.as_raw(), &[192, 128, 0, 64, 192, 0]);
        let mut b = img(&[[100, 128, 200]], 1);
        solarize(&mut b, 128.0);
        assert_eq!(b.as_raw(), &[100, 127, 55]);
        invert(&mut b);
        assert_eq!(b.as_raw(), &[155, 128, 200]);
    }

    #[test]
    fn autocontrast_stretches_each_channel_and_keeps_flat_ones() {
        // torchvision gives 254 here too: 10 / (10 * (1 / 255)) is just below 255 in f32.
        let mut a = img(&[[10, 5, 9], [20, 5, 250]], 2);
        autocontrast(&mut a);
        assert_eq!(a.as_raw(), &[0, 5, 0, 254, 5, 254]);
    }

    #[test]
    fn reflect_padding_mirrors_without_repeating_the_edge() {
        let idx: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }

    #[test]
    fn sharpness_one_is_the_identity_and_the_border_is_kept() {
        let a = RgbImage::from_fn(6, 5, |x, y| image::Rgb([(x * 40) as u8, (y * 50) as u8, 9]));
        let mut b = a.clone();
        sharpness(&mut b, 1.0);
        assert_eq!(a, b);
        sharpness(&mut b, 0.0);
        assert_eq!(a.get_pixel(0, 2), b.get_pixel(0, 2));
    }
}
