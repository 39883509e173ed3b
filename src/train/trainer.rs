//! Training runs: SGD over the loader's batches, validation each epoch, metrics, curves,
//! atomic checkpoints with optimiser and loader state, and resume.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Reduction, Tensor};

use super::checkpoint::{self, CheckpointError};
use super::meta::ModelMeta;
use super::sgd::{LrPolicy, Sgd};
use super::{build_model, Model, UnknownModel};
use crate::defaults::DataDefaults;
use crate::loader::{LoadError, Loader};
pub use crate::observe::EpochMetrics;
use crate::observe::{Event, Observer};
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
        #[source]
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
    /// Every epoch of the run (also in RUN/metrics.jsonl); not part of the summary line.
    #[serde(skip)]
    pub history: Vec<EpochMetrics>,
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

/// The devices [`parse_device`] takes, with what each means (for `--help` and errors).
pub const DEVICES: [(&str, &str); 3] = [
    ("cpu", "the CPU"),
    (
        "cuda",
        "the first CUDA device (an error when libtorch sees none)",
    ),
    ("auto", "CUDA when libtorch sees a device, else the CPU"),
];

/// Resolves a name of [`DEVICES`].
pub fn parse_device(s: &str) -> Result<Device, TrainError> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        "cuda" => Err(TrainError::Invalid(
            "--device cuda: no CUDA device is available to libtorch".into(),
        )),
        "auto" => Ok(Device::cuda_if_available()),
        other => Err(TrainError::Invalid(format!(
            "unknown device `{other}` ({})",
            DEVICES.map(|d| d.0).join(", ")
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

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("device", &self.vs.device())
            .field("variables", &self.vs.variables().len())
            .finish_non_exhaustive()
    }
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

/// One SGD step on the batch `(x, y)`: forward (in training mode when `train_mode`), cross-entropy
/// with `label_smoothing`, backward, update at `lr`. Returns the loss (before the update) and the
/// number of correct top-1 predictions. Shared by training runs and the tuning recipe.
pub fn train_step(
    model: &dyn ModuleT,
    opt: &mut Sgd,
    (x, y): (&Tensor, &Tensor),
    lr: f64,
    label_smoothing: f64,
    train_mode: bool,
) -> (f64, i64) {
    let logits = model.forward_t(x, train_mode);
    let loss = logits.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, label_smoothing);
    opt.zero_grad();
    loss.backward();
    opt.step(lr);
    (loss.double_value(&[]), topk_correct(&logits.detach(), y, 1))
}

/// A run being trained: its settings, state, model, optimiser, loaders and files.
struct Run<'o> {
    cfg: TrainConfig,
    state: State,
    meta: ModelMeta,
    net: Net,
    opt: Sgd,
    train_loader: Loader,
    val_loader: Loader,
    steps: usize,
    device: Device,
    run_dir: PathBuf,
    title: String,
    obs: &'o dyn Observer,
    _lock: std::fs::File,
}

/// What one epoch's training part measured.
struct EpochTrained {
    lr: f64,
    loss_sum: f64,
    correct: i64,
    seen: usize,
    wait: f64,
    secs: f64,
}

/// Trains per `cfg` on `train`/`val` into `run_dir`; with `resume`, continues the run saved in
/// `run_dir/checkpoint.safetensors` (its configuration wins over `cfg`). Progress, messages and
/// each finished epoch go to `obs`; the summary holds the run's whole history.
pub fn train(
    cfg: TrainConfig,
    train_src: Arc<dyn Source>,
    val_src: Arc<dyn Source>,
    run_dir: &Path,
    device: Device,
    resume: bool,
    obs: &dyn Observer,
) -> Result<Summary, TrainError> {
    let started = Instant::now();
    let mut run = Run::open(cfg, train_src, val_src, run_dir, device, resume, obs)?;
    let (mut images, mut secs) = (0usize, 0.0f64);
    for epoch in run.state.epochs_done..run.cfg.epochs {
        let t = run.train_epoch(epoch)?;
        let v = evaluate(run.net.model.as_ref(), &run.val_loader, device)?;
        (images, secs) = (images + t.seen, secs + t.secs);
        run.record(EpochMetrics {
            epoch,
            lr: t.lr,
            train_loss: t.loss_sum / t.seen.max(1) as f64,
            train_acc: t.correct as f64 / t.seen.max(1) as f64,
            val_loss: v.loss,
            val_top1: v.top1,
            val_top5: v.top5,
            images_per_sec: t.seen as f64 / t.secs,
            data_wait_fraction: t.wait / t.secs,
        })?;
    }
    run.finish(started.elapsed().as_secs_f64(), images, secs)
}

