//! The libtorch commands, `train` and `eval`: argument parsing and the calls into the library.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use augloader::defaults::DataDefaults;
use augloader::train::meta::ModelMeta;
use augloader::train::sgd::{LrPolicy, Schedule};
use augloader::train::trainer::{self, TrainConfig};
use augloader::Pipeline;
use augloader::Split;

use super::{data_dir, open_split, PipelineArgs};

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
    data: Option<PathBuf>,
    /// Model: resnet18/34/50, resnet20/32/44/56/110 (CIFAR form), plain20/32/56, vgg11, vgg11_bn, vgg16, vgg16_bn.
    #[arg(long, default_value = "resnet20")]
    model: String,
    /// Epochs.
    #[arg(long, default_value_t = 16, value_parser = crate::cli_ranges::count)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32, value_parser = crate::cli_ranges::count)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05, value_parser = crate::cli_ranges::positive, allow_hyphen_values = true)]
    lr: f64,
    /// Learning-rate schedule after warm-up.
    #[arg(long, value_enum, default_value = "cosine")]
    schedule: ScheduleArg,
    /// For --schedule step: decay every this many epochs.
    #[arg(long, default_value_t = 30, value_parser = crate::cli_ranges::count)]
    step_every: usize,
    /// For --schedule step: decay factor.
    #[arg(long, default_value_t = 0.1, value_parser = crate::cli_ranges::positive, allow_hyphen_values = true)]
    step_gamma: f64,
    /// Linear warm-up in epochs.
    #[arg(long, default_value_t = 1.0, value_parser = crate::cli_ranges::nonneg, allow_hyphen_values = true)]
    warmup: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, value_parser = crate::cli_ranges::fraction, allow_hyphen_values = true)]
    momentum: f64,
    /// Weight decay (not applied to BN parameters and biases).
    #[arg(long, default_value_t = 5e-4, value_parser = crate::cli_ranges::nonneg, allow_hyphen_values = true)]
    wd: f64,
    /// Label smoothing.
    #[arg(long, default_value_t = 0.0, value_parser = crate::cli_ranges::fraction, allow_hyphen_values = true)]
    label_smoothing: f64,
    /// Zero-initialise each residual branch's last BN.
    #[arg(long)]
    zero_init_residual: bool,
    /// Loader worker threads.
    #[arg(long, default_value_t = 2, value_parser = crate::cli_ranges::count)]
    workers: usize,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Run folder (metrics.jsonl, curves.png, checkpoint.safetensors, model.safetensors).
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Continue the run in this folder from its last checkpoint (its saved settings are used).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Input side for training and validation crops (default: from the images' size: small
    /// square images at their own size, images under 128 px at 32, photos at 224).
    #[arg(long = "input-size", value_parser = crate::cli_ranges::side)]
    input_size: Option<u32>,
    /// Validation pipeline preset (default: cifar-eval after cifar-train, eval otherwise; or
    /// chosen from the images' size with the training preset).
    #[arg(long)]
    val_pipeline: Option<String>,
    /// Stop each epoch after this many batches (0: all), for quick runs.
    #[arg(long, default_value_t = 0)]
    max_batches: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Start from these weights (ours or torchvision's, as safetensors).
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// With --init-from: a new final layer for this dataset's classes (std 0.01 init).
    #[arg(long)]
    reinit_head: bool,
    /// Train only the final layer (backbone fixed, its BN in evaluation mode).
    #[arg(long)]
    freeze_backbone: bool,
    /// With --freeze-backbone: fine-tune everything from this epoch on.
    #[arg(long)]
    unfreeze_after: Option<usize>,
    /// Backbone learning rate as a fraction of the head's when fine-tuning from --init-from.
    #[arg(long, default_value_t = 0.1, value_parser = crate::cli_ranges::nonneg, allow_hyphen_values = true)]
    backbone_lr_mult: f64,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

type Setup = (
    TrainConfig,
    std::sync::Arc<dyn augloader::Source>,
    std::sync::Arc<dyn augloader::Source>,
    tch::Device,
);

/// The training configuration, data and device that `a` describes.
fn setup(a: TrainArgs) -> Result<(Setup, TrainArgs)> {
    let dir = data_dir(&a.data)?;
    let train_src = open_split(&dir, Split::Train)?;
    let val_src = open_split(&dir, Split::Val)?;
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
    // The validation preset of the training preset's family, unless named.
    let val_pipeline = match (&a.val_pipeline, &a.pipeline.pipeline) {
        (Some(name), _) => Pipeline::preset(name)?.with_size(size),
        (None, Some(t)) if t.starts_with("cifar") => Pipeline::cifar_eval(),
        (None, Some(_)) => Pipeline::eval().with_size(size),
        (None, None) => defaults.val.clone(),
    };
    val_pipeline.validate()?;
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    let device = trainer::parse_device(&a.device)?;
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
        label_smoothing: a.label_smoothing,
        zero_init_residual: a.zero_init_residual,
        workers: a.workers,
        seed: a.seed,
        train_pipeline,
        val_pipeline,
        max_batches: a.max_batches,
        transfer: trainer::Transfer {
            init_from: a.init_from.clone(),
            reinit_head: a.reinit_head,
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
    Ok(((cfg, train_src, val_src, device), a))
}

/// Flags that may accompany `--resume` (everything else comes from the saved run).
const RESUME_FLAGS: [&str; 6] = [
    "--resume",
    "--data",
    "--quiet",
    "--threads",
    "--device",
    "--out",
];

pub fn train_cmd(mut a: TrainArgs) -> Result<()> {
    let run_dir = match &a.resume {
        Some(r) => {
            let given: Vec<String> = std::env::args()
                .skip(2)
                .filter(|x| x.starts_with("--"))
                .map(|x| x.split('=').next().unwrap_or_default().to_string())
                .filter(|x| !RESUME_FLAGS.contains(&x.as_str()))
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
    let resume = a.resume.is_some();
    let quiet = a.quiet;
    let ((cfg, train_src, val_src, device), _) = setup(a)?;
    let summary = trainer::train(cfg, train_src, val_src, &run_dir, device, resume, !quiet)
        .with_context(|| format!("training into {}", run_dir.display()))?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    /// Dataset folder; its validation split is evaluated (default: the synthetic dataset).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Model file: RUN/model.safetensors or RUN/checkpoint.safetensors, whose metadata gives the
    /// architecture, classes, input size, normalisation and training geometry; or weights
    /// without it (torchvision's, as safetensors), with --model.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Architecture; only for weights without augloader metadata (must agree otherwise).
    #[arg(long)]
    model: Option<String>,
    /// Views: none (the validation view of training), flip, 5crop, 10crop, multiscale,
    /// multiscale-10crop; built at the scales the model was trained at.
    #[arg(long, default_value = "none")]
    tta: String,
    /// Crop side; only for weights without metadata (default: chosen from the images' size).
    #[arg(long = "input-size", value_parser = crate::cli_ranges::side)]
    input_size: Option<u32>,
    /// Shorter side before cropping for the crop modes (default: the validation resize, inside
    /// the trained scale range).
    #[arg(long, value_parser = crate::cli_ranges::side)]
    resize: Option<u32>,
    /// For models trained with pad-and-crop: the crop modes' translation in pixels (default:
    /// half the training padding, at least 1).
    #[arg(long, value_parser = crate::cli_ranges::side)]
    shift: Option<u32>,
    /// Shorter sides for multi-scale modes (default: inside the trained scale range).
    #[arg(long, value_delimiter = ',', value_parser = crate::cli_ranges::side)]
    scales: Vec<u32>,
    /// Average logits instead of softmax probabilities.
    #[arg(long)]
    mean_logits: bool,
    /// Images whose views are built in parallel at a time (bounds memory).
    #[arg(long, default_value_t = 64, value_parser = crate::cli_ranges::count)]
    chunk: usize,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print one JSON line.
    #[arg(long)]
    json: bool,
    /// Write each image's prediction and class probabilities as CSV.
    #[arg(long)]
    per_image: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// How the model in `a.checkpoint` was trained: its metadata, checked against the flags and the
/// data; or, for weights without metadata, the flags and defaults from the data.
fn eval_model_meta(
    a: &EvalArgs,
    val: &dyn augloader::Source,
    meta: Option<ModelMeta>,
) -> Result<ModelMeta> {
    let file = a.checkpoint.display();
    if let Some(m) = meta {
        if let Some(model) = a.model.as_ref().filter(|x| **x != m.model) {
            anyhow::bail!(
                "--model {model} contradicts {file}, which holds a {}",
                m.model
            );
        }
        if let Some(s) = a.input_size.filter(|s| *s != m.input_size) {
            anyhow::bail!(
                "--input-size {s} contradicts {file}, trained at {}",
                m.input_size
            );
        }
        m.check_classes(&a.checkpoint, val.classes())?;
        return Ok(m);
    }
    let Some(model) = a.model.clone() else {
        anyhow::bail!(
            "{file} has no augloader metadata (weights from elsewhere?): pass --model, and \
             --input-size unless the size chosen from the images fits"
        );
    };
    let d = DataDefaults::for_source(val, a.input_size);
    Ok(ModelMeta {
        augloader_version: env!("CARGO_PKG_VERSION").to_string(),
        model,
        classes: val.classes().to_vec(),
        input_size: d.input_size,
        normalize: d.val.normalize,
        train_pipeline: d.train.clone(),
        val_pipeline: d.val.clone(),
        data_defaults: Some(d),
    })
}

pub fn eval_cmd(a: EvalArgs) -> Result<()> {
    use augloader::train::tta::{evaluate_tta, TtaConfig, TtaMode};
    let dir = data_dir(&a.data)?;
    let val = open_split(&dir, Split::Val)?;
    let mode = TtaMode::parse(&a.tta).with_context(|| {
        format!(
            "unknown --tta `{}` (none, flip, 5crop, 10crop, multiscale, multiscale-10crop)",
            a.tta
        )
    })?;
    let (tensors, meta) = trainer::read_model_file(&a.checkpoint)?;
    let meta = eval_model_meta(&a, val.as_ref(), meta)?;
    let mut cfg = TtaConfig::from_training(mode, &meta.train_pipeline, &meta.val_pipeline);
    cfg.mean_logits = a.mean_logits;
    if let Some(r) = a.resize {
        anyhow::ensure!(
            r >= cfg.crop,
            "--resize {r} is smaller than the crop {}",
            cfg.crop
        );
        (cfg.resize, cfg.shift) = (r, None);
    }
    if let Some(t) = a.shift {
        anyhow::ensure!(
            cfg.shift.is_some(),
            "--shift applies to models trained with pad-and-crop; this one was trained with `{}`",
            meta.train_pipeline.name
        );
        cfg.shift = Some(t);
    }
    if !a.scales.is_empty() {
        cfg.scales = a.scales.clone();
    }
    let device = trainer::parse_device(&a.device)?;
    let mut net = trainer::Net::new(&meta.model, meta.classes.len(), device, 0, false)?;
    augloader::train::checkpoint::load_into(&mut net.vs, &a.checkpoint, &tensors, &|_| false)?;
    let report = evaluate_tta(
        net.model.as_ref(),
        val.as_ref(),
        &cfg,
        device,
        a.chunk,
        a.per_image.as_deref(),
        !a.quiet,
    )?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {} views/image, {} images, top-1 {:.4}, top-5 {:.4}, {:.1} s ({:.1} images/s)",
            report.tta,
            report.views_per_image,
            report.images,
            report.top1,
            report.top5,
            report.seconds,
            report.images_per_sec
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct TuneArgs {
    /// Stop starting new grid trials after this many minutes (a partial report is kept).
    #[arg(long, default_value_t = 15.0)]
    budget_minutes: f64,
    /// Run only this step: 1 initial loss, 2 overfit, 3 LR finder, 4 coarse grid, 5 refine + final run, 6 report.
    #[arg(long)]
    step: Option<u8>,
    /// Epochs per coarse trial (refined trials get twice as many).
    #[arg(long, default_value_t = 2)]
    coarse_epochs: usize,
    /// Epochs of the final run of the best point (default: --epochs).
    #[arg(long)]
    final_epochs: Option<usize>,
    #[command(flatten)]
    train: TrainArgs,
}

pub fn tune_cmd(mut a: TuneArgs) -> Result<()> {
    use augloader::train::tune::{tune, TuneSetup};
    if a.train.out == std::path::Path::new("runs/train") {
        a.train.out = PathBuf::from("runs/tune");
    }
    if let Some(s) = a.step {
        anyhow::ensure!((1..=6).contains(&s), "--step must be 1..=6, got {s}");
    }
    let out = a.train.out.clone();
    let final_epochs = a.final_epochs.unwrap_or(a.train.epochs);
    let ((base, train, val, device), _) = setup(a.train)?;
    let report = tune(&TuneSetup {
        base,
        train,
        val,
        out: out.clone(),
        device,
        step: a.step,
        budget_minutes: a.budget_minutes,
        coarse_epochs: a.coarse_epochs,
        final_epochs,
    })?;
    println!(
        "{}",
        serde_json::json!({
            "initial_loss": report.initial_loss,
            "ln_classes": report.ln_classes,
            "overfit_accuracy": report.overfit_accuracy,
            "lr_steepest": report.lr_steepest,
            "best_coarse": report.coarse.iter().max_by(|x, y| x.val_top1.total_cmp(&y.val_top1)).map(|t| (t.lr, t.weight_decay, t.val_top1)),
            "recommended": report.recommended,
            "final_val_top1": report.final_run.as_ref().map(|t| t.val_top1),
            "report": out.join("report.md"),
        })
    );
    Ok(())
}
