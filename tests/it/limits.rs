//! Power and clock limits an operator sets (`hardware.power_cap_w`, `hardware.sm_clock_mhz`): a lower
//! limit never shortens a stage nor raises its power, a cap or clock sweep of a compute-heavy
//! workload trades latency for joules monotonically, both knobs compose, and the run records them.

use crate::common::{
    assert_clean_failure, config_without_power_profile, quickstart, root, simulate, simwatt,
};
use simwatt::config::PowerProfile;
use simwatt::power::{StageEnergy, Utilisation};
use simwatt::sim::{StageCost, StagePower};

fn h100_profile() -> PowerProfile {
    static P: std::sync::OnceLock<PowerProfile> = std::sync::OnceLock::new();
    P.get_or_init(|| PowerProfile::load(&root().join("profiles/power/h100.yaml")).unwrap())
        .clone()
}

fn h100() -> simwatt::catalog::DeviceSpec {
    static D: std::sync::OnceLock<simwatt::catalog::DeviceSpec> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let c = simwatt::catalog::Catalogs::new().unwrap();
        c.builtin().device("h100").unwrap().1.clone()
    })
    .clone()
}

/// A stage of `time_ns` on one H100 at utilisation (compute, memory) of its peaks.
fn stage(device: &simwatt::catalog::DeviceSpec, compute: f64, memory: f64) -> StageCost {
    let time_ns = 10_000_000u64;
    let t = time_ns as f64 / 1e9;
    StageCost {
        time_ns,
        flops: compute * t * device.peak_flops(),
        bytes: memory * t * device.memory_bandwidth_bytes_s(),
        ..Default::default()
    }
}

fn priced(cap_w: f64, clock_limit: f64, c: &StageCost) -> simwatt::sim::StagePrice {
    let mut profile = h100_profile();
    profile.cap_w = cap_w;
    StageEnergy::new(profile, h100(), 1, clock_limit).price(c)
}

/// The utilisations the properties range over: compute-bound, mixed and memory-bound stages.
fn stages() -> Vec<StageCost> {
    let d = h100();
    let mut v = Vec::new();
    for &uc in &[0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0] {
        for &um in &[0.0, 0.05, 0.2, 0.5, 0.9] {
            v.push(stage(&d, uc, um));
        }
    }
    v
}

#[test]
fn lowering_the_cap_never_shortens_a_stage_nor_raises_its_power() {
    let caps: Vec<f64> = (0..=57).map(|i| 700.0 - 10.0 * i as f64).collect(); // 700 .. 130 W, all above P_0
    let mut throttled = 0;
    for c in stages() {
        for &limit in &[1.0, 0.8, 0.5] {
            let mut last: Option<simwatt::sim::StagePrice> = None;
            for &cap in &caps {
                let p = priced(cap, limit, &c);
                assert!(
                    p.gpu_ns >= c.time_ns && p.power_w <= cap + 1e-9,
                    "{p:?} at {cap} W"
                );
                if let Some(prev) = &last {
                    assert!(
                        p.gpu_ns >= prev.gpu_ns,
                        "cap {cap} W: {} ns after {} ns ({c:?})",
                        p.gpu_ns,
                        prev.gpu_ns
                    );
                    assert!(
                        p.power_w <= prev.power_w + 1e-9,
                        "cap {cap} W: {} W after {} W ({c:?})",
                        p.power_w,
                        prev.power_w
                    );
                    assert!(p.clock <= prev.clock + 1e-12, "{p:?} after {prev:?}");
                }
                throttled += usize::from(p.clock < 1.0);
                last = Some(p);
            }
        }
    }
    assert!(throttled > 100, "only {throttled} throttled points");
}

#[test]
fn lowering_the_clock_limit_never_shortens_a_stage_nor_raises_its_power() {
    for c in stages() {
        for &cap in &[700.0, 450.0, 250.0] {
            let mut last: Option<simwatt::sim::StagePrice> = None;
            for i in 0..=18 {
                let limit = 1.0 - 0.05 * i as f64; // 1.0 .. 0.1
                let p = priced(cap, limit, &c);
                assert!(p.clock <= limit + 1e-12, "{p:?} above the limit {limit}");
                if let Some(prev) = &last {
                    assert!(p.gpu_ns >= prev.gpu_ns, "{p:?} after {prev:?}");
                    assert!(p.power_w <= prev.power_w + 1e-9, "{p:?} after {prev:?}");
                }
                last = Some(p);
            }
        }
    }
}