impl<'o> Run<'o> {
    /// Checks and locks the folder, reads the saved state (resume) or starts one, builds the
    /// model, optimiser and loaders, and rewrites the metrics log from the state's history.
    fn open(
        cfg: TrainConfig,
        train_src: Arc<dyn Source>,
        val_src: Arc<dyn Source>,
        run_dir: &Path,
        device: Device,
        resume: bool,
        obs: &'o dyn Observer,
    ) -> Result<Run<'o>, TrainError> {
        if !resume {
            cfg.validate()?;
        }
        std::fs::create_dir_all(run_dir).map_err(io_err(run_dir))?;
        // One writer per run folder; the lock goes with the process, even on kill -9.
        let lock = lock_run_dir(run_dir)?;
        check_same_classes(train_src.classes(), val_src.classes())?;
        let ckpt_path = run_dir.join("checkpoint.safetensors");
        let (state, saved) = start_state(cfg, train_src.classes().len(), &ckpt_path, resume)?;
        let cfg = state.config.clone();
        cfg.validate()?;
        let meta = model_meta(&cfg, train_src.classes())?;
        let (net, opt) = build_net(&cfg, state.classes, device, saved.as_ref(), &ckpt_path, obs)?;
        if saved.is_some() {
            obs.event(Event::Note(&format!(
                "resuming {} after epoch {} of {}",
                run_dir.display(),
                state.epochs_done,
                cfg.epochs
            )));
        }
        let (train_loader, val_loader) = loaders(&cfg, train_src, val_src)?;
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
        prepare_run_files(run_dir, saved.is_none(), &state.history)?;
        Ok(Run {
            title: format!("{} on {} classes", cfg.model, state.classes),
            cfg,
            state,
            meta,
            net,
            opt,
            train_loader,
            val_loader,
            steps,
            device,
            run_dir: run_dir.to_path_buf(),
            obs,
            _lock: lock,
        })
    }

    /// The training part of `epoch`: its steps, with progress reported to the observer.
    fn train_epoch(&mut self, epoch: usize) -> Result<EpochTrained, TrainError> {
        let frozen = self.set_lr_scales(epoch);
        let (cfg, steps) = (&self.cfg, self.steps);
        let label = format!("epoch {}/{}", epoch + 1, cfg.epochs);
        self.obs.event(Event::Begin {
            label: &label,
            total: steps as u64,
        });
        let t0 = Instant::now();
        let mut t = EpochTrained {
            lr: cfg.lr.at(epoch as f64),
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            wait: 0.0,
            secs: 0.0,
        };
        let mut batches = self.train_loader.epoch(epoch as u64);
        for step in 0..steps {
            let tw = Instant::now();
            let b = match batches.next() {
                Some(b) => b?,
                None => break,
            };
            t.wait += tw.elapsed().as_secs_f64();
            // Dropout draws from libtorch's RNG: reseed per step so resumed runs match.
            tch::manual_seed(mix(cfg.seed, stream::TRAIN, epoch as u64, step as u64) as i64);
            let (x, y) = b.to_device(self.device);
            t.lr = cfg.lr.at(epoch as f64 + step as f64 / steps as f64);
            // A frozen backbone runs in evaluation mode: BN keeps its statistics.
            let (loss, correct) = train_step(
                self.net.model.as_ref(),
                &mut self.opt,
                (&x, &y),
                t.lr,
                cfg.label_smoothing,
                !frozen,
            );
            if !loss.is_finite() {
                return Err(TrainError::Diverged { epoch, step, loss });
            }
            t.loss_sum += loss * b.len() as f64;
            t.correct += correct;
            t.seen += b.len();
            let status = format!(
                "loss {:.3} acc {:.3} {:.0} img/s",
                t.loss_sum / t.seen as f64,
                t.correct as f64 / t.seen as f64,
                t.seen as f64 / t0.elapsed().as_secs_f64()
            );
            self.obs.event(Event::Progress {
                done: step as u64 + 1,
                status: &status,
            });
        }
        drop(batches);
        t.secs = t0.elapsed().as_secs_f64();
        self.obs.event(Event::End);
        Ok(t)
    }

    /// Sets the optimiser's per-parameter learning-rate scales for `epoch`; returns whether the
    /// backbone is frozen in it.
    fn set_lr_scales(&mut self, epoch: usize) -> bool {
        let t = &self.cfg.transfer;
        let frozen = t.freeze_backbone && t.unfreeze_after.is_none_or(|u| epoch < u);
        let backbone_scale = if frozen {
            0.0
        } else if t.init_from.is_some() {
            t.backbone_lr_mult
        } else {
            1.0
        };
        let head = super::head_prefix(&self.cfg.model);
        self.opt.set_lr_scale(&|name| {
            if name.starts_with(head) {
                1.0
            } else {
                backbone_scale
            }
        });
        frozen
    }

    /// Adds a finished epoch: checkpoint first (metrics.jsonl never lists an epoch that no
    /// checkpoint holds), then the metrics line, then the observer.
    fn record(&mut self, m: EpochMetrics) -> Result<(), TrainError> {
        let line = serde_json::to_string(&m).expect("serialisable");
        self.state.epochs_done = m.epoch + 1;
        self.state.history.push(m);
        let ckpt_path = self.run_dir.join("checkpoint.safetensors");
        save_checkpoint(&self.net, &self.opt, &self.state, &self.meta, &ckpt_path)?;
        let metrics_path = self.run_dir.join("metrics.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(io_err(&metrics_path))?;
        writeln!(f, "{line}").map_err(io_err(&metrics_path))?;
        self.obs.event(Event::Epoch {
            run_dir: &self.run_dir,
            title: &self.title,
            history: &self.state.history,
        });
        Ok(())
    }

    /// Writes the model file and sums the run up.
    fn finish(self, seconds: f64, images: usize, train_secs: f64) -> Result<Summary, TrainError> {
        let model_path = self.run_dir.join("model.safetensors");
        checkpoint::write(
            &model_path,
            &checkpoint::state_dict(&self.net.vs),
            Some(self.meta.to_metadata()),
        )?;
        let (cfg, last) = (&self.cfg, self.state.history.last());
        Ok(Summary {
            model: cfg.model.clone(),
            epochs: self.state.epochs_done,
            val_top1: last.map_or(0.0, |m| m.val_top1),
            val_top5: last.map_or(0.0, |m| m.val_top5),
            seconds,
            images_per_sec: images as f64 / train_secs.max(1e-9),
            run_dir: self.run_dir.clone(),
            input_size: self.meta.input_size,
            train_pipeline: cfg.train_pipeline.name.clone(),
            val_pipeline: cfg.val_pipeline.name.clone(),
            data_defaults: cfg.data_defaults.as_ref().map(|d| {
                serde_json::json!({
                    "regime": d.regime,
                    "median_short_side": d.profile.median_short_side,
                    "images_sampled": d.profile.sampled,
                })
            }),
            history: self.state.history.clone(),
        })
    }
}

