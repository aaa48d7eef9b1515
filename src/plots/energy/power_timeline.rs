//! Figure: per-GPU power of each (replica, stage) group over simulated time ([`PowerTimeline`]),
//! from `power.parquet`, split into the power drawn while busy and while idle.

use super::style::*;
use super::tables::*;
use crate::catalog::Catalog;
use crate::error::Result;
use crate::plots::{
    fmt_num, font, DrawResult, Figure, HouseMesh, DESC_PX, EXACT_STEPS_MAX, MAX_TIMELINES, PALETTE,
    TIMELINE_BINS, TITLE_PX,
};
use crate::runfolder::{RunFolder, POWER};
use plotters::coord::Shift;
use plotters::prelude::*;

/// A column of the power chart over `[t0, t1]`: the mean per-GPU power split into the part from idle
/// time and the part from busy time (their sum is the mean power).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerColumn {
    pub t0: f64,
    pub t1: f64,
    /// `sum(idle power x time) / time covered`, W.
    pub idle_w: f64,
    /// `sum(busy power x time) / time covered`, W.
    pub busy_w: f64,
}

/// Exact columns (one per segment) for few busy segments, else [`TIMELINE_BINS`] time bins on `[0, t_end]`.
fn power_columns(segments: &[Segment], t_end: f64, binned: bool) -> Vec<PowerColumn> {
    if !binned {
        return segments
            .iter()
            .filter(|s| s.end > s.start)
            .map(|s| PowerColumn {
                t0: s.start,
                t1: s.end,
                idle_w: s.idle_w,
                busy_w: s.busy_w,
            })
            .collect();
    }
    let n = TIMELINE_BINS;
    let width = if t_end > 0.0 { t_end / n as f64 } else { 1.0 };
    let mut idle = vec![0.0f64; n];
    let mut busy = vec![0.0f64; n];
    let mut covered = vec![0.0f64; n];
    for s in segments.iter().filter(|s| s.end > s.start) {
        let first = ((s.start / width).floor() as usize).min(n - 1);
        let last = ((s.end / width).ceil() as usize).clamp(first + 1, n);
        for b in first..last {
            let (b0, b1) = (b as f64 * width, (b + 1) as f64 * width);
            let overlap = (s.end.min(b1) - s.start.max(b0)).max(0.0);
            if overlap > 0.0 {
                busy[b] += s.busy_w * overlap;
                idle[b] += s.idle_w * overlap;
                covered[b] += overlap;
            }
        }
    }
    (0..n)
        .filter(|&b| covered[b] > 0.0)
        .map(|b| PowerColumn {
            t0: b as f64 * width,
            t1: ((b + 1) as f64 * width).min(t_end.max(width)),
            idle_w: idle[b] / covered[b],
            busy_w: busy[b] / covered[b],
        })
        .collect()
}

/// Columns cut into stretches without gaps.
fn stretches(cols: &[PowerColumn], t_end: f64) -> Vec<&[PowerColumn]> {
    let eps = 1e-9 * t_end.max(1.0);
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..=cols.len() {
        if i == cols.len() || (cols[i].t0 - cols[i - 1].t1).abs() > eps {
            if i > from {
                out.push(&cols[from..i]);
            }
            from = i;
        }
    }
    out
}

/// One panel of the power figure: a (replica, stage) group.
#[derive(Debug, Clone)]
pub struct PowerPanel {
    pub replica: u64,
    pub stage: u64,
    pub gpus: u64,
    pub columns: Vec<PowerColumn>,
}

