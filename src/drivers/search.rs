//! Capacity search: the highest request rate a configuration serves within a latency SLO, found by
//! bisection over simulated runs; over a sweep, each configuration's capacity and the cheapest,
//! lowest-energy and lowest-carbon configuration that meets the SLO, with a Pareto table
//! (Vidur-Search's question, with energy and carbon added).
//!
//! Input: a config or a sweep file (a sweep must not have a `workload.arrival.rate` axis: the search
//! sets the rate), and SLO bounds on summary metrics (`ttft_p90_s=0.5` is `ttft_p90_s <= 0.5`;
//! `slo_attainment>=0.9` a lower bound, DistServe's goodput with the config's per-request `slo`). A rate
//! meets the SLO when every bound holds in every replicate of a run in steady state. The search
//! doubles or halves the config's own rate until the SLO flips, then bisects until the bracket is
//! within the tolerance; it assumes latency grows with the rate.
//!
//! Steady state ([`steady_state`]): a short run above capacity can meet an SLO only because its queue
//! had no time to build. So each probe's run is checked: its first quarter of requests (by arrival) is
//! warm-up and dropped, the rest is cut into three windows by arrival, and the run is steady when its
//! requests arrived over at least 4 x their mean end-to-end latency (by Little's law a shorter run is
//! still filling up) and the mean TTFT and mean end-to-end latency of the last window are each at most
//! 1.25 x those of the first plus 5 ms, with at least 32 completed requests per window. A probe that meets the SLO but is not steady is run again with twice
//! the requests, up to `--max-requests`; one still drifting there counts as failing, and the capacity
//! is then reported as unconfirmed (a lower bound). The capacity table says, per configuration, how
//! many requests its capacity probe ran and whether it was steady. Output: a table per configuration (`capacity.csv|parquet`), every probe
//! (`probes.csv`), a Markdown report (`capacity.md`) and the Pareto plot of capacity against energy
//! per output token and cost (`capacity_pareto.png|svg`, [`crate::plots::pareto`]). Objectives are
//! per request at capacity: `cost_usd`, `energy_j` and `carbon_g` of the run's summary when it has
//! them; the rental cost (GPU-hours x the device catalog's rental price) always. A ranking by a
//! metric the summary lacks is refused, never filled in.

use crate::catalog::Catalogs;
use crate::config::{self, ArrivalConfig, Scenario};
use crate::drivers::sweep::shard;
use crate::drivers::sweep::spec::{override_expr, value_text, Plan};
use crate::drivers::sweep::table;
use crate::drivers::{simulate, Caches};
use crate::error::{Error, Result};
use crate::metrics::{pareto, unit_of_column, Summary, SUMMARY_COLUMNS};
use crate::plots::{
    self,
    pareto::{CostKind, ParetoChart, ParetoPoint},
    PlotFile,
};
use clap::{Args, Subcommand};
use polars::prelude::*;
use rayon::prelude::*;
use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// `simwatt search ...`
#[derive(Debug, Args)]
pub struct SearchCmd {
    #[command(subcommand)]
    pub verb: SearchVerb,
}

#[derive(Debug, Subcommand)]
pub enum SearchVerb {
    /// The highest request rate that meets an SLO, for a config or for every configuration of a sweep.
    Capacity(CapacityArgs),
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// A config, or a sweep file (every configuration is searched).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Bounds on summary metrics, e.g. ttft_p90_s=0.5,itl_p99_s=0.1 (`=` or `<=`: an upper bound;
    /// `>=`: a lower bound, e.g. slo_attainment>=0.9 with the config's per-request `slo`). Any numeric
    /// column of summary.json, named as there and in a sweep table; docs/metrics.md.
    #[arg(long, value_name = "METRIC=BOUND,...")]
    pub slo: String,
    /// Override a config key (of the config, or of every run of a sweep). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Stop when the bracket [meets, fails] is narrower than this fraction of the capacity.
    #[arg(long, default_value_t = 0.02)]
    pub tolerance: f64,
    /// Most rates simulated per configuration.
    #[arg(long, default_value_t = 24)]
    pub max_probes: u32,
    /// Lowest rate tried [default: the config's rate / 1024].
    #[arg(long, value_name = "REQ_PER_S")]
    pub min_rate: Option<f64>,
    /// Highest rate tried [default: the config's rate x 1024].
    #[arg(long, value_name = "REQ_PER_S")]
    pub max_rate: Option<f64>,
    /// Most requests one probe may simulate while it lengthens a run until it is in steady state
    /// [default: 8192, or the config's workload.requests when larger].
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
    /// Rank by these (comma-separated): cost, energy, carbon [default: those the summary has].
    #[arg(long, value_name = "LIST")]
    pub objectives: Option<String>,
    /// Threads (configurations searched at once), 1 to 1024 [default: the CPUs available].
    #[arg(long, short = 'j', value_name = "J")]
    pub jobs: Option<usize>,
    /// Write capacity.csv, capacity.parquet, probes.csv, capacity.md and the Pareto plot
    /// (capacity_pareto.png, .svg) here.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No messages on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// One bound of an SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct SloTerm {
    /// As the user wrote it (`ttft_p90_s`).
    pub written: String,
    /// The summary column (`ttft_p90_s`).
    pub column: String,
    pub bound: f64,
    /// A lower bound (`METRIC>=BOUND`); otherwise an upper bound.
    pub at_least: bool,
    /// For `slo_attainment` and `goodput_requests_per_s`: the configs' per-request SLO as text
    /// (`ttft_s <= 0.5, tpot_s <= 0.05`), shown next to the bound.
    pub per_request: Option<String>,
}

impl SloTerm {
    /// `v` turned so that larger is worse: itself for an upper bound, negated for a lower one.
    fn badness(&self, v: f64) -> f64 {
        if self.at_least {
            -v
        } else {
            v
        }
    }

    /// Whether `v` keeps the bound.
    pub fn holds(&self, v: f64) -> bool {
        self.badness(v) <= self.badness(self.bound)
    }

    /// `<=` or `>=`.
    pub fn op(&self) -> &'static str {
        if self.at_least {
            ">="
        } else {
            "<="
        }
    }

    /// `≤` or `≥`.
    fn symbol(&self) -> &'static str {
        if self.at_least {
            "≥"
        } else {
            "≤"
        }
    }

    /// The bound as text with `op` as its operator, the unit if `unit`, and the per-request SLO it
    /// counts.
    fn text(&self, op: &str, unit: bool) -> String {
        let mut t = match unit_of_column(&self.column) {
            u if unit && !u.is_empty() => format!("{} {op} {} {u}", self.column, self.bound),
            _ => format!("{} {op} {}", self.column, self.bound),
        };
        if let Some(p) = &self.per_request {
            t.push_str(&format!(" (per request: {p})"));
        }
        t
    }
}

/// The SLO metrics that count requests meeting the config's per-request `slo`.
const PER_REQUEST_SLO_COLUMNS: [&str; 2] = ["slo_attainment", "goodput_requests_per_s"];

