//! Claims about the parts of a net: batch normalisation, dropout, activations, 3x3 stacks.
//! Every arm is a `lab-...` net (see `augloader_train::small_nets`) trained by the trainer.

use anyhow::{Context, Result};
use clap::Args;
use tch::nn::VarStore;

use augloader::Loader;
use augloader_train::experiment::ModelRun;
use augloader_train::small_nets::{
    conv_grads, dropout_eval_scale, stack_probe, ConvGrad, LabNet, LabSpec,
};
use augloader_train::trainer::{evaluate, load_weights, Net};
use augloader_train::BatchTensors;

use super::super::ranges;
use super::{bar_panel, by_arm, curves, epoch_panel, per_class, said, Common, Finding, Lab};
use crate::panels::Panel;

#[derive(Args)]
pub struct BnArgs {
    #[command(flatten)]
    common: Common,
    /// Conv layers of the net.
    #[arg(long, default_value_t = 12, value_parser = ranges::count_to::<200>)]
    depth: usize,
    /// Channels of its first stage (then twice and four times as many).
    #[arg(long, default_value_t = 16, value_parser = ranges::count_to::<1024>)]
    width: usize,
    /// Learning rates, comma-separated (the highest is "high").
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.01", value_parser = ranges::positive)]
    lrs: Vec<f64>,
    /// Epochs of each run.
    #[arg(long, default_value_t = 10, value_parser = ranges::count)]
    epochs: usize,
    /// Linear warm-up in epochs (none by default: warm-up is itself a cure for high rates).
    #[arg(long, default_value_t = 0.0, value_parser = ranges::nonneg)]
    warmup: f64,
}

pub fn bn(a: BnArgs) -> Result<Finding> {
    let warmup = a.warmup.to_string();
    let lab = Lab::new("bn", &a.common, a.epochs, a.lrs[0], &["--warmup", &warmup])?;
    let (mut runs, mut rows) = (Vec::new(), Vec::new());
    for norm in [true, false] {
        for &lr in &a.lrs {
            let model = format!(
                "lab-d{}-w{}{}",
                a.depth,
                a.width,
                if norm { "" } else { "-nobn" }
            );
            let mut cfg = lab.cfg(&model);
            cfg.lr.base = lr;
            let label = format!("{}-lr{lr}", if norm { "bn" } else { "nobn" });
            let r = lab.arm(&label, cfg, None)?;
            rows.push(serde_json::json!({
                "bn": norm,
                "lr": lr,
                "final_train_loss": r.train_loss(),
                "val_top1": r.val_top1(),
                "train_loss": r.history.iter().map(|m| m.train_loss).collect::<Vec<_>>(),
                "diverged": r.diverged.is_some(),
            }));
            runs.push(r);
        }
    }
    lab.draw(&[
        epoch_panel("training loss", "loss", curves(&runs, |m| m.train_loss)),
        epoch_panel("validation top-1", "top-1", curves(&runs, |m| m.val_top1)),
    ])?;
    let high = a.lrs.iter().copied().fold(f64::MIN, f64::max);
    let find = |label: String| runs.iter().find(|r| r.model == label);
    let (with, without) = (find(format!("bn-lr{high}")), find(format!("nobn-lr{high}")));
    // "Far worse": at least 1.5 times the loss, or no finite loss at all.
    let holds = match (with, without) {
        (Some(w), Some(wo)) => {
            w.diverged.is_none()
                && (wo.diverged.is_some() || wo.train_loss() > 1.5 * w.train_loss())
        }
        _ => false,
    };
    let words: Vec<String> = runs.iter().map(|r| said(r, r.train_loss())).collect();
    Ok(lab.finding(
        "Batch normalisation lets a deep net train at a high learning rate; without it the \
         same rate trains far worse or diverges.",
        format!("final training loss: {}", words.join(", ")),
        holds,
        serde_json::json!({"depth": a.depth, "runs": rows}),
    ))
}

