//! Restart intervals: a baseline JPEG whose entropy-coded data is split by restart markers can be
//! cut, without decoding anything, into a smaller JPEG that holds only the intervals a window
//! needs. Each interval starts on a byte boundary with its DC predictors reset, so its bytes
//! decode the same anywhere; libjpeg then entropy-decodes the window's MCU rows (and, where the
//! intervals line up with MCU columns, only its columns) instead of every row above and beside it.
//! Its pixels equal a full decode's: the cut keeps one MCU of margin on each side, more than the
//! one chroma sample that fancy upsampling reads across it.

use super::Region;

/// Where the parts of a single-scan baseline JPEG with restart intervals lie.
struct Layout {
    width: u32,
    height: u32,
    /// Offset of the frame header's height field (its width follows).
    dims_at: usize,
    /// End of the scan header: the entropy-coded data starts here.
    scan: usize,
    mcu_w: u32,
    mcu_h: u32,
    /// MCUs per row.
    mpr: u32,
    /// MCU rows.
    rows: u32,
    /// Restart interval in MCUs.
    interval: u32,
}

fn be16(b: &[u8], i: usize) -> Option<u32> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as u32)
}

/// Walks the markers up to the scan. `None` for anything but one interleaved (or single-
/// component) Huffman-coded sequential scan with restart intervals.
fn layout(bytes: &[u8]) -> Option<Layout> {
    let (mut i, mut frame, mut interval) = (2, None, 0);
    loop {
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(i + 1)?;
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = be16(bytes, i + 2)? as usize;
        let seg = bytes.get(i + 4..(i + 2 + len).max(i + 4))?;
        match marker {
            0xC0 | 0xC1 => frame = Some((i + 5, seg)),
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDD => interval = be16(seg, 0)?,
            0xDA => {
                let (dims_at, sof) = frame?;
                return frame_layout(sof, dims_at, *seg.first()?, i + 2 + len, interval);
            }
            0x01 | 0xD0..=0xD9 => return None,
            _ => {}
        }
        i += 2 + len;
    }
}

fn frame_layout(
    sof: &[u8],
    dims_at: usize,
    scan_components: u8,
    scan: usize,
    interval: u32,
) -> Option<Layout> {
    let (height, width, n) = (be16(sof, 1)?, be16(sof, 3)?, *sof.get(5)?);
    // Height 0 means a DNL marker gives it later; several scans cannot be cut this way.
    if *sof.first()? != 8 || height == 0 || width == 0 || interval == 0 || scan_components != n {
        return None;
    }
    let factors = sof
        .get(6..6 + 3 * n as usize)?
        .chunks_exact(3)
        .map(|c| c[1]);
    let (mut h, mut v) = (1, 1);
    for f in factors {
        let (fh, fv) = ((f >> 4) as u32, (f & 15) as u32);
        if !(1..=4).contains(&fh) || !(1..=4).contains(&fv) {
            return None;
        }
        (h, v) = (h.max(fh), v.max(fv));
    }
    // A single-component scan's MCU is one 8x8 block, whatever the sampling factors say.
    let (mcu_w, mcu_h) = if n == 1 { (8, 8) } else { (8 * h, 8 * v) };
    Some(Layout {
        width,
        height,
        dims_at,
        scan,
        mcu_w,
        mcu_h,
        mpr: width.div_ceil(mcu_w),
        rows: height.div_ceil(mcu_h),
        interval,
    })
}

