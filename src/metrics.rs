//! Run metrics: per-request rows and the run summary, computed from a [`SimResult`] and the finished
//! requests' [`RequestStats`].
//!
//! Every metric here is defined, with its unit, in docs/metrics.md; names carry their unit (`_s`,
//! `_per_s`). Percentiles are linear interpolations between order statistics (numpy's default), except
//! the token-gap percentiles, which come from a histogram with 3 significant digits (error < 0.1%).
//!
//! [`Summary`] is the one schema of summary.json: written by `simulate`, read back as the same struct by
//! the report, the capacity search and validation. Each metric has one name, the same in summary.json,
//! sweep and capacity tables, SLO bounds, validation and plots: `<metric>_<stat>_<unit>` for latency
//! statistics (`ttft_p90_s`, `itl_p99_s`, `tpot_mean_s`). A name resolves through [`SUMMARY_COLUMNS`];
//! the unit a name carries comes from [`unit_of_column`]; a retired spelling (`ttft_s_p90`,
//! `tbt_p99_s`) gets the current name from [`renamed_metric`]. This module reads no file.

use crate::cluster::{Phase, Request, NO_REPLICA, NO_SESSION};
use crate::config::raw::SloConfig;
use crate::config::Scenario;
use crate::sim::SimResult;
use crate::units::ns_to_secs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Mean and percentiles of a latency, seconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// The `q` quantile (0..=1) of sorted values, interpolating linearly between order statistics.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Stats {
    /// Statistics of `values` (any order); `None` when empty.
    pub fn of(mut values: Vec<f64>) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        Some(Stats {
            mean,
            p50: quantile_sorted(&values, 0.5),
            p90: quantile_sorted(&values, 0.9),
            p99: quantile_sorted(&values, 0.99),
        })
    }
}

/// One request's outcome, as written to requests.csv / requests.parquet.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRow {
    pub request_id: u64,
    pub arrival_s: f64,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    pub replica: u32,
    /// Disaggregated serving: the prefill replica it was prefilled on before moving to `replica`, its
    /// decode replica; null when it never moved (colocated serving, or not prefilled).
    pub prefill_replica: Option<u32>,
    /// `completed`, or `rejected_<reason>`.
    pub status: &'static str,
    pub scheduled_s: Option<f64>,
    pub first_token_s: Option<f64>,
    pub completion_s: Option<f64>,
    pub ttft_s: Option<f64>,
    pub e2e_s: Option<f64>,
    /// Time per output token: `(completion - first token) / (output_tokens - 1)`.
    pub tpot_s: Option<f64>,
    /// The request's largest inter-token latency (gap between consecutive output tokens).
    pub itl_max_s: Option<f64>,
    pub preemptions: u32,
    /// Prompt tokens taken from the prefix cache instead of prefilled, over its admissions.
    pub cached_tokens: u32,
    /// The multi-turn session it belongs to and its turn in it (0: the first); null outside sessions.
    pub session: Option<u32>,
    pub turn: Option<u32>,
    /// Whether it completed within every bound of the config's `slo`; null without one.
    pub slo_met: Option<bool>,
    /// A deferrable request's wait from its submission to `arrival_s` (carbon-aware holding; 0 when
    /// released at once); null for an ordinary request.
    pub held_s: Option<f64>,
    /// A deferrable request's deadline (run time it must complete by); null for an ordinary one.
    pub deadline_s: Option<f64>,
    /// Whether a deferrable request completed by its deadline (false when rejected or unfinished);
    /// null for an ordinary one.
    pub deadline_met: Option<bool>,
    /// Busy GPU energy attributed to this request (prefill + decode), joules; null without a power
    /// profile.
    pub energy_j: Option<f64>,
    pub prefill_energy_j: Option<f64>,
    pub decode_energy_j: Option<f64>,
    /// Operational carbon of `energy_j` in the headline region, grams CO2e.
    pub carbon_g: Option<f64>,
}

impl RequestRow {
    /// The row of request `id`, judged against `slo` when the run has one.
    pub fn from_request(id: usize, r: &Request, slo: Option<&SloConfig>) -> Self {
        let status = match r.phase {
            Phase::Completed => "completed",
            Phase::Rejected(reason) => reason.status(),
            _ => "unfinished",
        };
        let done = r.phase == Phase::Completed;
        let first = r.first_token_ns.filter(|_| done);
        let completion = r.completion_ns.filter(|_| done);
        let tpot = match (first, completion) {
            (Some(f), Some(c)) if r.output_tokens > 1 => {
                Some(ns_to_secs(c - f) / (r.output_tokens - 1) as f64)
            }
            _ => None,
        };
        let ttft = first.map(|f| ns_to_secs(f - r.arrival_ns));
        let e2e = completion.map(|c| ns_to_secs(c - r.arrival_ns));
        RequestRow {
            request_id: id as u64,
            arrival_s: ns_to_secs(r.arrival_ns),
            prompt_tokens: r.prompt_tokens,
            output_tokens: r.output_tokens,
            replica: r.replica,
            prefill_replica: (r.prefill_replica != NO_REPLICA).then_some(r.prefill_replica),
            status,
            scheduled_s: r.scheduled_ns.map(ns_to_secs),
            first_token_s: first.map(ns_to_secs),
            completion_s: completion.map(ns_to_secs),
            ttft_s: ttft,
            e2e_s: e2e,
            tpot_s: tpot,
            itl_max_s: if done && r.output_tokens > 1 {
                Some(ns_to_secs(r.tbt_max_ns))
            } else {
                None
            },
            preemptions: r.preemptions,
            cached_tokens: r.cached_tokens,
            session: (r.session != NO_SESSION).then_some(r.session),
            turn: (r.session != NO_SESSION).then_some(r.turn),
            slo_met: slo.map(|s| s.met(ttft, tpot, e2e)),
            held_s: r.deadline_ns.map(|_| ns_to_secs(r.held_ns)),
            deadline_s: r.deadline_ns.map(ns_to_secs),
            deadline_met: r.deadline_ns.map(|d| completion.is_some_and(|c| c <= d)),
            energy_j: None,
            prefill_energy_j: None,
            decode_energy_j: None,
            carbon_g: None,
        }
    }
}

