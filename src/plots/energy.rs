//! Energy plots of a run: GPU power over time, energy per replica, energy per token against batch size,
//! and carbon, cost and water per region.
//!
//! Input: a [`RunFolder`]: `power.parquet` (power segments), `batches.parquet` (`energy_j` of each batch
//! stage) and `summary.json` (`regions`). Output: the figures below, each made only when the run has its
//! inputs (a run without a power profile has no `power.parquet`, NaN `energy_j` and no regions, so it gets
//! none of them):
//! - [`PowerTimeline`] (`power_timeline`): per-GPU power of each (replica, stage) group over time;
//! - [`EnergyByReplica`] (`energy_by_replica`): prefill, decode and idle energy of each replica;
//! - [`EnergyPerToken`] (`energy_per_token`): each batch's energy per token against its size;
//! - [`RegionChart`] (`regions`): carbon, cost and water of the run in each configured region.

use super::{
    fmt_num, font, DrawResult, Figure, HouseMesh, DESC_PX, EXACT_STEPS_MAX, LEGEND_PX, LOG_SPREAD,
    MAX_TIMELINES, PALETTE, TICK_PX, TIMELINE_BINS, TITLE_PX,
};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::runfolder::{RunFolder, Table};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;
use std::collections::BTreeMap;

/// Section of summary.md for the power and energy figures.
const ENERGY_SECTION: &str = "Power and energy";
/// Section of summary.md for the region figure.
const REGION_SECTION: &str = "Carbon, cost and water by region";
/// Colour of idle power and idle energy.
const IDLE: RGBColor = PALETTE[6];
/// Colour of decode energy (as decoding in the timelines).
const DECODE: RGBColor = PALETTE[0];
/// Colour of prefill energy (as prefills in the timelines).
const PREFILL: RGBColor = PALETTE[1];
/// Reference lines (TDP).
const GREY: RGBColor = RGBColor(60, 60, 60);
/// Up to this many batches, the energy-per-token plot draws one dot per batch.
const TOKEN_DOTS_MAX: usize = 3000;
/// Above this many distinct batch sizes, batch sizes are grouped into this many log-spaced bins.
const SIZE_BINS: usize = 40;

// ---------------------------------------------------------------------------------------------------
// Legends and labels

/// What a legend entry shows beside its text.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    /// A line of this width.
    Line(RGBColor, u32),
    /// A dashed line.
    Dashed(RGBColor),
    /// A filled square (a shaded area or a bar).
    Fill(RGBColor, f64),
    /// A dot (one per batch).
    Dot(RGBColor),
}

fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Swatch,
    x: i32,
    y: i32,
) -> DrawResult<DB> {
    match s {
        Swatch::Line(c, w) => area.draw(&PathElement::new(
            vec![(x, y), (x + 30, y)],
            c.stroke_width(w.max(2)),
        )),
        Swatch::Dashed(c) => {
            for k in 0..3 {
                area.draw(&PathElement::new(
                    vec![(x + 11 * k, y), (x + 11 * k + 7, y)],
                    c.stroke_width(2),
                ))?;
            }
            Ok(())
        }
        Swatch::Fill(c, alpha) => {
            area.draw(&Rectangle::new(
                [(x + 3, y - 9), (x + 27, y + 9)],
                c.mix(alpha).filled(),
            ))?;
            area.draw(&Rectangle::new([(x + 3, y - 9), (x + 27, y + 9)], c))
        }
        Swatch::Dot(c) => area.draw(&Circle::new((x + 15, y), 4, c.mix(0.6).filled())),
    }
}

/// Height of a legend strip of `n` entries.
fn legend_height(n: usize) -> u32 {
    20 + 30 * n as u32
}

/// Legend entries in one column, centred in `area` (below the chart, where they hide nothing).
fn legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, Swatch)],
) -> DrawResult<DB> {
    super::legend_column(area, items, 5, |area, swatch, x0, y| {
        draw_swatch(area, *swatch, x0, y)
    })
}

/// Legend entries on one line from `(x, y)` (the vertical centre); returns the x after the last one.
fn legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, Swatch)],
    x: i32,
    y: i32,
) -> std::result::Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let style = font(LEGEND_PX);
    let mut x = x;
    for (text, swatch) in items {
        draw_swatch(area, *swatch, x, y)?;
        area.draw(&Text::new(
            text.clone(),
            (x + 38, y),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += 38 + area.estimate_text_size(text, &style)?.0 as i32 + 28;
    }
    Ok(x)
}

/// Draws `text` on `area` at the absolute backend position `abs` (as a chart's `backend_coord` gives).
pub(crate) fn text_at<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    abs: (i32, i32),
    style: &TextStyle,
) -> DrawResult<DB> {
    let base = area.get_base_pixel();
    area.draw(&Text::new(
        text.to_string(),
        (abs.0 - base.0, abs.1 - base.1),
        style.clone(),
    ))
}

