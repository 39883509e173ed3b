//! Independent references run in Python: torchvision replays of augmentation parameters.
//! Needs AUGLOADER_PYTHON (a Python with torch and torchvision), which scripts/test.sh provides;
//! with AUGLOADER_REQUIRE_PYTHON=1 a missing Python is a failure, not a skip.

mod util;

use std::path::PathBuf;
use std::process::Command;

/// Three corpus photos (or synthetic images when the corpus is absent), each as lossless PNG and
/// as JPEG (decoded by libjpeg-turbo on both sides, through partial decoding here), plus one
/// JPEG twice their size, where DCT downscaling applies.
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
        (0..3)
            .map(|i| {
                augloader::synth::render(i, 300, &mut augloader::rng::rng_for(7, 3, 0, i as u64))
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
    paths
}

#[test]
fn every_preset_replays_in_torchvision_within_two_grey_levels() {
    let Some(py) = util::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/replay/torchvision_replay.py");
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
