//! The report of a run folder: plots (PNG + SVG), `trace.json` (Chrome / Perfetto) and `summary.md`.
//!
//! Input: a run folder on disk (read with [`RunFolder::read`]), never the in-memory state of a simulation:
//! `simulate` calls [`write_report`] on its folder once the data files are written, and
//! `simwatt report RUN_DIR` calls the same function later, so both give the same report.
//! Output: the files named above, in the run folder.

use crate::accounting::RegionReport;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::metrics::{unit_of_column, EnergySummary, Stats, Summary};
use crate::plots::{self, PlotFile};
use crate::runfolder::RunFolder;
use crate::trace;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// What a report writes besides summary.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions {
    /// Draw the plots (PNG + SVG).
    pub plots: bool,
    /// Write trace.json.
    pub trace: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            plots: true,
            trace: true,
        }
    }
}

/// What a report wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOutput {
    pub plots: Vec<PlotFile>,
    /// Events in trace.json, when written.
    pub trace_events: Option<usize>,
}

/// Writes the report of the run folder `dir` into it: plots, trace.json and summary.md. A run that used
/// the built-in device catalog is described from `builtin_catalog`.
pub fn write_report(
    dir: &Path,
    opts: &ReportOptions,
    builtin_catalog: &Catalog,
) -> Result<ReportOutput> {
    let run = RunFolder::read(dir)?;
    let plots = if opts.plots {
        plots::run_plots(&run, dir, builtin_catalog)?
    } else {
        Vec::new()
    };
    let trace_events = if opts.trace {
        Some(trace::write_trace(&run, &dir.join("trace.json"))?)
    } else {
        None
    };
    let md = summary_markdown(&run, &plots, trace_events.is_some(), builtin_catalog)?;
    let path = dir.join("summary.md");
    std::fs::write(&path, md).map_err(|e| Error::io(&path, e))?;
    Ok(ReportOutput {
        plots,
        trace_events,
    })
}

/// `| mean | p50 | p90 | p99 |` cells of a statistic of the summary.
fn fmt_stats(v: Option<&Stats>) -> String {
    match v {
        Some(s) => format!(
            "| {:.4} | {:.4} | {:.4} | {:.4} |",
            s.mean, s.p50, s.p90, s.p99
        ),
        None => "| - | - | - | - |".into(),
    }
}

/// A value with `d` decimals, `-` when null.
fn opt(x: Option<f64>, d: usize) -> String {
    x.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "-".into())
}

/// A value of "Other values": integers without decimals, very large or small numbers in exponent form.
fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_u64() || v.is_i64() => format!("{x:.0}"),
        Some(x) if x.abs() >= 1e5 || (x != 0.0 && x.abs() < 1e-3) => format!("{x:.4e}"),
        Some(x) => format!("{x:.4}"),
        None => v.to_string(),
    }
}

