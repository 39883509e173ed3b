//! How the command line shows the library's progress and messages: progress bars and lines on
//! stderr, training curves and the learning-rate finder's plot as PNGs.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use augloader::observe::{Event, Observer};

use super::curves;
use super::panels::{plot_panels, Panel};
#[cfg(feature = "torch")]
use augloader_train::trainer::EpochMetrics;

/// Shows [`Event`]s on the terminal; with `bars` off (`--quiet`), lines only.
pub struct Console {
    bars: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Console {
    /// A console observer, with progress bars or without.
    pub fn new(bars: bool) -> Self {
        Console {
            bars,
            bar: Mutex::new(None),
        }
    }

    fn begin(&self, label: &str, total: u64) {
        if !self.bars {
            return;
        }
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb.set_prefix(label.to_string());
        *self.bar.lock().expect("not poisoned") = Some(pb);
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(pb) = self.bar.lock().expect("not poisoned").as_ref() {
            f(pb);
        }
    }

    /// A line on stderr that does not tear a progress bar.
    fn line(&self, text: &str) {
        match self.bar.lock().expect("not poisoned").as_ref() {
            Some(pb) => pb.suspend(|| crate::out::note!("{text}")),
            None => crate::out::note!("{text}"),
        }
    }
}

impl Observer for Console {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Begin { label, total } => self.begin(label, total),
            Event::Progress { done, status } => self.with_bar(|pb| {
                pb.set_position(done);
                pb.set_message(status.to_string());
            }),
            Event::End => {
                if let Some(pb) = self.bar.lock().expect("not poisoned").take() {
                    pb.finish_and_clear();
                }
            }
            Event::Note(text) => self.line(text),
            Event::Curve {
                path,
                title,
                x_label,
                y_label,
                log_x,
                points,
                mark,
            } => {
                if let Err(e) =
                    curves::plot_line(points, path, title, x_label, y_label, log_x, mark)
                {
                    self.line(&format!("warning: {}: {e}", path.display()));
                }
            }
            #[cfg(feature = "torch")]
            Event::Epoch {
                run_dir,
                title,
                history,
            } => {
                if let Some(m) = history.last() {
                    self.line(&serde_json::to_string(m).expect("serialisable"));
                }
                let path = run_dir.join("curves.png");
                let series = |f: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
                    history
                        .iter()
                        .map(|m| (m.epoch as f64 + 1.0, f(m)))
                        .collect()
                };
                let panel = |name: &str, train: fn(&EpochMetrics) -> f64, val| Panel {
                    title: format!("{title}: {name}"),
                    x_label: "epoch",
                    y_label: "",
                    log_y: false,
                    x_names: Vec::new(),
                    series: vec![("train".into(), series(train)), ("val".into(), series(val))],
                };
                let panels = [
                    panel("loss", |m| m.train_loss, |m| m.val_loss),
                    panel("accuracy", |m| m.train_acc, |m| m.val_top1),
                ];
                if let Err(e) = plot_panels(&panels, &path) {
                    self.line(&format!("warning: {}: {e}", path.display()));
                }
            }
            _ => {}
        }
    }
}
