//! Augmentation: the same model trained with none, flip, crop, flip+crop, + colour jitter,
//! + Cutout; then test-time augmentation on the best of them.

use anyhow::Result;
use clap::Args;

use augloader::train::trainer::{load_weights, Net};
use augloader::train::tta::{evaluate_tta, TtaConfig, TtaMode};
use augloader::transform::{ColorJitter, Cutout, Pipeline};

use super::super::ranges;
use super::{bar_panel, per_class, Common, Finding, Lab};

#[derive(Args)]
pub struct AugmentationArgs {
    #[command(flatten)]
    common: Common,
    /// Training images per class (a small set, where augmentation matters).
    #[arg(long, default_value_t = 60, value_parser = ranges::count)]
    train_per_class: usize,
    /// The model of every arm.
    #[arg(long, default_value = "lab-d6-w16", value_parser = ranges::model)]
    model: String,
    /// Epochs of each run.
    #[arg(long, default_value_t = 60, value_parser = ranges::count)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05, value_parser = ranges::positive)]
    lr: f64,
    /// Test-time augmentation modes tried on the best model, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "none,flip,5crop,10crop", value_parser = ranges::tta_mode())]
    tta: Vec<String>,
}

/// The arms: each adds one augmentation to an earlier one (name, flip, crop, jitter, cutout).
const ARMS: [(&str, bool, bool, bool, bool); 6] = [
    ("none", false, false, false, false),
    ("flip", true, false, false, false),
    ("crop", false, true, false, false),
    ("flip+crop", true, true, false, false),
    ("flip+crop+jitter", true, true, true, false),
    ("flip+crop+jitter+cutout", true, true, true, true),
];

/// Which arm each arm adds one augmentation to.
const BEFORE: [(usize, usize); 5] = [(1, 0), (2, 0), (3, 1), (4, 3), (5, 4)];

/// The training pipeline of an arm: the validation view (no augmentation), with the
/// training geometry's random crops, flips, colour jitter 0.4 and a Cutout hole of a quarter of
/// the side added as the arm says.
fn pipeline(train: &Pipeline, val: &Pipeline, arm: (&str, bool, bool, bool, bool)) -> Pipeline {
    let (name, flip, crop, jitter, cutout) = arm;
    let side = val.output_size().map_or(32, |s| s.0);
    Pipeline {
        name: format!("experiment-{name}"),
        geometry: if crop {
            train.geometry.clone()
        } else {
            val.geometry.clone()
        },
        flip: if flip { 0.5 } else { 0.0 },
        jitter: jitter.then(|| ColorJitter::bcs(0.4)),
        lighting: None,
        cutout: cutout.then(|| Cutout {
            holes: 1,
            length: (side / 4).max(1),
            fill: val.normalize.mean_u8(),
        }),
        normalize: val.normalize,
    }
}

