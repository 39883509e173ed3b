//! `augloader experiment`: the lecture notes' claims, measured. Each experiment trains small
//! nets that differ in one thing with the trainer's own runs (`augloader train`'s settings and
//! steps), prints a JSON summary as its last line, draws a picture, and says whether the claim
//! holds on this data. `all` runs them all into one report.

mod augmentation;
mod claims;
mod classic;
mod report;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use augloader::observe::EpochMetrics;
use augloader::source::{Source, Subset};
use augloader_train::experiment::{run_arm, ModelRun};
use augloader_train::trainer::{Start, TrainConfig, TrainJob};

use super::console::Console;
use super::panels::{plot_panels, Panel};
use super::ranges;
use super::train::{setup, Setup, TrainArgs};

#[derive(Subcommand)]
pub enum ExperimentCmd {
    /// Activation std per layer of a deep plain net under std-0.01, Xavier and Kaiming weights
    /// (seconds).
    Init(classic::InitArgs),
    /// Plain-20/56 against ResNet-20/56: training and test error with one schedule (about 14
    /// minutes on 2 cores).
    Degradation(classic::DegradationArgs),
    /// Batch normalisation: a deep net with and without BN at a high and a low learning rate
    /// (about 3 minutes on 2 cores).
    Bn(claims::BnArgs),
    /// Dropout: a wide fully connected head on a small subset with p = 0 and 0.5; the
    /// train/validation gap and the scale of dropout at test time (about 1 minute).
    Dropout(claims::DropoutArgs),
    /// Sigmoid, tanh and ReLU in one plain net: gradient size per layer at initialisation and
    /// after training (about 2 minutes).
    Activation(claims::ActivationArgs),
    /// Two 3x3 convolutions against one 5x5, three against one 7x7: parameters, receptive
    /// field and accuracy (about 2 minutes).
    Stack3x3(claims::StackArgs),
    /// Transfer learning: scratch, frozen backbone with a new head, and fine-tuning, against the
    /// target set's size (about 2 minutes).
    Transfer(transfer::TransferArgs),
    /// Augmentation: none, flip, crop, flip+crop, + colour jitter, + Cutout; then test-time
    /// augmentation on the best model (about 4 minutes).
    Augmentation(augmentation::AugmentationArgs),
    /// Every experiment with its defaults, into DIR/report.md (28 minutes on 2 cores).
    All(report::AllArgs),
}

#[derive(Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    cmd: ExperimentCmd,
}

/// What every training experiment takes.
#[derive(Args, Clone, Debug, Default)]
pub struct Common {
    /// Dataset (default: the synthetic one).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of weights, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Crop side of training and validation.
    #[arg(long = "input-size", default_value_t = 32, value_parser = ranges::side)]
    input_size: u32,
    /// Batch size.
    #[arg(long, default_value_t = augloader::defaults::BATCH_SIZE, value_parser = ranges::count)]
    batch: usize,
    /// Loader worker threads (default: the machine's cores, shared by LOCAL_WORLD_SIZE).
    #[arg(long, value_parser = ranges::workers)]
    workers: Option<usize>,
    /// Folder of the runs, one per arm (default: runs/experiment/NAME).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The picture (default: OUT/NAME.png).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// One measured claim: what the notes say, what was measured, and whether it held.
#[derive(Debug)]
pub struct Finding {
    /// The experiment's name.
    pub name: &'static str,
    /// The claim, in the notes' words.
    pub claim: &'static str,
    /// The numbers, in a sentence.
    pub measured: String,
    /// Whether the claim held here.
    pub holds: bool,
    /// The summary line (JSON).
    pub json: serde_json::Value,
    /// The picture.
    pub plot: PathBuf,
}

/// Runs the command.
pub fn run(a: ExperimentArgs) -> Result<()> {
    if let ExperimentCmd::All(all) = a.cmd {
        return report::all(all);
    }
    let f = finding(a)?;
    let verdict = if f.holds {
        "holds"
    } else {
        "does not hold here"
    };
    crate::out::note!("{}: {verdict} ({})", f.name, f.measured);
    crate::out::out!("{}", f.json);
    Ok(())
}

/// Runs one experiment.
fn finding(a: ExperimentArgs) -> Result<Finding> {
    match a.cmd {
        ExperimentCmd::Init(a) => classic::init(a),
        ExperimentCmd::Degradation(a) => classic::degradation(a),
        ExperimentCmd::Bn(a) => claims::bn(a),
        ExperimentCmd::Dropout(a) => claims::dropout(a),
        ExperimentCmd::Activation(a) => claims::activation(a),
        ExperimentCmd::Stack3x3(a) => claims::stack3x3(a),
        ExperimentCmd::Transfer(a) => transfer::transfer(a),
        ExperimentCmd::Augmentation(a) => augmentation::augmentation(a),
        ExperimentCmd::All(_) => anyhow::bail!("`all` runs the other experiments, not itself"),
    }
}

/// The flags of `augloader train` that one arm's run takes.
#[derive(Parser)]
struct AsTrain {
    #[command(flatten)]
    train: TrainArgs,
}

/// An experiment in progress: its base settings and data (as `augloader train` would resolve
/// them), its folder and picture, its console and clock.
struct Lab {
    name: &'static str,
    setup: Setup,
    out: PathBuf,
    plot: PathBuf,
    console: Console,
    start: Instant,
}

impl Lab {
    /// The base run of experiment `name`: `augloader train` with the common flags, `epochs`,
    /// `lr` and `extra` flags.
    fn new(name: &'static str, c: &Common, epochs: usize, lr: f64, extra: &[&str]) -> Result<Lab> {
        let mut flags: Vec<std::ffi::OsString> = vec!["train".into()];
        for (flag, value) in [
            ("--epochs", epochs.to_string()),
            ("--batch", c.batch.to_string()),
            ("--lr", lr.to_string()),
            ("--input-size", c.input_size.to_string()),
            ("--seed", c.seed.to_string()),
        ] {
            flags.extend([flag.into(), value.into()]);
        }
        if let Some(w) = c.workers {
            flags.extend(["--workers".into(), w.to_string().into()]);
        }
        if let Some(d) = &c.data {
            flags.push(report::flag("data", d.as_os_str()));
        }
        flags.extend(extra.iter().map(|s| s.into()));
        let setup = setup(&AsTrain::try_parse_from(&flags)?.train)?;
        let out = c
            .out
            .clone()
            .unwrap_or_else(|| Path::new("runs/experiment").join(name));
        let plot = c
            .plot
            .clone()
            .unwrap_or_else(|| out.join(format!("{name}.png")));
        if let Some(d) = &c.data {
            for output in [("--out", out.as_path()), ("--plot", plot.as_path())] {
                augloader::output::check_distinct(output, &[("--data", d)])
                    .map_err(anyhow::Error::msg)?;
            }
        }
        Ok(Lab {
            name,
            setup,
            out,
            plot,
            console: Console::new(!c.quiet),
            start: Instant::now(),
        })
    }

