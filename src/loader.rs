//! The loader: a worker pool that decodes and augments batches in parallel and delivers them in
//! sampler order through a bounded queue.
//!
//! Memory is bounded by the prefetch depth: at most `prefetch` batches are in flight (being built
//! or waiting in the reorder buffer) at any time, whatever the dataset size.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};
use image::RgbImage;

use crate::batch::{Batch, BatchBuffers, Collate, Dtype, Layout, Skipped};
use crate::decode::DecodeOptions;
use crate::defaults;
use crate::pool;
pub(crate) use crate::sample::LoadError;
use crate::sample::{Augment, PerSample, SampleAt};
use crate::sampler::Sampler;
use crate::source::Source;
use crate::transform::mix::{apply_mix, Mix};
use crate::transform::{Pipeline, Resize};

/// What to do with a sample that cannot be read or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// The epoch yields an error naming the file, then ends. The default.
    #[default]
    Fail,
    /// The sample is replaced (deterministically, by another sample of its batch) and counted.
    Skip,
    /// The sample is left out (its batch is one shorter) and listed in [`Batch::skipped`]: for
    /// evaluation, where a replacement would count another sample twice.
    Omit,
}

/// Most worker threads a loader starts (each holds a decode buffer and a thread stack).
pub const MAX_WORKERS: usize = 1024;

/// Builds a [`Loader`]. By default (the table of [`crate::defaults`]): batch 64, workers =
/// available cores, prefetch = 2 x workers, seed 0, shuffled, keeping the last partial batch, rank 0 of 1, fail on errors,
/// u8 output, 100-megapixel decode limit, one augmented image per sample.
#[derive(Debug)]
pub struct LoaderBuilder {
    source: Arc<dyn Source>,
    pipeline: Pipeline,
    batch_size: usize,
    workers: usize,
    prefetch: Option<usize>,
    seed: u64,
    shuffle: bool,
    drop_last: bool,
    even: bool,
    pad_tail: bool,
    mix: Option<Mix>,
    rank: usize,
    world_size: usize,
    policy: ErrorPolicy,
    dtype: Dtype,
    layout: Layout,
    decode: DecodeOptions,
    per_sample: Option<Arc<dyn PerSample>>,
    shuffle_window: Option<usize>,
}

impl LoaderBuilder {
    /// Shuffle in blocks instead of over the whole epoch (sharded sources): each epoch the
    /// shards are permuted, taken `shards` at a time, and the samples of each such window
    /// permuted. A reader then holds `shards` shards at a time (what a bounded cache of remote
    /// shards needs); the order is a function of (seed, epoch) as the full shuffle's is.
    pub fn shuffle_window(mut self, shards: usize) -> Self {
        self.shuffle_window = Some(shards);
        self
    }

    /// What each sample becomes instead of one image augmented by the pipeline: for example
    /// the test-time augmentation views of a [`crate::tta::TtaConfig`], a batch then holding
    /// `B x V` images with the views of each sample together (see [`Batch::views`]).
    pub fn per_sample(mut self, p: impl PerSample + 'static) -> Self {
        self.per_sample = Some(Arc::new(p));
        self
    }

