//! DIR/report.md of `augloader tune`: the library's report said for a person, with the
//! recommendation as an `augloader train` command.

use augloader_train::tune::{Trial, TuneReport};

/// The report as Markdown: one section per step, the recommendation as a command.
pub fn markdown(r: &TuneReport) -> String {
    let mut s = format!("# Tuning report: {} on {} classes\n\n", r.model, r.classes);
    s += &md_initial_loss(r);
    s += &md_overfit(r);
    s += &md_lr_finder(r);
    for (title, trials) in [
        ("## 4. Coarse grid (lr x weight decay)", &r.coarse),
        ("## 5. Refined grid", &r.refined),
    ] {
        s += &md_trials(title, trials);
    }
    s += &md_final(r);
    if !r.notes.is_empty() {
        s += "## Notes\n\n";
        for n in &r.notes {
            s += &format!("- {n}\n");
        }
    }
    s
}

fn md_initial_loss(r: &TuneReport) -> String {
    let mut s = "## 1. Initial loss\n\n".to_string();
    let Some(l) = r.initial_loss else {
        return s + "not run\n\n";
    };
    s += &format!(
        "First loss with regularisation off: {l:.3}; ln({}) = {:.3} (ratio {:.2}). ",
        r.classes,
        r.ln_classes,
        l / r.ln_classes
    );
    s + if (l / r.ln_classes - 1.0).abs() < 0.25 {
        "Close: the initial predictions are near uniform, as expected.\n\n"
    } else {
        "Not close: the initial logits are far from uniform (a large final-layer initialisation or an input/label problem); training still works but wastes the first steps undoing it.\n\n"
    }
}

fn md_overfit(r: &TuneReport) -> String {
    let mut s = "## 2. Overfit a tiny subset\n\n".to_string();
    let Some(a) = r.overfit_accuracy else {
        return s + "not run\n\n";
    };
    s += &format!(
        "Training accuracy on {} images, no augmentation or regularisation: {:.3}. ",
        r.overfit_images, a
    );
    s + if a > 0.95 {
        "The model can memorise: the pipeline from data to loss is sound.\n\n"
    } else {
        "It could not reach ~100%: this points to a bug (labels, loss, optimiser) or far too low a learning rate.\n\n"
    }
}

fn md_lr_finder(r: &TuneReport) -> String {
    let s = "## 3. Learning-rate finder\n\n".to_string();
    match (r.lr_steepest, r.lr_range) {
        (Some(st), Some((a, b))) => s + &format!("Loss falls fastest at lr = {st:.3e}; suggested range {a:.3e} .. {b:.3e}. Plot: lr_finder.png\n\n"),
        _ if !r.lr_finder.is_empty() => s + "The smoothed loss never fell below its starting value: no range to suggest (the grid then centres on the configured --lr). Plot: lr_finder.png\n\n",
        _ => s + "not run\n\n",
    }
}

fn md_final(r: &TuneReport) -> String {
    let mut s = "## 6. Final run and recommendation\n\n".to_string();
    if let Some(t) = &r.final_run {
        s += &format!(
            "Longer run at lr {:.3e}, weight decay {:.1e}, {} epochs: val top-1 {:.3} ({}). Curves: {}/curves.png\n\n",
            t.lr, t.weight_decay, t.epochs, t.val_top1, t.diagnosis, t.run_dir.display()
        );
    }
    if let Some((lr, wd, ep)) = r.recommended {
        s += &format!("Recommended: `augloader train --model {} --lr {lr:.3e} --wd {wd:.1e} --epochs {ep}` (with the same batch size and pipeline as this run).\n\n", r.model);
    } else {
        s += "not reached\n\n";
    }
    s
}

/// A grid's section: one table row per trial.
fn md_trials(title: &str, trials: &[Trial]) -> String {
    let mut s = format!("{title}\n\n");
    if trials.is_empty() {
        return s + "not run\n\n";
    }
    s += "| lr | weight decay | epochs | train loss | train acc | val top-1 | diagnosis | curves |\n|---|---|---|---|---|---|---|---|\n";
    for t in trials {
        s += &format!(
            "| {:.3e} | {:.1e} | {} | {:.3} | {:.3} | {:.3} | {} | {}/curves.png |\n",
            t.lr,
            t.weight_decay,
            t.epochs,
            t.train_loss,
            t.train_acc,
            t.val_top1,
            t.diagnosis,
            t.run_dir.display()
        );
    }
    s + "\n"
}
