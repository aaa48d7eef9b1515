//! A solar array's output from weather: irradiance and temperature of a typical meteorological year
//! through a PVWatts-style array model, hour by hour.
//!
//! Input: an NREL TMY3 file's text ([`Weather::parse_tmy3`]: the site's metadata line, then 8,760
//! hourly rows of global horizontal, direct normal and diffuse horizontal irradiance, dry-bulb
//! temperature, wind speed and albedo, each hour ending at its local-standard-time stamp) and an
//! [`Array`] (tilt, azimuth, albedo, power temperature coefficient, DC losses, mounting, sky model,
//! angle-of-incidence loss). Output: per UTC hour of a run, the sun's position and the array's DC
//! output after its losses as a fraction of its peak (STC) power ([`HourOutput::fraction`]), which
//! [`crate::microgrid`] scales by the peak and the inverter's efficiency. It may not read files,
//! read a config or run a simulation.
//!
//! The chain, for the hour starting at UTC `t` (each step as pvlib implements it):
//! 1. weather: the typical year's row for the same month, day and hour in the site's local standard
//!    time (29 February replays 28 February; the year wraps round);
//! 2. the sun's apparent position at `t + 30 min` (NREL's SPA through the `solar-positioning`
//!    crate; refraction for 1013.25 hPa and 12 °C, pvlib's defaults);
//! 3. plane-of-array irradiance: beam `DNI cos(AOI)` (not below 0), sky diffuse (isotropic, or Hay
//!    and Davies 1980 with Spencer's extraterrestrial irradiance), ground-reflected
//!    `GHI albedo (1 - cos tilt) / 2`;
//! 4. effective irradiance: the beam times the glass cover's incidence-angle modifier (De Soto et
//!    al. 2006, `n = 1.526, K = 4 /m, L = 2 mm`, as PVWatts) plus the diffuse;
//! 5. cell temperature: Sandia's model (King et al. 2004) on the plane-of-array irradiance, air
//!    temperature and wind speed;
//! 6. DC output: `E_eff / 1000 (1 + gamma (T_cell - 25)) (1 - dc_losses)` of the peak (PVWatts).

use crate::config::raw::{ArrayConfig, MountingConfig};
use crate::csvio::CsvTable;
use crate::error::{Error, Result};
use chrono::{Datelike, Timelike};
use std::path::{Path, PathBuf};

/// The error for a weather file's albedo that is missing or outside [0, 1] (`row`: 1-based hour).
pub fn bad_albedo(path: &Path, row: Option<usize>, value: Option<f64>) -> Error {
    Error::Column {
        path: path.to_path_buf(),
        column: "Alb (unitless)".into(),
        row,
        message: format!(
            "{} where an albedo from 0 to 1 is needed; set microgrid.solar.array.albedo to use \
             one of your own",
            value.map_or("missing".to_string(), |a| a.to_string())
        ),
    }
}

/// Whether `a` can be a ground albedo: from 0 to 1.
fn valid_albedo(a: f64) -> bool {
    (0.0..=1.0).contains(&a)
}

/// The site of a weather file.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The station's name as the file gives it.
    pub name: String,
    /// Local standard time minus UTC, hours.
    pub utc_offset_h: f64,
    /// Degrees, north positive.
    pub latitude: f64,
    /// Degrees, east positive.
    pub longitude: f64,
    /// Metres above sea level.
    pub elevation_m: f64,
}

/// One hour of weather.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeatherHour {
    /// Global horizontal irradiance, W/m^2 (the hour's mean).
    pub ghi: f64,
    /// Direct normal irradiance, W/m^2.
    pub dni: f64,
    /// Diffuse horizontal irradiance, W/m^2.
    pub dhi: f64,
    /// Dry-bulb air temperature, °C.
    pub temp_air_c: f64,
    /// Wind speed, m/s.
    pub wind_m_s: f64,
    /// Ground albedo as the file gives it (checked where it is used).
    pub albedo: Option<f64>,
}

/// A typical meteorological year: 8,760 hours, hour `h` covering `[h, h + 1)` local standard time
/// from 1 January 00:00 of a 365-day year.
#[derive(Debug, Clone, PartialEq)]
pub struct Weather {
    pub path: PathBuf,
    pub site: Site,
    pub hours: Vec<WeatherHour>,
}

