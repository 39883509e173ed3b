//! `augloader check`: decodes every image of a dataset in full, in parallel, and lists the
//! damaged and unreadable ones. Training decodes only each crop's window, so damage outside the
//! window goes unseen there and a damaged file may fail in one epoch and load in another; a full
//! decode sees all of it, once. The list it writes is what `--exclude` takes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use augloader::decode::DecodeOptions;
use augloader::load_image;
use augloader::source::{exclude_name, has_split};
use augloader::source::{open_dataset, Split};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::ranges;

#[derive(Args)]
pub struct CheckArgs {
    /// Dataset, as --data elsewhere (both splits are checked where it has them).
    #[arg(long)]
    data: PathBuf,
    /// Write the names of the bad files, one per line, to FILE: an exclude list for
    /// `--exclude` (train, bench, eval) and Python's `exclude=`.
    #[arg(long)]
    write_exclude: Option<PathBuf>,
    /// Worker threads (default: available cores).
    #[arg(long, value_parser = ranges::workers)]
    workers: Option<usize>,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = augloader::decode::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs the command: prints `NAME: why` for each bad file, then a summary line (stderr).
pub fn run(a: CheckArgs) -> Result<()> {
    let mut splits = vec![Split::Train];
    if has_split(&a.data, Split::Val) && !augloader::source::is_list(&a.data) {
        splits.push(Split::Val);
    }
    let opts = DecodeOptions {
        max_pixels: a.max_pixels,
        dct_scaling: false,
        restart_cuts: false,
    };
    let workers = a.workers.unwrap_or_else(augloader::defaults::workers);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("starting the worker threads")?;
    let (mut bad, mut total) = (Vec::new(), 0);
    for split in splits {
        let src = open_dataset(&a.data, split)?;
        total += src.len();
        let pb = if a.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(src.len() as u64)
        };
        pb.set_style(
            ProgressStyle::with_template(
                "check {prefix} [{bar:30}] {pos}/{len}  {per_sec}  eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb.set_prefix(format!("{split:?}").to_lowercase());
        let done = AtomicUsize::new(0);
        let mut found: Vec<(usize, String)> = pool.install(|| {
            (0..src.len())
                .into_par_iter()
                .filter_map(|i| {
                    let r = load_image(src.as_ref(), i, &opts).err();
                    if done.fetch_add(1, Ordering::Relaxed).is_multiple_of(64) {
                        pb.set_position(done.load(Ordering::Relaxed) as u64);
                    }
                    r.map(|e| (i, e.to_string()))
                })
                .collect()
        });
        pb.finish_and_clear();
        found.sort();
        for (i, why) in found {
            let name = exclude_name(src.as_ref(), &a.data, i);
            // One line per file, whatever the decoder's message holds.
            let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
            crate::out::out!("{name}: {why}");
            bad.push(name);
        }
    }
    if let Some(p) = &a.write_exclude {
        augloader::output::check_distinct(("--write-exclude", p), &[("--data", &a.data)])
            .map_err(anyhow::Error::msg)?;
        let text: String = bad.iter().map(|n| format!("{n}\n")).collect();
        augloader::output::write_replacing(p, text.as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    crate::out::note!(
        "check: {} of {total} images are damaged or unreadable{}",
        bad.len(),
        a.write_exclude
            .as_ref()
            .map(|p| format!("; their names are in {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}
