//! The `edge` section checked: an edge or desktop device's battery and thermal model.
//!
//! Input: the raw section. Output: the same section, every number checked. The thermal model itself
//! lives in [`crate::power::Thermal`], the battery figures in the simulate driver's summary. It may not
//! read files or run anything.

use super::raw::EdgeConfig;
use crate::error::{Error, Result};
use std::path::Path;

/// Checks every number of the `edge` section (`None`: none).
pub fn resolve(path: &Path, e: Option<&EdgeConfig>) -> Result<Option<EdgeConfig>> {
    let Some(e) = e else {
        return Ok(None);
    };
    let check = |field: &str, v: f64, ok: bool, what: &str| {
        if v.is_finite() && ok {
            Ok(())
        } else {
            Err(Error::invalid(path, format!("edge.{field}"), v, what))
        }
    };
    if let Some(b) = &e.battery {
        check(
            "battery.capacity_wh",
            b.capacity_wh,
            b.capacity_wh > 0.0 && b.capacity_wh <= 1e9,
            "must be a number of watt-hours above 0",
        )?;
        check(
            "battery.usable_fraction",
            b.usable_fraction,
            b.usable_fraction > 0.0 && b.usable_fraction <= 1.0,
            "must be a share of the capacity above 0 and at most 1",
        )?;
        check(
            "battery.converter_efficiency",
            b.converter_efficiency,
            b.converter_efficiency > 0.0 && b.converter_efficiency <= 1.0,
            "must be a share above 0 and at most 1",
        )?;
    }
    if let Some(t) = &e.thermal {
        check(
            "thermal.ambient_c",
            t.ambient_c,
            (-60.0..=80.0).contains(&t.ambient_c),
            "must be a temperature from -60 to 80 degrees C",
        )?;
        check(
            "thermal.r_th_c_per_w",
            t.r_th_c_per_w,
            t.r_th_c_per_w > 0.0 && t.r_th_c_per_w <= 1e3,
            "must be a thermal resistance above 0 degrees C per watt (and at most 1000)",
        )?;
        check(
            "thermal.tau_s",
            t.tau_s,
            t.tau_s > 0.0 && t.tau_s <= 1e6,
            "must be a time constant above 0 seconds (and at most 1e6)",
        )?;
        check(
            "thermal.throttle_c",
            t.throttle_c,
            t.throttle_c > t.ambient_c && t.throttle_c <= 200.0,
            &format!(
                "must be above thermal.ambient_c ({}) and at most 200 degrees C",
                t.ambient_c
            ),
        )?;
        check(
            "thermal.throttle_clock",
            t.throttle_clock,
            t.throttle_clock > 0.0 && t.throttle_clock <= 1.0,
            "must be a clock fraction above 0 and at most 1",
        )?;
        check(
            "thermal.hysteresis_c",
            t.hysteresis_c,
            t.hysteresis_c >= 0.0 && t.hysteresis_c < t.throttle_c - t.ambient_c,
            "must be a number of degrees from 0 to below throttle_c - ambient_c",
        )?;
        if let Some(i) = t.initial_c {
            check(
                "thermal.initial_c",
                i,
                (-60.0..=200.0).contains(&i),
                "must be a temperature from -60 to 200 degrees C",
            )?;
        }
    }
    Ok(Some(*e))
}
