//! The hyperparameter recipe (`augloader tune`): initial loss against ln C, overfitting a tiny
//! subset, a learning-rate finder, a coarse then a refined grid over learning rate and weight
//! decay, and a diagnosis. Each step rewrites DIR/report.json (and hands the report to the
//! caller), so an interrupted run leaves a usable partial report.

use crate::tensor::BatchTensors;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Reduction, Tensor};

use super::sgd::{LrPolicy, Schedule, Sgd};
use super::trainer::{
    train, train_step, EpochMetrics, Net, Start, TrainConfig, TrainError, TrainJob,
};
use augloader::observe::{Event, Observer};
use augloader::source::{Source, Subset};
use augloader::Loader;

/// One grid trial.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trial {
    /// Learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Epochs trained.
    pub epochs: usize,
    /// Final validation top-1.
    pub val_top1: f64,
    /// Final training accuracy.
    pub train_acc: f64,
    /// Final training loss.
    pub train_loss: f64,
    /// Diagnosis of its curves.
    pub diagnosis: String,
    /// Its run folder (metrics.jsonl, curves.png).
    #[serde(with = "super::config::path_serde")]
    pub run_dir: PathBuf,
}

/// Everything the recipe found so far.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TuneReport {
    /// Model.
    pub model: String,
    /// Number of classes.
    pub classes: usize,
    /// Step 1: first loss with regularisation off.
    pub initial_loss: Option<f64>,
    /// ln(classes).
    pub ln_classes: f64,
    /// Step 2: training accuracy reached on the tiny subset.
    pub overfit_accuracy: Option<f64>,
    /// Step 2: images in the subset.
    pub overfit_images: usize,
    /// Step 3: (lr, smoothed loss) of the finder.
    pub lr_finder: Vec<(f64, f64)>,
    /// Step 3: the rate where the loss fell fastest.
    pub lr_steepest: Option<f64>,
    /// Step 3: the suggested range.
    pub lr_range: Option<(f64, f64)>,
    /// Step 4: coarse grid.
    pub coarse: Vec<Trial>,
    /// Step 5: refined grid.
    pub refined: Vec<Trial>,
    /// Step 5: the final, longer run of the best point.
    pub final_run: Option<Trial>,
    /// Step 6: recommended settings.
    pub recommended: Option<(f64, f64, usize)>,
    /// Notes, one per step.
    pub notes: Vec<String>,
}

/// Settings of a tuning run.
pub struct TuneSetup<'o> {
    /// Base configuration (model, batch, pipelines, seed, workers...).
    pub base: TrainConfig,
    /// Training data.
    pub train: Arc<dyn Source>,
    /// Validation data.
    pub val: Arc<dyn Source>,
    /// Output folder.
    pub out: PathBuf,
    /// Device.
    pub device: Device,
    /// Only this step (1..=6), or all.
    pub step: Option<u8>,
    /// Stop starting new trials after this many minutes.
    pub budget_minutes: f64,
    /// Epochs per coarse trial.
    pub coarse_epochs: usize,
    /// Epochs of the final run.
    pub final_epochs: usize,
    /// Receives progress, each trial's epochs and result, and the finder's curve.
    pub observer: &'o dyn Observer,
    /// Called with the report so far after each step and trial, once DIR/report.json holds it
    /// (the command line renders DIR/report.md from it).
    pub on_report: &'o dyn Fn(&TuneReport),
}

impl std::fmt::Debug for TuneSetup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TuneSetup")
            .field("base", &self.base)
            .field("train", &self.train)
            .field("val", &self.val)
            .field("out", &self.out)
            .field("device", &self.device)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io {
        path: path.to_path_buf(),
        cause: e,
    }
}