/// The run summary written to summary.json, and read back from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub simwatt_version: String,
    pub seed: u64,
    pub model: String,
    pub gpu: String,
    pub policy: String,
    pub replicas: u32,
    pub gpus_per_replica: u32,
    pub predictor: String,
    pub requests_total: u64,
    pub requests_completed: u64,
    pub requests_rejected: u64,
    /// Rejected requests by reason.
    pub requests_rejected_by_reason: BTreeMap<String, u64>,
    pub preemptions: u64,
    /// Prompt tokens taken from the prefix cache instead of prefilled (0 without prefix caching).
    pub prefix_cached_tokens: u64,
    /// `prefix_cached_tokens / (prefix_cached_tokens + prompt tokens prefilled)`: the share of prompt
    /// work the prefix cache saved (0 when nothing was prefilled or cached).
    pub prefix_hit_rate: f64,
    pub makespan_s: f64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub output_tokens_per_s: f64,
    pub requests_per_s: f64,
    /// Share of all requests (rejected and unfinished ones included) that completed within every
    /// bound of the config's `slo`; null without one.
    #[serde(default)]
    pub slo_attainment: Option<f64>,
    /// Requests that met the SLO per second of `makespan_s` (vLLM's benchmark "request goodput"); null
    /// without an SLO.
    #[serde(default)]
    pub goodput_requests_per_s: Option<f64>,
    /// Requests marked deferrable (`workload.deferrable`); null without.
    #[serde(default)]
    pub deferrable_requests: Option<u64>,
    /// Of them, those carbon-aware holding released later than submitted; null without deferrable
    /// requests.
    #[serde(default)]
    pub held_requests: Option<u64>,
    /// Mean and largest `held_s` over the deferrable requests (the latency holding added), seconds;
    /// null when there are none.
    #[serde(default)]
    pub hold_mean_s: Option<f64>,
    #[serde(default)]
    pub hold_max_s: Option<f64>,
    /// Share of the deferrable requests that completed by their deadline; null when there are none.
    #[serde(default)]
    pub deadline_attainment: Option<f64>,
    /// Latency statistics, flat: `ttft_mean_s`, `ttft_p50_s`, ... (docs/metrics.md).
    #[serde(flatten)]
    pub latency: Latency,
    pub batches: u64,
    pub batch_stages: u64,
    pub mean_batch_requests: f64,
    pub kv_blocks_per_replica: u64,
    pub kv_block_size_tokens: u32,
    /// Disaggregated serving: replicas that only prefill (the first ones); 0: colocated serving.
    #[serde(default)]
    pub prefill_replicas: u32,
    /// With `hardware.prefill_pool`: the prefill pool's device, GPUs per prefill replica and KV-cache
    /// blocks per prefill replica (`gpu`, `gpus_per_replica` and `kv_blocks_per_replica` are then the
    /// decode pool's); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_pool_gpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_pool_gpus_per_replica: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_pool_kv_blocks_per_replica: Option<u64>,
    /// KV caches moved from the prefill pool to the decode pool, and their size, GB (1e9 bytes).
    #[serde(default)]
    pub kv_transfers: u64,
    #[serde(default)]
    pub kv_transfer_gb: f64,
    /// Mean time from a request's prefill end to its KV cache's arrival at its decode replica (waiting
    /// for a busy link included), seconds; null without transfers.
    #[serde(default)]
    pub kv_transfer_delay_mean_s: Option<f64>,
    /// Share of the span the GPU groups of each pool were running batch stages (mean over the
    /// pool's groups); null for colocated serving.
    #[serde(default)]
    pub prefill_pool_busy_fraction: Option<f64>,
    #[serde(default)]
    pub decode_pool_busy_fraction: Option<f64>,
    pub events: u64,
    pub sim_wall_s: f64,
    pub sim_requests_per_wall_s: f64,
    pub sim_events_per_wall_s: f64,
    #[serde(flatten)]
    pub energy: EnergySummary,
    /// Keys of a summary.json that this schema does not name (written by another version, or added by
    /// hand); empty in a summary made here. The report lists them under "Other values".
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Which latency a [`Latency`] statistic is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyMetric {
    /// Time to first token, per completed request.
    Ttft,
    /// Time per output token, per completed request with more than one output token.
    Tpot,
    /// Inter-token latency: every gap between consecutive output tokens of every completed request.
    Itl,
    /// End-to-end latency, per completed request.
    E2e,
    /// Arrival to first admission into a batch, per completed request.
    SchedulingDelay,
}

