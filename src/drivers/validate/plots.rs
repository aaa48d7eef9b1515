//! Overlay plots of a validation: measured against simulated GPU power over time, and measured against
//! simulated latency CDFs. Drawn with the run plots' helpers ([`crate::plots`]: embedded font, palette,
//! legend below the chart), as PNG and SVG.

use super::PowerTimeline;
use crate::error::Result;
use crate::measured::run::MeasuredRun;
use crate::metrics::quantile_sorted;
use crate::plots::{
    self, fmt_num, fmt_secs, font, legend_below, CdfSeries, DrawResult, Figure, HouseMesh,
    LatencyCdf, PALETTE, TITLE_PX,
};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Measured and simulated power per GPU over time, both as the mean over each measured reading's window.
#[derive(Debug, Clone)]
pub struct PowerOverlay {
    pub title: String,
    /// Step lines: (time s, W).
    pub measured: Vec<(f64, f64)>,
    pub simulated: Vec<(f64, f64)>,
    /// Ends of the measured and simulated active windows, seconds.
    pub t_meas: f64,
    pub t_sim: f64,
    pub measured_idle_w: Option<f64>,
    pub sim_idle_w: f64,
    pub x_range: (f64, f64),
}

impl Figure for PowerOverlay {
    fn stem(&self) -> String {
        "power_overlay".into()
    }
    fn caption(&self) -> String {
        "GPU power per GPU over time: measured readings, and simwatt's simulated power averaged over \
         the same windows (time 0 = first request)"
            .into()
    }
    fn section(&self) -> &'static str {
        "Power"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let grey = RGBColor(60, 60, 60);
        let mut items = vec![
            (
                format!("measured (active window {})", fmt_secs(self.t_meas)),
                (PALETTE[7], 2),
            ),
            (
                format!("simwatt (simulated active window {})", fmt_secs(self.t_sim)),
                (PALETTE[1], 2),
            ),
        ];
        if let Some(w) = self.measured_idle_w {
            items.push((
                format!("measured idle before load: {} W", fmt_num(w)),
                (grey, 2),
            ));
        }
        items.push((
            format!("simwatt loaded idle: {} W", fmt_num(self.sim_idle_w)),
            (PALETTE[0], 2),
        ));
        let (_, h) = root.dim_in_pixel();
        let legend_h = 30 + 30 * items.len() as u32;
        let (chart_area, legend_area) = root.split_vertically(h.saturating_sub(legend_h));
        legend_below(&legend_area, &items)?;
        let y_max = self
            .measured
            .iter()
            .chain(&self.simulated)
            .map(|p| p.1)
            .fold(0.0, f64::max)
            * 1.08;
        let y_max = if y_max > 0.0 { y_max } else { 1.0 };
        let (x0, x1) = self.x_range;
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(&self.title, font(TITLE_PX))
            .margin(20)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(90)
            .build_cartesian_2d(x0..x1, 0.0..y_max)?;
        chart
            .configure_mesh()
            .house_style()
            .x_desc("time from the first request (s)")
            .y_desc("power per GPU (W)")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        for (v, c) in self
            .measured_idle_w
            .map(|v| (v, grey))
            .into_iter()
            .chain(std::iter::once((self.sim_idle_w, PALETTE[0])))
        {
            chart.draw_series(DashedLineSeries::new(
                [(x0, v), (x1, v)],
                10,
                6,
                c.stroke_width(2),
            ))?;
        }
        chart.draw_series(LineSeries::new(
            self.measured.iter().copied(),
            PALETTE[7].stroke_width(2),
        ))?;
        chart.draw_series(LineSeries::new(
            self.simulated.iter().copied(),
            PALETTE[1].stroke_width(2),
        ))?;
        Ok(())
    }
}

/// Draws the power overlay of a measured run and its simulation into `dir`; returns the stem.
pub fn power_overlay(
    dir: &Path,
    name: &str,
    run: &MeasuredRun,
    tl: &PowerTimeline,
    t_meas: f64,
    t_sim: f64,
    measured_idle_w: Option<f64>,
) -> Result<String> {
    // The mean measured trace per window when every GPU has the same windows, else the first GPU's.
    let first = &run.traces[0].windows;
    let same = run.traces.iter().all(|t| t.windows.len() == first.len());
    let mut measured = Vec::with_capacity(2 * first.len());
    let mut simulated = Vec::with_capacity(2 * first.len());
    for (k, w) in first.iter().enumerate() {
        let mw = if same {
            run.traces
                .iter()
                .map(|t| t.windows[k].mean_w())
                .sum::<f64>()
                / run.traces.len() as f64
        } else {
            w.mean_w()
        };
        let sw = tl.mean_w(w.start_s, w.end_s);
        measured.extend([(w.start_s, mw), (w.end_s, mw)]);
        simulated.extend([(w.start_s, sw), (w.end_s, sw)]);
    }
    let x0 = first.first().map_or(0.0, |w| w.start_s).min(0.0);
    let x1 = first
        .last()
        .map_or(t_meas, |w| w.end_s)
        .max(t_meas)
        .max(t_sim);
    let fig = PowerOverlay {
        title: format!("GPU power, measured and simulated: {name}"),
        measured,
        simulated,
        t_meas,
        t_sim,
        measured_idle_w,
        sim_idle_w: tl.idle_w(),
        x_range: (x0, x1),
    };
    Ok(plots::render(&fig, dir)?.stem)
}

fn label(prefix: &str, v: &[f64]) -> String {
    format!(
        "{prefix}: p50 {}, p90 {}, p99 {} (n = {})",
        fmt_secs(quantile_sorted(v, 0.5)),
        fmt_secs(quantile_sorted(v, 0.9)),
        fmt_secs(quantile_sorted(v, 0.99)),
        v.len()
    )
}

/// Draws the CDFs of a measured and a simulated latency (sorted values) into `dir`; returns the stem.
pub fn latency_overlay(
    dir: &Path,
    stem: &'static str,
    title: &str,
    x_desc: &'static str,
    measured: Vec<f64>,
    simulated: Vec<f64>,
) -> Result<String> {
    let fig = LatencyCdf {
        stem,
        title: title.to_string(),
        caption: format!("{title}: CDFs over requests"),
        x_desc,
        series: vec![
            CdfSeries {
                label: label("measured", &measured),
                sorted: measured,
                color: PALETTE[7],
                width: 3,
            },
            CdfSeries {
                label: label("simwatt", &simulated),
                sorted: simulated,
                color: PALETTE[1],
                width: 3,
            },
        ],
    };
    Ok(plots::render(&fig, dir)?.stem)
}
