//! On-site solar and a battery behind the meter (`microgrid`, docs/microgrid.md): every hour balances,
//! the state of charge keeps its bounds, the summary adds up the hours, and carbon is charged on grid
//! import only.

use crate::common::*;

/// Half a day of experiments/microgrid-day.yaml (the sunny hours of San Francisco in UTC), written to
/// a run folder with `extra` overrides.
fn run(out: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "simulate",
        "-c",
        "experiments/microgrid-day.yaml",
        "-o",
        out.to_str().unwrap(),
        "-q",
        "--no-trace",
        "--set",
        "workload.requests=60000",
        "--set",
        "energy.start_time=2024-06-15T12:00:00Z",
    ];
    for e in extra {
        args.extend_from_slice(&["--set", e]);
    }
    let o = simwatt(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn every_hour_balances_and_carbon_is_charged_on_grid_import_only() {
    let tmp = tempfile::tempdir().unwrap();
    let with = run(&tmp.path().join("with"), &[]);
    let t = std::fs::read_to_string(tmp.path().join("with/microgrid.csv")).unwrap();
    let mut lines = t.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |row: &[&str], name: &str| -> f64 {
        row[head.iter().position(|h| *h == name).unwrap()]
            .parse()
            .unwrap()
    };
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.len() >= 4, "{} hours", rows.len());
    let (mut import, mut solar, mut carbon, mut load) = (0.0, 0.0, 0.0, 0.0);
    let mut sunny = 0;
    for r in &rows {
        let l = col(r, "load_kwh");
        let served =
            col(r, "solar_used_kwh") + col(r, "battery_discharge_kwh") + col(r, "grid_import_kwh")
                - col(r, "grid_charge_kwh");
        assert!((served - l).abs() < 1e-9 * l.max(1.0), "{r:?}");
        let s = col(r, "solar_kwh");
        let used = col(r, "solar_used_kwh")
            + col(r, "solar_charge_kwh")
            + col(r, "grid_export_kwh")
            + col(r, "curtailed_kwh");
        assert!((used - s).abs() < 1e-9 * s.max(1.0), "{r:?}");
        // Dispatch keeps the charge within [min_soc, max_soc] = [0.1, 0.9] (no self-discharge here).
        let soc = col(r, "soc_fraction");
        assert!((0.1 - 1e-9..=0.9 + 1e-9).contains(&soc), "{r:?}");
        assert!(
            (col(r, "carbon_g") - col(r, "grid_import_kwh") * col(r, "carbon_intensity_g_per_kwh"))
                .abs()
                < 1e-6
        );
        sunny += usize::from(s > 0.1);
        import += col(r, "grid_import_kwh");
        solar += s;
        carbon += col(r, "carbon_g");
        load += l;
    }
    assert!(sunny >= 3, "{sunny} sunny hours");
    let f = |k: &str| {
        with[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {}", with[k]))
    };
    assert!((f("grid_import_kwh") - import).abs() < 1e-9 * import);
    assert!((f("solar_energy_kwh") - solar).abs() < 1e-9 * solar);
    assert!((f("carbon_g") - carbon).abs() < 1e-6 * carbon);
    assert!((f("energy_kwh_facility") - load).abs() < 1e-9 * load);
    // Without the microgrid the same run draws everything from the grid: its carbon is the
    // microgrid run's carbon_without_microgrid_g, above the microgrid run's.
    let without = run(&tmp.path().join("without"), &["microgrid=null"]);
    assert_eq!(without["grid_import_kwh"], serde_json::Value::Null);
    assert_eq!(
        without["carbon_g"].as_f64().unwrap(),
        f("carbon_without_microgrid_g")
    );
    assert!(f("carbon_g") < f("carbon_without_microgrid_g"));
    // The figure is drawn and linked.
    assert_valid_png(&tmp.path().join("with/microgrid.png"), 1200, 900);
    let md = std::fs::read_to_string(tmp.path().join("with/summary.md")).unwrap();
    assert!(md.contains("microgrid.png"), "{md}");
}

#[test]
fn carbon_threshold_dispatch_discharges_only_in_dirty_hours_and_charges_from_the_grid_in_clean_ones(
) {
    let tmp = tempfile::tempdir().unwrap();
    run(
        &tmp.path().join("thr"),
        &[
            "microgrid.dispatch=carbon_threshold",
            "microgrid.carbon_threshold_g_per_kwh=150",
        ],
    );
    let t = std::fs::read_to_string(tmp.path().join("thr/microgrid.csv")).unwrap();
    let mut lines = t.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (ci, dis, gc) = (
        at("carbon_intensity_g_per_kwh"),
        at("battery_discharge_kwh"),
        at("grid_charge_kwh"),
    );
    let (mut clean, mut dirty) = (0, 0);
    for l in lines {
        let r: Vec<f64> = l
            .split(',')
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, v)| v.parse().unwrap_or(f64::NAN))
            .collect();
        // Column 1 (the time) is left out above, so later columns shift by one.
        let get = |c: usize| r[if c > 1 { c - 1 } else { c }];
        if get(ci) < 150.0 {
            assert_eq!(get(dis), 0.0, "{l}");
            clean += 1;
        } else {
            assert_eq!(get(gc), 0.0, "{l}");
            dirty += 1;
        }
    }
    assert!(
        clean > 0 && dirty > 0,
        "{clean} clean and {dirty} dirty hours"
    );
}

