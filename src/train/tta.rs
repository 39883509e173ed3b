//! Test-time augmentation: centre crop, flip, five/ten crop, and multi-scale evaluation in the
//! fully-convolutional form (whole image at each scale, adaptive pooling) or the multi-crop form
//! (ten crops at each scale), aggregated by mean softmax probability (default) or mean logit.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use super::trainer::TrainError;
use crate::decode::DecodeOptions;
use crate::loader::load_image;
use crate::source::Source;
use crate::transform::crop::{center_box, five_crop_boxes};
use crate::transform::flip::hflip;
use crate::transform::resize::{crop_image, shorter_side_size};
use crate::transform::{Normalize, Resize};

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

impl TtaMode {
    /// Parses `none|flip|5crop|10crop|multiscale|multiscale-10crop`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => TtaMode::None,
            "flip" => TtaMode::Flip,
            "5crop" => TtaMode::FiveCrop,
            "10crop" => TtaMode::TenCrop,
            "multiscale" => TtaMode::Multiscale,
            "multiscale-10crop" => TtaMode::MultiscaleTenCrop,
            _ => return None,
        })
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            TtaMode::None => "none",
            TtaMode::Flip => "flip",
            TtaMode::FiveCrop => "5crop",
            TtaMode::TenCrop => "10crop",
            TtaMode::Multiscale => "multiscale",
            TtaMode::MultiscaleTenCrop => "multiscale-10crop",
        }
    }
}

/// View settings.
#[derive(Clone, Debug)]
pub struct TtaConfig {
    /// Views.
    pub mode: TtaMode,
    /// Shorter side before cropping (single-scale modes).
    pub resize: u32,
    /// Crop side.
    pub crop: u32,
    /// Shorter sides for the multi-scale modes.
    pub scales: Vec<u32>,
    /// Average logits instead of softmax probabilities.
    pub mean_logits: bool,
}

