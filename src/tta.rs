//! Test-time augmentation views: centre crop, flip, five/ten crop, and multi-scale views
//! (the whole image at each scale, or ten crops at each scale), built inside the geometry a
//! model was trained with. The loader delivers them as batches of views
//! ([`crate::LoaderBuilder::per_sample`] with a [`TtaConfig`]); `augloader_train::tta` scores
//! those batches with libtorch (`augloader eval`).

use image::RgbImage;
use serde::Serialize;

use crate::decode::DecodeOptions;
use crate::rng::sample_rng;
use crate::sample::{augment_sample, load_image, LoadError, PerSample, SampleAt};
use crate::source::Source;
use crate::transform::crop::{five_crop_boxes, pad_image};
use crate::transform::flip::hflip;
use crate::transform::resize::{crop_image, shorter_side_size};
use crate::transform::{Geometry, Pipeline, Resize};

/// Which views of each image are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TtaMode {
    /// Resize + centre crop.
    None,
    /// Centre crop and its mirror.
    Flip,
    /// Four corners and centre.
    FiveCrop,
    /// Five crops and their mirrors.
    TenCrop,
    /// The whole image, shorter side at each scale (fully convolutional), and its mirror.
    Multiscale,
    /// Ten crops at each scale.
    MultiscaleTenCrop,
}

/// Every mode: name (as the command line takes it) and what it evaluates. Parsing, names and
/// `--help` read this table.
pub const TTA_MODES: [(TtaMode, &str, &str); 6] = [
    (TtaMode::None, "none", "the validation view of training"),
    (TtaMode::Flip, "flip", "that view and its mirror"),
    (TtaMode::FiveCrop, "5crop", "four corners and the centre"),
    (TtaMode::TenCrop, "10crop", "five crops and their mirrors"),
    (
        TtaMode::Multiscale,
        "multiscale",
        "the whole image at each scale, and mirrors",
    ),
    (
        TtaMode::MultiscaleTenCrop,
        "multiscale-10crop",
        "ten crops at each scale",
    ),
];

impl TtaMode {
    /// Parses a name of [`TTA_MODES`].
    pub fn parse(s: &str) -> Option<Self> {
        TTA_MODES.iter().find(|m| m.1 == s).map(|m| m.0)
    }

    /// The name in [`TTA_MODES`].
    pub fn name(self) -> &'static str {
        TTA_MODES
            .iter()
            .find(|m| m.0 == self)
            .map_or("none", |m| m.1)
    }
}

/// View settings.
#[derive(Clone, Debug)]
pub struct TtaConfig {
    /// Views.
    pub mode: TtaMode,
    /// The single view of `none` (and the unflipped one of `flip`): the validation pipeline,
    /// applied exactly as during training's validation. Its normalisation is the network's.
    pub base: Pipeline,
    /// Shorter side before cropping (the crop modes); `None`: the image as it is (models trained
    /// and validated on images at their own size).
    pub resize: Option<u32>,
    /// Crop side; `None`: the image's own (with `shift`).
    pub crop: Option<u32>,
    /// For models trained with pad-and-crop: the crop modes translate the image at its own size
    /// by this many pixels (zero fill) instead of cropping a resized image.
    pub shift: Option<u32>,
    /// Shorter sides for the multi-scale modes; none: the image at its own size only.
    pub scales: Vec<u32>,
    /// Average logits instead of softmax probabilities.
    pub mean_logits: bool,
}

impl TtaConfig {
    /// Views of `mode` drawn from what a model trained with `train` and validated with `val` has
    /// seen: the validation view; crops at a scale inside the trained range (scale
    /// augmentation), or translations within the trained padding (pad-and-crop); multi-scale
    /// views at scales inside the trained range.
    pub fn from_training(mode: TtaMode, train: &Pipeline, val: &Pipeline) -> TtaConfig {
        let Some((crop, _)) = val.output_size().or(train.output_size()) else {
            // Both keep images at their own size: so do the views. The crop modes translate
            // the image by 2 px (as after CIFAR's pad-and-crop), the scale is its own size.
            return TtaConfig {
                mode,
                base: val.clone(),
                resize: None,
                crop: None,
                shift: Some(2),
                scales: Vec::new(),
                mean_logits: false,
            };
        };
        let val_resize = match val.geometry {
            Geometry::ResizeCenterCrop { resize, .. } => resize,
            _ => crop,
        };
        let scaled = |f: f64| (val_resize as f64 * f).round() as u32;
        let (resize, shift, mut scales) = match train.geometry {
            Geometry::ScaleAug { min, max, .. } => (
                val_resize.clamp(min, max),
                None,
                vec![min, (min + max) / 2, max],
            ),
            Geometry::RandomResizedCrop { size, scale, .. } => {
                // The smallest crops (scale.0 of the area) were enlarged 1/sqrt(scale.0) times.
                let top = (size as f64 / scale.0.max(1e-3).sqrt()).floor() as u32;
                let s = [1.0, 1.25, 1.5].map(|f| scaled(f).clamp(size, top.max(size)));
                (val_resize, None, s.to_vec())
            }
            Geometry::PadCrop { pad, .. } => (crop, Some(pad.div_ceil(2).max(1)), vec![crop]),
            _ => (val_resize, None, vec![val_resize]),
        };
        scales.dedup();
        TtaConfig {
            mode,
            base: val.clone(),
            resize: Some(resize),
            crop: Some(crop),
            shift,
            scales,
            mean_logits: false,
        }
    }
}