/// Reads `microgrid.csv` of a run folder: its header and its rows, each cell a number (the time
/// column, `hour_start_utc`, kept as text in `times`).
fn hours(dir: &std::path::Path) -> (Vec<String>, Vec<Vec<f64>>, Vec<String>) {
    let t = std::fs::read_to_string(dir.join("microgrid.csv")).unwrap();
    let mut lines = t.lines();
    let head: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let (mut rows, mut times) = (Vec::new(), Vec::new());
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        times.push(cells[1].to_string());
        rows.push(
            cells
                .iter()
                .map(|c| c.parse().unwrap_or(f64::NAN))
                .collect(),
        );
    }
    (head, rows, times)
}

#[test]
fn the_array_and_the_battery_carry_their_embodied_carbon_over_the_span() {
    // 12 hours of energy (the requests end after about 4.2 hours): the span is exactly 12 h.
    let tmp = tempfile::tempdir().unwrap();
    let s = run(&tmp.path().join("d"), &["energy.min_span_s=43200"]);
    let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k}: {}", s[k]));
    // Defaults: 810 kgCO2e/kWp over 30 years for the 1.2 kWp array, 106 kgCO2e/kWh over 15 years
    // for the 3 kWh battery, each charged for 12 of its hours.
    let solar: f64 = 810.0 * 1.2 * 1000.0 * 12.0 / (30.0 * 8760.0);
    let battery: f64 = 106.0 * 3.0 * 1000.0 * 12.0 / (15.0 * 8760.0);
    assert!((solar - 44.3836).abs() < 1e-4 && (battery - 29.0411).abs() < 1e-4);
    assert!((f("solar_embodied_carbon_g") - solar).abs() < 1e-9, "{s}");
    assert!(
        (f("battery_embodied_carbon_g") - battery).abs() < 1e-9,
        "{s}"
    );
    // Two A100s at 150 kgCO2e over 5 years: 82.19 g; the headline embodied carbon adds the
    // microgrid's, the per-region figure (all-grid, no microgrid) does not.
    let gpus = 150.0 * 2.0 * 1000.0 * 12.0 / (5.0 * 8760.0);
    let region = s["regions"][0]["embodied_carbon_g"].as_f64().unwrap();
    assert!((region - gpus).abs() < 1e-9, "{region}");
    assert!((f("embodied_carbon_g") - (gpus + solar + battery)).abs() < 1e-9);
    // Configured figures replace the defaults; without a battery it has none.
    let s = run(
        &tmp.path().join("set"),
        &[
            "energy.min_span_s=43200",
            "microgrid.solar.embodied_kg_per_kwp=1000",
            "microgrid.solar.lifetime_years=25",
            "microgrid.battery=null",
        ],
    );
    let set: f64 = 1000.0 * 1.2 * 1000.0 * 12.0 / (25.0 * 8760.0);
    assert!((s["solar_embodied_carbon_g"].as_f64().unwrap() - set).abs() < 1e-9);
    assert!((set - 65.7534).abs() < 1e-4);
    assert_eq!(s["battery_embodied_carbon_g"], serde_json::Value::Null);
    assert!((s["embodied_carbon_g"].as_f64().unwrap() - (gpus + set)).abs() < 1e-9);
    // Without a microgrid: no microgrid embodied carbon, the GPUs' alone.
    let s = run(
        &tmp.path().join("none"),
        &["energy.min_span_s=43200", "microgrid=null"],
    );
    assert_eq!(s["solar_embodied_carbon_g"], serde_json::Value::Null);
    assert!((s["embodied_carbon_g"].as_f64().unwrap() - gpus).abs() < 1e-9);
}

