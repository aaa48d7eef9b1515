//! Reading a run folder back: the input of `simwatt report` and of everything derived from a run
//! (plots, summary.md, trace.json).
//!
//! Input: a folder written by `simulate` (`summary.json`, `config.resolved.yaml`, `requests.parquet`,
//! `batches.parquet`; `provenance.json` and `power.parquet` when present). Output: a [`RunFolder`] that holds
//! the JSON / YAML documents as values and reads the tables when asked, as polars frames of the columns
//! asked for (whole, their first rows, or chunk by chunk for a fold over a long run's tables), with
//! typed column accessors whose errors name the file, the column and the file's row. Nothing here
//! depends on the in-memory state of a simulation, so a report made right after `simulate` and one made
//! later from the files are the same.

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
        "prefill_replica",
        "status",
        "scheduled_s",
        "first_token_s",
        "completion_s",
        "ttft_s",
        "e2e_s",
        "tpot_s",
        "itl_max_s",
        "preemptions",
        "cached_tokens",
        "session",
        "turn",
        "slo_met",
        "held_s",
        "deadline_s",
        "deadline_met",
        "energy_j",
        "prefill_energy_j",
        "decode_energy_j",
        "carbon_g",
    ],
};

/// One row per batch per pipeline stage (a run of decode steps of a static batch is one row).
pub const BATCHES: TableSchema = TableSchema {
    file: "batches.parquet",
    columns: &[
        "replica",
        "stage",
        "start_s",
        "end_s",
        "steps",
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

/// A chunk of a table read by [`RunFolder::batches_chunks`] and [`RunFolder::requests_chunks`]: whole
/// row groups adding up to at least this many rows (the last chunk may have fewer), unless
/// [`RunFolder::chunk_rows`] says otherwise.
pub const CHUNK_ROWS: usize = 1 << 18;

/// A table of a run folder: a parquet file read whole, or a chunk of its rows.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it was read from.
    pub path: PathBuf,
    pub df: DataFrame,
    /// Index in the file of the first row held (0 unless a chunk), so errors name the file's row.
    pub first_row: usize,
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
                first_row: 0,
            },
            total,
        ))
    }

    /// Reads the columns `names` of a parquet file (names it lacks are left out, as
    /// [`Table::read_parquet_columns`] does) in chunks of whole row groups adding up to at least
    /// `chunk_rows` rows, and calls `fold` on each chunk in row order; returns the file's row count. Only
    /// one chunk's columns are in memory at a time, so a fold over a long run's batch log needs memory
    /// for what it keeps, not for the table.
    pub fn fold_parquet_chunks(
        path: &Path,
        names: &[&str],
        chunk_rows: usize,
        mut fold: impl FnMut(&Table) -> Result<()>,
    ) -> Result<usize> {
        let bad = |e: PolarsError| Error::Csv {
            path: path.to_path_buf(),
            message: format!("not a readable parquet file: {e}"),
        };
        let open = || File::open(path).map_err(|e| Error::io(path, e));
        let mut reader = ParquetReader::new(open()?);
        let metadata = reader.get_metadata().map_err(bad)?.clone();
        let schema = reader.schema().map_err(bad)?;
        let present: Vec<String> = names
            .iter()
            .filter(|n| schema.contains(n))
            .map(|n| n.to_string())
            .collect();
        drop(reader);
        // Row ranges of whole row groups, each of at least `chunk_rows` rows but the last.
        let mut chunks = Vec::new();
        let (mut first, mut len) = (0, 0);
        for rg in &metadata.row_groups {
            len += rg.num_rows();
            if len >= chunk_rows.max(1) {
                chunks.push((first, len));
                first += len;
                len = 0;
            }
        }
        if len > 0 {
            chunks.push((first, len));
        }
        for (first, len) in chunks {
            // A reader per chunk (the file's metadata read once): the file pages one chunk touched are
            // let go before the next chunk is read.
            let mut reader = ParquetReader::new(open()?);
            reader.set_metadata(metadata.clone());
            let df = reader
                .with_columns(Some(present.clone()))
                .with_slice(Some((first, len)))
                .finish()
                .map_err(bad)?;
            fold(&Table {
                path: path.to_path_buf(),
                df,
                first_row: first,
            })?;
        }
        Ok(metadata.num_rows)
    }

    pub fn rows(&self) -> usize {
        self.df.height()
    }

    /// The row number in the file (counted from 1, as errors name rows) of row `i` of this table.
    pub fn file_row(&self, i: usize) -> usize {
        self.first_row + i + 1
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
                        row: Some(self.file_row(i)),
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

    /// Whether each value of a text column equals `value` (a null does not), without a string per row.
    pub fn text_is(&self, name: &str, value: &str) -> Result<Vec<bool>> {
        Ok(self
            .text_column(name)?
            .iter()
            .map(|v| v == Some(value))
            .collect())
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
            row: Some(self.file_row(i)),
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
    /// Least rows of a chunk the folds read at a time ([`CHUNK_ROWS`]; tests make it small to cut a
    /// table into many chunks).
    pub chunk_rows: usize,
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
            chunk_rows: CHUNK_ROWS,
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

    /// Columns `cols` of `batches.parquet` in chunks of at least `chunk_rows` rows, each passed to
    /// `fold` in row order (batch stages in order of start time); returns the table's row count.
    pub fn batches_chunks(
        &self,
        cols: &[&str],
        fold: impl FnMut(&Table) -> Result<()>,
    ) -> Result<usize> {
        self.read_chunks(&BATCHES, cols, fold)
    }

    /// Columns `cols` of `requests.parquet` in chunks of at least `chunk_rows` rows, each passed to
    /// `fold` in row order (requests in id order); returns the table's row count.
    pub fn requests_chunks(
        &self,
        cols: &[&str],
        fold: impl FnMut(&Table) -> Result<()>,
    ) -> Result<usize> {
        self.read_chunks(&REQUESTS, cols, fold)
    }

    /// Columns `cols` of `power.parquet` in chunks, as [`RunFolder::batches_chunks`]; `None` when
    /// the run has no power table (no power profile).
    pub fn power_chunks(
        &self,
        cols: &[&str],
        fold: impl FnMut(&Table) -> Result<()>,
    ) -> Result<Option<usize>> {
        if !self.dir.join(POWER.file).exists() {
            return Ok(None);
        }
        self.read_chunks(&POWER, cols, fold).map(Some)
    }

    fn read_chunks(
        &self,
        table: &TableSchema,
        cols: &[&str],
        fold: impl FnMut(&Table) -> Result<()>,
    ) -> Result<usize> {
        table.check(cols)?;
        Table::fold_parquet_chunks(&self.dir.join(table.file), cols, self.chunk_rows, fold)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A parquet file of `rows` rows (`x` = 0, 1, ..., `y` with a null at row `null_at`), written in row
    /// groups of `group` rows.
    fn write_file(path: &Path, rows: usize, group: usize, null_at: usize) {
        let x: Vec<f64> = (0..rows).map(|i| i as f64).collect();
        let y: Vec<Option<f64>> = (0..rows)
            .map(|i| (i != null_at).then_some(i as f64 * 0.5))
            .collect();
        let mut df = DataFrame::new(
            rows,
            vec![Column::new("x".into(), x), Column::new("y".into(), y)],
        )
        .unwrap();
        ParquetWriter::new(File::create(path).unwrap())
            .with_row_group_size(Some(group))
            .finish(&mut df)
            .unwrap();
    }

    #[test]
    fn chunks_of_whole_row_groups_add_up_to_the_table() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.parquet");
        write_file(&path, 23, 4, 17);
        let whole = Table::read_parquet_columns(&path, &["x", "y"]).unwrap();
        for chunk_rows in [1, 5, 8, 100] {
            let (mut x, mut y, mut chunks) = (Vec::new(), Vec::new(), Vec::new());
            let total = Table::fold_parquet_chunks(&path, &["x", "y", "absent"], chunk_rows, |t| {
                assert!(!t.has("absent"));
                chunks.push((t.first_row, t.rows()));
                x.extend(t.f64s_required("x")?);
                y.extend(t.f64s("y")?);
                Ok(())
            })
            .unwrap();
            assert_eq!(total, 23);
            assert_eq!(
                x,
                whole.f64s_required("x").unwrap(),
                "chunks of {chunk_rows}"
            );
            assert_eq!(y, whole.f64s("y").unwrap(), "chunks of {chunk_rows}");
            // The chunks follow each other and hold at least `chunk_rows` rows, but the last.
            let mut next = 0;
            for (k, &(first, rows)) in chunks.iter().enumerate() {
                assert_eq!(first, next, "chunks of {chunk_rows}: {chunks:?}");
                assert!(rows >= chunk_rows || k + 1 == chunks.len(), "{chunks:?}");
                next += rows;
            }
            match chunk_rows {
                1 => assert!(chunks.len() > 3, "one per row group: {chunks:?}"),
                100 => assert_eq!(chunks, vec![(0, 23)]),
                _ => {}
            }
        }
    }

    #[test]
    fn an_error_in_a_chunk_names_the_row_of_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.parquet");
        write_file(&path, 23, 4, 17);
        let e = Table::fold_parquet_chunks(&path, &["y"], 1, |t| t.f64s_required("y").map(|_| ()))
            .unwrap_err();
        match e {
            Error::Column { column, row, .. } => {
                assert_eq!((column.as_str(), row), ("y", Some(18)));
            }
            other => panic!("{other:?}"),
        }
    }
}