/// Classifies a run's last epoch: the usual reading of train/val accuracy and loss.
pub fn diagnose(history: &[EpochMetrics]) -> String {
    let Some(last) = history.last() else {
        return "no epochs".into();
    };
    let first = &history[0];
    if !last.train_loss.is_finite() || last.train_loss > first.train_loss * 1.05 {
        return "learning rate too high: the training loss rose".into();
    }
    let gap = last.train_acc - last.val_top1;
    if gap > 0.15 {
        format!(
            "overfitting: train accuracy {:.2} vs val {:.2}; more regularisation or data",
            last.train_acc, last.val_top1
        )
    } else if last.train_acc < 0.6 && last.train_loss > first.train_loss * 0.7 {
        "learning rate too low or too few epochs: the loss barely fell".into()
    } else if last.train_acc < 0.8 {
        format!("underfitting: train accuracy {:.2}; train longer, a bigger model or less regularisation", last.train_acc)
    } else {
        "fits well: train and val accuracy close and high".into()
    }
}

fn no_reg(cfg: &TrainConfig) -> TrainConfig {
    let mut c = cfg.clone();
    c.weight_decay = 0.0;
    c.label_smoothing = 0.0;
    c.train_pipeline = cfg.val_pipeline.clone();
    c.momentum = 0.9;
    c
}

impl TuneReport {
    fn write(&self, setup: &TuneSetup) -> Result<(), TrainError> {
        let out = &setup.out;
        let json = out.join("report.json");
        std::fs::write(
            &json,
            serde_json::to_string_pretty(self).expect("serialisable"),
        )
        .map_err(io(&json))?;
        (setup.on_report)(self);
        Ok(())
    }
}

/// A freshly initialised model and a loader over `source` with `cfg`'s training pipeline.
fn fresh(
    setup: &TuneSetup,
    cfg: &TrainConfig,
    source: Arc<dyn Source>,
) -> Result<(Net, Loader), TrainError> {
    let net = Net::new(
        &cfg.model,
        setup.train.classes().len(),
        setup.device,
        cfg.seed,
        false,
    )?;
    let loader = Loader::builder(source, cfg.train_pipeline.clone())
        .batch_size(cfg.batch)
        .workers(cfg.workers)
        .seed(cfg.seed)
        .build()?;
    Ok((net, loader))
}

fn first_loss(setup: &TuneSetup) -> Result<f64, TrainError> {
    let cfg = no_reg(&setup.base);
    let (net, loader) = fresh(setup, &cfg, setup.train.clone())?;
    let b = loader.epoch(0).next().expect("one batch")?;
    let (x, y) = b.to_device(setup.device);
    let logits = tch::no_grad(|| net.model.forward_t(&x, true));
    Ok(logits
        .cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0)
        .double_value(&[]))
}

fn overfit(setup: &TuneSetup) -> Result<(f64, usize), TrainError> {
    let cfg = no_reg(&setup.base);
    let n = (cfg.batch * 8).min(setup.train.len());
    let stride = setup.train.len() / n.max(1);
    let subset: Arc<dyn Source> = Arc::new(Subset::new(
        setup.train.clone(),
        (0..n).map(|i| i * stride.max(1)).collect(),
    ));
    let (net, loader) = fresh(setup, &cfg, subset)?;
    let mut opt = Sgd::new(net.named_trainable(), 0.9, 0.0);
    let mut acc = 0.0;
    for epoch in 0..60u64 {
        let (mut correct, mut seen) = (0i64, 0usize);
        for b in loader.epoch(epoch) {
            let b = b?;
            let (x, y) = b.to_device(setup.device);
            let model = net.model.as_ref();
            correct += train_step(model, &mut opt, (&x, &y), cfg.lr.base * 0.5, 0.0, true).1;
            seen += b.len();
        }
        acc = correct as f64 / seen.max(1) as f64;
        if acc >= 0.99 {
            break;
        }
    }
    Ok((acc, n))
}

