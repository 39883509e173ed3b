//! Sources: ImageFolder, CIFAR-10/100 binaries, CSV lists, dataset detection and their errors.

mod util;

use std::path::Path;

use augloader::decode::DecodeOptions;
use augloader::load_image;
use augloader::source::{
    open_dataset, Cifar, CifarKind, ImageFolder, ListFile, Source, SourceError, Split,
};
use util::{fixture, tiny_folder};

fn touch_image(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::copy(fixture("baseline.jpg"), p).unwrap();
}

#[test]
fn image_folder_labels_follow_sorted_class_names() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    touch_image(&r.join("zebra/1.JPG"));
    touch_image(&r.join("apple/b.png"));
    touch_image(&r.join("apple/a.jpeg"));
    touch_image(&r.join("Mango/x.WebP"));
    touch_image(&r.join("apple/.hidden.jpg"));
    touch_image(&r.join(".cache/y.jpg"));
    std::fs::write(r.join("apple/notes.txt"), "x").unwrap();
    touch_image(&r.join("apple/sub/c.bmp"));
    let f = ImageFolder::open(r).unwrap();
    // Byte order, as Python's sorted(): uppercase first.
    assert_eq!(f.classes(), ["Mango", "apple", "zebra"]);
    assert_eq!(f.len(), 5);
    let names: Vec<String> = (0..f.len()).map(|i| f.name(i)).collect();
    assert!(names
        .iter()
        .all(|n| !n.contains(".hidden") && !n.contains(".cache") && !n.ends_with(".txt")));
    let labels: Vec<usize> = (0..f.len()).map(|i| f.label(i)).collect();
    assert_eq!(labels, [0, 1, 1, 1, 2]);
}

#[test]
fn empty_class_and_empty_dataset_are_named_errors() {
    let d = tempfile::tempdir().unwrap();
    touch_image(&d.path().join("a/1.jpg"));
    std::fs::create_dir_all(d.path().join("b")).unwrap();
    let e = ImageFolder::open(d.path()).unwrap_err();
    assert!(matches!(e, SourceError::EmptyClass { .. }));
    assert!(
        e.to_string()
            .contains(&d.path().join("b").display().to_string()),
        "{e}"
    );
    // Through layout detection too: the empty class is named, not "no dataset found".
    let e = open_dataset(d.path(), Split::Train).err().unwrap();
    assert!(matches!(e, SourceError::EmptyClass { .. }), "{e}");
    // A folder of loose files: no layout, and why it is not an ImageFolder either.
    let loose = tempfile::tempdir().unwrap();
    touch_image(&loose.path().join("1.jpg"));
    let e = open_dataset(loose.path(), Split::Train).err().unwrap();
    assert!(e.to_string().contains("no dataset found"), "{e}");
    assert!(e.to_string().contains("read as one ImageFolder"), "{e}");

    let d = tempfile::tempdir().unwrap();
    let e = ImageFolder::open(d.path()).unwrap_err();
    assert!(matches!(e, SourceError::NoImages { .. }), "{e}");
    let e = ImageFolder::open(d.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn unreadable_file_error_names_it() {
    let d = tempfile::tempdir().unwrap();
    touch_image(&d.path().join("a/1.jpg"));
    std::os::unix::fs::symlink(d.path().join("nowhere.jpg"), d.path().join("a/2.jpg")).unwrap();
    let f = ImageFolder::open(d.path()).unwrap();
    let e = load_image(&f, 1, &DecodeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("2.jpg"), "{e}");
}

/// The causes below `e`, outermost first.
fn causes(e: &dyn std::error::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |c| c.source()).collect()
}

#[test]
fn an_io_error_is_the_source_of_a_read_error() {
    let d = tempfile::tempdir().unwrap();
    touch_image(&d.path().join("a/1.jpg"));
    touch_image(&d.path().join("a/2.jpg"));
    let f = ImageFolder::open(d.path()).unwrap();
    std::fs::remove_file(d.path().join("a/2.jpg")).unwrap();
    let e = load_image(&f, 1, &DecodeOptions::default()).unwrap_err();
    let io = causes(&e)
        .into_iter()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("no io::Error below {e:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("2.jpg"), "{e}");
}

#[test]
fn the_decoders_error_is_the_source_of_a_decode_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("c")).unwrap();
    std::fs::copy(fixture("corrupt.png"), d.path().join("c/corrupt.png")).unwrap();
    let f = ImageFolder::open(d.path()).unwrap();
    let e = load_image(&f, 0, &DecodeOptions::default()).unwrap_err();
    let chain = causes(&e);
    let decode = chain[0]
        .downcast_ref::<augloader::decode::DecodeError>()
        .unwrap_or_else(|| panic!("{e:?}"));
    assert!(
        matches!(decode, augloader::decode::DecodeError::Decoder(_)),
        "{decode:?}"
    );
    assert!(
        chain[1].downcast_ref::<image::ImageError>().is_some(),
        "the image crate's error under {e:?}"
    );
    assert!(e.to_string().contains("corrupt.png"), "{e}");
}

