//! Independent references run in Python: torchvision replays of augmentation parameters.
//! Needs AUGLOADER_PYTHON (a Python with torch and torchvision), which scripts/test.sh provides;
//! with AUGLOADER_REQUIRE_PYTHON=1 a missing Python is a failure, not a skip.

#[path = "../../tests/util/mod.rs"]
mod util;

use std::path::PathBuf;
use std::process::Command;

/// Three corpus photos (or synthetic images when the corpus is absent), each as lossless PNG and
/// as JPEG (decoded by libjpeg-turbo on both sides, through partial decoding here), plus one
/// JPEG twice their size and high-detail JPEGs at 512 and 1400 px, where DCT downscaling may
/// apply. Default flags throughout.
fn inputs(dir: &std::path::Path) -> Vec<PathBuf> {
    let imgs: Vec<image::RgbImage> = match util::corpus() {
        Some(root) => [
            "class00/img00000.jpg",
            "class03/img00003.jpg",
            "class07/img00007.jpg",
        ]
        .iter()
        .filter_map(|p| image::open(root.join(p)).ok().map(|i| i.to_rgb8()))
        .collect(),
        None => Vec::new(),
    };
    let imgs = if imgs.len() == 3 {
        imgs
    } else {
        let synth = dir.join("synth");
        util::synth(&synth, 3, 1, 1, 300, 7);
        let mut classes: Vec<_> = std::fs::read_dir(synth.join("train"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        classes.sort();
        classes
            .iter()
            .map(|c| {
                let f = std::fs::read_dir(c)
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path();
                image::open(f).unwrap().to_rgb8()
            })
            .collect()
    };
    let mut paths = Vec::new();
    for (i, img) in imgs.iter().enumerate() {
        for ext in ["png", "jpg"] {
            let p = dir.join(format!("input{i}.{ext}"));
            img.save(&p).unwrap();
            paths.push(p);
        }
    }
    let big = image::imageops::resize(
        &imgs[0],
        imgs[0].width() * 2,
        imgs[0].height() * 2,
        image::imageops::FilterType::CatmullRom,
    );
    let p = dir.join("input_big.jpg");
    big.save(&p).unwrap();
    paths.push(p);
    // High-detail photos, where decoding at reduced size in the DCT differs most from
    // torchvision's antialiased resize: at 512 px and at 1400 px.
    for (w, h) in [(512, 512), (1400, 934)] {
        let p = dir.join(format!("input_detail{w}.jpg"));
        detailed(&imgs[1], w, h).save(&p).unwrap();
        paths.push(p);
    }
    paths
}

/// `photo` at `w` x `h` with fine detail over it: a zone plate whose frequency rises to the
/// pixel grid's limit, one- and two-pixel checkerboards, text-like one-pixel strokes, and noise.
fn detailed(photo: &image::RgbImage, w: u32, h: u32) -> image::RgbImage {
    use rand::Rng;
    let base = image::imageops::resize(photo, w, h, image::imageops::FilterType::CatmullRom);
    let mut rng = augloader::rng::rng_for(11, 0, 0, w as u64);
    image::RgbImage::from_fn(w, h, |x, y| {
        let b = base.get_pixel(x, y).0;
        let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
        let v = if fx < 0.5 && fy < 0.5 {
            // Zone plate: phase k r^2 with its local frequency reaching 0.5 cycles/px.
            let (dx, dy) = (x as f64 - w as f64 / 4.0, y as f64 - h as f64 / 4.0);
            let k = std::f64::consts::PI / (w as f64 / 2.0);
            128.0 + 120.0 * (k * (dx * dx + dy * dy) / 2.0).cos()
        } else if fx >= 0.5 && fy < 0.5 {
            let period = if fx < 0.75 { 1 } else { 2 };
            if ((x / period) + (y / period)) % 2 == 0 {
                30.0
            } else {
                225.0
            }
        } else if fx < 0.5 {
            // Strokes: short one-pixel bars on a grid of cells, like small print.
            let (cx, cy) = (x % 7, y % 11);
            if (cy == 2 || cy == 8) && cx < 5 || cx == 1 && (2..9).contains(&cy) {
                20.0
            } else {
                b[1] as f64
            }
        } else {
            b[1] as f64 + rng.random_range(-60.0..60.0)
        };
        let mix = |c: u8| (0.3 * c as f64 + 0.7 * v).clamp(0.0, 255.0) as u8;
        image::Rgb([mix(b[0]), mix(b[1]), mix(b[2])])
    })
}

#[test]
fn every_preset_replays_in_torchvision_within_two_grey_levels() {
    let Some(py) = util::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = util::repo().join("tests/replay/torchvision_replay.py");
    let out = Command::new(py)
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_augloader"))
        .arg(dir.path())
        .args(inputs(dir.path()))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "replay failed:\n{stdout}");
    assert!(stdout.contains("worst_mad"));
}
