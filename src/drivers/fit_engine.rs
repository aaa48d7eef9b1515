//! `simwatt fit engine`: fits the free parameters of an engine profile (host time per iteration, its
//! overlap with GPU work, eager launch cost, front-end latency) to measured serving data, and reports
//! the error of each group of cases (a model) predicted by a profile fitted without it.
//!
//! Input: validation case files (`experiments/validation/*.yaml`: a config and measured data, as
//! `validate` reads them), an engine profile to start from (its fixed parts, such as the CUDA-graph
//! sizes, are kept) and the parameters to fit. Each evaluation replays every case through `validate`'s
//! own code with the candidate profile, so a fitted profile is judged exactly as `validate` will judge
//! it. The fit minimises the sum of squared relative errors of the latency metrics (mean and median
//! inter-token latency, median time to first token) by damped Gauss-Newton steps on a finite-difference
//! Jacobian, each step a non-negative least-squares problem (parameters cannot go below 0; the overlap
//! is also held at most 1). Output: the profile file (parameters, data, leave-one-group-out error) and a
//! markdown report with the per-group table before (the starting profile) and after (held out).

use super::fit_power::fit::nnls;
use super::validate::suite::{load_case, run_case, MeasuredSpec};
use super::validate::{rel_error, CaseResult};
use super::Caches;
use crate::config::engine_profile::{EngineProfile, Fp8Linear, FusedMoe};
use crate::config::PowerProfile;
use crate::error::{Error, Result};
use rayon::prelude::*;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A parameter of an engine profile that the fit may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    HostMs,
    HostUsPerSeq,
    HostUsPerToken,
    HostMsPerExtraGpu,
    Overlap,
    EagerUsPerLayer,
    SamplerPasses,
    AdmissionMs,
    StreamMs,
    PowerP0,
    PowerKCompute,
    PowerKMemory,
    PowerLoadedIdle,
    Fp8Efficiency,
    Fp8UsPerLayer,
    FusedMoeEfficiency,
    FusedMoeDeviceEfficiency,
}

impl Param {
    pub const ALL: [Param; 17] = [
        Param::HostMs,
        Param::HostUsPerSeq,
        Param::HostUsPerToken,
        Param::HostMsPerExtraGpu,
        Param::Overlap,
        Param::EagerUsPerLayer,
        Param::SamplerPasses,
        Param::AdmissionMs,
        Param::StreamMs,
        Param::PowerP0,
        Param::PowerKCompute,
        Param::PowerKMemory,
        Param::PowerLoadedIdle,
        Param::Fp8Efficiency,
        Param::Fp8UsPerLayer,
        Param::FusedMoeEfficiency,
        Param::FusedMoeDeviceEfficiency,
    ];

    /// A parameter of the power profile (fitted jointly with `--power-profile`).
    pub fn is_power(self) -> bool {
        matches!(
            self,
            Param::PowerP0 | Param::PowerKCompute | Param::PowerKMemory | Param::PowerLoadedIdle
        )
    }

    /// A parameter of the profile's `fp8_linear` or `fused_moe` section, whose fit alone gives it a
    /// provenance of its own (the profile's provenance covers the others).
    pub fn has_own_provenance(self) -> bool {
        matches!(
            self,
            Param::Fp8Efficiency
                | Param::Fp8UsPerLayer
                | Param::FusedMoeEfficiency
                | Param::FusedMoeDeviceEfficiency
        )
    }

