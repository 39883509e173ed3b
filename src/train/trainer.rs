//! Training runs: SGD over the loader's batches, validation each epoch, metrics, curves,
//! atomic checkpoints with optimiser and loader state, and resume.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Reduction, Tensor};

use super::checkpoint::{self, CheckpointError};
use super::meta::ModelMeta;
use super::sgd::{LrPolicy, Sgd};
use super::{build_model, Model, UnknownModel};
use crate::defaults::DataDefaults;
use crate::loader::{LoadError, Loader};
use crate::report::curves::{plot_curves, CurvePoint};
use crate::rng::{mix, stream};
use crate::source::Source;
use crate::transform::Pipeline;

/// Everything that defines a training run (saved in checkpoints, so `--resume` needs no flags).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Model name (see [`super::MODELS`]).
    pub model: String,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Learning-rate policy.
    pub lr: LrPolicy,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay (not on BN parameters and biases).
    pub weight_decay: f64,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f64,
    /// Zero-initialise each residual branch's last BN.
    pub zero_init_residual: bool,
    /// Loader worker threads.
    pub workers: usize,
    /// Seed of initialisation, shuffling, augmentation and dropout.
    pub seed: u64,
    /// Training pipeline.
    pub train_pipeline: Pipeline,
    /// Validation pipeline.
    pub val_pipeline: Pipeline,
    /// Limit of training batches per epoch (0 = all), for quick runs and tests.
    pub max_batches: usize,
    /// Transfer learning settings.
    #[serde(default)]
    pub transfer: Transfer,
    /// What was chosen from the data for settings left unset (recorded in the model file).
    #[serde(default)]
    pub data_defaults: Option<DataDefaults>,
    /// The dataset the run trains on (a resumed run must be given the same one).
    #[serde(default)]
    pub data: Option<DatasetId>,
}

/// Which dataset a run uses: where it was, and a fingerprint of its samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetId {
    /// The dataset's path as given.
    pub path: PathBuf,
    /// xxh3 of the training split's class names, sample names and labels, in order.
    pub fingerprint: String,
}

impl DatasetId {
    /// The identity of `train` found at `path`.
    pub fn of(path: &Path, train: &dyn Source) -> DatasetId {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for c in train.classes() {
            h.update(c.as_bytes());
            h.update(&[0]);
        }
        for i in 0..train.len() {
            h.update(train.name(i).as_bytes());
            h.update(&(train.label(i) as u64).to_le_bytes());
        }
        DatasetId {
            path: path.to_path_buf(),
            fingerprint: format!("{:016x}", h.digest()),
        }
    }
}

impl TrainConfig {
    /// Checks every setting; the error names the setting and the range.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        if self.epochs == 0 || self.batch == 0 || self.workers == 0 {
            return bad(format!(
                "epochs ({}), batch size ({}) and workers ({}) must be at least 1",
                self.epochs, self.batch, self.workers
            ));
        }
        if !(self.lr.base.is_finite() && self.lr.base > 0.0) {
            return bad(format!(
                "learning rate {} must be finite and > 0",
                self.lr.base
            ));
        }
        if !finite_nonneg(self.lr.warmup_epochs) {
            return bad(format!(
                "warm-up {} must be finite and >= 0",
                self.lr.warmup_epochs
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("momentum {} must be in [0, 1)", self.momentum));
        }
        if !finite_nonneg(self.weight_decay) {
            return bad(format!(
                "weight decay {} must be finite and >= 0",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "label smoothing {} must be in [0, 1)",
                self.label_smoothing
            ));
        }
        if !finite_nonneg(self.transfer.backbone_lr_mult) {
            return bad(format!(
                "backbone learning-rate multiplier {} must be finite and >= 0",
                self.transfer.backbone_lr_mult
            ));
        }
        for p in [&self.train_pipeline, &self.val_pipeline] {
            p.validate()
                .map_err(|e| TrainError::Invalid(format!("pipeline `{}`: {e}", p.name)))?;
        }
        let min = super::min_input_size(&self.model);
        for p in [&self.train_pipeline, &self.val_pipeline] {
            if let Some((h, w)) = p.output_size().filter(|&(h, w)| h.min(w) < min) {
                return bad(format!(
                    "{} needs inputs of at least {min} px; pipeline `{}` makes {w}x{h}",
                    self.model, p.name
                ));
            }
        }
        Ok(())
    }
}

