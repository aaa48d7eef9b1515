//! Measured configurations, replayed through simwatt: the bridge between power logs and the power model.
//!
//! Input: a measurement manifest (YAML) listing sources: aggregate benchmark tables (LLM-Inference-Bench,
//! ML.ENERGY) and power time series (nvidia-smi, the vLLM protocol's power logger, RAPL) with their
//! request logs, each with the serving settings it was measured under. Each measured configuration is
//! simulated with simwatt's own event loop and execution-time predictor, and the simulated batch stages
//! are cut to the measured windows. Output: [`Observation`]s, whose windows hold the measured energy and
//! the simulated busy pieces (duration, compute and memory-bandwidth utilisation) that the power model's
//! energy is linear in. The simulation does not depend on power parameters, so it runs once per
//! configuration and every fit and leave-one-out refit reuses it.

use crate::catalog::Catalogs;
use crate::config::{self, Scenario};
use crate::drivers::{simulate, Caches};
use crate::error::{Error, Result};
use crate::measured::logs::{self, EnergyWindow, LoggedRequest};
use crate::power::Utilisation;
use crate::rng::substream;
use crate::sim::{self, SimResult};
use crate::units::{ns_to_secs, SimTime};
use crate::workload::RequestSpec;

pub use crate::measured::manifest::{
    prompt_chars, prompt_tokens_of, Manifest, Serving, Source, TimeSeries,
};
use rand::RngExt;
use serde::Serialize;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// One measured window and the simulated time it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    /// Length of the measured window, seconds.
    pub measured_s: f64,
    /// Measured energy of one GPU (the mean over the run's GPUs) in the window, joules.
    pub measured_j: f64,
    /// Length of the simulated window it corresponds to, seconds.
    pub sim_s: f64,
}

/// A busy interval of a simulated GPU inside one window. With pipeline stages, `dt_s` is already
/// divided by the number of stages, so that the pieces of a window add up to the mean GPU's busy time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Piece {
    pub window: u32,
    pub dt_s: f64,
    pub u: Utilisation,
}

/// One measured configuration, replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// Source name from the manifest.
    pub source: String,
    /// What was measured, e.g. `Llama-2-7b-hf bs16 in/out 1024`.
    pub label: String,
    /// Catalog device the configuration was simulated on.
    pub device: String,
    pub model: String,
    pub tensor_parallel: u32,
    /// `profiles` or `roofline`: which execution-time model priced the simulation.
    pub predictor: String,
    /// GPUs the measured energy covers.
    pub gpus: u32,
    /// Factor from the summed window energies to the energy of all GPUs: the GPU count when each window
    /// holds the mean GPU (aggregate rows), 1 when every GPU has its own windows (time series).
    pub gpu_factor: f64,
    pub tdp_w: f64,
    pub windows: Vec<Window>,
    #[serde(skip)]
    pub pieces: Vec<Piece>,
    /// Whether it is a leave-one-out test point (false for published idle readings).
    pub evaluated: bool,
    /// Measured over simulated duration of the busy part of the run (1 for clock-aligned time series).
    /// Replaying a measurement at its measured pace stretches every simulated stage by this factor: the
    /// same FLOPs and bytes over a longer (or shorter) time, so utilisations divide by it.
    pub stretch: f64,
    /// Output tokens in the measured window(s), and in the simulated ones.
    pub measured_tokens: f64,
    pub sim_tokens: f64,
    /// Measured energy per output token over all GPUs, joules (when the source states it differently
    /// from the windows' energy, as ML.ENERGY's steady-state figure does).
    pub measured_j_per_token: f64,
    /// Measured and simulated duration of the run (batch latency, or steady state), seconds, for
    /// context.
    pub measured_run_s: Option<f64>,
    pub sim_run_s: f64,
}

impl Observation {
    /// Measured mean power of one GPU over all windows, watts.
    pub fn measured_mean_w(&self) -> f64 {
        let e: f64 = self.windows.iter().map(|w| w.measured_j).sum();
        let s: f64 = self.windows.iter().map(|w| w.measured_s).sum();
        e / s
    }

    /// Simulated busy time of the mean GPU in each window, seconds.
    pub fn busy_s(&self) -> Vec<f64> {
        let mut b = vec![0.0; self.windows.len()];
        for p in &self.pieces {
            b[p.window as usize] += p.dt_s;
        }
        b
    }
}

