//! Observations of the lecture notes this project grew from, as experiments: how the
//! initialisation decides whether activations survive a deep plain net, and the degradation of
//! deep plain nets that residual blocks cure (He et al. 2015, Fig. 1 and 6).

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::trainer::{train, EpochMetrics, Start, TrainConfig, TrainError, TrainJob};
use augloader::observe::{Event, Observer};
use augloader::source::Source;

/// A weight initialisation of the init experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Normal with std 0.01, whatever the layer's size.
    Small,
    /// Glorot normal: std = sqrt(2 / (fan_in + fan_out)).
    Xavier,
    /// He normal: std = sqrt(2 / fan_in), made for ReLU.
    Kaiming,
}

/// The initialisations compared, with their names.
pub const INITS: [(Init, &str); 3] = [
    (Init::Small, "small"),
    (Init::Xavier, "xavier"),
    (Init::Kaiming, "kaiming"),
];

impl Init {
    /// The weight std of a layer with these fans.
    pub fn std(self, fan_in: f64, fan_out: f64) -> f64 {
        match self {
            Init::Small => 0.01,
            Init::Xavier => (2.0 / (fan_in + fan_out)).sqrt(),
            Init::Kaiming => (2.0 / fan_in).sqrt(),
        }
    }
}

/// The standard deviation of the activations after each of `layers` 3x3 conv + ReLU layers of
/// `width` channels (no normalisation, zero bias), initialised with `init` from `seed`, for the
/// batch `x` ([N, C, H, W]). The convolutions pad circularly: zero padding would shrink the
/// activations at the borders layer after layer, whatever the initialisation.
pub fn activation_stds(x: &Tensor, layers: usize, width: i64, init: Init, seed: u64) -> Vec<f64> {
    tch::manual_seed(seed as i64);
    let _guard = tch::no_grad_guard();
    let mut h = x.to_kind(Kind::Float);
    let mut out = Vec::with_capacity(layers);
    for _ in 0..layers {
        let cin = h.size()[1];
        let std = init.std((cin * 9) as f64, (width * 9) as f64);
        let w = Tensor::randn([width, cin, 3, 3], (Kind::Float, h.device())) * std;
        h = h
            .pad([1, 1, 1, 1], "circular", None)
            .conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
            .relu();
        out.push(h.std(true).double_value(&[]));
    }
    out
}

/// One arm's training run of an experiment.
#[derive(Clone, Debug)]
pub struct ModelRun {
    /// The arm's name (the model's, in the degradation experiment).
    pub model: String,
    /// Its finished epochs.
    pub history: Vec<EpochMetrics>,
    /// The epoch in which the loss stopped being finite, if it did (the run stops there).
    pub diverged: Option<usize>,
    /// Wall time.
    pub seconds: f64,
}

impl ModelRun {
    /// Final training error (1 - training accuracy on augmented batches); 1 once diverged.
    pub fn train_error(&self) -> f64 {
        match self.diverged {
            Some(_) => 1.0,
            None => self.history.last().map_or(f64::NAN, |m| 1.0 - m.train_acc),
        }
    }

    /// Final test error (1 - validation top-1); 1 once diverged.
    pub fn test_error(&self) -> f64 {
        match self.diverged {
            Some(_) => 1.0,
            None => self.history.last().map_or(f64::NAN, |m| 1.0 - m.val_top1),
        }
    }

    /// Final validation top-1 (0 once diverged).
    pub fn val_top1(&self) -> f64 {
        1.0 - self.test_error()
    }

    /// Final training loss (infinite once diverged).
    pub fn train_loss(&self) -> f64 {
        match self.diverged {
            Some(_) => f64::INFINITY,
            None => self.history.last().map_or(f64::NAN, |m| m.train_loss),
        }
    }
}

/// Passes events on and keeps the latest history (what a diverged run had finished).
struct Recorder<'o> {
    inner: &'o dyn Observer,
    history: RefCell<Vec<EpochMetrics>>,
}

impl Observer for Recorder<'_> {
    fn event(&self, e: Event<'_>) {
        if let Event::Epoch { history, .. } = &e {
            *self.history.borrow_mut() = history.to_vec();
        }
        self.inner.event(e);
    }
}

/// Trains `job` as the arm `name` of an experiment: a run whose loss stops being finite is a
/// result (diverged), not an error.
pub fn run_arm(name: &str, job: TrainJob<'_>, obs: &dyn Observer) -> Result<ModelRun, TrainError> {
    let start = Instant::now();
    obs.event(Event::Note(&format!("training {name}")));
    let rec = Recorder {
        inner: obs,
        history: RefCell::new(Vec::new()),
    };
    let (history, diverged) = match train(job, &rec) {
        Ok(s) => (s.history, None),
        Err(TrainError::Diverged { epoch, step, loss }) => {
            obs.event(Event::End);
            obs.event(Event::Note(&format!(
                "{name}: loss {loss} at epoch {} step {step}: diverged",
                epoch + 1
            )));
            (rec.history.into_inner(), Some(epoch))
        }
        Err(e) => return Err(e),
    };
    Ok(ModelRun {
        model: name.to_string(),
        history,
        diverged,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Trains each of `models` with the settings of `base` (one schedule, the same data and seed)
/// into `out/<model>`, and returns their histories.
pub fn degradation(
    base: &TrainConfig,
    models: &[String],
    data: (Arc<dyn Source>, Arc<dyn Source>),
    out: &Path,
    device: Device,
    obs: &dyn Observer,
) -> Result<Vec<ModelRun>, TrainError> {
    let mut runs = Vec::new();
    for model in models {
        let cfg = TrainConfig {
            model: model.clone(),
            ..base.clone()
        };
        let job = TrainJob {
            cfg,
            train: data.0.clone(),
            val: data.1.clone(),
            run_dir: &out.join(model),
            device,
            start: Start::Overwrite,
        };
        runs.push(run_arm(model, job, obs)?);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_init_vanishes_and_kaiming_holds_in_a_deep_plain_net() {
        // Wide layers: narrow ones make the std wander whatever the initialisation.
        // A fixed input: torch's global generator is shared with the tests running beside.
        let mut rng = augloader::rng::rng_for(0, augloader::rng::stream::TRAIN, 0, 0);
        let v: Vec<f32> = (0..8 * 3 * 8 * 8)
            .map(|_| rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng))
            .collect();
        let x = Tensor::from_slice(&v).view([8, 3, 8, 8]);
        let small = activation_stds(&x, 20, 256, Init::Small, 0);
        let kaiming = activation_stds(&x, 20, 256, Init::Kaiming, 0);
        assert!(small[19] < 0.01 * small[0], "{small:?}");
        let ratio = kaiming[19] / kaiming[0];
        // Tests beside this one draw from torch's global generator too, so the weights vary
        // from run to run; over 20 random layers Kaiming's std drifts by up to about 2x, while
        // the small init falls by orders of magnitude.
        assert!((0.25..4.0).contains(&ratio), "{kaiming:?}");
    }
}