fn lr_finder(setup: &TuneSetup) -> Result<Vec<(f64, f64)>, TrainError> {
    let cfg = &setup.base;
    let (net, loader) = fresh(setup, cfg, setup.train.clone())?;
    let mut opt = Sgd::new(net.named_trainable(), cfg.momentum, cfg.weight_decay);
    // Long enough for the loss to fall at good rates (100 steps left BN nets on the
    // synthetic set flat until the rates were too high).
    let steps = 300usize;
    let (lo, hi) = (1e-5f64, 1.0f64);
    let mut out = Vec::new();
    let mut smooth = 0.0;
    let mut best = f64::MAX;
    let mut epoch = 0;
    let mut it = loader.epoch(0);
    for k in 0..steps {
        let b = match it.next() {
            Some(b) => b?,
            None => {
                epoch += 1;
                it = loader.epoch(epoch);
                it.next().expect("non-empty epoch")?
            }
        };
        let lr = lo * (hi / lo).powf(k as f64 / (steps - 1) as f64);
        let (x, y) = b.to_device(setup.device);
        let (l, _) = train_step(net.model.as_ref(), &mut opt, (&x, &y), lr, 0.0, true);
        smooth = 0.9 * smooth + 0.1 * l;
        let debiased = smooth / (1.0 - 0.9f64.powi(k as i32 + 1));
        out.push((lr, debiased));
        best = best.min(debiased);
        if !l.is_finite() || debiased > 4.0 * best {
            break;
        }
    }
    Ok(out)
}

/// The rate where the smoothed loss falls fastest, and the range around it where the loss falls
/// steadily. The first tenth of the sweep (at least 5 points: the smoothing's start-up
/// transient) and everything past the lowest loss (where it turns up) are ignored. Slopes are
/// taken against log lr over 5 points; the range spans the neighbouring points whose slope is
/// at least a third of the steepest, at most two decades wide, the steepest point inside. None
/// when the loss never falls by 2% of its starting value.
pub fn steepest(points: &[(f64, f64)]) -> Option<(f64, (f64, f64))> {
    let w = 5;
    let skip = (points.len() / 10).max(5);
    let lowest = points
        .iter()
        .enumerate()
        .skip(skip)
        .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
        .map(|(i, _)| i)?;
    // slope[k]: from point k to k + w, for the part of the sweep before the lowest loss.
    let slopes: Vec<(usize, f64)> = (skip..lowest.saturating_sub(w) + 1)
        .filter(|&k| k + w <= lowest)
        .map(|k| {
            let (a, b) = (points[k], points[k + w]);
            (k, (b.1 - a.1) / (b.0.ln() - a.0.ln()))
        })
        .collect();
    // No real fall (under 2% of the starting loss): nothing to suggest.
    if points[lowest].1 > 0.98 * points[skip].1 {
        return None;
    }
    let (at, best) = slopes
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|s| s.1 < 0.0)?;
    let steady = |k: usize| slopes.iter().any(|&(j, s)| j == k && s <= best / 3.0);
    let (mut lo, mut hi) = (at, at + w);
    while lo > skip && steady(lo - 1) {
        lo -= 1;
    }
    while hi < lowest && steady(hi + 1 - w) {
        hi += 1;
    }
    let lr = points[at + w / 2].0;
    let (mut a, mut b) = (points[lo].0, points[hi].0);
    // At most two decades, keeping the steepest point inside.
    if b / a > 100.0 {
        let (l, h) = ((lr / 10.0).max(a), (lr * 10.0).min(b));
        (a, b) = if l == a {
            (a, a * 100.0)
        } else if h == b {
            (b / 100.0, b)
        } else {
            (l, h)
        };
    }
    Some((lr, (a, b)))
}

fn trial(
    setup: &TuneSetup,
    name: &str,
    lr: f64,
    wd: f64,
    epochs: usize,
) -> Result<Trial, TrainError> {
    let mut cfg = setup.base.clone();
    cfg.lr = LrPolicy {
        base: lr,
        schedule: Schedule::Cosine,
        warmup_epochs: if epochs > 2 { 1.0 } else { 0.0 },
        epochs,
    };
    cfg.weight_decay = wd;
    cfg.epochs = epochs;
    let dir = setup.out.join("trials").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let job = TrainJob {
        cfg,
        train: setup.train.clone(),
        val: setup.val.clone(),
        run_dir: &dir,
        device: setup.device,
        start: Start::Overwrite,
    };
    let r = train(job, setup.observer);
    let (history, val, acc, loss) = match r {
        Ok(s) => {
            let last = s.history.last().cloned();
            (
                s.history,
                s.val_top1,
                last.as_ref().map_or(0.0, |m| m.train_acc),
                last.map_or(f64::NAN, |m| m.train_loss),
            )
        }
        Err(TrainError::Diverged { .. }) => (Vec::new(), 0.0, 0.0, f64::NAN),
        Err(e) => return Err(e),
    };
    let diagnosis = if history.is_empty() {
        "learning rate too high: the loss diverged".to_string()
    } else {
        diagnose(&history)
    };
    let t = Trial {
        lr,
        weight_decay: wd,
        epochs,
        val_top1: val,
        train_acc: acc,
        train_loss: loss,
        diagnosis,
        run_dir: dir,
    };
    setup.observer.event(Event::Note(&format!(
        "trial {name}: lr {lr:.3e} wd {wd:.1e} -> val top-1 {:.3} ({})",
        t.val_top1, t.diagnosis
    )));
    Ok(t)
}