    /// The profile field, as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Param::HostMs => "iteration.host_ms",
            Param::HostUsPerSeq => "iteration.host_us_per_seq",
            Param::HostUsPerToken => "iteration.host_us_per_token",
            Param::HostMsPerExtraGpu => "iteration.host_ms_per_extra_gpu",
            Param::Overlap => "iteration.overlap",
            Param::EagerUsPerLayer => "launch.eager_us_per_layer",
            Param::SamplerPasses => "sampler.logit_passes",
            Param::AdmissionMs => "front_end.admission_ms",
            Param::StreamMs => "front_end.stream_ms",
            Param::PowerP0 => "power.p0_w",
            Param::PowerKCompute => "power.k_compute_w",
            Param::PowerKMemory => "power.k_memory_w",
            Param::PowerLoadedIdle => "power.loaded_idle_w",
            Param::Fp8Efficiency => "fp8_linear.efficiency",
            Param::Fp8UsPerLayer => "fp8_linear.us_per_layer",
            Param::FusedMoeEfficiency => "fused_moe.default_config_efficiency",
            // The efficiency on the device of the fitted cases (they must share one).
            Param::FusedMoeDeviceEfficiency => "fused_moe.device_efficiency",
        }
    }

    /// Parses a field name (with or without its section).
    pub fn parse(s: &str) -> Result<Self> {
        Param::ALL
            .into_iter()
            .find(|p| p.name() == s || p.name().rsplit('.').next() == Some(s))
            .ok_or_else(|| Error::Output {
                path: PathBuf::from("--param"),
                message: format!(
                    "`{s}` is not a fitted engine parameter; one of {}",
                    Param::ALL.map(|p| p.name()).join(", ")
                ),
            })
    }

    fn get(self, c: &Candidate) -> f64 {
        let p = &c.engine;
        let w = c.power.as_ref();
        match self {
            Param::SamplerPasses => p.sampler.logit_passes,
            Param::PowerP0 => w.map_or(0.0, |w| w.p0_w),
            Param::PowerKCompute => w.map_or(0.0, |w| w.k_compute_w),
            Param::PowerKMemory => w.map_or(0.0, |w| w.k_memory_w),
            Param::PowerLoadedIdle => w.map_or(0.0, |w| w.between_batches_w()),
            Param::HostMs => p.iteration.host_ms,
            Param::HostUsPerSeq => p.iteration.host_us_per_seq,
            Param::HostUsPerToken => p.iteration.host_us_per_token,
            Param::HostMsPerExtraGpu => p.iteration.host_ms_per_extra_gpu,
            Param::Overlap => p.iteration.overlap,
            Param::EagerUsPerLayer => p.launch.eager_us_per_layer,
            Param::AdmissionMs => p.front_end.admission_ms,
            Param::StreamMs => p.front_end.stream_ms,
            Param::Fp8Efficiency => p.fp8_linear.as_ref().map_or(1.0, |f| f.efficiency),
            Param::Fp8UsPerLayer => p.fp8_linear.as_ref().map_or(0.0, |f| f.us_per_layer),
            Param::FusedMoeEfficiency => p
                .fused_moe
                .as_ref()
                .map_or(1.0, |f| f.default_config_efficiency),
            Param::FusedMoeDeviceEfficiency => match (&p.fused_moe, &c.device) {
                (Some(f), Some(d)) => f.efficiency_on(d),
                _ => 1.0,
            },
        }
    }

    fn set(self, c: &mut Candidate, v: f64) {
        let v = v.clamp(self.lower(), self.upper());
        if self.is_power() {
            if let Some(w) = c.power.as_mut() {
                match self {
                    // A GPU running work draws at least what it draws loaded and idle.
                    Param::PowerP0 => w.p0_w = v.max(w.between_batches_w()).min(w.cap_w),
                    Param::PowerKCompute => w.k_compute_w = v,
                    Param::PowerKMemory => w.k_memory_w = v,
                    _ => w.loaded_idle_w = Some(v.min(w.cap_w)),
                }
            }
            return;
        }
        let p = &mut c.engine;
        match self {
            Param::SamplerPasses => p.sampler.logit_passes = v,
            Param::HostMs => p.iteration.host_ms = v,
            Param::HostUsPerSeq => p.iteration.host_us_per_seq = v,
            Param::HostUsPerToken => p.iteration.host_us_per_token = v,
            Param::HostMsPerExtraGpu => p.iteration.host_ms_per_extra_gpu = v,
            Param::Overlap => p.iteration.overlap = v,
            Param::EagerUsPerLayer => p.launch.eager_us_per_layer = v,
            Param::AdmissionMs => p.front_end.admission_ms = v,
            Param::StreamMs => p.front_end.stream_ms = v,
            Param::Fp8Efficiency | Param::Fp8UsPerLayer => {
                let f = p.fp8_linear.get_or_insert(Fp8Linear {
                    efficiency: 1.0,
                    us_per_layer: 0.0,
                    provenance: None,
                });
                if self == Param::Fp8Efficiency {
                    f.efficiency = v;
                } else {
                    f.us_per_layer = v;
                }
            }
            Param::FusedMoeEfficiency | Param::FusedMoeDeviceEfficiency => {
                let f = p.fused_moe.get_or_insert(FusedMoe {
                    default_config_efficiency: 1.0,
                    device_efficiency: Default::default(),
                    tuned: Vec::new(),
                    source: None,
                    provenance: None,
                    device_provenance: None,
                });
                if self == Param::FusedMoeEfficiency {
                    f.default_config_efficiency = v;
                } else if let Some(d) = &c.device {
                    f.device_efficiency.insert(d.clone(), v);
                }
            }
            _ => {}
        }
    }

    /// The finite-difference step, and the scale in which the fit's damping measures moves.
    fn step(self) -> f64 {
        match self {
            Param::HostMs => 0.5,
            Param::HostUsPerSeq => 20.0,
            Param::HostUsPerToken => 1.0,
            Param::HostMsPerExtraGpu => 0.5,
            Param::Overlap => 0.1,
            Param::EagerUsPerLayer => 10.0,
            Param::SamplerPasses => 2.0,
            Param::AdmissionMs => 1.0,
            Param::StreamMs => 1.0,
            Param::PowerP0 | Param::PowerLoadedIdle => 10.0,
            Param::PowerKCompute | Param::PowerKMemory => 30.0,
            Param::Fp8Efficiency | Param::FusedMoeEfficiency | Param::FusedMoeDeviceEfficiency => {
                0.05
            }
            Param::Fp8UsPerLayer => 10.0,
        }
    }

    fn lower(self) -> f64 {
        match self {
            // The kernels reach at least a twentieth of the roofline.
            Param::Fp8Efficiency | Param::FusedMoeEfficiency | Param::FusedMoeDeviceEfficiency => {
                0.05
            }
            _ => 0.0,
        }
    }

    fn upper(self) -> f64 {
        match self {
            Param::Overlap
            | Param::Fp8Efficiency
            | Param::FusedMoeEfficiency
            | Param::FusedMoeDeviceEfficiency => 1.0,
            _ => 600_000.0,
        }
    }

    /// Rounds a fitted value for the profile file.
    fn round(self, v: f64) -> f64 {
        match self {
            Param::Overlap
            | Param::Fp8Efficiency
            | Param::FusedMoeEfficiency
            | Param::FusedMoeDeviceEfficiency => (v * 1000.0).round() / 1000.0,
            _ if self.is_power() => (v * 10.0).round() / 10.0,
            _ => (v * 100.0).round() / 100.0,
        }
    }
}