/// Progress of replaying measured configurations (for a progress bar). Both methods do nothing by
/// default; `()` is the progress that reports nothing.
pub trait ReplayProgress {
    /// A configuration, described by `what`, is about to be simulated.
    fn replaying(&self, what: &str) {
        let _ = what;
    }
    /// The configuration announced last has been simulated.
    fn replayed(&self) {}
}

impl ReplayProgress for () {}

/// The configurations of an Argonne (LLM-Inference-Bench) table that a source selects, with the catalog
/// model each is simulated with.
fn argonne_selected<'r>(
    rows: &'r [logs::ArgonneRow],
    hardware: &str,
    framework: &str,
    models: &'r BTreeMap<String, String>,
) -> impl Iterator<Item = (&'r logs::ArgonneRow, &'r String)> + 'r {
    let (hardware, framework) = (hardware.to_string(), framework.to_string());
    rows.iter()
        .filter(move |r| r.hardware == hardware && r.framework == framework)
        .filter_map(|r| models.get(&r.model).map(|m| (r, m)))
}

/// The configurations of an ML.ENERGY table that a source selects, with the catalog model of each.
fn mlenergy_selected<'r>(
    rows: &'r [logs::MlEnergyRow],
    gpu_name: &str,
    task: &str,
    models: &'r BTreeMap<String, String>,
) -> impl Iterator<Item = (&'r logs::MlEnergyRow, &'r String)> + 'r {
    let (gpu_name, task) = (gpu_name.to_string(), task.to_string());
    rows.iter()
        .filter(move |r| r.gpu == gpu_name && r.task == task)
        .filter_map(|r| models.get(&r.model).map(|m| (r, m)))
}

/// How many configurations [`load_observations`] will simulate for `manifest` (reads the tables, simulates
/// nothing): each selected row of a benchmark table, each time series; idle readings and optional
/// sources whose files are absent count none.
pub fn count_replays(manifest: &Manifest) -> Result<usize> {
    let mut n = 0;
    for src in &manifest.sources {
        if src.optional() && src.files().into_iter().any(|p| !p.exists()) {
            continue;
        }
        n += match src {
            Source::Argonne {
                path,
                hardware,
                framework,
                models,
                ..
            } => argonne_selected(&logs::read_argonne(path)?, hardware, framework, models).count(),
            Source::Mlenergy {
                path,
                gpu_name,
                task,
                models,
                ..
            } => mlenergy_selected(&logs::read_mlenergy(path)?, gpu_name, task, models).count(),
            Source::NvidiaSmi(_)
            | Source::VllmPowerLog(_)
            | Source::Rapl(_)
            | Source::Tegrastats(_)
            | Source::Ina3221(_)
            | Source::PowerGadget(_)
            | Source::Pdu(_)
            | Source::Smartwatts(_) => 1,
            Source::Idle { .. } => 0,
        };
    }
    Ok(n)
}

/// Sources the fit reads, with the ones skipped and why.
pub struct Loaded {
    pub observations: Vec<Observation>,
    pub skipped: Vec<String>,
}

/// Reads every source of `manifest` and replays each configuration. `manifest_path` names the manifest
/// in errors. Optional sources whose files are absent are skipped with a message in `skipped`.
pub fn load_observations(manifest_path: &Path, manifest: &Manifest) -> Result<Loaded> {
    load_observations_with(&Caches::new()?, manifest_path, manifest, &())
}

/// [`load_observations`], sharing `caches` between the replays and telling `progress` about each
/// configuration it replays.
pub fn load_observations_with(
    caches: &Caches,
    manifest_path: &Path,
    manifest: &Manifest,
    progress: &dyn ReplayProgress,
) -> Result<Loaded> {
    let mut observations = Vec::new();
    let mut skipped = Vec::new();
    for src in &manifest.sources {
        if let Some(missing) = src.files().into_iter().find(|p| !p.exists()) {
            if src.optional() {
                skipped.push(format!(
                    "{}: skipped, {} is absent",
                    src.name(),
                    missing.display()
                ));
                continue;
            }
        }
        let mut obs = match src {
            Source::Argonne {
                name,
                path,
                hardware,
                framework,
                models,
                padding_s,
                serving,
            } => argonne(
                caches,
                manifest_path,
                name,
                path,
                hardware,
                framework,
                models,
                *padding_s,
                serving,
                progress,
            )?,
            Source::Mlenergy { .. } => mlenergy(caches, manifest_path, src, progress)?,
            Source::NvidiaSmi(t)
            | Source::VllmPowerLog(t)
            | Source::Rapl(t)
            | Source::Tegrastats(t)
            | Source::Ina3221(t)
            | Source::PowerGadget(t)
            | Source::Pdu(t)
            | Source::Smartwatts(t) => {
                let traces = src.read_power()?;
                vec![time_series(caches, manifest_path, t, traces, progress)?]
            }
            Source::Idle {
                name,
                power_w,
                device,
                citation,
            } => vec![idle(
                caches,
                manifest_path,
                name,
                *power_w,
                device,
                citation,
            )?],
        };
        if obs.is_empty() {
            return Err(Error::invalid(
                manifest_path,
                format!("sources.{}", src.name()),
                src.name(),
                "selects no rows of its data (check the hardware, framework, GPU, task and model names)",
            ));
        }
        observations.append(&mut obs);
    }
    Ok(Loaded {
        observations,
        skipped,
    })
}

