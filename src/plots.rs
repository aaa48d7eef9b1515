//! Plots of a run, drawn with plotters to PNG and SVG from the files of a run folder.
//!
//! Input: a [`RunFolder`]. Output: `<stem>.png` and `<stem>.svg` per figure in a folder, and a
//! [`PlotFile`] per figure (file stem, caption, section) for summary.md to link.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (`assets/fonts/`, Bitstream Vera licence), so
//! plots render the same on a headless machine with no system fonts; the SVGs name the family
//! `sans-serif` and leave the rendering to the viewer.
//!
//! Each figure is a type implementing [`Figure`] (what to draw, generic over the plotters backend) made by
//! one function from the run folder, which returns nothing when the run lacks the columns the figure needs.
//! To add a figure: write such a function and a [`Figure`] impl, and call it from [`run_plots`]. The
//! latency and timeline figures are here, the power, energy and region figures in [`energy`]; figures of
//! many runs in [`sweep`] (a sweep metric against an axis) and [`pareto`] (a capacity search's front).

use crate::error::{Error, Result};
use crate::metrics::quantile_sorted;
use crate::runfolder::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

pub mod energy;
pub mod pareto;
pub mod sweep;
pub use energy::{
    energy_by_replica, energy_per_token, power_timeline, region_chart, EnergyByReplica,
    EnergyPerToken, PowerTimeline, RegionChart,
};

/// DejaVu Sans 2.37 (Debian's fonts-dejavu-core), Bitstream Vera licence: assets/fonts/.
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Font sizes in pixels (of a figure about 1200 pixels wide).
pub(crate) const TITLE_PX: u32 = 28;
pub(crate) const DESC_PX: u32 = 22;
pub(crate) const TICK_PX: u32 = 18;
pub(crate) const LEGEND_PX: u32 = 18;

/// At most this many replicas get their own timeline figure (the first ones, by index).
pub const MAX_TIMELINES: u32 = 8;
/// Per-replica CDF lines are drawn for 2 to this many replicas (beyond, only the total).
const MAX_CDF_REPLICAS: usize = 8;
/// Above this many batches per replica, timelines are drawn as time bins (mean and min-max band).
const EXACT_STEPS_MAX: usize = 1000;
/// Up to this many sparse events per replica (prefill batches) are drawn one point each.
const EXACT_POINTS_MAX: usize = 5000;
/// Number of time bins of a binned timeline.
const TIMELINE_BINS: usize = 600;
/// A CDF whose largest value exceeds its smallest positive one this many times gets a log x axis.
const LOG_SPREAD: f64 = 20.0;
/// CDFs over at most this many values are drawn as exact steps.
const CDF_STEPS_MAX: usize = 50;
/// CDFs over more values are drawn through this many quantiles.
const CDF_POINTS: usize = 1000;

/// Okabe-Ito colours (distinguishable with the common colour-vision deficiencies).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(120, 120, 120), // grey
    RGBColor(0, 0, 0),       // black
];

/// Result of drawing on a backend.
pub type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure that can be drawn on any plotters backend.
pub trait Figure {
    /// File stem: the figure is written as `<stem>.png` and `<stem>.svg`.
    fn stem(&self) -> String;
    /// One line saying what the figure shows, for summary.md.
    fn caption(&self) -> String;
    /// Section of summary.md the figure belongs to.
    fn section(&self) -> &'static str;
    /// Size in pixels (PNG) or user units (SVG).
    fn size(&self) -> (u32, u32) {
        (1200, 750)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// A figure written to a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotFile {
    pub stem: String,
    pub caption: String,
    pub section: &'static str,
}

fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Internal(
            "the embedded font (DejaVu Sans) could not be loaded".into(),
        ))
    }
}

pub(crate) fn font(px: u32) -> TextStyle<'static> {
    (FAMILY, px).into_font().color(&BLACK)
}

/// The house style of a chart's mesh: axis descriptions and tick labels in the house fonts, four light
/// lines between bold ones, both faint. `chart.configure_mesh().house_style().x_desc(..)...draw()`.
pub(crate) trait HouseMesh {
    fn house_style(&mut self) -> &mut Self;
}