    /// Samples per batch.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Worker threads. 0 starts none: each batch is built in the thread that asks for it, when
    /// it asks (as DataLoader's `num_workers=0`, for debugging and profiling).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }
    /// Batches in flight at most (bounds memory).
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n);
        self
    }
    /// Seed of shuffling and augmentation.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Shuffle each epoch.
    pub fn shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }
    /// Drop the last partial batch (and cut, rather than pad, shards).
    pub fn drop_last(mut self, on: bool) -> Self {
        self.drop_last = on;
        self
    }

    /// Across ranks without `drop_last`: pad the epoch so that every rank gets the same number
    /// of samples and batches, as DistributedSampler (the default; training), or not (`false`:
    /// every sample exactly once over all ranks, in steps of `batch_size x world_size` of which
    /// rank r takes the r-th batch; ranks differ only in the last step, by at most one batch;
    /// evaluation).
    pub fn even_shards(mut self, on: bool) -> Self {
        self.even = on;
        self
    }

    /// With `even_shards(false)`: pad the last step's short batches with repeats of the epoch's
    /// first samples to the size of rank 0's, so that every rank's batches have equal shapes
    /// and, in rank order, the repeats come after every real sample (a gather cut to
    /// `len % (batch_size x world_size)` rows in the last step drops exactly them). By
    /// default, no padding.
    pub fn pad_tail(mut self, on: bool) -> Self {
        self.pad_tail = on;
        self
    }

    /// MixUp / CutMix on every batch, with soft targets ([`Batch::targets`]); drawn from
    /// (seed, epoch, batch number, rank), so independent of workers and exact on resume. Needs
    /// one image per sample. By default, none.
    pub fn mix(mut self, mix: Mix) -> Self {
        self.mix = mix.active().then_some(mix);
        self
    }

    /// This process's shard: `rank` of `world_size`.
    pub fn shard(mut self, rank: usize, world_size: usize) -> Self {
        self.rank = rank;
        self.world_size = world_size;
        self
    }
    /// Error policy.
    pub fn on_error(mut self, p: ErrorPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Output element type.
    pub fn dtype(mut self, d: Dtype) -> Self {
        self.dtype = d;
        self
    }
    /// Memory order of the batches (NCHW by default; NHWC is `channels_last`).
    pub fn layout(mut self, l: Layout) -> Self {
        self.layout = l;
        self
    }
    /// Decoding limits.
    pub fn decode_options(mut self, d: DecodeOptions) -> Self {
        self.decode = d;
        self
    }

    /// The width of float targets (soft, multi-hot or regression rows), checking the mixing.
    fn target_width(&self) -> Result<usize, LoadError> {
        let bad = |m: String| Err(LoadError::Config(m));
        let width = self.source.target_kind().width();
        let classes = if width > 0 {
            width
        } else {
            self.source.classes().len().max(1)
        };
        if let Some(m) = &self.mix {
            m.validate().map_err(LoadError::Config)?;
            if width > 0 && m.label_smoothing > 0.0 {
                return bad(format!(
                    "label smoothing applies to class labels, not to {:?} targets",
                    self.source.target_kind()
                ));
            }
            if self.per_sample.is_some() || self.pipeline.output_size().is_none() {
                return bad(
                    "MixUp / CutMix need one image of a fixed size per sample (a cropping \
                     pipeline, no TTA views)"
                        .into(),
                );
            }
        }
        Ok(classes)
    }

    /// The block shuffle's shard sizes and window, checked.
    fn window(&self) -> Result<Option<crate::sampler::Window>, LoadError> {
        let bad = |m: &str| Err(LoadError::Config(m.into()));
        Ok(match self.shuffle_window {
            None => None,
            Some(0) => return bad("the shuffle window must hold at least 1 shard"),
            Some(n) => match self.source.shard_sizes() {
                Some(sizes) => Some((Arc::new(sizes), n)),
                None => {
                    return bad(
                        "a shuffle window permutes shards: this source is not sharded (tar \
                         shards are)",
                    )
                }
            },
        })
    }

    /// Validates the settings.
    pub fn build(self) -> Result<Loader, LoadError> {
        let bad = |m: String| Err(LoadError::Config(m));
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if self.workers > MAX_WORKERS {
            return bad(format!(
                "workers {} is outside 0..={MAX_WORKERS}",
                self.workers
            ));
        }
        if self.world_size == 0 || self.rank >= self.world_size {
            return bad(format!(
                "rank {} must be below world size {}",
                self.rank, self.world_size
            ));
        }
        if self.prefetch == Some(0) {
            return bad("prefetch must be at least 1".into());
        }
        self.pipeline.validate().map_err(LoadError::Pipeline)?;
        let classes = self.target_width()?;
        let window = self.window()?;
        let per_sample = self
            .per_sample
            .unwrap_or_else(|| Arc::new(Augment(self.pipeline.clone())));
        per_sample
            .check(self.policy == ErrorPolicy::Skip)
            .map_err(LoadError::Config)?;
        let prefetch = self
            .prefetch
            .unwrap_or(defaults::PREFETCH_PER_WORKER * self.workers.max(1));
        let collate = Collate {
            dtype: self.dtype,
            layout: self.layout,
            normalize: self.pipeline.normalize,
        };
        Ok(Loader {
            sampler: Sampler {
                len: self.source.len(),
                shuffle: self.shuffle,
                seed: self.seed,
                rank: self.rank,
                world_size: self.world_size,
                drop_last: self.drop_last,
                even: self.even,
                pad_tail: self.pad_tail,
                batch_size: self.batch_size,
                window,
            },
            shared: Arc::new(Shared {
                source: self.source,
                pipeline: self.pipeline,
                seed: self.seed,
                policy: self.policy,
                collate,
                decode: self.decode,
                per_sample,
                // At most `prefetch` batches are in flight, and the consumer holds one or two.
                buffers: BatchBuffers::new(prefetch + 2),
                // Each batch in flight holds its images until collated; each worker holds
                // a sample's few buffers (file bytes, decoded window, crop, output).
                images: Arc::new(pool::ImagePool::with_keep(
                    (prefetch + 2) * self.batch_size + 8 * self.workers.max(1) + 16,
                )),
                mix: self.mix,
                classes,
                rank: self.rank,
                step: self.batch_size * self.world_size.max(1),
            }),
            workers: self.workers,
            prefetch,
        })
    }
}

