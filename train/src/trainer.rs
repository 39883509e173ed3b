//! Training runs: the run loop (SGD over the loader's batches, validation each epoch, metrics,
//! checkpoints each epoch, resume). Settings are in `config`, the step and evaluation in
//! `step`, the run folder's files in `run_dir`; this module re-exports their public items.

use crate::tensor::BatchTensors;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tch::Device;

use super::checkpoint;
use super::config::{check_same_classes, model_meta};
use super::error::io_err;
use super::meta::ModelMeta;
use super::run_dir::{
    clear_stale_run_files, lock_run_dir, prepare_run_files, save_checkpoint, start_state, State,
};
use super::sgd::Sgd;
pub use augloader::observe::EpochMetrics;
use augloader::observe::{Event, Observer};
use augloader::rng::{mix, stream};
use augloader::source::Source;
use augloader::Loader;

pub use super::config::{parse_device, DatasetId, HeadInit, TrainConfig, Transfer, DEVICES};
pub use super::error::TrainError;
pub use super::run_dir::{load_weights, read_model_file, saved_config};
pub use super::step::{evaluate, train_step, EvalResult, Net};

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
    #[serde(with = "super::config::path_serde")]
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
    /// An earlier run's files are still in the folder (until the first checkpoint).
    stale: bool,
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

/// Whether [`train`] starts a run or continues the one saved in its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run with the job's settings.
    Fresh,
    /// Continue the run saved in `run_dir/checkpoint.safetensors`; its settings win over the
    /// job's.
    Resume,
    /// A new run into a folder that may hold an earlier one: the earlier files stay until this
    /// run's first checkpoint replaces them ([`Start::Fresh`] refuses such a folder).
    Overwrite,
}

/// One training run: its settings, data, folder, device, and how it starts.
#[derive(Debug)]
pub struct TrainJob<'a> {
    /// The settings (ignored on resume, where the checkpoint's win).
    pub cfg: TrainConfig,
    /// The training split.
    pub train: Arc<dyn Source>,
    /// The validation split.
    pub val: Arc<dyn Source>,
    /// The run folder (checkpoint, metrics, model files).
    pub run_dir: &'a Path,
    /// Where the model runs.
    pub device: Device,
    /// A new run or a continued one.
    pub start: Start,
}

/// Trains `job`. Progress, messages and each finished epoch go to `obs`; the summary holds the
/// run's whole history.
pub fn train(job: TrainJob<'_>, obs: &dyn Observer) -> Result<Summary, TrainError> {
    let started = Instant::now();
    let device = job.device;
    let mut run = Run::open(job, obs)?;
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
    fn open(job: TrainJob<'_>, obs: &'o dyn Observer) -> Result<Run<'o>, TrainError> {
        let TrainJob {
            cfg,
            train: train_src,
            val: val_src,
            run_dir,
            device,
            start,
        } = job;
        let resume = start == Start::Resume;
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
        let stale = start == Start::Overwrite;
        if !stale {
            prepare_run_files(run_dir, start == Start::Fresh, &state.history)?;
        }
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
            stale,
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
            let soft = b.targets_tensor().map(|t| t.to_device(self.device));
            t.lr = cfg.lr.at(epoch as f64 + step as f64 / steps as f64);
            // A frozen backbone runs in evaluation mode: BN keeps its statistics.
            let (loss, correct) = train_step(
                self.net.model.as_ref(),
                &mut self.opt,
                (&x, soft.as_ref().unwrap_or(&y)),
                t.lr,
                if soft.is_some() {
                    0.0
                } else {
                    cfg.label_smoothing
                },
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
        check_finite(&self.net, self.state.epochs_done - 1)?;
        save_checkpoint(&self.net, &self.opt, &self.state, &self.meta, &ckpt_path)?;
        if std::mem::take(&mut self.stale) {
            // The earlier run's files go once this run has a checkpoint of its own.
            clear_stale_run_files(&self.run_dir)?;
        }
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
        if reinit && cfg.transfer.head_init == HeadInit::Kaiming {
            super::layers::kaiming_reinit(&net.vs, head);
        }
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
    let mut train = Loader::builder(train_src, cfg.train_pipeline.clone())
        .batch_size(cfg.batch)
        .workers(cfg.workers)
        .seed(cfg.seed)
        .drop_last(true);
    if let Some(m) = cfg.mix {
        // Smoothing goes into the soft targets; the loss then takes them as they are.
        train = train.mix(augloader::transform::Mix {
            label_smoothing: cfg.label_smoothing,
            ..m
        });
    }
    let train = train.build()?;
    let val = Loader::builder(val_src, cfg.val_pipeline.clone())
        .batch_size(cfg.batch)
        .workers(cfg.workers)
        .shuffle(false)
        .build()?;
    Ok((train, val))
}

/// Every parameter and buffer finite, or the first that is not, named (before a checkpoint:
/// a non-finite model never replaces a good one).
fn check_finite(net: &Net, epoch: usize) -> Result<(), TrainError> {
    for (name, t) in checkpoint::state_dict(&net.vs) {
        if checkpoint::non_finite(&t).is_some() {
            let hint = if name.contains("running_") {
                " (BatchNorm statistics of one value per channel: a batch of 1 sample at the \
                 stage's spatial size; PyTorch refuses it with \"Expected more than 1 value per \
                 channel when training\": use a larger --batch or smaller strides)"
            } else {
                " (lower the learning rate)"
            };
            return Err(TrainError::NonFinite {
                epoch,
                tensor: name,
                hint: hint.into(),
            });
        }
    }
    Ok(())
}