#[test]
fn bad_image_errors_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("c")).unwrap();
    for name in [
        "empty.jpg",
        "truncated.jpg",
        "corrupt.png",
        "notimage.jpg",
        "bomb.png",
    ] {
        std::fs::copy(fixture(name), d.path().join("c").join(name)).unwrap();
    }
    let f = ImageFolder::open(d.path()).unwrap();
    for i in 0..f.len() {
        let e = load_image(&f, i, &DecodeOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&f.name(i)), "{msg}");
    }
}

fn cifar_record(label: &[u8], seed: u8) -> Vec<u8> {
    let mut r = label.to_vec();
    r.extend((0..3072u32).map(|i| (i as u8).wrapping_mul(seed)));
    r
}

#[test]
fn cifar10_and_cifar100_binaries() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for b in 1..=5u8 {
        let recs: Vec<u8> = (0..3u8)
            .flat_map(|k| cifar_record(&[k + b], k + 1))
            .collect();
        std::fs::write(r.join(format!("data_batch_{b}.bin")), recs).unwrap();
    }
    std::fs::write(r.join("test_batch.bin"), cifar_record(&[9], 3)).unwrap();
    let train = open_dataset(r, Split::Train).unwrap();
    assert_eq!(train.len(), 15);
    assert_eq!(train.label(0), 1);
    assert_eq!(train.label(14), 7);
    assert_eq!(train.classes()[9], "truck");
    let img = load_image(train.as_ref(), 1, &DecodeOptions::default()).unwrap();
    // Planes R, G, B: pixel 5's red is byte 5, green byte 1024 + 5, blue 2048 + 5 (times seed 2).
    assert_eq!(
        img.get_pixel(5, 0).0,
        [10, ((1029u32 * 2) % 256) as u8, ((2053u32 * 2) % 256) as u8]
    );
    assert!(train.name(4).ends_with("data_batch_2.bin#1"));
    assert_eq!(open_dataset(r, Split::Val).unwrap().len(), 1);

    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    std::fs::write(
        r.join("train.bin"),
        [cifar_record(&[3, 77], 1), cifar_record(&[19, 99], 1)].concat(),
    )
    .unwrap();
    std::fs::write(r.join("test.bin"), cifar_record(&[0, 5], 1)).unwrap();
    let fine = open_dataset(r, Split::Train).unwrap();
    assert_eq!(
        (
            fine.len(),
            fine.label(0),
            fine.label(1),
            fine.classes().len()
        ),
        (2, 77, 99, 100)
    );
    let coarse = Cifar::open(r, CifarKind::Cifar100Coarse, true).unwrap();
    assert_eq!(
        (coarse.label(0), coarse.label(1), coarse.classes().len()),
        (3, 19, 20)
    );
}

