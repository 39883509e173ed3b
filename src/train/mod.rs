//! The libtorch trainer (feature `torch`): models with torchvision's parameter names, SGD with
//! schedules, checkpoints, training and evaluation runs.

pub mod checkpoint;
mod layers;
pub mod meta;
pub mod resnet;
pub mod sgd;
pub mod trainer;
pub mod tta;
pub mod tune;
pub mod vgg;

use tch::nn::{self, ModuleT};

/// Names accepted by [`build_model`].
pub const MODELS: [&str; 15] = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "plain20",
    "plain32",
    "plain56",
    "vgg11",
    "vgg11_bn",
    "vgg16",
    "vgg16_bn",
];

/// A model that knows whether it is training (BN batch statistics, dropout) or evaluating.
pub type Model = Box<dyn ModuleT + Send>;

/// An unknown model name.
#[derive(Debug, thiserror::Error)]
#[error("unknown model `{0}` (known: {known})", known = MODELS.join(", "))]
pub struct UnknownModel(pub String);

/// The smallest input side `name` takes (VGG's five poolings need 32 px).
pub fn min_input_size(name: &str) -> u32 {
    if name.starts_with("vgg") {
        32
    } else {
        8
    }
}

/// Builds model `name` with `classes` outputs under `p` (usually `vs.root()`).
pub fn build_model(
    p: &nn::Path,
    name: &str,
    classes: i64,
    zero_init_residual: bool,
) -> Result<Model, UnknownModel> {
    let o = |plain| resnet::ResNetOptions {
        classes,
        zero_init_residual,
        plain,
    };
    Ok(match name {
        "resnet18" => Box::new(resnet::imagenet(p, 18, o(false))),
        "resnet34" => Box::new(resnet::imagenet(p, 34, o(false))),
        "resnet50" => Box::new(resnet::imagenet(p, 50, o(false))),
        "vgg11" => Box::new(vgg::vgg(p, 11, false, classes)),
        "vgg11_bn" => Box::new(vgg::vgg(p, 11, true, classes)),
        "vgg16" => Box::new(vgg::vgg(p, 16, false, classes)),
        "vgg16_bn" => Box::new(vgg::vgg(p, 16, true, classes)),
        other => {
            let (plain, depth) = if let Some(d) = other.strip_prefix("resnet") {
                (false, d)
            } else if let Some(d) = other.strip_prefix("plain") {
                (true, d)
            } else {
                return Err(UnknownModel(other.into()));
            };
            match depth.parse::<usize>() {
                Ok(d) if d >= 8 && (d - 2).is_multiple_of(6) => {
                    Box::new(resnet::cifar(p, d, o(plain)))
                }
                _ => return Err(UnknownModel(other.into())),
            }
        }
    })
}
