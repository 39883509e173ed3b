//! Augmentation: the same model trained with none, flip, crop, flip+crop, with colour jitter
//! added, with Cutout added, and with today's recipes each added to flip+crop
//! (TrivialAugmentWide, RandAugment, AutoAugment, random erasing, MixUp, CutMix, torchvision's
//! v2 recipe); then test-time augmentation on the best of them.

use anyhow::Result;
use clap::Args;

use augloader::transform::{ColorJitter, Cutout, Mix, Pipeline, Policy, RandomErasing};
use augloader::tta::{TtaConfig, TtaMode};
use augloader_train::trainer::TrainConfig;
use augloader_train::trainer::{load_weights, Net};
use augloader_train::tta::{evaluate_tta, EvalLoading};

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

/// An arm: what it adds to the validation view.
#[derive(Clone, Copy)]
struct Arm {
    name: &'static str,
    flip: bool,
    crop: bool,
    jitter: bool,
    cutout: bool,
    /// Automatic augmentation policy (`autoaugment`: the ImageNet table, CIFAR-10's for images
    /// of 64 px or less).
    policy: Option<&'static str>,
    /// Random erasing probability.
    erase: f64,
    /// MixUp and CutMix alphas, and label smoothing.
    mix: (Option<f64>, Option<f64>, f64),
}

const fn arm(name: &'static str, flip: bool, crop: bool, jitter: bool, cutout: bool) -> Arm {
    Arm {
        name,
        flip,
        crop,
        jitter,
        cutout,
        policy: None,
        erase: 0.0,
        mix: (None, None, 0.0),
    }
}

const FLIP_CROP: Arm = arm("flip+crop", true, true, false, false);

/// The arms: each adds one augmentation to an earlier one.
const ARMS: [Arm; 13] = [
    arm("none", false, false, false, false),
    arm("flip", true, false, false, false),
    arm("crop", false, true, false, false),
    FLIP_CROP,
    arm("flip+crop+jitter", true, true, true, false),
    arm("flip+crop+jitter+cutout", true, true, true, true),
    Arm {
        name: "ta-wide",
        policy: Some("ta-wide"),
        ..FLIP_CROP
    },
    Arm {
        name: "randaugment",
        policy: Some("randaugment"),
        ..FLIP_CROP
    },
    Arm {
        name: "autoaugment",
        policy: Some("autoaugment"),
        ..FLIP_CROP
    },
    Arm {
        name: "random-erase",
        erase: 0.25,
        ..FLIP_CROP
    },
    Arm {
        name: "mixup",
        mix: (Some(0.2), None, 0.0),
        ..FLIP_CROP
    },
    Arm {
        name: "cutmix",
        mix: (None, Some(1.0), 0.0),
        ..FLIP_CROP
    },
    Arm {
        name: "tv2",
        policy: Some("ta-wide"),
        erase: 0.1,
        mix: (Some(0.2), Some(1.0), 0.1),
        ..FLIP_CROP
    },
];

/// Which arm each arm adds one augmentation to (the recipes: to flip+crop).
const BEFORE: [(usize, usize); 12] = [
    (1, 0),
    (2, 0),
    (3, 1),
    (4, 3),
    (5, 4),
    (6, 3),
    (7, 3),
    (8, 3),
    (9, 3),
    (10, 3),
    (11, 3),
    (12, 3),
];

/// The training pipeline of an arm: the validation view (no augmentation), with the
/// training geometry's random crops, flips, colour jitter 0.4, a Cutout hole of a quarter of
/// the side, a policy and random erasing added as the arm says.
fn pipeline(train: &Pipeline, val: &Pipeline, arm: &Arm) -> Pipeline {
    let side = val.output_size().map_or(32, |s| s.0);
    let policy = arm.policy.and_then(|p| match p {
        "autoaugment" if side <= 64 => Policy::parse("autoaugment-cifar10"),
        _ => Policy::parse(p),
    });
    Pipeline {
        name: format!("experiment-{}", arm.name),
        geometry: if arm.crop {
            train.geometry.clone()
        } else {
            val.geometry.clone()
        },
        flip: if arm.flip { 0.5 } else { 0.0 },
        jitter: arm.jitter.then(|| ColorJitter::bcs(0.4)),
        lighting: None,
        cutout: arm.cutout.then(|| Cutout {
            holes: 1,
            length: (side / 4).max(1),
            fill: val.normalize.mean_u8(),
        }),
        auto_augment: policy,
        erase: (arm.erase > 0.0).then(|| RandomErasing::with_p(arm.erase)),
        user_ops: Default::default(),
        normalize: val.normalize,
    }
}

