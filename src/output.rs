//! Writing a run folder: all files go to a hidden sibling folder first, which is renamed into place only
//! when every file is written, so an interrupted or failed run never leaves a folder that looks complete.
//! The tables' columns are named by their schemas in [`crate::runfolder`] (`REQUESTS`, `BATCHES`, `POWER`).
//! Every Parquet file is written by [`ParquetFile`], whose string columns are plain Arrow `LargeUtf8`
//! (not the `string_view` Polars writes by default), so older Arrow, Spark and pandas readers open it.
//!
//! Inputs: the target folder, whether `--force` was given, what kind of run writes it and the run's
//! input files. Outputs: the folder, written whole or not at all. May not: remove anything but its own
//! hidden folder, the hidden folder of a process that is no longer running, and (with `--force`) a
//! folder that a previous run of the same verb wrote and that holds nothing else ([`check_target`]).
//!
//! The hidden folders being written are listed in one process-wide registry so that a signal handler
//! ([`remove_partial_folders`], called by `main` on SIGINT or SIGTERM) can remove them before the
//! process exits: a signal arrives outside any call chain, so this is the one piece of global state.

use crate::cluster::{Phase, RejectReason, Request};
use crate::error::{Error, Result};
use crate::metrics::RequestRow;
use crate::runfolder::{TableSchema, BATCHES, POWER, REQUESTS};
use crate::sim::{BatchLog, BatchRow, BatchSink};
use crate::units::ns_to_secs;
use crate::units::SimTime;
use polars::prelude::*;
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::page::DataPageHeader;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{
    array_to_columns, get_dtype_encoding, schema_to_metadata_key, to_parquet_schema,
    CompressedDataPage, CompressedPage, CompressionOptions, DynIter, DynStreamingIterator,
    Encoding, FallibleStreamingIterator, FileWriter, KeyValue, Page, ParquetType,
    StatisticsOptions, Version, WriteOptions, ZstdLevel,
};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Which verb writes a folder, and so which files such a folder may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `simulate`: tables, summary, provenance, report, trace and plots; marked by `provenance.json`.
    Simulate,
    /// `validate`: `validation.json` (its mark), `validation.md`, plots, and one folder of plots per case.
    Validate,
    /// `measure`: a measured run's logs and `manifest.json` (its mark).
    Measure,
    /// `split`: `split.json` (its mark), `split.csv` and its plot.
    Split,
}

impl RunKind {
    /// The file whose `simwatt_version` marks a folder written by this verb.
    fn marker(self) -> &'static str {
        match self {
            RunKind::Simulate => "provenance.json",
            RunKind::Validate => "validation.json",
            RunKind::Measure => "manifest.json",
            RunKind::Split => "split.json",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            RunKind::Simulate => "simulate",
            RunKind::Validate => "validate",
            RunKind::Measure => "measure",
            RunKind::Split => "split",
        }
    }

    /// Whether a run of this verb writes a file of this name at the top of its folder.
    fn writes_file(self, name: &str) -> bool {
        let plot = name.ends_with(".png") || name.ends_with(".svg");
        plot || match self {
            RunKind::Simulate => matches!(
                name,
                "provenance.json"
                    | "config.resolved.yaml"
                    | "summary.json"
                    | "summary.md"
                    | "trace.json"
                    | "requests.parquet"
                    | "requests.csv"
                    | "batches.parquet"
                    | "power.parquet"
                    | "microgrid.csv"
            ),
            RunKind::Validate => matches!(name, "validation.json" | "validation.md"),
            RunKind::Split => matches!(name, "split.json" | "split.csv"),
            RunKind::Measure => {
                matches!(
                    name,
                    "manifest.json"
                        | "requests.csv"
                        | "tokens.jsonl"
                        | "request-errors.csv"
                        | "gpu-power.csv"
                ) || (name.ends_with(".csv")
                    && (name.starts_with("rapl-") || name.starts_with("cpu-")))
            }
        }
    }

    /// Whether a run of this verb writes folders (validate: one folder of plots per case).
    fn writes_folders(self) -> bool {
        self == RunKind::Validate
    }
}

/// The first entry of `dir` (names sorted) that a run of `kind` does not write: a file of another
/// name, or a folder where the verb writes none, or one holding anything but plots.
fn foreign_entry(dir: &Path, kind: RunKind) -> Result<Option<PathBuf>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        let ty = e.file_type().map_err(|err| Error::io(e.path(), err))?;
        if ty.is_file() && kind.writes_file(&name) {
            continue;
        }
        if ty.is_dir() && kind.writes_folders() && !name.starts_with('.') {
            let mut inner: Vec<_> = std::fs::read_dir(e.path())
                .map_err(|err| Error::io(e.path(), err))?
                .collect::<std::io::Result<_>>()
                .map_err(|err| Error::io(e.path(), err))?;
            inner.sort_by_key(|i| i.file_name());
            let bad = inner.into_iter().find(|i| {
                let n = i.file_name().to_string_lossy().to_string();
                !(i.file_type().is_ok_and(|t| t.is_file())
                    && (n.ends_with(".png") || n.ends_with(".svg")))
            });
            match bad {
                Some(b) => return Ok(Some(b.path())),
                None => continue,
            }
        }
        return Ok(Some(e.path()));
    }
    Ok(None)
}

/// Whether `marker` is a JSON object with a `simwatt_version` string (as simwatt writes it).
fn written_by_simwatt(marker: &Path) -> bool {
    std::fs::read_to_string(marker)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("simwatt_version").is_some_and(|s| s.is_string()))
}

/// Checks that a run may write `target` and, with `force`, replace what is there. The rules:
///
/// - `target` must be a folder or not exist (a file is refused, named as such);
/// - it may not hold any of the run's `inputs` (role, path), with or without `force`;
/// - a folder that exists and is not empty is refused without `force`;
/// - with `force`, it is replaced only if it is a previous run folder of the same verb: its marker
///   file (`provenance.json` for simulate, `validation.json` for validate) was written by simwatt
///   (a JSON object with `simwatt_version`), and it holds nothing but files such a run writes
///   (fixed names, plots as `*.png` / `*.svg`, and for validate folders of plots). Anything else,
///   hidden files included, is refused, naming the file, and nothing is removed.
pub fn check_target(
    target: &Path,
    force: bool,
    kind: RunKind,
    inputs: &[(String, PathBuf)],
) -> Result<()> {
    let refuse = |message: String| Error::Output {
        path: target.to_path_buf(),
        message,
    };
    let meta = match std::fs::metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(target, e)),
    };
    if !meta.is_dir() {
        return Err(refuse(
            "is a file, not a folder; --out names the run folder to write".into(),
        ));
    }
    let canon = std::fs::canonicalize(target).map_err(|e| Error::io(target, e))?;
    for (role, input) in inputs {
        if std::fs::canonicalize(input).is_ok_and(|p| p.starts_with(&canon)) {
            return Err(refuse(format!(
                "holds this run's input ({role} {}); the run folder is replaced whole, so choose \
                 another --out",
                input.display()
            )));
        }
    }
    let empty = std::fs::read_dir(target)
        .map_err(|e| Error::io(target, e))?
        .next()
        .is_none();
    if empty {
        return Ok(());
    }
    if !force {
        return Err(refuse(
            "already exists and is not empty; choose another --out or pass --force to replace it"
                .into(),
        ));
    }
    if let Some(f) = foreign_entry(target, kind)? {
        return Err(refuse(format!(
            "--force replaces only a folder written by `simwatt {}`, and it holds {}, which such a \
             run does not write; nothing was removed",
            kind.verb(),
            f.display()
        )));
    }
    let marker = kind.marker();
    if !written_by_simwatt(&target.join(marker)) {
        return Err(refuse(format!(
            "--force replaces only a folder written by `simwatt {}`, and this one has no {marker} \
             written by simwatt; nothing was removed",
            kind.verb()
        )));
    }
    Ok(())
}