/// One trial per (lr, wd), added to the coarse or the refined list, the report rewritten after
/// each; no new trial starts once the time budget is spent.
fn grid(
    setup: &TuneSetup,
    r: &mut TuneReport,
    stage: &str,
    lrs: &[f64],
    wds: &[f64],
    epochs: usize,
    start: Instant,
) -> Result<(), TrainError> {
    for &lr in lrs {
        for &wd in wds {
            if start.elapsed().as_secs_f64() > setup.budget_minutes * 60.0 {
                r.notes.push(format!(
                    "budget of {} minutes reached: later {stage} trials skipped",
                    setup.budget_minutes
                ));
                return Ok(());
            }
            let t = trial(
                setup,
                &format!("{stage}_lr{lr:.2e}_wd{wd:.0e}"),
                lr,
                wd,
                epochs,
            )?;
            let list = match stage {
                "coarse" => &mut r.coarse,
                _ => &mut r.refined,
            };
            list.push(t);
            compare(list);
            r.write(setup)?;
        }
    }
    Ok(())
}

/// Adds to each trial's diagnosis how it compares with the best trial of `trials` (the best is
/// named as such), so that a trial is judged against the others, not only against its start.
fn compare(trials: &mut [Trial]) {
    let Some(top) = best(trials).map(|t| (t.val_top1, t.lr, t.weight_decay)) else {
        return;
    };
    for t in trials.iter_mut() {
        let note = if (t.lr, t.weight_decay) == (top.1, top.2) {
            " [best of this grid]".to_string()
        } else {
            format!(" [val top-1 {:.3} below the best]", top.0 - t.val_top1)
        };
        if let Some(i) = t.diagnosis.find(" [") {
            t.diagnosis.truncate(i);
        }
        t.diagnosis += &note;
    }
}

fn best(trials: &[Trial]) -> Option<&Trial> {
    trials
        .iter()
        .max_by(|a, b| a.val_top1.total_cmp(&b.val_top1))
}

/// Step 3: the learning-rate finder, its steepest point and range, and its curve.
fn finder_step(setup: &TuneSetup, r: &mut TuneReport) -> Result<(), TrainError> {
    r.lr_finder = lr_finder(setup)?;
    if let Some((lr, range)) = steepest(&r.lr_finder) {
        r.lr_steepest = Some(lr);
        r.lr_range = Some(range);
    }
    setup.observer.event(Event::Curve {
        path: &setup.out.join("lr_finder.png"),
        title: "learning-rate finder",
        x_label: "lr",
        y_label: "smoothed loss",
        log_x: true,
        points: &r.lr_finder,
        mark: r.lr_steepest,
    });
    r.write(setup)
}

/// Step 5: a finer grid around the best coarse point, then a longer run of the best of all.
fn refine_step(
    setup: &TuneSetup,
    r: &mut TuneReport,
    centre: f64,
    start: Instant,
) -> Result<(), TrainError> {
    r.refined.clear();
    let (lr0, wd0) = best(&r.coarse).map_or((centre, 1e-4), |t| (t.lr, t.weight_decay));
    let wds = if wd0 == 0.0 {
        [0.0, 3e-5]
    } else {
        [wd0 / 2.0, wd0 * 2.0]
    };
    // Refined rates stay inside the finder's range, where the loss fell steadily.
    let (lo, hi) = r.lr_range.unwrap_or((0.0, f64::INFINITY));
    let lrs = [(lr0 / 1.7).max(lo), (lr0 * 1.7).min(hi)];
    let epochs = setup.coarse_epochs * 2;
    grid(setup, r, "refine", &lrs, &wds, epochs, start)?;
    let all: Vec<Trial> = r.coarse.iter().chain(&r.refined).cloned().collect();
    if let Some(b) = best(&all) {
        let (lr, wd) = (b.lr, b.weight_decay);
        let t = trial(setup, "final", lr, wd, setup.final_epochs)?;
        r.recommended = Some((lr, wd, setup.final_epochs));
        r.final_run = Some(t);
        r.write(setup)?;
    }
    Ok(())
}

