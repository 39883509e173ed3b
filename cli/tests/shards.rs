//! Tar shards: `augloader shard` writes them, the source reads them with the folder's
//! guarantees, and broken shards give errors naming the shard and the key.

#[path = "../../tests/util/mod.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use augloader::source::Payload;
use augloader::source::{open_dataset, Source, Split};
use augloader::transform::Pipeline;
use augloader::{Batch, ErrorPolicy, Loader};

fn augloader() -> Command {
    Command::new(env!("CARGO_BIN_EXE_augloader"))
}

/// A synthetic dataset and its shards, written in the dataset's order.
fn dataset_and_shards() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let out = d.path().join("shards");
    util::synth(&data, 4, 9, 3, 40, 1);
    util::ok(
        augloader()
            .args(["shard", "--keep-order", "--per-shard", "7", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out),
    );
    (d, data, out)
}

fn bytes(s: &dyn Source, i: usize) -> Vec<u8> {
    match s.read(i).unwrap() {
        Payload::Encoded(b) => b,
        Payload::Rgb(_) => panic!("encoded expected"),
    }
}

#[test]
fn shards_hold_the_folder_samples_and_read_like_it() {
    let (_d, data, out) = dataset_and_shards();
    for split in [Split::Train, Split::Val] {
        let folder = open_dataset(&data, split).unwrap();
        let shards = open_dataset(&out, split).unwrap();
        assert_eq!(shards.len(), folder.len());
        assert_eq!(shards.classes(), folder.classes());
        for i in 0..folder.len() {
            assert_eq!(shards.label(i), folder.label(i));
            assert_eq!(bytes(shards.as_ref(), i), bytes(folder.as_ref(), i));
        }
    }
    // 36 training samples, 7 per shard: 6 shards; a brace pattern names them too.
    let pattern = out.join("train-{000000..000005}.tar");
    let by_pattern = open_dataset(&pattern, Split::Train).unwrap();
    assert_eq!(by_pattern.len(), 36);
    assert_eq!(open_dataset(&pattern, Split::Val).unwrap().len(), 12);
    // The index is kept beside each shard and reused, not rebuilt.
    let idx = out.join("train-000000.tar.idx");
    let written = std::fs::metadata(&idx).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    open_dataset(&out, Split::Train).unwrap();
    assert_eq!(
        std::fs::metadata(&idx).unwrap().modified().unwrap(),
        written
    );
    let missing = open_dataset(&out.join("train-{000000..000009}.tar"), Split::Train);
    let e = missing.expect_err("shard 6 is missing").to_string();
    assert!(e.contains("train-000006.tar"), "{e}");
}

fn checksum(data: &Path, workers: usize, extra: &[&str]) -> String {
    let line = util::ok(
        augloader()
            .args([
                "bench",
                "--epochs",
                "2",
                "--batch",
                "5",
                "--checksum",
                "--json",
                "--size",
                "32",
            ])
            .args(["--workers", &workers.to_string(), "--data"])
            .arg(data)
            .args(extra),
    );
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    v["checksum"].as_str().unwrap().to_string()
}

#[test]
fn checksums_equal_across_worker_counts_and_match_the_folder() {
    let (_d, data, out) = dataset_and_shards();
    let one = checksum(&out, 1, &[]);
    assert_eq!(checksum(&out, 3, &[]), one);
    // Same samples in the same order as the folder: the same batches.
    assert_eq!(checksum(&data, 2, &[]), one);
}

fn collect(it: augloader::EpochIter) -> Vec<Batch> {
    it.map(|b| b.unwrap()).collect()
}

