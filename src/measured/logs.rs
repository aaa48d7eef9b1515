//! Measured power data, read as the tools write it: nvidia-smi CSV logs, the power logger of the vLLM
//! energy-measurement protocol, Intel RAPL energy counters, and the aggregate benchmark tables of
//! LLM-Inference-Bench (Argonne) and the ML.ENERGY leaderboard; and per-request logs (CSV, or the
//! result JSON of `vllm bench serve`).
//!
//! Input: CSV and JSON files. Output: time series as [`EnergyWindow`]s (the energy one reading stands for, over
//! the window it averages), or aggregate rows. Every malformed file (a missing column, time that does not
//! increase, a power column without a stated unit, NaN or text in a number cell) is an error that names
//! the file, the column and the row; nothing here panics on input.

use crate::csvio::CsvTable;
use crate::error::{Error, Result};
use crate::units::secs_to_ns;
use crate::workload::RequestSpec;
use std::path::{Path, PathBuf};

/// The energy drawn over one time window, as a power reading (or a pair of energy-counter readings)
/// measures it. Times are seconds on the log's own clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyWindow {
    pub start_s: f64,
    pub end_s: f64,
    pub energy_j: f64,
}

impl EnergyWindow {
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }

    /// Mean power over the window, watts.
    pub fn mean_w(&self) -> f64 {
        self.energy_j / self.duration_s()
    }
}

/// Which clock a log's times are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Seconds since 1970-01-01 UTC (an `epoch_s` column, `time.time()` of a logger).
    Epoch,
    /// A wall-clock date and time without a zone, as the writing host's local time (nvidia-smi's
    /// `timestamp`, the `date` of a `vllm bench serve` result), read here as if it were UTC. Nothing in
    /// the file says which zone it was; a run whose logs mix the two clocks needs the host's UTC
    /// offset ([`parse_utc_offset`]) to line them up.
    Local,
}

/// One device's power time series.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerTrace {
    pub path: PathBuf,
    /// The GPU index of an nvidia-smi log with an `index` column.
    pub device_index: Option<String>,
    /// The GPU's name as an nvidia-smi log with a `name` column prints it (`NVIDIA A100-SXM4-80GB`).
    pub device_name: Option<String>,
    /// The clock of the window times.
    pub clock: Clock,
    pub windows: Vec<EnergyWindow>,
}

