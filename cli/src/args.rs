//! Flags shared by several commands (pipeline changes, loader settings, the dataset) and their
//! resolution into library settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, ValueEnum};

use augloader::decode::DecodeOptions;
use augloader::source::TargetKind;
use augloader::source::{open_dataset, ListFile, Source, Split};
use augloader::transform::{Mix, Pipeline, PipelineError, PipelineOverrides};
use augloader::ErrorPolicy;

use super::{ranges, synth};

/// Changes to a named pipeline's settings.
#[derive(Args, Clone)]
pub struct PipelineArgs {
    /// Pipeline preset (default: resnet-train; for train and tune, chosen from the images' size).
    #[arg(long, value_parser = ranges::presets())]
    pub pipeline: Option<String>,
    /// Output crop side (rescales the preset's resize range to match).
    #[arg(long, value_parser = ranges::side)]
    pub size: Option<u32>,
    /// Scale augmentation: smallest shorter side before the random crop (resnet-train).
    #[arg(long, value_parser = ranges::side)]
    pub scale_min: Option<u32>,
    /// Scale augmentation: largest shorter side before the random crop (resnet-train).
    #[arg(long, value_parser = ranges::side)]
    pub scale_max: Option<u32>,
    /// Colour jitter strength for brightness, contrast and saturation (0 disables).
    #[arg(long, value_parser = ranges::nonneg32, allow_hyphen_values = true)]
    pub jitter: Option<f32>,
    /// Hue jitter strength (0..=0.5).
    #[arg(long, value_parser = ranges::hue, allow_hyphen_values = true)]
    pub hue: Option<f32>,
    /// PCA lighting alpha std (0 disables).
    #[arg(long, value_parser = ranges::nonneg32, allow_hyphen_values = true)]
    pub lighting: Option<f32>,
    /// Cutout hole side in pixels (0 disables).
    #[arg(long, value_parser = ranges::side_or_zero)]
    pub cutout: Option<u32>,
    /// Number of Cutout holes.
    #[arg(long, value_parser = ranges::holes)]
    pub cutout_holes: Option<u32>,
    /// Horizontal flip probability.
    #[arg(long, value_parser = ranges::probability, allow_hyphen_values = true)]
    pub flip: Option<f64>,
    /// Automatic augmentation policy after the crop and flip, as torchvision v2's (`none`
    /// turns a preset's off).
    #[arg(long, value_parser = ranges::policies())]
    pub auto_augment: Option<String>,
    /// RandAugment: ops per image (default 2).
    #[arg(long, value_parser = ranges::policy_ops)]
    pub ra_ops: Option<u32>,
    /// RandAugment: magnitude bin, 0..=30 (default 9).
    #[arg(long, value_parser = ranges::ra_magnitude)]
    pub ra_magnitude: Option<u32>,
    /// Random erasing probability, as torchvision's RandomErasing after Normalize (0 disables).
    #[arg(long, value_parser = ranges::probability, allow_hyphen_values = true)]
    pub random_erase: Option<f64>,
    /// Random erasing value in normalised units: 0 (the mean colour; default), `random`
    /// (per-pixel N(0, 1)), a number, or `r,g,b`.
    #[arg(long, value_parser = ranges::erase_value, allow_hyphen_values = true)]
    pub random_erase_value: Option<String>,
}

impl PipelineArgs {
    /// The named preset (default resnet-train) with the changes.
    pub fn build(&self) -> Result<Pipeline> {
        let p = Pipeline::preset(self.pipeline.as_deref().unwrap_or("resnet-train"))?;
        self.apply(p)
    }

    /// `p` with the changes given on the command line.
    pub fn apply(&self, p: Pipeline) -> Result<Pipeline> {
        let o = PipelineOverrides {
            size: self.size,
            scale_min: self.scale_min,
            scale_max: self.scale_max,
            jitter: self.jitter,
            hue: self.hue,
            lighting: self.lighting,
            cutout: self.cutout,
            cutout_holes: self.cutout_holes,
            flip: self.flip,
            // Decoding options are the loader's (`LoaderArgs`).
            exact_decode: None,
            auto_augment: self.auto_augment.clone(),
            ra_ops: self.ra_ops,
            ra_magnitude: self.ra_magnitude,
            random_erase: self.random_erase,
            random_erase_value: self.random_erase_value.clone(),
        };
        // The library names overrides by field; the command line says them as its flags.
        o.apply(p).map_err(|e| match e {
            PipelineError::Override { names, reason } => {
                let flags: Vec<String> = names
                    .iter()
                    .map(|n| format!("--{}", n.replace('_', "-")))
                    .collect();
                anyhow::anyhow!("{}: {reason}", flags.join("/"))
            }
            e => e.into(),
        })
    }
}