/// Transfer learning: start from other weights, optionally with a new head and a frozen backbone.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Transfer {
    /// Weights to start from (ours, or torchvision's converted to safetensors).
    pub init_from: Option<PathBuf>,
    /// Do not load the final layer; it keeps its fresh initialisation (std 0.01; new class count).
    pub reinit_head: bool,
    /// Train only the final layer; the rest stays fixed, its BN layers in evaluation mode.
    pub freeze_backbone: bool,
    /// With `freeze_backbone`: from this epoch on, everything trains.
    pub unfreeze_after: Option<usize>,
    /// Learning-rate multiplier of the backbone once it trains (1 = same as the head).
    pub backbone_lr_mult: f64,
}

/// Whether a parameter belongs to the final classification layer.
pub fn is_head(name: &str) -> bool {
    name.starts_with("fc.") || name.starts_with("classifier.6.")
}

/// A training error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// Loading data failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Unknown model.
    #[error(transparent)]
    Model(#[from] UnknownModel),
    /// Reading or writing weights failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Writing run files failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The loss became NaN or infinite.
    #[error("loss diverged ({loss}) at epoch {epoch}, step {step}: lower the learning rate")]
    Diverged {
        /// Epoch.
        epoch: usize,
        /// Step in the epoch.
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// Something else (bad combination of settings, a checkpoint of another run).
    #[error("{0}")]
    Invalid(String),
}

/// One line of RUN/metrics.jsonl.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (on augmented batches, in training mode).
    pub train_acc: f64,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation top-1 accuracy.
    pub val_top1: f64,
    /// Validation top-5 accuracy.
    pub val_top5: f64,
    /// Training images per second (wall time of the epoch's training part).
    pub images_per_sec: f64,
    /// Fraction of training time spent waiting for the loader.
    pub data_wait_fraction: f64,
}

/// The final summary line.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// Epochs trained in all.
    pub epochs: usize,
    /// Final validation top-1.
    pub val_top1: f64,
    /// Final validation top-5.
    pub val_top5: f64,
    /// Wall time of this invocation.
    pub seconds: f64,
    /// Mean training images/s of this invocation.
    pub images_per_sec: f64,
    /// The run folder.
    pub run_dir: PathBuf,
    /// Crop side of training and validation.
    pub input_size: u32,
    /// Training pipeline preset.
    pub train_pipeline: String,
    /// Validation pipeline preset.
    pub val_pipeline: String,
    /// What was chosen from the data (regime, median image side), when settings were left unset.
    pub data_defaults: Option<serde_json::Value>,
}

/// Validation results.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvalResult {
    /// Mean loss.
    pub loss: f64,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy.
    pub top5: f64,
    /// Images evaluated.
    pub images: usize,
}

/// Checkpoint state kept in the safetensors metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    config: TrainConfig,
    classes: usize,
    /// Epochs completed.
    epochs_done: usize,
    history: Vec<EpochMetrics>,
}

/// Resolves `cpu`, `cuda` or `auto`.
pub fn parse_device(s: &str) -> Result<Device, TrainError> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        "cuda" => Err(TrainError::Invalid(
            "--device cuda: no CUDA device is available to libtorch".into(),
        )),
        "auto" => Ok(Device::cuda_if_available()),
        other => Err(TrainError::Invalid(format!(
            "unknown device `{other}` (cpu, cuda, auto)"
        ))),
    }
}

/// Number of correct predictions in the top `k`.
fn topk_correct(logits: &Tensor, y: &Tensor, k: i64) -> i64 {
    let k = k.min(logits.size()[1]);
    let (_, idx) = logits.topk(k, 1, true, true);
    idx.eq_tensor(&y.unsqueeze(1))
        .any_dim(1, false)
        .sum(Kind::Int64)
        .int64_value(&[])
}