/// Hours in a typical (365-day) year.
pub const TYPICAL_YEAR_HOURS: usize = 8760;

/// Days before each month of a 365-day year.
const DAYS_BEFORE_MONTH: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
const DAYS_IN_MONTH: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

impl Weather {
    /// Parses an NREL TMY3 CSV (Wilcox and Marion 2008): a first line `USAF,"name",state,TZ,
    /// latitude,longitude,elevation`, a header line, then the 8,760 hours in order, each dated
    /// `MM/DD/YYYY` and stamped `HH:MM` at its end (01:00 to 24:00). Reads the columns
    /// `GHI (W/m^2)`, `DNI (W/m^2)`, `DHI (W/m^2)`, `Dry-bulb (C)`, `Wspd (m/s)` and, when present,
    /// `Alb (unitless)`. `path` names the file in errors.
    pub fn parse_tmy3(path: &Path, text: &str) -> Result<Self> {
        let text = text.trim_start_matches('\u{feff}');
        let (meta, rest) = text.split_once('\n').ok_or_else(|| Error::Csv {
            path: path.to_path_buf(),
            message: "not a TMY3 file: a site line, a header line and 8,760 hourly rows are needed"
                .into(),
        })?;
        let site = parse_site(path, meta.trim_end_matches('\r'))?;
        let table = CsvTable::parse(path, rest)?;
        if table.rows() != TYPICAL_YEAR_HOURS {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: format!(
                    "{} hourly rows; a TMY3 file has 8,760 (one 365-day year)",
                    table.rows()
                ),
            });
        }
        let dates = table.text_values("Date (MM/DD/YYYY)")?;
        let times = table.text_values("Time (HH:MM)")?;
        for (i, (date, time)) in dates.iter().zip(&times).enumerate() {
            let day = i / 24;
            let month = DAYS_BEFORE_MONTH
                .iter()
                .rposition(|&d| d as usize <= day)
                .unwrap_or(0);
            let dom = day - DAYS_BEFORE_MONTH[month] as usize + 1;
            let want_date = format!("{:02}/{:02}/", month + 1, dom);
            let want_time = format!("{:02}:00", i % 24 + 1);
            let (column, got, want) = if !date.starts_with(&want_date) {
                ("Date (MM/DD/YYYY)", date, format!("{want_date}YYYY"))
            } else if time != &want_time {
                ("Time (HH:MM)", time, want_time)
            } else {
                continue;
            };
            return Err(Error::Column {
                path: path.to_path_buf(),
                column: column.into(),
                row: Some(i + 1),
                message: format!(
                    "`{got}` where {want} was expected: a TMY3 file holds the 8,760 hours of a \
                     365-day year in order, each stamped at its end (01:00 to 24:00)"
                ),
            });
        }
        let ranged = |name: &str, lo: f64, hi: f64| -> Result<Vec<f64>> {
            let v = table.f64_column(name)?;
            if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !(lo..=hi).contains(*x)) {
                return Err(Error::Column {
                    path: path.to_path_buf(),
                    column: name.into(),
                    row: Some(i + 1),
                    message: format!("{x} is outside {lo} to {hi}"),
                });
            }
            Ok(v)
        };
        let ghi = ranged("GHI (W/m^2)", 0.0, 1500.0)?;
        let dni = ranged("DNI (W/m^2)", 0.0, 1500.0)?;
        let dhi = ranged("DHI (W/m^2)", 0.0, 1500.0)?;
        let temp = ranged("Dry-bulb (C)", -90.0, 60.0)?;
        let wind = ranged("Wspd (m/s)", 0.0, 100.0)?;
        let albedo = if table.has_column("Alb (unitless)") {
            table
                .f64_column("Alb (unitless)")?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None; TYPICAL_YEAR_HOURS]
        };
        let hours = (0..TYPICAL_YEAR_HOURS)
            .map(|i| WeatherHour {
                ghi: ghi[i],
                dni: dni[i],
                dhi: dhi[i],
                temp_air_c: temp[i],
                wind_m_s: wind[i],
                albedo: albedo[i],
            })
            .collect();
        Ok(Weather {
            path: path.to_path_buf(),
            site,
            hours,
        })
    }

    /// Checks every hour's albedo (for an array that takes the file's), so that a bad value fails
    /// before a run rather than at the hour that reads it.
    pub fn check_albedo(&self) -> Result<()> {
        match self
            .hours
            .iter()
            .position(|h| !h.albedo.is_some_and(valid_albedo))
        {
            Some(i) => Err(bad_albedo(&self.path, Some(i + 1), self.hours[i].albedo)),
            None => Ok(()),
        }
    }

    /// The typical year's hour (index into [`Weather::hours`]) that replays the hour starting at UTC
    /// `t`: the same month, day and hour of day in the site's local standard time.
    pub fn hour_index(&self, t: chrono::DateTime<chrono::Utc>) -> usize {
        let offset = chrono::Duration::seconds((self.site.utc_offset_h * 3600.0).round() as i64);
        let local = t.naive_utc() + offset;
        let month = local.month0() as usize;
        let day = local.day().min(DAYS_IN_MONTH[month]);
        (DAYS_BEFORE_MONTH[month] + day - 1) as usize * 24 + local.hour() as usize
    }
}

