//! On-site solar and a battery behind the meter of a simulated deployment, dispatched hour by hour.
//!
//! Input: the run's facility energy per wall-clock hour (IT energy x PUE, from
//! [`crate::accounting::EnergyTotals::hourly_it_energy_j`]), a solar series (fraction of the array's
//! peak output per 5-minute period, as Solcast via Vessim publishes it) with the array's peak power
//! and inverter efficiency, a battery (capacity, state-of-charge bounds, power limits, round-trip
//! efficiency, self-discharge), a dispatch policy, and the grid's carbon intensity and price per hour.
//! Output: one [`Step`] per hour (every flow in kWh and the state of charge) and their totals; carbon
//! is charged on grid import only (the array's and the battery's embodied carbon are charged by
//! [`crate::accounting::amortised_embodied_g`], as the GPUs' are). It may not run a simulation, read a config or write a file: the
//! solar series is parsed from text given to it ([`SolarSeries::parse`]).
//!
//! Each hour, with `L` the load and `S` the solar energy after the inverter:
//! 1. solar serves the load first: `solar_used = min(S, L)`;
//! 2. the battery loses its self-discharge;
//! 3. the solar surplus charges the battery within its charge power and its `max_soc`, the rest is
//!    exported (or curtailed when export is off);
//! 4. the remaining load is met by the battery within its discharge power and `min_soc` (always under
//!    `self_consumption`; under `carbon_threshold` only in hours whose grid intensity is at or above the
//!    threshold, under `price_threshold` only in hours whose grid price is), then by grid import;
//! 5. under either threshold, in hours below it the battery also charges from the grid with the charge
//!    power the solar left.
//!
//! Charging stores `sqrt(round_trip_efficiency)` of the energy taken; discharging delivers that share of
//! the energy drawn, so a full cycle returns `round_trip_efficiency`. Every hour keeps
//! `load = solar_used + battery_discharge + grid_import - grid_charge` and
//! `solar = solar_used + solar_charge + export + curtailed` ([`Step::balance_errors`]).

use crate::error::{Error, Result};
use std::path::Path;

/// Solar output as a fraction of the array's peak, per hour.
#[derive(Debug, Clone, PartialEq)]
pub struct SolarSeries {
    /// The series' first hour, UTC, as `YYYY-MM-DD HH:00:00`.
    pub first_hour: String,
    /// Mean fraction of peak output over each hour, from the series' first whole hour.
    pub hourly_fraction: Vec<f64>,
}

impl SolarSeries {
    /// Parses a CSV of `datetime` (`YYYY-MM-DD HH:MM:SS`, UTC, the end of each 5-minute period) and
    /// one column per site of fractions of peak output in [0, 1]; keeps `column`, averaged over each
    /// hour (the twelve periods ending at :05 to :00 of the next hour). `path` names the file in
    /// errors. Rows must be 5 minutes apart; a last partial hour is dropped.
    pub fn parse(path: &Path, text: &str, column: &str) -> Result<Self> {
        let mut lines = text.lines().enumerate();
        let bad = |row: Option<usize>, column: &str, message: String| Error::Column {
            path: path.to_path_buf(),
            column: column.to_string(),
            row,
            message,
        };
        let (_, header) = lines.next().ok_or_else(|| Error::Csv {
            path: path.to_path_buf(),
            message: "empty file".into(),
        })?;
        let names: Vec<&str> = header.trim_start_matches('\u{feff}').split(',').collect();
        if names.first().map(|n| n.trim()) != Some("datetime") {
            return Err(bad(
                None,
                "datetime",
                "the first column must be `datetime` (Solcast via Vessim layout)".into(),
            ));
        }
        let col = names
            .iter()
            .position(|n| n.trim() == column)
            .ok_or_else(|| {
                bad(
                    None,
                    column,
                    format!(
                        "no such column; sites: {}",
                        names[1..]
                            .iter()
                            .map(|n| n.trim())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        let mut minutes: Vec<i64> = Vec::new();
        let mut values: Vec<f64> = Vec::new();
        let mut first_text = String::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').collect();
            let t = cells[0].trim();
            let at =
                chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").map_err(|_| {
                    bad(
                        Some(i),
                        "datetime",
                        format!("`{t}` is not a time as YYYY-MM-DD HH:MM:SS"),
                    )
                })?;
            let m = at.and_utc().timestamp() / 60;
            if let Some(&last) = minutes.last() {
                if m != last + 5 {
                    return Err(bad(
                        Some(i),
                        "datetime",
                        format!("`{t}` is not 5 minutes after the row before"),
                    ));
                }
            } else {
                first_text = t.to_string();
            }
            let cell = cells.get(col).map(|c| c.trim()).unwrap_or("");
            let v: f64 = cell
                .parse()
                .map_err(|_| bad(Some(i), column, format!("`{cell}` is not a number")))?;
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(
                    Some(i),
                    column,
                    format!("{v} is not a fraction of peak output in [0, 1]"),
                ));
            }
            minutes.push(m);
            values.push(v);
        }
        // Period-ending times: the period ending at :05 is the first of its hour.
        let skip = minutes
            .iter()
            .position(|m| m.rem_euclid(60) == 5)
            .ok_or_else(|| Error::Csv {
                path: path.to_path_buf(),
                message: format!("no whole hour of 5-minute rows (first row {first_text})"),
            })?;
        let hourly_fraction: Vec<f64> = values[skip..]
            .chunks_exact(12)
            .map(|c| c.iter().sum::<f64>() / 12.0)
            .collect();
        if hourly_fraction.is_empty() {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: "no whole hour of 5-minute rows".into(),
            });
        }
        let first = chrono::DateTime::from_timestamp((minutes[skip] - 5) * 60, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        Ok(SolarSeries {
            first_hour: first,
            hourly_fraction,
        })
    }

    /// The series' first hour's UTC hour of day (0-23).
    pub fn first_hour_of_day(&self) -> u32 {
        self.first_hour
            .get(11..13)
            .and_then(|h| h.parse().ok())
            .unwrap_or(0)
    }
}

