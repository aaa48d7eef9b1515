//! The `simulate` driver: config -> scenario -> workload -> predictor -> event loop -> run folder.

use crate::accounting;
use crate::accounting::{EnergyAcc, ShareByTokens};
use crate::catalog::Catalogs;
use crate::cluster::kv;
use crate::cluster::Request;
use crate::config::data::Origin;
use crate::config::raw::SloConfig;
use crate::config::{
    self, CpuOverheads, PredictorConfig, ProfilesConfig, RooflineConfig, Scenario,
};
use crate::digest::sha256_hex;
use crate::drivers::to_json;
use crate::drivers::Caches;
use crate::error::{Error, Result};
use crate::metrics::{summarize, EnergySummary, RequestRow, RequestStats, Summary};
use crate::microgrid;
use crate::output::{
    BatchesWriter, CsvPolicy, PowerSegments, RequestFiles, RequestSpill, RequestsWriter, CHUNK_ROWS,
};
use crate::output::{RunDir, RunKind};
use crate::power::{PowerProfile, StageEnergy};
use crate::predictor::offload::{OffloadRoofline, Split};
use crate::predictor::profile::{
    fit_tables, FitSettings, FittedTables, ProfilePredictor, ProfileSources, TableCache,
    SHARED_ATTENTION_PROFILE,
};
use crate::predictor::roofline::{Roofline, RooflineParams};
use crate::predictor::{Predictor, PredictorInfo};
use crate::report::ReportOptions;
use crate::sim::{self, SimResult};
use crate::sim::{
    BatchLog, BatchRows, BatchSink, CostModel, Energy, FanOut, PrefixKeys, RequestSink,
};
use crate::workload;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// Whether requests.csv is written beside requests.parquet.
    pub csv: CsvPolicy,
    /// Width of a power.parquet row, seconds (0: one row per segment); see [`PowerSegments`].
    pub power_interval_s: f64,
    /// What a row of batches.parquet stands for.
    pub batch_rows: BatchRows,
}

/// A finished run, in memory.
pub struct RunOutcome {
    pub scenario: Scenario,
    pub result: SimResult,
    /// One row per request, by id (empty for a streamed run, whose requests went straight to disk).
    pub rows: Vec<RequestRow>,
    pub summary: Summary,
    pub predictor: PredictorInfo,
    /// Idle power per GPU of the power profile that priced the run (`None` without energy).
    pub idle_w: Option<f64>,
    /// The microgrid's hours (config `microgrid`; empty without one or without energy).
    pub microgrid: Vec<microgrid::Step>,
    /// The PV model's hours behind the microgrid's solar, one per microgrid hour (empty unless the
    /// solar comes from `microgrid.solar.weather_file`).
    pub pv_hours: Vec<crate::pv::HourOutput>,
}

/// Loads and resolves the config of `args` (overrides and seed applied) against `catalogs`.
pub fn load_scenario(args: &SimulateArgs, catalogs: &Catalogs) -> Result<Scenario> {
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        overrides.push(format!("seed={seed}"));
    }
    let raw = config::load(&args.config, &overrides)?;
    Scenario::resolve(catalogs, &args.config, raw)
}

/// The roofline of a scenario with the given parameters.
fn roofline(s: &Scenario, r: &RooflineConfig) -> Roofline {
    Roofline::new(
        &s.model,
        &s.device_name,
        &s.device,
        &s.precision,
        s.hardware.tensor_parallel,
        s.hardware.pipeline_stages,
        RooflineParams {
            compute_efficiency: r.compute_efficiency,
            memory_efficiency: r.memory_efficiency,
            layer_overhead_us: r.layer_overhead_us,
            iteration_overhead_ms: r.iteration_overhead_ms,
        },
    )
    .with_expert_parallel(s.hardware.expert_parallel)
    .with_data_parallel(
        s.hardware.data_parallel,
        s.scheduler.max_num_batched_tokens / s.hardware.data_parallel.max(1),
    )
    .with_fp8_linear(s.engine.profile.fp8_linear.as_ref())
    .with_fused_moe(s.engine.profile.fused_moe.as_ref())
}

/// The partial-offload roofline of a scenario with `hardware.gpu_layers` (`None` without): the GPU's
/// roofline and the host CPU's, with the given parameters, split as the scenario says.
fn offload_roofline(s: &Scenario, r: &RooflineConfig) -> Option<OffloadRoofline> {
    let o = s.offload.as_ref()?;
    let params = RooflineParams {
        compute_efficiency: r.compute_efficiency,
        memory_efficiency: r.memory_efficiency,
        layer_overhead_us: r.layer_overhead_us,
        iteration_overhead_ms: r.iteration_overhead_ms,
    };
    let cpu = Roofline::new(
        &s.model,
        &o.host_cpu_name,
        &o.host_cpu,
        &o.cpu_precision,
        1,
        1,
        params,
    );
    Some(OffloadRoofline::new(
        roofline(s, r),
        cpu,
        Split {
            layers_on_gpu: o.layers_on_gpu,
            head_on_gpu: o.head_on_gpu,
            host_link_gb_s: o.host_link_gb_s,
            hop_latency_us: o.hop_latency_us,
        },
        o.cpu_layer_weight_bytes,
        o.head_weight_bytes,
        &o.host_cpu_name,
        &s.device_name,
    ))
}

/// Locates the profiles of a scenario's (device, model, TP) under `p.dir`. None for a model with
/// latent attention: Vidur's attention profiles time multi-head and grouped-query kernels, which
/// would misprice it, so it runs on the roofline; None with data-parallel attention, which only the
/// roofline splits over its ranks.
pub fn profile_sources(s: &Scenario, p: &ProfilesConfig) -> Option<ProfileSources> {
    if s.model.mla.is_some() || s.hardware.data_parallel > 1 {
        return None;
    }
    ProfileSources::locate(
        &p.dir,
        s.device.profile_dir.as_deref(),
        s.device.network_profile.as_deref(),
        &s.model_name,
        s.hardware.tensor_parallel,
    )
    .filter(|src| src.attention.exists())
    .map(|mut src| {
        if p.cpu_overheads == CpuOverheads::Constant {
            src.cpu_overheads = None;
        }
        src
    })
}

/// Fits the profile tables of a scenario, or takes them from `tables`.
pub fn fit_for(
    s: &Scenario,
    src: &ProfileSources,
    p: &ProfilesConfig,
    tables: &TableCache,
) -> Result<FittedTables> {
    let settings = FitSettings {
        gpu: s.device_name.clone(),
        model: s.model_name.clone(),
        tensor_parallel: s.hardware.tensor_parallel,
        seed: p.forest_seed,
    };
    let calibration = src.attention_calibration_device(&s.catalog, &s.device)?;
    fit_tables(tables, src, &settings, calibration, p.cache)
}

