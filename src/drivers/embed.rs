//! In-process runs for a program that embeds simwatt (the Python bindings in `python/`): the
//! `simulate`, `sweep` and `validate` verbs, their tables returned as Parquet file bytes.
//!
//! Input: a config (a file, or YAML text), `key=value` overrides, a seed; a sweep or validation
//! config; the shared [`Caches`]. Output: the run's summary as JSON, its warnings, and the tables of
//! the run folder (`requests.parquet`, `batches.parquet`, `power.parquet`), a sweep's
//! `results.parquet`, or a validation's metrics as one long table. A table is written by the same
//! code as the CLI's, into a private temporary folder that is read back and removed, so its bytes
//! are the CLI's by construction; nothing is re-implemented here. A summary-only run keeps no table
//! ([`simulate::simulate_summary`]), for loops that want the figures alone.
//! It may import the other drivers and the layers below them; only an embedding crate imports it.

use crate::config::data;
use crate::drivers::simulate::{self, SimulateArgs};
use crate::drivers::sweep::{merge, shard, shard::Shard, spec::Plan};
use crate::drivers::to_json;
use crate::drivers::validate::{self, Thresholds, ValidateArgs};
use crate::drivers::Caches;
use crate::error::{Error, Result};
use crate::output::{self, CsvPolicy, ParquetFile};
use crate::report::ReportOptions;
use crate::sim::BatchRows;
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Where a config comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A YAML file (relative paths in it are found beside it, as for the CLI).
    File(PathBuf),
    /// YAML text (a JSON object is YAML too). Relative paths in it are found in the data directory
    /// or the current directory ([`data::anchor`]).
    Text(String),
}

/// The name an error gives a config passed as text, in place of the temporary file that held it.
pub const TEXT_CONFIG_NAME: &str = "<config text>";

/// A config made into a file the drivers can read: the file itself, or YAML text written into a
/// private temporary folder (removed on drop).
struct ConfigFile {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl ConfigFile {
    fn new(source: &ConfigSource) -> Result<Self> {
        match source {
            ConfigSource::File(p) => Ok(ConfigFile {
                path: p.clone(),
                _dir: None,
            }),
            ConfigSource::Text(text) => {
                let dir = temp_dir()?;
                let path = dir.path().join("config.yaml");
                std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
                Ok(ConfigFile {
                    path,
                    _dir: Some(dir),
                })
            }
        }
    }

