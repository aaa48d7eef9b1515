//! Sweep plots: any metric of a merged sweep table against any numeric axis, one line per value of
//! another axis (the mean over replicates, with the min-max range as whiskers).
//! `simwatt plot SWEEP_DIR --x AXIS --y METRIC [--by AXIS] [--where AXIS=VALUE]... [--average]` draws
//! one and rewrites sweep.md: the plots, the key numbers of every point of the sweep
//! ([`sweep_summary`]) and the last plot's numbers. An axis other than `x` and `by` that still has
//! several values among the runs plotted is an error naming it, unless `--where` fixes it or
//! `--average` asks to average over it (the caption then names what was averaged).

use super::{fmt_num, font, legend_line, render, DrawResult, Figure, PlotFile, PALETTE};
use crate::csvio::CsvTable;
use crate::error::{Error, Result};
use crate::metrics::{renamed_metric, unit_of_column};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// One line: a value of the `by` axis and its points (x, mean y, min y, max y), sorted by x.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSeries {
    pub label: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// A metric against an axis, one line per value of another axis.
#[derive(Debug, Clone)]
pub struct SweepChart {
    pub x: String,
    pub y: String,
    pub by: Option<String>,
    pub series: Vec<SweepSeries>,
    pub runs: usize,
    /// The `--where` filters applied: (axis, value).
    pub filters: Vec<(String, String)>,
    /// Axes averaged over (`--average`), with their values among the runs plotted.
    pub averaged: Vec<(String, Vec<String>)>,
}

/// Which runs a sweep plot takes and how it treats the other axes.
#[derive(Debug, Clone, Default)]
pub struct PlotFilter {
    /// Keep only runs whose axis has this value (`--where AXIS=VALUE`), compared as numbers when
    /// both parse as numbers.
    pub filters: Vec<(String, String)>,
    /// Average over axes that still vary, instead of refusing.
    pub average: bool,
}

/// Parses `AXIS=VALUE`.
pub fn parse_where(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(Error::invalid(
            "--where",
            "where",
            text,
            "expected AXIS=VALUE, e.g. --where hardware.gpu=a100",
        )),
    }
}

fn same_value(cell: &str, want: &str) -> bool {
    match (cell.parse::<f64>(), want.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => cell == want,
    }
}

/// Checks that `name` is a column of `t`, naming the current spelling of a retired metric name.
fn check_column(t: &CsvTable, path: &Path, flag: &str, name: &str) -> Result<()> {
    if t.has_column(name) {
        return Ok(());
    }
    let hint = match renamed_metric(name) {
        Some(now) => format!("`{name}` is now called `{now}`"),
        None => format!(
            "missing from results.csv; its columns: {}",
            t.columns().join(", ")
        ),
    };
    Err(Error::invalid(path, flag, name, hint))
}

