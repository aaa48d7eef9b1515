//! `validation.json` and `validation.md`: every compared metric, measured and simulated, with its
//! relative error and, for power metrics, the two baselines'; a suite's error table across cases and its
//! mean absolute errors per case and metric.

use super::{CaseResult, Exceeded, MetricValue, Thresholds, METRICS};
use crate::error::{Error, Result};
use serde::Serialize;
use std::fmt::Write;

#[derive(Serialize)]
struct SingleJson<'a> {
    simwatt_version: &'static str,
    command: &'a str,
    #[serde(flatten)]
    case: &'a CaseResult,
    thresholds: &'a Thresholds,
    exceeded: &'a [Exceeded],
}

#[derive(Serialize)]
struct SuiteJson<'a> {
    simwatt_version: &'static str,
    command: &'a str,
    cases: &'a [CaseResult],
    thresholds: &'a Thresholds,
    exceeded: &'a [Exceeded],
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// validation.json of a single case.
pub fn single_json(
    case: &CaseResult,
    t: &Thresholds,
    exceeded: &[Exceeded],
    command: &str,
) -> Result<String> {
    to_json(&SingleJson {
        simwatt_version: env!("CARGO_PKG_VERSION"),
        command,
        case,
        thresholds: t,
        exceeded,
    })
}

/// validation.json of a suite.
pub fn suite_json(
    cases: &[CaseResult],
    t: &Thresholds,
    exceeded: &[Exceeded],
    command: &str,
) -> Result<String> {
    to_json(&SuiteJson {
        simwatt_version: env!("CARGO_PKG_VERSION"),
        command,
        cases,
        thresholds: t,
        exceeded,
    })
}

/// A value in the unit its metric name carries.
pub fn fmt_value(metric: &str, v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if metric.starts_with("j_per") {
        format!("{v:.4}")
    } else if metric.ends_with("_j") {
        format!("{v:.0}")
    } else if metric.ends_with("_per_s") || metric.ends_with("_w") {
        format!("{v:.1}")
    } else if metric.ends_with("_s") {
        if v.abs() < 1.0 {
            format!("{v:.4}")
        } else {
            format!("{v:.2}")
        }
    } else {
        format!("{v}")
    }
}

/// A relative error as a signed percentage.
pub fn fmt_pct(e: Option<f64>) -> String {
    e.map(|e| format!("{:+.1}%", 100.0 * e))
        .unwrap_or_else(|| "-".into())
}

fn ordered(metrics: &std::collections::BTreeMap<String, MetricValue>) -> Vec<(&str, &MetricValue)> {
    METRICS
        .iter()
        .filter_map(|(n, _)| metrics.get(*n).map(|v| (*n, v)))
        .collect()
}

fn baseline_cells(name: &str, v: &MetricValue) -> String {
    match (v.tdp_x_time, v.vidur_energy) {
        (Some(t), Some(d)) => format!(
            "{} ({}) | {} ({})",
            fmt_value(name, t),
            fmt_pct(v.tdp_x_time_rel_error),
            fmt_value(name, d),
            fmt_pct(v.vidur_energy_rel_error)
        ),
        _ => "- | -".into(),
    }
}

fn case_header(m: &mut String, c: &CaseResult) {
    if let Some(d) = &c.description {
        let _ = writeln!(m, "{}\n", d.trim());
    }
    let _ = writeln!(m, "- config: `{}`", c.config);
    let _ = writeln!(m, "- measured: `{}`", c.measured);
    if !c.simulated.is_empty() {
        let s: Vec<String> = c
            .simulated
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(m, "- simulated: {}", s.join("; "));
    }
    for n in &c.notes {
        let _ = writeln!(m, "- {n}");
    }
    let _ = writeln!(m);
}

fn threshold_section(m: &mut String, t: &Thresholds, exceeded: &[Exceeded]) {
    if t.is_empty() {
        return;
    }
    let limits: Vec<String> =
        t.0.iter()
            .map(|(k, v)| format!("{k} {:.1}%", 100.0 * v))
            .collect();
    let _ = writeln!(
        m,
        "## Thresholds\n\nLargest allowed |error|: {}.\n",
        limits.join(", ")
    );
    if exceeded.is_empty() {
        let _ = writeln!(m, "Every compared metric is within its threshold.\n");
    } else {
        let _ = writeln!(
            m,
            "| case | point | metric | error | threshold |\n|---|---|---|---|---|"
        );
        for e in exceeded {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {:.1}% |",
                e.case,
                e.point,
                e.metric,
                fmt_pct(Some(e.rel_error)),
                100.0 * e.threshold
            );
        }
        let _ = writeln!(m);
    }
}

const LEGEND: &str = "error = (simulated - measured) / measured. TDP x time: every GPU at its TDP \
whenever the run is on; Vidur-Energy: `P_idle + (TDP - P_idle) x min(1, (MFU / 0.45)^0.7)` during a \
stage, idle power between stages; both evaluated on the same simulated batches as simwatt's model.";

