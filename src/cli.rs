//! Command-line interface (clap derive). Each verb maps to one driver function.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// simwatt: what serving an LLM costs in seconds, watts, grams of CO2 and dollars, before you buy or
/// rent the hardware. A discrete-event simulator of LLM inference serving.
#[derive(Debug, Parser)]
#[command(name = "simwatt", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate one serving scenario and write a run folder (requests, batches, summary, provenance).
    Simulate(SimulateCmd),
    /// Grids of runs from a sweep file: plan, run (locally or as shards of a batch array), merge, emit.
    Sweep(crate::sweep::SweepCmd),
    /// Searches over simulated runs, e.g. the highest request rate that meets a latency SLO.
    Search(crate::search::SearchCmd),
}

#[derive(Debug, Args)]
pub struct SimulateCmd {
    /// Scenario config (YAML). See experiments/quickstart.yaml for the shape.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Override any config key, e.g. --set hardware.replicas=4 --set scheduler.policy=sarathi.
    /// The value is read as YAML. Repeatable; applied in order.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run folder to write [default: runs/<config name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Master seed (same as --set seed=N).
    #[arg(long)]
    pub seed: Option<u64>,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Replace the run folder if it already exists.
    #[arg(long)]
    pub force: bool,
}