struct Shared {
    source: Arc<dyn Source>,
    pipeline: Pipeline,
    seed: u64,
    policy: ErrorPolicy,
    collate: Collate,
    decode: DecodeOptions,
    per_sample: Arc<dyn PerSample>,
    buffers: BatchBuffers,
    images: Arc<pool::ImagePool>,
    mix: Option<Mix>,
    /// Number of classes (the width of soft targets).
    classes: usize,
    rank: usize,
    /// Samples per step over all ranks (a batch number's width in the global order).
    step: usize,
}

/// A configured loader; [`Loader::epoch`] starts the workers for one epoch.
pub struct Loader {
    sampler: Sampler,
    shared: Arc<Shared>,
    workers: usize,
    prefetch: usize,
}

impl Loader {
    /// Starts building a loader over `source` with `pipeline`.
    pub fn builder(source: Arc<dyn Source>, pipeline: Pipeline) -> LoaderBuilder {
        LoaderBuilder {
            source,
            pipeline,
            batch_size: defaults::BATCH_SIZE,
            workers: defaults::workers(),
            prefetch: None,
            seed: defaults::SEED,
            shuffle: true,
            drop_last: false,
            even: true,
            pad_tail: false,
            mix: None,
            rank: 0,
            world_size: 1,
            policy: ErrorPolicy::Fail,
            dtype: Dtype::U8,
            layout: Layout::Nchw,
            decode: DecodeOptions::default(),
            per_sample: None,
            shuffle_window: None,
        }
    }

    /// Memory order of the batches.
    pub fn layout(&self) -> Layout {
        self.shared.collate.layout
    }

    /// Batches per epoch on this rank.
    pub fn batches_per_epoch(&self) -> usize {
        self.sampler.batches_per_epoch()
    }

    /// Samples per epoch on this rank (the last batch may be partial unless `drop_last`).
    pub fn samples_per_epoch(&self) -> usize {
        self.sampler.indices_len()
    }

