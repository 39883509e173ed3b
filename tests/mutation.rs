//! Mutation tests of every parser of outside bytes: real files (JPEG, restart-interval JPEG,
//! progressive JPEG, PNG, 16-bit PNG, WebP, GIF, BMP, a tar shard and its index, a CSV list)
//! cut short, with bytes flipped, and with length fields set to extreme values, by a seeded
//! mutator. Every case must end in a value or an error: no panic, no case over a few seconds,
//! and no allocation peak above a bound (a counting allocator watches this test binary).
//!
//! `AUGLOADER_MUTATIONS=N` sets the cases per file (default 150; the closing numbers of a
//! longer run go in the notes).

mod mutate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use mutate::run;

use augloader::augment_encoded;
use augloader::decode::{decode_rgb8, DecodeOptions};
use augloader::rng::sample_rng;
use augloader::source::Source;
use augloader::source::{ListFile, TarShards};
use augloader::transform::{Pipeline, Resize};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn opts() -> DecodeOptions {
    DecodeOptions {
        max_pixels: 1 << 22,
        ..DecodeOptions::default()
    }
}

/// Decoding whole and augmenting (header, window decode, transforms) end in a value or an error.
fn decode_case(pipeline: &Pipeline) -> impl Fn(&[u8]) + '_ {
    move |m: &[u8]| {
        let _ = decode_rgb8(m, &opts());
        let mut rng = sample_rng(3, 0, 7);
        let _ = augment_encoded(m, pipeline, &mut rng, &opts(), &mut Resize::new());
    }
}

#[test]
fn image_decoders_survive_mutations() {
    let pipeline = Pipeline::resnet_train().with_size(64);
    let mut files: Vec<(String, Vec<u8>)> = [
        "baseline.jpg",
        "progressive.jpg",
        "gray.jpg",
        "cmyk.jpg",
        "rgb.png",
        "rgb16.png",
        "rgba.png",
        "lossy.webp",
        "image.gif",
        "rgb.bmp",
    ]
    .iter()
    .map(|n| (n.to_string(), fixture(n)))
    .collect();
    if let Ok(r) = augloader::decode::add_restart_markers(&fixture("baseline.jpg"), 1) {
        files.push(("restart-interval jpeg".into(), r));
    }
    let t = Instant::now();
    let mut total = 0;
    for (k, (name, bytes)) in files.iter().enumerate() {
        total += run(name, bytes, k as u64, decode_case(&pipeline));
    }
    eprintln!("image decoders: {total} mutations in {:?}", t.elapsed());
}

/// A shard of two samples (JPEG + class, PNG + JSON label) written by the tar crate.
fn shard_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("s0.jpg", fixture("baseline.jpg")),
        ("s0.cls", b"1".to_vec()),
        ("s1.png", fixture("rgb.png")),
        ("s1.json", b"{\"label\": 0}".to_vec()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// Opens `path` as shards and reads every sample.
fn read_shards(path: &Path) {
    if let Ok(s) = TarShards::open(&[path.to_path_buf()]) {
        for i in 0..s.len() {
            let _ = s.read(i);
        }
    }
}

#[test]
fn tar_shards_and_their_indexes_survive_mutations() {
    let d = tempfile::tempdir().unwrap();
    let shard = d.path().join("train-000000.tar");
    let honest = shard_bytes();
    let t = Instant::now();
    let mut total = run("tar shard", &honest, 11, |m| {
        std::fs::write(&shard, m).unwrap();
        read_shards(&shard);
    });
    // The index of the honest shard, mutated: used only if it still checks out, else rebuilt;
    // either way the samples are the shard's.
    std::fs::write(&shard, &honest).unwrap();
    let idx: PathBuf = format!("{}.idx", shard.display()).into();
    let _ = std::fs::remove_file(&idx);
    read_shards(&shard);
    let want: Vec<_> = {
        let s = TarShards::open(std::slice::from_ref(&shard)).unwrap();
        (0..s.len()).map(|i| (s.name(i), s.label(i))).collect()
    };
    let index = std::fs::read(&idx).unwrap();
    total += run("shard index", &index, 12, |m| {
        std::fs::write(&idx, m).unwrap();
        let s = TarShards::open(std::slice::from_ref(&shard)).unwrap();
        let got: Vec<_> = (0..s.len()).map(|i| (s.name(i), s.label(i))).collect();
        assert_eq!(got, want, "a damaged index was trusted");
    });
    eprintln!("shards: {total} mutations in {:?}", t.elapsed());
}

#[test]
fn csv_lists_survive_mutations() {
    let d = tempfile::tempdir().unwrap();
    for n in ["a.jpg", "b.png"] {
        std::fs::write(d.path().join(n), b"x").unwrap();
    }
    let list = d.path().join("train.csv");
    let honest = b"\xef\xbb\xbfpath,label\na.jpg,0\r\nb.png,1\n\"a.jpg\",2\n".to_vec();
    let t = Instant::now();
    let total = run("csv list", &honest, 21, |m| {
        std::fs::write(&list, m).unwrap();
        let _ = ListFile::open(&list, false);
    });
    eprintln!("csv lists: {total} mutations in {:?}", t.elapsed());
}
