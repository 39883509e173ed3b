//! Models and training: shapes, a training step of deep nets, torchvision weight interchange,
//! and crash-safe resume of `augloader train`.
#![cfg(feature = "torch")]

#[path = "../../tests/util/mod.rs"]
mod util;

use util::ok;

use std::path::Path;
use std::process::Command;

use augloader::observe::Silent;
use augloader_train::checkpoint;
use augloader_train::sgd::Sgd;
use augloader_train::trainer::{load_weights, Net};
use tch::{Device, Kind, Reduction, Tensor};

fn step_changes_weights_and_loss_is_finite(name: &str, size: i64) {
    let net = Net::new(name, 10, Device::Cpu, 0, false).unwrap();
    let mut opt = Sgd::new(net.named_trainable(), 0.9, 5e-4);
    let x = Tensor::randn([4, 3, size, size], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 3, 7, 9]);
    let before = net.vs.variables()["conv1.weight"].copy();
    let logits = net.model.forward_t(&x, true);
    assert_eq!(logits.size(), [4, 10]);
    let loss = logits.cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0);
    assert!(loss.double_value(&[]).is_finite());
    opt.zero_grad();
    loss.backward();
    opt.step(0.1);
    let after = &net.vs.variables()["conv1.weight"];
    assert!(
        (after - before).abs().max().double_value(&[]) > 0.0,
        "{name}: weights did not move"
    );
}

#[test]
fn resnet56_and_plain56_take_a_training_step() {
    for name in ["resnet56", "plain56"] {
        step_changes_weights_and_loss_is_finite(name, 32);
    }
    // 6n + 2 layers: 3 stages of 9 blocks of 2 convs, plus conv1 and fc = 56.
    let net = Net::new("resnet56", 10, Device::Cpu, 0, false).unwrap();
    let convs = net
        .vs
        .variables()
        .keys()
        .filter(|k| k.ends_with("conv1.weight") || k.ends_with("conv2.weight"))
        .count();
    assert_eq!(convs + 1, 56);
}

#[test]
fn every_model_builds_for_32_and_224_pixel_inputs() {
    for name in ["resnet18", "resnet20", "plain20", "vgg11_bn"] {
        let net = Net::new(name, 7, Device::Cpu, 0, true).unwrap();
        for s in [32, 224] {
            let x = Tensor::randn([1, 3, s, s], (Kind::Float, Device::Cpu));
            assert_eq!(
                tch::no_grad(|| net.model.forward_t(&x, false)).size(),
                [1, 7],
                "{name} at {s}"
            );
        }
    }
    assert!(Net::new("resnet21", 10, Device::Cpu, 0, false).is_err());
}

#[test]
fn initial_loss_is_close_to_ln_classes_for_every_family() {
    // The recipe's first check: a freshly initialised model predicts near-uniformly. Random
    // normalised images and labels, training mode (dropout on), 10 classes.
    tch::manual_seed(0);
    let x = Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
    for name in ["resnet20", "plain20", "resnet18", "vgg11_bn", "vgg16_bn"] {
        let net = Net::new(name, 10, Device::Cpu, 1, false).unwrap();
        let loss = tch::no_grad(|| net.model.forward_t(&x, true).cross_entropy_for_logits(&y));
        let ratio = loss.double_value(&[]) / 10f64.ln();
        assert!(
            (ratio - 1.0).abs() < 0.1,
            "{name}: initial loss {ratio:.3} ln C"
        );
    }
}

#[test]
fn dropout_only_in_training() {
    let net = Net::new("vgg11", 5, Device::Cpu, 0, false).unwrap();
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let e1 = tch::no_grad(|| net.model.forward_t(&x, false));
    let e2 = tch::no_grad(|| net.model.forward_t(&x, false));
    assert!(e1.equal(&e2), "evaluation is deterministic");
    let t1 = tch::no_grad(|| net.model.forward_t(&x, true));
    assert!(!t1.equal(&e1), "training mode applies dropout");
}

