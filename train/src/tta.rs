//! Test-time augmentation with libtorch: the loader delivers each image's views (the views of
//! `augloader::tta`, built by the loader's workers like training's batches), and the model scores
//! them: views of one size together (multi-scale modes bring several sizes), aggregated per image
//! by mean softmax probability (default) or mean logit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use augloader::decode::DecodeOptions;
use augloader::observe::{Event, Observer};
use augloader::source::Source;
use augloader::{Batch, BatchData, Dtype, Skipped};
use augloader::{ErrorPolicy, Loader};
use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use crate::error::torch_call;
use crate::step::topk_correct;
use crate::tensor::normalize_u8;
use crate::trainer::TrainError;

use augloader::tta::{views_per_image, TtaConfig, TtaMode};

/// Views per forward pass at most: larger passes run slower on CPUs (their activations leave
/// the caches: 640 views of 32 px at once ran at 0.75x the rate of 64 at a time).
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
    /// Images left out (unreadable, with [`ErrorPolicy::Omit`]): "name: reason".
    pub skipped: Vec<String>,
}

/// How the evaluated images are loaded: as training loads its validation split.
#[derive(Clone, Debug)]
pub struct EvalLoading {
    /// Images per batch (each brings its views).
    pub batch: usize,
    /// Loader worker threads.
    pub workers: usize,
    /// [`ErrorPolicy::Fail`], or [`ErrorPolicy::Omit`] (an unreadable image is left out and
    /// listed; a replacement would count another image twice).
    pub policy: ErrorPolicy,
    /// Decoding limits and modes.
    pub decode: DecodeOptions,
}

impl Default for EvalLoading {
    /// The loader's defaults ([`augloader::defaults`]), failing on an unreadable image.
    fn default() -> Self {
        EvalLoading {
            batch: augloader::defaults::BATCH_SIZE,
            workers: augloader::defaults::workers(),
            policy: ErrorPolicy::Fail,
            decode: DecodeOptions::default(),
        }
    }
}