/// Runs the recipe (or one step of it), updating DIR/report.{md,json} after every step/trial.
pub fn tune(setup: &TuneSetup) -> Result<TuneReport, TrainError> {
    std::fs::create_dir_all(&setup.out).map_err(io(&setup.out))?;
    let json = setup.out.join("report.json");
    let mut r: TuneReport =
        augloader::file::read_to_string(&json, augloader::file::FileKind::Report)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
    r.model = setup.base.model.clone();
    r.classes = setup.train.classes().len();
    r.ln_classes = (r.classes as f64).ln();
    let start = Instant::now();
    let run = |n: u8| setup.step.is_none_or(|s| s == n);
    if run(1) {
        r.initial_loss = Some(first_loss(setup)?);
        r.write(setup)?;
    }
    if run(2) {
        let (acc, n) = overfit(setup)?;
        r.overfit_accuracy = Some(acc);
        r.overfit_images = n;
        r.write(setup)?;
    }
    if run(3) {
        finder_step(setup, &mut r)?;
    }
    let (lo, hi) = r
        .lr_range
        .unwrap_or((setup.base.lr.base / 3.0, setup.base.lr.base * 3.0));
    let centre = (lo * hi).sqrt();
    if run(4) {
        r.coarse.clear();
        let lrs = [lo, centre, hi];
        grid(
            setup,
            &mut r,
            "coarse",
            &lrs,
            &[0.0, 1e-4, 1e-3],
            setup.coarse_epochs,
            start,
        )?;
    }
    if run(5) {
        refine_step(setup, &mut r, centre, start)?;
    }
    // Step 6 is the report itself, rewritten last whatever ran.
    r.write(setup)?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steepest_finds_the_fastest_fall() {
        // Flat, then a fall between 1e-3 and 1e-2, then a blow-up.
        let pts: Vec<(f64, f64)> = (0..50)
            .map(|k| {
                let lr = 1e-5 * 10f64.powf(k as f64 / 10.0);
                let l = if lr < 1e-3 {
                    2.3
                } else if lr < 1e-2 {
                    2.3 - (lr / 1e-3).ln()
                } else {
                    0.0 + (lr / 1e-2)
                };
                (lr, l)
            })
            .collect();
        let (lr, (a, b)) = steepest(&pts).unwrap();
        assert!(lr > 1e-3 && lr < 1e-2, "{lr}");
        assert!(a <= lr && b >= lr && b < 2e-2, "{a} {b}");
        assert!(b / a <= 100.0 + 1e-9, "{a} {b}");
    }

    #[test]
    fn steepest_ignores_the_start_up_transient_and_bounds_the_range() {
        // A smoothing transient: a steep drop in the first points, then a long steady fall over
        // four decades, then a blow-up.
        let pts: Vec<(f64, f64)> = (0..100)
            .map(|k| {
                let lr = 1e-5 * 10f64.powf(k as f64 / 20.0);
                let transient = if k < 4 { 3.0 - k as f64 * 0.5 } else { 0.0 };
                let l = if lr < 1e-1 {
                    2.3 - 0.1 * (lr / 1e-5).ln()
                } else {
                    1.4 + (lr / 1e-1)
                };
                (lr, l + transient)
            })
            .collect();
        let (lr, (a, b)) = steepest(&pts).unwrap();
        assert!(lr > pts[5].0, "the transient was taken: {lr}");
        assert!(a <= lr && lr <= b && b / a <= 100.0 + 1e-9, "{a} {lr} {b}");
    }
}
