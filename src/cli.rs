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
    /// Fit models from measured data and report their error.
    #[command(subcommand)]
    Fit(FitCmd),
    /// Remake a run folder's plots, trace.json and summary.md from its files.
    Report(ReportCmd),
    /// Plot a merged sweep (its results.csv): a metric against an axis, one line per value of another
    /// axis; writes sweep_*.png / .svg and sweep.md in the sweep folder.
    Plot(PlotCmd),
    /// Grids of runs from a sweep file: plan, run (locally or as shards of a batch array), merge, emit.
    Sweep(crate::drivers::sweep::SweepCmd),
    /// Searches over simulated runs, e.g. the highest request rate that meets a latency SLO.
    Search(crate::drivers::search::SearchCmd),
    /// Replay measured runs through simwatt and report its error on latency, throughput, power and
    /// energy, beside TDP x time and Vidur-Energy's curve. Exits 0 whatever the error, unless
    /// a --max-error threshold is passed (then 3).
    Validate(ValidateCmd),
    /// Measure a real server the way simwatt's validation data was measured: power sampling (NVML,
    /// nvidia-smi, RAPL), an OpenAI-endpoint load generator, or both around one run, into a
    /// measured-run folder that `validate` reads.
    #[command(subcommand)]
    Measure(crate::drivers::measure::MeasureCmd),
    /// The edge/cloud split point: each request generates its first w* tokens on an edge device and
    /// the rest on a server; a sweep over w* writes split.csv (device, radio, server and total energy,
    /// latency, battery drain) and split.png, with the optimum.
    Split(crate::drivers::split::SplitCmd),
}

#[derive(Debug, Args)]
pub struct ValidateCmd {
    /// Config whose model, hardware, scheduler, predictor and power profile are simulated (its
    /// workload is replaced by the measured requests).
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        requires = "measured",
        conflicts_with = "suite"
    )]
    pub config: Option<PathBuf>,
    /// A measured run's folder (a request log and power logs: vLLM energy-measurement protocol,
    /// nvidia-smi CSVs, or the PowerTrace-Sim layout), or a measured-data spec (.yaml) as in a suite
    /// case's `measured:`.
    #[arg(long, value_name = "PATH", requires = "config")]
    pub measured: Option<PathBuf>,
    /// A folder of validation cases (*.yaml), e.g. experiments/validation: one error table across them.
    #[arg(long, value_name = "DIR", required_unless_present = "config")]
    pub suite: Option<PathBuf>,
    /// Output folder [default: runs/validate, or runs/validation with --suite].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the output folder if a previous `validate` wrote it and it holds nothing else (never a
    /// folder holding the run's inputs).
    #[arg(long)]
    pub force: bool,
    /// Largest allowed |relative error| of a metric, as METRIC=LIMIT (a fraction, 0.15, or a
    /// percentage, 15%); `*` for every metric. Repeatable. Any metric past its limit makes the exit
    /// status 3 (1 is an error, 2 a usage error).
    #[arg(long = "max-error", value_name = "METRIC=LIMIT")]
    pub max_error: Vec<String>,
    /// Power readings ending within this many seconds before the first request are left out of the
    /// idle baseline (the engine's warm-up request) [default: the `warmup_s` of a run folder's
    /// manifest.json, as `simwatt measure run` writes it, else 1].
    #[arg(long, value_name = "SECONDS")]
    pub warmup_s: Option<f64>,
    /// Seconds added to the power logs' clock to put them on the request log's clock (a measured
    /// spec's `clock_offset_s`) [default: 0].
    #[arg(
        long,
        value_name = "SECONDS",
        allow_hyphen_values = true,
        conflicts_with = "suite"
    )]
    pub clock_offset_s: Option<f64>,
    /// UTC offset of the host that wrote local times without a zone (nvidia-smi's `timestamp`, a
    /// `vllm bench serve` result's `date`), e.g. +02:00 or -05:00 (a measured spec's `utc_offset`)
    /// [default: such times are read as UTC].
    #[arg(
        long,
        value_name = "+HH:MM",
        allow_hyphen_values = true,
        conflicts_with = "suite"
    )]
    pub utc_offset: Option<String>,
    /// Skip the overlay plots.
    #[arg(long)]
    pub no_plots: bool,
    /// Print nothing but errors.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PlotCmd {
    /// A sweep output folder holding results.csv (from `simwatt sweep merge`).
    #[arg(value_name = "SWEEP_DIR")]
    pub dir: PathBuf,
    /// Column on the x axis (a numeric sweep axis, e.g. workload.arrival.rate).
    #[arg(long)]
    pub x: String,
    /// Metric column on the y axis, e.g. ttft_p90_s or j_per_output_token.
    #[arg(long)]
    pub y: String,
    /// Column whose values get one line each, e.g. scheduler.policy.
    #[arg(long)]
    pub by: Option<String>,
    /// Only runs whose axis has this value, e.g. hardware.gpu=a100. Repeatable.
    #[arg(long = "where", value_name = "AXIS=VALUE")]
    pub filters: Vec<String>,
    /// Average over axes other than --x and --by that still vary (refused otherwise).
    #[arg(long)]
    pub average: bool,
}

#[derive(Debug, Subcommand)]
pub enum FitCmd {
    /// Fit the execution-time model (per-operation forests over Vidur profiles) of a device and model,
    /// cache it, and print each operation's held-out error, forest against quadratic, and the fit time.
    Latency(FitLatencyCmd),
    /// Fit a device's power profile (idle, P_0, k_compute, k_memory) from measured power data by
    /// non-negative least squares on window energies, and report its leave-one-out error of mean power
    /// and energy per token beside TDP x time and Vidur-Energy's curve.
    Power(FitPowerCmd),
    /// Fit an engine profile (host time per iteration, its overlap with GPU work, eager launch cost,
    /// front-end latency) to measured serving data given as validation cases, and report each model's
    /// error predicted by a profile fitted without it.
    Engine(FitEngineCmd),
}