#[test]
fn kaiming_init_has_the_right_std() {
    let net = Net::new("resnet18", 1000, Device::Cpu, 3, false).unwrap();
    let v = net.vs.variables();
    let w = &v["layer3.0.conv2.weight"]; // fan_in = 256 * 3 * 3
    let std = w.std(true).double_value(&[]);
    let want = (2.0f64 / (256.0 * 9.0)).sqrt();
    assert!((std / want - 1.0).abs() < 0.02, "std {std} vs {want}");
    assert_eq!(
        v["layer3.0.bn2.weight"].mean(Kind::Float).double_value(&[]),
        1.0
    );
    assert_eq!(
        v["layer3.0.bn2.bias"]
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );
}

#[test]
fn weights_move_between_augloader_and_torchvision_both_ways() {
    let Some(py) = util::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let names = ["resnet18", "resnet50", "vgg11_bn"];
    let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    for name in names {
        let net = Net::new(name, 10, Device::Cpu, 5, false).unwrap();
        // A few training-mode passes give BN non-trivial running statistics.
        for _ in 0..3 {
            let _ = tch::no_grad(|| net.model.forward_t(&(&x * 2.0 + 0.3), true));
        }
        let logits = tch::no_grad(|| net.model.forward_t(&x, false));
        checkpoint::save_model(
            &net.vs,
            &dir.path().join(format!("{name}_ours.safetensors")),
        )
        .unwrap();
        checkpoint::write(
            &dir.path().join(format!("{name}_io.safetensors")),
            &[
                ("x".to_string(), x.shallow_clone()),
                ("logits".to_string(), logits),
            ],
            None,
        )
        .unwrap();
    }
    let script = util::repo().join("tests/replay/torchvision_models.py");
    let out = Command::new(py)
        .arg(script)
        .arg(dir.path())
        .args(names)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "augloader -> torchvision failed:\n{stdout}"
    );
    for name in names {
        let mut net = Net::new(name, 10, Device::Cpu, 99, false).unwrap();
        load_weights(&mut net, &dir.path().join(format!("{name}_tv.safetensors"))).unwrap();
        let (want, _) =
            checkpoint::read(&dir.path().join(format!("{name}_tv_logits.safetensors"))).unwrap();
        let got = tch::no_grad(|| net.model.forward_t(&x, false));
        let diff = (got - &want["logits"]).abs().max().double_value(&[]);
        eprintln!("{name}: torchvision -> augloader max abs diff {diff}");
        assert!(diff <= 1e-4, "{name}: {diff}");
    }
}

#[test]
fn loading_wrong_weights_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r20.safetensors");
    checkpoint::save_model(
        &Net::new("resnet20", 10, Device::Cpu, 0, false).unwrap().vs,
        &p,
    )
    .unwrap();
    let mut other = Net::new("resnet20", 5, Device::Cpu, 0, false).unwrap();
    let e = load_weights(&mut other, &p).unwrap_err().to_string();
    assert!(e.contains("r20.safetensors") && e.contains("fc."), "{e}");
    let mut deeper = Net::new("resnet32", 10, Device::Cpu, 0, false).unwrap();
    let e = load_weights(&mut deeper, &p).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