/// An arm's training settings: its pipeline, and its batch mixing and label smoothing.
fn arm_cfg(mut cfg: TrainConfig, arm: &Arm) -> TrainConfig {
    cfg.train_pipeline = pipeline(&cfg.train_pipeline, &cfg.val_pipeline, arm);
    let (mixup, cutmix, smoothing) = arm.mix;
    cfg.label_smoothing = smoothing;
    cfg.mix = (mixup.is_some() || cutmix.is_some()).then_some(Mix {
        mixup,
        cutmix,
        switch_prob: 0.5,
        label_smoothing: smoothing,
    });
    cfg
}

pub fn augmentation(a: AugmentationArgs) -> Result<Finding> {
    let lab = Lab::new("augmentation", &a.common, a.epochs, a.lr, &[])?;
    let s = &lab.setup;
    let train = per_class(&s.train, a.train_per_class);
    let mut runs = Vec::new();
    for arm in &ARMS {
        let mut cfg = arm_cfg(lab.cfg(&a.model), arm);
        cfg.batch = cfg.batch.min(train.len() / 2).max(1);
        runs.push(lab.arm(arm.name, cfg, Some((train.clone(), s.val.clone())))?);
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
            &format!("test-time augmentation ({})", ARMS[best].name),
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
            format!("{} {d:+.3} against {}", ARMS[i].name, ARMS[j].name)
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
        "Each augmentation (flip, crop, colour jitter, Cutout, and today's recipes added to \
         flip+crop: TrivialAugmentWide, RandAugment, AutoAugment, random erasing, MixUp, CutMix, \
         torchvision's v2 recipe) helps or is neutral on held-out data; test-time augmentation \
         buys accuracy at a cost in time.",
        format!(
            "validation top-1: {}{}; TTA on {}: {}",
            words.join(", "),
            if neutral {
                String::new()
            } else {
                format!(" (worse: {})", worse.join(", "))
            },
            ARMS[best].name,
            tta_words.join(", ")
        ),
        neutral && gains,
        serde_json::json!({
            "train_per_class": a.train_per_class,
            "runs": runs.iter().map(|r| serde_json::json!({"variant": r.model, "val_top1": r.val_top1()})).collect::<Vec<_>>(),
            "tta_on": ARMS[best].name,
            "tta": tta.iter().map(|(n, v, t)| serde_json::json!({"mode": n, "top1": v, "seconds": t})).collect::<Vec<_>>(),
        }),
    ))
}

/// Each TTA mode on arm `best`'s model: (mode, top-1, seconds).
fn tta(lab: &Lab, a: &AugmentationArgs, best: usize) -> Result<Vec<(String, f64, f64)>> {
    let s = &lab.setup;
    let classes = s.train.classes().len();
    let mut net = Net::new(&a.model, classes, s.device, 0, false)?;
    let run_dir = lab.out.join(ARMS[best].name);
    load_weights(&mut net, &run_dir.join("model.safetensors"))?;
    let train_pipeline = pipeline(&s.cfg.train_pipeline, &s.cfg.val_pipeline, &ARMS[best]);
    let mut out = Vec::new();
    for name in &a.tta {
        let mode = TtaMode::parse(name).unwrap_or(TtaMode::None);
        let cfg = TtaConfig::from_training(mode, &train_pipeline, &s.cfg.val_pipeline);
        let r = evaluate_tta(
            net.model.as_ref(),
            s.val.clone(),
            &cfg,
            s.device,
            &EvalLoading::default(),
            None,
            &lab.console,
        )?;
        out.push((name.clone(), r.top1, r.seconds));
    }
    Ok(out)
}