impl<X, Y, DB> HouseMesh for plotters::chart::MeshStyle<'_, '_, X, Y, DB>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
    DB: DrawingBackend,
{
    fn house_style(&mut self) -> &mut Self {
        self.axis_desc_style(font(DESC_PX))
            .label_style(font(TICK_PX))
            .max_light_lines(4)
            .light_line_style(BLACK.mix(0.04))
            .bold_line_style(BLACK.mix(0.12))
    }
}

/// Draws `fig` to `<dir>/<stem>.png` and `<dir>/<stem>.svg`.
pub fn render<F: Figure>(fig: &F, dir: &Path) -> Result<PlotFile> {
    ensure_font()?;
    let stem = fig.stem();
    let size = fig.size();
    let err = |path: &Path, e: String| Error::Output {
        path: path.to_path_buf(),
        message: format!("drawing the plot failed: {e}"),
    };
    let png = dir.join(format!("{stem}.png"));
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&png, e.to_string()))?;
        fig.draw(&root).map_err(|e| err(&png, e.to_string()))?;
        root.present().map_err(|e| err(&png, e.to_string()))?;
    }
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&svg, e.to_string()))?;
        fig.draw(&root).map_err(|e| err(&svg, e.to_string()))?;
        root.present().map_err(|e| err(&svg, e.to_string()))?;
    }
    Ok(PlotFile {
        stem,
        caption: fig.caption(),
        section: fig.section(),
    })
}

/// Writes every figure the run's files allow to `dir`, in summary.md's order.
pub fn run_plots(run: &RunFolder, dir: &Path) -> Result<Vec<PlotFile>> {
    let mut out = Vec::new();
    for fig in latency_cdfs(run)? {
        out.push(render(&fig, dir)?);
    }
    for fig in replica_timelines(run)? {
        out.push(render(&fig, dir)?);
    }
    if let Some(fig) = power_timeline(run)? {
        out.push(render(&fig, dir)?);
    }
    if let Some(fig) = energy_by_replica(run)? {
        out.push(render(&fig, dir)?);
    }
    if let Some(fig) = energy_per_token(run)? {
        out.push(render(&fig, dir)?);
    }
    if let Some(fig) = region_chart(run) {
        out.push(render(&fig, dir)?);
    }
    Ok(out)
}

/// A tick label: [`fmt_num`], except that on a log axis only 1, 2 and 5 times powers of ten are
/// labelled (the others crowd together).
pub fn tick_label(v: f64, log: bool) -> String {
    let mantissa = v / 10f64.powf(v.log10().floor());
    let shown = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6 * m);
    if !log || shown {
        fmt_num(v)
    } else {
        String::new()
    }
}

/// A number for a tick label or a legend: three significant digits, no trailing zeros.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() {
            "0".into()
        } else {
            v.to_string()
        };
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (2 - mag).clamp(0, 9) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration in seconds for a legend, with a unit that keeps it readable (`23.4 ms`, `1.25 s`).
pub fn fmt_secs(s: f64) -> String {
    if s.abs() < 1.0 && s != 0.0 {
        format!("{} ms", fmt_num(s * 1e3))
    } else {
        format!("{} s", fmt_num(s))
    }
}

// ---------------------------------------------------------------------------------------------------
// Latency CDFs

/// One line of a CDF.
#[derive(Debug, Clone)]
pub struct CdfSeries {
    pub label: String,
    /// Values in ascending order.
    pub sorted: Vec<f64>,
    pub color: RGBColor,
    pub width: u32,
}

/// Cumulative distribution of a per-request latency.
#[derive(Debug, Clone)]
pub struct LatencyCdf {
    pub stem: &'static str,
    pub title: String,
    pub caption: String,
    pub x_desc: &'static str,
    pub series: Vec<CdfSeries>,
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v
}

fn pct_label(prefix: &str, v: &[f64]) -> String {
    format!(
        "{prefix}: p50 {}, p99 {} (n = {})",
        fmt_secs(quantile_sorted(v, 0.5)),
        fmt_secs(quantile_sorted(v, 0.99)),
        v.len()
    )
}

