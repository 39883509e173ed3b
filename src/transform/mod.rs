//! Augmentation ops. Every random op samples plain parameters first and applies them with a pure
//! function, so parameters can be printed, replayed (e.g. in torchvision) and tested.

pub mod affine;
pub mod color;
pub mod crop;
pub mod cutout;
pub mod erase;
pub mod flip;
pub mod mix;
pub mod normalize;
pub mod pipeline;
pub mod pixel;
pub mod policy;
pub mod resize;
pub mod user;

pub use affine::Interpolation;
pub use color::{ColorJitter, Lighting};
pub use crop::{Geometry, GeometryParams};
pub use cutout::Cutout;
pub use erase::{EraseValue, RandomErasing};
pub use mix::{Mix, MixParams};
pub use normalize::Normalize;
pub use pipeline::{Params, Pipeline, PipelineError, PipelineOverrides, PRESETS};
pub use policy::{OpName, Policy, PolicyKind, PolicyOp, POLICY_NAMES};
pub use resize::Resize;
pub use user::{Op, UserParams};
