//! `augloader preview`: contact sheets, each source image beside several augmented views of it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use image::{imageops, Rgb, RgbImage};

use augloader::decode::DecodeOptions;
use augloader::source::{Source, Split};
use augloader::transform::{Pipeline, Resize};
use augloader::{augment_sample, load_image, LoadError};

use super::args::{data_dir, open_split, PipelineArgs};
use super::ranges;

#[derive(Args)]
pub struct PreviewArgs {
    /// Dataset folder (default: the synthetic dataset); its training split is shown.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// Number of source images (rows, at most 64).
    #[arg(long, default_value_t = 16, value_parser = ranges::count_to::<64>)]
    n: usize,
    /// Augmented views per image (at most 32).
    #[arg(long, default_value_t = 6, value_parser = ranges::count_to::<32>)]
    views: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

const GAP: u32 = 4;

/// Fits `img` into a `cell` x `cell` square (aspect kept, centred on grey).
fn fit(img: &RgbImage, cell: u32, resize: &mut Resize) -> RgbImage {
    let scale = cell as f64 / img.width().max(img.height()) as f64;
    let w = ((img.width() as f64 * scale).round() as u32).clamp(1, cell);
    let h = ((img.height() as f64 * scale).round() as u32).clamp(1, cell);
    let small = resize.resize(img, w, h);
    let mut out = RgbImage::from_pixel(cell, cell, Rgb([128, 128, 128]));
    imageops::replace(
        &mut out,
        &small,
        ((cell - w) / 2) as i64,
        ((cell - h) / 2) as i64,
    );
    out
}

/// A grid with one row per sample: the source image (fitted), then `views` augmentations of it
/// drawn from epochs 0..views with `seed`. Samples are spread evenly over the dataset.
pub fn contact_sheet(
    source: &dyn Source,
    pipeline: &Pipeline,
    rows: usize,
    views: usize,
    seed: u64,
    opts: &DecodeOptions,
) -> Result<RgbImage, LoadError> {
    let rows = rows.min(source.len()).max(1);
    let cell = pipeline
        .output_size()
        .map_or(160, |(h, w)| h.max(w))
        .clamp(32, 256);
    let mut resize = Resize::new();
    let cols = views as u32 + 1;
    let mut sheet = RgbImage::from_pixel(
        cols * (cell + GAP) + GAP,
        rows as u32 * (cell + GAP) + GAP,
        Rgb([255, 255, 255]),
    );
    for r in 0..rows {
        let index = r * source.len() / rows;
        let y = (GAP + r as u32 * (cell + GAP)) as i64;
        let original = load_image(source, index, opts)?;
        imageops::replace(
            &mut sheet,
            &fit(&original, cell, &mut resize),
            GAP as i64,
            y,
        );
        for v in 0..views {
            let (aug, _) =
                augment_sample(source, pipeline, seed, v as u64, index, opts, &mut resize)?;
            let x = (GAP + (v as u32 + 1) * (cell + GAP)) as i64;
            imageops::replace(&mut sheet, &fit(&aug, cell, &mut resize), x, y);
        }
    }
    Ok(sheet)
}

/// Runs the command.
pub fn run(a: PreviewArgs) -> Result<()> {
    let dir = data_dir(&a.data)?;
    augloader::output::check_distinct(("--out", &a.out), &[("--data", &dir)])
        .map_err(anyhow::Error::msg)?;
    let source = open_split(&dir, Split::Train)?;
    let pipeline = a.pipeline.build()?;
    let sheet = contact_sheet(
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
    crate::out::out!(
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
