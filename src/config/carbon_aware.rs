//! The `carbon_aware` section checked: how deferrable requests are held for better hours.
//!
//! Input: the raw config (its `carbon_aware` section, and the `workload.deferrable`, `microgrid` and
//! region settings it depends on). Output: the checked section. The hold itself is planned by
//! [`crate::workload::hold`] from the hourly signal the driver reads. It may not read files or run
//! anything.

use super::raw::{CarbonAwareConfig, HoldSignal, RawConfig};
use crate::error::{Error, Result};
use std::path::Path;

/// Checks the `carbon_aware` section (`None`: no holding): a release rate above 0, a margin shorter
/// than the deadline, deferrable requests to hold, and the source its signal needs.
pub fn resolve(path: &Path, raw: &RawConfig) -> Result<Option<CarbonAwareConfig>> {
    let Some(c) = raw.carbon_aware else {
        return Ok(None);
    };
    if !(c.max_release_rate.is_finite() && c.max_release_rate > 0.0 && c.max_release_rate <= 1e9) {
        return Err(Error::invalid(
            path,
            "carbon_aware.max_release_rate",
            c.max_release_rate,
            "must be a number of requests per second above 0 (and at most 1e9)",
        ));
    }
    let Some(d) = raw.workload.deferrable else {
        return Err(Error::invalid(
            path,
            "carbon_aware",
            "set",
            "holds deferrable requests, and the workload has none: add workload.deferrable {fraction, deadline_s}",
        ));
    };
    if !(c.margin_s.is_finite() && c.margin_s >= 0.0 && c.margin_s < d.deadline_s) {
        return Err(Error::invalid(
            path,
            "carbon_aware.margin_s",
            c.margin_s,
            format!(
                "must be a number of seconds from 0 to below workload.deferrable.deadline_s ({})",
                d.deadline_s
            ),
        ));
    }
    let has_region = raw.region.is_some() || !raw.regions.is_empty();
    match c.signal {
        HoldSignal::Solar if raw.microgrid.is_none() => Err(Error::invalid(
            path,
            "carbon_aware.signal",
            "solar",
            "ranks hours by the microgrid's solar output, and the config has no `microgrid` section",
        )),
        HoldSignal::GridCarbon | HoldSignal::Price if !has_region => Err(Error::invalid(
            path,
            "carbon_aware.signal",
            match c.signal {
                HoldSignal::Price => "price",
                _ => "grid_carbon",
            },
            "ranks hours by the region's hourly series, and the config names no `region`",
        )),
        _ => Ok(Some(c)),
    }
}