/// A small 32 px synthetic dataset in `dir` (DIR/train, DIR/val).
fn tiny_synth(dir: &Path, classes: usize, train_per_class: usize, val_per_class: usize) {
    util::synth(dir, classes, train_per_class, val_per_class, 32, 1);
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn kill_9_then_resume_completes_the_run() {
    let data = tempfile::tempdir().unwrap();
    tiny_synth(data.path(), 4, 40, 10);
    let run = data.path().join("run");
    let args = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_augloader"));
        c.args(["train", "--data"]).arg(data.path());
        c.args(["--model", "resnet8", "--input-size", "16", "--epochs", "12"]);
        c.args([
            "--batch",
            "16",
            "--quiet",
            "--workers",
            "1",
            "--threads",
            "1",
        ]);
        c.args(extra);
        c
    };
    let mut child = args(&["--out", run.to_str().unwrap()]).spawn().unwrap();
    // Wait for two checkpoints, then kill -9 (SIGKILL: no chance to clean up).
    let t = std::time::Instant::now();
    while metrics(&run).len() < 2 {
        assert!(t.elapsed().as_secs() < 300, "training made no progress");
        assert!(child.try_wait().unwrap().is_none(), "training ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before = metrics(&run).len();
    assert!(done_before < 12, "killed too late to test resume");
    assert!(run.join("checkpoint.safetensors").is_file());
    // The saved settings and dataset: nothing but the run folder (and the thread count).
    let stdout = ok(Command::new(env!("CARGO_BIN_EXE_augloader"))
        .args(["train", "--quiet", "--threads", "1", "--resume"])
        .arg(&run));
    let m = metrics(&run);
    // Every epoch exactly once, in order.
    let epochs: Vec<u64> = m.iter().map(|v| v["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, (0..12).collect::<Vec<_>>());
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["epochs"], 12);
    assert!(run.join("model.safetensors").is_file());
    // Bit-exact: every loss and accuracy equals an uninterrupted run's (same thread count).
    let whole = data.path().join("whole");
    let out = args(&["--out", whole.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    assert_same_run(&run, &whole);
}

/// Every epoch's numbers and every final weight of two runs are equal, bit for bit.
fn assert_same_run(a: &Path, b: &Path) {
    let exact = |m: &[serde_json::Value]| -> Vec<Vec<String>> {
        let keys = [
            "lr",
            "train_loss",
            "train_acc",
            "val_loss",
            "val_top1",
            "val_top5",
        ];
        m.iter()
            .map(|v| keys.map(|k| v[k].to_string()).to_vec())
            .collect()
    };
    assert_eq!(exact(&metrics(a)), exact(&metrics(b)));
    let (ta, _) = checkpoint::read(&a.join("model.safetensors")).unwrap();
    let (tb, _) = checkpoint::read(&b.join("model.safetensors")).unwrap();
    for (name, t) in &ta {
        assert!(t.equal(&tb[name]), "{name} differs after resume");
    }
}

#[test]
fn tta_crops_equal_torchvision_five_and_ten_crop() {
    use augloader::tta::{views, TtaConfig, TtaMode};
    let Some(py) = util::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Pixels encode their coordinates, so any shifted box shows. 341 x 256: resizing the shorter
    // side to 256 leaves it as it is, so the views are pure crops.
    let img = image::RgbImage::from_fn(341, 256, |x, y| {
        image::Rgb([(x % 256) as u8, y as u8, (x / 256 * 64 + y % 7) as u8])
    });
    img.save(dir.path().join("input.png")).unwrap();
    let mut r = augloader::transform::Resize::new();
    for (mode, name, n) in [
        (TtaMode::FiveCrop, "five", 5),
        (TtaMode::TenCrop, "ten", 10),
    ] {
        let cfg = TtaConfig {
            resize: Some(256),
            crop: Some(224),
            ..TtaConfig::from_training(
                mode,
                &augloader::transform::Pipeline::resnet_train(),
                &augloader::transform::Pipeline::eval(),
            )
        };
        let v = views(&img, &cfg, &mut r);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].len(), n);
        for (k, im) in v[0].iter().enumerate() {
            im.save(dir.path().join(format!("{name}_{k}.png"))).unwrap();
        }
    }
    let script = util::repo().join("tests/replay/torchvision_tencrop.py");
    let out = Command::new(py)
        .arg(script)
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}");
}

#[test]
fn frozen_backbone_keeps_weights_and_bn_statistics_while_the_head_learns() {
    use augloader::source::{ImageFolder, Source};
    use augloader_train::trainer::{train, Start, TrainJob, Transfer};
    use std::sync::Arc;

    let data = tempfile::tempdir().unwrap();
    tiny_synth(data.path(), 3, 16, 4);
    let tr: Arc<dyn Source> = Arc::new(ImageFolder::open(data.path().join("train")).unwrap());
    let va: Arc<dyn Source> = Arc::new(ImageFolder::open(data.path().join("val")).unwrap());
    // Pretrained weights for a 5-class task: the head must be re-initialised for 3 classes.
    let init = data.path().join("init.safetensors");
    checkpoint::save_model(
        &Net::new("resnet8", 5, Device::Cpu, 4, false).unwrap().vs,
        &init,
    )
    .unwrap();
    let config = transfer_config;
    let frozen = Transfer {
        init_from: Some(init.clone()),
        reinit_head: true,
        head_init: augloader_train::trainer::HeadInit::Kaiming,
        freeze_backbone: true,
        unfreeze_after: None,
        backbone_lr_mult: 0.1,
    };
    let run = data.path().join("frozen");
    let job = TrainJob {
        cfg: config(frozen.clone(), 2),
        train: tr.clone(),
        val: va.clone(),
        run_dir: &run,
        device: Device::Cpu,
        start: Start::Fresh,
    };
    train(job, &Silent).unwrap();
    let (before, _) = checkpoint::read(&init).unwrap();
    let (after, _) = checkpoint::read(&run.join("model.safetensors")).unwrap();
    for (name, t) in &after {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        if name.starts_with("fc.") {
            assert_eq!(t.size()[0], 3, "{name}: new head for 3 classes");
        } else {
            assert!(
                t.equal(&before[name]),
                "{name} changed under a frozen backbone"
            );
        }
    }
    // Unfreezing after one epoch moves the backbone.
    let run2 = data.path().join("unfrozen");
    let thawed = Transfer {
        unfreeze_after: Some(1),
        ..frozen
    };
    let job = TrainJob {
        cfg: config(thawed, 2),
        train: tr,
        val: va,
        run_dir: &run2,
        device: Device::Cpu,
        start: Start::Fresh,
    };
    train(job, &Silent).unwrap();
    let (after2, _) = checkpoint::read(&run2.join("model.safetensors")).unwrap();
    assert!(!after2["conv1.weight"].equal(&before["conv1.weight"]));
    assert!(!after2["bn1.running_mean"].equal(&before["bn1.running_mean"]));
}

/// A resnet8 run on 32 px images with the transfer settings `transfer`.
fn transfer_config(
    transfer: augloader_train::trainer::Transfer,
    epochs: usize,
) -> augloader_train::trainer::TrainConfig {
    use augloader::transform::Pipeline;
    use augloader_train::sgd::{LrPolicy, Schedule};
    augloader_train::trainer::TrainConfig {
        model: "resnet8".into(),
        epochs,
        batch: 8,
        lr: LrPolicy {
            base: 0.05,
            schedule: Schedule::Constant,
            warmup_epochs: 0.0,
            epochs,
        },
        momentum: 0.9,
        weight_decay: 5e-4,
        label_smoothing: 0.0,
        mix: None,
        zero_init_residual: false,
        workers: 1,
        seed: 0,
        train_pipeline: Pipeline::cifar_train(),
        val_pipeline: Pipeline::cifar_eval(),
        max_batches: 0,
        transfer,
        data_defaults: None,
        data: None,
    }
}

/// Flags of the small quick runs below.
const QUICK: [&str; 9] = [
    "--model",
    "resnet8",
    "--input-size",
    "16",
    "--batch",
    "8",
    "--quiet",
    "--workers",
    "1",
];

#[test]
fn eval_command_reports_json_and_a_per_image_csv() {
    let data = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_augloader");
    tiny_synth(data.path(), 3, 16, 5);
    let run = data.path().join("run");
    ok(Command::new(bin)
        .args(["train", "--data"])
        .arg(data.path())
        .args(QUICK)
        .args(["--epochs", "1", "--out"])
        .arg(&run));
    let csv = data.path().join("pred.csv");
    let line = ok(Command::new(bin)
        .args(["eval", "--data"])
        .arg(data.path())
        .args([
            "--model",
            "resnet8",
            "--input-size",
            "16",
            "--tta",
            "10crop",
        ])
        .args(["--json", "--quiet", "--checkpoint"])
        .arg(run.join("model.safetensors"))
        .arg("--per-image")
        .arg(&csv));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (
            v["tta"].as_str(),
            v["views_per_image"].as_u64(),
            v["images"].as_u64()
        ),
        (Some("10crop"), Some(10), Some(15))
    );
    let top1 = v["top1"].as_f64().unwrap();
    let rows: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(rows.len(), 16, "header + one row per image");
    // The CSV's predictions agree with the reported top-1.
    let correct = rows[1..]
        .iter()
        .filter(|r| {
            let f: Vec<&str> = r.split(',').collect();
            f[2] == f[3]
        })
        .count();
    assert!((correct as f64 / 15.0 - top1).abs() < 1e-9);
    eval_leaves_out_an_unreadable_image_with_skip(data.path(), &run.join("model.safetensors"));
}

/// An unreadable image: a named error, or with `--on-error skip` left out and listed (never
/// replaced: evaluation counts each image once).
fn eval_leaves_out_an_unreadable_image_with_skip(data: &Path, model: &Path) {
    let bin = env!("CARGO_BIN_EXE_augloader");
    let class = std::fs::read_dir(data.join("val"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let bad = std::fs::read_dir(&class)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&bad, b"not an image").unwrap();
    let eval = |extra: &[&str]| {
        Command::new(bin)
            .args(["eval", "--data"])
            .arg(data)
            .args(["--json", "--quiet", "--tta", "multiscale", "--checkpoint"])
            .arg(model)
            .args(extra)
            .output()
            .unwrap()
    };
    let failed = eval(&[]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success() && err.contains(&*bad.to_string_lossy()),
        "{err}"
    );
    let skipped = eval(&["--on-error", "skip"]);
    let err = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{err}");
    assert!(
        err.contains("skipped") && err.contains(&*bad.to_string_lossy()),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&skipped.stdout).unwrap();
    assert_eq!(
        (v["images"].as_u64(), v["views_per_image"].as_u64()),
        (Some(14), Some(6))
    );
    assert_eq!(v["skipped"].as_array().unwrap().len(), 1);
}

#[test]
fn tune_command_step_1_reports_the_initial_loss() {
    let data = tempfile::tempdir().unwrap();
    tiny_synth(data.path(), 3, 16, 5);
    let out = data.path().join("tune");
    let line = ok(Command::new(env!("CARGO_BIN_EXE_augloader"))
        .args(["tune", "--data"])
        .arg(data.path())
        .args(QUICK)
        .args(["--step", "1", "--out"])
        .arg(&out));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(v["initial_loss"].as_f64().unwrap().is_finite());
    assert!((v["ln_classes"].as_f64().unwrap() - 3f64.ln()).abs() < 1e-12);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## 1. Initial loss") && md.contains("ln(3)"),
        "{md}"
    );
}

/// Runs augloader with `args` then `extra`: (success, stdout trimmed, stderr).
fn run_cmd(args: &[&str], extra: &[&Path]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_augloader"))
        .args(args)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn eval_reads_the_model_file_and_matches_the_trainers_validation() {
    let data = tempfile::tempdir().unwrap();
    // 32 px square images: the defaults from the data are pad-and-crop at 32 px.
    tiny_synth(data.path(), 4, 40, 25);
    let run = data.path().join("run");
    let d = data.path();
    let (ok, out, err) = run_cmd(
        &[
            "train", "--model", "resnet8", "--epochs", "2", "--batch", "16",
        ],
        &[
            Path::new("--quiet"),
            Path::new("--workers"),
            Path::new("1"),
            Path::new("--data"),
            d,
            Path::new("--out"),
            &run,
        ],
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["input_size"], 32);
    assert_eq!(summary["train_pipeline"], "cifar-train");
    assert_eq!(summary["val_pipeline"], "cifar-eval");
    assert_eq!(summary["data_defaults"]["regime"], "small");
    let trained = summary["val_top1"].as_f64().unwrap();
    // No flag but the file: the same number as the trainer's last validation.
    for file in ["model.safetensors", "checkpoint.safetensors"] {
        let (ok, out, err) = run_cmd(
            &["eval", "--json", "--quiet", "--data"],
            &[d, Path::new("--checkpoint"), &run.join(file)],
        );
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["images"], 100);
        assert_eq!(v["top1"].as_f64().unwrap(), trained, "{file}");
    }
    let model = run.join("model.safetensors");
    eval_refuses_what_contradicts_the_file(d, &model);
    eval_takes_bare_weights_with_model(d, &model, trained);
    foreign_metadata_and_mixed_normalisation_are_refused(d, &model);
}

/// Flags that contradict the file, and another dataset's classes, are refused naming both.
fn eval_refuses_what_contradicts_the_file(d: &Path, model: &Path) {
    for (flag, value, want) in [
        ("--model", "resnet20", "holds a resnet8"),
        ("--input-size", "64", "trained at 32"),
    ] {
        let (ok, _, err) = run_cmd(
            &["eval", "--quiet", flag, value, "--data"],
            &[d, Path::new("--checkpoint"), model],
        );
        assert!(!ok && err.contains(value) && err.contains(want), "{err}");
    }
    let other = tempfile::tempdir().unwrap();
    tiny_synth(other.path(), 3, 2, 2);
    let (ok, _, err) = run_cmd(
        &["eval", "--quiet", "--data"],
        &[other.path(), Path::new("--checkpoint"), model],
    );
    assert!(
        !ok && err.contains("model.safetensors") && err.contains("4 classes, the data 3"),
        "{err}"
    );
}

/// Weights without metadata (as torchvision's) need --model; another architecture's weights
/// are refused with the file named.
fn eval_takes_bare_weights_with_model(d: &Path, model: &Path, trained: f64) {
    let bare = d.join("bare.safetensors");
    let (tensors, _) = checkpoint::read(model).unwrap();
    let tensors: Vec<(String, Tensor)> = tensors.into_iter().collect();
    checkpoint::write(&bare, &tensors, None).unwrap();
    let with = |extra: &[&str]| {
        let args: Vec<&str> = ["eval", "--quiet"].iter().chain(extra).copied().collect();
        run_cmd(
            &args,
            &[Path::new("--data"), d, Path::new("--checkpoint"), &bare],
        )
    };
    let (ok, _, err) = with(&[]);
    assert!(
        !ok && err.contains("no augloader metadata") && err.contains("--model"),
        "{err}"
    );
    let (ok, out, err) = with(&["--json", "--model", "resnet8"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["top1"].as_f64().unwrap(), trained);
    let (ok, _, err) = with(&["--model", "resnet20"]);
    assert!(
        !ok && err.contains("bare.safetensors") && err.contains("missing"),
        "{err}"
    );
}

/// Foreign metadata under our key is an error naming the file, not a panic; CIFAR's
/// normalisation for training and ImageNet's for validation is refused.
fn foreign_metadata_and_mixed_normalisation_are_refused(d: &Path, model: &Path) {
    let (tensors, _) = checkpoint::read(model).unwrap();
    let tensors: Vec<(String, Tensor)> = tensors.into_iter().collect();
    let foreign = d.join("foreign.safetensors");
    let meta = std::collections::HashMap::from([(
        augloader_train::meta::META_KEY.to_string(),
        "[1, 2]".to_string(),
    )]);
    checkpoint::write(&foreign, &tensors, Some(meta)).unwrap();
    let (ok, _, err) = run_cmd(
        &["eval", "--quiet", "--data"],
        &[d, Path::new("--checkpoint"), &foreign],
    );
    assert!(
        !ok && err.contains("foreign.safetensors: metadata"),
        "{err}"
    );
    let (ok, _, err) = run_cmd(
        &[
            "train",
            "--quiet",
            "--model",
            "resnet8",
            "--pipeline",
            "cifar-train",
        ],
        &[
            Path::new("--val-pipeline"),
            Path::new("eval"),
            Path::new("--input-size"),
            Path::new("32"),
            Path::new("--data"),
            d,
            Path::new("--out"),
            &d.join("mixed"),
        ],
    );
    assert!(!ok && err.contains("normalises"), "{err}");
}

#[test]
fn experiments_report_json_and_draw_their_pictures() {
    let data = tempfile::tempdir().unwrap();
    tiny_synth(data.path(), 3, 16, 4);
    let plot = data.path().join("init.png");
    let line = ok(Command::new(env!("CARGO_BIN_EXE_augloader"))
        .args([
            "experiment",
            "init",
            "--layers",
            "6",
            "--width",
            "16",
            "--batch",
            "4",
        ])
        .arg("--data")
        .arg(data.path())
        .arg("--plot")
        .arg(&plot));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["experiment"], "init");
    assert_eq!(v["layers"], 6);
    for init in ["small", "xavier", "kaiming"] {
        assert_eq!(v["std"][init].as_array().unwrap().len(), 6, "{init}");
    }
    // Std-0.01 weights shrink the activations layer after layer.
    let small = v["std"]["small"].as_array().unwrap();
    assert!(small[5].as_f64().unwrap() < 0.01 * small[0].as_f64().unwrap());
    assert!(plot.is_file());

    let out = data.path().join("degradation");
    let line = ok(Command::new(env!("CARGO_BIN_EXE_augloader"))
        .args([
            "experiment",
            "degradation",
            "--models",
            "plain8,resnet8",
            "--epochs",
            "1",
        ])
        .args([
            "--batch",
            "8",
            "--input-size",
            "16",
            "--workers",
            "1",
            "--quiet",
        ])
        .arg("--data")
        .arg(data.path())
        .arg("--out")
        .arg(&out));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["experiment"], "degradation");
    for key in ["train_error", "test_error"] {
        for m in ["plain8", "resnet8"] {
            let e = v[key][m].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&e), "{key} {m} {e}");
        }
    }
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    assert!(out.join("degradation.png").is_file());
    assert!(out.join("resnet8/model.safetensors").is_file());
}