/// The loader of an evaluation: training's validation loader (in order, its batches and
/// decoding), producing each image's views. With one view (`none`) it is that loader exactly.
pub fn eval_loader(
    source: Arc<dyn Source>,
    cfg: &TtaConfig,
    loading: &EvalLoading,
) -> Result<Loader, TrainError> {
    if loading.policy == ErrorPolicy::Skip {
        return Err(TrainError::Invalid(
            "evaluation leaves unreadable images out (omit) or fails: a replacement would count \
             another image twice"
                .into(),
        ));
    }
    let mut b = Loader::builder(source, cfg.base.clone())
        .batch_size(loading.batch)
        .workers(loading.workers)
        .shuffle(false)
        .dtype(Dtype::U8)
        .on_error(loading.policy)
        .decode_options(loading.decode);
    if cfg.mode != TtaMode::None {
        b = b.per_sample(cfg.clone());
    }
    Ok(b.build()?)
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
        let tmp = augloader::output::temporary(path);
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

    /// The rows of batch `b`, whose `scores` are probabilities, or logits when `logits`.
    fn rows(
        &mut self,
        source: &dyn Source,
        b: &Batch,
        scores: &Tensor,
        logits: bool,
    ) -> Result<(), TrainError> {
        let probs = if logits {
            scores.softmax(1, Kind::Float)
        } else {
            scores.shallow_clone()
        };
        let predicted: Vec<i64> = Vec::try_from(scores.argmax(1, false)).expect("i64 indices");
        for (k, &i) in b.indices.iter().enumerate() {
            let p: Vec<f32> = Vec::try_from(probs.get(k as i64)).expect("f32 scores");
            let mut row = vec![i.to_string(), source.name(i), b.labels[k].to_string()];
            row.push(predicted[k].to_string());
            row.extend(p.iter().map(|v| format!("{v:.6}")));
            self.row(row)?;
        }
        Ok(())
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

/// Evaluates `model` with TTA over `source`, the views coming from [`eval_loader`]. Writes
/// per-image predictions and probabilities as CSV to `per_image` when given; reports progress to
/// `obs`.
pub fn evaluate_tta(
    model: &dyn ModuleT,
    source: Arc<dyn Source>,
    cfg: &TtaConfig,
    device: Device,
    loading: &EvalLoading,
    per_image: Option<&Path>,
    obs: &dyn Observer,
) -> Result<TtaReport, TrainError> {
    let start = Instant::now();
    let n = source.len();
    let mut csv = match per_image {
        Some(p) => Some(PerImage::create(p, source.classes())?),
        None => None,
    };
    let loader = eval_loader(source.clone(), cfg, loading)?;
    obs.event(Event::Begin {
        label: "eval",
        total: n as u64,
    });
    let (mut c1, mut c5, mut images) = (0i64, 0i64, 0usize);
    let mut skipped: Vec<Skipped> = Vec::new();
    for b in loader.epoch(0) {
        let b = b?;
        let scores = batch_scores(model, &b, cfg, device)?;
        let y = Tensor::from_slice(&b.labels);
        c1 += topk_correct(&scores, &y, 1);
        c5 += topk_correct(&scores, &y, 5);
        if let Some(f) = csv.as_mut() {
            f.rows(
                source.as_ref(),
                &b,
                &scores,
                cfg.mean_logits || b.views() == 1,
            )?;
        }
        images += b.len();
        skipped.extend(b.skipped);
        let done = images + skipped.len();
        let status = format!(
            "{:.0} images/s",
            done as f64 / start.elapsed().as_secs_f64()
        );
        obs.event(Event::Progress {
            done: done as u64,
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
        images,
        top1: c1 as f64 / images.max(1) as f64,
        top5: c5 as f64 / images.max(1) as f64,
        seconds,
        images_per_sec: images as f64 / seconds.max(1e-9),
        skipped: skipped
            .iter()
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect(),
    })
}

/// The mean view scores (probabilities, or logits with `mean_logits`) of the samples of `b`, as
/// a `[len, classes]` CPU tensor. Views of one size share forward passes of a bounded size.
fn batch_scores(
    model: &dyn ModuleT,
    b: &Batch,
    cfg: &TtaConfig,
    device: Device,
) -> Result<Tensor, TrainError> {
    let views = b.views().max(1);
    let BatchData::U8(raw) = &b.data else {
        return Err(TrainError::Invalid("TTA batches are collated as u8".into()));
    };
    let pixels = Tensor::from_slice(raw);
    // Each image's offset in the buffer, and the images of each size.
    let mut groups: BTreeMap<(u32, u32), Vec<(i64, i64)>> = BTreeMap::new();
    let mut offset = 0i64;
    for (k, &(h, w)) in b.sizes.iter().enumerate() {
        groups.entry((h, w)).or_default().push((k as i64, offset));
        offset += 3 * h as i64 * w as i64;
    }
    let mut acc: Option<Tensor> = None;
    for ((h, w), imgs) in &groups {
        let per_pass = (VIEW_PIXELS / (*w as usize * *h as usize).max(1)).clamp(1, VIEW_BATCH);
        for part in imgs.chunks(per_pass) {
            let len = 3 * *h as i64 * *w as i64;
            let x = if part.len() == b.sizes.len() {
                pixels.view([-1, 3, *h as i64, *w as i64])
            } else {
                let slices: Vec<Tensor> = part
                    .iter()
                    .map(|(_, o)| pixels.narrow(0, *o, len))
                    .collect();
                Tensor::stack(&slices, 0).view([-1, 3, *h as i64, *w as i64])
            };
            let x = normalize_u8(&x.to_device(device), &b.normalize);
            let what = format!("scoring {} views of {w}x{h}", part.len());
            let logits = torch_call(&what, || tch::no_grad(|| model.forward_t(&x, false)))?
                .to_kind(Kind::Float)
                .to_device(Device::Cpu);
            // One view: its logits (as training's validation ranks them).
            let s = if cfg.mean_logits || views == 1 {
                logits
            } else {
                logits.softmax(1, Kind::Float)
            };
            let owners: Vec<i64> = part.iter().map(|(k, _)| k / views as i64).collect();
            let acc = acc.get_or_insert_with(|| {
                Tensor::zeros([b.len() as i64, s.size()[1]], (Kind::Float, Device::Cpu))
            });
            let _ = acc.index_add_(0, &Tensor::from_slice(&owners), &s);
        }
    }
    let acc = acc.unwrap_or_else(|| Tensor::zeros([0, 1], (Kind::Float, Device::Cpu)));
    Ok(acc / views as f64)
}
