//! Decoding of every supported format, and of every kind of bad input.

mod util;

use augloader::decode::{decode_rgb8, DecodeError, DecodeOptions};
use util::{fixture, gradient, mad};

fn decode(name: &str) -> Result<image::RgbImage, DecodeError> {
    let bytes = std::fs::read(fixture(name)).unwrap();
    decode_rgb8(&bytes, &DecodeOptions::default())
}

#[test]
fn lossless_formats_decode_exactly() {
    for name in [
        "rgb.png",
        "rgba.png",
        "rgb16.png",
        "rgb.bmp",
        "lossless.webp",
    ] {
        let img = decode(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img, gradient(), "{name}");
    }
}

#[test]
fn lossy_formats_decode_close_to_source() {
    for (name, tol) in [
        ("baseline.jpg", 2.0),
        ("progressive.jpg", 2.0),
        ("lossy.webp", 4.0),
        ("cmyk.jpg", 3.0),
    ] {
        let img = decode(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = mad(&img, &gradient());
        assert!(d < tol, "{name}: mean abs diff {d}");
    }
}

#[test]
fn grayscale_becomes_three_equal_channels() {
    let g = gradient();
    for name in ["gray.jpg", "gray.png", "gray16.png"] {
        let img = decode(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.dimensions(), (40, 30));
        assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "{name}");
        if name == "gray16.png" {
            // Written as R * 257: the 8-bit value is R.
            for (a, b) in img.pixels().zip(g.pixels()) {
                assert_eq!(a[0], b[0]);
            }
        } else {
            // Pillow's L = R * 299/1000 + G * 587/1000 + B * 114/1000.
            let mut d = 0.0;
            for (a, b) in img.pixels().zip(g.pixels()) {
                let l = (b[0] as f64 * 0.299 + b[1] as f64 * 0.587 + b[2] as f64 * 0.114).round();
                d += (a[0] as f64 - l).abs();
            }
            assert!(d / 1200.0 < 2.0, "{name}: {}", d / 1200.0);
        }
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    assert!(matches!(decode("empty.jpg"), Err(DecodeError::Empty)));
    assert!(matches!(
        decode("notimage.jpg"),
        Err(DecodeError::UnsupportedFormat)
    ));
    assert!(matches!(
        decode("image.gif"),
        Err(DecodeError::UnsupportedFormat)
    ));
    // TIFF and PNM are read, as torchvision's ImageFolder reads them; GIF is not in its list.
    let tiff = decode("image.tiff").expect("TIFF decodes");
    assert!(tiff.width() > 0 && tiff.height() > 0);
    for name in ["truncated.jpg", "truncated.png", "corrupt.png"] {
        assert!(
            matches!(
                decode(name),
                Err(DecodeError::Corrupt(_) | DecodeError::Decoder(_))
            ),
            "{name}: {:?}",
            decode(name).map(|i| i.dimensions())
        );
    }
}

#[test]
fn pixel_limit_is_checked_from_the_header() {
    for name in ["bomb.png", "bomb.jpg"] {
        match decode(name) {
            Err(DecodeError::TooLarge { pixels, limit, .. }) => {
                assert!(pixels > limit);
            }
            other => panic!("{name}: {:?}", other.map(|i| i.dimensions())),
        }
    }
    let bytes = std::fs::read(fixture("rgb.png")).unwrap();
    let small = DecodeOptions {
        max_pixels: 1000,
        ..Default::default()
    };
    assert!(matches!(
        decode_rgb8(&bytes, &small),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn with_the_pixel_limit_lifted_a_huge_image_is_an_error_not_an_abort() {
    // bomb.png's header declaring 2^30 x 2^30 pixels (3 EiB of RGB), its checksum redone.
    let mut bytes = std::fs::read(fixture("bomb.png")).unwrap();
    bytes[16..24].copy_from_slice(&[0x40, 0, 0, 0, 0x40, 0, 0, 0]);
    let crc = crc32(&bytes[12..29]).to_be_bytes();
    bytes[29..33].copy_from_slice(&crc);
    let lifted = DecodeOptions {
        max_pixels: u64::MAX,
        ..Default::default()
    };
    // Refused by the memory probe, or by the PNG decoder's own allocation limit.
    match decode_rgb8(&bytes, &lifted) {
        Err(DecodeError::OutOfMemory { bytes, .. }) => assert!(bytes > 1 << 34),
        Err(DecodeError::Decoder(image::ImageError::Limits(_))) => {}
        other => panic!("{:?}", other.map(|i| i.dimensions())),
    }
}

/// PNG's chunk checksum (CRC-32, polynomial 0xEDB88320).
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]
        /// Arbitrary bytes, and valid files with arbitrary bytes flipped or cut, never panic.
        #[test]
        fn decoding_never_panics(
            which in 0usize..6,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
            cut in any::<prop::sample::Index>(),
            random in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let names = ["baseline.jpg", "progressive.jpg", "rgb.png", "rgb.bmp", "lossy.webp", "cmyk.jpg"];
            let mut bytes = std::fs::read(fixture(names[which])).unwrap();
            for (i, v) in edits {
                let n = bytes.len();
                bytes[i.index(n)] = v;
            }
            let n = bytes.len();
            bytes.truncate(cut.index(n) + 1);
            let _ = decode_rgb8(&bytes, &DecodeOptions {
                max_pixels: 1 << 22,
                ..Default::default()
            });
            let _ = decode_rgb8(&random, &DecodeOptions::default());
        }
    }
}

/// JPEGs to decode partially: odd sizes, 4:2:0 (the image crate's encoder), the progressive and
/// grayscale fixtures, and corpus photos (4:2:0 and 4:4:4) when present.
fn jpeg_samples() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (w, h) in [(333, 251), (97, 411), (640, 17)] {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 3 + y) as u8, ((y * 5) ^ x) as u8, ((x * y) >> 4) as u8])
        });
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        out.push((format!("generated {w}x{h}"), bytes));
    }
    out.extend(restart_samples());
    for name in ["progressive.jpg", "gray.jpg", "baseline.jpg"] {
        out.push((name.into(), std::fs::read(fixture(name)).unwrap()));
    }
    if let Some(root) = util::corpus() {
        for p in [
            "class00/img00000.jpg",
            "class03/img00003.jpg",
            "class07/img00007.jpg",
        ] {
            out.push((p.into(), std::fs::read(root.join(p)).unwrap()));
        }
    }
    out
}

