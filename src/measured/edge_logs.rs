//! Power logs of edge and desktop devices, read as their tools write them: tegrastats lines (Jetson),
//! INA3221 sysfs readings logged by a shell loop, Intel Power Gadget's PowerLog CSV, a PDU's outlet
//! power as `snmpget` prints it (or a `timestamp,outlet,power_w` CSV), and PowerAPI SmartWatts' CSV
//! power reports.
//!
//! Input: one log file and its [`LogOptions`] (which rails, outlets or target to read; the clock of a
//! log that carries none). Output: one [`PowerTrace`] per file, the selected rails, outlets or sockets
//! summed per reading; for tegrastats also the temperatures it printed ([`TegrastatsLog`]). Every
//! malformed file is an error that names the file and the line (or the column and row) and the value;
//! nothing here panics on input. It reads no other file and runs no simulation.
//!
//! Clocks: a log with epoch seconds (or ISO 8601 times with a zone) is on [`Clock::Epoch`]; tegrastats'
//! `MM-DD-YYYY HH:MM:SS` and Power Gadget's `System Time` are the host's local time without a zone
//! ([`Clock::Local`]), put on UTC by the run's `utc_offset` as nvidia-smi's timestamps are.

use super::logs::{civil_seconds, windows_from_samples, Clock, EnergyWindow, PowerTrace};
use crate::csvio::CsvTable;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What to read from a log and how to place a log that carries no clock of its own. Every field is
/// optional; a log that needs one it was not given is an error that says which.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogOptions {
    /// tegrastats and INA3221: the rails summed, by the name the log prints (`VDD_IN`), or for INA3221
    /// by channel number (`1`); default the board input rail (`VDD_IN`, `POM_5V_IN`). Power Gadget:
    /// the power domains summed over packages (`Processor`, `IA`, `GT`, `DRAM`); default `Processor`.
    #[serde(default)]
    pub rails: Vec<String>,
    /// PDU: the outlets summed (their SNMP index, or the CSV's `outlet`); default the only one logged.
    #[serde(default)]
    pub outlets: Vec<String>,
    /// SmartWatts: the report target read (`rapl`, `global`, a container or cgroup name); default the
    /// only one in the file.
    #[serde(default)]
    pub target: Option<String>,
    /// tegrastats without timestamps: its `--interval` in milliseconds (one line per interval).
    #[serde(default)]
    pub interval_ms: Option<f64>,
    /// When the log began, for logs whose lines do not say: tegrastats without timestamps (the time of
    /// the first line) and Power Gadget (whose `System Time` has no date; its date is read from here).
    /// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.fff]` (the host's local time) or epoch seconds.
    #[serde(default)]
    pub log_start: Option<String>,
}

/// The log formats read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeFormat {
    Tegrastats,
    Ina3221,
    PowerGadget,
    Pdu,
    Smartwatts,
}

impl EdgeFormat {
    /// The manifest's name of the format.
    pub fn name(self) -> &'static str {
        match self {
            EdgeFormat::Tegrastats => "tegrastats",
            EdgeFormat::Ina3221 => "ina3221",
            EdgeFormat::PowerGadget => "power_gadget",
            EdgeFormat::Pdu => "pdu",
            EdgeFormat::Smartwatts => "smartwatts",
        }
    }
}

/// Reads `path` as a log of `format`. `averaging_s` is the seconds each power reading averages over
/// (default: the interval since the previous reading).
pub fn read_edge_log(
    format: EdgeFormat,
    path: &Path,
    opts: &LogOptions,
    averaging_s: Option<f64>,
) -> Result<PowerTrace> {
    match format {
        EdgeFormat::Tegrastats => Ok(read_tegrastats(path, opts, averaging_s)?.trace),
        EdgeFormat::Ina3221 => read_ina3221(path, &opts.rails, averaging_s),
        EdgeFormat::PowerGadget => read_power_gadget(path, opts),
        EdgeFormat::Pdu => read_pdu(path, &opts.outlets, averaging_s),
        EdgeFormat::Smartwatts => read_smartwatts(path, opts.target.as_deref(), averaging_s),
    }
}

/// Which of these formats a file's text is, told by its content (the first non-blank line), not its
/// name; `None` for anything else.
pub fn detect(text: &str) -> Option<EdgeFormat> {
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let cells: Vec<String> = first
        .split(',')
        .map(|c| c.trim().trim_matches('"').trim().to_string())
        .collect();
    let has = |n: &str| cells.iter().any(|c| c == n);
    if first.split_whitespace().any(|t| t == "RAM")
        && first.split_whitespace().any(|t| t.contains('/'))
        && tegrastats_rails(first).is_ok_and(|r| !r.is_empty())
    {
        Some(EdgeFormat::Tegrastats)
    } else if has("System Time") && has("RDTSC") {
        Some(EdgeFormat::PowerGadget)
    } else if first.contains("OutletMeteredStatus") || (has("outlet") && has("power_w")) {
        Some(EdgeFormat::Pdu)
    } else if has("sensor") && has("target") && has("power") && has("timestamp") {
        Some(EdgeFormat::Smartwatts)
    } else if cells
        .iter()
        .any(|c| ina_channel(c, true).is_some() || ina_channel(c, false).is_some())
    {
        Some(EdgeFormat::Ina3221)
    } else {
        None
    }
}

fn line_err(path: &Path, line: usize, message: impl std::fmt::Display) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    }
}

/// A line as quoted in an error: at most 100 characters.
fn quoted(line: &str) -> String {
    let l = line.trim();
    if l.chars().count() > 100 {
        format!("`{}...`", l.chars().take(100).collect::<String>())
    } else {
        format!("`{l}`")
    }
}

/// A time on its clock: epoch seconds, or the host's local wall clock read as UTC.
fn parse_log_start(text: &str) -> Option<(f64, Clock)> {
    let t = text.trim();
    if let Ok(s) = t.parse::<f64>() {
        return s.is_finite().then_some((s, Clock::Epoch));
    }
    let (date, time) = match t.split_once([' ', 'T']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return None;
    }
    let day = civil_seconds(d[0], d[1], d[2], 0, 0, 0.0);
    match time {
        None => Some((day, Clock::Local)),
        Some(tm) => Some((day + time_of_day(tm)?, Clock::Local)),
    }
}

/// Seconds since midnight of `HH:MM:SS[.fff]`, or Power Gadget's `HH:MM:SS:mmm`.
fn time_of_day(text: &str) -> Option<f64> {
    let p: Vec<&str> = text.trim().split(':').collect();
    let (h, m, s) = match p.as_slice() {
        [h, m, s] => (*h, *m, s.to_string()),
        [h, m, s, ms] if ms.len() == 3 && ms.bytes().all(|b| b.is_ascii_digit()) => {
            (*h, *m, format!("{s}.{ms}"))
        }
        _ => return None,
    };
    let h: i64 = h.parse().ok()?;
    let m: i64 = m.parse().ok()?;
    let s: f64 = s.parse().ok()?;
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0.0..61.0).contains(&s) {
        return None;
    }
    Some((h * 3600 + m * 60) as f64 + s)
}