/// Settings of one simulated configuration.
struct SimSetup<'a> {
    serving: &'a Serving,
    model: &'a str,
    tp: u32,
    pp: u32,
    max_num_seqs: u32,
    requests: usize,
}

fn ymap(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::String(k.into()), v);
    }
    Value::Mapping(m)
}

/// Builds and resolves the scenario of one configuration (workload placeholders: the requests are
/// passed to the event loop directly).
fn scenario(catalogs: &Catalogs, manifest_path: &Path, s: &SimSetup) -> Result<Scenario> {
    let sv = s.serving;
    let mut sched = vec![
        ("policy", Value::String(sv.policy.clone())),
        ("max_num_seqs", Value::from(s.max_num_seqs)),
    ];
    if let Some(t) = sv.max_num_batched_tokens {
        sched.push(("max_num_batched_tokens", Value::from(t)));
    }
    if let Some(c) = sv.chunk_size {
        sched.push(("chunk_size", Value::from(c)));
    }
    let tree = ymap(vec![
        ("model", Value::String(s.model.into())),
        (
            "hardware",
            ymap(vec![
                ("gpu", Value::String(sv.device.clone())),
                ("tensor_parallel", Value::from(s.tp)),
                ("pipeline_stages", Value::from(s.pp)),
                (
                    "gpu_memory_utilization",
                    Value::from(sv.gpu_memory_utilization),
                ),
            ]),
        ),
        ("scheduler", ymap(sched)),
        (
            "workload",
            ymap(vec![
                ("requests", Value::from(s.requests.max(1) as u64)),
                ("arrival", ymap(vec![("type", "all_at_once".into())])),
                (
                    "lengths",
                    ymap(vec![
                        ("type", "fixed".into()),
                        ("prompt", Value::from(1)),
                        ("output", Value::from(1)),
                    ]),
                ),
            ]),
        ),
    ]);
    let raw = config::parse_tree(manifest_path, tree)?;
    let mut sc = Scenario::resolve(catalogs, manifest_path, raw)?;
    if let Some(other) = &sv.profiles_from {
        let (_, d) = sc.catalog.device(other).ok_or_else(|| {
            Error::invalid(
                manifest_path,
                "profiles_from",
                other,
                "not in the device catalog",
            )
        })?;
        sc.device.profile_dir = d.profile_dir.clone();
        sc.device.network_profile = d.network_profile.clone();
    }
    Ok(sc)
}

/// Simulates `specs` under `s`; returns the scenario, the result and the predictor kind.
fn simulate(
    caches: &Caches,
    manifest_path: &Path,
    s: &SimSetup,
    specs: &[RequestSpec],
) -> Result<(Scenario, SimResult, String)> {
    let sc = scenario(&caches.catalogs, manifest_path, s)?;
    let predictor = simulate::build_predictor(&sc, &caches.tables)?;
    let result = sim::run(&sc, specs, predictor.as_ref(), None, &|_| {})?;
    let kind = predictor.info().kind;
    Ok((sc, result, kind))
}

