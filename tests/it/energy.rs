//! Energy accounting, carbon, cost and water: conservation laws and region handling.

use crate::common::*;
use simwatt::drivers::simulate::RunOutcome;

const PROFILE: &str = "device: a100
idle_w: 80
p0_w: 150
k_compute_w: 200
k_memory_w: 150
cap_w: 400
provenance: { method: published, data: [\"values for tests\"] }
";

fn run_with_profile(extra: &[&str]) -> (RunOutcome, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "a100.yaml", PROFILE);
    let set = format!("energy.power_profile={}", p.display());
    let mut overrides = vec![set.as_str(), "workload.requests=96"];
    overrides.extend_from_slice(extra);
    (simulate(&quickstart(), &overrides), tmp)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn request_energy_sums_to_busy_energy_and_total_is_busy_plus_idle() {
    for policy in ["vllm", "sarathi", "faster_transformer"] {
        let (o, _t) = run_with_profile(&[
            &format!("scheduler.policy={policy}"),
            "hardware.tensor_parallel=2",
            "hardware.pipeline_stages=2",
            "hardware.replicas=2",
            "region=aws-eu-west-1",
        ]);
        let e = &o.summary.energy;
        let busy = e.busy_energy_j.unwrap();
        let per_request: f64 = o.rows.iter().map(|r| r.energy_j.unwrap()).sum();
        assert!(
            rel(per_request, busy) < 1e-9,
            "{policy}: {per_request} vs {busy}"
        );
        let split = e.prefill_energy_j.unwrap() + e.decode_energy_j.unwrap();
        assert!(rel(split, busy) < 1e-9);
        assert!(rel(e.energy_j.unwrap(), busy + e.idle_energy_j.unwrap()) < 1e-12);
        // Every GPU draws at least idle power over the whole span.
        let span = o.result.end_ns as f64 / 1e9;
        let gpus = 2.0 * 2.0 * 2.0;
        assert!(e.energy_j.unwrap() >= 80.0 * span * gpus * (1.0 - 1e-12));
        // The stage log's energy is the GPU work's power times its time plus the host wait's power
        // times its time, times TP; the host wait sits between loaded idle and the stage's power.
        let b = &o.result.batches;
        for i in 0..b.len() {
            let host = b.host_ns[i] as f64 / 1e9;
            let gpu = (b.end_ns[i] - b.start_ns[i]) as f64 / 1e9 - host;
            let expect = (b.power_w[i] * gpu + b.host_power_w[i] * host) * 2.0;
            assert!(
                rel(b.energy_j[i], expect) < 1e-9,
                "{} vs {expect}",
                b.energy_j[i]
            );
            assert!((150.0..=400.0).contains(&b.power_w[i]));
            assert!(b.host_power_w[i] >= 80.0 - 1e-9 && b.host_power_w[i] <= b.power_w[i] + 1e-9);
        }
    }
}

#[test]
fn carbon_is_facility_energy_times_intensity_in_a_constant_region() {
    // aws-eu-west-1 has no hourly series: its intensity is a constant.
    let (o, _t) = run_with_profile(&["region=aws-eu-west-1"]);
    let r = &o.summary.energy.regions[0];
    assert_eq!(r.carbon_intensity_kind, "constant");
    let text = std::fs::read_to_string(root().join("regions/aws-eu-west-1.yaml")).unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let intensity = v["carbon_intensity_g_per_kwh"]["value"].as_f64().unwrap();
    let pue = v["pue"]["value"].as_f64().unwrap();
    let kwh = o.summary.energy.energy_j.unwrap() / 3.6e6 * pue;
    assert!(rel(r.energy_kwh_facility, kwh) < 1e-12);
    assert!(rel(r.carbon_g, r.energy_kwh_facility * intensity) < 1e-9);
    assert_eq!(o.summary.energy.carbon_g, Some(r.carbon_g));
    // Per-request carbon adds up to the busy share of the run's carbon.
    let req_g: f64 = o.rows.iter().map(|x| x.carbon_g.unwrap()).sum();
    let busy_share = o.summary.energy.busy_energy_j.unwrap() / o.summary.energy.energy_j.unwrap();
    assert!(rel(req_g, r.carbon_g * busy_share) < 1e-9);
}

#[test]
fn an_hourly_series_makes_carbon_depend_on_the_start_time() {
    // California's grid: solar at midday (UTC 20:00 is local noon in summer), gas at night.
    let series =
        std::fs::read_to_string(root().join("regions/hourly/US-CAL-CISO_2024.csv")).unwrap();
    let day: Vec<(String, f64)> = series
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("2024-06-15"))
        .map(|l| {
            let (h, v) = l.split_once(',').unwrap();
            (h.to_string(), v.parse().unwrap())
        })
        .collect();
    let cleanest = day.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let dirtiest = day.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert!(dirtiest.1 > cleanest.1 * 1.2, "{cleanest:?} {dirtiest:?}");
    let carbon = |start: &str| {
        let (o, _t) = run_with_profile(&[
            "region=aws-us-west-1",
            &format!("energy.start_time={start}"),
            "workload.requests=32",
        ]);
        let r = &o.summary.energy.regions[0];
        assert_eq!(r.carbon_intensity_kind, "hourly");
        (r.carbon_g, o.summary.energy.energy_j.unwrap())
    };
    let (clean_g, e1) = carbon(&cleanest.0);
    let (dirty_g, e2) = carbon(&dirtiest.0);
    assert_eq!(e1, e2, "the start time must not change the energy");
    assert!(
        clean_g < dirty_g,
        "cleanest {clean_g} g, dirtiest {dirty_g} g"
    );
}

#[test]
fn several_regions_report_the_same_run() {
    let (o, _t) = run_with_profile(&["region=aws-us-east-1,gcp-europe-north1,aws-ap-south-1"]);
    let regions: Vec<&str> = o
        .summary
        .energy
        .regions
        .iter()
        .map(|r| r.region.as_str())
        .collect();
    assert_eq!(
        regions,
        ["aws-us-east-1", "gcp-europe-north1", "aws-ap-south-1"]
    );
    assert_eq!(o.summary.energy.region.as_deref(), Some("aws-us-east-1"));
    let finland = &o.summary.energy.regions[1];
    let india = &o.summary.energy.regions[2];
    assert!(finland.carbon_g < india.carbon_g);
    // Embodied carbon depends on GPU-hours, not on the grid.
    assert_eq!(finland.embodied_carbon_g, india.embodied_carbon_g);
    assert!(finland.embodied_carbon_g.unwrap() > 0.0);
    // A missing price is reported as missing, not as zero.
    assert!(finland.energy_cost_usd.is_none() && finland.cost_usd.is_none());
    assert!(finland
        .notes
        .iter()
        .any(|n| n.contains("electricity price")));
}

#[test]
fn baselines_and_power_segments_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "a100.yaml", PROFILE);
    let out = tmp.path().join("run");
    let o = simwatt(&[
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        &format!("energy.power_profile={}", p.display()),
        "--set",
        "workload.requests=32",
        "--set",
        "region=aws-us-east-1",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "energy_j",
        "energy_kwh_facility",
        "avg_power_w",
        "j_per_output_token",
        "j_per_request",
        "carbon_g",
        "carbon_g_per_1k_tokens",
        "cost_usd",
        "water_l",
        "tdp_baseline_energy_j",
        "vidur_baseline_energy_j",
    ] {
        assert!(s[key].as_f64().unwrap() > 0.0, "{key}: {}", s[key]);
    }
    // TDP x time is an upper bound of a capped model whose cap is the TDP.
    assert!(s["tdp_baseline_energy_j"].as_f64() >= s["energy_j"].as_f64());
    assert!(std::fs::metadata(out.join("power.parquet")).unwrap().len() > 0);
    let csv = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    for c in [
        "energy_j",
        "prefill_energy_j",
        "decode_energy_j",
        "carbon_g",
    ] {
        assert!(
            header.split(',').any(|h| h == c),
            "{c} missing from {header}"
        );
    }
}