#[test]
fn resume_mid_epoch_on_shards_equals_uninterrupted() {
    let (_d, _data, out) = dataset_and_shards();
    let src = open_dataset(&out, Split::Train).unwrap();
    let loader = Loader::builder(src, Pipeline::inception_train().with_size(24))
        .batch_size(4)
        .workers(2)
        .seed(3)
        .build()
        .unwrap();
    let all = collect(loader.epoch(1));
    let mut it = loader.epoch(1);
    let first: Vec<Batch> = it.by_ref().take(3).map(|b| b.unwrap()).collect();
    let position = it.global_position();
    drop(it);
    let rest = collect(loader.epoch_at(1, position));
    assert_eq!([first, rest].concat(), all);
}

/// Copies the shards of `out` to a fresh folder.
fn copy_shards(out: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "tar") || p.ends_with("classes.txt") {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn truncated_shard_names_the_shard_and_key_and_skip_lists_it() {
    let (d, _data, out) = dataset_and_shards();
    let cut = d.path().join("cut");
    copy_shards(&out, &cut);
    let shard = cut.join("train-000002.tar");
    let len = std::fs::metadata(&shard).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap();
    f.set_len(len / 2).unwrap();
    let run = |extra: &[&str]| {
        augloader()
            .args([
                "bench", "--epochs", "1", "--batch", "4", "--size", "32", "--data",
            ])
            .arg(&cut)
            .args(extra)
            .output()
            .unwrap()
    };
    let failed = run(&[]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        err.contains("train-000002.tar") && err.contains("cut short"),
        "{err}"
    );
    let skipped = run(&["--on-error", "skip"]);
    let err = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{err}");
    assert!(
        err.contains("skipped 1 samples") && err.contains("train-000002.tar:"),
        "{err}"
    );
}

#[test]
fn a_shard_changed_after_indexing_is_refused() {
    let (d, _data, out) = dataset_and_shards();
    let dir = d.path().join("changed");
    copy_shards(&out, &dir);
    let src = open_dataset(&dir, Split::Train).unwrap();
    assert!(src.read(0).is_ok());
    // Another shard's bytes in its place.
    std::fs::copy(dir.join("train-000001.tar"), dir.join("train-000000.tar")).unwrap();
    let e = src.read(0).unwrap_err().to_string();
    assert!(
        e.contains("train-000000.tar") && e.contains("changed after it was indexed"),
        "{e}"
    );
    // Opened again, the shard is indexed again.
    let again = open_dataset(&dir, Split::Train).unwrap();
    assert_eq!(bytes(again.as_ref(), 0), bytes(src.as_ref(), 7));
}

/// A shard of members (name, bytes) written by the tar crate.
fn write_tar(path: &Path, members: &[(&str, &[u8])]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn samples_without_image_or_label_and_duplicate_keys_are_named() {
    let d = tempfile::tempdir().unwrap();
    let img = {
        let mut v = Vec::new();
        image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]))
            .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
            .unwrap();
        v
    };
    let shard = d.path().join("train-000000.tar");
    write_tar(
        &shard,
        &[
            ("a.png", &img),
            ("a.cls", b"1"),
            ("nolabel.png", &img),
            ("noimage.cls", b"0"),
            ("j.PNG", &img),
            ("j.json", br#"{"label": 2}"#),
            ("a.txt", b"again"),
        ],
    );
    let src: Arc<dyn Source> = open_dataset(d.path(), Split::Train).unwrap();
    assert_eq!(src.len(), 5);
    assert_eq!((src.label(0), src.label(3)), (1, 2));
    assert_eq!(src.classes(), ["0", "1", "2"]);
    let err = |i: usize| src.read(i).unwrap_err().to_string();
    assert!(
        err(1).contains("train-000000.tar: sample nolabel: no label"),
        "{}",
        err(1)
    );
    assert!(
        err(2).contains("sample noimage: no image member"),
        "{}",
        err(2)
    );
    assert!(err(4).contains("sample a: duplicate key"), "{}", err(4));
    // Under the skip policy the loader replaces them and lists them.
    let loader = Loader::builder(src, Pipeline::inception_train().with_size(8))
        .batch_size(5)
        .workers(2)
        .on_error(ErrorPolicy::Skip)
        .build()
        .unwrap();
    let mut it = loader.epoch(0);
    let batches: Vec<Batch> = it.by_ref().map(|b| b.unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), 5);
    assert_eq!(it.skipped().len(), 3);
}

