//! The Pareto front of a capacity search (`simwatt search capacity --out DIR`): one point per
//! configuration that found a capacity, at (capacity under the SLO, energy per output token at
//! capacity), coloured by cost per 1,000 requests at capacity, with a labelled colour bar.
//!
//! The latency SLO is the constraint: at its capacity every configuration meets it, so latency is not a
//! trade-off axis; what a configuration buys within the SLO is request rate, and what it costs is energy
//! per token and money. The front is therefore over capacity (higher is better), J per output token and
//! cost (lower is better): front points are drawn full-coloured with a dark outline and joined in order of
//! capacity, dominated points faded with a grey outline. With cost as a third objective a front point can
//! sit above another one in the plane: it is cheaper. Written as `capacity_pareto.png` and `.svg`.

use super::energy::text_at;
use super::{
    fmt_num, font, tick_label, DrawResult, Figure, HouseMesh, DESC_PX, LEGEND_PX, TICK_PX, TITLE_PX,
};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

/// File stem of the figure.
pub const STEM: &str = "capacity_pareto";
/// Up to this many points are labelled (beyond, only front points, when they are this few).
pub const MAX_LABELS: usize = 12;
/// A capacity range wider than this factor gets a log x axis.
const LOG_X_SPREAD: f64 = 5.0;
/// Radius of a front marker and of a dominated one, in pixels.
const FRONT_R: i32 = 9;
const DOMINATED_R: i32 = 7;
/// Point labels.
const LABEL_PX: u32 = 16;
/// Dominated points: outline and label colour, and the fill when there is no cost to show.
const GREY: RGBColor = RGBColor(150, 150, 150);
/// The line joining the front.
const FRONT_LINE: RGBColor = RGBColor(40, 40, 40);
/// Front points' fill when there is no cost to show.
const FRONT_FILL: RGBColor = super::PALETTE[0];
/// Width of the colour bar's area at the right.
const BAR_AREA_W: u32 = 190;
/// Height of the title strip.
const TITLE_H: u32 = 86;

/// What the marker colour shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostKind {
    /// The summary's `cost_usd` (energy at the region's price + GPU rental).
    Cost,
    /// GPU rental alone (GPU-hours x the device catalog's price): the summary has no `cost_usd`.
    Rental,
}

impl CostKind {
    /// The colour bar's label.
    pub fn label(self) -> &'static str {
        match self {
            CostKind::Cost => "cost (USD per 1,000 requests)",
            CostKind::Rental => "GPU rental cost only (USD per 1,000 requests)",
        }
    }
}

/// The marker sample of a legend line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Front,
    Dominated,
    None,
}

/// One configuration with a capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct ParetoPoint {
    /// The configuration's axis values, e.g. `sarathi, h100, 2`.
    pub label: String,
    pub capacity_rps: f64,
    pub j_per_output_token: f64,
    /// Per 1,000 requests at capacity (of the chart's [`CostKind`]).
    pub cost: Option<f64>,
}

/// Capacity against energy per output token, coloured by cost, with the front drawn.
#[derive(Debug, Clone)]
pub struct ParetoChart {
    /// The SLO as text, e.g. `ttft_p90_s ≤ 0.5 s, itl_p99_s ≤ 0.2 s`.
    pub slo: String,
    /// The axes whose values label the points (empty for a single config).
    pub label_keys: Vec<String>,
    /// What the colour shows; `None`: no colour scale (no cost known, or not for every point).
    pub cost: Option<CostKind>,
    /// Why cost is not shown, when a cost kind was asked for but some point lacks it.
    pub cost_note: Option<String>,
    pub points: Vec<ParetoPoint>,
    /// Whether each point is on the front.
    pub front: Vec<bool>,
}

