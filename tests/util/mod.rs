//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::RgbImage;

/// The repository's root (the workspace's folder, which holds Cargo.lock), whichever member's
/// tests include this file.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("Cargo.lock").is_file())
        .expect("the workspace root")
}

/// tests/data/NAME
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/data").join(name)
}

/// The 40x30 gradient every decode fixture was made from (tests/data/make_fixtures.py).
pub fn gradient() -> RgbImage {
    RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, ((x + y) * 3) as u8])
    })
}

/// Mean absolute difference of two equally sized images.
pub fn mad(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}

/// Writes a small ImageFolder: `classes` folders of `per_class` JPEGs of `size` px.
pub fn tiny_folder(root: &Path, classes: usize, per_class: usize, size: u32) {
    for c in 0..classes {
        let dir = root.join(format!("c{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let img = RgbImage::from_fn(size + i as u32, size, |x, y| {
                image::Rgb([(x * 5 + c as u32 * 40) as u8, (y * 7 + i as u32) as u8, 99])
            });
            img.save(dir.join(format!("{i:03}.jpg"))).unwrap();
        }
    }
}

/// The shared real-photo benchmark corpus, when present.
pub fn corpus() -> Option<PathBuf> {
    let p = repo().join("../shared/bench/corpus");
    p.is_dir().then_some(p)
}

/// The Python with torch and torchvision that the reference checks run (AUGLOADER_PYTHON, set by
/// scripts/test.sh), or None to skip them; with AUGLOADER_REQUIRE_PYTHON set, a missing Python
/// fails the test instead.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("AUGLOADER_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("AUGLOADER_REQUIRE_PYTHON").is_some() => {
            panic!("AUGLOADER_REQUIRE_PYTHON is set but AUGLOADER_PYTHON is not")
        }
        None => {
            eprintln!(
                "AUGLOADER_PYTHON not set: torchvision reference skipped (scripts/test.sh sets it)"
            );
            None
        }
    }
}

/// Runs the command; asserts it succeeded and returns its stdout, trimmed.
pub fn ok(c: &mut std::process::Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The `augloader` binary: the CLI package's own tests get it from Cargo; the library's tests
/// (which need it only to write datasets) from AUGLOADER_BIN or the workspace's target folder.
pub fn bin() -> PathBuf {
    if let Some(b) = option_env!("CARGO_BIN_EXE_augloader") {
        return PathBuf::from(b);
    }
    std::env::var_os("AUGLOADER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/debug/augloader"))
}

/// Writes a synthetic ImageFolder (DIR/train, DIR/val) with `augloader synth`.
pub fn synth(dir: &Path, classes: usize, train: usize, val: usize, size: u32, seed: u64) {
    ok(std::process::Command::new(bin())
        .arg("synth")
        .arg("--out")
        .arg(dir)
        .args(["--classes", &classes.to_string()])
        .args(["--train-per-class", &train.to_string()])
        .args(["--val-per-class", &val.to_string()])
        .args(["--size", &size.to_string(), "--seed", &seed.to_string()]));
}