/// The byte ranges of restart intervals 0..=last (without their markers). `None` if the data
/// ends first, or holds a marker other than the expected restart marker or the end of image:
/// such files are left to the full decode, which reports what is wrong.
fn intervals(bytes: &[u8], scan: usize, last: usize) -> Option<Vec<(usize, usize)>> {
    let mut out = Vec::with_capacity(last + 1);
    let (mut start, mut p) = (scan, scan);
    while out.len() <= last {
        let ff = p + memchr::memchr(0xFF, bytes.get(p..)?)?;
        let mut q = ff + 1;
        while *bytes.get(q)? == 0xFF {
            q += 1;
        }
        match bytes[q] {
            0x00 => p = q + 1,
            m @ 0xD0..=0xD7 if (m - 0xD0) as usize == out.len() % 8 => {
                out.push((start, ff));
                (start, p) = (q + 1, q + 1);
            }
            0xD9 => {
                out.push((start, ff));
                break;
            }
            _ => return None,
        }
    }
    (out.len() > last).then_some(out)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A smaller JPEG holding the MCUs around a window, and where it lies in the full image.
pub(super) struct Splice {
    /// The JPEG (from the loader's image pool: give it back).
    pub bytes: Vec<u8>,
    /// Its top-left corner in the full image, in full-resolution pixels (whole MCUs).
    pub origin: (u32, u32),
    /// Its size in full-resolution pixels.
    pub size: (u32, u32),
}

/// Cuts the intervals around `region` (full-resolution pixels) out of `bytes`; `None` when the
/// JPEG has no restart intervals (or is not one scan of a kind this reads), or when the cut would
/// save nothing.
pub(super) fn splice(bytes: &[u8], region: &Region) -> Option<Splice> {
    let l = layout(bytes)?;
    let ri = l.interval;
    // Columns can be cut only when every row starts an interval.
    let columns = l.mpr % ri == 0;
    let (mut c0, mut c1) = (0, l.mpr);
    if columns {
        c0 = (region.left / l.mcu_w).saturating_sub(1);
        c0 -= c0 % ri;
        let end = (region.left + region.width).div_ceil(l.mcu_w) + 1;
        c1 = (end.div_ceil(ri) * ri).min(l.mpr);
    }
    // A cut row must start an interval: r0 * mpr a multiple of ri.
    let step = ri / gcd(ri, l.mpr);
    let mut r0 = (region.top / l.mcu_h).saturating_sub(1);
    r0 -= r0 % step;
    let r1 = ((region.top + region.height).div_ceil(l.mcu_h) + 1).min(l.rows);
    // Rows below the window are never decoded: a cut that starts at the top and keeps every
    // column would save nothing.
    if (c0, c1, r0) == (0, l.mpr, 0) || c0 >= c1 || r0 >= r1 {
        return None;
    }
    let mcu = |row: u32, col: u32| row as usize * l.mpr as usize + col as usize;
    let (ri, first) = (ri as usize, mcu(r0, c0) / ri as usize);
    let last = (mcu(r1 - 1, c1) - 1) / ri;
    let iv = intervals(bytes, l.scan, last)?;
    let mut out =
        crate::pool::take_empty(l.scan + iv[last].1 - iv[first].0 + 2 * (last - first) + 2);
    out.extend_from_slice(&bytes[..l.scan]);
    let (x0, y0) = (c0 * l.mcu_w, r0 * l.mcu_h);
    let width = if c1 == l.mpr {
        l.width - x0
    } else {
        (c1 - c0) * l.mcu_w
    };
    let height = if r1 == l.rows {
        l.height - y0
    } else {
        (r1 - r0) * l.mcu_h
    };
    out[l.dims_at..l.dims_at + 2].copy_from_slice(&(height as u16).to_be_bytes());
    out[l.dims_at + 2..l.dims_at + 4].copy_from_slice(&(width as u16).to_be_bytes());
    let picked: Vec<usize> = if columns {
        (r0..r1)
            .flat_map(|row| mcu(row, c0) / ri..mcu(row, c1) / ri)
            .collect()
    } else {
        (first..=last).collect()
    };
    for (n, k) in picked.into_iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(&[0xFF, 0xD0 + ((n - 1) % 8) as u8]);
        }
        out.extend_from_slice(&bytes[iv[k].0..iv[k].1]);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(Splice {
        bytes: out,
        origin: (x0, y0),
        size: (width, height),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    fn jpeg(interval: u16, progressive: bool) -> Vec<u8> {
        let (w, h) = (160u16, 128u16);
        let px: Vec<u8> = (0..w as usize * h as usize * 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut bytes = Vec::new();
        let mut enc = Encoder::new(&mut bytes, 85);
        enc.set_sampling_factor(SamplingFactor::F_2_2);
        enc.set_restart_interval(interval);
        enc.set_progressive(progressive);
        enc.encode(&px, w, h, ColorType::Rgb).unwrap();
        bytes
    }

    fn window(left: u32, top: u32) -> Region {
        Region {
            left,
            top,
            width: 20,
            height: 20,
            max_scale: 1,
        }
    }

    #[test]
    fn cuts_rows_and_columns_around_the_window() {
        // 10 MCUs per row, 8 rows; intervals of 5 MCUs line up with the columns.
        let bytes = jpeg(5, false);
        let s = splice(&bytes, &window(100, 70)).expect("a cut");
        // Rows 3..7 and columns 5..10: one MCU beyond the window (rows 4..6, columns 6..8).
        assert_eq!((s.origin, s.size), ((80, 48), (80, 64)));
        assert!(
            s.bytes.len() < bytes.len() / 2,
            "{} of {}",
            s.bytes.len(),
            bytes.len()
        );
        // An interval of 3 MCUs: rows only, starting where an interval does (rows 0, 3, 6).
        let s = splice(&jpeg(3, false), &window(100, 70)).expect("a cut");
        assert_eq!((s.origin, s.size), ((0, 48), (160, 64)));
        // ... and none from the top row, where it would save nothing.
        assert!(splice(&jpeg(3, false), &window(100, 40)).is_none());
    }

    #[test]
    fn nothing_to_cut_without_restart_markers_or_for_the_whole_image() {
        assert!(splice(&jpeg(0, false), &window(100, 70)).is_none());
        assert!(splice(&jpeg(5, true), &window(100, 70)).is_none());
        let all = Region {
            width: 160,
            height: 128,
            ..window(0, 0)
        };
        assert!(splice(&jpeg(5, false), &all).is_none());
    }

    #[test]
    fn out_of_sequence_markers_leave_the_file_to_the_full_decode() {
        let mut bytes = jpeg(5, false);
        let l = layout(&bytes).unwrap();
        let rst1 = l.scan
            + bytes[l.scan..]
                .windows(2)
                .position(|w| w == [0xFF, 0xD1])
                .unwrap();
        bytes[rst1 + 1] = 0xD5;
        assert!(splice(&bytes, &window(100, 70)).is_none());
    }

    #[test]
    fn damaged_files_never_panic() {
        use rand::Rng;
        let good = jpeg(5, false);
        let mut rng = crate::rng::rng_for(1, 1, 1, 1);
        let opts = super::super::DecodeOptions::default();
        for i in 0..600 {
            let mut bytes = good.clone();
            for _ in 0..1 + i % 4 {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = if i % 3 == 0 { 0xFF } else { rng.random() };
            }
            if i % 5 == 0 {
                bytes.truncate(rng.random_range(0..bytes.len()));
            }
            let r = window(rng.random_range(0..140), rng.random_range(0..108));
            let _ = splice(&bytes, &r);
            let _ = super::super::decode_region(&bytes, &opts, Some(r));
        }
    }
}