/// Builds the execution-time predictor the scenario asks for, its fitted tables from `tables`.
pub fn build_predictor(s: &Scenario, tables: &TableCache) -> Result<Box<dyn Predictor>> {
    // Partial GPU offload: the roofline of each device (config::offload refuses profiles).
    let offload = match &s.predictor {
        PredictorConfig::Roofline(r) => offload_roofline(s, r),
        PredictorConfig::Auto(p) | PredictorConfig::Profiles(p) => offload_roofline(
            s,
            &RooflineConfig {
                iteration_overhead_ms: p.iteration_overhead_ms,
                ..RooflineConfig::default()
            },
        ),
    };
    if let Some(o) = offload {
        return Ok(Box::new(o));
    }
    let (p, required) = match &s.predictor {
        PredictorConfig::Roofline(r) => return Ok(Box::new(roofline(s, r))),
        PredictorConfig::Auto(p) => (p, false),
        PredictorConfig::Profiles(p) => (p, true),
    };
    let Some(src) = profile_sources(s, p) else {
        if required && s.model.mla.is_some() {
            return Err(Error::invalid(
                &s.source,
                "predictor.type",
                "profiles",
                format!(
                    "{} has multi-head latent attention, which Vidur's attention profiles (multi-head and grouped-query kernels) do not time; use the roofline (predictor.type: roofline, or auto)",
                    s.model_name
                ),
            ));
        }
        if required && s.hardware.data_parallel > 1 {
            return Err(Error::invalid(
                &s.source,
                "predictor.type",
                "profiles",
                format!(
                    "hardware.data_parallel = {} spreads each batch over data-parallel attention ranks, which only the roofline prices; use predictor.type: roofline, or auto",
                    s.hardware.data_parallel
                ),
            ));
        }
        if required {
            return Err(Error::invalid(
                &s.source,
                "predictor.type",
                "profiles",
                format!(
                    "no profile of {} on {} under {} (compute/<device>/<model>/mlp.csv and {SHARED_ATTENTION_PROFILE})",
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
    let fitted = fit_for(s, &src, p, tables)?;
    let r = RooflineConfig {
        iteration_overhead_ms: p.iteration_overhead_ms,
        ..RooflineConfig::default()
    };
    Ok(Box::new(ProfilePredictor::new(
        fitted,
        roofline(s, &r),
        &s.model,
        &s.device,
        s.hardware.tensor_parallel,
        s.hardware.pipeline_stages,
        p.iteration_overhead_ms,
    )))
}

/// What a run reports while it works, for a progress display: the phases of [`simulate_and_write`].
pub trait RunProgress {
    /// The workload is drawn and the predictor built: `total` requests will run (known here even
    /// when the config does not say, as for a trace).
    fn started(&self, _total: u64) {}
    /// `n` requests have finished (completed or rejected); the last call before [`Self::writing`]
    /// gives the total.
    fn finished(&self, _n: u64) {}
    /// The loop is done; the outputs are being written (the requests table, then, in
    /// [`simulate_and_write`], provenance, summary, report and plots).
    fn writing(&self) {}
    /// Something the user should know that is not an error (an earlier run's unfinished folder was
    /// removed).
    fn note(&self, _message: &str) {}
}

/// No progress display.
impl RunProgress for () {}

/// A [`sim::Progress`] counter as a [`RunProgress`]: it hears of finished requests only.
struct Counter<'a>(sim::Progress<'a>);

impl RunProgress for Counter<'_> {
    fn finished(&self, n: u64) {
        (self.0)(n)
    }
}

/// Runs a scenario in memory, its batch log as `simulate` writes it ([`BatchRows::Runs`]). `progress`
/// receives the number of finished requests now and then.
pub fn simulate(
    scenario: Scenario,
    tables: &TableCache,
    progress: sim::Progress,
) -> Result<RunOutcome> {
    simulate_impl(
        scenario,
        tables,
        &Counter(progress),
        Keep::Memory(BatchRows::Runs),
    )
}

/// Finished requests of a run that does not keep them: summary statistics in memory and, when a run
/// folder is being written, the requests themselves: written as they finish when their energy columns
/// are known then, else spilled to disk until they can be filled.
struct StreamedRequests {
    stats: RequestStats,
    slo: Option<SloConfig>,
    out: Option<RequestsOut>,
}

/// Where a streamed run's finished requests go.
enum RequestsOut {
    /// Straight to the request table, each row's energy columns filled as [`RowEnergy`] says.
    Written(RequestsWriter, RowEnergy),
    /// To a scratch file, until the run's carbon per joule is known.
    Spilled(RequestSpill),
}

/// How a request row's energy columns are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RowEnergy {
    /// Left null: the run has no power profile.
    Unpriced,
    /// From the request's attributed energy, its carbon at this many grams per joule (null without a
    /// region).
    Priced(Option<f64>),
}

impl RowEnergy {
    /// Fills `row`'s energy columns from `r`'s attributed energy, and its carbon at the grams per
    /// joule priced.
    fn fill(self, row: &mut RequestRow, r: &Request) {
        if let RowEnergy::Priced(g_per_j) = self {
            let total = r.prefill_energy_j + r.decode_energy_j;
            row.energy_j = Some(total);
            row.prefill_energy_j = Some(r.prefill_energy_j);
            row.decode_energy_j = Some(r.decode_energy_j);
            row.carbon_g = g_per_j.map(|k| total * k);
        }
    }
}

impl RequestSink for StreamedRequests {
    fn finished(&mut self, id: u32, r: &Request) -> Result<()> {
        let mut row = RequestRow::from_request(id as usize, r, self.slo.as_ref());
        self.stats.add(r, &row);
        match self.out.as_mut() {
            Some(RequestsOut::Written(w, energy)) => {
                energy.fill(&mut row, r);
                w.push(row)
            }
            Some(RequestsOut::Spilled(s)) => s.push(id, r),
            None => Ok(()),
        }
    }
}

/// What a run keeps of its batch log and finished requests.
#[derive(Debug, Clone, Copy)]
enum Keep<'a> {
    /// Everything, in memory (`SimResult::batches`, `RunOutcome::rows`), the batch log's rows as given.
    Memory(BatchRows),
    /// Streamed into the run folder being written at this path, the requests into these files.
    Stream(&'a Path, CsvPolicy, f64, BatchRows),
    /// Only what the summary needs: energy accumulated as batches run, request statistics.
    Summary,
}

impl<'a> Keep<'a> {
    fn dir(self) -> Option<&'a Path> {
        match self {
            Keep::Stream(d, ..) => Some(d),
            _ => None,
        }
    }
}

/// Runs a scenario, keeping what `keep` says (see [`Keep`]).
fn simulate_impl(
    scenario: Scenario,
    tables: &TableCache,
    progress: &dyn RunProgress,
    keep: Keep,
) -> Result<RunOutcome> {
    let mut specs = workload::generate(&scenario.source, &scenario.workload, scenario.seed)?;
    let keys = prefix_keys(&scenario, &mut specs)?;
    let sessions = workload::session_turns(
        &scenario.source,
        &scenario.workload,
        scenario.seed,
        specs.len(),
    )?
    .map(Arc::new);
    simulate_requests(scenario, &specs, tables, progress, keep, (keys, sessions))
}

/// What identifies the prompt blocks a run's requests share, for prefix caching: a Mooncake trace's
/// hash ids (each request's prefix is its whole prompt but the last token, and its chain the trace's),
/// else the synthetic prefix groups of `workload.shared_prefix`.
fn prefix_keys(s: &Scenario, specs: &mut [workload::RequestSpec]) -> Result<Arc<PrefixKeys>> {
    if !s.scheduler.enable_prefix_caching {
        return Ok(Arc::new(PrefixKeys::Groups));
    }
    let Some(h) = workload::trace_block_hashes(&s.source, &s.workload)? else {
        return Ok(Arc::new(PrefixKeys::Groups));
    };
    if s.workload.shared_prefix.is_some() {
        return Err(Error::invalid(
            &s.source,
            "workload.shared_prefix",
            "set",
            "a Mooncake trace's hash ids say which prompts share prefixes; leave shared_prefix out",
        ));
    }
    let bs = s.memory.block_size;
    let per = h.block_tokens / bs.max(1);
    if bs == 0 || h.block_tokens % bs != 0 || per > kv::CHAIN_MAX_SUB_BLOCKS {
        return Err(Error::invalid(
            &s.source,
            "scheduler.block_size",
            bs,
            format!(
                "prefix caching over a Mooncake trace needs a block size that divides its {}-token \
                 hash blocks into at most {} blocks",
                h.block_tokens,
                kv::CHAIN_MAX_SUB_BLOCKS
            ),
        ));
    }
    if let Some((i, id)) = h.per_request.iter().enumerate().find_map(|(i, c)| {
        c.iter()
            .find(|&&id| id > kv::CHAIN_MAX_HASH_ID)
            .map(|&id| (i, id))
    }) {
        return Err(Error::invalid(
            &s.source,
            "workload.trace",
            id,
            format!(
                "hash id of request {i} is above {} (prefix caching keys hold smaller ids)",
                kv::CHAIN_MAX_HASH_ID
            ),
        ));
    }
    for (i, spec) in specs.iter_mut().enumerate() {
        spec.prefix_group = i as u32;
        spec.prefix_tokens = spec.prompt_tokens.saturating_sub(1);
    }
    Ok(Arc::new(PrefixKeys::Chains {
        chains: h.per_request,
        per,
    }))
}

/// Runs a scenario for its summary alone (sweeps, capacity search): the same summary as [`simulate`],
/// without keeping the batch log or the requests, so memory stays bounded by the requests in flight.
pub fn simulate_summary(scenario: Scenario, tables: &TableCache) -> Result<Summary> {
    Ok(simulate_impl(scenario, tables, &(), Keep::Summary)?.summary)
}

/// Runs a scenario in memory over the given requests (sorted by arrival) instead of the ones its
/// workload section would generate: the replay of a measured run. Energy, summary and request rows are
/// computed exactly as for [`simulate`]; the batch log has a row per step ([`BatchRows::Steps`]), as
/// the analyses of a replay read it.
pub fn simulate_specs(
    scenario: Scenario,
    specs: &[workload::RequestSpec],
    tables: &TableCache,
    progress: sim::Progress,
) -> Result<RunOutcome> {
    simulate_requests(
        scenario,
        specs,
        tables,
        &Counter(progress),
        Keep::Memory(BatchRows::Steps),
        (Arc::new(PrefixKeys::Groups), None),
    )
}

fn simulate_requests(
    scenario: Scenario,
    specs: &[workload::RequestSpec],
    tables: &TableCache,
    progress: &dyn RunProgress,
    keep: Keep,
    keys: (Arc<PrefixKeys>, Option<Arc<workload::SessionTurns>>),
) -> Result<RunOutcome> {
    let predictor = build_predictor(&scenario, tables)?;
    let engine = crate::engine::EngineCost::new(predictor.as_ref(), &scenario);
    // The prefill pool's own hardware: its predictor and engine cost, built as for a colocated run.
    let pool = scenario.prefill_pool.as_deref();
    let pool_predictor = pool.map(|p| build_predictor(p, tables)).transpose()?;
    let pool_engine = pool
        .zip(pool_predictor.as_deref())
        .map(|(p, pred)| crate::engine::EngineCost::new(pred, p));
    let (mut profile, profile_path, mut energy_note) = power_profile(&scenario);
    let pool_profile = pool.and_then(|p| p.energy.power_profile.clone());
    if let (Some(p), None, Some(_)) = (pool, &pool_profile, &profile) {
        // Half a fleet cannot be priced: the run has no energy, and says why.
        profile = None;
        energy_note = Some(format!(
            "the prefill pool (hardware.prefill_pool): {}",
            p.energy.note.clone().unwrap_or_default()
        ));
    }
    // Every region is read (and checked) before spending time on the simulation, once.
    let regions = scenario.load_regions()?;
    // The microgrid's solar series too: a bad file fails before the simulation, not after it.
    let solar = scenario
        .microgrid
        .as_ref()
        .map(|m| read_solar(&m.solar))
        .transpose()?;
    check_microgrid_price(&scenario, &regions)?;
    let start = scenario.energy.start_time;
    // Carbon-aware holding moves deferrable requests to their release times before the loop.
    let held;
    let specs = match &scenario.carbon_aware {
        Some(c) => {
            held = hold_requests(&scenario, c, specs, &regions, solar.as_ref())?;
            held.as_slice()
        }
        None => specs,
    };
    let stage_energy = |s: &Scenario, p: &PowerProfile| {
        StageEnergy::new(
            p.clone(),
            s.power_device.clone(),
            s.gpus_per_stage(),
            s.hardware.clock_limit,
        )
        .with_memory_clock(s.hardware.memory_clock)
        .with_host_cpu(host_cpu_power(s))
        .with_thermal(
            s.edge
                .and_then(|e| e.thermal)
                .map(|config| crate::power::Thermal { config }),
        )
    };
    let hourly_caps = scenario
        .carbon_power_cap
        .map(|c| carbon_caps(&scenario, &c, &regions))
        .transpose()?;
    let main_energy = profile
        .as_ref()
        .map(|p| stage_energy(&scenario, p).with_hourly_caps(hourly_caps));
    let energy = main_energy.as_ref().map(|e| Energy {
        power: e,
        sharing: &ShareByTokens,
    });
    let pool_energy = pool
        .zip(pool_profile.as_ref())
        .filter(|_| profile.is_some())
        .map(|(s, p)| stage_energy(s, p));
    let prefill = pool_engine.as_ref().map(|c| sim::PoolModels {
        cost: c,
        energy: pool_energy.as_ref().map(|e| Energy {
            power: e,
            sharing: &ShareByTokens,
        }),
    });
    let mut acc = profile.as_ref().map(|p| {
        EnergyAcc::new(
            &scenario,
            p,
            pool_profile.as_ref(),
            accounting::offset_in_hour_s(start),
        )
    });
    // Every request the run will see: the workload's, and the later turns of its sessions.
    let later_turns: usize = keys
        .1
        .as_ref()
        .map_or(0, |t| t.turns.iter().map(Vec::len).sum());
    let files = match keep {
        Keep::Stream(_, csv, ..) => {
            let (files, note) = csv.files(specs.len());
            if let Some(n) = note {
                progress.note(&n);
            }
            files
        }
        _ => RequestFiles::ParquetOnly,
    };
    // A request's energy columns are final when it finishes, and its carbon too where the headline
    // region's intensity is constant: then its row is written as it finishes, beside the loop.
    let row_energy = match (&profile, regions.first()) {
        (None, _) => Some(RowEnergy::Unpriced),
        (Some(_), None) => Some(RowEnergy::Priced(None)),
        (Some(_), Some(r)) if r.hourly_carbon.is_none() => Some(RowEnergy::Priced(Some(
            accounting::g_per_j(r.file.carbon_intensity_g_per_kwh.value, r.file.pue.value),
        ))),
        (Some(_), Some(_)) => None,
    };
    progress.started((specs.len() + later_turns) as u64);
    let t0 = Instant::now();
    let (result, streamed_requests) = run_loop(
        &scenario,
        specs,
        (&engine, energy, prefill),
        acc.as_mut(),
        profile.as_ref().map(|p| {
            (
                p.between_batches_w(),
                pool_profile.as_ref().map(|q| q.between_batches_w()),
            )
        }),
        &|n| progress.finished(n),
        keep,
        keys,
        (files, row_energy),
    )?;
    let wall_s = t0.elapsed().as_secs_f64();
    if main_energy
        .as_ref()
        .is_some_and(StageEnergy::ran_past_hourly_caps)
    {
        return Err(Error::invalid(
            &scenario.source,
            "carbon_power_cap",
            "set",
            "the run went on past the end of the headline region's hourly intensity series, which sets \
             the power limit of each hour: start it earlier (energy.start_time) or shorten it",
        ));
    }
    progress.writing();
    let mut rows: Vec<RequestRow> = result
        .requests
        .iter()
        .enumerate()
        .map(|(i, r)| RequestRow::from_request(i, r, scenario.slo.as_ref()))
        .collect();
    let stats = match &streamed_requests {
        Some(f) => &f.stats,
        None => &RequestStats::of(&result.requests, &rows),
    };
    let info = predictor.info();
    let mut summary = summarize(&scenario, &info.kind, &result, stats, wall_s);
    let (mut grid_hours, mut pv_hours) = (Vec::new(), Vec::new());
    let energy = match (&profile, &acc) {
        (Some(p), Some(a)) => {
            let totals = a.finish(result.end_ns);
            let mut e = energy_summary(&scenario, &regions, stats, p, &profile_path, &totals)?;
            if let (Some(m), Some(solar)) = (&scenario.microgrid, &solar) {
                (grid_hours, pv_hours) =
                    apply_microgrid(&scenario, m, solar, &regions, &totals, stats, &mut e)?;
            }
            let thermal: Vec<_> = main_energy
                .iter()
                .chain(pool_energy.iter())
                .flat_map(StageEnergy::thermal_states)
                .collect();
            edge_figures(&scenario, &totals, &thermal, &mut e);
            e
        }
        _ => EnergySummary {
            energy_note,
            ..Default::default()
        },
    };
    // Each request's energy columns (null without a power profile).
    let after = match energy.energy_j {
        Some(_) => RowEnergy::Priced(carbon_g_per_j(&energy)),
        None => RowEnergy::Unpriced,
    };
    for (row, r) in rows.iter_mut().zip(&result.requests) {
        after.fill(row, r);
    }
    match (streamed_requests.and_then(|f| f.out), keep) {
        (Some(RequestsOut::Written(w, before)), _) => {
            // The rows were filled as their requests finished: with what the run's summary says.
            if before != after {
                return Err(Error::Internal(format!(
                    "request rows were written with energy columns {before:?}, but the run's are {after:?}"
                )));
            }
            w.finish()?;
        }
        (Some(RequestsOut::Spilled(spill)), Keep::Stream(dir, ..)) => {
            let mut w = RequestsWriter::create(dir, files)?;
            let mut spill = spill.finish()?;
            loop {
                let chunk = spill.next_chunk(CHUNK_ROWS)?;
                if chunk.is_empty() {
                    break;
                }
                for (id, r) in &chunk {
                    let mut row = RequestRow::from_request(*id as usize, r, scenario.slo.as_ref());
                    after.fill(&mut row, r);
                    w.push(row)?;
                }
            }
            w.finish()?;
        }
        _ => {}
    }
    summary.energy = energy;
    summary.energy.fill_energy_delay(&summary.latency);
    if summary.energy.energy_note.is_none() {
        // A power profile of another device is used, and said so.
        summary.energy.energy_note = scenario.energy.note.clone();
    }
    let summary_has_energy = summary.energy.energy_j.is_some();
    Ok(RunOutcome {
        scenario,
        result,
        rows,
        summary,
        predictor: info,
        idle_w: profile
            .as_ref()
            .filter(|_| summary_has_energy)
            .map(|p| p.between_batches_w()),
        microgrid: grid_hours,
        pv_hours,
    })
}

/// The hourly series `pick` chooses of the headline region (the first configured), for the config
/// setting `field` = `value` that needs it: an error naming them without a region or without that
/// series.
fn headline_hourly<'a>(
    s: &Scenario,
    regions: &'a [accounting::Region],
    pick: &dyn Fn(&accounting::Region) -> Option<&config::region::HourlySeries>,
    field: &str,
    value: &str,
) -> Result<&'a config::region::HourlySeries> {
    let region = regions
        .first()
        .ok_or_else(|| Error::invalid(&s.source, field, value, "needs a region (`region:`)"))?;
    pick(region).ok_or_else(|| {
        Error::invalid(
            &s.source,
            field,
            value,
            format!(
                "needs an hourly series, and region {} has none for it (a constant value or none): \
                 name a region with an hourly series (e.g. one under regions/hourly/)",
                region.file.id
            ),
        )
    })
}

