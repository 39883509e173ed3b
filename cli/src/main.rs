//! The `augloader` command line: one module per command, each parsing its flags, resolving them
//! into library settings and calling the library; `main` dispatches and maps errors to exit
//! codes. Progress and messages from the library arrive through `console::Console`.
#![warn(clippy::too_many_lines)]

mod args;
mod augment;
mod bench;
mod check;
mod out;
// Only the libtorch commands report progress through the library or draw curves.
#[cfg(feature = "torch")]
mod console;
#[cfg(feature = "torch")]
mod curves;
#[cfg(feature = "torch")]
mod eval;
#[cfg(feature = "torch")]
mod experiment;
#[cfg(feature = "torch")]
mod panels;
mod pca;
mod preview;
mod ranges;
mod shard;
mod synth;
#[cfg(feature = "torch")]
mod train;
#[cfg(feature = "torch")]
mod tune;
#[cfg(feature = "torch")]
mod tune_report;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};

#[derive(clap::Parser)]
#[command(name = "augloader", version, about = "Deterministic image loading and augmentation for CNN training", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a deterministic synthetic ImageFolder dataset (DIR/train, DIR/val) of JPEGs.
    Synth(synth::SynthArgs),
    /// Augment one image with a pipeline; write it as PNG and print the sampled parameters as JSON.
    Augment(augment::AugmentArgs),
    /// Run the loader alone and report throughput and peak memory.
    Bench(bench::BenchArgs),
    /// Write a contact sheet: source images beside augmented views of them.
    Preview(preview::PreviewArgs),
    /// Compute a dataset's RGB mean, std and principal components (for PCA lighting).
    Pca(pca::PcaArgs),
    /// Decode every image in full and list the damaged and unreadable ones (an exclude list).
    Check(check::CheckArgs),
    /// Write a dataset as WebDataset tar shards (OUT/train-000000.tar, ..., OUT/classes.txt).
    Shard(shard::ShardArgs),
    /// Train a VGG/ResNet with libtorch (default: ResNet-20 on the synthetic dataset).
    #[cfg(feature = "torch")]
    Train(Box<train::TrainArgs>),
    /// Evaluate a trained model on the validation split, with test-time augmentation.
    #[cfg(feature = "torch")]
    Eval(Box<eval::EvalArgs>),
    /// Run the hyperparameter recipe and write a report (initial loss, overfit, LR finder, grids).
    #[cfg(feature = "torch")]
    Tune(Box<tune::TuneArgs>),
    /// Measure what the lecture notes teach: init, degradation, bn, dropout, activation,
    /// stack3x3, transfer, augmentation, or all of them into one report.
    #[cfg(feature = "torch")]
    Experiment(Box<experiment::ExperimentArgs>),
}

/// Parses the command line, runs the command, and turns an error into a message and exit code 1.
fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.cmd {
        Cmd::Synth(a) => synth::run(a),
        Cmd::Augment(a) => augment::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Preview(a) => preview::run(a),
        Cmd::Pca(a) => pca::run(a),
        Cmd::Shard(a) => shard::run(a),
        Cmd::Check(a) => check::run(a),
        #[cfg(feature = "torch")]
        Cmd::Train(a) => train::run(*a, &given_flags(&matches, "train")),
        #[cfg(feature = "torch")]
        Cmd::Eval(a) => eval::run(*a),
        #[cfg(feature = "torch")]
        Cmd::Tune(a) => tune::run(*a),
        #[cfg(feature = "torch")]
        Cmd::Experiment(a) => experiment::run(*a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::out::note!("error: {}", report(&e));
            ExitCode::from(1)
        }
    }
}

