//! The `augloader` command line: one module per command, each parsing its flags, resolving them
//! into library settings and calling the library; `main` dispatches and maps errors to exit
//! codes. Progress and messages from the library arrive through `console::Console`.
#![warn(clippy::too_many_lines)]

mod args;
mod augment;
mod bench;
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

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
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
    /// Measure what the lecture notes teach: initialisation (init) and depth (degradation).
    #[cfg(feature = "torch")]
    Experiment(Box<experiment::ExperimentArgs>),
}

/// Parses the command line, runs the command, and turns an error into a message and exit code 1.
fn main() -> ExitCode {
    let result = match Cli::parse().cmd {
        Cmd::Synth(a) => synth::run(a),
        Cmd::Augment(a) => augment::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Preview(a) => preview::run(a),
        Cmd::Pca(a) => pca::run(a),
        Cmd::Shard(a) => shard::run(a),
        #[cfg(feature = "torch")]
        Cmd::Train(a) => train::run(*a),
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
            eprintln!("error: {}", report(&e));
            ExitCode::from(1)
        }
    }
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
