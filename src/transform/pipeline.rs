//! Composition of the ops into a pipeline, and the named presets.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::color::{apply_color, ColorJitter, JitterParams, Lighting, LightingParams};
use super::crop::{apply_geometry, apply_geometry_decoded, Geometry, GeometryParams};
use super::cutout::{apply_cutout, Cutout, CutoutBox};
use super::erase::{apply_erase, EraseParams, EraseValue, RandomErasing};
use super::flip::{hflip, sample_flip};
use super::normalize::Normalize;
use super::policy::{AugMixParams, Drawn, Policy, PolicyKind, PolicyOp};
use super::resize::Resize;
use super::user::{Op, UserOps, UserParams};
use crate::decode::{Decoded, Region};
use crate::rng::SampleRng;

/// An augmentation pipeline: geometry, flip, an automatic augmentation policy, colour jitter,
/// lighting, Cutout, random erasing, in that order; normalisation happens at collation or on
/// the device (random erasing writes the pixels that normalise to its values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Preset name it came from (informational).
    pub name: String,
    /// Crop/resize stage.
    pub geometry: Geometry,
    /// Probability of a horizontal flip.
    pub flip: f64,
    /// Colour jitter, if any.
    pub jitter: Option<ColorJitter>,
    /// PCA lighting, if any.
    pub lighting: Option<Lighting>,
    /// Cutout, if any.
    pub cutout: Option<Cutout>,
    /// Automatic augmentation policy after the flip (RandAugment, TrivialAugmentWide, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_augment: Option<Policy>,
    /// Random erasing, after Cutout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erase: Option<RandomErasing>,
    /// The user's own ops, last ([`Pipeline::with_op`]).
    #[serde(skip)]
    pub user_ops: UserOps,
    /// Normalisation applied after the pipeline.
    pub normalize: Normalize,
}

/// Everything one sample's augmentation drew: plain data, printable and replayable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Input (height, width).
    pub input_size: [u32; 2],
    /// Geometry.
    pub geometry: GeometryParams,
    /// Output (height, width).
    pub output_size: [u32; 2],
    /// Horizontal flip of the geometry's output.
    pub flip: bool,
    /// Colour jitter.
    pub jitter: Option<JitterParams>,
    /// PCA lighting.
    pub lighting: Option<LightingParams>,
    /// Cutout holes on the output.
    pub cutout: Vec<CutoutBox>,
    /// Cutout fill colour.
    pub cutout_fill: [u8; 3],
    /// The policy's ops after the flip, in order (torchvision's names and magnitudes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<PolicyOp>,
    /// What AugMix drew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augmix: Option<AugMixParams>,
    /// Erased boxes (top, left, height, width).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erase: Vec<[u32; 4]>,
    /// The erased value (normalised units), with the erased boxes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erase_value: Option<EraseValue>,
    /// Seed of the erased boxes' noise (`random` values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erase_noise_seed: Option<u64>,
    /// What the user's ops drew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<UserParams>,
}

/// Largest output side a pipeline may have (resizes may reach twice that).
pub const MAX_SIDE: u32 = 4096;

/// Most Cutout holes per image.
pub const MAX_CUTOUT_HOLES: u32 = 1000;