/// The metrics the fit minimises (relative errors), where a case measures them.
pub const TARGETS: [&str; 5] = [
    "tpot_mean_s",
    "tpot_p50_s",
    "itl_p50_s",
    "ttft_p50_s",
    "output_tokens_per_s",
];

/// The metrics the report shows per group.
pub const REPORTED: [&str; 9] = [
    "tpot_mean_s",
    "tpot_p50_s",
    "itl_p50_s",
    "ttft_p50_s",
    "output_tokens_per_s",
    "running_batch_mean",
    "idle_power_w",
    "mean_power_w",
    "j_per_output_token",
];

/// What the fit moves: the engine profile and, in a joint fit, one device's power profile.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub engine: EngineProfile,
    pub power: Option<PowerProfile>,
    /// The device (catalog name) the fitted cases share, for `fused_moe.device_efficiency`.
    pub device: Option<String>,
}

/// What `fit engine` was asked.
#[derive(Debug, Clone)]
pub struct FitEngineArgs {
    /// Case files, or folders whose `*.yaml` files are cases.
    pub cases: Vec<PathBuf>,
    /// The profile to start from (its fixed parts are kept).
    pub template: PathBuf,
    /// Where to write the fitted profile.
    pub out: PathBuf,
    pub report: Option<PathBuf>,
    pub params: Vec<Param>,
    /// Skip the leave-one-group-out evaluation.
    pub no_holdout: bool,
    /// Fit this power profile jointly (its device's cases use it; mean power joins the targets).
    pub power_profile: Option<PathBuf>,
    /// Where to write the jointly fitted power profile.
    pub power_out: Option<PathBuf>,
}

/// One case of the fit.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    path: PathBuf,
    /// The config as a YAML mapping (a referenced config file is read in).
    tree: Value,
    measured: MeasuredSpec,
    /// The group it is held out with: the config's model.
    group: String,
}

