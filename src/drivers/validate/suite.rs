//! Validation cases and suites: what a case file holds, how one case runs, and the two entry points
//! (`validate --config CFG --measured PATH`, `validate --suite DIR`).
//!
//! A case file (`experiments/validation/*.yaml`) holds a `config` (a path to a simwatt config, or the
//! config inline; its workload is ignored) and `measured`: where the measured data lives and in what
//! form ([`MeasuredSpec`]). Data that may not be copied into the project is read from beside it
//! (`../shared/...`) with `optional: true`, and the case is skipped with a message when it is absent.
//! Paths are relative to the working directory, as everywhere in simwatt.

use super::report;
use super::serving::{self, RunOptions};
use super::tables::{self, ArgonneSpec, MlEnergySpec, MlEnergyV3Spec};
use super::{CaseResult, Exceeded, ValidateArgs, ValidateOutcome};
use crate::config;
use crate::config::data::{self, DataDir};
use crate::drivers::Caches;
use crate::error::{Error, Result};
use crate::measured::edge_logs::LogOptions;
use crate::output::{RunDir, RunKind};
use serde::Deserialize;
use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// Where a case's measured data lives and how to read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum MeasuredSpec {
    /// A serving run's folder: a per-request log and power log(s) (vLLM energy-measurement protocol,
    /// nvidia-smi, PowerTrace-Sim layout, or an edge or desktop device's log).
    Run {
        path: PathBuf,
        /// Skip the case, with a message, when the folder is absent.
        #[serde(default)]
        optional: bool,
        /// Readings ending within this many seconds before the first request are not idle.
        #[serde(default = "one_s")]
        warmup_s: f64,
        /// Seconds added to the power logs' clock to put them on the request log's clock.
        #[serde(default)]
        clock_offset_s: f64,
        /// UTC offset (`+HH:MM`) of the host that wrote local times without a zone (nvidia-smi's
        /// `timestamp`, a `vllm bench serve` result's `date`); without it they are read as UTC.
        #[serde(default)]
        utc_offset: Option<String>,
        /// Seconds each power reading averages over (default: the interval since the previous one).
        #[serde(default)]
        averaging_s: Option<f64>,
        /// An edge or desktop device's log: the rails, outlets or target read, and the clock of a log
        /// without one (`rails`, `outlets`, `target`, `interval_ms`, `log_start`).
        #[serde(flatten)]
        log: LogOptions,
    },
    /// Rows of the ML.ENERGY leaderboard v2 table.
    Mlenergy(MlEnergySpec),
    /// Rows of the ML.ENERGY benchmark v3 table.
    MlenergyV3(MlEnergyV3Spec),
    /// Rows of LLM-Inference-Bench's power table.
    Argonne(ArgonneSpec),
}

fn one_s() -> f64 {
    1.0
}

impl MeasuredSpec {
    fn files(&self) -> Vec<&Path> {
        match self {
            MeasuredSpec::Run { path, .. } => vec![path],
            MeasuredSpec::Mlenergy(spec) => vec![&spec.path, &spec.prompts],
            MeasuredSpec::MlenergyV3(spec) => vec![&spec.path],
            MeasuredSpec::Argonne(spec) => vec![&spec.path],
        }
    }

    fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        match self {
            MeasuredSpec::Run { path, .. } => vec![path],
            MeasuredSpec::Mlenergy(spec) => vec![&mut spec.path, &mut spec.prompts],
            MeasuredSpec::MlenergyV3(spec) => vec![&mut spec.path],
            MeasuredSpec::Argonne(spec) => vec![&mut spec.path],
        }
    }

    /// The spec with its relative paths anchored as a config's are ([`data::anchor`]): beside the
    /// file `case` that holds it, else in the data directory `data`, else in the current directory.
    pub fn anchored(&self, case: &Path, data: Option<&DataDir>) -> MeasuredSpec {
        let mut m = self.clone();
        for p in m.files_mut() {
            *p = data::anchor(p, case, data);
        }
        m
    }

    fn optional(&self) -> bool {
        matches!(self, MeasuredSpec::Run { optional: true, .. })
    }

    fn describe(&self, data: Option<&DataDir>) -> String {
        self.files()
            .iter()
            .map(|p| data::shown(p, data))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// A validation case file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Name in tables (default: the file's stem).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A path to a config file, or the config inline.
    pub config: Value,
    pub measured: MeasuredSpec,
}

/// Reads a case file.
pub fn load_case(path: &Path) -> Result<CaseFile> {
    load_yaml(path)
}

