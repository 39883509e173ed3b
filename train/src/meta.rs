//! What a model file says about how its model was trained, kept in the safetensors metadata
//! (`model.safetensors` and checkpoints), so that evaluation and TTA use the training's classes,
//! input size, normalisation and validation geometry instead of guessing them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::CheckpointError;
use augloader::defaults::DataDefaults;
use augloader::transform::{Normalize, Pipeline};

/// The metadata key (safetensors metadata is a map of strings; PyTorch ignores it).
pub const META_KEY: &str = "augloader.model";

/// How a model was trained: enough to evaluate it with no other setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The augloader version that wrote the file.
    pub augloader_version: String,
    /// Architecture (see [`super::MODELS`]).
    pub model: String,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Crop side of training and validation.
    pub input_size: u32,
    /// Normalisation of the network's input.
    pub normalize: Normalize,
    /// The training pipeline (its geometry tells TTA which views the model has seen).
    pub train_pipeline: Pipeline,
    /// The validation pipeline (what `eval --tta none` applies).
    pub val_pipeline: Pipeline,
    /// What was chosen from the data when no size or preset flag was given.
    pub data_defaults: Option<DataDefaults>,
    /// MixUp / CutMix of the training batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<augloader::transform::Mix>,
    /// Label smoothing of the training loss.
    #[serde(default)]
    pub label_smoothing: f64,
}

impl ModelMeta {
    /// As safetensors metadata.
    pub fn to_metadata(&self) -> HashMap<String, String> {
        HashMap::from([(
            META_KEY.to_string(),
            serde_json::to_string(self).expect("serialisable"),
        )])
    }

    /// Reads the metadata of the file at `path`: `None` for weights written elsewhere (no
    /// augloader key); an error naming the file when the key holds something else.
    pub fn from_metadata(
        path: &Path,
        meta: &HashMap<String, String>,
    ) -> Result<Option<ModelMeta>, CheckpointError> {
        let Some(s) = meta.get(META_KEY) else {
            return Ok(None);
        };
        let m: ModelMeta = serde_json::from_str(s).map_err(|e| CheckpointError::Format {
            path: path.to_path_buf(),
            reason: format!("metadata `{META_KEY}` is not augloader model metadata: {e}"),
        })?;
        m.check(path)?;
        Ok(Some(m))
    }

    fn check(&self, path: &Path) -> Result<(), CheckpointError> {
        let bad = |reason: String| {
            Err(CheckpointError::Format {
                path: path.to_path_buf(),
                reason: format!("metadata `{META_KEY}`: {reason}"),
            })
        };
        if self.classes.is_empty() {
            return bad("no classes".into());
        }
        if !(1..=augloader::transform::MAX_SIDE).contains(&self.input_size) {
            return bad(format!(
                "input size {} is outside 1..={}",
                self.input_size,
                augloader::transform::MAX_SIDE
            ));
        }
        if let Err(e) = self.normalize.validate() {
            return bad(e);
        }
        for p in [&self.train_pipeline, &self.val_pipeline] {
            if let Err(e) = p.validate() {
                return bad(format!("pipeline `{}`: {e}", p.name));
            }
        }
        Ok(())
    }

    /// Refuses a dataset whose classes are not the model's, naming both.
    pub fn check_classes(&self, path: &Path, data_classes: &[String]) -> Result<(), MetaMismatch> {
        if data_classes == self.classes.as_slice() {
            return Ok(());
        }
        let detail = if data_classes.len() != self.classes.len() {
            format!(
                "the model has {} classes, the data {}",
                self.classes.len(),
                data_classes.len()
            )
        } else {
            let i = (0..data_classes.len())
                .find(|&i| data_classes[i] != self.classes[i])
                .unwrap_or(0);
            format!(
                "class {i} is `{}` in the model and `{}` in the data",
                self.classes[i], data_classes[i]
            )
        };
        Err(MetaMismatch {
            path: path.to_path_buf(),
            detail,
        })
    }
}

/// A setting or dataset that contradicts a model file's metadata.
#[derive(Debug, thiserror::Error)]
#[error("{}: {detail}", path.display())]
pub struct MetaMismatch {
    /// The model file.
    pub path: PathBuf,
    /// What differs, with both values.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ModelMeta {
        ModelMeta {
            augloader_version: "0".into(),
            model: "resnet20".into(),
            classes: vec!["a".into(), "b".into()],
            input_size: 32,
            normalize: Normalize::CIFAR,
            train_pipeline: Pipeline::cifar_train(),
            val_pipeline: Pipeline::cifar_eval(),
            data_defaults: None,
            mix: None,
            label_smoothing: 0.0,
        }
    }

    #[test]
    fn round_trips_and_refuses_foreign_metadata() {
        let p = Path::new("m.safetensors");
        let m = meta();
        assert_eq!(
            ModelMeta::from_metadata(p, &m.to_metadata()).unwrap(),
            Some(m.clone())
        );
        assert_eq!(ModelMeta::from_metadata(p, &HashMap::new()).unwrap(), None);
        let foreign = HashMap::from([(META_KEY.to_string(), "{\"model\": 3}".to_string())]);
        let e = ModelMeta::from_metadata(p, &foreign)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("m.safetensors: metadata"), "{e}");
        let mut empty = m.clone();
        empty.classes.clear();
        assert!(ModelMeta::from_metadata(p, &empty.to_metadata()).is_err());
        // Metadata is checked like the command line's flags: a zero std, a huge input.
        let mut zero_std = m.clone();
        zero_std.normalize.std[1] = 0.0;
        let mut huge = m.clone();
        huge.input_size = 100_000;
        let mut pipe = m.clone();
        pipe.val_pipeline.normalize.std = [f32::NAN; 3];
        for bad in [zero_std, huge, pipe] {
            let e = ModelMeta::from_metadata(p, &bad.to_metadata()).unwrap_err();
            assert!(e.to_string().contains("m.safetensors"), "{e}");
        }
        let e = m.check_classes(p, &["a".into()]).unwrap_err().to_string();
        assert!(e.contains("2 classes, the data 1"), "{e}");
        let e = m
            .check_classes(p, &["a".into(), "c".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`b` in the model and `c` in the data"), "{e}");
    }
}