/// A photo-like image: smooth shading, edges and noise.
fn photo(w: u32, h: u32) -> image::RgbImage {
    let mut rng = augloader::rng::rng_for(9, w as u64, h as u64, 0);
    image::RgbImage::from_fn(w, h, |x, y| {
        use rand::Rng;
        let n: i32 = rng.random_range(-12..=12);
        let edge = if (x / 23 + y / 17) % 3 == 0 { 90 } else { 0 };
        let v = |base: i32| (base + edge + n).clamp(0, 255) as u8;
        image::Rgb([
            v((x * 255 / w) as i32),
            v((y * 200 / h) as i32 + 20),
            v(((x + y) % 97) as i32 * 2),
        ])
    })
}

/// JPEGs with restart markers (intervals that do and do not divide the MCU row, 4:2:0, 4:2:2,
/// 4:4:4 and grayscale), which a window decode cuts down to the intervals around it.
fn restart_samples() -> Vec<(String, Vec<u8>)> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor as S};
    let cases = [
        (333, 251, S::F_2_2, 1, false),
        (333, 251, S::F_2_2, 3, false),
        (333, 251, S::F_2_2, 21, false),
        (333, 251, S::F_2_2, 42, false),
        (333, 251, S::F_1_1, 4, false),
        (333, 251, S::F_2_1, 7, false),
        (500, 375, S::F_2_2, 4, false),
        (257, 199, S::F_1_1, 5, true),
    ];
    let mut out = Vec::new();
    for (w, h, sampling, interval, gray) in cases {
        let img = photo(w, h);
        let mut bytes = Vec::new();
        let mut enc = Encoder::new(&mut bytes, 90);
        enc.set_sampling_factor(sampling);
        enc.set_restart_interval(interval);
        if gray {
            let luma = image::DynamicImage::ImageRgb8(img).to_luma8();
            enc.encode(&luma, w as u16, h as u16, ColorType::Luma)
        } else {
            enc.encode(&img, w as u16, h as u16, ColorType::Rgb)
        }
        .unwrap();
        let kind = if gray {
            "gray".into()
        } else {
            format!("{sampling:?}")
        };
        out.push((format!("restart {interval}, {kind}, {w}x{h}"), bytes));
    }
    out
}

