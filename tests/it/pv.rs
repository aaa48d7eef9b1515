//! The PV model (src/pv.rs) against pvlib on the shipped Sacramento TMY3 file: the sun's position,
//! the plane-of-array irradiance, the cell temperature and the DC output of 192 hours, June and
//! December, a south-facing array at 20° (Hay-Davies sky) and a west-facing wall (isotropic sky).
//! The reference is tests/data/pv_reference_sacramento.csv, written by scripts/pv_reference.py
//! (pvlib 0.16.1).

use crate::common::root;
use simwatt::csvio::CsvTable;
use simwatt::pv::{Array, IncidenceLoss, SapmTemperature, SkyModel, Weather};

#[test]
fn the_pv_model_matches_pvlib_hour_by_hour() {
    let path = root().join("regions/solar/tmy3/724839TYA.CSV");
    let text = std::fs::read_to_string(&path).expect("the shipped TMY3 file");
    let weather = Weather::parse_tmy3(&path, &text).unwrap();
    assert_eq!(weather.site.name, "SACRAMENTO METROPOLITAN AP");
    let reference = CsvTable::read(&root().join("tests/data/pv_reference_sacramento.csv")).unwrap();
    assert_eq!(reference.rows(), 192);
    let col = |n: &str| reference.f64_column(n).unwrap();
    let (cases, starts) = (
        reference.text_values("sky_model").unwrap(),
        reference.text_values("hour_start_utc").unwrap(),
    );
    let (tilt, az) = (col("tilt_deg"), col("azimuth_deg"));
    let want = [
        ("zenith_deg", col("zenith_deg"), 0.001),
        ("solar_azimuth_deg", col("solar_azimuth_deg"), 0.001),
        ("aoi_deg", col("aoi_deg"), 0.001),
        ("poa_direct", col("poa_direct"), 0.01),
        ("poa_sky", col("poa_sky"), 0.01),
        ("poa_ground", col("poa_ground"), 0.01),
        ("effective", col("effective"), 0.01),
        ("cell_temp_c", col("cell_temp_c"), 0.001),
        ("fraction", col("fraction"), 1e-5),
    ];
    let mut worst = vec![0.0f64; want.len()];
    let mut energy = (0.0, 0.0);
    for i in 0..reference.rows() {
        let array = Array {
            tilt_deg: tilt[i],
            azimuth_deg: az[i],
            albedo: None,
            gamma_per_c: -0.0035,
            dc_losses: 0.1408,
            temperature: SapmTemperature::of(
                simwatt::config::raw::MountingConfig::OpenRackGlassPolymer,
            ),
            sky: if cases[i] == "haydavies" {
                SkyModel::HayDavies
            } else {
                SkyModel::Isotropic
            },
            incidence: IncidenceLoss::Physical,
        };
        let t = starts[i].parse().unwrap();
        let o = array.hours(&weather, t, 1).unwrap()[0];
        let got = [
            o.zenith_deg,
            o.azimuth_deg,
            o.aoi_deg,
            o.poa_direct,
            o.poa_sky,
            o.poa_ground,
            o.effective,
            o.cell_temp_c,
            o.fraction,
        ];
        for (k, ((name, w, tol), g)) in want.iter().zip(got).enumerate() {
            let d = (g - w[i]).abs();
            worst[k] = worst[k].max(d);
            assert!(
                d <= *tol,
                "{} {}: {name} {g} against pvlib's {}",
                cases[i],
                starts[i],
                w[i]
            );
        }
        energy.0 += o.fraction;
        energy.1 += want[8].1[i];
    }
    // The whole: the four runs' energy within 0.001% of pvlib's, and the sun was up.
    assert!(energy.1 > 20.0, "{energy:?}");
    assert!((energy.0 / energy.1 - 1.0).abs() < 1e-5, "{energy:?}");
    eprintln!("largest differences from pvlib: {worst:?}");
}