/// Seconds east of UTC of an offset written `+HH:MM`, `-HH:MM`, `+HHMM`, `+HH`, optionally after
/// `UTC` (`UTC+05:30`), or `UTC` / `Z` alone for zero. `None` for anything else, including zone names
/// (`Europe/Berlin` has two offsets a year; give the one in effect when the log was written), and for
/// offsets beyond the +/-14 h that time zones use.
pub fn parse_utc_offset(text: &str) -> Option<f64> {
    let t = text.trim();
    let t = t
        .strip_prefix("UTC")
        .or_else(|| t.strip_prefix("utc"))
        .or_else(|| t.strip_prefix("GMT"))
        .unwrap_or(t);
    if t.is_empty() || t == "Z" || t == "z" {
        return Some(0.0);
    }
    let (sign, rest) = match t.as_bytes()[0] {
        b'+' => (1.0, &t[1..]),
        b'-' => (-1.0, &t[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    if h.is_empty() || h.len() > 2 || m.is_empty() || m.len() > 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if h > 14 || m > 59 || (h == 14 && m > 0) {
        return None;
    }
    Some(sign * (h * 3600 + m * 60) as f64)
}

/// An offset in seconds as `+HH:MM` (rounded to the minute).
pub fn format_utc_offset(seconds: f64) -> String {
    let m = (seconds / 60.0).round() as i64;
    let sign = if m < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60)
}

fn csv_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Checks that `times` strictly increase; the error names the column and the first row that does not.
pub(crate) fn check_increasing(
    t: &CsvTable,
    column: &str,
    rows: &[usize],
    times: &[f64],
) -> Result<()> {
    for i in 1..times.len() {
        if times[i] <= times[i - 1] {
            return Err(Error::Column {
                path: t.path.clone(),
                column: column.trim().to_string(),
                row: Some(rows[i] + 1),
                message: format!(
                    "time does not increase: {} after {} (row {}); a power log must be in time order",
                    times[i],
                    times[i - 1],
                    rows[i - 1] + 1
                ),
            });
        }
    }
    Ok(())
}

/// Turns power readings at `times` into energy windows. A reading averages the power over the
/// `averaging_s` seconds before it (the device's averaging window, e.g. 1 s for nvidia-smi's
/// `power.draw` on H100); without one, each reading stands for the interval since the previous reading
/// (the first, for the interval to the next).
pub fn windows_from_samples(
    times: &[f64],
    powers_w: &[f64],
    averaging_s: Option<f64>,
) -> Vec<EnergyWindow> {
    let n = times.len();
    (0..n)
        .map(|i| {
            let w = match averaging_s {
                Some(w) => w,
                None if i > 0 => times[i] - times[i - 1],
                None if n > 1 => times[1] - times[0],
                None => 1.0,
            };
            EnergyWindow {
                start_s: times[i] - w,
                end_s: times[i],
                energy_j: powers_w[i] * w,
            }
        })
        .collect()
}

/// Seconds since 1970-01-01 of a civil date and time read as UTC (nvidia-smi writes local time without
/// a zone, so the result is on the log's local clock).
pub(crate) fn civil_seconds(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: f64) -> f64 {
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + h * 3_600 + mi * 60) as f64 + s
}

/// Parses nvidia-smi's `YYYY/MM/DD HH:MM:SS.mmm` timestamp to seconds on the log's clock. The format
/// carries no zone (nvidia-smi writes the host's local time), so the result is on the [`Clock::Local`]
/// clock: the host's wall clock read as if it were UTC.
pub fn parse_nvidia_smi_timestamp(cell: &str) -> Option<f64> {
    let (date, time) = cell.trim().split_once(' ')?;
    let d: Vec<&str> = date.split(['/', '-']).collect();
    let t: Vec<&str> = time.trim().split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (y, mo, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (h, mi) = (num(t[0])?, num(t[1])?);
    let s: f64 = t[2].parse().ok()?;
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0.0..61.0).contains(&s)
    {
        return None;
    }
    Some(civil_seconds(y, mo, day, h, mi, s))
}

/// Scale from the unit in a header such as `power.draw [W]` to watts.
fn power_unit_scale(unit: &str) -> Option<f64> {
    match unit {
        "W" => Some(1.0),
        "mW" => Some(1e-3),
        "kW" => Some(1e3),
        _ => None,
    }
}

/// Reads an nvidia-smi log written by `nvidia-smi --query-gpu=timestamp,power.draw,... --format=csv`
/// (with or without `nounits`), one trace per GPU `index` when the log has that column.
///
/// Time comes from an `epoch_s` column (seconds) when there is one, else from `timestamp` (nvidia-smi's
/// local `YYYY/MM/DD HH:MM:SS.mmm`). Power comes from `power.draw [W]` (or `power.draw.average`,
/// `power.draw.instant`); the header must state the unit, as nvidia-smi's does.
pub fn read_nvidia_smi(path: &Path, averaging_s: Option<f64>) -> Result<Vec<PowerTrace>> {
    let t = CsvTable::read(path)?;
    let power_col = [
        "power.draw [",
        "power.draw.average",
        "power.draw.instant",
        "power.draw",
    ]
    .iter()
    .find_map(|p| t.find_column_prefix(p))
    .ok_or_else(|| t.missing_column("power.draw", ""))?;
    let name = power_col.trim();
    let unit = name
        .split_once('[')
        .and_then(|(_, u)| u.strip_suffix(']'))
        .map(str::trim);
    let Some(unit) = unit else {
        return Err(Error::Column {
            path: t.path.clone(),
            column: name.to_string(),
            row: None,
            message:
                "the header states no unit; nvidia-smi writes `power.draw [W]` (keep the header \
                      nvidia-smi printed, or name the unit in brackets)"
                    .into(),
        });
    };
    let scale = power_unit_scale(unit).ok_or_else(|| Error::Column {
        path: t.path.clone(),
        column: name.to_string(),
        row: None,
        message: format!("unit `{unit}` is not a power unit (W, mW or kW)"),
    })?;
    let power: Vec<f64> = t
        .f64_column_unit(&power_col, unit)?
        .into_iter()
        .map(|p| p * scale)
        .collect();
    if let Some((i, p)) = power.iter().enumerate().find(|(_, p)| **p < 0.0) {
        return Err(Error::Column {
            path: t.path.clone(),
            column: name.to_string(),
            row: Some(i + 1),
            message: format!("negative power {p} W"),
        });
    }
    let (time_col, times, clock) = if let Some(c) = t.find_column(&["epoch_s"]) {
        let v = t.f64_column(&c)?;
        (c, v, Clock::Epoch)
    } else if let Some(c) = t.find_column(&["timestamp", "timestamp_local"]) {
        let cells = t.text_values(&c)?;
        let mut v = Vec::with_capacity(cells.len());
        for (i, cell) in cells.iter().enumerate() {
            v.push(
                parse_nvidia_smi_timestamp(cell).ok_or_else(|| Error::Column {
                    path: t.path.clone(),
                    column: c.trim().to_string(),
                    row: Some(i + 1),
                    message: format!(
                        "`{cell}` is not an nvidia-smi timestamp (YYYY/MM/DD HH:MM:SS.mmm)"
                    ),
                })?,
            );
        }
        (c, v, Clock::Local)
    } else {
        return Err(t.missing_column("timestamp", " (or epoch_s)"));
    };
    let index = match t.find_column(&["index"]) {
        Some(c) => t.text_values(&c)?,
        None => vec![String::new(); t.rows()],
    };
    let names = match t.find_column(&["name"]) {
        Some(c) => Some(t.text_values(&c)?),
        None => None,
    };
    let mut ids: Vec<String> = index.clone();
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let rows: Vec<usize> = (0..t.rows()).filter(|&r| index[r] == id).collect();
        let device_name = names
            .as_ref()
            .and_then(|n| rows.first().map(|&r| n[r].trim().to_string()))
            .filter(|n| !n.is_empty());
        let ts: Vec<f64> = rows.iter().map(|&r| times[r]).collect();
        let ps: Vec<f64> = rows.iter().map(|&r| power[r]).collect();
        check_increasing(&t, &time_col, &rows, &ts)?;
        out.push(PowerTrace {
            path: t.path.clone(),
            device_index: (!id.is_empty()).then_some(id),
            device_name,
            clock,
            windows: windows_from_samples(&ts, &ps, averaging_s),
        });
    }
    Ok(out)
}