/// The one device (catalog name) of `cases`' `hardware.gpu`, for a per-device parameter.
fn cases_device(cases: &[Case], catalog: &crate::catalog::Catalog) -> Result<String> {
    let mut device: Option<String> = None;
    for c in cases {
        let gpu = c
            .tree
            .get("hardware")
            .and_then(|h| h.get("gpu"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::invalid(&c.path, "config.hardware.gpu", "(none)", "names no device")
            })?;
        let name = catalog
            .device(gpu)
            .map(|(n, _)| n.to_string())
            .ok_or_else(|| {
                Error::invalid(
                    &c.path,
                    "config.hardware.gpu",
                    gpu,
                    "not in the device catalog",
                )
            })?;
        match &device {
            Some(d) if *d != name => {
                return Err(Error::Output {
                    path: PathBuf::from("--param"),
                    message: format!(
                        "fused_moe.device_efficiency is fitted for one device, but the cases run on {d} and {name} ({})",
                        c.path.display()
                    ),
                })
            }
            _ => device = Some(name),
        }
    }
    device.ok_or_else(|| Error::Output {
        path: PathBuf::from("--cases"),
        message: "no case to fit".into(),
    })
}

fn read_cases(paths: &[PathBuf]) -> Result<Vec<Case>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(Error::Output {
            path: PathBuf::from("--cases"),
            message: "no case files given (or the folders hold no *.yaml)".into(),
        });
    }
    let mut cases = Vec::new();
    for f in files {
        let c = load_case(&f)?;
        let tree = match &c.config {
            Value::String(p) => crate::config::load_tree(Path::new(p), &[])?,
            Value::Mapping(_) => c.config.clone(),
            _ => {
                return Err(Error::invalid(
                    &f,
                    "config",
                    "?",
                    "must be a path to a config file or a config mapping",
                ))
            }
        };
        let group = tree
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::invalid(&f, "config.model", "(absent)", "every case names its model")
            })?
            .to_string();
        let name = c.name.clone().unwrap_or_else(|| {
            f.file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default()
        });
        cases.push(Case {
            name,
            path: f,
            tree,
            measured: c.measured,
            group,
        });
    }
    Ok(cases)
}

/// Replays cases with candidate profiles written to a scratch folder.
struct Evaluator<'a> {
    caches: &'a Caches,
    scratch: tempfile::TempDir,
    counter: AtomicU64,
}

impl Evaluator<'_> {
    /// Every case of `cases` replayed with `profile`; skipped cases (absent optional data) are dropped.
    fn run(&self, cases: &[&Case], cand: &Candidate) -> Result<Vec<(String, CaseResult)>> {
        let k = self.counter.fetch_add(1, Ordering::Relaxed);
        let file = self.scratch.path().join(format!("engine-{k}.yaml"));
        let yaml =
            serde_yaml::to_string(&cand.engine).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(&file, yaml).map_err(|e| Error::io(&file, e))?;
        let power_file = match &cand.power {
            Some(w) => {
                let f = self.scratch.path().join(format!("power-{k}.yaml"));
                let yaml = serde_yaml::to_string(w).map_err(|e| Error::Internal(e.to_string()))?;
                std::fs::write(&f, yaml).map_err(|e| Error::io(&f, e))?;
                Some((w.device.clone(), f))
            }
            None => None,
        };
        let out: Vec<Result<(String, CaseResult)>> = cases
            .par_iter()
            .map(|c| {
                let mut tree = c.tree.clone();
                let Value::Mapping(m) = &mut tree else {
                    return Err(Error::invalid(&c.path, "config", "?", "must be a mapping"));
                };
                let mut e = serde_yaml::Mapping::new();
                e.insert("profile".into(), Value::String(file.display().to_string()));
                m.insert("engine".into(), Value::Mapping(e));
                if let Some((device, f)) = &power_file {
                    let gpu = m
                        .get("hardware")
                        .and_then(|h| h.get("gpu"))
                        .and_then(Value::as_str);
                    if gpu == Some(device.as_str()) {
                        let energy = m
                            .entry("energy".into())
                            .or_insert_with(|| Value::Mapping(Default::default()));
                        if let Value::Mapping(en) = energy {
                            en.insert(
                                "power_profile".into(),
                                Value::String(f.display().to_string()),
                            );
                        }
                    }
                }
                let r = run_case(self.caches, &c.name, &c.path, &tree, &c.measured, None)?;
                Ok((c.group.clone(), r))
            })
            .collect();
        let mut v = Vec::new();
        for r in out {
            let r = r?;
            if r.1.status == "ok" {
                v.push(r);
            }
        }
        Ok(v)
    }
}

/// The power metrics a joint fit adds to [`TARGETS`]: mean power, and the idle power before load
/// where a serving run's power log measures it (what fits `power.loaded_idle_w`).
pub const POWER_TARGETS: [&str; 2] = ["mean_power_w", "idle_power_w"];