/// validation.md of a single case.
pub fn single_markdown(
    c: &CaseResult,
    t: &Thresholds,
    exceeded: &[Exceeded],
    command: &str,
) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Validation: {}\n", c.name);
    let _ = writeln!(m, "Generated by `{command}`.\n");
    case_header(&mut m, c);
    if let Some(msg) = &c.message {
        let _ = writeln!(m, "{msg}\n");
    }
    for p in &c.points {
        if c.points.len() > 1 {
            let _ = writeln!(m, "## {}\n", p.label);
        }
        let _ = writeln!(m, "Execution-time model: {}.\n", p.predictor);
        let _ = writeln!(
            m,
            "| metric | measured | simwatt | error | TDP x time (error) | Vidur-Energy (error) |\n\
             |---|---|---|---|---|---|"
        );
        for (name, v) in ordered(&p.metrics) {
            let _ = writeln!(
                m,
                "| `{name}` | {} | {} | {} | {} |",
                fmt_value(name, v.measured),
                fmt_value(name, v.simulated),
                fmt_pct(v.rel_error),
                baseline_cells(name, v)
            );
        }
        let _ = writeln!(m);
        for n in &p.notes {
            let _ = writeln!(m, "- {n}");
        }
        if !p.notes.is_empty() {
            let _ = writeln!(m);
        }
    }
    let _ = writeln!(m, "{LEGEND}\n");
    threshold_section(&mut m, t, exceeded);
    if !c.plots.is_empty() {
        let _ = writeln!(m, "## Plots\n");
        for p in &c.plots {
            let _ = writeln!(m, "![{p}]({p}.png)\n");
        }
    }
    m
}

/// Mean absolute relative error of simwatt, TDP x time and Vidur-Energy over the points of a case,
/// for one metric; the baselines' only when every point has them.
fn mean_abs(c: &CaseResult, metric: &str) -> Option<(usize, f64, Option<f64>, Option<f64>)> {
    let vals: Vec<&MetricValue> = c
        .points
        .iter()
        .filter_map(|p| p.metrics.get(metric))
        .collect();
    let errs: Vec<f64> = vals
        .iter()
        .filter_map(|v| v.rel_error)
        .map(f64::abs)
        .collect();
    if errs.is_empty() {
        return None;
    }
    let mean = |v: Vec<Option<f64>>| -> Option<f64> {
        let v: Option<Vec<f64>> = v.into_iter().collect();
        v.filter(|v| !v.is_empty())
            .map(|v| v.iter().map(|x| x.abs()).sum::<f64>() / v.len() as f64)
    };
    Some((
        errs.len(),
        errs.iter().sum::<f64>() / errs.len() as f64,
        mean(vals.iter().map(|v| v.tdp_x_time_rel_error).collect()),
        mean(vals.iter().map(|v| v.vidur_energy_rel_error).collect()),
    ))
}

/// validation.md of a suite: a summary of mean absolute errors per case and metric, then every point.
pub fn suite_markdown(
    cases: &[CaseResult],
    t: &Thresholds,
    exceeded: &[Exceeded],
    command: &str,
) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Validation suite\n");
    let _ = writeln!(m, "Generated by `{command}`.\n");
    let _ = writeln!(m, "{LEGEND}\n");
    let _ = writeln!(
        m,
        "## Summary: mean |error| per case and metric\n\n\
         | case | metric | points | simwatt | TDP x time | Vidur-Energy |\n|---|---|---|---|---|---|"
    );
    for c in cases {
        if c.status != "ok" {
            let _ = writeln!(
                m,
                "| {} | {} | 0 | - | - | - |",
                c.name,
                c.message.as_deref().unwrap_or("skipped")
            );
            continue;
        }
        for (metric, _) in METRICS.iter() {
            if let Some((n, s, td, vi)) = mean_abs(c, metric) {
                let f = |x: Option<f64>| {
                    x.map(|x| format!("{:.1}%", 100.0 * x))
                        .unwrap_or_else(|| "-".into())
                };
                let _ = writeln!(
                    m,
                    "| {} | `{metric}` | {n} | {} | {} | {} |",
                    c.name,
                    f(Some(s)),
                    f(td),
                    f(vi)
                );
            }
        }
    }
    let _ = writeln!(m);
    threshold_section(&mut m, t, exceeded);
    let _ = writeln!(m, "## Every point\n");
    for c in cases {
        let _ = writeln!(m, "### {}\n", c.name);
        if let Some(msg) = &c.message {
            let _ = writeln!(m, "{msg}\n");
            continue;
        }
        case_header(&mut m, c);
        let _ = writeln!(
            m,
            "| point | metric | measured | simwatt | error | TDP x time (error) | Vidur-Energy (error) |\n\
             |---|---|---|---|---|---|---|"
        );
        for p in &c.points {
            for (name, v) in ordered(&p.metrics) {
                let _ = writeln!(
                    m,
                    "| {} | `{name}` | {} | {} | {} | {} |",
                    p.label,
                    fmt_value(name, v.measured),
                    fmt_value(name, v.simulated),
                    fmt_pct(v.rel_error),
                    baseline_cells(name, v)
                );
            }
        }
        let _ = writeln!(m);
        let predictors: std::collections::BTreeSet<&str> =
            c.points.iter().map(|p| p.predictor.as_str()).collect();
        let _ = writeln!(
            m,
            "Execution-time model: {}.\n",
            predictors.into_iter().collect::<Vec<_>>().join(", ")
        );
        let notes: std::collections::BTreeSet<String> = c
            .points
            .iter()
            .flat_map(|p| p.notes.iter().map(|n| format!("{}: {n}", p.label)))
            .collect();
        for n in &notes {
            let _ = writeln!(m, "- {n}");
        }
        if !notes.is_empty() {
            let _ = writeln!(m);
        }
        for p in &c.plots {
            let _ = writeln!(m, "![{p}]({p}.png)\n");
        }
    }
    m
}