/// Evaluates `model` over every batch of `loader` (epoch 0, in order).
pub fn evaluate(
    model: &dyn ModuleT,
    loader: &Loader,
    device: Device,
) -> Result<EvalResult, TrainError> {
    let mut r = EvalResult::default();
    let (mut loss, mut c1, mut c5) = (0.0, 0i64, 0i64);
    for b in loader.epoch(0) {
        let b = b?;
        let (x, y) = b.to_device(device);
        let logits = tch::no_grad(|| model.forward_t(&x, false));
        loss += logits
            .cross_entropy_loss::<Tensor>(&y, None, Reduction::Sum, -100, 0.0)
            .double_value(&[]);
        c1 += topk_correct(&logits, &y, 1);
        c5 += topk_correct(&logits, &y, 5);
        r.images += b.len();
    }
    let n = r.images.max(1) as f64;
    r.loss = loss / n;
    r.top1 = c1 as f64 / n;
    r.top5 = c5 as f64 / n;
    Ok(r)
}

/// A model with its variables, built for `classes` outputs.
pub struct Net {
    /// Parameters and buffers.
    pub vs: VarStore,
    /// The network.
    pub model: Model,
}

impl Net {
    /// Builds `name` on `device`, initialised from `seed`.
    pub fn new(
        name: &str,
        classes: usize,
        device: Device,
        seed: u64,
        zero_init_residual: bool,
    ) -> Result<Net, TrainError> {
        tch::manual_seed(mix(seed, stream::TRAIN, u64::MAX, 0) as i64);
        let vs = VarStore::new(device);
        let model = build_model(&vs.root(), name, classes as i64, zero_init_residual)?;
        Ok(Net { vs, model })
    }

