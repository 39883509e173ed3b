//! A deterministic, procedurally generated ImageFolder whose classes are shapes and textures at
//! random positions, scales, colours and orientations on cluttered backgrounds, so a model must
//! learn those invariances (and augmentation helps it do so).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_polygon_mut};
use imageproc::point::Point;
use rand::Rng;
use rayon::prelude::*;

use augloader::rng::{rng_for, stream, SampleRng};

use super::ranges;

#[derive(Args)]
pub struct SynthArgs {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Number of classes (first class + classes at most 12).
    #[arg(long, default_value_t = 10, value_parser = ranges::count)]
    classes: usize,
    /// The first class of the list (0: circle); datasets with other classes for transfer.
    #[arg(long, default_value_t = 0, value_parser = ranges::index_to::<11>)]
    first_class: usize,
    /// Training images per class.
    #[arg(long, default_value_t = 300, value_parser = ranges::count)]
    train_per_class: usize,
    /// Validation images per class.
    #[arg(long, default_value_t = 60, value_parser = ranges::count)]
    val_per_class: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64, value_parser = ranges::side)]
    size: u32,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Names of the synthetic classes; the first `classes` of them are used.
pub const CLASS_NAMES: [&str; 12] = [
    "circle", "ring", "square", "triangle", "cross", "star", "hexagon", "pair", "stripes",
    "checker", "crescent", "bar",
];

/// Settings of a synthetic dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Number of classes (first class + classes at most 12). By default 10.
    pub classes: usize,
    /// The first of [`CLASS_NAMES`] used. By default 0.
    pub first_class: usize,
    /// Training images per class. By default 300.
    pub train_per_class: usize,
    /// Validation images per class. By default 60.
    pub val_per_class: usize,
    /// Image side in pixels. By default 64.
    pub size: u32,
    /// Seed. By default 0.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            classes: 10,
            first_class: 0,
            train_per_class: 300,
            val_per_class: 60,
            size: 64,
            seed: 0,
        }
    }
}

/// Errors writing a synthetic dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// Bad settings.
    #[error("invalid synthetic dataset settings: {0}")]
    Invalid(String),
    /// Writing a file failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

fn rand_colour(rng: &mut SampleRng) -> [f32; 3] {
    [0; 3].map(|_| rng.random_range(0.0..255.0f32))
}

fn far_colour(rng: &mut SampleRng, from: [f32; 3]) -> [f32; 3] {
    loop {
        let c = rand_colour(rng);
        let d: f32 = c.iter().zip(from).map(|(a, b)| (a - b).abs()).sum();
        if d > 180.0 {
            return c;
        }
    }
}

fn rgb(c: [f32; 3]) -> Rgb<u8> {
    Rgb(c.map(|v| v.clamp(0.0, 255.0) as u8))
}

fn polygon(cx: f32, cy: f32, radii: &[f32], angle: f32) -> Vec<Point<i32>> {
    let n = radii.len();
    let mut pts: Vec<Point<i32>> = radii
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let a = angle + i as f32 * std::f32::consts::TAU / n as f32;
            Point::new(
                (cx + r * a.cos()).round() as i32,
                (cy + r * a.sin()).round() as i32,
            )
        })
        .collect();
    pts.dedup();
    while pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    pts
}

fn fill_poly(img: &mut RgbImage, pts: &[Point<i32>], c: Rgb<u8>) {
    if pts.len() >= 3 {
        draw_polygon_mut(img, pts, c);
    }
}

/// Draws one image of class `label` from its own RNG stream.
pub fn render(label: usize, size: u32, rng: &mut SampleRng) -> RgbImage {
    let (mut img, mid) = background(size, rng);
    let s = size as f32;
    let fg = far_colour(rng, mid);
    let r = s * rng.random_range(0.16..0.32f32);
    let cx = rng.random_range(r..s - r);
    let cy = rng.random_range(r..s - r);
    let angle = rng.random_range(0.0..std::f32::consts::TAU);
    let shape = Shape {
        cx,
        cy,
        r,
        angle,
        fg,
    };
    draw_shape(&mut img, CLASS_NAMES[label], &shape, rng);
    img
}

/// A noisy two-colour gradient with a few small blobs in random colours (distractors); also
/// the mean of the two colours.
fn background(size: u32, rng: &mut SampleRng) -> (RgbImage, [f32; 3]) {
    let s = size as f32;
    let bg0 = rand_colour(rng);
    let bg1 = rand_colour(rng);
    let gdir = rng.random_range(0.0..std::f32::consts::TAU);
    let noise = rng.random_range(5.0..30.0f32);
    let mut img = RgbImage::from_fn(size, size, |x, y| {
        let t = ((x as f32 * gdir.cos() + y as f32 * gdir.sin()) / s * 0.5 + 0.5).clamp(0.0, 1.0);
        rgb([0, 1, 2].map(|c| bg0[c] * (1.0 - t) + bg1[c] * t))
    });
    for px in img.pixels_mut() {
        for v in px.0.iter_mut() {
            *v = (*v as f32 + rng.random_range(-noise..noise)).clamp(0.0, 255.0) as u8;
        }
    }
    for _ in 0..rng.random_range(0..4) {
        let c = rgb(rand_colour(rng));
        let (x, y) = (
            rng.random_range(0..size) as i32,
            rng.random_range(0..size) as i32,
        );
        let radius = rng.random_range(1..=(size / 16).max(1)) as i32;
        draw_filled_circle_mut(&mut img, (x, y), radius, c);
    }
    (img, [0, 1, 2].map(|c| (bg0[c] + bg1[c]) / 2.0))
}