/// The hidden folders this process is writing (see the module header).
static PARTIAL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn partial_registry() -> MutexGuard<'static, Vec<PathBuf>> {
    PARTIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every hidden folder this process is writing and returns their paths; the registry stays
/// locked (so no folder is committed or dropped meanwhile) until the guard returned is dropped. Called
/// from a signal handler's thread just before the process exits.
pub fn remove_partial_folders() -> (Vec<PathBuf>, MutexGuard<'static, Vec<PathBuf>>) {
    let mut reg = partial_registry();
    let mut removed = Vec::new();
    for p in reg.drain(..) {
        // Other threads may still be creating files in it: try again until it is gone.
        for _ in 0..50 {
            match std::fs::remove_dir_all(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => break,
            }
        }
        if !p.exists() {
            removed.push(p);
        }
    }
    (removed, reg)
}

/// Waits until no signal handler is removing folders (a thread that finished its work while the
/// folders are removed must not return and end the process first).
pub fn settle() {
    drop(partial_registry());
}

/// Whether process `pid` is running. Only where this can be asked (Unix: `kill(pid, 0)`) can it
/// answer no; elsewhere every process counts as running, so no folder is ever taken for stale.
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Removes the hidden folders `.<name>.partial-<pid>` beside `target` left by processes that are no
/// longer running (killed with SIGKILL, or a crash of the machine), and returns their paths.
fn remove_stale_partials(parent: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let prefix = format!(".{name}.partial-");
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(removed);
    };
    for e in entries.flatten() {
        let file_name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let p = e.path();
        std::fs::remove_dir_all(&p).map_err(|err| Error::io(&p, err))?;
        removed.push(p);
    }
    removed.sort();
    Ok(removed)
}

/// A run folder being written.
pub struct RunDir {
    target: PathBuf,
    tmp: PathBuf,
    force: bool,
    kind: RunKind,
    inputs: Vec<(String, PathBuf)>,
    /// Set when the finished folder could not be moved into place and was kept under another name.
    keep: bool,
}

impl RunDir {
    /// Prepares to write `target` (see [`check_target`] for when it may, and with `force` replace
    /// what is there). Hidden folders of earlier runs into the same target whose process is gone are
    /// removed, each reported through `log`.
    pub fn create(
        target: &Path,
        force: bool,
        kind: RunKind,
        inputs: &[(String, PathBuf)],
        log: &dyn Fn(&str),
    ) -> Result<Self> {
        check_target(target, force, kind, inputs)?;
        let name = target
            .file_name()
            .ok_or_else(|| Error::Output {
                path: target.to_path_buf(),
                message: "not a folder name".into(),
            })?
            .to_string_lossy()
            .to_string();
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        for p in remove_stale_partials(parent, &name)? {
            log(&format!(
                "removed {}, the unfinished folder of an earlier run that was stopped",
                p.display()
            ));
        }
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        // Registered before it exists, so that a signal from here on removes it.
        let mut reg = partial_registry();
        reg.push(tmp.clone());
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        drop(reg);
        Ok(RunDir {
            target: target.to_path_buf(),
            tmp,
            force,
            kind,
            inputs: inputs.to_vec(),
            keep: false,
        })
    }

    /// The folder being written (hidden until [`RunDir::commit`]).
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Path of `name` inside the folder being written.
    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    pub fn write_text(&self, name: &str, text: &str) -> Result<()> {
        let p = self.file(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    }

    /// Moves the finished folder into place, replacing an old one only when forced and only under the
    /// rules of [`check_target`], checked again here (the folder may have changed during the run).
    pub fn commit(mut self) -> Result<PathBuf> {
        let mut reg = partial_registry();
        if self.target.exists() {
            if let Err(e) = check_target(&self.target, self.force, self.kind, &self.inputs) {
                // Keep the results where the user can see them rather than lose a long run.
                let name = self
                    .target
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy();
                let kept = self
                    .tmp
                    .with_file_name(format!("{name}.new-{}", std::process::id()));
                std::fs::rename(&self.tmp, &kept).map_err(|e| Error::io(&kept, e))?;
                reg.retain(|p| p != &self.tmp);
                self.tmp = kept.clone();
                self.keep = true;
                return Err(Error::Output {
                    path: self.target.clone(),
                    message: format!(
                        "changed while the run was being written ({e}); results left in {}",
                        kept.display()
                    ),
                });
            }
            std::fs::remove_dir_all(&self.target).map_err(|e| Error::io(&self.target, e))?;
        }
        std::fs::rename(&self.tmp, &self.target).map_err(|e| Error::io(&self.target, e))?;
        reg.retain(|p| p != &self.tmp);
        Ok(self.target.clone())
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // A folder not committed is removed; after a commit `tmp` no longer exists.
        if self.keep {
            return;
        }
        let mut reg = partial_registry();
        let _ = std::fs::remove_dir_all(&self.tmp);
        reg.retain(|p| p != &self.tmp);
    }
}

fn frame_err(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| Error::Output {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A table of `schema` from its columns' values, in the schema's order (the names come from the schema).
fn frame(schema: &TableSchema, values: Vec<Column>) -> Result<DataFrame> {
    if values.len() != schema.columns.len() {
        return Err(Error::Internal(format!(
            "{}: {} columns built for {} named",
            schema.file,
            values.len(),
            schema.columns.len()
        )));
    }
    let named = values
        .into_iter()
        .zip(schema.columns)
        .map(|(c, name)| c.with_name((*name).into()))
        .collect();
    DataFrame::new_infer_height(named).map_err(|e| Error::Internal(e.to_string()))
}

/// The per-request table.
pub fn requests_frame(rows: &[RequestRow]) -> Result<DataFrame> {
    let col_f = |f: &dyn Fn(&RequestRow) -> Option<f64>| {
        Column::new(
            PlSmallStr::EMPTY,
            rows.iter().map(f).collect::<Vec<Option<f64>>>(),
        )
    };
    frame(
        &REQUESTS,
        vec![
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.request_id).collect::<Vec<u64>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.arrival_s).collect::<Vec<f64>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.prompt_tokens).collect::<Vec<u32>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.output_tokens).collect::<Vec<u32>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.replica).collect::<Vec<u32>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter()
                    .map(|r| r.prefill_replica)
                    .collect::<Vec<Option<u32>>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.status).collect::<Vec<&str>>(),
            ),
            col_f(&|r| r.scheduled_s),
            col_f(&|r| r.first_token_s),
            col_f(&|r| r.completion_s),
            col_f(&|r| r.ttft_s),
            col_f(&|r| r.e2e_s),
            col_f(&|r| r.tpot_s),
            col_f(&|r| r.itl_max_s),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.preemptions).collect::<Vec<u32>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.cached_tokens).collect::<Vec<u32>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.session).collect::<Vec<Option<u32>>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter().map(|r| r.turn).collect::<Vec<Option<u32>>>(),
            ),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter()
                    .map(|r| r.slo_met)
                    .collect::<Vec<Option<bool>>>(),
            ),
            col_f(&|r| r.held_s),
            col_f(&|r| r.deadline_s),
            Column::new(
                PlSmallStr::EMPTY,
                rows.iter()
                    .map(|r| r.deadline_met)
                    .collect::<Vec<Option<bool>>>(),
            ),
            col_f(&|r| r.energy_j),
            col_f(&|r| r.prefill_energy_j),
            col_f(&|r| r.decode_energy_j),
            col_f(&|r| r.carbon_g),
        ],
    )
}