    /// Trainable parameters by name.
    pub fn named_trainable(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io {
        path: path.to_path_buf(),
        cause: e,
    }
}

/// Trains per `cfg` on `train`/`val` into `run_dir`; with `resume`, continues the run saved in
/// `run_dir/checkpoint.safetensors` (its configuration wins over `cfg`).
pub fn train(
    cfg: TrainConfig,
    train_src: Arc<dyn Source>,
    val_src: Arc<dyn Source>,
    run_dir: &Path,
    device: Device,
    resume: bool,
    progress: bool,
) -> Result<Summary, TrainError> {
    let started = Instant::now();
    if !resume {
        cfg.validate()?;
    }
    std::fs::create_dir_all(run_dir).map_err(io_err(run_dir))?;
    // One writer per run folder; the lock goes with the process, even on kill -9.
    let _lock = lock_run_dir(run_dir)?;
    let ckpt_path = run_dir.join("checkpoint.safetensors");
    let classes = train_src.classes().len();
    if train_src.classes() != val_src.classes() {
        return Err(TrainError::Invalid(format!(
            "the training and validation splits have different classes ({} and {}, first difference: {})",
            train_src.classes().len(),
            val_src.classes().len(),
            first_difference(train_src.classes(), val_src.classes())
        )));
    }
    let (mut state, saved) = if resume {
        let (tensors, meta) = checkpoint::read(&ckpt_path)?;
        let state: State = meta
            .get("augloader")
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| {
                TrainError::Invalid(format!(
                    "{}: no augloader training state in it",
                    ckpt_path.display()
                ))
            })?;
        if let (Some(saved), Some(given)) = (&state.config.data, &cfg.data) {
            if saved.fingerprint != given.fingerprint {
                return Err(TrainError::Invalid(format!(
                    "{}: the run trained on {} (fingerprint {}), the data given is {} (fingerprint {})",
                    ckpt_path.display(),
                    saved.path.display(),
                    saved.fingerprint,
                    given.path.display(),
                    given.fingerprint
                )));
            }
        }
        if state.classes != classes {
            return Err(TrainError::Invalid(format!(
                "{}: run has {} classes, the data {}",
                ckpt_path.display(),
                state.classes,
                classes
            )));
        }
        (state, Some(tensors))
    } else {
        (
            State {
                config: cfg,
                classes,
                epochs_done: 0,
                history: Vec::new(),
            },
            None,
        )
    };
    let cfg = state.config.clone();
    cfg.validate()?;
    let meta = model_meta(&cfg, train_src.classes())?;
    let mut net = Net::new(
        &cfg.model,
        classes,
        device,
        cfg.seed,
        cfg.zero_init_residual,
    )?;
    if let (None, Some(init)) = (&saved, &cfg.transfer.init_from) {
        let (tensors, _) = checkpoint::read(init)?;
        let reinit = cfg.transfer.reinit_head;
        let loaded = checkpoint::load_into(&mut net.vs, init, &tensors, &|n| reinit && is_head(n))?;
        eprintln!(
            "initialised {} tensors from {}",
            loaded.len(),
            init.display()
        );
    }
    let mut opt = Sgd::new(net.named_trainable(), cfg.momentum, cfg.weight_decay);
    if let Some(tensors) = &saved {
        checkpoint::load_into(&mut net.vs, &ckpt_path, tensors, &|_| false)?;
        opt.load_buffers(
            tensors
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("optim.momentum.")
                        .map(|n| (n.to_string(), v.shallow_clone()))
                })
                .collect(),
        );
        eprintln!(
            "resuming {} after epoch {} of {}",
            run_dir.display(),
            state.epochs_done,
            cfg.epochs
        );
    }
    let train_loader = Loader::builder(train_src, cfg.train_pipeline.clone())
        .batch_size(cfg.batch)
        .workers(cfg.workers)
        .seed(cfg.seed)
        .drop_last(true)
        .build()?;
    let val_loader = Loader::builder(val_src, cfg.val_pipeline.clone())
        .batch_size(cfg.batch)
        .workers(cfg.workers)
        .shuffle(false)
        .build()?;
    let steps = match cfg.max_batches {
        0 => train_loader.batches_per_epoch(),
        m => m.min(train_loader.batches_per_epoch()),
    };
    if steps == 0 {
        return Err(TrainError::Invalid(format!(
            "the training set has fewer images ({}) than one batch ({})",
            train_loader.source().len(),
            cfg.batch
        )));
    }
    let metrics_path = run_dir.join("metrics.jsonl");
    if saved.is_none() {
        // A fresh run replaces an earlier one in the folder: nothing of it may pass for ours.
        for old in ["model.safetensors", "checkpoint.safetensors", "curves.png"] {
            match std::fs::remove_file(run_dir.join(old)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(TrainError::Io {
                        path: run_dir.join(old),
                        cause: e,
                    })
                }
                _ => {}
            }
        }
    }
    // The checkpoint's history is the truth: an epoch that logged its metrics but died before
    // its checkpoint is trained again, so rewrite the log from the history.
    let mut log = String::new();
    for m in &state.history {
        log += &serde_json::to_string(m).expect("serialisable");
        log.push('\n');
    }
    std::fs::write(&metrics_path, log).map_err(io_err(&metrics_path))?;
    let (mut images_total, mut train_secs_total) = (0usize, 0.0f64);
    for epoch in state.epochs_done..cfg.epochs {
        let pb = progress.then(|| {
            let pb = ProgressBar::new(steps as u64);
            pb.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:25}] {pos}/{len} {msg} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            pb.set_prefix(format!("{}/{}", epoch + 1, cfg.epochs));
            pb
        });
        let t0 = Instant::now();
        let (mut wait, mut loss_sum, mut correct, mut seen) = (0.0f64, 0.0f64, 0i64, 0usize);
        let mut lr = cfg.lr.at(epoch as f64);
        let t = &cfg.transfer;
        let frozen = t.freeze_backbone && t.unfreeze_after.is_none_or(|u| epoch < u);
        let backbone_scale = if frozen {
            0.0
        } else if t.init_from.is_some() {
            t.backbone_lr_mult
        } else {
            1.0
        };
        opt.set_lr_scale(&|name| if is_head(name) { 1.0 } else { backbone_scale });
        let mut batches = train_loader.epoch(epoch as u64);
        for step in 0..steps {
            let tw = Instant::now();
            let b = match batches.next() {
                Some(b) => b?,
                None => break,
            };
            wait += tw.elapsed().as_secs_f64();
            // Dropout draws from libtorch's RNG: reseed per step so resumed runs match.
            tch::manual_seed(mix(cfg.seed, stream::TRAIN, epoch as u64, step as u64) as i64);
            let (x, y) = b.to_device(device);
            lr = cfg.lr.at(epoch as f64 + step as f64 / steps as f64);
            // A frozen backbone runs in evaluation mode: BN keeps its statistics.
            let logits = net.model.forward_t(&x, !frozen);
            let loss = logits.cross_entropy_loss::<Tensor>(
                &y,
                None,
                Reduction::Mean,
                -100,
                cfg.label_smoothing,
            );
            opt.zero_grad();
            loss.backward();
            opt.step(lr);
            let l = loss.double_value(&[]);
            if !l.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    step,
                    loss: l,
                });
            }
            loss_sum += l * b.len() as f64;
            correct += topk_correct(&logits.detach(), &y, 1);
            seen += b.len();
            if let Some(pb) = &pb {
                pb.set_message(format!(
                    "loss {:.3} acc {:.3} {:.0} img/s",
                    loss_sum / seen as f64,
                    correct as f64 / seen as f64,
                    seen as f64 / t0.elapsed().as_secs_f64()
                ));
                pb.inc(1);
            }
        }
        drop(batches);
        let train_secs = t0.elapsed().as_secs_f64();
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        let v = evaluate(net.model.as_ref(), &val_loader, device)?;
        let m = EpochMetrics {
            epoch,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            val_loss: v.loss,
            val_top1: v.top1,
            val_top5: v.top5,
            images_per_sec: seen as f64 / train_secs,
            data_wait_fraction: wait / train_secs,
        };
        images_total += seen;
        train_secs_total += train_secs;
        let line = serde_json::to_string(&m).expect("serialisable");
        eprintln!("{line}");
        state.history.push(m);
        state.epochs_done = epoch + 1;
        // The checkpoint first: metrics.jsonl never lists an epoch that no checkpoint holds.
        save_checkpoint(&net, &opt, &state, &meta, &ckpt_path)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(io_err(&metrics_path))?;
        writeln!(f, "{line}").map_err(io_err(&metrics_path))?;
        let points: Vec<CurvePoint> = state
            .history
            .iter()
            .map(|m| CurvePoint {
                epoch: m.epoch as f64 + 1.0,
                train_loss: m.train_loss,
                val_loss: m.val_loss,
                train_acc: m.train_acc,
                val_acc: m.val_top1,
            })
            .collect();
        let curves = run_dir.join("curves.png");
        plot_curves(
            &points,
            &curves,
            &format!("{} on {} classes", cfg.model, classes),
        )
        .map_err(|e| TrainError::Io {
            path: curves.clone(),
            cause: std::io::Error::other(e),
        })?;
    }
    let model_path = run_dir.join("model.safetensors");
    checkpoint::write(
        &model_path,
        &checkpoint::state_dict(&net.vs),
        Some(meta.to_metadata()),
    )?;
    let last = state.history.last().cloned();
    Ok(Summary {
        model: cfg.model.clone(),
        epochs: state.epochs_done,
        val_top1: last.as_ref().map_or(0.0, |m| m.val_top1),
        val_top5: last.as_ref().map_or(0.0, |m| m.val_top5),
        seconds: started.elapsed().as_secs_f64(),
        images_per_sec: images_total as f64 / train_secs_total.max(1e-9),
        run_dir: run_dir.to_path_buf(),
        input_size: meta.input_size,
        train_pipeline: cfg.train_pipeline.name.clone(),
        val_pipeline: cfg.val_pipeline.name.clone(),
        data_defaults: cfg.data_defaults.as_ref().map(|d| {
            serde_json::json!({
                "regime": d.regime,
                "median_short_side": d.profile.median_short_side,
                "images_sampled": d.profile.sampled,
            })
        }),
    })
}