/// The power limit of each hour from the run's start to the end of the headline region's hourly
/// intensity series (`carbon_power_cap`).
fn carbon_caps(
    s: &Scenario,
    c: &config::raw::CarbonPowerCapConfig,
    regions: &[accounting::Region],
) -> Result<crate::power::HourlyCaps> {
    let series = headline_hourly(
        s,
        regions,
        &|r| r.hourly_carbon.as_ref(),
        "carbon_power_cap",
        "set",
    )?;
    let start = s.energy.start_time;
    let hours = series.rest_from(start)?;
    Ok(crate::power::HourlyCaps {
        offset_ns: crate::units::secs_to_ns(accounting::offset_in_hour_s(start)),
        caps_w: hours.iter().map(|&g| c.cap_at(g)).collect(),
        past_end: std::cell::Cell::new(false),
    })
}

/// The `edge` section's figures: the battery's usable energy, the run's drain of it and the runtime at
/// the run's mean power (GPU, host and, under partial offload, the host CPU: one battery runs the
/// whole device), and the thermal model's peak temperature and throttled time
/// (`thermal`: each GPU group's final state).
fn edge_figures(
    s: &Scenario,
    totals: &accounting::EnergyTotals,
    thermal: &[crate::power::ThermalState],
    e: &mut EnergySummary,
) {
    let Some(edge) = s.edge else {
        return;
    };
    if let Some(b) = edge.battery {
        let usable_wh = b.capacity_wh * b.usable_fraction * b.converter_efficiency;
        let drawn_wh =
            (totals.gpu_energy_j + totals.host_energy_j + totals.host_cpu_energy_j.unwrap_or(0.0))
                / 3600.0;
        e.battery_usable_wh = Some(usable_wh);
        e.battery_drain_fraction = Some(drawn_wh / usable_wh);
        let mean_w = (totals.span_s > 0.0).then(|| drawn_wh * 3600.0 / totals.span_s);
        e.battery_runtime_h = mean_w.filter(|w| *w > 0.0).map(|w| usable_wh / w);
    }
    if let Some(t) = edge.thermal {
        let start = t.initial_c.unwrap_or(t.ambient_c);
        e.max_temperature_c = Some(thermal.iter().map(|s| s.max_c).fold(start, f64::max));
        e.throttled_s = Some(
            thermal
                .iter()
                .map(|s| crate::units::ns_to_secs(s.throttled_ns))
                .sum(),
        );
    }
}

