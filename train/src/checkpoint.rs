//! Safetensors files: model weights under torchvision's `state_dict` names (with BN's
//! `num_batches_tracked`, so `load_state_dict(strict=True)` accepts them), and training
//! checkpoints (weights + momentum buffers + JSON state in the metadata), written atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{nn::VarStore, Device, Kind, Tensor};

/// Tensors by name.
pub type Tensors = BTreeMap<String, Tensor>;

/// Errors reading or writing weights.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// I/O on a named file.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
    /// Not a valid safetensors file.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Names or shapes do not match the model.
    #[error("{}: {reason}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

fn to_bytes(t: &Tensor) -> (Dtype, Vec<usize>, Vec<u8>) {
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    match t.kind() {
        Kind::Int64 => {
            let v: Vec<i64> = Vec::try_from(t.flatten(0, -1)).expect("int64 tensor");
            (
                Dtype::I64,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        }
        _ => {
            let v: Vec<f32> =
                Vec::try_from(t.to_kind(Kind::Float).flatten(0, -1)).expect("float tensor");
            (
                Dtype::F32,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        }
    }
}

/// Writes `tensors` (and string `metadata`) to `path` atomically: a temporary file in the same
/// folder, then a rename, so a crash never leaves a half-written file behind.
pub fn write(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<(), CheckpointError> {
    let data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let (d, s, b) = to_bytes(t);
            (n.clone(), d, s, b)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                TensorView::new(*d, s.clone(), b).expect("consistent view"),
            )
        })
        .collect();
    let tmp = path.with_extension("safetensors.tmp");
    let io = |e: std::io::Error| CheckpointError::Io {
        path: path.to_path_buf(),
        cause: e,
    };
    let bytes =
        safetensors::tensor::serialize(views, &metadata).map_err(|e| CheckpointError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        // A full disk must not leave a half-written temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Reads every tensor and the metadata of a safetensors file.
pub fn read(path: &Path) -> Result<(Tensors, HashMap<String, String>), CheckpointError> {
    let bytes = augloader::file::read(path, augloader::file::FileKind::Model).map_err(|e| {
        CheckpointError::Io {
            path: path.to_path_buf(),
            cause: e,
        }
    })?;
    let fmt = |reason: String| CheckpointError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| fmt(format!("not a safetensors file: {e:?}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| fmt(format!("{e:?}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F64 => Kind::Double,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::I64 => Kind::Int64,
            other => return Err(fmt(format!("tensor {name}: unsupported dtype {other:?}"))),
        };
        let t = Tensor::from_data_size(view.data(), &shape, kind);
        if let Some(bad) = non_finite(&t) {
            return Err(fmt(format!(
                "tensor {name} holds {bad} non-finite values (NaN or infinity): the run that \
                 wrote it diverged, and its numbers would mean nothing"
            )));
        }
        out.insert(name, t);
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// How many values of a floating-point tensor are NaN or infinite (None when all are finite or
/// it holds integers).
pub fn non_finite(t: &Tensor) -> Option<i64> {
    if !t.is_floating_point() {
        return None;
    }
    let bad = t.isfinite().logical_not().sum(Kind::Int64).int64_value(&[]);
    (bad > 0).then_some(bad)
}

/// The model's tensors under torchvision names, plus `num_batches_tracked` for every BN.
pub fn state_dict(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let bns: Vec<String> = vars
        .iter()
        .filter_map(|(n, _)| {
            n.strip_suffix(".running_mean")
                .map(|p| format!("{p}.num_batches_tracked"))
        })
        .collect();
    vars.extend(bns.into_iter().map(|n| (n, Tensor::from(0i64))));
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Saves the model weights (see [`state_dict`]).
pub fn save_model(vs: &VarStore, path: &Path) -> Result<(), CheckpointError> {
    write(path, &state_dict(vs), None)
}

/// Copies weights into the model. Every model tensor must be present with the right shape,
/// except those whose names `skip` accepts (e.g. a head being re-initialised); extra tensors are
/// an error unless skipped too (`num_batches_tracked` is always ignored). Returns the names loaded.
pub fn load_into(
    vs: &mut VarStore,
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    skip: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, CheckpointError> {
    let mismatch = |reason: String| CheckpointError::Mismatch {
        path: path.to_path_buf(),
        reason,
    };
    let vars = vs.variables();
    let mut loaded = Vec::new();
    let mut missing = Vec::new();
    tch::no_grad(|| -> Result<(), CheckpointError> {
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            if skip(name) {
                continue;
            }
            let mut dst = vars[name].shallow_clone();
            match tensors.get(name) {
                Some(src) if src.size() == dst.size() => {
                    dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
                    loaded.push(name.clone());
                }
                Some(src) => {
                    return Err(mismatch(format!(
                        "{name}: shape {:?} in file, {:?} in model",
                        src.size(),
                        dst.size()
                    )))
                }
                None => missing.push(name.clone()),
            }
        }
        Ok(())
    })?;
    if !missing.is_empty() {
        return Err(mismatch(format!(
            "missing {}: {}",
            missing.len(),
            missing.join(", ")
        )));
    }
    let unexpected: Vec<&String> = tensors
        .keys()
        .filter(|n| {
            !n.ends_with("num_batches_tracked")
                && !n.starts_with("optim.")
                && !vars.contains_key(*n)
                && !skip(n)
        })
        .collect();
    if !unexpected.is_empty() {
        return Err(mismatch(format!(
            "unexpected {}: {}",
            unexpected.len(),
            unexpected
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(loaded)
}