/// A battery's limits; energies in kWh, powers in kW.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Battery {
    pub capacity_kwh: f64,
    pub min_soc: f64,
    pub max_soc: f64,
    pub initial_soc: f64,
    pub max_charge_kw: f64,
    pub max_discharge_kw: f64,
    pub round_trip_efficiency: f64,
    /// Share of the stored energy lost per day when idle.
    pub self_discharge_per_day: f64,
}

/// When the battery discharges, and whether it charges from the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dispatch {
    /// Solar first, the battery whenever solar falls short, the grid last; the battery charges from
    /// solar only.
    SelfConsumption,
    /// As self-consumption, but the battery discharges only in hours whose grid intensity is at or
    /// above the threshold, and charges from the grid in hours below it.
    CarbonThreshold { g_per_kwh: f64 },
    /// As self-consumption, but the battery discharges only in hours whose grid price is at or above
    /// the threshold, and charges from the grid in hours below it. Under a constant price every hour
    /// is on the same side: at or above, the policy is self-consumption; below, the battery never
    /// discharges and fills from the grid.
    PriceThreshold { usd_per_kwh: f64 },
}

/// The microgrid: the array, the battery and the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Microgrid {
    /// Peak (DC) power of the array, kW: an hour's output is `fraction x peak_kw x
    /// inverter_efficiency` kWh.
    pub peak_kw: f64,
    pub inverter_efficiency: f64,
    pub battery: Option<Battery>,
    pub dispatch: Dispatch,
    /// Whether surplus solar may be exported (otherwise it is curtailed).
    pub export: bool,
}

/// One hour's flows, kWh, and the battery's state at its end.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Step {
    pub load_kwh: f64,
    pub solar_kwh: f64,
    pub solar_used_kwh: f64,
    /// Solar energy taken into the battery (before charging losses).
    pub solar_charge_kwh: f64,
    /// Grid energy taken into the battery (before charging losses).
    pub grid_charge_kwh: f64,
    /// Energy the battery delivered to the load (after discharging losses).
    pub battery_discharge_kwh: f64,
    /// Stored energy lost to self-discharge.
    pub self_discharge_kwh: f64,
    pub grid_import_kwh: f64,
    pub grid_export_kwh: f64,
    pub curtailed_kwh: f64,
    /// Stored energy at the end of the hour.
    pub soc_kwh: f64,
    pub carbon_intensity_g_per_kwh: f64,
    /// `grid_import_kwh x carbon_intensity_g_per_kwh`.
    pub carbon_g: f64,
    /// The grid's price over the hour, USD/kWh (0 where none is known).
    pub price_usd_per_kwh: f64,
}