/// Per-GPU power of each (replica, stage) group over simulated time, from power.parquet.
#[derive(Debug, Clone)]
pub struct PowerTimeline {
    pub panels: Vec<PowerPanel>,
    /// Groups in the run (only the first [`MAX_TIMELINES`] are drawn).
    pub groups: usize,
    pub pipeline_stages: u32,
    pub t_end: f64,
    /// Width of the time bins, when a group has too many batches to draw one by one.
    pub bin_s: Option<f64>,
    /// The device's TDP, drawn as a reference.
    pub tdp_w: Option<f64>,
    /// The operator's power limit (`hardware.power_cap_w` of config.resolved.yaml), drawn as a
    /// reference when set.
    pub cap_w: Option<f64>,
    /// Width of power.parquet's rows, seconds (0: one row per segment), as provenance.json records it.
    pub interval_s: Option<f64>,
}

/// The power figure of a run with power.parquet (the first [`MAX_TIMELINES`] (replica, stage) groups).
pub fn power_timeline(run: &RunFolder, builtin_catalog: &Catalog) -> Result<Option<PowerTimeline>> {
    // Every group counts and sets the time axis, but only the first are drawn: the rows of the
    // first groups in (replica, stage) order are kept as the table is read chunk by chunk.
    let stages = run.pipeline_stages().max(1) as u64;
    let keep = |r: u64, s: u64| r * stages + s < MAX_TIMELINES as u64;
    // Which (replica, stage) groups have rows, by index (a flag per group, not a set insert per row:
    // a long run's table has millions of rows).
    let mut seen = vec![false; (run.replicas() as u64 * stages) as usize];
    let mut t_end = 0.0f64;
    let mut groups = std::collections::BTreeMap::new();
    let rows = run.power_chunks(POWER.columns, |t| {
        for (r, s) in t.u64s("replica")?.into_iter().zip(t.u64s("stage")?) {
            let g = (r * stages + s) as usize;
            if g >= seen.len() {
                seen.resize(g + 1, false);
            }
            seen[g] = true;
        }
        t_end = t.f64s_required("end_s")?.into_iter().fold(t_end, f64::max);
        add_power_rows(t, &keep, &mut groups)
    })?;
    if rows.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let n = seen.iter().filter(|&&x| x).count();
    let shown = sorted_groups(groups);
    // Bin every panel alike, so that they read the same way.
    let binned = shown
        .iter()
        .any(|g| g.segments.iter().filter(|s| s.busy).count() > EXACT_STEPS_MAX);
    let panels = shown
        .iter()
        .map(|g| PowerPanel {
            replica: g.replica,
            stage: g.stage,
            gpus: g.gpus,
            columns: power_columns(&g.segments, t_end, binned),
        })
        .collect();
    Ok(Some(PowerTimeline {
        panels,
        groups: n,
        pipeline_stages: run.pipeline_stages(),
        t_end,
        bin_s: binned.then(|| t_end / TIMELINE_BINS as f64),
        tdp_w: device_tdp_w(run, builtin_catalog),
        cap_w: run
            .config_value("hardware.power_cap_w")
            .and_then(|v| v.as_f64()),
        interval_s: run
            .provenance
            .as_ref()
            .and_then(|p| p["outputs"]["power_interval_s"].as_f64()),
    }))
}

impl PowerTimeline {
    fn legend(&self) -> Vec<(String, Swatch)> {
        let mut items = match self.bin_s {
            None => vec![
                (
                    "power of each GPU of the group".to_string(),
                    Swatch::Line(PALETTE[0], 2),
                ),
                (
                    "busy: running a batch stage".to_string(),
                    Swatch::Fill(PALETTE[0], 0.3),
                ),
                ("idle".to_string(), Swatch::Fill(IDLE, 0.3)),
            ],
            Some(w) => vec![
                (
                    format!(
                        "mean power of each GPU per {} bin",
                        crate::plots::fmt_secs(w)
                    ),
                    Swatch::Line(PALETTE[0], 2),
                ),
                (
                    "shaded: the mean's part from busy time (running a batch stage)".to_string(),
                    Swatch::Fill(PALETTE[0], 0.3),
                ),
                (
                    "shaded: the mean's part from idle time".to_string(),
                    Swatch::Fill(IDLE, 0.3),
                ),
            ],
        };
        if let Some(tdp) = self.tdp_w {
            items.push((format!("TDP ({} W)", fmt_num(tdp)), Swatch::Dashed(GREY)));
        }
        if let Some(cap) = self.cap_w {
            items.push((
                format!("power limit ({} W)", fmt_num(cap)),
                Swatch::Dashed(PALETTE[1]),
            ));
        }
        items
    }

