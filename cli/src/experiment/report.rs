//! `augloader experiment all`: every experiment with its defaults, one folder each, and a
//! report (claim, command, numbers, verdict, picture) in DIR/report.md.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use augloader::output::Staged;
use clap::{Args, Parser};

use super::{ExperimentArgs, Finding};

#[derive(Args)]
pub struct AllArgs {
    /// Folder of the report and of each experiment's runs and picture.
    #[arg(long, default_value = "runs/experiment")]
    out: PathBuf,
    /// Dataset for every experiment (default: the synthetic sets).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Experiments to leave out, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(NAMES))]
    skip: Vec<String>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Every experiment, in the report's order.
const NAMES: [&str; 8] = [
    "init",
    "bn",
    "activation",
    "dropout",
    "stack3x3",
    "augmentation",
    "transfer",
    "degradation",
];

#[derive(Parser)]
struct AsExperiment {
    #[command(flatten)]
    args: ExperimentArgs,
}

/// `--flag=VALUE` with the value's bytes kept (a path that is not UTF-8 stays itself, and a
/// value that starts with '-' stays a value).
pub fn flag(name: &str, value: &std::ffi::OsStr) -> OsString {
    let mut f = OsString::from(format!("--{name}="));
    f.push(value);
    f
}

/// The command line of experiment `name` in `all`'s settings.
fn command(a: &AllArgs, name: &str) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["experiment".into(), name.into()];
    if name == "init" {
        argv.push(flag("plot", a.out.join("init.png").as_os_str()));
    } else {
        argv.push(flag("out", a.out.join(name).as_os_str()));
        argv.push(flag("plot", a.out.join(format!("{name}.png")).as_os_str()));
        if a.quiet {
            argv.push("--quiet".into());
        }
    }
    argv.extend(["--seed".into(), a.seed.to_string().into()]);
    if let Some(d) = &a.data {
        argv.push(flag("data", d.as_os_str()));
    }
    argv
}

/// A command line as text (lossy only for display).
fn shown(argv: &[OsString]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    format!("augloader {}", words.join(" "))
}

pub fn all(a: AllArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    if let Some(d) = &a.data {
        augloader::output::check_distinct(("--out", &a.out), &[("--data", d)])
            .map_err(anyhow::Error::msg)?;
    }
    // Results and report replace earlier ones only when every experiment has run.
    let jsonl = a.out.join("results.jsonl");
    let mut lines = Staged::create(&jsonl).with_context(|| jsonl.display().to_string())?;
    let mut found = Vec::new();
    for name in NAMES.iter().filter(|n| !a.skip.iter().any(|s| s == *n)) {
        let argv = command(&a, name);
        crate::out::note!("{}", shown(&argv));
        let parsed = AsExperiment::try_parse_from(&argv)?;
        let f = super::finding(parsed.args)?;
        lines
            .line(&f.json.to_string())
            .with_context(|| jsonl.display().to_string())?;
        crate::out::out!("{}", f.json);
        found.push((shown(&argv), f));
    }
    let report = a.out.join("report.md");
    augloader::output::write_replacing(&report, render(&found, &a.out).as_bytes())
        .with_context(|| format!("writing {}", report.display()))?;
    lines
        .commit()
        .with_context(|| jsonl.display().to_string())?;
    crate::out::note!("report: {}", report.display());
    Ok(())
}

/// The report: a table of every claim, then one section per experiment with its picture.
fn render(found: &[(String, Finding)], dir: &Path) -> String {
    let verdict = |f: &Finding| {
        if f.holds {
            "holds"
        } else {
            "does not hold here"
        }
    };
    let mut s = String::from(
        "# The lecture notes' claims, measured\n\n\
         Written by `augloader experiment all`; each line's command reruns it.\n\n\
         | claim | command | what it measured | holds? |\n|---|---|---|---|\n",
    );
    for (cmd, f) in found {
        let short = cmd.split(" --").next().unwrap_or(cmd);
        s += &format!(
            "| {} | `{short}` | {} | {} |\n",
            cell(f.claim),
            cell(&f.measured),
            verdict(f)
        );
    }
    for (cmd, f) in found {
        let pic = f.plot.strip_prefix(dir).unwrap_or(&f.plot);
        let seconds = f.json["seconds"].as_f64().unwrap_or(0.0);
        s += &format!(
            "\n## {}\n\n> {}\n\n`{cmd}` ({seconds:.0} s)\n\n{}\n\n**{}**\n\n![{}]({})\n",
            f.name,
            f.claim,
            f.measured,
            verdict(f),
            f.name,
            pic.display()
        );
    }
    s
}

/// Text safe inside a markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