/// Each claim experiment with tiny settings, and the keys its summary must hold (the issue's
/// schema, which scripts read): top-level keys, then the list of runs and each run's keys.
type Schema = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);
const CLAIMS: [(&str, &[&str], Schema); 6] = [
    (
        "bn",
        &["--epochs", "1", "--depth", "3", "--width", "4"],
        (
            "runs",
            &[],
            &["bn", "lr", "final_train_loss", "val_top1", "train_loss"],
        ),
    ),
    (
        "dropout",
        &["--epochs", "2", "--train-per-class", "4", "--hidden", "16"],
        (
            "runs",
            &["eval_scale"],
            &["p", "train_acc", "val_top1", "gap"],
        ),
    ),
    (
        "activation",
        &["--epochs", "1", "--depth", "3"],
        (
            "runs",
            &[],
            &[
                "activation",
                "grad_norm_first_layer_init",
                "grad_norm_first_layer_end",
                "final_train_loss",
            ],
        ),
    ),
    (
        "stack3x3",
        &["--epochs", "1", "--channels", "4"],
        (
            "variants",
            &[],
            &["name", "params", "receptive_field", "val_top1"],
        ),
    ),
    (
        "augmentation",
        &[
            "--epochs",
            "1",
            "--train-per-class",
            "4",
            "--tta",
            "none,flip",
        ],
        ("runs", &["tta"], &["variant", "val_top1"]),
    ),
    (
        "transfer",
        &[
            "--pretrain-epochs",
            "1",
            "--steps",
            "2",
            "--train-per-class",
            "2,0",
        ],
        (
            "runs",
            &["pretrain_val_top1"],
            &["method", "train_per_class", "val_top1"],
        ),
    ),
];