/// Reads `results.csv` of a merged sweep and groups `y` by (`by`, `x`), over the runs `filter` keeps.
pub fn sweep_chart(
    dir: &Path,
    x: &str,
    y: &str,
    by: Option<&str>,
    filter: &PlotFilter,
) -> Result<SweepChart> {
    let path = dir.join("results.csv");
    let t = CsvTable::read(&path)?;
    check_column(&t, &path, "--x", x)?;
    check_column(&t, &path, "--y", y)?;
    if let Some(b) = by {
        check_column(&t, &path, "--by", b)?;
    }
    let axes = axis_columns(t.columns());
    let mut keep = vec![true; t.rows()];
    for (k, v) in &filter.filters {
        check_column(&t, &path, "--where", k)?;
        let cells = t.text_values(k)?;
        for (i, c) in cells.iter().enumerate() {
            keep[i] &= same_value(c, v);
        }
        if !keep.iter().any(|k| *k) {
            let mut values: Vec<String> = cells.clone();
            values.sort();
            values.dedup();
            return Err(Error::invalid(
                &path,
                "--where",
                format!("{k}={v}"),
                format!("no run has this value; {k} takes: {}", values.join(", ")),
            ));
        }
    }
    let xs = t.f64_column(x)?;
    let ys = t.text_values(y)?;
    let groups = match by {
        Some(b) => t.text_values(b)?,
        None => vec![String::new(); t.rows()],
    };
    let status = run_status(&t)?;
    let mut acc: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    let mut used = 0;
    let mut used_rows = Vec::new();
    for i in 0..t.rows() {
        // Runs that failed or lack the metric (e.g. no power profile) leave an empty cell: skipped.
        let Ok(v) = ys[i].parse::<f64>() else {
            continue;
        };
        if !keep[i] || status[i] != "ok" || !v.is_finite() {
            continue;
        }
        used += 1;
        used_rows.push(i);
        acc.entry(groups[i].clone())
            .or_default()
            .entry(xs[i].to_bits())
            .or_default()
            .push(v);
    }
    if used == 0 {
        return Err(Error::Column {
            path,
            column: y.to_string(),
            row: None,
            message: "no run has a numeric value to plot".into(),
        });
    }
    // Axes that still vary among the runs plotted would be averaged into one point.
    let mut averaged = Vec::new();
    for a in &axes {
        if a == x || Some(a.as_str()) == by || filter.filters.iter().any(|(k, _)| k == a) {
            continue;
        }
        let cells = t.text_values(a)?;
        let mut values: Vec<String> = used_rows.iter().map(|i| cells[*i].clone()).collect();
        values.sort();
        values.dedup();
        if values.len() > 1 {
            averaged.push((a.clone(), values));
        }
    }
    if !averaged.is_empty() && !filter.average {
        let (a, values) = &averaged[0];
        let others: Vec<&str> = averaged[1..].iter().map(|(a, _)| a.as_str()).collect();
        return Err(Error::invalid(
            &path,
            "--x/--y/--by",
            format!("{y} against {x}"),
            format!(
                "the axis `{a}` has {} values among the runs plotted ({}), which one line would average over{}: pick one with --where {a}={}, draw a line each with --by {a}, or pass --average to average over it",
                values.len(),
                values.join(", "),
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" (so do {})", others.join(", "))
                },
                values[0]
            ),
        ));
    }
    let series = acc
        .into_iter()
        .map(|(label, pts)| {
            let mut points: Vec<(f64, f64, f64, f64)> = pts
                .into_iter()
                .map(|(xb, v)| {
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    (f64::from_bits(xb), mean, lo, hi)
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            SweepSeries { label, points }
        })
        .collect();
    Ok(SweepChart {
        x: x.to_string(),
        y: y.to_string(),
        by: by.map(|s| s.to_string()),
        series,
        runs: used,
        filters: filter.filters.clone(),
        averaged,
    })
}

/// Units of the config keys a sweep commonly varies whose names carry none.
const AXIS_UNITS: [(&str, &str); 8] = [
    ("workload.arrival.rate", "requests/s"),
    ("hardware.tensor_parallel", "GPUs"),
    ("hardware.data_parallel", "ranks"),
    ("hardware.pipeline_stages", "stages"),
    ("hardware.replicas", "replicas"),
    ("scheduler.max_num_seqs", "sequences"),
    ("hardware.power_cap_w", "W"),
    ("hardware.sm_clock_mhz", "MHz"),
];

fn axis_label(name: &str) -> String {
    let unit = AXIS_UNITS
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, u)| *u)
        .unwrap_or_else(|| unit_of_column(name));
    match unit {
        "" => name.to_string(),
        u => format!("{name} ({u})"),
    }
}

