//! # augloader
//!
//! A deterministic, multi-threaded, prefetching image loader for CNN training, with
//! torchvision-exact augmentation (ResNet-style crops, colour, RandAugment and its kin, MixUp and
//! CutMix) and multi-crop test-time augmentation views. No libtorch: the trainer and TTA
//! evaluation are the crate `augloader-train`.
//!
//! Data flows one way: a [`source::Source`] (ImageFolder, CIFAR binaries, CSV list, tar
//! shards, or samples given as data: files or images with class, multi-label or regression
//! targets) ->
//! a sampler (shuffle per epoch, shards, resume cursor) -> worker threads that decode
//! ([`decode`]) and augment ([`transform::Pipeline`], randomness from (seed, epoch, index)) ->
//! [`Batch`] (one contiguous NCHW buffer) -> a bounded queue delivering batches in order
//! ([`Loader`]). The loading core is at the root; everything else is named by its module, one
//! path per name. The trainer and TTA evaluation are the crate `augloader-train`.
//!
//! ```no_run
//! use augloader::source::{open_dataset, Split};
//! use augloader::transform::Pipeline;
//! use augloader::Loader;
//!
//! let train = open_dataset("data".as_ref(), Split::Train)?;
//! let loader = Loader::builder(train, Pipeline::resnet_train())
//!     .batch_size(64).workers(2).prefetch(4).seed(42)
//!     .build()?;
//! for epoch in 0..2 {
//!     for batch in loader.epoch(epoch) {
//!         let batch = batch?; // errors name the file
//!         assert_eq!(batch.shape().unwrap()[1..], [3, 224, 224]);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
// The library never prints (progress goes through `observe`) and keeps functions short.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]
#![warn(clippy::too_many_lines)]
#![deny(unsafe_op_in_unsafe_fn)]

pub(crate) mod batch;
pub mod decode;
pub mod defaults;
pub mod file;
pub(crate) mod loader;
pub mod observe;
pub mod output;
pub(crate) mod pool;
#[cfg(feature = "remote")]
pub mod remote;
pub mod rng;
pub(crate) mod sample;
mod sampler;
#[cfg(target_arch = "x86_64")]
mod simd;
pub mod source;
pub mod transform;
pub mod tta;

// Linked for its static libjpeg-turbo, which csrc/jpeg_region.c calls.
#[cfg(feature = "bundled-jpeg")]
use mozjpeg_sys as _;

// The loading core, at the root; everything else by its module (one path per name).
pub use batch::{Batch, BatchData, Collate, Dtype, Layout, Skipped};
pub use loader::{EpochIter, ErrorPolicy, Loader, LoaderBuilder, MAX_WORKERS};
pub use pool::Pooled;
pub use sample::{
    augment_encoded, augment_sample, load_image, Augment, LoadError, PerSample, SampleAt,
};