// ---------------------------------------------------------------------------------------------------
// tegrastats

/// A tegrastats log, read.
#[derive(Debug, Clone, PartialEq)]
pub struct TegrastatsLog {
    /// The selected rails' power, summed per line.
    pub trace: PowerTrace,
    /// The rails summed.
    pub rails: Vec<String>,
    /// Each temperature sensor the log printed (`gpu@45.5C`): (time on the trace's clock, degrees C).
    pub temperatures: BTreeMap<String, Vec<(f64, f64)>>,
}

/// Whether `name` looks like a power rail's name as tegrastats prints it (`VDD_IN`, `POM_5V_GPU`,
/// `GPU` on older Xavier boards): capitals, digits and underscores, starting with a capital.
fn rail_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Milliwatts of a rail reading `5123mW/4980mW` (instantaneous/average, JetPack 5 and later; JetPack 6.2
/// adds a third, the maximum) or `3456/3400` (older releases, milliwatts without a unit): the first,
/// instantaneous value. `None` when the token is not of that shape.
fn rail_value(token: &str) -> Option<f64> {
    let parts: Vec<&str> = token.split('/').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let mut first = None;
    for p in &parts {
        let digits = p.strip_suffix("mW").unwrap_or(p);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        first.get_or_insert(digits.parse::<f64>().ok()?);
    }
    first
}

/// The rails of one tegrastats line, in order, as (name, instantaneous mW). A token that names a
/// supply rail (`VDD_`, `POM_`, `VIN_`) followed by something that is not a reading is an error.
fn tegrastats_rails(line: &str) -> std::result::Result<Vec<(String, f64)>, String> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    let mut out = Vec::new();
    for w in toks.windows(2) {
        let (name, val) = (w[0], w[1]);
        if !rail_name(name) {
            continue;
        }
        match rail_value(val) {
            Some(mw) => out.push((name.to_string(), mw)),
            None if ["VDD_", "POM_", "VIN_"].iter().any(|p| name.starts_with(p)) => {
                return Err(format!(
                    "rail {name} reads `{val}`, not milliwatts as instantaneous/average \
                     (`5123mW/4980mW`, or `5123/4980` on older releases)"
                ))
            }
            None => {}
        }
    }
    Ok(out)
}

/// The temperatures of one tegrastats line (`cpu@46.5C`, or `cpu@46.5C/46.5C` with the maximum).
fn tegrastats_temperatures(line: &str) -> Vec<(String, f64)> {
    line.split_whitespace()
        .filter_map(|t| {
            let (name, v) = t.split_once('@')?;
            let v = v.split('/').next()?.strip_suffix('C')?;
            let c: f64 = v.parse().ok()?;
            (!name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && c.is_finite())
            .then(|| (name.to_string(), c))
        })
        .collect()
}

/// The `MM-DD-YYYY HH:MM:SS` that tegrastats (JetPack 5 and later) puts before each line, as seconds on
/// the host's local clock, and the rest of the line. `None` when the line does not start with one.
fn tegrastats_timestamp(line: &str) -> Option<(f64, &str)> {
    let line = line.trim_start();
    let (date, rest) = line.split_once(' ')?;
    let (time, rest) = rest.trim_start().split_once(' ')?;
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[2].len() != 4 || d[0].len() != 2 || d[1].len() != 2 {
        return None;
    }
    let n = |s: &str| s.parse::<i64>().ok();
    let (mo, day, y) = (n(d[0])?, n(d[1])?, n(d[2])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return None;
    }
    let tod = time_of_day(time)?;
    Some((civil_seconds(y, mo, day, 0, 0, 0.0) + tod, rest))
}