#[derive(Args)]
pub struct DropoutArgs {
    #[command(flatten)]
    common: Common,
    /// Training images per class (few enough that the net fits them all).
    #[arg(long, default_value_t = 100, value_parser = ranges::count)]
    train_per_class: usize,
    /// Dropout probabilities, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,0.5", value_parser = ranges::fraction)]
    p: Vec<f64>,
    /// Units of the fully connected hidden layer.
    #[arg(long, default_value_t = 1024, value_parser = ranges::count_to::<16384>)]
    hidden: usize,
    /// Epochs of each run.
    #[arg(long, default_value_t = 40, value_parser = ranges::count)]
    epochs: usize,
}

/// `model`'s weights from `run_dir`, built as a [`LabNet`] (to reach its features).
fn lab_net(model: &str, classes: usize, run_dir: &std::path::Path) -> Result<(VarStore, LabNet)> {
    let spec = LabSpec::parse(model).context("a lab model")?;
    let mut vs = VarStore::new(tch::Device::Cpu);
    let net = LabNet::new(&vs.root(), &spec, classes as i64);
    let path = run_dir.join("model.safetensors");
    let (tensors, _) = augloader_train::checkpoint::read(&path)?;
    augloader_train::checkpoint::load_into(&mut vs, &path, &tensors, &|_| false)?;
    Ok((vs, net))
}

pub fn dropout(a: DropoutArgs) -> Result<Finding> {
    // No augmentation: the gap measured is the one dropout has to close.
    let mut lab = Lab::new("dropout", &a.common, a.epochs, 0.02, &[])?;
    lab.setup.cfg.train_pipeline = lab.setup.cfg.val_pipeline.clone();
    let train = per_class(&lab.setup.train, a.train_per_class);
    lab.setup.cfg.batch = lab.setup.cfg.batch.min(train.len() / 2).max(1);
    let val = lab.setup.val.clone();
    let classes = train.classes().len();
    let (mut runs, mut gaps, mut scales) = (Vec::new(), Vec::new(), Vec::new());
    for &p in &a.p {
        let pct = (p * 100.0).round() as usize;
        let model = format!("lab-d3-w16-fc{}-p{pct}", a.hidden);
        let label = format!("p{p}");
        let r = lab.arm(&label, lab.cfg(&model), Some((train.clone(), val.clone())))?;
        // Accuracy on the training images as validation sees them (evaluation mode).
        let (vs, net) = lab_net(&model, classes, &lab.out.join(&label))?;
        let fit = Loader::builder(train.clone(), lab.setup.cfg.val_pipeline.clone())
            .batch_size(64)
            .shuffle(false)
            .build()?;
        let train_top1 = evaluate(&net, &fit, tch::Device::Cpu)?.top1;
        let batch = fit.epoch(0).next().context("no training images")??;
        let h = tch::no_grad(|| net.features(&batch.to_device(vs.device()).0, false));
        scales.push((label.clone(), dropout_eval_scale(&h, net.dropout())));
        gaps.push((label, train_top1 - r.val_top1(), train_top1));
        runs.push(r);
    }
    lab.draw(&[
        epoch_panel(
            "training accuracy (training mode)",
            "accuracy",
            curves(&runs, |m| m.train_acc),
        ),
        epoch_panel("validation top-1", "top-1", curves(&runs, |m| m.val_top1)),
        bar_panel(
            "train - validation top-1",
            "gap",
            &gaps.iter().map(|g| (g.0.clone(), g.1)).collect::<Vec<_>>(),
        ),
    ])?;
    let (first, last) = (gaps.first(), gaps.last());
    // Shrinks: by more than two points, about one standard error of a 600-image validation set.
    let shrinks = matches!((first, last), (Some(f), Some(l)) if a.p.len() > 1 && l.1 < f.1 - 0.02);
    let unscaled = scales.iter().all(|s| (s.1 - 1.0).abs() < 0.05);
    let top = (0..a.p.len()).max_by(|&i, &j| a.p[i].total_cmp(&a.p[j]));
    let rows: Vec<serde_json::Value> = a
        .p
        .iter()
        .zip(&gaps)
        .zip(&runs)
        .map(|((p, g), r)| {
            serde_json::json!({"p": p, "train_acc": g.2, "val_top1": r.val_top1(), "gap": g.1})
        })
        .collect();
    let words: Vec<String> = gaps
        .iter()
        .zip(&runs)
        .zip(&scales)
        .map(|((g, r), s)| {
            format!(
                "{}: train {:.3}, val {:.3}, gap {:.3}, eval_scale {:.3}",
                g.0,
                g.2,
                r.val_top1(),
                g.1,
                s.1
            )
        })
        .collect();
    Ok(lab.finding(
        "Dropout regularises: the gap between training and validation accuracy shrinks. \
         Inverted dropout scales in training, so nothing is scaled at test time (eval_scale \
         about 1).",
        words.join("; "),
        shrinks && unscaled,
        serde_json::json!({
            "train_per_class": a.train_per_class,
            "runs": rows,
            // The scale of the arm with the largest p (p = 0 is 1 by construction).
            "eval_scale": top.map(|i| scales[i].1),
            "eval_scale_per_arm": named(&scales),
        }),
    ))
}