/// Where a microgrid's solar output comes from, read and checked before the simulation.
enum Solar {
    /// A series of an array's output (`microgrid.solar.file` and `site`).
    Series(microgrid::SolarSeries),
    /// A weather file through the PV model (`microgrid.solar.weather_file` and `array`).
    Weather(crate::pv::Weather, crate::pv::Array),
}

/// Reads `microgrid.solar`'s file: the series of an array's output, or the weather file and the
/// array the PV model prices (its albedo checked here when the file's is used, so that a bad value
/// fails before the simulation).
fn read_solar(c: &config::raw::SolarConfig) -> Result<Solar> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|err| Error::io(p, err));
    if let Some(path) = &c.weather_file {
        let weather = crate::pv::Weather::parse_tmy3(path, &read(path)?)?;
        let array = crate::pv::Array::from_config(&c.array.clone().unwrap_or_default());
        if array.albedo.is_none() {
            weather.check_albedo()?;
        }
        return Ok(Solar::Weather(weather, array));
    }
    let path = c
        .file
        .as_ref()
        .ok_or_else(|| Error::Internal("microgrid.solar without a file".into()))?;
    let site = c.site.as_deref().unwrap_or_default();
    Ok(Solar::Series(microgrid::SolarSeries::parse(
        path,
        &read(path)?,
        site,
    )?))
}