/// A unit that keeps energies readable: (joules per unit, unit name).
fn energy_unit(max_j: f64) -> (f64, &'static str) {
    if max_j < 1e4 {
        (1.0, "J")
    } else if max_j < 1e7 {
        (1e3, "kJ")
    } else if max_j < 1e10 {
        (1e6, "MJ")
    } else {
        (1e9, "GJ")
    }
}

/// An energy with a unit that keeps it readable (`16.9 J`, `1.38 kJ`, `57 kJ`).
fn fmt_energy(j: f64) -> String {
    let (scale, unit) = match j.abs() {
        x if x < 1e3 => (1.0, "J"),
        x if x < 1e6 => (1e3, "kJ"),
        x if x < 1e9 => (1e6, "MJ"),
        _ => (1e9, "GJ"),
    };
    format!("{} {unit}", fmt_num(j / scale))
}

/// A count with thousands separators (`10,964`).
fn fmt_count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share in percent for a legend (`25.8%`, `0.02%`).
fn fmt_pct(part: f64, total: f64) -> String {
    if total > 0.0 {
        format!("{}%", fmt_num(100.0 * part / total))
    } else {
        "-".into()
    }
}

/// Thermal design power of the run's device, when the run used the built-in device catalog.
fn device_tdp_w(run: &RunFolder, builtin_catalog: &Catalog) -> Option<f64> {
    let builtin = run
        .config_value("catalog.devices")
        .is_none_or(|v| v.is_null());
    if !builtin {
        return None;
    }
    let gpu = run.summary_str("gpu")?;
    builtin_catalog.device(gpu).map(|(_, d)| d.tdp_w)
}

// ---------------------------------------------------------------------------------------------------
// Power over time

/// One piece of constant power of a GPU group (a row of power.parquet).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: f64,
    end: f64,
    busy: bool,
    /// Per-GPU power, W.
    w: f64,
}

/// The power segments of one (replica, stage) group of `gpus` identical GPUs.
#[derive(Debug, Clone)]
struct Group {
    replica: u64,
    stage: u64,
    gpus: u64,
    segments: Vec<Segment>,
}

/// The groups of power.parquet, ordered by (replica, stage), each group's segments by start.
/// The columns of power.parquet that [`power_groups`] reads.
const POWER_COLUMNS: [&str; 7] = [
    "replica", "stage", "gpus", "start_s", "end_s", "state", "power_w",
];

