//! The first two experiments: how the initialisation decides whether activations survive a
//! deep plain net, and the degradation of deep plain nets that residual blocks cure (He et al.
//! 2015, Fig. 1 and 6).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use augloader::source::Split;
use augloader::transform::Pipeline;
use augloader::Loader;
use augloader_train::experiment::{activation_stds, degradation as train_all, ModelRun, INITS};
use augloader_train::BatchTensors;

use super::super::args::{data_dir, open_split};
use super::super::ranges;
use super::{by_arm, epoch_panel, write_plot, Common, Finding, Lab};
use crate::panels::Panel;

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
    #[command(flatten)]
    common: Common,
    /// Models, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "plain20,plain56,resnet20,resnet56", value_parser = ranges::model)]
    models: Vec<String>,
    /// Epochs of every model (the default keeps the four runs near 14 minutes on 2 cores).
    #[arg(long, default_value_t = 14, value_parser = ranges::count)]
    epochs: usize,
    /// Peak learning rate (cosine schedule after the warm-up).
    #[arg(long, default_value_t = 0.05, value_parser = ranges::positive)]
    lr: f64,
    /// Linear warm-up in epochs (He et al. warm the deepest net at lr 0.01 first).
    #[arg(long, default_value_t = 2.0, value_parser = ranges::nonneg)]
    warmup: f64,
    /// The whole depth series with the same schedule: plain-20/32/44/56 and ResNet-20/56
    /// (about 28 minutes on 2 cores). On the synthetic set plain-32 trains, to a higher error
    /// than plain-20, and plain-44 and plain-56 do not leave chance.
    #[arg(long, conflicts_with = "models")]
    long: bool,
}

/// The models of `--long`.
const DEPTH_SERIES: [&str; 6] = [
    "plain20", "plain32", "plain44", "plain56", "resnet20", "resnet56",
];

pub fn init(a: InitArgs) -> Result<Finding> {
    let start = std::time::Instant::now();
    if let Some(d) = &a.data {
        augloader::output::check_distinct(("--plot", &a.plot), &[("--data", d)])
            .map_err(anyhow::Error::msg)?;
    }
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
        let pts = (1..=s.len()).map(|l| l as f64).zip(s.iter().copied());
        series.push((name.to_string(), pts.collect()));
        std.insert(name.into(), serde_json::json!(s));
    }
    let panel = Panel {
        title: format!("activation std, {} conv+ReLU layers", a.layers),
        x_label: "layer",
        y_label: "std (log)",
        log_y: true,
        series,
        ..Default::default()
    };
    write_plot(&[panel], &a.plot)?;
    let last = |name: &str| {
        let s = std[name]
            .as_array()
            .map(|v| v.iter().filter_map(|x| x.as_f64()).collect());
        s.unwrap_or_default()
    };
    let ratio = |s: Vec<f64>| s.last().copied().unwrap_or(f64::NAN) / s[0];
    let (small, kaiming) = (ratio(last("small")), ratio(last("kaiming")));
    let holds = small < 0.01 && (0.5..2.0).contains(&kaiming);
    let json = serde_json::json!({"experiment": "init", "layers": a.layers, "std": std,
        "holds": holds, "seconds": start.elapsed().as_secs_f64(), "plot": a.plot});
    Ok(Finding {
        name: "init",
        claim: "Small random weights (std 0.01) make the activations of a deep net shrink to \
                zero layer after layer; Xavier/Kaiming scaling keeps them at scale (Kaiming for \
                ReLU).",
        measured: format!(
            "activation std at layer {} over layer 1: std-0.01 {small:.1e}, Kaiming {kaiming:.2}",
            a.layers
        ),
        holds,
        json,
        plot: a.plot,
    })
}

pub fn degradation(a: DegradationArgs) -> Result<Finding> {
    let warmup = a.warmup.to_string();
    let lab = Lab::new(
        "degradation",
        &a.common,
        a.epochs,
        a.lr,
        &["--warmup", &warmup],
    )?;
    let s = &lab.setup;
    let models: Vec<String> = if a.long {
        DEPTH_SERIES.iter().map(|m| m.to_string()).collect()
    } else {
        a.models.clone()
    };
    let runs = train_all(
        &s.cfg,
        &models,
        (s.train.clone(), s.val.clone()),
        &lab.out,
        s.device,
        &lab.console,
    )?;
    lab.draw(&[
        epoch_panel(
            "training error",
            "error",
            super::curves(&runs, |m| 1.0 - m.train_acc),
        ),
        epoch_panel(
            "test error",
            "error",
            super::curves(&runs, |m| 1.0 - m.val_top1),
        ),
    ])?;
    let err = |m: &str| {
        runs.iter()
            .find(|r| r.model == m)
            .map(ModelRun::train_error)
    };
    let pair = |a: &str, b: &str| err(a).zip(err(b));
    // The paper (Fig. 1 and 6): plain-56 trains (leaves chance) but to a higher error than
    // plain-20; ResNet-56 trains to a lower one than ResNet-20.
    let chance = 1.0 - 1.0 / s.train.classes().len().max(1) as f64;
    let trains = err("plain56").is_some_and(|e| e < chance - 0.1);
    let plain = pair("plain56", "plain20").map(|(deep, shallow)| deep > shallow && trains);
    let res = pair("resnet56", "resnet20").map(|(deep, shallow)| deep < shallow);
    let holds = plain == Some(true) && res == Some(true);
    let words: Vec<String> = runs
        .iter()
        .map(|r| format!("{} {:.3}", r.model, r.train_error()))
        .collect();
    let half = |h: Option<bool>| h.map_or("not run", |h| if h { "holds" } else { "does not hold" });
    let halves = format!(
        "plain half {}{}, residual half {}",
        half(plain),
        if err("plain56").is_some() && !trains {
            " (plain-56 does not leave chance)"
        } else {
            ""
        },
        half(res)
    );
    Ok(lab.finding(
        "Deeper plain nets train, but to a higher training error than shallower ones (plain-56 \
         above plain-20: degradation, not overfitting); with residual blocks the deeper net \
         trains to a lower error (ResNet-56 below ResNet-20).",
        format!("final training error: {}; {halves}", words.join(", ")),
        holds,
        serde_json::json!({
            "epochs": a.epochs,
            "train_error": by_arm(&runs, ModelRun::train_error),
            "test_error": by_arm(&runs, ModelRun::test_error),
            "plain_half_holds": plain,
            "residual_half_holds": res,
            "plain56_trains": trains,
        }),
    ))
}