/// Cuts the simulated stages into pieces of the windows `[start_ns[i], end_ns[i])` (sorted by start,
/// possibly overlapping). Stages at times before 0 do not exist; windows may start before 0.
fn cut(sc: &Scenario, r: &SimResult, windows: &[(f64, f64)]) -> Vec<Piece> {
    let stages = sc.hardware.pipeline_stages as f64;
    let b = &r.batches;
    let mut pieces = Vec::new();
    // Windows sorted by start; the latest window end so far, to stop scanning early.
    let starts: Vec<f64> = windows.iter().map(|w| w.0).collect();
    let max_len = windows.iter().map(|w| w.1 - w.0).fold(0.0f64, f64::max);
    for i in 0..b.len() {
        let (s, e) = (ns_to_secs(b.start_ns[i]), ns_to_secs(b.end_ns[i]));
        if e <= s {
            continue;
        }
        let u = Utilisation::of(b.flops[i], b.bytes[i], e - s, &sc.device);
        // First window that can overlap: start > s - max_len.
        let first = starts.partition_point(|&ws| ws <= s - max_len);
        for (k, &(ws, we)) in windows.iter().enumerate().skip(first) {
            if ws >= e {
                break;
            }
            let dt = e.min(we) - s.max(ws);
            if dt > 0.0 {
                pieces.push(Piece {
                    window: k as u32,
                    dt_s: dt / stages,
                    u,
                });
            }
        }
    }
    pieces
}

/// Output tokens the simulation produced by `until_ns`: first tokens of requests plus decode tokens of
/// last-stage batch stages that ended by then.
pub fn tokens_by(sc: &Scenario, r: &SimResult, until_ns: SimTime) -> f64 {
    let last = sc.hardware.pipeline_stages - 1;
    let first: usize = r
        .requests
        .iter()
        .filter(|q| q.first_token_ns.is_some_and(|t| t <= until_ns))
        .count();
    let b = &r.batches;
    let decode: u64 = (0..b.len())
        .filter(|&i| b.stage[i] == last && b.end_ns[i] <= until_ns)
        .map(|i| b.decode_tokens[i] as u64)
        .sum();
    first as f64 + decode as f64
}

fn short_model(m: &str) -> &str {
    m.rsplit('/').next().unwrap_or(m)
}

#[allow(clippy::too_many_arguments)]
fn argonne(
    caches: &Caches,
    manifest_path: &Path,
    name: &str,
    path: &Path,
    hardware: &str,
    framework: &str,
    models: &BTreeMap<String, String>,
    padding_s: f64,
    serving: &Serving,
    progress: &dyn ReplayProgress,
) -> Result<Vec<Observation>> {
    let rows = logs::read_argonne(path)?;
    let mut out = Vec::new();
    for (row, model) in argonne_selected(&rows, hardware, framework, models) {
        let label = format!(
            "{} bs{} in/out {} (row {})",
            short_model(&row.model),
            row.batch_size,
            row.length,
            row.row
        );
        progress.replaying(&format!("{name}: {label}"));
        let setup = SimSetup {
            serving,
            model,
            tp: row.num_gpus,
            pp: 1,
            max_num_seqs: row.batch_size,
            requests: row.batch_size as usize,
        };
        let specs: Vec<RequestSpec> = (0..row.batch_size)
            .map(|_| RequestSpec {
                arrival_ns: 0,
                prompt_tokens: row.length,
                output_tokens: row.length,
                ..Default::default()
            })
            .collect();
        let (sc, r, kind) = simulate(caches, manifest_path, &setup, &specs)?;
        progress.replayed();
        let run_s = ns_to_secs(r.end_ns);
        let window = (-padding_s, run_s + padding_s);
        let pieces = cut(&sc, &r, &[window]);
        let measured_s = row.latency_s + 2.0 * padding_s;
        let tokens = row.batch_size as f64 * row.length as f64;
        out.push(Observation {
            source: name.into(),
            label,
            device: sc.device_name.clone(),
            model: sc.model_name.clone(),
            tensor_parallel: row.num_gpus,
            predictor: kind,
            // Power of GPU 0 only.
            gpus: 1,
            gpu_factor: 1.0,
            tdp_w: sc.device.tdp_w,
            windows: vec![Window {
                measured_s,
                measured_j: row.avg_power_w * measured_s,
                sim_s: window.1 - window.0,
            }],
            pieces,
            measured_tokens: tokens,
            sim_tokens: tokens,
            measured_j_per_token: row.avg_power_w * measured_s / tokens,
            measured_run_s: Some(row.latency_s),
            sim_run_s: run_s,
            stretch: row.latency_s / run_s,
            evaluated: true,
        });
    }
    Ok(out)
}