/// The latency CDFs of a run: time to first token, time between tokens, end-to-end latency, over
/// completed requests. Runs with no completed request get none.
pub fn latency_cdfs(run: &RunFolder) -> Result<Vec<LatencyCdf>> {
    let req = run.requests(&[
        "status",
        "replica",
        "ttft_s",
        "tbt_mean_s",
        "tbt_max_s",
        "e2e_s",
    ])?;
    let status = req.strings("status")?;
    let replica = req.u64s("replica")?;
    let done: Vec<bool> = status.iter().map(|s| s == "completed").collect();
    let n_replicas = run.replicas() as usize;
    let column = |name: &str| -> Result<Vec<(u64, f64)>> {
        Ok(req
            .f64s(name)?
            .into_iter()
            .zip(&replica)
            .zip(&done)
            .filter_map(|((v, r), d)| v.filter(|_| *d).map(|v| (*r, v)))
            .collect())
    };
    // The total in the first colour, then one line per replica (when there are a few).
    let by_replica = |vals: &[(u64, f64)]| -> Vec<CdfSeries> {
        let all = sorted(vals.iter().map(|(_, v)| *v).collect());
        if all.is_empty() {
            return Vec::new();
        }
        let per_replica = (2..=MAX_CDF_REPLICAS).contains(&n_replicas);
        let mut series = vec![CdfSeries {
            label: pct_label(
                if per_replica {
                    "all replicas"
                } else {
                    "all requests"
                },
                &all,
            ),
            sorted: all,
            color: PALETTE[0],
            width: 3,
        }];
        if per_replica {
            for r in 0..n_replicas {
                let v = sorted(
                    vals.iter()
                        .filter(|(q, _)| *q == r as u64)
                        .map(|(_, v)| *v)
                        .collect(),
                );
                if !v.is_empty() {
                    series.push(CdfSeries {
                        label: pct_label(&format!("replica {r}"), &v),
                        sorted: v,
                        color: PALETTE[1 + r % (PALETTE.len() - 1)],
                        width: 2,
                    });
                }
            }
        }
        series
    };
    let mut figs = Vec::new();
    let ttft = by_replica(&column("ttft_s")?);
    if !ttft.is_empty() {
        figs.push(LatencyCdf {
            stem: "ttft_cdf",
            title: "Time to first token".into(),
            caption: "Time to first token (TTFT, `ttft_s`): CDF over completed requests".into(),
            x_desc: "time to first token (s)",
            series: ttft,
        });
    }
    let tbt_mean = sorted(column("tbt_mean_s")?.into_iter().map(|(_, v)| v).collect());
    let tbt_max = sorted(column("tbt_max_s")?.into_iter().map(|(_, v)| v).collect());
    if !tbt_mean.is_empty() {
        figs.push(LatencyCdf {
            stem: "tbt_cdf",
            title: "Time between output tokens, per request".into(),
            caption: "Time between tokens: CDF over completed requests of each request's mean gap \
                      (`tbt_mean_s`) and largest gap (`tbt_max_s`, preemption stalls included)"
                .into(),
            x_desc: "time between tokens (s)",
            series: vec![
                CdfSeries {
                    label: pct_label("mean gap of a request", &tbt_mean),
                    sorted: tbt_mean,
                    color: PALETTE[0],
                    width: 3,
                },
                CdfSeries {
                    label: pct_label("largest gap of a request", &tbt_max),
                    sorted: tbt_max,
                    color: PALETTE[1],
                    width: 2,
                },
            ],
        });
    }
    let e2e = by_replica(&column("e2e_s")?);
    if !e2e.is_empty() {
        figs.push(LatencyCdf {
            stem: "e2e_cdf",
            title: "End-to-end latency".into(),
            caption:
                "End-to-end latency (`e2e_s`, arrival to last token): CDF over completed requests"
                    .into(),
            x_desc: "end-to-end latency (s)",
            series: e2e,
        });
    }
    Ok(figs)
}