/// The named pipelines [`Pipeline::preset`] knows; `--pipeline`, its help and errors read this.
pub const PRESETS: [Preset; 9] = [
    Preset {
        name: "resnet-train",
        build: Pipeline::resnet_train,
        about: "scale augmentation 256..480, random 224 crop, flip, colour jitter, PCA lighting, Cutout",
    },
    Preset {
        name: "inception-train",
        build: Pipeline::inception_train,
        about: "RandomResizedCrop 224, flip, colour jitter",
    },
    Preset {
        name: "cifar-train",
        build: Pipeline::cifar_train,
        about: "pad 4 and random 32 crop, flip, Cutout 16",
    },
    Preset {
        name: "eval",
        build: Pipeline::eval,
        about: "resize 256, centre crop 224",
    },
    Preset {
        name: "cifar-eval",
        build: Pipeline::cifar_eval,
        about: "the image as it is (32 px), normalised",
    },
    Preset {
        name: "decode",
        build: Pipeline::decode_only,
        about: "decode only",
    },
    Preset {
        name: "tv2-train",
        build: Pipeline::tv2_train,
        about: "torchvision's v2 recipe: RandomResizedCrop 176, flip, TrivialAugmentWide, random erasing 0.1 (training adds MixUp 0.2 / CutMix 1.0, label smoothing 0.1)",
    },
    Preset {
        name: "tv2-eval",
        build: Pipeline::tv2_eval,
        about: "torchvision's v2 recipe's evaluation: resize 232, centre crop 224",
    },
    Preset {
        name: "deit-train",
        build: Pipeline::deit_train,
        about: "DeiT: RandomResizedCrop 224, flip, RandAugment (2 ops, magnitude 9), random erasing 0.25 (training adds MixUp 0.8 / CutMix 1.0, label smoothing 0.1)",
    },
];

/// Changes to a pipeline's settings, as the command line's pipeline flags and the Python
/// loader's keyword arguments give them; `None` keeps the pipeline's value. The one list of
/// them: the Python binding deserialises its keywords into it (unknown names refused) and takes
/// their names from [`PipelineOverrides::names`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineOverrides {
    /// Output crop side (rescales the resize range to match).
    pub size: Option<u32>,
    /// Scale augmentation: smallest shorter side before the crop.
    pub scale_min: Option<u32>,
    /// Scale augmentation: largest shorter side before the crop.
    pub scale_max: Option<u32>,
    /// Colour jitter strength for brightness, contrast and saturation (0 disables).
    pub jitter: Option<f32>,
    /// Hue jitter strength (0..=0.5).
    pub hue: Option<f32>,
    /// PCA lighting alpha std (0 disables).
    pub lighting: Option<f32>,
    /// Cutout hole side in pixels (0 disables).
    pub cutout: Option<u32>,
    /// Number of Cutout holes.
    pub cutout_holes: Option<u32>,
    /// Horizontal flip probability.
    pub flip: Option<f64>,
    /// Decode exactly: no reduced-size DCT decoding (see [`crate::decode::DecodeOptions::dct_scaling`]).
    pub exact_decode: Option<bool>,
    /// Automatic augmentation policy after the flip: a name of [`super::POLICY_NAMES`], or
    /// `none`.
    pub auto_augment: Option<String>,
    /// RandAugment's number of ops per image.
    pub ra_ops: Option<u32>,
    /// RandAugment's magnitude bin (0..=30).
    pub ra_magnitude: Option<u32>,
    /// Random erasing probability (0 disables).
    pub random_erase: Option<f64>,
    /// Random erasing value in normalised units: `0` (the mean colour), `random`, or `r,g,b`.
    pub random_erase_value: Option<String>,
}

impl PipelineOverrides {
    /// The settings' names (the Python keywords; the command line's flags with dashes).
    pub fn names() -> Vec<String> {
        match serde_json::to_value(Self::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => unreachable!("a struct serialises to an object"),
        }
    }

    /// Decoding options with `exact_decode` applied to `d`.
    pub fn decode_options(
        &self,
        mut d: crate::decode::DecodeOptions,
    ) -> crate::decode::DecodeOptions {
        if let Some(exact) = self.exact_decode {
            d.dct_scaling = !exact;
        }
        d
    }