/// Reads a tegrastats log (`tegrastats --interval MS --logfile FILE`, or its standard output): one line
/// per interval, each with the rails' power in milliwatts (`VDD_IN 5123mW/4980mW`, instantaneous and
/// average; older releases `POM_5V_IN 3456/3400` without a unit). The instantaneous value of the
/// selected rails (`opts.rails`, default the board input `VDD_IN` or `POM_5V_IN`) is summed per line.
///
/// Time: the `MM-DD-YYYY HH:MM:SS` that JetPack 5 and later print before each line (the host's local
/// time); lines without one (older tegrastats) are `interval_ms` apart from `log_start`, which must then
/// be given. A line that is not a tegrastats line, lacks a selected rail, or mixes the two clocks is an
/// error naming it.
pub fn read_tegrastats(
    path: &Path,
    opts: &LogOptions,
    averaging_s: Option<f64>,
) -> Result<TegrastatsLog> {
    let text = crate::input::read_text(path)?;
    let mut stamped: Option<bool> = None;
    let mut times = Vec::new();
    let mut lines_no = Vec::new();
    let mut power = Vec::new();
    let mut temps: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut rails: Vec<String> = opts.rails.clone();
    let start = match &opts.log_start {
        Some(s) => Some(parse_log_start(s).ok_or_else(|| Error::Csv {
            path: path.to_path_buf(),
            message: format!(
                "log_start `{s}` is not a time (YYYY-MM-DD HH:MM:SS, local, or epoch seconds)"
            ),
        })?),
        None => None,
    };
    let mut clock = Clock::Local;
    for (i, raw) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let no = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let (t, body) = match tegrastats_timestamp(raw) {
            Some((t, rest)) => (Some(t), rest),
            None => (None, raw),
        };
        if !body.split_whitespace().any(|t| t == "RAM") {
            return Err(line_err(
                path,
                no,
                format!(
                    "{} is not a tegrastats line (no `RAM used/totalMB` field)",
                    quoted(raw)
                ),
            ));
        }
        match stamped {
            None => stamped = Some(t.is_some()),
            Some(s) if s != t.is_some() => {
                return Err(line_err(
                    path,
                    no,
                    format!(
                    "{} the first line: a log is either all stamped (MM-DD-YYYY HH:MM:SS) or not \
                         at all",
                    if s {
                        "has no timestamp, unlike"
                    } else {
                        "has a timestamp, unlike"
                    }
                ),
                ))
            }
            _ => {}
        }
        let found = tegrastats_rails(body).map_err(|m| line_err(path, no, m))?;
        if rails.is_empty() {
            let input = ["VDD_IN", "POM_5V_IN"]
                .into_iter()
                .find(|r| found.iter().any(|(n, _)| n == r));
            match input {
                Some(r) => rails.push(r.to_string()),
                None => {
                    return Err(line_err(
                        path,
                        no,
                        format!(
                        "no board input rail (VDD_IN or POM_5V_IN) to read by default; the log's \
                             rails are {}: name the ones to sum in `rails`",
                        if found.is_empty() {
                            "none".to_string()
                        } else {
                            found
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                    ))
                }
            }
        }
        let mut mw = 0.0;
        for r in &rails {
            match found.iter().find(|(n, _)| n == r) {
                Some((_, v)) => mw += v,
                None => {
                    return Err(line_err(
                        path,
                        no,
                        format!(
                            "no reading of rail {r} (the line has {})",
                            found
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
            }
        }
        let t = match t {
            Some(t) => t,
            None => {
                let (Some(ms), Some((t0, c))) = (opts.interval_ms, start) else {
                    return Err(line_err(
                        path,
                        no,
                        "the lines carry no timestamp (tegrastats before JetPack 5): give the \
                         `--interval` it ran with as `interval_ms` and the time of the first line as \
                         `log_start`",
                    ));
                };
                if !(ms.is_finite() && ms > 0.0) {
                    return Err(line_err(
                        path,
                        no,
                        format!("interval_ms {ms} is not a number of milliseconds > 0"),
                    ));
                }
                clock = c;
                t0 + times.len() as f64 * ms / 1e3
            }
        };
        if let Some(&prev) = times.last() {
            if t <= prev {
                return Err(line_err(
                    path,
                    no,
                    format!(
                        "time does not increase ({} after the line before); a power log must be in \
                         time order",
                        quoted(raw.get(..19).unwrap_or(raw))
                    ),
                ));
            }
        }
        for (name, c) in tegrastats_temperatures(body) {
            temps.entry(name).or_default().push((t, c));
        }
        times.push(t);
        lines_no.push(no);
        power.push(mw / 1e3);
    }
    if times.is_empty() {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            message: "no tegrastats lines".into(),
        });
    }
    Ok(TegrastatsLog {
        trace: PowerTrace {
            path: path.to_path_buf(),
            device_index: None,
            device_name: None,
            clock,
            windows: windows_from_samples(&times, &power, averaging_s),
        },
        rails,
        temperatures: temps,
    })
}

// ---------------------------------------------------------------------------------------------------
// INA3221

/// The channel of an INA3221 column named after its sysfs file: `inN_input` / `currN_input` (hwmon,
/// from 1) or `in_voltageN_input` / `in_currentN_input` (the older iio driver `ina3221x`, from 0).
fn ina_channel(column: &str, voltage: bool) -> Option<String> {
    let c = column.trim();
    let pre = if voltage {
        ["in_voltage", "in"]
    } else {
        ["in_current", "curr"]
    };
    pre.iter().find_map(|p| {
        let n = c.strip_prefix(p)?.strip_suffix("_input")?;
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.to_string())
    })
}

/// Reads INA3221 readings logged from sysfs (layout in docs/measurement.md): a `timestamp` column (epoch
/// seconds, `date +%s.%N`) and, per channel N, its bus voltage `inN_input` (mV) and current
/// `currN_input` (mA) as the hwmon files are named (or `in_voltageN_input`, `in_currentN_input` of the
/// older iio driver), optionally its label `inN_label` (`rail_name_N`). Power is voltage x current,
/// summed over the selected channels (`rails`: labels or channel numbers; default the one labelled
/// `VDD_IN` or `POM_5V_IN`, or the only channel).
pub fn read_ina3221(path: &Path, rails: &[String], averaging_s: Option<f64>) -> Result<PowerTrace> {
    let t = CsvTable::read(path)?;
    let time_col = t.require_column(&["timestamp", "time_s", "epoch_s"], " (epoch seconds)")?;
    // (channel, label, voltage column, current column)
    let mut channels: Vec<(String, Option<String>, String, String)> = Vec::new();
    for c in t.columns() {
        let Some(n) = ina_channel(&c, true) else {
            continue;
        };
        let cur = t
            .columns()
            .into_iter()
            .find(|d| ina_channel(d, false).as_deref() == Some(n.as_str()))
            .ok_or_else(|| {
                t.missing_column(
                    &format!("curr{n}_input"),
                    &format!(
                        " (the current of channel {n}, whose voltage `{}` is logged)",
                        c.trim()
                    ),
                )
            })?;
        let label = match t.find_column(&[&format!("in{n}_label"), &format!("rail_name_{n}")]) {
            Some(l) => t.text_values(&l)?.into_iter().next(),
            None => None,
        };
        channels.push((n, label, c, cur));
    }
    if channels.is_empty() {
        return Err(t.missing_column(
            "in1_input",
            " (an INA3221 log has a voltage inN_input and a current currN_input per channel)",
        ));
    }
    let names = || {
        channels
            .iter()
            .map(|(n, l, _, _)| match l {
                Some(l) => format!("{n} ({l})"),
                None => n.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let selected: Vec<usize> = if rails.is_empty() {
        let input = channels.iter().position(|(_, l, _, _)| {
            l.as_deref()
                .is_some_and(|l| l == "VDD_IN" || l == "POM_5V_IN")
        });
        match (input, channels.len()) {
            (Some(i), _) => vec![i],
            (None, 1) => vec![0],
            _ => {
                return Err(Error::Csv {
                    path: t.path.clone(),
                    message: format!(
                    "several channels ({}) and none labelled VDD_IN or POM_5V_IN: name the ones \
                         to sum in `rails`",
                    names()
                ),
                })
            }
        }
    } else {
        let mut v = Vec::new();
        for r in rails {
            let i = channels
                .iter()
                .position(|(n, l, _, _)| n == r || l.as_deref() == Some(r.as_str()))
                .ok_or_else(|| Error::Csv {
                    path: t.path.clone(),
                    message: format!("no channel `{r}` (the log has {})", names()),
                })?;
            v.push(i);
        }
        v
    };
    let times = t.f64_column(&time_col)?;
    let mut power = vec![0.0; t.rows()];
    for &i in &selected {
        let (_, _, vc, ic) = &channels[i];
        let mv = t.f64_column(vc)?;
        let ma = t.f64_column(ic)?;
        if let Some((r, v)) = mv.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(Error::Column {
                path: t.path.clone(),
                column: vc.trim().to_string(),
                row: Some(r + 1),
                message: format!("negative bus voltage {v} mV"),
            });
        }
        for ((p, v), i) in power.iter_mut().zip(&mv).zip(&ma) {
            *p += v * i / 1e6;
        }
    }
    if let Some((r, p)) = power.iter().enumerate().find(|(_, p)| **p < 0.0) {
        return Err(Error::Column {
            path: t.path.clone(),
            column: channels[selected[0]].3.trim().to_string(),
            row: Some(r + 1),
            message: format!("the selected channels draw a negative power {p} W"),
        });
    }
    let rows: Vec<usize> = (0..t.rows()).collect();
    super::logs::check_increasing(&t, &time_col, &rows, &times)?;
    Ok(PowerTrace {
        path: t.path.clone(),
        device_index: None,
        device_name: None,
        clock: Clock::Epoch,
        windows: windows_from_samples(&times, &power, averaging_s),
    })
}

// ---------------------------------------------------------------------------------------------------
// Intel Power Gadget

/// A column name with spaces dropped and lower case, so that `Cumulative Processor Energy_0(Joules)`
/// (macOS) and `Cumulative Processor Energy_0 (Joules)` compare equal.
fn squeeze(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// Reads Intel Power Gadget's PowerLog CSV (`PowerLog -resolution MS -file FILE`, or the GUI's log):
/// columns `System Time` (`HH:MM:SS:mmm`, local), `RDTSC`, `Elapsed Time (sec)`, and per package N
/// `Cumulative <Domain> Energy_N(Joules)` and `<Domain> Power_N(Watt)`, cells quoted or not; after the
/// rows, a blank line and a summary block (`"Total Elapsed Time (sec) = 10.03"`, `Measured RDTSC
/// Frequency`, per-domain totals), which is skipped.
///
/// Energy: the differences of the cumulative energy (exact, as RAPL counted it) of the selected
/// domains (`opts.rails`, default `Processor`, which PowerLog also calls `Package`) summed over the
/// packages; a log without cumulative columns uses power x elapsed time. Time: the first row's
/// `System Time` on the date `opts.log_start` (which must be given: the log has no date), plus the
/// elapsed time.
pub fn read_power_gadget(path: &Path, opts: &LogOptions) -> Result<PowerTrace> {
    let text = crate::input::read_text(path)?;
    let text = text.trim_start_matches('\u{feff}');
    let mut head = String::new();
    let mut in_summary = false;
    let mut seen_header = false;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim().trim_matches('"').trim();
        if in_summary {
            if !l.is_empty() && !l.contains(" = ") {
                return Err(line_err(
                    path,
                    i + 1,
                    format!(
                        "{} after the summary block began: the data rows must come before it",
                        quoted(line)
                    ),
                ));
            }
            continue;
        }
        if l.starts_with("Total Elapsed Time") || (seen_header && l.is_empty()) {
            in_summary = true;
            continue;
        }
        if l.is_empty() {
            continue;
        }
        seen_header = true;
        head.push_str(line);
        head.push('\n');
    }
    let t = CsvTable::parse(path, &head)?;
    let col = |want: &str| {
        let w = squeeze(want);
        t.columns().into_iter().find(|c| squeeze(c) == w)
    };
    let elapsed_col =
        col("Elapsed Time (sec)").ok_or_else(|| t.missing_column("Elapsed Time (sec)", ""))?;
    let sys_col = col("System Time").ok_or_else(|| t.missing_column("System Time", ""))?;
    let elapsed = t.f64_column(&elapsed_col)?;
    let sys = t.text_values(&sys_col)?;
    let first = time_of_day(&sys[0]).ok_or_else(|| Error::Column {
        path: t.path.clone(),
        column: "System Time".into(),
        row: Some(1),
        message: format!("`{}` is not a time of day (HH:MM:SS:mmm)", sys[0]),
    })?;
    let Some(start) = &opts.log_start else {
        return Err(Error::Csv {
            path: t.path.clone(),
            message: "Power Gadget's `System Time` has no date: give the date the log began as \
                      `log_start` (YYYY-MM-DD)"
                .into(),
        });
    };
    let (day, clock) = match parse_log_start(start) {
        Some((s, Clock::Local)) => (s - s.rem_euclid(86_400.0), Clock::Local),
        _ => {
            return Err(Error::Csv {
                path: t.path.clone(),
                message: format!(
                    "log_start `{start}` is not a date (YYYY-MM-DD, the host's local date when the \
                     log began)"
                ),
            })
        }
    };
    let t0 = day + first - elapsed[0];
    let times: Vec<f64> = elapsed.iter().map(|e| t0 + e).collect();
    let rows: Vec<usize> = (0..t.rows()).collect();
    super::logs::check_increasing(&t, &elapsed_col, &rows, &times)?;
    let domains: Vec<String> = if opts.rails.is_empty() {
        vec!["Processor".into()]
    } else {
        opts.rails.clone()
    };
    let n = t.rows();
    let mut energy = vec![0.0; n.saturating_sub(1)];
    let mut power = vec![0.0; n];
    let mut cumulative = None;
    for d in &domains {
        let mut found = false;
        for alias in [d.as_str(), if d == "Processor" { "Package" } else { "" }] {
            if alias.is_empty() || found {
                continue;
            }
            for pkg in 0.. {
                let e = col(&format!("Cumulative {alias} Energy_{pkg}(Joules)"));
                let p = col(&format!("{alias} Power_{pkg}(Watt)"));
                match (e, p) {
                    (Some(e), _) if cumulative != Some(false) => {
                        cumulative = Some(true);
                        let v = t.f64_column(&e)?;
                        for i in 1..n {
                            let de = v[i] - v[i - 1];
                            if de < 0.0 {
                                return Err(Error::Column {
                                    path: t.path.clone(),
                                    column: e.trim().to_string(),
                                    row: Some(i + 1),
                                    message: format!(
                                        "cumulative energy went down ({} after {})",
                                        v[i],
                                        v[i - 1]
                                    ),
                                });
                            }
                            energy[i - 1] += de;
                        }
                    }
                    (_, Some(p)) if cumulative != Some(true) => {
                        cumulative = Some(false);
                        let v = t.f64_column(&p)?;
                        if let Some((r, x)) = v.iter().enumerate().find(|(_, x)| **x < 0.0) {
                            return Err(Error::Column {
                                path: t.path.clone(),
                                column: p.trim().to_string(),
                                row: Some(r + 1),
                                message: format!("negative power {x} W"),
                            });
                        }
                        for (p, x) in power.iter_mut().zip(&v) {
                            *p += x;
                        }
                    }
                    _ => break,
                }
                found = true;
            }
        }
        if !found {
            return Err(t.missing_column(
                &format!("Cumulative {d} Energy_0(Joules)"),
                &format!(" (or `{d} Power_0(Watt)`: domain `{d}` of `rails`)"),
            ));
        }
    }
    let windows = if cumulative == Some(true) {
        if n < 2 {
            return Err(Error::Csv {
                path: t.path.clone(),
                message: "one row: cumulative energy needs two readings".into(),
            });
        }
        (1..n)
            .map(|i| EnergyWindow {
                start_s: times[i - 1],
                end_s: times[i],
                energy_j: energy[i - 1],
            })
            .collect()
    } else {
        windows_from_samples(&times, &power, None)
    };
    Ok(PowerTrace {
        path: t.path.clone(),
        device_index: None,
        device_name: None,
        clock,
        windows,
    })
}

// ---------------------------------------------------------------------------------------------------
// PDU

/// A logged time: epoch seconds (`date +%s.%N`), or ISO 8601 (`date -Iseconds`:
/// `2026-12-04T10:15:03+01:00`, `...Z`; without a zone, local time).
fn parse_logged_time(text: &str) -> Option<(f64, Clock)> {
    let t = text.trim();
    if let Ok(s) = t.parse::<f64>() {
        return s.is_finite().then_some((s, Clock::Epoch));
    }
    let (date, rest) = t.split_once(['T', ' '])?;
    // A zone: Z, or +HH:MM / -HH:MM after the time.
    let (time, zone) = if let Some(tm) = rest.strip_suffix(['Z', 'z']) {
        (tm, Some(0.0))
    } else if let Some(i) = rest.rfind(['+', '-']) {
        (&rest[..i], Some(super::logs::parse_utc_offset(&rest[i..])?))
    } else {
        (rest, None)
    };
    let (local, _) = parse_log_start(&format!("{date} {time}"))?;
    Some(match zone {
        Some(off) => (local - off, Clock::Epoch),
        None => (local, Clock::Local),
    })
}

/// Groups readings `(time, key, value, line)` by time (in file order) and sums the selected keys of
/// each group; every group must hold each selected key once. `what` names the key (`outlet`, `socket`).
fn sum_groups(
    path: &Path,
    readings: &[(f64, String, f64, usize)],
    keys: &[String],
    what: &str,
    at_line: bool,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let place = |no: usize| {
        if at_line {
            format!("line {no}")
        } else {
            format!("row {no}")
        }
    };
    let mut times: Vec<f64> = Vec::new();
    let mut sums: Vec<f64> = Vec::new();
    let mut i = 0;
    while i < readings.len() {
        let t = readings[i].0;
        let mut j = i;
        let mut seen: Vec<&str> = Vec::new();
        let mut sum = 0.0;
        while j < readings.len() && readings[j].0 == t {
            let (_, k, v, no) = &readings[j];
            if keys.contains(k) {
                if seen.contains(&k.as_str()) {
                    return Err(Error::Csv {
                        path: path.to_path_buf(),
                        message: format!(
                            "{}: a second reading of {what} {k} at the same time",
                            place(*no)
                        ),
                    });
                }
                seen.push(k);
                sum += v;
            }
            j += 1;
        }
        if let Some(k) = keys.iter().find(|k| !seen.contains(&k.as_str())) {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: format!(
                    "{}: no reading of {what} {k} at this time (each reading must cover every \
                     selected {what}; give them one timestamp per poll)",
                    place(readings[i].3)
                ),
            });
        }
        if let Some(&prev) = times.last() {
            if t <= prev {
                return Err(Error::Csv {
                    path: path.to_path_buf(),
                    message: format!(
                        "{}: time does not increase; a power log must be in time order",
                        place(readings[i].3)
                    ),
                });
            }
        }
        times.push(t);
        sums.push(sum);
        i = j;
    }
    Ok((times, sums))
}

/// The keys to read: `wanted` (each must be present), else the only key present.
fn select_keys(
    path: &Path,
    present: &[String],
    wanted: &[String],
    what: &str,
    field: &str,
) -> Result<Vec<String>> {
    let list = || present.join(", ");
    if wanted.is_empty() {
        return match present {
            [one] => Ok(vec![one.clone()]),
            _ => Err(Error::Csv {
                path: path.to_path_buf(),
                message: format!(
                    "several {what}s ({}): name the ones to read in `{field}`",
                    list()
                ),
            }),
        };
    }
    for w in wanted {
        if !present.contains(w) {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: format!("no {what} `{w}` (the log has {})", list()),
            });
        }
    }
    Ok(wanted.to_vec())
}

