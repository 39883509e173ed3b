//! What defines a training run, checked before anything starts: the settings (saved in
//! checkpoints, so a resumed run needs no flags), transfer learning, devices, the dataset's
//! identity and the model file's metadata.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use super::error::TrainError;
use super::meta::ModelMeta;
use super::sgd::LrPolicy;
use augloader::defaults::DataDefaults;
use augloader::source::{fingerprint_of, Fingerprint, Source};
use augloader::transform::Pipeline;

/// Everything that defines a training run (saved in checkpoints, so `--resume` needs no flags).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Model name (see [`super::MODELS`]).
    pub model: String,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Learning-rate policy.
    pub lr: LrPolicy,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay (not on BN parameters and biases).
    pub weight_decay: f64,
    /// Label smoothing of the cross-entropy (folded into the soft targets with `mix`).
    pub label_smoothing: f64,
    /// MixUp / CutMix of the training batches (the loss then takes soft targets).
    #[serde(default)]
    pub mix: Option<augloader::transform::Mix>,
    /// Zero-initialise each residual branch's last BN.
    pub zero_init_residual: bool,
    /// Loader worker threads.
    pub workers: usize,
    /// Seed of initialisation, shuffling, augmentation and dropout.
    pub seed: u64,
    /// Training pipeline.
    pub train_pipeline: Pipeline,
    /// Validation pipeline.
    pub val_pipeline: Pipeline,
    /// Limit of training batches per epoch (0 = all), for quick runs and tests.
    pub max_batches: usize,
    /// Transfer learning settings.
    #[serde(default)]
    pub transfer: Transfer,
    /// What was chosen from the data for settings left unset (recorded in the model file).
    #[serde(default)]
    pub data_defaults: Option<DataDefaults>,
    /// The dataset the run trains on (a resumed run must be given the same one).
    #[serde(default)]
    pub data: Option<DatasetId>,
}

/// Which dataset a run uses: where it was, and a fingerprint of its samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetId {
    /// The dataset's absolute path (a resume from another working directory finds it).
    #[serde(with = "path_serde")]
    pub path: PathBuf,
    /// The training split's [`Fingerprint::Samples`] fingerprint (names and labels).
    pub fingerprint: String,
}

impl DatasetId {
    /// The identity of `train` found at `path`.
    pub fn of(path: &Path, train: &dyn Source) -> DatasetId {
        DatasetId {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            fingerprint: fingerprint_of(train, Fingerprint::Samples),
        }
    }
}

impl TrainConfig {
    /// Checks every setting; the error names the setting and the range.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Invalid(m));
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        if self.epochs == 0 || self.batch == 0 || self.workers == 0 {
            return bad(format!(
                "epochs ({}), batch size ({}) and workers ({}) must be at least 1",
                self.epochs, self.batch, self.workers
            ));
        }
        if !(self.lr.base.is_finite() && self.lr.base > 0.0) {
            return bad(format!(
                "learning rate {} must be finite and > 0",
                self.lr.base
            ));
        }
        if !finite_nonneg(self.lr.warmup_epochs) {
            return bad(format!(
                "warm-up {} must be finite and >= 0",
                self.lr.warmup_epochs
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("momentum {} must be in [0, 1)", self.momentum));
        }
        if !finite_nonneg(self.weight_decay) {
            return bad(format!(
                "weight decay {} must be finite and >= 0",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "label smoothing {} must be in [0, 1)",
                self.label_smoothing
            ));
        }
        if !finite_nonneg(self.transfer.backbone_lr_mult) {
            return bad(format!(
                "backbone learning-rate multiplier {} must be finite and >= 0",
                self.transfer.backbone_lr_mult
            ));
        }
        for p in [&self.train_pipeline, &self.val_pipeline] {
            p.validate()
                .map_err(|e| TrainError::Invalid(format!("pipeline `{}`: {e}", p.name)))?;
        }
        let min = super::min_input_size(&self.model);
        for p in [&self.train_pipeline, &self.val_pipeline] {
            if let Some((h, w)) = p.output_size().filter(|&(h, w)| h.min(w) < min) {
                return bad(format!(
                    "{} needs inputs of at least {min} px; pipeline `{}` makes {w}x{h}",
                    self.model, p.name
                ));
            }
        }
        Ok(())
    }
}

/// Transfer learning: start from other weights, optionally with a new head and a frozen backbone.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Transfer {
    /// Weights to start from (ours, or torchvision's converted to safetensors).
    pub init_from: Option<PathBuf>,
    /// Do not load the final layer: a new one for this dataset's classes, initialised as
    /// `head_init` says.
    pub reinit_head: bool,
    /// How the new final layer of `reinit_head` starts.
    #[serde(default)]
    pub head_init: HeadInit,
    /// Train only the final layer; the rest stays fixed, its BN layers in evaluation mode.
    pub freeze_backbone: bool,
    /// With `freeze_backbone`: from this epoch on, everything trains.
    pub unfreeze_after: Option<usize>,
    /// Learning-rate multiplier of the backbone once it trains (1 = same as the head).
    pub backbone_lr_mult: f64,
}