#[test]
fn under_a_clock_limit_a_stage_stretches_by_its_compute_share_and_dynamic_power_falls_as_f_cubed() {
    let d = h100();
    let c = stage(&d, 0.3, 0.2);
    let pr = h100_profile();
    let u = Utilisation {
        compute: 0.3,
        memory: 0.2,
    };
    let demand = pr.demand_w(u);
    assert!(demand < pr.cap_w, "the stage is under the cap: {demand} W");
    let f = 1400.0 / 1980.0;
    let p = priced(pr.cap_w, f, &c);
    assert_eq!(p.clock, f);
    let share = 0.3 / 0.5;
    let expect_ns = c.time_ns as f64 * (share / f + 1.0 - share);
    assert!(
        (p.gpu_ns as f64 - expect_ns).abs() <= 1.0,
        "{p:?} vs {expect_ns}"
    );
    let expect_w = pr.p0_w + (demand - pr.p0_w) * f.powi(3);
    assert!((p.power_w - expect_w).abs() < 1e-9, "{p:?} vs {expect_w}");
    // The knobs compose: the clock is the lower of the two. A cap whose clock is above the limit
    // leaves the limit in charge; one below it takes over and the GPU draws the cap.
    let hot = stage(&d, 1.0, 0.3);
    let hot_u = Utilisation {
        compute: 1.0,
        memory: 0.3,
    };
    let by_cap = |cap: f64| ((cap - pr.p0_w) / (pr.demand_w(hot_u) - pr.p0_w)).powf(1.0 / 3.0);
    let (high, low) = (650.0, 300.0);
    assert!(by_cap(high) > 0.6 && by_cap(low) < 0.6);
    let a = priced(high, 0.6, &hot);
    assert_eq!(a.clock, 0.6);
    assert!(a.power_w < high);
    let b = priced(low, 0.6, &hot);
    assert!((b.clock - by_cap(low)).abs() < 1e-12, "{b:?}");
    assert_eq!(b.power_w, low);
}

/// A compute-heavy workload on one H100: long prompts, short outputs, arriving faster than they are
/// served, so prefills dominate the GPU time.
const HEAVY: &[&str] = &[
    "hardware.gpu=h100",
    "model=meta-llama/Llama-3.1-8B",
    "predictor.type=roofline",
    "scheduler.max_num_batched_tokens=8192",
    "workload.requests=200",
    "workload.arrival.rate=20",
    "workload.lengths={type: uniform, prompt: [1024, 2048], output: [16, 64]}",
];

/// (J per output token, mean end-to-end latency s, mean TPOT s) of the heavy workload with `extra`.
fn heavy_run(extra: &str) -> (f64, f64, f64) {
    let mut set: Vec<&str> = HEAVY.to_vec();
    set.push(extra);
    let o = simulate(&quickstart(), &set);
    let s = &o.summary;
    (
        s.energy.j_per_output_token.unwrap(),
        s.latency.e2e_mean_s.unwrap(),
        s.latency.tpot_mean_s.unwrap(),
    )
}

/// Asserts that each row's J/token is below the one before and its latencies above.
fn assert_trades(rows: &[(String, (f64, f64, f64))]) {
    for w in rows.windows(2) {
        let ((a, x), (b, y)) = (&w[0], &w[1]);
        assert!(
            y.0 < x.0,
            "J/token at {b} ({}) not below {a} ({})",
            y.0,
            x.0
        );
        assert!(
            y.1 > x.1,
            "mean e2e at {b} ({}) not above {a} ({})",
            y.1,
            x.1
        );
        assert!(
            y.2 > x.2,
            "mean TPOT at {b} ({}) not above {a} ({})",
            y.2,
            x.2
        );
    }
}

