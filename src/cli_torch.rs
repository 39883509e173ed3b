//! The libtorch commands, `train` and `eval`: argument parsing and the calls into the library.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use augloader::train::sgd::{LrPolicy, Schedule};
use augloader::train::trainer::{self, TrainConfig};
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
    #[arg(long, default_value_t = 15)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Learning-rate schedule after warm-up.
    #[arg(long, value_enum, default_value = "cosine")]
    schedule: ScheduleArg,
    /// For --schedule step: decay every this many epochs.
    #[arg(long, default_value_t = 30)]
    step_every: usize,
    /// For --schedule step: decay factor.
    #[arg(long, default_value_t = 0.1)]
    step_gamma: f64,
    /// Linear warm-up in epochs.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Weight decay (not applied to BN parameters and biases).
    #[arg(long, default_value_t = 5e-4)]
    wd: f64,
    /// Label smoothing.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Zero-initialise each residual branch's last BN.
    #[arg(long)]
    zero_init_residual: bool,
    /// Loader worker threads.
    #[arg(long, default_value_t = 2)]
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
    /// Input side for training and validation crops (default: 32 for the synthetic dataset and
    /// CIFAR, 224 otherwise).
    #[arg(long = "input-size")]
    input_size: Option<u32>,
    /// Validation pipeline preset.
    #[arg(long, default_value = "eval")]
    val_pipeline: String,
    /// Stop each epoch after this many batches (0: all), for quick runs.
    #[arg(long, default_value_t = 0)]
    max_batches: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Start from these weights (ours or torchvision's, as safetensors).
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// With --init-from: a new final layer for this dataset's classes (Kaiming init).
    #[arg(long)]
    reinit_head: bool,
    /// Train only the final layer (backbone fixed, its BN in evaluation mode).
    #[arg(long)]
    freeze_backbone: bool,
    /// With --freeze-backbone: fine-tune everything from this epoch on.
    #[arg(long)]
    unfreeze_after: Option<usize>,
    /// Backbone learning rate as a fraction of the head's when fine-tuning from --init-from.
    #[arg(long, default_value_t = 0.1)]
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
    let small = a.data.is_none() || augloader::CifarKind::detect(&dir).is_some();
    let size = a.input_size.unwrap_or(if small { 32 } else { 224 });
    let mut pa = a.pipeline.clone();
    pa.size = Some(pa.size.unwrap_or(size));
    if a.data.is_none() && pa.pipeline == "resnet-train" {
        // The synthetic images are 64 px with one object each: a milder scale range and a
        // smaller hole than ImageNet's keep the object in the crop (measured: 89% val top-1 in
        // 15 epochs, against 27% with the ImageNet ranges scaled down).
        pa.scale_min = pa.scale_min.or(Some(size));
        pa.scale_max = pa.scale_max.or(Some(size + size / 4));
        pa.cutout = pa.cutout.or(Some(size / 4));
    }
    let train_pipeline = pa.build()?;
    let val_pipeline = PipelineArgs {
        pipeline: a.val_pipeline.clone(),
        size: Some(size),
        ..PipelineArgs::none()
    }
    .build()?;
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
    };
    Ok(((cfg, train_src, val_src, device), a))
}

pub fn train_cmd(a: TrainArgs) -> Result<()> {
    let ((cfg, train_src, val_src, device), a) = setup(a)?;
    let (run_dir, resume) = match &a.resume {
        Some(r) => (r.clone(), true),
        None => {
            // A fresh run replaces an earlier one in the same folder.
            let _ = std::fs::remove_file(a.out.join("metrics.jsonl"));
            (a.out.clone(), false)
        }
    };
    let summary = trainer::train(cfg, train_src, val_src, &run_dir, device, resume, !a.quiet)
        .with_context(|| format!("training into {}", run_dir.display()))?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    /// Dataset folder; its validation split is evaluated (default: the synthetic dataset).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Model name (as trained).
    #[arg(long, default_value = "resnet20")]
    model: String,
    /// Weights: RUN/model.safetensors or RUN/checkpoint.safetensors (or torchvision's, converted).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Views: none, flip, 5crop, 10crop, multiscale, multiscale-10crop.
    #[arg(long, default_value = "none")]
    tta: String,
    /// Crop side (default: 32 for the synthetic dataset and CIFAR, 224 otherwise).
    #[arg(long = "input-size")]
    input_size: Option<u32>,
    /// Shorter side before cropping (default: input size x 256/224).
    #[arg(long)]
    resize: Option<u32>,
    /// Shorter sides for multi-scale modes (default: 224, 256, 384, 480, 640 scaled by input size / 224).
    #[arg(long, value_delimiter = ',')]
    scales: Vec<u32>,
    /// Average logits instead of softmax probabilities.
    #[arg(long)]
    mean_logits: bool,
    /// Images whose views are built in parallel at a time (bounds memory).
    #[arg(long, default_value_t = 64)]
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

pub fn eval_cmd(a: EvalArgs) -> Result<()> {
    use augloader::train::tta::{evaluate_tta, TtaConfig, TtaMode};
    let dir = data_dir(&a.data)?;
    let val = open_split(&dir, Split::Val)?;
    let small = a.data.is_none() || augloader::CifarKind::detect(&dir).is_some();
    let crop = a.input_size.unwrap_or(if small { 32 } else { 224 });
    let scale = |s: f64| (s * crop as f64 / 224.0).round() as u32;
    let mode = TtaMode::parse(&a.tta).with_context(|| {
        format!(
            "unknown --tta `{}` (none, flip, 5crop, 10crop, multiscale, multiscale-10crop)",
            a.tta
        )
    })?;
    let cfg = TtaConfig {
        mode,
        resize: a.resize.unwrap_or(scale(256.0)),
        crop,
        scales: if a.scales.is_empty() {
            [224.0, 256.0, 384.0, 480.0, 640.0].map(scale).to_vec()
        } else {
            a.scales.clone()
        },
        mean_logits: a.mean_logits,
    };
    if cfg.resize < crop {
        anyhow::bail!("--resize {} is smaller than the crop {crop}", cfg.resize);
    }
    let device = trainer::parse_device(&a.device)?;
    let mut net = trainer::Net::new(&a.model, val.classes().len(), device, 0, false)?;
    trainer::load_weights(&mut net, &a.checkpoint)?;
    let normalize = if augloader::CifarKind::detect(&dir).is_some() {
        augloader::transform::Normalize::CIFAR
    } else {
        augloader::transform::Normalize::IMAGENET
    };
    let report = evaluate_tta(
        net.model.as_ref(),
        val.as_ref(),
        &cfg,
        &normalize,
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