/// The TMY3 site line: `USAF,"name",state,TZ,latitude,longitude,elevation`.
fn parse_site(path: &Path, line: &str) -> Result<Site> {
    let bad = |message: String| Error::Csv {
        path: path.to_path_buf(),
        message: format!(
            "line 1 (the TMY3 site line `USAF,\"name\",state,TZ,lat,lon,elev`): {message}"
        ),
    };
    // The name is quoted and may hold commas.
    let (name, tail) = match (line.find('"'), line.rfind('"')) {
        (Some(a), Some(b)) if b > a => (line[a + 1..b].to_string(), &line[b + 1..]),
        _ => return Err(bad(format!("`{line}` has no quoted station name"))),
    };
    let fields: Vec<&str> = tail.split(',').map(str::trim).collect();
    // tail: ",state,TZ,lat,lon,elev"
    if fields.len() != 6 {
        return Err(bad(format!(
            "`{line}` has {} fields after the name; state, TZ, latitude, longitude and elevation \
             are needed",
            fields.len().saturating_sub(1)
        )));
    }
    let num = |i: usize, what: &str, lo: f64, hi: f64| -> Result<f64> {
        let raw = fields[i];
        match raw.parse::<f64>() {
            Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
            _ => Err(bad(format!(
                "{what} `{raw}` is not a number from {lo} to {hi}"
            ))),
        }
    };
    Ok(Site {
        name,
        utc_offset_h: num(2, "the time zone (hours from UTC)", -12.0, 14.0)?,
        latitude: num(3, "the latitude", -90.0, 90.0)?,
        longitude: num(4, "the longitude", -180.0, 180.0)?,
        elevation_m: num(5, "the elevation (m)", -500.0, 9000.0)?,
    })
}

/// How the sky's diffuse irradiance reaches a tilted plane: isotropic, `DHI (1 + cos tilt) / 2`, or
/// Hay and Davies (1980), a circumsolar share `DNI / DNI_extra` following the beam. The config's own
/// enum, so that the array is built from it without a mapping.
pub use crate::config::raw::SkyModelConfig as SkyModel;

/// The loss of beam light reflected off the module's cover at oblique incidence: physical (Fresnel
/// reflection and absorption in glass, De Soto et al. 2006, as PVWatts) or none.
pub use crate::config::raw::IncidenceLossConfig as IncidenceLoss;

/// Sandia's module temperature model: `T_module = E exp(a + b WS) + T_air`,
/// `T_cell = T_module + E / 1000 deltaT` (King, Boyson and Kratochvil 2004, table 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SapmTemperature {
    pub a: f64,
    pub b: f64,
    pub delta_t: f64,
}

impl SapmTemperature {
    /// The coefficients of a mounting (King et al. 2004, table 1, as pvlib tabulates them).
    pub fn of(mounting: MountingConfig) -> SapmTemperature {
        let (a, b, delta_t) = match mounting {
            MountingConfig::OpenRackGlassGlass => (-3.47, -0.0594, 3.0),
            MountingConfig::CloseMountGlassGlass => (-2.98, -0.0471, 1.0),
            MountingConfig::OpenRackGlassPolymer => (-3.56, -0.075, 3.0),
            MountingConfig::InsulatedBackGlassPolymer => (-2.81, -0.0455, 0.0),
        };
        SapmTemperature { a, b, delta_t }
    }