fn safe(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl Figure for SweepChart {
    fn stem(&self) -> String {
        let mut stem = match &self.by {
            Some(b) => format!(
                "sweep_{}_vs_{}_by_{}",
                safe(&self.y),
                safe(&self.x),
                safe(b)
            ),
            None => format!("sweep_{}_vs_{}", safe(&self.y), safe(&self.x)),
        };
        for (k, v) in &self.filters {
            stem.push_str(&format!("_where_{}_{}", safe(k), safe(v)));
        }
        stem
    }

    fn caption(&self) -> String {
        let filters: Vec<String> = self
            .filters
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let averaged: Vec<String> = self
            .averaged
            .iter()
            .map(|(a, v)| format!("{a} ({})", v.join(", ")))
            .collect();
        format!(
            "{} against {}{}{}: mean over replicates{} ({} runs), whiskers from the smallest to the largest run",
            self.y,
            self.x,
            self.by.as_ref().map(|b| format!(", one line per {b}")).unwrap_or_default(),
            if filters.is_empty() {
                String::new()
            } else {
                format!(", runs with {}", filters.join(", "))
            },
            if averaged.is_empty() {
                String::new()
            } else {
                format!(" and over {}", averaged.join(", "))
            },
            self.runs
        )
    }

    fn section(&self) -> &'static str {
        "Sweep"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for p in pts {
            x0 = x0.min(p.0);
            x1 = x1.max(p.0);
            y1 = y1.max(p.3);
        }
        if x1 <= x0 {
            x0 -= 0.5;
            x1 += 0.5;
        }
        let pad = (x1 - x0) * 0.04;
        let y1 = if y1 > 0.0 { y1 * 1.08 } else { 1.0 };
        let (chart_area, legend_area) = root.split_vertically(root.dim_in_pixel().1 as i32 - 90);
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(format!("{} against {}", self.y, self.x), font(26))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(100)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..y1)?;
        chart
            .configure_mesh()
            .x_desc(axis_label(&self.x))
            .y_desc(axis_label(&self.y))
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(font(16))
            .axis_desc_style(font(18))
            .draw()?;
        let mut legend = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart.draw_series(LineSeries::new(
                s.points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(3),
            ))?;
            chart.draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 5, color.filled())),
            )?;
            chart.draw_series(
                s.points
                    .iter()
                    .map(|p| PathElement::new(vec![(p.0, p.2), (p.0, p.3)], color.stroke_width(1))),
            )?;
            let label = match &self.by {
                Some(b) => format!("{b} = {}", s.label),
                None => self.y.clone(),
            };
            legend.push((label, color));
        }
        let n = legend.len().max(1);
        let (w, _) = legend_area.dim_in_pixel();
        let col_w = (w as i32 - 40) / n.min(4) as i32;
        for (i, (label, color)) in legend.iter().enumerate() {
            let (cx, cy) = (20 + (i % 4) as i32 * col_w, 20 + (i / 4) as i32 * 28);
            legend_area.draw(&(legend_line(*color, 3))((cx, cy + 9)))?;
            legend_area.draw(&Text::new(label.clone(), (cx + 30, cy), font(18)))?;
        }
        Ok(())
    }
}

/// The key metrics of a sweep summary: results.csv column and table header (with its unit).
pub const KEY_METRICS: [(&str, &str); 7] = [
    ("requests_per_s", "throughput (req/s)"),
    ("output_tokens_per_s", "throughput (output tokens/s)"),
    ("ttft_p90_s", "TTFT p90 (s)"),
    ("j_per_output_token", "energy per output token (J/token)"),
    ("energy_j", "energy (J)"),
    ("carbon_g", "carbon (gCO2e)"),
    ("cost_usd", "cost (USD)"),
];

/// The runs' identity columns of results.csv, which are not axes.
const ID_COLUMNS: [&str; 4] = ["run", "run_id", "replicate", "seed"];

/// Each run's `status` (`ok` for every run of a table without the column).
fn run_status(t: &CsvTable) -> Result<Vec<String>> {
    if t.has_column("status") {
        t.text_values("status")
    } else {
        Ok(vec!["ok".to_string(); t.rows()])
    }
}

/// The axis columns of a results table: those before `status`, less the runs' identity columns.
fn axis_columns(columns: Vec<String>) -> Vec<String> {
    let status_at = columns.iter().position(|c| c == "status").unwrap_or(0);
    columns
        .into_iter()
        .take(status_at)
        .filter(|c| !ID_COLUMNS.contains(&c.as_str()))
        .collect()
}

/// One point of a sweep (a combination of axis values) and the mean of each key metric over its
/// completed runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRow {
    /// The axis values, as written in results.csv.
    pub values: Vec<String>,
    /// Runs of the point with status `ok`, and all its runs.
    pub ok: usize,
    pub runs: usize,
    /// Per metric of [`SweepSummary::metrics`]: the mean over the completed runs that have it.
    pub means: Vec<Option<f64>>,
}

