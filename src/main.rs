//! The `augloader` command line: parses arguments, calls the library, maps errors to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use augloader::synth::{self, SynthConfig};
use augloader::transform::{ColorJitter, Cutout, Lighting, Pipeline, Resize};
use augloader::{open_dataset, DecodeOptions, Dtype, ErrorPolicy, Loader, Source, Split};

#[derive(Parser)]
#[command(name = "augloader", version, about = "Deterministic image loading and augmentation for CNN training", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a deterministic synthetic ImageFolder dataset (DIR/train, DIR/val) of JPEGs.
    Synth(SynthArgs),
    /// Augment one image with a pipeline; write it as PNG and print the sampled parameters as JSON.
    Augment(AugmentArgs),
    /// Run the loader alone and report throughput and peak memory.
    Bench(BenchArgs),
    /// Write a contact sheet: source images beside augmented views of them.
    Preview(PreviewArgs),
    /// Compute a dataset's RGB mean, std and principal components (for PCA lighting).
    Pca(PcaArgs),
    /// Train a VGG/ResNet with libtorch (default: ResNet-20 on the synthetic dataset).
    #[cfg(feature = "torch")]
    Train(Box<cli_torch::TrainArgs>),
    /// Evaluate a trained model on the validation split, with test-time augmentation.
    #[cfg(feature = "torch")]
    Eval(Box<cli_torch::EvalArgs>),
    /// Run the hyperparameter recipe and write a report (initial loss, overfit, LR finder, grids).
    #[cfg(feature = "torch")]
    Tune(Box<cli_torch::TuneArgs>),
}

#[derive(Args)]
struct PreviewArgs {
    /// Dataset folder (default: the synthetic dataset); its training split is shown.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// Number of source images (rows).
    #[arg(long, default_value_t = 16, value_parser = cli_ranges::count)]
    n: usize,
    /// Augmented views per image.
    #[arg(long, default_value_t = 6, value_parser = cli_ranges::count)]
    views: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct PcaArgs {
    /// Dataset folder (default: the synthetic dataset); its training split is used.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Images to use, spread evenly over the dataset.
    #[arg(long, default_value_t = 500, value_parser = cli_ranges::count)]
    images: usize,
}

#[derive(Args)]
struct SynthArgs {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Number of classes (at most 12).
    #[arg(long, default_value_t = 10, value_parser = cli_ranges::count)]
    classes: usize,
    /// Training images per class.
    #[arg(long, default_value_t = 300, value_parser = cli_ranges::count)]
    train_per_class: usize,
    /// Validation images per class.
    #[arg(long, default_value_t = 60, value_parser = cli_ranges::count)]
    val_per_class: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64, value_parser = cli_ranges::side)]
    size: u32,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Changes to a named pipeline's settings.
#[cfg(feature = "torch")]
mod cli_torch;

mod cli_ranges;

#[derive(Args, Clone)]
struct PipelineArgs {
    /// Pipeline preset: resnet-train, inception-train, cifar-train, eval, cifar-eval, decode
    /// (default: resnet-train; for train and tune, chosen from the images' size).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Output crop side (rescales the preset's resize range to match).
    #[arg(long, value_parser = cli_ranges::side)]
    size: Option<u32>,
    /// Scale augmentation: smallest shorter side before the random crop (resnet-train).
    #[arg(long, value_parser = cli_ranges::side)]
    scale_min: Option<u32>,
    /// Scale augmentation: largest shorter side before the random crop (resnet-train).
    #[arg(long, value_parser = cli_ranges::side)]
    scale_max: Option<u32>,
    /// Colour jitter strength for brightness, contrast and saturation (0 disables).
    #[arg(long, value_parser = cli_ranges::nonneg32, allow_hyphen_values = true)]
    jitter: Option<f32>,
    /// Hue jitter strength (0..=0.5).
    #[arg(long, value_parser = cli_ranges::hue, allow_hyphen_values = true)]
    hue: Option<f32>,
    /// PCA lighting alpha std (0 disables).
    #[arg(long, value_parser = cli_ranges::nonneg32, allow_hyphen_values = true)]
    lighting: Option<f32>,
    /// Cutout hole side in pixels (0 disables).
    #[arg(long, value_parser = cli_ranges::side_or_zero)]
    cutout: Option<u32>,
    /// Number of Cutout holes.
    #[arg(long, value_parser = cli_ranges::count0)]
    cutout_holes: Option<u32>,
    /// Horizontal flip probability.
    #[arg(long, value_parser = cli_ranges::probability, allow_hyphen_values = true)]
    flip: Option<f64>,
}

