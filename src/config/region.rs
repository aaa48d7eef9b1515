//! The region file formats: `regions/<id>.yaml` (grid carbon intensity, PUE, water, electricity price,
//! each with its source), the hourly series it may point at (`regions/hourly/*.csv`), and
//! `regions/embodied.yaml` (manufacturing carbon per device and the lifetime it is amortised over).
//!
//! Input: a regions folder and region ids. Output: each [`Region`] read and range-checked, with its
//! hourly series checked for contiguous hours, and the [`Embodied`] factor of a device. A file absent
//! from the folder is taken from the copy built into the binary when there is one
//! ([`super::data::locate`]). Turning energy
//! into carbon, cost and water is `accounting/`'s job; this module holds only the data and its checks.

use super::data::{locate, Origin};
use crate::catalog::Sourced;
use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A source reference attached to hourly series.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesRef {
    pub file: PathBuf,
    pub source: String,
    #[serde(default)]
    pub year: Option<u32>,
    #[serde(default)]
    pub licence: Option<String>,
}

/// A region file as written (`regions/<id>.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionFile {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub location: String,
    #[serde(default)]
    pub grid_zone: Option<String>,
    pub carbon_intensity_g_per_kwh: Sourced,
    pub pue: Sourced,
    #[serde(default)]
    pub wue_l_per_kwh: Option<Sourced>,
    #[serde(default)]
    pub grid_water_intensity_l_per_kwh: Option<Sourced>,
    #[serde(default)]
    pub electricity_price_usd_per_kwh: Option<Sourced>,
    #[serde(default)]
    pub hourly_carbon: Option<SeriesRef>,
    #[serde(default)]
    pub hourly_price: Option<SeriesRef>,
}

/// An hourly series: one value per hour from `start` (UTC, on the hour), contiguous.
#[derive(Debug, Clone)]
pub struct HourlySeries {
    pub path: PathBuf,
    pub start: DateTime<Utc>,
    pub values: Vec<f64>,
}

impl HourlySeries {
    /// Reads a two-column CSV (`hour_utc`, `column`), checking that hours are contiguous.
    pub fn read(path: &Path, column: &str) -> Result<Self> {
        Self::of_table(crate::csvio::CsvTable::read(path)?, column)
    }

    /// [`HourlySeries::read`] from a file or the built-in copy.
    pub fn load(origin: &Origin, column: &str) -> Result<Self> {
        match origin {
            Origin::File(p) => Self::read(p, column),
            Origin::BuiltIn(f) => Self::of_table(
                crate::csvio::CsvTable::parse(&origin.name(), f.text)?,
                column,
            ),
        }
    }

    fn of_table(t: crate::csvio::CsvTable, column: &str) -> Result<Self> {
        let path = t.path.clone();
        let path = path.as_path();
        let hours = t.text_values("hour_utc")?;
        let values = t.f64_column(column)?;
        let mut start = None;
        for (i, h) in hours.iter().enumerate() {
            let at = DateTime::parse_from_rfc3339(h)
                .map_err(|_| Error::Column {
                    path: path.to_path_buf(),
                    column: "hour_utc".into(),
                    row: Some(i + 1),
                    message: format!("`{h}` is not an ISO 8601 time"),
                })?
                .with_timezone(&Utc);
            let s = *start.get_or_insert(at);
            if at != s + Duration::hours(i as i64) {
                return Err(Error::Column {
                    path: path.to_path_buf(),
                    column: "hour_utc".into(),
                    row: Some(i + 1),
                    message: format!(
                        "`{h}` breaks the hourly sequence (expected one row per hour)"
                    ),
                });
            }
            // Wholesale electricity prices can be negative; carbon intensity cannot.
            if values[i] < 0.0 && column == "carbon_g_per_kwh" {
                return Err(Error::Column {
                    path: path.to_path_buf(),
                    column: column.into(),
                    row: Some(i + 1),
                    message: format!("{} is negative", values[i]),
                });
            }
        }
        Ok(HourlySeries {
            path: path.to_path_buf(),
            start: start.ok_or_else(|| Error::Csv {
                path: path.to_path_buf(),
                message: "no rows".into(),
            })?,
            values,
        })
    }

    /// Values from the hour containing `from` to the end of the series.
    pub fn rest_from(&self, from: DateTime<Utc>) -> Result<&[f64]> {
        self.window(from, 1)?;
        let first = from
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(from);
        let offset = (first - self.start).num_hours().max(0) as usize;
        Ok(&self.values[offset..])
    }

    /// Values for `n` consecutive hours starting at the hour containing `from`.
    pub fn window(&self, from: DateTime<Utc>, n: usize) -> Result<&[f64]> {
        let first = from
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(from);
        let offset = (first - self.start).num_hours();
        if offset < 0 || offset as usize + n > self.values.len() {
            return Err(Error::Csv {
                path: self.path.clone(),
                message: format!(
                    "the run ({n} hour(s) from {first}) is outside the series, which covers {} hours from {}; \
                     set energy.start_time inside it",
                    self.values.len(),
                    self.start
                ),
            });
        }
        Ok(&self.values[offset as usize..offset as usize + n])
    }
}

/// A loaded region.
#[derive(Debug, Clone)]
pub struct Region {
    pub file: RegionFile,
    pub path: PathBuf,
    pub hourly_carbon: Option<HourlySeries>,
    pub hourly_price: Option<HourlySeries>,
}

/// Where the file of region `id` is: `dir/<id>.yaml`, else the built-in copy of the shipped region.
pub fn region_origin(dir: &Path, id: &str) -> Option<Origin> {
    locate(dir, Path::new(&format!("{id}.yaml")), "regions")
}