/// Points of an empirical CDF: exact steps for small samples, the points `(x_i, (i + 1) / n)` for
/// medium ones (thick steps draw as jagged teeth), quantiles for large ones.
fn cdf_points(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n > CDF_STEPS_MAX && n <= CDF_POINTS {
        let mut pts = Vec::with_capacity(n + 1);
        if let Some(&x0) = sorted.first() {
            pts.push((x0, 0.0));
        }
        pts.extend(
            sorted
                .iter()
                .enumerate()
                .map(|(i, &x)| (x, (i + 1) as f64 / n as f64)),
        );
        pts
    } else if n <= CDF_POINTS {
        let mut pts = Vec::with_capacity(2 * n);
        for (i, &x) in sorted.iter().enumerate() {
            pts.push((x, i as f64 / n as f64));
            pts.push((x, (i + 1) as f64 / n as f64));
        }
        pts
    } else {
        (0..=CDF_POINTS)
            .map(|k| {
                let q = k as f64 / CDF_POINTS as f64;
                (quantile_sorted(sorted, q), q)
            })
            .collect()
    }
}

impl Figure for LatencyCdf {
    fn stem(&self) -> String {
        self.stem.to_string()
    }
    fn caption(&self) -> String {
        self.caption.clone()
    }
    fn section(&self) -> &'static str {
        "Latency"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let lo = self
            .series
            .iter()
            .filter_map(|s| s.sorted.iter().copied().find(|v| *v > 0.0))
            .fold(f64::INFINITY, f64::min);
        let hi = self
            .series
            .iter()
            .filter_map(|s| s.sorted.last().copied())
            .fold(0.0, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > 0.0 {
            (lo, hi)
        } else {
            (1e-3, 1.0)
        };
        // A wide spread (preemption stalls next to normal gaps) reads better on a log axis.
        // The legend goes in a strip below the chart, where it cannot hide a curve.
        let (_, h) = root.dim_in_pixel();
        let legend_h = 30 + 30 * self.series.len() as u32;
        let (chart_area, legend_area) = root.split_vertically(h.saturating_sub(legend_h));
        let items: Vec<(String, (RGBColor, u32))> = self
            .series
            .iter()
            .map(|s| (s.label.clone(), (s.color, s.width)))
            .collect();
        legend_below(&legend_area, &items)?;
        if hi / lo > LOG_SPREAD {
            // Start just below a power of ten, so that the log axis labels it (it labels powers of ten
            // inside the range, then their multiples).
            let start = 10f64.powf(lo.log10().floor()) * (1.0 - 1e-9);
            let range = (start..hi * 1.25).log_scale();
            self.draw_on(&chart_area, range, start, true)
        } else {
            self.draw_on(&chart_area, 0.0..hi * 1.04, 0.0, false)
        }
    }
}

impl LatencyCdf {
    fn draw_on<DB, X>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x_range: X,
        floor: f64,
        log: bool,
    ) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(TITLE_PX))
            .margin(20)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(90)
            .build_cartesian_2d(x_range, 0.0..1.0)?;
        let x_desc = if log {
            self.x_desc.replacen(" (s)", " (s, log scale)", 1)
        } else {
            self.x_desc.to_string()
        };
        let x_fmt = |v: &f64| tick_label(*v, log);
        chart
            .configure_mesh()
            .house_style()
            .x_desc(x_desc)
            .y_desc("fraction of requests ≤ x")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        for s in &self.series {
            let style = s.color.stroke_width(s.width);
            chart.draw_series(LineSeries::new(
                cdf_points(&s.sorted)
                    .into_iter()
                    .map(|(x, y)| (x.max(floor), y)),
                style,
            ))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// Replica timelines

/// A quantity over simulated time, defined while some batch runs: exact steps for a few batches,
/// time bins for many. Between batches the line breaks (no value is drawn where no batch ran).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Polylines `(time s, value)`, one per stretch of time covered by batches.
    pub segments: Vec<Vec<(f64, f64)>>,
    /// When binned: per stretch, `(bin middle s, min, max)` of the values in each bin.
    pub band: Vec<Vec<(f64, f64, f64)>>,
    /// Width of a time bin in seconds, when binned.
    pub bin_s: Option<f64>,
}

impl Profile {
    /// The profile of values held over intervals `(start s, end s, value)`, sorted by start and not
    /// overlapping, on `[0, t_end]`. Up to [`EXACT_STEPS_MAX`] intervals are drawn as exact steps; more are
    /// averaged in [`TIMELINE_BINS`] time bins, each value weighted by the time it was held in the bin,
    /// time without a batch excluded.
    pub fn of(intervals: &[(f64, f64, f64)], t_end: f64) -> Profile {
        Self::build(intervals, t_end, EXACT_STEPS_MAX, false)
    }

