//! The `fit power` driver: read the measurement manifests of a device, replay every measured
//! configuration, fit the power profile, evaluate it by leave-one-out, write the profile and the report.
//!
//! It refuses a fit with fewer measured configurations than [`fit::MIN_CONFIGURATIONS`] (the free
//! parameters plus two), says so when the fitted idle power is more than [`IDLE_TOLERANCE`] away from
//! a measured idle reading, and replaces an existing profile or report only when asked (`force`).

pub mod fit;
pub mod replay;

use crate::config::data::DataDir;
use crate::drivers::Caches;
use crate::error::{Error, Result};
use crate::power::PowerProfile;
use fit::{fit_device, PowerFit};
use replay::{count_replays, load_observations_with, Loaded, Manifest, ReplayProgress};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What `simwatt fit power` was asked.
#[derive(Debug, Clone)]
pub struct FitPowerArgs {
    pub gpu: String,
    /// Manifests; empty means `profiles/power/measured/<gpu>.yaml`.
    pub data: Vec<PathBuf>,
    /// Profile to write; `None` means `profiles/power/<gpu>.yaml`.
    pub out: Option<PathBuf>,
    pub report: Option<PathBuf>,
    /// Replace an existing `out` or `report`.
    pub force: bool,
}

/// How far (relative) the fitted idle power may be from a measured idle reading before the fit says
/// so: 20%, about the spread of idle readings of one GPU model across machines.
pub const IDLE_TOLERANCE: f64 = 0.20;

/// The default manifest of a device, relative to the data directory.
pub fn default_manifest(gpu: &str) -> PathBuf {
    PathBuf::from("profiles/power/measured").join(format!("{gpu}.yaml"))
}

/// The default manifest of a device in the data directory found without a config
/// ([`DataDir::find_default`]), else relative to the current directory.
pub fn find_default_manifest(gpu: &str) -> PathBuf {
    let rel = default_manifest(gpu);
    DataDir::find_default().map_or(rel.clone(), |d| d.join(&rel))
}

/// Loads the manifests and fits, without writing anything. `log` receives messages (skipped sources).
pub fn fit_from_manifests(
    gpu: &str,
    manifests: &[PathBuf],
    log: &dyn Fn(&str),
) -> Result<(PowerFit, Vec<String>)> {
    fit_from_manifests_with(&Caches::new()?, gpu, manifests, log, &|_| {}, &())
}

/// [`fit_from_manifests`], sharing `caches` between the replays and telling `planned` how many
/// configurations will be replayed (once, before the first) and `progress` about each as it is replayed.
pub fn fit_from_manifests_with(
    caches: &Caches,
    gpu: &str,
    manifests: &[PathBuf],
    log: &dyn Fn(&str),
    planned: &dyn Fn(usize),
    progress: &dyn ReplayProgress,
) -> Result<(PowerFit, Vec<String>)> {
    let catalog = caches.catalogs.builtin();
    let (gpu, device) = catalog.device(gpu).ok_or_else(|| Error::Output {
        path: PathBuf::from("--gpu"),
        message: format!(
            "`{gpu}` is not in the device catalog; known devices: {}",
            catalog.device_names().collect::<Vec<_>>().join(", ")
        ),
    })?;
    let mut all = Loaded {
        observations: Vec::new(),
        skipped: Vec::new(),
    };
    let mut data = Vec::new();
    let mut notes = Vec::new();
    let mut loaded = Vec::new();
    for path in manifests {
        let m = Manifest::load(path)?;
        let fits = std::iter::once(&m.gpu)
            .chain(&m.also_fits)
            .any(|d| catalog.device(d).map(|(k, _)| k) == Some(gpu));
        if !fits {
            return Err(Error::invalid(
                path,
                "gpu",
                &m.gpu,
                format!("this manifest is for another device than --gpu {gpu}"),
            ));
        }
        loaded.push((path, m));
    }
    let mut total = 0;
    for (_, m) in &loaded {
        total += count_replays(m)?;
    }
    planned(total);
    for (path, m) in loaded {
        let mut l = load_observations_with(caches, path, &m, progress)?;
        for s in &l.skipped {
            log(s);
        }
        for src in &m.sources {
            let n = l
                .observations
                .iter()
                .filter(|o| o.source == src.name())
                .count();
            if n == 0 {
                continue;
            }
            data.push(format!(
                "{}: {} {} from {}",
                src.name(),
                n,
                match (src, n) {
                    (crate::drivers::fit_power::replay::Source::Idle { .. }, _) => "reading",
                    (_, 1) => "configuration",
                    _ => "configurations",
                },
                m.describe(src)
            ));
        }
        if let Some(n) = &m.notes {
            notes.push(n.trim().to_string());
        }
        all.observations.append(&mut l.observations);
        all.skipped.append(&mut l.skipped);
    }
    let configurations = all.observations.iter().filter(|o| o.evaluated).count();
    if configurations < fit::MIN_CONFIGURATIONS {
        return Err(Error::Output {
            path: manifests.first().cloned().unwrap_or_default(),
            message: format!(
                "the manifests yield {configurations} measured configuration(s), too few to fit {} free \
                 parameters: a fit needs at least {} (the parameters plus two), so that each \
                 leave-one-out fold fits on more configurations than parameters and its error means \
                 something; add measured configurations (benchmark rows or serving runs)",
                fit::FREE_PARAMETERS,
                fit::MIN_CONFIGURATIONS
            ),
        });
    }
    let measured_idle: Vec<(String, f64)> = all
        .observations
        .iter()
        .filter(|o| !o.evaluated)
        .filter_map(|o| {
            let w = o.windows.first()?;
            Some((o.label.clone(), w.measured_j / w.measured_s))
        })
        .collect();
    let fit = fit_device(gpu, device.tdp_w, all, data)?;
    for (label, w) in &measured_idle {
        if let Some(m) = idle_disagreement(fit.coefficients.idle_w, *w, label) {
            log(&format!("warning: {m}"));
            notes.push(format!("Warning: {m}."));
        }
    }
    // Which predictor priced which source's simulations.
    let mut predictors: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for o in fit.observations.iter().filter(|o| o.evaluated) {
        *predictors
            .entry((o.source.clone(), o.model.clone(), o.predictor.clone()))
            .or_default() += 1;
    }
    let used: Vec<String> = predictors
        .iter()
        .map(|((s, m, p), n)| format!("{s} {m}: {p} ({n})"))
        .collect();
    notes.push(format!(
        "Execution-time model of the replayed configurations: {}.",
        used.join("; ")
    ));
    Ok((fit, notes))
}

