//! The microgrid figure of a run with on-site solar and a battery: the hourly power flows (load, solar,
//! battery, grid) and the battery's state of charge over the run, from the run folder's
//! `microgrid.csv` (docs/microgrid.md).

use super::{
    fmt_num, font, legend_line, DrawResult, Figure, HouseMesh, DESC_PX, PALETTE, TITLE_PX,
};
use crate::csvio::CsvTable;
use crate::error::Result;
use crate::runfolder::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One hour of the microgrid, mean kW over it (= its kWh), and the state of charge at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct MicrogridHour {
    pub load_kw: f64,
    pub solar_kw: f64,
    pub battery_discharge_kw: f64,
    /// Into the battery, from solar and from the grid.
    pub battery_charge_kw: f64,
    pub grid_import_kw: f64,
    pub grid_export_kw: f64,
    pub soc_fraction: Option<f64>,
}

/// One flow of an hour, kW.
type Flow = fn(&MicrogridHour) -> f64;

/// The figure: the hours and the run's first hour (UTC), for the axis label.
#[derive(Debug, Clone, PartialEq)]
pub struct MicrogridChart {
    pub first_hour_utc: String,
    pub hours: Vec<MicrogridHour>,
}

/// The microgrid figure of a run folder; `None` when it has no `microgrid.csv`.
pub fn microgrid_chart(run: &RunFolder) -> Result<Option<MicrogridChart>> {
    let path = run.dir.join("microgrid.csv");
    if !path.exists() {
        return Ok(None);
    }
    let t = CsvTable::read(&path)?;
    let col = |name: &str| t.f64_column(name);
    let (load, solar, dis, sc, gc, imp, exp) = (
        col("load_kwh")?,
        col("solar_kwh")?,
        col("battery_discharge_kwh")?,
        col("solar_charge_kwh")?,
        col("grid_charge_kwh")?,
        col("grid_import_kwh")?,
        col("grid_export_kwh")?,
    );
    let soc: Vec<Option<f64>> = t
        .text_values("soc_fraction")?
        .iter()
        .map(|v| v.parse().ok())
        .collect();
    let first_hour_utc = t
        .text_values("hour_start_utc")?
        .first()
        .cloned()
        .unwrap_or_default();
    let hours = (0..load.len())
        .map(|i| MicrogridHour {
            load_kw: load[i],
            solar_kw: solar[i],
            battery_discharge_kw: dis[i],
            battery_charge_kw: sc[i] + gc[i],
            grid_import_kw: imp[i],
            grid_export_kw: exp[i],
            soc_fraction: soc[i],
        })
        .collect();
    Ok(Some(MicrogridChart {
        first_hour_utc,
        hours,
    }))
}

impl Figure for MicrogridChart {
    fn stem(&self) -> String {
        "microgrid".into()
    }
    fn caption(&self) -> String {
        "Power flows of the on-site solar array, battery and grid, hour by hour (mean kW over each hour), \
         and the battery's state of charge at the end of each hour (microgrid.csv)"
            .into()
    }
    fn section(&self) -> &'static str {
        "Energy"
    }
    fn size(&self) -> (u32, u32) {
        (1200, 900)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.hours.len() as f64;
        let body = root
            .margin(12, 0, 0, 0)
            .titled("On-site solar, battery and grid", font(TITLE_PX))?;
        let (top, rest) = body.split_vertically(body.dim_in_pixel().1 as i32 * 58 / 100);
        let (bottom, legend_area) = rest.split_vertically(rest.dim_in_pixel().1 as i32 - 70);
        let series: [(&str, Flow); 6] = [
            ("load", |h| h.load_kw),
            ("solar", |h| h.solar_kw),
            ("grid import", |h| h.grid_import_kw),
            ("battery discharge", |h| h.battery_discharge_kw),
            ("battery charge", |h| h.battery_charge_kw),
            ("grid export", |h| h.grid_export_kw),
        ];
        let y1 = self
            .hours
            .iter()
            .flat_map(|h| series.iter().map(move |(_, f)| f(h)))
            .fold(0.0f64, f64::max);
        let y1 = if y1 > 0.0 { y1 * 1.08 } else { 1.0 };
        let mut chart = ChartBuilder::on(&top)
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..n.max(1.0), 0.0..y1)?;
        chart
            .configure_mesh()
            .house_style()
            .y_desc("power (kW, mean over the hour)")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        for (i, (_, f)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            // Each hour's value held over the hour: a step line.
            let pts: Vec<(f64, f64)> = self
                .hours
                .iter()
                .enumerate()
                .flat_map(|(k, h)| [(k as f64, f(h)), (k as f64 + 1.0, f(h))])
                .collect();
            chart.draw_series(LineSeries::new(pts, color.stroke_width(3)))?;
        }
        let mut soc_chart = ChartBuilder::on(&bottom)
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..n.max(1.0), 0.0..1.0)?;
        soc_chart
            .configure_mesh()
            .house_style()
            .x_desc(format!("hours from {}", self.first_hour_utc))
            .y_desc("state of charge")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        let soc: Vec<(f64, f64)> = self
            .hours
            .iter()
            .enumerate()
            .filter_map(|(k, h)| h.soc_fraction.map(|s| (k as f64 + 1.0, s)))
            .collect();
        if !soc.is_empty() {
            soc_chart.draw_series(LineSeries::new(soc.clone(), PALETTE[7].stroke_width(3)))?;
            soc_chart.draw_series(soc.iter().map(|p| Circle::new(*p, 4, PALETTE[7].filled())))?;
        } else {
            soc_chart.draw_series(std::iter::once(Text::new(
                "no battery",
                (n / 2.0, 0.5),
                font(DESC_PX),
            )))?;
        }
        // The legend: one row under the charts.
        let mut x = 100;
        for (i, (name, _)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            legend_area.draw(&(legend_line(color, 3))((x, 30)))?;
            legend_area.draw(&Text::new(name.to_string(), (x + 38, 20), font(18)))?;
            x += 40 + legend_area.estimate_text_size(name, &font(18))?.0 as i32 + 30;
        }
        if !soc.is_empty() {
            legend_area.draw(&(legend_line(PALETTE[7], 3))((x, 30)))?;
            legend_area.draw(&Text::new("state of charge", (x + 38, 20), font(18)))?;
        }
        Ok(())
    }
}