fn load_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = crate::input::read_text(path)?;
    crate::input::check_yaml_depth(path, &text)?;
    let de = serde_yaml::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Field {
        path: path.to_path_buf(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Runs one case. `case_path` names the file that holds it: the relative paths of the case (its
/// config file, its measured data) are anchored beside it, else in the data directory found from
/// it, else in the current directory, as a config's are. Plots go to `plot_dir`.
pub fn run_case(
    caches: &Caches,
    name: &str,
    case_path: &Path,
    config: &Value,
    measured: &MeasuredSpec,
    plot_dir: Option<&Path>,
) -> Result<CaseResult> {
    let data = DataDir::find(case_path, None);
    let measured = &measured.anchored(case_path, data.as_ref());
    let (config_path, config_label, tree) = match config {
        Value::String(p) => {
            let p = data::anchor(Path::new(p), case_path, data.as_ref());
            let tree = config::load_tree(&p, &[])?;
            (p.clone(), data::shown(&p, data.as_ref()), tree)
        }
        Value::Mapping(_) => (
            case_path.to_path_buf(),
            format!("{} (inline)", case_path.display()),
            config.clone(),
        ),
        _ => {
            return Err(Error::invalid(
                case_path,
                "config",
                "?",
                "must be a path to a config file or a config mapping",
            ))
        }
    };
    if let Some(missing) = measured.files().into_iter().find(|p| !p.exists()) {
        if measured.optional() {
            return Ok(CaseResult::skipped(
                name,
                &config_label,
                &measured.describe(data.as_ref()),
                format!(
                    "skipped: {} is absent (this data may not be copied into the project and is read \
                     from beside it)",
                    missing.display()
                ),
            ));
        }
    }
    match measured {
        MeasuredSpec::Run {
            path,
            warmup_s,
            clock_offset_s,
            utc_offset,
            averaging_s,
            log,
            ..
        } => {
            let opts = RunOptions {
                warmup_s: *warmup_s,
                clock_offset_s: *clock_offset_s,
                utc_offset_s: utc_offset
                    .as_deref()
                    .map(|u| utc_offset_s(case_path, "measured.utc_offset", u))
                    .transpose()?,
                averaging_s: *averaging_s,
                log: log.clone(),
            };
            let run = serving::read_run(path, &opts)?;
            serving::validate_run(
                caches,
                name,
                &config_path,
                &config_label,
                &tree,
                &run,
                &opts,
                plot_dir,
            )
        }
        MeasuredSpec::Mlenergy(spec) => {
            tables::validate_mlenergy(caches, name, &config_path, &config_label, &tree, spec)
        }
        MeasuredSpec::MlenergyV3(spec) => {
            tables::validate_mlenergy_v3(caches, name, &config_path, &config_label, &tree, spec)
        }
        MeasuredSpec::Argonne(spec) => {
            tables::validate_argonne(caches, name, &config_path, &config_label, &tree, spec)
        }
    }
}

/// Seconds of a UTC offset given as text; the error names `field` of `path`.
pub fn utc_offset_s(path: &Path, field: &str, text: &str) -> Result<f64> {
    crate::measured::logs::parse_utc_offset(text).ok_or_else(|| {
        Error::invalid(
            path,
            field,
            text,
            "not a UTC offset: give the offset in effect when the logs were written, as +HH:MM or \
             -HH:MM (e.g. +02:00 for Central European Summer Time, -05:00 for US Eastern Standard \
             Time); zone names are not read",
        )
    })
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "case".into())
}

/// The `warmup_s` that `simwatt measure run` writes in a run folder's manifest.json: the seconds before
/// the first request that its warm-up took.
fn manifest_warmup_s(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("warmup_s")
        .and_then(serde_json::Value::as_f64)
        .filter(|w| w.is_finite() && *w >= 0.0)
}

/// `validate --config CFG --measured PATH`: PATH is a serving run's folder, or a YAML file with a
/// measured-data spec (a suite case's `measured:` block).
pub fn run_single(
    caches: &Caches,
    cfg: &Path,
    measured: &Path,
    out: &Path,
    args: &ValidateArgs,
    log: &dyn Fn(&str),
    command: &str,
) -> Result<ValidateOutcome> {
    if let Some(u) = &args.utc_offset {
        utc_offset_s(Path::new("--utc-offset"), "--utc-offset", u)?;
    }
    let spec = if measured.is_dir() {
        MeasuredSpec::Run {
            path: measured.to_path_buf(),
            optional: false,
            warmup_s: args
                .warmup_s
                .or_else(|| manifest_warmup_s(measured))
                .unwrap_or(1.0),
            clock_offset_s: args.clock_offset_s.unwrap_or(0.0),
            utc_offset: args.utc_offset.clone(),
            averaging_s: None,
            log: LogOptions::default(),
        }
    } else if measured
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml")
    {
        let mut spec = load_yaml::<MeasuredSpec>(measured)?
            .anchored(measured, DataDir::find(measured, None).as_ref());
        // Flags given on the command line win over the spec's fields.
        match &mut spec {
            MeasuredSpec::Run {
                clock_offset_s,
                utc_offset,
                warmup_s,
                ..
            } => {
                if let Some(c) = args.clock_offset_s {
                    *clock_offset_s = c;
                }
                if let Some(u) = &args.utc_offset {
                    *utc_offset = Some(u.clone());
                }
                if let Some(w) = args.warmup_s {
                    *warmup_s = w;
                }
            }
            _ if args.clock_offset_s.is_some() || args.utc_offset.is_some() => {
                return Err(Error::Output {
                    path: measured.to_path_buf(),
                    message:
                        "--clock-offset-s and --utc-offset apply to a measured run (power and \
                              request logs); this spec reads a benchmark table"
                            .into(),
                })
            }
            _ => {}
        }
        spec
    } else if !measured.exists() {
        return Err(Error::io(
            measured,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not found"),
        ));
    } else {
        return Err(Error::Output {
            path: measured.to_path_buf(),
            message: "--measured takes a measured run's folder (request log + power logs) or a \
                      measured-data spec (.yaml)"
                .into(),
        });
    };
    let inputs = [
        ("config".to_string(), cfg.to_path_buf()),
        ("measured".to_string(), measured.to_path_buf()),
    ];
    let dir = RunDir::create(out, args.force, RunKind::Validate, &inputs, log)?;
    let name = stem(measured);
    let case = run_case(
        caches,
        &name,
        cfg,
        &Value::String(cfg.display().to_string()),
        &spec,
        args.plots.then_some(dir.path()),
    )?;
    if let Some(m) = &case.message {
        log(&format!("{name}: {m}"));
    }
    let cases = vec![case];
    let exceeded = args.thresholds.check(&cases);
    let md = report::single_markdown(&cases[0], &args.thresholds, &exceeded, command);
    let json = report::single_json(&cases[0], &args.thresholds, &exceeded, command)?;
    finish(dir, cases, exceeded, md, json)
}

/// `validate --suite DIR`: every `*.yaml` case file of `dir`, in name order.
pub fn run_suite(
    caches: &Caches,
    suite: &Path,
    out: &Path,
    args: &ValidateArgs,
    log: &dyn Fn(&str),
    command: &str,
) -> Result<ValidateOutcome> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(suite)
        .map_err(|e| Error::io(suite, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Output {
            path: suite.to_path_buf(),
            message: "no case files (*.yaml) in the suite folder".into(),
        });
    }
    // Read every case before running any, so a typo fails fast.
    let mut cases_in = Vec::new();
    for f in &files {
        let c: CaseFile = load_yaml(f)?;
        let name = c.name.clone().unwrap_or_else(|| stem(f));
        if cases_in.iter().any(|(n, _, _)| n == &name) {
            return Err(Error::invalid(
                f,
                "name",
                &name,
                "another case has this name",
            ));
        }
        cases_in.push((name, f.clone(), c));
    }
    let mut inputs = vec![("suite".to_string(), suite.to_path_buf())];
    inputs.extend(files.iter().map(|f| ("case".to_string(), f.clone())));
    let dir = RunDir::create(out, args.force, RunKind::Validate, &inputs, log)?;
    let mut cases = Vec::new();
    for (name, f, c) in &cases_in {
        let started = std::time::Instant::now();
        let plot_dir = dir.path().join(name);
        // Serving runs get their overlay plots in a folder of their own.
        let plots = args.plots && matches!(c.measured, MeasuredSpec::Run { .. });
        if plots {
            std::fs::create_dir_all(&plot_dir).map_err(|e| Error::io(&plot_dir, e))?;
        }
        let plots_to = plots.then_some(&*plot_dir);
        let mut r = run_case(caches, name, f, &c.config, &c.measured, plots_to)?;
        if plots && r.plots.is_empty() {
            let _ = std::fs::remove_dir(&plot_dir);
        }
        r.plots = r.plots.iter().map(|p| format!("{name}/{p}")).collect();
        r.description = c.description.clone();
        match &r.message {
            Some(m) => log(&format!("{name}: {m}")),
            None => log(&format!(
                "{name}: {} point(s) in {:.1} s",
                r.points.len(),
                started.elapsed().as_secs_f64()
            )),
        }
        cases.push(r);
    }
    let exceeded = args.thresholds.check(&cases);
    let md = report::suite_markdown(&cases, &args.thresholds, &exceeded, command);
    let json = report::suite_json(&cases, &args.thresholds, &exceeded, command)?;
    finish(dir, cases, exceeded, md, json)
}

/// Writes validation.json and validation.md into the folder being written and moves it into place.
fn finish(
    dir: RunDir,
    cases: Vec<CaseResult>,
    exceeded: Vec<Exceeded>,
    markdown: String,
    json: String,
) -> Result<ValidateOutcome> {
    dir.write_text("validation.json", &json)?;
    dir.write_text("validation.md", &markdown)?;
    Ok(ValidateOutcome {
        dir: dir.commit()?,
        cases,
        exceeded,
        markdown,
    })
}
