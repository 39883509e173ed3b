//! Sources given as data (files with labels, images in memory) and targets beyond one class:
//! multi-label rows and regression values, through the loader with its guarantees.

mod util;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use augloader::source::{fingerprint, Samples, TargetKind, Targets};
use augloader::source::{ListFile, Source, SourceError};
use augloader::transform::Mix;
use augloader::transform::Pipeline;
use augloader::{Batch, LoadError, Loader};
use image::RgbImage;

fn pipeline() -> Pipeline {
    Pipeline::inception_train().with_size(16)
}

fn collect(l: &Loader, epoch: u64) -> Vec<Batch> {
    l.epoch(epoch).map(|b| b.unwrap()).collect()
}

/// `n` images of varied sizes whose pixels encode their index.
fn images(n: usize) -> Vec<RgbImage> {
    (0..n)
        .map(|i| {
            RgbImage::from_fn(20 + i as u32 % 5, 24, |x, y| {
                image::Rgb([i as u8, x as u8, y as u8])
            })
        })
        .collect()
}

#[test]
fn images_in_memory_with_regression_targets() {
    let n = 11;
    let values: Vec<f32> = (0..2 * n).map(|v| v as f32 * 0.5 - 3.0).collect();
    let src: Arc<dyn Source> = Arc::new(
        Samples::images(
            images(n),
            Targets::Regression {
                values: values.clone(),
                width: 2,
            },
        )
        .unwrap(),
    );
    assert_eq!(src.target_kind(), TargetKind::Regression(2));
    let build = |workers| {
        Loader::builder(src.clone(), pipeline())
            .batch_size(4)
            .workers(workers)
            .seed(3)
            .build()
            .unwrap()
    };
    let reference = collect(&build(2), 1);
    assert_eq!(collect(&build(0), 1), reference, "in the calling thread");
    let mut seen = BTreeSet::new();
    for b in &reference {
        let t = b.targets.as_ref().expect("regression rows");
        assert_eq!((b.classes, t.len()), (2, 2 * b.len()));
        for (row, &i) in t.chunks(2).zip(&b.indices) {
            assert_eq!(row, &values[2 * i..2 * i + 2], "sample {i}");
            assert!(seen.insert(i));
        }
    }
    assert_eq!(seen.len(), n);
    // Resume mid-epoch gives the remaining batches exactly.
    let l = build(2);
    assert_eq!(collect_from(&l, 1, 1), reference[1..]);
}

fn collect_from(l: &Loader, epoch: u64, cursor: usize) -> Vec<Batch> {
    l.epoch_from(epoch, cursor).map(|b| b.unwrap()).collect()
}

#[test]
fn mixed_regression_rows_follow_the_images_lambda() {
    let values: Vec<f32> = (0..8).map(|v| v as f32).collect();
    let src: Arc<dyn Source> =
        Arc::new(Samples::images(images(8), Targets::Regression { values, width: 1 }).unwrap());
    let mix = Mix {
        mixup: Some(1.0),
        cutmix: None,
        switch_prob: 0.5,
        label_smoothing: 0.0,
    };
    let l = Loader::builder(src.clone(), pipeline())
        .batch_size(4)
        .seed(1)
        .mix(mix)
        .build()
        .unwrap();
    for b in collect(&l, 0) {
        let lam = b.mix.unwrap().lam() as f32;
        let t = b.targets.unwrap();
        let y: Vec<f32> = b.indices.iter().map(|&i| i as f32).collect();
        for i in 0..4 {
            let want = lam * y[i] + (1.0 - lam) * y[(i + 3) % 4];
            assert!((t[i] - want).abs() < 1e-5, "{t:?} {y:?} {lam}");
        }
    }
    let smoothing = Loader::builder(src, pipeline())
        .mix(Mix {
            label_smoothing: 0.1,
            ..mix
        })
        .build();
    assert!(matches!(smoothing, Err(LoadError::Config(m)) if m.contains("label smoothing")));
}