    fn panel_h(&self) -> u32 {
        if self.panels.len() == 1 {
            460
        } else {
            300
        }
    }

    fn y_max(&self) -> f64 {
        let hi = self
            .panels
            .iter()
            .flat_map(|p| p.columns.iter().map(|c| c.idle_w + c.busy_w))
            .chain(self.tdp_w)
            .chain(self.cap_w)
            .fold(0.0, f64::max);
        if hi > 0.0 {
            hi * 1.08
        } else {
            1.0
        }
    }
}

impl Figure for PowerTimeline {
    fn stem(&self) -> String {
        "power_timeline".into()
    }
    fn caption(&self) -> String {
        let which = if self.groups > self.panels.len() {
            format!(
                " (the first {} of {} groups)",
                self.panels.len(),
                self.groups
            )
        } else {
            String::new()
        };
        let how = match self.bin_s {
            None => match self.interval_s {
                Some(i) if i > 0.0 => format!(
                    "each row of power.parquet drawn: the mean over each {} interval a group worked in, \
                     whole idle stretches as one row",
                    crate::plots::fmt_secs(i)
                ),
                Some(_) => "each batch stage drawn exactly".to_string(),
                None => "each row of power.parquet drawn".to_string(),
            },
            Some(w) => format!(
                "means over {} time bins, weighted by time, the shading splitting each mean into its parts \
                 from busy and idle time",
                crate::plots::fmt_secs(w)
            ),
        };
        format!(
            "Power of each GPU over simulated time per (replica, stage) group{which}, from `power.parquet`: \
             busy while running a batch stage, idle between stages; {how}"
        )
    }
    fn section(&self) -> &'static str {
        ENERGY_SECTION
    }
    fn size(&self) -> (u32, u32) {
        let h = 70 + self.panel_h() * self.panels.len() as u32 + legend_height(self.legend().len());
        (1200, h)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (_, h) = root.dim_in_pixel();
        let legend = self.legend();
        let (body, legend_area) = root.split_vertically(h - legend_height(legend.len()));
        legend_strip(&legend_area, &legend)?;
        let title = if self.panels.len() == 1 && self.groups == 1 {
            "GPU power over time".to_string()
        } else if self.groups > self.panels.len() {
            format!(
                "GPU power over time (first {} of {} GPU groups)",
                self.panels.len(),
                self.groups
            )
        } else {
            "GPU power over time, per GPU group".to_string()
        };
        let body = body.margin(12, 0, 0, 0).titled(&title, font(TITLE_PX))?;
        let areas = body.split_evenly((self.panels.len(), 1));
        let y_max = self.y_max();
        let last = self.panels.len() - 1;
        for (i, (p, area)) in self.panels.iter().zip(&areas).enumerate() {
            let heading =
                (self.panels.len() > 1 || self.pipeline_stages > 1 || p.gpus > 1).then(|| {
                    let stage = if self.pipeline_stages > 1 {
                        format!(", stage {}", p.stage)
                    } else {
                        String::new()
                    };
                    let gpus = if p.gpus > 1 {
                        format!(": {} GPUs, the power of each", p.gpus)
                    } else {
                        String::new()
                    };
                    format!("replica {}{stage}{gpus}", p.replica)
                });
            self.draw_panel(area, p, heading.as_deref(), y_max, i == last)?;
        }
        Ok(())
    }
}

