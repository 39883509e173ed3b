//! Users' own per-sample ops. An [`Op`] follows the house rule, sample then apply: it draws its
//! parameters from the sample's RNG (so they are a function of (seed, epoch, index), whatever
//! the worker count, and replay on resume) and applies them purely. Its parameters print with
//! the built-in ones under `"user"`. User ops run last, after random erasing.

use std::fmt;
use std::sync::Arc;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::rng::SampleRng;

/// A per-sample augmentation of the user's own (see the module documentation and
/// `examples/custom_op.rs`).
pub trait Op: Send + Sync {
    /// The name its parameters print under.
    fn name(&self) -> &str;
    /// Draws the parameters for an image of `width` x `height` from the sample's RNG; plain
    /// JSON, printable and replayable.
    fn sample(&self, rng: &mut SampleRng, width: u32, height: u32) -> serde_json::Value;
    /// Applies `params` (pure: the same image and parameters give the same output). A panic
    /// reaches the loader's caller as an error naming the batch.
    fn apply(&self, img: RgbImage, params: &serde_json::Value) -> RgbImage;
}

/// The user ops of a pipeline, in order. Pipelines compare equal when they hold the same ops
/// (the same objects); the ops are not serialised (a model file records the built-in ops).
#[derive(Clone, Default)]
pub struct UserOps(pub Vec<Arc<dyn Op>>);

impl fmt::Debug for UserOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|o| o.name()))
            .finish()
    }
}

impl PartialEq for UserOps {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl UserOps {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a user op drew: its name and parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserParams {
    /// [`Op::name`].
    pub op: String,
    /// [`Op::sample`]'s parameters.
    pub params: serde_json::Value,
}

impl UserOps {
    /// Draws every op's parameters, in order.
    pub fn sample(&self, rng: &mut SampleRng, width: u32, height: u32) -> Vec<UserParams> {
        self.0
            .iter()
            .map(|op| UserParams {
                op: op.name().to_string(),
                params: op.sample(rng, width, height),
            })
            .collect()
    }

    /// Applies drawn parameters, in order.
    pub fn apply(&self, img: RgbImage, params: &[UserParams]) -> RgbImage {
        self.0
            .iter()
            .zip(params)
            .fold(img, |acc, (op, p)| op.apply(acc, &p.params))
    }
}
