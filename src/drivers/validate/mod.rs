//! The `validate` driver: replay measured runs through simwatt and report how far off it is.
//!
//! Input: a config (model, hardware, scheduler, predictor, power profile; its workload is replaced by
//! the measured requests) and measured data: a serving run's per-request log with its power log(s)
//! ([`serving`]: the vLLM energy-measurement protocol, nvidia-smi CSVs, the PowerTrace-Sim layout), or
//! rows of the ML.ENERGY and LLM-Inference-Bench tables ([`tables`]). A suite ([`suite`]) is a folder of
//! case files, each a config plus where its measured data lives.
//! Output: per measured point, each metric measured and simulated with `rel_error = (simulated -
//! measured) / measured`, and for the power metrics the same for the two baselines (TDP x time and
//! Vidur-Energy's curve) evaluated on the same simulated batches; written as `validation.json`,
//! `validation.md` and overlay plots ([`report`], [`plots`]). Thresholds on the errors
//! ([`Thresholds`]) turn a run into a failing one; without them `validate` succeeds whatever the error.

pub mod plots;
pub mod report;
pub mod serving;
pub mod suite;
pub mod tables;

use crate::catalog::Catalogs;
use crate::config::{self, RawConfig, Scenario};
use crate::drivers::Caches;
use crate::error::{Error, Result};
use crate::power::{vidur_energy_w, PowerProfile, Utilisation};
use crate::sim::BatchLog;
use serde::Serialize;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every metric `validate` can compare, in the order tables show them, with what it is.
pub const METRICS: [(&str, &str); 19] = [
    (
        "ttft_p50_s",
        "time to first token, median over requests (s)",
    ),
    ("ttft_p90_s", "time to first token, 90th percentile (s)"),
    ("ttft_p99_s", "time to first token, 99th percentile (s)"),
    ("e2e_p50_s", "end-to-end latency, median over requests (s)"),
    ("e2e_p90_s", "end-to-end latency, 90th percentile (s)"),
    ("e2e_p99_s", "end-to-end latency, 99th percentile (s)"),
    ("tpot_mean_s", "time per output token, mean over requests (s)"),
    ("tpot_p50_s", "time per output token, median over requests (s)"),
    (
        "itl_p50_s",
        "inter-token latency, median over every gap between consecutive tokens (s)",
    ),
    (
        "duration_s",
        "active window: first request to last completion (s)",
    ),
    (
        "output_tokens_per_s",
        "output tokens over the active window (tokens/s)",
    ),
    (
        "requests_per_s",
        "requests over the active window (requests/s)",
    ),
    (
        "running_batch_mean",
        "requests running per iteration, mean over the steady state (requests)",
    ),
    (
        "idle_power_w",
        "idle power per GPU of the live server: measured before load; simwatt's loaded idle (the profile's loaded_idle_w, else idle_w) (W)",
    ),
    (
        "mean_power_w",
        "mean GPU power per GPU over the active window (W)",
    ),
    (
        "energy_j",
        "GPU energy over the active window, all GPUs (J)",
    ),
    (
        "energy_above_idle_j",
        "GPU energy over the active window less idle power x time (J)",
    ),
    (
        "j_per_output_token",
        "GPU energy over the active window per output token (J)",
    ),
    (
        "j_per_output_token_above_idle",
        "as above, less idle power x time (J)",
    ),
];

/// Relative error `(simulated - measured) / measured`; `None` when the measured value is 0 or either
/// is not finite.
pub fn rel_error(simulated: f64, measured: f64) -> Option<f64> {
    (measured != 0.0 && measured.is_finite() && simulated.is_finite())
        .then(|| (simulated - measured) / measured)
}

/// One metric of one measured point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricValue {
    pub measured: f64,
    pub simulated: f64,
    /// `(simulated - measured) / measured`.
    pub rel_error: Option<f64>,
    /// The TDP x time baseline's value, for power and energy metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tdp_x_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tdp_x_time_rel_error: Option<f64>,
    /// Vidur-Energy's curve's value, for power and energy metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vidur_energy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vidur_energy_rel_error: Option<f64>,
}

impl MetricValue {
    pub fn new(measured: f64, simulated: f64) -> Self {
        MetricValue {
            measured,
            simulated,
            rel_error: rel_error(simulated, measured),
            tdp_x_time: None,
            tdp_x_time_rel_error: None,
            vidur_energy: None,
            vidur_energy_rel_error: None,
        }
    }

    /// With the two baselines' values.
    pub fn with_baselines(measured: f64, e: Energies, pick: impl Fn(f64) -> f64) -> Self {
        let (s, t, v) = (pick(e.simwatt_j), pick(e.tdp_j), pick(e.vidur_j));
        MetricValue {
            tdp_x_time: Some(t),
            tdp_x_time_rel_error: rel_error(t, measured),
            vidur_energy: Some(v),
            vidur_energy_rel_error: rel_error(v, measured),
            ..MetricValue::new(measured, s)
        }
    }
}