#[derive(Args)]
pub struct ActivationArgs {
    #[command(flatten)]
    common: Common,
    /// Conv layers of the plain net (no normalisation).
    #[arg(long, default_value_t = 12, value_parser = ranges::count_to::<200>)]
    depth: usize,
    /// Epochs of each run.
    #[arg(long, default_value_t = 10, value_parser = ranges::count)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.02, value_parser = ranges::positive)]
    lr: f64,
}

/// `(name, value)` pairs as a JSON object.
fn named<T: serde::Serialize>(pairs: &[(String, T)]) -> serde_json::Value {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The weight gradient of each conv layer of `net` on the batch.
fn grads(net: &Net, data: &(tch::Tensor, tch::Tensor)) -> Vec<ConvGrad> {
    conv_grads(&net.vs, net.model.as_ref(), &data.0, &data.1)
}

pub fn activation(a: ActivationArgs) -> Result<Finding> {
    let lab = Lab::new("activation", &a.common, a.epochs, a.lr, &[])?;
    let s = &lab.setup;
    let probe = Loader::builder(s.train.clone(), s.cfg.val_pipeline.clone())
        .batch_size(s.cfg.batch)
        .seed(a.common.seed)
        .build()?;
    let batch = probe.epoch(0).next().context("no training images")??;
    let data = batch.to_device(s.device);
    let classes = s.train.classes().len();
    let (mut runs, mut init, mut trained, mut rows) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let rms = |g: &[ConvGrad]| g.iter().map(|c| c.rms).collect::<Vec<_>>();
    for act in ["sigmoid", "tanh", "relu"] {
        let model = format!("lab-d{}-nobn-{act}", a.depth);
        let mut net = Net::new(&model, classes, s.device, s.cfg.seed, false)?;
        let at_init = grads(&net, &data);
        let r = lab.arm(act, lab.cfg(&model), None)?;
        let at_end = if r.diverged.is_none() {
            load_weights(&mut net, &lab.out.join(act).join("model.safetensors"))?;
            Some(grads(&net, &data))
        } else {
            None
        };
        rows.push(serde_json::json!({
            "activation": act,
            "grad_norm_first_layer_init": at_init.first().map(|c| c.norm),
            "grad_norm_first_layer_end": at_end.as_ref().and_then(|g| g.first()).map(|c| c.norm),
            "final_train_loss": r.train_loss(),
        }));
        init.push((act.to_string(), rms(&at_init)));
        if let Some(g) = at_end {
            trained.push((act.to_string(), rms(&g)));
        }
        runs.push(r);
    }
    draw_gradients(&lab, &init, &trained, &runs, a.epochs)?;
    // How much of the last layer's gradient reaches the first.
    let reach = |g: &[(String, Vec<f64>)], act: &str| -> f64 {
        g.iter()
            .find(|x| x.0 == act)
            .map_or(f64::NAN, |x| x.1[0] / x.1[x.1.len() - 1])
    };
    let (sig, relu) = (reach(&init, "sigmoid"), reach(&init, "relu"));
    let holds = sig < 0.01 && relu > 0.1;
    let losses: Vec<String> = runs.iter().map(|r| said(r, r.train_loss())).collect();
    Ok(lab.finding(
        "Sigmoid saturates and its gradient vanishes with depth (each layer multiplies it by \
         at most 1/4); ReLU passes it on unchanged where active, so deep nets train.",
        format!(
            "first/last layer gradient at initialisation: sigmoid {sig:.1e}, tanh {:.1e}, \
             relu {relu:.2}; final training loss {}",
            reach(&init, "tanh"),
            losses.join(", ")
        ),
        holds,
        serde_json::json!({
            "depth": a.depth,
            "runs": rows,
            "grad_rms_init": named(&init),
            "grad_rms_trained": named(&trained),
            "first_over_last_init": {"sigmoid": sig, "tanh": reach(&init, "tanh"), "relu": relu},
            "train_loss": by_arm(&runs, ModelRun::train_loss),
        }),
    ))
}

/// Gradient size per layer at initialisation and after `epochs`, and the training losses.
fn draw_gradients(
    lab: &Lab,
    init: &[(String, Vec<f64>)],
    trained: &[(String, Vec<f64>)],
    runs: &[ModelRun],
    epochs: usize,
) -> Result<()> {
    let layers = |g: &[(String, Vec<f64>)]| -> Vec<(String, Vec<(f64, f64)>)> {
        let pts = |v: &[f64]| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .map(|(i, x)| (i as f64 + 1.0, *x))
                .collect()
        };
        g.iter().map(|(n, v)| (n.clone(), pts(v))).collect()
    };
    let panel = |title: &str, g: &[(String, Vec<f64>)]| Panel {
        title: title.to_string(),
        x_label: "conv layer",
        y_label: "RMS weight gradient (log)",
        log_y: true,
        series: layers(g),
        ..Default::default()
    };
    lab.draw(&[
        panel("at initialisation", init),
        panel(&format!("after {epochs} epochs"), trained),
        epoch_panel("training loss", "loss", curves(runs, |m| m.train_loss)),
    ])
}

