//! Fitting a power profile: non-negative least squares over measured window energies, leave-one-out
//! evaluation against TDP x time and Vidur-Energy's curve, the report, and the profile file.
//!
//! Input: replayed [`Observation`]s. A window's predicted energy is linear in the parameters:
//! E = P_idle x t_idle + P_0 x t_busy + k_c x (integral of u_c) + k_m x (integral of u_m), so fitting
//! measured window energies is a non-negative least-squares problem (solved by the `nnls` crate's
//! Lawson-Hanson active-set method). Each window's equation is divided by its length, so residuals are in
//! watts of mean power and windows of different lengths compare, and weighted so that every measured
//! configuration counts once (a time series of 300 readings does not outvote 20 benchmark rows).
//! Output: the fitted parameters, a per-configuration leave-one-out table, and a [`PowerProfile`].

use super::replay::{Loaded, Observation};
use crate::error::{Error, Result};
use crate::power::{vidur_energy_w, PowerProfile, PowerProvenance, Utilisation};
use ndarray::{Array1, Array2};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Free parameters of the fit: idle, P_0, k_c and k_m.
pub const FREE_PARAMETERS: usize = 4;

/// Fewest measured configurations a fit accepts: the free parameters plus two, so that each
/// leave-one-out fold fits the parameters on at least `FREE_PARAMETERS + 1` configurations (more
/// equations than unknowns) and the held-out error measures a prediction, not an interpolation
/// through every point. Idle readings help the fit but are not configurations.
pub const MIN_CONFIGURATIONS: usize = FREE_PARAMETERS + 2;

/// Fitted parameters, watts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coefficients {
    pub idle_w: f64,
    pub p0_w: f64,
    pub k_compute_w: f64,
    pub k_memory_w: f64,
}

impl Coefficients {
    /// Busy power at utilisation `u` under the power cap `cap_w`.
    pub fn busy_w(&self, u: Utilisation, cap_w: f64) -> f64 {
        (self.p0_w + self.k_compute_w * u.compute + self.k_memory_w * u.memory).min(cap_w)
    }
}

/// Solves min ||A x - b|| subject to x >= 0. `a` holds the rows of A. Empty, ragged or non-finite
/// input is an error rather than a panic.
pub fn nnls(a: &[Vec<f64>], b: &[f64]) -> Result<Vec<f64>> {
    let m = a.len();
    let n = a.first().map_or(0, Vec::len);
    if m == 0 || n == 0 {
        return Err(Error::Internal(
            "non-negative least squares needs at least one equation and one unknown".into(),
        ));
    }
    if b.len() != m || a.iter().any(|r| r.len() != n) {
        return Err(Error::Internal(
            "non-negative least squares: the rows and right-hand side do not match".into(),
        ));
    }
    if a.iter().flatten().chain(b).any(|v| !v.is_finite()) {
        return Err(Error::Internal(
            "non-negative least squares: a coefficient is not finite".into(),
        ));
    }
    let am = Array2::from_shape_fn((m, n), |(i, j)| a[i][j]);
    let bv = Array1::from_vec(b.to_vec());
    let (x, _) = nnls::nnls(am.view(), bv.view());
    Ok(x.to_vec())
}

/// Per-window sums of an observation's pieces replayed at the measured pace (stages stretched by
/// `o.stretch`): busy time, integral of u_c, integral of u_m (seconds).
fn window_sums(o: &Observation) -> Vec<[f64; 3]> {
    let k = o.stretch;
    let mut s = vec![[0.0; 3]; o.windows.len()];
    for p in &o.pieces {
        let w = &mut s[p.window as usize];
        let dt = p.dt_s * k;
        w[0] += dt;
        w[1] += (p.u.compute / k).min(1.0) * dt;
        w[2] += (p.u.memory / k).min(1.0) * dt;
    }
    s
}

