//! The loader: determinism, coverage, shards, resume, fault policies, shutdown.

mod util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use augloader::source::Payload;
use augloader::source::{ImageFolder, Source, SourceError};
use augloader::transform::Pipeline;
use augloader::{Batch, BatchData, Dtype, ErrorPolicy, Layout, LoadError, Loader};

fn folder(classes: usize, per_class: usize) -> (tempfile::TempDir, Arc<dyn Source>) {
    let d = tempfile::tempdir().unwrap();
    util::tiny_folder(d.path(), classes, per_class, 48);
    let f = ImageFolder::open(d.path()).unwrap();
    (d, Arc::new(f))
}

fn pipeline() -> Pipeline {
    Pipeline::inception_train().with_size(32)
}

fn collect(loader: &Loader, epoch: u64) -> Vec<Batch> {
    loader.epoch(epoch).map(|b| b.unwrap()).collect()
}

#[test]
fn identical_batches_for_any_workers_and_prefetch() {
    let (_d, src) = folder(3, 7);
    let reference = {
        let l = Loader::builder(src.clone(), pipeline())
            .batch_size(4)
            .workers(1)
            .prefetch(1)
            .seed(9)
            .build()
            .unwrap();
        collect(&l, 1)
    };
    // 0: no threads, each batch built in the consumer's thread.
    for (w, p) in [(2, 2), (4, 3), (3, 8), (1, 5), (0, 1), (0, 3)] {
        let l = Loader::builder(src.clone(), pipeline())
            .batch_size(4)
            .workers(w)
            .prefetch(p)
            .seed(9)
            .build()
            .unwrap();
        assert_eq!(collect(&l, 1), reference, "workers {w}, prefetch {p}");
    }
    let l = Loader::builder(src.clone(), pipeline())
        .batch_size(4)
        .workers(2)
        .seed(10)
        .build()
        .unwrap();
    assert_ne!(
        collect(&l, 1),
        reference,
        "another seed gives other batches"
    );
}

#[test]
fn every_index_once_per_epoch() {
    let (_d, src) = folder(4, 5);
    let l = Loader::builder(src.clone(), pipeline())
        .batch_size(6)
        .workers(2)
        .build()
        .unwrap();
    for epoch in 0..3 {
        let batches = collect(&l, epoch);
        assert_eq!(batches.len(), l.batches_per_epoch());
        assert_eq!(batches.last().unwrap().len(), 20 % 6);
        let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        for b in &batches {
            for (i, l) in b.indices.iter().zip(&b.labels) {
                assert_eq!(src.label(*i) as i64, *l);
            }
            assert_eq!(b.shape().unwrap()[1..], [3, 32, 32]);
        }
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
    }
    let l = Loader::builder(src, pipeline())
        .batch_size(6)
        .drop_last(true)
        .build()
        .unwrap();
    assert_eq!(collect(&l, 0).len(), 3);
}

#[test]
fn shards_partition_each_epoch() {
    let (_d, src) = folder(2, 5);
    let mut all = Vec::new();
    let mut counts = Vec::new();
    for rank in 0..3 {
        let l = Loader::builder(src.clone(), pipeline())
            .batch_size(2)
            .shard(rank, 3)
            .seed(4)
            .build()
            .unwrap();
        let idx: Vec<usize> = collect(&l, 2)
            .iter()
            .flat_map(|b| b.indices.clone())
            .collect();
        counts.push(idx.len());
        all.extend(idx);
    }
    // 10 samples over 3 ranks: 4 each, padded by 2 repeats, as DistributedSampler.
    assert_eq!(counts, [4, 4, 4]);
    all.sort();
    all.dedup();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
}

#[test]
fn resume_mid_epoch_gives_the_remaining_batches() {
    let (_d, src) = folder(3, 6);
    let l = Loader::builder(src, pipeline())
        .batch_size(4)
        .workers(2)
        .seed(3)
        .build()
        .unwrap();
    let full = collect(&l, 5);
    for cursor in [1, 3, full.len()] {
        let rest: Vec<Batch> = l.epoch_from(5, cursor).map(|b| b.unwrap()).collect();
        assert_eq!(rest, full[cursor..].to_vec(), "cursor {cursor}");
    }
}

