//! Figure: carbon, cost and water of the run in each configured region ([`RegionChart`]), from
//! summary.json `regions` (computed by accounting).

use super::style::*;
use crate::plots::{fmt_num, font, DrawResult, Figure, HouseMesh, PALETTE, TICK_PX, TITLE_PX};
use crate::runfolder::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

/// Section of summary.md for the region figure.
pub(super) const REGION_SECTION: &str = "Carbon, cost and water by region";

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
