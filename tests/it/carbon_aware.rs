//! Carbon-aware holding of deferrable requests (`workload.deferrable`, `carbon_aware`,
//! docs/microgrid.md): held work lowers carbon, every deferrable request still meets its deadline, the
//! release rate and the margin hold, ordinary requests are not moved, and the streamed request table
//! carries the same hold columns as the in-memory one. A power limit following the grid's intensity
//! (`carbon_power_cap`) holds in every hour and lowers carbon at some cost in speed.

use crate::common::*;
use simwatt::drivers::simulate::RunOutcome;

const CONFIG: &str = "experiments/carbon-aware-day.yaml";

/// 20,000 requests of experiments/carbon-aware-day.yaml from 10:00 UTC (CAISO's dirty morning, about
/// 170 gCO2e/kWh, before the midday solar hours at 50-80), an offline batch: all deferrable within 8
/// hours (`extra` may change that); energy counted over the same 12 hours with and without holding.
fn run(extra: &[&str]) -> RunOutcome {
    let mut o = vec![
        "workload.requests=20000",
        "energy.start_time=2024-06-15T10:00:00Z",
        "workload.deferrable.fraction=1.0",
        "workload.deferrable.deadline_s=28800",
        "energy.min_span_s=43200",
    ];
    o.extend_from_slice(extra);
    simulate(&root().join(CONFIG), &o)
}

