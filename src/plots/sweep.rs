//! Sweep plots: any metric of a merged sweep table against any numeric axis, one line per value of
//! another axis (the mean over replicates and every other axis, with the min-max range as whiskers).
//! `simwatt plot SWEEP_DIR --x AXIS --y METRIC [--by AXIS]` draws one and rewrites sweep.md.

use super::{fmt_num, font, legend_line, render, DrawResult, Figure, PlotFile, PALETTE};
use crate::csvio::CsvTable;
use crate::error::{Error, Result};
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
}

/// The unit a column's name carries (`ttft_s_p90` -> s).
pub fn unit_of_column(name: &str) -> &'static str {
    let base = ["_mean", "_p50", "_p90", "_p99"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    for (suffix, unit) in [
        ("_per_s", "/s"),
        ("_kwh_facility", "kWh"),
        ("_kwh", "kWh"),
        ("_j", "J"),
        ("_w", "W"),
        ("_s", "s"),
        ("_g", "gCO2e"),
        ("_usd", "USD"),
        ("_l", "L"),
        ("_tokens", "tokens"),
    ] {
        if base.ends_with(suffix) {
            return unit;
        }
    }
    ""
}

/// Reads `results.csv` of a merged sweep and groups `y` by (`by`, `x`).
pub fn sweep_chart(dir: &Path, x: &str, y: &str, by: Option<&str>) -> Result<SweepChart> {
    let path = dir.join("results.csv");
    let t = CsvTable::read(&path)?;
    let xs = t.f64_column(x)?;
    let ys = t.text_values(y)?;
    let groups = match by {
        Some(b) => t.text_values(b)?,
        None => vec![String::new(); t.rows()],
    };
    let status = if t.has_column("status") {
        t.text_values("status")?
    } else {
        vec!["ok".to_string(); t.rows()]
    };
    let mut acc: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    let mut used = 0;
    for i in 0..t.rows() {
        // Runs that failed or lack the metric (e.g. no power profile) leave an empty cell: skipped.
        let Ok(v) = ys[i].parse::<f64>() else {
            continue;
        };
        if status[i] != "ok" || !v.is_finite() {
            continue;
        }
        used += 1;
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
    })
}

fn axis_label(name: &str) -> String {
    match unit_of_column(name) {
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
        match &self.by {
            Some(b) => format!(
                "sweep_{}_vs_{}_by_{}",
                safe(&self.y),
                safe(&self.x),
                safe(b)
            ),
            None => format!("sweep_{}_vs_{}", safe(&self.y), safe(&self.x)),
        }
    }

    fn caption(&self) -> String {
        format!(
            "{} against {}{}: mean over replicates and the other axes ({} runs), whiskers from the smallest to the largest run",
            self.y,
            self.x,
            self.by.as_ref().map(|b| format!(", one line per {b}")).unwrap_or_default(),
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

/// Draws one sweep chart into `dir` and rewrites `dir/sweep.md` with every sweep chart there and the
/// chart's numbers.
pub fn plot_sweep(dir: &Path, x: &str, y: &str, by: Option<&str>) -> Result<PlotFile> {
    let chart = sweep_chart(dir, x, y, by)?;
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