macro_rules! latency {
    ($($metric:ident: $mean:ident, $p50:ident, $p90:ident, $p99:ident;)*) => {
        /// The latency statistics of a run, written flat into summary.json (`ttft_p90_s`); a `null`
        /// statistic has no value (nothing completed, or no request with two output tokens).
        #[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
        pub struct Latency {
            $(
                pub $mean: Option<f64>,
                pub $p50: Option<f64>,
                pub $p90: Option<f64>,
                pub $p99: Option<f64>,
            )*
        }

        impl Latency {
            /// The statistics of one metric (`None` when null).
            pub fn get(&self, m: LatencyMetric) -> Option<Stats> {
                match m {
                    $(LatencyMetric::$metric => Some(Stats {
                        mean: self.$mean?,
                        p50: self.$p50?,
                        p90: self.$p90?,
                        p99: self.$p99?,
                    }),)*
                }
            }

            /// Sets the statistics of one metric.
            pub fn set(&mut self, m: LatencyMetric, st: Option<Stats>) {
                match m {
                    $(LatencyMetric::$metric => {
                        self.$mean = st.map(|s| s.mean);
                        self.$p50 = st.map(|s| s.p50);
                        self.$p90 = st.map(|s| s.p90);
                        self.$p99 = st.map(|s| s.p99);
                    })*
                }
            }
        }
    };
}

latency! {
    Ttft: ttft_mean_s, ttft_p50_s, ttft_p90_s, ttft_p99_s;
    Tpot: tpot_mean_s, tpot_p50_s, tpot_p90_s, tpot_p99_s;
    Itl: itl_mean_s, itl_p50_s, itl_p90_s, itl_p99_s;
    E2e: e2e_mean_s, e2e_p50_s, e2e_p90_s, e2e_p99_s;
    SchedulingDelay: scheduling_delay_mean_s, scheduling_delay_p50_s, scheduling_delay_p90_s, scheduling_delay_p99_s;
}

impl Summary {
    /// Time to first token over completed requests.
    pub fn ttft(&self) -> Option<Stats> {
        self.latency.get(LatencyMetric::Ttft)
    }
    /// Time per output token over completed requests with more than one output token.
    pub fn tpot(&self) -> Option<Stats> {
        self.latency.get(LatencyMetric::Tpot)
    }
    /// Inter-token latency over every token gap of every completed request.
    pub fn itl(&self) -> Option<Stats> {
        self.latency.get(LatencyMetric::Itl)
    }
    /// End-to-end latency over completed requests.
    pub fn e2e(&self) -> Option<Stats> {
        self.latency.get(LatencyMetric::E2e)
    }
    /// Scheduling delay over completed requests.
    pub fn scheduling_delay(&self) -> Option<Stats> {
        self.latency.get(LatencyMetric::SchedulingDelay)
    }
}

/// The current name of a metric spelled as an earlier version did (`ttft_s_p90`, `ttft_s.p90` ->
/// `ttft_p90_s`; `tbt_*` -> `itl_*`; `tbt_mean_s` of a request -> `tpot_s`), or `None` when `name` is
/// not such a spelling.
pub fn renamed_metric(name: &str) -> Option<String> {
    let stats = ["mean", "p50", "p90", "p99"];
    let fix = |m: &str| -> String {
        match m {
            "tbt" => "itl".into(),
            m => m.into(),
        }
    };
    for metric in ["ttft", "tbt", "e2e", "scheduling_delay", "tpot", "itl"] {
        for stat in stats {
            for old in [
                format!("{metric}_s_{stat}"),
                format!("{metric}_s.{stat}"),
                format!("{metric}_{stat}_s"),
            ] {
                if name == old {
                    let new = format!("{}_{stat}_s", fix(metric));
                    return (new != name).then_some(new);
                }
            }
        }
    }
    match name {
        "tbt_mean_s" => Some("tpot_s (per request) or itl_mean_s (over every token gap)".into()),
        "tbt_max_s" => Some("itl_max_s".into()),
        "tbt_s" => Some("itl_mean_s, itl_p50_s, ...".into()),
        _ => None,
    }
}

