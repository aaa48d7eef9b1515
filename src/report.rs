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