/// Parses `ttft_p90_s=0.5,itl_p99_s<=0.1,slo_attainment>=0.9`: each name is a summary column, spelled
/// as in summary.json and every table (docs/metrics.md); a spelling of an earlier version gets the
/// current name. `=` and `<=` give an upper bound, `>=` a lower one.
pub fn parse_slo(text: &str) -> Result<Vec<SloTerm>> {
    let bad = |value: &str, message: String| Error::invalid("--slo", "slo", value, message);
    let mut terms = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, bound, at_least) = if let Some((n, b)) = part.split_once(">=") {
            (n, b, true)
        } else if let Some((n, b)) = part.split_once("<=") {
            (n, b, false)
        } else {
            let (n, b) = part.split_once('=').ok_or_else(|| {
                bad(
                    part,
                    "expected METRIC=BOUND (or METRIC<=BOUND, METRIC>=BOUND), e.g. ttft_p90_s=0.5"
                        .into(),
                )
            })?;
            (n, b, false)
        };
        let name = name.trim();
        let bound: f64 = bound.trim().parse().map_err(|_| {
            bad(
                part,
                format!("the bound `{}` is not a number", bound.trim()),
            )
        })?;
        if !(bound.is_finite() && bound >= 0.0) {
            return Err(bad(part, "the bound must be a finite number >= 0".into()));
        }
        if let Some(now) = crate::metrics::renamed_metric(name) {
            return Err(bad(part, format!("`{name}` is now called `{now}`")));
        }
        let column = name.to_string();
        if terms.iter().any(|t: &SloTerm| t.column == column) {
            return Err(bad(part, format!("`{column}` is bounded twice")));
        }
        terms.push(SloTerm {
            written: name.to_string(),
            column,
            bound,
            at_least,
            per_request: None,
        });
    }
    if terms.is_empty() {
        return Err(bad(
            text,
            "no bound given; e.g. --slo ttft_p90_s=0.5,itl_p99_s=0.1".into(),
        ));
    }
    Ok(terms)
}

/// The result of a search over the rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Bracket {
    /// The highest rate found to meet the SLO (`None`: not even the lowest rate does).
    pub capacity: Option<f64>,
    /// The lowest rate found to fail it (`None`: even the highest rate meets it).
    pub first_fail: Option<f64>,
    /// Every rate tried and whether it met the SLO, in order.
    pub probes: Vec<(f64, bool)>,
    /// `found` (bracket within the tolerance), `below_min_rate`, `at_max_rate` or `max_probes`.
    pub outcome: &'static str,
}

/// Rounds to 6 significant digits, so the rates tried are short numbers that can be typed back.
fn round6(x: f64) -> f64 {
    format!("{x:.5e}").parse().unwrap_or(x)
}

/// Finds the highest rate in `[min, max]` for which `meets` holds, assuming it holds below some rate
/// and fails above: doubling or halving from `start` until the answer flips, then bisecting until the
/// bracket is narrower than `tol` x capacity, within `max_probes` calls.
pub fn bisect(
    start: f64,
    min: f64,
    max: f64,
    tol: f64,
    max_probes: u32,
    mut meets: impl FnMut(f64) -> Result<bool>,
) -> Result<Bracket> {
    let mut probes = Vec::new();
    let mut lo: Option<f64> = None;
    let mut hi: Option<f64> = None;
    let mut rate = round6(start.clamp(min, max));
    let mut outcome = "max_probes";
    while (probes.len() as u32) < max_probes {
        let ok = meets(rate)?;
        probes.push((rate, ok));
        if ok {
            lo = Some(rate);
            if hi.is_some() {
                break;
            }
            if rate >= max {
                outcome = "at_max_rate";
                break;
            }
            rate = round6((rate * 2.0).min(max));
        } else {
            hi = Some(rate);
            if lo.is_some() {
                break;
            }
            if rate <= min {
                outcome = "below_min_rate";
                break;
            }
            rate = round6((rate / 2.0).max(min));
        }
    }
    if let (Some(_), Some(_)) = (lo, hi) {
        outcome = "max_probes";
        while let (Some(l), Some(h)) = (lo, hi) {
            if h - l <= tol * l {
                outcome = "found";
                break;
            }
            let mid = round6((l + h) / 2.0);
            if mid <= l || mid >= h {
                outcome = "found";
                break;
            }
            if probes.len() as u32 >= max_probes {
                break;
            }
            let ok = meets(mid)?;
            probes.push((mid, ok));
            if ok {
                lo = Some(mid);
            } else {
                hi = Some(mid);
            }
        }
    }
    Ok(Bracket {
        capacity: lo,
        first_fail: hi,
        probes,
        outcome,
    })
}

/// One configuration to search: its parameters and one config tree per replicate.
struct Target {
    point: usize,
    params: Vec<Value>,
    trees: Vec<Value>,
    /// Why the configuration is invalid (a sweep with `skip_invalid: true`).
    invalid: Option<String>,
}

/// One simulated rate of one configuration.
struct Probe {
    rate: f64,
    meets: bool,
    /// The summary of each replicate.
    summaries: Vec<Summary>,
    /// Requests per replicate of the run that decided (after any lengthening).
    requests: u64,
    /// The largest latency drift (last window / first window, TTFT or end-to-end) over the replicates.
    drift: Option<f64>,
    /// Every replicate was in steady state.
    steady: bool,
    /// It met the SLO but was not confirmed in steady state by `--max-requests`, so it counts as
    /// failing.
    forced: bool,
    /// Runs simulated for this rate (replicates x lengths tried).
    runs: usize,
}

/// Share of a run's requests (by arrival) dropped as warm-up by the steady-state check.
pub const WARMUP_FRACTION: f64 = 0.25;
/// Windows the rest is cut into.
pub const DRIFT_WINDOWS: usize = 3;
/// Fewest completed requests per window for the check to say anything.
pub const MIN_WINDOW_REQUESTS: usize = 32;
/// A run drifts when the last window's mean TTFT exceeds the first's by this factor ...
pub const DRIFT_RATIO: f64 = 1.25;
/// ... plus this many seconds (so a few milliseconds on a tiny TTFT are not drift).
pub const DRIFT_FLOOR_S: f64 = 0.005;

/// A run is too short to be steady when its requests arrive over less than this many times their
/// mean time in the system (end-to-end latency): by Little's law the system is still filling up.
pub const MIN_SPAN_OVER_E2E: f64 = 4.0;

/// What the steady-state check found in one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SteadyState {
    /// The larger of the mean TTFT and mean end-to-end latency of the last window over those of the
    /// first (`None`: too few completed requests to tell).
    pub drift: Option<f64>,
    /// The arrival span over the mean end-to-end latency (`None`: nothing completed).
    pub span_over_e2e: Option<f64>,
    /// Enough requests over a long enough span, and no drift.
    pub steady: bool,
}

/// One request as the steady-state check sees it: arrival, TTFT and end-to-end latency in seconds
/// (latencies `None` when it did not complete).
pub type ArrivalLatency = (f64, Option<f64>, Option<f64>);

/// The steady-state check of one run, from its requests in any order: see the module header.
pub fn steady_state(requests: &[ArrivalLatency]) -> SteadyState {
    let mut by_arrival: Vec<&ArrivalLatency> = requests.iter().collect();
    by_arrival.sort_by(|a, b| a.0.total_cmp(&b.0));
    let e2e: Vec<f64> = by_arrival.iter().filter_map(|r| r.2).collect();
    let span = match (by_arrival.first(), by_arrival.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    };
    let span_over_e2e = (!e2e.is_empty()).then(|| {
        let m = e2e.iter().sum::<f64>() / e2e.len() as f64;
        if m > 0.0 {
            span / m
        } else {
            f64::INFINITY
        }
    });
    let warm = (by_arrival.len() as f64 * WARMUP_FRACTION).ceil() as usize;
    let rest = &by_arrival[warm.min(by_arrival.len())..];
    let per = rest.len() / DRIFT_WINDOWS;
    let mean = |w: &[&ArrivalLatency], pick: fn(&ArrivalLatency) -> Option<f64>| -> Option<f64> {
        let v: Vec<f64> = w.iter().filter_map(|r| pick(r)).collect();
        (v.len() >= MIN_WINDOW_REQUESTS).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let mut drift: Option<f64> = None;
    let mut flat = per > 0;
    for pick in [|r: &ArrivalLatency| r.1, |r: &ArrivalLatency| r.2] {
        let (first, last) = if per > 0 {
            (
                mean(&rest[..per], pick),
                mean(&rest[rest.len() - per..], pick),
            )
        } else {
            (None, None)
        };
        match (first, last) {
            (Some(f), Some(l)) => {
                let r = if f > 0.0 { l / f } else { f64::INFINITY };
                drift = Some(drift.map_or(r, |d: f64| d.max(r)));
                flat &= l <= DRIFT_RATIO * f + DRIFT_FLOOR_S;
            }
            _ => flat = false,
        }
    }
    SteadyState {
        drift: if flat || drift.is_some() { drift } else { None },
        span_over_e2e,
        steady: flat && span_over_e2e.is_some_and(|x| x >= MIN_SPAN_OVER_E2E),
    }
}

/// Whether a capacity is confirmed in steady state, for the table: `steady`, or why not.
fn steady_note(found: &Found) -> &'static str {
    if found.invalid.is_some() {
        return "-";
    }
    let forced = found
        .probes
        .iter()
        .any(|p| p.forced && Some(p.rate) == found.bracket.first_fail);
    if forced {
        "unconfirmed: the first failing rate was not confirmed in steady state by --max-requests (a lower bound; raise it)"
    } else if found.bracket.capacity.is_none() {
        "-"
    } else {
        "steady"
    }
}