/// Energy, carbon, cost and water of a run (see docs/metrics.md). Values are null when the input they
/// need is missing; `energy_note` and each region's `notes` say what was missing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnergySummary {
    /// The power profile used (path) and how its parameters were obtained.
    pub power_profile: Option<String>,
    pub power_profile_method: Option<String>,
    pub energy_note: Option<String>,
    /// GPU energy (busy + idle, every GPU, whole span), joules.
    pub energy_j: Option<f64>,
    pub busy_energy_j: Option<f64>,
    pub idle_energy_j: Option<f64>,
    pub host_energy_j: Option<f64>,
    /// Prefill and decode shares of the busy energy, joules.
    pub prefill_energy_j: Option<f64>,
    pub decode_energy_j: Option<f64>,
    pub avg_power_w: Option<f64>,
    pub j_per_output_token: Option<f64>,
    pub j_per_request: Option<f64>,
    pub tdp_baseline_energy_j: Option<f64>,
    pub vidur_baseline_energy_j: Option<f64>,
    /// Disaggregated serving: GPU energy (busy + idle) and mean GPU power of each pool, and the
    /// energy of the links that moved KV caches between them (part of the facility energy, not of
    /// `energy_j`); null for colocated serving.
    #[serde(default)]
    pub prefill_pool_energy_j: Option<f64>,
    #[serde(default)]
    pub decode_pool_energy_j: Option<f64>,
    #[serde(default)]
    pub prefill_pool_avg_power_w: Option<f64>,
    #[serde(default)]
    pub decode_pool_avg_power_w: Option<f64>,
    #[serde(default)]
    pub kv_link_energy_j: Option<f64>,
    /// Partial GPU offload: the host CPUs' energy (loaded idle over the span, and their power above
    /// it while they run their layers, by their power profile), joules: part of the facility energy
    /// (and carbon, cost, water), not of `energy_j`; and the GPU's and the host CPU's energy
    /// together per output token, J. Absent (null) without offload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu_energy_j: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_and_host_cpu_j_per_output_token: Option<f64>,
    /// On-site solar and battery (config `microgrid`, docs/microgrid.md), over the run's hours in the
    /// headline region: solar energy after the inverter, the part of it the load used, the battery's
    /// deliveries to the load, grid import (to the load and to charge the battery), export and
    /// curtailment, kWh; null without a microgrid. With one, `carbon_g`, `carbon_g_per_1k_tokens` and
    /// `cost_usd` count grid import only, and `carbon_without_microgrid_g` is the carbon of the same
    /// facility energy all from the grid.
    #[serde(default)]
    pub solar_energy_kwh: Option<f64>,
    #[serde(default)]
    pub solar_used_kwh: Option<f64>,
    #[serde(default)]
    pub battery_discharge_kwh: Option<f64>,
    #[serde(default)]
    pub grid_import_kwh: Option<f64>,
    #[serde(default)]
    pub grid_export_kwh: Option<f64>,
    #[serde(default)]
    pub solar_curtailed_kwh: Option<f64>,
    #[serde(default)]
    pub carbon_without_microgrid_g: Option<f64>,
    /// Embodied carbon of the microgrid's array and battery over the span, amortised over their
    /// lifetimes as the GPUs' is, grams CO2e (null without a microgrid, the battery's without a
    /// battery); with a microgrid both are part of `embodied_carbon_g`.
    #[serde(default)]
    pub solar_embodied_carbon_g: Option<f64>,
    #[serde(default)]
    pub battery_embodied_carbon_g: Option<f64>,
    /// `edge.battery`: the energy the pack delivers to the device (capacity x usable fraction x
    /// converter efficiency), Wh; the share of it the run drew (GPU and host energy over the span, and
    /// the host CPU's under partial offload); and how long the pack lasts at the run's mean power
    /// (the same), hours.
    #[serde(default)]
    pub battery_usable_wh: Option<f64>,
    #[serde(default)]
    pub battery_drain_fraction: Option<f64>,
    #[serde(default)]
    pub battery_runtime_h: Option<f64>,
    /// `edge.thermal`: the highest temperature a GPU group reached, degrees C, and the time its stages
    /// ran throttled, summed over groups, seconds.
    #[serde(default)]
    pub max_temperature_c: Option<f64>,
    #[serde(default)]
    pub throttled_s: Option<f64>,
    /// Energy-delay products (docs/metrics.md): per request, `j_per_request` x `e2e_mean_s` (J s) and
    /// x `e2e_mean_s` squared (ED^2P, J s^2); per output token, `j_per_output_token` x `tpot_mean_s`
    /// (J s).
    #[serde(default)]
    pub edp_j_s: Option<f64>,
    #[serde(default)]
    pub ed2p_j_s2: Option<f64>,
    #[serde(default)]
    pub token_edp_j_s: Option<f64>,
    /// Headline region (the first configured) and its figures.
    pub region: Option<String>,
    pub energy_kwh_facility: Option<f64>,
    pub carbon_g: Option<f64>,
    pub carbon_g_per_1k_tokens: Option<f64>,
    pub embodied_carbon_g: Option<f64>,
    pub cost_usd: Option<f64>,
    pub water_l: Option<f64>,
    /// Every configured region.
    pub regions: Vec<crate::accounting::RegionReport>,
}

/// What the summary needs of the requests, accumulated one finished request at a time (so a streamed
/// run need not keep its requests): counts and token sums, and the completed requests' latencies for
/// exact percentiles (32 bytes per completed request).
#[derive(Debug, Clone, Default)]
pub struct RequestStats {
    pub total: u64,
    pub completed: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub preemptions: u64,
    /// Prompt tokens taken from the prefix cache, over every request and admission.
    pub cached_tokens: u64,
    /// Latest completion among completed requests, seconds.
    pub makespan_s: f64,
    /// Prompt and output tokens of completed requests.
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub ttft_s: Vec<f64>,
    pub tpot_s: Vec<f64>,
    pub e2e_s: Vec<f64>,
    pub scheduling_delay_s: Vec<f64>,
    /// Requests that met the run's SLO (0 without one).
    pub slo_met: u64,
    /// Deferrable requests, those held, their summed and largest hold (s), and those that completed
    /// by their deadline.
    pub deferrable: u64,
    pub held: u64,
    pub held_sum_s: f64,
    pub held_max_s: f64,
    pub deadline_met: u64,
    /// Busy GPU energy attributed to prefill and decode, summed over every request, joules.
    pub prefill_energy_j: f64,
    pub decode_energy_j: f64,
}