/// The initialisation of a re-initialised final layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadInit {
    /// Normal with std 0.01 (the model's own; logits start near zero, loss near ln C).
    #[default]
    Small,
    /// Kaiming normal, std = sqrt(2 / fan_in) (what the lecture notes prescribe).
    Kaiming,
}

/// The devices [`parse_device`] takes, with what each means (for `--help` and errors).
pub const DEVICES: [(&str, &str); 3] = [
    ("cpu", "the CPU"),
    (
        "cuda",
        "the first CUDA device (an error when libtorch sees none)",
    ),
    ("auto", "CUDA when libtorch sees a device, else the CPU"),
];

/// Resolves a name of [`DEVICES`].
pub fn parse_device(s: &str) -> Result<Device, TrainError> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        "cuda" => Err(TrainError::Invalid(
            "--device cuda: no CUDA device is available to libtorch".into(),
        )),
        "auto" => Ok(Device::cuda_if_available()),
        other => Err(TrainError::Invalid(format!(
            "unknown device `{other}` ({})",
            DEVICES.map(|d| d.0).join(", ")
        ))),
    }
}

/// Refuses training and validation splits with different class lists.
pub(super) fn check_same_classes(train: &[String], val: &[String]) -> Result<(), TrainError> {
    if train == val {
        return Ok(());
    }
    Err(TrainError::Invalid(format!(
        "the training and validation splits have different classes ({} and {}, first difference: {})",
        train.len(),
        val.len(),
        first_difference(train, val)
    )))
}

pub(super) fn first_difference(a: &[String], b: &[String]) -> String {
    match (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        Some(i) => format!(
            "class {i} is {} in training and {} in validation",
            a.get(i).map_or("missing".into(), |c| format!("`{c}`")),
            b.get(i).map_or("missing".into(), |c| format!("`{c}`"))
        ),
        None => "none".into(),
    }
}

/// The model file's metadata for a run of `cfg`; refuses train and validation pipelines that
/// disagree on normalisation or output size (evaluation would then see other inputs).
pub(super) fn model_meta(cfg: &TrainConfig, classes: &[String]) -> Result<ModelMeta, TrainError> {
    let (t, v) = (&cfg.train_pipeline, &cfg.val_pipeline);
    if t.normalize != v.normalize {
        return Err(TrainError::Invalid(format!(
            "the training pipeline `{}` normalises with mean {:?} std {:?}, the validation pipeline `{}` with mean {:?} std {:?}: choose presets of one family (cifar-train with cifar-eval, resnet-train or inception-train with eval)",
            t.name, t.normalize.mean, t.normalize.std, v.name, v.normalize.mean, v.normalize.std
        )));
    }
    let input_size = match (t.output_size(), v.output_size()) {
        (Some(a), Some(b)) if a != b => {
            return Err(TrainError::Invalid(format!(
                "the training pipeline `{}` makes {}x{} crops, the validation pipeline `{}` {}x{}",
                t.name, a.1, a.0, v.name, b.1, b.0
            )))
        }
        (Some((h, _)), _) | (None, Some((h, _))) => h,
        (None, None) => cfg.data_defaults.as_ref().map_or(0, |d| d.input_size),
    };
    Ok(ModelMeta {
        augloader_version: env!("CARGO_PKG_VERSION").to_string(),
        model: cfg.model.clone(),
        classes: classes.to_vec(),
        input_size,
        normalize: t.normalize,
        train_pipeline: t.clone(),
        val_pipeline: v.clone(),
        data_defaults: cfg.data_defaults.clone(),
        mix: cfg.mix,
        label_smoothing: cfg.label_smoothing,
    })
}

/// Paths in run files and summaries: text when they are UTF-8, else `{"bytes": [...]}`, so a
/// path that is not UTF-8 is kept whole instead of failing the write.
pub(crate) mod path_serde {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Bytes { bytes: Vec<u8> },
    }

    pub(crate) fn serialize<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        match p.to_str() {
            Some(t) => Repr::Text(t.to_string()),
            None => Repr::Bytes {
                bytes: p.as_os_str().as_bytes().to_vec(),
            },
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        Ok(match Repr::deserialize(d)? {
            Repr::Text(t) => PathBuf::from(t),
            Repr::Bytes { bytes } => PathBuf::from(OsString::from_vec(bytes)),
        })
    }
}
