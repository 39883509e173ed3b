//! One sample, from its bytes to what goes into a batch: read, decode (only the window the
//! sampled parameters need), augment. The loader, test-time augmentation, the command line and
//! the Python binding all go through these functions; what the loader makes of each sample is a
//! [`PerSample`] handed to it ([`Augment`] here, TTA views in [`crate::tta`]).

use std::fmt;

use image::RgbImage;

use crate::decode::{decode_rgb8, decode_window, read_header, DecodeError, DecodeOptions};
use crate::pool;
use crate::rng::{sample_rng, SampleRng};
use crate::source::{Payload, Source, SourceError};
use crate::transform::crop::GeometryParams;
use crate::transform::{Params, Pipeline, Resize};

/// A loading error. Sample errors name the file; [`std::error::Error::source`] leads to the
/// underlying I/O or decoder error, whose text the message already contains.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading the sample failed (the error names the path).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Decoding failed.
    #[error("{name}: {cause}")]
    Decode {
        /// File or record name.
        name: String,
        /// Why.
        #[source]
        cause: DecodeError,
    },
    /// A worker panicked while building a batch.
    #[error("worker panicked while building batch {batch}: {message}")]
    WorkerPanic {
        /// The batch number in the epoch.
        batch: usize,
        /// The panic message.
        message: String,
    },
    /// Under the skip policy, failed samples that no other sample could replace.
    #[error("batch {batch}: {count} samples could not be loaded, and nothing could replace them (no other sample of the batch, nor the split's samples tried, loads; first: {first})")]
    BatchFailed {
        /// The batch number.
        batch: usize,
        /// The samples that failed.
        count: usize,
        /// The first error.
        first: String,
    },
    /// A batch's memory could not be allocated (the process goes on).
    #[error("batch {batch}: its {bytes} bytes could not be allocated (a smaller batch size or image size fits)")]
    OutOfMemory {
        /// The batch number in the epoch.
        batch: usize,
        /// The bytes asked for.
        bytes: u64,
    },
    /// An invalid loader setting.
    #[error("invalid loader setting: {0}")]
    Config(String),
    /// The pipeline failed validation.
    #[error("invalid loader setting: {0}")]
    Pipeline(#[source] crate::transform::PipelineError),
    /// The epoch was stopped (its iterator dropped) before this batch was built.
    #[error("the epoch was stopped before this batch was built")]
    Cancelled,
}

/// What the loader makes of each sample of a batch: one augmented image ([`Augment`]) or several
/// views of it ([`crate::tta::TtaConfig`]). Implementations draw all randomness from
/// (seed, epoch, [`SampleAt::rng_index`]), so batches do not depend on worker count or timing.
pub trait PerSample: Send + Sync + fmt::Debug {
    /// The images of sample `index` in batch order, drawn with the random stream of sample
    /// `at.rng_index` (`at.index` itself, except for a skipped sample's replacement, which draws
    /// the skipped sample's randomness).
    fn images(
        &self,
        source: &dyn Source,
        at: SampleAt,
        opts: &DecodeOptions,
        resize: &mut Resize,
    ) -> Result<Vec<RgbImage>, LoadError>;

    /// Checked when the loader is built: why these outputs cannot be batched (views of several
    /// sizes), or, with `skip` (the skip policy), why a failed sample cannot be replaced.
    fn check(&self, skip: bool) -> Result<(), String> {
        let _ = skip;
        Ok(())
    }
}

/// Which sample to make, and with which randomness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleAt {
    /// The sample read.
    pub index: usize,
    /// The sample whose random stream is used.
    pub rng_index: usize,
    /// The loader's seed.
    pub seed: u64,
    /// The epoch.
    pub epoch: u64,
}

/// One augmented image per sample: what a training or validation loader delivers.
#[derive(Clone, Debug)]
pub struct Augment(pub Pipeline);

impl PerSample for Augment {
    fn images(
        &self,
        source: &dyn Source,
        at: SampleAt,
        opts: &DecodeOptions,
        resize: &mut Resize,
    ) -> Result<Vec<RgbImage>, LoadError> {
        Ok(vec![augment_at(source, &self.0, at, opts, resize)?.0])
    }
}

/// Reads and decodes sample `index` of `source`.
pub fn load_image(
    source: &dyn Source,
    index: usize,
    opts: &DecodeOptions,
) -> Result<RgbImage, LoadError> {
    match source.read(index)? {
        Payload::Rgb(img) => Ok(img),
        Payload::Encoded(bytes) => decode_rgb8(&bytes, opts).map_err(|cause| LoadError::Decode {
            name: source.name(index),
            cause,
        }),
    }
}

/// Loads sample `index` and augments it with the randomness of (seed, epoch, index): what the
/// loader puts in a batch, before collation. Returns the image and the sampled parameters.
pub fn augment_sample(
    source: &dyn Source,
    pipeline: &Pipeline,
    seed: u64,
    epoch: u64,
    index: usize,
    opts: &DecodeOptions,
    resize: &mut Resize,
) -> Result<(RgbImage, Params), LoadError> {
    let at = SampleAt {
        index,
        rng_index: index,
        seed,
        epoch,
    };
    augment_at(source, pipeline, at, opts, resize)
}

/// Loads sample `at.index` and augments it with the random stream of sample `at.stream`.
fn augment_at(
    source: &dyn Source,
    pipeline: &Pipeline,
    at: SampleAt,
    opts: &DecodeOptions,
    resize: &mut Resize,
) -> Result<(RgbImage, Params), LoadError> {
    let mut rng = sample_rng(at.seed, at.epoch, at.rng_index as u64);
    match source.read(at.index)? {
        Payload::Rgb(img) => {
            let params = pipeline.sample(&mut rng, img.width(), img.height());
            check_geometry(&params, opts).map_err(|cause| LoadError::Decode {
                name: source.name(at.index),
                cause,
            })?;
            Ok((pipeline.apply_owned(img, &params, resize), params))
        }
        Payload::Encoded(bytes) => {
            let out = augment_encoded(&bytes, pipeline, &mut rng, opts, resize);
            pool::give(bytes);
            out.map_err(|cause| LoadError::Decode {
                name: source.name(at.index),
                cause,
            })
        }
    }
}

/// Augments one encoded image as the loader does: parameters are sampled from the header's size,
/// then only the part of the image they read is decoded.
pub fn augment_encoded(
    bytes: &[u8],
    pipeline: &Pipeline,
    rng: &mut SampleRng,
    opts: &DecodeOptions,
    resize: &mut Resize,
) -> Result<(RgbImage, Params), DecodeError> {
    let header = read_header(bytes, opts)?;
    let params = pipeline.sample(rng, header.width, header.height);
    check_geometry(&params, opts)?;
    let decoded = decode_window(bytes, &header, opts, pipeline.region(&params))?;
    Ok((pipeline.apply_decoded(decoded, &params, resize), params))
}

/// Refuses parameters that resize beyond any real image: an extreme aspect ratio (a
/// 1 x 99,000,000 input with its shorter side resized to 256 would be 25 billion pixels long,
/// past u32) is an error naming the size, not an allocation the machine cannot make.
fn check_geometry(params: &Params, opts: &DecodeOptions) -> Result<(), DecodeError> {
    if let GeometryParams::ResizeCrop { resize: [h, w], .. } = params.geometry {
        let pixels = u64::from(h) * u64::from(w);
        let limit = opts.max_pixels.saturating_mul(4);
        if h == u32::MAX || w == u32::MAX || pixels > limit {
            return Err(DecodeError::TooLarge {
                width: w,
                height: h,
                pixels,
                limit,
            });
        }
    }
    Ok(())
}