fn power_groups(t: &Table) -> Result<Vec<Group>> {
    let replica = t.u64s("replica")?;
    let stage = t.u64s("stage")?;
    let gpus = t.u64s("gpus")?;
    let start = t.f64s_required("start_s")?;
    let end = t.f64s_required("end_s")?;
    // 0 = busy, 1 = idle; anything else is an error naming the row.
    let state = t.text_codes("state", &["busy", "idle"])?;
    let w = t.f64s_required("power_w")?;
    let mut groups: BTreeMap<(u64, u64), Group> = BTreeMap::new();
    for i in 0..t.rows() {
        let busy = state[i] == 0;
        groups
            .entry((replica[i], stage[i]))
            .or_insert_with(|| Group {
                replica: replica[i],
                stage: stage[i],
                gpus: gpus[i],
                segments: Vec::new(),
            })
            .segments
            .push(Segment {
                start: start[i],
                end: end[i],
                busy,
                w: w[i],
            });
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    for g in &mut out {
        g.segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    Ok(out)
}

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
                idle_w: if s.busy { 0.0 } else { s.w },
                busy_w: if s.busy { s.w } else { 0.0 },
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
                if s.busy {
                    busy[b] += s.w * overlap;
                } else {
                    idle[b] += s.w * overlap;
                }
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
}

/// The power figure of a run with power.parquet (the first [`MAX_TIMELINES`] (replica, stage) groups).
pub fn power_timeline(run: &RunFolder, builtin_catalog: &Catalog) -> Result<Option<PowerTimeline>> {
    let Some(t) = run.power(&POWER_COLUMNS)? else {
        return Ok(None);
    };
    if t.rows() == 0 {
        return Ok(None);
    }
    // Every group counts and sets the time axis, but only the first are drawn: select their rows
    // before building segments.
    let pairs: Vec<(u64, u64)> = t
        .u64s("replica")?
        .into_iter()
        .zip(t.u64s("stage")?)
        .collect();
    let all: std::collections::BTreeSet<(u64, u64)> = pairs.iter().copied().collect();
    let n = all.len();
    let t_end = t.f64s_required("end_s")?.into_iter().fold(0.0, f64::max);
    let first: std::collections::BTreeSet<(u64, u64)> =
        all.into_iter().take(MAX_TIMELINES as usize).collect();
    let keep: Vec<bool> = pairs.iter().map(|p| first.contains(p)).collect();
    drop(pairs);
    let shown = power_groups(&t.filter(&keep)?)?;
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
                    format!("mean power of each GPU per {} bin", super::fmt_secs(w)),
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
            None => "each batch stage drawn exactly".to_string(),
            Some(w) => format!(
                "means over {} time bins, weighted by time, the shading splitting each mean into its parts \
                 from busy and idle time",
                super::fmt_secs(w)
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
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// Energy per replica

/// Prefill, decode and idle GPU energy of each replica.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyByReplica {
    /// Joules per replica (index = replica).
    pub prefill_j: Vec<f64>,
    pub decode_j: Vec<f64>,
    pub idle_j: Vec<f64>,
}

/// The `energy_j` column of batches.parquet, when every stage has a finite energy (a run with a power
/// profile).
fn stage_energies(run: &RunFolder) -> Result<Option<Vec<f64>>> {
    let b = run.batches(&["energy_j"])?;
    if b.rows() == 0 || !b.has("energy_j") {
        return Ok(None);
    }
    let e: Vec<Option<f64>> = b.f64s("energy_j")?;
    if e.iter().any(|v| !v.is_some_and(f64::is_finite)) {
        return Ok(None);
    }
    Ok(Some(e.into_iter().flatten().collect()))
}

/// Splits a batch stage's energy between prefill and decode by tokens, as the simulator attributes it to
/// requests: each prefill token and each decode step (one token) gets the same share; padding sequences
/// of static batches get none. Returns (prefill J, decode J).
pub fn split_stage_energy(energy_j: f64, prefill_tokens: f64, decode_tokens: f64) -> (f64, f64) {
    let tokens = prefill_tokens + decode_tokens;
    if tokens > 0.0 {
        (
            energy_j * prefill_tokens / tokens,
            energy_j * decode_tokens / tokens,
        )
    } else {
        (0.0, energy_j)
    }
}

/// The energy of each replica, from batches.parquet (busy) and power.parquet (idle); none without either.
pub fn energy_by_replica(run: &RunFolder) -> Result<Option<EnergyByReplica>> {
    let (Some(power), Some(energy)) = (run.power(&POWER_COLUMNS)?, stage_energies(run)?) else {
        return Ok(None);
    };
    let b = run.batches(&["replica", "prefill_tokens", "decode_tokens"])?;
    let replica = b.u64s("replica")?;
    let prefill = b.f64s_required("prefill_tokens")?;
    let decode = b.f64s_required("decode_tokens")?;
    // Only idle segments count here (busy energy comes from the batches): drop the busy rows first.
    let idle: Vec<bool> = power
        .text_codes("state", &["busy", "idle"])?
        .into_iter()
        .map(|c| c == 1)
        .collect();
    let groups = power_groups(&power.filter(&idle)?)?;
    let n = replica
        .iter()
        .map(|r| *r as usize + 1)
        .chain(groups.iter().map(|g| g.replica as usize + 1))
        .max()
        .unwrap_or(0)
        .max(run.replicas() as usize);
    let mut out = EnergyByReplica {
        prefill_j: vec![0.0; n],
        decode_j: vec![0.0; n],
        idle_j: vec![0.0; n],
    };
    for i in 0..b.rows() {
        let (p, d) = split_stage_energy(energy[i], prefill[i], decode[i]);
        out.prefill_j[replica[i] as usize] += p;
        out.decode_j[replica[i] as usize] += d;
    }
    for g in &groups {
        out.idle_j[g.replica as usize] += g
            .segments
            .iter()
            .filter(|s| !s.busy)
            .map(|s| s.w * g.gpus as f64 * (s.end - s.start))
            .sum::<f64>();
    }
    Ok(Some(out))
}

impl EnergyByReplica {
    fn totals(&self) -> Vec<f64> {
        (0..self.prefill_j.len())
            .map(|r| self.prefill_j[r] + self.decode_j[r] + self.idle_j[r])
            .collect()
    }
}

impl Figure for EnergyByReplica {
    fn stem(&self) -> String {
        "energy_by_replica".into()
    }
    fn caption(&self) -> String {
        "GPU energy of each replica over the run: busy energy of its batch stages (`batches.parquet`), a \
         stage's energy split between prefill and decode by tokens (prefill tokens and decode steps alike, \
         as requests are charged), and idle energy between stages (`power.parquet`); host energy is not \
         included"
            .into()
    }
    fn section(&self) -> &'static str {
        ENERGY_SECTION
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.prefill_j.len();
        let totals = self.totals();
        let max = totals.iter().copied().fold(0.0, f64::max);
        let (scale, unit) = energy_unit(max);
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        let (p, d, i) = (sum(&self.prefill_j), sum(&self.decode_j), sum(&self.idle_j));
        let all = p + d + i;
        let scope = if n > 1 { "all replicas: " } else { "" };
        let part =
            |name: &str, v: f64| format!("{name} ({scope}{}, {})", fmt_energy(v), fmt_pct(v, all));
        let legend = vec![
            (part("idle", i), Swatch::Fill(IDLE, 0.8)),
            (part("decode", d), Swatch::Fill(DECODE, 0.8)),
            (part("prefill", p), Swatch::Fill(PREFILL, 0.8)),
        ];
        let (_, h) = root.dim_in_pixel();
        let (chart_area, legend_area) = root.split_vertically(h - legend_height(legend.len()));
        legend_strip(&legend_area, &legend)?;
        let y_max = if max > 0.0 { max / scale * 1.12 } else { 1.0 };
        let mut chart = ChartBuilder::on(&chart_area)
            .caption("GPU energy per replica", font(TITLE_PX))
            .margin(20)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(100)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..y_max)?;
        // Replica labels: every one up to 30 replicas, else every k-th.
        let every = n.div_ceil(30).max(1);
        let label = move |v: &f64| {
            let r = v.round();
            if (v - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < n && r as usize % every == 0 {
                format!("{}", r as usize)
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .house_style()
            .disable_x_mesh()
            .x_desc("replica")
            .y_desc(format!("GPU energy ({unit})"))
            .x_labels(n.min(30) + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&|v| fmt_num(*v))
            .y_labels(6)
            .draw()?;
        let half = if n > 1 { 0.35 } else { 0.15 };
        for (r, total) in totals.iter().enumerate() {
            let x = r as f64;
            let mut y = 0.0;
            for (v, c) in [
                (self.prefill_j[r], PREFILL),
                (self.decode_j[r], DECODE),
                (self.idle_j[r], IDLE),
            ] {
                let top = y + v / scale;
                if top > y {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x - half, y), (x + half, top)],
                        c.mix(0.8).filled(),
                    )))?;
                }
                y = top;
            }
            if n <= 16 {
                let at = chart.backend_coord(&(x, total / scale));
                text_at(
                    &chart_area,
                    &format!("{} {unit}", fmt_num(total / scale)),
                    (at.0, at.1 - 6),
                    &font(TICK_PX).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// Energy per token against batch size

/// Statistics of the energy per token of the batches of one size (or one bin of sizes).
#[derive(Debug, Clone, PartialEq)]
pub struct SizeStat {
    /// Batch size (requests), or the geometric mean of the sizes of a bin.
    pub requests: f64,
    pub batches: usize,
    pub mean: f64,
    pub p10: f64,
    pub p90: f64,
}

/// Energy per token of one kind of batch.
#[derive(Debug, Clone)]
pub struct TokenSeries {
    pub label: String,
    pub color: RGBColor,
    /// (requests, J per token) of every batch, when they are few enough to draw one by one.
    pub dots: Vec<(f64, f64)>,
    pub batches: usize,
    pub stats: Vec<SizeStat>,
}

/// Energy per token of each batch with decodes against its number of requests.
#[derive(Debug, Clone)]
pub struct EnergyPerToken {
    pub series: Vec<TokenSeries>,
    /// Batch sizes are grouped into log-spaced bins (too many distinct sizes).
    pub size_bins: bool,
    pub pipeline_stages: u32,
}

/// A batch: its replica, requests, tokens and energy over all its pipeline stages.
#[derive(Debug, Clone, Copy)]
struct BatchEnergy {
    requests: f64,
    prefill_tokens: f64,
    decode_tokens: f64,
    energy_j: f64,
}

/// The batches of a run with their energy summed over pipeline stages. A batch runs through its
/// replica's stages in order and each stage runs batches first come, first served, so the k-th row of
/// (replica, stage s) is the same batch for every s.
fn batch_energies(run: &RunFolder, energy: &[f64]) -> Result<Vec<BatchEnergy>> {
    let b = run.batches(&[
        "replica",
        "stage",
        "num_requests",
        "prefill_tokens",
        "decode_tokens",
    ])?;
    let replica = b.u64s("replica")?;
    let stage = b.u64s("stage")?;
    let reqs = b.f64s_required("num_requests")?;
    let prefill = b.f64s_required("prefill_tokens")?;
    let decode = b.f64s_required("decode_tokens")?;
    let mut rows: BTreeMap<u64, Vec<Vec<usize>>> = BTreeMap::new();
    for i in 0..b.rows() {
        let per_stage = rows.entry(replica[i]).or_default();
        let s = stage[i] as usize;
        if per_stage.len() <= s {
            per_stage.resize(s + 1, Vec::new());
        }
        per_stage[s].push(i);
    }
    let mut out = Vec::new();
    for per_stage in rows.values() {
        let Some(last) = per_stage.last() else {
            continue;
        };
        for (k, &i) in last.iter().enumerate() {
            let stages: Option<Vec<usize>> = per_stage.iter().map(|s| s.get(k).copied()).collect();
            let Some(stages) = stages else { continue };
            if stages
                .iter()
                .any(|&j| prefill[j] != prefill[i] || decode[j] != decode[i])
            {
                return Err(Error::Column {
                    path: b.path.clone(),
                    column: "prefill_tokens, decode_tokens".into(),
                    row: Some(i + 1),
                    message: "the pipeline stages of a batch do not line up (rows out of order?)"
                        .into(),
                });
            }
            out.push(BatchEnergy {
                requests: reqs[i],
                prefill_tokens: prefill[i],
                decode_tokens: decode[i],
                energy_j: stages.iter().map(|&j| energy[j]).sum(),
            });
        }
    }
    Ok(out)
}

fn size_stats(points: &[(f64, f64)], bins: Option<(f64, f64)>) -> Vec<SizeStat> {
    // Key: the batch size, or the index of its log-spaced bin.
    let key = |x: f64| -> i64 {
        match bins {
            None => x.round() as i64,
            Some((lo, hi)) => {
                let f = (x.ln() - lo.ln()) / (hi.ln() - lo.ln()).max(1e-12);
                ((f * SIZE_BINS as f64).floor() as i64).clamp(0, SIZE_BINS as i64 - 1)
            }
        }
    };
    let mut groups: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
    for &(x, y) in points {
        groups.entry(key(x)).or_default().push((x, y));
    }
    groups
        .into_values()
        .map(|g| {
            let n = g.len();
            let ys = super::sorted(g.iter().map(|p| p.1).collect());
            SizeStat {
                requests: (g.iter().map(|p| p.0.ln()).sum::<f64>() / n as f64).exp(),
                batches: n,
                mean: ys.iter().sum::<f64>() / n as f64,
                p10: crate::metrics::quantile_sorted(&ys, 0.1),
                p90: crate::metrics::quantile_sorted(&ys, 0.9),
            }
        })
        .collect()
}

/// The energy-per-token figure of a run whose batches have energies; none when no batch decodes.
pub fn energy_per_token(run: &RunFolder) -> Result<Option<EnergyPerToken>> {
    let Some(energy) = stage_energies(run)? else {
        return Ok(None);
    };
    let batches = batch_energies(run, &energy)?;
    let with_decodes: Vec<&BatchEnergy> = batches
        .iter()
        .filter(|b| b.decode_tokens > 0.0 && b.requests > 0.0)
        .collect();
    if with_decodes.is_empty() {
        return Ok(None);
    }
    let j_per_token = |b: &BatchEnergy| b.energy_j / (b.prefill_tokens + b.decode_tokens);
    let decode_only: Vec<(f64, f64)> = with_decodes
        .iter()
        .filter(|b| b.prefill_tokens == 0.0)
        .map(|b| (b.requests, j_per_token(b)))
        .collect();
    let mixed: Vec<(f64, f64)> = with_decodes
        .iter()
        .filter(|b| b.prefill_tokens > 0.0)
        .map(|b| (b.requests, j_per_token(b)))
        .collect();
    let mut sizes: Vec<i64> = with_decodes
        .iter()
        .map(|b| b.requests.round() as i64)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let lo = with_decodes
        .iter()
        .map(|b| b.requests)
        .fold(f64::INFINITY, f64::min);
    let hi = with_decodes.iter().map(|b| b.requests).fold(0.0, f64::max);
    let size_bins = sizes.len() > 2 * SIZE_BINS;
    let bins = size_bins.then_some((lo, hi));
    let dots = with_decodes.len() <= TOKEN_DOTS_MAX;
    let mut series = Vec::new();
    for (points, label, color) in [
        (decode_only, "decode-only", DECODE),
        (mixed, "mixed (prefill + decode)", PREFILL),
    ] {
        if points.is_empty() {
            continue;
        }
        series.push(TokenSeries {
            label: label.into(),
            color,
            batches: points.len(),
            stats: size_stats(&points, bins),
            dots: if dots { points } else { Vec::new() },
        });
    }
    Ok(Some(EnergyPerToken {
        series,
        size_bins,
        pipeline_stages: run.pipeline_stages(),
    }))
}

impl EnergyPerToken {
    fn legend(&self) -> Vec<(String, Swatch)> {
        let per = if self.size_bins {
            "per bin of batch sizes"
        } else {
            "per batch size"
        };
        let mut items = Vec::new();
        for s in &self.series {
            let n = fmt_count(s.batches);
            if s.dots.is_empty() {
                items.push((
                    format!("{}: {n} batches, mean {per}", s.label),
                    Swatch::Line(s.color, 3),
                ));
                items.push((
                    format!("{}: 10th to 90th percentile", s.label),
                    Swatch::Fill(s.color, 0.2),
                ));
            } else {
                items.push((
                    format!("{}: {n} batches, one dot per batch", s.label),
                    Swatch::Dot(s.color),
                ));
                items.push((format!("{}: mean {per}", s.label), Swatch::Line(s.color, 3)));
            }
        }
        items
    }

    fn x_bounds(&self) -> (f64, f64) {
        let xs = self.series.iter().flat_map(|s| {
            s.stats
                .iter()
                .map(|t| t.requests)
                .chain(s.dots.iter().map(|d| d.0))
        });
        let (lo, hi) = xs.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
        if lo.is_finite() && hi > 0.0 {
            (lo, hi)
        } else {
            (1.0, 1.0)
        }
    }

    fn y_max(&self) -> f64 {
        let hi = self
            .series
            .iter()
            .flat_map(|s| {
                s.stats
                    .iter()
                    .map(|t| t.p90.max(t.mean))
                    .chain(s.dots.iter().map(|d| d.1))
            })
            .fold(0.0, f64::max);
        if hi > 0.0 {
            hi * 1.08
        } else {
            1.0
        }
    }

    fn draw_on<DB, X>(&self, root: &DrawingArea<DB, Shift>, x_range: X, log: bool) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption("Energy per token against batch size", font(TITLE_PX))
            .margin(20)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(100)
            .build_cartesian_2d(x_range, 0.0..self.y_max())?;
        let x_desc = if log {
            "requests in the batch (log scale)"
        } else {
            "requests in the batch"
        };
        let x_fmt = |v: &f64| super::tick_label(*v, log);
        chart
            .configure_mesh()
            .house_style()
            .x_desc(x_desc)
            .y_desc("energy per token (J/token)")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        for s in &self.series {
            let color = s.color;
            if s.dots.is_empty() {
                let mut band: Vec<(f64, f64)> =
                    s.stats.iter().map(|t| (t.requests, t.p90)).collect();
                band.extend(s.stats.iter().rev().map(|t| (t.requests, t.p10)));
                if s.stats.len() > 1 {
                    chart.draw_series(std::iter::once(Polygon::new(
                        band,
                        color.mix(0.2).filled(),
                    )))?;
                }
            } else {
                chart.draw_series(
                    s.dots
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.mix(0.35).filled())),
                )?;
            }
            chart.draw_series(LineSeries::new(
                s.stats.iter().map(|t| (t.requests, t.mean)),
                color.stroke_width(3),
            ))?;
            chart.draw_series(
                s.stats
                    .iter()
                    .map(|t| Circle::new((t.requests, t.mean), 3, color.filled())),
            )?;
        }
        Ok(())
    }
}