impl PipelineArgs {
    /// The named preset (default resnet-train) with the changes.
    fn build(&self) -> Result<Pipeline> {
        let p = Pipeline::preset(self.pipeline.as_deref().unwrap_or("resnet-train"))?;
        self.apply(p)
    }

    /// `p` with the changes given on the command line.
    fn apply(&self, mut p: Pipeline) -> Result<Pipeline> {
        if let Some(s) = self.size {
            p = p.with_size(s);
        }
        if let augloader::transform::Geometry::ScaleAug { min, max, .. } = &mut p.geometry {
            *min = self.scale_min.unwrap_or(*min);
            *max = self.scale_max.unwrap_or(*max);
        } else if self.scale_min.is_some() || self.scale_max.is_some() {
            anyhow::bail!(
                "--scale-min/--scale-max apply to scale augmentation (resnet-train) only"
            );
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
            p.lighting = (l > 0.0).then(|| Lighting::imagenet(l));
        }
        if self.cutout.is_some() || self.cutout_holes.is_some() {
            let mut c = p.cutout.unwrap_or(Cutout {
                holes: 1,
                length: 16,
                fill: p.normalize.mean_u8(),
            });
            if let Some(l) = self.cutout {
                c.length = l;
            }
            if let Some(h) = self.cutout_holes {
                c.holes = h;
            }
            p.cutout = (c.length > 0 && c.holes > 0).then_some(c);
        }
        if let Some(f) = self.flip {
            p.flip = f;
        }
        p.validate()?;
        Ok(p)
    }
}

