//! The run folder: its lock, metrics.jsonl, the checkpoint's state (atomically written each
//! epoch) and model files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checkpoint;
use super::config::TrainConfig;
use super::error::{io_err, TrainError};
use super::meta::ModelMeta;
use super::sgd::Sgd;
use super::step::Net;
use augloader::observe::EpochMetrics;

/// Checkpoint state kept in the safetensors metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) config: TrainConfig,
    pub(super) classes: usize,
    /// Epochs completed.
    pub(super) epochs_done: usize,
    pub(super) history: Vec<EpochMetrics>,
}

/// A fresh state for `cfg`, or (with `resume`) the one saved in the checkpoint, checked against
/// the data; with the saved tensors.
pub(super) fn start_state(
    cfg: TrainConfig,
    classes: usize,
    ckpt_path: &Path,
    resume: bool,
) -> Result<(State, Option<checkpoint::Tensors>), TrainError> {
    if !resume {
        let state = State {
            config: cfg,
            classes,
            epochs_done: 0,
            history: Vec::new(),
        };
        return Ok((state, None));
    }
    let (tensors, meta) = checkpoint::read(ckpt_path)?;
    let state = parse_state(ckpt_path, &meta)?;
    if let (Some(saved), Some(given)) = (&state.config.data, &cfg.data) {
        if saved.fingerprint != given.fingerprint {
            return Err(TrainError::Invalid(format!(
                "{}: the run trained on {} (fingerprint {}), the data given is {} (fingerprint {})",
                ckpt_path.display(),
                saved.path.display(),
                saved.fingerprint,
                given.path.display(),
                given.fingerprint
            )));
        }
    }
    if state.classes != classes {
        return Err(TrainError::Invalid(format!(
            "{}: run has {} classes, the data {}",
            ckpt_path.display(),
            state.classes,
            classes
        )));
    }
    Ok((state, Some(tensors)))
}

/// The training state in a checkpoint's metadata.
pub(super) fn parse_state(
    path: &Path,
    meta: &std::collections::HashMap<String, String>,
) -> Result<State, TrainError> {
    meta.get("augloader")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| {
            TrainError::Invalid(format!(
                "{}: no augloader training state in it",
                path.display()
            ))
        })
}

/// Files of a run that a new run must not leave beside its own.
const RUN_FILES: [&str; 3] = ["model.safetensors", "checkpoint.safetensors", "curves.png"];

/// Before a run: a fresh one refuses a folder holding an earlier run's model or checkpoint
/// (nothing is destroyed before a replacement exists; [`super::trainer::Start::Overwrite`]
/// replaces them at its first checkpoint); every run rewrites metrics.jsonl from the
/// checkpoint's history, which is the truth: an epoch that logged its metrics but died before its
/// checkpoint is trained again.
pub(super) fn prepare_run_files(
    run_dir: &Path,
    fresh: bool,
    history: &[EpochMetrics],
) -> Result<(), TrainError> {
    if fresh {
        let held: Vec<&str> = RUN_FILES[..2]
            .iter()
            .copied()
            .filter(|f| run_dir.join(f).exists())
            .collect();
        if !held.is_empty() {
            return Err(TrainError::Invalid(format!(
                "{} holds an earlier run ({}): resume it, or overwrite it (its files stay until \
                 the new run's first checkpoint replaces them), or train into another folder",
                run_dir.display(),
                held.join(", ")
            )));
        }
    }
    write_metrics(run_dir, history)
}

fn write_metrics(run_dir: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let mut log = String::new();
    for m in history {
        log += &serde_json::to_string(m).expect("serialisable");
        log.push('\n');
    }
    let metrics_path = run_dir.join("metrics.jsonl");
    augloader::output::write_replacing(&metrics_path, log.as_bytes()).map_err(io_err(&metrics_path))
}

/// At an overwriting run's first checkpoint: the earlier run's model and curves go, and
/// metrics.jsonl starts again (the new checkpoint is already in place).
pub(super) fn clear_stale_run_files(run_dir: &Path) -> Result<(), TrainError> {
    for old in [RUN_FILES[0], RUN_FILES[2]] {
        let path = run_dir.join(old);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
            _ => {}
        }
    }
    write_metrics(run_dir, &[])
}

/// Locks `run_dir/.lock` for this process (released when the file closes or the process dies);
/// a second writer is refused with the holder's pid.
pub(super) fn lock_run_dir(run_dir: &Path) -> Result<std::fs::File, TrainError> {
    let path = run_dir.join(".lock");
    match augloader::output::lock(&path, false).map_err(io_err(&path))? {
        Ok(f) => Ok(f),
        Err(holder) => Err(TrainError::Invalid(format!(
            "{}: another training process (pid {holder}) is writing this run folder",
            run_dir.display()
        ))),
    }
}

pub(super) fn save_checkpoint(
    net: &Net,
    opt: &Sgd,
    state: &State,
    meta: &ModelMeta,
    path: &Path,
) -> Result<(), TrainError> {
    let mut tensors = checkpoint::state_dict(&net.vs);
    tensors.extend(
        opt.buffers
            .iter()
            .map(|(k, v)| (format!("optim.momentum.{k}"), v.shallow_clone())),
    );
    let mut meta_map = meta.to_metadata();
    meta_map.insert(
        "augloader".to_string(),
        serde_json::to_string(state).expect("serialisable"),
    );
    checkpoint::write(path, &tensors, Some(meta_map))?;
    Ok(())
}

/// The settings saved in a run folder's checkpoint (what `--resume` continues).
pub fn saved_config(run_dir: &Path) -> Result<TrainConfig, TrainError> {
    let path = run_dir.join("checkpoint.safetensors");
    let (_, meta) = checkpoint::read(&path)?;
    Ok(parse_state(&path, &meta)?.config)
}

/// Loads model weights from a file written by [`checkpoint::save_model`] (or a checkpoint).
pub fn load_weights(net: &mut Net, path: &Path) -> Result<(), TrainError> {
    let (tensors, _) = checkpoint::read(path)?;
    checkpoint::load_into(&mut net.vs, path, &tensors, &|_| false)?;
    Ok(())
}

/// Reads a model file's weights and, when it was written by a training run, its metadata.
pub fn read_model_file(
    path: &Path,
) -> Result<(checkpoint::Tensors, Option<ModelMeta>), TrainError> {
    let (tensors, meta) = checkpoint::read(path)?;
    let meta = ModelMeta::from_metadata(path, &meta)?;
    Ok((tensors, meta))
}
