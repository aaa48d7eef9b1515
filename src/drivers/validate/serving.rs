//! Measured serving runs: a folder holding a per-request log and one or more power logs, read as the
//! tools wrote them, and their replay through simwatt.
//!
//! Input: a folder. Its files are told apart by their content: a request log (the vLLM
//! energy-measurement protocol's `timestamp, prompt_tokens, completion_tokens, latency[, ttft]`, a
//! benchmark client's `request_timestamp_epoch_s, input_len_tokens, output_len_tokens[, ttft_s]`,
//! simwatt's trace columns, or a `vllm bench serve` result JSON), power logs (nvidia-smi `--query-gpu` CSVs, the protocol's power logger
//! `time, power_W, gpu_util, mem_used_bytes`), and an optional `manifest.json` (the PowerTrace-Sim
//! layout: engine settings and the run's summary). The files are read by the readers in
//! [`crate::measured::logs`]. Output: a [`CaseResult`] with one [`Point`]: TTFT, end-to-end and inter-token
//! latency where measured, throughput, idle power, mean power, energy and J per output token over the
//! active window, with and without the idle baseline, each measured and simulated.
//!
//! Clock: the request log's first dispatch is time 0 on both sides. The active window runs from it to
//! the last completion (measured: dispatch + latency; without latencies, the manifest's benchmark
//! duration; without either, the end of the power log, and the report says so). The idle baseline is
//! the mean power of the readings that end before the first dispatch less `warmup_s` (the engine's
//! warm-up request), as the protocol measures idle power before load.

use super::{
    plots, replay_scenario, simulated_setup, CaseResult, MetricValue, Point, PowerTimeline,
};
use crate::drivers::{simulate, Caches};
use crate::error::Result;
use crate::measured::logs::LoggedRequest;
pub use crate::measured::run::{read_run, MeasuredRun, RunOptions};
use crate::metrics::{RequestRow, Stats, Summary};
use crate::power::PowerProfile;
use serde_yaml::Value;
use std::path::Path;

fn quantiles(v: Vec<f64>) -> Option<Stats> {
    Stats::of(v.into_iter().filter(|x| x.is_finite()).collect())
}

fn add_stats(p: &mut Point, prefix: &str, m: Option<Stats>, s: Option<Stats>) {
    if let (Some(m), Some(s)) = (m, s) {
        p.add(&format!("{prefix}_p50_s"), MetricValue::new(m.p50, s.p50));
        p.add(&format!("{prefix}_p90_s"), MetricValue::new(m.p90, s.p90));
        p.add(&format!("{prefix}_p99_s"), MetricValue::new(m.p99, s.p99));
    }
}