    /// The source.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.shared.source
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.shared.pipeline
    }

    /// The dataset indices of this rank's batches in `epoch`, in order.
    pub fn indices(&self, epoch: u64) -> Vec<usize> {
        self.sampler.batches(epoch, 0).concat()
    }

    /// Sample `index` as this loader makes it in `epoch` (the images of
    /// [`LoaderBuilder::per_sample`], uncollated): one sample of a batch, on its own.
    pub fn sample(&self, epoch: u64, index: usize) -> Result<Vec<RgbImage>, LoadError> {
        let s = &self.shared;
        if index >= s.source.len() {
            return Err(LoadError::Config(format!(
                "sample {index} out of range: the dataset has {}",
                s.source.len()
            )));
        }
        let at = SampleAt {
            index,
            rng_index: index,
            seed: s.seed,
            epoch,
        };
        s.per_sample
            .images(s.source.as_ref(), at, &s.decode, &mut Resize::new())
    }

    /// The batches of `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from batch number `cursor` on: exactly what an uninterrupted run
    /// would deliver after its first `cursor` batches.
    pub fn epoch_from(&self, epoch: u64, cursor: usize) -> EpochIter {
        let mut batches = self.sampler.batches(epoch, 0);
        let cursor = cursor.min(batches.len());
        let before = batches_len(&batches[..cursor]) * self.sampler.world_size.max(1);
        let rest = batches.split_off(cursor);
        self.start(epoch, cursor, before.min(self.sampler.len), rest)
    }

    /// The rest of `epoch` after `position` samples of its global order were delivered over all
    /// ranks, shared among this loader's ranks: topology-independent resume. Every sample is
    /// augmented as in an uninterrupted run (randomness follows the sample, not its position);
    /// with the same number of ranks the batches are the uninterrupted run's, byte for byte.
    pub fn epoch_at(&self, epoch: u64, position: usize) -> EpochIter {
        let position = position.min(self.sampler.len);
        let batches = self.sampler.batches_from(epoch, position);
        self.start(epoch, 0, position, batches)
    }

    /// Starts the workers on `batches`, the epoch's batches from number `cursor` (global
    /// position `start`) on.
    fn start(
        &self,
        epoch: u64,
        cursor: usize,
        start: usize,
        batches: Vec<Vec<usize>>,
    ) -> EpochIter {
        let batches: Arc<Vec<Vec<usize>>> = Arc::new(batches);
        self.shared.source.plan(&batches.concat());
        let (job_tx, job_rx) = unbounded::<Job>();
        let (res_tx, res_rx) = unbounded();
        let cancel = Arc::new(AtomicBool::new(false));
        let workers = self.workers.min(batches_len(&batches).max(1));
        let work = Arc::new(EpochWork {
            shared: self.shared.clone(),
            epoch,
            cursor,
            // The epoch's batch number of batches[0], however the pass started (a cursor, or a
            // global position): what batch-level randomness is keyed by.
            first: cursor.max(start / self.shared.step.max(1)),
            batches: batches.clone(),
            assembly: Mutex::new(BTreeMap::new()),
            cancel: cancel.clone(),
        });
        let inline = (self.workers == 0).then(|| Inline {
            work: work.clone(),
            jobs: job_rx.clone(),
            results: res_tx.clone(),
            resize: Resize::new(),
        });
        let handles = (0..if inline.is_some() { 0 } else { workers })
            .map(|_| {
                let (job_rx, res_tx, work) = (job_rx.clone(), res_tx.clone(), work.clone());
                std::thread::spawn(move || worker(work, job_rx, res_tx))
            })
            .collect();
        let issued = self.prefetch.min(batches.len());
        for b in 0..issued {
            issue(&job_tx, b, batches[b].len(), workers);
        }
        EpochIter {
            batches,
            workers,
            inline,
            job_tx: Some(job_tx),
            results: res_rx,
            pending: BTreeMap::new(),
            next: 0,
            issued,
            handles,
            cancel,
            done: false,
            skipped: Vec::new(),
            start,
            delivered: 0,
            world: self.sampler.world_size.max(1),
            len: self.sampler.len,
        }
    }
}

/// Queues batch `batch` of `len` samples as one chunk per worker.
fn issue(jobs: &Sender<Job>, batch: usize, len: usize, workers: usize) {
    let chunk = len.div_ceil(workers.max(1)).max(1);
    for start in (0..len).step_by(chunk) {
        // The workers hold the receiver until the iterator drops the sender.
        let _ = jobs.send(Job {
            batch,
            range: start..(start + chunk).min(len),
        });
    }
}

fn batches_len(batches: &[Vec<usize>]) -> usize {
    batches.iter().map(|b| b.len()).sum()
}

/// Work for a worker: slots `range` of batch `batch` (a batch is shared among the workers in
/// chunks, so that none idles while a batch remains to be built).
struct Job {
    batch: usize,
    range: std::ops::Range<usize>,
}

type Done = (usize, Result<Batch, LoadError>);

/// What a slot's sample became: its image (or TTA views), or why it has none.
type SlotOut = Result<Vec<RgbImage>, LoadError>;

/// The slots of the batches being built, filled chunk by chunk; the worker that fills a batch's
/// last slot finishes it.
type Assembly = Mutex<BTreeMap<usize, Vec<Option<SlotOut>>>>;

