//! Automatic augmentation policies as torchvision v2 defines them (`_auto_augment.py`):
//! RandAugment, TrivialAugmentWide, AutoAugment (ImageNet, CIFAR-10, SVHN) and AugMix. Each is a
//! table: the operations it draws from (in torchvision's order, so a uniform index picks the
//! same op), each op's magnitude bins and whether its sign is drawn; one sampler per kind of
//! policy walks the tables. Applied ops are printed as torchvision's op names with the signed
//! magnitude its `_apply_image_or_video_transform` receives.

use image::RgbImage;
use rand::Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use super::affine::{affine, rotate, Affine, Interpolation};
use super::color::{apply_color, JitterParams};
use super::pixel::{autocontrast, equalize, invert, posterize, sharpness, solarize};
use crate::rng::SampleRng;

/// An operation of the policies, by torchvision's key in `_AUGMENTATION_SPACE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum OpName {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Invert,
}

/// One applied operation: its name and the signed magnitude torchvision's transform receives
/// (`None` for the ops that take none).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyOp {
    /// torchvision's op name.
    pub op: OpName,
    /// The signed magnitude (degrees, pixels, factors - 1, bits, or the solarize fraction).
    pub magnitude: Option<f64>,
}

/// What an AugMix draw did: the weights of the chains, the weight of the original image, and
/// the ops of each chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugMixParams {
    /// Weight of each chain (Dirichlet(alpha) times 1 - mix).
    pub weights: Vec<f64>,
    /// Weight of the original image (Beta(alpha, alpha)).
    pub mix: f64,
    /// The ops of each chain, in order.
    pub chains: Vec<Vec<PolicyOp>>,
}

/// The ImageNet, CIFAR-10 or SVHN table of AutoAugment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoAugmentTable {
    /// `AutoAugmentPolicy.IMAGENET`.
    Imagenet,
    /// `AutoAugmentPolicy.CIFAR10`.
    Cifar10,
    /// `AutoAugmentPolicy.SVHN`.
    Svhn,
}

/// A policy and its settings (torchvision's defaults by [`Policy::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PolicyKind {
    /// `RandAugment(num_ops, magnitude, num_magnitude_bins)`.
    RandAugment {
        /// Ops per image.
        num_ops: u32,
        /// Magnitude bin (0..num_magnitude_bins).
        magnitude: u32,
        /// Number of bins.
        num_magnitude_bins: u32,
    },
    /// `TrivialAugmentWide(num_magnitude_bins)`.
    TaWide {
        /// Number of bins.
        num_magnitude_bins: u32,
    },
    /// `AutoAugment(policy)`.
    AutoAugment {
        /// Which table of sub-policies.
        table: AutoAugmentTable,
    },
    /// `AugMix(severity, mixture_width, chain_depth, alpha)`.
    AugMix {
        /// Magnitude bins drawn from (1..=10).
        severity: u32,
        /// Number of chains.
        mixture_width: u32,
        /// Ops per chain; -1 draws 1..=3 per chain.
        chain_depth: i32,
        /// Dirichlet / Beta parameter.
        alpha: f64,
    },
}

/// An automatic augmentation policy with its interpolation and fill (torchvision's defaults:
/// nearest for all but AugMix, which uses bilinear; zeros outside the image).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Which policy.
    #[serde(flatten)]
    pub kind: PolicyKind,
    /// Interpolation of the affine ops.
    pub interpolation: Interpolation,
    /// Fill outside the image for the affine ops (`None`: zeros, torchvision's default).
    pub fill: Option<[u8; 3]>,
}

/// The policy names [`Policy::parse`] takes (`--auto-augment`, Python `auto_augment=`).
pub const POLICY_NAMES: [(&str, &str); 6] = [
    (
        "randaugment",
        "RandAugment: num_ops 2 (--ra-ops), magnitude 9 of 31 bins (--ra-magnitude)",
    ),
    (
        "ta-wide",
        "TrivialAugmentWide: one op, magnitude uniform over 31 bins",
    ),
    (
        "autoaugment-imagenet",
        "AutoAugment with the ImageNet policy",
    ),
    (
        "autoaugment-cifar10",
        "AutoAugment with the CIFAR-10 policy",
    ),
    ("autoaugment-svhn", "AutoAugment with the SVHN policy"),
    ("augmix", "AugMix: severity 3, width 3, depth 1..3, alpha 1"),
];

