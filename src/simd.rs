//! Byte shuffles between interleaved RGB (8 pixels, 24 bytes) and three planes of 8 bytes, for
//! x86_64 with SSSE3 (callers check for it, or for AVX2, at run time).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// For channel `ch`: byte i of (shuffle(bytes 0..16, lo) | shuffle(bytes 8..24, hi)) is byte
/// 3i + ch of the pixels (0x80: zero).
const fn gather(ch: usize) -> ([u8; 16], [u8; 16]) {
    let (mut lo, mut hi) = ([0x80u8; 16], [0x80u8; 16]);
    let mut i = 0;
    while i < 8 {
        let j = 3 * i + ch;
        if j < 16 {
            lo[i] = j as u8;
        } else {
            hi[i] = (j - 8) as u8;
        }
        i += 1;
    }
    (lo, hi)
}

/// Output bytes `from..from + 16` of the interleaved pixels from `rg` (R0..R7 G0..G7) and `b`
/// (B0..B7): (mask on rg, mask on b).
const fn scatter(from: usize) -> ([u8; 16], [u8; 16]) {
    let (mut rg, mut b) = ([0x80u8; 16], [0x80u8; 16]);
    let mut k = 0;
    while k < 16 && from + k < 24 {
        let (i, ch) = ((from + k) / 3, (from + k) % 3);
        if ch == 2 {
            b[k] = i as u8;
        } else {
            rg[k] = (ch * 8 + i) as u8;
        }
        k += 1;
    }
    (rg, b)
}

const GATHER: [([u8; 16], [u8; 16]); 3] = [gather(0), gather(1), gather(2)];
const SCATTER_LOW: ([u8; 16], [u8; 16]) = scatter(0);
const SCATTER_HIGH: ([u8; 16], [u8; 16]) = scatter(16);

#[inline]
#[target_feature(enable = "ssse3")]
fn mask(m: &[u8; 16]) -> __m128i {
    // SAFETY: 16 readable bytes.
    unsafe { _mm_loadu_si128(m.as_ptr() as *const __m128i) }
}

/// 8 RGB pixels -> the R, G and B bytes, each in the low 8 bytes of a register.
#[inline]
#[target_feature(enable = "ssse3")]
pub(crate) fn deinterleave8(px: &[u8; 24]) -> [__m128i; 3] {
    // SAFETY: bytes 0..16 and 8..24 lie inside the 24-byte array.
    let (lo, hi) = unsafe {
        (
            _mm_loadu_si128(px.as_ptr() as *const __m128i),
            _mm_loadu_si128(px.as_ptr().add(8) as *const __m128i),
        )
    };
    GATHER.map(|(ml, mh)| {
        _mm_or_si128(
            _mm_shuffle_epi8(lo, mask(&ml)),
            _mm_shuffle_epi8(hi, mask(&mh)),
        )
    })
}

/// The inverse of [`deinterleave8`]: the low 8 bytes of each of R, G, B -> 8 RGB pixels.
#[inline]
#[target_feature(enable = "ssse3")]
pub(crate) fn interleave8([r, g, b]: [__m128i; 3], px: &mut [u8; 24]) {
    let rg = _mm_unpacklo_epi64(r, g);
    let part = |(mrg, mb): &([u8; 16], [u8; 16])| {
        _mm_or_si128(
            _mm_shuffle_epi8(rg, mask(mrg)),
            _mm_shuffle_epi8(b, mask(mb)),
        )
    };
    let (low, high) = (part(&SCATTER_LOW), part(&SCATTER_HIGH));
    // SAFETY: bytes 0..16 and 16..24 lie inside the 24-byte array.
    unsafe {
        _mm_storeu_si128(px.as_mut_ptr() as *mut __m128i, low);
        _mm_storel_epi64(px.as_mut_ptr().add(16) as *mut __m128i, high);
    }
}

/// HWC RGB bytes -> three planes. `r`, `g`, `b` hold `src.len() / 3` bytes each.
#[target_feature(enable = "ssse3")]
fn split_planes_ssse3(src: &[u8], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
    let n = src.len() / 24;
    for k in 0..n {
        let px: &[u8; 24] = src[24 * k..24 * k + 24].try_into().unwrap();
        let [vr, vg, vb] = deinterleave8(px);
        for (dst, v) in [(&mut *r, vr), (&mut *g, vg), (&mut *b, vb)] {
            let out: &mut [u8; 8] = (&mut dst[8 * k..8 * k + 8]).try_into().unwrap();
            // SAFETY: 8 writable bytes.
            unsafe { _mm_storel_epi64(out.as_mut_ptr() as *mut __m128i, v) };
        }
    }
    split_planes_scalar(
        &src[24 * n..],
        &mut r[8 * n..],
        &mut g[8 * n..],
        &mut b[8 * n..],
    );
}