impl RequestStats {
    /// Adds a finished request `r` and its row.
    pub fn add(&mut self, r: &Request, row: &RequestRow) {
        self.total += 1;
        if let Phase::Rejected(reason) = r.phase {
            *self
                .rejected_by_reason
                .entry(reason.name().to_string())
                .or_insert(0) += 1;
        }
        self.preemptions += r.preemptions as u64;
        self.cached_tokens += r.cached_tokens as u64;
        self.prefill_energy_j += r.prefill_energy_j;
        self.decode_energy_j += r.decode_energy_j;
        self.slo_met += u64::from(row.slo_met == Some(true));
        if let Some(h) = row.held_s {
            self.deferrable += 1;
            self.held += u64::from(h > 0.0);
            self.held_sum_s += h;
            self.held_max_s = self.held_max_s.max(h);
            self.deadline_met += u64::from(row.deadline_met == Some(true));
        }
        if row.status != "completed" {
            return;
        }
        self.completed += 1;
        if let Some(c) = row.completion_s {
            self.makespan_s = self.makespan_s.max(c);
        }
        self.output_tokens += row.output_tokens as u64;
        self.prompt_tokens += row.prompt_tokens as u64;
        self.ttft_s.extend(row.ttft_s);
        self.tpot_s.extend(row.tpot_s);
        self.e2e_s.extend(row.e2e_s);
        self.scheduling_delay_s
            .extend(row.scheduled_s.map(|t| t - row.arrival_s));
    }

    /// Statistics of requests kept in memory, by id.
    pub fn of(requests: &[Request], rows: &[RequestRow]) -> Self {
        let mut s = RequestStats::default();
        for (r, row) in requests.iter().zip(rows) {
            s.add(r, row);
        }
        s
    }
}

/// Builds the summary of a run. `wall_s` is the wall-clock time of the simulation itself.
pub fn summarize(
    s: &Scenario,
    predictor: &str,
    res: &SimResult,
    stats: &RequestStats,
    wall_s: f64,
) -> Summary {
    let makespan_s = stats.makespan_s;
    let output_tokens = stats.output_tokens;
    let prompt_tokens = stats.prompt_tokens;
    let per_s = |x: f64| {
        if makespan_s > 0.0 {
            x / makespan_s
        } else {
            0.0
        }
    };
    let itl = if res.tbt_ns.is_empty() {
        None
    } else {
        let q = |p: f64| ns_to_secs(res.tbt_ns.value_at_quantile(p));
        Some(Stats {
            mean: res.tbt_sum_ns as f64 / res.tbt_ns.len() as f64 / 1e9,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
        })
    };
    let (batches, batch_reqs) = (res.batches_last_stage, res.batch_requests_last_stage);
    let total = stats.total;
    let rejected = stats.rejected_by_reason.values().sum();
    Summary {
        simwatt_version: env!("CARGO_PKG_VERSION").to_string(),
        seed: s.seed,
        model: s.model_name.clone(),
        gpu: s.device_name.clone(),
        policy: s.scheduler.policy.name().to_string(),
        replicas: s.hardware.replicas,
        gpus_per_replica: s.gpus_per_replica(),
        predictor: predictor.to_string(),
        requests_total: total,
        requests_completed: stats.completed,
        requests_rejected: rejected,
        requests_rejected_by_reason: stats.rejected_by_reason.clone(),
        preemptions: stats.preemptions,
        prefix_cached_tokens: stats.cached_tokens,
        prefix_hit_rate: {
            let all = stats.cached_tokens + res.prefill_tokens;
            if all > 0 {
                stats.cached_tokens as f64 / all as f64
            } else {
                0.0
            }
        },
        makespan_s,
        prompt_tokens,
        output_tokens,
        output_tokens_per_s: per_s(output_tokens as f64),
        requests_per_s: per_s(stats.completed as f64),
        slo_attainment: s.slo.map(|_| stats.slo_met as f64 / total.max(1) as f64),
        goodput_requests_per_s: s.slo.map(|_| per_s(stats.slo_met as f64)),
        deferrable_requests: s.workload.deferrable.map(|_| stats.deferrable),
        held_requests: s.workload.deferrable.map(|_| stats.held),
        hold_mean_s: (stats.deferrable > 0).then(|| stats.held_sum_s / stats.deferrable as f64),
        hold_max_s: (stats.deferrable > 0).then_some(stats.held_max_s),
        deadline_attainment: (stats.deferrable > 0)
            .then(|| stats.deadline_met as f64 / stats.deferrable as f64),
        latency: {
            let mut l = Latency::default();
            l.set(LatencyMetric::Ttft, Stats::of(stats.ttft_s.clone()));
            l.set(LatencyMetric::Tpot, Stats::of(stats.tpot_s.clone()));
            l.set(LatencyMetric::Itl, itl);
            l.set(LatencyMetric::E2e, Stats::of(stats.e2e_s.clone()));
            l.set(
                LatencyMetric::SchedulingDelay,
                Stats::of(stats.scheduling_delay_s.clone()),
            );
            l
        },
        batches,
        batch_stages: res.batch_steps,
        mean_batch_requests: if batches > 0 {
            batch_reqs as f64 / batches as f64
        } else {
            0.0
        },
        kv_blocks_per_replica: res.kv_units_per_replica,
        kv_block_size_tokens: s.memory.block_size,
        prefill_replicas: s.disaggregation.as_ref().map_or(0, |d| d.prefill_replicas),
        prefill_pool_gpu: s.prefill_pool.as_ref().map(|p| p.device_name.clone()),
        prefill_pool_gpus_per_replica: s.prefill_pool.as_ref().map(|p| p.gpus_per_replica()),
        prefill_pool_kv_blocks_per_replica: res.prefill_kv_units_per_replica,
        kv_transfers: res.kv.count,
        kv_transfer_gb: res.kv.bytes as f64 / 1e9,
        kv_transfer_delay_mean_s: (res.kv.count > 0)
            .then(|| res.kv.delay_ns as f64 / res.kv.count as f64 / 1e9),
        prefill_pool_busy_fraction: pool_busy(s, res, true),
        decode_pool_busy_fraction: pool_busy(s, res, false),
        events: res.events,
        sim_wall_s: wall_s,
        sim_requests_per_wall_s: if wall_s > 0.0 {
            total as f64 / wall_s
        } else {
            0.0
        },
        sim_events_per_wall_s: if wall_s > 0.0 {
            res.events as f64 / wall_s
        } else {
            0.0
        },
        energy: EnergySummary::default(),
        other: BTreeMap::new(),
    }
}