#[test]
fn without_a_power_profile_energy_is_empty_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_without_power_profile(tmp.path());
    let o = simwatt_command()
        .args([
            "simulate",
            "-c",
            cfg.to_str().unwrap(),
            "--set",
            "workload.requests=8",
            "--set",
            "region=null",
            "-o",
            "run",
            "-q",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("run/summary.json")).unwrap(),
    )
    .unwrap();
    assert!(s["energy_j"].is_null());
    assert!(s["carbon_g"].is_null());
    let note = s["energy_note"].as_str().unwrap();
    assert!(note.contains("no power profile for mygpu"), "{note}");
    assert!(!tmp.path().join("run/power.parquet").exists());
    let csv = std::fs::read_to_string(tmp.path().join("run/requests.csv")).unwrap();
    let second = csv.lines().nth(1).unwrap();
    assert!(
        second.ends_with(",,,,"),
        "energy cells should be empty: {second}"
    );
}

#[test]
fn bad_regions_and_power_profiles_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "a100.yaml", PROFILE);
    let set = format!("energy.power_profile={}", p.display());
    let out = tmp.path().join("o");
    let o = simwatt(&[
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        &set,
        "--set",
        "region=mars-1",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_clean_failure(&o, &["region", "mars-1", "known regions", "aws-us-east-1"]);
    let bad = write(
        tmp.path(),
        "bad.yaml",
        &PROFILE.replace("cap_w: 400", "cap_w: 100"),
    );
    let o = simwatt(&[
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        &format!("energy.power_profile={}", bad.display()),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_clean_failure(&o, &["bad.yaml", "cap_w", "100"]);
    let o = simwatt(&[
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        &set,
        "--set",
        "energy.start_time=yesterday",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_clean_failure(&o, &["energy.start_time", "yesterday"]);
    let o = simwatt(&[
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        &set,
        "--set",
        "region=aws-us-west-1",
        "--set",
        "energy.start_time=2031-01-01T00:00:00Z",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_clean_failure(&o, &["US-CAL-CISO_2024.csv", "outside the series"]);
}

#[test]
fn every_shipped_region_reports_a_run() {
    // Hourly wholesale prices can be negative (aws-ap-southeast-2's AEMO series has such hours).
    let ids: Vec<String> = std::fs::read_dir(root().join("regions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(|s| s.to_string()))
        .filter(|n| n.ends_with(".yaml") && n != "embodied.yaml")
        .map(|n| n.trim_end_matches(".yaml").to_string())
        .collect();
    assert!(ids.len() >= 15, "{ids:?}");
    let set = format!("region={}", ids.join(","));
    let (o, _t) = run_with_profile(&[&set, "workload.requests=16"]);
    assert_eq!(o.summary.energy.regions.len(), ids.len());
    for r in &o.summary.energy.regions {
        assert!(r.carbon_g > 0.0, "{}", r.region);
    }
}
