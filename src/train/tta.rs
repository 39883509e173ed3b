//! Test-time augmentation: centre crop, flip, five/ten crop, and multi-scale evaluation in the
//! fully-convolutional form (whole image at each scale, adaptive pooling) or the multi-crop form
//! (ten crops at each scale), aggregated by mean softmax probability (default) or mean logit.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;
use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use super::trainer::TrainError;
use crate::batch::normalize_u8;
use crate::decode::DecodeOptions;
use crate::loader::{augment_sample, load_image, LoadError};
use crate::observe::{Event, Observer};
use crate::rng::sample_rng;
use crate::source::Source;
use crate::transform::crop::{five_crop_boxes, pad_image};
use crate::transform::flip::hflip;
use crate::transform::resize::{crop_image, shorter_side_size};
use crate::transform::{Geometry, Normalize, Pipeline, Resize};

/// Which views of each image are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TtaMode {
    /// Resize + centre crop.
    None,
    /// Centre crop and its mirror.
    Flip,
    /// Four corners and centre.
    FiveCrop,
    /// Five crops and their mirrors.
    TenCrop,
    /// The whole image, shorter side at each scale (fully convolutional), and its mirror.
    Multiscale,
    /// Ten crops at each scale.
    MultiscaleTenCrop,
}

/// Every mode: name (as the command line takes it) and what it evaluates. Parsing, names and
/// `--help` read this table.
pub const TTA_MODES: [(TtaMode, &str, &str); 6] = [
    (TtaMode::None, "none", "the validation view of training"),
    (TtaMode::Flip, "flip", "that view and its mirror"),
    (TtaMode::FiveCrop, "5crop", "four corners and the centre"),
    (TtaMode::TenCrop, "10crop", "five crops and their mirrors"),
    (
        TtaMode::Multiscale,
        "multiscale",
        "the whole image at each scale, and mirrors",
    ),
    (
        TtaMode::MultiscaleTenCrop,
        "multiscale-10crop",
        "ten crops at each scale",
    ),
];

impl TtaMode {
    /// Parses a name of [`TTA_MODES`].
    pub fn parse(s: &str) -> Option<Self> {
        TTA_MODES.iter().find(|m| m.1 == s).map(|m| m.0)
    }

    /// The name in [`TTA_MODES`].
    pub fn name(self) -> &'static str {
        TTA_MODES
            .iter()
            .find(|m| m.0 == self)
            .map_or("none", |m| m.1)
    }
}

/// View settings.
#[derive(Clone, Debug)]
pub struct TtaConfig {
    /// Views.
    pub mode: TtaMode,
    /// The single view of `none` (and the unflipped one of `flip`): the validation pipeline,
    /// applied exactly as during training's validation. Its normalisation is the network's.
    pub base: Pipeline,
    /// Shorter side before cropping (the crop modes).
    pub resize: u32,
    /// Crop side.
    pub crop: u32,
    /// For models trained with pad-and-crop: the crop modes translate the image at its own size
    /// by this many pixels (zero fill) instead of cropping a resized image.
    pub shift: Option<u32>,
    /// Shorter sides for the multi-scale modes.
    pub scales: Vec<u32>,
    /// Average logits instead of softmax probabilities.
    pub mean_logits: bool,
}

impl TtaConfig {
    /// Views of `mode` drawn from what a model trained with `train` and validated with `val` has
    /// seen: the validation view; crops at a scale inside the trained range (scale
    /// augmentation), or translations within the trained padding (pad-and-crop); multi-scale
    /// views at scales inside the trained range.
    pub fn from_training(mode: TtaMode, train: &Pipeline, val: &Pipeline) -> TtaConfig {
        let crop = val
            .output_size()
            .or(train.output_size())
            .map_or(224, |(h, _)| h);
        let val_resize = match val.geometry {
            Geometry::ResizeCenterCrop { resize, .. } => resize,
            _ => crop,
        };
        let scaled = |f: f64| (val_resize as f64 * f).round() as u32;
        let (resize, shift, mut scales) = match train.geometry {
            Geometry::ScaleAug { min, max, .. } => (
                val_resize.clamp(min, max),
                None,
                vec![min, (min + max) / 2, max],
            ),
            Geometry::RandomResizedCrop { size, scale, .. } => {
                // The smallest crops (scale.0 of the area) were enlarged 1/sqrt(scale.0) times.
                let top = (size as f64 / scale.0.max(1e-3).sqrt()).floor() as u32;
                let s = [1.0, 1.25, 1.5].map(|f| scaled(f).clamp(size, top.max(size)));
                (val_resize, None, s.to_vec())
            }
            Geometry::PadCrop { pad, .. } => (crop, Some(pad.div_ceil(2).max(1)), vec![crop]),
            _ => (val_resize, None, vec![val_resize]),
        };
        scales.dedup();
        TtaConfig {
            mode,
            base: val.clone(),
            resize,
            crop,
            shift,
            scales,
            mean_logits: false,
        }
    }
}