/// Reads the power logger CSV of the vLLM energy-measurement protocol: columns `time` (seconds),
/// `power_W`, `gpu_util`, `mem_used_bytes` (only time and power are used).
pub fn read_vllm_power_log(path: &Path, averaging_s: Option<f64>) -> Result<PowerTrace> {
    let t = CsvTable::read(path)?;
    let time_col = t.require_column(&["time"], " (seconds)")?;
    let power_col = t.require_column(&["power_W"], "")?;
    let times = t.f64_column(&time_col)?;
    let power = t.f64_column(&power_col)?;
    if let Some((i, p)) = power.iter().enumerate().find(|(_, p)| **p < 0.0) {
        return Err(Error::Column {
            path: t.path.clone(),
            column: "power_W".into(),
            row: Some(i + 1),
            message: format!("negative power {p} W"),
        });
    }
    let rows: Vec<usize> = (0..times.len()).collect();
    check_increasing(&t, &time_col, &rows, &times)?;
    Ok(PowerTrace {
        path: t.path.clone(),
        device_index: None,
        device_name: None,
        clock: Clock::Epoch,
        windows: windows_from_samples(&times, &power, averaging_s),
    })
}

/// Reads Intel RAPL package-energy counter readings (as sampled from
/// `/sys/class/powercap/intel-rapl:N/energy_uj`): a time column `time_s` (or `time`, seconds) and the
/// counter `energy_uj` (microjoules) or `energy_j` (joules). The counter wraps at
/// `max_energy_range_uj` (a column, or `max_range_uj` here); a decrease without one is an error. Each
/// pair of consecutive readings is one window with exactly the energy the counter measured.
pub fn read_rapl(path: &Path, max_range_uj: Option<f64>) -> Result<PowerTrace> {
    let t = CsvTable::read(path)?;
    let time_col = t.require_column(&["time_s", "time"], " (seconds)")?;
    let (energy_col, scale) = if let Some(c) = t.find_column(&["energy_uj"]) {
        (c, 1e-6)
    } else if let Some(c) = t.find_column(&["energy_j"]) {
        (c, 1.0)
    } else {
        return Err(t.missing_column("energy_uj", " (or energy_j)"));
    };
    let times = t.f64_column(&time_col)?;
    let energy = t.f64_column(&energy_col)?;
    let range_uj = match t.find_column(&["max_energy_range_uj"]) {
        Some(c) => Some(t.f64_column(&c)?[0]),
        None => max_range_uj,
    };
    if t.rows() < 2 {
        return Err(csv_err(
            &t.path,
            "a RAPL log needs at least two counter readings",
        ));
    }
    let rows: Vec<usize> = (0..times.len()).collect();
    check_increasing(&t, &time_col, &rows, &times)?;
    let mut windows = Vec::with_capacity(times.len() - 1);
    for i in 1..times.len() {
        let mut d = energy[i] - energy[i - 1];
        if d < 0.0 {
            match range_uj {
                Some(r) if scale == 1e-6 => d += r,
                Some(r) => d += r * 1e-6,
                None => {
                    return Err(Error::Column {
                        path: t.path.clone(),
                        column: energy_col.trim().to_string(),
                        row: Some(i + 1),
                        message: format!(
                            "the counter went down ({} after {}) and no max_energy_range_uj is known to \
                             unwrap it",
                            energy[i],
                            energy[i - 1]
                        ),
                    })
                }
            }
        }
        windows.push(EnergyWindow {
            start_s: times[i - 1],
            end_s: times[i],
            energy_j: d * scale,
        });
    }
    Ok(PowerTrace {
        path: t.path.clone(),
        device_index: None,
        device_name: None,
        clock: Clock::Epoch,
        windows,
    })
}

/// One row of LLM-Inference-Bench's power table (`Plots/Fig_16_a_b/power_results.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArgonneRow {
    /// 1-based data row in the file.
    pub row: usize,
    pub hardware: String,
    pub num_gpus: u32,
    pub framework: String,
    pub model: String,
    /// Input length = output length, tokens.
    pub length: u32,
    pub batch_size: u32,
    /// Wall time of one `generate` call, seconds.
    pub latency_s: f64,
    /// Mean NVML power of GPU 0 from 1 s before to 1 s after a `generate` call, watts.
    pub avg_power_w: f64,
}