    /// `p` with the changes, validated.
    pub fn apply(&self, mut p: Pipeline) -> Result<Pipeline, PipelineError> {
        let sides = [("size", self.size), ("scale_min", self.scale_min)];
        for (name, v) in sides.into_iter().chain([("scale_max", self.scale_max)]) {
            if let Some(v) = v.filter(|v| !(1..=MAX_SIDE).contains(v)) {
                return Err(PipelineError::Override {
                    names: vec![name],
                    reason: format!("{v} is outside 1..={MAX_SIDE} pixels"),
                });
            }
        }
        if let Some(s) = self.size {
            p = p.with_size(s);
        }
        if let Geometry::ScaleAug { min, max, .. } = &mut p.geometry {
            *min = self.scale_min.unwrap_or(*min);
            *max = self.scale_max.unwrap_or(*max);
        } else if self.scale_min.is_some() || self.scale_max.is_some() {
            return Err(PipelineError::Override {
                names: vec!["scale_min", "scale_max"],
                reason: "apply to scale augmentation (resnet-train) only".into(),
            });
        }
        if self.jitter.is_some() || self.hue.is_some() {
            let mut j = p.jitter.unwrap_or(ColorJitter::bcs(0.0));
            if let Some(x) = self.jitter {
                (j.brightness, j.contrast, j.saturation) = (x, x, x);
            }
            if let Some(h) = self.hue {
                j.hue = h;
            }
            p.jitter = Some(j);
        }
        if let Some(l) = self.lighting {
            if !(l.is_finite() && l >= 0.0) {
                return Err(PipelineError::Override {
                    names: vec!["lighting"],
                    reason: format!("{l} must be finite and >= 0 (0 turns it off)"),
                });
            }
            p.lighting = (l > 0.0).then(|| Lighting::imagenet(l));
        }
        if self.cutout.is_some() || self.cutout_holes.is_some() {
            let fill = p.normalize.mean_u8();
            let mut c = p.cutout.unwrap_or(Cutout {
                holes: 1,
                length: 16,
                fill,
            });
            c.length = self.cutout.unwrap_or(c.length);
            c.holes = self.cutout_holes.unwrap_or(c.holes);
            p.cutout = (c.length > 0 && c.holes > 0).then_some(c);
        }
        p.flip = self.flip.unwrap_or(p.flip);
        self.apply_recipe_ops(&mut p)?;
        p.validate()?;
        Ok(p)
    }

    /// The automatic augmentation and random erasing overrides.
    fn apply_recipe_ops(&self, p: &mut Pipeline) -> Result<(), PipelineError> {
        let err =
            |names: Vec<&'static str>, reason: String| PipelineError::Override { names, reason };
        if let Some(name) = &self.auto_augment {
            p.auto_augment = match name.as_str() {
                "none" => None,
                _ => Some(Policy::parse(name).ok_or_else(|| {
                    let known: Vec<&str> = super::POLICY_NAMES.iter().map(|n| n.0).collect();
                    err(
                        vec!["auto_augment"],
                        format!(
                            "unknown policy `{name}` (known: {}, none)",
                            known.join(", ")
                        ),
                    )
                })?),
            };
        }
        if self.ra_ops.is_some() || self.ra_magnitude.is_some() {
            let Some(Policy {
                kind:
                    PolicyKind::RandAugment {
                        num_ops, magnitude, ..
                    },
                ..
            }) = &mut p.auto_augment
            else {
                return Err(err(
                    vec!["ra_ops", "ra_magnitude"],
                    "apply to the randaugment policy only (auto_augment randaugment)".into(),
                ));
            };
            *num_ops = self.ra_ops.unwrap_or(*num_ops);
            *magnitude = self.ra_magnitude.unwrap_or(*magnitude);
        }
        if let Some(pr) = self.random_erase {
            if !(0.0..=1.0).contains(&pr) {
                return Err(err(vec!["random_erase"], format!("{pr} is outside 0..=1")));
            }
            let value = p.erase.map_or(EraseValue::Channels([0.0; 3]), |e| e.value);
            p.erase = (pr > 0.0).then(|| RandomErasing {
                value,
                ..RandomErasing::with_p(pr)
            });
        }
        if let Some(v) = &self.random_erase_value {
            let value = EraseValue::parse(v).map_err(|e| err(vec!["random_erase_value"], e))?;
            let Some(e) = &mut p.erase else {
                return Err(err(
                    vec!["random_erase_value"],
                    "needs random erasing (random_erase > 0)".into(),
                ));
            };
            e.value = value;
        }
        Ok(())
    }
}