#[derive(Args)]
pub struct StackArgs {
    #[command(flatten)]
    common: Common,
    /// Channels of the stacks whose parameters and receptive field are measured.
    #[arg(long, default_value_t = 64, value_parser = ranges::count_to::<1024>)]
    channels: usize,
    /// Epochs of each run.
    #[arg(long, default_value_t = 12, value_parser = ranges::count)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05, value_parser = ranges::positive)]
    lr: f64,
}

/// The pairs compared: (stack of 3x3 net, big-kernel net, layers in the stack, big kernel).
const PAIRS: [(&str, &str, usize, i64); 2] = [
    ("lab-d6-k3", "lab-d3-k5", 2, 5),
    ("lab-d9-k3", "lab-d3-k7", 3, 7),
];

/// A stack of 3x3 convolutions against one big kernel, measured on built layers.
#[derive(serde::Serialize)]
struct Probe {
    stack: usize,
    kernel: i64,
    stack_params: i64,
    kernel_params: i64,
    stack_field: i64,
    kernel_field: i64,
}

/// The four variants of the summary: the measured stack and kernel of each pair, with the
/// accuracy and size of the net built from it.
fn variants(
    probes: &[Probe],
    params: &[(String, i64)],
    runs: &[ModelRun],
) -> Vec<serde_json::Value> {
    let variant = |name: String, model: &str, params_: i64, field: i64| {
        let acc = runs
            .iter()
            .find(|r| r.model == model)
            .map(ModelRun::val_top1);
        let net = params.iter().find(|p| p.0 == model).map(|p| p.1);
        serde_json::json!({"name": name, "model": model, "params": params_,
            "receptive_field": field, "val_top1": acc, "net_params": net})
    };
    PAIRS
        .iter()
        .zip(probes)
        .flat_map(|(pair, p)| {
            [
                variant(
                    format!("3x3x{}", p.stack),
                    pair.0,
                    p.stack_params,
                    p.stack_field,
                ),
                variant(
                    format!("{k}x{k}", k = p.kernel),
                    pair.1,
                    p.kernel_params,
                    p.kernel_field,
                ),
            ]
        })
        .collect()
}