/// The views of one image for `cfg`, grouped by size: every group's images share one size, so
/// each group is one batch through the network.
pub fn views(img: &RgbImage, cfg: &TtaConfig, resize: &mut Resize) -> Vec<Vec<RgbImage>> {
    let c = cfg.crop;
    let at = |s: u32, resize: &mut Resize| {
        let (w, h) = shorter_side_size(img.width(), img.height(), s);
        resize.resize(img, w, h)
    };
    let ten = |r: &RgbImage| -> Vec<RgbImage> {
        let mut m = r.clone();
        hflip(&mut m);
        let mut out: Vec<RgbImage> = five_crop_boxes(r.height(), r.width(), c, c)
            .iter()
            .map(|b| crop_image(r, *b))
            .collect();
        out.extend(
            five_crop_boxes(m.height(), m.width(), c, c)
                .iter()
                .map(|b| crop_image(&m, *b)),
        );
        out
    };
    match cfg.mode {
        TtaMode::None | TtaMode::Flip => {
            let r = at(cfg.resize, resize);
            let centre = crop_image(&r, center_box(r.height(), r.width(), c, c));
            let mut v = vec![centre.clone()];
            if cfg.mode == TtaMode::Flip {
                let mut f = centre;
                hflip(&mut f);
                v.push(f);
            }
            vec![v]
        }
        TtaMode::FiveCrop => {
            let r = at(cfg.resize, resize);
            vec![five_crop_boxes(r.height(), r.width(), c, c)
                .iter()
                .map(|b| crop_image(&r, *b))
                .collect()]
        }
        TtaMode::TenCrop => vec![ten(&at(cfg.resize, resize))],
        TtaMode::Multiscale => cfg
            .scales
            .iter()
            .map(|&s| {
                let r = at(s, resize);
                let mut f = r.clone();
                hflip(&mut f);
                vec![r, f]
            })
            .collect(),
        TtaMode::MultiscaleTenCrop => cfg
            .scales
            .iter()
            .map(|&s| ten(&at(s.max(c), resize)))
            .collect(),
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

fn to_tensor(imgs: &[RgbImage], n: &Normalize) -> Tensor {
    let (h, w) = (imgs[0].height() as i64, imgs[0].width() as i64);
    let plane = (h * w) as usize;
    let mut buf = vec![0f32; imgs.len() * plane * 3];
    for (i, img) in imgs.iter().enumerate() {
        n.hwc_u8_to_chw_f32(img.as_raw(), &mut buf[i * plane * 3..(i + 1) * plane * 3]);
    }
    Tensor::from_slice(&buf).view([imgs.len() as i64, 3, h, w])
}

/// Evaluates `model` with TTA over `source`, `chunk` images at a time (views are built in
/// parallel on the rayon pool; memory is bounded by the chunk). Writes per-image predictions and
/// probabilities as CSV to `per_image` when given.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_tta(
    model: &dyn ModuleT,
    source: &dyn Source,
    cfg: &TtaConfig,
    normalize: &Normalize,
    device: Device,
    chunk: usize,
    per_image: Option<&Path>,
    progress: bool,
) -> Result<TtaReport, TrainError> {
    let start = Instant::now();
    let n = source.len();
    let classes = source.classes().len();
    let mut csv = match per_image {
        Some(p) => {
            let mut f =
                std::io::BufWriter::new(std::fs::File::create(p).map_err(|e| TrainError::Io {
                    path: p.to_path_buf(),
                    cause: e,
                })?);
            let head: Vec<String> = (0..classes)
                .map(|c| format!("p_{}", source.classes()[c]))
                .collect();
            writeln!(f, "index,name,label,prediction,{}", head.join(",")).map_err(|e| {
                TrainError::Io {
                    path: p.to_path_buf(),
                    cause: e,
                }
            })?;
            Some((f, p.to_path_buf()))
        }
        None => None,
    };
    let pb = progress.then(|| {
        let pb = ProgressBar::new(n as u64);
        pb.set_style(
            ProgressStyle::with_template("eval [{bar:30}] {pos}/{len} images {per_sec} eta {eta}")
                .expect("valid")
                .progress_chars("=> "),
        );
        pb
    });
    let (mut c1, mut c5) = (0usize, 0usize);
    let opts = DecodeOptions::default();
    for lo in (0..n).step_by(chunk.max(1)) {
        let hi = (lo + chunk.max(1)).min(n);
        let per: Vec<Result<Vec<Vec<RgbImage>>, TrainError>> = (lo..hi)
            .into_par_iter()
            .map_init(Resize::new, |r, i| {
                Ok(views(&load_image(source, i, &opts)?, cfg, r))
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
        let mut acc = Tensor::zeros(
            [(hi - lo) as i64, classes as i64],
            (Kind::Float, Device::Cpu),
        );
        for views in buckets.values() {
            for part in views.chunks(VIEW_BATCH) {
                let imgs: Vec<RgbImage> = part.iter().map(|(_, im)| im.clone()).collect();
                let x = to_tensor(&imgs, normalize).to_device(device);
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
        let acc = acc / views_per_image(cfg) as f64;
        for k in 0..hi - lo {
            let i = lo + k;
            let scores = acc.get(k as i64);
            let label = source.label(i) as i64;
            let (_, top) = scores.topk(5.min(classes as i64), 0, true, true);
            let top: Vec<i64> = Vec::try_from(top).expect("i64 indices");
            c1 += (top[0] == label) as usize;
            c5 += top.contains(&label) as usize;
            if let Some((f, p)) = csv.as_mut() {
                let probs = if cfg.mean_logits {
                    scores.softmax(0, Kind::Float)
                } else {
                    scores
                };
                let probs: Vec<f32> = Vec::try_from(probs).expect("f32 scores");
                let cols: Vec<String> = probs.iter().map(|v| format!("{v:.6}")).collect();
                let name = source.name(i).replace(',', "_");
                writeln!(f, "{i},{name},{label},{},{}", top[0], cols.join(",")).map_err(|e| {
                    TrainError::Io {
                        path: p.clone(),
                        cause: e,
                    }
                })?;
            }
        }
        if let Some(pb) = &pb {
            pb.inc((hi - lo) as u64);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if let Some((mut f, p)) = csv {
        f.flush()
            .map_err(|e| TrainError::Io { path: p, cause: e })?;
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