/// A named pipeline of [`PRESETS`].
#[derive(Debug)]
pub struct Preset {
    /// The name `--pipeline` takes.
    pub name: &'static str,
    /// Makes the pipeline.
    pub build: fn() -> Pipeline,
    /// What it does, for `--help`.
    pub about: &'static str,
}

/// The preset names, comma-separated.
pub(crate) fn preset_names() -> String {
    PRESETS.map(|p| p.name).join(", ")
}

/// An unknown preset or an invalid setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// No preset of that name.
    #[error("unknown pipeline `{0}` (known: {known})", known = preset_names())]
    Unknown(String),
    /// A setting out of range.
    #[error("invalid pipeline setting: {0}")]
    Invalid(String),
    /// Overrides (by their [`PipelineOverrides`] field names) that are out of range or do not
    /// apply to the preset; front ends say them in their own spelling (flags, keywords).
    #[error("invalid pipeline setting: {}: {reason}", .names.join("/"))]
    Override {
        /// The overrides concerned.
        names: Vec<&'static str>,
        /// What is wrong with them.
        reason: String,
    },
}

impl Pipeline {
    fn base(name: &str, geometry: Geometry, normalize: Normalize) -> Self {
        Pipeline {
            name: name.to_string(),
            geometry,
            flip: 0.0,
            jitter: None,
            lighting: None,
            cutout: None,
            auto_augment: None,
            erase: None,
            user_ops: UserOps::default(),
            normalize,
        }
    }

    /// This pipeline with `op` appended to the user's ops (they run last, in order).
    pub fn with_op(mut self, op: impl Op + 'static) -> Self {
        self.user_ops.0.push(std::sync::Arc::new(op));
        self
    }

    /// `resnet-train`: scale augmentation 256..480 + random 224 crop, flip, jitter 0.4/0.4/0.4,
    /// lighting 0.1, one Cutout hole of 112 px (a quarter of the area, as the torchvision anchor's
    /// RandomErasing(scale=0.25)).
    pub fn resnet_train() -> Self {
        let n = Normalize::IMAGENET;
        Pipeline {
            flip: 0.5,
            jitter: Some(ColorJitter::bcs(0.4)),
            lighting: Some(Lighting::imagenet(0.1)),
            cutout: Some(Cutout {
                holes: 1,
                length: 112,
                fill: n.mean_u8(),
            }),
            ..Self::base(
                "resnet-train",
                Geometry::ScaleAug {
                    min: 256,
                    max: 480,
                    size: 224,
                },
                n,
            )
        }
    }

    /// `inception-train`: RandomResizedCrop 224 (scale 0.08..1, ratio 3/4..4/3), flip,
    /// jitter 0.4/0.4/0.4.
    pub fn inception_train() -> Self {
        Pipeline {
            flip: 0.5,
            jitter: Some(ColorJitter::bcs(0.4)),
            ..Self::base(
                "inception-train",
                Geometry::RandomResizedCrop {
                    size: 224,
                    scale: (0.08, 1.0),
                    ratio: (3.0 / 4.0, 4.0 / 3.0),
                },
                Normalize::IMAGENET,
            )
        }
    }

    /// `cifar-train`: pad 4 + random 32 crop, flip, Cutout of 16 px.
    pub fn cifar_train() -> Self {
        let n = Normalize::CIFAR;
        Pipeline {
            flip: 0.5,
            cutout: Some(Cutout {
                holes: 1,
                length: 16,
                fill: n.mean_u8(),
            }),
            ..Self::base("cifar-train", Geometry::PadCrop { pad: 4, size: 32 }, n)
        }
    }

    /// `eval`: resize the shorter side to 256, centre crop 224.
    pub fn eval() -> Self {
        Self::base(
            "eval",
            Geometry::ResizeCenterCrop {
                resize: 256,
                size: 224,
            },
            Normalize::IMAGENET,
        )
    }