/// Everything a worker needs for one epoch.
struct EpochWork {
    shared: Arc<Shared>,
    epoch: u64,
    /// Epoch batch number of `batches[0]`.
    cursor: usize,
    /// Batch number of `batches[0]` in the epoch's steps (also after a resume by position).
    first: usize,
    batches: Arc<Vec<Vec<usize>>>,
    assembly: Assembly,
    cancel: Arc<AtomicBool>,
}

fn worker(w: Arc<EpochWork>, jobs: Receiver<Job>, results: Sender<Done>) {
    let mut resize = Resize::new();
    pool::enter(w.shared.images.clone());
    for job in jobs {
        if w.cancel.load(Ordering::Relaxed) || !run_job(&w, job, &mut resize, &results) {
            break;
        }
    }
}

/// Builds the slots of `job`; the job that fills its batch's last slot finishes the batch and
/// sends it. False when the consumer has gone.
fn run_job(w: &EpochWork, job: Job, resize: &mut Resize, results: &Sender<Done>) -> bool {
    let shared = &w.shared;
    let indices = &w.batches[job.batch];
    let outs: Vec<SlotOut> = indices[job.range.clone()]
        .iter()
        .map(|&i| build_slot(w, job.batch, i, resize))
        .collect();
    // A poisoned lock still holds whole slots (nothing panics while it is held).
    let complete = {
        let mut a = w.assembly.lock().unwrap_or_else(|p| p.into_inner());
        let slots = a
            .entry(job.batch)
            .or_insert_with(|| (0..indices.len()).map(|_| None).collect());
        for (slot, out) in job.range.clone().zip(outs) {
            slots[slot] = Some(out);
        }
        if slots.iter().all(Option::is_some) {
            a.remove(&job.batch)
        } else {
            None
        }
    };
    let Some(slots) = complete else { return true };
    let slots = slots.into_iter().map(|s| s.expect("filled")).collect();
    let out = guarded(w.cursor + job.batch, || {
        finish_batch(
            shared,
            (w.epoch, w.first + job.batch),
            indices,
            slots,
            resize,
        )
    })
    .map_err(|e| match e {
        LoadError::BatchFailed { count, first, .. } => LoadError::BatchFailed {
            batch: w.cursor + job.batch,
            count,
            first,
        },
        e => e,
    });
    results.send((job.batch, out)).is_ok()
}

/// With no worker threads (`workers(0)`): the epoch's work, done in the consumer's thread as it
/// asks for each batch.
struct Inline {
    work: Arc<EpochWork>,
    jobs: Receiver<Job>,
    results: Sender<Done>,
    resize: Resize,
}

impl Inline {
    /// Runs the next queued job; false when none is queued.
    fn step(&mut self) -> bool {
        let Ok(job) = self.jobs.try_recv() else {
            return false;
        };
        let before = pool::swap(Some(self.work.shared.images.clone()));
        run_job(&self.work, job, &mut self.resize, &self.results);
        pool::swap(before);
        true
    }
}

/// `f`, with a panic turned into [`LoadError::WorkerPanic`] for batch `batch`.
fn guarded<T>(batch: usize, f: impl FnOnce() -> Result<T, LoadError>) -> Result<T, LoadError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let message = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(LoadError::WorkerPanic { batch, message })
    })
}

/// Sample `index` of batch `batch`: what the loader's [`PerSample`] makes of it.
fn build_slot(w: &EpochWork, batch: usize, index: usize, resize: &mut Resize) -> SlotOut {
    if w.cancel.load(Ordering::Relaxed) {
        return Err(LoadError::Cancelled);
    }
    let shared = &w.shared;
    let at = SampleAt {
        index,
        rng_index: index,
        seed: shared.seed,
        epoch: w.epoch,
    };
    guarded(w.cursor + batch, || {
        shared
            .per_sample
            .images(shared.source.as_ref(), at, &shared.decode, resize)
    })
}