#[test]
fn a_cap_sweep_of_a_compute_heavy_h100_workload_trades_latency_for_joules() {
    let rows: Vec<(String, (f64, f64, f64))> = [700, 600, 500, 400, 300]
        .iter()
        .map(|w| {
            let set = format!("hardware.power_cap_w={w}");
            (set.clone(), heavy_run(&set))
        })
        .collect();
    assert_trades(&rows);
    // The sweep's ends differ by more than noise: a 300 W cap saves energy per token.
    let (first, last) = (rows[0].1, rows[rows.len() - 1].1);
    assert!(last.0 < 0.95 * first.0, "{first:?} -> {last:?}");
}

#[test]
fn a_clock_limit_sweep_trades_latency_for_joules_likewise() {
    let rows: Vec<(String, (f64, f64, f64))> = [1980, 1700, 1400, 1100, 800]
        .iter()
        .map(|mhz| {
            let set = format!("hardware.sm_clock_mhz={mhz}");
            (set.clone(), heavy_run(&set))
        })
        .collect();
    assert_trades(&rows);
}

#[test]
fn a_power_cap_is_obeyed_by_every_stage_and_recorded_in_the_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let qs = quickstart();
    let o = simwatt(&[
        "simulate",
        "-c",
        qs.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
        "--no-plots",
        "--set",
        "workload.requests=40",
        "--set",
        "hardware.power_cap_w=250",
        "--set",
        "hardware.sm_clock_mhz=1200",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resolved = std::fs::read_to_string(out.join("config.resolved.yaml")).unwrap();
    assert!(resolved.contains("power_cap_w: 250"), "{resolved}");
    assert!(resolved.contains("sm_clock_mhz: 1200"), "{resolved}");
    let prov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("provenance.json")).unwrap())
            .unwrap();
    let l = &prov["limits"];
    assert_eq!(l["power_cap_w"], 250.0);
    assert_eq!(l["power_cap_from"], "hardware.power_cap_w");
    assert_eq!(l["sm_clock_mhz"], 1200.0);
    assert_eq!(l["max_sm_clock_mhz"], 1410.0);
    assert!((l["clock_limit"].as_f64().unwrap() - 1200.0 / 1410.0).abs() < 1e-12);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("Limits: power limit 250 W per GPU (`hardware.power_cap_w`), SM clock limit 1200 MHz of 1410 MHz"),
        "{md}"
    );

    // The power plot draws the limit beside the TDP.
    let r = simwatt(&["report", out.to_str().unwrap(), "--no-trace"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let svg = std::fs::read_to_string(out.join("power_timeline.svg")).unwrap();
    assert!(svg.contains("power limit (250 W)") && svg.contains("TDP (400 W)"));

    // In memory: no stage above the cap or the clock limit, and some at the cap.
    let o = simulate(
        &qs,
        &[
            "workload.requests=40",
            "hardware.power_cap_w=250",
            "hardware.sm_clock_mhz=1200",
        ],
    );
    let b = &o.result.batches;
    assert!(!b.power_w.is_empty());
    assert!(b.power_w.iter().all(|&w| w <= 250.0), "{:?}", b.power_w);
    assert!(b.clock.iter().all(|&c| c <= 1200.0 / 1410.0 + 1e-12));
    // Without the knobs the profile's cap is in force and recorded as such.
    let free = simulate(&qs, &["workload.requests=40"]);
    assert_eq!(free.scenario.hardware.clock_limit, 1.0);
    assert_eq!(
        free.scenario.energy.power_profile.as_ref().unwrap().cap_w,
        400.0
    );
}

#[test]
fn limits_without_a_power_profile_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let c = config_without_power_profile(tmp.path());
    for (set, field) in [
        ("hardware.power_cap_w=300", "hardware.power_cap_w"),
        ("hardware.sm_clock_mhz=1200", "hardware.sm_clock_mhz"),
    ] {
        let o = simwatt(&[
            "simulate",
            "-c",
            c.to_str().unwrap(),
            "-o",
            tmp.path().join("out").to_str().unwrap(),
            "-q",
            "--no-plots",
            "--set",
            set,
        ]);
        assert_clean_failure(&o, &[field, "needs a power profile", "mygpu"]);
        assert!(!tmp.path().join("out").exists());
    }
}
