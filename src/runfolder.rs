//! Reading a run folder back: the input of `simwatt report` and of everything derived from a run
//! (plots, summary.md, trace.json).
//!
//! Input: a folder written by `simulate` (`summary.json`, `config.resolved.yaml`, `requests.parquet`,
//! `batches.parquet`; `provenance.json` and `power.parquet` when present). Output: a [`RunFolder`] that holds
//! the tables as polars frames and the JSON / YAML documents as values, with typed column accessors whose
//! errors name the file and the column. Nothing here depends on the in-memory state of a simulation, so a
//! report made right after `simulate` and one made later from the files are the same.

use crate::error::{Error, Result};
use polars::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A table of a run folder: its file and its columns in order (docs/metrics.md describes each). The
/// writers of `crate::output` name their columns from here and the readers below accept only these
/// names, so a table's schema is written down once.
#[derive(Debug, Clone, Copy)]
pub struct TableSchema {
    pub file: &'static str,
    pub columns: &'static [&'static str],
}

impl TableSchema {
    /// Refuses a column name the table does not define (a reader asking for a misspelt column).
    fn check(&self, names: &[&str]) -> Result<()> {
        match names.iter().find(|n| !self.columns.contains(n)) {
            Some(n) => Err(Error::Internal(format!(
                "{} has no column `{n}` (its columns: {})",
                self.file,
                self.columns.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// One row per request.
pub const REQUESTS: TableSchema = TableSchema {
    file: "requests.parquet",
    columns: &[
        "request_id",
        "arrival_s",
        "prompt_tokens",
        "output_tokens",
        "replica",
        "status",
        "scheduled_s",
        "first_token_s",
        "completion_s",
        "ttft_s",
        "e2e_s",
        "tpot_s",
        "itl_max_s",
        "preemptions",
        "energy_j",
        "prefill_energy_j",
        "decode_energy_j",
        "carbon_g",
    ],
};

/// One row per batch per pipeline stage.
pub const BATCHES: TableSchema = TableSchema {
    file: "batches.parquet",
    columns: &[
        "replica",
        "stage",
        "start_s",
        "end_s",
        "num_requests",
        "prefill_tokens",
        "decode_tokens",
        "padding_seqs",
        "kv_blocks_used",
        "flops",
        "bytes",
        "host_s",
        "clock",
        "power_w",
        "host_power_w",
        "energy_j",
    ],
};

/// Per-GPU power of each (replica, stage) group over the run's span, in rows that tile it (intervals or
/// segments: `crate::output::PowerSegments`).
pub const POWER: TableSchema = TableSchema {
    file: "power.parquet",
    columns: &[
        "replica",
        "stage",
        "gpus",
        "start_s",
        "end_s",
        "busy_s",
        "host_s",
        "idle_s",
        "power_w",
        "energy_j",
        "idle_energy_j",
    ],
};

/// A table of a run folder (a parquet file read whole).
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it was read from.
    pub path: PathBuf,
    pub df: DataFrame,
}

impl Table {
    /// Reads the columns `names` of a parquet file. Names the file does not have are left out rather
    /// than refused, so callers can still ask [`Table::has`] and get the usual "missing column" error
    /// naming the file when they need one.
    pub fn read_parquet_columns(path: &Path, names: &[&str]) -> Result<Table> {
        Ok(Self::read_parquet_head(path, names, None)?.0)
    }

    /// Like [`Table::read_parquet_columns`], reading only the first `rows` rows when given; also returns
    /// the file's row count.
    pub fn read_parquet_head(
        path: &Path,
        names: &[&str],
        rows: Option<usize>,
    ) -> Result<(Table, usize)> {
        let bad = |e: PolarsError| Error::Csv {
            path: path.to_path_buf(),
            message: format!("not a readable parquet file: {e}"),
        };
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = ParquetReader::new(f);
        let total = reader.num_rows().map_err(bad)?;
        if let Some(n) = rows {
            reader = reader.with_slice(Some((0, n.min(total))));
        }
        let schema = reader.schema().map_err(bad)?;
        let present: Vec<String> = names
            .iter()
            .filter(|n| schema.contains(n))
            .map(|n| n.to_string())
            .collect();
        reader = reader.with_columns(Some(present));
        let df = reader.finish().map_err(bad)?;
        Ok((
            Table {
                path: path.to_path_buf(),
                df,
            },
            total,
        ))
    }

    pub fn rows(&self) -> usize {
        self.df.height()
    }

    /// The rows where `keep` is true (`keep` has one entry per row).
    pub fn filter(&self, keep: &[bool]) -> Result<Table> {
        let mask = BooleanChunked::from_slice("keep".into(), keep);
        let df = self.df.filter(&mask).map_err(|e| Error::Csv {
            path: self.path.clone(),
            message: format!("cannot select rows: {e}"),
        })?;
        Ok(Table {
            path: self.path.clone(),
            df,
        })
    }

    /// Whether the table has a column named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.df.get_column_index(name).is_some()
    }

    fn column_err(&self, name: &str, message: impl Into<String>) -> Error {
        Error::Column {
            path: self.path.clone(),
            column: name.to_string(),
            row: None,
            message: message.into(),
        }
    }

    /// A numeric column cast to f64. A missing or non-numeric column is an error naming the file and
    /// the column.
    fn f64_chunked(&self, name: &str) -> Result<Column> {
        let col = self
            .df
            .column(name)
            .map_err(|_| self.column_err(name, "missing"))?;
        if !col.dtype().is_primitive_numeric() {
            return Err(self.column_err(name, format!("expected numbers, found {}", col.dtype())));
        }
        col.cast(&DataType::Float64)
            .map_err(|e| self.column_err(name, e.to_string()))
    }

    /// A numeric column as f64 values (nulls as `None`).
    pub fn f64s(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let cast = self.f64_chunked(name)?;
        let ca = cast
            .f64()
            .map_err(|e| self.column_err(name, e.to_string()))?;
        Ok(ca.iter().collect())
    }

    /// A numeric column without nulls (collected without an intermediate `Option` per row: a long
    /// run's batch log has millions of rows).
    pub fn f64s_required(&self, name: &str) -> Result<Vec<f64>> {
        let cast = self.f64_chunked(name)?;
        let ca = cast
            .f64()
            .map_err(|e| self.column_err(name, e.to_string()))?;
        if ca.null_count() > 0 {
            let i = ca.iter().position(|v| v.is_none()).unwrap_or(0);
            return Err(self.null_err(name, i));
        }
        Ok(ca.into_no_null_iter().collect())
    }

    /// A non-negative integer column without nulls (ids, counts).
    pub fn u64s(&self, name: &str) -> Result<Vec<u64>> {
        self.f64s_required(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if v >= 0.0 && v.fract() == 0.0 {
                    Ok(v as u64)
                } else {
                    Err(Error::Column {
                        path: self.path.clone(),
                        column: name.to_string(),
                        row: Some(i + 1),
                        message: format!("{v} is not a non-negative integer"),
                    })
                }
            })
            .collect()
    }

    /// A text column; a missing or non-text one is an error naming the file and the column.
    fn text_column(&self, name: &str) -> Result<&StringChunked> {
        let col = self
            .df
            .column(name)
            .map_err(|_| self.column_err(name, "missing"))?;
        col.str()
            .map_err(|_| self.column_err(name, format!("expected text, found {}", col.dtype())))
    }

    /// A text column as indices into `allowed` (one byte per row, no string per row: a long run's
    /// power log has tens of millions of rows). A null or any other value is an error naming the row.
    pub fn text_codes(&self, name: &str, allowed: &[&str]) -> Result<Vec<u8>> {
        self.text_column(name)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v = v.unwrap_or_default();
                allowed
                    .iter()
                    .position(|a| *a == v)
                    .map(|k| k as u8)
                    .ok_or_else(|| Error::Column {
                        path: self.path.clone(),
                        column: name.to_string(),
                        row: Some(i + 1),
                        message: format!(
                            "`{v}` is not one of {}",
                            allowed
                                .iter()
                                .map(|a| format!("`{a}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            })
            .collect()
    }

    /// A text column (nulls as empty strings).
    pub fn strings(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .text_column(name)?
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect())
    }

    fn null_err(&self, name: &str, i: usize) -> Error {
        Error::Column {
            path: self.path.clone(),
            column: name.to_string(),
            row: Some(i + 1),
            message: "empty value".into(),
        }
    }
}

/// Everything a report is made from, read from a run folder. The tables are read when asked for, and
/// only the columns asked for, so a report that needs only the summary does not load a long run's
/// batch log and one plot's columns are freed before the next plot reads its own.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    /// `summary.json`.
    pub summary: serde_json::Value,
    /// `config.resolved.yaml`.
    pub config: serde_yaml::Value,
    /// `provenance.json`, when present.
    pub provenance: Option<serde_json::Value>,
}

fn read_text(path: &Path) -> Result<String> {
    crate::input::read_text(path)
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    serde_json::from_str(&read_text(path)?).map_err(|e| Error::Csv {
        path: path.to_path_buf(),
        message: format!("not valid JSON: {e}"),
    })
}

impl RunFolder {
    /// Reads the run folder `dir`.
    pub fn read(dir: &Path) -> Result<RunFolder> {
        if !dir.is_dir() {
            return Err(Error::Output {
                path: dir.to_path_buf(),
                message: "not a run folder (no such folder)".into(),
            });
        }
        let summary = read_json(&dir.join("summary.json"))?;
        let config_path = dir.join("config.resolved.yaml");
        let config_text = read_text(&config_path)?;
        crate::input::check_yaml_depth(&config_path, &config_text)?;
        let config = serde_yaml::from_str(&config_text).map_err(|e| Error::Yaml {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        let prov_path = dir.join("provenance.json");
        let provenance = if prov_path.exists() {
            Some(read_json(&prov_path)?)
        } else {
            None
        };
        for name in [REQUESTS.file, BATCHES.file] {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(Error::io(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "missing from the run folder",
                    ),
                ));
            }
        }
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            summary,
            config,
            provenance,
        })
    }

    /// Columns `cols` of `requests.parquet` (one row per request). Each call reads the file: plots
    /// ask for the few columns they draw, so a long run's tables are never all in memory at once.
    pub fn requests(&self, cols: &[&str]) -> Result<Table> {
        self.read_table(&REQUESTS, cols)
    }

    /// Columns `cols` of the first `rows` rows of `requests.parquet` (requests in id order, which is
    /// arrival order), and its row count.
    pub fn requests_head(&self, cols: &[&str], rows: usize) -> Result<(Table, usize)> {
        self.read_head(&REQUESTS, cols, rows)
    }

    /// Columns `cols` of the first `rows` rows of `batches.parquet` (batch stages in order of start
    /// time), and its row count.
    pub fn batches_head(&self, cols: &[&str], rows: usize) -> Result<(Table, usize)> {
        self.read_head(&BATCHES, cols, rows)
    }

    /// Columns `cols` of `batches.parquet` (one row per batch stage).
    pub fn batches(&self, cols: &[&str]) -> Result<Table> {
        self.read_table(&BATCHES, cols)
    }

    /// Columns `cols` of `power.parquet`, when the run has one.
    pub fn power(&self, cols: &[&str]) -> Result<Option<Table>> {
        if !self.dir.join(POWER.file).exists() {
            return Ok(None);
        }
        self.read_table(&POWER, cols).map(Some)
    }

    fn read_table(&self, table: &TableSchema, cols: &[&str]) -> Result<Table> {
        table.check(cols)?;
        Table::read_parquet_columns(&self.dir.join(table.file), cols)
    }

    fn read_head(&self, table: &TableSchema, cols: &[&str], rows: usize) -> Result<(Table, usize)> {
        table.check(cols)?;
        Table::read_parquet_head(&self.dir.join(table.file), cols, Some(rows))
    }

    /// A number of summary.json at a dotted path (`ttft_p50_s`), if present and numeric.
    pub fn summary_f64(&self, dotted: &str) -> Option<f64> {
        dotted
            .split('.')
            .try_fold(&self.summary, |v, k| v.get(k))
            .and_then(|v| v.as_f64())
    }

    /// A string of summary.json, if present.
    pub fn summary_str(&self, key: &str) -> Option<&str> {
        self.summary.get(key).and_then(|v| v.as_str())
    }

    /// A value of config.resolved.yaml at a dotted path (`hardware.tensor_parallel`), if present.
    pub fn config_value(&self, dotted: &str) -> Option<&serde_yaml::Value> {
        dotted.split('.').try_fold(&self.config, |v, k| v.get(k))
    }

    /// A non-negative integer of config.resolved.yaml, if present.
    pub fn config_u64(&self, dotted: &str) -> Option<u64> {
        self.config_value(dotted).and_then(|v| v.as_u64())
    }

    /// Number of replicas (from the summary, else the config, else 1).
    pub fn replicas(&self) -> u32 {
        self.summary_f64("replicas")
            .map(|r| r as u32)
            .or_else(|| self.config_u64("hardware.replicas").map(|r| r as u32))
            .unwrap_or(1)
            .max(1)
    }

    /// Number of pipeline stages (from the config, else 1).
    pub fn pipeline_stages(&self) -> u32 {
        self.config_u64("hardware.pipeline_stages")
            .map(|p| p as u32)
            .unwrap_or(1)
            .max(1)
    }
}