/// A random window of a `w` x `h` image.
fn random_window(
    rng: &mut impl rand::Rng,
    w: u32,
    h: u32,
    max_scale: u32,
) -> augloader::decode::Region {
    let (rw, rh) = (rng.random_range(1..=w), rng.random_range(1..=h));
    augloader::decode::Region {
        left: rng.random_range(0..=w - rw),
        top: rng.random_range(0..=h - rh),
        width: rw,
        height: rh,
        max_scale,
    }
}

/// With restart markers, a window decoded at 1/2, 1/4 or 1/8 scale equals the same window of
/// the whole image decoded at that scale.
#[test]
fn restart_cut_windows_equal_the_whole_image_at_every_scale() {
    use augloader::decode::{decode_region, Region};
    let opts = DecodeOptions::default();
    let mut rng = augloader::rng::rng_for(5, 6, 7, 8);
    for (name, bytes) in restart_samples() {
        let (w, h) = augloader::decode::dimensions(&bytes).unwrap();
        for scale in [2, 4, 8] {
            let all = Region {
                left: 0,
                top: 0,
                width: w,
                height: h,
                max_scale: scale,
            };
            let whole = decode_region(&bytes, &opts, Some(all)).unwrap();
            if whole.scale == 1 {
                return; // built without libjpeg-turbo
            }
            assert_eq!((whole.scale, whole.origin), (scale, (0, 0)), "{name}");
            for _ in 0..15 {
                let r = random_window(&mut rng, w, h, scale);
                let d = decode_region(&bytes, &opts, Some(r)).unwrap();
                let (ox, oy) = d.origin;
                assert!(ox <= r.left / scale && oy <= r.top / scale, "{name}: {r:?}");
                let (x1, y1) = (
                    (r.left + r.width).div_ceil(scale),
                    (r.top + r.height).div_ceil(scale),
                );
                assert!(
                    ox + d.image.width() >= x1 && oy + d.image.height() >= y1,
                    "{name}"
                );
                // The window's pixels; the columns decoded beside it may lack a neighbour.
                let (x0, y0) = (r.left / scale, r.top / scale);
                let (x1, y1) = (
                    (r.left + r.width).div_ceil(scale),
                    (r.top + r.height).div_ceil(scale),
                );
                let crop = |img: &image::RgbImage, (dx, dy): (u32, u32)| {
                    image::imageops::crop_imm(img, x0 - dx, y0 - dy, x1 - x0, y1 - y0).to_image()
                };
                assert!(
                    crop(&whole.image, (0, 0)) == crop(&d.image, (ox, oy)),
                    "{name}: scale {scale}, window {r:?}"
                );
            }
        }
    }
}

/// Decoding a window (skipped rows, cropped columns, stopping early) gives exactly the pixels of
/// the full decode.
#[test]
fn region_decoding_equals_full_decode() {
    use augloader::decode::{decode_region, Region};
    let opts = DecodeOptions::default();
    let mut rng = augloader::rng::rng_for(1, 2, 3, 4);
    for (name, bytes) in jpeg_samples() {
        let full = decode_rgb8(&bytes, &opts).unwrap();
        let (w, h) = full.dimensions();
        for k in 0..40 {
            use rand::Rng;
            let rw = rng.random_range(1..=w);
            let rh = rng.random_range(1..=h);
            let r = Region {
                left: if k == 0 {
                    0
                } else {
                    rng.random_range(0..=w - rw)
                },
                top: if k == 1 {
                    0
                } else {
                    rng.random_range(0..=h - rh)
                },
                width: rw,
                height: rh,
                max_scale: 1,
            };
            let d = decode_region(&bytes, &opts, Some(r)).unwrap();
            assert_eq!((d.scale, d.full_size), (1, (w, h)), "{name}");
            let (ox, oy) = d.origin;
            assert!(
                ox <= r.left && oy <= r.top,
                "{name}: origin {:?} for {r:?}",
                d.origin
            );
            assert!(ox + d.image.width() >= r.left + r.width, "{name}: {r:?}");
            assert!(oy + d.image.height() >= r.top + r.height, "{name}: {r:?}");
            for y in r.top..r.top + r.height {
                for x in r.left..r.left + r.width {
                    assert_eq!(
                        d.image.get_pixel(x - ox, y - oy),
                        full.get_pixel(x, y),
                        "{name}: pixel ({x}, {y}) of window {r:?}"
                    );
                }
            }
        }
    }
}