// Doc comments here are --help text, where <name> stands for a value, not an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Args)]
pub struct FitEngineCmd {
    /// Validation case files, or folders of them (every *.yaml), with measured serving data.
    /// Repeatable.
    #[arg(long, value_name = "PATH", required = true)]
    pub cases: Vec<PathBuf>,
    /// Engine profile to start from; its parameters that are not fitted are kept
    /// [default: the file at --out].
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Profile to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Parameter to fit (e.g. host_ms, host_us_per_seq, overlap, eager_us_per_layer, admission_ms,
    /// stream_ms, fp8_linear.efficiency, fp8_linear.us_per_layer,
    /// fused_moe.default_config_efficiency). Repeatable. Fitting only the parameters of the
    /// fp8_linear and fused_moe sections gives each a provenance of its own and keeps the profile's.
    #[arg(long = "param", value_name = "NAME", required = true)]
    pub params: Vec<String>,
    /// Skip the leave-one-model-out evaluation (faster; the report then shows in-sample errors).
    #[arg(long)]
    pub no_holdout: bool,
    /// Fit this power profile jointly with the engine (parameters power.p0_w, power.k_compute_w,
    /// power.k_memory_w, power.loaded_idle_w); the cases on its device use it, and mean power joins
    /// the fitted metrics.
    #[arg(long, value_name = "FILE")]
    pub power_profile: Option<PathBuf>,
    /// Where to write the jointly fitted power profile.
    #[arg(long, value_name = "FILE", requires = "power_profile")]
    pub power_out: Option<PathBuf>,
    /// Also write the report (markdown) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// No progress messages.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

// Doc comments here are --help text, where <name> stands for a value, not an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Args)]
pub struct FitPowerCmd {
    /// Device id or alias from the device catalog, e.g. a100.
    #[arg(long)]
    pub gpu: String,
    /// Measurement manifest(s) listing the data and how it was measured
    /// [default: profiles/power/measured/<gpu>.yaml]. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub data: Vec<PathBuf>,
    /// Profile to write [default: profiles/power/<gpu>.yaml, under the current directory]. An
    /// existing file is replaced only with --force.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write the report (markdown) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Replace an existing profile (--out) or report (--report); the parameters the fit does not
    /// estimate (loaded and empty idle, tail, DVFS exponent) are carried over from the profile replaced.
    #[arg(long)]
    pub force: bool,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct FitLatencyCmd {
    /// Device id or alias from the device catalog, e.g. a100.
    #[arg(long, required_unless_present = "all")]
    pub gpu: Option<String>,
    /// Model name or alias from the model catalog, e.g. meta-llama/Llama-2-7b-hf.
    #[arg(long, required_unless_present = "all")]
    pub model: Option<String>,
    /// Tensor-parallel degree of the profile rows to fit.
    #[arg(long, default_value_t = 1)]
    pub tp: u32,
    /// Fit every (device, model, TP) with a profile under --profiles instead of one.
    #[arg(long, conflicts_with_all = ["gpu", "model"])]
    pub all: bool,
    /// Folder of Vidur-format profiles.
    #[arg(long, default_value = "profiles/vidur", value_name = "DIR")]
    pub profiles: PathBuf,
    /// Seed of the forests.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Refit even when the cache holds the tables (the new fit is not written to the cache).
    #[arg(long)]
    pub no_cache: bool,
    /// Instead of fitting tables, measure extrapolation: fit each per-layer operation on rows up to
    /// half the profiled maximum and report its error on the upper half, flat forest vs linear tail.
    #[arg(long)]
    pub extrapolation: bool,
    /// Also write the report (markdown) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

// Doc comments here are --help text, where <name> stands for a value, not an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
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
    /// Replace the run folder if a previous `simulate` wrote it and it holds nothing else (never a
    /// folder holding the run's inputs).
    #[arg(long)]
    pub force: bool,
    /// Skip the plots (PNG + SVG); `simwatt report` can draw them later.
    #[arg(long)]
    pub no_plots: bool,
    /// Skip trace.json (the Chrome / Perfetto trace); `simwatt report` can write it later.
    #[arg(long)]
    pub no_trace: bool,
    /// Write the request table as requests.parquet only, without its copy requests.csv (which is
    /// most of a large run's size).
    #[arg(long, conflicts_with = "csv")]
    pub no_csv: bool,
    /// Write requests.csv whatever the run's size (by default it is left out above 100,000
    /// requests, with a note: requests.parquet holds the same table).
    #[arg(long)]
    pub csv: bool,
    /// Width of a power.parquet row, seconds: each (replica, stage) group's power as its mean over
    /// each interval it worked in (exact energy), whole idle stretches as one row; 0 writes every
    /// busy, host and idle segment as a row of its own (as many rows as batch stages, and more).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::output::DEFAULT_POWER_INTERVAL_S)]
    pub power_interval: f64,
    /// One batches.parquet row per decode step of a static batch (`faster_transformer`). By default the
    /// steps between two completions of its members are one row (column `steps`), each still priced
    /// on its own: the same requests, tokens and energy, far fewer rows and a faster run.
    #[arg(long)]
    pub step_rows: bool,
    /// Fail instead of warning when the run would fall back to less than the shipped data gives the
    /// same config in the repository (no Vidur profiles, so the roofline; no power profile).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ReportCmd {
    /// Run folder written by `simwatt simulate`.
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// Skip the plots (PNG + SVG).
    #[arg(long)]
    pub no_plots: bool,
    /// Skip trace.json.
    #[arg(long)]
    pub no_trace: bool,
    /// Print nothing on success.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}