/// Reads LLM-Inference-Bench's power table as published: columns `Hardware`, `Num of Hardware`,
/// `Framework`, `Model`, `Input Output Length`, `Batch Size`, `Latency` (s), `avg_power`. The header
/// gives no unit for `avg_power`; the benchmark's `power_utils.py` averages `nvmlDeviceGetPowerUsage`,
/// which is in milliwatts, so values are read as mW (and a value outside 1 W..5 kW is an error, which
/// catches a file already converted to watts). Blank lines are skipped.
pub fn read_argonne(path: &Path) -> Result<Vec<ArgonneRow>> {
    let t = CsvTable::read(path)?;
    let need = [
        "Hardware",
        "Num of Hardware",
        "Framework",
        "Model",
        "Input Output Length",
        "Batch Size",
        "Latency",
        "avg_power",
    ];
    let mut cols = Vec::new();
    for n in need {
        let c = t.require_column(&[n], "")?;
        cols.push(t.text_values(&c)?);
    }
    let mut out = Vec::new();
    for r in 0..t.rows() {
        if cols.iter().all(|c| c[r].is_empty()) {
            continue;
        }
        let num = |k: usize| -> Result<f64> {
            let cell = &cols[k][r];
            let bad = |m: String| Error::Column {
                path: t.path.clone(),
                column: need[k].into(),
                row: Some(r + 1),
                message: m,
            };
            let v: f64 = cell
                .parse()
                .map_err(|_| bad(format!("`{cell}` is not a number")))?;
            if !v.is_finite() || v <= 0.0 {
                return Err(bad(format!("`{cell}` is not a finite number > 0")));
            }
            Ok(v)
        };
        let whole = |k: usize| -> Result<u32> {
            let v = num(k)?;
            if v.fract() != 0.0 {
                return Err(Error::Column {
                    path: t.path.clone(),
                    column: need[k].into(),
                    row: Some(r + 1),
                    message: format!("{v} is not a whole number"),
                });
            }
            Ok(v as u32)
        };
        let mw = num(7)?;
        if !(1e3..=5e6).contains(&mw) {
            return Err(Error::Column {
                path: t.path.clone(),
                column: "avg_power".into(),
                row: Some(r + 1),
                message: format!(
                    "{mw} is not a plausible GPU power in milliwatts (the unit of the upstream table)"
                ),
            });
        }
        out.push(ArgonneRow {
            row: r + 1,
            hardware: cols[0][r].clone(),
            num_gpus: whole(1)?,
            framework: cols[2][r].clone(),
            model: cols[3][r].clone(),
            length: whole(4)?,
            batch_size: whole(5)?,
            latency_s: num(6)?,
            avg_power_w: mw / 1e3,
        });
    }
    if out.is_empty() {
        return Err(csv_err(&t.path, "no data rows"));
    }
    Ok(out)
}

/// One run of the ML.ENERGY leaderboard v2 (`mlenergy_v2_llm_configurations.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct MlEnergyRow {
    pub row: usize,
    pub task: String,
    pub gpu: String,
    pub model: String,
    pub tp: u32,
    pub pp: u32,
    pub max_num_seqs: u32,
    /// GPU energy per request over all GPUs, joules.
    pub energy_per_request_j: f64,
    /// Output tokens per second in the steady-state window.
    pub token_tput: f64,
    pub avg_output_tokens: f64,
    pub avg_batch: f64,
    /// Mean over steady-state iterations of each iteration's time per output token, seconds (when the
    /// table has `Avg TPOT (s)`).
    pub avg_tpot_s: Option<f64>,
}

impl MlEnergyRow {
    /// Energy per output token over all GPUs, joules.
    pub fn j_per_token(&self) -> f64 {
        self.energy_per_request_j / self.avg_output_tokens
    }

    /// Mean power per GPU over the steady-state window, watts.
    pub fn mean_w_per_gpu(&self) -> f64 {
        self.j_per_token() * self.token_tput / (self.tp * self.pp) as f64
    }
}

