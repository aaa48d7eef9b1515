//! The report of a run folder: plots (PNG + SVG), `trace.json` (Chrome / Perfetto) and `summary.md`.
//!
//! Input: a run folder on disk (read with [`RunFolder::read`]), never the in-memory state of a simulation:
//! `simulate` calls [`write_report`] on its folder once the data files are written, and
//! `simwatt report RUN_DIR` calls the same function later, so both give the same report.
//! Output: the files named above, in the run folder.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::plots::{self, PlotFile};
use crate::runfolder::RunFolder;
use crate::trace;
use serde_json::Value;
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

/// Writes the report of the run folder `dir` into it: plots, trace.json and summary.md.
pub fn write_report(dir: &Path, opts: &ReportOptions) -> Result<ReportOutput> {
    let run = RunFolder::read(dir)?;
    let plots = if opts.plots {
        plots::run_plots(&run, dir)?
    } else {
        Vec::new()
    };
    let trace_events = if opts.trace {
        Some(trace::write_trace(&run, &dir.join("trace.json"))?)
    } else {
        None
    };
    let md = summary_markdown(&run, &plots, trace_events.is_some());
    let path = dir.join("summary.md");
    std::fs::write(&path, md).map_err(|e| Error::io(&path, e))?;
    Ok(ReportOutput {
        plots,
        trace_events,
    })
}

/// `| mean | p50 | p90 | p99 |` cells of a statistics object of summary.json.
fn fmt_stats(v: Option<&Value>) -> String {
    let get = |q: &str| v.and_then(|s| s.get(q)).and_then(Value::as_f64);
    match (get("mean"), get("p50"), get("p90"), get("p99")) {
        (Some(m), Some(a), Some(b), Some(c)) => format!("| {m:.4} | {a:.4} | {b:.4} | {c:.4} |"),
        _ => "| - | - | - | - |".into(),
    }
}

/// Unit of a summary key, from its suffix (docs/metrics.md: names carry their unit).
fn unit_of(key: &str) -> &'static str {
    const SUFFIXES: [(&str, &str); 14] = [
        ("_per_s", "/s"),
        ("_kwh", "kWh"),
        ("_wh", "Wh"),
        ("_j", "J"),
        ("_w", "W"),
        ("_s", "s"),
        ("_g", "g"),
        ("_kg", "kg"),
        ("_usd", "USD"),
        ("_l", "L"),
        ("_tokens", "tokens"),
        ("_bytes", "B"),
        ("_pct", "%"),
        ("_ratio", "-"),
    ];
    SUFFIXES
        .iter()
        .find(|(s, _)| key.ends_with(s))
        .map(|(_, u)| *u)
        .unwrap_or("-")
}

/// Keys of summary.json that the tables above "Other values" show.
const SHOWN_KEYS: [&str; 53] = [
    "simwatt_version",
    "seed",
    "model",
    "gpu",
    "policy",
    "replicas",
    "gpus_per_replica",
    "predictor",
    "requests_total",
    "requests_completed",
    "requests_rejected",
    "requests_rejected_by_reason",
    "preemptions",
    "makespan_s",
    "prompt_tokens",
    "output_tokens",
    "output_tokens_per_s",
    "requests_per_s",
    "ttft_s",
    "tbt_s",
    "e2e_s",
    "scheduling_delay_s",
    "batches",
    "batch_stages",
    "mean_batch_requests",
    "kv_blocks_per_replica",
    "kv_block_size_tokens",
    "events",
    "sim_wall_s",
    "sim_requests_per_wall_s",
    "sim_events_per_wall_s",
    "power_profile",
    "power_profile_method",
    "energy_note",
    "energy_j",
    "busy_energy_j",
    "idle_energy_j",
    "host_energy_j",
    "prefill_energy_j",
    "decode_energy_j",
    "avg_power_w",
    "j_per_output_token",
    "j_per_request",
    "tdp_baseline_energy_j",
    "vidur_baseline_energy_j",
    "region",
    "energy_kwh_facility",
    "carbon_g",
    "carbon_g_per_1k_tokens",
    "embodied_carbon_g",
    "cost_usd",
    "water_l",
    "regions",
];

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