/// The weighted mean-power equations of the observations: rows of the (idle, busy, u_c, u_m)
/// fractions of each measured window, replayed at the measured pace, right-hand side the measured
/// mean power of the window.
pub fn design(obs: &[&Observation]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for o in obs {
        let weight = (1.0 / o.windows.len() as f64).sqrt();
        for (w, s) in o.windows.iter().zip(window_sums(o)) {
            let busy = s[0].min(w.measured_s);
            let idle = w.measured_s - busy;
            a.push(
                [idle, busy, s[1], s[2]]
                    .iter()
                    .map(|v| weight * v / w.measured_s)
                    .collect(),
            );
            b.push(weight * w.measured_j / w.measured_s);
        }
    }
    (a, b)
}

/// Fits the four parameters on `obs`.
pub fn fit(obs: &[&Observation]) -> Result<Coefficients> {
    let (a, b) = design(obs);
    let x = nnls(&a, &b)?;
    Ok(Coefficients {
        idle_w: x[0],
        p0_w: x[1],
        k_compute_w: x[2],
        k_memory_w: x[3],
    })
}

/// A way to predict power.
#[derive(Debug, Clone, Copy)]
pub enum Method {
    /// simwatt's model with these parameters, capped at the device's TDP.
    Simwatt(Coefficients),
    /// The device's TDP whenever the window runs.
    TdpTimesTime,
    /// Vidur-Energy's MFU curve between this idle power and the TDP (MFU = u_c), idle between stages.
    VidurEnergy { idle_w: f64 },
}

/// A method's prediction for one observation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// Mean power of one GPU over the measured windows, replayed at the measured pace, watts.
    pub mean_w: f64,
    /// Energy per output token over all GPUs on the simulated timeline (end to end: the execution-time
    /// model's error included), joules.
    pub j_per_token: f64,
}

/// Energy of each window under `m`, with stages stretched by `stretch` into windows of `len(w)`.
fn window_energy(
    o: &Observation,
    m: Method,
    stretch: f64,
    len: impl Fn(&super::replay::Window) -> f64,
) -> f64 {
    let cap = o.tdp_w;
    let idle_w = match m {
        Method::Simwatt(c) => c.idle_w,
        Method::TdpTimesTime => cap,
        Method::VidurEnergy { idle_w } => idle_w,
    };
    let mut busy = vec![0.0; o.windows.len()];
    let mut e = 0.0;
    for p in &o.pieces {
        let dt = p.dt_s * stretch;
        let u = Utilisation {
            compute: (p.u.compute / stretch).min(1.0),
            memory: (p.u.memory / stretch).min(1.0),
        };
        let pw = match m {
            Method::Simwatt(c) => c.busy_w(u, cap),
            Method::TdpTimesTime => cap,
            Method::VidurEnergy { idle_w } => vidur_energy_w(idle_w, cap, u.compute),
        };
        busy[p.window as usize] += dt;
        e += pw * dt;
    }
    for (k, w) in o.windows.iter().enumerate() {
        e += idle_w * (len(w) - busy[k]).max(0.0);
    }
    e
}

/// Predicts an observation's mean power (replayed at the measured pace) and energy per output token
/// (on the simulated timeline).
pub fn predict(o: &Observation, m: Method) -> Prediction {
    let measured_s: f64 = o.windows.iter().map(|w| w.measured_s).sum();
    let e_meas = window_energy(o, m, o.stretch, |w| w.measured_s);
    let e_sim = window_energy(o, m, 1.0, |w| w.sim_s);
    Prediction {
        mean_w: e_meas / measured_s,
        j_per_token: e_sim * o.gpu_factor / o.sim_tokens,
    }
}

/// One configuration's leave-one-out result.
#[derive(Debug, Clone, Serialize)]
pub struct LooRow {
    pub source: String,
    pub label: String,
    pub device: String,
    pub model: String,
    pub tensor_parallel: u32,
    pub predictor: String,
    pub measured_w: f64,
    pub measured_j_per_token: f64,
    pub measured_run_s: Option<f64>,
    pub sim_run_s: f64,
    /// Parameters fitted without this configuration.
    pub fold: Coefficients,
    pub simwatt: Prediction,
    pub tdp: Prediction,
    pub vidur: Prediction,
}