/// Where an hourly series a region in `dir` names is: beside it, else the built-in copy.
fn series_origin(dir: &Path, file: &Path) -> Origin {
    locate(dir, file, "regions").unwrap_or_else(|| Origin::File(dir.join(file)))
}

/// The files region `id` reads: its region file and the hourly series it names (an unreadable or
/// malformed file yields just itself, and an absent one nothing: [`load_region`] reports the error).
pub fn region_input_files(dir: &Path, id: &str) -> Vec<Origin> {
    let Some(origin) = region_origin(dir, id) else {
        return vec![];
    };
    let mut v = vec![origin.clone()];
    if let Some(file) = origin
        .text()
        .ok()
        .filter(|t| crate::input::yaml_too_deep(t).is_none())
        .and_then(|t| serde_yaml::from_str::<RegionFile>(&t).ok())
    {
        for r in [file.hourly_carbon, file.hourly_price]
            .into_iter()
            .flatten()
        {
            v.push(series_origin(dir, &r.file));
        }
    }
    v
}

/// Loads region `id` (`dir/<id>.yaml`, else the built-in copy) and its hourly series.
pub fn load_region(dir: &Path, id: &str) -> Result<Region> {
    let Some(origin) = region_origin(dir, id) else {
        let path = dir.join(format!("{id}.yaml"));
        let mut known: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str().map(|s| s.to_string()))
                    .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        known.extend(
            super::builtin::stems("regions", ".yaml")
                .into_iter()
                .map(String::from),
        );
        known.retain(|n| n != "embodied");
        known.sort();
        known.dedup();
        return Err(Error::invalid(
            &path,
            "region",
            id,
            format!("no such region file; known regions: {}", known.join(", ")),
        ));
    };
    let path = origin.name();
    let text = origin.text()?;
    crate::input::check_yaml_depth(&path, &text)?;
    let de = serde_yaml::Deserializer::from_str(&text);
    let file: RegionFile = serde_path_to_error::deserialize(de).map_err(|e| Error::Field {
        path: path.clone(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    if file.id != id {
        return Err(Error::invalid(
            &path,
            "id",
            &file.id,
            format!("does not match the file's name ({id}.yaml); a region is known by its file name, so its id must be `{id}`"),
        ));
    }
    // Plausible ranges, wide enough for every grid and site on record: a value outside one is a typo
    // or a unit slip (g/kWh written as g/Wh), and would otherwise give absurd or null results.
    for (field, v, lo, hi, why) in [
        (
            "carbon_intensity_g_per_kwh",
            Some(&file.carbon_intensity_g_per_kwh),
            0.0,
            2000.0,
            "the most carbon-intensive grids are near 1,100 g/kWh",
        ),
        (
            "pue",
            Some(&file.pue),
            1.0,
            5.0,
            "a PUE is at least 1; data centres report 1.05 to 2.5",
        ),
        (
            "wue_l_per_kwh",
            file.wue_l_per_kwh.as_ref(),
            0.0,
            20.0,
            "reported WUEs are below 3 L/kWh",
        ),
        (
            "grid_water_intensity_l_per_kwh",
            file.grid_water_intensity_l_per_kwh.as_ref(),
            0.0,
            1000.0,
            "grid water intensities are tens of L/kWh at most",
        ),
        (
            "electricity_price_usd_per_kwh",
            file.electricity_price_usd_per_kwh.as_ref(),
            0.0,
            10.0,
            "prices are below 1 USD/kWh outside brief spikes",
        ),
    ] {
        if let Some(s) = v {
            if !(s.value.is_finite() && (lo..=hi).contains(&s.value)) {
                return Err(Error::invalid(
                    &path,
                    format!("{field}.value"),
                    s.value,
                    format!("must be between {lo} and {hi} ({why})"),
                ));
            }
        }
    }
    let hourly_carbon = match &file.hourly_carbon {
        Some(r) => Some(HourlySeries::load(
            &series_origin(dir, &r.file),
            "carbon_g_per_kwh",
        )?),
        None => None,
    };
    let hourly_price = match &file.hourly_price {
        Some(r) => Some(HourlySeries::load(
            &series_origin(dir, &r.file),
            "price_usd_per_kwh",
        )?),
        None => None,
    };
    Ok(Region {
        file,
        path,
        hourly_carbon,
        hourly_price,
    })
}

#[derive(Debug, Deserialize)]
struct EmbodiedDevice {
    kgco2e: f64,
}

#[derive(Debug, Deserialize)]
struct EmbodiedFile {
    default_lifetime_years: f64,
    devices: BTreeMap<String, EmbodiedDevice>,
}

/// Embodied carbon of one device and the lifetime it is amortised over.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Embodied {
    pub kgco2e_per_device: f64,
    pub lifetime_years: f64,
}

/// Where the embodied-carbon table is: `dir/embodied.yaml`, else the built-in copy.
pub fn embodied_origin(dir: &Path) -> Option<Origin> {
    locate(dir, Path::new("embodied.yaml"), "regions")
}

/// Reads the embodied-carbon table (`dir/embodied.yaml`, else the built-in copy) for `device` (None
/// when the table or the device is absent).
pub fn load_embodied(dir: &Path, device: &str, lifetime: Option<f64>) -> Result<Option<Embodied>> {
    let Some(origin) = embodied_origin(dir) else {
        return Ok(None);
    };
    let text = origin.text()?;
    crate::input::check_yaml_depth(&origin.name(), &text)?;
    let f: EmbodiedFile = serde_yaml::from_str(&text).map_err(|e| Error::Yaml {
        path: origin.name(),
        message: e.to_string(),
    })?;
    Ok(f.devices.get(device).map(|d| Embodied {
        kgco2e_per_device: d.kgco2e,
        lifetime_years: lifetime.unwrap_or(f.default_lifetime_years),
    }))
}
