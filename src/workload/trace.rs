//! Request traces, read in the layouts their publishers release them in.
//!
//! Input: the trace file of a workload and its [`TraceFormat`]. Output: the rows a run uses, each with
//! its arrival time in seconds, its prompt and output lengths and (Mooncake) its prompt-block hash
//! ids. Formats and what is read from each:
//!
//! - `vidur`: CSV `arrived_at` (seconds, used as they are), `num_prefill_tokens`, `num_decode_tokens`.
//! - `azure`: the Azure LLM inference traces 2023 and 2024, CSV `TIMESTAMP` (a UTC date and time,
//!   `2023-11-16 18:15:46.6805900`; 2024: `2024-05-12 00:00:00.001163+00:00`), `ContextTokens`,
//!   `GeneratedTokens`.
//! - `burstgpt`: CSV `Timestamp` (seconds), `Model`, `Request tokens`, `Response tokens`.
//! - `mooncake`: JSON lines with `timestamp` (milliseconds), `input_length`, `output_length` and
//!   `hash_ids`, one id per 512-token block of the prompt (`ceil(input_length / 512)` of them).
//!
//! Times of the published formats (all but `vidur`) are taken relative to the first row used, so the
//! first request arrives at 0. Times must not decrease from row to row, every prompt needs at least
//! one token, and so does every output: a row with 0 output tokens (a failed request in BurstGPT) is
//! an error naming it, unless `workload.trace_skip_failed` leaves such rows out. `workload.trace_model`
//! keeps only the BurstGPT rows of one model. Every error names the file, the column or field, the
//! row (data rows from 1, header excluded; JSON lines by line number) and the value.

use crate::config::{TraceFormat, WorkloadConfig};
use crate::csvio::CsvTable;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Tokens per block of a Mooncake trace's `hash_ids`.
pub const MOONCAKE_BLOCK_TOKENS: u32 = 512;

/// The rows of a trace a run uses (after `trace_skip_failed` and `trace_model`), in file order.
pub(super) struct Trace {
    /// Arrival times, seconds (published formats: relative to the first row used).
    pub arrivals_s: Option<Vec<f64>>,
    /// Prompt and output tokens.
    pub lengths: Option<Vec<(u32, u32)>>,
    /// Mooncake only: each row's prompt-block hash ids.
    pub block_hashes: Option<Vec<Vec<u64>>>,
    /// The file row (1-based, header excluded; JSON lines: line number) of each row used.
    pub file_rows: Vec<usize>,
    /// The column arrival times come from, for errors.
    pub time_column: &'static str,
}

impl Trace {
    pub fn rows(&self) -> usize {
        self.file_rows.len()
    }
}

/// All rows of a trace file as read, before rows are left out.
struct Rows {
    /// Times in the file's unit converted to seconds (Azure: since the first row).
    times_s: Option<Vec<f64>>,
    prompts: Option<Vec<u32>>,
    /// Output tokens, 0 allowed here (checked in [`select`]).
    outputs: Option<Vec<u32>>,
    models: Option<Vec<String>>,
    block_hashes: Option<Vec<Vec<u64>>>,
    /// File row of each entry.
    file_rows: Vec<usize>,
    time_column: &'static str,
    output_column: &'static str,
    /// Whether times are shifted so the first row used arrives at 0.
    relative: bool,
}

/// Reads the trace of `w` (which must name one), with arrivals and/or lengths as needed.
pub(super) fn read(w: &WorkloadConfig, need_arrivals: bool, need_lengths: bool) -> Result<Trace> {
    let path = w
        .trace
        .as_deref()
        .ok_or_else(|| Error::Internal("workload.trace unset".into()))?;
    // Rows are left out by their output tokens, so those are read whenever failed rows are skipped.
    let need_outputs = need_lengths || w.trace_skip_failed;
    let rows = match w.trace_format {
        TraceFormat::Vidur => read_vidur(path, need_arrivals, need_lengths, need_outputs)?,
        TraceFormat::Azure => read_azure(path)?,
        TraceFormat::Burstgpt => read_burstgpt(path, w.trace_model.is_some())?,
        TraceFormat::Mooncake => read_mooncake(path)?,
    };
    select(path, w, rows, need_arrivals, need_lengths)
}