/// The batch-stage table.
pub fn batches_frame(b: &BatchLog) -> Result<DataFrame> {
    let secs = |v: &[u64]| v.iter().map(|t| ns_to_secs(*t)).collect::<Vec<f64>>();
    frame(
        &BATCHES,
        vec![
            Column::new(PlSmallStr::EMPTY, b.replica.clone()),
            Column::new(PlSmallStr::EMPTY, b.stage.clone()),
            Column::new(PlSmallStr::EMPTY, secs(&b.start_ns)),
            Column::new(PlSmallStr::EMPTY, secs(&b.end_ns)),
            Column::new(PlSmallStr::EMPTY, b.steps.clone()),
            Column::new(PlSmallStr::EMPTY, b.num_requests.clone()),
            Column::new(PlSmallStr::EMPTY, b.prefill_tokens.clone()),
            Column::new(PlSmallStr::EMPTY, b.decode_tokens.clone()),
            Column::new(PlSmallStr::EMPTY, b.padding_seqs.clone()),
            Column::new(PlSmallStr::EMPTY, b.kv_blocks_used.clone()),
            Column::new(PlSmallStr::EMPTY, b.flops.clone()),
            Column::new(PlSmallStr::EMPTY, b.bytes.clone()),
            Column::new(PlSmallStr::EMPTY, secs(&b.host_ns)),
            Column::new(PlSmallStr::EMPTY, b.clock.clone()),
            Column::new(PlSmallStr::EMPTY, b.power_w.clone()),
            Column::new(PlSmallStr::EMPTY, b.host_power_w.clone()),
            Column::new(PlSmallStr::EMPTY, b.energy_j.clone()),
        ],
    )
}

pub fn write_csv(path: &Path, df: &mut DataFrame) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
    CsvWriter::new(&mut f).finish(df).map_err(frame_err(path))
}

/// Rows of a Parquet row group: every row group of a table but its last holds exactly this many,
/// whatever the sizes of the frames written.
pub const ROW_GROUP_ROWS: usize = 1 << 16;

/// A Parquet file of row groups of [`ROW_GROUP_ROWS`] rows, its Arrow schema at Polars' oldest
/// compatibility level: strings as `LargeUtf8`, never `Utf8View` / `BinaryView`, which readers older
/// than Arrow 15 (pyarrow 14, Spark's Arrow, DuckDB before 0.10) cannot open.
///
/// Each frame passed to [`ParquetFile::write`] is encoded and compressed at once, as pages of the row
/// group being gathered, and the row group is written when it is full: the work of a table written in
/// small chunks (the event loop hands its writer threads a chunk every [`CHUNK_ROWS`] rows) is done as
/// the chunks arrive, beside the loop, not when a row group is complete. Every column is written plain
/// (a dictionary page could only head a row group's column, not each chunk's pages), compressed with
/// zstd at level 1 by one compression context kept for the file; statistics are Polars' defaults.
pub struct ParquetFile<W: Write> {
    writer: FileWriter<W>,
    schema: ArrowSchema,
    fields: Vec<ParquetType>,
    /// Plain, for each leaf of each field (a nested field has several).
    encodings: Vec<Vec<Encoding>>,
    options: WriteOptions,
    /// Compressed pages of the row group being gathered, one list per leaf column (in the order of
    /// the fields, a nested field's leaves in its order), and its rows.
    pending: Vec<Vec<CompressedPage>>,
    pending_rows: usize,
    zstd: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

/// zstd level of every Parquet file: a long run's batch log is hundreds of MB written while the loop
/// runs, and level 1 compresses it about as small (within a few percent) at a fraction of the time.
const ZSTD_LEVEL: i32 = 1;

impl<W: Write> ParquetFile<W> {
    /// The Arrow schema that `schema` is written as.
    pub fn arrow_schema(schema: &Schema) -> ArrowSchema {
        schema.to_arrow(CompatLevel::oldest())
    }

    /// Starts a file of frames with `schema` on `w`.
    pub fn new(w: W, schema: &Schema) -> PolarsResult<Self> {
        let schema = Self::arrow_schema(schema);
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            compression: CompressionOptions::Zstd(Some(ZstdLevel::try_new(ZSTD_LEVEL)?)),
            version: Version::V1,
            data_page_size: None,
        };
        let fields = to_parquet_schema(&schema)?.fields().to_vec();
        let encodings: Vec<Vec<Encoding>> = schema
            .iter_values()
            .map(|f| vec![Encoding::Plain; get_dtype_encoding(&f.dtype).len()])
            .collect();
        let leaves = encodings.iter().map(Vec::len).sum();
        let zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(zstd_err)?;
        Ok(ParquetFile {
            writer: FileWriter::try_new(w, schema.clone(), options)?,
            pending: (0..leaves).map(|_| Vec::new()).collect(),
            pending_rows: 0,
            schema,
            fields,
            encodings,
            options,
            zstd,
            scratch: Vec::new(),
        })
    }

    /// Appends `df` (the file's schema): its rows are encoded and compressed now, and every row group
    /// they fill is written. An empty frame writes nothing.
    pub fn write(&mut self, df: &DataFrame) -> PolarsResult<()> {
        let mut offset = 0;
        while offset < df.height() {
            let take = (ROW_GROUP_ROWS - self.pending_rows).min(df.height() - offset);
            let mut piece = df.slice(offset as i64, take);
            piece.align_chunks();
            for batch in piece.iter_chunks(CompatLevel::oldest(), false) {
                let rows = batch.len();
                let mut leaf = 0;
                for (i, array) in batch.into_arrays().into_iter().enumerate() {
                    let leaves = array_to_columns(
                        array,
                        self.fields[i].clone(),
                        self.options,
                        &self.encodings[i],
                    )?;
                    for pages in leaves {
                        for page in pages {
                            let page = compress_page(&mut self.zstd, &mut self.scratch, page?)?;
                            self.pending[leaf].push(page);
                        }
                        leaf += 1;
                    }
                }
                self.pending_rows += rows;
            }
            offset += take;
            if self.pending_rows >= ROW_GROUP_ROWS {
                self.write_group()?;
            }
        }
        Ok(())
    }

    /// Writes the gathered pages as one row group, if there are any.
    fn write_group(&mut self) -> PolarsResult<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let columns: Vec<_> = self.pending.iter_mut().map(std::mem::take).collect();
        let columns = DynIter::new(columns.into_iter().map(|pages| {
            Ok(DynStreamingIterator::new(GatheredPages {
                pages: pages.into_iter(),
                current: None,
            }))
        }));
        self.writer.write(self.pending_rows as u64, columns)?;
        self.pending_rows = 0;
        Ok(())
    }

    /// Writes the footer: the Arrow schema, then `meta` as key-value metadata.
    pub fn finish(mut self, meta: &[(String, String)]) -> PolarsResult<W> {
        self.write_group()?;
        let mut kv = vec![schema_to_metadata_key(&self.schema)];
        kv.extend(meta.iter().map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(v.clone()),
        }));
        self.writer.end(Some(kv))?;
        Ok(self.writer.into_inner())
    }
}

/// A column's gathered pages, handed to the file writer one at a time.
struct GatheredPages {
    pages: std::vec::IntoIter<CompressedPage>,
    current: Option<CompressedPage>,
}

impl FallibleStreamingIterator for GatheredPages {
    type Item = CompressedPage;
    type Error = PolarsError;

    fn advance(&mut self) -> PolarsResult<()> {
        self.current = self.pages.next();
        Ok(())
    }

    fn get(&self) -> Option<&CompressedPage> {
        self.current.as_ref()
    }
}

