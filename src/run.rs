//! The `simulate` driver: config -> scenario -> workload -> predictor -> event loop -> run folder.

use crate::config::{self, PredictorConfig, ProfilesConfig, RooflineConfig, Scenario};
use crate::error::{Error, Result};
use crate::metrics::{summarize, RequestRow, Summary};
use crate::output::{self, sha256_hex, RunDir};
use crate::predictor::profile::{
    fit_tables, FitSettings, FittedTables, ProfilePredictor, ProfileSources,
};
use crate::predictor::roofline::{Roofline, RooflineParams};
use crate::predictor::{Predictor, PredictorInfo};
use crate::report::ReportOptions;
use crate::sim::{self, SimResult};
use crate::workload;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the user asked for on the command line.
#[derive(Debug, Clone)]
pub struct SimulateArgs {
    pub config: PathBuf,
    pub overrides: Vec<String>,
    pub out: Option<PathBuf>,
    pub seed: Option<u64>,
    pub quiet: bool,
    pub force: bool,
}

/// A finished run, in memory.
pub struct RunOutcome {
    pub scenario: Scenario,
    pub result: SimResult,
    pub rows: Vec<RequestRow>,
    pub summary: Summary,
    pub predictor: PredictorInfo,
}

/// Loads and resolves the config of `args` (overrides and seed applied).
pub fn load_scenario(args: &SimulateArgs) -> Result<Scenario> {
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        overrides.push(format!("seed={seed}"));
    }
    let raw = config::load(&args.config, &overrides)?;
    Scenario::resolve(&args.config, raw)
}

/// The roofline of a scenario with the given parameters.
fn roofline(s: &Scenario, r: &RooflineConfig) -> Roofline {
    Roofline::new(
        &s.model,
        &s.device_name,
        &s.device,
        s.raw.hardware.tensor_parallel,
        s.raw.hardware.pipeline_stages,
        RooflineParams {
            compute_efficiency: r.compute_efficiency,
            memory_efficiency: r.memory_efficiency,
            layer_overhead_us: r.layer_overhead_us,
            iteration_overhead_ms: r.iteration_overhead_ms,
        },
    )
}

/// Locates the profiles of a scenario's (device, model, TP) under `dir`.
pub fn profile_sources(s: &Scenario, dir: &Path) -> Option<ProfileSources> {
    ProfileSources::locate(
        dir,
        s.device.profile_dir.as_deref(),
        s.device.network_profile.as_deref(),
        &s.model_name,
        s.raw.hardware.tensor_parallel,
    )
    .filter(|src| src.attention.exists())
}

/// Fits (or loads from the cache) the profile tables of a scenario.
pub fn fit_for(s: &Scenario, src: &ProfileSources, p: &ProfilesConfig) -> Result<FittedTables> {
    let (_, a100) = s.catalog.device("a100").ok_or_else(|| {
        Error::Internal(
            "the device catalog has no a100, on which the attention profile was measured".into(),
        )
    })?;
    let settings = FitSettings {
        gpu: s.device_name.clone(),
        model: s.model_name.clone(),
        tensor_parallel: s.raw.hardware.tensor_parallel,
        seed: p.forest_seed,
    };
    fit_tables(src, &settings, a100, p.cache)
}

/// Builds the execution-time predictor the scenario asks for.
pub fn build_predictor(s: &Scenario) -> Result<Box<dyn Predictor>> {
    let (p, required) = match &s.raw.predictor {
        PredictorConfig::Roofline(r) => return Ok(Box::new(roofline(s, r))),
        PredictorConfig::Auto(p) => (p, false),
        PredictorConfig::Profiles(p) => (p, true),
    };
    let Some(src) = profile_sources(s, &p.dir) else {
        if required {
            return Err(Error::invalid(
                &s.source,
                "predictor.type",
                "profiles",
                format!(
                    "no profile of {} on {} under {} (compute/<device>/<model>/mlp.csv and attention/a100/attention.csv)",
                    s.model_name,
                    s.device_name,
                    p.dir.display()
                ),
            ));
        }
        let r = RooflineConfig {
            iteration_overhead_ms: p.iteration_overhead_ms,
            ..RooflineConfig::default()
        };
        return Ok(Box::new(roofline(s, &r)));
    };
    let tables = fit_for(s, &src, p)?;
    let r = RooflineConfig {
        iteration_overhead_ms: p.iteration_overhead_ms,
        ..RooflineConfig::default()
    };
    Ok(Box::new(ProfilePredictor::new(
        tables,
        roofline(s, &r),
        &s.model,
        &s.device,
        s.raw.hardware.tensor_parallel,
        s.raw.hardware.pipeline_stages,
        p.iteration_overhead_ms,
    )))
}

