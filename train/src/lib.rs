//! # augloader-train
//!
//! The libtorch side of augloader: models with torchvision's parameter names, SGD with
//! schedules, checkpoints, training runs, test-time-augmentation evaluation, tuning and
//! experiments. Batches come from the `augloader` loader and become tensors through
//! [`BatchTensors`].
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]
#![warn(clippy::too_many_lines)]

pub mod checkpoint;
mod config;
mod error;
pub mod experiment;
mod layers;
pub mod meta;
pub mod small_nets;

pub mod resnet;
mod run_dir;
pub mod sgd;
mod step;
mod tensor;
pub mod trainer;
pub mod tta;
pub mod tune;
pub mod vgg;

use tch::nn::{self, ModuleT};

pub use tensor::{normalize_u8, BatchTensors};

/// One entry of the model registry: a family of architectures, how its names read, where its
/// final layer is (for `--reinit-head` and `--freeze-backbone`) and how it is built.
#[derive(Debug)]
pub struct ModelFamily {
    /// Names, as shown in `--help` and errors.
    pub names: &'static str,
    /// Parameter-name prefix of the final classification layer (torchvision's naming).
    pub head: &'static str,
    /// Smallest input side the models take (VGG's five poolings need 32 px).
    pub min_input: u32,
    /// Whether `name` belongs to the family.
    accepts: fn(&str) -> bool,
    /// Builds an accepted name.
    build: fn(&nn::Path, &str, resnet::ResNetOptions) -> Model,
}

const IMAGENET_RESNETS: [(&str, usize); 3] = [("resnet18", 18), ("resnet34", 34), ("resnet50", 50)];
const VGGS: [(&str, usize, bool); 4] = [
    ("vgg11", 11, false),
    ("vgg11_bn", 11, true),
    ("vgg16", 16, false),
    ("vgg16_bn", 16, true),
];

/// Every model family; [`build_model`], [`head_prefix`], [`min_input_size`] and the command
/// line's help read this table, so a new model is one entry here.
pub const MODELS: [ModelFamily; 5] = [
    ModelFamily {
        names: "resnet18, resnet34, resnet50 (ImageNet form)",
        head: "fc.",
        min_input: 8,
        accepts: |n| IMAGENET_RESNETS.iter().any(|m| m.0 == n),
        build: |p, n, o| {
            let depth = IMAGENET_RESNETS
                .iter()
                .find(|m| m.0 == n)
                .map_or(18, |m| m.1);
            Box::new(resnet::imagenet(p, depth, o))
        },
    },
    ModelFamily {
        names: "resnetN for N = 6k+2 >= 8 (CIFAR form: resnet8, resnet20/32/44/56/110)",
        head: "fc.",
        min_input: 8,
        accepts: |n| cifar_depth(n, "resnet").is_some(),
        build: |p, n, o| Box::new(resnet::cifar(p, cifar_depth(n, "resnet").unwrap_or(20), o)),
    },
    ModelFamily {
        names: "plainN (resnetN without shortcuts: plain20/32/56)",
        head: "fc.",
        min_input: 8,
        accepts: |n| cifar_depth(n, "plain").is_some(),
        build: |p, n, o| {
            let o = resnet::ResNetOptions { plain: true, ..o };
            Box::new(resnet::cifar(p, cifar_depth(n, "plain").unwrap_or(20), o))
        },
    },
    ModelFamily {
        names: "vgg11, vgg11_bn, vgg16, vgg16_bn",
        head: "classifier.6.",
        min_input: 32,
        accepts: |n| VGGS.iter().any(|m| m.0 == n),
        build: |p, n, o| {
            let (_, depth, bn) = VGGS.iter().find(|m| m.0 == n).copied().unwrap_or(VGGS[0]);
            Box::new(vgg::vgg(p, depth, bn, o.classes))
        },
    },
    ModelFamily {
        names: "lab[-dN][-wC][-kK][-nobn][-sigmoid|-tanh][-fcH][-pP] (experiment nets, see \
                `augloader experiment`: N conv layers in 3 stages of C/2C/4C channels)",
        head: "fc.",
        min_input: 8,
        accepts: |n| small_nets::LabSpec::parse(n).is_some(),
        build: |p, n, o| {
            let spec = small_nets::LabSpec::parse(n).unwrap_or_default();
            Box::new(small_nets::LabNet::new(p, &spec, o.classes))
        },
    },
];

/// The depth in a CIFAR-form name `{prefix}N`: N = 6k+2, at least 8.
fn cifar_depth(name: &str, prefix: &str) -> Option<usize> {
    let d: usize = name.strip_prefix(prefix)?.parse().ok()?;
    (d >= 8 && (d - 2).is_multiple_of(6)).then_some(d)
}

/// The model names, one family per part, for help texts and errors.
pub fn model_names() -> String {
    MODELS.map(|f| f.names).join("; ")
}

/// A model that knows whether it is training (BN batch statistics, dropout) or evaluating.
pub type Model = Box<dyn ModuleT + Send>;

/// An unknown model name.
#[derive(Debug, thiserror::Error)]
#[error("unknown model `{0}` (known: {known})", known = model_names())]
pub struct UnknownModel(pub String);

/// The registry entry of `name`.
pub fn family(name: &str) -> Result<&'static ModelFamily, UnknownModel> {
    MODELS
        .iter()
        .find(|f| (f.accepts)(name))
        .ok_or_else(|| UnknownModel(name.into()))
}

/// Parameter-name prefix of `name`'s final layer (`fc.` for ResNets, `classifier.6.` for VGG).
pub fn head_prefix(name: &str) -> &'static str {
    family(name).map_or("fc.", |f| f.head)
}

/// The smallest input side `name` takes.
pub fn min_input_size(name: &str) -> u32 {
    family(name).map_or(8, |f| f.min_input)
}

/// Builds model `name` with `classes` outputs under `p` (usually `vs.root()`).
pub fn build_model(
    p: &nn::Path,
    name: &str,
    classes: i64,
    zero_init_residual: bool,
) -> Result<Model, UnknownModel> {
    let o = resnet::ResNetOptions {
        classes,
        zero_init_residual,
        plain: false,
    };
    Ok((family(name)?.build)(p, name, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_familys_head_is_its_final_layer_with_one_row_per_class() {
        for name in [
            "resnet18", "resnet50", "resnet8", "resnet20", "plain20", "vgg11", "vgg16_bn",
        ] {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            build_model(&vs.root(), name, 7, false).unwrap();
            let head = head_prefix(name);
            let vars = vs.variables();
            let w = vars
                .get(&format!("{head}weight"))
                .unwrap_or_else(|| panic!("{name}: no {head}weight"));
            assert_eq!(w.size()[0], 7, "{name}");
            assert!(vars.contains_key(&format!("{head}bias")), "{name}");
        }
        for bad in ["resnet9", "resnet2", "plain", "vgg13", "resnet18x"] {
            assert!(family(bad).is_err(), "{bad}");
        }
    }
}