/// A (version 1) data page compressed by `zstd`, the file's one compression context, in `scratch`.
fn compress_page(
    zstd: &mut zstd::bulk::Compressor<'static>,
    scratch: &mut Vec<u8>,
    page: Page,
) -> PolarsResult<CompressedPage> {
    let Page::Data(page) = page else {
        polars_bail!(ComputeError: "a dictionary page in a table written plain");
    };
    if !matches!(page.header(), DataPageHeader::V1(_)) {
        polars_bail!(ComputeError: "a version 2 data page in a table written as version 1");
    }
    let raw = page.buffer();
    // Compressed into the file's scratch buffer, then copied to a buffer of its size: the page is
    // held until its row group is written, and a buffer of the compression bound would hold (and
    // fault in) several times the memory the page needs.
    scratch.clear();
    scratch.reserve(zstd::zstd_safe::compress_bound(raw.len()));
    zstd.compress_to_buffer(raw, scratch).map_err(zstd_err)?;
    let out = scratch.clone();
    let rows = page
        .num_rows
        .ok_or_else(|| polars_err!(ComputeError: "a data page without its row count"))?;
    Ok(CompressedPage::Data(CompressedDataPage::new(
        page.header().clone(),
        CowBuffer::Owned(out),
        Compression::Zstd,
        raw.len(),
        page.descriptor.clone(),
        rows,
    )))
}

fn zstd_err(e: std::io::Error) -> PolarsError {
    polars_err!(ComputeError: "zstd: {e}")
}

/// Rows the event loop buffers before it hands a chunk of a table to the table's writer thread (and
/// rows of a CSV block). Small, so that a table is encoded and compressed on the second core while the
/// loop runs rather than after it: a 10,000-request run's batch log (about 50,000 rows) would otherwise
/// be written whole after the loop ends. The row groups of the files are [`ROW_GROUP_ROWS`] whatever
/// this is.
pub const CHUNK_ROWS: usize = 1 << 12;

/// A file written on a background thread from the chunks sent to it: at most two chunks wait, so
/// memory stays bounded if the disk is slower than the sender, and the thread's work (encoding,
/// compression) runs beside the sender's.
struct WriterThread<T: Send + 'static> {
    path: PathBuf,
    tx: Option<std::sync::mpsc::SyncSender<T>>,
    worker: Option<std::thread::JoinHandle<Result<()>>>,
}

impl<T: Send + 'static> WriterThread<T> {
    /// Starts `work` on its own thread over the chunks that [`WriterThread::write`] sends, until
    /// [`WriterThread::finish`].
    fn spawn(
        path: &Path,
        work: impl FnOnce(std::sync::mpsc::Receiver<T>) -> Result<()> + Send + 'static,
    ) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<T>(2);
        WriterThread {
            path: path.to_path_buf(),
            tx: Some(tx),
            worker: Some(std::thread::spawn(move || work(rx))),
        }
    }

    fn write(&mut self, chunk: T) -> Result<()> {
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(chunk).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The writer stopped: its error says why.
            self.join().and(Err(Error::Internal(format!(
                "{}: writer stopped",
                self.path.display()
            ))))
        }
    }

    fn join(&mut self) -> Result<()> {
        self.tx.take();
        match self.worker.take() {
            Some(w) => w.join().map_err(|_| {
                Error::Internal(format!("{}: writer thread panicked", self.path.display()))
            })?,
            None => Ok(()),
        }
    }

    /// Tells the thread no more chunks come; [`WriterThread::finish`] waits for it.
    fn close(&mut self) {
        self.tx.take();
    }

    fn finish(mut self) -> Result<()> {
        self.join()
    }
}

/// A Parquet file written chunk by chunk on a background thread, so a table never has to be held
/// whole in memory and compression runs beside the event loop rather than inside it. Chunks arrive as
/// `T` (the columns a sink collects) and become frames on the writer's thread, so the loop only moves
/// vectors.
pub struct ParquetStream<T: Send + 'static = DataFrame> {
    out: WriterThread<T>,
}

impl ParquetStream<DataFrame> {
    /// Starts the file at `path` for frames with `schema`; `meta` goes into its footer as key-value
    /// metadata.
    pub fn create(path: &Path, schema: &Schema, meta: Vec<(String, String)>) -> Result<Self> {
        ParquetStream::create_with(path, schema, meta, Ok)
    }
}

impl<T: Send + 'static> ParquetStream<T> {
    /// Like [`ParquetStream::create`], each chunk made a frame by `frame` on the writer's thread.
    pub fn create_with(
        path: &Path,
        schema: &Schema,
        meta: Vec<(String, String)>,
        frame: fn(T) -> Result<DataFrame>,
    ) -> Result<Self> {
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut writer =
            ParquetFile::new(std::io::BufWriter::new(f), schema).map_err(frame_err(path))?;
        let p = path.to_path_buf();
        let out = WriterThread::spawn(path, move |rx| {
            for chunk in rx {
                writer.write(&frame(chunk)?).map_err(frame_err(&p))?;
            }
            let mut f = writer.finish(&meta).map_err(frame_err(&p))?;
            f.flush().map_err(|e| Error::io(&p, e))
        });
        Ok(ParquetStream { out })
    }

    pub fn write(&mut self, chunk: T) -> Result<()> {
        self.out.write(chunk)
    }

    /// Tells the writer no more chunks come, so it finishes the file while the caller goes on.
    pub fn close(&mut self) {
        self.out.close()
    }

    pub fn finish(self) -> Result<()> {
        self.out.finish()
    }
}

/// A CSV file of frames with one schema, written on a background thread by Polars' serializer (on
/// that one thread: its pool's threads would each fault in fresh buffers for a table of this size).
/// The header is written here, before the first frame: Polars' CSV header makes an empty array,
/// which allocates and zeroes its 8 MiB of shared zeroes on first use.
struct CsvStream {
    out: WriterThread<DataFrame>,
}

impl CsvStream {
    fn create(path: &Path, schema: &Schema) -> Result<Self> {
        let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
        f.write_all(&csv_header(schema))
            .map_err(|e| Error::io(path, e))?;
        let mut csv = CsvWriter::new(f)
            .include_header(false)
            .n_threads(1)
            .batched(schema)
            .map_err(frame_err(path))?;
        let p = path.to_path_buf();
        let out = WriterThread::spawn(path, move |rx| {
            for df in rx {
                csv.write_batch(&df).map_err(frame_err(&p))?;
            }
            csv.finish().map_err(frame_err(&p))
        });
        Ok(CsvStream { out })
    }
}

/// Streams batch-stage rows to batches.parquet in chunks.
pub struct BatchesWriter {
    buf: BatchLog,
    out: ParquetStream<BatchLog>,
}

impl BatchesWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let schema = batches_frame(&BatchLog::default())?
            .schema()
            .as_ref()
            .clone();
        Ok(BatchesWriter {
            buf: BatchLog::with_capacity(CHUNK_ROWS),
            out: ParquetStream::create_with(path, &schema, Vec::new(), |b| batches_frame(&b))?,
        })
    }

    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            // The next chunk's buffers are made whole now: grown row by row they would be reallocated
            // (and their fresh pages faulted in) several times per chunk.
            let next = BatchLog::with_capacity(CHUNK_ROWS);
            self.out.write(std::mem::replace(&mut self.buf, next))?;
        }
        Ok(())
    }

    /// Sends the rows still held and tells the writer no more come: it finishes the file while the
    /// caller goes on (closing the other tables), and [`BatchesWriter::finish`] waits for it.
    pub fn close(&mut self) -> Result<()> {
        self.flush()?;
        self.out.close();
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.close()?;
        self.out.finish()
    }
}

impl BatchSink for BatchesWriter {
    fn push(&mut self, row: &BatchRow) -> Result<()> {
        self.buf.push(row)?;
        if self.buf.len() >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }
}

/// Rows of power.parquet as columns.
#[derive(Default)]
struct PowerCols {
    gpus: Vec<u32>,
    replica: Vec<u32>,
    stage: Vec<u32>,
    start_s: Vec<f64>,
    end_s: Vec<f64>,
    busy_s: Vec<f64>,
    host_s: Vec<f64>,
    idle_s: Vec<f64>,
    power_w: Vec<f64>,
    energy_j: Vec<f64>,
    idle_energy_j: Vec<f64>,
}

