//! Human-readable reports: summary.md of a run.

use crate::metrics::Stats;
use crate::run::RunOutcome;
use std::fmt::Write;

fn fmt_stats(s: &Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "| {:.4} | {:.4} | {:.4} | {:.4} |",
            s.mean, s.p50, s.p90, s.p99
        ),
        None => "| - | - | - | - |".into(),
    }
}

/// The markdown summary of a run.
pub fn summary_markdown(o: &RunOutcome) -> String {
    let s = &o.summary;
    let sc = &o.scenario;
    let hw = &sc.raw.hardware;
    let mut m = String::new();
    let _ = writeln!(m, "# simwatt run summary\n");
    let _ = writeln!(
        m,
        "{} on {} x {} (TP {}, PP {}, {} replica(s)), policy `{}`, router `{}`, seed {}.\n",
        s.model,
        s.gpus_per_replica * s.replicas,
        sc.device.name,
        hw.tensor_parallel,
        hw.pipeline_stages,
        hw.replicas,
        s.policy,
        sc.raw.router.name(),
        s.seed
    );
    let _ = writeln!(
        m,
        "Execution times: **{}**. {}\n",
        o.predictor.kind, o.predictor.note
    );
    for c in &o.predictor.out_of_range {
        let share = c.beyond_profile as f64 / c.predictions.max(1) as f64;
        if share > 0.01 {
            let _ = writeln!(
                m,
                "> **Warning:** {:.1}% of `{}` predictions ({} of {}) fell outside the profiled range and were \
                 extrapolated (linear tail or roofline); treat latencies of large batches or long contexts \
                 with care.\n",
                100.0 * share,
                c.op,
                c.beyond_profile,
                c.predictions
            );
        }
    }
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
    let _ = writeln!(m, "\n## Latency (seconds)\n");
    let _ = writeln!(
        m,
        "| metric | mean | p50 | p90 | p99 |\n|---|---|---|---|---|"
    );
    let _ = writeln!(m, "| time to first token (ttft_s) {}", fmt_stats(&s.ttft_s));
    let _ = writeln!(m, "| time between tokens (tbt_s) {}", fmt_stats(&s.tbt_s));
    let _ = writeln!(m, "| end-to-end latency (e2e_s) {}", fmt_stats(&s.e2e_s));
    let _ = writeln!(
        m,
        "| scheduling delay (scheduling_delay_s) {}",
        fmt_stats(&s.scheduling_delay_s)
    );
    let e = &s.energy;
    let _ = writeln!(m, "\n## Energy\n");
    match e.energy_j {
        None => {
            let _ = writeln!(
                m,
                "Not computed: {}.",
                e.energy_note.as_deref().unwrap_or("no power profile")
            );
        }
        Some(j) => {
            let _ = writeln!(
                m,
                "Power profile: `{}` ({}).\n",
                e.power_profile.as_deref().unwrap_or("-"),
                e.power_profile_method.as_deref().unwrap_or("-")
            );
            let opt = |v: Option<f64>, d: usize| {
                v.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(m, "| metric | value |\n|---|---|");
            let _ = writeln!(m, "| GPU energy (J) | {j:.0} |");
            let _ = writeln!(
                m,
                "| of which busy / idle (J) | {} / {} |",
                opt(e.busy_energy_j, 0),
                opt(e.idle_energy_j, 0)
            );
            let _ = writeln!(
                m,
                "| of which prefill / decode (J) | {} / {} |",
                opt(e.prefill_energy_j, 0),
                opt(e.decode_energy_j, 0)
            );
            let _ = writeln!(
                m,
                "| average GPU power, all GPUs (W) | {} |",
                opt(e.avg_power_w, 1)
            );
            let _ = writeln!(
                m,
                "| energy per output token (J/token) | {} |",
                opt(e.j_per_output_token, 4)
            );
            let _ = writeln!(
                m,
                "| energy per request (J/request) | {} |",
                opt(e.j_per_request, 1)
            );
            let _ = writeln!(
                m,
                "| baseline TDP x time (J) | {} |",
                opt(e.tdp_baseline_energy_j, 0)
            );
            let _ = writeln!(
                m,
                "| baseline Vidur-Energy curve (J) | {} |",
                opt(e.vidur_baseline_energy_j, 0)
            );
            if !e.regions.is_empty() {
                let _ = writeln!(m, "\n## Carbon, cost and water by region\n");
                let _ = writeln!(
                    m,
                    "| region | PUE | grid gCO2e/kWh | facility kWh | carbon (gCO2e) | embodied (gCO2e) | cost (USD) | water (L) |\n|---|---|---|---|---|---|---|---|"
                );
                for r in &e.regions {
                    let _ = writeln!(
                        m,
                        "| {} | {:.2} | {:.1} ({}) | {:.4} | {:.2} | {} | {} | {} |",
                        r.region,
                        r.pue,
                        r.carbon_intensity_g_per_kwh,
                        r.carbon_intensity_kind,
                        r.energy_kwh_facility,
                        r.carbon_g,
                        opt(r.embodied_carbon_g, 2),
                        opt(r.cost_usd, 4),
                        opt(r.water_l, 3)
                    );
                }
                for r in &e.regions {
                    for n in &r.notes {
                        let _ = writeln!(m, "\n- {}: {n}", r.region);
                    }
                }
            }
        }
    }
    let _ = writeln!(m, "\n## Simulator\n");
    let _ = writeln!(
        m,
        "{} events in {:.3} s wall time ({:.0} simulated requests per wall-second).",
        s.events, s.sim_wall_s, s.sim_requests_per_wall_s
    );
    let _ = writeln!(
        m,
        "\nFiles: `requests.csv` / `requests.parquet` (one row per request), `batches.parquet` (one row per \
         batch stage), `summary.json`, `config.resolved.yaml`, `provenance.json`. Metric definitions: \
         docs/metrics.md in the simwatt repository."
    );
    m
}