impl ParetoChart {
    /// The chart of `points` (each with a finite capacity > 0 and a finite J per output token). Cost is
    /// a dimension only when every point has it; otherwise it is dropped (and `cost_note` says so)
    /// rather than guessed for the points that lack it.
    pub fn new(
        slo: String,
        label_keys: Vec<String>,
        cost: Option<CostKind>,
        mut points: Vec<ParetoPoint>,
    ) -> ParetoChart {
        let mut cost_note = None;
        let cost = match cost {
            Some(kind) if points.iter().all(|p| p.cost.is_some_and(f64::is_finite)) => Some(kind),
            Some(kind) => {
                let missing = points.iter().filter(|p| p.cost.is_none()).count();
                cost_note = Some(format!(
                    "{} not shown: unknown for {missing} of {} configurations",
                    kind.label(),
                    points.len()
                ));
                None
            }
            None => None,
        };
        if cost.is_none() {
            for p in &mut points {
                p.cost = None;
            }
        }
        let front = front_of(&points, cost.is_some());
        ParetoChart {
            slo,
            label_keys,
            cost,
            cost_note,
            points,
            front,
        }
    }

    /// Indices of the front points in the order the line joins them: by capacity, then energy.
    pub fn front_order(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.points.len()).filter(|i| self.front[*i]).collect();
        idx.sort_by(|a, b| {
            let (p, q) = (&self.points[*a], &self.points[*b]);
            p.capacity_rps
                .total_cmp(&q.capacity_rps)
                .then(p.j_per_output_token.total_cmp(&q.j_per_output_token))
                .then(a.cmp(b))
        });
        idx
    }

    /// Which points get a label: all of them when few enough, else the front when it is few enough.
    pub fn labelled(&self) -> Vec<bool> {
        let n = self.points.len();
        let on_front = self.front.iter().filter(|f| **f).count();
        if n <= MAX_LABELS {
            vec![true; n]
        } else if on_front <= MAX_LABELS {
            self.front.clone()
        } else {
            vec![false; n]
        }
    }

    fn cost_range(&self) -> Option<(f64, f64)> {
        self.cost?;
        let costs = self.points.iter().filter_map(|p| p.cost);
        let (lo, hi) = costs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), c| {
            (a.min(c), b.max(c))
        });
        if !(lo.is_finite() && hi.is_finite()) {
            return None;
        }
        Some(if hi > lo {
            (lo, hi)
        } else {
            let pad = if lo == 0.0 { 1e-3 } else { lo.abs() * 0.05 };
            (lo - pad, hi + pad)
        })
    }

    fn fill(&self, p: &ParetoPoint, on_front: bool) -> RGBColor {
        match (self.cost_range(), p.cost) {
            (Some((lo, hi)), Some(c)) => viridis((c - lo) / (hi - lo)),
            _ if on_front => FRONT_FILL,
            _ => GREY,
        }
    }

    /// The legend's lines, each with its marker sample.
    fn legend(&self) -> Vec<(String, Mark)> {
        let over = if self.cost.is_some() {
            "capacity (higher), energy per token and cost (lower)"
        } else {
            "capacity (higher) and energy per token (lower)"
        };
        let mut lines = vec![(
            format!("Pareto front, joined by capacity: not dominated on {over}"),
            Mark::Front,
        )];
        if self.front.iter().any(|f| !*f) {
            lines.push(("dominated".to_string(), Mark::Dominated));
        }
        let labelled = self.labelled();
        if labelled.iter().any(|l| *l) && !self.label_keys.is_empty() {
            let which = if labelled.iter().all(|l| *l) {
                "points"
            } else {
                "front points"
            };
            lines.push((
                format!("{which} labelled: {}", self.label_keys.join(", ")),
                Mark::None,
            ));
        }
        if let Some(note) = &self.cost_note {
            lines.push((note.clone(), Mark::None));
        }
        lines
    }

    /// Draws the chart; returns the plotting area's top and bottom (absolute pixels), for the colour bar.
    fn draw_on<DB, X>(
        &self,
        area: &DrawingArea<DB, Shift>,
        x_range: X,
        (y0, y1): (f64, f64),
        log: bool,
    ) -> std::result::Result<(i32, i32), DrawingAreaErrorKind<DB::ErrorType>>
    where
        DB: DrawingBackend,
        X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .margin(20)
            .margin_right(30)
            .x_label_area_size(70)
            .y_label_area_size(100)
            .build_cartesian_2d(x_range, y0..y1)?;
        let x_desc = if log {
            "capacity: highest request rate meeting the SLO (req/s, log scale)"
        } else {
            "capacity: highest request rate meeting the SLO (req/s)"
        };
        let x_fmt = |v: &f64| tick_label(*v, log);
        chart
            .configure_mesh()
            .house_style()
            .x_desc(x_desc)
            .y_desc("energy per output token at capacity (J/token)")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        let at = |p: &ParetoPoint| (p.capacity_rps, p.j_per_output_token);
        // The front line under the markers.
        let order = self.front_order();
        if order.len() > 1 {
            chart.draw_series(LineSeries::new(
                order.iter().map(|i| at(&self.points[*i])),
                FRONT_LINE.stroke_width(2),
            ))?;
        }
        // Dominated points first, so front points are on top.
        for (i, p) in self.points.iter().enumerate() {
            if self.front[i] {
                continue;
            }
            let fill = self.fill(p, false);
            chart.draw_series([
                Circle::new(at(p), DOMINATED_R, fill.mix(0.35).filled()),
                Circle::new(at(p), DOMINATED_R, GREY.stroke_width(1)),
            ])?;
        }
        for &i in &order {
            let p = &self.points[i];
            let fill = self.fill(p, true);
            chart.draw_series([
                Circle::new(at(p), FRONT_R, fill.filled()),
                Circle::new(at(p), FRONT_R, FRONT_LINE.stroke_width(2)),
            ])?;
        }
        // Labels, placed where they hide no marker and no other label.
        let labelled = self.labelled();
        let style = font(LABEL_PX);
        let mut anchors = Vec::new();
        let mut sizes = Vec::new();
        let mut which = Vec::new();
        for (i, p) in self.points.iter().enumerate() {
            if labelled[i] {
                which.push(i);
                sizes.push(area.estimate_text_size(&p.label, &style)?);
            }
        }
        let markers: Vec<(i32, i32)> = self
            .points
            .iter()
            .map(|p| chart.backend_coord(&at(p)))
            .collect();
        for &i in &which {
            anchors.push(markers[i]);
        }
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let line: Vec<(i32, i32)> = order.iter().map(|i| markers[*i]).collect();
        let placed = place_labels(
            &anchors,
            &sizes,
            &markers,
            &line,
            (xr.start, yr.start, xr.end, yr.end),
        );
        for (&i, pos) in which.iter().zip(placed) {
            let Some((x, y)) = pos else { continue };
            let color = if self.front[i] {
                BLACK
            } else {
                RGBColor(110, 110, 110)
            };
            let s = style
                .clone()
                .color(&color)
                .pos(Pos::new(HPos::Left, VPos::Top));
            text_at(area, &self.points[i].label, (x, y), &s)?;
        }
        Ok((yr.start, yr.end))
    }

    /// The colour bar in `area`, from `top` to `bottom` (absolute pixels, the plotting area's): the cost
    /// scale, cheapest at the bottom, with ticks and its label.
    fn draw_bar<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        top: i32,
        bottom: i32,
    ) -> DrawResult<DB> {
        let (Some(kind), Some((lo, hi))) = (self.cost, self.cost_range()) else {
            return Ok(());
        };
        // Relative to `area`.
        let (_, by) = area.get_base_pixel();
        let (top, bottom) = (top - by, bottom - by);
        let (x0, x1) = (24, 50);
        let span = (bottom - top).max(1) as f64;
        let y_of = |v: f64| bottom - ((v - lo) / (hi - lo) * span).round() as i32;
        let steps = 120;
        for k in 0..steps {
            let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
            let (ya, yb) = (bottom - (a * span) as i32, bottom - (b * span) as i32);
            area.draw(&Rectangle::new(
                [(x0, yb), (x1, ya)],
                viridis((a + b) / 2.0).filled(),
            ))?;
        }
        area.draw(&Rectangle::new([(x0, top), (x1, bottom)], BLACK.mix(0.6)))?;
        let tick = font(TICK_PX).pos(Pos::new(HPos::Left, VPos::Center));
        let mut widest = 0;
        for v in RangedCoordf64::from(lo..hi).key_points(6) {
            let y = y_of(v);
            area.draw(&PathElement::new(
                vec![(x1, y), (x1 + 6, y)],
                BLACK.stroke_width(1),
            ))?;
            let label = fmt_num(v);
            widest = widest.max(area.estimate_text_size(&label, &tick)?.0 as i32);
            area.draw(&Text::new(label, (x1 + 10, y), tick.clone()))?;
        }
        let desc = font(LEGEND_PX)
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Center, VPos::Top));
        area.draw(&Text::new(
            kind.label(),
            (x1 + 10 + widest + 34, (top + bottom) / 2),
            desc,
        ))?;
        Ok(())
    }

    fn bounds(&self) -> ((f64, f64), (f64, f64)) {
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for p in &self.points {
            x0 = x0.min(p.capacity_rps);
            x1 = x1.max(p.capacity_rps);
            y0 = y0.min(p.j_per_output_token);
            y1 = y1.max(p.j_per_output_token);
        }
        if !(x0.is_finite() && x1.is_finite() && x0 > 0.0) {
            (x0, x1) = (1.0, 1.0);
        }
        if !(y0.is_finite() && y1.is_finite()) {
            (y0, y1) = (1.0, 1.0);
        }
        ((x0, x1), (y0, y1))
    }
}