/// Reads a PDU's outlet power, logged as `snmpget` prints it with a timestamp before each line:
/// `2026-12-04T10:15:03Z PowerNet-MIB::rPDU2OutletMeteredStatusPower.3 = INTEGER: 152` (APC, watts;
/// the index after the object is the outlet), the timestamp epoch seconds or ISO 8601; or a CSV
/// `timestamp,outlet,power_w`. The selected outlets (`outlets`, default the only one) are summed per
/// timestamp, so each poll must stamp its lines with one time. Lines of other objects (the outlet's
/// energy, its name) are skipped; `Timeout: No Response` lines are skipped (the next reading then
/// stands for the longer interval).
pub fn read_pdu(path: &Path, outlets: &[String], averaging_s: Option<f64>) -> Result<PowerTrace> {
    let text = crate::input::read_text(path)?;
    let text = text.trim_start_matches('\u{feff}');
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut readings: Vec<(f64, String, f64, usize)> = Vec::new();
    let mut clock: Option<Clock> = None;
    let csv = first.split(',').any(|c| c.trim() == "power_w");
    if csv {
        let t = CsvTable::read(path)?;
        let tc = t.require_column(&["timestamp"], "")?;
        let oc = t.require_column(&["outlet"], "")?;
        let pc = t.require_column(&["power_w"], "")?;
        let ts = t.text_values(&tc)?;
        let os = t.text_values(&oc)?;
        let ps = t.f64_column(&pc)?;
        for r in 0..t.rows() {
            let (s, c) = parse_logged_time(&ts[r]).ok_or_else(|| Error::Column {
                path: t.path.clone(),
                column: "timestamp".into(),
                row: Some(r + 1),
                message: format!(
                    "`{}` is not a time (epoch seconds, or ISO 8601 as `date -Iseconds` writes)",
                    ts[r]
                ),
            })?;
            if *clock.get_or_insert(c) != c {
                return Err(Error::Column {
                    path: t.path.clone(),
                    column: "timestamp".into(),
                    row: Some(r + 1),
                    message: "mixes times with and without a zone".into(),
                });
            }
            if ps[r] < 0.0 {
                return Err(Error::Column {
                    path: t.path.clone(),
                    column: "power_w".into(),
                    row: Some(r + 1),
                    message: format!("negative power {} W", ps[r]),
                });
            }
            readings.push((s, os[r].clone(), ps[r], r + 1));
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            let no = i + 1;
            if line.trim().is_empty() || line.contains("Timeout: No Response") {
                continue;
            }
            let Some((left, right)) = line.split_once(" = ") else {
                return Err(line_err(
                    path,
                    no,
                    format!(
                        "{} is not `TIME OBJECT.OUTLET = TYPE: VALUE` (snmpget's output with a \
                         timestamp before it)",
                        quoted(line)
                    ),
                ));
            };
            let left = left.trim();
            let Some((stamp, oid)) = left.rsplit_once(char::is_whitespace) else {
                return Err(line_err(
                    path,
                    no,
                    format!("{} has no timestamp before the object", quoted(line)),
                ));
            };
            let object = oid.rsplit_once("::").map_or(oid, |(_, o)| o);
            let Some((object, index)) = object.rsplit_once('.') else {
                continue;
            };
            if !object.ends_with("OutletMeteredStatusPower") {
                if oid.starts_with('.') || oid.starts_with("iso.") || oid.starts_with("SNMPv2-SMI")
                {
                    return Err(line_err(
                        path,
                        no,
                        format!(
                            "the object `{oid}` is numeric: log with the PDU's MIB loaded \
                             (`snmpget -m +PowerNet-MIB`) so that lines name the object"
                        ),
                    ));
                }
                continue;
            }
            let (s, c) = parse_logged_time(stamp).ok_or_else(|| {
                line_err(
                    path,
                    no,
                    format!(
                        "`{}` is not a time (epoch seconds, or ISO 8601 as `date -Iseconds` writes)",
                        stamp.trim()
                    ),
                )
            })?;
            if *clock.get_or_insert(c) != c {
                return Err(line_err(path, no, "mixes times with and without a zone"));
            }
            let value = right.split_once(':').map_or(right, |(_, v)| v).trim();
            let number = value.split_whitespace().next().unwrap_or("");
            let w: f64 = number
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| {
                    line_err(
                        path,
                        no,
                        format!("`{}` is not a power in watts >= 0", right.trim()),
                    )
                })?;
            readings.push((s, index.to_string(), w, no));
        }
    }
    if readings.is_empty() {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            message: "no outlet power readings (rPDU2OutletMeteredStatusPower lines, or \
                      timestamp,outlet,power_w rows)"
                .into(),
        });
    }
    let mut present: Vec<String> = readings.iter().map(|r| r.1.clone()).collect();
    present.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
    present.dedup();
    let keys = select_keys(path, &present, outlets, "outlet", "outlets")?;
    let (times, power) = sum_groups(path, &readings, &keys, "outlet", !csv)?;
    Ok(PowerTrace {
        path: path.to_path_buf(),
        device_index: None,
        device_name: None,
        clock: clock.unwrap_or(Clock::Epoch),
        windows: windows_from_samples(&times, &power, averaging_s),
    })
}

