//! The `microgrid` section checked: on-site solar, a battery and their dispatch policy.
//!
//! Input: the raw section, its solar file's path anchored like every other path of the config. Output:
//! the same section, every number checked (the solar file itself is read by the driver, which hands it
//! to [`crate::microgrid`]). It may not read files or run anything.

use super::raw::{ArrayConfig, DispatchConfig, MicrogridConfig};
use crate::error::{Error, Result};
use std::path::Path;

/// Checks every number of the `microgrid` section (`None`: no microgrid).
pub fn resolve(path: &Path, m: Option<&MicrogridConfig>) -> Result<Option<MicrogridConfig>> {
    let Some(m) = m else {
        return Ok(None);
    };
    let check = |field: &str, v: f64, ok: bool, what: &str| check(path, field, v, ok, what);
    let s = &m.solar;
    let mut m = m.clone();
    match (&s.file, &s.weather_file) {
        (Some(file), Some(weather)) => {
            return Err(Error::invalid(
                path,
                "microgrid.solar.weather_file",
                weather.display(),
                format!(
                    "is given with microgrid.solar.file ({}): give either a series of an array's \
                     output (file and site) or a weather file for the PV model (weather_file and \
                     array), not both",
                    file.display()
                ),
            ))
        }
        (Some(_), None) => {
            if s.site.as_deref().is_none_or(|x| x.trim().is_empty()) {
                return Err(Error::invalid(
                    path,
                    "microgrid.solar.site",
                    format!("{:?}", s.site.as_deref().unwrap_or("")),
                    "names the column (site) of the solar file to use, e.g. San Francisco",
                ));
            }
            if s.array.is_some() {
                return Err(Error::invalid(
                    path,
                    "microgrid.solar.array",
                    "set",
                    "is used only with microgrid.solar.weather_file: the solar file's series is \
                     already an array's output",
                ));
            }
        }
        (None, _) => {
            if let Some(site) = &s.site {
                return Err(Error::invalid(
                    path,
                    "microgrid.solar.site",
                    site,
                    "is used only with microgrid.solar.file: the weather file is of one site",
                ));
            }
            if s.day != 0 {
                return Err(Error::invalid(
                    path,
                    "microgrid.solar.day",
                    s.day,
                    "is used only with microgrid.solar.file: with weather_file, the run's own \
                     dates (energy.start_time) pick the weather's days",
                ));
            }
            let a = m.solar.array.get_or_insert_with(Default::default);
            check_array(path, a)?;
        }
    }
    let area = m
        .solar
        .array
        .as_ref()
        .map(|a| (a.area_m2, a.module_efficiency));
    let peak = match (s.peak_kw, area) {
        (Some(p), None | Some((None, None))) => p,
        (Some(p), Some(_)) => {
            return Err(Error::invalid(
                path,
                "microgrid.solar.peak_kw",
                p,
                "is given with array.area_m2 or array.module_efficiency: give the peak or the \
                 area and efficiency it comes from, not both",
            ))
        }
        (None, Some((Some(area), Some(eff)))) => {
            check(
                "solar.array.area_m2",
                area,
                (0.0..=1e8).contains(&area),
                "must be a number of m^2 from 0 to 100,000,000",
            )?;
            check(
                "solar.array.module_efficiency",
                eff,
                eff > 0.0 && eff <= 0.5,
                "must be a share in (0, 0.5] (0.2 for 20%)",
            )?;
            area * eff
        }
        (None, Some((Some(_), None))) => {
            return Err(Error::invalid(
                path,
                "microgrid.solar.array.module_efficiency",
                "(absent)",
                "is needed with array.area_m2 (peak kW = area m^2 x efficiency x 1 kW/m^2)",
            ))
        }
        (None, Some((None, Some(_)))) => return Err(Error::invalid(
            path,
            "microgrid.solar.array.area_m2",
            "(absent)",
            "is needed with array.module_efficiency (peak kW = area m^2 x efficiency x 1 kW/m^2)",
        )),
        (None, _) => {
            return Err(Error::invalid(
                path,
                "microgrid.solar.peak_kw",
                "(absent)",
                "is needed: the array's peak (DC) power in kW (with weather_file, or \
                 array.area_m2 and array.module_efficiency)",
            ))
        }
    };
    check(
        "solar.peak_kw",
        peak,
        (0.0..=1e7).contains(&peak),
        "must be a number of kW from 0 to 10,000,000",
    )?;
    m.solar.peak_kw = Some(peak);
    check(
        "solar.inverter_efficiency",
        s.inverter_efficiency,
        s.inverter_efficiency > 0.0 && s.inverter_efficiency <= 1.0,
        "must be in (0, 1]",
    )?;
    check_embodied(
        path,
        "solar",
        ("embodied_kg_per_kwp", s.embodied_kg_per_kwp),
        s.lifetime_years,
    )?;
    if let Some(b) = &m.battery {
        check_embodied(
            path,
            "battery",
            ("embodied_kg_per_kwh", b.embodied_kg_per_kwh),
            b.lifetime_years,
        )?;
        check(
            "battery.capacity_kwh",
            b.capacity_kwh,
            b.capacity_kwh > 0.0 && b.capacity_kwh <= 1e9,
            "must be a number of kWh above 0 (at most 1e9)",
        )?;
        for (f, v) in [("min_soc", b.min_soc), ("max_soc", b.max_soc)] {
            check(
                &format!("battery.{f}"),
                v,
                (0.0..=1.0).contains(&v),
                "must be in [0, 1]",
            )?;
        }
        check(
            "battery.max_soc",
            b.max_soc,
            b.max_soc > b.min_soc,
            &format!("must be above battery.min_soc ({})", b.min_soc),
        )?;
        check(
            "battery.initial_soc",
            b.initial_soc,
            b.initial_soc >= b.min_soc && b.initial_soc <= b.max_soc,
            &format!(
                "must be within battery.min_soc and max_soc ([{}, {}])",
                b.min_soc, b.max_soc
            ),
        )?;
        for (f, v) in [
            ("max_charge_kw", b.max_charge_kw),
            ("max_discharge_kw", b.max_discharge_kw),
        ] {
            check(
                &format!("battery.{f}"),
                v,
                (0.0..=1e9).contains(&v),
                "must be a number of kW from 0 to 1e9",
            )?;
        }
        check(
            "battery.round_trip_efficiency",
            b.round_trip_efficiency,
            b.round_trip_efficiency > 0.0 && b.round_trip_efficiency <= 1.0,
            "must be in (0, 1]",
        )?;
        check(
            "battery.self_discharge_per_day",
            b.self_discharge_per_day,
            (0.0..1.0).contains(&b.self_discharge_per_day),
            "must be in [0, 1)",
        )?;
    }
    // Each threshold belongs to its own dispatch: given without it, or missing with it, is an error.
    let thresholds = [
        (
            DispatchConfig::CarbonThreshold,
            "carbon_threshold",
            "carbon_threshold_g_per_kwh",
            m.carbon_threshold_g_per_kwh,
            "gCO2e/kWh at or above which the battery discharges",
            (0.0, 1e5),
            "must be a number of gCO2e/kWh from 0 to 100,000",
            "high-carbon",
        ),
        (
            DispatchConfig::PriceThreshold,
            "price_threshold",
            "price_threshold_usd_per_kwh",
            m.price_threshold_usd_per_kwh,
            "USD/kWh at or above which the battery discharges",
            (-100.0, 100.0),
            "must be a number of USD/kWh from -100 to 100 (wholesale prices can be negative)",
            "expensive",
        ),
    ];
    for (dispatch, name, field, value, meaning, (lo, hi), range, hours) in thresholds {
        match (m.dispatch == dispatch, value) {
            (false, Some(t)) => {
                return Err(Error::invalid(
                    path,
                    format!("microgrid.{field}"),
                    t,
                    format!("is used only with microgrid.dispatch: {name}"),
                ))
            }
            (true, None) => {
                return Err(Error::invalid(
                    path,
                    format!("microgrid.{field}"),
                    "(absent)",
                    format!("is needed with microgrid.dispatch: {name} ({meaning})"),
                ))
            }
            (true, Some(t)) => {
                check(field, t, (lo..=hi).contains(&t), range)?;
                if m.battery.is_none() {
                    return Err(Error::invalid(
                        path,
                        "microgrid.dispatch",
                        name,
                        format!("needs a microgrid.battery to hold energy for {hours} hours"),
                    ));
                }
            }
            (false, None) => {}
        }
    }
    Ok(Some(m))
}