impl PowerTimeline {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        p: &PowerPanel,
        heading: Option<&str>,
        y_max: f64,
        x_desc: bool,
    ) -> DrawResult<DB> {
        let x_max = if self.t_end > 0.0 { self.t_end } else { 1.0 };
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(12)
            .margin_right(40)
            .x_label_area_size(if x_desc { 70 } else { 36 })
            .y_label_area_size(90);
        if let Some(h) = heading {
            builder.caption(h, font(DESC_PX));
        }
        let mut chart = builder.build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        let mut mesh = chart.configure_mesh();
        mesh.house_style();
        mesh.y_desc("power per GPU (W)")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .y_labels(5);
        if x_desc {
            mesh.x_desc("simulated time (s)");
        }
        mesh.draw()?;
        let binned = self.bin_s.is_some();
        // Exact segments are drawn as steps; bins as a line through their middles, like the timelines.
        let xs = |c: &PowerColumn| -> Vec<f64> {
            if binned {
                vec![(c.t0 + c.t1) / 2.0]
            } else {
                vec![c.t0, c.t1]
            }
        };
        for s in stretches(&p.columns, self.t_end) {
            // Idle part at the bottom, busy part on top: together the (mean) power.
            let mut idle: Vec<(f64, f64)> = Vec::with_capacity(2 * s.len() + 2);
            let mut busy: Vec<(f64, f64)> = Vec::with_capacity(4 * s.len());
            for c in s {
                for x in xs(c) {
                    idle.push((x, c.idle_w));
                    busy.push((x, c.idle_w + c.busy_w));
                }
            }
            let line = busy.clone();
            for c in s.iter().rev() {
                for x in xs(c).into_iter().rev() {
                    busy.push((x, c.idle_w));
                }
            }
            let (a, z) = (line[0].0, line[line.len() - 1].0);
            idle.push((z, 0.0));
            idle.push((a, 0.0));
            if s.iter().any(|c| c.idle_w > 0.0) {
                chart.draw_series(std::iter::once(Polygon::new(idle, IDLE.mix(0.3).filled())))?;
            }
            if s.iter().any(|c| c.busy_w > 0.0) {
                chart.draw_series(std::iter::once(Polygon::new(
                    busy,
                    PALETTE[0].mix(0.3).filled(),
                )))?;
            }
            chart.draw_series(LineSeries::new(line, PALETTE[0].stroke_width(2)))?;
        }
        if let Some(tdp) = self.tdp_w {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, tdp), (x_max, tdp)],
                10,
                6,
                GREY.stroke_width(2),
            ))?;
        }
        if let Some(cap) = self.cap_w {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, cap), (x_max, cap)],
                10,
                6,
                PALETTE[1].stroke_width(2),
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_bins_split_the_mean_into_busy_and_idle_parts() {
        // Bin width 1 s over [0, 600): busy at 300 W for the first quarter of each second, idle at 60 W
        // for the rest.
        let mut segs = Vec::new();
        for k in 0..600 {
            let t = k as f64;
            segs.push(Segment {
                start: t,
                end: t + 0.25,
                busy: true,
                busy_w: 300.0,
                idle_w: 0.0,
            });
            segs.push(Segment {
                start: t + 0.25,
                end: t + 1.0,
                busy: false,
                busy_w: 0.0,
                idle_w: 60.0,
            });
        }
        let cols = power_columns(&segs, 600.0, true);
        assert_eq!(cols.len(), TIMELINE_BINS);
        let c = cols[10];
        assert_eq!((c.t0, c.t1), (10.0, 11.0));
        assert!((c.busy_w - 75.0).abs() < 1e-9, "{c:?}");
        assert!((c.idle_w - 45.0).abs() < 1e-9, "{c:?}");
        assert_eq!(stretches(&cols, 600.0).len(), 1);
        // Unbinned: one column per segment, the busy ones with no idle part.
        let exact = power_columns(&segs[..4], 600.0, false);
        assert_eq!(exact.len(), 4);
        assert_eq!((exact[0].idle_w, exact[0].busy_w), (0.0, 300.0));
        assert_eq!((exact[1].idle_w, exact[1].busy_w), (60.0, 0.0));
    }
}
