//! A measured serving run's folder, read: its request log, its power logs (one per GPU, nvidia-smi or
//! vLLM's power CSV, put on the request log's clock) and its manifest.
//!
//! Input: the folder and how to read its clock ([`RunOptions`]). Output: a [`MeasuredRun`] with the
//! active window, per-GPU energy inside any interval and the idle baseline. It runs no simulation.

use super::logs::{self, EnergyWindow, LoggedRequest, PowerTrace};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// How to read a measured run's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunOptions {
    /// Readings ending within this many seconds before the first request are not idle.
    pub warmup_s: f64,
    /// Seconds added to the power logs' clock to put them on the request log's clock.
    pub clock_offset_s: f64,
    /// Seconds each power reading averages over (default: the interval since the previous one).
    pub averaging_s: Option<f64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            warmup_s: 1.0,
            clock_offset_s: 0.0,
            averaging_s: None,
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
}

/// What kind of CSV a header says a file is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Requests,
    NvidiaSmi,
    VllmPower,
}

fn classify(path: &Path) -> Result<Option<Kind>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
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
        None
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
    let mut csvs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
        .collect();
    csvs.sort();
    let mut requests = Vec::new();
    let mut power = Vec::new();
    for p in &csvs {
        match classify(p)? {
            Some(Kind::Requests) => requests.push(p.clone()),
            Some(k) => power.push((p.clone(), k)),
            None => {}
        }
    }
    let requests_path = match requests.as_slice() {
        [one] => one.clone(),
        [] => return Err(bad(
            "no request log: expected a CSV with `timestamp, prompt_tokens, completion_tokens, \
                 latency` (vLLM energy-measurement protocol), `request_timestamp_epoch_s, \
                 input_len_tokens, output_len_tokens` or `arrived_at, num_prefill_tokens, \
                 num_decode_tokens`"
                .into(),
        )),
        many => {
            return Err(bad(format!(
                "more than one request log: {}",
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    if power.is_empty() {
        return Err(bad(
            "no power log: expected an nvidia-smi CSV (`power.draw [W]`) or the vLLM power \
             logger's CSV (`time, power_W, gpu_util, mem_used_bytes`)"
                .into(),
        ));
    }
    let reqs = logs::read_request_log(&requests_path)?;
    let t0 = reqs[0].arrival_s;
    let mut traces = Vec::new();
    for (p, k) in &power {
        let mut ts = match k {
            Kind::NvidiaSmi => logs::read_nvidia_smi(p, opts.averaging_s)?,
            _ => vec![logs::read_vllm_power_log(p, opts.averaging_s)?],
        };
        for t in &mut ts {
            for w in &mut t.windows {
                w.start_s += opts.clock_offset_s - t0;
                w.end_s += opts.clock_offset_s - t0;
            }
        }
        traces.append(&mut ts);
    }
    // The power log must cover the requests: a log on another clock (local time against epoch
    // seconds) would not.
    let last_arrival = reqs.last().map_or(0.0, |r| r.arrival_s - t0);
    for t in &traces {
        let (a, b) = (
            t.windows.first().map_or(0.0, |w| w.start_s),
            t.windows.last().map_or(0.0, |w| w.end_s),
        );
        if b < 0.0 || a > last_arrival {
            return Err(Error::Csv {
                path: t.path.clone(),
                message: format!(
                    "the power log ({a:.1} s to {b:.1} s from the first request) does not overlap the \
                     requests (0 to {last_arrival:.1} s): are both logs on the same clock? (set \
                     clock_offset_s)"
                ),
            });
        }
    }
    let manifest_path = dir.join("manifest.json");
    let manifest = if manifest_path.exists() {
        let text =
            std::fs::read_to_string(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        Some(serde_json::from_str(&text).map_err(|e| Error::Csv {
            path: manifest_path.clone(),
            message: format!("not valid JSON: {e}"),
        })?)
    } else {
        None
    };
    Ok(MeasuredRun {
        dir: dir.to_path_buf(),
        requests_path,
        power_paths: power.into_iter().map(|(p, _)| p).collect(),
        requests: reqs,
        traces,
        manifest,
    })
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