/// The five crops (corners and centre) of `r`: `c` x `c` boxes, or with `shift`, translations
/// of the whole image by that many pixels.
fn five(r: &RgbImage, c: u32, shift: Option<u32>) -> Vec<RgbImage> {
    match shift {
        Some(t) => {
            let p = pad_image(r, t);
            five_crop_boxes(p.height(), p.width(), r.height(), r.width())
                .iter()
                .map(|b| crop_image(&p, *b))
                .collect()
        }
        None => five_crop_boxes(r.height(), r.width(), c, c)
            .iter()
            .map(|b| crop_image(r, *b))
            .collect(),
    }
}

/// The views of one image for `cfg`, grouped by size: every group's images share one size, so
/// each group is one batch through the network.
pub fn views(img: &RgbImage, cfg: &TtaConfig, resize: &mut Resize) -> Vec<Vec<RgbImage>> {
    let c = cfg.crop;
    let at = |s: u32, resize: &mut Resize| {
        let (w, h) = shorter_side_size(img.width(), img.height(), s);
        if (w, h) == img.dimensions() {
            img.clone()
        } else {
            resize.resize(img, w, h)
        }
    };
    let ten = |r: &RgbImage| -> Vec<RgbImage> {
        let mut m = r.clone();
        hflip(&mut m);
        let mut out = five(r, c, cfg.shift);
        out.extend(five(&m, c, cfg.shift));
        out
    };
    let crop_scale = |resize: &mut Resize| match cfg.shift {
        Some(_) => img.clone(),
        None => at(cfg.resize, resize),
    };
    match cfg.mode {
        TtaMode::None | TtaMode::Flip => {
            let p = cfg
                .base
                .sample(&mut sample_rng(0, 0, 0), img.width(), img.height());
            let centre = cfg.base.apply(img, &p, resize);
            vec![with_mirror(centre, cfg.mode == TtaMode::Flip)]
        }
        TtaMode::FiveCrop => vec![five(&crop_scale(resize), c, cfg.shift)],
        TtaMode::TenCrop => vec![ten(&crop_scale(resize))],
        TtaMode::Multiscale => cfg
            .scales
            .iter()
            .map(|&s| with_mirror(at(s, resize), true))
            .collect(),
        TtaMode::MultiscaleTenCrop => cfg
            .scales
            .iter()
            .map(|&s| ten(&at(if cfg.shift.is_some() { s } else { s.max(c) }, resize)))
            .collect(),
    }
}

/// `[v]`, or `[v, mirror of v]`.
fn with_mirror(v: RgbImage, mirror: bool) -> Vec<RgbImage> {
    let mut out = vec![v];
    if mirror {
        let mut f = out[0].clone();
        hflip(&mut f);
        out.push(f);
    }
    out
}

/// The views of sample `i`: the single-view modes go through the loader's own path (window
/// decoding included), so `none` sees exactly what training's validation saw.
fn sample_views(
    source: &dyn Source,
    i: usize,
    cfg: &TtaConfig,
    opts: &DecodeOptions,
    resize: &mut Resize,
) -> Result<Vec<Vec<RgbImage>>, LoadError> {
    match cfg.mode {
        TtaMode::None | TtaMode::Flip => {
            let (v, _) = augment_sample(source, &cfg.base, 0, 0, i, opts, resize)?;
            Ok(vec![with_mirror(v, cfg.mode == TtaMode::Flip)])
        }
        _ => Ok(views(&load_image(source, i, opts)?, cfg, resize)),
    }
}

/// Views per forward pass at most (bounds memory whatever the chunk and mode).
const VIEW_BATCH: usize = 64;

/// Number of views per image.
pub fn views_per_image(cfg: &TtaConfig) -> usize {
    match cfg.mode {
        TtaMode::None => 1,
        TtaMode::Flip => 2,
        TtaMode::FiveCrop => 5,
        TtaMode::TenCrop => 10,
        TtaMode::Multiscale => 2 * cfg.scales.len(),
        TtaMode::MultiscaleTenCrop => 10 * cfg.scales.len(),
    }
}

/// Summary of an evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct TtaReport {
    /// Mode name.
    pub tta: String,
    /// Views per image.
    pub views_per_image: usize,
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy.
    pub top5: f64,
    /// Wall time.
    pub seconds: f64,
    /// images / seconds.
    pub images_per_sec: f64,
}