    /// The profile of sparse events (e.g. prefill batches): up to [`EXACT_POINTS_MAX`] intervals, one point
    /// per interval at its start; more are binned as [`Profile::of`] does.
    pub fn points(intervals: &[(f64, f64, f64)], t_end: f64) -> Profile {
        Self::build(intervals, t_end, EXACT_POINTS_MAX, true)
    }

    fn build(intervals: &[(f64, f64, f64)], t_end: f64, exact_max: usize, points: bool) -> Profile {
        if points && intervals.len() <= exact_max {
            return Profile {
                segments: intervals.iter().map(|&(s, _, v)| vec![(s, v)]).collect(),
                band: Vec::new(),
                bin_s: None,
            };
        }
        if intervals.len() <= exact_max {
            let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
            let mut prev_end = f64::NEG_INFINITY;
            for &(s, e, v) in intervals {
                if s > prev_end || segments.is_empty() {
                    segments.push(Vec::new());
                }
                let seg = segments.last_mut().expect("a segment was just pushed");
                seg.push((s, v));
                seg.push((e, v));
                prev_end = e;
            }
            return Profile {
                segments,
                band: Vec::new(),
                bin_s: None,
            };
        }
        let n = TIMELINE_BINS;
        let width = if t_end > 0.0 { t_end / n as f64 } else { 1.0 };
        let mut weighted = vec![0.0f64; n];
        let mut covered = vec![0.0f64; n];
        let mut min = vec![f64::INFINITY; n];
        let mut max = vec![f64::NEG_INFINITY; n];
        for &(s, e, v) in intervals {
            let first = ((s / width).floor() as usize).min(n - 1);
            let last = ((e / width).ceil() as usize).clamp(first + 1, n);
            for b in first..last {
                let (b0, b1) = (b as f64 * width, (b + 1) as f64 * width);
                let overlap = (e.min(b1) - s.max(b0)).max(0.0);
                // A batch that only touches a bin's edge does not count in it, unless it takes no time.
                if overlap > 0.0 || e == s {
                    weighted[b] += v * overlap;
                    covered[b] += overlap;
                    min[b] = min[b].min(v);
                    max[b] = max[b].max(v);
                }
            }
        }
        let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut band: Vec<Vec<(f64, f64, f64)>> = Vec::new();
        let mut open = false;
        for b in 0..n {
            if max[b] == f64::NEG_INFINITY {
                open = false;
                continue;
            }
            if !open {
                segments.push(Vec::new());
                band.push(Vec::new());
                open = true;
            }
            let mid = (b as f64 + 0.5) * width;
            let mean = if covered[b] > 0.0 {
                weighted[b] / covered[b]
            } else {
                (min[b] + max[b]) / 2.0
            };
            segments.last_mut().expect("opened").push((mid, mean));
            band.last_mut().expect("opened").push((mid, min[b], max[b]));
        }
        Profile {
            segments,
            band,
            bin_s: Some(width),
        }
    }

    /// The largest value shown.
    pub fn max(&self) -> f64 {
        let lines = self.segments.iter().flatten().map(|(_, v)| *v);
        let band = self.band.iter().flatten().map(|(_, _, hi)| *hi);
        lines.chain(band).fold(0.0, f64::max)
    }
}

/// One line of a timeline panel.
#[derive(Debug, Clone)]
struct Line {
    label: String,
    profile: Profile,
    color: RGBColor,
    /// Draw the min-max band of binned values.
    band: bool,
    /// Draw points (sparse events) rather than lines.
    markers: bool,
}

/// One panel of a timeline: a few quantities against time.
#[derive(Debug, Clone)]
struct Panel {
    y_desc: String,
    lines: Vec<Line>,
    /// A dashed horizontal line (label, value), e.g. the KV-cache capacity.
    limit: Option<(String, f64)>,
}

