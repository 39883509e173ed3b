//! Properties of the augmentation ops over random inputs and parameters.

use augloader::rng::sample_rng;
use augloader::transform::functional::hflip;
use augloader::transform::functional::random_resized_crop_box;
use augloader::transform::functional::{adjust_brightness, adjust_contrast, adjust_saturation};
use augloader::transform::Cutout;
use augloader::transform::{Geometry, GeometryParams};
use augloader::transform::{Pipeline, Resize, PRESETS};
use image::RgbImage;
use proptest::prelude::*;

fn image(w: u32, h: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(seed),
            (y as u8).wrapping_add(seed),
            ((x ^ y) as u8),
        ])
    })
}

proptest! {
    #[test]
    fn crop_boxes_stay_in_bounds(w in 1u32..2000, h in 1u32..2000, seed in any::<u64>()) {
        let mut rng = sample_rng(seed, 0, 0);
        for g in [
            Geometry::ScaleAug { min: 256, max: 480, size: 224 },
            Geometry::RandomResizedCrop { size: 224, scale: (0.08, 1.0), ratio: (0.75, 4.0 / 3.0) },
            Geometry::ResizeCenterCrop { resize: 256, size: 224 },
            Geometry::PadCrop { pad: 4, size: 32 },
        ] {
            let (bh, bw, b) = match g.sample(&mut rng, w, h) {
                GeometryParams::ResizeCrop { resize, crop } => (resize[0], resize[1], crop),
                GeometryParams::CropResize { crop, .. } => (h, w, crop),
                GeometryParams::PadCrop { pad, crop } => (h + 2 * pad, w + 2 * pad, crop),
                GeometryParams::Identity => unreachable!(),
            };
            let [t, l, ch, cw] = b;
            prop_assert!(ch > 0 && cw > 0 && t + ch <= bh && l + cw <= bw, "{g:?} {b:?} in {bh}x{bw}");
        }
    }

    #[test]
    fn rrc_box_in_bounds_and_fallback_centred(w in 1u32..3000, h in 1u32..3000, seed in any::<u64>()) {
        let mut rng = sample_rng(seed, 1, 2);
        let [t, l, ch, cw] = random_resized_crop_box(&mut rng, h, w, (0.08, 1.0), (0.75, 4.0 / 3.0));
        prop_assert!(ch >= 1 && cw >= 1 && t + ch <= h && l + cw <= w);
        // An impossible scale always falls back to the centred crop.
        let [t, l, ch, cw] = random_resized_crop_box(&mut rng, h, w, (2.0, 3.0), (0.75, 4.0 / 3.0));
        prop_assert_eq!((t, l), ((h - ch) / 2, (w - cw) / 2));
        prop_assert!(ch == h || cw == w);
    }

    #[test]
    fn flip_twice_is_identity(w in 1u32..64, h in 1u32..64, s in any::<u8>()) {
        let src = image(w, h, s);
        let mut x = src.clone();
        hflip(&mut x);
        hflip(&mut x);
        prop_assert_eq!(x, src);
    }

    #[test]
    fn jitter_factor_one_is_identity(w in 1u32..64, h in 1u32..64, s in any::<u8>()) {
        let src = image(w, h, s);
        let mut x = src.clone();
        adjust_brightness(&mut x, 1.0);
        adjust_contrast(&mut x, 1.0);
        adjust_saturation(&mut x, 1.0);
        prop_assert_eq!(x, src);
    }

    #[test]
    fn cutout_is_clipped(w in 1u32..300, h in 1u32..300, len in 1u32..200, holes in 1u32..4, seed in any::<u64>()) {
        let c = Cutout { holes, length: len, fill: [0; 3] };
        let boxes = c.sample(&mut sample_rng(seed, 0, 0), w, h);
        prop_assert_eq!(boxes.len(), holes as usize);
        for [t, l, bh, bw] in boxes {
            prop_assert!(t + bh <= h && l + bw <= w && bh <= len && bw <= len);
        }
    }

    #[test]
    fn presets_give_their_output_size(w in 8u32..700, h in 8u32..700, seed in any::<u64>(), which in 0usize..5) {
        let p = Pipeline::preset(PRESETS[which].name).unwrap();
        let src = image(w, h, seed as u8);
        let params = p.sample(&mut sample_rng(seed, 0, 0), w, h);
        let out = p.apply(&src, &params, &mut Resize::new());
        prop_assert_eq!([out.height(), out.width()], params.output_size);
        if let Some((oh, ow)) = p.output_size() {
            prop_assert_eq!((out.height(), out.width()), (oh, ow));
        }
    }
}

/// The loader decodes only the window the sampled parameters read; with DCT scaling off, every
/// preset's output equals augmenting the fully decoded image (within one grey level: the resize
/// window is the same, expressed relative to a different origin).
#[test]
fn partial_decoding_gives_the_full_decode_result() {
    use augloader::augment_encoded;
    use augloader::decode::{decode_rgb8, DecodeOptions};
    let exact = DecodeOptions {
        dct_scaling: false,
        ..Default::default()
    };
    let mut jpegs = Vec::new();
    for (w, h) in [(500, 375), (333, 500), (260, 700), (48, 48), (37, 45)] {
        let img = image(w, h, 7);
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        jpegs.push(bytes);
    }
    let mut resize = Resize::new();
    for name in PRESETS.map(|p| p.name) {
        for p in [
            Pipeline::preset(name).unwrap(),
            Pipeline::preset(name).unwrap().with_size(64),
            Pipeline::preset(name).unwrap().with_size(32),
        ] {
            for (k, bytes) in jpegs.iter().enumerate() {
                let full = decode_rgb8(bytes, &exact).unwrap();
                for seed in 0..6 {
                    let (got, params) = augment_encoded(
                        bytes,
                        &p,
                        &mut sample_rng(seed, 0, k as u64),
                        &exact,
                        &mut resize,
                    )
                    .unwrap();
                    let want = p.apply(&full, &params, &mut resize);
                    assert_eq!(got.dimensions(), want.dimensions(), "{name}");
                    let worst = got
                        .iter()
                        .zip(want.iter())
                        .map(|(a, b)| a.abs_diff(*b))
                        .max()
                        .unwrap();
                    assert!(
                        worst <= 1,
                        "{name} image {k} seed {seed}: differs by {worst}"
                    );
                }
            }
        }
    }
}

/// A 1 x 2,000,000 image: cifar-train's pad-and-crop makes only its 32 x 32 crop, and a
/// shorter-side resize that would be billions of pixels long is an error, not an allocation.
#[test]
fn extreme_aspect_ratios_end_in_an_image_or_an_error() {
    use augloader::augment_encoded;
    use augloader::decode::{DecodeError, DecodeOptions};
    let thin = image::RgbImage::from_fn(1, 2_000_000, |_, y| image::Rgb([y as u8, 0, 0]));
    let mut png = Vec::new();
    thin.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut rng = augloader::rng::sample_rng(0, 0, 0);
    let opts = DecodeOptions::default();
    let cifar = Pipeline::preset("cifar-train").unwrap();
    let (img, _) = augment_encoded(&png, &cifar, &mut rng, &opts, &mut Resize::new()).unwrap();
    assert_eq!(img.dimensions(), (32, 32));
    let resnet = Pipeline::preset("resnet-train").unwrap();
    let e = augment_encoded(&png, &resnet, &mut rng, &opts, &mut Resize::new()).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");
}