/// The most ops a policy may apply per image (RandAugment's `num_ops`, AugMix's chains).
pub const MAX_POLICY_OPS: u32 = 16;

impl Policy {
    /// A policy by name, with torchvision's defaults.
    pub fn parse(name: &str) -> Option<Policy> {
        let kind = match name {
            "randaugment" => PolicyKind::RandAugment {
                num_ops: 2,
                magnitude: 9,
                num_magnitude_bins: 31,
            },
            "ta-wide" => PolicyKind::TaWide {
                num_magnitude_bins: 31,
            },
            "autoaugment-imagenet" | "autoaugment" => PolicyKind::AutoAugment {
                table: AutoAugmentTable::Imagenet,
            },
            "autoaugment-cifar10" => PolicyKind::AutoAugment {
                table: AutoAugmentTable::Cifar10,
            },
            "autoaugment-svhn" => PolicyKind::AutoAugment {
                table: AutoAugmentTable::Svhn,
            },
            "augmix" => PolicyKind::AugMix {
                severity: 3,
                mixture_width: 3,
                chain_depth: -1,
                alpha: 1.0,
            },
            _ => return None,
        };
        let interpolation = match kind {
            PolicyKind::AugMix { .. } => Interpolation::Bilinear,
            _ => Interpolation::Nearest,
        };
        Some(Policy {
            kind,
            interpolation,
            fill: None,
        })
    }