/// Asserts that the summary `v` of `name` holds every key of its schema.
fn assert_schema(name: &str, v: &serde_json::Value, (list, top, item): Schema) {
    for key in ["experiment", "seconds", "holds", list].iter().chain(top) {
        assert!(!v[key].is_null(), "{name}: no {key}: {v}");
    }
    let runs = v[list]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: {list}: {v}"));
    assert!(!runs.is_empty(), "{name}: empty {list}");
    for r in runs {
        for key in item {
            assert!(!r[key].is_null(), "{name}: {list} item without {key}: {r}");
        }
    }
}

/// The numbers of a tiny claim run that do not depend on training.
fn check_numbers(name: &str, v: &serde_json::Value) {
    match name {
        "stack3x3" => {
            // Measured from the built layers at 4 channels: 2 x 9 x 16 against 25 x 16, and
            // 3 x 9 x 16 against 49 x 16.
            let got: Vec<(String, i64, i64)> = v["variants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    let n = |k: &str| x[k].as_i64().unwrap();
                    (
                        x["name"].as_str().unwrap().to_string(),
                        n("params"),
                        n("receptive_field"),
                    )
                })
                .collect();
            let want = [
                ("3x3x2", 288, 5),
                ("5x5", 400, 5),
                ("3x3x3", 432, 7),
                ("7x7", 784, 7),
            ];
            let want: Vec<(String, i64, i64)> =
                want.iter().map(|w| (w.0.to_string(), w.1, w.2)).collect();
            assert_eq!(got, want);
        }
        "transfer" => {
            let methods: Vec<(&str, i64)> = v["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["method"].as_str().unwrap(),
                        r["train_per_class"].as_i64().unwrap(),
                    )
                })
                .collect();
            let m = ["scratch", "head", "finetune"];
            let want: Vec<(&str, i64)> = [2, 0].iter().flat_map(|&n| m.map(|x| (x, n))).collect();
            assert_eq!(methods, want);
        }
        "dropout" => {
            let s = v["eval_scale"].as_f64().unwrap();
            assert!(s.is_finite() && s > 0.0, "{s}");
        }
        _ => {}
    }
}

