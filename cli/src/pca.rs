//! `augloader pca`: dataset statistics, per-channel mean/std and the RGB principal components
//! used by PCA lighting.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nalgebra::{Matrix3, SymmetricEigen};
use serde::Serialize;

use augloader::decode::DecodeOptions;
use augloader::source::{Source, Split};
use augloader::{load_image, LoadError};

use super::args::{data_dir, open_split};
use super::ranges;

#[derive(Args)]
pub struct PcaArgs {
    /// Dataset folder (default: the synthetic dataset); its training split is used.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Images to use, spread evenly over the dataset.
    #[arg(long, default_value_t = 500, value_parser = ranges::count)]
    images: usize,
}

/// Colour statistics of a dataset on the [0, 1] scale.
#[derive(Clone, Debug, Serialize)]
pub struct ColourStats {
    /// Images used.
    pub images: usize,
    /// Pixels used.
    pub pixels: u64,
    /// Mean of R, G, B.
    pub mean: [f64; 3],
    /// Standard deviation of R, G, B.
    pub std: [f64; 3],
    /// Eigenvalues of the RGB covariance, largest first. (fb.resnet.torch's ImageNet constants,
    /// [0.2175, 0.0188, 0.0045], come from an older computation on another scale: compare their
    /// ratios, not their magnitudes.)
    pub eigval: [f64; 3],
    /// Eigenvectors as columns, `eigvec[channel][component]`, matching `eigval`.
    pub eigvec: [[f64; 3]; 3],
}

/// Computes mean, std and the RGB covariance's eigen-decomposition over up to `max_images`
/// images spread evenly over `source` (every pixel of each).
pub fn colour_stats(
    source: &dyn Source,
    max_images: usize,
    opts: &DecodeOptions,
) -> Result<ColourStats, LoadError> {
    let n = source.len().min(max_images.max(1));
    let mut sum = [0f64; 3];
    let mut outer = [[0f64; 3]; 3];
    let mut pixels = 0u64;
    for k in 0..n {
        let img = load_image(source, k * source.len() / n, opts)?;
        for px in img.pixels() {
            let v = px.0.map(|c| c as f64 / 255.0);
            for i in 0..3 {
                sum[i] += v[i];
                for j in 0..3 {
                    outer[i][j] += v[i] * v[j];
                }
            }
        }
        pixels += img.width() as u64 * img.height() as u64;
    }
    let p = pixels.max(1) as f64;
    let mean = sum.map(|s| s / p);
    let cov = Matrix3::from_fn(|i, j| outer[i][j] / p - mean[i] * mean[j]);
    let eig = SymmetricEigen::new(cov);
    let mut order = [0usize, 1, 2];
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let eigval = order.map(|k| eig.eigenvalues[k].max(0.0));
    let mut eigvec = [[0f64; 3]; 3];
    for (col, &k) in order.iter().enumerate() {
        // Sign convention: the first component of each vector negative, as the ImageNet values.
        let sign = if eig.eigenvectors[(0, k)] > 0.0 {
            -1.0
        } else {
            1.0
        };
        for (c, row) in eigvec.iter_mut().enumerate() {
            row[col] = sign * eig.eigenvectors[(c, k)];
        }
    }
    Ok(ColourStats {
        images: n,
        pixels,
        mean,
        std: [0, 1, 2].map(|i| cov[(i, i)].max(0.0).sqrt()),
        eigval,
        eigvec,
    })
}

/// Runs the command.
pub fn run(a: PcaArgs) -> Result<()> {
    let source = open_split(&data_dir(&a.data)?, Split::Train)?;
    let stats = colour_stats(source.as_ref(), a.images, &DecodeOptions::default())?;
    crate::out::out!("{}", serde_json::to_string(&stats)?);
    Ok(())
}