/// The array's output as a fraction of its peak for the run's first `n` hours, and the PV model's
/// hours behind it (empty for a series). A series' first hour replays its `microgrid.solar.day` at
/// the run's UTC hour of day; a weather file's hours are the run's own dates in the site's local
/// standard time.
fn solar_window(
    s: &Scenario,
    m: &config::raw::MicrogridConfig,
    solar: &Solar,
    n: usize,
) -> Result<(Vec<f64>, Vec<crate::pv::HourOutput>)> {
    let start = s.energy.start_time;
    let series = match solar {
        Solar::Series(series) => series,
        Solar::Weather(weather, array) => {
            let first = start
                - chrono::Duration::seconds(accounting::offset_in_hour_s(start).round() as i64);
            let hours = array.hours(weather, first, n)?;
            return Ok((hours.iter().map(|h| h.fraction).collect(), hours));
        }
    };
    let hod = chrono::Timelike::hour(&start);
    let first = m.solar.day as usize * 24 + ((hod + 24 - series.first_hour_of_day()) % 24) as usize;
    match series.hourly_fraction.get(first..first + n) {
        Some(w) => Ok((w.to_vec(), Vec::new())),
        None => Err(Error::invalid(
            &s.source,
            "microgrid.solar.day",
            m.solar.day,
            format!(
                "the run's {n} hour(s) from hour {hod} UTC of that day run past the solar series, \
                 which holds {} whole hours ({} days) from {} UTC ({})",
                series.hourly_fraction.len(),
                series.hourly_fraction.len() / 24,
                series.first_hour,
                m.solar.file.as_deref().unwrap_or(Path::new("")).display()
            ),
        )),
    }
}

/// Plans carbon-aware holding ([`workload::hold`]) of the deferrable requests of `specs` (in
/// submission order) against the hourly signal `c` names, from the run's first hour to the one of
/// its latest deadline: the headline region's hourly carbon intensity or price, or the microgrid's
/// solar output. Returns the requests sorted by release time.
fn hold_requests(
    s: &Scenario,
    c: &config::raw::CarbonAwareConfig,
    specs: &[workload::RequestSpec],
    regions: &[accounting::Region],
    solar: Option<&Solar>,
) -> Result<Vec<workload::RequestSpec>> {
    use config::raw::HoldSignal;
    let start = s.energy.start_time;
    let rule = workload::hold::HoldRule {
        offset_ns: crate::units::secs_to_ns(accounting::offset_in_hour_s(start)),
        max_release_rate: c.max_release_rate,
        margin_ns: crate::units::secs_to_ns(c.margin_s),
    };
    let n = workload::hold::hours_needed(specs, &rule);
    let series = |pick: &dyn Fn(&accounting::Region) -> Option<&config::region::HourlySeries>,
                  what: &str| {
        headline_hourly(s, regions, pick, "carbon_aware.signal", what)?
            .window(start, n)
            .map(<[f64]>::to_vec)
            .map_err(|e| {
                Error::invalid(
                    &s.source,
                    "workload.deferrable.deadline_s",
                    s.workload.deferrable.map_or(0.0, |d| d.deadline_s),
                    format!("carbon-aware holding reads the hours up to the latest deadline: {e}"),
                )
            })
    };
    let scores: Vec<f64> = match c.signal {
        HoldSignal::GridCarbon => series(&|r| r.hourly_carbon.as_ref(), "grid_carbon")?,
        HoldSignal::Price => series(&|r| r.hourly_price.as_ref(), "price")?,
        HoldSignal::Solar => {
            let (Some(m), Some(solar)) = (&s.microgrid, solar) else {
                return Err(Error::invalid(
                    &s.source,
                    "carbon_aware.signal",
                    "solar",
                    "needs a `microgrid` section",
                ));
            };
            solar_window(s, m, solar, n)?.0.iter().map(|f| -f).collect()
        }
    };
    let mut planned = specs.to_vec();
    workload::hold::plan(&mut planned, &scores, &rule)?;
    Ok(planned)
}

/// `microgrid.dispatch: price_threshold` follows the headline region's price: an error before the
/// simulation when the region has none (neither an hourly series nor a constant price).
fn check_microgrid_price(s: &Scenario, regions: &[accounting::Region]) -> Result<()> {
    let (Some(m), Some(region)) = (&s.microgrid, regions.first()) else {
        return Ok(());
    };
    let f = &region.file;
    if m.dispatch == config::raw::DispatchConfig::PriceThreshold
        && region.hourly_price.is_none()
        && f.electricity_price_usd_per_kwh.is_none()
    {
        return Err(Error::invalid(
            &s.source,
            "microgrid.dispatch",
            "price_threshold",
            format!(
                "needs a grid price: region {} has neither an hourly_price series nor an \
                 electricity_price_usd_per_kwh",
                f.id
            ),
        ));
    }
    Ok(())
}

/// Dispatches the run's facility energy, hour by hour, over the config's solar array and battery in
/// the headline region ([`crate::microgrid`]), and charges carbon and energy cost on grid import
/// only: fills the summary's microgrid figures and replaces its headline carbon and cost, and adds
/// the array's and the battery's embodied carbon over the span to the headline embodied carbon (as
/// the GPUs' is). Returns the hours.
fn apply_microgrid(
    s: &Scenario,
    m: &config::raw::MicrogridConfig,
    solar: &Solar,
    regions: &[accounting::Region],
    totals: &accounting::EnergyTotals,
    stats: &RequestStats,
    e: &mut EnergySummary,
) -> Result<(Vec<microgrid::Step>, Vec<crate::pv::HourOutput>)> {
    let region = regions.first().ok_or_else(|| {
        Error::invalid(
            &s.source,
            "microgrid",
            "set",
            "needs a region (`region:`) for the grid's carbon intensity",
        )
    })?;
    let f = &region.file;
    let pue = f.pue.value;
    let load: Vec<f64> = totals
        .hourly_it_energy_j
        .iter()
        .map(|j| j / accounting::J_PER_KWH * pue)
        .collect();
    let n = load.len();
    let start = s.energy.start_time;
    let intensity: Vec<f64> = match &region.hourly_carbon {
        Some(series) => series.window(start, n)?.to_vec(),
        None => vec![f.carbon_intensity_g_per_kwh.value; n],
    };
    // The hourly series (a market price) is the dispatch signal when there is one; the bill is the
    // tariff's when the region has one (as in accounting::region_figures).
    let price: Option<Vec<f64>> = match (&region.hourly_price, &f.electricity_price_usd_per_kwh) {
        (Some(series), _) => Some(series.window(start, n)?.to_vec()),
        (None, Some(p)) => Some(vec![p.value; n]),
        (None, None) => None,
    };
    let bill_price: Option<Vec<f64>> = match &f.electricity_price_usd_per_kwh {
        Some(p) => Some(vec![p.value; n]),
        None => price.clone(),
    };
    let (fraction, pv) = solar_window(s, m, solar, n)?;
    use config::raw::DispatchConfig;
    let dispatch = match m.dispatch {
        DispatchConfig::SelfConsumption => microgrid::Dispatch::SelfConsumption,
        DispatchConfig::CarbonThreshold => microgrid::Dispatch::CarbonThreshold {
            g_per_kwh: m.carbon_threshold_g_per_kwh.unwrap_or(0.0),
        },
        DispatchConfig::PriceThreshold => microgrid::Dispatch::PriceThreshold {
            usd_per_kwh: m.price_threshold_usd_per_kwh.unwrap_or(0.0),
        },
    };
    let grid = microgrid::Microgrid {
        peak_kw: m.solar.peak(),
        inverter_efficiency: m.solar.inverter_efficiency,
        battery: m.battery.map(|b| microgrid::Battery {
            capacity_kwh: b.capacity_kwh,
            min_soc: b.min_soc,
            max_soc: b.max_soc,
            initial_soc: b.initial_soc,
            max_charge_kw: b.max_charge_kw,
            max_discharge_kw: b.max_discharge_kw,
            round_trip_efficiency: b.round_trip_efficiency,
            self_discharge_per_day: b.self_discharge_per_day,
        }),
        dispatch,
        export: m.export,
    };
    // The run's first and last hours may be partial: each hour's share of the run's span.
    let offset = accounting::offset_in_hour_s(start);
    let end = offset + totals.span_s;
    let spans: Vec<f64> = (0..n)
        .map(|h| {
            let (a, b) = (h as f64 * 3600.0, (h + 1) as f64 * 3600.0);
            ((b.min(end) - a.max(offset)) / 3600.0).clamp(0.0, 1.0)
        })
        .collect();
    let hourly_price = price.clone().unwrap_or_else(|| vec![0.0; n]);
    let steps = grid.dispatch_spans(&load, &fraction, &intensity, &hourly_price, &spans);
    let sum = |f: fn(&microgrid::Step) -> f64| steps.iter().map(f).sum::<f64>();
    let carbon = sum(|h| h.carbon_g);
    e.solar_energy_kwh = Some(sum(|h| h.solar_kwh));
    e.solar_used_kwh = Some(sum(|h| h.solar_used_kwh));
    e.battery_discharge_kwh = Some(sum(|h| h.battery_discharge_kwh));
    e.grid_import_kwh = Some(sum(|h| h.grid_import_kwh));
    e.grid_export_kwh = Some(sum(|h| h.grid_export_kwh));
    e.solar_curtailed_kwh = Some(sum(|h| h.curtailed_kwh));
    e.carbon_without_microgrid_g = e.carbon_g;
    // Embodied carbon of the array and the battery over the span, amortised as the GPUs' is.
    use config::raw::{
        BATTERY_EMBODIED_KG_PER_KWH, BATTERY_LIFETIME_YEARS, SOLAR_EMBODIED_KG_PER_KWP,
        SOLAR_LIFETIME_YEARS,
    };
    let span_h = totals.span_s / 3600.0;
    let solar_g = accounting::amortised_embodied_g(
        m.solar
            .embodied_kg_per_kwp
            .unwrap_or(SOLAR_EMBODIED_KG_PER_KWP),
        m.solar.peak(),
        m.solar.lifetime_years.unwrap_or(SOLAR_LIFETIME_YEARS),
        span_h,
    );
    let battery_g = m.battery.map(|b| {
        accounting::amortised_embodied_g(
            b.embodied_kg_per_kwh.unwrap_or(BATTERY_EMBODIED_KG_PER_KWH),
            b.capacity_kwh,
            b.lifetime_years.unwrap_or(BATTERY_LIFETIME_YEARS),
            span_h,
        )
    });
    e.solar_embodied_carbon_g = Some(solar_g);
    e.battery_embodied_carbon_g = battery_g;
    e.embodied_carbon_g = e
        .embodied_carbon_g
        .map(|g| g + solar_g + battery_g.unwrap_or(0.0));
    e.carbon_g = Some(carbon);
    e.carbon_g_per_1k_tokens =
        (stats.output_tokens > 0).then(|| carbon / stats.output_tokens as f64 * 1000.0);
    let head = e.regions.first();
    let energy_cost = bill_price.map(|p| {
        steps
            .iter()
            .zip(p)
            .map(|(h, p)| h.grid_import_kwh * p)
            .sum::<f64>()
    });
    e.cost_usd = energy_cost
        .zip(head.and_then(|r| r.rental_cost_usd))
        .map(|(a, b)| a + b);
    Ok((steps, pv))
}