/// Reads the ML.ENERGY leaderboard's flattened run table: columns `task`, `GPU`, `Model`, `TP`, `PP`,
/// `max_num_seqs`, `Energy/req (J)`, `Token tput (tok/s)`, `Avg Output Tokens`, `Avg BS (reqs)`, and
/// `Avg TPOT (s)` when present.
pub fn read_mlenergy(path: &Path) -> Result<Vec<MlEnergyRow>> {
    let t = CsvTable::read(path)?;
    let text = |n: &str| -> Result<Vec<String>> {
        let c = t.require_column(&[n], "")?;
        t.text_values(&c)
    };
    let num = |n: &str| -> Result<Vec<f64>> {
        let c = t.require_column(&[n], "")?;
        let v = t.f64_column(&c)?;
        if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| **x <= 0.0) {
            return Err(Error::Column {
                path: t.path.clone(),
                column: n.into(),
                row: Some(i + 1),
                message: format!("{x} is not > 0"),
            });
        }
        Ok(v)
    };
    let whole = |n: &str| -> Result<Vec<u32>> {
        let c = t.require_column(&[n], "")?;
        t.u32_column(&c, 1)
    };
    let (task, gpu, model) = (text("task")?, text("GPU")?, text("Model")?);
    let (tp, pp, mns) = (whole("TP")?, whole("PP")?, whole("max_num_seqs")?);
    let (e, tput, out_tok, bs) = (
        num("Energy/req (J)")?,
        num("Token tput (tok/s)")?,
        num("Avg Output Tokens")?,
        num("Avg BS (reqs)")?,
    );
    let tpot = match t.find_column(&["Avg TPOT (s)"]) {
        Some(_) => Some(num("Avg TPOT (s)")?),
        None => None,
    };
    Ok((0..t.rows())
        .map(|r| MlEnergyRow {
            row: r + 1,
            task: task[r].clone(),
            gpu: gpu[r].clone(),
            model: model[r].clone(),
            tp: tp[r],
            pp: pp[r],
            max_num_seqs: mns[r],
            energy_per_request_j: e[r],
            token_tput: tput[r],
            avg_output_tokens: out_tok[r],
            avg_batch: bs[r],
            avg_tpot_s: tpot.as_ref().map(|v| v[r]),
        })
        .collect())
}

/// One request of a measured serving run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedRequest {
    /// Dispatch time on the run's clock, seconds.
    pub arrival_s: f64,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// Measured time to first token, seconds, when the log has it.
    pub ttft_s: Option<f64>,
    /// Measured end-to-end latency (dispatch to last token), seconds, when the log has it.
    pub e2e_s: Option<f64>,
}

/// The requests of a measured run as the simulator takes them: arrivals from the first dispatch (t = 0),
/// with the logged prompt and output lengths. Empty for an empty log.
pub fn request_specs(reqs: &[LoggedRequest]) -> Vec<RequestSpec> {
    let Some(t0) = reqs.first().map(|r| r.arrival_s) else {
        return Vec::new();
    };
    reqs.iter()
        .map(|q| RequestSpec {
            arrival_ns: secs_to_ns(q.arrival_s - t0),
            prompt_tokens: q.prompt_tokens,
            output_tokens: q.output_tokens,
            ..Default::default()
        })
        .collect()
}

/// Reads a per-request log, in one of three layouts:
/// - a benchmark client's columns (`request_timestamp_epoch_s`, `input_len_tokens`,
///   `output_len_tokens`, optionally `ttft_s` and `latency_s` or `e2e_s`);
/// - the vLLM energy-measurement protocol's request log (`timestamp`: dispatch time, seconds, on the
///   power log's clock; `prompt_tokens`, `completion_tokens`, `latency`: end-to-end seconds; optionally
///   `ttft`);
/// - simwatt's trace columns (`arrived_at`, `num_prefill_tokens`, `num_decode_tokens`).
///
/// Rows are sorted by arrival. A latency or TTFT that is negative, or a TTFT above the latency, is an
/// error naming the row.
pub fn read_request_log(path: &Path) -> Result<Vec<LoggedRequest>> {
    let t = CsvTable::read(path)?;
    let (names, ttft, e2e): ([&str; 3], &[&str], &[&str]) = if t
        .find_column(&["request_timestamp_epoch_s"])
        .is_some()
    {
        (
            [
                "request_timestamp_epoch_s",
                "input_len_tokens",
                "output_len_tokens",
            ],
            &["ttft_s"],
            &["latency_s", "e2e_s"],
        )
    } else if t.find_column(&["completion_tokens"]).is_some() {
        (
            ["timestamp", "prompt_tokens", "completion_tokens"],
            &["ttft", "ttft_s"],
            &["latency", "latency_s"],
        )
    } else if t.find_column(&["arrived_at"]).is_some() {
        (
            ["arrived_at", "num_prefill_tokens", "num_decode_tokens"],
            &[],
            &[],
        )
    } else {
        return Err(t.missing_column(
                "request_timestamp_epoch_s",
                " (or timestamp with prompt_tokens and completion_tokens, or arrived_at: a request log \
                 needs arrival times and lengths)",
            ));
    };
    let col = |n: &str| t.require_column(&[n], "");
    let arr = t.f64_column(&col(names[0])?)?;
    let p = t.u32_column(&col(names[1])?, 1)?;
    let o = t.u32_column(&col(names[2])?, 1)?;
    let optional = |alts: &[&str]| -> Result<Option<(String, Vec<f64>)>> {
        match t.find_column(alts) {
            Some(c) => {
                let v = t.f64_column(&c)?;
                if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| **x < 0.0) {
                    return Err(Error::Column {
                        path: t.path.clone(),
                        column: c.trim().to_string(),
                        row: Some(i + 1),
                        message: format!("{x} is negative; a latency is a duration in seconds"),
                    });
                }
                Ok(Some((c, v)))
            }
            None => Ok(None),
        }
    };
    let ttft = optional(ttft)?;
    let e2e = optional(e2e)?;
    if let (Some((tc, tv)), Some((_, ev))) = (&ttft, &e2e) {
        if let Some(i) = (0..tv.len()).find(|&i| tv[i] > ev[i] + 1e-9) {
            return Err(Error::Column {
                path: t.path.clone(),
                column: tc.trim().to_string(),
                row: Some(i + 1),
                message: format!(
                    "time to first token {} s is longer than the end-to-end latency {} s",
                    tv[i], ev[i]
                ),
            });
        }
    }
    let mut out: Vec<LoggedRequest> = (0..t.rows())
        .map(|r| LoggedRequest {
            arrival_s: arr[r],
            prompt_tokens: p[r],
            output_tokens: o[r],
            ttft_s: ttft.as_ref().map(|(_, v)| v[r]),
            e2e_s: e2e.as_ref().map(|(_, v)| v[r]),
        })
        .collect();
    out.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    Ok(out)
}

