//! Hostile inputs: each case gets a clear error of its expected kind, or a documented,
//! deterministic behaviour; never a panic, an abort, a hang or a silently different result.

#[path = "../../tests/util/mod.rs"]
mod util;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_augloader");

/// Runs `augloader ARGS` with a time limit (a hang is a failure, not a stuck test).
/// Exit code, stdout and stderr.
type Outcome = (Option<i32>, String, String);

fn run(args: &[&str], cwd: Option<&Path>) -> Outcome {
    let mut c = Command::new(BIN);
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let mut child = c.spawn().unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("augloader {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a case must end with.
enum Expect {
    /// Exit 0, and stdout or stderr contains this.
    Ok(&'static str),
    /// Exit 1 or 2 (clap's usage errors), and stderr contains this.
    Err(&'static str),
}

fn check(name: &str, args: &[&str], cwd: Option<&Path>, expect: Expect) {
    let (code, out, err) = run(args, cwd);
    assert!(
        !err.contains("panicked") && code.is_some(),
        "{name}: crashed ({code:?}): {err}"
    );
    match expect {
        Expect::Ok(want) => assert!(
            code == Some(0) && (out.contains(want) || err.contains(want)),
            "{name}: expected success with `{want}`, got {code:?}\n{out}\n{err}"
        ),
        Expect::Err(want) => assert!(
            matches!(code, Some(1) | Some(2)) && err.contains(want),
            "{name}: expected an error with `{want}`, got {code:?}\n{out}\n{err}"
        ),
    }
}

/// A folder with `list.csv` next to two images, and whatever `extra` adds.
fn list_dataset(lines: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    util::tiny_folder(&d.path().join("img"), 2, 2, 40);
    std::fs::write(d.path().join("train.csv"), lines).unwrap();
    d
}

fn bench(data: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "bench",
        "--workers",
        "1",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--pipeline",
        "eval",
        "--size",
        "32",
        "--data",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(data.to_str().unwrap().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn check_bench(name: &str, data: &Path, extra: &[&str], expect: Expect) {
    let args = bench(data, extra);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    check(name, &args, None, expect);
}

#[test]
fn list_files_bound_labels_and_stay_inside_their_folder() {
    let cases: [(&str, &str, Expect); 6] = [
        (
            "huge label",
            "img/c0/000.jpg,1000000000\n",
            Expect::Err("label 1000000000 is above the maximum"),
        ),
        (
            "label that wraps",
            "img/c0/000.jpg,18446744073709551615\n",
            Expect::Err("above the maximum"),
        ),
        (
            "byte-order mark before the header",
            "\u{feff}path,label\nimg/c0/000.jpg,0\nimg/c1/000.jpg,1\n",
            Expect::Ok("2 images"),
        ),
        (
            "bare CR line ends",
            "img/c0/000.jpg,0\rimg/c0/001.jpg,0\rimg/c1/000.jpg,1\r",
            Expect::Ok("3 images"),
        ),
        (
            "negative label",
            "img/c0/000.jpg,-1\n",
            Expect::Err("not a non-negative integer"),
        ),
        (
            "a link inside that points out",
            "link/secret.jpg,0\n",
            Expect::Err("resolves outside"),
        ),
    ];
    for (name, lines, expect) in cases {
        let d = list_dataset(lines);
        let outside = tempfile::tempdir().unwrap();
        util::tiny_folder(outside.path(), 1, 1, 40);
        std::fs::rename(
            outside.path().join("c0/000.jpg"),
            outside.path().join("secret.jpg"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        check_bench(name, d.path(), &[], expect);
    }
    // The refusal names no flag that does not exist.
    let d = list_dataset("../x.jpg,0\n");
    let (_, _, err) = run(
        &bench(d.path(), &[])
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        None,
    );
    assert!(!err.contains("--allow-outside"), "{err}");
}

#[test]
fn folders_with_link_loops_fifos_and_devices_end_with_clear_errors() {
    // A link to the dataset root and one to its own folder: the scan ends, no image counts twice.
    let d = tempfile::tempdir().unwrap();
    let train = d.path().join("train");
    util::tiny_folder(&train, 3, 4, 40);
    std::os::unix::fs::symlink(&train, train.join("c0/up")).unwrap();
    std::os::unix::fs::symlink(".", train.join("c1/self")).unwrap();
    std::os::unix::fs::symlink(train.join("c2"), train.join("c0/sibling")).unwrap();
    check_bench("link loops", d.path(), &[], Expect::Ok("12 images"));

    // A FIFO named like an image: an error naming it, with fail and with skip (no hang).
    let fifo = train.join("c2/pipe.jpg");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    check_bench(
        "fifo",
        d.path(),
        &[],
        Expect::Err("pipe.jpg: not a regular file (a FIFO)"),
    );
    check_bench(
        "fifo skipped",
        d.path(),
        &["--on-error", "skip"],
        Expect::Ok("pipe.jpg: not a regular file"),
    );
    std::fs::remove_file(&fifo).unwrap();

    // A list entry linking to an endless device.
    let l = list_dataset("img/c0/000.jpg,0\nzero.jpg,0\n");
    std::os::unix::fs::symlink("/dev/zero", l.path().join("zero.jpg")).unwrap();
    // The link's target is outside the folder: refused when listed...
    check_bench(
        "device via list",
        l.path(),
        &[],
        Expect::Err("resolves outside"),
    );
    // ... and as a file of an ImageFolder, refused as a device before any byte is read.
    std::os::unix::fs::symlink("/dev/zero", train.join("c1/zero.jpg")).unwrap();
    check_bench(
        "device",
        d.path(),
        &[],
        Expect::Err("zero.jpg: not a regular file (a device)"),
    );
}

#[test]
fn numeric_flags_are_refused_with_their_name() {
    let img = util::fixture("baseline.jpg");
    let img = img.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("o.png");
    let png = png.to_str().unwrap();
    for (flag, value) in [
        ("--size", "0"),
        ("--size", "100000"),
        ("--scale-min", "0"),
        ("--lighting", "inf"),
        ("--lighting", "nan"),
        ("--jitter", "-1"),
        ("--hue", "0.7"),
        ("--flip", "2"),
        ("--cutout", "5000"),
        ("--cutout-holes", "5000"),
        ("--lighting", "-1"),
    ] {
        check(
            &format!("augment {flag} {value}"),
            &["augment", "--in", img, "--out", png, flag, value],
            None,
            Expect::Err(flag),
        );
    }
    // Zero turns Cutout off (not an error).
    check(
        "augment --cutout 0",
        &["augment", "--in", img, "--out", png, "--cutout", "0"],
        None,
        Expect::Ok("\"cutout\":[]"),
    );
    if !cfg!(feature = "torch") {
        return;
    }
    for (flag, value) in [
        ("--input-size", "0"),
        ("--label-smoothing", "2"),
        ("--lr", "-1"),
        ("--lr", "nan"),
        ("--momentum", "nan"),
        ("--epochs", "0"),
        ("--batch", "0"),
        ("--wd", "inf"),
        ("--threads", "0"),
        ("--workers", "100000"),
    ] {
        check(
            &format!("train {flag} {value}"),
            &[
                "train",
                "--quiet",
                "--out",
                out.path().to_str().unwrap(),
                flag,
                value,
            ],
            None,
            Expect::Err(flag),
        );
    }
    check(
        "eval --scales 0",
        &["eval", "--checkpoint", "x.safetensors", "--scales", "0"],
        None,
        Expect::Err("--scales"),
    );
}

#[test]
fn worker_counts_are_bounded_and_cutout_holes_parse() {
    check(
        "preview --views 20000",
        &["preview", "--out", "x.png", "--views", "20000"],
        None,
        Expect::Err("--views"),
    );
    check(
        "bench --workers 100000",
        &["bench", "--workers", "100000", "--epochs", "1"],
        None,
        Expect::Err("--workers"),
    );
    // A documented flag that once panicked in its parser.
    let img = util::fixture("baseline.jpg");
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("o.png");
    let (img, png) = (img.to_str().unwrap(), png.to_str().unwrap());
    check(
        "augment --cutout-holes 2",
        &[
            "augment",
            "--in",
            img,
            "--out",
            png,
            "--cutout",
            "8",
            "--cutout-holes",
            "2",
        ],
        None,
        Expect::Ok("\"cutout\":["),
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// Whatever values the pipeline flags get, `augment` ends with an image or an error.
    #[test]
    fn random_pipeline_flags_never_panic(
        values in proptest::collection::vec(
            prop_oneof![
                Just("0".to_string()), Just("-1".to_string()), Just("nan".to_string()),
                Just("inf".to_string()), Just("1e30".to_string()), Just("4096".to_string()),
                (0u32..600).prop_map(|v| v.to_string()),
                (0.0f64..2.0).prop_map(|v| format!("{v:.3}")),
            ],
            9,
        ),
        preset in prop_oneof![Just("resnet-train"), Just("inception-train"), Just("cifar-train"), Just("eval"), Just("cifar-eval")],
    ) {
        let flags = ["--size", "--scale-min", "--scale-max", "--jitter", "--hue", "--lighting", "--cutout", "--cutout-holes", "--flip"];
        let out = tempfile::tempdir().unwrap();
        let png = out.path().join("o.png");
        let img = util::fixture("baseline.jpg");
        let mut args: Vec<String> = vec!["augment".into(), "--in".into(), img.to_str().unwrap().into(), "--out".into(), png.to_str().unwrap().into(), "--pipeline".into(), preset.into()];
        for (f, v) in flags.iter().zip(&values) {
            args.push(f.to_string());
            args.push(v.clone());
        }
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (code, _, err) = run(&args, None);
        prop_assert!(matches!(code, Some(0..=2)) && !err.contains("panicked"), "{args:?}: {code:?} {err}");
    }
}

/// A small ImageFolder dataset with train and val splits of 32 px images.
#[cfg(feature = "torch")]
fn train_data(dir: &Path) {
    util::synth(dir, 3, 12, 4, 32, 2);
}

#[cfg(feature = "torch")]
fn train_args(data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--quiet",
        "--model",
        "resnet8",
        "--batch",
        "8",
        "--workers",
        "1",
        "--threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if extra.contains(&"--model") {
        v.drain(2..4);
    }
    v.extend(["--data".into(), data.to_str().unwrap().into()]);
    v.extend(["--out".into(), out.to_str().unwrap().into()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[cfg(feature = "torch")]
#[test]
fn runs_refuse_what_would_silently_differ() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    train_data(&data);
    let run_dir = d.path().join("run");
    let go = |extra: &[&str]| {
        let a = train_args(&data, &run_dir, extra);
        run(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), None)
    };
    // Validation classes that differ from training's.
    let odd = d.path().join("odd");
    train_data(&odd);
    let val = odd.join("val");
    let first = std::fs::read_dir(&val)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(&first, val.join("zzz")).unwrap();
    let a = train_args(&odd, &d.path().join("oddrun"), &["--epochs", "1"]);
    let (code, _, err) = run(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), None);
    assert!(
        code == Some(1) && err.contains("different classes"),
        "{err}"
    );
    // VGG on 8 px crops.
    let (code, _, err) = go(&["--model", "vgg11", "--input-size", "8", "--epochs", "1"]);
    assert!(code == Some(1) && err.contains("at least 32 px"), "{err}");

    // Two writers of one run folder: the second is refused with the first's pid.
    let a = train_args(&data, &run_dir, &["--epochs", "30"]);
    let mut first = Command::new(BIN)
        .args(&a)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !run_dir.join(".lock").is_file()
        || std::fs::read_to_string(run_dir.join(".lock"))
            .unwrap()
            .is_empty()
    {
        assert!(t.elapsed().as_secs() < 60);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, _, err) = go(&["--epochs", "1"]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        code == Some(1) && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );

    // Resume: other flags are refused; without --data, the run's own dataset is used. (The
    // killed writer may have left a checkpoint: this run replaces it.)
    let (code, _, err) = go(&["--epochs", "2", "--overwrite"]);
    assert_eq!(code, Some(0), "{err}");
    let resume = |extra: &[&str]| {
        let mut a = vec!["train", "--quiet", "--resume", run_dir.to_str().unwrap()];
        a.extend(extra);
        run(&a, None)
    };
    let (code, _, err) = resume(&["--lr", "0.5"]);
    assert!(
        code == Some(1) && err.contains("--lr with --resume"),
        "{err}"
    );
    let (code, out, err) = resume(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"epochs\":2"), "{out}");
    let other = d.path().join("other");
    util::synth(&other, 3, 13, 4, 32, 2);
    let (code, _, err) = resume(&["--data", other.to_str().unwrap()]);
    assert!(code == Some(1) && err.contains("fingerprint"), "{err}");
    outputs_never_replace_inputs(&run_dir, &data, &go);
}

/// A finished run is neither replaced by a fresh one without --overwrite nor by an output
/// pointed at it.
#[cfg(feature = "torch")]
fn outputs_never_replace_inputs(run_dir: &Path, data: &Path, go: &dyn Fn(&[&str]) -> Outcome) {
    let model = run_dir.join("model.safetensors");
    let before = std::fs::read(&model).unwrap();
    let (code, _, err) = go(&["--epochs", "1"]);
    assert!(
        code == Some(1) && err.contains("holds an earlier run"),
        "{err}"
    );
    let m = model.to_str().unwrap();
    let d = data.to_str().unwrap();
    for out in [m, run_dir.to_str().unwrap(), d] {
        let args = [
            "eval",
            "--quiet",
            "--checkpoint",
            m,
            "--data",
            d,
            "--per-image",
            out,
        ];
        let (code, _, err) = run(&args, None);
        assert!(
            code == Some(1) && err.contains("never replaces"),
            "{out}: {err}"
        );
    }
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "the model is unchanged"
    );
    let (code, _, err) = go(&["--epochs", "1", "--overwrite"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!std::fs::read_dir(run_dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp")));
}

#[test]
fn closed_stdout_ends_quietly_and_a_full_stderr_exits_1() {
    let d = list_dataset("");
    for args in [
        bench(&d.path().join("img"), &["--json"]),
        vec!["augment".into(), "--help".into()],
    ] {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // a reader that stopped (`| head -c0`)
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let status = Command::new(BIN)
            .args(["bench", "--data", "/nonexistent-data"])
            .stderr(full)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1));
    }
}

#[cfg(feature = "torch")]
#[test]
fn per_image_csv_keeps_odd_class_names_whole() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    train_data(&data);
    let odd = ["a,b", "say \"hi\"", "two\nlines"];
    for split in ["train", "val"] {
        let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(data.join(split))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for (p, new) in names.iter().zip(odd) {
            std::fs::rename(p, data.join(split).join(new)).unwrap();
        }
    }
    let run_dir = d.path().join("run");
    let a = train_args(&data, &run_dir, &["--epochs", "1"]);
    let (code, _, err) = run(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), None);
    assert_eq!(code, Some(0), "{err}");
    let csv_path = d.path().join("pred.csv");
    let (code, _, err) = run(
        &[
            "eval",
            "--quiet",
            "--data",
            data.to_str().unwrap(),
            "--checkpoint",
            run_dir.join("model.safetensors").to_str().unwrap(),
            "--per-image",
            csv_path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let mut sorted = odd.map(|c| format!("p_{c}"));
    sorted.sort();
    assert_eq!(head[4..], sorted);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|row| row.len() == 7));
}

/// Today's recipe flags: each once with a valid value (it runs) and once out of range (an error
/// naming the flag and its range).
#[test]
fn recipe_flags_take_valid_values_and_refuse_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let img = util::fixture("baseline.jpg");
    let out = dir.path().join("out.png");
    let (img, out) = (img.to_str().unwrap(), out.to_str().unwrap());
    let augment = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "augment",
            "--in",
            img,
            "--out",
            out,
            "--pipeline",
            "inception-train",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases: [(&[&str], &[&str], &str); 5] = [
        (
            &["--auto-augment", "ta-wide"],
            &["--auto-augment", "autoaugment-mnist"],
            "--auto-augment",
        ),
        (
            &["--auto-augment", "randaugment", "--ra-ops", "3"],
            &["--auto-augment", "randaugment", "--ra-ops", "17"],
            "0..=16",
        ),
        (
            &["--auto-augment", "randaugment", "--ra-magnitude", "30"],
            &["--auto-augment", "randaugment", "--ra-magnitude", "31"],
            "0..=30",
        ),
        (
            &["--random-erase", "0.5"],
            &["--random-erase", "1.5"],
            "[0, 1]",
        ),
        (
            &["--random-erase", "1", "--random-erase-value", "random"],
            &["--random-erase", "1", "--random-erase-value", "1,2"],
            "r,g,b",
        ),
    ];
    for (good, bad, says) in cases {
        let g = augment(good);
        let g: Vec<&str> = g.iter().map(String::as_str).collect();
        check(&format!("{good:?}"), &g, None, Expect::Ok("input_size"));
        let b = augment(bad);
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        check(&format!("{bad:?}"), &b, None, Expect::Err(says));
    }
    // RandAugment's settings without RandAugment, and a value without erasing.
    let b = augment(&["--ra-ops", "2"]);
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    check(
        "ra without randaugment",
        &b,
        None,
        Expect::Err("randaugment"),
    );
    let b = augment(&["--random-erase-value", "random"]);
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    check(
        "value without erasing",
        &b,
        None,
        Expect::Err("--random-erase-value"),
    );
}

/// Batch mixing flags on the loader: a valid value runs, an out-of-range one names its range.
#[test]
fn mix_flags_take_valid_values_and_refuse_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    util::synth(&data, 2, 8, 2, 40, 1);
    let d = data.to_str().unwrap();
    let bench = [
        "bench",
        "--data",
        d,
        "--epochs",
        "1",
        "--workers",
        "1",
        "--batch",
        "4",
        "--pipeline",
        "tv2-train",
        "--size",
        "32",
        "--json",
    ];
    // The switch probability matters with both kinds of mixing.
    let both = ["--mixup", "0.2", "--cutmix", "1"];
    for (flag, good, bad, says, with) in [
        ("--mixup", "0.2", "-1", "0..=100", &[][..]),
        ("--cutmix", "1.0", "101", "0..=100", &[][..]),
        ("--mix-switch-prob", "0.3", "2", "[0, 1]", &both[..]),
    ] {
        let g: Vec<&str> = bench
            .iter()
            .copied()
            .chain([flag, good])
            .chain(with.iter().copied())
            .collect();
        check(flag, &g, None, Expect::Ok("images_per_sec"));
        let b: Vec<&str> = bench.iter().copied().chain([flag, bad]).collect();
        check(flag, &b, None, Expect::Err(says));
    }
}

#[test]
fn csv_lists_with_other_targets_bench_and_refuse_what_they_cannot_read() {
    let d = list_dataset("");
    let names: Vec<String> = std::fs::read_dir(d.path().join("img/c0"))
        .unwrap()
        .map(|e| format!("img/c0/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    let list = d.path().join("reg.csv");
    std::fs::write(&list, format!("{},0.5,1\n{},2,-3\n", names[0], names[1])).unwrap();
    check_bench(
        "regression",
        &list,
        &["--targets", "regression"],
        Expect::Ok("2 images in"),
    );
    std::fs::write(&list, format!("{},0 2\n{},\n", names[0], names[1])).unwrap();
    check_bench(
        "multilabel",
        &list,
        &["--targets", "multilabel"],
        Expect::Ok("2 images in"),
    );
    std::fs::write(&list, format!("{},0.5\n{},x\n", names[0], names[1])).unwrap();
    check_bench(
        "bad value",
        &list,
        &["--targets", "regression"],
        Expect::Err("reg.csv:2"),
    );
    check_bench(
        "a folder",
        d.path(),
        &["--targets", "regression"],
        Expect::Err("not a .csv file"),
    );
    check_bench(
        "unknown",
        &list,
        &["--targets", "boxes"],
        Expect::Err("possible values"),
    );
}

#[test]
fn outputs_pointed_at_inputs_are_refused_with_nothing_changed() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    util::synth(&data, 2, 3, 1, 32, 1);
    let img = std::fs::read_dir(
        data.join("train/")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap()
    .path();
    let before = std::fs::read(&img).unwrap();
    let (i, dd) = (img.to_str().unwrap(), data.to_str().unwrap());
    for (args, says) in [
        (vec!["augment", "--in", i, "--out", i], "never replaces"),
        (vec!["shard", "--data", dd, "--out", dd], "overlap"),
        (
            vec!["preview", "--data", dd, "--out", d.path().to_str().unwrap()],
            "never replaces",
        ),
    ] {
        check(args[0], &args, None, Expect::Err(says));
    }
    assert_eq!(std::fs::read(&img).unwrap(), before);
}

#[cfg(feature = "torch")]
#[test]
fn resume_survives_another_spelling_and_working_directory() {
    let d = tempfile::tempdir().unwrap();
    train_data(&d.path().join("ds"));
    let a = train_args(Path::new("ds"), Path::new("run"), &["--epochs", "1"]);
    let (code, _, err) = run(
        &a.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        Some(d.path()),
    );
    assert_eq!(code, Some(0), "{err}");
    let run_dir = d.path().join("run");
    let r = run_dir.to_str().unwrap();
    // Another spelling of the same folder, then another working directory without --data.
    for (data, cwd) in [(Some("./ds/"), d.path()), (None, Path::new("/"))] {
        let mut args = vec!["train", "--quiet", "--resume", r];
        if let Some(data) = data {
            args.extend(["--data", data]);
        }
        let (code, out, err) = run(&args, Some(cwd));
        assert!(
            code == Some(0) && out.contains("\"epochs\":1"),
            "{data:?}: {err}"
        );
    }
    // The same samples moved elsewhere are the same dataset.
    std::fs::rename(d.path().join("ds"), d.path().join("moved")).unwrap();
    let moved = d.path().join("moved");
    let (code, _, err) = run(
        &[
            "train",
            "--quiet",
            "--resume",
            r,
            "--data",
            moved.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
}

#[cfg(feature = "torch")]
#[test]
fn paths_that_are_not_utf8_train_and_their_classes_stay_apart() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join(OsStr::from_bytes(b"da\xfft"));
    train_data(&data);
    let out = d.path().join(OsStr::from_bytes(b"r\xfeun"));
    let o = Command::new(BIN)
        .args([
            "train", "--quiet", "--model", "resnet8", "--epochs", "1", "--batch", "8",
        ])
        .args(["--workers", "1", "--threads", "1", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.join("model.safetensors").is_file());
    let o = Command::new(BIN)
        .args(["train", "--quiet", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Class folders whose names differ only in bytes that are not UTF-8.
    for (split, byte) in [("train", b'\xe9'), ("val", b'\xe8')] {
        let dir = data.join(split);
        let first = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::rename(
            &first,
            dir.join(OsStr::from_bytes(&[b'c', b'a', b'f', byte])),
        )
        .unwrap();
    }
    let o = Command::new(BIN)
        .args([
            "train",
            "--quiet",
            "--model",
            "resnet8",
            "--epochs",
            "1",
            "--overwrite",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(1) && err.contains("caf\\xe9"),
        "{err}"
    );
}

#[test]
fn check_lists_damaged_files_and_exclude_leaves_them_out() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    util::synth(&data, 2, 4, 2, 32, 1);
    let first = |split: &str| {
        let class = std::fs::read_dir(data.join(split))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::read_dir(class)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    std::fs::copy(util::fixture("truncated.jpg"), first("train")).unwrap();
    std::fs::write(first("val"), b"not an image").unwrap();
    let list = d.path().join("bad.txt");
    let dd = data.to_str().unwrap();
    let (code, out, err) = run(
        &[
            "check",
            "--quiet",
            "--data",
            dd,
            "--write-exclude",
            list.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains("2 of 12 images"), "{err}");
    let names = std::fs::read_to_string(&list).unwrap();
    assert!(
        names
            .lines()
            .all(|n| n.starts_with("train/") || n.starts_with("val/")),
        "{names}"
    );
    // Without the list a full pass fails on the damaged file; with it every other image loads.
    let bench = [
        "bench",
        "--data",
        dd,
        "--epochs",
        "1",
        "--workers",
        "1",
        "--batch",
        "3",
    ];
    check("no exclude", &bench, None, Expect::Err(".jpg"));
    let with: Vec<&str> = bench
        .iter()
        .copied()
        .chain(["--exclude", list.to_str().unwrap()])
        .collect();
    check("exclude", &with, None, Expect::Ok("excluded 1 samples"));
    // An output over the data is refused.
    let (code, _, err) = run(&["check", "--data", dd, "--write-exclude", dd], None);
    assert!(code == Some(1) && err.contains("never replaces"), "{err}");
}

/// Every file under `dir` with its bytes (what a refused command must leave as it was).
#[cfg(feature = "torch")]
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if !p.ends_with(".lock") {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Commands whose output flag names one of their inputs (`inputs`: data, run folder, model,
/// checkpoint, an image of the data), with what the refusal says.
#[cfg(feature = "torch")]
fn output_on_input_cases(inputs: [&str; 5]) -> Vec<(Vec<String>, &'static str)> {
    let [dd, rd, model, ckpt, img] = inputs;
    let quick = "--epochs 1 --quiet --model resnet8 --threads 1";
    let eval =
        |out: &str| format!("eval --quiet --checkpoint {model} --data {dd} --per-image {out}");
    let table = [
        (eval(model), "never replaces"),
        (eval(ckpt), "never replaces"),
        (eval(rd), "never replaces"),
        (eval(dd), "never replaces"),
        (
            format!("train --data {dd} --out {dd} {quick}"),
            "never replaces",
        ),
        (
            format!("train --data {dd} --out {rd} --init-from {model} --overwrite {quick}"),
            "never replaces",
        ),
        (format!("augment --in {img} --out {img}"), "never replaces"),
        (format!("preview --data {dd} --out {dd}"), "never replaces"),
        (format!("shard --data {dd} --out {dd}"), "overlap"),
        (
            format!("check --data {dd} --write-exclude {dd}"),
            "never replaces",
        ),
        (
            format!("experiment augmentation --data {dd} --out {dd}"),
            "never replaces",
        ),
        (
            format!("experiment bn --data {dd} --plot {dd}"),
            "never replaces",
        ),
        (
            format!("experiment init --data {dd} --plot {dd}"),
            "never replaces",
        ),
        (
            format!("experiment all --data {dd} --out {dd}"),
            "never replaces",
        ),
        (format!("tune --data {dd} --out {dd}"), "never replaces"),
    ];
    // The temporary folder's paths hold no spaces.
    table
        .into_iter()
        .map(|(line, says)| (line.split(' ').map(String::from).collect(), says))
        .collect()
}

#[cfg(feature = "torch")]
#[test]
fn every_output_flag_pointed_at_every_input_is_refused_with_nothing_changed() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    train_data(&data);
    let run_dir = d.path().join("run");
    let a = train_args(&data, &run_dir, &["--epochs", "1"]);
    let (code, _, err) = run(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), None);
    assert_eq!(code, Some(0), "{err}");
    let class = std::fs::read_dir(data.join("train"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let img = std::fs::read_dir(class)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (model, ckpt) = (
        run_dir.join("model.safetensors"),
        run_dir.join("checkpoint.safetensors"),
    );
    let inputs = [&data, &run_dir, &model, &ckpt, &img].map(|p| p.to_str().unwrap());
    let before = snapshot(d.path());
    for (args, says) in output_on_input_cases(inputs) {
        let words: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (code, _, err) = run(&words, None);
        assert!(
            code == Some(1) && err.contains(says),
            "{words:?}: {code:?} {err}"
        );
        assert!(snapshot(d.path()) == before, "{words:?} changed a file");
    }
}

#[test]
fn a_jpeg_declaring_more_pixels_than_memory_is_an_error_not_an_abort() {
    let d = tempfile::tempdir().unwrap();
    util::tiny_folder(&d.path().join("data"), 1, 2, 40);
    // One image's header says 65500 x 65500 (12.9 GB of RGB), decoded whole: more than the
    // 4 GiB of address space the command gets below (this aborted before, as the issue saw).
    let img = d.path().join("data/c0/000.jpg");
    let mut bytes = std::fs::read(&img).unwrap();
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xDC, 0xFF, 0xDC]);
    std::fs::write(&img, bytes).unwrap();
    let script = format!(
        "ulimit -v 4194304 && exec '{}' bench --data '{}' --epochs 1 --workers 1 --batch 1 --pipeline decode --max-pixels 10000000000",
        BIN,
        d.path().join("data").display()
    );
    let o = Command::new("sh").args(["-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("could not be allocated") && err.contains("000.jpg"),
        "{err}"
    );
}

#[cfg(feature = "torch")]
#[test]
fn a_data_value_starting_with_a_dash_stays_a_value_in_experiment_all() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let (code, _, err) = run(
        &[
            "experiment",
            "all",
            "--data=-ds",
            &format!("--out={}", out.display()),
        ],
        Some(d.path()),
    );
    assert!(
        code == Some(1) && err.contains("-ds") && !err.contains("unexpected argument"),
        "{err}"
    );
}