/// Runs the event loop with the batch sinks and request sink that `keep` asks for: the in-memory log
/// and requests, or the run folder's batches.parquet, power.parquet (with `idle_w`, when the run has a
/// power profile) and the request table (`files`), written as requests finish when `row_energy` says
/// how to fill their energy columns, else spilled until the run's carbon per joule is known; `acc`,
/// when given, accumulates energy as stages run. Returns the result and, unless the requests were kept
/// in memory, what was streamed of them.
#[allow(clippy::too_many_arguments)] // the loop's inputs and the sinks' settings, each used once
fn run_loop(
    scenario: &Scenario,
    specs: &[workload::RequestSpec],
    (cost, energy, prefill): (&dyn CostModel, Option<Energy>, Option<sim::PoolModels>),
    acc: Option<&mut EnergyAcc>,
    idle_w: Option<(f64, Option<f64>)>,
    progress: sim::Progress,
    keep: Keep,
    (keys, sessions): (Arc<PrefixKeys>, Option<Arc<workload::SessionTurns>>),
    (files, row_energy): (RequestFiles, Option<RowEnergy>),
) -> Result<(SimResult, Option<StreamedRequests>)> {
    let dir = keep.dir();
    let mut log = matches!(keep, Keep::Memory(_)).then(BatchLog::default);
    let mut batches = dir
        .map(|d| BatchesWriter::create(&d.join("batches.parquet")))
        .transpose()?;
    let mut power = match (idle_w, keep) {
        (Some(idle_w), Keep::Stream(d, _, interval_s, _)) => Some(PowerSegments::create(
            &d.join("power.parquet"),
            scenario,
            idle_w,
            interval_s,
        )?),
        _ => None,
    };
    let mut sinks = FanOut::default()
        .with(log.as_mut().map(|l| l as &mut dyn BatchSink))
        .with(batches.as_mut().map(|b| b as &mut dyn BatchSink))
        .with(power.as_mut().map(|p| p as &mut dyn BatchSink))
        .with(acc.map(|a| a as &mut dyn BatchSink));
    let mut kept_requests = Vec::new();
    let out = match dir {
        Some(d) => Some(match row_energy {
            Some(e) => RequestsOut::Written(RequestsWriter::create(d, files)?, e),
            None => RequestsOut::Spilled(RequestSpill::create(&d.join(".requests.spill"))?),
        }),
        None => None,
    };
    let mut streamed = StreamedRequests {
        stats: RequestStats::default(),
        slo: scenario.slo,
        out,
    };
    let finished: &mut dyn RequestSink = match keep {
        Keep::Memory(_) => &mut kept_requests,
        Keep::Stream(..) | Keep::Summary => &mut streamed,
    };
    let rows = match keep {
        Keep::Memory(rows) | Keep::Stream(.., rows) => rows,
        Keep::Summary => BatchRows::Runs,
    };
    let mut result = sim::run_into(
        scenario,
        specs,
        cost,
        energy,
        prefill,
        (progress, rows, keys, sessions),
        &mut sinks,
        finished,
    )?;
    drop(sinks);
    // The accounting window lasts at least `energy.min_span_s`.
    if let Some(m) = scenario.energy.min_span_s {
        result.end_ns = result.end_ns.max(crate::units::secs_to_ns(m));
    }
    // Every table's last rows go to its writer before any is waited for: they finish side by side.
    if let Some(b) = batches.as_mut() {
        b.close()?;
    }
    if let Some(p) = power.as_mut() {
        p.close(result.end_ns)?;
    }
    if let Some(RequestsOut::Written(w, _)) = streamed.out.as_mut() {
        w.close()?;
    }
    if let Some(b) = batches {
        b.finish()?;
    }
    if let Some(p) = power {
        p.finish(result.end_ns)?;
    }
    Ok(match log {
        Some(log) => {
            result.batches = log;
            result.requests = kept_requests;
            (result, None)
        }
        None => (result, Some(streamed)),
    })
}

/// The power profile the scenario resolved (the configured file, else `profiles/power/<device>.yaml`):
/// (profile, its path, why there is none).
pub fn power_profile(s: &Scenario) -> (Option<PowerProfile>, String, Option<String>) {
    let e = &s.energy;
    (
        e.power_profile.clone(),
        e.power_profile_path.clone(),
        e.note.clone(),
    )
}

/// The host CPU of a partial GPU offload as the power model prices it: its power profile and its
/// catalog entry (`None` without offload or without its profile).
fn host_cpu_power(s: &Scenario) -> Option<crate::power::HostCpuPower> {
    let o = s.offload.as_ref()?;
    let h = s.energy.host_cpu_power.as_ref()?;
    let (_, device) = s.catalog.device(&o.host_cpu_name)?;
    Some(crate::power::HostCpuPower {
        profile: h.profile.clone(),
        device: device.clone(),
    })
}

