//! The `measure` driver: `measure power` (the sampler alone), `measure load` (the load generator
//! alone) and `measure run` (the sampler around a load run: idle baseline, warm-up, load, tail),
//! each writing a measured-run folder that `validate` reads as it is.
//!
//! Input: what the CLI parsed, a config whose workload gives the requests (the same arrivals and
//! lengths `simulate` draws from its seed or trace). Output: a folder written whole or not at all
//! ([`crate::output::RunDir`]): the power logs, the request log, token times, failed requests and
//! `manifest.json` (what was asked of whom, the server's model list, the phases on epoch seconds and
//! the `warmup_s` that `validate` reads to keep the warm-up out of the idle baseline).

use crate::config::{self, Scenario};
use crate::drivers::Caches;
use crate::error::{Error, Result};
use crate::measure::load::{self, Api, Endpoint, LoadOptions, LoopMode, Record};
use crate::measure::power::{Device, GpuChoice, PowerLog, PowerOptions, Sampler, Sources};
use crate::measure::{record, WallClock};
use crate::output::{RunDir, RunKind};
use crate::workload::{self, RequestSpec};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum MeasureCmd {
    /// Sample GPU power (NVML, else nvidia-smi) and CPU package/DRAM energy (RAPL) for a while and
    /// write the power logs: the first --idle-s seconds are marked idle, the next --warmup-s warmup,
    /// the rest load.
    Power(PowerCmd),
    /// Drive an OpenAI-compatible server with a config's workload and write the request log.
    Load(LoadCmd),
    /// The sampler around a load run (idle baseline, warm-up requests, load, tail): a measured-run
    /// folder that `simwatt validate --config CFG --measured DIR` reads.
    Run(RunCmd),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GpuArg {
    Auto,
    Nvml,
    NvidiaSmi,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The GPUs when any are found, else the CPU packages.
    Auto,
    Gpu,
    Cpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    Completions,
    Chat,
}

/// What the sampler reads.
#[derive(Debug, Args, Clone)]
pub struct PowerArgs {
    /// Readings per second (the studies use 5 to 10).
    #[arg(long, value_name = "HZ", default_value_t = 10.0)]
    pub rate_hz: f64,
    /// GPU reader.
    #[arg(long, value_enum, default_value_t = GpuArg::Auto)]
    pub gpu: GpuArg,
    /// The powercap tree whose intel-rapl:* zones are read.
    #[arg(long, value_name = "DIR", default_value = crate::measure::rapl::DEFAULT_ROOT)]
    pub rapl_root: PathBuf,
    /// Do not read RAPL.
    #[arg(long)]
    pub no_rapl: bool,
    /// Whose power the folder's power log holds for `validate`: the GPUs' or the CPU packages'.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Fail when no power source is found (by default the run goes on and its folder has no power log).
    #[arg(long)]
    pub require_power: bool,
}

/// How the load is driven.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// The server's base URL, e.g. http://127.0.0.1:8000 (plain HTTP).
    #[arg(long, value_name = "URL")]
    pub endpoint: String,
    /// Config whose workload (seed or trace, arrivals and lengths) gives the requests.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Override a config value (dotted path), e.g. workload.requests=20. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Route: /v1/completions or /v1/chat/completions.
    #[arg(long, value_enum, default_value_t = ApiArg::Completions)]
    pub api: ApiArg,
    /// Closed loop with N users, each sending its next request when its last completes (arrivals
    /// ignored). Default: open loop, each request at its scheduled arrival.
    #[arg(long, value_name = "N")]
    pub closed: Option<u32>,
    /// The requests' `model` [default: the first model the server lists at /v1/models].
    #[arg(long)]
    pub model: Option<String>,
    /// Longest one request may take, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub request_timeout_s: f64,
    /// The words prompts are made of, comma-separated: one word per prompt token asked, taken in turn,
    /// request i starting at word i mod n (so consecutive requests share no prefix).
    #[arg(long, value_name = "WORD,WORD", default_value = "hello,world")]
    pub prompt_words: String,
    /// Do not ask for `ignore_eos` and `min_tokens` (for servers that refuse them).
    #[arg(long)]
    pub no_force_length: bool,
    /// Requests sent one by one before the load and not logged (16-token prompt, 8 tokens out).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub warmup_requests: u32,
    /// Most requests in flight in open loop.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_in_flight: usize,
}