/// Checks times and outputs, leaves out the rows the config asks to, and shifts published times to
/// start at 0.
fn select(
    path: &Path,
    w: &WorkloadConfig,
    rows: Rows,
    need_arrivals: bool,
    need_lengths: bool,
) -> Result<Trace> {
    let column_err = |column: &str, row: usize, message: String| Error::Column {
        path: path.to_path_buf(),
        column: column.to_string(),
        row: Some(row),
        message,
    };
    if let Some(t) = &rows.times_s {
        for (i, w) in t.windows(2).enumerate() {
            if w[1] < w[0] {
                return Err(column_err(
                    rows.time_column,
                    rows.file_rows[i + 1],
                    format!(
                        "arrival times must not decrease, but {} follows {}",
                        w[1], w[0]
                    ),
                ));
            }
        }
        if let Some((i, v)) = t.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(column_err(
                rows.time_column,
                rows.file_rows[i],
                format!("{v} is negative"),
            ));
        }
    }
    let mut keep: Vec<usize> = Vec::with_capacity(rows.file_rows.len());
    for i in 0..rows.file_rows.len() {
        if let Some(o) = &rows.outputs {
            if o[i] == 0 {
                if w.trace_skip_failed {
                    continue;
                }
                return Err(column_err(
                    rows.output_column,
                    rows.file_rows[i],
                    "0 output tokens (BurstGPT logs a failed request so); a simulated request needs at least 1 output token: set workload.trace_skip_failed: true to leave such rows out".into(),
                ));
            }
        }
        if let (Some(m), Some(want)) = (&rows.models, &w.trace_model) {
            if m[i] != *want {
                continue;
            }
        }
        keep.push(i);
    }
    if keep.is_empty() {
        let why = match (&w.trace_model, w.trace_skip_failed) {
            (Some(m), true) => format!(
                "no row is left once rows of other models than `{m}` (workload.trace_model) and rows with 0 output tokens (workload.trace_skip_failed) are left out"
            ),
            (Some(m), false) => format!(
                "no row has Model `{m}` (workload.trace_model){}",
                models_seen(rows.models.as_deref())
            ),
            (None, _) => "no row is left once rows with 0 output tokens (workload.trace_skip_failed) are left out".into(),
        };
        return Err(Error::Csv {
            path: path.to_path_buf(),
            message: why,
        });
    }
    let arrivals_s = match (&rows.times_s, need_arrivals) {
        (Some(t), true) => {
            let t0 = if rows.relative { t[keep[0]] } else { 0.0 };
            Some(keep.iter().map(|&i| t[i] - t0).collect())
        }
        _ => None,
    };
    let lengths = match (&rows.prompts, &rows.outputs, need_lengths) {
        (Some(p), Some(o), true) => Some(keep.iter().map(|&i| (p[i], o[i])).collect()),
        _ => None,
    };
    let block_hashes = rows
        .block_hashes
        .map(|h| keep.iter().map(|&i| h[i].clone()).collect());
    Ok(Trace {
        arrivals_s,
        lengths,
        block_hashes,
        file_rows: keep.iter().map(|&i| rows.file_rows[i]).collect(),
        time_column: rows.time_column,
    })
}

/// The distinct values of a BurstGPT `Model` column, for an error that names none of them.
fn models_seen(models: Option<&[String]>) -> String {
    let Some(models) = models else {
        return String::new();
    };
    let mut seen: Vec<&str> = Vec::new();
    for m in models {
        if !seen.contains(&m.as_str()) {
            seen.push(m);
            if seen.len() > 20 {
                break;
            }
        }
    }
    format!("; the trace has: {}", seen.join(", "))
}

fn read_vidur(
    path: &Path,
    need_arrivals: bool,
    need_lengths: bool,
    need_outputs: bool,
) -> Result<Rows> {
    let t = CsvTable::read(path)?;
    let times_s = if need_arrivals {
        Some(t.f64_column("arrived_at")?)
    } else {
        None
    };
    let prompts = if need_lengths {
        Some(t.u32_column("num_prefill_tokens", 1)?)
    } else {
        None
    };
    let outputs = if need_outputs {
        Some(t.u32_column("num_decode_tokens", 0)?)
    } else {
        None
    };
    Ok(Rows {
        times_s,
        prompts,
        outputs,
        models: None,
        block_hashes: None,
        file_rows: (1..=t.rows()).collect(),
        time_column: "arrived_at",
        output_column: "num_decode_tokens",
        relative: false,
    })
}