/// Locks `run_dir/.lock` for this process (released when the file closes or the process dies);
/// a second writer is refused with the holder's pid.
fn lock_run_dir(run_dir: &Path) -> Result<std::fs::File, TrainError> {
    let path = run_dir.join(".lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(TrainError::Invalid(format!(
                "{}: another training process (pid {}) is writing this run folder",
                run_dir.display(),
                holder.trim()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&path)(e)),
    }
    f.set_len(0).map_err(io_err(&path))?;
    write!(f, "{}", std::process::id()).map_err(io_err(&path))?;
    Ok(f)
}

fn first_difference(a: &[String], b: &[String]) -> String {
    match (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        Some(i) => format!(
            "class {i} is {} in training and {} in validation",
            a.get(i).map_or("missing".into(), |c| format!("`{c}`")),
            b.get(i).map_or("missing".into(), |c| format!("`{c}`"))
        ),
        None => "none".into(),
    }
}

/// The model file's metadata for a run of `cfg`; refuses train and validation pipelines that
/// disagree on normalisation or output size (evaluation would then see other inputs).
fn model_meta(cfg: &TrainConfig, classes: &[String]) -> Result<ModelMeta, TrainError> {
    let (t, v) = (&cfg.train_pipeline, &cfg.val_pipeline);
    if t.normalize != v.normalize {
        return Err(TrainError::Invalid(format!(
            "the training pipeline `{}` normalises with mean {:?} std {:?}, the validation pipeline `{}` with mean {:?} std {:?}: choose presets of one family (cifar-train with cifar-eval, resnet-train or inception-train with eval)",
            t.name, t.normalize.mean, t.normalize.std, v.name, v.normalize.mean, v.normalize.std
        )));
    }
    let input_size = match (t.output_size(), v.output_size()) {
        (Some(a), Some(b)) if a != b => {
            return Err(TrainError::Invalid(format!(
                "the training pipeline `{}` makes {}x{} crops, the validation pipeline `{}` {}x{}",
                t.name, a.1, a.0, v.name, b.1, b.0
            )))
        }
        (Some((h, _)), _) | (None, Some((h, _))) => h,
        (None, None) => cfg.data_defaults.as_ref().map_or(0, |d| d.input_size),
    };
    Ok(ModelMeta {
        augloader_version: env!("CARGO_PKG_VERSION").to_string(),
        model: cfg.model.clone(),
        classes: classes.to_vec(),
        input_size,
        normalize: t.normalize,
        train_pipeline: t.clone(),
        val_pipeline: v.clone(),
        data_defaults: cfg.data_defaults.clone(),
    })
}