impl Figure for ParetoChart {
    fn stem(&self) -> String {
        STEM.into()
    }

    fn caption(&self) -> String {
        let colour = match (self.cost, &self.cost_note) {
            (Some(k), _) => format!(", coloured by {}", k.label()),
            (None, Some(note)) => format!(" ({note})"),
            (None, None) => {
                " (no cost known: no `cost_usd` in the summary and no rental price)".into()
            }
        };
        format!(
            "Each configuration's capacity under the SLO against its energy per output token at that rate{colour}; \
             the Pareto front is outlined and joined, dominated configurations faded"
        )
    }

    fn section(&self) -> &'static str {
        "Capacity"
    }

    fn size(&self) -> (u32, u32) {
        (1200, 760 + 30 * self.legend().len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, h) = root.dim_in_pixel();
        let legend = self.legend();
        let legend_h = 20 + 30 * legend.len() as u32;
        let (title, rest) = root.split_vertically(TITLE_H);
        let (main, legend_area) = rest.split_vertically(h - TITLE_H - legend_h);
        title.draw(&Text::new(
            "Capacity, energy per token and cost under the SLO",
            (w as i32 / 2, 24),
            font(TITLE_PX).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        title.draw(&Text::new(
            format!("SLO: {}", self.slo),
            (w as i32 / 2, 62),
            font(DESC_PX).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        let (chart_area, bar_area) = if self.cost.is_some() {
            let (a, b) = main.split_horizontally(w - BAR_AREA_W);
            (a, Some(b))
        } else {
            (main, None)
        };
        self.draw_legend(&legend_area, &legend)?;
        let ((x0, x1), (y0, y1)) = self.bounds();
        // Room around the points for their markers and labels.
        let yr = if y1 > y0 {
            (y0 - 0.12 * (y1 - y0), y1 + 0.12 * (y1 - y0))
        } else {
            let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
            (y0 - pad, y1 + pad)
        };
        let (top, bottom) = if x1 / x0 > LOG_X_SPREAD {
            // Ticks of our own: plotters' log axis starts its ticks at the first power of ten. The axis
            // starts at a labelled value when one is near enough below the smallest capacity.
            let nice = log_ticks(x0 / 1.6, x0).0.last().copied();
            let start = nice.map_or(x0 / 1.35, |v| (v * (1.0 - 1e-9)).min(x0 / 1.35));
            let end = x1 * 1.35;
            let (bold, light) = log_ticks(start, end);
            let range = (start..end)
                .log_scale()
                .with_key_points(bold)
                .with_light_points(light);
            self.draw_on(&chart_area, range, yr, true)?
        } else {
            let pad = if x1 > x0 { 0.12 * (x1 - x0) } else { x0 * 0.1 };
            self.draw_on(&chart_area, (x0 - pad).max(0.0)..x1 + pad, yr, false)?
        };
        if let Some(bar) = &bar_area {
            self.draw_bar(bar, top, bottom)?;
        }
        Ok(())
    }
}

impl ParetoChart {
    fn draw_legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        lines: &[(String, Mark)],
    ) -> DrawResult<DB> {
        // A mid-scale fill for the marker samples.
        let sample = if self.cost.is_some() {
            viridis(0.5)
        } else {
            FRONT_FILL
        };
        super::legend_column(area, lines, 10, |area, mark, x0, y| {
            let c = (x0 + 15, y);
            match mark {
                Mark::Front => {
                    area.draw(&PathElement::new(
                        vec![(x0, y), (x0 + 30, y)],
                        FRONT_LINE.stroke_width(2),
                    ))?;
                    area.draw(&Circle::new(c, FRONT_R, sample.filled()))?;
                    area.draw(&Circle::new(c, FRONT_R, FRONT_LINE.stroke_width(2)))
                }
                Mark::Dominated => {
                    let fill = if self.cost.is_some() { sample } else { GREY };
                    area.draw(&Circle::new(c, DOMINATED_R, fill.mix(0.35).filled()))?;
                    area.draw(&Circle::new(c, DOMINATED_R, GREY.stroke_width(1)))
                }
                Mark::None => Ok(()),
            }
        })
    }
}

/// Which points are not dominated on capacity (max), J per output token (min) and, with `cost`, cost
/// (min).
pub fn front_of(points: &[ParetoPoint], cost: bool) -> Vec<bool> {
    let caps: Vec<Option<f64>> = points.iter().map(|p| Some(p.capacity_rps)).collect();
    let mut mins = vec![points
        .iter()
        .map(|p| Some(p.j_per_output_token))
        .collect::<Vec<_>>()];
    if cost {
        mins.push(points.iter().map(|p| p.cost).collect());
    }
    crate::metrics::pareto(&caps, &mins)
}

/// Ticks of a log axis over `[lo, hi]` (0 < lo < hi): labelled ones at 1, 2 and 5 times powers of ten,
/// and light ones at every multiple 1-9 of a power of ten.
pub fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut bold, mut light) = (Vec::new(), Vec::new());
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return (bold, light);
    }
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    for k in k0..=k1 {
        for m in 1..=9 {
            // m / 10^-k rather than m x 10^k: 0.2, not 0.20000000000000004.
            let v = if k >= 0 {
                m as f64 * 10f64.powi(k)
            } else {
                m as f64 / 10f64.powi(-k)
            };
            if v < lo || v > hi {
                continue;
            }
            if [1, 2, 5].contains(&m) {
                bold.push(v);
            }
            light.push(v);
        }
    }
    (bold, light)
}