#[derive(Debug, Args)]
pub struct PowerCmd {
    /// Output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// How long to sample, seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration_s: f64,
    /// Seconds at the start marked idle.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub idle_s: f64,
    /// Seconds after the idle ones marked warmup.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub warmup_s: f64,
    #[command(flatten)]
    pub power: PowerArgs,
    /// Replace the output folder if a previous `measure` wrote it and it holds nothing else.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LoadCmd {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Replace the output folder if a previous `measure` wrote it and it holds nothing else.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunCmd {
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub power: PowerArgs,
    /// Seconds of idle baseline before the warm-up.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub idle_s: f64,
    /// Seconds sampled after the last request completes.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub tail_s: f64,
    /// Output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Replace the output folder if a previous `measure` wrote it and it holds nothing else.
    #[arg(long)]
    pub force: bool,
}

fn check_seconds(flag: &str, v: f64, min: f64, max: f64) -> Result<()> {
    if !v.is_finite() || v < min || v > max {
        return Err(Error::invalid(
            flag,
            flag.trim_start_matches('-'),
            v,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(())
}

fn power_options(a: &PowerArgs) -> Result<PowerOptions> {
    check_seconds("--rate-hz", a.rate_hz, 0.1, 100.0)?;
    Ok(PowerOptions {
        rate_hz: a.rate_hz,
        gpu: match a.gpu {
            GpuArg::Auto => GpuChoice::Auto,
            GpuArg::Nvml => GpuChoice::Nvml,
            GpuArg::NvidiaSmi => GpuChoice::NvidiaSmi,
            GpuArg::Off => GpuChoice::Off,
        },
        rapl_root: (!a.no_rapl).then(|| a.rapl_root.clone()),
    })
}

/// The sources, and the device whose power log `validate` reads.
fn open_power(a: &PowerArgs, log: &dyn Fn(&str)) -> Result<(Sources, Option<Device>)> {
    let opts = power_options(a)?;
    let sources = Sources::open(&opts)?;
    for n in &sources.notes {
        log(&format!("note: {n}"));
    }
    let device = match a.device {
        DeviceArg::Auto => sources.default_device(),
        DeviceArg::Gpu if sources.gpu.is_none() => {
            return Err(Error::invalid(
                "--device",
                "device",
                "gpu",
                "no GPU can be read (see the notes above); use --device cpu or auto",
            ))
        }
        DeviceArg::Gpu => Some(Device::Gpu),
        DeviceArg::Cpu
            if !sources
                .rapl
                .iter()
                .any(|d| d.kind == crate::measure::rapl::DomainKind::Package) =>
        {
            return Err(Error::invalid(
                "--device",
                "device",
                "cpu",
                format!(
                    "no RAPL package counter under {} (see the notes above)",
                    a.rapl_root.display()
                ),
            ))
        }
        DeviceArg::Cpu => Some(Device::Cpu),
    };
    if device.is_none() && a.require_power {
        return Err(Error::invalid(
            "--require-power",
            "require-power",
            "true",
            format!(
                "no power source: no GPU through NVML or nvidia-smi, no RAPL package counter under {}",
                a.rapl_root.display()
            ),
        ));
    }
    Ok((sources, device))
}

fn power_manifest(
    a: &PowerArgs,
    log: &PowerLog,
    device: Option<Device>,
    notes: &[String],
) -> Value {
    let mean = |phase: &str| {
        log.mean_power(phase)
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        "rate_hz": a.rate_hz,
        "gpu_source": log.gpu_source,
        "gpus": log.gpu.first().map(|r| r.gpus.iter().map(|g| json!({"index": g.index, "name": g.name})).collect::<Vec<_>>()),
        "rapl_root": (!a.no_rapl).then(|| a.rapl_root.display().to_string()),
        "rapl_domains": log.domains.iter().map(|d| json!({"zone": d.zone, "label": d.label, "max_energy_range_uj": d.max_range_uj})).collect::<Vec<_>>(),
        "device": device.map(Device::label),
        "readings": { "gpu": log.gpu.len(), "rapl": log.rapl.len() },
        "phases": log.phases,
        "mean_power_w": { "idle": mean("idle"), "warmup": mean("warmup"), "load": mean("load") },
        "notes": notes,
        "errors": log.errors,
    })
}

/// The requests of the config's workload, and the config's path for the manifest.
fn load_specs(a: &LoadArgs, caches: &Caches) -> Result<(Scenario, Vec<RequestSpec>)> {
    let raw = config::load(&a.config, &a.set)?;
    let scenario = Scenario::resolve(&caches.catalogs, &a.config, raw)?;
    if scenario.workload.sessions.is_some() {
        return Err(Error::invalid(
            &a.config,
            "workload.sessions",
            "(set)",
            "multi-turn sessions are not sent by `measure` (each turn's prompt depends on the previous \
             answer); use single-turn requests",
        ));
    }
    let specs = workload::generate(&scenario.source, &scenario.workload, scenario.seed)?;
    if specs.is_empty() {
        return Err(Error::invalid(
            &a.config,
            "workload.requests",
            0,
            "the workload has no requests",
        ));
    }
    Ok((scenario, specs))
}

fn load_options(a: &LoadArgs, endpoint: Endpoint, model: String) -> Result<LoadOptions> {
    check_seconds("--request-timeout-s", a.request_timeout_s, 0.1, 86400.0)?;
    if a.closed == Some(0) {
        return Err(Error::invalid(
            "--closed",
            "closed",
            0,
            "needs at least one user",
        ));
    }
    if a.max_in_flight == 0 {
        return Err(Error::invalid(
            "--max-in-flight",
            "max-in-flight",
            0,
            "must be at least 1",
        ));
    }
    let words: Vec<String> = a
        .prompt_words
        .split(',')
        .map(|w| w.trim().to_string())
        .collect();
    if words
        .iter()
        .any(|w| w.is_empty() || w.contains(char::is_whitespace))
    {
        return Err(Error::invalid(
            "--prompt-words",
            "prompt-words",
            &a.prompt_words,
            "must be words without spaces, separated by commas",
        ));
    }
    Ok(LoadOptions {
        endpoint,
        api: match a.api {
            ApiArg::Completions => Api::Completions,
            ApiArg::Chat => Api::Chat,
        },
        mode: match a.closed {
            Some(users) => LoopMode::Closed { users },
            None => LoopMode::Open,
        },
        model,
        request_timeout_s: a.request_timeout_s,
        prompt_words: words,
        force_length: !a.no_force_length,
        max_in_flight: a.max_in_flight,
    })
}

/// Everything a load needs, checked before anything is sampled or sent: the options, the requests,
/// the server's model list.
struct Prepared {
    opts: LoadOptions,
    scenario: Scenario,
    specs: Vec<RequestSpec>,
    server: load::ServerInfo,
}

fn prepare_load(a: &LoadArgs, caches: &Caches) -> Result<Prepared> {
    let endpoint = Endpoint::parse(&a.endpoint)?;
    let (scenario, specs) = load_specs(a, caches)?;
    let server = load::server_info(&endpoint, a.request_timeout_s.clamp(1.0, 30.0))?;
    let model = a.model.clone().unwrap_or_else(|| server.models[0].clone());
    let opts = load_options(a, endpoint, model)?;
    Ok(Prepared {
        opts,
        scenario,
        specs,
        server,
    })
}

/// Sends the warm-up requests; a failed one is an error (the server cannot serve the load either).
fn warm_up(p: &Prepared, n: u32, clock: &WallClock) -> Result<()> {
    let agent = load::agent(p.opts.request_timeout_s);
    for i in 0..n {
        let spec = RequestSpec {
            prompt_tokens: 16,
            output_tokens: 8,
            ..Default::default()
        };
        let r = load::send_one(&agent, &p.opts, clock, i as usize, &spec, 0.0);
        if let Some(e) = r.error {
            return Err(Error::invalid(
                "--endpoint",
                "endpoint",
                &p.opts.endpoint.base,
                format!("the warm-up request failed: {e}"),
            ));
        }
    }
    Ok(())
}

fn load_manifest(a: &LoadArgs, p: &Prepared, records: &[Record]) -> Value {
    let ok = records.iter().filter(|r| r.ok()).count();
    json!({
        "model": p.opts.model,
        "endpoint": p.opts.endpoint.base,
        "api": p.opts.api.path(),
        "mode": match p.opts.mode {
            LoopMode::Open => json!({"loop": "open"}),
            LoopMode::Closed { users } => json!({"loop": "closed", "users": users}),
        },
        "config": a.config.display().to_string(),
        "overrides": a.set,
        "seed": p.scenario.seed,
        "simulated_model": p.scenario.model_name,
        "requests": records.len(),
        "completed": ok,
        "failed": records.len() - ok,
        "asked": {
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.0,
            "prompt": format!("the words {:?} in turn, one per prompt token asked, request i starting at word i mod {}", p.opts.prompt_words, p.opts.prompt_words.len()),
            "force_length": p.opts.force_length,
            "length_fields": if p.opts.force_length { json!(["max_tokens", "ignore_eos", "min_tokens"]) } else { json!(["max_tokens"]) },
            "warmup_requests": a.warmup_requests,
        },
        "server_models": p.server.raw,
        "lengths_from": "the server's usage counts where it gave them (requests.csv column tokens_from)",
    })
}

fn write_requests(dir: &RunDir, records: &[Record]) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if records.iter().any(Record::ok) {
        dir.write_text("requests.csv", &record::request_log(records))?;
        files.push("requests.csv".to_string());
    }
    dir.write_text("tokens.jsonl", &record::token_times(records))?;
    files.push("tokens.jsonl".to_string());
    if let Some(e) = record::errors(records) {
        dir.write_text("request-errors.csv", &e)?;
        files.push("request-errors.csv".to_string());
    }
    Ok(files)
}

fn write_manifest(dir: &RunDir, mut m: Value, files: Vec<String>) -> Result<()> {
    m["simwatt_version"] = json!(env!("CARGO_PKG_VERSION"));
    m["command"] = json!(std::env::args().collect::<Vec<_>>().join(" "));
    m["files"] = json!(files);
    let text = serde_json::to_string_pretty(&m)
        .map_err(|e| Error::Internal(format!("manifest.json: {e}")))?;
    dir.write_text("manifest.json", &(text + "\n"))
}

fn sleep_s(s: f64) {
    if s > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(s));
    }
}

