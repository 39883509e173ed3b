//! `augloader tune`: the hyperparameter recipe on the settings `train` would use.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use augloader_train::tune::{tune, TuneReport, TuneSetup};

use super::console::Console;
use super::train::{setup, TrainArgs};
use super::tune_report;

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

/// Runs the command.
pub fn run(mut a: TuneArgs) -> Result<()> {
    if a.train.out == std::path::Path::new("runs/train") {
        a.train.out = PathBuf::from("runs/tune");
    }
    if let Some(s) = a.step {
        anyhow::ensure!((1..=6).contains(&s), "--step must be 1..=6, got {s}");
    }
    let out = a.train.out.clone();
    if let Some(d) = &a.train.data {
        augloader::output::check_distinct(("--out", &out), &[("--data", d)])
            .map_err(anyhow::Error::msg)?;
    }
    let final_epochs = a.final_epochs.unwrap_or(a.train.epochs);
    let s = setup(&a.train)?;
    let console = Console::new(!a.train.quiet);
    // The report for a person, rewritten next to report.json after every step; a write that
    // fails is said once per step and does not stop the run.
    let md = out.join("report.md");
    let render = |r: &TuneReport| {
        if let Err(e) = augloader::output::write_replacing(&md, tune_report::markdown(r).as_bytes())
        {
            crate::out::note!("augloader: writing {}: {e}", md.display());
        }
    };
    let report = tune(&TuneSetup {
        base: s.cfg,
        train: s.train,
        val: s.val,
        out: out.clone(),
        device: s.device,
        observer: &console,
        on_report: &render,
        step: a.step,
        budget_minutes: a.budget_minutes,
        coarse_epochs: a.coarse_epochs,
        final_epochs,
    })?;
    crate::out::out!(
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