/// The message when a fitted idle power `fitted_w` is more than [`IDLE_TOLERANCE`] away from the
/// measured idle reading `measured_w` (named by `what`); `None` when they agree.
pub fn idle_disagreement(fitted_w: f64, measured_w: f64, what: &str) -> Option<String> {
    let off = (fitted_w - measured_w) / measured_w;
    (measured_w > 0.0 && off.abs() > IDLE_TOLERANCE).then(|| {
        format!(
            "the fitted idle power {fitted_w:.1} W is {:+.0}% from the measured idle {measured_w:.1} W \
             ({what}), beyond the {:.0}% tolerance: the configurations constrain idle poorly, so \
             treat idle_w (and the energy of idle time) with caution",
            off * 100.0,
            IDLE_TOLERANCE * 100.0
        )
    })
}

/// Runs `fit power`: fits, writes the profile and the report, and returns the report text.
pub fn run(args: &FitPowerArgs, log: &dyn Fn(&str)) -> Result<String> {
    run_with(args, log, &|_| {}, &())
}

/// [`run`], reporting the replays of the measured configurations as [`fit_from_manifests_with`] does.
pub fn run_with(
    args: &FitPowerArgs,
    log: &dyn Fn(&str),
    planned: &dyn Fn(usize),
    progress: &dyn ReplayProgress,
) -> Result<String> {
    let caches = Caches::new()?;
    let gpu = caches
        .catalogs
        .builtin()
        .device(&args.gpu)
        .map(|(k, _)| k.to_string())
        .unwrap_or_else(|| args.gpu.clone());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("profiles/power").join(format!("{gpu}.yaml")));
    // Refuse to replace a file before spending time on the replays.
    for p in std::iter::once(&out).chain(&args.report) {
        // --force replaces an output file, never one of the fit's inputs.
        let canon = std::fs::canonicalize(p).ok();
        if let Some(d) = args.data.iter().find(|d| {
            canon.is_some()
                && std::fs::canonicalize(d)
                    .ok()
                    .is_some_and(|d| canon.as_ref().is_some_and(|c| c.starts_with(&d)))
        }) {
            return Err(Error::Output {
                path: p.clone(),
                message: format!(
                    "is an input of the fit (--data {}); choose another --out / --report",
                    d.display()
                ),
            });
        }
        if p.is_dir() {
            return Err(Error::Output {
                path: p.clone(),
                message: "is a folder, not a file; --out and --report name files".into(),
            });
        }
        if p.exists() && !args.force {
            return Err(Error::Output {
                path: p.clone(),
                message:
                    "already exists; pass --force to replace it, or choose another --out / --report"
                        .into(),
            });
        }
    }
    let manifests = if args.data.is_empty() {
        vec![find_default_manifest(&gpu)]
    } else {
        args.data.clone()
    };
    let (fit, notes) = fit_from_manifests_with(&caches, &gpu, &manifests, log, planned, progress)?;
    let mut command = format!("simwatt fit power --gpu {gpu}");
    if !args.data.is_empty() {
        for d in &args.data {
            command.push_str(&format!(" --data {}", d.display()));
        }
    }
    let report = fit.report_markdown(&command);
    // Parameters the fit does not estimate (loaded and empty idle, the post-burst tail, the DVFS
    // exponent) are carried over from the profile being replaced, when there is one.
    let previous = out
        .is_file()
        .then(|| PowerProfile::load(&out))
        .transpose()?;
    let profile = fit.profile(notes.join(" "), previous.as_ref());
    profile.validate(&out)?;
    let yaml = serde_yaml::to_string(&profile).map_err(|e| Error::Internal(e.to_string()))?;
    let text = format!(
        "# Power profile of {gpu}, fitted by `{command}` (do not edit by hand; rerun the command).\n\
         # Schema: simwatt::power::PowerProfile. Leave-one-out errors in provenance.error, in percent.\n{yaml}"
    );
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::write(&out, text).map_err(|e| Error::io(&out, e))?;
    if let Some(r) = &args.report {
        std::fs::write(r, &report).map_err(|e| Error::io(r, e))?;
    }
    log(&format!("profile: {}", out.display()));
    Ok(report)
}