    /// Cell temperature, °C, at plane-of-array irradiance `poa` (W/m^2).
    pub fn cell_c(&self, poa: f64, temp_air_c: f64, wind_m_s: f64) -> f64 {
        poa * (self.a + self.b * wind_m_s).exp() + temp_air_c + poa / 1000.0 * self.delta_t
    }
}

/// A fixed array.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Array {
    /// Degrees from horizontal (0 flat, 90 vertical).
    pub tilt_deg: f64,
    /// Degrees clockwise from north that the array faces (180: south).
    pub azimuth_deg: f64,
    /// Ground albedo; `None`: the weather file's, hour by hour.
    pub albedo: Option<f64>,
    /// Relative change of DC power per °C of cell temperature above 25 °C (negative).
    pub gamma_per_c: f64,
    /// Share of DC output lost to soiling, shading, mismatch, wiring, ageing and the rest.
    pub dc_losses: f64,
    pub temperature: SapmTemperature,
    pub sky: SkyModel,
    pub incidence: IncidenceLoss,
}

/// One hour of the array's output and the figures behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourOutput {
    /// Apparent solar zenith and azimuth at mid-hour, degrees.
    pub zenith_deg: f64,
    pub azimuth_deg: f64,
    /// Angle of incidence on the array, degrees.
    pub aoi_deg: f64,
    /// Plane-of-array beam, sky-diffuse and ground-reflected irradiance, W/m^2.
    pub poa_direct: f64,
    pub poa_sky: f64,
    pub poa_ground: f64,
    /// Irradiance that reaches the cells, W/m^2.
    pub effective: f64,
    pub cell_temp_c: f64,
    /// DC output after the DC losses, as a fraction of the peak (STC) power.
    pub fraction: f64,
}

/// Spencer's (1971) extraterrestrial normal irradiance on day of year `doy`, W/m^2 (solar constant
/// 1366.1 W/m^2, as pvlib's default).
pub fn extraterrestrial_w_m2(doy: u32) -> f64 {
    let b = 2.0 * std::f64::consts::PI * (doy as f64 - 1.0) / 365.0;
    1366.1
        * (1.00011
            + 0.034221 * b.cos()
            + 0.00128 * b.sin()
            + 0.000719 * (2.0 * b).cos()
            + 0.000077 * (2.0 * b).sin())
}

/// The physical (Fresnel and absorption) incidence-angle modifier of an uncoated glass cover of
/// refractive index `n`, extinction `k` (1/m) and thickness `l` (m) at incidence `aoi_deg`
/// (De Soto, Klein and Beckman 2006): the mean of the s- and p-polarised transmittances relative to
/// normal incidence; 0 at or beyond 90°.
pub fn physical_iam(aoi_deg: f64, n: f64, k: f64, l: f64) -> f64 {
    if aoi_deg >= 90.0 {
        return 0.0;
    }
    let cos1 = aoi_deg.to_radians().cos();
    let sin1 = (1.0 - cos1 * cos1).sqrt();
    let sin2 = sin1 / n;
    let cos2 = (1.0 - sin2 * sin2).sqrt();
    let rho_s = ((cos1 - n * cos2) / (cos1 + n * cos2)).powi(2);
    let rho_p = ((cos2 - n * cos1) / (cos2 + n * cos1)).powi(2);
    let rho_0 = ((1.0 - n) / (1.0 + n)).powi(2);
    let absorbed = (-k * l / cos2).exp();
    let tau = ((1.0 - rho_s) + (1.0 - rho_p)) / 2.0 * absorbed;
    let tau_0 = (1.0 - rho_0) * (-k * l).exp();
    tau / tau_0
}

impl Array {
    /// The array a config's `microgrid.solar.array` describes.
    pub fn from_config(a: &ArrayConfig) -> Array {
        Array {
            tilt_deg: a.tilt_deg,
            azimuth_deg: a.azimuth_deg,
            albedo: a.albedo,
            gamma_per_c: a.temperature_coefficient_per_c,
            dc_losses: a.dc_losses,
            temperature: SapmTemperature::of(a.mounting),
            sky: a.sky_model,
            incidence: a.incidence_loss,
        }
    }