/// Batch size, prefill tokens per batch and KV-cache use of one replica over simulated time.
#[derive(Debug, Clone)]
pub struct ReplicaTimeline {
    pub replica: u32,
    pub replicas: u32,
    pub pipeline_stages: u32,
    pub t_end: f64,
    /// Width of the time bins, when the batches are too many to draw one by one.
    pub bin_s: Option<f64>,
    panels: Vec<Panel>,
}

/// The timelines of the first [`MAX_TIMELINES`] replicas, from batches.parquet (pipeline stage 0: the
/// batches as formed).
pub fn replica_timelines(run: &RunFolder) -> Result<Vec<ReplicaTimeline>> {
    let b = run.batches(&[
        "replica",
        "stage",
        "start_s",
        "end_s",
        "num_requests",
        "prefill_tokens",
        "decode_tokens",
        "kv_blocks_used",
    ])?;
    if b.rows() == 0 {
        return Ok(Vec::new());
    }
    let t_end = b.f64s_required("end_s")?.into_iter().fold(0.0, f64::max);
    let replicas = run.replicas();
    // Only the first replicas' first stage is drawn: select those rows before reading the rest.
    let shown = replicas.min(MAX_TIMELINES) as u64;
    let keep: Vec<bool> = b
        .u64s("replica")?
        .into_iter()
        .zip(b.u64s("stage")?)
        .map(|(r, s)| r < shown && s == 0)
        .collect();
    let b = b.filter(&keep)?;
    let replica = b.u64s("replica")?;
    let stage = b.u64s("stage")?;
    let start = b.f64s_required("start_s")?;
    let end = b.f64s_required("end_s")?;
    let reqs = b.f64s_required("num_requests")?;
    let prefill = b.f64s_required("prefill_tokens")?;
    let decode = b.f64s_required("decode_tokens")?;
    let kv = b.f64s_required("kv_blocks_used")?;
    let capacity = run.summary_f64("kv_blocks_per_replica");
    let block_tokens = run.summary_f64("kv_block_size_tokens").unwrap_or(1.0);
    let (kv_desc, kv_label) = if block_tokens == 1.0 {
        ("KV cache (tokens)".to_string(), "in use".to_string())
    } else {
        (
            "KV cache (blocks)".to_string(),
            format!("in use ({}-token blocks)", fmt_num(block_tokens)),
        )
    };
    let mut figs = Vec::new();
    for r in 0..replicas.min(MAX_TIMELINES) {
        let rows: Vec<usize> = (0..b.rows())
            .filter(|&i| replica[i] == r as u64 && stage[i] == 0)
            .collect();
        // `value(i)` over the batches where it applies.
        let profile = |value: &dyn Fn(usize) -> Option<f64>| {
            let iv: Vec<(f64, f64, f64)> = rows
                .iter()
                .filter_map(|&i| value(i).map(|v| (start[i], end[i], v)))
                .collect();
            Profile::of(&iv, t_end)
        };
        let points = |value: &dyn Fn(usize) -> Option<f64>| {
            let iv: Vec<(f64, f64, f64)> = rows
                .iter()
                .filter_map(|&i| value(i).map(|v| (start[i], end[i], v)))
                .collect();
            Profile::points(&iv, t_end)
        };
        let decoding = profile(&|i| (decode[i] > 0.0).then_some(decode[i]));
        let prefilling = points(&|i| (prefill[i] > 0.0).then_some(reqs[i] - decode[i]));
        let prefill_tokens = points(&|i| (prefill[i] > 0.0).then_some(prefill[i]));
        let kv_used = profile(&|i| Some(kv[i]));
        let bin_s = kv_used.bin_s;
        let panels = vec![
            Panel {
                y_desc: "requests per batch".into(),
                lines: vec![
                    Line {
                        label: "decoding (batches with decodes)".into(),
                        profile: decoding,
                        color: PALETTE[0],
                        band: false,
                        markers: false,
                    },
                    Line {
                        label: "prefilling (a batch with prefills)".into(),
                        profile: prefilling,
                        color: PALETTE[1],
                        band: false,
                        markers: true,
                    },
                ],
                limit: None,
            },
            Panel {
                y_desc: "prefill tokens per batch".into(),
                lines: vec![Line {
                    label: "prefill tokens of a batch".into(),
                    profile: prefill_tokens,
                    color: PALETTE[1],
                    band: true,
                    markers: true,
                }],
                limit: None,
            },
            Panel {
                y_desc: kv_desc.clone(),
                lines: vec![Line {
                    label: kv_label.clone(),
                    profile: kv_used,
                    color: PALETTE[2],
                    band: false,
                    markers: false,
                }],
                limit: capacity.map(|c| (format!("capacity ({})", fmt_num(c)), c)),
            },
        ];
        figs.push(ReplicaTimeline {
            replica: r,
            replicas,
            pipeline_stages: run.pipeline_stages(),
            t_end,
            bin_s,
            panels,
        });
    }
    Ok(figs)
}