/// The largest value of summary column `column` over replicates (`None` when any replicate lacks it).
/// The value of `term`'s metric in the replicate that keeps the bound least (the largest for an upper
/// bound, the smallest for a lower one); `None` when a replicate lacks it.
fn worst_replicate(summaries: &[Summary], term: &SloTerm) -> Option<f64> {
    summaries
        .iter()
        .map(|s| s.column(&term.column))
        .try_fold(None, |acc: Option<f64>, v| {
            let v = v?;
            Some(Some(match acc {
                Some(a) if term.badness(a) >= term.badness(v) => a,
                _ => v,
            }))
        })
        .flatten()
}

/// The capacity probe of a configuration.
fn capacity_probe(found: &Found) -> Option<&Probe> {
    let cap = found.bracket.capacity?;
    found.probes.iter().find(|p| p.rate == cap && p.meets)
}

/// Everything found for one configuration.
struct Found {
    bracket: Bracket,
    probes: Vec<Probe>,
    gpus: Option<u32>,
    rental_usd_per_gpu_hour: Option<f64>,
    invalid: Option<String>,
}

const RATE_KEY: &str = "workload.arrival.rate";

fn set_rate(
    catalogs: &Catalogs,
    path: &Path,
    tree: &Value,
    rate: f64,
    requests: u64,
) -> Result<Scenario> {
    let mut t = tree.clone();
    config::apply_override(&mut t, &override_expr(RATE_KEY, &Value::from(rate)))?;
    config::apply_override(
        &mut t,
        &override_expr("workload.requests", &Value::from(requests)),
    )?;
    let raw = config::parse_tree(path, t)?;
    Scenario::resolve(catalogs, path, raw)
}

fn config_rate(path: &Path, s: &Scenario) -> Result<f64> {
    match &s.workload.arrival {
        ArrivalConfig::Poisson { rate }
        | ArrivalConfig::Gamma { rate, .. }
        | ArrivalConfig::Static { rate } => Ok(*rate),
        other => Err(Error::invalid(
            path,
            "workload.arrival.type",
            match other {
                ArrivalConfig::AllAtOnce => "all_at_once",
                _ => "trace",
            },
            "a capacity search sets workload.arrival.rate; use poisson, gamma or static arrivals",
        )),
    }
}