    /// The array's output over `n` whole UTC hours from `first_hour` (which must start on the hour)
    /// under `weather`.
    pub fn hours(
        &self,
        weather: &Weather,
        first_hour: chrono::DateTime<chrono::Utc>,
        n: usize,
    ) -> Result<Vec<HourOutput>> {
        let spa = solar_positioning::SolarPositions::new();
        let location = solar_positioning::Location {
            latitude: weather.site.latitude,
            longitude: weather.site.longitude,
        };
        let refraction = solar_positioning::RefractionCorrection::new(1013.25, 12.0)
            .map_err(|e| Error::Internal(format!("refraction: {e}")))?;
        (0..n)
            .map(|h| {
                let start = first_hour + chrono::Duration::hours(h as i64);
                let mid = start + chrono::Duration::minutes(30);
                let sun_err = |e: solar_positioning::Error| {
                    Error::invalid(
                        &weather.path,
                        "site",
                        format!("{}, {}", weather.site.latitude, weather.site.longitude),
                        format!("the sun's position at {mid} cannot be computed: {e}"),
                    )
                };
                let delta_t =
                    solar_positioning::delta_t::estimate_from_date(mid.year(), mid.month())
                        .map_err(sun_err)?;
                let jd = solar_positioning::time::JulianDate::from_utc(
                    mid.year(),
                    mid.month(),
                    mid.day(),
                    mid.hour(),
                    mid.minute(),
                    0.0,
                    delta_t,
                )
                .map_err(sun_err)?;
                let sun = spa
                    .at_from_julian(jd, location, weather.site.elevation_m, Some(refraction))
                    .map_err(sun_err)?;
                let w = weather.hours[weather.hour_index(start)];
                self.hour(
                    &w,
                    sun.zenith_angle(),
                    sun.azimuth(),
                    mid.ordinal(),
                    &weather.path,
                )
            })
            .collect()
    }