/// Refuses training and validation splits with different class lists.
fn check_same_classes(train: &[String], val: &[String]) -> Result<(), TrainError> {
    if train == val {
        return Ok(());
    }
    Err(TrainError::Invalid(format!(
        "the training and validation splits have different classes ({} and {}, first difference: {})",
        train.len(),
        val.len(),
        first_difference(train, val)
    )))
}

/// A fresh state for `cfg`, or (with `resume`) the one saved in the checkpoint, checked against
/// the data; with the saved tensors.
fn start_state(
    cfg: TrainConfig,
    classes: usize,
    ckpt_path: &Path,
    resume: bool,
) -> Result<(State, Option<checkpoint::Tensors>), TrainError> {
    if !resume {
        let state = State {
            config: cfg,
            classes,
            epochs_done: 0,
            history: Vec::new(),
        };
        return Ok((state, None));
    }
    let (tensors, meta) = checkpoint::read(ckpt_path)?;
    let state = parse_state(ckpt_path, &meta)?;
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
    Ok((state, Some(tensors)))
}

/// The training state in a checkpoint's metadata.
fn parse_state(
    path: &Path,
    meta: &std::collections::HashMap<String, String>,
) -> Result<State, TrainError> {
    meta.get("augloader")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| {
            TrainError::Invalid(format!(
                "{}: no augloader training state in it",
                path.display()
            ))
        })
}