    /// The base settings with `model`.
    fn cfg(&self, model: &str) -> TrainConfig {
        TrainConfig {
            model: model.to_string(),
            ..self.setup.cfg.clone()
        }
    }

    /// Trains the arm `label` with `cfg` on `data` (default: the base splits) into OUT/label.
    fn arm(
        &self,
        label: &str,
        cfg: TrainConfig,
        data: Option<(Arc<dyn Source>, Arc<dyn Source>)>,
    ) -> Result<ModelRun> {
        let (train, val) =
            data.unwrap_or_else(|| (self.setup.train.clone(), self.setup.val.clone()));
        let job = TrainJob {
            cfg,
            train,
            val,
            run_dir: &self.out.join(label),
            device: self.setup.device,
            start: Start::Overwrite,
        };
        run_arm(label, job, &self.console).with_context(|| format!("{}: arm {label}", self.name))
    }

    /// Draws `panels` into the picture.
    fn draw(&self, panels: &[Panel]) -> Result<()> {
        write_plot(panels, &self.plot)
    }

    /// The finding, with the summary `fields` plus name, verdict, seconds and picture.
    fn finding(
        &self,
        claim: &'static str,
        measured: String,
        holds: bool,
        fields: serde_json::Value,
    ) -> Finding {
        let mut json = serde_json::json!({"experiment": self.name});
        if let (Some(j), serde_json::Value::Object(f)) = (json.as_object_mut(), fields) {
            j.extend(f);
            j.insert("holds".into(), holds.into());
            j.insert("seconds".into(), self.start.elapsed().as_secs_f64().into());
            j.insert("plot".into(), self.plot.display().to_string().into());
        }
        Finding {
            name: self.name,
            claim,
            measured,
            holds,
            json,
            plot: self.plot.clone(),
        }
    }
}

/// The first `n` samples of each class of `src` (all when `n` is 0 or larger than a class).
fn per_class(src: &Arc<dyn Source>, n: usize) -> Arc<dyn Source> {
    if n == 0 {
        return src.clone();
    }
    let mut taken = vec![0usize; src.classes().len()];
    let keep = (0..src.len())
        .filter(|&i| {
            let t = &mut taken[src.label(i)];
            *t += 1;
            *t <= n
        })
        .collect();
    Arc::new(Subset::new(src.clone(), keep))
}

/// One curve per run of `f` over its epochs.
fn curves(runs: &[ModelRun], f: fn(&EpochMetrics) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
    runs.iter()
        .map(|r| {
            let pts = r
                .history
                .iter()
                .map(|m| (m.epoch as f64 + 1.0, f(m)))
                .collect();
            (r.model.clone(), pts)
        })
        .collect()
}

/// A panel of per-epoch curves.
fn epoch_panel<'a>(
    title: &str,
    y_label: &'a str,
    series: Vec<(String, Vec<(f64, f64)>)>,
) -> Panel<'a> {
    Panel {
        title: title.to_string(),
        x_label: "epoch",
        y_label,
        series,
        ..Default::default()
    }
}

/// A panel of bars, one per named value.
fn bar_panel<'a>(title: &str, y_label: &'a str, bars: &[(String, f64)]) -> Panel<'a> {
    Panel {
        title: title.to_string(),
        x_label: "",
        y_label,
        series: vec![(
            y_label.to_string(),
            bars.iter()
                .enumerate()
                .map(|(i, b)| (i as f64 + 1.0, b.1))
                .collect(),
        )],
        x_names: bars.iter().map(|b| b.0.clone()).collect(),
        ..Default::default()
    }
}

/// `runs` by name: value of `f`.
fn by_arm(
    runs: &[ModelRun],
    f: fn(&ModelRun) -> f64,
) -> serde_json::Map<String, serde_json::Value> {
    runs.iter()
        .map(|r| (r.model.clone(), serde_json::json!(f(r))))
        .collect()
}

/// The run's final value in words: the number, or "diverged (epoch E)".
fn said(r: &ModelRun, v: f64) -> String {
    match r.diverged {
        Some(e) => format!("{}: diverged in epoch {}", r.model, e + 1),
        None => format!("{}: {v:.3}", r.model),
    }
}

fn write_plot(panels: &[Panel], path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    plot_panels(panels, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