/// A manifest's description of the measured engine, for the notes.
fn manifest_notes(m: &serde_json::Value, sim_model: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let s = |p: &str| {
        m.pointer(p)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    if let Some(model) = s("/model") {
        let engine = s("/versions/vllm")
            .map(|v| format!(" on vLLM {v}"))
            .unwrap_or_default();
        let mut n = format!("measured: {model}{engine}");
        for (k, p) in [
            ("max_num_seqs", "/server/max_num_seqs"),
            ("max_num_batched_tokens", "/server/max_num_batched_tokens"),
            ("chunked prefill", "/server/enable_chunked_prefill"),
            ("prefix caching", "/server/enable_prefix_caching"),
        ] {
            if let Some(v) = s(p) {
                n.push_str(&format!(", {k} {v}"));
            }
        }
        notes.push(n);
        if !model.eq_ignore_ascii_case(sim_model) {
            notes.push(format!(
                "warning: the manifest's model ({model}) is not the simulated one ({sim_model})"
            ));
        }
    }
    notes
}

/// Replays a measured run through the config `tree` (from `config_path`) and compares. Plots go to
/// `plot_dir` when given.
#[allow(clippy::too_many_arguments)] // the case's inputs, each used once
pub fn validate_run(
    caches: &Caches,
    name: &str,
    config_path: &Path,
    config_label: &str,
    tree: &Value,
    run: &MeasuredRun,
    opts: &RunOptions,
    plot_dir: Option<&Path>,
) -> Result<CaseResult> {
    let reqs = &run.requests;
    let specs = crate::measured::logs::request_specs(reqs);
    let scenario = replay_scenario(&caches.catalogs, config_path, tree, &[], specs.len())?;
    let (profile, profile_path, energy_note) = simulate::power_profile(&scenario);
    let o = simulate::simulate_specs(scenario, &specs, &caches.tables, &|_| {})?;
    let s = &o.summary;
    let mut p = Point::new(
        format!(
            "{} requests, {} power reading(s)",
            reqs.len(),
            run.traces.iter().map(|t| t.windows.len()).sum::<usize>()
        ),
        o.predictor.kind.clone(),
    );
    let mut notes = run.notes.clone();
    if let Some(m) = &run.manifest {
        notes.extend(manifest_notes(m, &o.scenario.model_name));
    }
    if s.requests_rejected > 0 {
        p.notes.push(format!(
            "{} of {} requests were rejected by the simulation ({:?}); simulated statistics cover the \
             completed ones",
            s.requests_rejected, s.requests_total, s.requests_rejected_by_reason
        ));
    }

    let (meas_ttft, meas_e2e) = compare_latency(&mut p, reqs, &o.rows);
    let window = compare_throughput(&mut p, &mut notes, run, s);
    // Power and energy.
    let gpus = (o.scenario.gpus_per_replica() * o.scenario.hardware.replicas) as f64;
    // The GPU the power log names, against the one simulated.
    let mut named: Vec<&str> = run
        .traces
        .iter()
        .filter_map(|t| t.device_name.as_deref())
        .collect();
    named.sort_unstable();
    named.dedup();
    for name in named {
        match o.scenario.catalog.device(name) {
            Some((key, _)) if key == o.scenario.device_name => {}
            Some((key, _)) => notes.push(format!(
                "the power log names its GPU `{name}` (device `{key}` of the catalog), but the simulation runs `{}`: measured and simulated power are of different devices",
                o.scenario.device_name
            )),
            None => notes.push(format!(
                "the power log names its GPU `{name}`, which is no device of the catalog; the simulation runs `{}`",
                o.scenario.device_name
            )),
        }
    }
    if !run.traces.is_empty() && run.traces.len() as f64 != gpus {
        notes.push(format!(
            "the power logs hold {} GPU trace(s), the simulation {} GPU(s): measured energy is the mean \
             traced GPU's x {}",
            run.traces.len(),
            gpus,
            gpus
        ));
    }
    let meas_idle = run.idle_w(opts.warmup_s);
    let timeline = if run.traces.is_empty() {
        None
    } else {
        compare_power(
            &mut p,
            &mut notes,
            &o,
            profile.as_ref(),
            energy_note,
            &window,
            gpus,
            meas_idle,
            opts,
            run,
        )
    };
    let plot_files = match plot_dir {
        Some(dir) => draw_plots(
            dir,
            name,
            run,
            &o.rows,
            timeline.as_ref(),
            &window,
            meas_idle,
            (meas_ttft, meas_e2e),
        )?,
        None => Vec::new(),
    };
    Ok(CaseResult {
        name: name.to_string(),
        description: None,
        status: "ok".into(),
        message: None,
        config: config_label.to_string(),
        measured: format!(
            "{} (requests: {}; power: {})",
            run.dir.display(),
            file_name(&run.requests_path),
            if run.power_paths.is_empty() {
                "none".to_string()
            } else {
                run.power_paths
                    .iter()
                    .map(|p| file_name(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        simulated: simulated_setup(
            &o.scenario,
            (!profile_path.is_empty()).then_some(profile_path.as_str()),
            &o.predictor.kind,
        ),
        notes,
        points: vec![p],
        plots: plot_files,
    })
}

/// The measured and simulated active window and output tokens, for the rates and energies per token.
struct Window {
    t_meas: f64,
    t_sim: f64,
    out_meas: f64,
    out_sim: f64,
}

/// Adds TTFT, end-to-end and inter-token latency (measured against the simulated completed requests
/// `rows`) to `p`; returns the measured TTFT and end-to-end latencies, when the log has them.
fn compare_latency(
    p: &mut Point,
    reqs: &[LoggedRequest],
    rows: &[RequestRow],
) -> (Option<Vec<f64>>, Option<Vec<f64>>) {
    let done: Vec<&RequestRow> = rows.iter().filter(|r| r.status == "completed").collect();
    let sim_ttft = quantiles(done.iter().filter_map(|r| r.ttft_s).collect());
    let sim_e2e = quantiles(done.iter().filter_map(|r| r.e2e_s).collect());
    let sim_itl = quantiles(done.iter().filter_map(|r| r.tpot_s).collect());
    let meas_ttft: Option<Vec<f64>> = reqs.iter().map(|r| r.ttft_s).collect();
    let meas_e2e: Option<Vec<f64>> = reqs.iter().map(|r| r.e2e_s).collect();
    add_stats(p, "ttft", meas_ttft.clone().and_then(quantiles), sim_ttft);
    add_stats(p, "e2e", meas_e2e.clone().and_then(quantiles), sim_e2e);
    if let (Some(tt), Some(ee)) = (&meas_ttft, &meas_e2e) {
        let itl: Vec<f64> = reqs
            .iter()
            .zip(tt.iter().zip(ee))
            .filter(|(r, _)| r.output_tokens > 1)
            .map(|(r, (t, e))| (e - t) / (r.output_tokens - 1) as f64)
            .collect();
        if let (Some(m), Some(si)) = (quantiles(itl), sim_itl) {
            p.add("tpot_mean_s", MetricValue::new(m.mean, si.mean));
            p.add("tpot_p50_s", MetricValue::new(m.p50, si.p50));
        }
    }
    if meas_ttft.is_none() {
        p.notes
            .push("the request log has no TTFT column: TTFT not compared".into());
    }
    if meas_e2e.is_none() {
        p.notes.push(
            "the request log has no latency column: end-to-end and inter-token latency not compared"
                .into(),
        );
    }

    (meas_ttft, meas_e2e)
}

/// Adds the run's duration and throughput over the active window (measured: from the first request to
/// the end the log shows) to `p`.
fn compare_throughput(
    p: &mut Point,
    notes: &mut Vec<String>,
    run: &MeasuredRun,
    s: &Summary,
) -> Window {
    let reqs = &run.requests;
    let (t_meas, how) = run.active_end();
    notes.push(format!(
        "measured active window: from the first request to {how}"
    ));
    let t_sim = s.makespan_s;
    let out_meas: f64 = reqs.iter().map(|r| r.output_tokens as f64).sum();
    let out_sim = s.output_tokens as f64;
    p.add("duration_s", MetricValue::new(t_meas, t_sim));
    p.add(
        "output_tokens_per_s",
        MetricValue::new(out_meas / t_meas, out_sim / t_sim),
    );
    p.add(
        "requests_per_s",
        MetricValue::new(
            reqs.len() as f64 / t_meas,
            s.requests_completed as f64 / t_sim,
        ),
    );

    Window {
        t_meas,
        t_sim,
        out_meas,
        out_sim,
    }
}

/// Adds mean power, energy and energy per token (with the TDP x time and Vidur-Energy baselines) and,
/// with a measured idle baseline, the energy above idle to `p`; returns the simulated power timeline.
#[allow(clippy::too_many_arguments)] // the comparison's inputs, each used once
fn compare_power(
    p: &mut Point,
    notes: &mut Vec<String>,
    o: &simulate::RunOutcome,
    profile: Option<&PowerProfile>,
    energy_note: Option<String>,
    w: &Window,
    gpus: f64,
    meas_idle: Option<(f64, usize)>,
    opts: &RunOptions,
    run: &MeasuredRun,
) -> Option<PowerTimeline> {
    let Window {
        t_meas,
        t_sim,
        out_meas,
        out_sim,
    } = *w;
    let mut timeline = None;
    match profile {
        Some(prof) => {
            let tl = PowerTimeline::new(&o.scenario, &o.result.batches, prof);
            let e_sim = tl.energy(0.0, t_sim);
            let e_meas = run.energy_per_gpu(0.0, t_meas) * gpus;
            let per_gpu_w = |e: f64| e / (gpus * t_sim);
            p.add(
                "mean_power_w",
                MetricValue::with_baselines(e_meas / (gpus * t_meas), e_sim, per_gpu_w),
            );
            p.add(
                "energy_j",
                MetricValue::with_baselines(e_meas, e_sim, |e| e),
            );
            p.add(
                "j_per_output_token",
                MetricValue::with_baselines(e_meas / out_meas, e_sim, |e| e / out_sim),
            );
            match meas_idle {
                Some((idle, n)) => {
                    notes.push(format!(
                        "measured idle baseline: {idle:.1} W per GPU, the mean of {n} reading(s) before \
                         load (ending {:.2} s or more before the first request)",
                        opts.warmup_s
                    ));
                    p.add("idle_power_w", MetricValue::new(idle, prof.between_batches_w()));
                    let above_meas = e_meas - idle * gpus * t_meas;
                    let above_sim = e_sim.simwatt_j - prof.between_batches_w() * gpus * t_sim;
                    p.add(
                        "energy_above_idle_j",
                        MetricValue::new(above_meas, above_sim),
                    );
                    p.add(
                        "j_per_output_token_above_idle",
                        MetricValue::new(above_meas / out_meas, above_sim / out_sim),
                    );
                }
                None => p.notes.push(format!(
                    "no power reading ends {:.2} s or more before the first request: no idle baseline, \
                     energy above idle not compared",
                    opts.warmup_s
                )),
            }
            timeline = Some(tl);
        }
        None => p.notes.push(format!(
            "no power comparison: {}",
            energy_note.unwrap_or_else(|| "no power profile".into())
        )),
    }

    timeline
}

/// The power and latency overlays of measured and simulated runs, drawn into `dir`.
#[allow(clippy::too_many_arguments)] // the plots' inputs, each used once
fn draw_plots(
    dir: &Path,
    name: &str,
    run: &MeasuredRun,
    rows: &[RequestRow],
    timeline: Option<&PowerTimeline>,
    w: &Window,
    meas_idle: Option<(f64, usize)>,
    (meas_ttft, meas_e2e): (Option<Vec<f64>>, Option<Vec<f64>>),
) -> Result<Vec<String>> {
    let done: Vec<&RequestRow> = rows.iter().filter(|r| r.status == "completed").collect();
    let mut plot_files = Vec::new();
    if let Some(tl) = timeline {
        plot_files.push(plots::power_overlay(
            dir,
            name,
            run,
            tl,
            w.t_meas,
            w.t_sim,
            meas_idle.map(|x| x.0),
        )?);
    }
    let sim_sorted = |v: Vec<f64>| {
        let mut v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    if let Some(m) = meas_ttft {
        let s = sim_sorted(done.iter().filter_map(|r| r.ttft_s).collect());
        plot_files.push(plots::latency_overlay(
            dir,
            "ttft_cdf",
            "Time to first token: measured and simulated",
            "time to first token (s)",
            sim_sorted(m),
            s,
        )?);
    }
    if let Some(m) = meas_e2e {
        let s = sim_sorted(done.iter().filter_map(|r| r.e2e_s).collect());
        plot_files.push(plots::latency_overlay(
            dir,
            "e2e_cdf",
            "End-to-end latency: measured and simulated",
            "end-to-end latency (s)",
            sim_sorted(m),
            s,
        )?);
    }
    Ok(plot_files)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}