    /// `cifar-eval`: the 32x32 image as it is.
    pub fn cifar_eval() -> Self {
        Self::base("cifar-eval", Geometry::Identity, Normalize::CIFAR)
    }

    /// `decode`: nothing after decoding (for measuring the decoder).
    pub fn decode_only() -> Self {
        Self::base("decode", Geometry::Identity, Normalize::IMAGENET)
    }

    /// `tv2-train`: torchvision's classification reference, ResNet-50 v2 recipe: RandomResizedCrop
    /// 176, flip, TrivialAugmentWide, random erasing 0.1 (value 0).
    pub fn tv2_train() -> Self {
        Pipeline {
            auto_augment: Policy::parse("ta-wide"),
            erase: Some(RandomErasing::with_p(0.1)),
            ..Self::inception_train().renamed("tv2-train", 176)
        }
    }

    /// `tv2-eval`: resize the shorter side to 232, centre crop 224 (the v2 recipe's evaluation).
    pub fn tv2_eval() -> Self {
        Self::base(
            "tv2-eval",
            Geometry::ResizeCenterCrop {
                resize: 232,
                size: 224,
            },
            Normalize::IMAGENET,
        )
    }

    /// `deit-train`: DeiT's recipe on torchvision's ops: RandomResizedCrop 224, flip,
    /// RandAugment (2 ops, magnitude 9 of 31 bins), random erasing 0.25.
    pub fn deit_train() -> Self {
        Pipeline {
            auto_augment: Policy::parse("randaugment"),
            erase: Some(RandomErasing::with_p(0.25)),
            ..Self::inception_train().renamed("deit-train", 224)
        }
    }

    /// RandomResizedCrop and flip of `inception-train` without its jitter, named `name`.
    fn renamed(self, name: &str, size: u32) -> Self {
        Pipeline {
            name: name.to_string(),
            jitter: None,
            ..self.with_size(size)
        }
    }

    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, PipelineError> {
        PRESETS
            .iter()
            .find(|p| p.name == name)
            .map(|p| (p.build)())
            .ok_or_else(|| PipelineError::Unknown(name.to_string()))
    }