/// Where and how a class's shape is drawn.
struct Shape {
    cx: f32,
    cy: f32,
    r: f32,
    angle: f32,
    fg: [f32; 3],
}

/// Draws the shape of class `name`.
fn draw_shape(img: &mut RgbImage, name: &str, sh: &Shape, rng: &mut SampleRng) {
    let Shape {
        cx,
        cy,
        r,
        angle,
        fg,
    } = *sh;
    let fgc = rgb(fg);
    let (ci, cyi, ri) = (cx.round() as i32, cy.round() as i32, r.round() as i32);
    match name {
        "circle" => draw_filled_circle_mut(img, (ci, cyi), ri, fgc),
        "ring" => {
            draw_filled_circle_mut(img, (ci, cyi), ri, fgc);
            let inner = img.get_pixel(0, 0).to_owned();
            draw_filled_circle_mut(img, (ci, cyi), (r * 0.55).round() as i32, inner);
        }
        "square" => fill_poly(img, &polygon(cx, cy, &[r; 4], angle), fgc),
        "triangle" => fill_poly(img, &polygon(cx, cy, &[r; 3], angle), fgc),
        "hexagon" => fill_poly(img, &polygon(cx, cy, &[r; 6], angle), fgc),
        "star" => {
            let radii: Vec<f32> = (0..10)
                .map(|i| if i % 2 == 0 { r } else { r * 0.4 })
                .collect();
            fill_poly(img, &polygon(cx, cy, &radii, angle), fgc)
        }
        "cross" => draw_bars(img, sh, &[0.0, 1.0]),
        "bar" => draw_bars(img, sh, &[0.0]),
        "pair" => {
            let (dx, dy) = (angle.cos() * r * 0.6, angle.sin() * r * 0.6);
            let rr = (r * 0.4).round() as i32;
            draw_filled_circle_mut(img, ((cx - dx) as i32, (cy - dy) as i32), rr, fgc);
            draw_filled_circle_mut(img, ((cx + dx) as i32, (cy + dy) as i32), rr, fgc);
        }
        "crescent" => {
            draw_filled_circle_mut(img, (ci, cyi), ri, fgc);
            let bgc = *img.get_pixel(0, 0);
            let (dx, dy) = (angle.cos() * r * 0.45, angle.sin() * r * 0.45);
            let centre = ((cx + dx) as i32, (cy + dy) as i32);
            draw_filled_circle_mut(img, centre, (r * 0.85) as i32, bgc);
        }
        "stripes" => draw_pattern(img, sh, false, rng),
        "checker" => draw_pattern(img, sh, true, rng),
        _ => unreachable!("label checked against CLASS_NAMES"),
    }
}

/// Bars through the centre, one per entry of `arms` (quarter turns from the shape's angle).
fn draw_bars(img: &mut RgbImage, sh: &Shape, arms: &[f32]) {
    let Shape {
        cx,
        cy,
        r,
        angle,
        fg,
    } = *sh;
    let w = r * 0.3;
    for k in arms {
        let a = angle + k * std::f32::consts::FRAC_PI_2;
        let (dx, dy) = (a.cos(), a.sin());
        let (px, py) = (-dy * w, dx * w);
        let pts = [
            (cx - dx * r + px, cy - dy * r + py),
            (cx + dx * r + px, cy + dy * r + py),
            (cx + dx * r - px, cy + dy * r - py),
            (cx - dx * r - px, cy - dy * r - py),
        ]
        .map(|(x, y)| Point::new(x.round() as i32, y.round() as i32));
        fill_poly(img, &pts, rgb(fg));
    }
}

/// Stripes (or a checkerboard) in two colours over the shape's square.
fn draw_pattern(img: &mut RgbImage, sh: &Shape, checker: bool, rng: &mut SampleRng) {
    let Shape {
        cx,
        cy,
        r,
        angle,
        fg,
    } = *sh;
    let period = r * rng.random_range(0.35..0.6f32);
    let (fgc, other) = (rgb(fg), rgb(far_colour(rng, fg)));
    let (ca, sa) = (angle.cos(), angle.sin());
    let (w, h) = img.dimensions();
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 - cx, y as f32 - cy);
            if fx.abs().max(fy.abs()) > r {
                continue;
            }
            let u = ((fx * ca + fy * sa) / period).floor() as i32;
            let v = ((-fx * sa + fy * ca) / period).floor() as i32;
            let on = if checker {
                (u + v).rem_euclid(2) == 0
            } else {
                u.rem_euclid(2) == 0
            };
            img.put_pixel(x, y, if on { fgc } else { other });
        }
    }
}

