//! Augmentation ops. Every random op samples plain parameters first and applies them with a pure
//! function, so parameters can be printed, replayed (e.g. in torchvision) and tested.

pub mod color;
pub mod crop;
pub mod cutout;
pub mod flip;
pub mod normalize;
pub mod pipeline;
pub mod resize;

pub use color::{ColorJitter, Lighting};
pub use crop::{Geometry, GeometryParams};
pub use cutout::Cutout;
pub use normalize::Normalize;
pub use pipeline::{Params, Pipeline, PipelineError, PipelineOverrides, PRESETS};
pub use resize::Resize;