/// Batch-level mixing (MixUp / CutMix), as torchvision v2's, with soft targets.
#[derive(Args, Clone)]
pub struct MixArgs {
    /// MixUp's Beta alpha (0 disables; tv2-train's recipe: 0.2, deit-train's: 0.8).
    #[arg(long, value_parser = ranges::mix_alpha, allow_hyphen_values = true)]
    pub mixup: Option<f64>,
    /// CutMix's Beta alpha (0 disables; the recipes': 1.0).
    #[arg(long, value_parser = ranges::mix_alpha, allow_hyphen_values = true)]
    pub cutmix: Option<f64>,
    /// With both: the probability that a batch uses CutMix rather than MixUp.
    #[arg(long, default_value_t = 0.5, value_parser = ranges::probability, allow_hyphen_values = true)]
    pub mix_switch_prob: f64,
}

impl MixArgs {
    /// The mixing asked for, over `recipe`'s (the named preset's, for training), with
    /// `smoothing` folded into the targets.
    pub fn resolve(&self, recipe: Option<Mix>, smoothing: f64) -> Option<Mix> {
        let base = recipe.unwrap_or(Mix {
            mixup: None,
            cutmix: None,
            switch_prob: self.mix_switch_prob,
            label_smoothing: 0.0,
        });
        let pick = |flag: Option<f64>, r: Option<f64>| match flag {
            Some(a) if a > 0.0 => Some(a),
            Some(_) => None,
            None => r,
        };
        let m = Mix {
            mixup: pick(self.mixup, base.mixup),
            cutmix: pick(self.cutmix, base.cutmix),
            switch_prob: self.mix_switch_prob,
            label_smoothing: smoothing,
        };
        m.active().then_some(m)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OnError {
    Fail,
    Skip,
}

/// `--targets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TargetsArg {
    /// One class index per image.
    Class,
    /// Several class indices per image (multi-hot rows).
    Multilabel,
    /// Numbers per image.
    Regression,
}

#[derive(Args)]
pub struct LoaderArgs {
    /// Dataset: a folder (DIR/train + DIR/val ImageFolders, DIR/train.csv, CIFAR binaries,
    /// DIR/train-*.tar + DIR/val-*.tar shards, or one ImageFolder), a CSV list (LIST.csv), or
    /// shards named by a quoted brace pattern ('DIR/train-{000000..000099}.tar'). Default: the
    /// embedded synthetic dataset, generated on first use.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// How a CSV list given as --data holds its targets: `class` (path,label), `multilabel`
    /// (path,"0 3 7": class indices separated by spaces or ';') or `regression`
    /// (path,v1,...,vK: K numbers on every line).
    #[arg(long, value_enum, default_value = "class")]
    pub targets: TargetsArg,
    /// Leave out the samples named in FILE (one per line, as `augloader check --write-exclude`
    /// writes them: paths relative to --data).
    #[arg(long)]
    pub exclude: Option<PathBuf>,
    /// Worker threads (default: the machine's cores, shared by LOCAL_WORLD_SIZE).
    #[arg(long, value_parser = ranges::workers)]
    pub workers: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = augloader::defaults::BATCH_SIZE, value_parser = ranges::count)]
    pub batch: usize,
    /// Batches in flight at most (default: 2 x workers).
    #[arg(long, value_parser = ranges::count)]
    pub prefetch: Option<usize>,
    /// Seed for shuffling and augmentation.
    #[arg(long, default_value_t = augloader::defaults::SEED)]
    pub seed: u64,
    /// What to do with unreadable or corrupt images.
    #[arg(long, value_enum, default_value = "fail")]
    pub on_error: OnError,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = augloader::decode::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Never decode JPEGs at reduced size in the DCT (by default allowed where the window is at
    /// least four times the output's size, and never below twice the output's size).
    #[arg(long)]
    pub exact_decode: bool,
    /// Decode JPEGs with restart markers whole instead of only the intervals around the crop
    /// (the pixels are the same; to measure what the cut saves).
    #[arg(long)]
    pub no_restart_cuts: bool,
    /// Shuffle in blocks of N shards (sharded data): each epoch the shards are permuted, taken
    /// N at a time, and the samples of each window permuted; a function of (seed, epoch) as
    /// the full shuffle (the default) is. What a bounded cache of remote shards needs.
    #[arg(long, value_parser = ranges::count)]
    pub shuffle_window: Option<usize>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Shards at URLs: `--data 'https://host/train-{000000..000099}.tar'`, `s3://`, `gs://`,
/// `az://` (credentials from the usual environment variables), or `pipe:CMD`.
#[derive(Args)]
pub struct RemoteArgs {
    /// Folder of the local cache of remote shards, shared by the processes of a node (default:
    /// ~/.cache/augloader/shards).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the cache holds (for example 20GB, 512MiB); least recently used shards are
    /// evicted.
    #[arg(long, default_value = "20GB", value_parser = augloader::remote::parse_size)]
    pub cache_size: u64,
    /// Shards fetched ahead of the one being read.
    #[arg(long, default_value_t = 4, value_parser = ranges::count)]
    pub fetch_ahead: usize,
    /// A shard that cannot be reached: fail (naming its URL), or skip it and list it.
    #[arg(long, value_enum, default_value = "fail")]
    pub on_missing_shard: OnError,
}

impl RemoteArgs {
    /// The cache and fetch settings.
    pub fn options(&self) -> augloader::remote::RemoteOptions {
        let mut o = augloader::remote::RemoteOptions::default();
        if let Some(d) = &self.cache_dir {
            o.cache_dir = d.clone();
        }
        o.cache_size = self.cache_size;
        o.ahead = self.fetch_ahead;
        o.skip_missing = matches!(self.on_missing_shard, OnError::Skip);
        o
    }

    /// The shards at the URL pattern `url`, with the skipped ones listed.
    pub fn open(&self, url: &str) -> Result<Arc<dyn Source>> {
        let s = augloader::source::TarShards::open_url_pattern(url, self.options())?;
        for (u, why) in s.missing() {
            crate::out::note!("skipped shard {u}: {why}");
        }
        Ok(Arc::new(s))
    }
}

impl LoaderArgs {
    /// The training split of `dir`, a CSV list read with `--targets`, less `--exclude`.
    pub fn open_train(&self, dir: &Path) -> Result<Arc<dyn Source>> {
        let source = self.open_targets(dir)?;
        excluding(source, dir, self.exclude.as_deref())
    }

    fn open_targets(&self, dir: &Path) -> Result<Arc<dyn Source>> {
        if let Some(url) = dir.to_str().filter(|d| augloader::remote::is_url(d)) {
            return self.remote.open(url);
        }
        let kind = match self.targets {
            TargetsArg::Class => return open_split(dir, Split::Train),
            TargetsArg::Multilabel => TargetKind::MultiLabel(0),
            TargetsArg::Regression => TargetKind::Regression(0),
        };
        if !augloader::source::is_list(dir) {
            anyhow::bail!(
                "--targets {:?} reads a CSV list, but --data {} is not a .csv file",
                self.targets,
                dir.display()
            );
        }
        Ok(Arc::new(ListFile::open_as(dir, false, kind)?))
    }

    /// The worker count (default: [`augloader::defaults::workers`]).
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(augloader::defaults::workers)
    }

    /// The error policy.
    pub fn policy(&self) -> ErrorPolicy {
        match self.on_error {
            OnError::Fail => ErrorPolicy::Fail,
            OnError::Skip => ErrorPolicy::Skip,
        }
    }

    /// The decoding options.
    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            max_pixels: self.max_pixels,
            dct_scaling: !self.exact_decode,
            restart_cuts: !self.no_restart_cuts,
        }
    }
}

/// `--data`, or the synthetic dataset (generated on first use).
pub fn data_dir(data: &Option<PathBuf>) -> Result<PathBuf> {
    match data {
        Some(d) => Ok(d.clone()),
        None => Ok(synth::default_dataset()?),
    }
}

/// `source` less the samples that the exclude list `list` names (see `augloader check`).
pub fn excluding(
    source: Arc<dyn Source>,
    dir: &Path,
    list: Option<&Path>,
) -> Result<Arc<dyn Source>> {
    let Some(list) = list else {
        return Ok(source);
    };
    let (source, gone) = augloader::source::exclude(source, dir, list)?;
    crate::out::note!("excluded {gone} samples named in {}", list.display());
    anyhow::ensure!(
        !source.is_empty(),
        "{} excludes every sample of {}",
        list.display(),
        dir.display()
    );
    Ok(source)
}

/// Opens `split` of `dir`, or the folder itself when it is one ImageFolder.
pub fn open_split(dir: &Path, split: Split) -> Result<Arc<dyn Source>> {
    Ok(open_dataset(dir, split)?)
}