/// The five crops (corners and centre) of `r`: `c` x `c` boxes, or with `shift`, translations
/// of the whole image by that many pixels.
fn five(r: &RgbImage, c: u32, shift: Option<u32>) -> Vec<RgbImage> {
    match shift {
        Some(t) => {
            let p = pad_image(r, t);
            five_crop_boxes(p.height(), p.width(), r.height(), r.width())
                .iter()
                .map(|b| crop_image(&p, *b))
                .collect()
        }
        None => five_crop_boxes(r.height(), r.width(), c, c)
            .iter()
            .map(|b| crop_image(r, *b))
            .collect(),
    }
}

/// The views of one image for `cfg`, grouped by size: every group's images share one size, so
/// each group is one batch through the network.
pub fn views(img: &RgbImage, cfg: &TtaConfig, resize: &mut Resize) -> Vec<Vec<RgbImage>> {
    let at = |s: Option<u32>, resize: &mut Resize| {
        let Some(s) = s else {
            return img.clone();
        };
        let (w, h) = shorter_side_size(img.width(), img.height(), s);
        if (w, h) == img.dimensions() {
            img.clone()
        } else {
            resize.resize(img, w, h)
        }
    };
    // Without a crop side, crops are the scaled image's shorter side.
    let side = |r: &RgbImage| cfg.crop.unwrap_or(r.width().min(r.height()));
    let ten = |r: &RgbImage| -> Vec<RgbImage> {
        let mut m = r.clone();
        hflip(&mut m);
        let mut out = five(r, side(r), cfg.shift);
        out.extend(five(&m, side(r), cfg.shift));
        out
    };
    let crop_scale = |resize: &mut Resize| match cfg.shift {
        Some(_) => img.clone(),
        None => at(cfg.resize, resize),
    };
    let scales: Vec<Option<u32>> = if cfg.scales.is_empty() {
        vec![None]
    } else {
        cfg.scales.iter().map(|&s| Some(s)).collect()
    };
    match cfg.mode {
        TtaMode::None | TtaMode::Flip => {
            let p = cfg
                .base
                .sample(&mut sample_rng(0, 0, 0), img.width(), img.height());
            let centre = cfg.base.apply(img, &p, resize);
            vec![with_mirror(centre, cfg.mode == TtaMode::Flip)]
        }
        TtaMode::FiveCrop => {
            let r = crop_scale(resize);
            vec![five(&r, side(&r), cfg.shift)]
        }
        TtaMode::TenCrop => vec![ten(&crop_scale(resize))],
        TtaMode::Multiscale => scales
            .iter()
            .map(|&s| with_mirror(at(s, resize), true))
            .collect(),
        TtaMode::MultiscaleTenCrop => scales
            .iter()
            .map(|&s| {
                // Never below the crop (unless the model crops by translation).
                let s = match (cfg.shift, s, cfg.crop) {
                    (None, Some(s), Some(c)) => Some(s.max(c)),
                    _ => s,
                };
                ten(&at(s, resize))
            })
            .collect(),
    }
}

/// `[v]`, or `[v, mirror of v]`.
fn with_mirror(v: RgbImage, mirror: bool) -> Vec<RgbImage> {
    let mut out = vec![v];
    if mirror {
        let mut f = out[0].clone();
        hflip(&mut f);
        out.push(f);
    }
    out
}

/// The views of sample `i`: the single-view modes go through the loader's own path (window
/// decoding included), so `none` sees exactly what training's validation saw.
pub(crate) fn sample_views(
    source: &dyn Source,
    i: usize,
    cfg: &TtaConfig,
    opts: &DecodeOptions,
    resize: &mut Resize,
) -> Result<Vec<Vec<RgbImage>>, LoadError> {
    match cfg.mode {
        TtaMode::None | TtaMode::Flip => {
            let (v, _) = augment_sample(source, &cfg.base, 0, 0, i, opts, resize)?;
            Ok(vec![with_mirror(v, cfg.mode == TtaMode::Flip)])
        }
        _ => Ok(views(&load_image(source, i, opts)?, cfg, resize)),
    }
}

/// A loader built with `.per_sample(cfg)` delivers each sample's views, `V` images per sample
/// (views of several sizes in the multi-scale modes: see [`Batch::sizes`](crate::Batch)); a
/// failed sample cannot be replaced (its views would be another image's), so the skip policy
/// is refused (omit leaves it out).
impl PerSample for TtaConfig {
    fn images(
        &self,
        source: &dyn Source,
        at: SampleAt,
        opts: &DecodeOptions,
        resize: &mut Resize,
    ) -> Result<Vec<RgbImage>, LoadError> {
        let views = sample_views(source, at.index, self, opts, resize)?;
        Ok(views.into_iter().flatten().collect())
    }