/// Checks `microgrid.solar.array`.
fn check_array(path: &Path, a: &ArrayConfig) -> Result<()> {
    let ranged = |f: &str, v: f64, ok: bool, what: &str| {
        check(path, &format!("solar.array.{f}"), v, ok, what)
    };
    ranged(
        "tilt_deg",
        a.tilt_deg,
        (0.0..=90.0).contains(&a.tilt_deg),
        "must be a number of degrees from 0 (flat) to 90 (vertical)",
    )?;
    ranged(
        "azimuth_deg",
        a.azimuth_deg,
        (0.0..360.0).contains(&a.azimuth_deg),
        "must be a number of degrees clockwise from north, from 0 up to 360 (180: south)",
    )?;
    if let Some(al) = a.albedo {
        ranged("albedo", al, (0.0..=1.0).contains(&al), "must be in [0, 1]")?;
    }
    ranged(
        "temperature_coefficient_per_c",
        a.temperature_coefficient_per_c,
        (-0.02..=0.0).contains(&a.temperature_coefficient_per_c),
        "must be a relative change per °C from -0.02 to 0 (e.g. -0.0035 for -0.35 %/°C)",
    )?;
    ranged(
        "dc_losses",
        a.dc_losses,
        (0.0..1.0).contains(&a.dc_losses),
        "must be a share in [0, 1) (e.g. 0.1408 for PVWatts' 14.08%)",
    )?;
    Ok(())
}

/// `microgrid.<field>` must be finite and `ok`; else an error naming it, the value and `what`.
fn check(path: &Path, field: &str, v: f64, ok: bool, what: &str) -> Result<()> {
    if v.is_finite() && ok {
        Ok(())
    } else {
        Err(Error::invalid(path, format!("microgrid.{field}"), v, what))
    }
}

/// Checks a part's embodied carbon (`kg`: its field name and value, kgCO2e per unit of size) and
/// the lifetime it is amortised over, when given: the carbon from 0 to 100,000 kg per unit, the
/// lifetime from 0 (excluded) to 100 years.
fn check_embodied(
    path: &Path,
    part: &str,
    (field, kg): (&str, Option<f64>),
    lifetime_years: Option<f64>,
) -> Result<()> {
    if let Some(v) = kg {
        if !(v.is_finite() && (0.0..=1e5).contains(&v)) {
            return Err(Error::invalid(
                path,
                format!("microgrid.{part}.{field}"),
                v,
                "must be a number of kgCO2e from 0 to 100,000",
            ));
        }
    }
    if let Some(v) = lifetime_years {
        if !(v.is_finite() && v > 0.0 && v <= 100.0) {
            return Err(Error::invalid(
                path,
                format!("microgrid.{part}.lifetime_years"),
                v,
                "must be a number of years above 0 (at most 100)",
            ));
        }
    }
    Ok(())
}