fn with_corrupt_file() -> (tempfile::TempDir, Arc<dyn Source>, String) {
    let d = tempfile::tempdir().unwrap();
    util::tiny_folder(d.path(), 2, 6, 40);
    let bad = d.path().join("c1/003.jpg");
    std::fs::copy(util::fixture("truncated.jpg"), &bad).unwrap();
    let f = ImageFolder::open(d.path()).unwrap();
    (d, Arc::new(f), bad.display().to_string())
}

#[test]
fn fail_policy_names_the_file_then_ends() {
    let (_d, src, bad) = with_corrupt_file();
    let l = Loader::builder(src, pipeline())
        .batch_size(3)
        .workers(2)
        .shuffle(false)
        .build()
        .unwrap();
    let results: Vec<Result<Batch, LoadError>> = l.epoch(0).collect();
    // Sequential order: the bad file is index 9, in batch 3 of 4; batches 0..3 arrive first.
    assert_eq!(results.len(), 4);
    assert!(results[..3].iter().all(|r| r.is_ok()));
    let e = results[3].as_ref().unwrap_err().to_string();
    assert!(e.contains(&bad), "{e}");
}

#[test]
fn skip_policy_completes_batches_and_counts() {
    let (_d, src, bad) = with_corrupt_file();
    let run = |workers| {
        let l = Loader::builder(src.clone(), pipeline())
            .batch_size(4)
            .workers(workers)
            .on_error(ErrorPolicy::Skip)
            .seed(1)
            .build()
            .unwrap();
        let mut it = l.epoch(0);
        let batches: Vec<Batch> = it.by_ref().map(|b| b.unwrap()).collect();
        (batches, it.skipped().to_vec())
    };
    let (a, skipped) = run(1);
    assert_eq!(a.iter().map(|b| b.len()).sum::<usize>(), 12);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].name, bad);
    assert!(
        skipped[0].reason.contains("corrupt"),
        "{}",
        skipped[0].reason
    );
    let (b, _) = run(3);
    assert_eq!(a, b, "replacement is deterministic");
}

/// Evaluation's policy: the unreadable sample is left out of its batch and listed; every other
/// sample arrives once, none twice (a replacement would count one twice).
#[test]
fn omit_policy_leaves_the_sample_out_and_lists_it() {
    let (_d, src, bad) = with_corrupt_file();
    let run = |workers| {
        let l = Loader::builder(src.clone(), pipeline())
            .batch_size(4)
            .workers(workers)
            .shuffle(false)
            .on_error(ErrorPolicy::Omit)
            .build()
            .unwrap();
        let mut it = l.epoch(0);
        let batches: Vec<Batch> = it.by_ref().map(|b| b.unwrap()).collect();
        (batches, it.skipped().to_vec())
    };
    let (a, skipped) = run(1);
    let lens: Vec<usize> = a.iter().map(|b| b.len()).collect();
    assert_eq!(
        lens,
        [4, 4, 3],
        "the bad file (index 9) leaves batch 2 one short"
    );
    let seen: Vec<usize> = a.iter().flat_map(|b| b.indices.clone()).collect();
    let expected: Vec<usize> = (0..12).filter(|i| *i != 9).collect();
    assert_eq!(seen, expected);
    assert_eq!(a[2].labels.len(), 3);
    assert_eq!(a[2].shape().unwrap()[0], 3);
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0].index, skipped[0].name.as_str()),
        (9, bad.as_str())
    );
    let (b, _) = run(3);
    assert_eq!(a, b, "independent of the worker count");
}

#[test]
fn skip_replaces_a_wholly_broken_batch_from_the_split() {
    let d = tempfile::tempdir().unwrap();
    util::tiny_folder(d.path(), 2, 8, 40);
    // The first 4 samples in order (the whole first batch) are broken.
    for i in 0..4 {
        let bad = d.path().join(format!("c0/{i:03}.jpg"));
        std::fs::copy(util::fixture("truncated.jpg"), &bad).unwrap();
    }
    let src: Arc<dyn Source> = Arc::new(ImageFolder::open(d.path()).unwrap());
    let run = |workers| {
        let l = Loader::builder(src.clone(), pipeline())
            .batch_size(4)
            .workers(workers)
            .shuffle(false)
            .on_error(ErrorPolicy::Skip)
            .build()
            .unwrap();
        let mut it = l.epoch(0);
        let batches: Vec<Batch> = it.by_ref().map(|b| b.unwrap()).collect();
        (batches, it.skipped().len())
    };
    let (a, skipped) = run(1);
    assert_eq!((a.len(), skipped), (4, 4));
    assert!(a[0].indices.iter().all(|&i| i >= 4), "{:?}", a[0].indices);
    assert_eq!(run(3).0, a, "the same replacements for any worker count");
}