/// Collates a batch whose slots are all built. The first error (in slot order) fails the batch,
/// except that under the skip policy sample errors are replaced ([`replace_failed`]).
fn finish_batch(
    shared: &Shared,
    (epoch, number): (u64, usize),
    indices: &[usize],
    slots: Vec<SlotOut>,
    resize: &mut Resize,
) -> Result<Batch, LoadError> {
    let fatal = |e: &LoadError| matches!(e, LoadError::WorkerPanic { .. } | LoadError::Cancelled);
    let skip = shared.policy != ErrorPolicy::Fail;
    let first_error = slots
        .iter()
        .position(|s| s.as_ref().is_err_and(|e| !skip || fatal(e)));
    let mut images: Vec<Option<Vec<RgbImage>>> = Vec::with_capacity(slots.len());
    let mut failed = Vec::new();
    for (slot, out) in slots.into_iter().enumerate() {
        match out {
            Ok(views) => images.push(Some(views)),
            Err(e) if first_error == Some(slot) => return Err(e),
            Err(e) => {
                failed.push((slot, e));
                images.push(None);
            }
        }
    }
    let src = shared.source.as_ref();
    let mut labels: Vec<i64> = indices.iter().map(|&i| src.label(i) as i64).collect();
    let mut used = indices.to_vec();
    let skipped = if failed.is_empty() {
        Vec::new()
    } else if shared.policy == ErrorPolicy::Omit {
        omit_failed(src, &mut images, &mut labels, &mut used, failed)
    } else {
        let mut slots = Slots {
            indices,
            images: &mut images,
            labels: &mut labels,
            used: &mut used,
        };
        replace_failed(shared, epoch, &mut slots, failed, resize)?
    };
    let mut images: Vec<RgbImage> = images.into_iter().flatten().flatten().collect();
    let rows = float_targets(src, &used);
    let mixed = shared.mix.map(|m| {
        let key = ((shared.rank as u64) << 40) ^ number as u64;
        let mut rng = crate::rng::rng_for(shared.seed, crate::rng::stream::MIX, epoch, key);
        let (w, h) = images.first().map_or((0, 0), |i| i.dimensions());
        let p = m.sample(&mut rng, w, h);
        if let Some(p) = &p {
            apply_mix(&mut images, p);
        }
        let targets = match (&rows, &p) {
            (Some(r), Some(p)) => p.mix_rows(r, shared.classes),
            (Some(r), None) => r.clone(),
            (None, _) => m.targets(&labels, shared.classes, p.as_ref()),
        };
        (targets, p)
    });
    check_batch_memory(&images, shared.collate.dtype, number)?;
    let mut batch = Batch::collate_in(&shared.buffers, &images, labels, used, shared.collate);
    images.into_iter().for_each(|i| pool::give(i.into_raw()));
    batch.skipped = skipped;
    let (targets, p) = match mixed {
        Some((t, p)) => (Some(t), p),
        None => (rows, None),
    };
    if targets.is_some() {
        batch.targets = targets;
        batch.classes = shared.classes;
        batch.mix = p;
    }
    Ok(batch)
}

/// Under [`ErrorPolicy::Omit`]: the failed slots taken out of the batch, and listed.
fn omit_failed(
    src: &dyn Source,
    images: &mut Vec<Option<Vec<RgbImage>>>,
    labels: &mut Vec<i64>,
    used: &mut Vec<usize>,
    failed: Vec<(usize, LoadError)>,
) -> Vec<Skipped> {
    let mut skipped = Vec::with_capacity(failed.len());
    for (slot, err) in failed.into_iter().rev() {
        images.remove(slot);
        labels.remove(slot);
        let index = used.remove(slot);
        skipped.push(Skipped {
            index,
            name: src.name(index),
            reason: err.to_string(),
        });
    }
    skipped.reverse();
    skipped
}

/// Batches above this many bytes have their memory asked for before collation.
const PROBE_BATCH_BYTES: usize = 64 << 20;

/// A large batch's buffer asked for first: a failed allocation is an error naming the batch
/// and its size, never an abort of the process.
fn check_batch_memory(images: &[RgbImage], dtype: Dtype, batch: usize) -> Result<(), LoadError> {
    let values: usize = images.iter().map(|i| i.len()).sum();
    let bytes = match dtype {
        Dtype::U8 => values,
        Dtype::F32 => values.saturating_mul(4),
    };
    if bytes > PROBE_BATCH_BYTES && Vec::<u8>::new().try_reserve_exact(bytes).is_err() {
        return Err(LoadError::OutOfMemory {
            batch,
            bytes: bytes as u64,
        });
    }
    Ok(())
}

