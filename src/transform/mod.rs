//! Augmentation ops. Every random op samples plain parameters first and applies them with a pure
//! function, so parameters can be printed, replayed (e.g. in torchvision) and tested.

pub(crate) mod affine;
pub(crate) mod color;
pub(crate) mod crop;
pub(crate) mod cutout;
pub(crate) mod erase;
pub(crate) mod flip;
pub mod functional;
pub(crate) mod mix;
pub(crate) mod normalize;
pub(crate) mod pipeline;
pub(crate) mod pixel;
pub(crate) mod policy;
pub(crate) mod resize;
pub(crate) mod user;

pub use affine::Interpolation;
pub use color::{
    ColorJitter, JitterParams, Lighting, LightingParams, IMAGENET_EIGVAL, IMAGENET_EIGVEC,
};
pub use crop::{Geometry, GeometryParams};
pub use cutout::{Cutout, CutoutBox};
pub use erase::{EraseParams, EraseValue, RandomErasing};
pub use mix::{Mix, MixParams};
pub use normalize::Normalize;
pub use pipeline::{
    Params, Pipeline, PipelineError, PipelineOverrides, Preset, MAX_CUTOUT_HOLES, MAX_SIDE, PRESETS,
};
pub use policy::{
    AugMixParams, AutoAugmentTable, Drawn, OpName, Policy, PolicyKind, PolicyOp, MAX_POLICY_OPS,
    POLICY_NAMES,
};
pub use resize::Resize;
pub use user::{Op, UserOps, UserParams};