impl Figure for EnergyPerToken {
    fn stem(&self) -> String {
        "energy_per_token".into()
    }
    fn caption(&self) -> String {
        let stages = if self.pipeline_stages > 1 {
            " summed over its pipeline stages"
        } else {
            ""
        };
        format!(
            "Energy per token of each batch with decodes against its number of requests: the batch's \
             `energy_j`{stages} over its `prefill_tokens + decode_tokens` (the share each token is charged); \
             for decode-only batches this is the energy per output token"
        )
    }
    fn section(&self) -> &'static str {
        ENERGY_SECTION
    }
    fn size(&self) -> (u32, u32) {
        (1200, 650 + legend_height(self.legend().len()))
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let legend = self.legend();
        let (_, h) = root.dim_in_pixel();
        let (chart_area, legend_area) = root.split_vertically(h - legend_height(legend.len()));
        legend_strip(&legend_area, &legend)?;
        let (lo, hi) = self.x_bounds();
        if hi / lo > LOG_SPREAD {
            let start = 10f64.powf(lo.log10().floor()) * (1.0 - 1e-9);
            self.draw_on(&chart_area, (start..hi * 1.25).log_scale(), true)
        } else {
            self.draw_on(&chart_area, 0.0..hi * 1.08 + 0.5, false)
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Regions

/// One region's footprint (summary.json `regions`); `None` where the summary has no value.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionRow {
    pub region: String,
    pub carbon_g: Option<f64>,
    pub embodied_carbon_g: Option<f64>,
    pub energy_cost_usd: Option<f64>,
    pub rental_cost_usd: Option<f64>,
    pub water_l: Option<f64>,
}

/// Carbon (operational + embodied), cost (energy + rental) and water of the run in each configured region.
#[derive(Debug, Clone)]
pub struct RegionChart {
    pub rows: Vec<RegionRow>,
}

/// The region figure of a run whose summary lists regions.
pub fn region_chart(run: &RunFolder) -> Option<RegionChart> {
    let regions = run.summary.get("regions")?.as_array()?;
    let rows: Vec<RegionRow> = regions
        .iter()
        .map(|r| {
            let f = |k: &str| r.get(k).and_then(Value::as_f64).filter(|v| v.is_finite());
            RegionRow {
                region: r
                    .get("region")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                carbon_g: f("carbon_g"),
                embodied_carbon_g: f("embodied_carbon_g"),
                energy_cost_usd: f("energy_cost_usd"),
                rental_cost_usd: f("rental_cost_usd"),
                water_l: f("water_l"),
            }
        })
        .collect();
    (!rows.is_empty()).then_some(RegionChart { rows })
}

/// One horizontal bar chart of the region figure.
struct RegionPanel<'a> {
    /// Axis title, with the unit.
    x_desc: String,
    /// Parts of each bar (name, colour), stacked from the left.
    parts: Vec<(&'static str, RGBColor)>,
    /// Per region: the value of each part (None: unknown), already in the axis unit.
    values: Vec<Vec<Option<f64>>>,
    /// Per region: the label at the end of the bar.
    labels: Vec<String>,
    names: &'a [String],
}

const ROW_PX: u32 = 46;

impl RegionChart {
    fn panel_h(&self) -> u32 {
        54 + 80 + ROW_PX * self.rows.len() as u32
    }

    fn panels<'a>(&self, names: &'a [String]) -> [RegionPanel<'a>; 3] {
        let rows = &self.rows;
        let max_g = rows
            .iter()
            .map(|r| r.carbon_g.unwrap_or(0.0) + r.embodied_carbon_g.unwrap_or(0.0))
            .fold(0.0, f64::max);
        let (g_scale, g_unit) = if max_g >= 1e4 {
            (1e3, "kgCO2e")
        } else {
            (1.0, "gCO2e")
        };
        let carbon_labels = rows
            .iter()
            .map(|r| match (r.carbon_g, r.embodied_carbon_g) {
                (Some(op), Some(em)) => format!("{} {g_unit}", fmt_num((op + em) / g_scale)),
                (Some(op), None) => format!(
                    "{} {g_unit} operational; embodied n/a (no embodied-carbon factor)",
                    fmt_num(op / g_scale)
                ),
                (None, _) => "n/a".into(),
            })
            .collect();
        let cost_labels = rows
            .iter()
            .map(|r| match (r.energy_cost_usd, r.rental_cost_usd) {
                (Some(e), Some(g)) => format!("{} USD", fmt_num(e + g)),
                (None, Some(g)) => {
                    format!("n/a: no electricity price (rental {} USD)", fmt_num(g))
                }
                (Some(e), None) => {
                    format!("n/a: no GPU rental price (electricity {} USD)", fmt_num(e))
                }
                (None, None) => "n/a: no electricity or GPU rental price".into(),
            })
            .collect();
        let water_labels = rows
            .iter()
            .map(|r| match r.water_l {
                Some(w) => format!("{} L", fmt_num(w)),
                None => "n/a: no WUE or grid water intensity".into(),
            })
            .collect();
        [
            RegionPanel {
                x_desc: format!("carbon ({g_unit})"),
                parts: vec![("operational", PALETTE[0]), ("embodied", PALETTE[5])],
                values: rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.carbon_g.map(|v| v / g_scale),
                            r.embodied_carbon_g.map(|v| v / g_scale),
                        ]
                    })
                    .collect(),
                labels: carbon_labels,
                names,
            },
            RegionPanel {
                x_desc: "cost (USD)".into(),
                parts: vec![("electricity", PALETTE[1]), ("GPU rental", PALETTE[4])],
                values: rows
                    .iter()
                    .map(|r| vec![r.energy_cost_usd, r.rental_cost_usd])
                    .collect(),
                labels: cost_labels,
                names,
            },
            RegionPanel {
                x_desc: "water (L)".into(),
                parts: vec![("water", PALETTE[2])],
                values: rows.iter().map(|r| vec![r.water_l]).collect(),
                labels: water_labels,
                names,
            },
        ]
    }
}