/// One measured configuration or run, compared.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub label: String,
    /// Which execution-time model priced the simulation (`profiles` or `roofline`).
    pub predictor: String,
    /// Metric name -> values; only metrics that were measured.
    pub metrics: BTreeMap<String, MetricValue>,
    /// What a reader needs to know about this point (approximations, missing data).
    pub notes: Vec<String>,
}

impl Point {
    pub fn new(label: impl Into<String>, predictor: impl Into<String>) -> Self {
        Point {
            label: label.into(),
            predictor: predictor.into(),
            metrics: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    pub fn add(&mut self, name: &str, v: MetricValue) {
        debug_assert!(METRICS.iter().any(|(n, _)| *n == name), "{name}");
        if v.measured.is_finite() && v.simulated.is_finite() {
            self.metrics.insert(name.to_string(), v);
        }
    }
}

/// A validation case: a config and one source of measured data, with its compared points.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `ok` or `skipped`.
    pub status: String,
    /// Why the case was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The config the case was simulated with (a file, or the case file holding it).
    pub config: String,
    /// Where the measured data came from.
    pub measured: String,
    /// Model, device, policy and power profile simulated.
    pub simulated: BTreeMap<String, String>,
    pub notes: Vec<String>,
    pub points: Vec<Point>,
    /// Plot files (stems, written as PNG and SVG) in the case's folder.
    pub plots: Vec<String>,
}

impl CaseResult {
    pub fn skipped(name: &str, config: &str, measured: &str, message: String) -> Self {
        CaseResult {
            name: name.to_string(),
            description: None,
            status: "skipped".into(),
            message: Some(message),
            config: config.to_string(),
            measured: measured.to_string(),
            simulated: BTreeMap::new(),
            notes: Vec::new(),
            points: Vec::new(),
            plots: Vec::new(),
        }
    }
}

/// Largest allowed |rel_error| per metric (`*` for every metric without its own).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Thresholds(pub BTreeMap<String, f64>);

/// A metric whose error passed its threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exceeded {
    pub case: String,
    pub point: String,
    pub metric: String,
    pub rel_error: f64,
    pub threshold: f64,
}