/// The model and optimiser of a run: initialised from the seed, then from `init_from` (fresh
/// runs) or from the checkpoint's weights and momentum buffers (resumed runs).
fn build_net(
    cfg: &TrainConfig,
    classes: usize,
    device: Device,
    saved: Option<&checkpoint::Tensors>,
    ckpt_path: &Path,
    obs: &dyn Observer,
) -> Result<(Net, Sgd), TrainError> {
    let mut net = Net::new(
        &cfg.model,
        classes,
        device,
        cfg.seed,
        cfg.zero_init_residual,
    )?;
    if let (None, Some(init)) = (saved, &cfg.transfer.init_from) {
        let (tensors, _) = checkpoint::read(init)?;
        let head = super::head_prefix(&cfg.model);
        let reinit = cfg.transfer.reinit_head;
        let skip = |n: &str| reinit && n.starts_with(head);
        let loaded = checkpoint::load_into(&mut net.vs, init, &tensors, &skip)?;
        obs.event(Event::Note(&format!(
            "initialised {} tensors from {}",
            loaded.len(),
            init.display()
        )));
    }
    let mut opt = Sgd::new(net.named_trainable(), cfg.momentum, cfg.weight_decay);
    if let Some(tensors) = saved {
        checkpoint::load_into(&mut net.vs, ckpt_path, tensors, &|_| false)?;
        opt.load_buffers(
            tensors
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("optim.momentum.")
                        .map(|n| (n.to_string(), v.shallow_clone()))
                })
                .collect(),
        );
    }
    Ok((net, opt))
}

/// The training loader (shuffled, full batches) and the validation loader (in order).
fn loaders(
    cfg: &TrainConfig,
    train_src: Arc<dyn Source>,
    val_src: Arc<dyn Source>,
) -> Result<(Loader, Loader), TrainError> {
    let train = Loader::builder(train_src, cfg.train_pipeline.clone())
        .batch_size(cfg.batch)
        .workers(cfg.workers)
        .seed(cfg.seed)
        .drop_last(true)
        .build()?;
    let val = Loader::builder(val_src, cfg.val_pipeline.clone())
        .batch_size(cfg.batch)
        .workers(cfg.workers)
        .shuffle(false)
        .build()?;
    Ok((train, val))
}

/// A fresh run removes an earlier run's model, checkpoint and curves (nothing of it may pass for
/// ours); every run rewrites metrics.jsonl from the checkpoint's history, which is the truth: an
/// epoch that logged its metrics but died before its checkpoint is trained again.
fn prepare_run_files(
    run_dir: &Path,
    fresh: bool,
    history: &[EpochMetrics],
) -> Result<(), TrainError> {
    if fresh {
        for old in ["model.safetensors", "checkpoint.safetensors", "curves.png"] {
            let path = run_dir.join(old);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
                _ => {}
            }
        }
    }
    let mut log = String::new();
    for m in history {
        log += &serde_json::to_string(m).expect("serialisable");
        log.push('\n');
    }
    let metrics_path = run_dir.join("metrics.jsonl");
    std::fs::write(&metrics_path, log).map_err(io_err(&metrics_path))
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
    Ok(parse_state(&path, &meta)?.config)
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
