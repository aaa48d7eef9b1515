//! Python bindings of simwatt: the native module `simwatt._simwatt`, wrapped by the pure-Python
//! package `simwatt` (python/simwatt/__init__.py), which is what users import.
//!
//! Input: configs (a path or YAML text), overrides as `key=value` strings, seeds, sweep and
//! validation inputs, all already put into these plain forms by the Python layer. Output: summaries
//! as JSON text and tables as Parquet file bytes, exactly as [`simwatt::drivers::embed`] returns
//! them, which Python reads with pyarrow; an error of the library as `simwatt.SimwattError` carrying
//! its message (file, field, value). The GIL is released while a run works, so Python threads run
//! meanwhile and several runs can go side by side.
//! This crate only converts between Python and the library's driver layer: it simulates, parses and
//! writes nothing itself.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use simwatt::drivers::embed::{self, ConfigSource};
use simwatt::drivers::Caches;
use std::path::PathBuf;
use std::sync::OnceLock;

create_exception!(
    _simwatt,
    SimwattError,
    PyException,
    "An error simwatt reports about its input (a config key, a value, a file), with the same message \
     as the command line."
);

/// The library's error as a [`SimwattError`].
fn py_err(e: simwatt::error::Error) -> PyErr {
    SimwattError::new_err(e.to_string())
}

/// The parsed catalogs and fitted execution-time tables, made once per process and shared by every
/// run (as a sweep shares them between its runs).
fn caches() -> Result<&'static Caches, simwatt::error::Error> {
    static CACHES: OnceLock<Caches> = OnceLock::new();
    if let Some(c) = CACHES.get() {
        return Ok(c);
    }
    let made = Caches::new()?;
    Ok(CACHES.get_or_init(|| made))
}

fn source(config: String, is_text: bool) -> ConfigSource {
    if is_text {
        ConfigSource::Text(config)
    } else {
        ConfigSource::File(PathBuf::from(config))
    }
}

fn bytes(py: Python<'_>, b: Option<Vec<u8>>) -> Option<Py<PyBytes>> {
    b.map(|b| PyBytes::new(py, &b).unbind())
}

/// The tables and summary of one run, as the Python layer unpacks them.
type SimulateTuple = (
    String,
    Vec<String>,
    Option<Py<PyBytes>>,
    Option<Py<PyBytes>>,
    Option<Py<PyBytes>>,
);

/// Runs one simulation. Returns (summary JSON, warnings, requests.parquet bytes, batches.parquet
/// bytes, power.parquet bytes); the tables are None when `tables` is false (summary only) and the
/// power table is None for a run without energy. Use `simwatt.simulate`, which wraps this.
#[pyfunction]
#[pyo3(signature = (config, is_text, overrides, seed=None, tables=true))]
fn simulate(
    py: Python<'_>,
    config: String,
    is_text: bool,
    overrides: Vec<String>,
    seed: Option<u64>,
    tables: bool,
) -> PyResult<SimulateTuple> {
    let src = source(config, is_text);
    let out = py
        .allow_threads(|| embed::simulate(caches()?, &src, &overrides, seed, tables))
        .map_err(py_err)?;
    Ok((
        out.summary_json,
        out.warnings,
        bytes(py, out.requests),
        bytes(py, out.batches),
        bytes(py, out.power),
    ))
}

/// Runs every run of a sweep config on `jobs` threads; returns the merged results.parquet bytes.
/// Use `simwatt.sweep`, which wraps this.
#[pyfunction]
#[pyo3(signature = (config, is_text, jobs))]
fn sweep(py: Python<'_>, config: String, is_text: bool, jobs: usize) -> PyResult<Py<PyBytes>> {
    let src = source(config, is_text);
    let out = py
        .allow_threads(|| embed::sweep(&src, jobs))
        .map_err(py_err)?;
    Ok(PyBytes::new(py, &out).unbind())
}

/// Replays measured runs (a suite folder, or one config with its measured data); returns (the long
/// metrics table as Parquet bytes, the report's markdown). Use `simwatt.validate`, which wraps this.
#[pyfunction]
#[pyo3(signature = (suite=None, config=None, measured=None))]
fn validate(
    py: Python<'_>,
    suite: Option<PathBuf>,
    config: Option<PathBuf>,
    measured: Option<PathBuf>,
) -> PyResult<(Py<PyBytes>, String)> {
    let (table, markdown) = py
        .allow_threads(|| embed::validate(suite.as_deref(), config.as_deref(), measured.as_deref()))
        .map_err(py_err)?;
    Ok((PyBytes::new(py, &table).unbind(), markdown))
}

/// The native part of the `simwatt` package.
#[pymodule]
fn _simwatt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SimwattError", m.py().get_type::<SimwattError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SOURCE_DIGEST", simwatt::digest::SOURCE_DIGEST)?;
    m.add("TEXT_CONFIG_NAME", embed::TEXT_CONFIG_NAME)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    Ok(())
}