fn split_planes_scalar(src: &[u8], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
    for (((px, r), g), b) in src.chunks_exact(3).zip(r).zip(g).zip(b) {
        (*r, *g, *b) = (px[0], px[1], px[2]);
    }
}

/// Whether the SIMD paths may run: not when `AUGLOADER_PORTABLE_SIMD` is set (to anything but
/// `0`), so that the portable paths can be tested on any host (scripts/test.sh runs the suite
/// both ways). Read once.
pub(crate) fn allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| {
        std::env::var_os("AUGLOADER_PORTABLE_SIMD").is_none_or(|v| v.is_empty() || v == "0")
    })
}

/// HWC RGB bytes -> three planes (R, G, B), each `src.len() / 3` bytes.
pub(crate) fn split_planes(src: &[u8], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
    assert!(r.len() == src.len() / 3 && g.len() == r.len() && b.len() == r.len());
    if allowed() && is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU supports SSSE3 (checked above).
        unsafe { split_planes_ssse3(src, r, g, b) }
    } else {
        split_planes_scalar(src, r, g, b)
    }
}

/// Reads 16 bytes from one byte before 5 pixels and puts the 5 pixels in reverse order in bytes
/// 0..15 (byte 15 is junk).
const REVERSE5: [u8; 16] = [13, 14, 15, 10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3, 0];

/// `dst` = the RGB pixels of `src` in reverse order, 5 pixels per shuffle.
#[target_feature(enable = "ssse3")]
fn reverse_pixels_ssse3(src: &[u8], dst: &mut [u8]) {
    let w = src.len() / 3;
    let m = mask(&REVERSE5);
    let mut k = 0;
    // Group k: destination pixels 5k..5k+5 from source pixels w-5k-5..w-5k, loaded from the
    // byte before them (so at least one pixel must lie before), stored 16 bytes wide (the 16th
    // is overwritten by the next group or the tail).
    while 5 * k + 6 <= w {
        let from = 3 * (w - 5 * k - 5) - 1;
        // SAFETY: bytes from..from + 16 lie in `src` (from >= 2, and from + 16 = 3(w - 5k) + 0
        // <= src.len()); bytes 15k..15k + 16 lie in `dst` (15k + 16 <= 3(5k + 6) <= dst.len()).
        unsafe {
            let v = _mm_loadu_si128(src.as_ptr().add(from) as *const __m128i);
            _mm_storeu_si128(
                dst.as_mut_ptr().add(15 * k) as *mut __m128i,
                _mm_shuffle_epi8(v, m),
            );
        }
        k += 1;
    }
    for j in 5 * k..w {
        let i = w - 1 - j;
        dst[3 * j..3 * j + 3].copy_from_slice(&src[3 * i..3 * i + 3]);
    }
}

/// `dst` = the RGB pixels of `src` (both `3 * width` bytes) in reverse order, if the CPU has
/// SSSE3 and SIMD is allowed; returns false (and does nothing) otherwise.
pub(crate) fn reverse_pixels(src: &[u8], dst: &mut [u8]) -> bool {
    assert!(src.len() == dst.len() && src.len().is_multiple_of(3));
    if allowed() && is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU supports SSSE3 (checked above).
        unsafe { reverse_pixels_ssse3(src, dst) };
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_round_trip_and_split_planes() {
        if !is_x86_feature_detected!("ssse3") {
            return;
        }
        let px: [u8; 24] = std::array::from_fn(|i| (i * 7 + 1) as u8);
        // SAFETY: SSSE3 checked above.
        let planes = unsafe { deinterleave8(&px) };
        let mut back = [0u8; 24];
        // SAFETY: as above.
        unsafe { interleave8(planes, &mut back) };
        assert_eq!(back, px);

        for w in 0..40 {
            let src: Vec<u8> = (0..3 * w).map(|i| (i * 13 % 251) as u8).collect();
            let mut dst = vec![0; 3 * w];
            // SAFETY: SSSE3 checked above (called directly: `allowed` may say no).
            unsafe { reverse_pixels_ssse3(&src, &mut dst) };
            let expect: Vec<u8> = src.chunks(3).rev().flatten().copied().collect();
            assert_eq!(dst, expect, "width {w}");
        }

        let src: Vec<u8> = (0..3 * 37).map(|i| (i * 13 % 251) as u8).collect();
        let (mut r, mut g, mut b) = (vec![0; 37], vec![0; 37], vec![0; 37]);
        split_planes(&src, &mut r, &mut g, &mut b);
        for i in 0..37 {
            assert_eq!(
                [r[i], g[i], b[i]],
                [src[3 * i], src[3 * i + 1], src[3 * i + 2]]
            );
        }
    }
}
