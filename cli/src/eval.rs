//! `augloader eval`: a model file evaluated on the validation split, with test-time augmentation
//! built from how the model was trained.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use augloader::defaults::DataDefaults;
use augloader::source::Split;
use augloader::tta::{TtaConfig, TtaMode};
use augloader_train::meta::ModelMeta;
use augloader_train::trainer;
use augloader_train::tta::{evaluate_tta, EvalLoading};

use super::args::{data_dir, excluding, open_split, OnError};
use super::console::Console;
use super::ranges;

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
    /// Leave out the samples named in FILE (as `augloader check --write-exclude` writes them).
    #[arg(long)]
    exclude: Option<PathBuf>,
    /// Architecture; only for weights without augloader metadata (must agree otherwise).
    #[arg(long, value_parser = ranges::model, long_help = ranges::model_help())]
    model: Option<String>,
    /// Views, built at the scales the model was trained at.
    #[arg(long, default_value = "none", value_parser = ranges::tta_mode())]
    tta: String,
    /// Crop side; only for weights without metadata (default: chosen from the images' size).
    #[arg(long = "input-size", value_parser = ranges::side)]
    input_size: Option<u32>,
    /// Shorter side before cropping for the crop modes (default: the validation resize, inside
    /// the trained scale range).
    #[arg(long, value_parser = ranges::side)]
    resize: Option<u32>,
    /// For models trained with pad-and-crop: the crop modes' translation in pixels (default:
    /// half the training padding, at least 1).
    #[arg(long, value_parser = ranges::side)]
    shift: Option<u32>,
    /// Shorter sides for multi-scale modes (default: inside the trained scale range).
    #[arg(long, value_delimiter = ',', value_parser = ranges::side)]
    scales: Vec<u32>,
    /// Average logits instead of softmax probabilities.
    #[arg(long)]
    mean_logits: bool,
    /// Images per batch (each with its views; bounds memory). The loader builds the views in
    /// its workers, as training builds its batches.
    #[arg(long, alias = "chunk", default_value_t = augloader::defaults::BATCH_SIZE, value_parser = ranges::count)]
    batch: usize,
    /// Loader worker threads (default: the machine's cores, shared by LOCAL_WORLD_SIZE).
    #[arg(long, value_parser = ranges::workers)]
    workers: Option<usize>,
    /// What to do with an unreadable image: fail, or skip it (it is left out of the accuracy
    /// and listed; never replaced by another image).
    #[arg(long, value_enum, default_value = "fail")]
    on_error: OnError,
    /// Device.
    #[arg(long, default_value = "auto", value_parser = ranges::device())]
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
    val: &dyn augloader::source::Source,
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
        mix: None,
        label_smoothing: 0.0,
    })
}

/// `--per-image` may replace only an earlier per-image CSV, and names no input.
fn check_per_image(a: &EvalArgs, dir: &std::path::Path) -> Result<()> {
    let Some(out) = &a.per_image else {
        return Ok(());
    };
    augloader::output::check_distinct(
        ("--per-image", out),
        &[("--checkpoint", &a.checkpoint), ("--data", dir)],
    )
    .map_err(anyhow::Error::msg)?;
    // Only an earlier per-image CSV is replaced: never a model, checkpoint or other file.
    if out.exists() {
        let head = augloader::file::read(out, augloader::file::FileKind::Report)
            .map(|b| b.starts_with(b"index,name,label,prediction"))
            .unwrap_or(false);
        anyhow::ensure!(
            head,
            "--per-image {} exists and is not a per-image CSV: an output never replaces \
             another kind of file; choose another path",
            out.display()
        );
    }
    Ok(())
}

/// The views of `mode` inside the model's trained geometry, with the flags' changes.
fn tta_config(a: &EvalArgs, meta: &ModelMeta, mode: TtaMode) -> Result<TtaConfig> {
    let mut cfg = TtaConfig::from_training(mode, &meta.train_pipeline, &meta.val_pipeline);
    cfg.mean_logits = a.mean_logits;
    if let Some(r) = a.resize {
        let Some(crop) = cfg.crop else {
            anyhow::bail!(
                "--resize needs a crop side: this model's pipelines keep images at their own \
                 size (its crop modes translate the image by --shift pixels instead)"
            );
        };
        anyhow::ensure!(r >= crop, "--resize {r} is smaller than the crop {crop}");
        (cfg.resize, cfg.shift) = (Some(r), None);
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
    Ok(cfg)
}

/// Runs the command.
pub fn run(a: EvalArgs) -> Result<()> {
    let dir = data_dir(&a.data)?;
    let val = excluding(open_split(&dir, Split::Val)?, &dir, a.exclude.as_deref())?;
    let mode = TtaMode::parse(&a.tta).context("--tta takes the names of TTA_MODES")?;
    check_per_image(&a, &dir)?;
    let (tensors, meta) = trainer::read_model_file(&a.checkpoint)?;
    let meta = eval_model_meta(&a, val.as_ref(), meta)?;
    let cfg = tta_config(&a, &meta, mode)?;
    let device = trainer::parse_device(&a.device)?;
    let mut net = trainer::Net::new(&meta.model, meta.classes.len(), device, 0, false)?;
    augloader_train::checkpoint::load_into(&mut net.vs, &a.checkpoint, &tensors, &|_| false)?;
    let loading = EvalLoading {
        batch: a.batch,
        workers: a.workers.unwrap_or_else(augloader::defaults::workers),
        policy: match a.on_error {
            OnError::Fail => augloader::ErrorPolicy::Fail,
            OnError::Skip => augloader::ErrorPolicy::Omit,
        },
        ..EvalLoading::default()
    };
    let report = evaluate_tta(
        net.model.as_ref(),
        val,
        &cfg,
        device,
        &loading,
        a.per_image.as_deref(),
        &Console::new(!a.quiet),
    )?;
    for s in &report.skipped {
        crate::out::note!("skipped {s}");
    }
    if a.json {
        crate::out::out!("{}", serde_json::to_string(&report)?);
    } else {
        crate::out::out!(
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