#[test]
fn bad_patterns_are_errors() {
    let d = tempfile::tempdir().unwrap();
    for p in [
        "s-{5..1}.tar",
        "s-{0..x}.tar",
        "s-{0..1.tar",
        "train-000000}.tar",
        "s-{a{0..1}}.tar",
        "s-{0..999}-{0..999}-{0..9}.tar",
    ] {
        let e = open_dataset(&d.path().join(p), Split::Train).expect_err("a bad pattern");
        assert!(e.to_string().starts_with("shard pattern:"), "{e}");
    }
}

#[test]
fn a_shard_cut_at_a_member_boundary_is_detected() {
    let d = tempfile::tempdir().unwrap();
    let shard = d.path().join("train-000000.tar");
    write_tar(
        &shard,
        &[
            ("a.png", b"x"),
            ("a.cls", b"0"),
            ("b.png", b"y"),
            ("b.cls", b"0"),
        ],
    );
    // Without its two end-of-archive blocks, the shard may have held more samples.
    let len = std::fs::metadata(&shard).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap();
    f.set_len(len - 1024).unwrap();
    let src = open_dataset(d.path(), Split::Train).unwrap();
    assert_eq!(src.len(), 3);
    assert!(src.read(1).is_ok());
    let e = src.read(2).unwrap_err().to_string();
    assert!(
        e.contains("sample (after b): cut short: no end-of-archive blocks"),
        "{e}"
    );
}