    /// `e` with the temporary file of a text config named as [`TEXT_CONFIG_NAME`].
    fn relabel(&self, e: Error) -> Error {
        if self._dir.is_none() {
            return e;
        }
        let shown = self.path.display().to_string();
        let message = e.to_string();
        if !message.contains(&shown) {
            return e;
        }
        Error::Output {
            path: PathBuf::from(TEXT_CONFIG_NAME),
            message: message
                .replace(&format!("{shown}: "), "")
                .replace(&shown, TEXT_CONFIG_NAME),
        }
    }
}

fn temp_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("simwatt-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// What [`simulate()`] returns.
#[derive(Debug, Clone)]
pub struct SimulateOutput {
    /// `summary.json` as the CLI writes it.
    pub summary_json: String,
    /// What the CLI prints as `warning:` (a fallback to a weaker model than the config asked for).
    pub warnings: Vec<String>,
    /// `requests.parquet`, `batches.parquet` and `power.parquet` (the last absent for a run without
    /// energy); all `None` for a summary-only run.
    pub requests: Option<Vec<u8>>,
    pub batches: Option<Vec<u8>>,
    pub power: Option<Vec<u8>>,
}

/// Runs `simwatt simulate` in process: the config with `overrides` (`key=value`, as `--set`) and
/// `seed` (as `--seed`) applied. With `tables`, the run folder is written as the CLI writes it with
/// `--no-plots --no-trace --no-csv` and its three tables returned; without, only the summary is
/// computed (the same summary, without building the tables).
pub fn simulate(
    caches: &Caches,
    config: &ConfigSource,
    overrides: &[String],
    seed: Option<u64>,
    tables: bool,
) -> Result<SimulateOutput> {
    let file = ConfigFile::new(config)?;
    simulate_file(caches, &file, overrides, seed, tables).map_err(|e| file.relabel(e))
}

fn simulate_file(
    caches: &Caches,
    file: &ConfigFile,
    overrides: &[String],
    seed: Option<u64>,
    tables: bool,
) -> Result<SimulateOutput> {
    let args = SimulateArgs {
        config: file.path.clone(),
        overrides: overrides.to_vec(),
        out: None,
        seed,
        quiet: true,
        force: true,
        csv: CsvPolicy::Never,
        power_interval_s: output::DEFAULT_POWER_INTERVAL_S,
        batch_rows: BatchRows::Runs,
    };
    let scenario = simulate::load_scenario(&args, &caches.catalogs)?;
    let warnings = scenario.fallbacks();
    if !tables {
        let summary = simulate::simulate_summary(scenario, &caches.tables)?;
        return Ok(SimulateOutput {
            summary_json: to_json(&summary)?,
            warnings,
            requests: None,
            batches: None,
            power: None,
        });
    }
    let tmp = temp_dir()?;
    let out = tmp.path().join("run");
    let report = ReportOptions {
        plots: false,
        trace: false,
    };
    let (_, dir) = simulate::simulate_and_write(scenario, &args, &out, &report, caches, &())?;
    let power = dir.join("power.parquet");
    Ok(SimulateOutput {
        summary_json: String::from_utf8_lossy(&read(&dir.join("summary.json"))?).into_owned(),
        warnings,
        requests: Some(read(&dir.join("requests.parquet"))?),
        batches: Some(read(&dir.join("batches.parquet"))?),
        power: power.exists().then(|| read(&power)).transpose()?,
    })
}

/// Runs `simwatt sweep run` in process over every run of the sweep config on `jobs` threads, and
/// returns the merged `results.parquet` (one row per run, the summary flattened into columns).
pub fn sweep(config: &ConfigSource, jobs: usize) -> Result<Vec<u8>> {
    let file = ConfigFile::new(config)?;
    sweep_file(&file.path, jobs).map_err(|e| file.relabel(e))
}

fn sweep_file(path: &Path, jobs: usize) -> Result<Vec<u8>> {
    let caches = Caches::new()?;
    let plan = Plan::load(path, &caches.catalogs)?;
    let tmp = temp_dir()?;
    let out = tmp.path().join("sweep");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    shard::run_shard(&plan, &caches, Shard::ALL, &out, jobs.max(1), &|| {})?;
    let (parquet, _csv) = merge::merge(&plan, &caches, 1, &out, None)?;
    read(&parquet)
}

/// Runs `simwatt validate` in process, a suite (a folder of case files) or one config against its
/// measured data, without plots; returns the report's markdown and its metrics as one long table:
/// a row per (case, point, metric) with the measured and simulated values, the relative error and,
/// for power and energy, the two baselines' values and errors. Skipped cases have one row, with
/// their message and no metric.
pub fn validate(
    suite: Option<&Path>,
    config: Option<&Path>,
    measured: Option<&Path>,
) -> Result<(Vec<u8>, String)> {
    let tmp = temp_dir()?;
    let args = ValidateArgs {
        config: config.map(data::anchor_arg),
        measured: measured.map(data::anchor_arg),
        suite: suite.map(data::anchor_arg),
        out: Some(tmp.path().join("validation")),
        force: true,
        thresholds: Thresholds::default(),
        warmup_s: None,
        clock_offset_s: None,
        utc_offset: None,
        plots: false,
    };
    let outcome = validate::run(&args, &|_| {})?;
    Ok((validation_table(&outcome.cases)?, outcome.markdown))
}

/// The long table of [`validate`].
fn validation_table(cases: &[validate::CaseResult]) -> Result<Vec<u8>> {
    let mut case = Vec::new();
    let mut status = Vec::new();
    let mut message = Vec::new();
    let mut point = Vec::new();
    let mut predictor = Vec::new();
    let mut metric = Vec::new();
    let mut f: [Vec<Option<f64>>; 7] = Default::default();
    for c in cases {
        let mut push = |p: Option<&validate::Point>,
                        m: Option<(&String, &validate::MetricValue)>| {
            case.push(c.name.clone());
            status.push(c.status.clone());
            message.push(c.message.clone());
            point.push(p.map(|p| p.label.clone()));
            predictor.push(p.map(|p| p.predictor.clone()));
            metric.push(m.map(|(k, _)| k.clone()));
            let v = m.map(|(_, v)| v);
            let values = [
                v.map(|v| v.measured),
                v.map(|v| v.simulated),
                v.and_then(|v| v.rel_error),
                v.and_then(|v| v.tdp_x_time),
                v.and_then(|v| v.tdp_x_time_rel_error),
                v.and_then(|v| v.vidur_energy),
                v.and_then(|v| v.vidur_energy_rel_error),
            ];
            for (col, x) in f.iter_mut().zip(values) {
                col.push(x);
            }
        };
        if c.points.is_empty() {
            push(None, None);
        }
        for p in &c.points {
            for m in &p.metrics {
                push(Some(p), Some(m));
            }
        }
    }
    let names = [
        "measured",
        "simulated",
        "rel_error",
        "tdp_x_time",
        "tdp_x_time_rel_error",
        "vidur_energy",
        "vidur_energy_rel_error",
    ];
    let mut columns = vec![
        Column::new("case".into(), case),
        Column::new("status".into(), status),
        Column::new("message".into(), message),
        Column::new("point".into(), point),
        Column::new("predictor".into(), predictor),
        Column::new("metric".into(), metric),
    ];
    for (name, values) in names.iter().zip(f) {
        columns.push(Column::new((*name).into(), values));
    }
    let df = DataFrame::new_infer_height(columns).map_err(|e| Error::Internal(e.to_string()))?;
    parquet_bytes(&df)
}

/// `df` as Parquet file bytes, written as every table of a run folder is ([`ParquetFile`]).
fn parquet_bytes(df: &DataFrame) -> Result<Vec<u8>> {
    let err = |e: PolarsError| Error::Internal(format!("writing a table: {e}"));
    let mut w = ParquetFile::new(Vec::new(), df.schema()).map_err(err)?;
    w.write(df).map_err(err)?;
    w.finish(&[]).map_err(err)
}