impl PowerCols {
    fn with_capacity(rows: usize) -> PowerCols {
        PowerCols {
            gpus: Vec::with_capacity(rows),
            replica: Vec::with_capacity(rows),
            stage: Vec::with_capacity(rows),
            start_s: Vec::with_capacity(rows),
            end_s: Vec::with_capacity(rows),
            busy_s: Vec::with_capacity(rows),
            host_s: Vec::with_capacity(rows),
            idle_s: Vec::with_capacity(rows),
            power_w: Vec::with_capacity(rows),
            energy_j: Vec::with_capacity(rows),
            idle_energy_j: Vec::with_capacity(rows),
        }
    }
}

/// The default width of a power.parquet interval, seconds: the period at which `nvidia-smi` and the
/// measurement protocol's NVML sampler log power, so a simulated and a measured log line up.
pub const DEFAULT_POWER_INTERVAL_S: f64 = 0.1;

/// Checks a `--power-interval` value: 0 (one row per segment) or from a microsecond to
/// [`crate::units::MAX_ARRIVAL_S`]; the error names the flag and the value.
pub fn check_power_interval(interval_s: f64) -> Result<f64> {
    let ok = interval_s == 0.0
        || (interval_s.is_finite() && (1e-6..=crate::units::MAX_ARRIVAL_S).contains(&interval_s));
    if ok {
        Ok(interval_s)
    } else {
        Err(Error::invalid(
            "--power-interval",
            "power_interval_s",
            interval_s,
            "must be 0 (one power.parquet row per busy, host or idle segment) or a width in seconds \
             from 1e-6 to 100 years",
        ))
    }
}

/// What one (replica, stage) group has drawn since its current row began.
#[derive(Debug, Clone, Copy, Default)]
struct Open {
    /// Start of the row being filled, ns.
    start: SimTime,
    /// Time covered so far in each state, ns.
    busy: SimTime,
    host: SimTime,
    idle: SimTime,
    /// Per-GPU energy so far, W x ns, all states and idle alone.
    w_ns: f64,
    idle_w_ns: f64,
}

impl Open {
    fn at(start: SimTime) -> Open {
        Open {
            start,
            ..Open::default()
        }
    }

    fn covered(&self) -> SimTime {
        self.busy + self.host + self.idle
    }
}

/// The state of a piece of a group's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Busy,
    Host,
    Idle,
    /// A run of decode steps, each GPU work then host wait: `gpu_ns` of GPU work in every `total_ns`,
    /// spread evenly (the steps are far shorter than an interval).
    Steps {
        gpu_ns: u64,
        total_ns: u64,
    },
}

/// Per-GPU power of each (replica, stage) group of identical GPUs (a pool's), streamed to power.parquet as
/// rows that tile the span without gaps, each group's rows in time order. With an interval `I > 0`
/// (`simulate --power-interval`, default [`DEFAULT_POWER_INTERVAL_S`]) the span is cut at multiples of
/// `I`: one row per interval in which the group worked, its mean power exact (the interval's energy
/// over its length), and one row for each run of whole intervals in which it only idled. With `I = 0`
/// every busy, host and idle segment is a row of its own. Either way the rows' energies add up to the
/// run's (docs/metrics.md).
pub struct PowerSegments {
    stages: u32,
    /// GPUs and idle power per GPU of each group (its pool's).
    gpus: Vec<u32>,
    idle_w: Vec<f64>,
    /// Interval width, ns (0: one row per segment).
    interval: SimTime,
    last_end: Vec<SimTime>,
    open: Vec<Open>,
    buf: PowerCols,
    out: ParquetStream<PowerCols>,
    /// [`PowerSegments::close`] has ended the timelines.
    closed: bool,
}

impl PowerSegments {
    /// `interval_s` must be 0 or at least a nanosecond (the command line checks it:
    /// [`check_power_interval`]). `idle_w` is the idle power per GPU of the scenario's replicas;
    /// `prefill_idle_w` that of the prefill pool when it has hardware of its own (default `idle_w`).
    pub fn create(
        path: &Path,
        s: &crate::config::Scenario,
        (idle_w, prefill_idle_w): (f64, Option<f64>),
        interval_s: f64,
    ) -> Result<Self> {
        let hw = &s.hardware;
        // The schema comes from an empty frame. One stream per file: a second stream opened on the
        // same path would race the first one's writer thread, which still writes its own (empty) file
        // into the same inode when dropped, and corrupt the table.
        let schema = Self::frame_of(PowerCols::default())?
            .schema()
            .as_ref()
            .clone();
        let groups = (hw.replicas * hw.pipeline_stages) as usize;
        let meta = vec![(
            "simwatt.power_interval_s".to_string(),
            format!("{interval_s}"),
        )];
        let out = ParquetStream::create_with(path, &schema, meta, Self::frame_of)?;
        let own = |r: u32| !std::ptr::eq(s.pool_of(r), s);
        let (mut gpus, mut idle) = (Vec::with_capacity(groups), Vec::with_capacity(groups));
        for r in 0..hw.replicas {
            for _ in 0..hw.pipeline_stages {
                gpus.push(s.pool_of(r).gpus_per_stage());
                idle.push(match own(r) {
                    true => prefill_idle_w.unwrap_or(idle_w),
                    false => idle_w,
                });
            }
        }
        Ok(PowerSegments {
            stages: hw.pipeline_stages,
            gpus,
            idle_w: idle,
            interval: crate::units::secs_to_ns(interval_s),
            last_end: vec![0; groups],
            open: vec![Open::default(); groups],
            buf: PowerCols::with_capacity(CHUNK_ROWS),
            out,
            closed: false,
        })
    }

    /// Writes group `g`'s open row, ending at its start plus what it covers, if it covers anything.
    fn emit(&mut self, g: usize) {
        let o = self.open[g];
        let len = o.covered();
        if len == 0 {
            return;
        }
        let b = &mut self.buf;
        let secs = |ns: SimTime| ns_to_secs(ns);
        let gpus = self.gpus[g] as f64;
        b.gpus.push(self.gpus[g]);
        b.replica.push(g as u32 / self.stages);
        b.stage.push(g as u32 % self.stages);
        b.start_s.push(secs(o.start));
        b.end_s.push(secs(o.start + len));
        b.busy_s.push(secs(o.busy));
        b.host_s.push(secs(o.host));
        b.idle_s.push(secs(o.idle));
        b.power_w.push(o.w_ns / len as f64);
        b.energy_j.push(o.w_ns * gpus * 1e-9);
        b.idle_energy_j.push(o.idle_w_ns * gpus * 1e-9);
        self.open[g] = Open::at(o.start + len);
    }

    /// Adds `[a, z)` at per-GPU power `w` in `state` to group `g`, whose open row ends at `a`.
    fn add(&mut self, g: usize, a: SimTime, z: SimTime, state: State, w: f64) {
        let mut t = a;
        while t < z {
            let o = &mut self.open[g];
            // Where the open row must end: the next multiple of the interval after its start, or,
            // one row per segment, at the end of this segment.
            let row_end = match o.start.checked_div(self.interval) {
                None => z,
                Some(k) => (k + 1).saturating_mul(self.interval),
            };
            // A whole number of idle intervals from a row's start is one row.
            let piece_end = if state == State::Idle && self.interval > 0 && o.covered() == 0 {
                let whole = (z - t) / self.interval;
                if whole > 0 {
                    row_end.saturating_add((whole - 1) * self.interval).min(z)
                } else {
                    z.min(row_end)
                }
            } else {
                z.min(row_end)
            };
            let d = piece_end - t;
            match state {
                State::Busy => o.busy += d,
                State::Host => o.host += d,
                State::Steps { gpu_ns, total_ns } => {
                    let busy = (d as u128 * gpu_ns as u128 / total_ns.max(1) as u128) as u64;
                    o.busy += busy;
                    o.host += d - busy;
                }
                State::Idle => {
                    o.idle += d;
                    o.idle_w_ns += w * d as f64;
                }
            }
            o.w_ns += w * d as f64;
            t = piece_end;
            if self.interval == 0 || t >= row_end {
                self.emit(g);
            }
        }
    }

