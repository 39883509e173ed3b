//! `augloader augment`: one image through a pipeline, with the sampled parameters as JSON.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use augloader::decode::DecodeOptions;
use augloader::transform::Resize;

use super::args::PipelineArgs;

#[derive(Args)]
pub struct AugmentArgs {
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

/// Runs the command.
pub fn run(a: AugmentArgs) -> Result<()> {
    augloader::output::check_distinct(("--out", &a.out), &[("--in", &a.input)])
        .map_err(anyhow::Error::msg)?;
    let pipeline = a.pipeline.build()?;
    let bytes = augloader::file::read(&a.input, augloader::file::FileKind::Image)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let mut rng = augloader::rng::sample_rng(a.seed, a.epoch, a.index as u64);
    let opts = DecodeOptions {
        dct_scaling: !a.exact_decode,
        ..Default::default()
    };
    let (out, params) =
        augloader::augment_encoded(&bytes, &pipeline, &mut rng, &opts, &mut Resize::new())
            .with_context(|| format!("decoding {}", a.input.display()))?;
    out.save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    crate::out::out!("{}", serde_json::to_string(&params)?);
    Ok(())
}
