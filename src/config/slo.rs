//! A per-request latency SLO: the bounds a request must complete within to count toward goodput.
//!
//! Input: the raw `slo` section (`ttft_s`, `tpot_s`, `e2e_s`, seconds). Output: the checked bounds
//! ([`SloConfig`]) and the test one request's latencies pass ([`SloConfig::met`]). The metrics layer
//! applies it to every request (`slo_met`) and to the run (`slo_attainment`,
//! `goodput_requests_per_s`). It may not read files or look at a run.

use super::raw::{RawConfig, SloConfig};
use crate::error::{Error, Result};
use std::path::Path;

impl SloConfig {
    /// Whether a request with these latencies meets every bound: it completed (`ttft_s` and `e2e_s`
    /// known) and each bound given holds; a request without a time per output token (one output
    /// token) meets the `tpot_s` bound.
    pub fn met(&self, ttft_s: Option<f64>, tpot_s: Option<f64>, e2e_s: Option<f64>) -> bool {
        let (Some(ttft), Some(e2e)) = (ttft_s, e2e_s) else {
            return false;
        };
        self.ttft_s.is_none_or(|b| ttft <= b)
            && self.e2e_s.is_none_or(|b| e2e <= b)
            && self.tpot_s.is_none_or(|b| tpot_s.is_none_or(|t| t <= b))
    }

    /// The bounds as text, e.g. `ttft_s <= 0.5, tpot_s <= 0.05`.
    pub fn describe(&self) -> String {
        [
            ("ttft_s", self.ttft_s),
            ("tpot_s", self.tpot_s),
            ("e2e_s", self.e2e_s),
        ]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k} <= {v}")))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Checks the `slo` section: each bound given is a finite number of seconds above 0, and at least one
/// is given.
pub fn resolve(path: &Path, raw: &RawConfig) -> Result<Option<SloConfig>> {
    let Some(slo) = raw.slo else {
        return Ok(None);
    };
    for (field, v) in [
        ("slo.ttft_s", slo.ttft_s),
        ("slo.tpot_s", slo.tpot_s),
        ("slo.e2e_s", slo.e2e_s),
    ] {
        if let Some(v) = v {
            if !(v.is_finite() && v > 0.0 && v <= 1e9) {
                return Err(Error::invalid(
                    path,
                    field,
                    v,
                    "must be a number of seconds above 0 (and at most 1e9)",
                ));
            }
        }
    }
    if slo.ttft_s.is_none() && slo.tpot_s.is_none() && slo.e2e_s.is_none() {
        return Err(Error::invalid(
            path,
            "slo",
            "{}",
            "names no bound: give at least one of ttft_s, tpot_s, e2e_s (seconds)",
        ));
    }
    Ok(Some(slo))
}