/// Leaves each observation out in turn, fits on the rest and predicts it with the three methods.
pub fn leave_one_out(obs: &[Observation]) -> Result<Vec<LooRow>> {
    if obs.iter().filter(|o| o.evaluated).count() < 2 {
        return Err(Error::Internal(
            "leave-one-out needs at least two measured configurations".into(),
        ));
    }
    let mut out = Vec::with_capacity(obs.len());
    for (i, o) in obs.iter().enumerate().filter(|(_, o)| o.evaluated) {
        let rest: Vec<&Observation> = obs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| o)
            .collect();
        let c = fit(&rest)?;
        out.push(LooRow {
            source: o.source.clone(),
            label: o.label.clone(),
            device: o.device.clone(),
            model: o.model.clone(),
            tensor_parallel: o.tensor_parallel,
            predictor: o.predictor.clone(),
            measured_w: o.measured_mean_w(),
            measured_j_per_token: o.measured_j_per_token,
            measured_run_s: o.measured_run_s,
            sim_run_s: o.sim_run_s,
            fold: c,
            simwatt: predict(o, Method::Simwatt(c)),
            tdp: predict(o, Method::TdpTimesTime),
            vidur: predict(o, Method::VidurEnergy { idle_w: c.idle_w }),
        });
    }
    Ok(out)
}

fn pct(pred: f64, meas: f64) -> f64 {
    100.0 * (pred - meas) / meas
}

/// Mean and largest absolute percentage error of one method on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorStats {
    pub mape_pct: f64,
    pub max_pct: f64,
}

fn stats(errs: impl Iterator<Item = f64>) -> ErrorStats {
    let v: Vec<f64> = errs.map(f64::abs).collect();
    ErrorStats {
        mape_pct: v.iter().sum::<f64>() / v.len().max(1) as f64,
        max_pct: v.iter().cloned().fold(0.0, f64::max),
    }
}

/// Leave-one-out errors of the three methods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LooSummary {
    pub points: usize,
    pub simwatt_mean_power: ErrorStats,
    pub tdp_mean_power: ErrorStats,
    pub vidur_mean_power: ErrorStats,
    pub simwatt_j_per_token: ErrorStats,
    pub tdp_j_per_token: ErrorStats,
    pub vidur_j_per_token: ErrorStats,
}

/// Summarises leave-one-out rows.
pub fn summarize(rows: &[&LooRow]) -> LooSummary {
    let mp = |f: fn(&LooRow) -> f64| stats(rows.iter().map(|r| pct(f(r), r.measured_w)));
    let jt = |f: fn(&LooRow) -> f64| stats(rows.iter().map(|r| pct(f(r), r.measured_j_per_token)));
    LooSummary {
        points: rows.len(),
        simwatt_mean_power: mp(|r| r.simwatt.mean_w),
        tdp_mean_power: mp(|r| r.tdp.mean_w),
        vidur_mean_power: mp(|r| r.vidur.mean_w),
        simwatt_j_per_token: jt(|r| r.simwatt.j_per_token),
        tdp_j_per_token: jt(|r| r.tdp.j_per_token),
        vidur_j_per_token: jt(|r| r.vidur.j_per_token),
    }
}

/// Everything `fit power` produces for one device.
pub struct PowerFit {
    pub gpu: String,
    pub cap_w: f64,
    pub coefficients: Coefficients,
    /// In-sample root-mean-square error of the windows' mean power (weighted as in the fit), watts.
    pub fit_rmse_w: f64,
    pub loo: Vec<LooRow>,
    pub summary: LooSummary,
    pub observations: Vec<Observation>,
    pub skipped: Vec<String>,
    /// The data files read, for the profile's provenance.
    pub data: Vec<String>,
}