/// Relative errors of the target metrics (and of the power metrics in a joint fit), in a fixed order.
fn residuals(results: &[(String, CaseResult)], joint: bool) -> Vec<f64> {
    let mut r = Vec::new();
    let power: &[&str] = if joint { &POWER_TARGETS } else { &[] };
    for (_, c) in results {
        for p in &c.points {
            for t in TARGETS.iter().chain(power) {
                if let Some(m) = p.metrics.get(*t) {
                    if let Some(e) = rel_error(m.simulated, m.measured) {
                        r.push(e);
                    }
                }
            }
        }
    }
    r
}

fn sum_sq(r: &[f64]) -> f64 {
    r.iter().map(|x| x * x).sum()
}

/// Gauss-Newton steps at most.
const MAX_STEPS: usize = 8;

/// Fits `params` of `start` on `cases`; returns the profile and the number of steps taken.
fn fit(
    ev: &Evaluator,
    cases: &[&Case],
    start: &Candidate,
    params: &[Param],
    log: &dyn Fn(&str),
) -> Result<(Candidate, usize)> {
    let joint = start.power.is_some();
    let mut cur = start.clone();
    let mut r0 = residuals(&ev.run(cases, &cur)?, joint);
    if r0.is_empty() {
        return Err(Error::Output {
            path: PathBuf::from("--cases"),
            message: format!(
                "the cases measure none of {} (or their data is absent)",
                TARGETS.join(", ")
            ),
        });
    }
    let n = params.len();
    let mut steps = 0;
    for _ in 0..MAX_STEPS {
        // Jacobian in step units: column j is the change of the residuals per step of parameter j.
        let mut jac = vec![vec![0.0; n]; r0.len()];
        for (j, p) in params.iter().enumerate() {
            let mut probe = cur.clone();
            let v = p.get(&cur);
            let h = if v + p.step() <= p.upper() {
                p.step()
            } else {
                -p.step()
            };
            p.set(&mut probe, v + h);
            let r = residuals(&ev.run(cases, &probe)?, joint);
            if r.len() != r0.len() {
                return Err(Error::Internal(
                    "fit engine: a probe changed which metrics were measured".into(),
                ));
            }
            for (i, row) in jac.iter_mut().enumerate() {
                row[j] = (r[i] - r0[i]) * p.step() / h;
            }
        }
        // min || J z - (J z0 - r0) ||^2 + lambda || z - z0 ||^2 over z >= 0, z = theta / step.
        let z0: Vec<f64> = params.iter().map(|p| p.get(&cur) / p.step()).collect();
        let trace: f64 = jac.iter().flatten().map(|x| x * x).sum::<f64>() / n as f64;
        let lambda = 1e-3 * trace.max(1e-12);
        let mut a: Vec<Vec<f64>> = jac.clone();
        let mut b: Vec<f64> = jac
            .iter()
            .zip(&r0)
            .map(|(row, r)| row.iter().zip(&z0).map(|(x, z)| x * z).sum::<f64>() - r)
            .collect();
        for j in 0..n {
            let mut row = vec![0.0; n];
            row[j] = lambda.sqrt();
            a.push(row);
            b.push(lambda.sqrt() * z0[j]);
        }
        let z = nnls(&a, &b)?;
        // Backtrack until the objective falls.
        let mut accepted = None;
        for shrink in [1.0, 0.5, 0.25, 0.125] {
            let mut cand = cur.clone();
            for (j, p) in params.iter().enumerate() {
                p.set(&mut cand, (z0[j] + shrink * (z[j] - z0[j])) * p.step());
            }
            let r = residuals(&ev.run(cases, &cand)?, joint);
            if r.len() == r0.len() && sum_sq(&r) < sum_sq(&r0) {
                accepted = Some((cand, r, shrink));
                break;
            }
        }
        let Some((cand, r, shrink)) = accepted else {
            break;
        };
        let moved = params
            .iter()
            .enumerate()
            .map(|(j, _)| (shrink * (z[j] - z0[j])).abs())
            .fold(0.0, f64::max);
        steps += 1;
        log(&format!(
            "  step {steps}: rms relative error {:.1}% -> {:.1}% ({})",
            100.0 * (sum_sq(&r0) / r0.len() as f64).sqrt(),
            100.0 * (sum_sq(&r) / r.len() as f64).sqrt(),
            params
                .iter()
                .map(|p| format!("{} {:.3}", p.name(), p.get(&cand)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        // Stop when the parameters barely move or the objective gains less than 1%.
        let gain = 1.0 - sum_sq(&r) / sum_sq(&r0).max(1e-300);
        cur = cand;
        r0 = r;
        if moved < 0.02 || gain < 0.01 {
            break;
        }
    }
    for p in params {
        let v = p.round(p.get(&cur));
        p.set(&mut cur, v);
    }
    Ok((cur, steps))
}

/// Mean absolute relative error (percent) and point count of `metric` over `results`.
fn mape(results: &[&CaseResult], metric: &str) -> Option<(f64, usize)> {
    let errs: Vec<f64> = results
        .iter()
        .flat_map(|c| c.points.iter())
        .filter_map(|p| p.metrics.get(metric))
        .filter_map(|m| rel_error(m.simulated, m.measured))
        .map(f64::abs)
        .collect();
    (!errs.is_empty()).then(|| {
        (
            100.0 * errs.iter().sum::<f64>() / errs.len() as f64,
            errs.len(),
        )
    })
}

/// Per group and metric: (before, held out) mean absolute errors.
type GroupTable = BTreeMap<String, BTreeMap<&'static str, (Option<f64>, Option<f64>, usize)>>;

fn group_table(before: &[(String, CaseResult)], after: &[(String, CaseResult)]) -> GroupTable {
    let mut t = GroupTable::new();
    let groups: std::collections::BTreeSet<&String> = before.iter().map(|(g, _)| g).collect();
    for g in groups {
        let b: Vec<&CaseResult> = before
            .iter()
            .filter(|(h, _)| h == g)
            .map(|(_, c)| c)
            .collect();
        let a: Vec<&CaseResult> = after
            .iter()
            .filter(|(h, _)| h == g)
            .map(|(_, c)| c)
            .collect();
        let row = t.entry(g.clone()).or_default();
        for m in REPORTED {
            let (mb, ma) = (mape(&b, m), mape(&a, m));
            if mb.is_some() || ma.is_some() {
                let n = mb.or(ma).map_or(0, |x| x.1);
                row.insert(m, (mb.map(|x| x.0), ma.map(|x| x.0), n));
            }
        }
    }
    t
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.1}%"))
}

/// What a fit produced.
#[derive(Debug)]
pub struct FitEngineOutcome {
    pub profile: EngineProfile,
    pub report: String,
    /// Per metric: mean absolute error (percent) of the held-out predictions over every group.
    pub holdout_mape: BTreeMap<String, f64>,
}

/// Runs `fit engine`.
pub fn run(args: &FitEngineArgs, log: &dyn Fn(&str)) -> Result<FitEngineOutcome> {
    if args.params.is_empty() {
        return Err(Error::Output {
            path: PathBuf::from("--param"),
            message: "no parameter to fit".into(),
        });
    }
    if args.params.iter().any(|p| p.is_power()) && args.power_profile.is_none() {
        return Err(Error::Output {
            path: PathBuf::from("--param"),
            message: "power.* parameters are fitted jointly with --power-profile FILE".into(),
        });
    }
    let caches = Caches::new()?;
    let mut template = Candidate {
        engine: EngineProfile::load(&args.template)?,
        power: args
            .power_profile
            .as_deref()
            .map(PowerProfile::load)
            .transpose()?,
        device: None,
    };
    let cases = read_cases(&args.cases)?;
    if args.params.contains(&Param::FusedMoeDeviceEfficiency) {
        template.device = Some(cases_device(&cases, caches.catalogs.builtin())?);
    }
    let ev = Evaluator {
        caches: &caches,
        scratch: tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?,
        counter: AtomicU64::new(0),
    };
    let all: Vec<&Case> = cases.iter().collect();
    let before = ev.run(&all, &template)?;
    let groups: Vec<String> = {
        let mut g: Vec<String> = before.iter().map(|(g, _)| g.clone()).collect();
        g.sort();
        g.dedup();
        g
    };
    for c in &cases {
        if !before.iter().any(|(_, r)| r.name == c.name) {
            log(&format!(
                "{}: skipped (its measured data is absent)",
                c.name
            ));
        }
    }
    // Leave one group (model) out: fit on the others, predict it.
    let mut held_out: Vec<(String, CaseResult)> = Vec::new();
    let mut split = Vec::new();
    if !args.no_holdout && groups.len() > 1 {
        for g in &groups {
            log(&format!("holding out {g}"));
            let train: Vec<&Case> = cases.iter().filter(|c| &c.group != g).collect();
            let test: Vec<&Case> = cases.iter().filter(|c| &c.group == g).collect();
            let (p, _) = fit(&ev, &train, &template, &args.params, log)?;
            split.push(format!(
                "{g}: fitted on {} ({}) -> {}",
                train.len(),
                train
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                args.params
                    .iter()
                    .map(|q| format!("{} {}", q.name(), q.get(&p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            held_out.extend(ev.run(&test, &p)?);
        }
    }
    log("fitting on every case");
    let (fitted, steps) = fit(&ev, &all, &template, &args.params, log)?;
    let in_sample = ev.run(&all, &fitted)?;
    let mut profile = fitted.engine.clone();

    let mut holdout_mape = BTreeMap::new();
    let mut error = BTreeMap::new();
    let held_refs: Vec<&CaseResult> = held_out.iter().map(|(_, c)| c).collect();
    let fit_refs: Vec<&CaseResult> = in_sample.iter().map(|(_, c)| c).collect();
    for m in REPORTED {
        if let Some((v, _)) = mape(&held_refs, m) {
            holdout_mape.insert(m.to_string(), v);
            error.insert(format!("holdout_{m}_mape_pct"), (v * 100.0).round() / 100.0);
        }
        if let Some((v, _)) = mape(&fit_refs, m) {
            error.insert(format!("fit_{m}_mape_pct"), (v * 100.0).round() / 100.0);
        }
    }
    let power_flags = match (&args.power_profile, &args.power_out) {
        (Some(p), Some(o)) => format!(
            " --power-profile {} --power-out {}",
            p.display(),
            o.display()
        ),
        (Some(p), None) => format!(" --power-profile {}", p.display()),
        _ => String::new(),
    };
    let command = format!(
        "simwatt fit engine --template {}{power_flags} {} {} --out {}",
        args.template.display(),
        args.cases
            .iter()
            .map(|c| format!("--cases {}", c.display()))
            .collect::<Vec<_>>()
            .join(" "),
        args.params
            .iter()
            .map(|p| format!("--param {}", p.name()))
            .collect::<Vec<_>>()
            .join(" "),
        args.out.display()
    );
    // A front end the fit moved is no longer what the template's source says.
    if args
        .params
        .iter()
        .any(|p| matches!(p, Param::AdmissionMs | Param::StreamMs))
    {
        profile.front_end.source = Some("fitted with the rest of this profile".into());
    }
    let data: Vec<String> = cases
        .iter()
        .filter(|c| before.iter().any(|(_, r)| r.name == c.name))
        .map(|c| format!("{}: {}", c.name, c.path.display()))
        .collect();
    let how = format!(
        "Fitted by `{command}` ({steps} Gauss-Newton steps on the relative errors of {}). {}fit_*: \
         the final profile on every case (in sample). Parameters not fitted come from {}.",
        TARGETS.join(", "),
        if held_out.is_empty() {
            "No held-out evaluation inside the fit (one model, or --no-holdout); "
        } else {
            "holdout_*: each model's cases predicted by a profile fitted on the other models' cases; "
        },
        args.template.display()
    );
    let provenance = crate::config::engine_profile::EngineProvenance {
        method: "fitted".into(),
        data,
        error,
        notes: Some(how),
    };
    // A fit of sections alone (the FP8 kernels, the fused-MoE kernel's parameters): the rest of
    // the profile, and its provenance, stay as the template has them, and each fitted parameter's
    // section carries the fit's. A section fitted with the rest is covered by the profile's
    // provenance.
    let alone = args.params.iter().all(|p| p.has_own_provenance());
    let to = alone.then(|| provenance.clone());
    let fitted_any = |q: &[Param]| args.params.iter().any(|p| q.contains(p));
    if let Some(f) = profile.fp8_linear.as_mut() {
        if fitted_any(&[Param::Fp8Efficiency, Param::Fp8UsPerLayer]) {
            f.provenance = to.clone();
        }
    }
    if let Some(f) = profile.fused_moe.as_mut() {
        if fitted_any(&[Param::FusedMoeEfficiency]) {
            f.provenance = to.clone();
        }
        if fitted_any(&[Param::FusedMoeDeviceEfficiency]) {
            f.device_provenance = to;
        }
    }
    if !alone {
        profile.provenance = provenance;
    }
    profile.validate(&args.out)?;

    let table = group_table(
        &before,
        if held_out.is_empty() {
            &in_sample
        } else {
            &held_out
        },
    );
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### Engine profile {} {}\n",
        profile.engine, profile.version
    );
    let _ = writeln!(md, "Command: `{command}`\n");
    let _ = writeln!(md, "| parameter | value |\n|---|---|");
    for p in &args.params {
        let _ = writeln!(md, "| `{}` | {} |", p.name(), p.get(&fitted));
    }
    let _ = writeln!(
        md,
        "\nMean absolute error per model: before = the starting profile ({}); after = {}.\n",
        args.template.display(),
        if held_out.is_empty() {
            "the fitted profile, in sample (no held-out evaluation)"
        } else {
            "held out: predicted by a profile fitted on the other models' cases"
        }
    );
    let _ = writeln!(
        md,
        "| model | metric | points | before | after |\n|---|---|---|---|---|"
    );
    for (g, row) in &table {
        for (m, (b, a, n)) in row {
            let _ = writeln!(
                md,
                "| {g} | `{m}` | {n} | {} | {} |",
                fmt_pct(*b),
                fmt_pct(*a)
            );
        }
    }
    if !split.is_empty() {
        let _ = writeln!(md, "\nSplit (each model held out once):\n");
        for s in &split {
            let _ = writeln!(md, "- {s}");
        }
    }
    let _ = writeln!(
        md,
        "\nOver every model:\n\n| metric | before | held out | in sample |\n|---|---|---|---|"
    );
    let before_refs: Vec<&CaseResult> = before.iter().map(|(_, c)| c).collect();
    for m in REPORTED {
        let (b, h, f) = (
            mape(&before_refs, m),
            mape(&held_refs, m),
            mape(&fit_refs, m),
        );
        if b.is_some() || h.is_some() || f.is_some() {
            let _ = writeln!(
                md,
                "| `{m}` | {} | {} | {} |",
                fmt_pct(b.map(|x| x.0)),
                fmt_pct(h.map(|x| x.0)),
                fmt_pct(f.map(|x| x.0))
            );
        }
    }

    let yaml = serde_yaml::to_string(&profile).map_err(|e| Error::Internal(e.to_string()))?;
    let text = format!(
        "# Engine profile {} {}, fitted by `simwatt fit engine` (do not edit the fitted parameters by hand;\n\
         # rerun the command in provenance.notes). Schema: simwatt::config::EngineProfile.\n{yaml}",
        profile.engine, profile.version
    );
    write_atomically(&args.out, &text)?;
    if let (Some(mut w), Some(out)) = (fitted.power.clone(), &args.power_out) {
        let mut err = BTreeMap::new();
        for m in ["mean_power_w", "j_per_output_token"] {
            if let Some((v, _)) = mape(&held_refs, m) {
                err.insert(format!("holdout_{m}_mape_pct"), (v * 100.0).round() / 100.0);
            }
            if let Some((v, _)) = mape(&fit_refs, m) {
                err.insert(format!("fit_{m}_mape_pct"), (v * 100.0).round() / 100.0);
            }
        }
        w.provenance = crate::config::power_profile::PowerProvenance {
            method: "fitted".into(),
            data: profile.provenance.data.clone(),
            error: err,
            notes: Some(format!(
                "Fitted jointly with the engine profile {} by `{command}`: {} moved to minimise the relative errors of the latency metrics and of mean power (and of idle power before load, where measured) of the cases on {} (the other \
                 parameters come from {}). holdout_*: each model predicted by parameters fitted on the other \
                 models; fit_*: in sample.",
                args.out.display(),
                args.params
                    .iter()
                    .filter(|p| p.is_power())
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                w.device,
                args.power_profile
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )),
        };
        w.validate(out)?;
        let yaml = serde_yaml::to_string(&w).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomically(
            out,
            &format!(
                "# Power profile of {}, fitted jointly with an engine profile by `simwatt fit engine` (rerun\n\
                 # the command in provenance.notes). Schema: simwatt::power::PowerProfile.\n{yaml}",
                w.device
            ),
        )?;
        log(&format!("power profile: {}", out.display()));
    }
    if let Some(r) = &args.report {
        write_atomically(r, &md)?;
    }
    log(&format!("profile: {}", args.out.display()));
    Ok(FitEngineOutcome {
        profile,
        report: md,
        holdout_mape,
    })
}

/// Writes `text` to a temporary file beside `path` and renames it into place, so a failure never leaves
/// a half-written file.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