/// What a measure command wrote.
#[derive(Debug)]
pub struct MeasureOutcome {
    pub dir: PathBuf,
    pub requests: usize,
    pub failed: usize,
    pub files: Vec<String>,
}

/// An error when no request completed (nothing to validate against), naming the endpoint and the
/// first request's error.
fn check_any_completed(p: &Prepared, records: &[Record]) -> Result<()> {
    if records.iter().any(Record::ok) {
        return Ok(());
    }
    let first = records
        .iter()
        .find_map(|r| r.error.clone())
        .unwrap_or_else(|| "no text streamed".into());
    Err(Error::invalid(
        "--endpoint",
        "endpoint",
        &p.opts.endpoint.base,
        format!(
            "none of the {} requests completed; the first error: {first}",
            records.len()
        ),
    ))
}

fn summarise(records: &[Record], log: &dyn Fn(&str)) {
    let failed = records.iter().filter(|r| !r.ok()).count();
    if let Some(e) = records.iter().find_map(|r| r.error.as_ref()) {
        log(&format!(
            "warning: {failed} of {} requests failed; the first: {e}",
            records.len()
        ));
    }
}

/// `measure power`.
pub fn power(cmd: &PowerCmd, log: &dyn Fn(&str)) -> Result<MeasureOutcome> {
    check_seconds("--duration-s", cmd.duration_s, 0.1, 30.0 * 86400.0)?;
    check_seconds("--idle-s", cmd.idle_s, 0.0, cmd.duration_s)?;
    check_seconds("--warmup-s", cmd.warmup_s, 0.0, cmd.duration_s - cmd.idle_s)?;
    let dir = RunDir::create(&cmd.out, cmd.force, RunKind::Measure, &[], log)?;
    let (sources, device) = open_power(&cmd.power, log)?;
    if !sources.any() {
        return Err(Error::invalid(
            "--gpu",
            "gpu",
            format!("{:?}", cmd.power.gpu).to_lowercase(),
            "no power source to sample (no GPU, no RAPL counter); see the notes above",
        ));
    }
    let notes = sources.notes.clone();
    let clock = WallClock::new();
    let first = if cmd.idle_s > 0.0 {
        "idle"
    } else if cmd.warmup_s > 0.0 {
        "warmup"
    } else {
        "load"
    };
    let s = Sampler::start(sources, cmd.power.rate_hz, clock, first);
    if cmd.idle_s > 0.0 {
        sleep_s(cmd.idle_s);
        if cmd.warmup_s > 0.0 {
            s.set_phase("warmup");
        } else {
            s.set_phase("load");
        }
    }
    if cmd.warmup_s > 0.0 {
        sleep_s(cmd.warmup_s);
        s.set_phase("load");
    }
    sleep_s(cmd.duration_s - cmd.idle_s - cmd.warmup_s);
    let plog = s.finish()?;
    let mut files = plog.write(dir.path(), device)?;
    let m = json!({ "power": power_manifest(&cmd.power, &plog, device, &notes) });
    files.push("manifest.json".into());
    write_manifest(&dir, m, files.clone())?;
    let out = dir.commit()?;
    Ok(MeasureOutcome {
        dir: out,
        requests: 0,
        failed: 0,
        files,
    })
}