fn read_azure(path: &Path) -> Result<Rows> {
    let t = CsvTable::read(path)?;
    let stamps = t.text_values("TIMESTAMP")?;
    let mut ns = Vec::with_capacity(stamps.len());
    for (i, s) in stamps.iter().enumerate() {
        ns.push(azure_timestamp_ns(s).ok_or_else(|| Error::Column {
            path: path.to_path_buf(),
            column: "TIMESTAMP".into(),
            row: Some(i + 1),
            message: format!(
                "`{s}` is not a date and time as the Azure LLM inference traces write them (2023: `2023-11-16 18:15:46.6805900`; 2024: `2024-05-12 00:00:00.001163+00:00`)"
            ),
        })?);
    }
    // Seconds since the first row, from integer nanoseconds (exact over the traces' days).
    let t0 = ns[0];
    let times_s = ns
        .iter()
        .map(|&n| (n as i128 - t0 as i128) as f64 / 1e9)
        .collect();
    Ok(Rows {
        times_s: Some(times_s),
        prompts: Some(t.u32_column("ContextTokens", 1)?),
        outputs: Some(t.u32_column("GeneratedTokens", 0)?),
        models: None,
        block_hashes: None,
        file_rows: (1..=t.rows()).collect(),
        time_column: "TIMESTAMP",
        output_column: "GeneratedTokens",
        relative: true,
    })
}

/// An Azure trace timestamp as nanoseconds since the Unix epoch: `YYYY-MM-DD HH:MM:SS`, an optional
/// fraction of up to 9 digits, and an optional UTC offset (`+00:00`) or `Z`; without one, UTC.
fn azure_timestamp_ns(s: &str) -> Option<i64> {
    let s = s.trim();
    // The date and time take 19 characters; an offset can only follow them.
    let tail = s.get(19..)?;
    if let Some(naive) = s.strip_suffix('Z') {
        let t = chrono::NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f").ok()?;
        return t.and_utc().timestamp_nanos_opt();
    }
    if tail.contains(['+', '-']) {
        let t = chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z").ok()?;
        return t.timestamp_nanos_opt();
    }
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    t.and_utc().timestamp_nanos_opt()
}

fn read_burstgpt(path: &Path, need_models: bool) -> Result<Rows> {
    let t = CsvTable::read(path)?;
    Ok(Rows {
        times_s: Some(t.f64_column("Timestamp")?),
        prompts: Some(t.u32_column("Request tokens", 1)?),
        outputs: Some(t.u32_column("Response tokens", 0)?),
        models: if need_models {
            Some(t.text_values("Model")?)
        } else {
            None
        },
        block_hashes: None,
        file_rows: (1..=t.rows()).collect(),
        time_column: "Timestamp",
        output_column: "Response tokens",
        relative: true,
    })
}

fn read_mooncake(path: &Path) -> Result<Rows> {
    crate::input::check_exists(path)?;
    let text = crate::input::read_text(path)?;
    let mut rows = MooncakeRows::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        rows.push(path, i + 1, line)?;
    }
    if rows.file_rows.is_empty() {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            message: "no requests: a Mooncake trace needs one JSON object per line".into(),
        });
    }
    Ok(Rows {
        times_s: Some(rows.times_ms.iter().map(|ms| ms / 1e3).collect()),
        prompts: Some(rows.prompts),
        outputs: Some(rows.outputs),
        models: None,
        block_hashes: Some(rows.hashes),
        file_rows: rows.file_rows,
        time_column: "timestamp",
        output_column: "output_length",
        relative: true,
    })
}

#[derive(Default)]
struct MooncakeRows {
    times_ms: Vec<f64>,
    prompts: Vec<u32>,
    outputs: Vec<u32>,
    hashes: Vec<Vec<u64>>,
    file_rows: Vec<usize>,
}