impl Figure for ReplicaTimeline {
    fn stem(&self) -> String {
        format!("timeline_replica{}", self.replica)
    }
    fn caption(&self) -> String {
        let stage = if self.pipeline_stages > 1 {
            ", at pipeline stage 0"
        } else {
            ""
        };
        let binned = self
            .bin_s
            .map(|w| {
                format!(
                    "; means over {} time bins weighted by batch run time (shaded: min to max)",
                    fmt_secs(w)
                )
            })
            .unwrap_or_default();
        format!(
            "Replica {}: requests decoding and prefilling per batch, prefill tokens per batch and KV-cache \
             use over simulated time{stage}{binned}",
            self.replica
        )
    }
    fn section(&self) -> &'static str {
        "Replica timelines"
    }
    fn size(&self) -> (u32, u32) {
        (1200, 1050)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let title = if self.replicas > 1 {
            format!(
                "Replica {} of {}: batches over time",
                self.replica, self.replicas
            )
        } else {
            "Batches over time".to_string()
        };
        let body = root.margin(12, 0, 0, 0).titled(&title, font(TITLE_PX))?;
        let areas = body.split_evenly((self.panels.len(), 1));
        let last = self.panels.len() - 1;
        for (i, (panel, area)) in self.panels.iter().zip(&areas).enumerate() {
            draw_panel(area, panel, self.t_end, i == last)?;
        }
        Ok(())
    }
}