/// Reduced-size DCT decoding: the image is about half (or a quarter) the size and close to a
/// downscaled full decode; with `dct_scaling` off the window comes at full size.
#[test]
fn dct_scaling_halves_and_can_be_turned_off() {
    use augloader::decode::{decode_region, Region};
    let bytes = std::fs::read(fixture("baseline.jpg")).unwrap();
    let whole = |max_scale| Region {
        left: 0,
        top: 0,
        width: 40,
        height: 30,
        max_scale,
    };
    let exact = DecodeOptions {
        dct_scaling: false,
        ..Default::default()
    };
    let d = decode_region(&bytes, &exact, Some(whole(4))).unwrap();
    assert_eq!((d.scale, d.image.dimensions()), (1, (40, 30)));
    let d = decode_region(&bytes, &DecodeOptions::default(), Some(whole(3))).unwrap();
    if d.scale == 1 {
        return; // built without libjpeg-turbo: the full image
    }
    assert_eq!((d.scale, d.image.dimensions()), (2, (20, 15)));
    let reference =
        image::imageops::resize(&gradient(), 20, 15, image::imageops::FilterType::Triangle);
    let m = mad(&d.image, &reference);
    assert!(
        m < 4.0,
        "half-size decode differs by {m} from the halved gradient"
    );
}

/// A truncated JPEG fails whichever window is asked for, even one well above the truncation
/// (so that whether a file fails does not depend on the window an epoch draws).
#[test]
fn truncated_jpeg_fails_for_every_window() {
    use augloader::decode::{decode_region, Region};
    let img = image::RgbImage::from_fn(64, 256, |x, y| image::Rgb([x as u8 * 3, y as u8, 7]));
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    bytes.truncate(bytes.len() * 2 / 3);
    for top in [0, 16, 200] {
        let r = Region {
            left: 0,
            top,
            width: 8,
            height: 2,
            max_scale: 1,
        };
        let e = decode_region(&bytes, &DecodeOptions::default(), Some(r)).unwrap_err();
        assert!(
            matches!(e, DecodeError::Corrupt(_) | DecodeError::Decoder(_)),
            "{e}"
        );
    }
}

/// Restart markers added losslessly: the same pixels as the original, whole or through a window,
/// for baseline, progressive, grayscale and 4:4:4 files; what is not a JPEG is refused.
#[test]
fn added_restart_markers_keep_every_pixel() {
    use augloader::decode::{add_restart_markers, decode_region};
    let opts = DecodeOptions::default();
    let mut rng = augloader::rng::rng_for(4, 3, 2, 1);
    for (name, bytes) in jpeg_samples() {
        let with = match add_restart_markers(&bytes, 4) {
            Err(DecodeError::NoLibjpeg(_)) => return,
            r => r.unwrap_or_else(|e| panic!("{name}: {e}")),
        };
        assert!(with.windows(2).any(|w| w == [0xFF, 0xDD]), "{name}: no DRI");
        let full = decode_rgb8(&bytes, &opts).unwrap();
        assert!(decode_rgb8(&with, &opts).unwrap() == full, "{name}");
        let (w, h) = full.dimensions();
        for _ in 0..20 {
            let r = random_window(&mut rng, w, h, 1);
            let d = decode_region(&with, &opts, Some(r)).unwrap();
            let (ox, oy) = d.origin;
            let window = |img: &image::RgbImage, (dx, dy): (u32, u32)| {
                image::imageops::crop_imm(img, r.left - dx, r.top - dy, r.width, r.height)
                    .to_image()
            };
            assert!(
                window(&d.image, (ox, oy)) == window(&full, (0, 0)),
                "{name}: {r:?}"
            );
        }
    }
    let png = std::fs::read(fixture("rgb.png")).unwrap();
    assert!(matches!(
        add_restart_markers(&png, 4),
        Err(DecodeError::UnsupportedFormat)
    ));
    let bomb = std::fs::read(fixture("bomb.jpg")).unwrap();
    let e = add_restart_markers(&bomb, 4).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");
    let mut cut = std::fs::read(fixture("baseline.jpg")).unwrap();
    cut.truncate(cut.len() / 2);
    cut.extend_from_slice(&[0xFF, 0xD9]);
    let e = add_restart_markers(&cut, 4).unwrap_err();
    assert!(
        matches!(e, DecodeError::Corrupt(_) | DecodeError::Decoder(_)),
        "{e}"
    );
}