pub fn stack3x3(a: StackArgs) -> Result<Finding> {
    let lab = Lab::new("stack3x3", &a.common, a.epochs, a.lr, &[])?;
    let c = a.channels as i64;
    let classes = lab.setup.train.classes().len();
    let (mut runs, mut probes, mut params) = (Vec::new(), Vec::new(), Vec::new());
    for (stack, big, n, k) in PAIRS {
        let (stack_params, stack_field) = stack_probe(n, 3, c, a.common.seed as i64);
        let (kernel_params, kernel_field) = stack_probe(1, k, c, a.common.seed as i64);
        probes.push(Probe {
            stack: n,
            kernel: k,
            stack_params,
            kernel_params,
            stack_field,
            kernel_field,
        });
        for model in [stack, big] {
            let net = Net::new(model, classes, tch::Device::Cpu, 0, false)?;
            let count: i64 = net
                .vs
                .trainable_variables()
                .iter()
                .map(|t| t.numel() as i64)
                .sum();
            params.push((model.to_string(), count));
            runs.push(lab.arm(model, lab.cfg(model), None)?);
        }
    }
    let bars: Vec<(String, f64)> = params.iter().map(|p| (p.0.clone(), p.1 as f64)).collect();
    lab.draw(&[
        epoch_panel("validation top-1", "top-1", curves(&runs, |m| m.val_top1)),
        bar_panel("parameters", "parameters", &bars),
    ])?;
    let acc = |m: &str| {
        runs.iter()
            .find(|r| r.model == m)
            .map_or(0.0, ModelRun::val_top1)
    };
    let variants = variants(&probes, &params, &runs);
    let same_field = probes.iter().all(|p| p.stack_field == p.kernel_field);
    let fewer = probes.iter().all(|p| p.stack_params < p.kernel_params);
    // "At least as accurate", within about one standard error of a 600-image validation set.
    let as_good = PAIRS.iter().all(|p| acc(p.0) >= acc(p.1) - 0.02);
    let words: Vec<String> = PAIRS
        .iter()
        .zip(&probes)
        .map(|(pair, p)| {
            format!(
                "{n} 3x3 vs one {k}x{k} at {c} channels: {} vs {} parameters, receptive field \
                 {} vs {}; nets {} {:.3} vs {} {:.3} top-1",
                p.stack_params,
                p.kernel_params,
                p.stack_field,
                p.kernel_field,
                pair.0,
                acc(pair.0),
                pair.1,
                acc(pair.1),
                n = p.stack,
                k = p.kernel,
            )
        })
        .collect();
    Ok(lab.finding(
        "A stack of 3x3 convolutions sees what one larger kernel sees (two 3x3 = one 5x5, three \
         = one 7x7) with fewer parameters and more non-linearities, and is at least as accurate.",
        words.join("; "),
        same_field && fewer && as_good,
        serde_json::json!({
            "channels": c,
            "variants": variants,
            "probes": probes,
            "net_params": named(&params),
            "val_top1": by_arm(&runs, ModelRun::val_top1),
        }),
    ))
}
