//! `augloader experiment`: the lecture notes' observations, measured. `init` pushes a batch
//! through a deep plain net under three initialisations; `degradation` trains plain and residual
//! nets of two depths with one schedule (He et al. 2015, Fig. 1 and 6).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use augloader::train::experiment::{activation_stds, degradation, ModelRun, INITS};
use augloader::{Loader, Pipeline, Split};

use super::args::{data_dir, open_split};
use super::console::Console;
use super::panels::{plot_panels, Panel};
use super::ranges;
use super::train::{setup, TrainArgs};

#[derive(Subcommand)]
pub enum ExperimentCmd {
    /// Activation std per layer of a deep plain net under std-0.01, Xavier and Kaiming weights.
    Init(InitArgs),
    /// Plain-20/56 against ResNet-20/56: training and test error with one schedule.
    Degradation(DegradationArgs),
}

#[derive(Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    cmd: ExperimentCmd,
}

#[derive(Args)]
pub struct InitArgs {
    /// Dataset whose first training batch goes through the net (default: the synthetic one).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Conv + ReLU layers (at most 1000).
    #[arg(long, default_value_t = 20, value_parser = ranges::count_to::<1000>)]
    layers: usize,
    /// Channels per layer (narrow layers make the std wander from layer to layer whatever the
    /// initialisation: a random product of 20 per-layer gains).
    #[arg(long, default_value_t = 256, value_parser = ranges::count_to::<1024>)]
    width: usize,
    /// Images in the batch (32 px crops).
    #[arg(long, default_value_t = 16, value_parser = ranges::count)]
    batch: usize,
    /// Seed of the weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The picture of activation std per layer.
    #[arg(long, default_value = "runs/experiment/init.png")]
    plot: PathBuf,
}

#[derive(Args)]
pub struct DegradationArgs {
    /// Dataset (default: the synthetic one, at 32 px).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Models, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "plain20,plain56,resnet20,resnet56", value_parser = ranges::model)]
    models: Vec<String>,
    /// Epochs of every model (the default keeps the four runs near 10 minutes on 2 cores).
    #[arg(long, default_value_t = 8, value_parser = ranges::count)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = ranges::count)]
    batch: usize,
    /// Peak learning rate (cosine schedule, one warm-up epoch).
    #[arg(long, default_value_t = 0.1, value_parser = ranges::positive)]
    lr: f64,
    /// Crop side.
    #[arg(long = "input-size", default_value_t = 32, value_parser = ranges::side)]
    input_size: u32,
    /// Loader worker threads.
    #[arg(long, default_value_t = 2, value_parser = ranges::workers)]
    workers: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder of the runs (one per model) and of degradation.png.
    #[arg(long, default_value = "runs/degradation")]
    out: PathBuf,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Runs the command.
pub fn run(a: ExperimentArgs) -> Result<()> {
    match a.cmd {
        ExperimentCmd::Init(a) => init(a),
        ExperimentCmd::Degradation(a) => degradation_cmd(a),
    }
}

fn init(a: InitArgs) -> Result<()> {
    let source = open_split(&data_dir(&a.data)?, Split::Train)?;
    let loader = Loader::builder(source, Pipeline::eval().with_size(32))
        .batch_size(a.batch)
        .shuffle(false)
        .dtype(augloader::Dtype::F32)
        .build()?;
    let batch = loader.epoch(0).next().context("the dataset is empty")??;
    let (x, _) = batch.to_device(tch::Device::Cpu);
    let mut std = serde_json::Map::new();
    let mut series = Vec::new();
    for (init, name) in INITS {
        let s = activation_stds(&x, a.layers, a.width as i64, init, a.seed);
        series.push((
            name.to_string(),
            (1..=s.len())
                .map(|l| l as f64)
                .zip(s.iter().copied())
                .collect(),
        ));
        std.insert(name.into(), serde_json::json!(s));
    }
    let panel = Panel {
        title: format!("activation std, {} conv+ReLU layers", a.layers),
        x_label: "layer",
        y_label: "std (log)",
        log_y: true,
        series,
    };
    write_plot(&[panel], &a.plot)?;
    println!(
        "{}",
        serde_json::json!({"experiment": "init", "layers": a.layers, "std": std, "plot": a.plot})
    );
    Ok(())
}

/// The flags of `augloader train` that one model's run takes.
#[derive(Parser)]
struct AsTrain {
    #[command(flatten)]
    train: TrainArgs,
}

fn degradation_cmd(a: DegradationArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let mut flags: Vec<String> = ["train", "--epochs", &a.epochs.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (flag, value) in [
        ("--batch", a.batch.to_string()),
        ("--lr", a.lr.to_string()),
        ("--input-size", a.input_size.to_string()),
        ("--workers", a.workers.to_string()),
        ("--seed", a.seed.to_string()),
    ] {
        flags.extend([flag.to_string(), value]);
    }
    if let Some(d) = &a.data {
        flags.extend(["--data".to_string(), d.display().to_string()]);
    }
    // Each run is `augloader train` with these flags (and its model): one schedule for all.
    let s = setup(&AsTrain::try_parse_from(&flags)?.train)?;
    let console = Console::new(!a.quiet);
    let runs = degradation(
        &s.cfg,
        &a.models,
        (s.train, s.val),
        &a.out,
        s.device,
        &console,
    )?;
    let plot = a.out.join("degradation.png");
    write_plot(&error_panels(&runs), &plot)?;
    let errors = |f: fn(&ModelRun) -> f64| -> serde_json::Map<String, serde_json::Value> {
        runs.iter()
            .map(|r| (r.model.clone(), serde_json::json!(f(r))))
            .collect()
    };
    println!(
        "{}",
        serde_json::json!({
            "experiment": "degradation",
            "epochs": a.epochs,
            "train_error": errors(ModelRun::train_error),
            "test_error": errors(ModelRun::test_error),
            "seconds": start.elapsed().as_secs_f64(),
            "plot": plot,
        })
    );
    Ok(())
}

/// Training error (left) and test error (right) per epoch, one curve per model.
fn error_panels(runs: &[ModelRun]) -> Vec<Panel<'static>> {
    let curve = |r: &ModelRun, f: fn(&augloader::train::trainer::EpochMetrics) -> f64| {
        let pts = r
            .history
            .iter()
            .map(|m| (m.epoch as f64 + 1.0, f(m)))
            .collect();
        (r.model.clone(), pts)
    };
    let panel = |title: &str, f: fn(&augloader::train::trainer::EpochMetrics) -> f64| Panel {
        title: title.to_string(),
        x_label: "epoch",
        y_label: "error",
        log_y: false,
        series: runs.iter().map(|r| curve(r, f)).collect(),
    };
    vec![
        panel("training error", |m| 1.0 - m.train_acc),
        panel("test error", |m| 1.0 - m.val_top1),
    ]
}

fn write_plot(panels: &[Panel], path: &std::path::Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    plot_panels(panels, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