    fn frame_of(b: PowerCols) -> Result<DataFrame> {
        frame(
            &POWER,
            vec![
                Column::new(PlSmallStr::EMPTY, b.replica),
                Column::new(PlSmallStr::EMPTY, b.stage),
                Column::new(PlSmallStr::EMPTY, b.gpus),
                Column::new(PlSmallStr::EMPTY, b.start_s),
                Column::new(PlSmallStr::EMPTY, b.end_s),
                Column::new(PlSmallStr::EMPTY, b.busy_s),
                Column::new(PlSmallStr::EMPTY, b.host_s),
                Column::new(PlSmallStr::EMPTY, b.idle_s),
                Column::new(PlSmallStr::EMPTY, b.power_w),
                Column::new(PlSmallStr::EMPTY, b.energy_j),
                Column::new(PlSmallStr::EMPTY, b.idle_energy_j),
            ],
        )
    }

    fn flush(&mut self) -> Result<()> {
        if !self.buf.replica.is_empty() {
            let next = PowerCols::with_capacity(CHUNK_ROWS);
            self.out.write(std::mem::replace(&mut self.buf, next))?;
        }
        Ok(())
    }

    /// Ends every group's timeline at `end_ns` (idle since its last stage), sends the rows still held
    /// and tells the writer no more come: it finishes the file while the caller goes on, and
    /// [`PowerSegments::finish`] waits for it.
    pub fn close(&mut self, end_ns: SimTime) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        for g in 0..self.last_end.len() {
            if end_ns > self.last_end[g] {
                let (a, w) = (self.last_end[g], self.idle_w[g]);
                self.add(g, a, end_ns, State::Idle, w);
            }
            self.emit(g);
        }
        self.flush()?;
        self.out.close();
        Ok(())
    }

    /// [`PowerSegments::close`] (once), then waits for the file to be written.
    pub fn finish(mut self, end_ns: SimTime) -> Result<()> {
        self.close(end_ns)?;
        self.out.finish()
    }
}

impl BatchSink for PowerSegments {
    fn push(&mut self, r: &BatchRow) -> Result<()> {
        let g = (r.replica * self.stages + r.stage) as usize;
        if r.start_ns > self.last_end[g] {
            let (a, w) = (self.last_end[g], self.idle_w[g]);
            self.add(g, a, r.start_ns, State::Idle, w);
        }
        let gpu_end = r.end_ns - r.host_ns;
        if r.steps > 1 {
            // A run of steps: its GPU work and host waits alternate step by step, at a mean power.
            let (total_ns, gpu_ns) = (r.end_ns - r.start_ns, gpu_end - r.start_ns);
            let w = if r.host_ns > 0 {
                (r.power_w * gpu_ns as f64 + r.host_power_w * r.host_ns as f64) / total_ns as f64
            } else {
                r.power_w
            };
            let state = State::Steps { gpu_ns, total_ns };
            self.add(g, r.start_ns, r.end_ns, state, w);
        } else {
            self.add(g, r.start_ns, gpu_end, State::Busy, r.power_w);
            if r.host_ns > 0 {
                self.add(g, gpu_end, r.end_ns, State::Host, r.host_power_w);
            }
        }
        self.last_end[g] = r.end_ns;
        if self.buf.replica.len() >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }
}

/// The files that hold a run's request table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFiles {
    /// requests.parquet and the same rows as requests.csv.
    ParquetAndCsv,
    /// requests.parquet alone (`simulate --no-csv`).
    ParquetOnly,
}

/// Whether a run writes requests.csv beside requests.parquet: always (`simulate --csv`), never
/// (`--no-csv`), or by default only up to [`CSV_DEFAULT_MAX_REQUESTS`] requests, where the CSV copy is
/// still a file people open (a million requests make 200 MB of it, most of a run folder's size, and
/// its writing time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvPolicy {
    Always,
    Never,
    Default,
}

/// Most requests for which requests.csv is written by default.
pub const CSV_DEFAULT_MAX_REQUESTS: usize = 100_000;

impl CsvPolicy {
    /// The files of a run of `requests` requests, and, when the default leaves the CSV out, a note
    /// saying so.
    pub fn files(self, requests: usize) -> (RequestFiles, Option<String>) {
        match self {
            CsvPolicy::Always => (RequestFiles::ParquetAndCsv, None),
            CsvPolicy::Never => (RequestFiles::ParquetOnly, None),
            CsvPolicy::Default if requests <= CSV_DEFAULT_MAX_REQUESTS => {
                (RequestFiles::ParquetAndCsv, None)
            }
            CsvPolicy::Default => (
                RequestFiles::ParquetOnly,
                Some(format!(
                    "requests.csv not written: {requests} requests is more than \
                     {CSV_DEFAULT_MAX_REQUESTS} (requests.parquet holds the same table; --csv writes it)"
                )),
            ),
        }
    }
}

/// Writes the request table to requests.parquet (and requests.csv, as `files` says) in chunks.
pub fn write_requests(dir: &Path, files: RequestFiles, rows: &[RequestRow]) -> Result<()> {
    let mut w = RequestsWriter::create(dir, files)?;
    for r in rows {
        w.push(r.clone())?;
    }
    w.finish()
}

/// The header line of a CSV file of `schema`, as Polars writes it: the column names, comma-separated, a
/// name quoted (its quotes doubled) only if it holds a comma, a quote or a line break.
fn csv_header(schema: &Schema) -> Vec<u8> {
    let names: Vec<String> = schema
        .iter_names()
        .map(|n| {
            if n.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", n.replace('"', "\"\""))
            } else {
                n.to_string()
            }
        })
        .collect();
    format!("{}\n", names.join(",")).into_bytes()
}

/// requests.parquet (and requests.csv, as `files` says) written from rows pushed in order: each
/// [`CHUNK_ROWS`] rows go to a background thread, which makes them a frame, hands it to requests.csv's
/// own writer thread and writes it to requests.parquet. So a run whose request rows are final when
/// each request finishes writes its request table beside the event loop, and the loop only moves rows.
pub struct RequestsWriter {
    buf: Vec<RequestRow>,
    out: WriterThread<Vec<RequestRow>>,
}

impl RequestsWriter {
    /// Starts the files of `files` in the folder `dir`.
    pub fn create(dir: &Path, files: RequestFiles) -> Result<Self> {
        let pq_path = dir.join("requests.parquet");
        let schema = requests_frame(&[])?.schema().as_ref().clone();
        let f = File::create(&pq_path).map_err(|e| Error::io(&pq_path, e))?;
        let mut pq =
            ParquetFile::new(std::io::BufWriter::new(f), &schema).map_err(frame_err(&pq_path))?;
        let mut csv = match files {
            RequestFiles::ParquetAndCsv => {
                Some(CsvStream::create(&dir.join("requests.csv"), &schema)?)
            }
            RequestFiles::ParquetOnly => None,
        };
        let p = pq_path.clone();
        let out = WriterThread::spawn(
            &pq_path,
            move |rx: std::sync::mpsc::Receiver<Vec<RequestRow>>| {
                for rows in rx {
                    let df = requests_frame(&rows)?;
                    if let Some(csv) = csv.as_mut() {
                        csv.out.write(df.clone())?;
                    }
                    pq.write(&df).map_err(frame_err(&p))?;
                }
                if let Some(csv) = csv {
                    csv.out.finish()?;
                }
                let mut f = pq.finish(&[]).map_err(frame_err(&p))?;
                f.flush().map_err(|e| Error::io(&p, e))
            },
        );
        Ok(RequestsWriter {
            buf: Vec::with_capacity(CHUNK_ROWS),
            out,
        })
    }

    /// Appends the next row.
    pub fn push(&mut self, row: RequestRow) -> Result<()> {
        self.buf.push(row);
        if self.buf.len() >= CHUNK_ROWS {
            let next = Vec::with_capacity(CHUNK_ROWS);
            self.out.write(std::mem::replace(&mut self.buf, next))?;
        }
        Ok(())
    }