    /// Sets the output side of the crop (e.g. 64 for small-image training).
    pub fn with_size(mut self, out: u32) -> Self {
        let before = self.output_size().map_or(out, |(h, _)| h);
        match &mut self.geometry {
            Geometry::ScaleAug { min, max, size } => {
                // Keep the ratio 256..480 : 224.
                *min = (out as f64 * 256.0 / 224.0).round() as u32;
                *max = (out as f64 * 480.0 / 224.0).round() as u32;
                *size = out;
            }
            Geometry::ResizeCenterCrop { resize, size } => {
                // Keep the preset's ratio (256:224, 232:224).
                *resize = (out as f64 * *resize as f64 / (*size).max(1) as f64).round() as u32;
                *size = out;
            }
            Geometry::RandomResizedCrop { size, .. } | Geometry::PadCrop { size, .. } => {
                *size = out
            }
            Geometry::Identity => {}
        }
        if let Some(c) = &mut self.cutout {
            // Keep the hole's share of the crop.
            c.length = ((c.length as f64 * out as f64 / before as f64).round() as u32)
                .clamp(1, out.max(1));
        }
        self
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad = |m: String| Err(PipelineError::Invalid(m));
        self.normalize.validate().map_err(PipelineError::Invalid)?;
        match self.geometry {
            Geometry::ScaleAug { min, max, size } if min > max || min < size || size == 0 => {
                return bad(format!(
                    "scale range {min}..{max} must be ordered and at least the crop size {size}"
                ))
            }
            Geometry::RandomResizedCrop { size, scale, ratio }
                if size == 0
                    || !(scale.0 > 0.0 && scale.0 <= scale.1)
                    || !(ratio.0 > 0.0 && ratio.0 <= ratio.1) =>
            {
                return bad(format!(
                    "random-resized-crop size {size}, scale {scale:?}, ratio {ratio:?}"
                ))
            }
            Geometry::ResizeCenterCrop { resize, size } if size == 0 || resize < size => {
                return bad(format!(
                    "resize {resize} must be at least the crop size {size}"
                ))
            }
            _ => {}
        }
        // Bounds that keep one image's buffers within a few hundred MB.
        let (side, resize) = match self.geometry {
            Geometry::ScaleAug { max, size, .. } => (size, max),
            Geometry::ResizeCenterCrop { resize, size } => (size, resize),
            Geometry::RandomResizedCrop { size, .. } => (size, size),
            Geometry::PadCrop { pad, size } => (size, size + 2 * pad.min(MAX_SIDE)),
            Geometry::Identity => (0, 0),
        };
        if side > MAX_SIDE || resize > 2 * MAX_SIDE {
            return bad(format!(
                "output side {side} (at most {MAX_SIDE}) or resize {resize} (at most {}) too large",
                2 * MAX_SIDE
            ));
        }
        if let Some(l) = self.lighting {
            if !(l.std.is_finite() && l.std >= 0.0) {
                return bad(format!("lighting std {} must be finite and >= 0", l.std));
            }
        }
        if let Some(c) = self.cutout {
            if c.holes > MAX_CUTOUT_HOLES {
                return bad(format!(
                    "{} Cutout holes is outside 0..={MAX_CUTOUT_HOLES}",
                    c.holes
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.flip) {
            return bad(format!("flip probability {} not in [0, 1]", self.flip));
        }
        if let Some(a) = &self.auto_augment {
            a.validate().map_err(PipelineError::Invalid)?;
        }
        if let Some(e) = &self.erase {
            e.validate().map_err(PipelineError::Invalid)?;
        }
        if let Some(j) = self.jitter {
            if [j.brightness, j.contrast, j.saturation]
                .iter()
                .any(|x| !(0.0..=10.0).contains(x))
                || !(0.0..=0.5).contains(&j.hue)
            {
                return bad(format!("jitter {j:?}: strengths must be >= 0, hue <= 0.5"));
            }
        }
        Ok(())
    }

    /// The fixed output (height, width), if the geometry has one.
    pub fn output_size(&self) -> Option<(u32, u32)> {
        self.geometry.output_size()
    }

    /// Draws every random parameter for an input of `width` x `height` (rule: sample, then apply).
    pub fn sample(&self, rng: &mut SampleRng, width: u32, height: u32) -> Params {
        let geometry = self.geometry.sample(rng, width, height);
        let (oh, ow) = match geometry {
            GeometryParams::ResizeCrop { crop, .. } | GeometryParams::PadCrop { crop, .. } => {
                (crop[2], crop[3])
            }
            GeometryParams::CropResize { size, .. } => (size[0], size[1]),
            GeometryParams::Identity => (height, width),
        };
        let flip = sample_flip(rng, self.flip);
        let jitter = self.jitter.map(|j| j.sample(rng));
        let lighting = self.lighting.filter(|l| l.std > 0.0).map(|l| l.sample(rng));
        let cutout = self
            .cutout
            .map(|c| c.sample(rng, ow, oh))
            .unwrap_or_default();
        let (policy, augmix) = match self.auto_augment.map(|a| a.sample(rng, ow, oh)) {
            Some(Drawn::Ops(ops)) => (ops, None),
            Some(Drawn::AugMix(m)) => (Vec::new(), Some(m)),
            None => (Vec::new(), None),
        };
        let erased = self.erase.and_then(|e| e.sample(rng, ow, oh));
        let user = self.user_ops.sample(rng, ow, oh);
        Params {
            user,
            policy,
            augmix,
            erase: erased.map(|e| vec![e.rect]).unwrap_or_default(),
            erase_value: erased.and(self.erase.map(|e| e.value)),
            erase_noise_seed: erased.and_then(|e| e.noise_seed),
            input_size: [height, width],
            geometry,
            output_size: [oh, ow],
            flip,
            jitter,
            lighting,
            cutout,
            cutout_fill: self
                .cutout
                .map(|c| c.fill)
                .unwrap_or(self.normalize.mean_u8()),
        }
    }

    /// Applies sampled parameters; pure: the same input and params give the same output.
    pub fn apply(&self, src: &RgbImage, p: &Params, resize: &mut Resize) -> RgbImage {
        self.finish(apply_geometry(src, &p.geometry, resize), p)
    }

    /// As [`Pipeline::apply`], consuming the input: no copy when the geometry is the identity.
    pub(crate) fn apply_owned(&self, src: RgbImage, p: &Params, resize: &mut Resize) -> RgbImage {
        let img = match p.geometry {
            GeometryParams::Identity => src,
            ref g => apply_geometry(&src, g, resize),
        };
        self.finish(img, p)
    }

    /// The window of the input that applying `p` reads (`None`: all of it).
    pub(crate) fn region(&self, p: &Params) -> Option<Region> {
        let [h, w] = p.input_size;
        p.geometry.region(w, h)
    }

    /// As [`Pipeline::apply_owned`] on a decoded image that may be only [`Pipeline::region`]
    /// of the input, possibly downscaled in the DCT.
    pub(crate) fn apply_decoded(&self, d: Decoded, p: &Params, resize: &mut Resize) -> RgbImage {
        self.finish(apply_geometry_decoded(d, &p.geometry, resize), p)
    }

    fn finish(&self, mut img: RgbImage, p: &Params) -> RgbImage {
        if p.flip {
            hflip(&mut img);
        }
        if let Some(policy) = &self.auto_augment {
            if let Some(m) = &p.augmix {
                img = policy.apply_augmix(img, m);
            } else if !p.policy.is_empty() {
                img = policy.apply_ops(img, &p.policy);
            }
        }
        apply_color(&mut img, p.jitter.as_ref(), p.lighting.as_ref());
        apply_cutout(&mut img, &p.cutout, p.cutout_fill);
        if let (Some(value), Some(&rect)) = (p.erase_value, p.erase.first()) {
            let e = EraseParams {
                rect,
                noise_seed: p.erase_noise_seed,
            };
            apply_erase(&mut img, &e, value, &self.normalize);
        }
        if !self.user_ops.is_empty() {
            img = self.user_ops.apply(img, &p.user);
        }
        img
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_refuse_sides_out_of_range_instead_of_panicking() {
        for o in [
            PipelineOverrides {
                size: Some(0),
                ..Default::default()
            },
            PipelineOverrides {
                scale_max: Some(MAX_SIDE + 1),
                ..Default::default()
            },
        ] {
            let e = o.apply(Pipeline::resnet_train()).unwrap_err();
            assert!(e.to_string().contains("outside 1..="), "{e}");
        }
        // with_size itself never panics, even at 0 (validation then refuses the pipeline).
        assert!(Pipeline::resnet_train().with_size(0).validate().is_err());
    }

    #[test]
    fn presets_validate() {
        for p in PRESETS {
            let built = Pipeline::preset(p.name).unwrap();
            built.validate().unwrap();
            assert_eq!(built.name, p.name);
        }
        assert!(Pipeline::preset("nope").is_err());
    }

    /// Golden values: the parameters sampled for seed 42, epoch 3, index 17 on a 500x375 input.
    /// If a dependency upgrade changes the RNG streams, this fails.
    #[test]
    fn golden_params_resnet_train() {
        let p = Pipeline::resnet_train();
        let params = p.sample(&mut crate::rng::sample_rng(42, 3, 17), 500, 375);
        let json = serde_json::to_string(&params).unwrap();
        let golden = include_str!("../../tests/golden/resnet_train_42_3_17.json").trim();
        assert_eq!(json, golden);
    }
}