/// Views of one size as a normalised [N, 3, H, W] tensor on `device`, normalised there as the
/// trainer's batches are.
fn to_tensor(imgs: &[&RgbImage], n: &Normalize, device: Device) -> Tensor {
    let (h, w) = (imgs[0].height() as i64, imgs[0].width() as i64);
    let plane = (h * w) as usize;
    let mut buf = vec![0u8; imgs.len() * plane * 3];
    for (img, dst) in imgs.iter().zip(buf.chunks_exact_mut(plane * 3)) {
        for (p, px) in img.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                dst[c * plane + p] = px[c];
            }
        }
    }
    let x = Tensor::from_slice(&buf)
        .view([imgs.len() as i64, 3, h, w])
        .to_device(device);
    normalize_u8(&x, n)
}

/// Writes each image's prediction and class probabilities as CSV (a CSV writer: class and file
/// names may hold commas, quotes or newlines).
struct PerImage<'p> {
    w: csv::Writer<std::fs::File>,
    path: &'p Path,
}

impl<'p> PerImage<'p> {
    fn create(path: &'p Path, classes: &[String]) -> Result<Self, TrainError> {
        let w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
        let mut f = PerImage { w, path };
        let mut head = vec!["index".to_string(), "name".into(), "label".into()];
        head.push("prediction".into());
        head.extend(classes.iter().map(|c| format!("p_{c}")));
        f.row(head)?;
        Ok(f)
    }

    fn row(&mut self, row: Vec<String>) -> Result<(), TrainError> {
        self.w.write_record(&row).map_err(|e| csv_err(self.path, e))
    }

    fn finish(mut self) -> Result<(), TrainError> {
        self.w.flush().map_err(|e| TrainError::Io {
            path: self.path.to_path_buf(),
            cause: e,
        })
    }
}

fn csv_err(p: &Path, e: csv::Error) -> TrainError {
    TrainError::Io {
        path: p.to_path_buf(),
        cause: std::io::Error::other(e),
    }
}