/// The request log of a `vllm bench serve --save-result --save-detailed` run (or of the older
/// `benchmarks/benchmark_serving.py`), read.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// The successful requests, by dispatch time, on the [`Clock::Local`] clock of the result's `date`.
    pub requests: Vec<LoggedRequest>,
    /// What was assumed in reading it (the dispatch clock, failed requests left out), for the report.
    pub notes: Vec<String>,
}

/// Whether a JSON value is a `vllm bench serve` result: an object with the benchmark's `duration`,
/// `completed` and `request_throughput` (or per-request `ttfts`). Told by content, whatever the file is
/// called.
pub fn is_vllm_bench_result(v: &serde_json::Value) -> bool {
    v.is_object()
        && v.get("duration").is_some()
        && v.get("completed").is_some()
        && (v.get("request_throughput").is_some() || v.get("ttfts").is_some())
}

/// Parses the `date` of a `vllm bench serve` result (`YYYYMMDD-HHMMSS`, the client host's local time
/// when it saved the file) to seconds on the [`Clock::Local`] clock.
pub fn parse_vllm_bench_date(cell: &str) -> Option<f64> {
    let (d, t) = cell.trim().split_once('-')?;
    if d.len() != 8 || t.len() != 6 || !(d.chars().chain(t.chars())).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |s: &str| s.parse::<i64>().ok();
    let (y, mo, day) = (n(&d[..4])?, n(&d[4..6])?, n(&d[6..])?);
    let (h, mi, sec) = (n(&t[..2])?, n(&t[2..4])?, n(&t[4..])?);
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..61).contains(&sec)
    {
        return None;
    }
    Some(civil_seconds(y, mo, day, h, mi, sec as f64))
}