/// Energy totals and per-region footprints of a finished run.
fn energy_summary(
    s: &Scenario,
    regions: &[accounting::Region],
    stats: &RequestStats,
    profile: &PowerProfile,
    profile_path: &str,
    e: &accounting::EnergyTotals,
) -> Result<EnergySummary> {
    let start = s.energy.start_time;
    let regions = regions
        .iter()
        .map(|r| accounting::region_report(e, r, start, stats.output_tokens))
        .collect::<Result<Vec<_>>>()?;
    let per = |x: f64, n: u64| (n > 0).then(|| x / n as f64);
    let head = regions.first();
    let (prefill, decode) = (stats.prefill_energy_j, stats.decode_energy_j);
    // Disaggregated serving: each pool's GPU energy and mean power.
    let pool = |prefill: bool| {
        let groups = crate::metrics::pool_groups(s, prefill)?;
        let j: f64 = e.groups[groups].iter().map(|g| g.busy_j + g.idle_j).sum();
        Some((j, (e.span_s > 0.0).then(|| j / e.span_s)))
    };
    let (pp, dp) = (pool(true), pool(false));
    Ok(EnergySummary {
        prefill_pool_energy_j: pp.map(|p| p.0),
        decode_pool_energy_j: dp.map(|p| p.0),
        prefill_pool_avg_power_w: pp.and_then(|p| p.1),
        decode_pool_avg_power_w: dp.and_then(|p| p.1),
        kv_link_energy_j: s.disaggregation.as_ref().map(|_| e.link_energy_j),
        host_cpu_energy_j: e.host_cpu_energy_j,
        gpu_and_host_cpu_j_per_output_token: e
            .host_cpu_energy_j
            .and_then(|cpu| per(e.gpu_energy_j + cpu, stats.output_tokens)),
        power_profile: Some(profile_path.to_string()),
        power_profile_method: Some(profile.provenance.method.clone()),
        energy_note: None,
        energy_j: Some(e.gpu_energy_j),
        busy_energy_j: Some(e.busy_energy_j),
        idle_energy_j: Some(e.idle_energy_j),
        host_energy_j: Some(e.host_energy_j),
        prefill_energy_j: Some(prefill),
        decode_energy_j: Some(decode),
        avg_power_w: (e.span_s > 0.0).then(|| e.gpu_energy_j / e.span_s),
        j_per_output_token: per(e.gpu_energy_j, stats.output_tokens),
        j_per_request: per(e.gpu_energy_j, stats.completed),
        tdp_baseline_energy_j: Some(e.tdp_baseline_energy_j),
        vidur_baseline_energy_j: Some(e.vidur_baseline_energy_j),
        region: head.map(|r| r.region.clone()),
        energy_kwh_facility: head.map(|r| r.energy_kwh_facility),
        carbon_g: head.map(|r| r.carbon_g),
        carbon_g_per_1k_tokens: head.and_then(|r| r.carbon_g_per_1k_tokens),
        embodied_carbon_g: head.and_then(|r| r.embodied_carbon_g),
        cost_usd: head.and_then(|r| r.cost_usd),
        water_l: head.and_then(|r| r.water_l),
        regions,
        ..Default::default()
    })
}

/// Grams CO2e per joule of GPU energy in the headline region: its energy-weighted mean intensity
/// times its PUE (`None` without a region intensity).
fn carbon_g_per_j(e: &EnergySummary) -> Option<f64> {
    e.regions
        .first()
        .map(|r| accounting::g_per_j(r.carbon_intensity_g_per_kwh, r.pue))
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
    /// SHA-256 of the sources and built-in data simwatt was built from (`build.rs`).
    simwatt_source_sha256: &'a str,
    seed: u64,
    command: Vec<String>,
    config_file: String,
    config_overrides: &'a [String],
    resolved_config_sha256: String,
    /// The shipped data directory and how it was found (`null`: none).
    data_dir: Option<String>,
    inputs: Vec<InputFile>,
    predictor: &'a PredictorInfo,
    memory: &'a crate::config::MemoryPlan,
    /// Weights, arithmetic and KV-cache precision, with the bytes and peak they set.
    precision: &'a crate::precision::Precision,
    /// How the run's tables were written.
    outputs: OutputSettings,
    /// The power and clock limits each GPU ran under.
    limits: Limits,
}

/// The power and clock limits of a run's GPUs.
#[derive(Serialize)]
struct Limits {
    /// The power limit in force, watts (`null`: no power profile, so none is modelled; with
    /// `carbon_power_cap`, the clean hours' limit: the limit of each hour follows the intensity).
    power_cap_w: Option<f64>,
    /// Where it came from: `hardware.power_cap_w`, `carbon_power_cap` or the power profile's `cap_w`.
    power_cap_from: Option<&'static str>,
    /// The SM clock limit, MHz (`null`: none).
    sm_clock_mhz: Option<f64>,
    /// The device's maximum SM clock from the catalog, MHz (`null`: not in the catalog).
    max_sm_clock_mhz: Option<f64>,
    /// The highest clock fraction the SM clock limit and the power mode allow (1: no limit).
    clock_limit: f64,
    /// The power mode (`hardware.power_mode`) as the device catalog gives it: its power budget, clock
    /// caps, CPU cores and source (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    power_mode: Option<crate::catalog::PowerMode>,
    /// The highest memory-clock fraction the power mode allows (absent without a mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_clock: Option<f64>,
}

impl Limits {
    fn of(s: &Scenario) -> Self {
        let cap = s
            .energy
            .power_profile
            .as_ref()
            .map(|p| s.carbon_power_cap.map_or(p.cap_w, |c| c.clean_w));
        Limits {
            power_cap_w: cap,
            power_cap_from: cap.map(|_| {
                if s.hardware.power_cap_w.is_some() {
                    "hardware.power_cap_w"
                } else if s.carbon_power_cap.is_some() {
                    "carbon_power_cap"
                } else {
                    "power profile cap_w"
                }
            }),
            sm_clock_mhz: s.hardware.sm_clock_mhz,
            max_sm_clock_mhz: s.device.max_sm_clock_mhz,
            clock_limit: s.hardware.clock_limit,
            power_mode: s.power_mode().cloned(),
            memory_clock: s.power_mode().map(|_| s.hardware.memory_clock),
        }
    }
}

/// How a run folder's tables were written (the options of `simulate` that shape them).
#[derive(Serialize)]
struct OutputSettings {
    /// Width of a power.parquet row, seconds; 0: one row per segment.
    power_interval_s: f64,
    /// Whether requests.csv was written beside requests.parquet.
    requests_csv: bool,
    /// `runs`: a static batch's run of decode steps between completions is one row of
    /// batches.parquet; `steps`: every step is a row.
    batch_rows: &'static str,
}