// ---------------------------------------------------------------------------------------------------
// PowerAPI SmartWatts

/// Reads the power reports of PowerAPI's SmartWatts formula written by its CSV output
/// (`PowerReport.csv`): columns `timestamp` (milliseconds since the epoch), `sensor`, `target`,
/// `power` (watts) and `socket`, plus any metadata columns. The rows of `target` (default the only
/// target in the file; SmartWatts reports `rapl` for the package as RAPL measured it, `global` for the
/// sum of its estimates, and one per container or cgroup) are summed over sockets per timestamp; rows
/// may come in any order.
pub fn read_smartwatts(
    path: &Path,
    target: Option<&str>,
    averaging_s: Option<f64>,
) -> Result<PowerTrace> {
    let t = CsvTable::read(path)?;
    let col = |n: &str| t.require_column(&[n], "");
    let ts = t.f64_column(&col("timestamp")?)?;
    let targets = t.text_values(&col("target")?)?;
    let power = t.f64_column(&col("power")?)?;
    let sockets = match t.find_column(&["socket"]) {
        Some(c) => t.text_values(&c)?,
        None => vec![String::new(); t.rows()],
    };
    let mut present = targets.clone();
    present.sort();
    present.dedup();
    let wanted: Vec<String> = target.map(|s| vec![s.to_string()]).unwrap_or_default();
    let target = select_keys(&t.path, &present, &wanted, "target", "target")?.remove(0);
    let mut readings: Vec<(f64, String, f64, usize)> = Vec::new();
    for r in 0..t.rows() {
        if targets[r] != target {
            continue;
        }
        if ts[r] < 0.0 || ts[r].fract() != 0.0 {
            return Err(Error::Column {
                path: t.path.clone(),
                column: "timestamp".into(),
                row: Some(r + 1),
                message: format!("{} is not whole milliseconds since the epoch", ts[r]),
            });
        }
        if power[r] < 0.0 {
            return Err(Error::Column {
                path: t.path.clone(),
                column: "power".into(),
                row: Some(r + 1),
                message: format!("negative power {} W", power[r]),
            });
        }
        readings.push((ts[r] / 1e3, sockets[r].clone(), power[r], r + 1));
    }
    readings.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut socks: Vec<String> = readings.iter().map(|r| r.1.clone()).collect();
    socks.sort();
    socks.dedup();
    let (times, sums) = sum_groups(&t.path, &readings, &socks, "socket", false)?;
    Ok(PowerTrace {
        path: t.path.clone(),
        device_index: None,
        device_name: None,
        clock: Clock::Epoch,
        windows: windows_from_samples(&times, &sums, averaging_s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/power_logs")
            .join(name)
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".log").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn energy(t: &PowerTrace) -> f64 {
        t.windows.iter().map(|w| w.energy_j).sum()
    }

    fn span(t: &PowerTrace) -> f64 {
        t.windows.last().unwrap().end_s - t.windows[0].start_s
    }

    /// Equal to within float rounding of sums over a few readings.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    /// Equal times on an epoch clock, to the millisecond.
    fn same_time(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    fn err_of(r: Result<PowerTrace>) -> String {
        r.unwrap_err().to_string()
    }

    /// Reads `path` as a log of `format` with the default options and averaging.
    fn read_plain(format: EdgeFormat, path: &Path) -> Result<PowerTrace> {
        read_edge_log(format, path, &LogOptions::default(), None)
    }

    #[test]
    fn tegrastats_jetpack6_lines_give_the_input_rail_and_temperatures() {
        let p = sample("tegrastats_orin_nano.log");
        let log = read_tegrastats(&p, &LogOptions::default(), None).unwrap();
        assert_eq!(log.rails, ["VDD_IN"]);
        assert_eq!(log.trace.clock, Clock::Local);
        // Five lines one second apart: VDD_IN 4761, 4761, 9120, 9480, 4810 mW. Each reading stands for
        // the second before it (the first for the second after it).
        let w = &log.trace.windows;
        assert_eq!(w.len(), 5);
        assert!(close(
            energy(&log.trace),
            4.761 + 4.761 + 9.120 + 9.480 + 4.810
        ));
        assert!(close(w[2].mean_w(), 9.120));
        assert!(same_time(
            w[1].end_s,
            parse_log_start("2026-04-27 14:59:42").unwrap().0
        ));
        let gpu = &log.temperatures["gpu"];
        assert_eq!(gpu.len(), 5);
        assert!(close(gpu[3].1, 53.25));
        // Two rails summed.
        let o = LogOptions {
            rails: vec!["VDD_CPU_GPU_CV".into(), "VDD_SOC".into()],
            ..Default::default()
        };
        let both = read_tegrastats(&p, &o, None).unwrap();
        assert!(close(both.trace.windows[2].mean_w(), 4.213 + 1.611));
        // The format dispatch reads the same trace.
        let t = read_plain(EdgeFormat::Tegrastats, &p).unwrap();
        assert_eq!(t, log.trace);
        assert_eq!(
            detect(&std::fs::read_to_string(&p).unwrap()),
            Some(EdgeFormat::Tegrastats)
        );
    }

    #[test]
    fn tegrastats_without_timestamps_needs_the_interval_and_start() {
        let p = sample("tegrastats_nano_untimed.log");
        let e = err_of(read_plain(EdgeFormat::Tegrastats, &p));
        assert!(e.contains("tegrastats_nano_untimed.log"), "{e}");
        assert!(e.contains("line 1") && e.contains("interval_ms"), "{e}");
        let o = LogOptions {
            interval_ms: Some(500.0),
            log_start: Some("1796548500".into()),
            ..Default::default()
        };
        let t = read_edge_log(EdgeFormat::Tegrastats, &p, &o, None).unwrap();
        // POM_5V_IN 2545, 2541, 4870, 4912 mW, 0.5 s apart.
        assert_eq!(t.clock, Clock::Epoch);
        assert_eq!(t.windows.len(), 4);
        assert!(close(span(&t), 2.0));
        assert!(close(energy(&t), 0.5 * (2.545 + 2.541 + 4.870 + 4.912)));
        assert!(same_time(t.windows[3].end_s, 1796548501.5));
    }

    #[test]
    fn tegrastats_malformed_lines_are_named() {
        let good = "04-27-2026 14:59:41 RAM 775/7620MB (lfb 3x4MB) SWAP 0/3810MB (cached 0MB) \
                    CPU [1%@729] GR3D_FREQ 0% cpu@48.4C VDD_IN 4761mW/4778mW VDD_SOC 1428mW/1428mW\n";
        let f = file(&format!(
            "{good}04-27-2026 14:59:42 RAM 775/7620MB SWAP 0/3810MB CPU [1%@729] VDD_IN 47x1mW/4778mW\n"
        ));
        let e = err_of(read_plain(EdgeFormat::Tegrastats, f.path()));
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        assert!(e.contains("line 2") && e.contains("47x1mW/4778mW"), "{e}");
        let f = file(&format!("{good}Segmentation fault (core dumped)\n"));
        let e = err_of(read_plain(EdgeFormat::Tegrastats, f.path()));
        assert!(
            e.contains("line 2") && e.contains("Segmentation fault"),
            "{e}"
        );
        let f = file(good);
        let o = LogOptions {
            rails: vec!["VDD_GPU".into()],
            ..Default::default()
        };
        let e = err_of(read_edge_log(EdgeFormat::Tegrastats, f.path(), &o, None));
        assert!(
            e.contains("line 1") && e.contains("VDD_GPU") && e.contains("VDD_SOC"),
            "{e}"
        );
        let f = file(&format!("{good}{good}"));
        let e = err_of(read_plain(EdgeFormat::Tegrastats, f.path()));
        assert!(
            e.contains("line 2") && e.contains("does not increase"),
            "{e}"
        );
    }

    #[test]
    fn ina3221_sysfs_log_multiplies_voltage_by_current_per_channel() {
        let p = sample("ina3221_orin_nano.csv");
        let t = read_ina3221(&p, &[], None).unwrap();
        assert_eq!(t.clock, Clock::Epoch);
        // VDD_IN (in1): 5072 mV x 936 mA, 5064 x 1804, 5064 x 1860, 5072 x 944; 0.5 s apart.
        let w: Vec<f64> = t.windows.iter().map(|w| w.mean_w()).collect();
        assert!(close(w[0], 5.072 * 0.936), "{w:?}");
        assert!(close(w[2], 5.064 * 1.860), "{w:?}");
        assert!(close(
            energy(&t),
            0.5 * (5.072 * 0.936 + 5.064 * 1.804 + 5.064 * 1.860 + 5.072 * 0.944)
        ));
        let by_number = read_ina3221(&p, &["2".into(), "VDD_SOC".into()], None).unwrap();
        assert!(close(
            by_number.windows[1].mean_w(),
            5.080 * 0.780 + 5.072 * 0.312
        ));
        assert_eq!(
            detect(&std::fs::read_to_string(&p).unwrap()),
            Some(EdgeFormat::Ina3221)
        );
    }

    #[test]
    fn ina3221_malformed_logs_are_named() {
        let f = file(
            "timestamp,in1_input,curr1_input\n1796548500.0,5072,936\n1796548500.5,5O64,1804\n",
        );
        let e = err_of(read_ina3221(f.path(), &[], None));
        assert!(
            e.contains(&f.path().display().to_string())
                && e.contains("in1_input")
                && e.contains("row 2")
                && e.contains("5O64"),
            "{e}"
        );
        let f = file("timestamp,in1_input,in2_input,curr2_input\n1,5072,5000,10\n");
        let e = err_of(read_ina3221(f.path(), &[], None));
        assert!(e.contains("curr1_input") && e.contains("missing"), "{e}");
        let f = file("timestamp,in1_input,curr1_input,in2_input,curr2_input\n1,5072,936,5000,10\n");
        let e = err_of(read_ina3221(f.path(), &[], None));
        assert!(e.contains("several channels") && e.contains("rails"), "{e}");
    }

    #[test]
    fn power_gadget_log_skips_its_summary_and_counts_cumulative_energy() {
        let p = sample("power_gadget_windows.csv");
        let o = LogOptions {
            log_start: Some("2026-12-04".into()),
            ..Default::default()
        };
        let t = read_power_gadget(&p, &o).unwrap();
        assert_eq!(t.clock, Clock::Local);
        // Cumulative Processor Energy_0 from 10.0000 to 53.2012 J over Elapsed 1.0030 .. 4.0110 s.
        assert_eq!(t.windows.len(), 3);
        assert!(close(energy(&t), 53.2012 - 10.0000));
        assert!(close(span(&t), 4.011 - 1.003));
        assert!(close(t.windows[0].energy_j, 24.1503 - 10.0000));
        let start = parse_log_start("2026-12-04 12:11:05.769").unwrap().0;
        assert!(same_time(t.windows[0].start_s, start));
        // IA and GT together.
        let o2 = LogOptions {
            rails: vec!["IA".into(), "GT".into()],
            ..o.clone()
        };
        let t2 = read_power_gadget(&p, &o2).unwrap();
        assert!(close(energy(&t2), (44.1210 - 8.2000) + (0.3590 - 0.0500)));
        // Without a date it cannot be placed.
        let e = err_of(read_power_gadget(&p, &LogOptions::default()));
        assert!(e.contains("log_start"), "{e}");
        assert_eq!(
            detect(&std::fs::read_to_string(&p).unwrap()),
            Some(EdgeFormat::PowerGadget)
        );
    }

    #[test]
    fn power_gadget_macos_log_without_cumulative_columns_uses_power() {
        let f = file(
            "System Time,RDTSC,Elapsed Time (sec), CPU Utilization(%),CPU Frequency_0(MHz),Processor Power_0(Watt),IA Power_0(Watt)\n\
             10:15:03:100,100,1.000,12,2400,10.0,8.0\n\
             10:15:04:100,200,2.000,90,3100,30.0,26.0\n\
             \n\
             Total Elapsed Time (sec) = 2.000000\n\
             Measured RDTSC Frequency (GHz) = 2.400\n",
        );
        let o = LogOptions {
            log_start: Some("2026-12-04".into()),
            ..Default::default()
        };
        let t = read_power_gadget(f.path(), &o).unwrap();
        assert!(close(energy(&t), 10.0 + 30.0));
    }

    #[test]
    fn power_gadget_malformed_logs_are_named() {
        let o = LogOptions {
            log_start: Some("2026-12-04".into()),
            ..Default::default()
        };
        let f = file(
            "\"System Time\",\"RDTSC\",\"Elapsed Time (sec)\",\"Cumulative Processor Energy_0(Joules)\"\n\
             \"12:11:05:769\",\"1\",\"   1.003\",\"10.0\"\n\
             \"12:11:06:774\",\"2\",\"   2.007\",\"ten\"\n",
        );
        let e = err_of(read_power_gadget(f.path(), &o));
        assert!(
            e.contains(&f.path().display().to_string())
                && e.contains("Cumulative Processor Energy_0(Joules)")
                && e.contains("row 2")
                && e.contains("`ten`"),
            "{e}"
        );
        let f = file(
            "System Time,RDTSC,Elapsed Time (sec),Processor Power_0(Watt)\n\
             12:11:05:769,1,1.0,5\n\n\"Total Elapsed Time (sec) = 1.0\"\n12:11:06:769,2,2.0,5\n",
        );
        let e = err_of(read_power_gadget(f.path(), &o));
        assert!(e.contains("line 5") && e.contains("summary"), "{e}");
    }

    #[test]
    fn pdu_snmpget_log_sums_the_selected_outlets() {
        let p = sample("pdu_apc_snmpget.log");
        let e = err_of(read_pdu(&p, &[], None));
        assert!(e.contains("several outlets") && e.contains("3, 4"), "{e}");
        let t = read_pdu(&p, &["3".into(), "4".into()], None).unwrap();
        assert_eq!(t.clock, Clock::Epoch);
        // Outlets 3 + 4: 152+148, 301+296, 305+299, 150+149 W, 1 s apart (one poll timed out and is
        // skipped, so the reading after it stands for 2 s).
        let w: Vec<f64> = t.windows.iter().map(|w| w.mean_w()).collect();
        assert_eq!(w, [300.0, 597.0, 604.0, 299.0]);
        assert!(close(t.windows[3].duration_s(), 2.0));
        assert!(close(energy(&t), 300.0 + 597.0 + 604.0 + 2.0 * 299.0));
        let start = parse_logged_time("2026-12-04T10:15:03Z").unwrap().0;
        assert!(same_time(t.windows[0].end_s, start));
        let one = read_pdu(&p, &["4".into()], None).unwrap();
        assert!(close(one.windows[1].mean_w(), 296.0));
        let csv = read_pdu(&sample("pdu_outlets.csv"), &["3".into()], None).unwrap();
        assert!(close(energy(&csv), 152.0 + 301.0 + 305.0));
        assert_eq!(
            detect(&std::fs::read_to_string(&p).unwrap()),
            Some(EdgeFormat::Pdu)
        );
    }

    #[test]
    fn pdu_malformed_logs_are_named() {
        let f = file(
            "2026-12-04T10:15:03Z PowerNet-MIB::rPDU2OutletMeteredStatusPower.3 = INTEGER: 152\n\
             2026-12-04T10:15:04Z PowerNet-MIB::rPDU2OutletMeteredStatusPower.3 = STRING: \"n/a\"\n",
        );
        let e = err_of(read_pdu(f.path(), &[], None));
        assert!(
            e.contains(&f.path().display().to_string())
                && e.contains("line 2")
                && e.contains("n/a"),
            "{e}"
        );
        let f = file("yesterday PowerNet-MIB::rPDU2OutletMeteredStatusPower.3 = INTEGER: 152\n");
        let e = err_of(read_pdu(f.path(), &[], None));
        assert!(e.contains("line 1") && e.contains("`yesterday`"), "{e}");
        let f = file(
            "2026-12-04T10:15:03Z PowerNet-MIB::rPDU2OutletMeteredStatusPower.3 = INTEGER: 152\n\
             2026-12-04T10:15:04Z PowerNet-MIB::rPDU2OutletMeteredStatusPower.4 = INTEGER: 148\n",
        );
        let e = err_of(read_pdu(f.path(), &["3".into(), "4".into()], None));
        assert!(e.contains("line 1") && e.contains("outlet 4"), "{e}");
        let f = file("timestamp,outlet,power_w\n1796548503,3,-5\n");
        let e = err_of(read_pdu(f.path(), &[], None));
        assert!(
            e.contains("power_w") && e.contains("row 1") && e.contains("-5"),
            "{e}"
        );
    }

    #[test]
    fn smartwatts_csv_sums_sockets_of_the_target() {
        let p = sample("smartwatts_powerreport.csv");
        let e = err_of(read_smartwatts(&p, None, None));
        assert!(e.contains("several targets") && e.contains("rapl"), "{e}");
        let t = read_smartwatts(&p, Some("rapl"), None).unwrap();
        // Sockets 0 + 1 of target rapl: 41.2+39.8, 88.5+86.1, 90.3+87.7 W, 1 s apart.
        assert_eq!(t.clock, Clock::Epoch);
        assert_eq!(t.windows.len(), 3);
        assert!(close(t.windows[1].mean_w(), 88.5 + 86.1));
        assert!(close(energy(&t), 81.0 + 174.6 + 178.0));
        assert!(same_time(t.windows[2].end_s, 1796548502.0));
        let c = read_smartwatts(&p, Some("vllm-server"), None).unwrap();
        assert!(close(c.windows[2].mean_w(), 61.4 + 58.9));
        assert_eq!(
            detect(&std::fs::read_to_string(&p).unwrap()),
            Some(EdgeFormat::Smartwatts)
        );
    }

    #[test]
    fn rapl_counters_sampled_from_sysfs_unwrap_at_max_energy_range_uj() {
        // energy_uj read once a second with the zone's max_energy_range_uj beside it; the counter
        // wraps between the second and third reading.
        let t = super::super::logs::read_rapl(&sample("rapl_package0.csv"), None).unwrap();
        let j: Vec<f64> = t.windows.iter().map(|w| w.energy_j).collect();
        assert_eq!(j.len(), 3);
        assert!(close(j[0], 40.0) && close(j[2], 45.0), "{j:?}");
        // 262143328850 - 262140000000 + 36671150 uJ across the wrap.
        assert!(close(j[1], 40.0), "{j:?}");
        assert!(close(energy(&t), 125.0));
        assert!(close(t.windows[1].mean_w(), 40.0));
    }

    #[test]
    fn smartwatts_malformed_csv_is_named() {
        let f = file("timestamp,sensor,target,power,socket\n1796548500000,s,rapl,41.2,0\n1796548501000,s,rapl,NaN,0\n");
        let e = err_of(read_smartwatts(f.path(), None, None));
        assert!(
            e.contains(&f.path().display().to_string())
                && e.contains("power")
                && e.contains("row 2")
                && e.contains("NaN"),
            "{e}"
        );
        let f = file("timestamp,sensor,target,power,socket\n1796548500000,s,rapl,41.2,0\n1796548500000,s,rapl,40,0\n");
        let e = err_of(read_smartwatts(f.path(), None, None));
        assert!(e.contains("row 2") && e.contains("socket 0"), "{e}");
        let e = err_of(read_smartwatts(f.path(), Some("global"), None));
        assert!(e.contains("`global`") && e.contains("rapl"), "{e}");
    }
}