/// Every claim experiment, at a tiny scale: a JSON summary with a verdict and its numbers, a
/// picture, and the arms' runs (the verdicts themselves need the default budgets).
#[test]
fn claim_experiments_report_their_numbers_and_verdicts() {
    let data = tempfile::tempdir().unwrap();
    tiny_synth(data.path(), 3, 12, 4);
    let common = |name: &str| -> Vec<String> {
        let out = data.path().join(name);
        [
            "experiment",
            name,
            "--batch",
            "8",
            "--input-size",
            "16",
            "--workers",
            "1",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--data".into(), data.path().display().to_string()])
        .chain(["--out".into(), out.display().to_string()])
        .collect()
    };
    for (name, extra, schema) in CLAIMS {
        let mut args = common(name);
        args.extend(extra.iter().map(|s| s.to_string()));
        if name == "transfer" {
            args.extend(["--pretrain-data".into(), data.path().display().to_string()]);
        }
        let line = ok(Command::new(env!("CARGO_BIN_EXE_augloader")).args(&args));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["experiment"], name);
        assert!(v["holds"].is_boolean(), "{name}: {v}");
        assert_schema(name, &v, schema);
        let plot = data.path().join(name).join(format!("{name}.png"));
        assert!(plot.is_file(), "{name}: no picture");
        check_numbers(name, &v);
    }
}

