//! A measured serving run's folder, read: its request log, its power logs (one per GPU, nvidia-smi or
//! vLLM's power CSV, or one per edge or desktop device log of [`super::edge_logs`], put on the request
//! log's clock) and its manifest.
//!
//! Input: the folder and how to read its clock ([`RunOptions`]). Output: a [`MeasuredRun`] with the
//! active window, per-GPU energy inside any interval and the idle baseline. It runs no simulation.
//!
//! Clocks: a log is on epoch seconds or on the writing host's local wall clock without a zone
//! ([`Clock`]); nvidia-smi's `timestamp` is the latter and cannot be told apart from UTC by its
//! format. Local times are read as UTC unless the run gives the host's UTC offset
//! (`RunOptions::utc_offset_s`); a power log that then does not overlap the requests is an error that
//! says by how much it is off and, when a whole or half hour shift would line it up, that this looks
//! like a time zone and which setting fixes it ([`align_power`]).

use super::edge_logs::{self, EdgeFormat, LogOptions};
use super::logs::{self, format_utc_offset, Clock, EnergyWindow, LoggedRequest, PowerTrace};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// How to read a measured run's clock and its power logs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Readings ending within this many seconds before the first request are not idle.
    pub warmup_s: f64,
    /// Seconds added to the power logs' clock to put them on the request log's clock.
    pub clock_offset_s: f64,
    /// Seconds east of UTC of the host that wrote the logs on local time ([`Clock::Local`]: nvidia-smi's
    /// `timestamp`); they are put on UTC by subtracting it. `None`: read as UTC.
    pub utc_offset_s: Option<f64>,
    /// Seconds each power reading averages over (default: the interval since the previous one).
    pub averaging_s: Option<f64>,
    /// What to read from an edge or desktop device's log (rails, outlets, target) and the clock of one
    /// without timestamps.
    pub log: LogOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            warmup_s: 1.0,
            clock_offset_s: 0.0,
            utc_offset_s: None,
            averaging_s: None,
            log: LogOptions::default(),
        }
    }
}

/// A measured serving run, read.
#[derive(Debug, Clone)]
pub struct MeasuredRun {
    pub dir: PathBuf,
    pub requests_path: PathBuf,
    pub power_paths: Vec<PathBuf>,
    pub requests: Vec<LoggedRequest>,
    /// One trace per GPU, on the request log's clock with the first request at 0.
    pub traces: Vec<PowerTrace>,
    pub manifest: Option<serde_json::Value>,
    /// What was assumed in reading the logs (clocks, time zones), for the report.
    pub notes: Vec<String>,
}

/// What kind of log a file's content says it is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Requests,
    /// A `vllm bench serve` result (JSON), read as the request log.
    VllmBench,
    NvidiaSmi,
    VllmPower,
    /// An edge or desktop device's log ([`edge_logs`]).
    Edge(EdgeFormat),
}

/// What a file is, told by its content (a CSV header, or a JSON object's fields), not its name. Files
/// that are not text, and text that is neither, are `None`.
fn classify(path: &Path) -> Result<Option<Kind>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(None);
    };
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with('{') {
        let first = serde_json::Deserializer::from_str(body)
            .into_iter::<serde_json::Value>()
            .next();
        return Ok(match first {
            Some(Ok(v)) if logs::is_vllm_bench_result(&v) => Some(Kind::VllmBench),
            // More than one result appended: the reader says so.
            Some(Err(_)) if body.contains("\"ttfts\"") => Some(Kind::VllmBench),
            _ => None,
        });
    }
    let header: Vec<String> = text
        .lines()
        .next()
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let has = |n: &str| header.iter().any(|c| c == n);
    Ok(if header.iter().any(|c| c.starts_with("power.draw")) {
        Some(Kind::NvidiaSmi)
    } else if has("power_W") {
        Some(Kind::VllmPower)
    } else if has("request_timestamp_epoch_s") || has("completion_tokens") || has("arrived_at") {
        Some(Kind::Requests)
    } else {
        edge_logs::detect(&text).map(Kind::Edge)
    })
}