struct Panicky(Arc<dyn Source>);

impl Source for Panicky {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn label(&self, i: usize) -> usize {
        self.0.label(i)
    }
    fn classes(&self) -> &[String] {
        self.0.classes()
    }
    fn name(&self, i: usize) -> String {
        self.0.name(i)
    }
    fn read(&self, i: usize) -> Result<Payload, SourceError> {
        assert!(i != 5, "boom at index 5");
        self.0.read(i)
    }
}

#[test]
fn worker_panic_becomes_an_error() {
    let (_d, src) = folder(2, 5);
    let l = Loader::builder(Arc::new(Panicky(src)), pipeline())
        .batch_size(2)
        .workers(2)
        .shuffle(false)
        .build()
        .unwrap();
    let results: Vec<_> = l.epoch(0).collect();
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("an error");
    assert!(
        matches!(err, LoadError::WorkerPanic { batch: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("boom"), "{err}");
    assert!(
        results.last().unwrap().is_err(),
        "the epoch ends at the error"
    );
}

#[test]
fn dropping_mid_epoch_joins_workers_promptly() {
    // Large images and a heavy pipeline: an epoch takes far longer than the bound below.
    let d = tempfile::tempdir().unwrap();
    util::tiny_folder(d.path(), 2, 40, 600);
    let src: Arc<dyn Source> = Arc::new(ImageFolder::open(d.path()).unwrap());
    let l = Loader::builder(src, Pipeline::resnet_train())
        .batch_size(8)
        .workers(2)
        .prefetch(4)
        .build()
        .unwrap();
    let mut it = l.epoch(0);
    it.next().unwrap().unwrap();
    let t = Instant::now();
    drop(it);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "shutdown took {:?}",
        t.elapsed()
    );
}

#[test]
fn invalid_settings_are_errors() {
    let (_d, src) = folder(1, 2);
    for b in [
        Loader::builder(src.clone(), pipeline()).batch_size(0),
        Loader::builder(src.clone(), pipeline()).workers(augloader::MAX_WORKERS + 1),
        Loader::builder(src.clone(), pipeline()).shard(3, 3),
        Loader::builder(src.clone(), pipeline()).prefetch(0),
    ] {
        assert!(matches!(b.build(), Err(LoadError::Config(_))));
    }
}

#[test]
fn nhwc_batches_hold_the_nchw_pixels_channel_last() {
    let (_d, src) = folder(3, 5);
    for dtype in [Dtype::U8, Dtype::F32] {
        let batches = |layout| {
            let l = Loader::builder(src.clone(), pipeline())
                .batch_size(4)
                .workers(2)
                .seed(3)
                .dtype(dtype)
                .layout(layout)
                .build()
                .unwrap();
            assert_eq!(l.layout(), layout);
            collect(&l, 1)
        };
        let (planar, interleaved) = (batches(Layout::Nchw), batches(Layout::Nhwc));
        assert_eq!(planar.len(), interleaved.len());
        for (p, i) in planar.iter().zip(&interleaved) {
            assert_eq!(
                (p.shape(), &p.labels, &p.indices),
                (i.shape(), &i.labels, &i.indices)
            );
            assert_eq!((p.layout, i.layout), (Layout::Nchw, Layout::Nhwc));
            let [n, c, h, w] = p.shape().unwrap();
            match (&p.data, &i.data) {
                (BatchData::U8(a), BatchData::U8(b)) => assert!(same_pixels(a, b, [n, c, h, w])),
                (BatchData::F32(a), BatchData::F32(b)) => assert!(same_pixels(a, b, [n, c, h, w])),
                _ => panic!("dtype {dtype:?} not kept"),
            }
        }
    }
}

/// Element (b, ch, y, x) of the NCHW array `nchw` equals that of the NHWC array `nhwc`, for all.
fn same_pixels<T: PartialEq>(nchw: &[T], nhwc: &[T], [n, c, h, w]: [usize; 4]) -> bool {
    (0..n * c * h * w).all(|k| {
        let (b, ch, y, x) = (k / (c * h * w), k / (h * w) % c, k / w % h, k % w);
        nchw[((b * c + ch) * h + y) * w + x] == nhwc[((b * h + y) * w + x) * c + ch]
    })
}