/// Evaluates `model` with TTA over `source`, `chunk` images at a time (views are built in
/// parallel on the rayon pool; memory is bounded by the chunk). Writes per-image predictions and
/// probabilities as CSV to `per_image` when given; reports progress to `obs`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_tta(
    model: &dyn ModuleT,
    source: &dyn Source,
    cfg: &TtaConfig,
    device: Device,
    chunk: usize,
    per_image: Option<&Path>,
    obs: &dyn Observer,
) -> Result<TtaReport, TrainError> {
    let start = Instant::now();
    let n = source.len();
    let mut csv = match per_image {
        Some(p) => Some(PerImage::create(p, source.classes())?),
        None => None,
    };
    obs.event(Event::Begin {
        label: "eval",
        total: n as u64,
    });
    let (mut c1, mut c5) = (0usize, 0usize);
    for lo in (0..n).step_by(chunk.max(1)) {
        let hi = (lo + chunk.max(1)).min(n);
        let scores = chunk_scores(model, source, cfg, device, lo..hi)?;
        for k in 0..hi - lo {
            let (top1, top5) = tally(source, cfg, lo + k, &scores.get(k as i64), csv.as_mut())?;
            c1 += top1 as usize;
            c5 += top5 as usize;
        }
        let status = format!("{:.0} images/s", hi as f64 / start.elapsed().as_secs_f64());
        obs.event(Event::Progress {
            done: hi as u64,
            status: &status,
        });
    }
    obs.event(Event::End);
    if let Some(f) = csv {
        f.finish()?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(TtaReport {
        tta: cfg.mode.name().to_string(),
        views_per_image: views_per_image(cfg),
        images: n,
        top1: c1 as f64 / n.max(1) as f64,
        top5: c5 as f64 / n.max(1) as f64,
        seconds,
        images_per_sec: n as f64 / seconds.max(1e-9),
    })
}

/// The mean view scores (probabilities, or logits with `mean_logits`) of the images `range`, as
/// a [len, classes] CPU tensor.
fn chunk_scores(
    model: &dyn ModuleT,
    source: &dyn Source,
    cfg: &TtaConfig,
    device: Device,
    range: std::ops::Range<usize>,
) -> Result<Tensor, TrainError> {
    let len = range.len();
    let opts = DecodeOptions::default();
    let per: Vec<Result<Vec<Vec<RgbImage>>, TrainError>> = range
        .into_par_iter()
        .map_init(Resize::new, |r, i| {
            Ok(sample_views(source, i, cfg, &opts, r)?)
        })
        .collect();
    // Bucket every view of the chunk by size, so that images of one size at one scale share
    // batches; then sum each image's view scores.
    let mut buckets: BTreeMap<(u32, u32), Vec<(usize, RgbImage)>> = BTreeMap::new();
    for (k, v) in per.into_iter().enumerate() {
        for img in v?.into_iter().flatten() {
            buckets.entry(img.dimensions()).or_default().push((k, img));
        }
    }
    let classes = source.classes().len() as i64;
    let mut acc = Tensor::zeros([len as i64, classes], (Kind::Float, Device::Cpu));
    for views in buckets.values() {
        for part in views.chunks(VIEW_BATCH) {
            let imgs: Vec<&RgbImage> = part.iter().map(|(_, im)| im).collect();
            let x = to_tensor(&imgs, &cfg.base.normalize, device);
            let logits = tch::no_grad(|| model.forward_t(&x, false)).to_kind(Kind::Float);
            let s = if cfg.mean_logits {
                logits
            } else {
                logits.softmax(1, Kind::Float)
            };
            let owners: Vec<i64> = part.iter().map(|(k, _)| *k as i64).collect();
            let _ = acc.index_add_(0, &Tensor::from_slice(&owners), &s.to_device(Device::Cpu));
        }
    }
    Ok(acc / views_per_image(cfg) as f64)
}

/// Whether image `i` is right in the top 1 and the top 5 of `scores`; writes its CSV row.
fn tally(
    source: &dyn Source,
    cfg: &TtaConfig,
    i: usize,
    scores: &Tensor,
    csv: Option<&mut PerImage>,
) -> Result<(bool, bool), TrainError> {
    let classes = source.classes().len() as i64;
    let label = source.label(i) as i64;
    let (_, top) = scores.topk(5.min(classes), 0, true, true);
    let top: Vec<i64> = Vec::try_from(top).expect("i64 indices");
    if let Some(f) = csv {
        let probs = if cfg.mean_logits {
            scores.softmax(0, Kind::Float)
        } else {
            scores.shallow_clone()
        };
        let probs: Vec<f32> = Vec::try_from(probs).expect("f32 scores");
        let mut row = vec![i.to_string(), source.name(i), label.to_string()];
        row.push(top[0].to_string());
        row.extend(probs.iter().map(|v| format!("{v:.6}")));
        f.row(row)?;
    }
    Ok((top[0] == label, top.contains(&label)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_stay_inside_the_trained_geometry() {
        // Pad-and-crop training: crops are translations by half the padding at the image's size.
        let cfg = TtaConfig::from_training(
            TtaMode::TenCrop,
            &Pipeline::cifar_train(),
            &Pipeline::cifar_eval(),
        );
        assert_eq!(
            (cfg.shift, cfg.crop, cfg.scales.clone()),
            (Some(2), 32, vec![32])
        );
        let img = RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 + 1, y as u8 + 1, 7]));
        let v = views(&img, &cfg, &mut Resize::new());
        assert_eq!(v[0].len(), 10);
        assert_eq!(v[0][4], img, "the centre view is the image itself");
        // Top-left: the image moved right and down by 2, zero fill on the left and top.
        assert_eq!(v[0][0].get_pixel(2, 2), img.get_pixel(0, 0));
        assert_eq!(v[0][0].get_pixel(1, 5).0, [0, 0, 0]);
        assert_eq!(v[0][3].get_pixel(0, 0), img.get_pixel(2, 2));
        // Scale augmentation 32..40 with a 37 px validation resize: crops at 37, multi-scale
        // views at 32, 36 and 40 (inside the trained range).
        let mut train = Pipeline::resnet_train().with_size(32);
        train.geometry = Geometry::ScaleAug {
            min: 32,
            max: 40,
            size: 32,
        };
        let cfg =
            TtaConfig::from_training(TtaMode::Multiscale, &train, &Pipeline::eval().with_size(32));
        assert_eq!(
            (cfg.resize, cfg.shift, cfg.scales.clone()),
            (37, None, vec![32, 36, 40])
        );
        // ImageNet presets: 256 px crops and the scales 256..480.
        let cfg = TtaConfig::from_training(
            TtaMode::FiveCrop,
            &Pipeline::resnet_train(),
            &Pipeline::eval(),
        );
        assert_eq!(
            (cfg.resize, cfg.crop, cfg.scales),
            (256, 224, vec![256, 368, 480])
        );
        let cfg = TtaConfig::from_training(
            TtaMode::FiveCrop,
            &Pipeline::inception_train(),
            &Pipeline::eval(),
        );
        assert_eq!((cfg.resize, cfg.scales), (256, vec![256, 320, 384]));
    }
}