/// `measure load`.
pub fn load(cmd: &LoadCmd, log: &dyn Fn(&str)) -> Result<MeasureOutcome> {
    let caches = Caches::new()?;
    let p = prepare_load(&cmd.load, &caches)?;
    let dir = RunDir::create(
        &cmd.out,
        cmd.force,
        RunKind::Measure,
        &[("config".into(), cmd.load.config.clone())],
        log,
    )?;
    let clock = WallClock::new();
    warm_up(&p, cmd.load.warmup_requests, &clock)?;
    log(&format!(
        "sending {} requests to {} ({})",
        p.specs.len(),
        p.opts.endpoint.base,
        p.opts.api.path()
    ));
    let records = load::run(&p.specs, &p.opts, &clock, &|_, _| {});
    check_any_completed(&p, &records)?;
    summarise(&records, log);
    let mut files = write_requests(&dir, &records)?;
    files.push("manifest.json".into());
    write_manifest(&dir, load_manifest(&cmd.load, &p, &records), files.clone())?;
    let out = dir.commit()?;
    Ok(MeasureOutcome {
        dir: out,
        requests: records.len(),
        failed: records.iter().filter(|r| !r.ok()).count(),
        files,
    })
}

/// `measure run`: idle baseline, warm-up requests, the load, a tail; one folder.
pub fn run(cmd: &RunCmd, log: &dyn Fn(&str)) -> Result<MeasureOutcome> {
    check_seconds("--idle-s", cmd.idle_s, 0.0, 86400.0)?;
    check_seconds("--tail-s", cmd.tail_s, 0.0, 86400.0)?;
    let caches = Caches::new()?;
    let p = prepare_load(&cmd.load, &caches)?;
    let (sources, device) = open_power(&cmd.power, log)?;
    let notes = sources.notes.clone();
    let dir = RunDir::create(
        &cmd.out,
        cmd.force,
        RunKind::Measure,
        &[("config".into(), cmd.load.config.clone())],
        log,
    )?;
    let clock = WallClock::new();
    let sampler = sources
        .any()
        .then(|| Sampler::start(sources, cmd.power.rate_hz, clock, "idle"));
    if sampler.is_none() {
        log("note: no power source: the folder will hold no power log, and validate compares latency and throughput only");
    }
    log(&format!("idle baseline: {} s", cmd.idle_s));
    sleep_s(cmd.idle_s);
    let warm_start = clock.now();
    if let Some(s) = &sampler {
        s.set_phase("warmup");
    }
    let warmed = warm_up(&p, cmd.load.warmup_requests, &clock);
    if let Err(e) = warmed {
        if let Some(s) = sampler {
            let _ = s.finish();
        }
        return Err(e);
    }
    // A short pause, so that no reading spans both the warm-up and the first request.
    sleep_s(1.0 / cmd.power.rate_hz.max(0.1));
    if let Some(s) = &sampler {
        s.set_phase("load");
    }
    log(&format!(
        "sending {} requests to {} ({})",
        p.specs.len(),
        p.opts.endpoint.base,
        p.opts.api.path()
    ));
    let records = load::run(&p.specs, &p.opts, &clock, &|_, _| {});
    if let Some(s) = &sampler {
        s.set_phase("tail");
    }
    sleep_s(cmd.tail_s);
    let plog = match sampler {
        Some(s) => Some(s.finish()?),
        None => None,
    };
    check_any_completed(&p, &records)?;
    summarise(&records, log);
    let first_sent = records
        .iter()
        .filter(|r| r.ok())
        .map(|r| r.sent)
        .fold(f64::INFINITY, f64::min);
    let mut files = write_requests(&dir, &records)?;
    let mut m = load_manifest(&cmd.load, &p, &records);
    if let Some(pl) = &plog {
        files.extend(pl.write(dir.path(), device)?);
        m["power"] = power_manifest(&cmd.power, pl, device, &notes);
    } else {
        m["power"] = json!({ "device": null, "notes": notes });
    }
    if first_sent.is_finite() {
        // validate leaves readings ending within this many seconds before the first request out of the
        // idle baseline: the warm-up, and the first request's own reading window.
        m["warmup_s"] = json!(first_sent - warm_start + 1.0 / cmd.power.rate_hz.max(0.1));
    }
    m["idle_s"] = json!(cmd.idle_s);
    files.push("manifest.json".into());
    write_manifest(&dir, m, files.clone())?;
    let out = dir.commit()?;
    Ok(MeasureOutcome {
        dir: out,
        requests: records.len(),
        failed: records.iter().filter(|r| !r.ok()).count(),
        files,
    })
}