    /// Sends the rows still held and tells the writer no more come: it finishes the files while the
    /// caller goes on, and [`RequestsWriter::finish`] waits for it.
    pub fn close(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.out.write(std::mem::take(&mut self.buf))?;
        }
        self.out.close();
        Ok(())
    }

    /// Writes the rows still held and closes the files.
    pub fn finish(mut self) -> Result<()> {
        self.close()?;
        self.out.finish()
    }
}

/// Finished requests kept on disk until the run's energy is known, so a long run need not hold them
/// in memory: fixed-size little-endian records in a scratch file of the run's staging folder, read
/// back in order by [`SpillReader`] and removed when it is dropped.
pub struct RequestSpill {
    path: PathBuf,
    w: std::io::BufWriter<File>,
    n: u64,
}

const SPILL_RECORD: usize = 109;
const NONE_NS: u64 = u64::MAX;

fn phase_code(p: Phase) -> Result<u8> {
    Ok(match p {
        Phase::Completed => 0,
        Phase::Rejected(RejectReason::KvCapacity) => 1,
        Phase::Rejected(RejectReason::TokenBudget) => 2,
        Phase::Rejected(RejectReason::ContextLength) => 3,
        other => return Err(Error::Internal(format!("request spilled while {other:?}"))),
    })
}

fn phase_of(code: u8) -> Result<Phase> {
    Ok(match code {
        0 => Phase::Completed,
        1 => Phase::Rejected(RejectReason::KvCapacity),
        2 => Phase::Rejected(RejectReason::TokenBudget),
        3 => Phase::Rejected(RejectReason::ContextLength),
        c => return Err(Error::Internal(format!("request spill: phase code {c}"))),
    })
}

impl RequestSpill {
    pub fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(RequestSpill {
            path: path.to_path_buf(),
            w: std::io::BufWriter::with_capacity(1 << 20, f),
            n: 0,
        })
    }

    /// Appends finished request `id`.
    pub fn push(&mut self, id: u32, r: &Request) -> Result<()> {
        use std::io::Write;
        let mut rec = [0u8; SPILL_RECORD];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            rec[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&id.to_le_bytes());
        put(&r.arrival_ns.to_le_bytes());
        put(&r.prompt_tokens.to_le_bytes());
        put(&r.output_tokens.to_le_bytes());
        put(&r.replica.to_le_bytes());
        put(&r.prefill_replica.to_le_bytes());
        put(&[phase_code(r.phase)?]);
        put(&r.preemptions.to_le_bytes());
        put(&r.cached_tokens.to_le_bytes());
        put(&r.session.to_le_bytes());
        put(&r.turn.to_le_bytes());
        for t in [r.scheduled_ns, r.first_token_ns, r.completion_ns] {
            put(&t.unwrap_or(NONE_NS).to_le_bytes());
        }
        put(&r.tbt_max_ns.to_le_bytes());
        put(&r.prefill_energy_j.to_le_bytes());
        put(&r.decode_energy_j.to_le_bytes());
        put(&r.held_ns.to_le_bytes());
        put(&r.deadline_ns.unwrap_or(NONE_NS).to_le_bytes());
        debug_assert_eq!(at, SPILL_RECORD);
        self.w
            .write_all(&rec)
            .map_err(|e| Error::io(&self.path, e))?;
        self.n += 1;
        Ok(())
    }

    /// Closes the file and opens it for reading from the start.
    pub fn finish(self) -> Result<SpillReader> {
        let RequestSpill { path, w, n } = self;
        w.into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(SpillReader {
            r: std::io::BufReader::with_capacity(1 << 20, f),
            path,
            left: n,
        })
    }
}

/// Reads a [`RequestSpill`] back; removes the file when dropped.
pub struct SpillReader {
    path: PathBuf,
    r: std::io::BufReader<File>,
    left: u64,
}

impl SpillReader {
    /// Up to `max` requests (id, request), in the order they were spilled; empty at the end.
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<(u32, Request)>> {
        use std::io::Read;
        let n = (self.left as usize).min(max);
        let mut out = Vec::with_capacity(n);
        let mut rec = [0u8; SPILL_RECORD];
        for _ in 0..n {
            self.r
                .read_exact(&mut rec)
                .map_err(|e| Error::io(&self.path, e))?;
            let mut at = 0;
            let mut take = |k: usize| {
                let s = &rec[at..at + k];
                at += k;
                s
            };
            let u32_ = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
            let u64_ = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
            let id = u32_(take(4));
            let arrival = u64_(take(8));
            let prompt = u32_(take(4));
            let output = u32_(take(4));
            let mut r = Request::new(arrival, prompt, output);
            r.replica = u32_(take(4));
            r.prefill_replica = u32_(take(4));
            r.phase = phase_of(take(1)[0])?;
            r.preemptions = u32_(take(4));
            r.cached_tokens = u32_(take(4));
            r.session = u32_(take(4));
            r.turn = u32_(take(4));
            let opt = |v: u64| (v != NONE_NS).then_some(v);
            r.scheduled_ns = opt(u64_(take(8)));
            r.first_token_ns = opt(u64_(take(8)));
            r.completion_ns = opt(u64_(take(8)));
            r.tbt_max_ns = u64_(take(8));
            r.prefill_energy_j = f64::from_bits(u64_(take(8)));
            r.decode_energy_j = f64::from_bits(u64_(take(8)));
            r.held_ns = u64_(take(8));
            r.deadline_ns = opt(u64_(take(8)));
            out.push((id, r));
        }
        self.left -= n as u64;
        Ok(out)
    }
}