#[derive(Args)]
struct AugmentArgs {
    /// Input image.
    #[arg(long = "in")]
    input: PathBuf,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Epoch.
    #[arg(long, default_value_t = 0)]
    epoch: u64,
    /// Sample index.
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// Never decode at reduced size in the DCT (see `bench --help`).
    #[arg(long)]
    exact_decode: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnError {
    Fail,
    Skip,
}

#[derive(Args)]
struct LoaderArgs {
    /// Dataset folder (DIR/train + DIR/val ImageFolders, DIR/train.csv, CIFAR binaries, or one
    /// ImageFolder). Default: the embedded synthetic dataset, generated on first use.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Worker threads (default: available cores).
    #[arg(long, value_parser = cli_ranges::count)]
    workers: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = cli_ranges::count)]
    batch: usize,
    /// Batches in flight at most (default: 2 x workers).
    #[arg(long, value_parser = cli_ranges::count)]
    prefetch: Option<usize>,
    /// Seed for shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// What to do with unreadable or corrupt images.
    #[arg(long, value_enum, default_value = "fail")]
    on_error: OnError,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = augloader::decode::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Never decode JPEGs at reduced size in the DCT (by default allowed where the window is at
    /// least four times the output's size, and never below twice the output's size).
    #[arg(long)]
    exact_decode: bool,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    loader: LoaderArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Epochs to time.
    #[arg(long, default_value_t = 3, value_parser = cli_ranges::count_u64)]
    epochs: u64,
    /// Output element type.
    #[arg(long, value_enum, default_value = "u8")]
    dtype: DtypeArg,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
    /// Add a hash of every batch's bytes and labels, in order.
    #[arg(long)]
    checksum: bool,
    /// Show a progress bar.
    #[arg(long)]
    progress: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum DtypeArg {
    U8,
    F32,
}

fn data_dir(data: &Option<PathBuf>) -> Result<PathBuf> {
    match data {
        Some(d) => Ok(d.clone()),
        None => Ok(synth::default_dataset()?),
    }
}

/// Opens the training split of `dir`, or the folder itself when it is one ImageFolder.
fn open_split(dir: &Path, split: Split) -> Result<Arc<dyn Source>> {
    Ok(open_dataset(dir, split)?)
}

fn synth_cmd(a: SynthArgs) -> Result<()> {
    let cfg = SynthConfig {
        classes: a.classes,
        train_per_class: a.train_per_class,
        val_per_class: a.val_per_class,
        size: a.size,
        seed: a.seed,
    };
    synth::generate(&a.out, &cfg)?;
    println!(
        "wrote {} training and {} validation images of {} classes to {}",
        cfg.classes * cfg.train_per_class,
        cfg.classes * cfg.val_per_class,
        cfg.classes,
        a.out.display()
    );
    Ok(())
}

fn augment_cmd(a: AugmentArgs) -> Result<()> {
    let pipeline = a.pipeline.build()?;
    let bytes =
        std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let mut rng = augloader::rng::sample_rng(a.seed, a.epoch, a.index as u64);
    let opts = DecodeOptions {
        dct_scaling: !a.exact_decode,
        ..Default::default()
    };
    let (out, params) =
        augloader::loader::augment_encoded(&bytes, &pipeline, &mut rng, &opts, &mut Resize::new())
            .with_context(|| format!("decoding {}", a.input.display()))?;
    out.save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!("{}", serde_json::to_string(&params)?);
    Ok(())
}

fn bench_cmd(a: BenchArgs) -> Result<()> {
    let dir = data_dir(&a.loader.data)?;
    let source = open_split(&dir, Split::Train)?;
    let pipeline = a.pipeline.build()?;
    let workers = a
        .loader
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut b = Loader::builder(source, pipeline)
        .batch_size(a.loader.batch)
        .workers(workers)
        .seed(a.loader.seed)
        .on_error(match a.loader.on_error {
            OnError::Fail => ErrorPolicy::Fail,
            OnError::Skip => ErrorPolicy::Skip,
        })
        .dtype(match a.dtype {
            DtypeArg::U8 => Dtype::U8,
            DtypeArg::F32 => Dtype::F32,
        })
        .decode_options(DecodeOptions {
            max_pixels: a.loader.max_pixels,
            dct_scaling: !a.loader.exact_decode,
        })
        .progress(a.progress);
    if let Some(p) = a.loader.prefetch {
        b = b.prefetch(p);
    }
    let loader = b.build()?;
    let (report, skipped) =
        augloader::bench::run(&loader, a.epochs, workers, a.loader.batch, a.checksum)?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {} images in {:.2} s = {:.1} images/s with {} workers, batch {}; peak RSS {:.0} MiB; JPEG: {}{}",
            report.pipeline,
            report.images,
            report.seconds,
            report.images_per_sec,
            report.workers,
            report.batch,
            report.peak_rss_mb,
            report.jpeg_decoder,
            report.checksum.as_ref().map(|c| format!(", checksum {c}")).unwrap_or_default()
        );
    }
    if !skipped.is_empty() {
        eprintln!("skipped {} samples:", skipped.len());
        for s in &skipped {
            eprintln!("  {s}");
        }
    }
    Ok(())
}

fn preview_cmd(a: PreviewArgs) -> Result<()> {
    let source = open_split(&data_dir(&a.data)?, Split::Train)?;
    let pipeline = a.pipeline.build()?;
    let sheet = augloader::report::contact_sheet(
        source.as_ref(),
        &pipeline,
        a.n,
        a.views,
        a.seed,
        &DecodeOptions::default(),
    )?;
    sheet
        .save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "wrote {} ({}x{}): {} images, each followed by {} views of {}",
        a.out.display(),
        sheet.width(),
        sheet.height(),
        a.n.min(source.len()),
        a.views,
        pipeline.name
    );
    Ok(())
}

fn pca_cmd(a: PcaArgs) -> Result<()> {
    let source = open_split(&data_dir(&a.data)?, Split::Train)?;
    let stats =
        augloader::stats::colour_stats(source.as_ref(), a.images, &DecodeOptions::default())?;
    println!("{}", serde_json::to_string(&stats)?);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Synth(a) => synth_cmd(a),
        Cmd::Augment(a) => augment_cmd(a),
        Cmd::Bench(a) => bench_cmd(a),
        Cmd::Preview(a) => preview_cmd(a),
        Cmd::Pca(a) => pca_cmd(a),
        #[cfg(feature = "torch")]
        Cmd::Train(a) => cli_torch::train_cmd(*a),
        #[cfg(feature = "torch")]
        Cmd::Eval(a) => cli_torch::eval_cmd(*a),
        #[cfg(feature = "torch")]
        Cmd::Tune(a) => cli_torch::tune_cmd(*a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