/// Runs a scenario in memory. `progress` receives the number of finished requests now and then.
pub fn simulate(scenario: Scenario, progress: sim::Progress) -> Result<RunOutcome> {
    let specs = workload::generate(&scenario.source, &scenario.raw.workload, scenario.raw.seed)?;
    let predictor = build_predictor(&scenario)?;
    let t0 = Instant::now();
    let result = sim::run(&scenario, &specs, predictor.as_ref(), progress)?;
    let wall_s = t0.elapsed().as_secs_f64();
    let rows: Vec<RequestRow> = result
        .requests
        .iter()
        .enumerate()
        .map(|(i, r)| RequestRow::from_request(i, r))
        .collect();
    let info = predictor.info();
    let summary = summarize(&scenario, &info.kind, &result, &rows, wall_s);
    Ok(RunOutcome {
        scenario,
        result,
        rows,
        summary,
        predictor: info,
    })
}

#[derive(Serialize)]
struct InputFile {
    role: String,
    path: String,
    sha256: String,
}

#[derive(Serialize)]
struct Provenance<'a> {
    simwatt_version: &'a str,
    seed: u64,
    command: Vec<String>,
    config_file: String,
    config_overrides: &'a [String],
    resolved_config_sha256: String,
    inputs: Vec<InputFile>,
    predictor: &'a PredictorInfo,
    memory: &'a crate::config::MemoryPlan,
}

fn file_sha(role: &str, path: &Path) -> Result<InputFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(InputFile {
        role: role.to_string(),
        path: path.display().to_string(),
        sha256: sha256_hex(&bytes),
    })
}

/// Default run folder: runs/<config stem>.
pub fn default_out(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "run".into());
    PathBuf::from("runs").join(stem)
}

/// Writes the run folder for `o` to `out` (atomically), with the full report (plots, trace, summary.md).
pub fn write_run(o: &RunOutcome, args: &SimulateArgs, out: &Path) -> Result<PathBuf> {
    write_run_with(o, args, out, &ReportOptions::default())
}

/// Writes the run folder for `o` to `out` (atomically): the data files, then the report made from them
/// (as `simwatt report` would) with `report`'s options.
pub fn write_run_with(
    o: &RunOutcome,
    args: &SimulateArgs,
    out: &Path,
    report: &ReportOptions,
) -> Result<PathBuf> {
    let s = &o.scenario;
    let dir = RunDir::create(out, args.force)?;
    let resolved = serde_yaml::to_string(&s.raw).map_err(|e| Error::Internal(e.to_string()))?;
    dir.write_text("config.resolved.yaml", &resolved)?;

    let mut inputs = vec![file_sha("config", &args.config)?];
    if let Some(t) = &s.raw.workload.trace {
        inputs.push(file_sha("trace", t)?);
    }
    for (role, origin, text) in [
        (
            "model_catalog",
            &s.catalog.models_origin,
            &s.catalog.models_text,
        ),
        (
            "device_catalog",
            &s.catalog.devices_origin,
            &s.catalog.devices_text,
        ),
    ] {
        inputs.push(InputFile {
            role: role.into(),
            path: origin.clone(),
            sha256: sha256_hex(text.as_bytes()),
        });
    }
    let prov = Provenance {
        simwatt_version: env!("CARGO_PKG_VERSION"),
        seed: s.raw.seed,
        command: std::env::args().collect(),
        config_file: args.config.display().to_string(),
        config_overrides: &args.overrides,
        resolved_config_sha256: sha256_hex(resolved.as_bytes()),
        inputs,
        predictor: &o.predictor,
        memory: &s.memory,
    };
    dir.write_text("provenance.json", &to_json(&prov)?)?;

    let mut req = output::requests_frame(&o.rows)?;
    output::write_csv(&dir.file("requests.csv"), &mut req)?;
    output::write_parquet(&dir.file("requests.parquet"), &mut req)?;
    let mut batches = output::batches_frame(&o.result.batches)?;
    output::write_parquet(&dir.file("batches.parquet"), &mut batches)?;
    dir.write_text("summary.json", &to_json(&o.summary)?)?;
    crate::report::write_report(dir.path(), report)?;
    dir.commit()
}

/// Pretty JSON ending with a newline.
fn to_json<T: Serialize>(v: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))?;
    s.push('\n');
    Ok(s)
}