#[test]
fn price_threshold_dispatch_discharges_only_in_expensive_hours_and_charges_in_cheap_ones() {
    // Sydney (AWS ap-southeast-2, AEMO's hourly NSW wholesale price of 2024) from 05:00 UTC on
    // 2024-06-15 for 12 hours: 0.09 and 0.15 USD/kWh until 07:00, 0.20-0.27 through the evening
    // peak (07:00-11:59, 17:00-21:59 in Sydney), then below 0.20 again. The requests keep both GPUs
    // busy until about 09:10. Threshold 0.20 USD/kWh.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("price");
    let s = run(
        &dir,
        &[
            "region=aws-ap-southeast-2",
            "microgrid.solar.site=Sydney",
            "energy.start_time=2024-06-15T05:00:00Z",
            "energy.min_span_s=43200",
            "microgrid.dispatch=price_threshold",
            "microgrid.price_threshold_usd_per_kwh=0.2",
        ],
    );
    let (head, rows, times) = hours(&dir);
    let at = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (price, dis, gc, imp, load) = (
        at("price_usd_per_kwh"),
        at("battery_discharge_kwh"),
        at("grid_charge_kwh"),
        at("grid_import_kwh"),
        at("load_kwh"),
    );
    // Twelve hours; a span ending on the hour may close the table with an empty hour.
    assert!(
        rows.len() >= 12 && rows[12..].iter().all(|r| r[load] == 0.0),
        "{rows:?}"
    );
    // The price of each hour is the series' own.
    let series =
        std::fs::read_to_string(root().join("regions/hourly/AU-NSW_price_2024.csv")).unwrap();
    let (mut dear, mut discharged, mut charged, mut energy_cost) = (0, 0.0, 0.0, 0.0);
    for (r, t) in rows.iter().zip(&times) {
        let line = series.lines().find(|l| l.starts_with(t.as_str())).unwrap();
        let p: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert_eq!(r[price], p, "{t}");
        let served = r[at("solar_used_kwh")] + r[dis] + r[imp] - r[gc];
        assert!((served - r[load]).abs() < 1e-9, "{t}: {r:?}");
        if p < 0.2 {
            assert_eq!(r[dis], 0.0, "{t}: discharged at {p} USD/kWh");
            charged += r[gc];
        } else {
            assert_eq!(r[gc], 0.0, "{t}: charged from the grid at {p} USD/kWh");
            dear += 1;
            discharged += r[dis];
        }
        energy_cost += r[imp] * p;
    }
    assert_eq!(dear, 5, "07:00 to 11:00 are at or above 0.20 USD/kWh");
    // The battery (1.5 kWh stored at the start, 0.3 its floor, 2.7 its ceiling) fills from the grid
    // in the two cheap hours and gives what it holds above its floor in the dear evening.
    assert!(charged > 0.5, "{charged} kWh charged from the grid");
    assert!(discharged > 1.5, "{discharged} kWh discharged");
    // Energy cost is charged on grid import at each hour's price.
    let rental = s["regions"][0]["rental_cost_usd"].as_f64().unwrap();
    let cost = s["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - rental - energy_cost).abs() < 1e-9 * cost,
        "{cost} vs {rental} + {energy_cost}"
    );
}

const SACRAMENTO: &str = "regions/solar/tmy3/724839TYA.CSV";