    fn check(&self, skip: bool) -> Result<(), String> {
        if skip {
            return Err("TTA views and the skip policy do not go together: use fail".into());
        }
        Ok(())
    }
}

/// Number of views per image.
pub fn views_per_image(cfg: &TtaConfig) -> usize {
    match cfg.mode {
        TtaMode::None => 1,
        TtaMode::Flip => 2,
        TtaMode::FiveCrop => 5,
        TtaMode::TenCrop => 10,
        TtaMode::Multiscale => 2 * cfg.scales.len().max(1),
        TtaMode::MultiscaleTenCrop => 10 * cfg.scales.len().max(1),
    }
}

/// Whether every view of `cfg` has one size for every image (crop modes), so that a batch of
/// images stacks into `[B, V, 3, H, W]`.
pub fn fixed_size(cfg: &TtaConfig) -> bool {
    match cfg.mode {
        TtaMode::None | TtaMode::Flip => cfg.base.output_size().is_some(),
        TtaMode::FiveCrop | TtaMode::TenCrop => true,
        TtaMode::Multiscale | TtaMode::MultiscaleTenCrop => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_used_at_their_own_size_give_views_at_their_own_size() {
        // A model trained and validated on images as they are (no geometry): no view may be
        // resized to a default side (the 32 px digits once became 224 px 5crop views).
        let own = Pipeline::cifar_eval();
        let img = RgbImage::from_fn(20, 20, |x, y| image::Rgb([x as u8 + 1, y as u8 + 1, 7]));
        for (mode, n) in [
            (TtaMode::None, 1),
            (TtaMode::Flip, 2),
            (TtaMode::FiveCrop, 5),
            (TtaMode::TenCrop, 10),
            (TtaMode::Multiscale, 2),
            (TtaMode::MultiscaleTenCrop, 10),
        ] {
            let cfg = TtaConfig::from_training(mode, &own, &own);
            let v: Vec<RgbImage> = views(&img, &cfg, &mut Resize::new()).concat();
            assert_eq!(v.len(), n, "{mode:?}");
            assert_eq!(views_per_image(&cfg), n, "{mode:?}");
            assert!(v.iter().all(|x| x.dimensions() == (20, 20)), "{mode:?}");
        }
        let cfg = TtaConfig::from_training(TtaMode::FiveCrop, &own, &own);
        let v = views(&img, &cfg, &mut Resize::new());
        assert_eq!(v[0][4], img, "the centre view is the image itself");
        assert_eq!(
            v[0][0].get_pixel(2, 2),
            img.get_pixel(0, 0),
            "a 2 px translation"
        );
    }

    #[test]
    fn views_stay_inside_the_trained_geometry() {
        // Pad-and-crop training: crops are translations by half the padding at the image's size.
        let cfg = TtaConfig::from_training(
            TtaMode::TenCrop,
            &Pipeline::cifar_train(),
            &Pipeline::cifar_eval(),
        );
        assert_eq!(
            (cfg.shift, cfg.crop, cfg.scales.clone()),
            (Some(2), Some(32), vec![32])
        );
        let img = RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 + 1, y as u8 + 1, 7]));
        let v = views(&img, &cfg, &mut Resize::new());
        assert_eq!(v[0].len(), 10);
        assert_eq!(v[0][4], img, "the centre view is the image itself");
        // Top-left: the image moved right and down by 2, zero fill on the left and top.
        assert_eq!(v[0][0].get_pixel(2, 2), img.get_pixel(0, 0));
        assert_eq!(v[0][0].get_pixel(1, 5).0, [0, 0, 0]);
        assert_eq!(v[0][3].get_pixel(0, 0), img.get_pixel(2, 2));
        // Scale augmentation 32..40 with a 37 px validation resize: crops at 37, multi-scale
        // views at 32, 36 and 40 (inside the trained range).
        let mut train = Pipeline::resnet_train().with_size(32);
        train.geometry = Geometry::ScaleAug {
            min: 32,
            max: 40,
            size: 32,
        };
        let cfg =
            TtaConfig::from_training(TtaMode::Multiscale, &train, &Pipeline::eval().with_size(32));
        assert_eq!(
            (cfg.resize, cfg.shift, cfg.scales.clone()),
            (Some(37), None, vec![32, 36, 40])
        );
        // ImageNet presets: 256 px crops and the scales 256..480.
        let cfg = TtaConfig::from_training(
            TtaMode::FiveCrop,
            &Pipeline::resnet_train(),
            &Pipeline::eval(),
        );
        assert_eq!(
            (cfg.resize, cfg.crop, cfg.scales),
            (Some(256), Some(224), vec![256, 368, 480])
        );
        let cfg = TtaConfig::from_training(
            TtaMode::FiveCrop,
            &Pipeline::inception_train(),
            &Pipeline::eval(),
        );
        assert_eq!((cfg.resize, cfg.scales), (Some(256), vec![256, 320, 384]));
    }
}
