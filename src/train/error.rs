//! The trainer's error.

use std::path::{Path, PathBuf};

use super::checkpoint::CheckpointError;
use super::UnknownModel;
use crate::loader::LoadError;

/// A training error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// Loading data failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Unknown model.
    #[error(transparent)]
    Model(#[from] UnknownModel),
    /// Reading or writing weights failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Writing run files failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
    /// The loss became NaN or infinite.
    #[error("loss diverged ({loss}) at epoch {epoch}, step {step}: lower the learning rate")]
    Diverged {
        /// Epoch.
        epoch: usize,
        /// Step in the epoch.
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// Something else (bad combination of settings, a checkpoint of another run).
    #[error("{0}")]
    Invalid(String),
}

pub(super) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io {
        path: path.to_path_buf(),
        cause: e,
    }
}