/// The key numbers of every point of a sweep, in run order.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSummary {
    /// The axis columns (those before `status`, less `run`, `run_id`, `replicate` and `seed`).
    pub axes: Vec<String>,
    /// The metrics of [`KEY_METRICS`] that results.csv has: (column, header).
    pub metrics: Vec<(&'static str, &'static str)>,
    /// Those it lacks (e.g. no region: no carbon or cost).
    pub missing: Vec<&'static str>,
    pub rows: Vec<PointRow>,
}

/// Groups the runs of a merged results table by their axis values and averages the key metrics over
/// each point's completed runs. Empty and non-numeric cells are left out of a mean, never taken as 0.
pub fn sweep_summary(t: &CsvTable) -> Result<SweepSummary> {
    let axes = axis_columns(t.columns());
    let status = run_status(t)?;
    let axis_cells: Vec<Vec<String>> = axes
        .iter()
        .map(|a| t.text_values(a))
        .collect::<Result<_>>()?;
    let (metrics, missing): (Vec<_>, Vec<_>) =
        KEY_METRICS.iter().partition(|(c, _)| t.has_column(c));
    let metrics: Vec<(&'static str, &'static str)> = metrics.into_iter().copied().collect();
    let missing: Vec<&'static str> = missing.into_iter().map(|(c, _)| *c).collect();
    let cells: Vec<Vec<String>> = metrics
        .iter()
        .map(|(c, _)| t.text_values(c))
        .collect::<Result<_>>()?;
    let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut sums: Vec<Vec<(f64, usize)>> = Vec::new();
    let mut rows: Vec<PointRow> = Vec::new();
    for i in 0..t.rows() {
        let key: Vec<String> = axis_cells.iter().map(|c| c[i].clone()).collect();
        let k = *index.entry(key.clone()).or_insert_with(|| {
            rows.push(PointRow {
                values: key,
                ok: 0,
                runs: 0,
                means: vec![None; metrics.len()],
            });
            sums.push(vec![(0.0, 0); metrics.len()]);
            rows.len() - 1
        });
        rows[k].runs += 1;
        if status[i] != "ok" {
            continue;
        }
        rows[k].ok += 1;
        for (m, col) in cells.iter().enumerate() {
            if let Ok(v) = col[i].parse::<f64>() {
                if v.is_finite() {
                    sums[k][m].0 += v;
                    sums[k][m].1 += 1;
                }
            }
        }
    }
    for (row, s) in rows.iter_mut().zip(&sums) {
        row.means = s
            .iter()
            .map(|(sum, n)| (*n > 0).then(|| sum / *n as f64))
            .collect();
    }
    Ok(SweepSummary {
        axes,
        metrics,
        missing,
        rows,
    })
}

