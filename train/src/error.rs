//! The trainer's error.

use std::path::{Path, PathBuf};

use super::checkpoint::CheckpointError;
use super::UnknownModel;
use augloader::LoadError;

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
    /// A parameter or buffer became NaN or infinite; the last good checkpoint is kept.
    #[error("{tensor} holds non-finite values after epoch {epoch}{hint}; the run stops and the last good checkpoint is kept")]
    NonFinite {
        /// Epoch (0-based) whose end found it.
        epoch: usize,
        /// The tensor's name.
        tensor: String,
        /// What usually causes it, where known.
        hint: String,
    },
    /// libtorch refused an operation (most often: not enough memory for the batch or views).
    #[error("libtorch failed while {what}: {message}")]
    Torch {
        /// What was being done.
        what: String,
        /// libtorch's message.
        message: String,
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

/// `f` run with libtorch's failures (which `tch` raises as panics: out of memory, shapes a
/// model cannot take) turned into [`TrainError::Torch`] naming `what` was being done.
pub(crate) fn torch_call<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TrainError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown failure".into());
        // libtorch's messages carry a C++ backtrace after the first lines.
        let short: Vec<&str> = message.lines().take(3).collect();
        TrainError::Torch {
            what: what.to_string(),
            message: short.join(" "),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_failures_become_errors_that_say_what_was_done() {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let conv = tch::nn::conv2d(vs.root(), 3, 4, 3, Default::default());
        let x = tch::Tensor::zeros([1, 5, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
        let e = torch_call("scoring", || x.apply(&conv))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("libtorch failed while scoring: "), "{e}");
        assert!(e.contains("channels"), "{e}");
    }
}