/// `shard --restart-interval` re-encodes the JPEGs with restart markers and nothing else changes:
/// the batches (random crops decoded through the cut) are those of the folder, byte for byte.
#[test]
fn restart_markers_added_by_shard_keep_the_batches() {
    let d = tempfile::tempdir().unwrap();
    let (data, out) = (d.path().join("data"), d.path().join("shards"));
    util::synth(&data, 3, 8, 2, 120, 2);
    if !augloader::decode::can_add_restart_markers() {
        let o = augloader()
            .args(["shard", "--restart-interval", "2", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && e.contains("needs libjpeg-turbo"),
            "{e}"
        );
        return;
    }
    util::ok(
        augloader()
            .args(["shard", "--keep-order", "--restart-interval", "2", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out),
    );
    let (folder, shards) = (
        open_dataset(&data, Split::Train).unwrap(),
        open_dataset(&out, Split::Train).unwrap(),
    );
    let jpegs = (0..folder.len()).filter(|&i| bytes(folder.as_ref(), i).starts_with(&[0xFF, 0xD8]));
    let mut n = 0;
    for i in jpegs {
        let b = bytes(shards.as_ref(), i);
        assert!(
            b.windows(2).any(|w| w == [0xFF, 0xDD]),
            "sample {i}: no DRI"
        );
        n += 1;
    }
    assert!(n > 0, "the synthetic set holds JPEGs");
    for pipeline in ["resnet-train", "inception-train", "eval"] {
        let p = ["--pipeline", pipeline];
        assert_eq!(checksum(&out, 2, &p), checksum(&data, 1, &p), "{pipeline}");
    }
}

#[test]
fn shard_refuses_an_output_that_overlaps_its_input_and_keeps_old_shards_until_done() {
    let (d, data, out) = dataset_and_shards();
    // The shards and classes.txt (reading shards adds their .idx files).
    let listing = |p: &Path| {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(p)
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with(".idx")
            })
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&out);
    // The shards as their own input, a folder inside the input, and one holding it.
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    for (input, output) in [
        (out.clone(), out.clone()),
        (out.clone(), link.clone()),
        (data.clone(), data.join("shards")),
        (data.clone(), d.path().to_path_buf()),
    ] {
        let o = augloader()
            .args(["shard", "--overwrite", "--data"])
            .arg(&input)
            .arg("--out")
            .arg(&output)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{input:?} -> {output:?} accepted");
        assert!(String::from_utf8_lossy(&o.stderr).contains("overlap"));
    }
    assert_eq!(listing(&out), before, "the input shards changed");
    assert!(!data.join("shards").exists());
    // A write that fails (an unreadable image) leaves the old shards as they were.
    let bad = data.join("train").join(
        std::fs::read_dir(data.join("train"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name(),
    );
    let first = std::fs::read_dir(&bad)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&first, b"not an image").unwrap();
    let o = augloader()
        .args(["shard", "--overwrite", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success(), "a file that is no image was sharded");
    assert_eq!(
        listing(&out),
        before,
        "a failed write changed the old shards"
    );
}

/// A change made to an index file.
type Forgery = Box<dyn Fn(&mut serde_json::Value)>;

/// The shard's index file, as JSON.
fn index_json(shard: &Path) -> serde_json::Value {
    let idx = PathBuf::from(format!("{}.idx", shard.display()));
    serde_json::from_slice(&std::fs::read(idx).unwrap()).unwrap()
}

#[test]
fn a_shard_rewritten_with_its_old_size_and_time_is_indexed_again() {
    let (d, _data, out) = dataset_and_shards();
    let dir = d.path().join("rewritten");
    copy_shards(&out, &dir);
    let (a, b) = (dir.join("train-000000.tar"), dir.join("train-000001.tar"));
    let first = open_dataset(&dir, Split::Train).unwrap();
    let want = bytes(first.as_ref(), 7);
    // Shard 1's bytes under shard 0's name, padded to its size, with its modification time.
    let (len, mtime) = {
        let m = std::fs::metadata(&a).unwrap();
        (m.len(), m.modified().unwrap())
    };
    let mut other = std::fs::read(&b).unwrap();
    other.resize(len as usize, 0);
    std::fs::write(&a, &other).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let again = open_dataset(&dir, Split::Train).unwrap();
    assert_eq!(bytes(again.as_ref(), 0), want, "the old index was trusted");
}

#[test]
fn a_forged_or_damaged_index_is_rebuilt_not_trusted() {
    let (d, _data, out) = dataset_and_shards();
    let dir = d.path().join("forged");
    copy_shards(&out, &dir);
    let shard = dir.join("train-000000.tar");
    let honest = open_dataset(&dir, Split::Train).unwrap();
    let (n, first) = (honest.len(), bytes(honest.as_ref(), 0));
    let good = index_json(&shard);
    let forgeries: Vec<Forgery> = vec![
        // A size of 1e15, an offset past the end, a label of 2^64-1.
        Box::new(|v| v["samples"][0][1]["image"]["size"] = 1_000_000_000_000_000u64.into()),
        Box::new(|v| v["samples"][0][1]["image"]["offset"] = (u64::MAX - 3).into()),
        Box::new(|v| v["samples"][0][1]["image"]["label"] = u64::MAX.into()),
        // 1000 samples pointing at one image.
        Box::new(|v| {
            let one = v["samples"][0].clone();
            v["samples"] = (0..1000)
                .map(|k| {
                    let mut s = one.clone();
                    s[0] = format!("{k:08}").into();
                    s
                })
                .collect();
        }),
    ];
    let idx = PathBuf::from(format!("{}.idx", shard.display()));
    for forge in forgeries {
        let mut v = good.clone();
        forge(&mut v);
        std::fs::write(&idx, serde_json::to_vec(&v).unwrap()).unwrap();
        let src = open_dataset(&dir, Split::Train).unwrap();
        assert_eq!((src.len(), bytes(src.as_ref(), 0)), (n, first.clone()));
    }
    // Not an index at all: a folder, then garbage.
    std::fs::remove_file(&idx).unwrap();
    std::fs::create_dir(&idx).unwrap();
    assert_eq!(open_dataset(&dir, Split::Train).unwrap().len(), n);
    std::fs::remove_dir(&idx).unwrap();
    std::fs::write(&idx, b"\x00garbage").unwrap();
    assert_eq!(open_dataset(&dir, Split::Train).unwrap().len(), n);
}

#[test]
fn class_names_that_classes_txt_cannot_hold_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let jpg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/baseline.jpg");
    for (k, name) in ["cat ", " dog", "two\nlines"].into_iter().enumerate() {
        let data = d.path().join(format!("data{k}"));
        let class = data.join("train").join(name);
        std::fs::create_dir_all(&class).unwrap();
        std::fs::copy(&jpg, class.join("a.jpg")).unwrap();
        std::fs::create_dir_all(data.join("train").join("ok")).unwrap();
        std::fs::copy(&jpg, data.join("train/ok/b.jpg")).unwrap();
        let o = augloader()
            .args(["shard", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(d.path().join(format!("out{k}")))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("classes.txt"),
            "{name:?}: {err}"
        );
    }
}

#[test]
fn long_member_names_are_read_and_huge_name_records_refused() {
    let d = tempfile::tempdir().unwrap();
    let jpg = std::fs::read(util::fixture("baseline.jpg")).unwrap();
    // A key of 150 characters: the tar crate writes a GNU long-name record before the member.
    let key = format!("deep/{}", "k".repeat(150));
    let ok = d.path().join("long-000000.tar");
    write_tar(
        &ok,
        &[(&format!("{key}.jpg"), &jpg), (&format!("{key}.cls"), b"0")],
    );
    let src = open_dataset(&ok, Split::Train).unwrap();
    assert_eq!(
        (src.len(), src.name(0).ends_with(&key)),
        (1, true),
        "{}",
        src.name(0)
    );
    assert!(src.read(0).is_ok());
    // A long-name record that declares 1 GiB (a sparse file): refused from its header.
    let huge = d.path().join("huge-000000.tar");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_path("././@LongLink").unwrap();
    h.set_size(1 << 30);
    h.set_cksum();
    std::fs::write(&huge, h.as_bytes()).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(512 + (1 << 30) + 1024)
        .unwrap();
    let t = std::time::Instant::now();
    let src = open_dataset(&huge, Split::Train).unwrap();
    let e = src.read(0).unwrap_err().to_string();
    assert!(e.contains("name record of 1073741824 bytes"), "{e}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn one_shard_writer_at_a_time_and_dead_writers_leftovers_go() {
    let (_d, data, out) = dataset_and_shards();
    // Leftovers of killed runs: a staging folder and an index temporary.
    let staging = out.join(".augloader-shard-4294967.tmp");
    std::fs::create_dir_all(&staging).unwrap();
    let idx_tmp = out.join("train-000000.tar.idx.tmp4294967");
    std::fs::write(&idx_tmp, b"half").unwrap();
    let held = augloader::output::lock(&out.join(".augloader-shard.lock"), false)
        .unwrap()
        .unwrap();
    let o = augloader()
        .args(["shard", "--overwrite", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(1) && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    drop(held);
    util::ok(
        augloader()
            .args(["shard", "--overwrite", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out),
    );
    assert!(!staging.exists());
    std::fs::remove_file(out.join("train-000000.tar.idx")).ok();
    std::fs::write(&idx_tmp, b"half").unwrap();
    augloader::source::TarShards::open(&[out.join("train-000000.tar")]).unwrap();
    assert!(
        !idx_tmp.exists(),
        "rebuilding the index removes a dead writer's temporary"
    );
}

#[test]
fn processes_started_together_share_the_default_dataset() {
    let cache = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            augloader()
                .env("AUGLOADER_CACHE", cache.path())
                .args(["bench", "--epochs", "1", "--workers", "1", "--batch", "8"])
                .args(["--pipeline", "eval", "--size", "32"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let names: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
}