/// Fits `gpu`'s profile on `loaded` and evaluates it by leave-one-out.
pub fn fit_device(gpu: &str, cap_w: f64, loaded: Loaded, data: Vec<String>) -> Result<PowerFit> {
    let obs = loaded.observations;
    let refs: Vec<&Observation> = obs.iter().collect();
    let c = fit(&refs)?;
    let (a, b) = design(&refs);
    // Each configuration's squared weights add up to 1.
    let sw = refs.len() as f64;
    let sse: f64 = a
        .iter()
        .zip(&b)
        .map(|(r, y)| {
            let p = r[0] * c.idle_w + r[1] * c.p0_w + r[2] * c.k_compute_w + r[3] * c.k_memory_w;
            (p - y).powi(2)
        })
        .sum();
    let loo = leave_one_out(&obs)?;
    let summary = summarize(&loo.iter().collect::<Vec<_>>());
    Ok(PowerFit {
        gpu: gpu.to_string(),
        cap_w,
        coefficients: c,
        fit_rmse_w: (sse / sw).sqrt(),
        loo,
        summary,
        observations: obs,
        skipped: loaded.skipped,
        data,
    })
}

impl PowerFit {
    /// The profile file's content; the parameters the fit does not estimate come from `keep`.
    pub fn profile(&self, notes: String, keep: Option<&PowerProfile>) -> PowerProfile {
        let s = &self.summary;
        let mut error = BTreeMap::new();
        for (k, v) in [
            ("loo_points", s.points as f64),
            ("loo_mean_power_mape_pct", s.simwatt_mean_power.mape_pct),
            ("loo_mean_power_max_pct", s.simwatt_mean_power.max_pct),
            ("loo_j_per_token_mape_pct", s.simwatt_j_per_token.mape_pct),
            ("loo_j_per_token_max_pct", s.simwatt_j_per_token.max_pct),
            (
                "tdp_x_time_loo_mean_power_mape_pct",
                s.tdp_mean_power.mape_pct,
            ),
            (
                "tdp_x_time_loo_j_per_token_mape_pct",
                s.tdp_j_per_token.mape_pct,
            ),
            (
                "vidur_energy_loo_mean_power_mape_pct",
                s.vidur_mean_power.mape_pct,
            ),
            (
                "vidur_energy_loo_j_per_token_mape_pct",
                s.vidur_j_per_token.mape_pct,
            ),
            ("fit_rmse_w", self.fit_rmse_w),
        ] {
            error.insert(k.to_string(), (v * 100.0).round() / 100.0);
        }
        let r = |v: f64| (v * 10.0).round() / 10.0;
        PowerProfile {
            device: self.gpu.clone(),
            idle_w: r(self.coefficients.idle_w),
            loaded_idle_w: keep.and_then(|k| k.loaded_idle_w),
            loaded_idle_source: keep.and_then(|k| k.loaded_idle_source.clone()),
            empty_idle_w: keep.and_then(|k| k.empty_idle_w),
            tail_ms: keep.map_or(0.0, |k| k.tail_ms),
            tail_source: keep.and_then(|k| k.tail_source.clone()),
            dvfs_exponent: keep.map_or(crate::config::power_profile::DEFAULT_DVFS_EXPONENT, |k| {
                k.dvfs_exponent
            }),
            p0_w: r(self.coefficients.p0_w),
            k_compute_w: r(self.coefficients.k_compute_w),
            k_memory_w: r(self.coefficients.k_memory_w),
            cap_w: self.cap_w,
            provenance: PowerProvenance {
                method: "fitted".into(),
                data: self.data.clone(),
                error,
                notes: Some(notes),
            },
        }
    }