/// Writes DIR/train and DIR/val ImageFolders of JPEGs (quality 90). Deterministic for a config.
pub fn generate(out: &Path, cfg: &SynthConfig) -> Result<(), SynthError> {
    if cfg.classes == 0 || cfg.first_class.saturating_add(cfg.classes) > CLASS_NAMES.len() {
        return Err(SynthError::Invalid(format!(
            "first class + classes must be 1..={}, got {} + {}",
            CLASS_NAMES.len(),
            cfg.first_class,
            cfg.classes
        )));
    }
    if cfg.size < 16 || cfg.size > 4096 {
        return Err(SynthError::Invalid(format!(
            "size must be 16..=4096, got {}",
            cfg.size
        )));
    }
    let mut jobs = Vec::new();
    for (split, per, salt) in [
        ("train", cfg.train_per_class, 0u64),
        ("val", cfg.val_per_class, 1),
    ] {
        let classes = CLASS_NAMES.iter().enumerate().skip(cfg.first_class);
        for (c, name) in classes.take(cfg.classes) {
            let dir = out.join(split).join(format!("{c:02}_{name}"));
            std::fs::create_dir_all(&dir).map_err(|e| SynthError::Io {
                path: dir.clone(),
                cause: e,
            })?;
            for i in 0..per {
                jobs.push((dir.join(format!("{i:05}.jpg")), c, salt, i as u64));
            }
        }
    }
    jobs.par_iter().try_for_each(|(path, c, salt, i)| {
        let mut rng = rng_for(cfg.seed, stream::SYNTH, *salt * 1000 + *c as u64, *i);
        let img = render(*c, cfg.size, &mut rng);
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&img)
            .expect("encoding into memory");
        std::fs::write(path, bytes).map_err(|e| SynthError::Io {
            path: path.clone(),
            cause: e,
        })
    })
}

/// The default dataset, generated on first use into `cache` (e.g. ~/.cache/augloader/synth-v1).
/// A `.complete` marker makes a half-written folder regenerate.
pub fn ensure_default(cache: &Path) -> Result<PathBuf, SynthError> {
    ensure(cache, &SynthConfig::default())
}

/// The dataset of `cfg`, generated on first use into `cache`: under a lock beside it, into a
/// temporary folder renamed when complete, so that processes started together all get it.
pub fn ensure(cache: &Path, cfg: &SynthConfig) -> Result<PathBuf, SynthError> {
    let marker = cache.join(".complete");
    if marker.exists() {
        return Ok(cache.to_path_buf());
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| SynthError::Io { path, cause }
    };
    let parent = cache.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let lock_path = cache.with_extension("lock");
    let _lock = augloader::output::lock(&lock_path, true)
        .map_err(io(&lock_path))?
        .expect("a waiting lock is taken");
    if marker.exists() {
        return Ok(cache.to_path_buf()); // another process made it while this one waited
    }
    crate::out::note!(
        "augloader: generating a synthetic dataset into {}",
        cache.display()
    );
    let name = cache.file_name().unwrap_or_default().to_string_lossy();
    augloader::output::remove_stale(parent, &format!(".{name}.tmp"), "");
    let staging = augloader::output::temporary(cache);
    let _ = std::fs::remove_dir_all(&staging);
    generate(&staging, cfg)?;
    std::fs::write(staging.join(".complete"), b"").map_err(io(&staging))?;
    let _ = std::fs::remove_dir_all(cache);
    std::fs::rename(&staging, cache).map_err(io(cache))?;
    Ok(cache.to_path_buf())
}

/// Where cached data lives: $AUGLOADER_CACHE, else $XDG_CACHE_HOME/augloader, else ~/.cache/augloader.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("AUGLOADER_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("augloader");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("augloader")
}

/// The default dataset's folder, generated if missing.
pub fn default_dataset() -> Result<PathBuf, SynthError> {
    ensure_default(&cache_dir().join("synth-v1"))
}

/// Runs the command.
pub fn run(a: SynthArgs) -> Result<()> {
    let cfg = SynthConfig {
        classes: a.classes,
        first_class: a.first_class,
        train_per_class: a.train_per_class,
        val_per_class: a.val_per_class,
        size: a.size,
        seed: a.seed,
    };
    generate(&a.out, &cfg)?;
    crate::out::out!(
        "wrote {} training and {} validation images of {} classes to {}",
        cfg.classes * cfg.train_per_class,
        cfg.classes * cfg.val_per_class,
        cfg.classes,
        a.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_deterministic_and_classes_differ() {
        let a = render(3, 48, &mut rng_for(1, stream::SYNTH, 0, 5));
        let b = render(3, 48, &mut rng_for(1, stream::SYNTH, 0, 5));
        assert_eq!(a, b);
        for c in 0..CLASS_NAMES.len() {
            let img = render(c, 48, &mut rng_for(1, stream::SYNTH, c as u64, 0));
            assert_eq!(img.dimensions(), (48, 48));
        }
    }
}