    /// The name [`Policy::parse`] takes for this kind.
    pub fn name(&self) -> &'static str {
        match self.kind {
            PolicyKind::RandAugment { .. } => "randaugment",
            PolicyKind::TaWide { .. } => "ta-wide",
            PolicyKind::AutoAugment { table } => match table {
                AutoAugmentTable::Imagenet => "autoaugment-imagenet",
                AutoAugmentTable::Cifar10 => "autoaugment-cifar10",
                AutoAugmentTable::Svhn => "autoaugment-svhn",
            },
            PolicyKind::AugMix { .. } => "augmix",
        }
    }

    /// Checks the settings' ranges.
    pub fn validate(&self) -> Result<(), String> {
        match self.kind {
            PolicyKind::RandAugment {
                num_ops,
                magnitude,
                num_magnitude_bins,
            } => {
                if num_ops > MAX_POLICY_OPS {
                    return Err(format!(
                        "RandAugment num_ops {num_ops} is outside 0..={MAX_POLICY_OPS}"
                    ));
                }
                if !(2..=1000).contains(&num_magnitude_bins) || magnitude >= num_magnitude_bins {
                    return Err(format!(
                        "RandAugment magnitude {magnitude} must be below its {num_magnitude_bins} bins (2..=1000)"
                    ));
                }
            }
            PolicyKind::TaWide { num_magnitude_bins }
                if !(2..=1000).contains(&num_magnitude_bins) =>
            {
                return Err(format!(
                    "TrivialAugmentWide bins {num_magnitude_bins} outside 2..=1000"
                ));
            }
            PolicyKind::AugMix {
                severity,
                mixture_width,
                chain_depth,
                alpha,
            } if !(1..=10).contains(&severity)
                || !(1..=MAX_POLICY_OPS).contains(&mixture_width)
                || chain_depth == 0
                || chain_depth > MAX_POLICY_OPS as i32
                || !(alpha.is_finite() && alpha > 0.0) =>
            {
                return Err(format!(
                    "AugMix severity {severity} (1..=10), width {mixture_width} (1..={MAX_POLICY_OPS}), \
                     depth {chain_depth} (-1 or 1..={MAX_POLICY_OPS}), alpha {alpha} (> 0)"
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Draws the ops for an image of `width` x `height` (the size after crop and flip).
    pub fn sample(&self, rng: &mut SampleRng, width: u32, height: u32) -> Drawn {
        let (h, w) = (height as f32, width as f32);
        match self.kind {
            PolicyKind::RandAugment {
                num_ops,
                magnitude,
                num_magnitude_bins,
            } => Drawn::Ops(
                (0..num_ops)
                    .map(|_| {
                        let op = pick(rng, Space::RandAugment.ops());
                        draw(
                            rng,
                            Space::RandAugment,
                            *op,
                            num_magnitude_bins,
                            magnitude as usize,
                            h,
                            w,
                        )
                    })
                    .collect(),
            ),
            PolicyKind::TaWide { num_magnitude_bins } => {
                let op = pick(rng, Space::TaWide.ops());
                let bin = rng.random_range(0..num_magnitude_bins) as usize;
                Drawn::Ops(vec![draw(
                    rng,
                    Space::TaWide,
                    *op,
                    num_magnitude_bins,
                    bin,
                    h,
                    w,
                )])
            }
            PolicyKind::AutoAugment { table } => {
                let subs = sub_policies(table);
                let sub = pick(rng, subs);
                let mut ops = Vec::new();
                for &(op, p, bin) in sub.iter() {
                    if rng.random::<f64>() > p {
                        continue;
                    }
                    ops.push(draw(
                        rng,
                        Space::AutoAugment,
                        op,
                        10,
                        bin.unwrap_or(0) as usize,
                        h,
                        w,
                    ));
                }
                Drawn::Ops(ops)
            }
            PolicyKind::AugMix {
                severity,
                mixture_width,
                chain_depth,
                alpha,
            } => Drawn::AugMix(sample_augmix(
                rng,
                severity,
                mixture_width,
                chain_depth,
                alpha,
                h,
                w,
            )),
        }
    }

    /// Applies drawn ops (pure).
    pub fn apply(&self, img: RgbImage, drawn: &Drawn) -> RgbImage {
        match drawn {
            Drawn::Ops(ops) => self.apply_ops(img, ops),
            Drawn::AugMix(p) => self.apply_augmix(img, p),
        }
    }

    /// Applies ops one after the other.
    pub(crate) fn apply_ops(&self, img: RgbImage, ops: &[PolicyOp]) -> RgbImage {
        let fill = self.fill.map(|f| f.map(f32::from));
        ops.iter()
            .fold(img, |acc, op| apply_op(acc, op, self.interpolation, fill))
    }

    /// Applies an AugMix mixture.
    pub(crate) fn apply_augmix(&self, img: RgbImage, p: &AugMixParams) -> RgbImage {
        let fill = self.fill.map(|f| f.map(f32::from));
        apply_augmix(&img, p, self.interpolation, fill)
    }
}

/// What a policy drew for one image.
#[derive(Clone, Debug, PartialEq)]
pub enum Drawn {
    /// Ops applied one after the other.
    Ops(Vec<PolicyOp>),
    /// An AugMix mixture.
    AugMix(AugMixParams),
}

/// The magnitude tables of the four policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Space {
    AutoAugment,
    RandAugment,
    TaWide,
    AugMix,
}

use OpName::*;

impl Space {
    /// The ops in the order of torchvision's dict (a uniform index picks the same op).
    fn ops(self) -> &'static [OpName] {
        match self {
            Space::AutoAugment => &[
                ShearX,
                ShearY,
                TranslateX,
                TranslateY,
                Rotate,
                Brightness,
                Color,
                Contrast,
                Sharpness,
                Posterize,
                Solarize,
                AutoContrast,
                Equalize,
                Invert,
            ],
            Space::RandAugment | Space::TaWide => &[
                Identity,
                ShearX,
                ShearY,
                TranslateX,
                TranslateY,
                Rotate,
                Brightness,
                Color,
                Contrast,
                Sharpness,
                Posterize,
                Solarize,
                AutoContrast,
                Equalize,
            ],
            Space::AugMix => &[
                ShearX,
                ShearY,
                TranslateX,
                TranslateY,
                Rotate,
                Posterize,
                Solarize,
                AutoContrast,
                Equalize,
                Brightness,
                Color,
                Contrast,
                Sharpness,
            ],
        }
    }

    /// (the linspace's end or the posterize base and divisor, signed), per op; `None`: no
    /// magnitude.
    fn range(self, op: OpName, h: f32, w: f32) -> Option<(Range, bool)> {
        let wide = self == Space::TaWide;
        let r = match op {
            Identity | AutoContrast | Equalize | Invert => return None,
            ShearX | ShearY => (Range::Lin(0.0, if wide { 0.99 } else { 0.3 }), true),
            TranslateX | TranslateY => {
                let side = if op == TranslateX { w } else { h };
                let end = match self {
                    Space::TaWide => 32.0,
                    Space::AugMix => side / 3.0,
                    _ => 150.0 / 331.0 * side,
                };
                (Range::Lin(0.0, end), true)
            }
            Rotate => (Range::Lin(0.0, if wide { 135.0 } else { 30.0 }), true),
            Brightness | Color | Contrast | Sharpness => {
                (Range::Lin(0.0, if wide { 0.99 } else { 0.9 }), true)
            }
            Posterize => match self {
                Space::TaWide => (Range::Bits(8.0, 6.0), false),
                Space::AugMix => (Range::Bits(4.0, 4.0), false),
                _ => (Range::Bits(8.0, 4.0), false),
            },
            Solarize => (Range::Lin(1.0, 0.0), false),
        };
        Some(r)
    }
}

/// A magnitude table: `torch.linspace(a, b, bins)`, or posterize's
/// `(base - arange(bins) / ((bins - 1) / div)).round().int()`.
#[derive(Clone, Copy, Debug)]
enum Range {
    Lin(f32, f32),
    Bits(f32, f32),
}

impl Range {
    /// Value `i` of `bins`, in f32 as torch computes it.
    fn at(self, bins: u32, i: usize) -> f32 {
        let n = bins as usize;
        match self {
            Range::Lin(a, b) => {
                if n == 1 {
                    return a;
                }
                // torch's linspace: from the start for the first half, from the end after.
                let step = (b - a) / (n - 1) as f32;
                if i < n / 2 {
                    a + step * i as f32
                } else {
                    b - step * (n - 1 - i) as f32
                }
            }
            Range::Bits(base, div) => (base - i as f32 / ((n - 1) as f32 / div)).round_ties_even(),
        }
    }
}

/// A uniform pick from a list, as torchvision's `_get_random_item` / `torch.randint`.
fn pick<'a, T>(rng: &mut SampleRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// The magnitude of `op` at `bin` of `bins`, its sign drawn where the op is signed.
fn draw(
    rng: &mut SampleRng,
    space: Space,
    op: OpName,
    bins: u32,
    bin: usize,
    h: f32,
    w: f32,
) -> PolicyOp {
    let magnitude = space.range(op, h, w).map(|(range, signed)| {
        let m = range.at(bins, bin) as f64;
        if signed && rng.random::<f64>() < 0.5 {
            -m
        } else {
            m
        }
    });
    PolicyOp { op, magnitude }
}

fn sample_augmix(
    rng: &mut SampleRng,
    severity: u32,
    width: u32,
    depth: i32,
    alpha: f64,
    h: f32,
    w: f32,
) -> AugMixParams {
    let gamma = Gamma::new(alpha, 1.0).expect("alpha validated > 0");
    let mut dirichlet = |k: usize| {
        let g: Vec<f64> = (0..k).map(|_| gamma.sample(rng)).collect();
        let s: f64 = g.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        g.into_iter().map(|v| v / s).collect::<Vec<f64>>()
    };
    let m = dirichlet(2);
    let weights: Vec<f64> = dirichlet(width as usize)
        .into_iter()
        .map(|v| v * m[1])
        .collect();
    let chains = (0..width)
        .map(|_| {
            let d = if depth > 0 {
                depth as u32
            } else {
                rng.random_range(1..4)
            };
            (0..d)
                .map(|_| {
                    let op = pick(rng, Space::AugMix.ops());
                    let bin = rng.random_range(0..severity) as usize;
                    draw(rng, Space::AugMix, *op, 10, bin, h, w)
                })
                .collect()
        })
        .collect();
    AugMixParams {
        weights,
        mix: m[0],
        chains,
    }
}

/// `_apply_image_or_video_transform(image, op, magnitude)` of torchvision v2.
pub fn apply_op(
    mut img: RgbImage,
    op: &PolicyOp,
    interp: Interpolation,
    fill: Option<[f32; 3]>,
) -> RgbImage {
    let m = op.magnitude.unwrap_or(0.0);
    let shear = |sx: f64, sy: f64| Affine {
        shear: [sx, sy],
        center: Some([0.0, 0.0]),
        ..Affine::IDENTITY
    };
    match op.op {
        Identity => img,
        ShearX => affine(&img, &shear(m.atan().to_degrees(), 0.0), interp, fill),
        ShearY => affine(&img, &shear(0.0, m.atan().to_degrees()), interp, fill),
        TranslateX | TranslateY => {
            let t = m.trunc();
            let translate = if op.op == TranslateX {
                [t, 0.0]
            } else {
                [0.0, t]
            };
            affine(
                &img,
                &Affine {
                    translate,
                    ..Affine::IDENTITY
                },
                interp,
                fill,
            )
        }
        Rotate => rotate(&img, m, interp, fill),
        Brightness | Color | Contrast => {
            // torchvision's blends, through the colour pass's SIMD kernels.
            let which = match op.op {
                Brightness => 0,
                Contrast => 1,
                _ => 2,
            };
            let f = Some((1.0 + m) as f32);
            let p = JitterParams {
                order: [which, (which + 1) % 4, (which + 2) % 4, (which + 3) % 4],
                brightness: f.filter(|_| which == 0),
                contrast: f.filter(|_| which == 1),
                saturation: f.filter(|_| which == 2),
                hue: None,
            };
            apply_color(&mut img, Some(&p), None);
            img
        }
        Sharpness => {
            sharpness(&mut img, (1.0 + m) as f32);
            img
        }
        Posterize => {
            posterize(&mut img, m.clamp(0.0, 8.0) as u8);
            img
        }
        Solarize => {
            solarize(&mut img, 255.0 * m);
            img
        }
        AutoContrast => {
            autocontrast(&mut img);
            img
        }
        Equalize => {
            equalize(&mut img);
            img
        }
        Invert => {
            invert(&mut img);
            img
        }
    }
}

/// AugMix's mixture: `mix * original + sum(weight_i * chain_i(original))` in f32, truncated to
/// u8 as torchvision's final `.to(uint8)`.
fn apply_augmix(
    img: &RgbImage,
    p: &AugMixParams,
    interp: Interpolation,
    fill: Option<[f32; 3]>,
) -> RgbImage {
    let src: &[u8] = img;
    let mut acc: Vec<f32> = src.iter().map(|&v| p.mix as f32 * v as f32).collect();
    for (chain, &wt) in p.chains.iter().zip(&p.weights) {
        let aug = chain
            .iter()
            .fold(img.clone(), |a, op| apply_op(a, op, interp, fill));
        let wt = wt as f32;
        for (a, &v) in acc.iter_mut().zip(aug.as_raw()) {
            *a += wt * v as f32;
        }
    }
    let data = acc.into_iter().map(|v| v.clamp(0.0, 255.0) as u8).collect();
    RgbImage::from_raw(img.width(), img.height(), data).expect("same size")
}

type Sub = [(OpName, f64, Option<u8>); 2];

/// AutoAugment's sub-policies: (op, probability, magnitude bin), as torchvision's lists.
fn sub_policies(t: AutoAugmentTable) -> &'static [Sub] {
    match t {
        AutoAugmentTable::Imagenet => &IMAGENET,
        AutoAugmentTable::Cifar10 => &CIFAR10,
        AutoAugmentTable::Svhn => &SVHN,
    }
}

const IMAGENET: [Sub; 25] = [
    [(Posterize, 0.4, Some(8)), (Rotate, 0.6, Some(9))],
    [(Solarize, 0.6, Some(5)), (AutoContrast, 0.6, None)],
    [(Equalize, 0.8, None), (Equalize, 0.6, None)],
    [(Posterize, 0.6, Some(7)), (Posterize, 0.6, Some(6))],
    [(Equalize, 0.4, None), (Solarize, 0.2, Some(4))],
    [(Equalize, 0.4, None), (Rotate, 0.8, Some(8))],
    [(Solarize, 0.6, Some(3)), (Equalize, 0.6, None)],
    [(Posterize, 0.8, Some(5)), (Equalize, 1.0, None)],
    [(Rotate, 0.2, Some(3)), (Solarize, 0.6, Some(8))],
    [(Equalize, 0.6, None), (Posterize, 0.4, Some(6))],
    [(Rotate, 0.8, Some(8)), (Color, 0.4, Some(0))],
    [(Rotate, 0.4, Some(9)), (Equalize, 0.6, None)],
    [(Equalize, 0.0, None), (Equalize, 0.8, None)],
    [(Invert, 0.6, None), (Equalize, 1.0, None)],
    [(Color, 0.6, Some(4)), (Contrast, 1.0, Some(8))],
    [(Rotate, 0.8, Some(8)), (Color, 1.0, Some(2))],
    [(Color, 0.8, Some(8)), (Solarize, 0.8, Some(7))],
    [(Sharpness, 0.4, Some(7)), (Invert, 0.6, None)],
    [(ShearX, 0.6, Some(5)), (Equalize, 1.0, None)],
    [(Color, 0.4, Some(0)), (Equalize, 0.6, None)],
    [(Equalize, 0.4, None), (Solarize, 0.2, Some(4))],
    [(Solarize, 0.6, Some(5)), (AutoContrast, 0.6, None)],
    [(Invert, 0.6, None), (Equalize, 1.0, None)],
    [(Color, 0.6, Some(4)), (Contrast, 1.0, Some(8))],
    [(Equalize, 0.8, None), (Equalize, 0.6, None)],
];

const CIFAR10: [Sub; 25] = [
    [(Invert, 0.1, None), (Contrast, 0.2, Some(6))],
    [(Rotate, 0.7, Some(2)), (TranslateX, 0.3, Some(9))],
    [(Sharpness, 0.8, Some(1)), (Sharpness, 0.9, Some(3))],
    [(ShearY, 0.5, Some(8)), (TranslateY, 0.7, Some(9))],
    [(AutoContrast, 0.5, None), (Equalize, 0.9, None)],
    [(ShearY, 0.2, Some(7)), (Posterize, 0.3, Some(7))],
    [(Color, 0.4, Some(3)), (Brightness, 0.6, Some(7))],
    [(Sharpness, 0.3, Some(9)), (Brightness, 0.7, Some(9))],
    [(Equalize, 0.6, None), (Equalize, 0.5, None)],
    [(Contrast, 0.6, Some(7)), (Sharpness, 0.6, Some(5))],
    [(Color, 0.7, Some(7)), (TranslateX, 0.5, Some(8))],
    [(Equalize, 0.3, None), (AutoContrast, 0.4, None)],
    [(TranslateY, 0.4, Some(3)), (Sharpness, 0.2, Some(6))],
    [(Brightness, 0.9, Some(6)), (Color, 0.2, Some(8))],
    [(Solarize, 0.5, Some(2)), (Invert, 0.0, None)],
    [(Equalize, 0.2, None), (AutoContrast, 0.6, None)],
    [(Equalize, 0.2, None), (Equalize, 0.6, None)],
    [(Color, 0.9, Some(9)), (Equalize, 0.6, None)],
    [(AutoContrast, 0.8, None), (Solarize, 0.2, Some(8))],
    [(Brightness, 0.1, Some(3)), (Color, 0.7, Some(0))],
    [(Solarize, 0.4, Some(5)), (AutoContrast, 0.9, None)],
    [(TranslateY, 0.9, Some(9)), (TranslateY, 0.7, Some(9))],
    [(AutoContrast, 0.9, None), (Solarize, 0.8, Some(3))],
    [(Equalize, 0.8, None), (Invert, 0.1, None)],
    [(TranslateY, 0.7, Some(9)), (AutoContrast, 0.9, None)],
];

const SVHN: [Sub; 25] = [
    [(ShearX, 0.9, Some(4)), (Invert, 0.2, None)],
    [(ShearY, 0.9, Some(8)), (Invert, 0.7, None)],
    [(Equalize, 0.6, None), (Solarize, 0.6, Some(6))],
    [(Invert, 0.9, None), (Equalize, 0.6, None)],
    [(Equalize, 0.6, None), (Rotate, 0.9, Some(3))],
    [(ShearX, 0.9, Some(4)), (AutoContrast, 0.8, None)],
    [(ShearY, 0.9, Some(8)), (Invert, 0.4, None)],
    [(ShearY, 0.9, Some(5)), (Solarize, 0.2, Some(6))],
    [(Invert, 0.9, None), (AutoContrast, 0.8, None)],
    [(Equalize, 0.6, None), (Rotate, 0.9, Some(3))],
    [(ShearX, 0.9, Some(4)), (Solarize, 0.3, Some(3))],
    [(ShearY, 0.8, Some(8)), (Invert, 0.7, None)],
    [(Equalize, 0.9, None), (TranslateY, 0.6, Some(6))],
    [(Invert, 0.9, None), (Equalize, 0.6, None)],
    [(Contrast, 0.3, Some(3)), (Rotate, 0.8, Some(4))],
    [(Invert, 0.8, None), (TranslateY, 0.0, Some(2))],
    [(ShearY, 0.7, Some(6)), (Solarize, 0.4, Some(8))],
    [(Invert, 0.6, None), (Rotate, 0.8, Some(4))],
    [(ShearY, 0.3, Some(7)), (TranslateX, 0.9, Some(3))],
    [(ShearX, 0.1, Some(6)), (Invert, 0.6, None)],
    [(Solarize, 0.7, Some(2)), (TranslateY, 0.6, Some(7))],
    [(ShearY, 0.8, Some(4)), (Invert, 0.8, None)],
    [(ShearX, 0.7, Some(9)), (TranslateY, 0.8, Some(3))],
    [(ShearY, 0.8, Some(5)), (AutoContrast, 0.7, None)],
    [(ShearX, 0.7, Some(2)), (Invert, 0.1, None)],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_tables_match_torch() {
        // torch.linspace(0, 0.3, 31)[9], posterize bins of RandAugment and TrivialAugmentWide.
        assert!((Range::Lin(0.0, 0.3).at(31, 9) - 0.09).abs() < 1e-6);
        assert_eq!(Range::Lin(1.0, 0.0).at(10, 9), 0.0);
        let ra: Vec<f32> = (0..31).map(|i| Range::Bits(8.0, 4.0).at(31, i)).collect();
        assert_eq!((ra[0], ra[4], ra[30]), (8.0, 7.0, 4.0));
        let ta: Vec<f32> = (0..31).map(|i| Range::Bits(8.0, 6.0).at(31, i)).collect();
        assert_eq!((ta[0], ta[30]), (8.0, 2.0));
    }

    #[test]
    fn every_name_parses_validates_and_names_itself() {
        for (name, _) in POLICY_NAMES {
            let p = Policy::parse(name).unwrap();
            p.validate().unwrap();
            assert_eq!(p.name(), name);
        }
        assert!(Policy::parse("autoaugment-mnist").is_none());
    }
}