impl EnergySummary {
    /// Fills the energy-delay products from the energy figures and `latency` (null where either is).
    pub fn fill_energy_delay(&mut self, latency: &Latency) {
        self.edp_j_s = self
            .j_per_request
            .zip(latency.e2e_mean_s)
            .map(|(j, d)| j * d);
        self.ed2p_j_s2 = self
            .j_per_request
            .zip(latency.e2e_mean_s)
            .map(|(j, d)| j * d * d);
        self.token_edp_j_s = self
            .j_per_output_token
            .zip(latency.tpot_mean_s)
            .map(|(j, d)| j * d);
    }
}

/// Disaggregated serving: the mean busy share of the GPU groups of the prefill pool (`prefill`) or the
/// decode pool over the run's span (`None`: colocated, or an empty span).
fn pool_busy(s: &Scenario, res: &SimResult, prefill: bool) -> Option<f64> {
    let groups = pool_groups(s, prefill)?;
    let span = res.end_ns as f64;
    if span <= 0.0 || groups.is_empty() {
        return None;
    }
    let busy: f64 = res.group_busy_ns[groups.clone()]
        .iter()
        .map(|&b| b as f64)
        .sum();
    Some(busy / span / groups.len() as f64)
}

/// The GPU groups (replica x pipeline stage, in that order) of the prefill or decode pool of a
/// disaggregated scenario (`None`: colocated).
pub fn pool_groups(s: &Scenario, prefill: bool) -> Option<std::ops::Range<usize>> {
    let d = s.disaggregation.as_ref()?;
    let stages = s.hardware.pipeline_stages as usize;
    let split = d.prefill_replicas as usize * stages;
    let all = s.hardware.replicas as usize * stages;
    Some(if prefill { 0..split } else { split..all })
}

/// A numeric column of the summary, named as in summary.json and a sweep's results table (a nested
/// key's path joined with `_`).
pub struct SummaryColumn {
    pub name: &'static str,
    /// The value; `None` when the summary holds null there (no energy without a power profile, no
    /// latency without a completed request).
    pub get: fn(&Summary) -> Option<f64>,
}

macro_rules! columns {
    ($($name:literal => |$s:ident| $get:expr),* $(,)?) => {
        [$(SummaryColumn { name: $name, get: |$s: &Summary| $get }),*]
    };
}