/// Legend entries in one column, centred in `area` (below a chart, where they hide nothing), the first
/// `top` pixels down and 30 apart: `sample` draws each entry's sample in the 30-pixel slot starting at
/// (x0, y), then its text follows.
pub(crate) fn legend_column<DB: DrawingBackend, T>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, T)],
    top: i32,
    mut sample: impl FnMut(&DrawingArea<DB, Shift>, &T, i32, i32) -> DrawResult<DB>,
) -> DrawResult<DB> {
    let style = font(LEGEND_PX);
    let (w, _) = area.dim_in_pixel();
    let mut widest = 0;
    for (text, _) in items {
        widest = widest.max(area.estimate_text_size(text, &style)?.0);
    }
    let x0 = ((w as i32 - 44 - widest as i32) / 2).max(10);
    for (k, (text, item)) in items.iter().enumerate() {
        let y = top + 30 * k as i32 + 15;
        sample(area, item, x0, y)?;
        area.draw(&Text::new(
            text.clone(),
            (x0 + 44, y),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Legend entries (label, (colour, line width)) as short lines, below a chart.
pub(crate) fn legend_below<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, (RGBColor, u32))],
) -> DrawResult<DB> {
    legend_column(area, items, 10, |area, (color, width), x0, y| {
        area.draw(&PathElement::new(
            vec![(x0, y), (x0 + 30, y)],
            color.stroke_width((*width).max(3)),
        ))
    })
}

/// A legend sample: a short line in the series colour.
pub(crate) fn legend_line(
    color: RGBColor,
    width: u32,
) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], color.stroke_width(width))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    t_end: f64,
    x_desc: bool,
) -> DrawResult<DB> {
    let y_max = panel
        .lines
        .iter()
        .map(|l| l.profile.max())
        .chain(panel.limit.as_ref().map(|(_, v)| *v))
        .fold(0.0, f64::max);
    // Headroom for the legend in the upper right: a quarter of the panel for one row, more for more.
    let rows = panel.lines.len() + usize::from(panel.limit.is_some());
    let y_max = if y_max > 0.0 {
        y_max * (1.2 + 0.12 * rows as f64)
    } else {
        1.0
    };
    let x_max = if t_end > 0.0 { t_end } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .margin_right(40)
        .x_label_area_size(if x_desc { 70 } else { 36 })
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    let mut mesh = chart.configure_mesh();
    mesh.house_style();
    mesh.y_desc(panel.y_desc.as_str())
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .y_labels(5);
    if x_desc {
        mesh.x_desc("simulated time (s)");
    }
    mesh.draw()?;
    for line in &panel.lines {
        let color = line.color;
        if line.band {
            for stretch in &line.profile.band {
                let mut poly: Vec<(f64, f64)> = stretch.iter().map(|p| (p.0, p.2)).collect();
                poly.extend(stretch.iter().rev().map(|p| (p.0, p.1)));
                chart.draw_series(std::iter::once(Polygon::new(poly, color.mix(0.2).filled())))?;
            }
        }
        let label = match line.profile.bin_s {
            Some(w) if line.band => {
                format!("{}: mean per {}, shaded min-max", line.label, fmt_secs(w))
            }
            Some(w) => format!("{}: mean per {}", line.label, fmt_secs(w)),
            None => line.label.clone(),
        };
        if line.markers {
            chart
                .draw_series(
                    line.profile
                        .segments
                        .iter()
                        .flatten()
                        .map(|&p| Circle::new(p, 2, color.filled())),
                )?
                .label(label.as_str())
                .legend(move |(x, y)| Circle::new((x + 15, y), 5, color.filled()));
            continue;
        }
        for (k, seg) in line.profile.segments.iter().enumerate() {
            let drawn = if seg.len() == 1 {
                chart.draw_series(seg.iter().map(|&p| Circle::new(p, 2, color.filled())))?
            } else {
                chart.draw_series(LineSeries::new(seg.iter().copied(), color.stroke_width(2)))?
            };
            if k == 0 {
                drawn.label(label.as_str()).legend(legend_line(color, 3));
            }
        }
    }
    if let Some((label, v)) = &panel.limit {
        let grey = RGBColor(60, 60, 60);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, *v), (x_max, *v)],
                10,
                6,
                grey.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(legend_line(grey, 2));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(8)
        .legend_area_size(44)
        .label_font(font(LEGEND_PX))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.025), "0.025");
        assert_eq!(fmt_num(0.10877), "0.109");
        assert_eq!(fmt_num(250.0), "250");
        assert_eq!(fmt_num(4096.0), "4096");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_secs(0.0208), "20.8 ms");
        assert_eq!(fmt_secs(8.317), "8.32 s");
    }

    #[test]
    fn steps_break_between_batches() {
        let p = Profile::of(&[(1.0, 2.0, 5.0), (2.0, 3.0, 7.0), (4.0, 5.0, 1.0)], 6.0);
        assert_eq!(p.bin_s, None);
        assert_eq!(
            p.segments,
            vec![
                vec![(1.0, 5.0), (2.0, 5.0), (2.0, 7.0), (3.0, 7.0)],
                vec![(4.0, 1.0), (5.0, 1.0)],
            ]
        );
        assert_eq!(p.max(), 7.0);
    }

    #[test]
    fn bins_weight_values_by_time_and_leave_idle_bins_empty() {
        // 2000 batches over [0, 250): values 10 and 20 alternating, the 20s three times as long (binary
        // fractions, so bin edges are exact); the rest of [0, 600] is idle.
        let mut iv = Vec::new();
        let mut t = 0.0;
        for i in 0..2000 {
            let (d, v) = if i % 2 == 0 {
                (0.0625, 10.0)
            } else {
                (0.1875, 20.0)
            };
            iv.push((t, t + d, v));
            t += d;
        }
        let p = Profile::of(&iv, 600.0);
        assert_eq!(p.bin_s, Some(1.0));
        assert_eq!(p.segments.len(), 1, "one busy stretch");
        let seg = &p.segments[0];
        assert_eq!(seg.len(), 250);
        assert_eq!(seg[0].0, 0.5);
        assert!((seg[0].1 - 17.5).abs() < 1e-6, "{:?}", seg[0]);
        assert_eq!((p.band[0][0].1, p.band[0][0].2), (10.0, 20.0));
    }
}