#[test]
fn non_finite_models_are_never_kept_nor_trusted() {
    let data = tempfile::tempdir().unwrap();
    tiny_synth(data.path(), 2, 3, 2);
    let run = data.path().join("run");
    // ResNet-18 at 32 px reaches 1 x 1 in its last stage: with batches of 1, BatchNorm sees
    // one value per channel and its running variance becomes NaN.
    let out = Command::new(env!("CARGO_BIN_EXE_augloader"))
        .args([
            "train", "--quiet", "--model", "resnet18", "--batch", "1", "--epochs", "2",
        ])
        .args([
            "--input-size",
            "32",
            "--workers",
            "1",
            "--threads",
            "1",
            "--data",
        ])
        .arg(data.path())
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("running_var") && err.contains("after epoch 0"),
        "{err}"
    );
    assert!(
        !run.join("model.safetensors").exists() && !run.join("checkpoint.safetensors").exists()
    );

    // A model file holding a NaN is refused by name wherever it is read.
    let p = data.path().join("nan.safetensors");
    let net = Net::new("resnet8", 2, Device::Cpu, 0, false).unwrap();
    let mut tensors = checkpoint::state_dict(&net.vs);
    tensors[0].1 = tensors[0].1.fill(f64::NAN);
    checkpoint::write(&p, &tensors, None).unwrap();
    let e = checkpoint::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("nan.safetensors") && e.contains(&tensors[0].0) && e.contains("non-finite"),
        "{e}"
    );
}
