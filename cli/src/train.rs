//! `augloader train`: a training run (or a resumed one) with libtorch; its flags are resolved
//! into a [`TrainConfig`] here, which `tune` shares.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use augloader::defaults::DataDefaults;
use augloader::source::{Source, Split};
use augloader::transform::Mix;
use augloader::transform::Pipeline;
use augloader_train::sgd::{LrPolicy, Schedule};
use augloader_train::trainer::{self, TrainConfig};

use super::args::{data_dir, excluding, open_split, MixArgs, PipelineArgs};
use super::console::Console;
use super::ranges;

#[derive(Clone, Copy, ValueEnum)]
pub enum ScheduleArg {
    Cosine,
    Step,
    Constant,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Dataset folder with train and val splits (default: the synthetic dataset).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Model (see the list below).
    #[arg(long, default_value = "resnet20", value_parser = ranges::model, long_help = ranges::model_help())]
    pub model: String,
    /// Epochs.
    #[arg(long, default_value_t = 16, value_parser = ranges::count)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = augloader::defaults::BATCH_SIZE, value_parser = ranges::count)]
    batch: usize,
    /// Peak learning rate (the default, 0.1, goes with the default batch of 64: 0.05 was tuned
    /// for 32, and twice the batch takes twice the rate).
    #[arg(long, default_value_t = 0.1, value_parser = ranges::positive, allow_hyphen_values = true)]
    lr: f64,
    /// Learning-rate schedule after warm-up.
    #[arg(long, value_enum, default_value = "cosine")]
    schedule: ScheduleArg,
    /// For --schedule step: decay every this many epochs.
    #[arg(long, default_value_t = 30, value_parser = ranges::count)]
    step_every: usize,
    /// For --schedule step: decay factor.
    #[arg(long, default_value_t = 0.1, value_parser = ranges::positive, allow_hyphen_values = true)]
    step_gamma: f64,
    /// Linear warm-up in epochs.
    #[arg(long, default_value_t = 1.0, value_parser = ranges::nonneg, allow_hyphen_values = true)]
    warmup: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, value_parser = ranges::fraction, allow_hyphen_values = true)]
    momentum: f64,
    /// Weight decay (not applied to BN parameters and biases).
    #[arg(long, default_value_t = 5e-4, value_parser = ranges::nonneg, allow_hyphen_values = true)]
    wd: f64,
    /// Label smoothing (default 0; 0.1 with the tv2-train and deit-train recipes).
    #[arg(long, value_parser = ranges::fraction, allow_hyphen_values = true)]
    label_smoothing: Option<f64>,
    #[command(flatten)]
    mix: MixArgs,
    /// Zero-initialise each residual branch's last BN.
    #[arg(long)]
    zero_init_residual: bool,
    /// Loader worker threads (default: the machine's cores, shared by LOCAL_WORLD_SIZE).
    #[arg(long, value_parser = ranges::workers)]
    workers: Option<usize>,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long, value_parser = ranges::threads)]
    threads: Option<i32>,
    /// Run folder (metrics.jsonl, curves.png, checkpoint.safetensors, model.safetensors).
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
    /// Continue the run in this folder from its last checkpoint (its saved settings are used).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Train into an --out folder that holds an earlier run: its model, checkpoint and curves
    /// stay until this run's first checkpoint replaces them (without it such a folder is
    /// refused).
    #[arg(long)]
    overwrite: bool,
    /// Leave out the samples named in FILE (as `augloader check --write-exclude` writes them);
    /// a resumed run needs the same list.
    #[arg(long)]
    exclude: Option<PathBuf>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device.
    #[arg(long, default_value = "auto", value_parser = ranges::device())]
    device: String,
    /// Input side for training and validation crops (default: from the images' size: small
    /// square images at their own size, images under 128 px at 32, photos at 224).
    #[arg(long = "input-size", value_parser = ranges::side)]
    input_size: Option<u32>,
    /// Validation pipeline preset (default: cifar-eval after cifar-train, eval otherwise; or
    /// chosen from the images' size with the training preset).
    #[arg(long, value_parser = ranges::presets())]
    val_pipeline: Option<String>,
    /// Stop each epoch after this many batches (0: all), for quick runs.
    #[arg(long, default_value_t = 0)]
    max_batches: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Start from these weights (ours or torchvision's, as safetensors).
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// With --init-from: a new final layer for this dataset's classes.
    #[arg(long)]
    reinit_head: bool,
    /// With --reinit-head: the new layer's initialisation: small (normal, std 0.01: the initial
    /// loss is ln C) or kaiming (normal, std sqrt(2/fan_in), as the lecture notes say).
    #[arg(long, default_value = "small", value_parser = ["small", "kaiming"])]
    head_init: String,
    /// Train only the final layer (backbone fixed, its BN in evaluation mode).
    #[arg(long)]
    freeze_backbone: bool,
    /// With --freeze-backbone: fine-tune everything from this epoch on.
    #[arg(long)]
    unfreeze_after: Option<usize>,
    /// Backbone learning rate as a fraction of the head's when fine-tuning from --init-from.
    #[arg(long, default_value_t = 0.1, value_parser = ranges::nonneg, allow_hyphen_values = true)]
    backbone_lr_mult: f64,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// What `train` and `tune` run on: the configuration, the splits and the device.
pub struct Setup {
    pub cfg: TrainConfig,
    pub train: Arc<dyn Source>,
    pub val: Arc<dyn Source>,
    pub device: tch::Device,
}

/// Resolves `a` into a training configuration, data and device.
/// The validation preset of the training preset's family, unless named.
fn val_pipeline(a: &TrainArgs, defaults: &DataDefaults) -> Result<Pipeline> {
    let size = defaults.input_size;
    let p = match (&a.val_pipeline, &a.pipeline.pipeline) {
        (Some(name), _) => Pipeline::preset(name)?.with_size(size),
        (None, Some(t)) if t.starts_with("cifar") => Pipeline::cifar_eval(),
        (None, Some(t)) if t.starts_with("tv2") => Pipeline::tv2_eval().with_size(size),
        (None, Some(_)) => Pipeline::eval().with_size(size),
        (None, None) => defaults.val.clone(),
    };
    p.validate()?;
    Ok(p)
}

/// Label smoothing and batch mixing: the flags, over the named recipe's (tv2-train and
/// deit-train bring MixUp / CutMix and smoothing 0.1).
fn mixing(a: &TrainArgs) -> (f64, Option<Mix>) {
    let recipe = a.pipeline.pipeline.as_deref().and_then(Mix::recipe);
    let smoothing = a
        .label_smoothing
        .unwrap_or(recipe.map_or(0.0, |r| r.label_smoothing));
    (smoothing, a.mix.resolve(recipe, smoothing))
}

pub fn setup(a: &TrainArgs) -> Result<Setup> {
    let dir = data_dir(&a.data)?;
    let train_src = excluding(open_split(&dir, Split::Train)?, &dir, a.exclude.as_deref())?;
    let val_src = excluding(open_split(&dir, Split::Val)?, &dir, a.exclude.as_deref())?;
    // Size and presets left unset follow the images (32 px digits are not 224 px photos).
    let defaults = DataDefaults::for_source(train_src.as_ref(), a.input_size.or(a.pipeline.size));
    let size = defaults.input_size;
    let train_base = match &a.pipeline.pipeline {
        Some(name) => Pipeline::preset(name)?.with_size(size),
        None => defaults.train.clone(),
    };
    let train_pipeline = PipelineArgs {
        size: None,
        ..a.pipeline.clone()
    }
    .apply(train_base)?;
    let train_pipeline = match a.pipeline.size {
        Some(s) if s != size => train_pipeline.with_size(s),
        _ => train_pipeline,
    };
    let val_pipeline = val_pipeline(a, &defaults)?;
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    let device = trainer::parse_device(&a.device)?;
    let (label_smoothing, mix) = mixing(a);
    let cfg = TrainConfig {
        model: a.model.clone(),
        epochs: a.epochs,
        batch: a.batch,
        lr: LrPolicy {
            base: a.lr,
            schedule: match a.schedule {
                ScheduleArg::Cosine => Schedule::Cosine,
                ScheduleArg::Constant => Schedule::Constant,
                ScheduleArg::Step => Schedule::Step {
                    every: a.step_every,
                    gamma: a.step_gamma,
                },
            },
            warmup_epochs: a.warmup,
            epochs: a.epochs,
        },
        momentum: a.momentum,
        weight_decay: a.wd,
        label_smoothing,
        mix,
        zero_init_residual: a.zero_init_residual,
        workers: a.workers.unwrap_or_else(augloader::defaults::workers),
        seed: a.seed,
        train_pipeline,
        val_pipeline,
        max_batches: a.max_batches,
        transfer: trainer::Transfer {
            init_from: a.init_from.clone(),
            reinit_head: a.reinit_head,
            head_init: if a.head_init == "kaiming" {
                trainer::HeadInit::Kaiming
            } else {
                trainer::HeadInit::Small
            },
            freeze_backbone: a.freeze_backbone,
            unfreeze_after: a.unfreeze_after,
            backbone_lr_mult: a.backbone_lr_mult,
        },
        data_defaults: Some(defaults),
        data: Some(trainer::DatasetId::of(
            a.data.as_deref().unwrap_or(&dir),
            train_src.as_ref(),
        )),
    };
    Ok(Setup {
        cfg,
        train: train_src,
        val: val_src,
        device,
    })
}

/// Flags that may accompany `--resume` (everything else comes from the saved run).
const RESUME_FLAGS: [&str; 7] = [
    "--resume",
    "--data",
    "--exclude",
    "--quiet",
    "--threads",
    "--device",
    "--out",
];

/// Runs the command; `given` names the flags given on the command line (clap's value sources).
pub fn run(mut a: TrainArgs, given: &[String]) -> Result<()> {
    let run_dir = match &a.resume {
        Some(r) => {
            let given: Vec<&str> = given
                .iter()
                .map(String::as_str)
                .filter(|x| !RESUME_FLAGS.contains(x))
                .collect();
            if !given.is_empty() {
                anyhow::bail!(
                    "{} with --resume: a resumed run keeps its saved settings (only {} may be given)",
                    given.join(", "),
                    RESUME_FLAGS[1..].join(", ")
                );
            }
            // Without --data, the run's own dataset, not the default one.
            let saved = trainer::saved_config(r)?;
            if a.data.is_none() {
                a.data = saved.data.map(|d| d.path);
            }
            r.clone()
        }
        None => a.out.clone(),
    };
    let mut inputs: Vec<(&str, &std::path::Path)> = Vec::new();
    if let Some(d) = &a.data {
        inputs.push(("--data", d));
    }
    if let Some(p) = &a.init_from {
        inputs.push(("--init-from", p));
    }
    augloader::output::check_distinct(("--out", &run_dir), &inputs).map_err(anyhow::Error::msg)?;
    let s = setup(&a)?;
    let console = Console::new(!a.quiet);
    let job = trainer::TrainJob {
        cfg: s.cfg,
        train: s.train,
        val: s.val,
        run_dir: &run_dir,
        device: s.device,
        start: if a.resume.is_some() {
            trainer::Start::Resume
        } else if a.overwrite {
            trainer::Start::Overwrite
        } else {
            trainer::Start::Fresh
        },
    };
    let summary = trainer::train(job, &console)
        .with_context(|| format!("training into {}", run_dir.display()))?;
    crate::out::out!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
