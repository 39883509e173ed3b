//! Decoding of every supported format, and of every kind of bad input.

mod util;

use augloader::{decode_rgb8, DecodeError, DecodeOptions};
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
    assert!(matches!(
        decode("image.tiff"),
        Err(DecodeError::UnsupportedFormat)
    ));
    for name in ["truncated.jpg", "truncated.png", "corrupt.png"] {
        assert!(
            matches!(decode(name), Err(DecodeError::Corrupt(_))),
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
    let small = DecodeOptions { max_pixels: 1000 };
    assert!(matches!(
        decode_rgb8(&bytes, &small),
        Err(DecodeError::TooLarge { .. })
    ));
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
            let _ = decode_rgb8(&bytes, &DecodeOptions { max_pixels: 1 << 22 });
            let _ = decode_rgb8(&random, &DecodeOptions::default());
        }
    }
}