/// The markdown summary of a run, from its files; links `plots` and, when `trace`, trace.json.
pub fn summary_markdown(run: &RunFolder, plots: &[PlotFile], trace: bool) -> String {
    let s = &run.summary;
    let int = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
    let f = |k: &str| run.summary_f64(k).unwrap_or(f64::NAN);
    let text = |k: &str| run.summary_str(k).unwrap_or("?").to_string();
    let cfg = |k: &str| {
        run.config_u64(k)
            .map(|v| v.to_string())
            .unwrap_or("?".into())
    };
    let gpu = text("gpu");
    // The device's full name, when the run used the built-in catalog.
    let builtin_devices = run
        .config_value("catalog.devices")
        .is_none_or(|v| v.is_null());
    let gpu_name = builtin_devices
        .then(|| Catalog::builtin().ok())
        .flatten()
        .and_then(|c| c.device(&gpu).map(|(_, d)| d.name.clone()))
        .unwrap_or(gpu);
    let router = run
        .config_value("router")
        .and_then(|v| v.as_str())
        .unwrap_or("?");

    let mut m = String::new();
    let _ = writeln!(m, "# simwatt run summary\n");
    let _ = writeln!(
        m,
        "{} on {} x {} (TP {}, PP {}, {} replica(s)), policy `{}`, router `{}`, seed {}.\n",
        text("model"),
        int("gpus_per_replica") * int("replicas"),
        gpu_name,
        cfg("hardware.tensor_parallel"),
        cfg("hardware.pipeline_stages"),
        int("replicas"),
        text("policy"),
        router,
        int("seed"),
    );
    let note = run
        .provenance
        .as_ref()
        .and_then(|p| p.pointer("/predictor/note"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let _ = writeln!(m, "Execution times: **{}**. {note}\n", text("predictor"));
    let ranges = run
        .provenance
        .as_ref()
        .and_then(|p| p.pointer("/predictor/out_of_range"))
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

    let _ = writeln!(m, "## Requests\n");
    let _ = writeln!(m, "| metric | value |\n|---|---|");
    let _ = writeln!(m, "| requests (total) | {} |", int("requests_total"));
    let _ = writeln!(m, "| requests completed | {} |", int("requests_completed"));
    let _ = writeln!(m, "| requests rejected | {} |", int("requests_rejected"));
    if let Some(by) = s
        .get("requests_rejected_by_reason")
        .and_then(Value::as_object)
    {
        for (reason, n) in by {
            let _ = writeln!(m, "| rejected: {reason} | {n} |");
        }
    }
    let _ = writeln!(m, "| preemptions | {} |", int("preemptions"));
    let _ = writeln!(m, "| makespan (s) | {:.3} |", f("makespan_s"));
    let _ = writeln!(m, "| output tokens | {} |", int("output_tokens"));
    let _ = writeln!(
        m,
        "| output throughput (tokens/s) | {:.1} |",
        f("output_tokens_per_s")
    );
    let _ = writeln!(
        m,
        "| request throughput (requests/s) | {:.3} |",
        f("requests_per_s")
    );
    let _ = writeln!(
        m,
        "| mean requests per batch | {:.2} |",
        f("mean_batch_requests")
    );
    let _ = writeln!(
        m,
        "| KV cache per replica | {} blocks x {} tokens |",
        int("kv_blocks_per_replica"),
        int("kv_block_size_tokens")
    );

    let _ = writeln!(m, "\n## Latency (seconds)\n");
    let _ = writeln!(
        m,
        "| metric | mean | p50 | p90 | p99 |\n|---|---|---|---|---|"
    );
    for (label, key) in [
        ("time to first token", "ttft_s"),
        ("time between tokens", "tbt_s"),
        ("end-to-end latency", "e2e_s"),
        ("scheduling delay", "scheduling_delay_s"),
    ] {
        let _ = writeln!(m, "| {label} (`{key}`) {}", fmt_stats(s.get(key)));
    }

    let opt = |k: &str, d: usize| {
        s.get(k)
            .and_then(Value::as_f64)
            .map(|x| format!("{x:.d$}"))
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(m, "\n## Energy\n");
    if s.get("energy_j").and_then(Value::as_f64).is_none() {
        let _ = writeln!(
            m,
            "Not computed: {}.",
            s.get("energy_note")
                .and_then(Value::as_str)
                .unwrap_or("no power profile")
        );
    } else {
        let _ = writeln!(
            m,
            "Power profile: `{}` ({}).\n",
            s.get("power_profile")
                .and_then(Value::as_str)
                .unwrap_or("-"),
            s.get("power_profile_method")
                .and_then(Value::as_str)
                .unwrap_or("-")
        );
        let _ = writeln!(m, "| metric | value |\n|---|---|");
        for (label, key, d) in [
            ("GPU energy (J)", "energy_j", 0),
            ("of which busy (J)", "busy_energy_j", 0),
            ("of which idle (J)", "idle_energy_j", 0),
            ("busy energy of prefills (J)", "prefill_energy_j", 0),
            ("busy energy of decodes (J)", "decode_energy_j", 0),
            ("host energy (J)", "host_energy_j", 0),
            ("average GPU power, all GPUs (W)", "avg_power_w", 1),
            ("energy per output token (J/token)", "j_per_output_token", 4),
            ("energy per request (J/request)", "j_per_request", 1),
            ("baseline TDP x time (J)", "tdp_baseline_energy_j", 0),
            (
                "baseline Vidur-Energy curve (J)",
                "vidur_baseline_energy_j",
                0,
            ),
        ] {
            let _ = writeln!(m, "| {label} | {} |", opt(key, d));
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
        let regions = s
            .get("regions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !regions.is_empty() {
            let _ = writeln!(m, "\n## Carbon, cost and water by region\n");
            let _ = writeln!(
                m,
                "| region | PUE | grid gCO2e/kWh | facility kWh | carbon (gCO2e) | embodied (gCO2e) | cost (USD) | water (L) |\n|---|---|---|---|---|---|---|---|"
            );
            let g = |r: &Value, k: &str, d: usize| {
                r.get(k)
                    .and_then(Value::as_f64)
                    .map(|x| format!("{x:.d$}"))
                    .unwrap_or_else(|| "-".into())
            };
            for r in &regions {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} ({}) | {} | {} | {} | {} | {} |",
                    r.get("region").and_then(Value::as_str).unwrap_or("?"),
                    g(r, "pue", 2),
                    g(r, "carbon_intensity_g_per_kwh", 1),
                    r.get("carbon_intensity_kind")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    g(r, "energy_kwh_facility", 4),
                    g(r, "carbon_g", 2),
                    g(r, "embodied_carbon_g", 2),
                    g(r, "cost_usd", 4),
                    g(r, "water_l", 3)
                );
            }
            let region_plot = plot_links(plots, &[("regions", "carbon, cost and water by region")]);
            if !region_plot.is_empty() {
                let _ = writeln!(m, "\nPlot: {region_plot}.");
            }
            for r in &regions {
                let id = r.get("region").and_then(Value::as_str).unwrap_or("?");
                for n in r
                    .get("notes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let _ = writeln!(m, "\n- {id}: {}", n.as_str().unwrap_or(""));
                }
            }
        }
    }

    // Values added to summary.json after this report was written (energy, carbon, cost, ...) still show.
    if let Some(obj) = s.as_object() {
        let other: Vec<(&String, &Value)> = obj
            .iter()
            .filter(|(k, v)| !SHOWN_KEYS.contains(&k.as_str()) && (v.is_number() || v.is_object()))
            .collect();
        if !other.is_empty() {
            let _ = writeln!(m, "\n## Other values\n");
            let _ = writeln!(m, "| key | value | unit |\n|---|---|---|");
            for (k, v) in other {
                match v {
                    Value::Object(o) => {
                        for (sub, x) in o.iter().filter(|(_, x)| x.is_number()) {
                            let _ = writeln!(m, "| `{k}.{sub}` | {} | {} |", num(x), unit_of(k));
                        }
                    }
                    _ => {
                        let _ = writeln!(m, "| `{k}` | {} | {} |", num(v), unit_of(k));
                    }
                }
            }
        }
    }

    if !plots.is_empty() {
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

    if trace {
        let _ = writeln!(m, "## Trace\n");
        let _ = writeln!(
            m,
            "[`trace.json`](trace.json) holds every batch stage (one process per replica, one thread per \
             pipeline stage), the KV-cache use per replica and each request's lifetime (queued, prefill, \
             decode) in the Chrome trace event format. Open it in <https://ui.perfetto.dev> \
             (\"Open trace file\") or chrome://tracing; times are simulated."
        );
    }

    let _ = writeln!(m, "\n## Simulator\n");
    let _ = writeln!(
        m,
        "{} events in {:.3} s wall time ({:.0} simulated requests per wall-second).",
        int("events"),
        f("sim_wall_s"),
        f("sim_requests_per_wall_s")
    );
    let _ = writeln!(
        m,
        "\nFiles: `requests.csv` / `requests.parquet` (one row per request), `batches.parquet` (one row per \
         batch stage), `summary.json`, `config.resolved.yaml`, `provenance.json`. Metric definitions: \
         docs/metrics.md in the simwatt repository. `simwatt report` remakes this summary, the plots and the \
         trace from these files."
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_key_suffixes() {
        assert_eq!(unit_of("energy_j"), "J");
        assert_eq!(unit_of("mean_power_w"), "W");
        assert_eq!(unit_of("output_tokens_per_s"), "/s");
        assert_eq!(unit_of("carbon_g"), "g");
        assert_eq!(unit_of("cost_usd"), "USD");
        assert_eq!(unit_of("water_l"), "L");
        assert_eq!(unit_of("makespan_s"), "s");
        assert_eq!(unit_of("batches"), "-");
    }
}