pub fn augmentation(a: AugmentationArgs) -> Result<Finding> {
    let lab = Lab::new("augmentation", &a.common, a.epochs, a.lr, &[])?;
    let s = &lab.setup;
    let train = per_class(&s.train, a.train_per_class);
    let mut runs = Vec::new();
    for arm in ARMS {
        let mut cfg = lab.cfg(&a.model);
        cfg.train_pipeline = pipeline(&s.cfg.train_pipeline, &s.cfg.val_pipeline, arm);
        cfg.batch = cfg.batch.min(train.len() / 2).max(1);
        runs.push(lab.arm(arm.0, cfg, Some((train.clone(), s.val.clone())))?);
    }
    let best = (0..runs.len())
        .max_by(|&i, &j| runs[i].val_top1().total_cmp(&runs[j].val_top1()))
        .unwrap_or(0);
    let tta = tta(&lab, &a, best)?;
    let acc: Vec<(String, f64)> = runs
        .iter()
        .map(|r| (r.model.clone(), r.val_top1()))
        .collect();
    let tta_acc: Vec<(String, f64)> = tta.iter().map(|t| (t.0.clone(), t.1)).collect();
    let tta_time: Vec<(String, f64)> = tta.iter().map(|t| (t.0.clone(), t.2)).collect();
    lab.draw(&[
        bar_panel(
            "validation top-1 by training augmentation",
            "top-1",
            &acc.iter()
                // Short labels under the bars: "+jitter" adds to flip+crop, "+cutout" to that.
                .map(|(n, v)| {
                    (
                        n.replace("flip+crop+jitter+", "+")
                            .replace("flip+crop+", "+"),
                        *v,
                    )
                })
                .collect::<Vec<_>>(),
        ),
        bar_panel(
            &format!("test-time augmentation ({})", ARMS[best].0),
            "top-1",
            &tta_acc,
        ),
        bar_panel("test-time augmentation: seconds", "seconds", &tta_time),
    ])?;
    // "Helps or is neutral": no arm more than two points (about one standard error of a
    // 600-image validation set) below the arm it adds to.
    let worse: Vec<String> = BEFORE
        .iter()
        .filter(|&&(i, j)| runs[i].val_top1() < runs[j].val_top1() - 0.02)
        .map(|&(i, j)| {
            let d = runs[i].val_top1() - runs[j].val_top1();
            format!("{} {d:+.3} against {}", ARMS[i].0, ARMS[j].0)
        })
        .collect();
    let neutral = worse.is_empty();
    let plain = tta.iter().find(|t| t.0 == "none");
    let gains = plain.is_some_and(|p| tta.iter().any(|t| t.1 > p.1 && t.2 > p.2));
    let words: Vec<String> = acc.iter().map(|(n, v)| format!("{n} {v:.3}")).collect();
    let tta_words: Vec<String> = tta
        .iter()
        .map(|(n, v, t)| format!("{n} {v:.3} in {t:.1} s"))
        .collect();
    Ok(lab.finding(
        "Each augmentation (flip, crop, colour jitter, Cutout) helps or is neutral on held-out \
         data; test-time augmentation buys accuracy at a cost in time.",
        format!(
            "validation top-1: {}{}; TTA on {}: {}",
            words.join(", "),
            if neutral {
                String::new()
            } else {
                format!(" (worse: {})", worse.join(", "))
            },
            ARMS[best].0,
            tta_words.join(", ")
        ),
        neutral && gains,
        serde_json::json!({
            "train_per_class": a.train_per_class,
            "runs": runs.iter().map(|r| serde_json::json!({"variant": r.model, "val_top1": r.val_top1()})).collect::<Vec<_>>(),
            "tta_on": ARMS[best].0,
            "tta": tta.iter().map(|(n, v, t)| serde_json::json!({"mode": n, "top1": v, "seconds": t})).collect::<Vec<_>>(),
        }),
    ))
}

/// Each TTA mode on arm `best`'s model: (mode, top-1, seconds).
fn tta(lab: &Lab, a: &AugmentationArgs, best: usize) -> Result<Vec<(String, f64, f64)>> {
    let s = &lab.setup;
    let classes = s.train.classes().len();
    let mut net = Net::new(&a.model, classes, s.device, 0, false)?;
    let run_dir = lab.out.join(ARMS[best].0);
    load_weights(&mut net, &run_dir.join("model.safetensors"))?;
    let train_pipeline = pipeline(&s.cfg.train_pipeline, &s.cfg.val_pipeline, ARMS[best]);
    let mut out = Vec::new();
    for name in &a.tta {
        let mode = TtaMode::parse(name).unwrap_or(TtaMode::None);
        let cfg = TtaConfig::from_training(mode, &train_pipeline, &s.cfg.val_pipeline);
        let r = evaluate_tta(
            net.model.as_ref(),
            s.val.as_ref(),
            &cfg,
            s.device,
            64,
            None,
            &lab.console,
        )?;
        out.push((name.clone(), r.top1, r.seconds));
    }
    Ok(out)
}