/// Every file a run of `s` reads, with its role, in a fixed order: the trace, the power and engine
/// profiles, each region file with its hourly series and the embodied-carbon table (with a power
/// profile), the Vidur profile CSVs its predictor fits on, and catalog files named by the config. The
/// config file itself is not included (a sweep's configs are built in memory).
pub fn input_files(s: &Scenario) -> Vec<(&'static str, Origin)> {
    let mut v: Vec<(&'static str, Origin)> = Vec::new();
    if let Some(t) = &s.workload.trace {
        v.push(("trace", Origin::File(t.clone())));
    }
    if let Some(o) = s.power_profile_origin() {
        v.push(("power_profile", o.clone()));
    }
    if let Some(h) = &s.energy.host_cpu_power {
        v.push(("host_cpu_power_profile", h.origin.clone()));
    }
    if let Some(o) = s.engine_profile_origin() {
        v.push(("engine_profile", o.clone()));
    }
    for (id, _) in &s.energy.region_files {
        for f in crate::config::region::region_input_files(s.regions_dir(), id) {
            v.push(("region", f));
        }
    }
    if s.energy.power_profile.is_some() {
        if let Some(e) = crate::config::region::embodied_origin(s.regions_dir()) {
            v.push(("embodied", e));
        }
    }
    if let Some(m) = &s.microgrid {
        for f in [&m.solar.file, &m.solar.weather_file].into_iter().flatten() {
            v.push(("solar", Origin::File(f.clone())));
        }
    }
    if let PredictorConfig::Auto(p) | PredictorConfig::Profiles(p) = &s.predictor {
        if let Some(src) = profile_sources(s, p) {
            v.push(("profile_mlp", Origin::File(src.mlp)));
            v.push(("profile_attention", Origin::File(src.attention)));
            for (role, f) in [
                ("profile_all_reduce", src.all_reduce),
                ("profile_send_recv", src.send_recv),
                ("profile_cpu_overheads", src.cpu_overheads),
            ] {
                if let Some(f) = f {
                    v.push((role, Origin::File(f)));
                }
            }
        }
    }
    v
}

/// The files on disk that a run of `scenario` from `config` reads, with their roles: a run folder may
/// not hold them (`--force` would delete them).
pub fn input_paths(config: &Path, s: &Scenario) -> Vec<(String, PathBuf)> {
    let mut v = vec![("config".to_string(), config.to_path_buf())];
    for (role, origin) in input_files(s) {
        if let Origin::File(p) = origin {
            v.push((role.to_string(), p));
        }
    }
    v
}

/// An input's role, path (`built-in:<path>` for a copy built into the binary) and SHA-256 (a file's
/// taken from `tables`, which hashed the profiles it fitted or loaded once already).
fn file_sha(role: &str, origin: &Origin, tables: &TableCache) -> Result<InputFile> {
    Ok(InputFile {
        role: role.to_string(),
        path: origin.name().display().to_string(),
        sha256: match origin {
            Origin::File(p) => tables.file_sha(p)?,
            Origin::BuiltIn(_) => origin.sha256()?,
        },
    })
}

/// Default run folder: `runs/<config stem>`.
pub fn default_out(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "run".into());
    PathBuf::from("runs").join(stem)
}

/// Simulates `scenario` streaming its batch log into a new run folder at `out`, then writes the rest
/// of the folder and moves it into place.
pub fn simulate_and_write(
    scenario: Scenario,
    args: &SimulateArgs,
    out: &Path,
    report: &ReportOptions,
    caches: &Caches,
    progress: &dyn RunProgress,
) -> Result<(RunOutcome, PathBuf)> {
    let inputs = input_paths(&args.config, &scenario);
    let dir = RunDir::create(out, args.force, RunKind::Simulate, &inputs, &|m| {
        progress.note(m)
    })?;
    let keep = Keep::Stream(dir.path(), args.csv, args.power_interval_s, args.batch_rows);
    let o = simulate_impl(scenario, &caches.tables, progress, keep)?;
    // Nothing is written from tables whose profiles' hashes are unchecked.
    caches.tables.verify()?;
    write_rest(&o, args, &dir, report, caches)?;
    let path = dir.commit()?;
    Ok((o, path))
}

/// Everything of a run folder but the batch log and power segments.
fn write_rest(
    o: &RunOutcome,
    args: &SimulateArgs,
    dir: &RunDir,
    report: &ReportOptions,
    caches: &Caches,
) -> Result<()> {
    let (catalogs, tables) = (&caches.catalogs, &caches.tables);
    let s = &o.scenario;
    let resolved = s.resolved_yaml()?;
    dir.write_text("config.resolved.yaml", &resolved)?;

    let mut inputs = vec![file_sha(
        "config",
        &Origin::File(args.config.clone()),
        tables,
    )?];
    for (role, origin) in input_files(s) {
        inputs.push(file_sha(role, &origin, tables)?);
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
        simwatt_source_sha256: crate::digest::SOURCE_DIGEST,
        seed: s.seed,
        command: std::env::args().collect(),
        config_file: args.config.display().to_string(),
        config_overrides: &args.overrides,
        resolved_config_sha256: sha256_hex(resolved.as_bytes()),
        data_dir: s
            .data_dir
            .as_ref()
            .map(|d| format!("{} ({})", d.shown(), d.how)),
        inputs,
        predictor: &o.predictor,
        memory: &s.memory,
        precision: &s.precision,
        outputs: OutputSettings {
            power_interval_s: args.power_interval_s,
            requests_csv: dir.file("requests.csv").exists(),
            batch_rows: match args.batch_rows {
                BatchRows::Runs => "runs",
                BatchRows::Steps => "steps",
            },
        },
        limits: Limits::of(s),
    };
    dir.write_text("provenance.json", &to_json(&prov)?)?;
    dir.write_text("summary.json", &to_json(&o.summary)?)?;
    if !o.microgrid.is_empty() {
        dir.write_text(
            "microgrid.csv",
            &microgrid_csv(
                &o.microgrid,
                &o.pv_hours,
                s.energy.start_time,
                s.microgrid.as_ref(),
            ),
        )?;
    }
    crate::report::write_report(dir.path(), report, catalogs.builtin())?;
    Ok(())
}

/// The microgrid's hours as CSV (docs/microgrid.md): each flow in kWh over the hour (= mean kW), the
/// stored energy and state of charge at its end, the grid's intensity and the carbon of its import;
/// with solar from a weather file, the hour's mean irradiance on the array (W/m^2) and cell
/// temperature (°C); under `price_threshold` dispatch, the grid's price the dispatch followed as a
/// last column.
fn microgrid_csv(
    steps: &[microgrid::Step],
    pv: &[crate::pv::HourOutput],
    start: chrono::DateTime<chrono::Utc>,
    m: Option<&config::raw::MicrogridConfig>,
) -> String {
    let capacity = m.and_then(|m| m.battery).map(|b| b.capacity_kwh);
    let priced = m.is_some_and(|m| m.dispatch == config::raw::DispatchConfig::PriceThreshold);
    let first = start
        .date_naive()
        .and_hms_opt(chrono::Timelike::hour(&start), 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(start);
    let mut out = String::from(
        "hour,hour_start_utc,load_kwh,solar_kwh,solar_used_kwh,solar_charge_kwh,grid_charge_kwh,\
         battery_discharge_kwh,self_discharge_kwh,grid_import_kwh,grid_export_kwh,curtailed_kwh,\
         soc_kwh,soc_fraction,carbon_intensity_g_per_kwh,carbon_g",
    );
    if !pv.is_empty() {
        out.push_str(",poa_w_m2,cell_temp_c");
    }
    out.push_str(if priced { ",price_usd_per_kwh\n" } else { "\n" });
    for (h, x) in steps.iter().enumerate() {
        let at = first + chrono::Duration::hours(h as i64);
        let soc = capacity.map_or(String::new(), |c| format!("{}", x.soc_kwh / c));
        out.push_str(&format!(
            "{h},{},{},{},{},{},{},{},{},{},{},{},{},{soc},{},{}",
            at.format("%Y-%m-%dT%H:%M:%SZ"),
            x.load_kwh,
            x.solar_kwh,
            x.solar_used_kwh,
            x.solar_charge_kwh,
            x.grid_charge_kwh,
            x.battery_discharge_kwh,
            x.self_discharge_kwh,
            x.grid_import_kwh,
            x.grid_export_kwh,
            x.curtailed_kwh,
            x.soc_kwh,
            x.carbon_intensity_g_per_kwh,
            x.carbon_g
        ));
        if let Some(p) = pv.get(h) {
            let poa = p.poa_direct + p.poa_sky + p.poa_ground;
            out.push_str(&format!(",{poa},{}", p.cell_temp_c));
        }
        if priced {
            out.push_str(&format!(",{}", x.price_usd_per_kwh));
        }
        out.push('\n');
    }
    out
}