/// Markdown links to those of `wanted` (stem, text) that are among `plots`, comma-separated.
fn plot_links(plots: &[PlotFile], wanted: &[(&str, &str)]) -> String {
    wanted
        .iter()
        .filter(|(stem, _)| plots.iter().any(|p| p.stem == *stem))
        .map(|(stem, text)| format!("[{text}]({stem}.png)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run's summary.json as the [`Summary`] it was written from.
fn read_summary(run: &RunFolder) -> Result<Summary> {
    Summary::deserialize(&run.summary).map_err(|e| Error::Output {
        path: run.dir.join("summary.json"),
        message: format!("not a simwatt run summary: {e}"),
    })
}

/// The markdown summary of a run, from its files; links `plots` and, when `trace`, trace.json.
pub fn summary_markdown(
    run: &RunFolder,
    plots: &[PlotFile],
    trace: bool,
    builtin_catalog: &Catalog,
) -> Result<String> {
    let s = read_summary(run)?;
    let mut m = String::new();
    write_heading(&mut m, run, &s, builtin_catalog);
    write_requests(&mut m, &s);
    write_latency(&mut m, &s);
    write_energy(&mut m, &s.energy, plots, &limits_line(run));
    write_other_values(&mut m, &s.other);
    write_plots(&mut m, run, plots);
    if trace {
        write_trace_note(&mut m);
    }
    write_simulator(&mut m, &s, run.dir.join("requests.csv").is_file());
    Ok(m)
}

/// The title, what ran on what, the predictor and warnings on extrapolated predictions.
fn write_heading(m: &mut String, run: &RunFolder, s: &Summary, builtin_catalog: &Catalog) {
    let cfg = |k: &str| {
        run.config_u64(k)
            .map(|v| v.to_string())
            .unwrap_or("?".into())
    };
    // The device's full name, when the run used the built-in catalog.
    let builtin_devices = run
        .config_value("catalog.devices")
        .is_none_or(|v| v.is_null());
    let gpu_name = builtin_devices
        .then(|| builtin_catalog.device(&s.gpu).map(|(_, d)| d.name.clone()))
        .flatten()
        .unwrap_or_else(|| s.gpu.clone());
    let router = run
        .config_value("router")
        .and_then(|v| v.as_str())
        .unwrap_or("?");

    // With a prefill pool of its own hardware, `gpu` and `gpus_per_replica` are the decode pool's.
    let own = match s.prefill_pool_gpu {
        Some(_) => s.replicas - s.prefill_replicas,
        None => s.replicas,
    };
    // Data-parallel attention ranks, when the replica has them.
    let dp = run
        .config_value("hardware.data_parallel")
        .and_then(|v| v.as_u64())
        .filter(|&d| d > 1)
        .map(|d| format!("DP {d} with expert parallelism, "))
        .unwrap_or_default();
    let _ = writeln!(m, "# simwatt run summary\n");
    let _ = writeln!(
        m,
        "{} on {} x {} (TP {}, {dp}PP {}, {} replica(s)), policy `{}`, router `{}`, seed {}.\n",
        s.model,
        s.gpus_per_replica as u64 * own as u64,
        gpu_name,
        cfg("hardware.tensor_parallel"),
        cfg("hardware.pipeline_stages"),
        own,
        s.policy,
        router,
        s.seed,
    );
    if let (Some(gpu), Some(per)) = (&s.prefill_pool_gpu, s.prefill_pool_gpus_per_replica) {
        // A prefill pool of its own hardware: the line above is the decode pool's layout.
        let decode = s.replicas - s.prefill_replicas;
        let _ = writeln!(
            m,
            "Prefill pool: {} replica(s) of {per} x {gpu} (TP {}); the decode pool is the line above; {} GPUs in all.\n",
            s.prefill_replicas,
            cfg("hardware.prefill_pool.tensor_parallel"),
            s.prefill_replicas as u64 * per as u64 + decode as u64 * s.gpus_per_replica as u64,
        );
    }
    let predictor = run.provenance.as_ref().and_then(|p| p.get("predictor"));
    let note = predictor
        .and_then(|p| p.get("note"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let _ = writeln!(m, "Execution times: **{}**. {note}\n", s.predictor);
    let ranges = predictor
        .and_then(|p| p.get("out_of_range"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &ranges {
        let n = c.get("predictions").and_then(Value::as_u64).unwrap_or(0);
        let b = c.get("beyond_profile").and_then(Value::as_u64).unwrap_or(0);
        let op = c.get("op").and_then(Value::as_str).unwrap_or("?");
        let share = b as f64 / n.max(1) as f64;
        if share > 0.01 {
            let _ = writeln!(
                m,
                "> **Warning:** {:.1}% of `{op}` predictions ({b} of {n}) fell outside the profiled range \
                 and were extrapolated (linear tail or roofline); treat latencies of large batches or long \
                 contexts with care.\n",
                100.0 * share
            );
        }
    }
}

/// The "Requests" table: counts, rejections by reason, throughput, batching and the KV cache.
fn write_requests(m: &mut String, s: &Summary) {
    let _ = writeln!(m, "## Requests\n");
    let _ = writeln!(m, "| metric | value |\n|---|---|");
    let _ = writeln!(m, "| requests (total) | {} |", s.requests_total);
    let _ = writeln!(m, "| requests completed | {} |", s.requests_completed);
    let _ = writeln!(m, "| requests rejected | {} |", s.requests_rejected);
    for (reason, n) in &s.requests_rejected_by_reason {
        let _ = writeln!(m, "| rejected: {reason} | {n} |");
    }
    let _ = writeln!(m, "| preemptions | {} |", s.preemptions);
    let _ = writeln!(m, "| makespan (s) | {:.3} |", s.makespan_s);
    let _ = writeln!(m, "| output tokens | {} |", s.output_tokens);
    let _ = writeln!(
        m,
        "| output throughput (tokens/s) | {:.1} |",
        s.output_tokens_per_s
    );
    let _ = writeln!(
        m,
        "| request throughput (requests/s) | {:.3} |",
        s.requests_per_s
    );
    let _ = writeln!(
        m,
        "| mean requests per batch | {:.2} |",
        s.mean_batch_requests
    );
    let _ = writeln!(
        m,
        "| KV cache per replica | {} blocks x {} tokens |",
        s.kv_blocks_per_replica, s.kv_block_size_tokens
    );
    if let Some(b) = s.prefill_pool_kv_blocks_per_replica {
        let _ = writeln!(
            m,
            "| KV cache per prefill replica | {b} blocks x {} tokens |",
            s.kv_block_size_tokens
        );
    }
}

/// The "Latency" table: mean and percentiles of each latency.
fn write_latency(m: &mut String, s: &Summary) {
    let _ = writeln!(m, "\n## Latency (seconds)\n");
    let _ = writeln!(
        m,
        "| metric | mean | p50 | p90 | p99 |\n|---|---|---|---|---|"
    );
    for (label, key, stats) in [
        ("time to first token, per request", "ttft_*_s", s.ttft()),
        ("time per output token, per request", "tpot_*_s", s.tpot()),
        ("inter-token latency, every token gap", "itl_*_s", s.itl()),
        ("end-to-end latency, per request", "e2e_*_s", s.e2e()),
        (
            "scheduling delay, per request",
            "scheduling_delay_*_s",
            s.scheduling_delay(),
        ),
    ] {
        let _ = writeln!(m, "| {label} (`{key}`) {}", fmt_stats(stats.as_ref()));
    }
}

/// The operator's power and clock limits the run's GPUs ran under, from provenance.json's `limits`
/// (empty when the config set neither, or an older run folder does not record them).
fn limits_line(run: &RunFolder) -> String {
    let Some(l) = run.provenance.as_ref().and_then(|p| p.get("limits")) else {
        return String::new();
    };
    let mut parts = Vec::new();
    if l.get("power_cap_from").and_then(Value::as_str) == Some("hardware.power_cap_w") {
        if let Some(w) = l.get("power_cap_w").and_then(Value::as_f64) {
            parts.push(format!(
                "power limit {w} W per GPU (`hardware.power_cap_w`)"
            ));
        }
    }
    if let Some(mhz) = l.get("sm_clock_mhz").and_then(Value::as_f64) {
        let max = l
            .get("max_sm_clock_mhz")
            .and_then(Value::as_f64)
            .map(|m| format!(" of {m} MHz"))
            .unwrap_or_default();
        parts.push(format!(
            "SM clock limit {mhz} MHz{max} (`hardware.sm_clock_mhz`)"
        ));
    }
    if let Some(mode) = l.get("power_mode") {
        let num = |k: &str| mode.get(k).and_then(Value::as_f64);
        let budget = num("power_budget_w")
            .map(|w| format!("{w} W budget, "))
            .unwrap_or_else(|| "no power budget, ".into());
        parts.push(format!(
            "power mode {} ({budget}GPU at most {} MHz, memory at most {} MHz, {} CPU cores at most {} MHz; `hardware.power_mode`)",
            mode.get("name").and_then(Value::as_str).unwrap_or("?"),
            num("gpu_max_mhz").unwrap_or(f64::NAN),
            num("emc_max_mhz").unwrap_or(f64::NAN),
            mode.get("cpu_cores_online").and_then(Value::as_u64).unwrap_or(0),
            num("cpu_max_mhz").unwrap_or(f64::NAN),
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("Limits: {}.\n", parts.join(", "))
    }
}

/// The "Energy" section (or why it was not computed), with the operator's limits, then carbon, cost
/// and water by region.
fn write_energy(m: &mut String, e: &EnergySummary, plots: &[PlotFile], limits: &str) {
    let _ = writeln!(m, "\n## Energy\n");
    if e.energy_j.is_none() {
        let _ = writeln!(
            m,
            "Not computed: {}.",
            e.energy_note.as_deref().unwrap_or("no power profile")
        );
        return;
    }
    let _ = writeln!(
        m,
        "Power profile: `{}` ({}).\n",
        e.power_profile.as_deref().unwrap_or("-"),
        e.power_profile_method.as_deref().unwrap_or("-")
    );
    if !limits.is_empty() {
        let _ = writeln!(m, "{limits}");
    }
    let _ = writeln!(m, "| metric | value |\n|---|---|");
    for (label, value, d) in [
        ("GPU energy (J)", e.energy_j, 0),
        ("of which busy (J)", e.busy_energy_j, 0),
        ("of which idle (J)", e.idle_energy_j, 0),
        ("busy energy of prefills (J)", e.prefill_energy_j, 0),
        ("busy energy of decodes (J)", e.decode_energy_j, 0),
        ("host energy (J)", e.host_energy_j, 0),
        ("average GPU power, all GPUs (W)", e.avg_power_w, 1),
        ("energy per output token (J/token)", e.j_per_output_token, 4),
        ("energy per request (J/request)", e.j_per_request, 1),
        ("baseline TDP x time (J)", e.tdp_baseline_energy_j, 0),
        (
            "baseline Vidur-Energy curve (J)",
            e.vidur_baseline_energy_j,
            0,
        ),
    ] {
        let _ = writeln!(m, "| {label} | {} |", opt(value, d));
    }
    // Partial GPU offload: the host CPU's energy, not part of the GPU's above.
    if let Some(cpu) = e.host_cpu_energy_j {
        let _ = writeln!(
            m,
            "| host CPU energy, partial offload (J) | {} |",
            opt(Some(cpu), 0)
        );
        let _ = writeln!(
            m,
            "| GPU and host CPU energy per output token (J/token) | {} |",
            opt(e.gpu_and_host_cpu_j_per_output_token, 4)
        );
    }
    let energy_plots = plot_links(
        plots,
        &[
            ("power_timeline", "power over time"),
            ("energy_by_replica", "energy per replica"),
            ("energy_per_token", "energy per token against batch size"),
        ],
    );
    if !energy_plots.is_empty() {
        let _ = writeln!(m, "\nPlots: {energy_plots}.");
    }
    if !e.regions.is_empty() {
        write_regions(m, &e.regions, plots);
    }
}

/// The "Carbon, cost and water by region" table and each region's notes.
fn write_regions(m: &mut String, regions: &[RegionReport], plots: &[PlotFile]) {
    let _ = writeln!(m, "\n## Carbon, cost and water by region\n");
    let _ = writeln!(
        m,
        "| region | PUE | grid gCO2e/kWh | facility kWh | carbon (gCO2e) | embodied (gCO2e) | cost (USD) | water (L) |\n|---|---|---|---|---|---|---|---|"
    );
    for r in regions {
        let _ = writeln!(
            m,
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} |",
            r.region,
            opt(Some(r.pue), 2),
            opt(Some(r.carbon_intensity_g_per_kwh), 1),
            r.carbon_intensity_kind,
            opt(Some(r.energy_kwh_facility), 4),
            opt(Some(r.carbon_g), 2),
            opt(r.embodied_carbon_g, 2),
            opt(r.cost_usd, 4),
            opt(r.water_l, 3)
        );
    }
    let region_plot = plot_links(plots, &[("regions", "carbon, cost and water by region")]);
    if !region_plot.is_empty() {
        let _ = writeln!(m, "\nPlot: {region_plot}.");
    }
    for r in regions {
        for n in &r.notes {
            let _ = writeln!(m, "\n- {}: {n}", r.region);
        }
    }
}

/// "Other values": numbers of summary.json that the schema does not name (added by another version or
/// by hand) still show, with the unit their name carries.
fn write_other_values(m: &mut String, other: &BTreeMap<String, Value>) {
    let shown: Vec<(&String, &Value)> = other
        .iter()
        .filter(|(_, v)| v.is_number() || v.is_object())
        .collect();
    if shown.is_empty() {
        return;
    }
    let unit = |k: &str| match unit_of_column(k) {
        "" => "-",
        u => u,
    };
    let _ = writeln!(m, "\n## Other values\n");
    let _ = writeln!(m, "| key | value | unit |\n|---|---|---|");
    for (k, v) in shown {
        match v {
            Value::Object(o) => {
                for (sub, x) in o.iter().filter(|(_, x)| x.is_number()) {
                    let _ = writeln!(m, "| `{k}.{sub}` | {} | {} |", num(x), unit(k));
                }
            }
            _ => {
                let _ = writeln!(m, "| `{k}` | {} | {} |", num(v), unit(k));
            }
        }
    }
}

/// The "Plots" section: each figure by section, PNG shown and SVG linked.
fn write_plots(m: &mut String, run: &RunFolder, plots: &[PlotFile]) {
    if plots.is_empty() {
        return;
    }
    let _ = writeln!(m, "\n## Plots\n");
    let _ = writeln!(
        m,
        "Each plot is a PNG (shown) and an SVG (linked) of the same figure.\n"
    );
    let mut section = "";
    for p in plots {
        if p.section != section {
            section = p.section;
            let _ = writeln!(m, "### {section}\n");
            if section == "Replica timelines" && run.replicas() > plots::MAX_TIMELINES {
                let _ = writeln!(
                    m,
                    "The first {} of {} replicas are drawn.\n",
                    plots::MAX_TIMELINES,
                    run.replicas()
                );
            }
        }
        let _ = writeln!(
            m,
            "![{c}]({s}.png)\n\n{c} ([SVG]({s}.svg))\n",
            c = p.caption,
            s = p.stem
        );
    }
}

/// The "Trace" section: what trace.json holds and how to open it.
fn write_trace_note(m: &mut String) {
    let _ = writeln!(m, "## Trace\n");
    let _ = writeln!(
        m,
        "[`trace.json`](trace.json) holds every batch stage (one process per replica, one thread per \
         pipeline stage), the KV-cache use per replica and each request's lifetime (queued, prefill, \
         decode) in the Chrome trace event format. Open it in <https://ui.perfetto.dev> \
         (\"Open trace file\") or chrome://tracing; times are simulated."
    );
}

/// The "Simulator" section: the simulator's own speed and the files of the run folder (`csv`: whether
/// it holds requests.csv).
fn write_simulator(m: &mut String, s: &Summary, csv: bool) {
    let _ = writeln!(m, "\n## Simulator\n");
    let _ = writeln!(
        m,
        "{} events in {:.3} s wall time ({:.0} simulated requests per wall-second).",
        s.events, s.sim_wall_s, s.sim_requests_per_wall_s
    );
    let requests = if csv {
        "`requests.csv` / `requests.parquet`"
    } else {
        "`requests.parquet`"
    };
    let _ = writeln!(
        m,
        "\nFiles: {requests} (one row per request), `batches.parquet` (one row per \
         batch stage), `summary.json`, `config.resolved.yaml`, `provenance.json`. Metric definitions: \
         docs/metrics.md in the simwatt repository. `simwatt report` remakes this summary, the plots and the \
         trace from these files."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_values_show_numbers_with_the_unit_their_name_carries() {
        let mut other = BTreeMap::new();
        other.insert("cooling_energy_j".to_string(), serde_json::json!(1234.5));
        other.insert("carbon_extra_g".to_string(), serde_json::json!(2));
        other.insert("batches_dropped".to_string(), serde_json::json!(3));
        other.insert("label".to_string(), serde_json::json!("text"));
        let mut m = String::new();
        write_other_values(&mut m, &other);
        assert!(m.contains("| `cooling_energy_j` | 1234.5000 | J |"), "{m}");
        assert!(m.contains("| `carbon_extra_g` | 2 | gCO2e |"), "{m}");
        assert!(m.contains("| `batches_dropped` | 3 | - |"), "{m}");
        assert!(!m.contains("label"), "{m}");
    }
}
