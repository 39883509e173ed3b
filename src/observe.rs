//! Progress and messages of long library work (training epochs, evaluation, tuning trials).
//!
//! The library never prints: it reports [`Event`]s to an [`Observer`] that the caller supplies.
//! The command line shows them as progress bars and lines on stderr; [`Silent`] drops them.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Something that happened in long-running work.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A counted phase begins (an epoch's steps, an evaluation's images).
    Begin {
        /// What the phase is, for example `epoch 3/16` or `eval`.
        label: &'a str,
        /// Units the phase has in all.
        total: u64,
    },
    /// Units of the current phase done so far, with a short status (loss, accuracy, rate).
    Progress {
        /// Units done.
        done: u64,
        /// Status text; may be empty.
        status: &'a str,
    },
    /// The current phase ended.
    End,
    /// Something worth telling the user (resuming, weights loaded, a trial's result).
    Note(&'a str),
    /// A curve worth drawing to `path` (the learning-rate finder's).
    Curve {
        /// Where the picture belongs.
        path: &'a Path,
        /// Title.
        title: &'a str,
        /// Label of the x axis.
        x_label: &'a str,
        /// Label of the y axis.
        y_label: &'a str,
        /// Logarithmic x axis.
        log_x: bool,
        /// (x, y) points.
        points: &'a [(f64, f64)],
        /// An x to mark, if any.
        mark: Option<f64>,
    },
    /// A training epoch finished and its checkpoint is written.
    Epoch {
        /// The run folder.
        run_dir: &'a Path,
        /// A title for the run (model and class count).
        title: &'a str,
        /// Every epoch of the run so far; the last is the one that just finished.
        history: &'a [EpochMetrics],
    },
}

/// One line of RUN/metrics.jsonl.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (on augmented batches, in training mode).
    pub train_acc: f64,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation top-1 accuracy.
    pub val_top1: f64,
    /// Validation top-5 accuracy.
    pub val_top5: f64,
    /// Training images per second (wall time of the epoch's training part).
    pub images_per_sec: f64,
    /// Fraction of training time spent waiting for the loader.
    pub data_wait_fraction: f64,
}

/// Receives [`Event`]s. Called from the thread doing the work.
pub trait Observer {
    /// Handles one event.
    fn event(&self, e: Event<'_>);
}

/// Drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: Event<'_>) {}
}