/// The multi-label or regression rows of samples `used` (none for class labels).
fn float_targets(src: &dyn Source, used: &[usize]) -> Option<Vec<f32>> {
    let width = src.target_kind().width();
    (width > 0).then(|| {
        let mut rows = vec![0f32; used.len() * width];
        for (row, &i) in rows.chunks_exact_mut(width).zip(used) {
            src.write_target(i, row);
        }
        rows
    })
}

/// A batch being built: the sampled indices, and per slot the images, label and sample used.
struct Slots<'a> {
    indices: &'a [usize],
    images: &'a mut [Option<Vec<RgbImage>>],
    labels: &'a mut [i64],
    used: &'a mut [usize],
}

/// Under the skip policy: fills each failed slot with the next good sample of the batch
/// (cyclically), augmented with the failed sample's random stream, deterministic and local to
/// the batch. Returns what was skipped; a batch with no good sample is an error.
fn replace_failed(
    shared: &Shared,
    epoch: u64,
    b: &mut Slots,
    failed: Vec<(usize, LoadError)>,
    resize: &mut Resize,
) -> Result<Vec<Skipped>, LoadError> {
    let (src, indices) = (shared.source.as_ref(), b.indices);
    let failed_indices: Vec<usize> = failed.iter().map(|(slot, _)| indices[*slot]).collect();
    let mut skipped = Vec::new();
    {
        for (slot, err) in failed {
            let Some((j, aug)) =
                replacement(shared, epoch, b, &skipped, (slot, &failed_indices), resize)?
            else {
                return Err(LoadError::BatchFailed {
                    batch: 0,
                    count: failed_indices.len(),
                    first: err.to_string(),
                });
            };
            b.images[slot] = Some(aug);
            b.labels[slot] = src.label(j) as i64;
            b.used[slot] = j;
            skipped.push((
                slot,
                Skipped {
                    index: indices[slot],
                    name: src.name(indices[slot]),
                    reason: err.to_string(),
                },
            ));
        }
    }
    Ok(skipped.into_iter().map(|(_, s)| s).collect())
}

/// Samples of the whole split tried for a skipped sample once its batch has none that loads:
/// at most this many, from a place drawn from (seed, epoch, index).
const SPLIT_TRIES: usize = 64;

/// The replacement of failed slot `slot` (the dataset index used, and its images): the next
/// good sample of the batch (cyclically), augmented with the failed sample's random stream;
/// failing that, samples of the whole split from a place drawn from (seed, epoch, the failed
/// index), so the same replacement comes for any worker count and on resume. A damaged file may
/// load in its own window and fail in another: then the next candidate is tried, and if every
/// one fails so, the batch's first good sample is used with its own stream (it loaded with it).
/// None when nothing could be loaded.
fn replacement(
    shared: &Shared,
    epoch: u64,
    b: &Slots,
    skipped: &[(usize, Skipped)],
    (slot, failed): (usize, &[usize]),
    resize: &mut Resize,
) -> Result<Option<(usize, Vec<RgbImage>)>, LoadError> {
    let (src, indices, n) = (shared.source.as_ref(), b.indices, b.indices.len());
    let good: Vec<usize> = (1..n)
        .map(|k| (slot + k) % n)
        .filter(|&j| b.images[j].is_some() && !skipped_slot(skipped, j))
        .map(|j| indices[j])
        .collect();
    let len = src.len();
    let start = crate::rng::mix(
        shared.seed,
        crate::rng::stream::SKIP,
        epoch,
        indices[slot] as u64,
    );
    let split = (0..SPLIT_TRIES.min(len))
        .map(|k| (start as usize).wrapping_add(k) % len)
        .filter(|j| !failed.contains(j) && !good.contains(j));
    let make = |index: usize, rng_index: usize, resize: &mut Resize| {
        let at = SampleAt {
            index,
            rng_index,
            seed: shared.seed,
            epoch,
        };
        shared.per_sample.images(src, at, &shared.decode, resize)
    };
    for j in good.iter().copied().chain(split) {
        match make(j, indices[slot], resize) {
            Ok(aug) => return Ok(Some((j, aug))),
            Err(e @ (LoadError::WorkerPanic { .. } | LoadError::Cancelled)) => return Err(e),
            Err(_) => {}
        }
    }
    match good.first() {
        Some(&j) => Ok(Some((j, make(j, j, resize)?))),
        None => Ok(None),
    }
}

