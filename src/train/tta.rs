//! Test-time augmentation with libtorch: the views of [`crate::tta`] scored in the
//! fully-convolutional form (whole image at each scale, adaptive pooling) or the multi-crop form
//! (ten crops at each scale), aggregated by mean softmax probability (default) or mean logit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;
use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use super::error::torch_call;
use super::trainer::TrainError;
use crate::batch::normalize_u8;
use crate::decode::DecodeOptions;
use crate::observe::{Event, Observer};
use crate::source::Source;
use crate::transform::{Normalize, Resize};

pub use crate::tta::{sample_views, views, views_per_image, TtaConfig, TtaMode, TTA_MODES};

/// Views per forward pass at most (bounds memory whatever the chunk and mode).
const VIEW_BATCH: usize = 64;

/// Pixels per forward pass at most: 64 views of 320 x 320; large views go fewer at a time
/// (a 4096 px view alone), so activation memory stays bounded whatever the model file says.
const VIEW_PIXELS: usize = 64 * 320 * 320;

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
/// The per-image CSV, written under a temporary name and put in place only when the whole
/// evaluation succeeded (a failed run leaves an earlier file whole).
struct PerImage<'p> {
    w: Option<csv::Writer<std::fs::File>>,
    path: &'p Path,
    tmp: PathBuf,
}

impl<'p> PerImage<'p> {
    fn create(path: &'p Path, classes: &[String]) -> Result<Self, TrainError> {
        let tmp = crate::output::temporary(path);
        let w = csv::Writer::from_path(&tmp).map_err(|e| csv_err(path, e))?;
        let mut f = PerImage {
            w: Some(w),
            path,
            tmp,
        };
        let mut head = vec!["index".to_string(), "name".into(), "label".into()];
        head.push("prediction".into());
        head.extend(classes.iter().map(|c| format!("p_{c}")));
        f.row(head)?;
        Ok(f)
    }

    fn row(&mut self, row: Vec<String>) -> Result<(), TrainError> {
        let w = self.w.as_mut().expect("open until finished");
        w.write_record(&row).map_err(|e| csv_err(self.path, e))
    }

    fn finish(mut self) -> Result<(), TrainError> {
        let io = |cause| TrainError::Io {
            path: self.path.to_path_buf(),
            cause,
        };
        let file = self
            .w
            .take()
            .expect("finished once")
            .into_inner()
            .map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, self.path).map_err(io)
    }
}

impl Drop for PerImage<'_> {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
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
    for ((w, h), views) in &buckets {
        let per_pass = (VIEW_PIXELS / (*w as usize * *h as usize).max(1)).clamp(1, VIEW_BATCH);
        for part in views.chunks(per_pass) {
            let imgs: Vec<&RgbImage> = part.iter().map(|(_, im)| im).collect();
            let x = to_tensor(&imgs, &cfg.base.normalize, device);
            let what = format!("scoring {} views of {w}x{h}", imgs.len());
            let logits = torch_call(&what, || tch::no_grad(|| model.forward_t(&x, false)))?
                .to_kind(Kind::Float);
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
