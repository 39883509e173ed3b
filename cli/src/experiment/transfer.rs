//! Transfer learning, the notes' three cases: train from scratch; keep a pretrained backbone
//! fixed and train a new head; fine-tune all layers, against the size of the target set.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use augloader::source::Source;
use augloader_train::trainer::HeadInit;

use super::super::ranges;
use super::super::synth::{cache_dir, ensure, SynthConfig};
use super::{per_class, Common, Finding, Lab};
use crate::panels::Panel;

#[derive(Args)]
pub struct TransferArgs {
    #[command(flatten)]
    common: Common,
    /// The larger dataset to pretrain on (default: synthetic shapes of six classes; the
    /// default --data then holds the six other classes).
    #[arg(long)]
    pretrain_data: Option<PathBuf>,
    /// Training images per class of the target set, comma-separated (0: all).
    #[arg(long, value_delimiter = ',', default_value = "5,20,0", value_parser = ranges::index_to::<1000000>)]
    train_per_class: Vec<usize>,
    /// The model of every arm.
    #[arg(long, default_value = "lab-d6-w16", value_parser = ranges::model)]
    model: String,
    /// Epochs of pretraining.
    #[arg(long, default_value_t = 10, value_parser = ranges::count)]
    pretrain_epochs: usize,
    /// SGD steps of each target run (its epochs follow from the set's size).
    #[arg(long, default_value_t = 150, value_parser = ranges::count)]
    steps: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05, value_parser = ranges::positive)]
    lr: f64,
    /// Learning rate of the backbone when fine-tuning, as a fraction of the head's.
    #[arg(long, default_value_t = 0.1, value_parser = ranges::nonneg)]
    backbone_lr_mult: f64,
}

/// The default pair: six synthetic classes to pretrain on, six others as the target.
fn default_sets() -> Result<(PathBuf, PathBuf)> {
    let set = |first: usize, train: usize, dir: &str| {
        let cfg = SynthConfig {
            classes: 6,
            first_class: first,
            train_per_class: train,
            ..SynthConfig::default()
        };
        ensure(&cache_dir().join(dir), &cfg)
    };
    Ok((
        set(0, 300, "synth-v1-classes0-5")?,
        set(6, 100, "synth-v1-classes6-11")?,
    ))
}

/// Training from scratch; a pretrained, fixed backbone with a new head; fine-tuning everything.
const METHODS: [&str; 3] = ["scratch", "head", "finetune"];

pub fn transfer(mut a: TransferArgs) -> Result<Finding> {
    if a.pretrain_data.is_none() && a.common.data.is_none() {
        let (pre, target) = default_sets()?;
        a.pretrain_data = Some(pre);
        a.common.data = Some(target);
    }
    let mut pre_common = a.common.clone();
    pre_common.data = a.pretrain_data.clone();
    let pre = Lab::new("transfer", &pre_common, a.pretrain_epochs, a.lr, &[])?;
    let pretrained = pre.arm("pretrain", pre.cfg(&a.model), None)?;
    let weights = pre.out.join("pretrain").join("model.safetensors");
    let mut lab = Lab::new("transfer", &a.common, 1, a.lr, &[])?;
    lab.start = pre.start; // the summary's seconds include pretraining
    let (mut table, mut rows) = (Vec::new(), Vec::new());
    for &n in &a.train_per_class {
        let train = per_class(&lab.setup.train, n);
        let mut results = Vec::new();
        for method in METHODS {
            let mut cfg = lab.cfg(&a.model);
            cfg.batch = cfg.batch.min(train.len() / 2).max(1);
            let per_epoch = (train.len() / cfg.batch).max(1);
            cfg.epochs = a.steps.div_ceil(per_epoch);
            cfg.lr.epochs = cfg.epochs;
            if method != "scratch" {
                cfg.transfer.init_from = Some(weights.clone());
                cfg.transfer.reinit_head = true;
                cfg.transfer.head_init = HeadInit::Kaiming;
                cfg.transfer.freeze_backbone = method == "head";
                cfg.transfer.backbone_lr_mult = a.backbone_lr_mult;
            }
            let label = format!("n{}-{method}", per_class_size(&train));
            let data = (train.clone(), lab.setup.val.clone());
            results.push(lab.arm(&label, cfg, Some(data))?.val_top1());
        }
        for (method, v) in METHODS.iter().zip(&results) {
            rows.push(serde_json::json!({"method": method, "train_per_class": n,
                "images_per_class": per_class_size(&train), "val_top1": v}));
        }
        table.push((per_class_size(&train), results));
    }
    draw(&lab, &table)?;
    let row = |r: &(usize, Vec<f64>)| (r.1[0], r.1[1], r.1[2]);
    let smallest = table.iter().min_by_key(|r| r.0).map(row);
    let largest = table.iter().max_by_key(|r| r.0).map(row);
    // "A wide margin": ten points of top-1; "wins or ties": within one point.
    let few = smallest.is_some_and(|(s, f, t)| f.max(t) >= s + 0.1);
    let many = largest.is_some_and(|(_, f, t)| t >= f - 0.01);
    let words: Vec<String> = table
        .iter()
        .map(|(n, r)| {
            format!(
                "{n} per class: scratch {:.3}, fixed backbone + new head {:.3}, fine-tuned {:.3}",
                r[0], r[1], r[2]
            )
        })
        .collect();
    Ok(lab.finding(
        "With a small target set, a pretrained network (fixed backbone, new head) beats training \
         from scratch by a wide margin; with more target data, fine-tuning all layers wins or \
         ties.",
        format!(
            "pretraining top-1 {:.3}; {}",
            pretrained.val_top1(),
            words.join("; ")
        ),
        few && many,
        serde_json::json!({
            "model": a.model,
            "pretrain_val_top1": pretrained.val_top1(),
            "runs": rows,
        }),
    ))
}

/// Images per class of a subset (the smallest class's count).
fn per_class_size(src: &Arc<dyn Source>) -> usize {
    let mut counts = vec![0usize; src.classes().len()];
    for i in 0..src.len() {
        counts[src.label(i)] += 1;
    }
    counts.into_iter().min().unwrap_or(0)
}

/// Validation top-1 against training images per class, one curve per method.
fn draw(lab: &Lab, table: &[(usize, Vec<f64>)]) -> Result<()> {
    let series = METHODS
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let pts = table.iter().map(|(n, r)| (*n as f64, r[m])).collect();
            (name.to_string(), pts)
        })
        .collect();
    lab.draw(&[Panel {
        title: "transfer: validation top-1".into(),
        x_label: "training images per class",
        y_label: "top-1",
        series,
        ..Default::default()
    }])
}