fn skipped_slot(skipped: &[(usize, Skipped)], slot: usize) -> bool {
    skipped.iter().any(|(s, _)| *s == slot)
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("source", &self.shared.source)
            .field("pipeline", &self.shared.pipeline.name)
            .field("per_sample", &self.shared.per_sample)
            .field("sampler", &self.sampler)
            .field("workers", &self.workers)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

/// The batches of one epoch, in sampler order. Dropping it stops and joins the workers.
pub struct EpochIter {
    batches: Arc<Vec<Vec<usize>>>,
    workers: usize,
    inline: Option<Inline>,
    job_tx: Option<Sender<Job>>,
    results: Receiver<Done>,
    pending: BTreeMap<usize, Result<Batch, LoadError>>,
    next: usize,
    issued: usize,
    handles: Vec<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
    done: bool,
    skipped: Vec<Skipped>,
    /// Global position (samples over all ranks) where this iterator started.
    start: usize,
    /// Samples this rank delivered.
    delivered: usize,
    world: usize,
    len: usize,
}

impl std::fmt::Debug for EpochIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochIter")
            .field("next", &self.next)
            .field("batches", &self.batches.len())
            .field("workers", &self.workers)
            .field("done", &self.done)
            .field("skipped", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

/// [`EpochIter::next_timeout`] found no batch ready in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout;

impl EpochIter {
    /// The epoch's global position after the batches delivered so far: samples of its order
    /// delivered over all ranks (ranks advance in lockstep), at most the dataset's size. What
    /// [`Loader::epoch_at`] takes to resume.
    pub fn global_position(&self) -> usize {
        (self.start + self.delivered * self.world).min(self.len)
    }

    /// As `next`, waiting at most `timeout` for the next batch (so that a caller can check for
    /// interruptions while it waits).
    pub fn next_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Option<Result<Batch, LoadError>>, Timeout> {
        // Without workers the batch is built here, now.
        let threads = self.inline.is_none();
        if threads
            && !self.done
            && self.next < self.batches.len()
            && !self.pending.contains_key(&self.next)
        {
            match self.results.recv_timeout(timeout) {
                Ok((b, r)) => {
                    self.pending.insert(b, r);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Err(Timeout),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
            }
            if !self.pending.contains_key(&self.next) {
                return Err(Timeout);
            }
        }
        Ok(self.next())
    }

    /// Samples replaced so far under the skip policy.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Number of batches this iterator delivers in all.
    pub fn total_batches(&self) -> usize {
        self.batches.len()
    }

    fn shutdown(&mut self) {
        self.done = true;
        self.inline = None;
        self.cancel.store(true, Ordering::Relaxed);
        self.job_tx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next >= self.batches.len() {
            if !self.done {
                self.shutdown();
            }
            return None;
        }
        let out = loop {
            if let Some(r) = self.pending.remove(&self.next) {
                break r;
            }
            if let Some(inline) = &mut self.inline {
                if inline.step() {
                    if let Ok((b, r)) = self.results.try_recv() {
                        self.pending.insert(b, r);
                    }
                    continue;
                }
                // Nothing queued and the batch not built: cannot happen while jobs are issued
                // ahead; end rather than wait on ourselves.
                self.inline = None;
            }
            match self.results.recv() {
                Ok((b, r)) => {
                    self.pending.insert(b, r);
                }
                Err(_) => {
                    break Err(LoadError::WorkerPanic {
                        batch: self.next,
                        message: "worker threads ended early".into(),
                    })
                }
            }
        };
        self.next += 1;
        if self.issued < self.batches.len() {
            if let Some(tx) = &self.job_tx {
                issue(
                    tx,
                    self.issued,
                    self.batches[self.issued].len(),
                    self.workers,
                );
            }
            self.issued += 1;
        }
        match &out {
            Ok(b) => {
                self.delivered += b.len();
                self.skipped.extend(b.skipped.iter().cloned());
            }
            Err(_) => self.shutdown(),
        }
        Some(out)
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.shutdown();
    }
}