impl Thresholds {
    /// Parses `METRIC=LIMIT` arguments: the limit a fraction (`0.15`) or a percentage (`15%`); the metric
    /// one of [`METRICS`] or `*`.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut m = BTreeMap::new();
        for a in args {
            let bad = |msg: String| Error::Output {
                path: PathBuf::from("--max-error"),
                message: format!("`{a}`: {msg}"),
            };
            let (k, v) = a.split_once('=').ok_or_else(|| {
                bad("expected METRIC=LIMIT, e.g. mean_power_w=0.15 or ttft_p50_s=30%".into())
            })?;
            let k = k.trim();
            if k != "*" && !METRICS.iter().any(|(n, _)| *n == k) {
                return Err(bad(format!(
                    "unknown metric `{k}`; known: *, {}",
                    METRICS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let v = v.trim();
            let limit = match v.strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
                None => v.parse::<f64>(),
            }
            .map_err(|_| bad(format!("`{v}` is not a number")))?;
            if !(limit.is_finite() && limit >= 0.0) {
                return Err(bad(format!("{limit} is not a limit >= 0")));
            }
            m.insert(k.to_string(), limit);
        }
        Ok(Thresholds(m))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn limit(&self, metric: &str) -> Option<f64> {
        self.0.get(metric).or_else(|| self.0.get("*")).copied()
    }

    /// Every metric of every case whose |rel_error| is above its limit.
    pub fn check(&self, cases: &[CaseResult]) -> Vec<Exceeded> {
        let mut out = Vec::new();
        for c in cases {
            for p in &c.points {
                for (name, v) in &p.metrics {
                    if let (Some(limit), Some(e)) = (self.limit(name), v.rel_error) {
                        if e.abs() > limit {
                            out.push(Exceeded {
                                case: c.name.clone(),
                                point: p.label.clone(),
                                metric: name.clone(),
                                rel_error: e,
                                threshold: limit,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// GPU energy of all GPUs over a window, by simwatt's model and the two baselines, joules.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Energies {
    pub simwatt_j: f64,
    pub tdp_j: f64,
    pub vidur_j: f64,
}

/// A simulated run's power over time, per (replica, stage) group of GPUs: busy stages at their power
/// (simwatt's model and Vidur-Energy's curve), the profile's idle power between them.
pub struct PowerTimeline {
    /// Per group: (start s, end s, simwatt W, Vidur-Energy W), in time order (a group's stages do not
    /// overlap).
    groups: Vec<Vec<(f64, f64, f64, f64)>>,
    gpus_per_group: f64,
    idle_w: f64,
    tdp_w: f64,
}

impl PowerTimeline {
    pub fn new(s: &Scenario, log: &BatchLog, profile: &PowerProfile) -> Self {
        let hw = &s.hardware;
        let mut groups = vec![Vec::new(); (hw.replicas * hw.pipeline_stages) as usize];
        for i in 0..log.len() {
            let g = (log.replica[i] * hw.pipeline_stages + log.stage[i]) as usize;
            let (a, b) = (log.start_ns[i] as f64 / 1e9, log.end_ns[i] as f64 / 1e9);
            let u = Utilisation::of(log.flops[i], log.bytes[i], b - a, &s.device);
            let vidur = vidur_energy_w(profile.between_batches_w(), s.device.tdp_w, u.compute);
            // The GPU work at the stage's power, then the host wait at its own.
            let gpu_end = b - log.host_ns[i] as f64 / 1e9;
            groups[g].push((a, gpu_end, log.power_w[i], vidur));
            if gpu_end < b {
                groups[g].push((gpu_end, b, log.host_power_w[i], vidur));
            }
        }
        for g in &mut groups {
            g.sort_by(|x, y| x.0.total_cmp(&y.0));
        }
        PowerTimeline {
            groups,
            gpus_per_group: s.gpus_per_stage() as f64,
            idle_w: profile.between_batches_w(),
            tdp_w: s.device.tdp_w,
        }
    }

    /// Idle power per GPU of the profile, watts.
    pub fn idle_w(&self) -> f64 {
        self.idle_w
    }

    /// GPUs in the run.
    pub fn gpus(&self) -> f64 {
        self.groups.len() as f64 * self.gpus_per_group
    }

    /// Energy of all GPUs over `[a, b]` seconds (idle outside the simulated stages, also before 0 and
    /// after the last stage).
    pub fn energy(&self, a: f64, b: f64) -> Energies {
        let len = (b - a).max(0.0);
        let mut e = Energies {
            tdp_j: self.tdp_w * self.gpus() * len,
            ..Energies::default()
        };
        for g in &self.groups {
            let first = g.partition_point(|s| s.1 <= a);
            let mut busy = 0.0;
            for &(s, t, w, v) in &g[first..] {
                if s >= b {
                    break;
                }
                let dt = t.min(b) - s.max(a);
                if dt > 0.0 {
                    busy += dt;
                    e.simwatt_j += w * dt * self.gpus_per_group;
                    e.vidur_j += v * dt * self.gpus_per_group;
                }
            }
            let idle = (len - busy).max(0.0) * self.idle_w * self.gpus_per_group;
            e.simwatt_j += idle;
            e.vidur_j += idle;
        }
        e
    }

    /// Mean power per GPU over `[a, b]`, watts, by simwatt's model.
    pub fn mean_w(&self, a: f64, b: f64) -> f64 {
        self.energy(a, b).simwatt_j / (self.gpus() * (b - a))
    }
}

/// The placeholder workload of a replay: the requests are handed to the event loop directly.
fn placeholder_workload(n: usize) -> Value {
    let mut lengths = Mapping::new();
    lengths.insert("type".into(), "fixed".into());
    lengths.insert("prompt".into(), Value::from(1));
    lengths.insert("output".into(), Value::from(1));
    let mut arrival = Mapping::new();
    arrival.insert("type".into(), "all_at_once".into());
    let mut w = Mapping::new();
    w.insert("requests".into(), Value::from(n.max(1) as u64));
    w.insert("arrival".into(), Value::Mapping(arrival));
    w.insert("lengths".into(), Value::Mapping(lengths));
    Value::Mapping(w)
}

/// The config of a replay as parsed, before it is resolved: the config tree with `overrides`
/// applied and its workload replaced by `n` placeholder requests ([`replay_scenario`]).
pub fn replay_config(
    path: &Path,
    tree: &Value,
    overrides: &[String],
    n: usize,
) -> Result<RawConfig> {
    let mut tree = tree.clone();
    if !tree.is_mapping() {
        return Err(Error::Yaml {
            path: path.to_path_buf(),
            message: "the config must be a mapping of keys to values".into(),
        });
    }
    for o in overrides {
        config::apply_override(&mut tree, o)?;
    }
    if let Value::Mapping(m) = &mut tree {
        m.insert("workload".into(), placeholder_workload(n));
    }
    config::parse_tree(path, tree)
}

/// The scenario of a replay: the config tree's model, hardware, scheduler, predictor and energy
/// settings with `overrides` applied, and its workload replaced by `n` placeholder requests (the
/// measured requests go to the event loop directly). `path` names the config in errors.
pub fn replay_scenario(
    catalogs: &Catalogs,
    path: &Path,
    tree: &Value,
    overrides: &[String],
    n: usize,
) -> Result<Scenario> {
    let raw = replay_config(path, tree, overrides, n)?;
    let s = Scenario::resolve(catalogs, path, raw)?;
    if s.prefill_pool.is_some() {
        return Err(Error::invalid(
            path,
            "hardware.prefill_pool",
            "(set)",
            "a replay compares a measured deployment of one device and layout; a prefill pool of its own hardware cannot be replayed: leave hardware.prefill_pool out",
        ));
    }
    Ok(s)
}

/// Who simulated what, for the report.
pub fn simulated_setup(
    s: &Scenario,
    profile: Option<&str>,
    predictor: &str,
) -> BTreeMap<String, String> {
    let sc = &s.scheduler;
    let mut m = BTreeMap::new();
    m.insert("model".into(), s.model_name.clone());
    m.insert("gpu".into(), s.device_name.clone());
    m.insert(
        "hardware".into(),
        format!(
            "TP {}{} x PP {} x {} replica(s), gpu_memory_utilization {}",
            s.hardware.tensor_parallel,
            match s.hardware.data_parallel {
                1 => String::new(),
                d => format!(" x DP {d} (expert parallel)"),
            },
            s.hardware.pipeline_stages,
            s.hardware.replicas,
            s.hardware.gpu_memory_utilization
        ),
    );
    m.insert(
        "scheduler".into(),
        format!(
            "{} (max_num_seqs {}, max_num_batched_tokens {}, block_size {}{})",
            sc.policy.name(),
            sc.max_num_seqs,
            sc.max_num_batched_tokens,
            sc.block_size,
            if sc.policy == config::Policy::Sarathi {
                format!(", chunk_size {}", sc.chunk_size)
            } else {
                String::new()
            }
        ),
    );
    m.insert("predictor".into(), predictor.to_string());
    m.insert(
        "power_profile".into(),
        profile.unwrap_or("none").to_string(),
    );
    m
}

/// What `simwatt validate` was asked.
#[derive(Debug, Clone)]
pub struct ValidateArgs {
    /// Config of a single validation (with `measured`).
    pub config: Option<PathBuf>,
    /// A measured run's folder, or a measured-data spec (YAML) as in a suite case's `measured:`.
    pub measured: Option<PathBuf>,
    /// A folder of case files (`*.yaml`).
    pub suite: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub thresholds: Thresholds,
    /// Seconds before the first request whose power readings are not idle (the engine's warm-up).
    pub warmup_s: Option<f64>,
    /// Seconds added to the power logs' clock (`--clock-offset-s`).
    pub clock_offset_s: Option<f64>,
    /// UTC offset of the host that wrote local times without a zone (`--utc-offset`, `+HH:MM`).
    pub utc_offset: Option<String>,
    pub plots: bool,
}

/// What a validation wrote and found.
pub struct ValidateOutcome {
    pub dir: PathBuf,
    pub cases: Vec<CaseResult>,
    pub exceeded: Vec<Exceeded>,
    /// The markdown report (validation.md).
    pub markdown: String,
}

/// Runs `validate`: a single case or a suite; writes the output folder.
pub fn run(args: &ValidateArgs, log: &dyn Fn(&str)) -> Result<ValidateOutcome> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let caches = Caches::new()?;
    match (&args.suite, &args.config, &args.measured) {
        (Some(dir), None, None) => {
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs/validation"));
            suite::run_suite(&caches, dir, &out, args, log, &command)
        }
        (None, Some(cfg), Some(measured)) => {
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs/validate"));
            suite::run_single(&caches, cfg, measured, &out, args, log, &command)
        }
        _ => Err(Error::Output {
            path: PathBuf::from("validate"),
            message: "give either --config CFG --measured PATH, or --suite DIR".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_fractions_percentages_and_reject_unknown_metrics() {
        let t = Thresholds::parse(&["mean_power_w=0.15".into(), "ttft_p50_s=30%".into()]).unwrap();
        assert_eq!(t.0["mean_power_w"], 0.15);
        assert!((t.0["ttft_p50_s"] - 0.3).abs() < 1e-12);
        assert!(Thresholds::parse(&["watts=0.1".into()]).is_err());
        assert!(Thresholds::parse(&["mean_power_w".into()]).is_err());
        assert!(Thresholds::parse(&["mean_power_w=-1".into()]).is_err());
    }

    #[test]
    fn relative_error_is_signed_and_undefined_at_zero() {
        assert_eq!(rel_error(110.0, 100.0), Some(0.1));
        assert_eq!(rel_error(90.0, 100.0), Some(-0.1));
        assert_eq!(rel_error(1.0, 0.0), None);
    }
}