#[test]
fn csv_lists_with_multilabel_and_regression_targets() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    util::tiny_folder(&r.join("img"), 1, 3, 24);
    let files: Vec<String> = std::fs::read_dir(r.join("img/c0"))
        .unwrap()
        .map(|e| format!("img/c0/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    let multi = format!(
        "path,labels\n{},0 3\n{},\n{},2;1\n",
        files[0], files[1], files[2]
    );
    std::fs::write(r.join("multi.csv"), multi).unwrap();
    let l = ListFile::open_as(&r.join("multi.csv"), false, TargetKind::MultiLabel(0)).unwrap();
    assert_eq!((l.len(), l.target_kind()), (3, TargetKind::MultiLabel(4)));
    let mut row = [0.0; 4];
    l.write_target(2, &mut row);
    assert_eq!(row, [0.0, 1.0, 1.0, 0.0]);
    let l = ListFile::open_as(&r.join("multi.csv"), false, TargetKind::MultiLabel(6)).unwrap();
    assert_eq!(l.target_kind(), TargetKind::MultiLabel(6));
    let e = ListFile::open_as(&r.join("multi.csv"), false, TargetKind::MultiLabel(3)).unwrap_err();
    assert!(
        e.to_string().contains("multi.csv") && e.to_string().contains("[0, 3]"),
        "{e}"
    );

    // Regression: as many values on every line as the header names; paths may hold commas.
    std::fs::copy(r.join(&files[0]), r.join("img/a,b.png")).unwrap();
    let reg = format!("path,x,y\n{},0.5,-1\nimg/a,b.png,2,3e-1\n", files[1]);
    std::fs::write(r.join("reg.csv"), reg).unwrap();
    let l = ListFile::open_as(&r.join("reg.csv"), false, TargetKind::Regression(0)).unwrap();
    assert_eq!(l.target_kind(), TargetKind::Regression(2));
    l.write_target(1, &mut row[..2]);
    assert_eq!(row[..2], [2.0, 0.3]);
    assert!(l.name(1).ends_with("a,b.png"));
    std::fs::write(r.join("short.csv"), format!("path,x,y\n{},0.5\n", files[1])).unwrap();
    let e = ListFile::open_as(&r.join("short.csv"), false, TargetKind::Regression(0)).unwrap_err();
    assert!(e.to_string().contains("short.csv:2"), "{e}");
    std::fs::write(r.join("nan.csv"), format!("{},nan\n", files[1])).unwrap();
    let e = ListFile::open_as(&r.join("nan.csv"), false, TargetKind::Regression(0)).unwrap_err();
    assert!(
        e.to_string().contains("nan.csv:1") && e.to_string().contains("finite"),
        "{e}"
    );
}

#[test]
fn file_lists_shard_over_ranks_once_each() {
    let d = tempfile::tempdir().unwrap();
    util::tiny_folder(d.path(), 3, 5, 24);
    let mut paths: Vec<PathBuf> = walk(d.path());
    paths.sort();
    let labels: Vec<usize> = (0..paths.len()).map(|i| i % 3).collect();
    let src: Arc<dyn Source> =
        Arc::new(Samples::files(paths.clone(), Targets::Class(labels.clone())).unwrap());
    assert_eq!(src.classes().len(), 3);
    let mut seen = Vec::new();
    for rank in 0..2 {
        let l = Loader::builder(src.clone(), pipeline())
            .batch_size(3)
            .shard(rank, 2)
            .even_shards(false)
            .build()
            .unwrap();
        for b in collect(&l, 2) {
            for (&i, &y) in b.indices.iter().zip(&b.labels) {
                assert_eq!(y as usize, labels[i]);
                seen.push(i);
            }
        }
    }
    seen.sort();
    assert_eq!(seen, (0..paths.len()).collect::<Vec<_>>());

    let e = Samples::files(paths.clone(), Targets::Class(vec![0; 3])).unwrap_err();
    assert!(
        matches!(e, SourceError::BadSamples { .. }) && e.to_string().contains("3 targets for 15"),
        "{e}"
    );
    assert!(Samples::files(vec![], Targets::Class(vec![])).is_err());
    // A missing file is named when read.
    let gone = Samples::files(vec![d.path().join("gone.jpg")], Targets::Class(vec![0])).unwrap();
    assert!(gone.read(0).unwrap_err().to_string().contains("gone.jpg"));
}

#[test]
fn fingerprints_cover_float_targets() {
    let a = Samples::images(
        images(3),
        Targets::Regression {
            values: vec![1.0, 2.0, 3.0],
            width: 1,
        },
    )
    .unwrap();
    let b = Samples::images(
        images(3),
        Targets::Regression {
            values: vec![1.0, 2.0, 4.0],
            width: 1,
        },
    )
    .unwrap();
    assert_ne!(fingerprint(&a), fingerprint(&b));
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