impl Step {
    /// The two balances every hour keeps, as residuals (kWh): load served, solar accounted for.
    pub fn balance_errors(&self) -> (f64, f64) {
        let load = self.solar_used_kwh + self.battery_discharge_kwh + self.grid_import_kwh
            - self.grid_charge_kwh
            - self.load_kwh;
        let solar =
            self.solar_used_kwh + self.solar_charge_kwh + self.grid_export_kwh + self.curtailed_kwh
                - self.solar_kwh;
        (load, solar)
    }
}

impl Microgrid {
    /// Dispatches hour by hour: `load_kwh[h]` facility energy of hour `h`, `solar_fraction[h]` the
    /// array's mean fraction of peak over it, `intensity[h]` the grid's carbon intensity, gCO2e/kWh,
    /// `price[h]` its price, USD/kWh, with every hour whole. The four have the same length.
    pub fn dispatch(
        &self,
        load_kwh: &[f64],
        solar_fraction: &[f64],
        intensity: &[f64],
        price: &[f64],
    ) -> Vec<Step> {
        self.dispatch_spans(
            load_kwh,
            solar_fraction,
            intensity,
            price,
            &vec![1.0; load_kwh.len()],
        )
    }

    /// As [`Microgrid::dispatch`], hour `h` lasting `hours[h]` hours (at most 1: the run's first and
    /// last hours may be partial): the solar energy, the battery's power limits and its self-discharge
    /// scale with it.
    pub fn dispatch_spans(
        &self,
        load_kwh: &[f64],
        solar_fraction: &[f64],
        intensity: &[f64],
        price: &[f64],
        hours: &[f64],
    ) -> Vec<Step> {
        let eta = self.battery.map_or(1.0, |b| b.round_trip_efficiency.sqrt());
        let mut soc = self.battery.map_or(0.0, |b| b.initial_soc * b.capacity_kwh);
        let mut out = Vec::with_capacity(load_kwh.len());
        for ((((&load, &frac), &ci), &usd), &dt) in load_kwh
            .iter()
            .zip(solar_fraction)
            .zip(intensity)
            .zip(price)
            .zip(hours)
        {
            let solar = frac * self.peak_kw * self.inverter_efficiency * dt;
            let solar_used = solar.min(load);
            let mut surplus = solar - solar_used;
            let mut deficit = load - solar_used;
            let mut s = Step {
                load_kwh: load,
                solar_kwh: solar,
                solar_used_kwh: solar_used,
                carbon_intensity_g_per_kwh: ci,
                price_usd_per_kwh: usd,
                ..Step::default()
            };
            if let Some(b) = &self.battery {
                let (lo, hi) = (b.min_soc * b.capacity_kwh, b.max_soc * b.capacity_kwh);
                s.self_discharge_kwh = soc * b.self_discharge_per_day / 24.0 * dt;
                soc -= s.self_discharge_kwh;
                let room = |soc: f64| ((hi - soc) / eta).max(0.0);
                s.solar_charge_kwh = surplus.min(b.max_charge_kw * dt).min(room(soc));
                soc += s.solar_charge_kwh * eta;
                surplus -= s.solar_charge_kwh;
                let (discharge, grid_charge) = match self.dispatch {
                    Dispatch::SelfConsumption => (true, false),
                    Dispatch::CarbonThreshold { g_per_kwh } => (ci >= g_per_kwh, ci < g_per_kwh),
                    Dispatch::PriceThreshold { usd_per_kwh } => {
                        (usd >= usd_per_kwh, usd < usd_per_kwh)
                    }
                };
                if discharge {
                    s.battery_discharge_kwh = deficit
                        .min(b.max_discharge_kw * dt)
                        .min(((soc - lo) * eta).max(0.0));
                    soc -= s.battery_discharge_kwh / eta;
                    deficit -= s.battery_discharge_kwh;
                }
                if grid_charge {
                    s.grid_charge_kwh = (b.max_charge_kw * dt - s.solar_charge_kwh)
                        .max(0.0)
                        .min(room(soc));
                    soc += s.grid_charge_kwh * eta;
                }
                soc = soc.clamp(0.0, b.capacity_kwh);
            }
            if self.export {
                s.grid_export_kwh = surplus;
            } else {
                s.curtailed_kwh = surplus;
            }
            s.grid_import_kwh = deficit + s.grid_charge_kwh;
            s.soc_kwh = soc;
            s.carbon_g = s.grid_import_kwh * ci;
            out.push(s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn battery() -> Battery {
        Battery {
            capacity_kwh: 10.0,
            min_soc: 0.1,
            max_soc: 0.9,
            initial_soc: 0.5,
            max_charge_kw: 3.0,
            max_discharge_kw: 4.0,
            round_trip_efficiency: 0.81,
            self_discharge_per_day: 0.0,
        }
    }

    fn grid(dispatch: Dispatch, export: bool) -> Microgrid {
        Microgrid {
            peak_kw: 10.0,
            inverter_efficiency: 0.96,
            battery: Some(battery()),
            dispatch,
            export,
        }
    }

    #[test]
    fn a_sunny_hour_charges_then_exports_and_a_dark_hour_discharges_then_imports() {
        // Hour 0: solar 0.5 x 10 x 0.96 = 4.8 kWh against 1 kWh of load: 1 used, 3 charged (the
        // charge limit; 2.7 stored at 90%), 0.8 exported. Stored: 5 + 2.7 = 7.7 kWh.
        // Hour 1: no sun, 6 kWh of load: the battery gives 4 (its discharge limit; 4 / 0.9 = 4.444
        // drawn), the grid 2. Stored: 7.7 - 4.444 = 3.256 kWh.
        let g = grid(Dispatch::SelfConsumption, true);
        let s = g.dispatch(&[1.0, 6.0], &[0.5, 0.0], &[100.0, 300.0], &[0.1, 0.1]);
        assert!((s[0].solar_kwh - 4.8).abs() < 1e-12);
        assert!((s[0].solar_used_kwh - 1.0).abs() < 1e-12);
        assert!((s[0].solar_charge_kwh - 3.0).abs() < 1e-12);
        assert!((s[0].grid_export_kwh - 0.8).abs() < 1e-12);
        assert!((s[0].soc_kwh - 7.7).abs() < 1e-12);
        assert_eq!(s[0].grid_import_kwh, 0.0);
        assert!((s[1].battery_discharge_kwh - 4.0).abs() < 1e-12);
        assert!((s[1].grid_import_kwh - 2.0).abs() < 1e-12);
        assert!((s[1].soc_kwh - (7.7 - 4.0 / 0.9)).abs() < 1e-12);
        assert!((s[1].carbon_g - 600.0).abs() < 1e-9);
        // Without export the surplus is curtailed.
        let s = grid(Dispatch::SelfConsumption, false).dispatch(&[1.0], &[0.5], &[100.0], &[0.1]);
        assert!((s[0].curtailed_kwh - 0.8).abs() < 1e-12 && s[0].grid_export_kwh == 0.0);
    }

    #[test]
    fn every_hour_balances_and_the_charge_stays_within_its_bounds() {
        // A week of hours with loads, sun and intensities cycling out of phase, under both policies,
        // with self-discharge.
        let n = 168;
        let load: Vec<f64> = (0..n)
            .map(|h| 2.0 + (h as f64 * 0.7).sin().abs() * 5.0)
            .collect();
        let sun: Vec<f64> = (0..n)
            .map(|h| {
                ((h % 24) as f64 / 24.0 * std::f64::consts::TAU - 1.57)
                    .sin()
                    .max(0.0)
            })
            .collect();
        let ci: Vec<f64> = (0..n)
            .map(|h| 200.0 + 150.0 * (h as f64 * 0.3).cos())
            .collect();
        // Prices out of phase with the intensity, some of them negative (as wholesale prices can be).
        let price: Vec<f64> = (0..n)
            .map(|h| 0.1 + 0.15 * (h as f64 * 0.45).sin())
            .collect();
        for dispatch in [
            Dispatch::SelfConsumption,
            Dispatch::CarbonThreshold { g_per_kwh: 250.0 },
            Dispatch::PriceThreshold { usd_per_kwh: 0.12 },
        ] {
            for (export, sd) in [(true, 0.02), (false, 0.0), (true, 0.0)] {
                let mut g = grid(dispatch, export);
                g.battery.as_mut().unwrap().self_discharge_per_day = sd;
                let steps = g.dispatch(&load, &sun, &ci, &price);
                let b = g.battery.unwrap();
                let eta = b.round_trip_efficiency.sqrt();
                let mut soc = b.initial_soc * b.capacity_kwh;
                for (h, s) in steps.iter().enumerate() {
                    let (l, p) = s.balance_errors();
                    assert!(
                        l.abs() < 1e-9 && p.abs() < 1e-9,
                        "{dispatch:?} hour {h}: {s:?}"
                    );
                    // Dispatch never draws below min_soc nor charges above max_soc; only
                    // self-discharge lets an idle battery sink below min_soc.
                    let lo = b.min_soc * b.capacity_kwh;
                    assert!(
                        s.soc_kwh <= b.max_soc * b.capacity_kwh + 1e-9 && s.soc_kwh >= 0.0,
                        "{dispatch:?} hour {h}: {}",
                        s.soc_kwh
                    );
                    if s.battery_discharge_kwh > 0.0 {
                        assert!(
                            s.soc_kwh >= lo - 1e-9,
                            "{dispatch:?} hour {h}: {}",
                            s.soc_kwh
                        );
                    } else {
                        assert!(
                            s.soc_kwh >= (soc - s.self_discharge_kwh).min(lo) - 1e-9,
                            "{dispatch:?} hour {h}"
                        );
                    }
                    if sd == 0.0 {
                        assert!(
                            s.soc_kwh >= lo - 1e-9,
                            "{dispatch:?} hour {h}: {}",
                            s.soc_kwh
                        );
                    }
                    // The battery's own balance: stored energy moves by what went in and out.
                    let expect = soc - s.self_discharge_kwh
                        + (s.solar_charge_kwh + s.grid_charge_kwh) * eta
                        - s.battery_discharge_kwh / eta;
                    assert!((s.soc_kwh - expect).abs() < 1e-9, "{dispatch:?} hour {h}");
                    soc = s.soc_kwh;
                    assert!(s.solar_charge_kwh + s.grid_charge_kwh <= b.max_charge_kw + 1e-12);
                    assert!(s.battery_discharge_kwh <= b.max_discharge_kw + 1e-12);
                    for v in [
                        s.solar_used_kwh,
                        s.solar_charge_kwh,
                        s.grid_charge_kwh,
                        s.battery_discharge_kwh,
                        s.grid_import_kwh,
                        s.grid_export_kwh,
                        s.curtailed_kwh,
                    ] {
                        assert!(v >= 0.0, "{dispatch:?} hour {h}: {s:?}");
                    }
                    let below = match dispatch {
                        Dispatch::SelfConsumption => None,
                        Dispatch::CarbonThreshold { g_per_kwh } => {
                            Some(s.carbon_intensity_g_per_kwh < g_per_kwh)
                        }
                        Dispatch::PriceThreshold { usd_per_kwh } => {
                            Some(s.price_usd_per_kwh < usd_per_kwh)
                        }
                    };
                    match below {
                        Some(true) => assert_eq!(s.battery_discharge_kwh, 0.0),
                        Some(false) => assert_eq!(s.grid_charge_kwh, 0.0),
                        None => assert_eq!(s.grid_charge_kwh, 0.0),
                    }
                }
            }
        }
    }

    #[test]
    fn a_partial_hour_gets_its_share_of_sun_and_of_the_battery_power() {
        // A quarter of an hour: solar 0.25 x 4.8 = 1.2 kWh, charge limited to 0.25 x 3 = 0.75 kWh.
        let g = grid(Dispatch::SelfConsumption, true);
        let s = g.dispatch_spans(&[0.1], &[0.5], &[100.0], &[0.1], &[0.25]);
        assert!((s[0].solar_kwh - 1.2).abs() < 1e-12);
        assert!((s[0].solar_charge_kwh - 0.75).abs() < 1e-12);
        assert!((s[0].grid_export_kwh - 0.35).abs() < 1e-12);
        let (l, p) = s[0].balance_errors();
        assert!(l.abs() < 1e-12 && p.abs() < 1e-12);
    }

    #[test]
    fn solar_is_averaged_per_hour_from_period_ending_rows() {
        // Rows end 5-minute periods: 00:05 ... 01:00 are hour 0, 01:05 ... 02:00 hour 1; a leading
        // 00:00 row (the period before) is dropped, and so is the last partial hour.
        let mut text = String::from("datetime,A,B\n2022-06-08 00:00:00,0.9,0\n");
        for i in 1..=30 {
            let m = i * 5;
            let v = if i <= 12 { 0.12 } else { 0.6 };
            text.push_str(&format!(
                "2022-06-08 {:02}:{:02}:00,0.0,{v}\n",
                m / 60,
                m % 60
            ));
        }
        let s = SolarSeries::parse(Path::new("s.csv"), &text, "B").unwrap();
        assert_eq!(s.first_hour, "2022-06-08 00:00:00");
        assert_eq!(s.hourly_fraction.len(), 2);
        assert!((s.hourly_fraction[0] - 0.12).abs() < 1e-12);
        assert!((s.hourly_fraction[1] - 0.6).abs() < 1e-12);
        let e = SolarSeries::parse(Path::new("s.csv"), &text, "C").unwrap_err();
        assert!(
            e.to_string().contains("C") && e.to_string().contains("A, B"),
            "{e}"
        );
        let e = SolarSeries::parse(Path::new("s.csv"), &text.replace(",0.6\n", ",1.5\n"), "B")
            .unwrap_err();
        assert!(e.to_string().contains("1.5"), "{e}");
        let e = SolarSeries::parse(
            Path::new("s.csv"),
            &text.replace("2022-06-08 00:30:00", "2022-06-08 00:31:00"),
            "B",
        )
        .unwrap_err();
        assert!(e.to_string().contains("5 minutes"), "{e}");
    }

    #[test]
    fn price_threshold_charges_from_the_grid_when_cheap_and_discharges_when_dear() {
        // No sun; threshold 0.20 USD/kWh. Hour 0 (0.05, cheap): no discharge, the grid charges 3 kWh
        // (the charge limit; 2.7 stored), import 2 + 3 = 5, stored 7.7. Hour 1 (0.30): the battery gives
        // 4 (its limit; 4 / 0.9 drawn), import 2. Hour 2 (0.20, at the threshold counts as dear): it
        // gives the whole 1 kWh, import 0.
        let g = grid(Dispatch::PriceThreshold { usd_per_kwh: 0.2 }, true);
        let s = g.dispatch(
            &[2.0, 6.0, 1.0],
            &[0.0; 3],
            &[100.0; 3],
            &[0.05, 0.30, 0.20],
        );
        assert_eq!(s[0].battery_discharge_kwh, 0.0);
        assert!((s[0].grid_charge_kwh - 3.0).abs() < 1e-12);
        assert!((s[0].grid_import_kwh - 5.0).abs() < 1e-12);
        assert!((s[0].soc_kwh - 7.7).abs() < 1e-12);
        assert!((s[1].battery_discharge_kwh - 4.0).abs() < 1e-12);
        assert_eq!(s[1].grid_charge_kwh, 0.0);
        assert!((s[1].grid_import_kwh - 2.0).abs() < 1e-12);
        assert!((s[1].soc_kwh - (7.7 - 4.0 / 0.9)).abs() < 1e-12);
        assert!((s[2].battery_discharge_kwh - 1.0).abs() < 1e-12);
        assert_eq!(s[2].grid_import_kwh, 0.0);
        assert!((s[2].soc_kwh - (7.7 - 5.0 / 0.9)).abs() < 1e-12);
        assert_eq!(s[1].price_usd_per_kwh, 0.30);
    }

    #[test]
    fn under_a_constant_price_the_price_threshold_is_self_consumption_or_never_discharges() {
        let load = [2.0, 6.0, 1.0, 3.0];
        let sun = [0.5, 0.0, 0.3, 0.0];
        let ci = [100.0; 4];
        let price = [0.15; 4];
        let own = grid(Dispatch::SelfConsumption, true).dispatch(&load, &sun, &ci, &price);
        let at = grid(Dispatch::PriceThreshold { usd_per_kwh: 0.15 }, true)
            .dispatch(&load, &sun, &ci, &price);
        assert_eq!(own, at);
        let above = grid(Dispatch::PriceThreshold { usd_per_kwh: 0.2 }, true)
            .dispatch(&load, &sun, &ci, &price);
        assert!(above.iter().all(|s| s.battery_discharge_kwh == 0.0));
        // It fills to max_soc (9 kWh) from the sun and the grid, and holds it.
        assert!((above[3].soc_kwh - 9.0).abs() < 1e-9, "{above:?}");
    }
}
