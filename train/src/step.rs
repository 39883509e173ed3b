//! One step and one evaluation: the model with its variables, an SGD step on a batch, and
//! validation over a loader.

use crate::tensor::BatchTensors;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Reduction, Tensor};

use super::error::{torch_call, TrainError};
use super::sgd::Sgd;
use super::{build_model, Model};
use augloader::rng::{mix, stream};
use augloader::Loader;

/// Validation results.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvalResult {
    /// Mean loss.
    pub loss: f64,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy.
    pub top5: f64,
    /// Images evaluated.
    pub images: usize,
}

/// Number of correct predictions in the top `k`.
pub(crate) fn topk_correct(logits: &Tensor, y: &Tensor, k: i64) -> i64 {
    let k = k.min(logits.size()[1]);
    let (_, idx) = logits.topk(k, 1, true, true);
    idx.eq_tensor(&y.unsqueeze(1))
        .any_dim(1, false)
        .sum(Kind::Int64)
        .int64_value(&[])
}

/// Evaluates `model` over every batch of `loader` (epoch 0, in order).
pub fn evaluate(
    model: &dyn ModuleT,
    loader: &Loader,
    device: Device,
) -> Result<EvalResult, TrainError> {
    let mut r = EvalResult::default();
    let (mut loss, mut c1, mut c5) = (0.0, 0i64, 0i64);
    for b in loader.epoch(0) {
        let b = b?;
        let (x, y) = b.to_device(device);
        let what = format!("evaluating a batch of {}", b.len());
        let logits = torch_call(&what, || tch::no_grad(|| model.forward_t(&x, false)))?;
        loss += logits
            .cross_entropy_loss::<Tensor>(&y, None, Reduction::Sum, -100, 0.0)
            .double_value(&[]);
        c1 += topk_correct(&logits, &y, 1);
        c5 += topk_correct(&logits, &y, 5);
        r.images += b.len();
    }
    let n = r.images.max(1) as f64;
    r.loss = loss / n;
    r.top1 = c1 as f64 / n;
    r.top5 = c5 as f64 / n;
    Ok(r)
}

/// A model with its variables, built for `classes` outputs.
pub struct Net {
    /// Parameters and buffers.
    pub vs: VarStore,
    /// The network.
    pub model: Model,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("device", &self.vs.device())
            .field("variables", &self.vs.variables().len())
            .finish_non_exhaustive()
    }
}

impl Net {
    /// Builds `name` on `device`, initialised from `seed`.
    pub fn new(
        name: &str,
        classes: usize,
        device: Device,
        seed: u64,
        zero_init_residual: bool,
    ) -> Result<Net, TrainError> {
        tch::manual_seed(mix(seed, stream::TRAIN, u64::MAX, 0) as i64);
        let vs = VarStore::new(device);
        let model = build_model(&vs.root(), name, classes as i64, zero_init_residual)?;
        Ok(Net { vs, model })
    }

    /// Trainable parameters by name.
    pub fn named_trainable(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// One SGD step on the batch `(x, y)`: forward (in training mode when `train_mode`), cross-entropy
/// with `label_smoothing`, backward, update at `lr`. `y` holds class indices, or soft targets
/// `[B, C]` (MixUp / CutMix; counted correct where the top-1 is the targets' largest class).
/// Returns the loss (before the update) and the number of correct top-1 predictions. Shared by
/// training runs and the tuning recipe.
pub fn train_step(
    model: &dyn ModuleT,
    opt: &mut Sgd,
    (x, y): (&Tensor, &Tensor),
    lr: f64,
    label_smoothing: f64,
    train_mode: bool,
) -> (f64, i64) {
    let logits = model.forward_t(x, train_mode);
    let loss = logits.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, label_smoothing);
    opt.zero_grad();
    loss.backward();
    opt.step(lr);
    let hard = if y.dim() == 2 {
        y.argmax(1, false)
    } else {
        y.shallow_clone()
    };
    (
        loss.double_value(&[]),
        topk_correct(&logits.detach(), &hard, 1),
    )
}
