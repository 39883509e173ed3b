//! Mutation tests of every parser of outside bytes: real files (JPEG, restart-interval JPEG,
//! progressive JPEG, PNG, 16-bit PNG, WebP, GIF, BMP, a tar shard and its index, a CSV list)
//! cut short, with bytes flipped, and with length fields set to extreme values, by a seeded
//! mutator. Every case must end in a value or an error: no panic, no case over a few seconds,
//! and no allocation peak above a bound (a counting allocator watches this test binary).
//!
//! `AUGLOADER_MUTATIONS=N` sets the cases per file (default 150; the closing numbers of a
//! longer run go in the notes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use augloader::decode::{decode_rgb8, DecodeOptions};
use augloader::rng::sample_rng;
use augloader::sample::augment_encoded;
use augloader::source::{ListFile, TarShards};
use augloader::transform::{Pipeline, Resize};
use augloader::Source;

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Most bytes one case may hold at once beyond what was live before it: the decode limit below
/// (4 megapixels, a 16-bit RGBA intermediate at most) with room for the pipeline's buffers.
const CASE_BYTES: usize = 160 << 20;
const CASE_TIME: Duration = Duration::from_secs(5);

fn cases() -> usize {
    std::env::var("AUGLOADER_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

/// One mutation of `bytes`: a cut, flipped bytes, an extreme 16- or 32-bit field, or a
/// duplicated or deleted run.
fn mutate(bytes: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    let mut m = bytes.to_vec();
    let n = m.len().max(1);
    match rng.random_range(0..5) {
        0 => m.truncate(rng.random_range(0..n)),
        1 => {
            for _ in 0..rng.random_range(1..9) {
                let i = rng.random_range(0..n).min(m.len().saturating_sub(1));
                if let Some(b) = m.get_mut(i) {
                    *b ^= 1 << rng.random_range(0..8);
                }
            }
        }
        2 | 3 => {
            let width = if rng.random_bool(0.5) { 2 } else { 4 };
            let values: [u32; 5] = [0, 1, 0x7FFF, 0xFFFF, u32::MAX];
            let v = values[rng.random_range(0..values.len())].to_be_bytes();
            let at = rng.random_range(0..n);
            for (k, b) in v[4 - width..].iter().enumerate() {
                if let Some(x) = m.get_mut(at + k) {
                    *x = *b;
                }
            }
        }
        _ => {
            let at = rng.random_range(0..n).min(m.len());
            let len = rng.random_range(1..64).min(m.len() - at);
            if rng.random_bool(0.5) {
                let run: Vec<u8> = m[at..at + len].to_vec();
                m.splice(at..at, run);
            } else {
                m.drain(at..at + len);
            }
        }
    }
    m
}

/// One test at a time: the allocation counters are the process's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `case` on `cases()` mutations of `bytes`; returns how many.
fn run(name: &str, bytes: &[u8], seed: u64, case: impl Fn(&[u8])) -> usize {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = cases();
    let mut most = 0;
    for k in 0..n {
        let m = mutate(bytes, &mut rng);
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&m)));
        let (took, peak) = (t.elapsed(), PEAK.load(Ordering::Relaxed));
        assert!(outcome.is_ok(), "{name}: case {k} panicked");
        assert!(took < CASE_TIME, "{name}: case {k} took {took:?}");
        assert!(
            peak.saturating_sub(before) < CASE_BYTES,
            "{name}: case {k} held {} MiB at once",
            (peak - before) >> 20
        );
        most = most.max(peak.saturating_sub(before));
    }
    eprintln!("{name}: {n} cases, at most {} KiB held at once", most >> 10);
    n
}

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

/// Model files (safetensors with augloader's metadata), as `eval --checkpoint` and
/// `train --init-from` read them.
#[cfg(feature = "torch")]
#[test]
fn model_files_survive_mutations() {
    use augloader::train::checkpoint;
    use augloader::train::meta::ModelMeta;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("m.safetensors");
    let tensors = vec![
        (
            "conv.weight".to_string(),
            tch::Tensor::ones([4, 3, 3, 3], tch::kind::FLOAT_CPU),
        ),
        (
            "fc.bias".to_string(),
            tch::Tensor::zeros([10], tch::kind::FLOAT_CPU),
        ),
    ];
    let meta = std::collections::HashMap::from([(
        "augloader.model".to_string(),
        "{\"model\": \"resnet8\"}".to_string(),
    )]);
    checkpoint::write(&path, &tensors, Some(meta)).unwrap();
    let honest = std::fs::read(&path).unwrap();
    let t = Instant::now();
    let total = run("model file", &honest, 31, |m| {
        std::fs::write(&path, m).unwrap();
        if let Ok((_, meta)) = checkpoint::read(&path) {
            let _ = ModelMeta::from_metadata(&path, &meta);
        }
    });
    eprintln!("model files: {total} mutations in {:?}", t.elapsed());
}
