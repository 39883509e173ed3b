//! Criterion benchmarks per op and for whole pipelines on one deterministic 500x375 photo-like
//! image (a corpus photo when ../shared/bench/corpus exists, else a synthetic image).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use image::RgbImage;

use augloader::augment_encoded;
use augloader::decode::{decode_rgb8, DecodeOptions};
use augloader::rng::sample_rng;
use augloader::transform::functional::apply_color;
use augloader::transform::functional::apply_cutout;
use augloader::transform::functional::apply_geometry;
use augloader::transform::functional::hflip;
use augloader::transform::functional::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, apply_lighting,
};
use augloader::transform::Cutout;
use augloader::transform::Geometry;
use augloader::transform::{ColorJitter, Lighting};
use augloader::transform::{Normalize, Pipeline, Resize};
use augloader::{Batch, Dtype};

fn input() -> (Vec<u8>, RgbImage) {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/bench/corpus/class00/img00000.jpg");
    let bytes = std::fs::read(corpus).unwrap_or_else(|_| {
        // Without the corpus: a textured 448 px image (smooth gradients with fine detail).
        let img = RgbImage::from_fn(448, 448, |x, y| {
            let t = ((x * 7 + y * 13) % 64) as u8;
            image::Rgb([
                (x / 2) as u8 ^ t,
                (y / 2) as u8,
                ((x + y) / 4) as u8 ^ (t / 2),
            ])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    });
    let img = decode_rgb8(&bytes, &DecodeOptions::default()).unwrap();
    (bytes, img)
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn ops(c: &mut Criterion) {
    let (bytes, img) = input();
    let mut g = c.benchmark_group("op");
    g.throughput(Throughput::Elements(1));
    geometry_ops(&mut g, &bytes, &img);
    let crop = Resize::new().resize_crop(&img, 298, 224, [0, 37, 224, 224]);
    pixel_ops(&mut g, &crop);
    policy_ops(&mut g, &crop);
    g.finish();
    pipelines(c, &bytes);
}

/// Decoding and the geometry stage on the input photo.
fn geometry_ops(g: &mut Group, bytes: &[u8], img: &RgbImage) {
    g.bench_function("decode_jpeg", |b| {
        b.iter(|| decode_rgb8(black_box(bytes), &DecodeOptions::default()).unwrap())
    });
    let mut resize = Resize::new();
    for (name, geom) in [
        (
            "scale_aug_crop",
            Geometry::ScaleAug {
                min: 256,
                max: 480,
                size: 224,
            },
        ),
        (
            "random_resized_crop",
            Geometry::RandomResizedCrop {
                size: 224,
                scale: (0.08, 1.0),
                ratio: (0.75, 4.0 / 3.0),
            },
        ),
        (
            "resize_center_crop",
            Geometry::ResizeCenterCrop {
                resize: 256,
                size: 224,
            },
        ),
    ] {
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let p = geom.sample(&mut sample_rng(0, 0, i), img.width(), img.height());
                apply_geometry(img, &p, &mut resize)
            })
        });
    }
}

/// Every policy op (torchvision's names) on the 224x224 crop, at a mid magnitude, nearest.
fn policy_ops(g: &mut Group, crop: &RgbImage) {
    use augloader::transform::functional::apply_op;
    use augloader::transform::{Interpolation, OpName, PolicyOp};
    let ops = [
        (OpName::ShearX, Some(0.3)),
        (OpName::TranslateX, Some(20.0)),
        (OpName::Rotate, Some(25.0)),
        (OpName::Brightness, Some(0.4)),
        (OpName::Color, Some(0.4)),
        (OpName::Contrast, Some(0.4)),
        (OpName::Sharpness, Some(0.4)),
        (OpName::Posterize, Some(4.0)),
        (OpName::Solarize, Some(0.5)),
        (OpName::AutoContrast, None),
        (OpName::Equalize, None),
        (OpName::Invert, None),
    ];
    for (op, magnitude) in ops {
        let step = PolicyOp { op, magnitude };
        for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
            if interp == Interpolation::Bilinear && !matches!(op, OpName::ShearX | OpName::Rotate) {
                continue;
            }
            g.bench_function(format!("policy_{op:?}_{interp:?}"), |b| {
                b.iter(|| apply_op(crop.clone(), &step, interp, None))
            });
        }
    }
}

/// Pixel ops on a 224x224 crop, and collation.
fn pixel_ops(g: &mut Group, crop: &RgbImage) {
    // In-place ops on a fresh copy of the 224x224 crop each iteration.
    type InPlace = fn(&mut RgbImage);
    let in_place: [(&str, InPlace); 5] = [
        ("hflip", hflip),
        ("brightness", |x| adjust_brightness(x, 1.3)),
        ("contrast", |x| adjust_contrast(x, 0.7)),
        ("saturation", |x| adjust_saturation(x, 1.2)),
        ("hue", |x| adjust_hue(x, 0.1)),
    ];
    for (name, op) in in_place {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut x = crop.clone();
                op(&mut x);
                x
            })
        });
    }
    let lp = Lighting::imagenet(0.1).sample(&mut sample_rng(0, 0, 0));
    g.bench_function("lighting", |b| {
        b.iter(|| {
            let mut x = crop.clone();
            apply_lighting(&mut x, &lp);
            x
        })
    });
    let jitter = ColorJitter::bcs(0.4);
    let mut i = 0u64;
    g.bench_function("color_fused_jitter_lighting", |b| {
        b.iter(|| {
            i += 1;
            let mut rng = sample_rng(0, 0, i);
            let (j, l) = (
                jitter.sample(&mut rng),
                Lighting::imagenet(0.1).sample(&mut rng),
            );
            let mut x = crop.clone();
            apply_color(&mut x, Some(&j), Some(&l));
            x
        })
    });
    let boxes = Cutout {
        holes: 1,
        length: 112,
        fill: [124, 116, 104],
    }
    .sample(&mut sample_rng(0, 0, 0), 224, 224);
    g.bench_function("cutout", |b| {
        b.iter(|| {
            let mut x = crop.clone();
            apply_cutout(&mut x, &boxes, [0; 3]);
            x
        })
    });
    let batch: Vec<RgbImage> = (0..32).map(|_| crop.clone()).collect();
    g.bench_function("collate_u8_batch_of_32", |b| {
        b.iter(|| {
            Batch::collate(
                &batch,
                vec![0; 32],
                vec![0; 32],
                Dtype::U8,
                Normalize::IMAGENET,
            )
        })
    });
}

/// Whole pipelines from the encoded photo, as the loader runs them.
fn pipelines(c: &mut Criterion, bytes: &[u8]) {
    let mut resize = Resize::new();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    for name in ["resnet-train", "inception-train", "eval"] {
        let p = Pipeline::preset(name).unwrap();
        let mut i = 0u64;
        g.bench_function(name, |b| {
            // As the loader does: sample from the header, decode the window, augment.
            b.iter(|| {
                i += 1;
                let mut rng = sample_rng(0, 0, i);
                augment_encoded(bytes, &p, &mut rng, &DecodeOptions::default(), &mut resize)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = ops
}
criterion_main!(benches);