/// The requests of one ML.ENERGY run: the prompt set repeated `dup_factor` times, all at t = 0. Only the
/// mean output length is published, so output lengths are drawn uniformly over [1, 2 x mean - 1]
/// (seeded by the row), so that requests finish at different times as they do in the real run.
pub fn mlenergy_requests(
    row: &logs::MlEnergyRow,
    prompt_tokens: &[u32],
    dup_factor: u32,
    max_output_tokens: u32,
) -> Vec<RequestSpec> {
    let mut rng = substream(row.row as u64, "power.mlenergy.output");
    let hi = ((2.0 * row.avg_output_tokens).round() as u32)
        .saturating_sub(1)
        .clamp(1, max_output_tokens.max(1));
    let n = prompt_tokens.len() * dup_factor as usize;
    (0..n)
        .map(|i| RequestSpec {
            arrival_ns: 0,
            prompt_tokens: prompt_tokens[i % prompt_tokens.len()],
            output_tokens: rng.random_range(1..=hi),
            ..Default::default()
        })
        .collect()
}

fn mlenergy(
    caches: &Caches,
    manifest_path: &Path,
    src: &Source,
    progress: &dyn ReplayProgress,
) -> Result<Vec<Observation>> {
    let Source::Mlenergy {
        name,
        path,
        prompts,
        gpu_name,
        task,
        models,
        dup_factor,
        chars_per_token,
        template_tokens,
        max_output_tokens,
        serving,
    } = src
    else {
        return Err(Error::Internal("mlenergy called on another source".into()));
    };
    if !(chars_per_token.is_finite() && *chars_per_token > 0.0) {
        return Err(Error::invalid(
            manifest_path,
            format!("sources.{name}.chars_per_token"),
            chars_per_token,
            "must be a finite number > 0",
        ));
    }
    let rows = logs::read_mlenergy(path)?;
    let chars = prompt_chars(prompts)?;
    let prompt_tokens = prompt_tokens_of(&chars, *chars_per_token, *template_tokens);
    let mut out = Vec::new();
    for (row, model) in mlenergy_selected(&rows, gpu_name, task, models) {
        let label = format!(
            "{} TP{} max_num_seqs {} (row {})",
            short_model(&row.model),
            row.tp,
            row.max_num_seqs,
            row.row
        );
        progress.replaying(&format!("{name}: {label}"));
        let specs = mlenergy_requests(row, &prompt_tokens, *dup_factor, *max_output_tokens);
        let n = specs.len();
        let setup = SimSetup {
            serving,
            model,
            tp: row.tp,
            pp: row.pp,
            max_num_seqs: row.max_num_seqs,
            requests: n,
        };
        let (sc, r, kind) = simulate(caches, manifest_path, &setup, &specs)?;
        progress.replayed();
        // Steady state: until the last request is admitted (the waiting queue first empties).
        let end_ns = r
            .requests
            .iter()
            .filter_map(|q| q.scheduled_ns)
            .max()
            .unwrap_or(r.end_ns)
            .max(1);
        let end_s = ns_to_secs(end_ns);
        let pieces = cut(&sc, &r, &[(0.0, end_s)]);
        let gpus = row.tp * row.pp;
        let mean_w = row.mean_w_per_gpu();
        // The measured steady state produced the simulated window's tokens at the measured rate.
        let sim_tokens = tokens_by(&sc, &r, end_ns);
        let measured_s = sim_tokens / row.token_tput;
        out.push(Observation {
            source: name.clone(),
            label,
            device: sc.device_name.clone(),
            model: sc.model_name.clone(),
            tensor_parallel: row.tp,
            predictor: kind,
            gpus,
            gpu_factor: gpus as f64,
            tdp_w: sc.device.tdp_w,
            windows: vec![Window {
                measured_s,
                measured_j: mean_w * measured_s,
                sim_s: end_s,
            }],
            pieces,
            measured_tokens: sim_tokens,
            sim_tokens,
            measured_j_per_token: row.j_per_token(),
            measured_run_s: Some(measured_s),
            sim_run_s: end_s,
            stretch: measured_s / end_s,
            evaluated: true,
        });
    }
    Ok(out)
}

