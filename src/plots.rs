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
//! To add a figure: write such a function and a [`Figure`] impl in a file of its own under `plots/`, and
//! call it from [`run_plots`]. This file holds what every figure shares: the font, sizes, palette and
//! mesh style, rendering to PNG and SVG, number formats and legends. The figures: latency CDFs in
//! `plots/latency.rs` ([`LatencyCdf`]), replica timelines in `plots/timeline.rs` ([`ReplicaTimeline`]),
//! the power, energy and region figures in [`energy`], on-site solar and battery in [`microgrid`]; figures of many runs in [`sweep`] (a sweep metric
//! against an axis) and [`pareto`] (a capacity search's front).

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::runfolder::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

pub mod energy;
mod latency;
pub mod microgrid;
pub mod pareto;
pub mod sweep;
mod timeline;
pub use energy::{
    energy_by_replica, energy_per_token, power_timeline, region_chart, EnergyByReplica,
    EnergyPerToken, PowerTimeline, RegionChart,
};
pub use latency::{latency_cdfs, CdfSeries, LatencyCdf};
pub use timeline::{replica_timelines, Profile, ReplicaTimeline};

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
/// Above this many batches per replica, timelines are drawn as time bins (mean and min-max band).
const EXACT_STEPS_MAX: usize = 1000;
/// Number of time bins of a binned timeline.
const TIMELINE_BINS: usize = 600;
/// A CDF whose largest value exceeds its smallest positive one this many times gets a log x axis.
const LOG_SPREAD: f64 = 20.0;

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
pub fn run_plots(run: &RunFolder, dir: &Path, builtin_catalog: &Catalog) -> Result<Vec<PlotFile>> {
    let mut out = Vec::new();
    for fig in latency_cdfs(run)? {
        out.push(render(&fig, dir)?);
    }
    for fig in replica_timelines(run)? {
        out.push(render(&fig, dir)?);
    }
    if let Some(fig) = power_timeline(run, builtin_catalog)? {
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
    if let Some(fig) = microgrid::microgrid_chart(run)? {
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

/// Finite values of `v`, sorted ascending.
pub(crate) fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v
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
}
