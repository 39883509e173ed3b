//! `augloader bench`: the loader alone, timed, with peak memory and an optional checksum.

use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use augloader::{Dtype, Layout, LoadError, Loader};

use super::args::{data_dir, LoaderArgs, MixArgs, PipelineArgs};
use super::ranges;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    loader: LoaderArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    mix: MixArgs,
    /// Epochs to time.
    #[arg(long, default_value_t = 3, value_parser = ranges::count_u64)]
    epochs: u64,
    /// Untimed epochs first, so that the timed ones see warm caches and buffer pools (as the
    /// anchors do: tv_baseline.py runs one untimed epoch, dali_baseline.py one batch).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Output element type.
    #[arg(long, value_enum, default_value = "u8")]
    dtype: DtypeArg,
    /// Memory order of the batches: nchw, or nhwc (PyTorch's channels_last: the pixels stay
    /// interleaved as decoded, no split into planes).
    #[arg(long, value_enum, default_value = "nchw")]
    layout: LayoutArg,
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

#[derive(Clone, Copy, ValueEnum)]
enum LayoutArg {
    Nchw,
    Nhwc,
}

/// What a bench run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Pipeline name.
    pub pipeline: String,
    /// Worker threads.
    pub workers: usize,
    /// Batch size.
    pub batch: usize,
    /// Memory order of the batches.
    pub layout: Layout,
    /// Images delivered (all epochs).
    pub images: usize,
    /// Wall time of the timed epochs.
    pub seconds: f64,
    /// images / seconds.
    pub images_per_sec: f64,
    /// Peak resident memory of the process (VmHWM), MiB.
    pub peak_rss_mb: f64,
    /// xxh3-64 of every batch's bytes and labels in order, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Samples skipped under the skip policy.
    pub skipped: usize,
    /// The JPEG decoder of this build ([`augloader::decode::JPEG_DECODER`]).
    pub jpeg_decoder: &'static str,
    /// Bytes of remote shards downloaded during the timed epochs (0 for local data).
    pub fetched_bytes: u64,
}

/// Peak resident set size of this process in MiB (Linux; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A progress bar over one epoch's images.
fn epoch_bar(epoch: u64, images: usize) -> ProgressBar {
    let pb = ProgressBar::new(images as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} images  {per_sec}  eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(epoch.to_string());
    pb
}

/// Runs `epochs` epochs (numbered from 0) and measures them. Skipped samples are returned by
/// name in the second value.
pub fn measure(
    loader: &Loader,
    epochs: u64,
    workers: usize,
    batch: usize,
    checksum: bool,
    progress: bool,
) -> Result<(BenchReport, Vec<String>), LoadError> {
    let mut hasher = checksum.then(Xxh3::new);
    let mut images = 0;
    let mut skipped = Vec::new();
    let fetched_before = augloader::remote::fetched_bytes();
    let start = std::time::Instant::now();
    let per_epoch = loader.samples_per_epoch();
    for epoch in 0..epochs {
        let pb = progress.then(|| epoch_bar(epoch, per_epoch));
        let mut it = loader.epoch(epoch);
        for b in it.by_ref() {
            let b = b?;
            images += b.len();
            if let Some(pb) = &pb {
                pb.inc(b.len() as u64);
            }
            if let Some(h) = hasher.as_mut() {
                h.update(b.bytes());
                for l in &b.labels {
                    h.update(&l.to_le_bytes());
                }
            }
        }
        if let Some(pb) = pb {
            pb.finish();
        }
        // The reason names the file already.
        skipped.extend(it.skipped().iter().map(|s| s.reason.trim().to_string()));
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((
        BenchReport {
            pipeline: loader.pipeline().name.clone(),
            workers,
            batch,
            layout: loader.layout(),
            images,
            seconds,
            images_per_sec: images as f64 / seconds.max(1e-9),
            peak_rss_mb: peak_rss_mb(),
            checksum: hasher.map(|h| format!("{:016x}", h.digest())),
            skipped: skipped.len(),
            jpeg_decoder: augloader::decode::JPEG_DECODER,
            fetched_bytes: augloader::remote::fetched_bytes() - fetched_before,
        },
        skipped,
    ))
}

/// Runs the command.
pub fn run(a: BenchArgs) -> Result<()> {
    let dir = data_dir(&a.loader.data)?;
    let source = a.loader.open_train(&dir)?;
    let pipeline = a.pipeline.build()?;
    let workers = a.loader.workers();
    let mut b = Loader::builder(source, pipeline)
        .batch_size(a.loader.batch)
        .workers(workers)
        .seed(a.loader.seed)
        .on_error(a.loader.policy())
        .dtype(match a.dtype {
            DtypeArg::U8 => Dtype::U8,
            DtypeArg::F32 => Dtype::F32,
        })
        .layout(match a.layout {
            LayoutArg::Nchw => Layout::Nchw,
            LayoutArg::Nhwc => Layout::Nhwc,
        })
        .decode_options(a.loader.decode_options());
    if let Some(p) = a.loader.prefetch {
        b = b.prefetch(p);
    }
    if let Some(w) = a.loader.shuffle_window {
        b = b.shuffle_window(w);
    }
    // MixUp / CutMix only when asked (the recipes' defaults are the trainer's).
    if let Some(m) = a.mix.resolve(None, 0.0) {
        b = b.mix(m);
    }
    let loader = b.build()?;
    for epoch in 0..a.warmup {
        for batch in loader.epoch(epoch) {
            batch?;
        }
    }
    let (report, skipped) = measure(
        &loader,
        a.epochs,
        workers,
        a.loader.batch,
        a.checksum,
        a.progress,
    )?;
    if a.json {
        crate::out::out!("{}", serde_json::to_string(&report)?);
    } else {
        crate::out::out!(
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
        crate::out::note!("skipped {} samples:", skipped.len());
        for s in &skipped {
            crate::out::note!("  {s}");
        }
    }
    Ok(())
}