/// The viridis colour map (matplotlib's, through 9 of its colours) at `t` in [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (72, 40, 120),
        (62, 73, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (110, 206, 88),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let k = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - k as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Places labels of `sizes` (w, h) beside their `anchors` (pixel centres of markers), inside `bounds`
/// (x0, y0, x1, y1), so that none overlaps another label, any of `markers` or the polyline `line`: the
/// first free spot of right, left, above, below and the diagonals, close then farther out. Returns each
/// label's top-left corner, or `None` where no spot is free (the label is left out rather than drawn
/// over another).
pub fn place_labels(
    anchors: &[(i32, i32)],
    sizes: &[(u32, u32)],
    markers: &[(i32, i32)],
    line: &[(i32, i32)],
    bounds: (i32, i32, i32, i32),
) -> Vec<Option<(i32, i32)>> {
    type Rect = (i32, i32, i32, i32);
    let overlaps = |a: Rect, b: Rect| a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3;
    let r = FRONT_R + 2;
    let mut marker_boxes: Vec<Rect> = markers
        .iter()
        .map(|&(x, y)| (x - r, y - r, x + r, y + r))
        .collect();
    // The line, as small boxes every few pixels along it.
    for seg in line.windows(2) {
        let ((ax, ay), (bx, by)) = (seg[0], seg[1]);
        let len = ((bx - ax) as f64).hypot((by - ay) as f64);
        let steps = (len / 4.0).ceil().max(1.0) as i32;
        for k in 0..=steps {
            let x = ax + ((bx - ax) as f64 * k as f64 / steps as f64).round() as i32;
            let y = ay + ((by - ay) as f64 * k as f64 / steps as f64).round() as i32;
            marker_boxes.push((x - 2, y - 2, x + 2, y + 2));
        }
    }
    let mut placed: Vec<Rect> = Vec::new();
    let mut out = Vec::with_capacity(anchors.len());
    for (&(ax, ay), &(w, h)) in anchors.iter().zip(sizes) {
        let (w, h) = (w as i32, h as i32);
        let mut spot = None;
        'search: for gap in [r + 3, r + 14] {
            let candidates = [
                (ax + gap, ay - h / 2),
                (ax - gap - w, ay - h / 2),
                (ax - w / 2, ay - gap - h),
                (ax - w / 2, ay + gap),
                (ax + gap, ay - gap - h + 4),
                (ax + gap, ay + gap - 4),
                (ax - gap - w, ay - gap - h + 4),
                (ax - gap - w, ay + gap - 4),
            ];
            for (x, y) in candidates {
                let rect = (x, y, x + w, y + h);
                let inside =
                    x >= bounds.0 && y >= bounds.1 && x + w <= bounds.2 && y + h <= bounds.3;
                if inside
                    && !placed.iter().any(|p| overlaps(*p, rect))
                    && !marker_boxes.iter().any(|m| overlaps(*m, rect))
                {
                    spot = Some((x, y));
                    placed.push(rect);
                    break 'search;
                }
            }
        }
        out.push(spot);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(label: &str, cap: f64, jpt: f64, cost: Option<f64>) -> ParetoPoint {
        ParetoPoint {
            label: label.into(),
            capacity_rps: cap,
            j_per_output_token: jpt,
            cost,
        }
    }

    #[test]
    fn the_front_counts_cost_only_when_every_point_has_it() {
        let points = vec![
            pt("a", 10.0, 0.5, Some(1.0)),
            // Less capacity and more energy than a, but cheaper: on the front with cost.
            pt("b", 5.0, 0.6, Some(0.5)),
            // Dominated by a everywhere.
            pt("c", 8.0, 0.7, Some(2.0)),
            pt("d", 20.0, 0.9, Some(3.0)),
        ];
        let chart = ParetoChart::new("x".into(), vec![], Some(CostKind::Cost), points.clone());
        assert_eq!(chart.cost, Some(CostKind::Cost));
        assert_eq!(chart.front, [true, true, false, true]);
        // The line runs by capacity.
        assert_eq!(chart.front_order(), [1, 0, 3]);
        // One cost missing: cost is dropped, said so, and b falls off the front.
        let mut partial = points;
        partial[2].cost = None;
        let chart = ParetoChart::new("x".into(), vec![], Some(CostKind::Rental), partial);
        assert_eq!(chart.cost, None);
        assert!(chart.points.iter().all(|p| p.cost.is_none()));
        assert!(
            chart
                .cost_note
                .as_deref()
                .unwrap()
                .contains("unknown for 1 of 4"),
            "{:?}",
            chart.cost_note
        );
        assert_eq!(chart.front, [true, false, false, true]);
        // A single configuration is its own front.
        let one = ParetoChart::new("x".into(), vec![], None, vec![pt("c", 3.0, 0.4, None)]);
        assert_eq!(
            (one.front.clone(), one.front_order()),
            (vec![true], vec![0])
        );
    }

    #[test]
    fn many_points_label_only_the_front() {
        // 20 points on a line of rising capacity and energy: all on the front; then one far better
        // point dominating all others.
        let pts: Vec<ParetoPoint> = (0..20)
            .map(|i| pt(&i.to_string(), 1.0 + i as f64, 0.1 + i as f64 * 0.01, None))
            .collect();
        let chart = ParetoChart::new("x".into(), vec!["k".into()], None, pts.clone());
        assert!(chart.front.iter().all(|f| *f));
        assert!(
            chart.labelled().iter().all(|l| !*l),
            "20 front points: none"
        );
        let mut pts = pts;
        pts.push(pt("best", 100.0, 0.01, None));
        let chart = ParetoChart::new("x".into(), vec!["k".into()], None, pts);
        let labelled = chart.labelled();
        assert_eq!(labelled.iter().filter(|l| **l).count(), 1);
        assert!(labelled[20]);
        let few = ParetoChart::new("x".into(), vec![], None, chart.points[..5].to_vec());
        assert!(few.labelled().iter().all(|l| *l));
    }

    #[test]
    fn labels_stay_inside_and_apart() {
        // Five markers bunched together and one alone; labels 80 x 18.
        let markers = [
            (200, 200),
            (215, 205),
            (230, 195),
            (205, 220),
            (220, 185),
            (600, 400),
        ];
        let sizes = [(80, 18); 6];
        let bounds = (100, 100, 650, 500);
        let placed = place_labels(&markers, &sizes, &markers, &[], bounds);
        let rects: Vec<(i32, i32, i32, i32)> = placed
            .iter()
            .zip(&sizes)
            .filter_map(|(p, s)| p.map(|(x, y)| (x, y, x + s.0 as i32, y + s.1 as i32)))
            .collect();
        assert!(rects.len() >= 4, "{placed:?}");
        for (i, a) in rects.iter().enumerate() {
            assert!(
                a.0 >= 100 && a.1 >= 100 && a.2 <= 650 && a.3 <= 500,
                "{a:?}"
            );
            for b in &rects[i + 1..] {
                assert!(
                    !(a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3),
                    "{a:?} {b:?}"
                );
            }
            for m in &markers {
                assert!(
                    !(a.0 < m.0 + 11 && m.0 - 11 < a.2 && a.1 < m.1 + 11 && m.1 - 11 < a.3),
                    "{a:?} covers {m:?}"
                );
            }
        }
        // The lone marker near the right edge gets its label to the left.
        let lone = placed[5].unwrap();
        assert!(lone.0 + 80 <= 600, "{lone:?}");
        assert_eq!(
            place_labels(&markers, &sizes, &markers, &[], bounds),
            placed
        );
        // A line leaving a marker to the right pushes its label elsewhere.
        let one = place_labels(
            &[(300, 300)],
            &[(80, 18)],
            &[(300, 300)],
            &[(300, 300), (500, 300)],
            bounds,
        );
        let (x, y) = one[0].unwrap();
        assert!(x + 80 <= 300 || y + 18 <= 298 || y >= 302, "{one:?}");
    }

    #[test]
    fn log_ticks_label_one_two_five() {
        let (bold, light) = log_ticks(2.1, 61.0);
        assert_eq!(bold, [5.0, 10.0, 20.0, 50.0]);
        assert_eq!(light.first(), Some(&3.0));
        assert_eq!(light.last(), Some(&60.0));
        assert_eq!(light.len(), 7 + 6);
        let (bold, _) = log_ticks(0.015, 0.3);
        assert_eq!(bold, [0.02, 0.05, 0.1, 0.2]);
        assert_eq!(log_ticks(0.0, 1.0), (vec![], vec![]));
        assert_eq!(log_ticks(2.0, 1.0), (vec![], vec![]));
    }

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(38, 130, 142));
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(f64::NAN), viridis(0.5));
    }
}