fn time_series(
    caches: &Caches,
    manifest_path: &Path,
    t: &TimeSeries,
    mut traces: Vec<logs::PowerTrace>,
    progress: &dyn ReplayProgress,
) -> Result<Observation> {
    let reqs: Vec<LoggedRequest> = logs::read_request_log(&t.requests)?;
    let utc_offset_s = match &t.utc_offset {
        Some(u) => Some(logs::parse_utc_offset(u).ok_or_else(|| {
            Error::invalid(
                manifest_path,
                format!("sources.{}.utc_offset", t.name),
                u,
                "not a UTC offset: give the offset in effect when the log was written, as +HH:MM \
                 or -HH:MM",
            )
        })?),
        None => None,
    };
    // Every trace in seconds from the first request, checked to overlap the requests.
    crate::measured::run::align_power(
        &mut traces,
        &reqs,
        logs::Clock::Epoch,
        &t.requests,
        t.clock_offset_s,
        utc_offset_s,
    )?;
    let specs = logs::request_specs(&reqs);
    let setup = SimSetup {
        serving: &t.serving,
        model: &t.model,
        tp: t.tensor_parallel,
        pp: 1,
        max_num_seqs: t.max_num_seqs,
        requests: specs.len(),
    };
    progress.replaying(&format!(
        "{}: {} serving {} requests",
        t.name,
        short_model(&t.model),
        specs.len()
    ));
    let (sc, r, kind) = simulate(caches, manifest_path, &setup, &specs)?;
    progress.replayed();
    // Every GPU's windows on the simulated clock, warm-up dropped.
    let mut ws: Vec<EnergyWindow> = Vec::new();
    for tr in &traces {
        for w in &tr.windows {
            let (a, b) = (w.start_s, w.end_s);
            if b > -t.warmup_s && a < 0.0 && t.warmup_s > 0.0 {
                continue;
            }
            ws.push(EnergyWindow {
                start_s: a,
                end_s: b,
                energy_j: w.energy_j,
            });
        }
    }
    if ws.is_empty() {
        return Err(Error::Csv {
            path: t.path.clone(),
            message: "no power readings left after dropping the warm-up".into(),
        });
    }
    ws.sort_by(|x, y| x.start_s.total_cmp(&y.start_s));
    let bounds: Vec<(f64, f64)> = ws.iter().map(|w| (w.start_s, w.end_s)).collect();
    let pieces = cut(&sc, &r, &bounds);
    let tokens: f64 = reqs.iter().map(|q| q.output_tokens as f64).sum();
    let windows: Vec<Window> = ws
        .iter()
        .map(|w| Window {
            measured_s: w.duration_s(),
            measured_j: w.energy_j,
            sim_s: w.duration_s(),
        })
        .collect();
    let total_j: f64 = windows.iter().map(|w| w.measured_j).sum();
    let gpus = traces.len() as u32;
    // Energy is summed over the GPUs' traces; per-GPU windows share the simulated timeline.
    let last = ws.iter().map(|w| w.end_s).fold(f64::MIN, f64::max);
    let first = ws.iter().map(|w| w.start_s).fold(f64::MAX, f64::min);
    Ok(Observation {
        source: t.name.clone(),
        label: format!(
            "{} serving {} requests, {} readings",
            short_model(&t.model),
            reqs.len(),
            windows.len()
        ),
        device: sc.device_name.clone(),
        model: sc.model_name.clone(),
        tensor_parallel: t.tensor_parallel,
        predictor: kind,
        gpus,
        gpu_factor: 1.0,
        tdp_w: sc.device.tdp_w,
        windows,
        pieces,
        measured_tokens: tokens,
        sim_tokens: tokens,
        measured_j_per_token: total_j / tokens,
        measured_run_s: Some(last - first),
        sim_run_s: ns_to_secs(r.end_ns),
        stretch: 1.0,
        evaluated: true,
    })
}

fn idle(
    caches: &Caches,
    manifest_path: &Path,
    name: &str,
    power_w: f64,
    device: &str,
    citation: &str,
) -> Result<Observation> {
    if !(power_w.is_finite() && power_w > 0.0) {
        return Err(Error::invalid(
            manifest_path,
            format!("sources.{name}.power_w"),
            power_w,
            "must be a finite number > 0",
        ));
    }
    let (dev, spec) = caches.catalogs.builtin().device(device).ok_or_else(|| {
        Error::invalid(
            manifest_path,
            format!("sources.{name}.device"),
            device,
            "not in the device catalog",
        )
    })?;
    Ok(Observation {
        source: name.into(),
        label: format!("idle reading ({citation})"),
        device: dev.into(),
        model: "-".into(),
        tensor_parallel: 1,
        predictor: "-".into(),
        gpus: 1,
        gpu_factor: 1.0,
        tdp_w: spec.tdp_w,
        windows: vec![Window {
            measured_s: 1.0,
            measured_j: power_w,
            sim_s: 1.0,
        }],
        pieces: vec![],
        measured_tokens: 0.0,
        sim_tokens: 0.0,
        measured_j_per_token: f64::NAN,
        measured_run_s: None,
        sim_run_s: 0.0,
        evaluated: false,
        stretch: 1.0,
    })
}