impl MooncakeRows {
    /// Parses line `line_no` (1-based) of `path`.
    fn push(&mut self, path: &Path, line_no: usize, line: &str) -> Result<()> {
        let path: PathBuf = path.to_path_buf();
        let err = |field: &str, message: String| Error::Column {
            path: path.clone(),
            column: field.to_string(),
            row: Some(line_no),
            message,
        };
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::Csv {
            path: path.clone(),
            message: format!("line {line_no}: not valid JSON: {e}"),
        })?;
        let obj = value.as_object().ok_or_else(|| Error::Csv {
            path: path.clone(),
            message: format!(
                "line {line_no}: {} is not a JSON object (a Mooncake trace has one request object per line)",
                shown(&value)
            ),
        })?;
        let field = |name: &str| {
            obj.get(name).ok_or_else(|| {
                err(
                    name,
                    format!(
                        "missing (the line has: {})",
                        obj.keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        };
        let whole = |name: &str, min: u64| -> Result<u64> {
            let v = field(name)?;
            match v.as_u64() {
                Some(n) if n >= min => Ok(n),
                _ => Err(err(
                    name,
                    format!("{} is not a whole number >= {min}", shown(v)),
                )),
            }
        };
        let ts = field("timestamp")?;
        let ms = match ts.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => x,
            _ => {
                return Err(err(
                    "timestamp",
                    format!(
                        "{} is not a time in milliseconds (a number >= 0)",
                        shown(ts)
                    ),
                ))
            }
        };
        let input = whole("input_length", 1)?;
        let output = whole("output_length", 0)?;
        let (Ok(input), Ok(output)) = (u32::try_from(input), u32::try_from(output)) else {
            return Err(err(
                "input_length",
                format!(
                    "{input} or output_length {output} exceeds {} tokens",
                    u32::MAX
                ),
            ));
        };
        let hv = field("hash_ids")?;
        let list = hv.as_array().ok_or_else(|| {
            err(
                "hash_ids",
                format!("{} is not a list of block hash ids", shown(hv)),
            )
        })?;
        let mut ids = Vec::with_capacity(list.len());
        for (k, h) in list.iter().enumerate() {
            ids.push(h.as_u64().ok_or_else(|| {
                err(
                    "hash_ids",
                    format!("entry {} is {}, not a whole number >= 0", k + 1, shown(h)),
                )
            })?);
        }
        let blocks = input.div_ceil(MOONCAKE_BLOCK_TOKENS) as usize;
        if ids.len() != blocks {
            return Err(err(
                "hash_ids",
                format!(
                    "has {} ids, but input_length {input} takes {blocks} blocks of {MOONCAKE_BLOCK_TOKENS} tokens (one id per block)",
                    ids.len()
                ),
            ));
        }
        self.times_ms.push(ms);
        self.prompts.push(input);
        self.outputs.push(output);
        self.hashes.push(ids);
        self.file_rows.push(line_no);
        Ok(())
    }
}

/// A JSON value as an error shows it, cut to a readable length.
fn shown(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_timestamps_of_2023_and_2024_parse_to_the_nanosecond() {
        let a = azure_timestamp_ns("2023-11-16 18:15:46.6805900").unwrap();
        let b = azure_timestamp_ns("2023-11-16 18:15:50.9951690").unwrap();
        assert_eq!(b - a, 4_314_579_000);
        let c = azure_timestamp_ns("2024-05-12 00:00:00.001163+00:00").unwrap();
        let d = azure_timestamp_ns("2024-05-12 00:00:00+00:00").unwrap();
        assert_eq!(c - d, 1_163_000);
        // An offset is honoured: 02:00 at +02:00 is midnight UTC.
        assert_eq!(azure_timestamp_ns("2024-05-12 02:00:00+02:00"), Some(d));
        assert_eq!(azure_timestamp_ns("2024-05-12 00:00:00Z"), Some(d));
        assert_eq!(azure_timestamp_ns("2024-05-12 00:00:00"), Some(d));
    }

    #[test]
    fn malformed_azure_timestamps_are_refused() {
        for s in [
            "",
            "2023-11-16",
            "yesterday",
            "2023-13-16 18:15:46.68",
            "2023-11-16 25:15:46",
            "1700000000.5",
            "2024-05-12 00:00:00+0x:00",
        ] {
            assert_eq!(azure_timestamp_ns(s), None, "{s}");
        }
    }
}