/// Reads a measured run's folder.
pub fn read_run(dir: &Path, opts: &RunOptions) -> Result<MeasuredRun> {
    let bad = |m: String| Error::Csv {
        path: dir.to_path_buf(),
        message: m,
    };
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a folder (a measured run is a folder with a request log and power logs)",
            ),
        ));
    }
    // Every file but the manifest and hidden ones, told apart by content.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                !n.starts_with('.') && n != "manifest.json"
            })
        })
        .collect();
    files.sort();
    let mut requests = Vec::new();
    let mut power = Vec::new();
    for p in &files {
        match classify(p)? {
            Some(k @ (Kind::Requests | Kind::VllmBench)) => requests.push((p.clone(), k)),
            Some(k) => power.push((p.clone(), k)),
            None => {}
        }
    }
    let (requests_path, requests_kind) = match requests.as_slice() {
        [one] => one.clone(),
        [] => return Err(bad(
            "no request log: expected a CSV with `timestamp, prompt_tokens, completion_tokens, \
                 latency` (vLLM energy-measurement protocol), `request_timestamp_epoch_s, \
                 input_len_tokens, output_len_tokens` or `arrived_at, num_prefill_tokens, \
                 num_decode_tokens`, or a `vllm bench serve --save-result --save-detailed` JSON"
                .into(),
        )),
        many => {
            return Err(bad(format!(
                "more than one request log: {}",
                many.iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    let manifest_path = dir.join("manifest.json");
    let manifest = if manifest_path.exists() {
        let text = crate::input::read_text(&manifest_path)?;
        Some(serde_json::from_str(&text).map_err(|e| Error::Csv {
            path: manifest_path.clone(),
            message: format!("not valid JSON: {e}"),
        })?)
    } else {
        None
    };
    // `simwatt measure` on a host where no power can be read says so in its manifest: such a run is
    // compared on latency and throughput only.
    let measured_without_power = manifest.as_ref().is_some_and(|m: &serde_json::Value| {
        m.get("simwatt_version").is_some()
            && m.pointer("/power/device")
                .is_some_and(serde_json::Value::is_null)
    });
    if power.is_empty() && !measured_without_power {
        return Err(bad(
            "no power log: expected an nvidia-smi CSV (`power.draw [W]`), the vLLM power \
             logger's CSV (`time, power_W, gpu_util, mem_used_bytes`), or an edge or desktop \
             device's log (tegrastats, INA3221, Intel Power Gadget, PDU, SmartWatts)"
                .into(),
        ));
    }
    let (reqs, requests_clock, mut notes) = match requests_kind {
        Kind::VllmBench => {
            let r = logs::read_vllm_bench_result(&requests_path)?;
            (r.requests, Clock::Local, r.notes)
        }
        _ => (
            logs::read_request_log(&requests_path)?,
            Clock::Epoch,
            Vec::new(),
        ),
    };
    let mut traces = Vec::new();
    for (p, k) in &power {
        let mut ts = match k {
            Kind::NvidiaSmi => logs::read_nvidia_smi(p, opts.averaging_s)?,
            Kind::Edge(f) => vec![edge_logs::read_edge_log(
                *f,
                p,
                &opts.log,
                opts.averaging_s,
            )?],
            _ => vec![logs::read_vllm_power_log(p, opts.averaging_s)?],
        };
        traces.append(&mut ts);
    }
    notes.extend(align_power(
        &mut traces,
        &reqs,
        requests_clock,
        &requests_path,
        opts.clock_offset_s,
        opts.utc_offset_s,
    )?);
    if power.is_empty() {
        notes.push(
            "no power log: the run was measured where no power could be read (manifest.json), so \
             power and energy are not compared"
                .into(),
        );
    }
    Ok(MeasuredRun {
        dir: dir.to_path_buf(),
        requests_path,
        power_paths: power.into_iter().map(|(p, _)| p).collect(),
        requests: reqs,
        traces,
        manifest,
        notes,
    })
}

/// Puts power traces on the requests' clock, in seconds from the first request: local times less the
/// UTC offset when one is given, plus `clock_offset_s`. Every trace must then overlap the requests;
/// one that does not is an error saying by how much it is off and, when a whole or half hour shift
/// would line it up, that this looks like a time-zone difference and how to give the offset. Returns
/// notes on what was assumed (local times read as UTC).
pub fn align_power(
    traces: &mut [PowerTrace],
    requests: &[LoggedRequest],
    requests_clock: Clock,
    requests_path: &Path,
    clock_offset_s: f64,
    utc_offset_s: Option<f64>,
) -> Result<Vec<String>> {
    let Some(first) = requests.first() else {
        return Err(Error::Csv {
            path: requests_path.to_path_buf(),
            message: "the request log has no requests".into(),
        });
    };
    let to_utc = |clock: Clock| match (clock, utc_offset_s) {
        (Clock::Local, Some(off)) => -off,
        _ => 0.0,
    };
    let t0 = first.arrival_s + to_utc(requests_clock);
    for t in traces.iter_mut() {
        let shift = to_utc(t.clock) + clock_offset_s - t0;
        for w in &mut t.windows {
            w.start_s += shift;
            w.end_s += shift;
        }
    }
    let last_arrival = requests
        .last()
        .map_or(0.0, |r| r.arrival_s - first.arrival_s);
    for t in traces.iter() {
        let (a, b) = (
            t.windows.first().map_or(0.0, |w| w.start_s),
            t.windows.last().map_or(0.0, |w| w.end_s),
        );
        if b < 0.0 || a > last_arrival {
            return Err(Error::Csv {
                path: t.path.clone(),
                message: not_overlapping(a, b, last_arrival, t.clock, requests_clock),
            });
        }
    }
    let mut notes = Vec::new();
    let mixed = traces.iter().any(|t| t.clock != requests_clock);
    let any_local =
        requests_clock == Clock::Local || traces.iter().any(|t| t.clock == Clock::Local);
    match utc_offset_s {
        None if mixed => notes.push(
            "the power and request logs are on different clocks (one local time without a zone, as \
             nvidia-smi writes it, the other epoch seconds); with no utc_offset given the local times \
             were read as UTC, which is right only on a host set to UTC (they overlap, so it \
             probably was)"
                .into(),
        ),
        Some(off) if any_local => notes.push(format!(
            "local times (nvidia-smi timestamps) read as UTC{}",
            format_utc_offset(off)
        )),
        Some(_) => notes.push(
            "utc_offset was given but every log is on epoch seconds, so it was not used".into(),
        ),
        None => {}
    }
    if clock_offset_s != 0.0 {
        notes.push(format!(
            "power logs shifted by clock_offset_s = {clock_offset_s} s"
        ));
    }
    Ok(notes)
}

/// Seconds as `1234.5 s (20 min 34 s)` or `7190.0 s (1 h 59 min 50 s)`.
fn span_words(s: f64) -> String {
    let a = s.abs().round() as i64;
    let words = if a >= 3600 {
        format!("{} h {} min {} s", a / 3600, (a % 3600) / 60, a % 60)
    } else if a >= 60 {
        format!("{} min {} s", a / 60, a % 60)
    } else {
        format!("{a} s")
    };
    format!("{:.1} s ({words})", s.abs())
}

/// The error message of a power log spanning `[a, b]` seconds from the first request that does not
/// overlap the requests' `[0, last]`.
fn not_overlapping(a: f64, b: f64, last: f64, power: Clock, requests: Clock) -> String {
    let mut m = format!(
        "the power log ({a:.1} s to {b:.1} s from the first request) does not overlap the requests \
         (0 to {last:.1} s): it starts {} {} the first request",
        span_words(a),
        if a < 0.0 { "before" } else { "after" }
    );
    // A time zone shifts a log by a whole number of quarter hours (most by whole or half hours). The
    // shift that lines the log's start up with the first request, rounded to a quarter hour, is a time
    // zone's if the shifted log then overlaps the requests.
    let q = 900.0;
    let h = (a / q).round() * q;
    let tz = h != 0.0 && h.abs() <= 14.0 * 3600.0 && a - h <= last && b - h >= 0.0;
    if tz {
        let unit = if h % 3600.0 == 0.0 {
            "a whole number of hours"
        } else if h % 1800.0 == 0.0 {
            "a whole number of half hours"
        } else {
            "a whole number of quarter hours"
        };
        m.push_str(&format!(
            ". Shifted by {} s ({}, {unit}) it would overlap them: that looks like a time-zone \
             difference (nvidia-smi writes the host's local time with no zone, so it cannot be read \
             from the log).",
            -h,
            format_utc_offset(-h)
        ));
        let utc = match (power, requests) {
            (Clock::Local, Clock::Epoch) => Some(h),
            (Clock::Epoch, Clock::Local) => Some(-h),
            _ => None,
        };
        if let Some(off) = utc {
            let f = format_utc_offset(off);
            m.push_str(&format!(
                " Give the UTC offset of the host that wrote the local times: --utc-offset={f} \
                 (`utc_offset: \"{f}\"` in a measured spec or manifest), or shift the power log with \
                 --clock-offset-s={} (`clock_offset_s`)",
                -h
            ));
        } else {
            m.push_str(&format!(
                " Shift the power log's clock with --clock-offset-s={} (`clock_offset_s` in a measured \
                 spec or manifest)",
                -h
            ));
        }
    } else {
        m.push_str(
            "; no whole or half hour shift lines them up, so it is not a time-zone difference: are \
             both logs of the same run and on the same clock? Shift the power log's clock with \
             --clock-offset-s=SECONDS (`clock_offset_s` in a measured spec or manifest)",
        );
    }
    m
}

/// Energy of `w` inside `[a, b]`, assuming constant power over the window.
fn clipped(w: &EnergyWindow, a: f64, b: f64) -> (f64, f64) {
    let dt = w.end_s.min(b) - w.start_s.max(a);
    if dt <= 0.0 || w.duration_s() <= 0.0 {
        (0.0, 0.0)
    } else {
        (w.energy_j * dt / w.duration_s(), dt)
    }
}

impl MeasuredRun {
    /// End of the active window (seconds from the first request) and how it was found.
    pub fn active_end(&self) -> (f64, String) {
        let t0 = self.requests[0].arrival_s;
        if self.requests.iter().all(|r| r.e2e_s.is_some()) {
            let end = self
                .requests
                .iter()
                .map(|r| r.arrival_s - t0 + r.e2e_s.unwrap_or(0.0))
                .fold(0.0, f64::max);
            return (end, "the last completion (dispatch + latency)".into());
        }
        let duration = self.manifest.as_ref().and_then(|m| {
            m.pointer("/probe/levels/0/summary/duration")
                .and_then(serde_json::Value::as_f64)
        });
        if let Some(d) = duration.filter(|d| *d > 0.0) {
            return (
                d,
                "the benchmark's duration in manifest.json (first dispatch to last completion; the \
                 request log has no latencies)"
                    .into(),
            );
        }
        let end = self
            .traces
            .iter()
            .filter_map(|t| t.windows.last().map(|w| w.end_s))
            .fold(0.0, f64::max);
        (
            end,
            "the end of the power log (the request log has no latencies and there is no manifest \
             with the run's duration)"
                .into(),
        )
    }

    /// Mean energy of one GPU (the mean over the traces) inside `[a, b]`, joules.
    pub fn energy_per_gpu(&self, a: f64, b: f64) -> f64 {
        let total: f64 = self
            .traces
            .iter()
            .flat_map(|t| t.windows.iter().map(|w| clipped(w, a, b).0))
            .sum();
        total / self.traces.len() as f64
    }

    /// Idle power per GPU: the mean power of the readings that end before `-warmup_s`.
    pub fn idle_w(&self, warmup_s: f64) -> Option<(f64, usize)> {
        let mut e = 0.0;
        let mut s = 0.0;
        let mut n = 0;
        for w in self.traces.iter().flat_map(|t| &t.windows) {
            if w.end_s <= -warmup_s {
                e += w.energy_j;
                s += w.duration_s();
                n += 1;
            }
        }
        (s > 0.0).then(|| (e / s, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_two_hours_ahead_is_called_a_time_zone_with_the_offset_to_give() {
        // nvidia-smi on a UTC+2 host, read as UTC: it starts 2 h minus the 10 s of idle before load
        // after the first request.
        let m = not_overlapping(7190.0, 7300.0, 60.0, Clock::Local, Clock::Epoch);
        assert!(m.contains("1 h 59 min 50 s"), "{m}");
        assert!(m.contains("time-zone"), "{m}");
        assert!(m.contains("--utc-offset=+02:00"), "{m}");
        assert!(m.contains("--clock-offset-s=-7200"), "{m}");
        // The request log on local time instead: the sign turns.
        let m = not_overlapping(-7210.0, -7100.0, 60.0, Clock::Epoch, Clock::Local);
        assert!(m.contains("--utc-offset=+02:00"), "{m}");
        assert!(m.contains("--clock-offset-s=7200"), "{m}");
        // India: half hours.
        let m = not_overlapping(19795.0, 19900.0, 60.0, Clock::Local, Clock::Epoch);
        assert!(m.contains("half hours") && m.contains("+05:30"), "{m}");
    }

    #[test]
    fn a_log_off_by_no_whole_hour_is_not_called_a_time_zone() {
        let m = not_overlapping(500.0, 560.0, 60.0, Clock::Local, Clock::Epoch);
        assert!(!m.contains("looks like a time-zone"), "{m}");
        assert!(m.contains("not a time-zone difference"), "{m}");
        assert!(m.contains("8 min 20 s) after"), "{m}");
        assert!(m.contains("--clock-offset-s"), "{m}");
    }
}