impl Figure for RegionChart {
    fn stem(&self) -> String {
        "regions".into()
    }
    fn caption(&self) -> String {
        "The run's footprint in each configured region (`regions` of summary.json): carbon (operational, \
         from grid intensity and PUE, plus embodied), cost (electricity plus GPU rental) and water; \
         \"n/a\" where the region or device lacks a figure"
            .into()
    }
    fn section(&self) -> &'static str {
        REGION_SECTION
    }
    fn size(&self) -> (u32, u32) {
        (1200, 80 + 3 * self.panel_h())
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let names: Vec<String> = self.rows.iter().map(|r| r.region.clone()).collect();
        let title = "Carbon, cost and water by region";
        let body = root.margin(12, 0, 0, 0).titled(title, font(TITLE_PX))?;
        let tick = font(TICK_PX);
        let mut label_w = 0;
        for n in &names {
            label_w = label_w.max(body.estimate_text_size(n, &tick)?.0);
        }
        let panels = self.panels(&names);
        // The labels at the end of the bars go in the right margin, as wide as the longest needs.
        let mut value_w = 0;
        for l in panels.iter().flat_map(|p| &p.labels) {
            value_w = value_w.max(body.estimate_text_size(l, &tick)?.0);
        }
        let (w, _) = body.dim_in_pixel();
        let value_w = (value_w + 30).min(w.saturating_sub(label_w + 400));
        let areas = body.split_evenly((3, 1));
        for (panel, area) in panels.iter().zip(&areas) {
            draw_region_panel(area, panel, label_w + 30, value_w)?;
        }
        Ok(())
    }
}