impl Drop for SpillReader {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of `sizes` rows, one after another: an integer, a float and a string column, every value
    /// distinct to its row.
    fn frames(sizes: &[usize]) -> Vec<DataFrame> {
        let mut start = 0u64;
        sizes
            .iter()
            .map(|&n| {
                let ids: Vec<u64> = (start..start + n as u64).collect();
                start += n as u64;
                df!(
                    "id" => ids.clone(),
                    "x" => ids.iter().map(|&i| i as f64 * 0.25).collect::<Vec<_>>(),
                    "s" => ids.iter().map(|i| format!("r{}", i % 7)).collect::<Vec<_>>()
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn parquet_row_groups_hold_row_group_rows_whatever_the_frames_written() {
        // Chunks smaller than a row group, one that straddles two, one larger than two, an empty one.
        let sizes = [
            CHUNK_ROWS,
            1,
            ROW_GROUP_ROWS - 3,
            0,
            2 * ROW_GROUP_ROWS + 17,
            5,
        ];
        let parts = frames(&sizes);
        let mut w = ParquetFile::new(Vec::new(), parts[0].schema()).unwrap();
        for f in &parts {
            w.write(f).unwrap();
        }
        let bytes = w.finish(&[]).unwrap();
        let mut reader = ParquetReader::new(std::io::Cursor::new(bytes));
        let groups: Vec<usize> = reader
            .get_metadata()
            .unwrap()
            .row_groups
            .iter()
            .map(|g| g.num_rows())
            .collect();
        let total: usize = sizes.iter().sum();
        let full = total / ROW_GROUP_ROWS;
        let mut want = vec![ROW_GROUP_ROWS; full];
        want.push(total - full * ROW_GROUP_ROWS);
        assert_eq!(groups, want);
        // The rows read back are the rows written, in order.
        let back = reader.finish().unwrap();
        let mut whole = parts[0].clone();
        for f in &parts[1..] {
            whole.vstack_mut(f).unwrap();
        }
        assert!(back.equals(&whole), "{back:?}");
    }

    /// `n` request rows, every value distinct to its row, some columns null on some rows.
    fn request_rows(n: usize) -> Vec<RequestRow> {
        (0..n)
            .map(|i| {
                let t = i as f64 * 0.125;
                RequestRow {
                    request_id: i as u64,
                    arrival_s: t,
                    prompt_tokens: 512 + (i % 1536) as u32,
                    output_tokens: 128 + (i % 384) as u32,
                    replica: (i % 3) as u32,
                    prefill_replica: (i % 5 == 0).then_some(1),
                    status: if i % 97 == 0 {
                        "rejected_kv_capacity"
                    } else {
                        "completed"
                    },
                    scheduled_s: Some(t + 0.01),
                    first_token_s: (i % 97 != 0).then_some(t + 0.1),
                    completion_s: (i % 97 != 0).then_some(t + 2.0),
                    ttft_s: (i % 97 != 0).then_some(0.1),
                    e2e_s: (i % 97 != 0).then_some(2.0),
                    tpot_s: Some(0.02 + i as f64 * 1e-7),
                    itl_max_s: Some(0.05),
                    preemptions: (i % 11) as u32,
                    cached_tokens: (i % 13) as u32,
                    session: None,
                    turn: None,
                    slo_met: Some(i % 2 == 0),
                    held_s: None,
                    deadline_s: None,
                    deadline_met: None,
                    energy_j: Some(1.5 + i as f64),
                    prefill_energy_j: Some(0.5),
                    decode_energy_j: Some(1.0 + i as f64),
                    carbon_g: Some((1.5 + i as f64) * 1e-4),
                }
            })
            .collect()
    }

    #[test]
    fn request_rows_pushed_one_by_one_read_back_as_the_table_written_whole() {
        // More rows than two chunks, so that the writer hands on full chunks and a partial last one.
        let rows = request_rows(2 * CHUNK_ROWS + 37);
        let dir = tempfile::tempdir().unwrap();
        let mut w = RequestsWriter::create(dir.path(), RequestFiles::ParquetAndCsv).unwrap();
        for r in &rows {
            w.push(r.clone()).unwrap();
        }
        w.finish().unwrap();
        let whole = requests_frame(&rows).unwrap();
        let f = File::open(dir.path().join("requests.parquet")).unwrap();
        let back = ParquetReader::new(f).finish().unwrap();
        assert!(back.equals_missing(&whole), "{back:?}");
        // The CSV is the whole table as Polars writes it in one go.
        let mut expected = Vec::new();
        CsvWriter::new(&mut expected)
            .include_header(true)
            .finish(&mut whole.clone())
            .unwrap();
        let csv = std::fs::read(dir.path().join("requests.csv")).unwrap();
        assert_eq!(csv.len(), expected.len());
        assert!(
            csv == expected,
            "requests.csv differs from the table written whole"
        );
        // Only the CSV asked for is written.
        let only = tempfile::tempdir().unwrap();
        let mut w = RequestsWriter::create(only.path(), RequestFiles::ParquetOnly).unwrap();
        w.push(rows[0].clone()).unwrap();
        w.finish().unwrap();
        assert!(only.path().join("requests.parquet").exists());
        assert!(!only.path().join("requests.csv").exists());
    }

    #[test]
    fn a_nested_column_written_in_chunks_reads_back_whole() {
        // A list column (definition and repetition levels on its one leaf) beside flat ones, with
        // nulls, over several chunks and a row-group boundary.
        let part = |start: usize, n: usize| {
            let lists: Vec<Series> = (start..start + n)
                .map(|i| Series::new(PlSmallStr::EMPTY, vec![i as i64; i % 4]))
                .collect();
            let xs: Vec<Option<f64>> = (start..start + n)
                .map(|i| (i % 5 != 0).then_some(i as f64))
                .collect();
            df!("l" => lists, "x" => xs).unwrap()
        };
        let sizes = [3, ROW_GROUP_ROWS - 1, 10];
        let mut start = 0;
        let parts: Vec<DataFrame> = sizes
            .iter()
            .map(|&n| {
                start += n;
                part(start - n, n)
            })
            .collect();
        let mut w = ParquetFile::new(Vec::new(), parts[0].schema()).unwrap();
        for f in &parts {
            w.write(f).unwrap();
        }
        let bytes = w.finish(&[]).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        let mut whole = parts[0].clone();
        for f in &parts[1..] {
            whole.vstack_mut(f).unwrap();
        }
        assert!(back.equals_missing(&whole), "{back:?}");
    }

    #[test]
    fn the_requests_csv_header_is_the_one_polars_writes() {
        let df = df!(
            "request_id" => [1u64],
            "a,b" => [1.5f64],
            "say \"hi\"" => ["x"],
            "line\nbreak" => [true]
        )
        .unwrap();
        let mut polars_csv = Vec::new();
        CsvWriter::new(&mut polars_csv)
            .finish(&mut df.clone())
            .unwrap();
        let header_end = polars_csv.len() - "1,1.5,x,true\n".len();
        assert_eq!(
            String::from_utf8(csv_header(df.schema())).unwrap(),
            String::from_utf8(polars_csv[..header_end].to_vec()).unwrap()
        );
    }

    #[test]
    fn requests_csv_by_default_only_up_to_the_limit_and_as_asked_otherwise() {
        let n = CSV_DEFAULT_MAX_REQUESTS;
        assert_eq!(
            CsvPolicy::Default.files(n),
            (RequestFiles::ParquetAndCsv, None)
        );
        let (files, note) = CsvPolicy::Default.files(n + 1);
        assert_eq!(files, RequestFiles::ParquetOnly);
        assert!(note.unwrap().contains("--csv"));
        assert_eq!(
            CsvPolicy::Always.files(10 * n).0,
            RequestFiles::ParquetAndCsv
        );
        assert_eq!(CsvPolicy::Never.files(1), (RequestFiles::ParquetOnly, None));
    }

    /// Group 0 of a one-replica, one-stage run: rows pushed through [`PowerSegments::add`] at a 1 s
    /// interval cut at every second, merge whole idle seconds, and keep the energy.
    #[test]
    fn power_intervals_cut_at_the_grid_and_merge_whole_idle_intervals() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::load(std::path::Path::new("experiments/quickstart.yaml"), &[]);
        let Ok(raw) = cfg else {
            panic!("experiments/quickstart.yaml is part of the repository")
        };
        let catalogs = crate::catalog::Catalogs::new().unwrap();
        let mut s = crate::config::Scenario::resolve(
            &catalogs,
            std::path::Path::new("experiments/quickstart.yaml"),
            raw,
        )
        .unwrap();
        s.hardware.replicas = 1;
        let path = dir.path().join("power.parquet");
        let mut p = PowerSegments::create(&path, &s, (50.0, None), 1.0).unwrap();
        let sec = 1_000_000_000u64;
        // Busy 0.5-1.5 s at 300 W, then idle until 4.25 s, busy to 4.5 s at 200 W.
        p.add(0, 0, sec / 2, State::Idle, 50.0);
        p.add(0, sec / 2, 3 * sec / 2, State::Busy, 300.0);
        p.add(0, 3 * sec / 2, 17 * sec / 4, State::Idle, 50.0);
        p.add(0, 17 * sec / 4, 9 * sec / 2, State::Busy, 200.0);
        p.emit(0);
        let b = &p.buf;
        assert_eq!(b.start_s, vec![0.0, 1.0, 2.0, 4.0]);
        assert_eq!(b.end_s, vec![1.0, 2.0, 4.0, 4.5]);
        assert_eq!(b.power_w, vec![175.0, 175.0, 50.0, 125.0]);
        assert_eq!(b.idle_s, vec![0.5, 0.5, 2.0, 0.25]);
        assert_eq!(b.busy_s, vec![0.5, 0.5, 0.0, 0.25]);
        let energy: f64 = b.energy_j.iter().sum();
        let want = 0.5 * 50.0 + 300.0 + 2.75 * 50.0 + 0.25 * 200.0;
        assert!((energy - want).abs() < 1e-9, "{energy} vs {want}");
    }
}