/// The long flags of subcommand `sub` that were given on the command line (not defaults).
#[cfg(feature = "torch")]
fn given_flags(matches: &clap::ArgMatches, sub: &str) -> Vec<String> {
    let cmd = Cli::command();
    let (Some(m), Some(c)) = (matches.subcommand_matches(sub), cmd.find_subcommand(sub)) else {
        return Vec::new();
    };
    c.get_arguments()
        .filter(|a| {
            m.value_source(a.get_id().as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

/// The error and its causes, joined by ": ". Library errors already quote their cause in their
/// message (and keep it as `source()` for programs): a cause whose text is there is not repeated.
fn report(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::{ArgAction, CommandFactory, Parser};

    use super::Cli;

    /// Every command that takes flags, nested ones included, with the words that reach it.
    fn leaves() -> Vec<(Vec<String>, clap::Command)> {
        let mut out = Vec::new();
        let mut todo = vec![(vec!["augloader".to_string()], Cli::command())];
        while let Some((path, cmd)) = todo.pop() {
            for sub in cmd.get_subcommands() {
                let mut p = path.clone();
                p.push(sub.get_name().to_string());
                if sub.has_subcommands() {
                    todo.push((p, sub.clone()));
                } else {
                    out.push((p, sub.clone()));
                }
            }
        }
        out
    }

    /// A value the command accepts for `arg` alongside `base`, found by trying a few.
    fn accepted(base: &[String], arg: &clap::Arg) -> Option<String> {
        let mut candidates: Vec<String> = ["1", "0.5", "0", "2", "64"].map(String::from).into();
        candidates.extend(
            arg.get_possible_values()
                .first()
                .map(|p| p.get_name().to_string()),
        );
        candidates.into_iter().find(|v| {
            let mut argv = base.to_vec();
            if let Some(long) = arg.get_long() {
                argv.push(format!("--{long}"));
            }
            argv.push(v.clone());
            Cli::command().try_get_matches_from(&argv).is_ok()
        })
    }

    /// Every flag of every subcommand, given a value its parser accepts, reaches its field: a
    /// parser whose type differs from the field's (clap panics when the field is read) fails here.
    #[test]
    fn every_flag_of_every_subcommand_parses_into_its_field() {
        let mut checked = 0;
        for (path, sub) in leaves() {
            // The required arguments first (paths and names: "1" will do).
            let mut base = path;
            for arg in sub.get_arguments().filter(|a| a.is_required_set()) {
                if let Some(long) = arg.get_long() {
                    base.extend([format!("--{long}"), "1".into()]);
                } else {
                    base.push("1".into());
                }
            }
            for arg in sub.get_arguments().filter(|a| !a.is_required_set()) {
                let Some(long) = arg.get_long() else { continue };
                let mut argv = base.clone();
                argv.push(format!("--{long}"));
                if matches!(arg.get_action(), ArgAction::Set | ArgAction::Append) {
                    let Some(v) = accepted(&base, arg) else {
                        continue;
                    };
                    argv.push(v);
                }
                let parsed = std::panic::catch_unwind(|| Cli::try_parse_from(&argv).map(|_| ()));
                assert!(
                    parsed.is_ok(),
                    "{argv:?}: the field does not take its parser's type"
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} flags checked");
    }

    /// Every flag given hostile values (negative, not a number, infinite, huge, past u64, empty)
    /// is refused with a parse error or accepted, never a panic; every numeric flag (one that
    /// refuses a word) refuses at least one of them: its range is checked at parse time.
    #[test]
    fn every_flag_takes_hostile_values_without_panicking() {
        let hostile = [
            "-1",
            "nan",
            "inf",
            "1e300",
            "18446744073709551616",
            "",
            "0x10",
        ];
        let mut tried = 0;
        for (path, sub) in leaves() {
            let mut base = path;
            for arg in sub.get_arguments().filter(|a| a.is_required_set()) {
                if let Some(long) = arg.get_long() {
                    base.push(format!("--{long}"));
                }
                base.push("1".into());
            }
            let valued = sub.get_arguments().filter(|a| {
                !a.is_required_set() && matches!(a.get_action(), ArgAction::Set | ArgAction::Append)
            });
            for arg in valued {
                let Some(long) = arg.get_long() else { continue };
                let parses = |v: &str| {
                    let argv: Vec<String> = base
                        .iter()
                        .cloned()
                        .chain([format!("--{long}={v}")])
                        .collect();
                    let parsed = std::panic::catch_unwind(|| Cli::try_parse_from(&argv).is_ok());
                    assert!(parsed.is_ok(), "{argv:?} panicked");
                    parsed.unwrap_or(false)
                };
                let refused = hostile.iter().filter(|v| !parses(v)).count();
                tried += hostile.len();
                let numeric = !parses("word") && arg.get_possible_values().is_empty();
                assert!(
                    !numeric || refused > 0,
                    "{base:?} --{long}: a numeric flag takes every hostile value"
                );
            }
        }
        assert!(tried > 300, "only {tried} cases");
    }
}