fn save_checkpoint(
    net: &Net,
    opt: &Sgd,
    state: &State,
    meta: &ModelMeta,
    path: &Path,
) -> Result<(), TrainError> {
    let mut tensors = checkpoint::state_dict(&net.vs);
    tensors.extend(
        opt.buffers
            .iter()
            .map(|(k, v)| (format!("optim.momentum.{k}"), v.shallow_clone())),
    );
    let mut meta_map = meta.to_metadata();
    meta_map.insert(
        "augloader".to_string(),
        serde_json::to_string(state).expect("serialisable"),
    );
    checkpoint::write(path, &tensors, Some(meta_map))?;
    Ok(())
}

/// The settings saved in a run folder's checkpoint (what `--resume` continues).
pub fn saved_config(run_dir: &Path) -> Result<TrainConfig, TrainError> {
    let path = run_dir.join("checkpoint.safetensors");
    let (_, meta) = checkpoint::read(&path)?;
    meta.get("augloader")
        .and_then(|s| serde_json::from_str::<State>(s).ok())
        .map(|s| s.config)
        .ok_or_else(|| {
            TrainError::Invalid(format!(
                "{}: no augloader training state in it",
                path.display()
            ))
        })
}

/// Loads model weights from a file written by [`checkpoint::save_model`] (or a checkpoint).
pub fn load_weights(net: &mut Net, path: &Path) -> Result<(), TrainError> {
    let (tensors, _) = checkpoint::read(path)?;
    checkpoint::load_into(&mut net.vs, path, &tensors, &|_| false)?;
    Ok(())
}

/// Reads a model file's weights and, when it was written by a training run, its metadata.
pub fn read_model_file(
    path: &Path,
) -> Result<(checkpoint::Tensors, Option<ModelMeta>), TrainError> {
    let (tensors, meta) = checkpoint::read(path)?;
    let meta = ModelMeta::from_metadata(path, &meta)?;
    Ok((tensors, meta))
}