fn draw_region_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &RegionPanel,
    label_w: u32,
    value_w: u32,
) -> DrawResult<DB> {
    let n = p.names.len();
    let (head, rest) = area.split_vertically(46);
    let legend: Vec<(String, Swatch)> = p
        .parts
        .iter()
        .map(|(name, c)| (name.to_string(), Swatch::Fill(*c, 0.85)))
        .collect();
    if p.parts.len() > 1 {
        legend_row(&head, &legend, label_w as i32 + 12, 24)?;
    }
    let max = p
        .values
        .iter()
        .map(|v| v.iter().flatten().sum::<f64>())
        .fold(0.0, f64::max);
    let x_max = if max > 0.0 { max * 1.04 } else { 1.0 };
    let mut chart = ChartBuilder::on(&rest)
        .margin_left(12)
        .margin_right(value_w)
        .margin_bottom(8)
        .x_label_area_size(70)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0.0..x_max, -0.5..n as f64 - 0.5)?;
    // No values at all (every region n/a): no scale either.
    let shown = move |v: &f64| {
        if max > 0.0 {
            fmt_num(*v)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .house_style()
        .disable_y_mesh()
        .x_desc(p.x_desc.as_str())
        .x_label_formatter(&shown)
        .y_label_formatter(&|_| String::new())
        .y_labels(0)
        .x_labels(6)
        .draw()?;
    let tick = font(TICK_PX);
    for (i, name) in p.names.iter().enumerate() {
        // The first region at the top.
        let y = (n - 1 - i) as f64;
        let at = chart.backend_coord(&(0.0, y));
        text_at(
            &rest,
            name,
            (at.0 - 12, at.1),
            &tick.pos(Pos::new(HPos::Right, VPos::Center)),
        )?;
        let mut x = 0.0;
        for (v, (_, c)) in p.values[i].iter().zip(&p.parts) {
            if let Some(v) = v {
                if *v > 0.0 {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x, y - 0.32), (x + v, y + 0.32)],
                        c.mix(0.85).filled(),
                    )))?;
                }
                x += v;
            }
        }
        let end = chart.backend_coord(&(x, y));
        text_at(
            &rest,
            &p.labels[i],
            (end.0 + 10, end.1),
            &tick.pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_stage_energy_is_split_by_tokens_as_requests_are_charged() {
        // 300 prefill tokens and 100 decode steps: three quarters to prefill.
        assert_eq!(split_stage_energy(40.0, 300.0, 100.0), (30.0, 10.0));
        assert_eq!(split_stage_energy(40.0, 0.0, 8.0), (0.0, 40.0));
        assert_eq!(split_stage_energy(40.0, 512.0, 0.0), (40.0, 0.0));
    }

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
                w: 300.0,
            });
            segs.push(Segment {
                start: t + 0.25,
                end: t + 1.0,
                busy: false,
                w: 60.0,
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

    #[test]
    fn batch_sizes_group_exactly_or_in_log_bins() {
        let pts = [(1.0, 0.5), (1.0, 0.3), (4.0, 0.1), (4.0, 0.1), (4.0, 0.1)];
        let s = size_stats(&pts, None);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].requests, s[0].batches), (1.0, 2));
        assert!((s[0].mean - 0.4).abs() < 1e-12);
        assert_eq!(s[1].batches, 3);
        let pts: Vec<(f64, f64)> = (1..=1000).map(|n| (n as f64, 1.0 / n as f64)).collect();
        let s = size_stats(&pts, Some((1.0, 1000.0)));
        // Bins 1, 2, 3, 5 and 7 of 40 (log-spaced over [1, 1000]) hold no integer size.
        assert_eq!(s.len(), SIZE_BINS - 5);
        assert!(s.windows(2).all(|w| w[0].requests < w[1].requests));
        assert_eq!(s.iter().map(|t| t.batches).sum::<usize>(), 1000);
    }

    #[test]
    fn counts_and_units_read_well() {
        assert_eq!(fmt_count(10964), "10,964");
        assert_eq!(fmt_count(512), "512");
        assert_eq!(energy_unit(76_812.0), (1e3, "kJ"));
        assert_eq!(energy_unit(950.0), (1.0, "J"));
        assert_eq!(fmt_pct(25.0, 100.0), "25%");
    }
}