/// Reads the result JSON that `vllm bench serve --save-result --save-detailed` writes (fields as in
/// vLLM's `vllm/benchmarks/serve.py`): per request `input_lens`, `output_lens`, `ttfts` (s), `itls`
/// (lists of s), and where the version writes them `latencies` (s), `start_times` and `errors`; for the
/// run `date`, `duration` (s), `request_rate` and `max_concurrency`.
///
/// Dispatch times: the file has no absolute per-request time. `start_times` (where present) are the
/// client's `perf_counter` at each dispatch, an arbitrary origin, so only their differences are used;
/// the run is placed on the clock of `date` (the client's local time when it saved the file, whole
/// seconds, after the benchmark ended and its metrics were computed) by taking `date - duration` as
/// the first dispatch, which puts the requests up to a second or two later than they were against a
/// power log. Without `start_times`, every request is taken to have been dispatched at that instant,
/// which is what the client does only with `request_rate` inf and no `max_concurrency`; any other
/// run without `start_times` is an error (its dispatch times are lost). Failed requests (a non-empty
/// `errors` entry, or no output) are left out and counted in the notes. End-to-end latency is
/// `latencies`, else TTFT plus the sum of `itls`.
pub fn read_vllm_bench_result(path: &Path) -> Result<BenchResult> {
    let text = crate::input::read_text(path)?;
    let bad = |m: String| csv_err(path, m);
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let v = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(bad(format!("not valid JSON: {e}"))),
        None => return Err(bad("empty file".into())),
    };
    let more = values.count();
    if more > 0 {
        return Err(bad(format!(
            "holds {} benchmark results (written with --append-result); a measured run's folder \
             needs the one result that its power logs cover",
            more + 1
        )));
    }
    let field_err = |field: &str, m: String| Error::Column {
        path: path.to_path_buf(),
        column: field.to_string(),
        row: None,
        message: m,
    };
    let row_err = |field: &str, i: usize, m: String| Error::Column {
        path: path.to_path_buf(),
        column: field.to_string(),
        row: Some(i + 1),
        message: m,
    };
    let num = |field: &str| -> Result<f64> {
        v.get(field)
            .and_then(serde_json::Value::as_f64)
            .filter(|x| x.is_finite())
            .ok_or_else(|| {
                field_err(
                    field,
                    format!(
                        "missing or not a number: {}",
                        v.get(field).unwrap_or(&"absent".into())
                    ),
                )
            })
    };
    let duration = num("duration")?;
    if duration <= 0.0 {
        return Err(field_err("duration", format!("{duration} is not > 0 s")));
    }
    let date = v
        .get("date")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| {
            field_err(
            "date",
            "missing: the result's save time (YYYYMMDD-HHMMSS) places its requests on the power \
             logs' clock"
                .into(),
        )
        })?;
    let saved = parse_vllm_bench_date(date)
        .ok_or_else(|| field_err("date", format!("`{date}` is not a date as YYYYMMDD-HHMMSS")))?;
    let per_request = ["input_lens", "output_lens", "ttfts"];
    if let Some(f) = per_request.iter().find(|f| v.get(**f).is_none()) {
        return Err(field_err(
            f,
            "missing: the file has the benchmark's summary but not its per-request fields \
             (input_lens, output_lens, ttfts, itls), which vllm bench serve writes only with \
             --save-detailed (run it with --save-result --save-detailed)"
                .into(),
        ));
    }
    let n = v["ttfts"].as_array().map_or(0, Vec::len);
    let list = |field: &str| -> Result<Option<&Vec<serde_json::Value>>> {
        match v.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Array(a)) if a.len() == n => Ok(Some(a)),
            Some(serde_json::Value::Array(a)) => Err(field_err(
                field,
                format!(
                    "{} entries, but `ttfts` has {n}: one entry per request",
                    a.len()
                ),
            )),
            Some(_) => Err(field_err(field, "not a list".into())),
        }
    };
    let nums = |field: &str| -> Result<Option<Vec<f64>>> {
        let Some(a) = list(field)? else {
            return Ok(None);
        };
        a.iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_f64()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| row_err(field, i, format!("{x} is not a number >= 0")))
            })
            .collect::<Result<Vec<f64>>>()
            .map(Some)
    };
    let input = nums("input_lens")?.unwrap_or_default();
    let output = nums("output_lens")?.unwrap_or_default();
    let ttft = nums("ttfts")?.unwrap_or_default();
    let latency = nums("latencies")?;
    let starts = nums("start_times")?;
    let itls = list("itls")?;
    let errors = list("errors")?;
    if n == 0 {
        return Err(field_err("ttfts", "no requests".into()));
    }
    if input.len() != n || output.len() != n {
        return Err(field_err(
            "input_lens",
            format!(
                "{} input and {} output lengths for {n} requests",
                input.len(),
                output.len()
            ),
        ));
    }
    let rate_inf = match v.get("request_rate") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::String(s)) => s == "inf",
        Some(x) => x.as_f64().is_some_and(f64::is_infinite),
    };
    let capped = v.get("max_concurrency").is_some_and(|c| !c.is_null());
    if starts.is_none() && (!rate_inf || capped) {
        return Err(field_err(
            "start_times",
            format!(
                "missing, and the run did not send every request at once (request_rate {}, \
                 max_concurrency {}): without start_times its dispatch times are lost; use a vLLM \
                 whose result has start_times (written with --save-detailed), or a request log with \
                 dispatch times",
                v.get("request_rate").unwrap_or(&"absent".into()),
                v.get("max_concurrency").unwrap_or(&"absent".into())
            ),
        ));
    }
    let first_start = starts
        .as_ref()
        .map_or(0.0, |s| s.iter().cloned().fold(f64::INFINITY, f64::min));
    let begin = saved - duration;
    let mut out = Vec::with_capacity(n);
    let mut failed = 0;
    for i in 0..n {
        let error = errors
            .and_then(|e| e[i].as_str())
            .is_some_and(|e| !e.is_empty());
        if error || output[i] < 1.0 {
            failed += 1;
            continue;
        }
        if input[i] < 1.0 || input[i].fract() != 0.0 || output[i].fract() != 0.0 {
            let f = if input[i] < 1.0 || input[i].fract() != 0.0 {
                "input_lens"
            } else {
                "output_lens"
            };
            return Err(row_err(f, i, "not a whole number of tokens >= 1".into()));
        }
        let itl_sum = match itls {
            Some(l) => match l[i].as_array() {
                Some(g) => Some(
                    g.iter()
                        .map(|x| x.as_f64().unwrap_or(f64::NAN))
                        .sum::<f64>(),
                ),
                None => return Err(row_err("itls", i, "not a list of seconds".into())),
            },
            None => None,
        };
        let e2e = match (&latency, itl_sum) {
            (Some(l), _) => Some(l[i]),
            (None, Some(s)) if s.is_finite() => Some(ttft[i] + s),
            (None, Some(_)) => return Err(row_err("itls", i, "an entry is not a number".into())),
            (None, None) => None,
        };
        if let Some(e) = e2e.filter(|e| ttft[i] > *e + 1e-9) {
            return Err(row_err(
                "ttfts",
                i,
                format!(
                    "time to first token {} s is longer than the latency {e} s",
                    ttft[i]
                ),
            ));
        }
        out.push(LoggedRequest {
            arrival_s: begin + starts.as_ref().map_or(0.0, |s| s[i] - first_start),
            prompt_tokens: input[i] as u32,
            output_tokens: output[i] as u32,
            ttft_s: Some(ttft[i]),
            e2e_s: e2e,
        });
    }
    if out.is_empty() {
        return Err(bad(format!("every one of its {n} requests failed")));
    }
    out.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    let mut notes = vec![format!(
        "requests from a vllm bench serve result ({}): the first dispatch placed at its `date` ({date}, \
         the client's local time when the file was saved, whole seconds) less its `duration` \
         ({duration:.3} s), so against the power log it may lie a second or two late; {}",
        path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(),
        if starts.is_some() {
            "dispatch times relative to it from `start_times`"
        } else {
            "no `start_times`: every request taken as dispatched at that instant (request_rate inf, \
             no max_concurrency)"
        }
    )];
    if failed > 0 {
        notes.push(format!(
            "{failed} of {n} requests failed in the measured run and are left out of the replay"
        ));
    }
    Ok(BenchResult {
        requests: out,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn nvidia_smi_log_with_units_in_cells_gives_one_trace_per_gpu() {
        let f = file(
            "timestamp, index, power.draw [W], utilization.gpu [%]\n\
             2024/05/01 10:00:00.000, 0, 100.00 W, 0 %\n\
             2024/05/01 10:00:00.000, 1, 50.00 W, 0 %\n\
             2024/05/01 10:00:00.500, 0, 300.00 W, 90 %\n\
             2024/05/01 10:00:00.500, 1, 60.00 W, 0 %\n",
        );
        let tr = read_nvidia_smi(f.path(), None).unwrap();
        assert_eq!(tr.len(), 2);
        assert_eq!(tr[0].device_index.as_deref(), Some("0"));
        let w = &tr[0].windows;
        assert_eq!(w.len(), 2);
        assert!((w[1].duration_s() - 0.5).abs() < 1e-9);
        assert!((w[1].energy_j - 150.0).abs() < 1e-9);
        assert!((w[1].mean_w() - 300.0).abs() < 1e-9);
        assert!((tr[1].windows[0].mean_w() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn nvidia_smi_timestamps_cross_midnight() {
        let a = parse_nvidia_smi_timestamp("2024/12/31 23:59:59.750").unwrap();
        let b = parse_nvidia_smi_timestamp("2025/01/01 00:00:00.250").unwrap();
        assert!((b - a - 0.5).abs() < 1e-6);
        assert_eq!(
            parse_nvidia_smi_timestamp("1970/01/01 00:00:01.000"),
            Some(1.0)
        );
        assert!(parse_nvidia_smi_timestamp("yesterday").is_none());
    }

    #[test]
    fn utc_offsets_parse_in_the_usual_spellings_and_zone_names_do_not() {
        assert_eq!(parse_utc_offset("+02:00"), Some(7200.0));
        assert_eq!(parse_utc_offset("-05:00"), Some(-18000.0));
        assert_eq!(parse_utc_offset("+0530"), Some(19800.0));
        assert_eq!(parse_utc_offset("UTC+5:45"), Some(20700.0));
        assert_eq!(parse_utc_offset("-3"), Some(-10800.0));
        assert_eq!(parse_utc_offset("UTC"), Some(0.0));
        assert_eq!(parse_utc_offset("Z"), Some(0.0));
        for bad in [
            "Europe/Berlin",
            "CET",
            "+15:00",
            "+02:60",
            "2",
            "+",
            "+1:2:3",
        ] {
            assert_eq!(parse_utc_offset(bad), None, "{bad}");
        }
        assert_eq!(format_utc_offset(-19800.0), "-05:30");
        assert_eq!(format_utc_offset(7200.0), "+02:00");
    }

    #[test]
    fn averaging_window_sets_the_window_length() {
        let w = windows_from_samples(&[1.0, 1.25], &[100.0, 200.0], Some(1.0));
        assert_eq!(w[1].start_s, 0.25);
        assert_eq!(w[1].energy_j, 200.0);
    }

    #[test]
    fn rapl_counter_unwraps_and_needs_a_range_to_do_so() {
        let f = file("time_s,energy_uj\n0,999000000\n1,1000000\n");
        let e = read_rapl(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("went down") && e.contains("row 2"), "{e}");
        let tr = read_rapl(f.path(), Some(1e9)).unwrap();
        assert!((tr.windows[0].energy_j - 2.0).abs() < 1e-9);
    }
}
