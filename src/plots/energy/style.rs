//! What the energy figures share: their colours and summary.md sections, legend swatches and strips,
//! readable units for energies, counts and shares, and the device TDP drawn as a reference. Draws no
//! figure and reads no table.

use crate::catalog::Catalog;
use crate::plots::{fmt_num, font, DrawResult, LEGEND_PX, PALETTE};
use crate::runfolder::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Section of summary.md for the power and energy figures.
pub(super) const ENERGY_SECTION: &str = "Power and energy";

/// Colour of idle power and idle energy.
pub(super) const IDLE: RGBColor = PALETTE[6];

/// Colour of decode energy (as decoding in the timelines).
pub(super) const DECODE: RGBColor = PALETTE[0];

/// Colour of prefill energy (as prefills in the timelines).
pub(super) const PREFILL: RGBColor = PALETTE[1];

/// Reference lines (TDP).
pub(super) const GREY: RGBColor = RGBColor(60, 60, 60);

/// What a legend entry shows beside its text.
#[derive(Debug, Clone, Copy)]
pub(super) enum Swatch {
    /// A line of this width.
    Line(RGBColor, u32),
    /// A dashed line.
    Dashed(RGBColor),
    /// A filled square (a shaded area or a bar).
    Fill(RGBColor, f64),
    /// A dot (one per batch).
    Dot(RGBColor),
}

pub(super) fn draw_swatch<DB: DrawingBackend>(
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
pub(super) fn legend_height(n: usize) -> u32 {
    20 + 30 * n as u32
}

/// Legend entries in one column, centred in `area` (below the chart, where they hide nothing).
pub(super) fn legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, Swatch)],
) -> DrawResult<DB> {
    crate::plots::legend_column(area, items, 5, |area, swatch, x0, y| {
        draw_swatch(area, *swatch, x0, y)
    })
}

/// Legend entries on one line from `(x, y)` (the vertical centre); returns the x after the last one.
pub(super) fn legend_row<DB: DrawingBackend>(
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
pub(super) fn energy_unit(max_j: f64) -> (f64, &'static str) {
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
pub(super) fn fmt_energy(j: f64) -> String {
    let (scale, unit) = match j.abs() {
        x if x < 1e3 => (1.0, "J"),
        x if x < 1e6 => (1e3, "kJ"),
        x if x < 1e9 => (1e6, "MJ"),
        _ => (1e9, "GJ"),
    };
    format!("{} {unit}", fmt_num(j / scale))
}

/// A count with thousands separators (`10,964`).
pub(super) fn fmt_count(n: usize) -> String {
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
pub(super) fn fmt_pct(part: f64, total: f64) -> String {
    if total > 0.0 {
        format!("{}%", fmt_num(100.0 * part / total))
    } else {
        "-".into()
    }
}

/// Thermal design power of the run's device, when the run used the built-in device catalog.
pub(super) fn device_tdp_w(run: &RunFolder, builtin_catalog: &Catalog) -> Option<f64> {
    let builtin = run
        .config_value("catalog.devices")
        .is_none_or(|v| v.is_null());
    if !builtin {
        return None;
    }
    let gpu = run.summary_str("gpu")?;
    builtin_catalog.device(gpu).map(|(_, d)| d.tdp_w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_units_read_well() {
        assert_eq!(fmt_count(10964), "10,964");
        assert_eq!(fmt_count(512), "512");
        assert_eq!(energy_unit(76_812.0), (1e3, "kJ"));
        assert_eq!(energy_unit(950.0), (1.0, "J"));
        assert_eq!(fmt_pct(25.0, 100.0), "25%");
    }
}