/// Every numeric column of the summary, in summary.json's order, defined once: the capacity search's
/// SLO bounds and objectives resolve user-named columns here. `requests_rejected_by_reason_<reason>`
/// columns follow the reasons a run has ([`Summary::column`]); the simulator's own wall-clock speed
/// (`sim_*wall*`) is no column, since it differs from run to run.
pub const SUMMARY_COLUMNS: [SummaryColumn; 91] = columns![
    "seed" => |s| Some(s.seed as f64),
    "replicas" => |s| Some(s.replicas as f64),
    "gpus_per_replica" => |s| Some(s.gpus_per_replica as f64),
    "requests_total" => |s| Some(s.requests_total as f64),
    "requests_completed" => |s| Some(s.requests_completed as f64),
    "requests_rejected" => |s| Some(s.requests_rejected as f64),
    "preemptions" => |s| Some(s.preemptions as f64),
    "prefix_cached_tokens" => |s| Some(s.prefix_cached_tokens as f64),
    "prefix_hit_rate" => |s| Some(s.prefix_hit_rate),
    "makespan_s" => |s| Some(s.makespan_s),
    "prompt_tokens" => |s| Some(s.prompt_tokens as f64),
    "output_tokens" => |s| Some(s.output_tokens as f64),
    "output_tokens_per_s" => |s| Some(s.output_tokens_per_s),
    "requests_per_s" => |s| Some(s.requests_per_s),
    "slo_attainment" => |s| s.slo_attainment,
    "goodput_requests_per_s" => |s| s.goodput_requests_per_s,
    "ttft_mean_s" => |s| s.latency.ttft_mean_s,
    "ttft_p50_s" => |s| s.latency.ttft_p50_s,
    "ttft_p90_s" => |s| s.latency.ttft_p90_s,
    "ttft_p99_s" => |s| s.latency.ttft_p99_s,
    "tpot_mean_s" => |s| s.latency.tpot_mean_s,
    "tpot_p50_s" => |s| s.latency.tpot_p50_s,
    "tpot_p90_s" => |s| s.latency.tpot_p90_s,
    "tpot_p99_s" => |s| s.latency.tpot_p99_s,
    "itl_mean_s" => |s| s.latency.itl_mean_s,
    "itl_p50_s" => |s| s.latency.itl_p50_s,
    "itl_p90_s" => |s| s.latency.itl_p90_s,
    "itl_p99_s" => |s| s.latency.itl_p99_s,
    "e2e_mean_s" => |s| s.latency.e2e_mean_s,
    "e2e_p50_s" => |s| s.latency.e2e_p50_s,
    "e2e_p90_s" => |s| s.latency.e2e_p90_s,
    "e2e_p99_s" => |s| s.latency.e2e_p99_s,
    "scheduling_delay_mean_s" => |s| s.latency.scheduling_delay_mean_s,
    "scheduling_delay_p50_s" => |s| s.latency.scheduling_delay_p50_s,
    "scheduling_delay_p90_s" => |s| s.latency.scheduling_delay_p90_s,
    "scheduling_delay_p99_s" => |s| s.latency.scheduling_delay_p99_s,
    "batches" => |s| Some(s.batches as f64),
    "batch_stages" => |s| Some(s.batch_stages as f64),
    "mean_batch_requests" => |s| Some(s.mean_batch_requests),
    "kv_blocks_per_replica" => |s| Some(s.kv_blocks_per_replica as f64),
    "kv_block_size_tokens" => |s| Some(s.kv_block_size_tokens as f64),
    "prefill_replicas" => |s| Some(s.prefill_replicas as f64),
    "kv_transfers" => |s| Some(s.kv_transfers as f64),
    "kv_transfer_gb" => |s| Some(s.kv_transfer_gb),
    "kv_transfer_delay_mean_s" => |s| s.kv_transfer_delay_mean_s,
    "prefill_pool_busy_fraction" => |s| s.prefill_pool_busy_fraction,
    "prefill_pool_gpus_per_replica" => |s| s.prefill_pool_gpus_per_replica.map(f64::from),
    "prefill_pool_kv_blocks_per_replica" => |s| s.prefill_pool_kv_blocks_per_replica.map(|b| b as f64),
    "decode_pool_busy_fraction" => |s| s.decode_pool_busy_fraction,
    "events" => |s| Some(s.events as f64),
    "energy_j" => |s| s.energy.energy_j,
    "busy_energy_j" => |s| s.energy.busy_energy_j,
    "idle_energy_j" => |s| s.energy.idle_energy_j,
    "host_energy_j" => |s| s.energy.host_energy_j,
    "prefill_energy_j" => |s| s.energy.prefill_energy_j,
    "decode_energy_j" => |s| s.energy.decode_energy_j,
    "avg_power_w" => |s| s.energy.avg_power_w,
    "j_per_output_token" => |s| s.energy.j_per_output_token,
    "j_per_request" => |s| s.energy.j_per_request,
    "tdp_baseline_energy_j" => |s| s.energy.tdp_baseline_energy_j,
    "vidur_baseline_energy_j" => |s| s.energy.vidur_baseline_energy_j,
    "prefill_pool_energy_j" => |s| s.energy.prefill_pool_energy_j,
    "decode_pool_energy_j" => |s| s.energy.decode_pool_energy_j,
    "prefill_pool_avg_power_w" => |s| s.energy.prefill_pool_avg_power_w,
    "decode_pool_avg_power_w" => |s| s.energy.decode_pool_avg_power_w,
    "kv_link_energy_j" => |s| s.energy.kv_link_energy_j,
    "host_cpu_energy_j" => |s| s.energy.host_cpu_energy_j,
    "gpu_and_host_cpu_j_per_output_token" => |s| s.energy.gpu_and_host_cpu_j_per_output_token,
    "solar_energy_kwh" => |s| s.energy.solar_energy_kwh,
    "solar_used_kwh" => |s| s.energy.solar_used_kwh,
    "battery_discharge_kwh" => |s| s.energy.battery_discharge_kwh,
    "grid_import_kwh" => |s| s.energy.grid_import_kwh,
    "grid_export_kwh" => |s| s.energy.grid_export_kwh,
    "solar_curtailed_kwh" => |s| s.energy.solar_curtailed_kwh,
    "carbon_without_microgrid_g" => |s| s.energy.carbon_without_microgrid_g,
    "solar_embodied_carbon_g" => |s| s.energy.solar_embodied_carbon_g,
    "battery_embodied_carbon_g" => |s| s.energy.battery_embodied_carbon_g,
    "battery_usable_wh" => |s| s.energy.battery_usable_wh,
    "battery_drain_fraction" => |s| s.energy.battery_drain_fraction,
    "battery_runtime_h" => |s| s.energy.battery_runtime_h,
    "max_temperature_c" => |s| s.energy.max_temperature_c,
    "throttled_s" => |s| s.energy.throttled_s,
    "edp_j_s" => |s| s.energy.edp_j_s,
    "ed2p_j_s2" => |s| s.energy.ed2p_j_s2,
    "token_edp_j_s" => |s| s.energy.token_edp_j_s,
    "energy_kwh_facility" => |s| s.energy.energy_kwh_facility,
    "carbon_g" => |s| s.energy.carbon_g,
    "carbon_g_per_1k_tokens" => |s| s.energy.carbon_g_per_1k_tokens,
    "embodied_carbon_g" => |s| s.energy.embodied_carbon_g,
    "cost_usd" => |s| s.energy.cost_usd,
    "water_l" => |s| s.energy.water_l,
];

/// Prefix of the per-reason rejection columns (`requests_rejected_by_reason_context_length`).
const REJECTED_BY_REASON: &str = "requests_rejected_by_reason_";

impl Summary {
    /// Whether `name` is a numeric column of this summary (its value may still be null).
    pub fn has_column(&self, name: &str) -> bool {
        match name.strip_prefix(REJECTED_BY_REASON) {
            Some(reason) => self.requests_rejected_by_reason.contains_key(reason),
            None => SUMMARY_COLUMNS.iter().any(|c| c.name == name),
        }
    }