    /// The markdown report: fitted parameters, leave-one-out summary, and one row per configuration.
    pub fn report_markdown(&self, command: &str) -> String {
        let mut m = String::new();
        let c = &self.coefficients;
        let _ = writeln!(m, "### Power profile of {}\n", self.gpu);
        let _ = writeln!(m, "Generated by `{command}`.\n");
        for s in &self.skipped {
            let _ = writeln!(m, "- {s}");
        }
        if c.idle_w <= 0.0 {
            let _ = writeln!(
                m,
                "- warning: the fitted idle power is 0 W: the data holds too little idle time to \
                 determine it; add a time series with idle stretches or an `idle` reading"
            );
        }
        if !self.skipped.is_empty() || c.idle_w <= 0.0 {
            let _ = writeln!(m);
        }
        let _ = writeln!(
            m,
            "Fitted on all {} configurations and readings: P_idle = {:.1} W, P_0 = {:.1} W, k_c = {:.1} W, k_m = {:.1} W, \
             cap = {:.0} W; in-sample RMSE of window mean power {:.1} W.\n",
            self.observations.len(),
            c.idle_w,
            c.p0_w,
            c.k_compute_w,
            c.k_memory_w,
            self.cap_w,
            self.fit_rmse_w
        );
        let mut sources: Vec<&str> = self.loo.iter().map(|r| r.source.as_str()).collect();
        sources.dedup();
        let _ = writeln!(
            m,
            "Leave-one-out error (absolute percentage error: mean / largest):\n\n\
             | points | mean power: simwatt | TDP x time | Vidur-Energy | J/token: simwatt | TDP x time | Vidur-Energy |\n\
             |---|---|---|---|---|---|---|"
        );
        let mut groups: Vec<(String, Vec<&LooRow>)> =
            vec![("all".into(), self.loo.iter().collect())];
        for s in &sources {
            groups.push((
                (*s).to_string(),
                self.loo.iter().filter(|r| r.source == *s).collect(),
            ));
        }
        for (name, rows) in &groups {
            let s = summarize(rows);
            let f = |e: ErrorStats| format!("{:.1}% / {:.1}%", e.mape_pct, e.max_pct);
            let _ = writeln!(
                m,
                "| {name} ({}) | {} | {} | {} | {} | {} | {} |",
                s.points,
                f(s.simwatt_mean_power),
                f(s.tdp_mean_power),
                f(s.vidur_mean_power),
                f(s.simwatt_j_per_token),
                f(s.tdp_j_per_token),
                f(s.vidur_j_per_token)
            );
        }
        let _ = writeln!(
            m,
            "\nPer configuration (each predicted by the parameters fitted without it):\n\n\
             | source | configuration | device simulated | predictor | run s measured / simulated | mean W measured | simwatt | TDP x time | Vidur-Energy | J/token measured | simwatt | TDP x time | Vidur-Energy |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in &self.loo {
            let e = |p: f64, q: f64| format!("{:.1} ({:+.1}%)", p, pct(p, q));
            let ej = |p: f64, q: f64| format!("{:.3} ({:+.1}%)", p, pct(p, q));
            let _ = writeln!(
                m,
                "| {} | {} | {} TP{} | {} | {} / {:.1} | {:.1} | {} | {} | {} | {:.3} | {} | {} | {} |",
                r.source,
                r.label,
                r.device,
                r.tensor_parallel,
                r.predictor,
                r.measured_run_s
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_else(|| "-".into()),
                r.sim_run_s,
                r.measured_w,
                e(r.simwatt.mean_w, r.measured_w),
                e(r.tdp.mean_w, r.measured_w),
                e(r.vidur.mean_w, r.measured_w),
                r.measured_j_per_token,
                ej(r.simwatt.j_per_token, r.measured_j_per_token),
                ej(r.tdp.j_per_token, r.measured_j_per_token),
                ej(r.vidur.j_per_token, r.measured_j_per_token)
            );
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nnls_recovers_known_non_negative_parameters() {
        let truth = [3.0, 0.0, 2.0];
        let a: Vec<Vec<f64>> = (0..20)
            .map(|i| {
                let x = i as f64;
                vec![1.0, (x * 0.7).sin(), x / 10.0]
            })
            .collect();
        let b: Vec<f64> = a
            .iter()
            .map(|r| r.iter().zip(truth).map(|(v, t)| v * t).sum())
            .collect();
        let x = nnls(&a, &b).unwrap();
        for (got, want) in x.iter().zip(truth) {
            assert!((got - want).abs() < 1e-9, "{x:?}");
        }
    }

    #[test]
    fn nnls_rejects_empty_and_non_finite_input() {
        assert!(nnls(&[], &[]).is_err());
        assert!(nnls(&[vec![f64::NAN]], &[1.0]).is_err());
        assert!(nnls(&[vec![1.0, 2.0], vec![1.0]], &[1.0, 2.0]).is_err());
    }
}