/// Checks that every SLO column exists in a summary (a `null` statistic, e.g. no request completed,
/// counts as present but failing).
fn check_columns(slo: &[SloTerm], summary: &Summary) -> Result<()> {
    for t in slo {
        if PER_REQUEST_SLO_COLUMNS.contains(&t.column.as_str())
            && summary.column(&t.column).is_none()
        {
            return Err(Error::invalid(
                "--slo",
                "slo",
                &t.written,
                format!(
                    "`{}` needs a per-request SLO in the config, e.g. `slo: {{ttft_s: 0.5, tpot_s: 0.05}}` \
                     (or --set slo.ttft_s=0.5); the config has none",
                    t.column
                ),
            ));
        }
        if !summary.has_column(&t.column) {
            let latencies: Vec<&str> = SUMMARY_COLUMNS
                .iter()
                .filter(|c| (c.get)(summary).is_some())
                .map(|c| c.name)
                .filter(|n| {
                    n.ends_with("_s")
                        && ["_mean_s", "_p50_s", "_p90_s", "_p99_s"]
                            .iter()
                            .any(|s| n.ends_with(s))
                })
                .collect();
            return Err(Error::invalid(
                "--slo",
                "slo",
                &t.written,
                format!(
                    "`{}` is not a metric of the run summary; latency metrics: {}",
                    t.column,
                    latencies.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn search_target(
    caches: &Caches,
    path: &Path,
    target: &Target,
    slo: &[SloTerm],
    a: &CapacityArgs,
) -> Result<Found> {
    if let Some(reason) = &target.invalid {
        return Ok(Found {
            bracket: Bracket {
                capacity: None,
                first_fail: None,
                probes: vec![],
                outcome: "invalid",
            },
            probes: vec![],
            gpus: None,
            rental_usd_per_gpu_hour: None,
            invalid: Some(reason.clone()),
        });
    }
    let first = {
        let raw = config::parse_tree(path, target.trees[0].clone())?;
        Scenario::resolve(&caches.catalogs, path, raw)?
    };
    let start = config_rate(path, &first)?;
    let min = a.min_rate.unwrap_or(start / 1024.0);
    let max = a.max_rate.unwrap_or(start * 1024.0);
    if !(max.is_finite() && max > 0.0) {
        return Err(Error::invalid(
            "--max-rate",
            "max-rate",
            max,
            "must be a finite number of requests per second > 0",
        ));
    }
    if !(min.is_finite() && min > 0.0 && min <= max) {
        return Err(Error::invalid(
            "--min-rate",
            "min-rate",
            min,
            format!("needs 0 < min-rate <= max-rate = {max}"),
        ));
    }
    let gpus = first.total_gpus();
    let price = |s: &Scenario| s.device.rental_usd_per_gpu_hour.as_ref().map(|r| r.value);
    // A prefill pool of its own hardware: the GPU-weighted mean of the two devices' prices.
    let rental = match (first.prefill_pool.as_deref(), &first.disaggregation) {
        (Some(p), Some(d)) => {
            let prefill = (d.prefill_replicas * p.gpus_per_replica()) as f64;
            let decode = gpus as f64 - prefill;
            price(p)
                .zip(price(&first))
                .map(|(a, b)| (a * prefill + b * decode) / gpus as f64)
        }
        _ => price(&first),
    };
    let first_requests = first.workload.requests.ok_or_else(|| {
        Error::invalid(
            path,
            "workload.requests",
            "none",
            "a capacity search lengthens runs until they are steady, so it needs workload.requests",
        )
    })?;
    let max_requests = a.max_requests.unwrap_or(first_requests.max(8192));
    if max_requests < first_requests {
        return Err(Error::invalid(
            "--max-requests",
            "max-requests",
            max_requests,
            format!("must be at least the config's workload.requests ({first_requests})"),
        ));
    }
    let mut probes = Vec::new();
    let mut checked = false;
    let bracket = bisect(start, min, max, a.tolerance, a.max_probes, |rate| {
        let mut requests = first_requests;
        // The SLO metrics (worst replicate) of the previous, half as long run, when it was steady and
        // met the SLO.
        let mut previous: Option<Vec<f64>> = None;
        let mut runs = 0;
        loop {
            runs += target.trees.len();
            let mut summaries = Vec::new();
            let mut steady = true;
            let mut drift: Option<f64> = None;
            for tree in &target.trees {
                let s = set_rate(&caches.catalogs, path, tree, rate, requests)?;
                let o = simulate::simulate(s, &caches.tables, &|_| {})?;
                if !checked {
                    check_columns(slo, &o.summary)?;
                    checked = true;
                }
                let st = steady_state(
                    &o.rows
                        .iter()
                        .map(|r| (r.arrival_s, r.ttft_s, r.e2e_s))
                        .collect::<Vec<_>>(),
                );
                steady &= st.steady;
                drift = match (drift, st.drift) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                summaries.push(o.summary);
            }
            let worst: Option<Vec<f64>> =
                slo.iter().map(|t| worst_replicate(&summaries, t)).collect();
            let meets = worst
                .as_ref()
                .is_some_and(|w| w.iter().zip(slo).all(|(v, t)| t.holds(*v)));
            // Judged on the long-run value: warm-up bias falls about as 1/requests, so the value of a
            // run twice as long as the last one that met is extrapolated as m + (m - m_previous).
            let confirmed = match (&previous, &worst) {
                (Some(p), Some(w)) if meets && steady => {
                    w.iter().zip(p).zip(slo).all(|((m, mp), t)| {
                        let (b, bp) = (t.badness(*m), t.badness(*mp));
                        b + (b - bp).max(0.0) <= t.badness(t.bound)
                    })
                }
                _ => false,
            };
            let decided = !meets || confirmed;
            if !decided && requests < max_requests {
                previous = if meets && steady { worst } else { None };
                requests = requests.saturating_mul(2).min(max_requests);
                continue;
            }
            let forced = !decided;
            probes.push(Probe {
                rate,
                meets: meets && !forced,
                summaries,
                requests,
                drift,
                steady,
                forced,
                runs,
            });
            return Ok(meets && !forced);
        }
    })?;
    Ok(Found {
        bracket,
        probes,
        gpus: Some(gpus),
        rental_usd_per_gpu_hour: rental,
        invalid: None,
    })
}

/// An objective to rank by: name, the per-request column in the capacity table, and the summary
/// metric it needs.
struct Objective {
    name: &'static str,
    column: &'static str,
    needs: &'static str,
}

const OBJECTIVES: [Objective; 3] = [
    Objective {
        name: "cost",
        column: "cost_usd_per_1k_requests",
        needs: "cost_usd",
    },
    Objective {
        name: "energy",
        column: "energy_j_per_request",
        needs: "energy_j",
    },
    Objective {
        name: "carbon",
        column: "carbon_g_per_request",
        needs: "carbon_g",
    },
];

/// Mean over replicates of `metric / requests_completed` at the capacity rate.
fn per_request(found: &Found, metric: &str) -> Option<f64> {
    let probe = capacity_probe(found)?;
    let mut vals = Vec::new();
    for s in &probe.summaries {
        let done = s.requests_completed as f64;
        if done <= 0.0 {
            return None;
        }
        vals.push(s.column(metric)? / done);
    }
    Some(vals.iter().sum::<f64>() / vals.len() as f64)
}

/// Mean over replicates of a metric at the capacity rate.
fn at_capacity(found: &Found, metric: &str) -> Option<f64> {
    let probe = capacity_probe(found)?;
    let vals: Option<Vec<f64>> = probe.summaries.iter().map(|s| s.column(metric)).collect();
    let vals = vals?;
    Some(vals.iter().sum::<f64>() / vals.len() as f64)
}

/// The rows of the capacity table, one per configuration, and the notes on objectives.
struct Table {
    frame: DataFrame,
    report: String,
    /// The Pareto plot (`None`: no configuration has both a capacity and an energy per token).
    chart: Option<ParetoChart>,
    /// The plot's points: their row and how the report names them (`point 4 (scheduler.policy=...)`).
    plotted: Vec<(usize, String)>,
    /// The table's `pareto` column.
    front: Vec<bool>,
    /// What the table's `pareto` column is over.
    pareto_over: String,
    /// Configurations left out of the plot and why.
    left_out: Vec<String>,
}

fn fmt_num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(v) if v.abs() >= 1000.0 || v.abs() < 0.001 => format!("{v:.3e}"),
        Some(v) => format!("{:.4}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
    }
}

/// The numbers of each configuration that the table, the report and the plot share.
struct Ranking<'a> {
    /// The objectives the summaries support, each with its per-request column.
    ranked: Vec<(&'a Objective, Vec<Option<f64>>)>,
    /// Why a wanted objective is not ranked.
    notes: Vec<String>,
    rental_per_hour: Vec<Option<f64>>,
    rental_per_1k: Vec<Option<f64>>,
    /// Without a cost metric, the rental cost stands in for "cheapest", labelled as such.
    use_rental: bool,
    capacity: Vec<Option<f64>>,
    /// Not dominated on capacity and the ranked objectives.
    front: Vec<bool>,
    /// Energy per output token at capacity, when the summaries have it.
    j_per_token: Option<Vec<Option<f64>>>,
}

/// Whether any replicate of any probe has a value of `metric`.
fn has_metric(found: &[Found], metric: &str) -> bool {
    found.iter().any(|f| {
        f.probes
            .iter()
            .any(|p| p.summaries.iter().any(|s| s.column(metric).is_some()))
    })
}

/// The objectives the summaries support (an explicitly wanted one they lack is refused), the rental
/// cost, the Pareto front and the energy per output token of each configuration.
fn rank<'a>(found: &[Found], wanted: &[&'a Objective], explicit: bool) -> Result<Ranking<'a>> {
    let has = |metric: &str| has_metric(found, metric);
    let mut notes = Vec::new();
    let mut ranked: Vec<(&Objective, Vec<Option<f64>>)> = Vec::new();
    for o in wanted {
        if has(o.needs) {
            let col = if o.name == "cost" {
                found
                    .iter()
                    .map(|f| per_request(f, "cost_usd").map(|c| c * 1000.0))
                    .collect()
            } else {
                found.iter().map(|f| per_request(f, o.needs)).collect()
            };
            ranked.push((o, col));
        } else if explicit {
            return Err(Error::invalid(
                "--objectives",
                "objectives",
                o.name,
                format!(
                    "the run summary has no `{}` metric, so configurations cannot be ranked by {}; simwatt does not make one up",
                    o.needs, o.name
                ),
            ));
        } else if o.name != "cost" {
            // (Without `cost_usd`, the rental cost stands in for cost, labelled as such below.)
            notes.push(format!(
                "- {}: not ranked: the run summary has no `{}` metric.",
                o.name, o.needs
            ));
        }
    }
    let rental_per_hour: Vec<Option<f64>> = found
        .iter()
        .map(|f| Some(f.gpus? as f64 * f.rental_usd_per_gpu_hour?))
        .collect();
    let rental_per_1k: Vec<Option<f64>> = found
        .iter()
        .zip(&rental_per_hour)
        .map(|(f, h)| {
            let cap = f.bracket.capacity?;
            Some(h.as_ref()? / (cap * 3.6))
        })
        .collect();
    // Without a cost metric, the rental cost stands in for "cheapest", labelled as such.
    let use_rental =
        wanted.iter().any(|o| o.name == "cost") && !ranked.iter().any(|(o, _)| o.name == "cost");
    let capacity: Vec<Option<f64>> = found.iter().map(|f| f.bracket.capacity).collect();
    let mut mins: Vec<Vec<Option<f64>>> = ranked.iter().map(|(_, c)| c.clone()).collect();
    if use_rental {
        mins.push(rental_per_1k.clone());
    }
    let front = pareto(&capacity, &mins);
    let j_per_token: Option<Vec<Option<f64>>> = has("j_per_output_token").then(|| {
        found
            .iter()
            .map(|f| at_capacity(f, "j_per_output_token"))
            .collect()
    });
    Ok(Ranking {
        ranked,
        notes,
        rental_per_hour,
        rental_per_1k,
        use_rental,
        capacity,
        front,
        j_per_token,
    })
}

/// How the report names configuration `i`: `point 4 (scheduler.policy=vllm, ...)`.
fn point_label(axes: &[String], targets: &[Target], i: usize) -> String {
    if axes.is_empty() {
        "the config".into()
    } else {
        let parts: Vec<String> = axes
            .iter()
            .zip(&targets[i].params)
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect();
        format!("point {} ({})", targets[i].point, parts.join(", "))
    }
}

/// The capacity table (`capacity.csv|parquet`): one row per configuration.
fn capacity_frame(
    axes: &[String],
    targets: &[Target],
    found: &[Found],
    slo: &[SloTerm],
    r: &Ranking,
) -> Result<DataFrame> {
    let Ranking {
        ranked,
        rental_per_hour,
        rental_per_1k,
        capacity,
        front,
        j_per_token,
        ..
    } = r;
    let mut cols: Vec<Column> = vec![Column::new(
        "point".into(),
        targets.iter().map(|t| t.point as u64).collect::<Vec<u64>>(),
    )];
    for (i, axis) in axes.iter().enumerate() {
        let cells: Vec<_> = targets
            .iter()
            .map(|t| Some(table::axis_cell(&t.params[i])))
            .collect();
        cols.push(table::typed_column(axis, &cells));
    }
    cols.push(Column::new(
        "status".into(),
        found
            .iter()
            .map(|f| if f.invalid.is_some() { "invalid" } else { "ok" })
            .collect::<Vec<&str>>(),
    ));
    cols.push(Column::new(
        "error".into(),
        found
            .iter()
            .map(|f| f.invalid.clone())
            .collect::<Vec<Option<String>>>(),
    ));
    cols.push(Column::new("capacity_rps".into(), capacity.clone()));
    cols.push(Column::new(
        "first_fail_rps".into(),
        found
            .iter()
            .map(|f| f.bracket.first_fail)
            .collect::<Vec<Option<f64>>>(),
    ));
    cols.push(Column::new(
        "search_outcome".into(),
        found
            .iter()
            .map(|f| f.bracket.outcome)
            .collect::<Vec<&str>>(),
    ));
    cols.push(Column::new(
        "probes".into(),
        found
            .iter()
            .map(|f| f.bracket.probes.len() as u32)
            .collect::<Vec<u32>>(),
    ));
    cols.push(Column::new(
        "requests_at_capacity".into(),
        found
            .iter()
            .map(|f| capacity_probe(f).map(|p| p.requests))
            .collect::<Vec<Option<u64>>>(),
    ));
    cols.push(Column::new(
        "latency_drift_at_capacity".into(),
        found
            .iter()
            .map(|f| capacity_probe(f).and_then(|p| p.drift))
            .collect::<Vec<Option<f64>>>(),
    ));
    cols.push(Column::new(
        "steady_state".into(),
        found.iter().map(steady_note).collect::<Vec<&str>>(),
    ));
    for t in slo {
        cols.push(Column::new(
            format!("{}_at_capacity", t.column).into(),
            found
                .iter()
                .map(|f| at_capacity(f, &t.column))
                .collect::<Vec<Option<f64>>>(),
        ));
    }
    cols.push(Column::new(
        "gpus".into(),
        found.iter().map(|f| f.gpus).collect::<Vec<Option<u32>>>(),
    ));
    cols.push(Column::new(
        "rental_usd_per_gpu_hour".into(),
        found
            .iter()
            .map(|f| f.rental_usd_per_gpu_hour)
            .collect::<Vec<Option<f64>>>(),
    ));
    cols.push(Column::new(
        "rental_usd_per_hour".into(),
        rental_per_hour.clone(),
    ));
    cols.push(Column::new(
        "rental_usd_per_1k_requests".into(),
        rental_per_1k.clone(),
    ));
    for (o, c) in ranked {
        cols.push(Column::new(o.column.into(), c.clone()));
    }
    if let Some(j) = &j_per_token {
        cols.push(Column::new("j_per_output_token".into(), j.clone()));
    }
    cols.push(Column::new("pareto".into(), front.clone()));
    DataFrame::new_infer_height(cols).map_err(|e| Error::Internal(e.to_string()))
}

/// The report's heading and its Markdown table, one row per configuration.
fn report_table(
    axes: &[String],
    targets: &[Target],
    found: &[Found],
    slo: &[SloTerm],
    r: &Ranking,
) -> String {
    let Ranking {
        ranked,
        rental_per_1k,
        capacity,
        front,
        j_per_token,
        ..
    } = r;
    let n = found.len();
    let mut report = String::new();
    let slo_text: Vec<String> = slo.iter().map(|t| t.text(t.op(), false)).collect();
    report.push_str(&format!(
        "# Capacity under the SLO {}\n\n",
        slo_text.join(", ")
    ));
    let mut header = vec!["point".to_string()];
    header.extend(axes.iter().cloned());
    header.extend(
        [
            "capacity (req/s)",
            "first fail (req/s)",
            "outcome",
            "requests at capacity",
            "steady state",
        ]
        .map(String::from),
    );
    let slo_at_capacity: Vec<Vec<Option<f64>>> = slo
        .iter()
        .map(|t| found.iter().map(|f| at_capacity(f, &t.column)).collect())
        .collect();
    for t in slo {
        header.push(with_unit(&format!("{} at capacity", t.column), &t.column));
    }
    header.extend(["GPUs", "rental (USD/1k req)"].map(String::from));
    for (o, _) in ranked {
        header.push(
            match o.name {
                "cost" => "cost (USD/1k req)",
                "energy" => "energy (J/req)",
                _ => "carbon (gCO2e/req)",
            }
            .to_string(),
        );
    }
    if j_per_token.is_some() {
        header.push("energy per output token (J/token)".into());
    }
    header.push("Pareto".into());
    report.push_str(&format!("| {} |\n", header.join(" | ")));
    report.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for i in 0..n {
        let mut row = vec![targets[i].point.to_string()];
        row.extend(targets[i].params.iter().map(value_text));
        row.push(fmt_num(capacity[i]));
        row.push(fmt_num(found[i].bracket.first_fail));
        row.push(found[i].bracket.outcome.to_string());
        row.push(
            capacity_probe(&found[i])
                .map(|p| p.requests.to_string())
                .unwrap_or_else(|| "-".into()),
        );
        row.push(
            match steady_note(&found[i]) {
                n @ ("steady" | "-") => n,
                _ => "unconfirmed",
            }
            .into(),
        );
        for v in &slo_at_capacity {
            row.push(fmt_num(v[i]));
        }
        row.push(
            found[i]
                .gpus
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
        );
        row.push(fmt_num(rental_per_1k[i]));
        for (_, c) in ranked {
            row.push(fmt_num(c[i]));
        }
        if let Some(j) = &j_per_token {
            row.push(fmt_num(j[i]));
        }
        row.push(if front[i] { "yes" } else { "" }.into());
        report.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    report.push('\n');
    report
}

/// The report's findings: the best configuration by each objective, the highest capacity, the notes
/// on objectives not ranked, and what the Pareto column is over (returned too, for capacity.md).
fn report_findings(axes: &[String], targets: &[Target], r: &Ranking) -> (String, String) {
    let Ranking {
        ranked,
        notes,
        rental_per_1k,
        use_rental,
        capacity,
        ..
    } = r;
    let n = capacity.len();
    let label = |i: usize| point_label(axes, targets, i);
    let mut report = String::new();
    let best = |col: &[Option<f64>]| -> Option<usize> {
        (0..n).filter(|i| col[*i].is_some()).min_by(|a, b| {
            col[*a]
                .unwrap_or(f64::INFINITY)
                .total_cmp(&col[*b].unwrap_or(f64::INFINITY))
        })
    };
    if capacity.iter().all(|c| c.is_none()) {
        report.push_str("No configuration meets the SLO at any rate tried.\n");
    } else {
        for (o, c) in ranked {
            if let Some(i) = best(c) {
                report.push_str(&format!(
                    "- lowest {} ({} = {}): {}, capacity {} req/s\n",
                    o.name,
                    o.column,
                    fmt_num(c[i]),
                    label(i),
                    fmt_num(capacity[i])
                ));
            }
        }
        if *use_rental {
            match best(rental_per_1k) {
                Some(i) => report.push_str(&format!(
                    "- cheapest by rental cost only (GPU-hours x the catalog's rental price; no `cost_usd` in the summary), {} $/1k requests: {}, capacity {} req/s\n",
                    fmt_num(rental_per_1k[i]),
                    label(i),
                    fmt_num(capacity[i])
                )),
                None => report.push_str("- cheapest: not ranked: no `cost_usd` in the summary and no rental price in the device catalog.\n"),
            }
        }
        if let Some(i) = (0..n).filter(|i| capacity[*i].is_some()).max_by(|a, b| {
            capacity[*a]
                .unwrap_or(0.0)
                .total_cmp(&capacity[*b].unwrap_or(0.0))
                .then(b.cmp(a))
        }) {
            report.push_str(&format!(
                "- highest capacity: {}, {} req/s\n",
                label(i),
                fmt_num(capacity[i])
            ));
        }
    }
    for note in notes {
        report.push_str(note);
        report.push('\n');
    }
    let mut pareto_over = vec!["capacity (max)".to_string()];
    pareto_over.extend(ranked.iter().map(|(o, _)| format!("{} (min)", o.column)));
    if *use_rental {
        pareto_over.push("rental_usd_per_1k_requests (min)".into());
    }
    report.push_str(&format!(
        "\nPareto: not dominated on {}. The search assumes latency grows with the rate; each capacity is the highest rate seen to meet the SLO, `first fail` the lowest seen to miss it.\n",
        pareto_over.join(", ")
    ));
    let pareto_over = pareto_over.join(", ");

    (report, pareto_over)
}

/// The Pareto plot's chart (capacity against J per output token, coloured by cost: the summary's,
/// else the rental cost), the rows it shows with their labels, and the rows left out and why.
#[allow(clippy::type_complexity)] // three plain results of one pass
fn pareto_plot(
    axes: &[String],
    targets: &[Target],
    found: &[Found],
    slo: &[SloTerm],
    r: &Ranking,
) -> (Option<ParetoChart>, Vec<(usize, String)>, Vec<String>) {
    let Ranking {
        rental_per_1k,
        capacity,
        j_per_token,
        ..
    } = r;
    let n = found.len();
    let label = |i: usize| point_label(axes, targets, i);
    let (cost_kind, cost_col): (Option<CostKind>, Vec<Option<f64>>) =
        if has_metric(found, "cost_usd") {
            (
                Some(CostKind::Cost),
                found
                    .iter()
                    .map(|f| per_request(f, "cost_usd").map(|c| c * 1000.0))
                    .collect(),
            )
        } else if rental_per_1k.iter().any(|c| c.is_some()) {
            (Some(CostKind::Rental), rental_per_1k.clone())
        } else {
            (None, vec![None; n])
        };
    let mut points = Vec::new();
    let mut plotted = Vec::new();
    let mut left_out = Vec::new();
    for i in 0..n {
        let j = j_per_token.as_ref().and_then(|j| j[i]);
        match (capacity[i], j) {
            (Some(c), Some(j)) if c > 0.0 && c.is_finite() && j.is_finite() => {
                points.push(ParetoPoint {
                    label: if axes.is_empty() {
                        "the config".into()
                    } else {
                        targets[i].params.iter().map(value_text).collect::<Vec<_>>().join(", ")
                    },
                    capacity_rps: c,
                    j_per_output_token: j,
                    cost: cost_col[i],
                });
                plotted.push((i, label(i)));
            }
            (None, _) => left_out.push(match &found[i].invalid {
                Some(reason) => format!("{}: invalid configuration ({reason})", label(i)),
                None => format!(
                    "{}: no rate tried meets the SLO (search outcome `{}`)",
                    label(i),
                    found[i].bracket.outcome
                ),
            }),
            _ => left_out.push(format!(
                "{}: no energy per output token at capacity (`j_per_output_token` missing from the run summary)",
                label(i)
            )),
        }
    }
    let chart = (!points.is_empty()).then(|| {
        let slo_text = slo
            .iter()
            .map(|t| t.text(t.symbol(), true))
            .collect::<Vec<_>>()
            .join(", ");
        ParetoChart::new(slo_text, axes.to_vec(), cost_kind, points)
    });
    (chart, plotted, left_out)
}

fn build_table(
    axes: &[String],
    targets: &[Target],
    found: &[Found],
    slo: &[SloTerm],
    wanted: &[&Objective],
    explicit: bool,
) -> Result<Table> {
    let r = rank(found, wanted, explicit)?;
    let frame = capacity_frame(axes, targets, found, slo, &r)?;
    let mut report = report_table(axes, targets, found, slo, &r);
    let (findings, pareto_over) = report_findings(axes, targets, &r);
    report.push_str(&findings);
    let (chart, plotted, left_out) = pareto_plot(axes, targets, found, slo, &r);
    Ok(Table {
        frame,
        report,
        chart,
        plotted,
        front: r.front,
        pareto_over,
        left_out,
    })
}

/// A column header with the unit the metric's name carries: `ttft_p90_s at capacity (s)`.
fn with_unit(text: &str, column: &str) -> String {
    match unit_of_column(column) {
        "" => text.to_string(),
        u => format!("{text} ({u})"),
    }
}

/// The section of capacity.md on the Pareto plot: the figure, its front, and what it leaves out.
fn plot_section(table: &Table, file: Option<&PlotFile>) -> String {
    let mut md = String::from("\n## Pareto plot\n\n");
    match (&table.chart, file) {
        (Some(chart), Some(f)) => {
            md.push_str(&format!(
                "![{0}]({0}.png)\n\n{1} ([SVG]({0}.svg)).\n\n",
                f.stem, f.caption
            ));
            let order = chart.front_order();
            let front: Vec<&str> = order.iter().map(|i| table.plotted[*i].1.as_str()).collect();
            let over = if chart.cost.is_some() {
                "capacity, energy per output token and cost"
            } else {
                "capacity and energy per output token"
            };
            md.push_str(&format!(
                "Front of the plot (not dominated on {over}), by capacity: {}.\n",
                front.join("; ")
            ));
            let same = table
                .plotted
                .iter()
                .zip(&chart.front)
                .all(|((row, _), on)| table.front[*row] == *on);
            if !same {
                md.push_str(&format!(
                    "\nThe table's Pareto column is over other quantities ({}), so it names other configurations.\n",
                    table.pareto_over
                ));
            }
        }
        _ => md.push_str(
            "No plot: no configuration has both a capacity and an energy per output token.\n",
        ),
    }
    if !table.left_out.is_empty() {
        md.push_str("\nLeft out of the plot:\n\n");
        for l in &table.left_out {
            md.push_str(&format!("- {l}\n"));
        }
    }
    md
}

fn probes_frame(
    axes: &[String],
    targets: &[Target],
    found: &[Found],
    slo: &[SloTerm],
) -> Result<DataFrame> {
    let mut point = Vec::new();
    let mut params: Vec<Vec<Option<table::Node>>> = vec![Vec::new(); axes.len()];
    let mut order = Vec::new();
    let mut rate = Vec::new();
    let mut meets = Vec::new();
    let mut requests = Vec::new();
    let mut drift = Vec::new();
    let mut steady = Vec::new();
    let mut metrics: Vec<Vec<Option<f64>>> = vec![Vec::new(); slo.len()];
    for (t, f) in targets.iter().zip(found) {
        for (k, p) in f.probes.iter().enumerate() {
            point.push(t.point as u64);
            for (i, v) in t.params.iter().enumerate() {
                params[i].push(Some(table::axis_cell(v)));
            }
            order.push(k as u32);
            rate.push(p.rate);
            meets.push(p.meets);
            requests.push(p.requests);
            drift.push(p.drift);
            steady.push(p.steady);
            for (i, term) in slo.iter().enumerate() {
                metrics[i].push(worst_replicate(&p.summaries, term));
            }
        }
    }
    let mut cols = vec![Column::new("point".into(), point)];
    for (a, cells) in axes.iter().zip(params) {
        cols.push(table::typed_column(a, &cells));
    }
    cols.push(Column::new("probe".into(), order));
    cols.push(Column::new("rate_rps".into(), rate));
    cols.push(Column::new("meets_slo".into(), meets));
    cols.push(Column::new("requests".into(), requests));
    cols.push(Column::new("latency_drift".into(), drift));
    cols.push(Column::new("steady".into(), steady));
    for (t, v) in slo.iter().zip(metrics) {
        cols.push(Column::new(t.column.as_str().into(), v));
    }
    DataFrame::new_infer_height(cols).map_err(|e| Error::Internal(e.to_string()))
}

/// Whether a YAML file is a sweep file (it has `axes`) rather than a config.
fn is_sweep(path: &Path) -> Result<bool> {
    let tree = config::load_tree(path, &[])?;
    Ok(tree.get("axes").is_some())
}

/// Runs `simwatt search ...`.
pub fn main(cmd: SearchCmd) -> Result<()> {
    match cmd.verb {
        SearchVerb::Capacity(a) => capacity(a),
    }
}

/// The objectives of `--objectives` (all of them when not given) and whether they were given.
fn parse_objectives(objectives: Option<&str>) -> Result<(Vec<&'static Objective>, bool)> {
    Ok(match objectives {
        None => (OBJECTIVES.iter().collect(), false),
        Some(list) => {
            let mut v = Vec::new();
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let o = OBJECTIVES.iter().find(|o| o.name == name).ok_or_else(|| {
                    Error::invalid(
                        "--objectives",
                        "objectives",
                        name,
                        "expected cost, energy or carbon",
                    )
                })?;
                v.push(o);
            }
            (v, true)
        }
    })
}

/// The configurations to search: the config, or every point of a sweep (its replicates' config trees),
/// with `--set` applied; also the file's path and the sweep's axes.
fn load_targets(
    a: &CapacityArgs,
    catalogs: &Catalogs,
) -> Result<(PathBuf, Vec<String>, Vec<Target>)> {
    Ok(if is_sweep(&a.config)? {
        let plan = Plan::expand(&a.config)?;
        if let Some(k) = plan
            .axes
            .iter()
            .find(|k| *k == RATE_KEY || RATE_KEY.starts_with(&format!("{k}.")))
        {
            return Err(Error::Field {
                path: plan.path.clone(),
                field: format!("axes.{k}"),
                message: "a capacity search sets the request rate itself; remove this axis".into(),
            });
        }
        let invalid = plan.check_runs(catalogs)?;
        let mut targets: Vec<Target> = Vec::new();
        for (run, reason) in plan.runs.iter().zip(&invalid) {
            let mut tree = plan.tree(run)?;
            for s in &a.set {
                config::apply_override(&mut tree, s)?;
            }
            if run.replicate == 0 {
                targets.push(Target {
                    point: run.point,
                    params: run.values.clone(),
                    trees: Vec::new(),
                    invalid: None,
                });
            }
            let t = targets
                .last_mut()
                .ok_or_else(|| Error::Internal("replicate before point".into()))?;
            t.trees.push(tree);
            if let Some(r) = reason {
                t.invalid.get_or_insert_with(|| r.clone());
            }
        }
        (plan.path.clone(), plan.axes.clone(), targets)
    } else {
        let tree = config::load_tree(&a.config, &a.set)?;
        (
            a.config.clone(),
            Vec::new(),
            vec![Target {
                point: 0,
                params: Vec::new(),
                trees: vec![tree],
                invalid: None,
            }],
        )
    })
}

/// Writes capacity.csv|parquet, probes.csv, the Pareto plot (or removes a stale one) and capacity.md.
fn write_outputs(
    out: &Path,
    table: &Table,
    axes: &[String],
    targets: &[Target],
    found: &[Found],
    slo: &[SloTerm],
    quiet: bool,
) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut frame = table.frame.clone();
    table::write_csv_atomic(&out.join("capacity.csv"), &mut frame)?;
    table::write_parquet_atomic(&out.join("capacity.parquet"), &mut frame, &[])?;
    let mut probes = probes_frame(axes, targets, found, slo)?;
    table::write_csv_atomic(&out.join("probes.csv"), &mut probes)?;
    let file = match &table.chart {
        Some(chart) => Some(plots::render(chart, out)?),
        None => {
            // No plot this time: one left by an earlier search in this folder would mislead.
            for ext in ["png", "svg"] {
                let old = out.join(format!("{}.{ext}", plots::pareto::STEM));
                match std::fs::remove_file(&old) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(&old, e))
                    }
                    _ => {}
                }
            }
            None
        }
    };
    let md = out.join("capacity.md");
    let text = format!("{}{}", table.report, plot_section(table, file.as_ref()));
    std::fs::write(&md, text).map_err(|e| Error::io(&md, e))?;
    if !quiet {
        eprintln!(
            "written: {}/capacity.csv, capacity.parquet, probes.csv, capacity.md{}",
            out.display(),
            file.map(|f| format!(", {0}.png, {0}.svg", f.stem))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn capacity(a: CapacityArgs) -> Result<()> {
    let slo = parse_slo(&a.slo)?;
    if !(a.tolerance.is_finite() && a.tolerance > 0.0) {
        return Err(Error::invalid(
            "--tolerance",
            "tolerance",
            a.tolerance,
            "must be a number > 0",
        ));
    }
    if a.max_probes < 2 {
        return Err(Error::invalid(
            "--max-probes",
            "max-probes",
            a.max_probes,
            "must be at least 2",
        ));
    }
    let (wanted, explicit) = parse_objectives(a.objectives.as_deref())?;
    let caches = Caches::new()?;
    let (path, axes, targets) = load_targets(&a, &caches.catalogs)?;
    let jobs = crate::drivers::sweep::jobs(a.jobs)?;
    let pool = shard::thread_pool(jobs)?;
    let scenarios = targets
        .iter()
        .filter(|t| t.invalid.is_none())
        .map(|t| {
            let raw = config::parse_tree(&path, t.trees[0].clone())?;
            Scenario::resolve(&caches.catalogs, &path, raw)
        })
        .collect::<Result<Vec<_>>>()?;
    // The per-request SLO that slo_attainment and goodput count, named next to their bound.
    let per_request: std::collections::BTreeSet<String> = scenarios
        .iter()
        .filter_map(|s| s.slo.map(|x| x.describe()))
        .collect();
    let mut slo = slo;
    for t in slo
        .iter_mut()
        .filter(|t| PER_REQUEST_SLO_COLUMNS.contains(&t.column.as_str()))
    {
        t.per_request = match per_request.len() {
            0 => None,
            1 => per_request.first().cloned(),
            _ => Some("varies by configuration".into()),
        };
    }
    let slo = slo;
    shard::warm_predictors(scenarios.into_iter().map(Ok), &caches.tables, &pool)?;
    let t0 = std::time::Instant::now();
    let found: Vec<Found> = pool.install(|| {
        targets
            .par_iter()
            .map(|t| {
                let found =
                    shard::off_pool(|| search_target(&caches, &path, t, &slo, &a)).and_then(|r| r);
                found.map_err(|e| match e {
                    Error::Invalid { .. } | Error::Field { .. } if axes.is_empty() => e,
                    e => Error::Run {
                        run: format!("point {}", t.point),
                        error: Box::new(e),
                    },
                })
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let table = build_table(&axes, &targets, &found, &slo, &wanted, explicit)?;
    print!("{}", table.report);
    let unconfirmed: Vec<String> = targets
        .iter()
        .zip(&found)
        .filter(|(_, f)| steady_note(f).starts_with("unconfirmed"))
        .map(|(t, _)| t.point.to_string())
        .collect();
    if !unconfirmed.is_empty() {
        // Said even with --quiet: these capacities are lower bounds.
        eprintln!(
            "warning: {} of {} configurations (point {}) have a capacity not confirmed in steady state within --max-requests: too few requests; raise --max-requests",
            unconfirmed.len(),
            targets.len(),
            unconfirmed.join(", ")
        );
    }
    let sims: usize = found.iter().flat_map(|f| &f.probes).map(|p| p.runs).sum();
    if !a.quiet {
        eprintln!(
            "{} configurations, {} simulated runs in {:.2} s on {jobs} threads",
            targets.len(),
            sims,
            t0.elapsed().as_secs_f64()
        );
    }
    if let Some(out) = &a.out {
        write_outputs(out, &table, &axes, &targets, &found, &slo, a.quiet)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_names_map_to_summary_columns() {
        let t = parse_slo("ttft_p90_s=0.5, itl_p99_s=0.1,e2e_p50_s=3,scheduling_delay_mean_s=1")
            .unwrap();
        let cols: Vec<&str> = t.iter().map(|t| t.column.as_str()).collect();
        assert_eq!(
            cols,
            [
                "ttft_p90_s",
                "itl_p99_s",
                "e2e_p50_s",
                "scheduling_delay_mean_s"
            ]
        );
        assert_eq!(t[0].bound, 0.5);
        assert!(t.iter().all(|t| !t.at_least));
        // `<=` is `=`; `>=` a lower bound, kept by values at or above it.
        let t = parse_slo("ttft_p90_s<=0.5,slo_attainment>=0.9").unwrap();
        assert_eq!(
            t.iter()
                .map(|t| (t.column.as_str(), t.op(), t.bound))
                .collect::<Vec<_>>(),
            [("ttft_p90_s", "<=", 0.5), ("slo_attainment", ">=", 0.9)]
        );
        assert!(t[0].holds(0.5) && !t[0].holds(0.51));
        assert!(t[1].holds(0.9) && t[1].holds(1.0) && !t[1].holds(0.89));
        for bad in [
            "",
            "ttft_p90_s",
            "ttft_p90_s=x",
            "ttft_p90_s=-1",
            "ttft_p90_s=1,ttft_p90_s=2",
            "slo_attainment>=x",
            "slo_attainment>=0.9,slo_attainment<=1",
        ] {
            let e = parse_slo(bad).unwrap_err().to_string();
            assert!(e.contains("--slo"), "{e}");
        }
        // Spellings of earlier versions name the current one.
        let e = parse_slo("tbt_p99_s=0.2").unwrap_err().to_string();
        assert!(e.contains("`tbt_p99_s` is now called `itl_p99_s`"), "{e}");
        let e = parse_slo("ttft_s_p90=0.5").unwrap_err().to_string();
        assert!(e.contains("`ttft_p90_s`"), "{e}");
    }

    fn series(n: usize, ttft: impl Fn(usize) -> f64, e2e: f64) -> Vec<ArrivalLatency> {
        (0..n)
            .map(|i| (i as f64 * 10.0, Some(ttft(i)), Some(e2e + ttft(i))))
            .collect()
    }

    #[test]
    fn steady_state_holds_for_flat_latency_and_not_for_a_growing_queue() {
        // 400 requests 10 s apart, 1 s in the system: flat.
        let flat = steady_state(&series(400, |i| 0.2 + 0.01 * (i % 7) as f64, 1.0));
        assert!(flat.steady, "{flat:?}");
        assert!((flat.drift.unwrap() - 1.0).abs() < 0.05);
        // TTFT growing with arrival (a queue building up): drifts.
        let growing = steady_state(&series(400, |i| 0.2 + 0.005 * i as f64, 1.0));
        assert!(
            !growing.steady && growing.drift.unwrap() > 1.25,
            "{growing:?}"
        );
        // Too few requests per window to tell.
        let few = steady_state(&series(100, |_| 0.2, 1.0));
        assert!(!few.steady && few.drift.is_none(), "{few:?}");
        // Flat, but arriving over less than 4x the time each spends in the system: still filling up.
        let short = steady_state(&series(400, |_| 0.2, 1500.0));
        assert!(!short.steady && short.span_over_e2e.unwrap() < MIN_SPAN_OVER_E2E);
        // Requests that did not complete are left out of the windows.
        let mut gaps = series(400, |_| 0.2, 1.0);
        for r in gaps.iter_mut().step_by(10) {
            *r = (r.0, None, None);
        }
        assert!(steady_state(&gaps).steady);
    }

    #[test]
    fn bisection_brackets_a_threshold_within_the_tolerance() {
        // Meets the SLO up to 13.7 req/s.
        let b = bisect(2.0, 0.01, 1000.0, 0.01, 40, |r| Ok(r <= 13.7)).unwrap();
        let cap = b.capacity.unwrap();
        let fail = b.first_fail.unwrap();
        assert!(cap <= 13.7 && fail > 13.7, "{b:?}");
        assert!(fail - cap <= 0.01 * cap, "{b:?}");
        assert_eq!(b.outcome, "found");
        // Doubling from 2: 2, 4, 8, 16 (fails), then bisection.
        assert_eq!(
            &b.probes[..4],
            &[(2.0, true), (4.0, true), (8.0, true), (16.0, false)]
        );
        // Starting above the threshold halves down first.
        let b = bisect(100.0, 0.01, 1000.0, 0.01, 40, |r| Ok(r <= 13.7)).unwrap();
        assert!(
            b.capacity.unwrap() <= 13.7 && b.first_fail.unwrap() - b.capacity.unwrap() <= 0.137
        );
    }

    #[test]
    fn bisection_reports_the_ends_of_the_range() {
        let b = bisect(1.0, 0.5, 4.0, 0.01, 40, |_| Ok(true)).unwrap();
        assert_eq!(
            (b.capacity, b.first_fail, b.outcome),
            (Some(4.0), None, "at_max_rate")
        );
        let b = bisect(1.0, 0.5, 4.0, 0.01, 40, |_| Ok(false)).unwrap();
        assert_eq!(
            (b.capacity, b.first_fail, b.outcome),
            (None, Some(0.5), "below_min_rate")
        );
        let b = bisect(1.0, 0.001, 1e6, 1e-9, 5, |r| Ok(r < 3.3)).unwrap();
        assert_eq!(b.probes.len(), 5);
        assert_eq!(b.outcome, "max_probes");
    }

    #[test]
    fn pareto_keeps_the_rows_no_other_row_beats_everywhere() {
        let cap = [Some(10.0), Some(20.0), Some(5.0), None, Some(20.0)];
        let cost = vec![vec![Some(1.0), Some(2.0), Some(1.5), Some(0.1), Some(2.0)]];
        // Row 2 is dominated by row 0 (more capacity, cheaper); row 3 has no capacity; rows 1 and 4
        // tie, so neither dominates the other.
        assert_eq!(pareto(&cap, &cost), [true, true, false, false, true]);
    }
}