    /// The value of the numeric column `name` (see [`SUMMARY_COLUMNS`]); `None` when it is not a
    /// column of this summary or is null here.
    pub fn column(&self, name: &str) -> Option<f64> {
        if let Some(reason) = name.strip_prefix(REJECTED_BY_REASON) {
            return self
                .requests_rejected_by_reason
                .get(reason)
                .map(|n| *n as f64);
        }
        SUMMARY_COLUMNS
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| (c.get)(self))
    }
}

/// The unit a column's or summary key's name carries (docs/metrics.md: names carry their unit), for
/// every label of a table or an axis: `ttft_p90_s` -> `s`, `carbon_g` -> `gCO2e`; `""` when the name
/// carries none. A statistic's suffix (`_mean`, `_p50`, `_p90`, `_p99`) is looked through.
pub fn unit_of_column(name: &str) -> &'static str {
    let base = ["_mean", "_p50", "_p90", "_p99"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    for (suffix, unit) in [
        ("j_per_output_token", "J/token"),
        ("j_per_request", "J/request"),
        ("_g_per_1k_tokens", "gCO2e/1k tokens"),
        ("_per_s", "/s"),
        ("_j_s2", "J s^2"),
        ("_j_s", "J s"),
        ("_runtime_h", "h"),
        ("_temperature_c", "°C"),
        ("_kwh_facility", "kWh"),
        ("_kwh", "kWh"),
        ("_wh", "Wh"),
        ("_j", "J"),
        ("_w", "W"),
        ("_s", "s"),
        ("_g", "gCO2e"),
        ("_kg", "kg"),
        ("_usd", "USD"),
        ("_l", "L"),
        ("_tokens", "tokens"),
        ("_bytes", "B"),
        ("_pct", "%"),
    ] {
        if base.ends_with(suffix) {
            return unit;
        }
    }
    ""
}

/// Indices of the rows not dominated: `max` column maximised, `mins` minimised; rows with a missing
/// value in any of them take no part.
pub fn pareto(max: &[Option<f64>], mins: &[Vec<Option<f64>>]) -> Vec<bool> {
    let n = max.len();
    let vec_of = |i: usize| -> Option<Vec<f64>> {
        let mut v = vec![-(max[i]?)];
        for m in mins {
            v.push(m[i]?);
        }
        Some(v)
    };
    let rows: Vec<Option<Vec<f64>>> = (0..n).map(vec_of).collect();
    (0..n)
        .map(|i| {
            let Some(a) = &rows[i] else { return false };
            !rows.iter().enumerate().any(|(j, b)| {
                j != i
                    && b.as_ref().is_some_and(|b| {
                        b.iter().zip(a).all(|(x, y)| x <= y) && b.iter().zip(a).any(|(x, y)| x < y)
                    })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert!((quantile_sorted(&v, 0.9) - 3.7).abs() < 1e-12);
        let s = Stats::of(vec![4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.mean, 2.5);
        assert_eq!(s.p50, 2.5);
        assert!(Stats::of(vec![]).is_none());
    }

    #[test]
    fn metric_vocabulary_retired_spellings_name_the_current_one() {
        assert_eq!(renamed_metric("ttft_s_p90").as_deref(), Some("ttft_p90_s"));
        assert_eq!(renamed_metric("ttft_s.p90").as_deref(), Some("ttft_p90_s"));
        assert_eq!(renamed_metric("tbt_p99_s").as_deref(), Some("itl_p99_s"));
        assert_eq!(renamed_metric("tbt_s_mean").as_deref(), Some("itl_mean_s"));
        assert_eq!(renamed_metric("ttft_p90_s"), None);
        assert_eq!(renamed_metric("energy_j"), None);
        // Every current latency name is a summary column, and no retired one is.
        for c in SUMMARY_COLUMNS.iter() {
            assert_eq!(renamed_metric(c.name), None, "{}", c.name);
        }
    }

    #[test]
    fn units_come_from_column_names() {
        assert_eq!(unit_of_column("ttft_p90_s"), "s");
        assert_eq!(unit_of_column("itl_mean_s"), "s");
        assert_eq!(unit_of_column("energy_j"), "J");
        assert_eq!(unit_of_column("edp_j_s"), "J s");
        assert_eq!(unit_of_column("ed2p_j_s2"), "J s^2");
        assert_eq!(unit_of_column("battery_runtime_h"), "h");
        assert_eq!(unit_of_column("max_temperature_c"), "°C");
        assert_eq!(unit_of_column("battery_drain_fraction"), "");
        assert_eq!(unit_of_column("mean_power_w"), "W");
        assert_eq!(unit_of_column("output_tokens_per_s"), "/s");
        assert_eq!(unit_of_column("j_per_output_token"), "J/token");
        assert_eq!(unit_of_column("carbon_g"), "gCO2e");
        assert_eq!(unit_of_column("carbon_g_per_1k_tokens"), "gCO2e/1k tokens");
        assert_eq!(unit_of_column("output_tokens"), "tokens");
        assert_eq!(unit_of_column("cost_usd"), "USD");
        assert_eq!(unit_of_column("water_l"), "L");
        assert_eq!(unit_of_column("makespan_s"), "s");
        assert_eq!(unit_of_column("batches"), "");
        assert_eq!(unit_of_column("scheduler.policy"), "");
    }
}