    /// The array's output in one hour of weather `w`, the sun at apparent zenith `zenith_deg` and
    /// azimuth `azimuth_deg`, on day of year `doy`; `path` names the weather file in errors.
    pub fn hour(
        &self,
        w: &WeatherHour,
        zenith_deg: f64,
        azimuth_deg: f64,
        doy: u32,
        path: &Path,
    ) -> Result<HourOutput> {
        let (tilt, zen) = (self.tilt_deg.to_radians(), zenith_deg.to_radians());
        let cos_aoi = (tilt.cos() * zen.cos()
            + tilt.sin() * zen.sin() * (azimuth_deg - self.azimuth_deg).to_radians().cos())
        .clamp(-1.0, 1.0);
        let aoi_deg = cos_aoi.acos().to_degrees();
        let poa_direct = (w.dni * cos_aoi).max(0.0);
        let poa_sky = match self.sky {
            SkyModel::Isotropic => w.dhi * (1.0 + tilt.cos()) / 2.0,
            SkyModel::HayDavies => {
                let rb = cos_aoi.max(0.0) / zen.cos().max(0.01745);
                let ai = w.dni / extraterrestrial_w_m2(doy);
                (w.dhi * (1.0 - ai) * (1.0 + tilt.cos()) / 2.0).max(0.0)
                    + (w.dhi * ai * rb).max(0.0)
            }
        };
        let albedo = match (self.albedo, w.albedo) {
            (Some(a), _) => a,
            (None, Some(a)) if valid_albedo(a) => a,
            (None, a) => return Err(bad_albedo(path, None, a)),
        };
        let poa_ground = w.ghi * albedo * (1.0 - tilt.cos()) / 2.0;
        let iam = match self.incidence {
            IncidenceLoss::Physical => physical_iam(aoi_deg, 1.526, 4.0, 0.002),
            IncidenceLoss::None => 1.0,
        };
        let effective = poa_direct * iam + poa_sky + poa_ground;
        let poa = poa_direct + poa_sky + poa_ground;
        let cell_temp_c = self.temperature.cell_c(poa, w.temp_air_c, w.wind_m_s);
        let fraction = (effective / 1000.0
            * (1.0 + self.gamma_per_c * (cell_temp_c - 25.0))
            * (1.0 - self.dc_losses))
            .max(0.0);
        Ok(HourOutput {
            zenith_deg,
            azimuth_deg,
            aoi_deg,
            poa_direct,
            poa_sky,
            poa_ground,
            effective,
            cell_temp_c,
            fraction,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(tilt: f64, sky: SkyModel) -> Array {
        Array {
            tilt_deg: tilt,
            azimuth_deg: 180.0,
            albedo: Some(0.2),
            gamma_per_c: -0.0035,
            dc_losses: 0.14,
            temperature: SapmTemperature::of(MountingConfig::OpenRackGlassPolymer),
            sky,
            incidence: IncidenceLoss::Physical,
        }
    }

    fn hour(ghi: f64, dni: f64, dhi: f64) -> WeatherHour {
        WeatherHour {
            ghi,
            dni,
            dhi,
            temp_air_c: 25.0,
            wind_m_s: 1.0,
            albedo: None,
        }
    }

    #[test]
    fn a_flat_array_sees_the_global_horizontal_irradiance() {
        // Flat: beam DNI cos(zenith) + all the sky + no ground, whichever sky model.
        let w = hour(700.0, 800.0, 100.0);
        for sky in [SkyModel::Isotropic, SkyModel::HayDavies] {
            let o = array(0.0, sky)
                .hour(&w, 40.0, 150.0, 172, Path::new("w"))
                .unwrap();
            assert!((o.aoi_deg - 40.0).abs() < 1e-9);
            assert!((o.poa_direct - 800.0 * 40f64.to_radians().cos()).abs() < 1e-9);
            assert!((o.poa_sky - 100.0).abs() < 1e-6, "{sky:?}: {}", o.poa_sky);
            assert_eq!(o.poa_ground, 0.0);
        }
    }

    #[test]
    fn a_panel_facing_the_sun_takes_the_whole_beam_and_no_incidence_loss() {
        let w = hour(0.0, 900.0, 0.0);
        let o = array(35.0, SkyModel::Isotropic)
            .hour(&w, 35.0, 180.0, 172, Path::new("w"))
            .unwrap();
        assert!(o.aoi_deg.abs() < 1e-6);
        assert!((o.poa_direct - 900.0).abs() < 1e-9);
        assert!((o.effective - 900.0).abs() < 1e-6);
    }

    #[test]
    fn the_physical_modifier_is_one_at_normal_incidence_and_falls_to_zero_at_grazing() {
        assert!((physical_iam(0.0, 1.526, 4.0, 0.002) - 1.0).abs() < 1e-12);
        let mut last = 1.0 + 1e-12;
        for a in [10.0, 30.0, 50.0, 60.0, 70.0, 80.0, 89.0] {
            let m = physical_iam(a, 1.526, 4.0, 0.002);
            assert!(m < last && m > 0.0, "{a}: {m}");
            last = m;
        }
        assert_eq!(physical_iam(90.0, 1.526, 4.0, 0.002), 0.0);
        assert_eq!(physical_iam(120.0, 1.526, 4.0, 0.002), 0.0);
    }

    #[test]
    fn hotter_cells_give_less_power_by_the_temperature_coefficient() {
        // At 1000 W/m^2 on the panel's normal, 25 °C air, no wind: the cells run hotter than 25 °C.
        let a = Array {
            dc_losses: 0.0,
            ..array(30.0, SkyModel::Isotropic)
        };
        let w = hour(0.0, 1000.0, 0.0);
        let o = a.hour(&w, 30.0, 180.0, 172, Path::new("w")).unwrap();
        let t = SapmTemperature::of(MountingConfig::OpenRackGlassPolymer);
        let want_t = 1000.0 * (t.a + t.b * 1.0).exp() + 25.0 + 3.0;
        assert!((o.cell_temp_c - want_t).abs() < 1e-9);
        assert!((o.fraction - (1.0 - 0.0035 * (want_t - 25.0))).abs() < 1e-9);
        assert!(o.fraction < 1.0);
    }

    #[test]
    fn spencer_extraterrestrial_irradiance_peaks_in_january() {
        let jan = extraterrestrial_w_m2(3);
        let jul = extraterrestrial_w_m2(185);
        assert!(jan > 1400.0 && jan < 1420.0, "{jan}");
        assert!(jul > 1310.0 && jul < 1330.0, "{jul}");
    }

    fn tmy3_text() -> String {
        let mut s = String::from("724839,\"SACRAMENTO, TEST\",CA,-8.0,38.700,-121.583,7\n");
        s.push_str("Date (MM/DD/YYYY),Time (HH:MM),GHI (W/m^2),DNI (W/m^2),DHI (W/m^2),Dry-bulb (C),Wspd (m/s),Alb (unitless)\n");
        for i in 0..TYPICAL_YEAR_HOURS {
            let day = i / 24;
            let month = DAYS_BEFORE_MONTH
                .iter()
                .rposition(|&d| d as usize <= day)
                .unwrap();
            let dom = day - DAYS_BEFORE_MONTH[month] as usize + 1;
            s.push_str(&format!(
                "{:02}/{:02}/1994,{:02}:00,{},{},{},10.0,2.0,0.2\n",
                month + 1,
                dom,
                i % 24 + 1,
                i % 24,
                0,
                i % 7
            ));
        }
        s
    }

    #[test]
    fn a_tmy3_file_is_read_and_its_hours_are_found_in_local_standard_time() {
        let w = Weather::parse_tmy3(Path::new("w.csv"), &tmy3_text()).unwrap();
        assert_eq!(w.site.name, "SACRAMENTO, TEST");
        assert_eq!(w.site.utc_offset_h, -8.0);
        assert_eq!(w.hours.len(), TYPICAL_YEAR_HOURS);
        assert_eq!(w.hours[5].ghi, 5.0);
        assert_eq!(w.hours[0].albedo, Some(0.2));
        let utc = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        // 2024-06-15 20:00 UTC is 12:00 PST: day 166 (0-based), hour 12.
        assert_eq!(w.hour_index(utc("2024-06-15T20:00:00Z")), 165 * 24 + 12);
        // 1 January 03:00 UTC is 31 December 19:00 PST of the year before: the typical year wraps.
        assert_eq!(w.hour_index(utc("2025-01-01T03:00:00Z")), 364 * 24 + 19);
        // 29 February replays 28 February; 1 March stays 1 March.
        assert_eq!(w.hour_index(utc("2024-02-29T20:00:00Z")), 58 * 24 + 12);
        assert_eq!(w.hour_index(utc("2024-03-01T20:00:00Z")), 59 * 24 + 12);
    }

    #[test]
    fn a_malformed_tmy3_file_is_an_error_naming_what_is_wrong() {
        let p = Path::new("w.csv");
        let text = tmy3_text();
        let e = Weather::parse_tmy3(p, &text.replace("\"SACRAMENTO, TEST\"", "SACRAMENTO"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("quoted station name"), "{e}");
        let e = Weather::parse_tmy3(p, &text.replacen(",-8.0,", ",-80,", 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("time zone") && e.contains("-80"), "{e}");
        let e = Weather::parse_tmy3(p, &text.replacen("01/01/1994,03:00", "01/01/1994,04:00", 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Time (HH:MM)") && e.contains("row 3"), "{e}");
        let e = Weather::parse_tmy3(p, &text.replacen(",10.0,2.0,", ",10.0,-2.0,", 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Wspd (m/s)") && e.contains("row 1"), "{e}");
        let short: String = text.lines().take(100).map(|l| format!("{l}\n")).collect();
        let e = Weather::parse_tmy3(p, &short).unwrap_err().to_string();
        assert!(e.contains("98 hourly rows"), "{e}");
        let e = Weather::parse_tmy3(p, &text.replace("DNI (W/m^2)", "Beam"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("DNI (W/m^2)") && e.contains("missing"), "{e}");
        // An albedo out of range is reported where it is used, and a configured one overrides it.
        let w = Weather::parse_tmy3(p, &text.replacen(",2.0,0.2\n", ",2.0,-9900\n", 1)).unwrap();
        let a = Array {
            albedo: None,
            ..array(20.0, SkyModel::Isotropic)
        };
        let e = a
            .hour(&w.hours[0], 30.0, 180.0, 1, p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Alb (unitless)") && e.contains("-9900") && e.contains("array.albedo"),
            "{e}"
        );
        assert!(array(20.0, SkyModel::Isotropic)
            .hour(&w.hours[0], 30.0, 180.0, 1, p)
            .is_ok());
    }
}
