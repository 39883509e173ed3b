//! `augloader bench`: the loader alone, timed, with peak memory and an optional checksum.

use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::loader::{LoadError, Loader};

/// What a bench run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Pipeline name.
    pub pipeline: String,
    /// Worker threads.
    pub workers: usize,
    /// Batch size.
    pub batch: usize,
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
    /// The JPEG decoder of this build ([`crate::decode::JPEG_DECODER`]).
    pub jpeg_decoder: &'static str,
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

/// Runs `epochs` epochs (numbered from 0) and measures them. Skipped samples are returned by
/// name in the second value.
pub fn run(
    loader: &Loader,
    epochs: u64,
    workers: usize,
    batch: usize,
    checksum: bool,
) -> Result<(BenchReport, Vec<String>), LoadError> {
    let mut hasher = checksum.then(Xxh3::new);
    let mut images = 0;
    let mut skipped = Vec::new();
    let start = std::time::Instant::now();
    for epoch in 0..epochs {
        let mut it = loader.epoch(epoch);
        for b in it.by_ref() {
            let b = b?;
            images += b.len();
            if let Some(h) = hasher.as_mut() {
                h.update(b.bytes());
                for l in &b.labels {
                    h.update(&l.to_le_bytes());
                }
            }
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
            images,
            seconds,
            images_per_sec: images as f64 / seconds.max(1e-9),
            peak_rss_mb: peak_rss_mb(),
            checksum: hasher.map(|h| format!("{:016x}", h.digest())),
            skipped: skipped.len(),
            jpeg_decoder: crate::decode::JPEG_DECODER,
        },
        skipped,
    ))
}