/// CAISO's hourly intensity of the run's hours, from 10:00 UTC on 2024-06-15.
fn intensity() -> Vec<f64> {
    let t = std::fs::read_to_string(root().join("regions/hourly/US-CAL-CISO_2024.csv")).unwrap();
    let first = t
        .lines()
        .position(|l| l.starts_with("2024-06-15T10:00:00Z"))
        .unwrap();
    t.lines()
        .skip(first)
        .take(24)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn holding_lowers_carbon_and_every_request_meets_its_deadline() {
    let held = run(&[]);
    let base = run(&["carbon_aware=null"]);
    let (c_held, c_base) = (
        summary_f64(&held, "carbon_g"),
        summary_f64(&base, "carbon_g"),
    );
    assert!(
        c_held < 0.95 * c_base,
        "carbon with holding {c_held} g, without {c_base} g"
    );
    for o in [&held, &base] {
        assert_eq!(o.summary.requests_completed, 20_000);
        assert_eq!(o.summary.deadline_attainment, Some(1.0));
        // The same window for both: 12 hours of two A100s at their TDP.
        assert!((summary_f64(o, "tdp_baseline_energy_j") - 2.0 * 400.0 * 43_200.0).abs() < 1e-3);
    }
    assert_eq!(held.summary.deferrable_requests, Some(20_000));
    assert_eq!(base.summary.deferrable_requests, Some(20_000));
    assert_eq!(base.summary.held_requests, Some(0));
    let n_held = held.summary.held_requests.unwrap();
    assert!(n_held > 15_000, "{n_held} of 20000 held");
    assert!(held.summary.hold_mean_s.unwrap() > 3600.0);
    assert!(held.summary.hold_max_s.unwrap() <= 28_800.0 - 1800.0);
    let g = intensity();
    let hour = |t: f64| (t / 3600.0) as usize;
    let mut per_hour = vec![0u32; 24];
    for r in &held.rows {
        let Some(deadline) = r.deadline_s else {
            assert_eq!(r.held_s, None);
            assert_eq!(r.deadline_met, None);
            continue;
        };
        let c = r.completion_s.unwrap();
        assert!(
            c <= deadline,
            "request {} done at {c}, due {deadline}",
            r.request_id
        );
        assert_eq!(r.deadline_met, Some(true));
        let h = r.held_s.unwrap();
        if h > 0.0 {
            let submitted = r.arrival_s - h;
            // Released within its window, to a cleaner hour than the one it was submitted in.
            assert!(r.arrival_s <= deadline - 1800.0 + 1e-9);
            assert!(
                g[hour(r.arrival_s)] < g[hour(submitted)],
                "request {}: {} -> {} g/kWh",
                r.request_id,
                g[hour(submitted)],
                g[hour(r.arrival_s)]
            );
            per_hour[hour(r.arrival_s)] += 1;
        }
    }
    // At most max_release_rate (2/s) held requests leave the hold in any hour.
    assert!(per_hour.iter().all(|&n| n <= 7200), "{per_hour:?}");
}

#[test]
fn a_tight_rate_spreads_releases_and_ordinary_requests_stay() {
    // Half the requests deferrable, 0.05 held requests per second: at most 180 an hour.
    let slow = run(&[
        "workload.deferrable.fraction=0.5",
        "carbon_aware.max_release_rate=0.05",
    ]);
    let mut per_hour = std::collections::BTreeMap::<u64, u32>::new();
    for r in slow
        .rows
        .iter()
        .filter(|r| r.held_s.is_some_and(|h| h > 0.0))
    {
        *per_hour.entry((r.arrival_s / 3600.0) as u64).or_default() += 1;
    }
    assert!(per_hour.values().all(|&n| n <= 180), "{per_hour:?}");
    assert_eq!(
        per_hour.values().map(|&n| n as u64).sum::<u64>(),
        slow.summary.held_requests.unwrap()
    );
    // Ordinary requests arrive when they did without holding.
    let base = run(&["workload.deferrable.fraction=0.5", "carbon_aware=null"]);
    let plain = |o: &RunOutcome| {
        let mut v: Vec<u64> = o
            .rows
            .iter()
            .filter(|r| r.deadline_s.is_none())
            .map(|r| (r.arrival_s * 1e9).round() as u64)
            .collect();
        v.sort_unstable();
        v
    };
    assert!(plain(&slow).len() > 9_000);
    assert_eq!(plain(&slow), plain(&base));
    // A 100-second window (deadline 1900 s, margin 1800 s) holds only requests submitted less than
    // 100 s before the next hour, to its first release slots (0.5 s apart).
    let short = run(&[
        "workload.deferrable.deadline_s=1900",
        "carbon_aware.margin_s=1800",
    ]);
    assert!(short.summary.hold_max_s.unwrap() <= 100.0);
    for r in short
        .rows
        .iter()
        .filter(|r| r.held_s.is_some_and(|h| h > 0.0))
    {
        let into_hour = r.arrival_s % 3600.0;
        assert!(into_hour < 100.0, "{r:?}");
        assert!(
            (into_hour * 2.0 - (into_hour * 2.0).round()).abs() < 1e-6,
            "{r:?}"
        );
    }
    assert_eq!(short.summary.deadline_attainment, Some(1.0));
}

#[test]
fn solar_signal_releases_into_sunnier_hours() {
    // The microgrid day's array and battery; hours ranked by San Francisco's solar output.
    let o = simulate(
        &root().join("experiments/microgrid-day.yaml"),
        &[
            "workload.requests=20000",
            "workload.arrival.rate=2.0",
            "energy.start_time=2024-06-15T10:00:00Z",
            "workload.deferrable={fraction: 0.5, deadline_s: 28800}",
            "carbon_aware={signal: solar, max_release_rate: 2.0}",
        ],
    );
    assert!(o.summary.held_requests.unwrap() > 1000);
    assert_eq!(o.summary.deadline_attainment, Some(1.0));
    // Solar output per run hour, from the microgrid table (its hours start at 10:00 UTC).
    let solar: Vec<f64> = o.microgrid.iter().map(|h| h.solar_kwh).collect();
    for r in o.rows.iter().filter(|r| r.held_s.is_some_and(|h| h > 0.0)) {
        let (from, to) = (
            ((r.arrival_s - r.held_s.unwrap()) / 3600.0) as usize,
            (r.arrival_s / 3600.0) as usize,
        );
        assert!(solar[to] > solar[from], "{from} -> {to}: {solar:?}");
    }
}

#[test]
fn the_written_request_table_carries_the_hold_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = simwatt(&[
        "simulate",
        "-c",
        CONFIG,
        "-o",
        out.to_str().unwrap(),
        "-q",
        "--no-trace",
        "--no-plots",
        "--set",
        "workload.requests=3000",
        "--set",
        "energy.start_time=2024-06-15T12:00:00Z",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mem = simulate(
        &root().join(CONFIG),
        &[
            "workload.requests=3000",
            "energy.start_time=2024-06-15T12:00:00Z",
        ],
    );
    let t = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let mut lines = t.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (ih, id, im) = (at("held_s"), at("deadline_s"), at("deadline_met"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), mem.rows.len());
    let mut held = 0;
    for (row, r) in rows.iter().zip(&mem.rows) {
        let num = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
        assert_eq!(num(row[ih]), r.held_s, "{row:?}");
        assert_eq!(num(row[id]), r.deadline_s, "{row:?}");
        let met = (!row[im].is_empty()).then(|| row[im] == "true");
        assert_eq!(met, r.deadline_met, "{row:?}");
        held += usize::from(r.held_s.is_some_and(|h| h > 0.0));
    }
    assert!(held > 100, "{held} held");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["held_requests"].as_u64(), Some(held as u64));
    assert_eq!(
        s["held_requests"].as_u64(),
        mem.summary.held_requests,
        "streamed and in-memory summaries agree"
    );
}

/// experiments/carbon-aware-day.yaml without holding: 40,000 requests from midnight UTC (20,000 s,
/// dirty and clean hours of CAISO's day), with or without a power limit following the intensity.
fn capped(cap: bool) -> RunOutcome {
    let mut o = vec![
        "workload.requests=40000",
        "workload.deferrable=null",
        "carbon_aware=null",
        "energy.start_time=2024-06-15T00:00:00Z",
        "energy.min_span_s=null",
    ];
    if cap {
        o.push(
            "carbon_power_cap={clean_w: 400, dirty_w: 200, clean_g_per_kwh: 100, dirty_g_per_kwh: 200}",
        );
    }
    simulate(&root().join(CONFIG), &o)
}

#[test]
fn a_power_limit_following_the_grid_lowers_carbon_and_holds_each_hour() {
    let free = capped(false);
    let cap = capped(true);
    // CAISO's intensity of the run's hours, from midnight UTC on 2024-06-15.
    let t = std::fs::read_to_string(root().join("regions/hourly/US-CAL-CISO_2024.csv")).unwrap();
    let first = t
        .lines()
        .position(|l| l.starts_with("2024-06-15T00:00:00Z"))
        .unwrap();
    let g: Vec<f64> = t
        .lines()
        .skip(first)
        .take(8)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let limit = |g: f64| -> f64 {
        if g <= 100.0 {
            400.0
        } else if g >= 200.0 {
            200.0
        } else {
            400.0 - 200.0 * (g - 100.0) / 100.0
        }
    };
    let b = &cap.result.batches;
    assert!(!b.start_ns.is_empty());
    let mut peak_by_hour = vec![0.0f64; 8];
    for (i, &s) in b.start_ns.iter().enumerate() {
        let hour = (s / 3_600_000_000_000) as usize;
        let w = b.power_w[i];
        assert!(
            w <= limit(g[hour]) + 1e-9,
            "a stage at {s} ns draws {w} W, above the hour's limit {} W ({} g/kWh)",
            limit(g[hour]),
            g[hour]
        );
        peak_by_hour[hour] = peak_by_hour[hour].max(w);
    }
    // The limit moves: some hour reaches above the dirtiest hour's limit.
    assert!(g.iter().any(|&x| x >= 200.0), "{g:?}");
    assert!(
        peak_by_hour.iter().any(|&w| w > 200.0 + 1.0),
        "{peak_by_hour:?}"
    );
    // Less busy energy and carbon, paid in time per output token.
    assert!(summary_f64(&cap, "busy_energy_j") < 0.95 * summary_f64(&free, "busy_energy_j"));
    assert!(summary_f64(&cap, "carbon_g") < summary_f64(&free, "carbon_g"));
    assert!(summary_f64(&cap, "tpot_mean_s") > summary_f64(&free, "tpot_mean_s"));
    assert_eq!(cap.summary.requests_completed, 40_000);
}