/// The overrides that swap the Solcast series for the Sacramento TMY3 weather and the PV model, over
/// 12 hours of energy from 16:00 UTC (08:00 to 20:00 PST; the requests end after about 4.2 hours).
fn weather(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec![
        "microgrid.solar.weather_file=regions/solar/tmy3/724839TYA.CSV",
        "microgrid.solar.site=null",
        "microgrid.solar.day=0",
        "energy.min_span_s=43200",
        "energy.start_time=2024-06-15T16:00:00Z",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn a_weather_file_drives_the_array_through_the_pv_model_hour_by_hour() {
    use simwatt::pv::{Array, IncidenceLoss, SapmTemperature, SkyModel, Weather};
    let tmp = tempfile::tempdir().unwrap();
    let s = run(&tmp.path().join("w"), &weather(&[]));
    let (head, rows, times) = hours(&tmp.path().join("w"));
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    // The same hours from the library, with the defaults config.resolved.yaml shows.
    let path = root().join(SACRAMENTO);
    let w = Weather::parse_tmy3(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    let array = Array {
        tilt_deg: 20.0,
        azimuth_deg: 180.0,
        albedo: None,
        gamma_per_c: -0.0035,
        dc_losses: 0.1408,
        temperature: SapmTemperature::of(
            simwatt::config::raw::MountingConfig::OpenRackGlassPolymer,
        ),
        sky: SkyModel::HayDavies,
        incidence: IncidenceLoss::Physical,
    };
    let first = times[0].parse().unwrap();
    let want = array.hours(&w, first, rows.len()).unwrap();
    // The run starts on the hour, so every hour but the last is whole: peak 1.2 kW x inverter 0.96.
    let mut sunny = 0;
    for (r, o) in rows.iter().zip(&want).take(rows.len() - 1) {
        let kwh = r[col("solar_kwh")];
        assert!((kwh - o.fraction * 1.2 * 0.96).abs() < 1e-12, "{r:?} {o:?}");
        // The hour's irradiance on the array and cell temperature are in the table too.
        let poa = o.poa_direct + o.poa_sky + o.poa_ground;
        assert!((r[col("poa_w_m2")] - poa).abs() < 1e-9, "{r:?} {o:?}");
        assert!(
            (r[col("cell_temp_c")] - o.cell_temp_c).abs() < 1e-9,
            "{r:?} {o:?}"
        );
        sunny += usize::from(kwh > 0.3);
    }
    // 16:00-04:00 UTC is 08:00-20:00 in Sacramento (PST), the sun up from about 04:45 to 19:30.
    assert!(
        rows.len() >= 12 && sunny >= 8,
        "{} hours, {sunny} sunny",
        rows.len()
    );
    let total: f64 = rows.iter().map(|r| r[col("solar_kwh")]).sum();
    assert!((s["solar_energy_kwh"].as_f64().unwrap() - total).abs() < 1e-9);
    let resolved = std::fs::read_to_string(tmp.path().join("w/config.resolved.yaml")).unwrap();
    assert!(resolved.contains("sky_model: hay_davies") && resolved.contains("tilt_deg: 20.0"));
}

#[test]
fn tilting_the_array_toward_the_winter_sun_gathers_more_of_it() {
    // 15 December, 08:00-20:00 PST: the sun is low, about 28° at noon.
    let tmp = tempfile::tempdir().unwrap();
    let kwh = |name: &str, tilt: &'static str| {
        let s = run(
            &tmp.path().join(name),
            &weather(&["energy.start_time=2024-12-15T16:00:00Z", tilt]),
        );
        s["solar_energy_kwh"].as_f64().unwrap()
    };
    let flat = kwh("flat", "microgrid.solar.array={tilt_deg: 0}");
    let latitude = kwh("tilted", "microgrid.solar.array={tilt_deg: 38.7}");
    let north = kwh(
        "north",
        "microgrid.solar.array={tilt_deg: 38.7, azimuth_deg: 0}",
    );
    assert!(flat > 0.5, "{flat}");
    assert!(
        latitude > 1.2 * flat,
        "tilted {latitude} against flat {flat}"
    );
    // Facing away, the array still takes the diffuse sky (much of a December day's light).
    assert!(
        north < 0.8 * flat,
        "north-facing {north} against flat {flat}"
    );
}

#[test]
fn a_weather_file_with_a_bad_albedo_fails_before_the_run_unless_the_config_sets_one() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(SACRAMENTO)).unwrap();
    // Row 100's albedo (the 62nd of 71 fields) set to TMY3's missing-value flag.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[101].split(',').collect();
    cells[61] = "-9900";
    lines[101] = cells.join(",");
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let set = format!("microgrid.solar.weather_file={}", bad.display());
    let out = tmp.path().join("out");
    let args = |extra: &[&str]| {
        let mut v = vec![
            "simulate".to_string(),
            "-c".into(),
            "experiments/microgrid-day.yaml".into(),
            "-o".into(),
            out.display().to_string(),
            "-q".into(),
            "--no-trace".into(),
            "--set".into(),
            "workload.requests=2000".into(),
            "--set".into(),
            set.clone(),
            "--set".into(),
            "microgrid.solar.site=null".into(),
            "--set".into(),
            "microgrid.solar.day=0".into(),
        ];
        for e in extra {
            v.extend(["--set".to_string(), e.to_string()]);
        }
        v
    };
    let o = simwatt(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("bad.csv")
            && e.contains("Alb (unitless)")
            && e.contains("row 100")
            && e.contains("-9900"),
        "{e}"
    );
    assert!(!out.exists());
    let o = simwatt(
        &args(&["microgrid.solar.array={albedo: 0.2}"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_array_given_by_area_and_efficiency_is_the_same_array_as_its_peak() {
    let tmp = tempfile::tempdir().unwrap();
    let by_peak = run(&tmp.path().join("peak"), &weather(&[]));
    let by_area = run(
        &tmp.path().join("area"),
        &weather(&[
            "microgrid.solar.peak_kw=null",
            "microgrid.solar.array={area_m2: 6, module_efficiency: 0.2}",
        ]),
    );
    for k in [
        "solar_energy_kwh",
        "grid_import_kwh",
        "carbon_g",
        "solar_embodied_carbon_g",
    ] {
        let (a, b) = (by_peak[k].as_f64().unwrap(), by_area[k].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-9 * a.abs(), "{k}: {a} against {b}");
    }
    let resolved = std::fs::read_to_string(tmp.path().join("area/config.resolved.yaml")).unwrap();
    assert!(resolved.contains("peak_kw: 1.2"), "{resolved}");
}