/// The sweep summary as a Markdown section.
fn summary_markdown(s: &SweepSummary) -> String {
    let mut md = String::from("## Key numbers by point\n\n");
    let _ = writeln!(
        md,
        "Each row is a point of the sweep (a combination of axis values): the mean over its completed \
         runs (replicates); `-`: none of them has the metric. Energy, carbon and cost are per run.\n"
    );
    let mut header: Vec<String> = s.axes.clone();
    header.push("runs ok".into());
    header.extend(s.metrics.iter().map(|(_, h)| h.to_string()));
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for r in &s.rows {
        let mut cells = r.values.clone();
        cells.push(format!("{}/{}", r.ok, r.runs));
        cells.extend(
            r.means
                .iter()
                .map(|m| m.map(fmt_num).unwrap_or_else(|| "-".into())),
        );
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    if !s.missing.is_empty() {
        let _ = writeln!(
            md,
            "\nNot in results.csv, so not shown: {}.",
            s.missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md.push('\n');
    md
}

/// Draws one sweep chart into `dir` and rewrites `dir/sweep.md` with every sweep chart there and the
/// chart's numbers.
pub fn plot_sweep(
    dir: &Path,
    x: &str,
    y: &str,
    by: Option<&str>,
    filter: &PlotFilter,
) -> Result<PlotFile> {
    let chart = sweep_chart(dir, x, y, by, filter)?;
    let file = render(&chart, dir)?;
    let mut md = String::new();
    let _ = writeln!(md, "# simwatt sweep\n");
    let _ = writeln!(
        md,
        "Runs and their parameters and metrics: `results.csv` / `results.parquet`. Metric definitions: \
         docs/metrics.md in the simwatt repository.\n"
    );
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(|s| s.to_string()))
        .filter(|n| n.starts_with("sweep_") && n.ends_with(".png"))
        .map(|n| n.trim_end_matches(".png").to_string())
        .collect();
    stems.sort();
    let _ = writeln!(md, "## Plots\n");
    for s in &stems {
        let _ = writeln!(md, "![{s}]({s}.png)\n\n`{s}` ([SVG]({s}.svg))\n");
    }
    md.push_str(&summary_markdown(&sweep_summary(&CsvTable::read(
        &dir.join("results.csv"),
    )?)?));
    let _ = writeln!(md, "## {} against {}\n", chart.y, chart.x);
    let _ = writeln!(md, "{}.\n", file.caption);
    let _ = writeln!(
        md,
        "| {} | {} | mean {} | min | max |\n|---|---|---|---|---|",
        chart.by.as_deref().unwrap_or("-"),
        axis_label(&chart.x),
        axis_label(&chart.y)
    );
    for s in &chart.series {
        for p in &s.points {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                if s.label.is_empty() { "-" } else { &s.label },
                fmt_num(p.0),
                fmt_num(p.1),
                fmt_num(p.2),
                fmt_num(p.3)
            );
        }
    }
    let path = dir.join("sweep.md");
    std::fs::write(&path, md).map_err(|e| Error::io(&path, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_averages_each_point_over_its_completed_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("results.csv");
        // Two points of two replicates; one run failed, one lacks carbon; no cost column.
        std::fs::write(
            &path,
            "run,run_id,replicate,seed,scheduler.policy,hardware.gpu,status,error,requests_per_s,ttft_p90_s,j_per_output_token,carbon_g\n\
             0,a,0,11,vllm,a100,ok,,2.0,0.10,0.40,1.0\n\
             1,b,1,12,vllm,a100,ok,,4.0,0.20,0.50,\n\
             2,c,0,13,orca,a100,ok,,3.0,0.30,0.60,2.0\n\
             3,d,1,14,orca,a100,failed,boom,,,,\n",
        )
        .unwrap();
        let s = sweep_summary(&CsvTable::read(&path).unwrap()).unwrap();
        assert_eq!(s.axes, ["scheduler.policy", "hardware.gpu"]);
        let cols: Vec<&str> = s.metrics.iter().map(|m| m.0).collect();
        assert_eq!(
            cols,
            [
                "requests_per_s",
                "ttft_p90_s",
                "j_per_output_token",
                "carbon_g"
            ]
        );
        assert_eq!(s.missing, ["output_tokens_per_s", "energy_j", "cost_usd"]);
        assert_eq!(s.rows.len(), 2);
        let vllm = &s.rows[0];
        assert_eq!(
            (vllm.values.clone(), vllm.ok, vllm.runs),
            (vec!["vllm".to_string(), "a100".into()], 2, 2)
        );
        assert_eq!(vllm.means[0], Some(3.0));
        assert!((vllm.means[1].unwrap() - 0.15).abs() < 1e-12);
        // Carbon: the one run that has it, not (1 + 0) / 2.
        assert_eq!(vllm.means[3], Some(1.0));
        let orca = &s.rows[1];
        assert_eq!((orca.ok, orca.runs), (1, 2));
        assert_eq!(orca.means, [Some(3.0), Some(0.3), Some(0.6), Some(2.0)]);
        let md = summary_markdown(&s);
        assert!(
            md.contains("| scheduler.policy | hardware.gpu | runs ok | throughput (req/s) | TTFT p90 (s) | energy per output token (J/token) | carbon (gCO2e) |"),
            "{md}"
        );
        assert!(
            md.contains("| orca | a100 | 1/2 | 3 | 0.3 | 0.6 | 2 |"),
            "{md}"
        );
        assert!(
            md.contains("not shown: `output_tokens_per_s`, `energy_j`, `cost_usd`"),
            "{md}"
        );
    }
}