#[test]
fn cifar_label_out_of_range_is_named_as_such() {
    let d = tempfile::tempdir().unwrap();
    let recs = [cifar_record(&[1], 1), cifar_record(&[12], 1)].concat();
    std::fs::write(d.path().join("test_batch.bin"), &recs).unwrap();
    let e = Cifar::open(d.path(), CifarKind::Cifar10, false).unwrap_err();
    assert!(
        matches!(
            e,
            SourceError::BadCifarLabel {
                record: 1,
                label: 12,
                classes: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("test_batch.bin"), "{e}");
}

#[test]
fn cifar_with_partial_record_is_an_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let mut rec = cifar_record(&[1], 1);
    rec.extend([0u8; 100]);
    std::fs::write(d.path().join("test_batch.bin"), &rec).unwrap();
    let e = Cifar::open(d.path(), CifarKind::Cifar10, false).unwrap_err();
    assert!(matches!(e, SourceError::BadCifarLength { .. }));
    assert!(e.to_string().contains("test_batch.bin"), "{e}");
}

#[test]
fn csv_list_relative_paths_and_escapes() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("ds");
    touch_image(&r.join("img/a.jpg"));
    touch_image(&d.path().join("outside.jpg"));
    std::fs::write(
        r.join("list.csv"),
        "path,label\nimg/a.jpg,2\n\n# comment\n./img/../img/a.jpg, 0\n",
    )
    .unwrap();
    let l = ListFile::open(&r.join("list.csv"), false).unwrap();
    assert_eq!(
        (l.len(), l.label(0), l.label(1), l.classes().len()),
        (2, 2, 0, 3)
    );
    load_image(&l, 1, &DecodeOptions::default()).unwrap();

    std::fs::write(r.join("escape.csv"), "img/a.jpg,1\n../outside.jpg,0\n").unwrap();
    let e = ListFile::open(&r.join("escape.csv"), false).unwrap_err();
    assert!(matches!(e, SourceError::OutsideRoot { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("escape.csv:2"), "{e}");
    let l = ListFile::open(&r.join("escape.csv"), true).unwrap();
    load_image(&l, 1, &DecodeOptions::default()).unwrap();

    std::fs::write(r.join("bad.csv"), "img/a.jpg,cat\n").unwrap();
    let e = ListFile::open(&r.join("bad.csv"), false).unwrap_err();
    assert!(
        e.to_string().contains("bad.csv:1") && e.to_string().contains("cat"),
        "{e}"
    );
    std::fs::write(r.join("empty.csv"), "path,label\n").unwrap();
    assert!(matches!(
        ListFile::open(&r.join("empty.csv"), false),
        Err(SourceError::NoImages { .. })
    ));
}

#[test]
fn dataset_layouts_are_detected() {
    let d = tempfile::tempdir().unwrap();
    tiny_folder(&d.path().join("train"), 3, 2, 20);
    tiny_folder(&d.path().join("val"), 3, 1, 20);
    assert_eq!(open_dataset(d.path(), Split::Train).unwrap().len(), 6);
    assert_eq!(open_dataset(d.path(), Split::Val).unwrap().len(), 3);
    // A folder that is itself an ImageFolder.
    assert_eq!(
        open_dataset(&d.path().join("train"), Split::Val)
            .unwrap()
            .len(),
        6
    );
    let e = open_dataset(&d.path().join("nope"), Split::Train)
        .err()
        .unwrap();
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn shared_corpus_loads_completely() {
    let Some(root) = util::corpus() else {
        eprintln!("../shared/bench/corpus not present; skipped");
        return;
    };
    let f = ImageFolder::open(&root).unwrap();
    assert_eq!(f.len(), 600);
    assert_eq!(f.classes().len(), 10);
    for i in 0..f.len() {
        let img = load_image(&f, i, &DecodeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(img.width() > 0 && img.height() > 0);
    }
}

#[test]
fn an_image_past_path_max_is_named_not_left_out() {
    let d = tempfile::tempdir().unwrap();
    let class = d.path().join("c");
    touch_image(&class.join("near.jpg"));
    // 20 nested folders of 250 bytes: past PATH_MAX (4096), made with relative steps.
    let name = "d".repeat(250);
    let script = format!(
        "cd '{}' && for i in $(seq 20); do mkdir {name} && cd -P {name} || exit 1; done && cp '{}' deep.jpg",
        class.display(),
        util::fixture("baseline.jpg").display()
    );
    let ok = std::process::Command::new("sh")
        .args(["-c", &script])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let e = ImageFolder::open(d.path()).unwrap_err().to_string();
    assert!(
        e.contains(&name) && e.to_lowercase().contains("too long"),
        "{e}"
    );
}

#[test]
fn fingerprints_tell_apart_names_that_differ_in_bytes_that_are_not_utf8() {
    use augloader::source::{fingerprint_of, Fingerprint};
    use std::os::unix::ffi::OsStrExt;
    let print = |byte: u8| {
        let d = tempfile::tempdir().unwrap();
        touch_image(&d.path().join("c").join(std::ffi::OsStr::from_bytes(&[
            b'a', byte, b'.', b'j', b'p', b'g',
        ])));
        fingerprint_of(&ImageFolder::open(d.path()).unwrap(), Fingerprint::Samples)
    };
    assert_ne!(print(0xe9), print(0xe8));
    assert_eq!(
        print(0xe9),
        print(0xe9),
        "and do not depend on where the folder is"
    );
}
