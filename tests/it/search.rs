//! Capacity search: the highest request rate within an SLO, for a config and over a sweep.

use crate::common::*;
use std::path::Path;

/// Reads a CSV written by simwatt into (header, rows).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

fn cell<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    &row[header
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))]
}

#[test]
fn capacity_of_a_config_meets_the_slo_and_the_next_rate_up_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cap");
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "workload.requests=96",
        "--slo",
        "ttft_p90_s=0.5,itl_p99_s=0.2",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        report.contains("ttft_p90_s <= 0.5, itl_p99_s <= 0.2"),
        "{report}"
    );
    let (h, rows) = read_csv(&out.join("capacity.csv"));
    assert_eq!(rows.len(), 1);
    let cap: f64 = cell(&h, &rows[0], "capacity_rps").parse().unwrap();
    let fail: f64 = cell(&h, &rows[0], "first_fail_rps").parse().unwrap();
    assert_eq!(cell(&h, &rows[0], "search_outcome"), "found");
    assert!(cap < fail && fail - cap <= 0.02 * cap, "{cap} {fail}");
    // The rental cost: one A100 at the catalog's price, per 1,000 requests at capacity.
    let rental: f64 = cell(&h, &rows[0], "rental_usd_per_1k_requests")
        .parse()
        .unwrap();
    assert!((rental - 3.43 / (cap * 3.6)).abs() < 1e-9, "{rental}");
    // Simulating the two rates again, each with the number of requests that decided it: the capacity
    // meets both bounds, the first failing rate misses one (or was not confirmed in steady state).
    let (ph, probes) = read_csv(&out.join("probes.csv"));
    let requests_at = |rate: f64| -> u64 {
        let p = probes
            .iter()
            .find(|p| cell(&ph, p, "rate_rps").parse::<f64>().unwrap() == rate)
            .unwrap();
        cell(&ph, p, "requests").parse().unwrap()
    };
    assert_eq!(
        requests_at(cap),
        cell(&h, &rows[0], "requests_at_capacity")
            .parse::<u64>()
            .unwrap()
    );
    assert!(requests_at(cap) >= 96);
    let at = |rate: f64| {
        simulate(
            &quickstart(),
            &[
                &format!("workload.requests={}", requests_at(rate)),
                &format!("workload.arrival.rate={rate}"),
            ],
        )
        .summary
    };
    let s = at(cap);
    assert!(s.ttft().unwrap().p90 <= 0.5 && s.itl().unwrap().p99 <= 0.2);
    let s = at(fail);
    let steady = probes
        .iter()
        .find(|p| cell(&ph, p, "rate_rps").parse::<f64>().unwrap() == fail)
        .map(|p| cell(&ph, p, "steady") == "true")
        .unwrap();
    assert!(s.ttft().unwrap().p90 > 0.5 || s.itl().unwrap().p99 > 0.2 || !steady);
    let ttft: f64 = cell(&h, &rows[0], "ttft_p90_s_at_capacity")
        .parse()
        .unwrap();
    assert_eq!(ttft, at(cap).ttft().unwrap().p90);
    // Every probe is listed.
    assert_eq!(
        probes.len(),
        cell(&h, &rows[0], "probes").parse::<usize>().unwrap()
    );
    assert!(probes
        .iter()
        .any(|p| cell(&ph, p, "rate_rps").parse::<f64>().unwrap() == cap
            && cell(&ph, p, "meets_slo") == "true"));
    assert!(out.join("capacity.md").exists() && out.join("capacity.parquet").exists());
    // One configuration: a plot of one point, on its own front.
    assert_valid_png(&out.join("capacity_pareto.png"), 1200, 790);
    assert_valid_svg(
        &out.join("capacity_pareto.svg"),
        1200,
        790,
        &[
            "the config",
            "capacity: highest request rate meeting the SLO (req/s)",
        ],
    );
    let md = std::fs::read_to_string(out.join("capacity.md")).unwrap();
    assert!(md.contains("by capacity: the config."), "{md}");
    assert!(!md.contains("Left out"), "{md}");
}

/// The points of the capacity table not dominated on capacity (max), J per output token and the cost
/// column `cost` (min): the front the plot draws, recomputed here from capacity.csv.
fn front_from_csv(h: &[String], rows: &[Vec<String>], cost: &str) -> Vec<String> {
    let num = |r: &Vec<String>, c: &str| cell(h, r, c).parse::<f64>().ok();
    let pts: Vec<(String, [f64; 3])> = rows
        .iter()
        .filter_map(|r| {
            Some((
                cell(h, r, "point").to_string(),
                [
                    -num(r, "capacity_rps")?,
                    num(r, "j_per_output_token")?,
                    num(r, cost)?,
                ],
            ))
        })
        .collect();
    pts.iter()
        .filter(|(_, a)| {
            !pts.iter().any(|(_, b)| {
                b.iter().zip(a).all(|(x, y)| x <= y) && b.iter().zip(a).any(|(x, y)| x < y)
            })
        })
        .map(|(p, _)| p.clone())
        .collect()
}

#[test]
fn a_capacity_search_plots_its_pareto_front_the_same_every_time() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = tmp.path().join(name);
        let o = simwatt(&[
            "search",
            "capacity",
            "-c",
            "experiments/capacity-example.yaml",
            "--slo",
            "ttft_p90_s=0.5,itl_p99_s=0.2",
            "-o",
            out.to_str().unwrap(),
            "-q",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    let out = run("a");
    // Legend: the front, dominated points, the labels' axes.
    assert_valid_png(&out.join("capacity_pareto.png"), 1200, 850);
    let (h, rows) = read_csv(&out.join("capacity.csv"));
    let (cost, cost_label) = if h.iter().any(|c| c == "cost_usd_per_1k_requests") {
        ("cost_usd_per_1k_requests", "cost (USD per 1,000 requests)")
    } else {
        (
            "rental_usd_per_1k_requests",
            "GPU rental cost only (USD per 1,000 requests)",
        )
    };
    // A log axis when the capacities span more than 5x.
    let caps: Vec<f64> = rows
        .iter()
        .filter_map(|r| cell(&h, r, "capacity_rps").parse().ok())
        .collect();
    let spread = caps.iter().cloned().fold(f64::MIN, f64::max)
        / caps.iter().cloned().fold(f64::MAX, f64::min);
    let x_title = if spread > 5.0 {
        "capacity: highest request rate meeting the SLO (req/s, log scale)"
    } else {
        "capacity: highest request rate meeting the SLO (req/s)"
    };
    assert_valid_svg(
        &out.join("capacity_pareto.svg"),
        1200,
        850,
        &[
            "SLO: ttft_p90_s ≤ 0.5 s, itl_p99_s ≤ 0.2 s",
            x_title,
            "energy per output token at capacity (J/token)",
            cost_label,
            "sarathi, h100, 2",
            "points labelled: scheduler.policy, hardware.gpu, hardware.tensor_parallel",
        ],
    );
    // capacity.md links the plot and names its front: the points no other beats on capacity, J per
    // output token and cost at once.
    let md = std::fs::read_to_string(out.join("capacity.md")).unwrap();
    assert!(
        md.contains("![capacity_pareto](capacity_pareto.png)")
            && md.contains("[SVG](capacity_pareto.svg)"),
        "{md}"
    );
    assert!(md.contains("| energy per output token (J/token) |"), "{md}");
    let front = front_from_csv(&h, &rows, cost);
    assert!(!front.is_empty() && front.len() < rows.len(), "{front:?}");
    let line = md
        .lines()
        .find(|l| l.starts_with("Front of the plot"))
        .unwrap_or_else(|| panic!("{md}"));
    let named: Vec<&str> = line
        .split("point ")
        .skip(1)
        .map(|p| p.split(' ').next().unwrap())
        .collect();
    let mut sorted_named: Vec<&str> = named.clone();
    sorted_named.sort();
    assert_eq!(sorted_named, front, "{line}");
    // Joined by capacity: the named points in order of rising capacity.
    let cap = |p: &str| -> f64 {
        let r = rows.iter().find(|r| cell(&h, r, "point") == p).unwrap();
        cell(&h, r, "capacity_rps").parse().unwrap()
    };
    assert!(named.windows(2).all(|w| cap(w[0]) <= cap(w[1])), "{line}");
    // The same inputs give the same bytes.
    let again = run("b");
    for f in ["capacity_pareto.png", "capacity_pareto.svg", "capacity.md"] {
        assert!(
            std::fs::read(out.join(f)).unwrap() == std::fs::read(again.join(f)).unwrap(),
            "{f} differs between two identical searches"
        );
    }
}

#[test]
fn configurations_without_a_capacity_are_left_out_of_the_plot_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let search = |slo: &str, name: &str| {
        let out = tmp.path().join(name);
        let o = simwatt(&[
            "search",
            "capacity",
            "-c",
            "experiments/capacity-example.yaml",
            "--set",
            "workload.requests=48",
            "--slo",
            slo,
            "--min-rate",
            "1",
            "--max-probes",
            "8",
            "-o",
            out.to_str().unwrap(),
            "-q",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    // A tight TTFT bound that only some configurations meet at 1 req/s.
    let out = search("ttft_p90_s=0.07", "tight");
    let (h, rows) = read_csv(&out.join("capacity.csv"));
    let failed: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| cell(&h, r, "capacity_rps").is_empty())
        .collect();
    assert!(
        !failed.is_empty() && failed.len() < rows.len(),
        "the bound should split the configurations: {rows:?}"
    );
    let md = std::fs::read_to_string(out.join("capacity.md")).unwrap();
    assert!(md.contains("Left out of the plot:"), "{md}");
    for r in &failed {
        let point = format!("- point {} (", cell(&h, r, "point"));
        let line = md
            .lines()
            .find(|l| l.starts_with(&point))
            .unwrap_or_else(|| panic!("no `{point}` in {md}"));
        assert!(line.contains("below_min_rate"), "{line}");
    }
    assert!(out.join("capacity_pareto.png").exists());
    // A bound no configuration meets, searched into the same folder: no plot (the earlier one is
    // removed), and capacity.md says so.
    let out = search("ttft_p90_s=0.001", "tight");
    let md = std::fs::read_to_string(out.join("capacity.md")).unwrap();
    assert!(
        md.contains("No plot: no configuration has both a capacity"),
        "{md}"
    );
    assert!(!out.join("capacity_pareto.png").exists());
    assert!(!out.join("capacity_pareto.svg").exists());
}

#[test]
fn capacity_over_a_sweep_names_the_best_configurations_and_the_pareto_front() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cap");
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/capacity-example.yaml",
        "--slo",
        "ttft_p90_s=0.5,itl_p99_s=0.2",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8_lossy(&o.stdout).to_string();
    let (h, rows) = read_csv(&out.join("capacity.csv"));
    assert_eq!(rows.len(), 8);
    let caps: Vec<f64> = rows
        .iter()
        .map(|r| cell(&h, r, "capacity_rps").parse().unwrap())
        .collect();
    assert!(caps.iter().all(|c| *c > 0.0), "{caps:?}");
    assert!(rows.iter().any(|r| cell(&h, r, "pareto") == "true"));
    // The configuration with the highest capacity is never dominated.
    let best = (0..8).max_by(|a, b| caps[*a].total_cmp(&caps[*b])).unwrap();
    assert_eq!(cell(&h, &rows[best], "pareto"), "true");
    assert!(report.contains("- highest capacity: point"), "{report}");
    // Cost, energy and carbon come from the summary when it has them; otherwise the report says so
    // (and ranks by rental cost, labelled as such) instead of inventing numbers.
    let summary =
        serde_json::to_value(simulate(&quickstart(), &["workload.requests=8"]).summary).unwrap();
    for (metric, name, column) in [
        ("energy_j", "energy", "energy_j_per_request"),
        ("carbon_g", "carbon", "carbon_g_per_request"),
    ] {
        if summary.get(metric).is_some_and(|v| v.is_number()) {
            assert!(
                report.contains(&format!("- lowest {name} ({column}")),
                "{report}"
            );
            assert!(h.iter().any(|c| c == column), "{h:?}");
        } else {
            assert!(
                report.contains(&format!(
                    "- {name}: not ranked: the run summary has no `{metric}`"
                )),
                "{report}"
            );
            assert!(!h.iter().any(|c| c == column), "{h:?}");
        }
    }
    if !summary.get("cost_usd").is_some_and(|v| v.is_number()) {
        assert!(report.contains("cheapest by rental cost only"), "{report}");
    }
}

#[test]
fn ranking_by_a_metric_the_summary_lacks_is_refused() {
    let summary =
        serde_json::to_value(simulate(&quickstart(), &["workload.requests=8"]).summary).unwrap();
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/capacity-example.yaml",
        "--slo",
        "ttft_p90_s=0.5",
        "--objectives",
        "energy",
        "--max-probes",
        "4",
        "-q",
    ]);
    if summary.get("energy_j").is_some_and(|v| v.is_number()) {
        assert!(o.status.success(), "{}", stderr(&o));
    } else {
        assert_clean_failure(
            &o,
            &["--objectives", "energy_j", "cannot be ranked by energy"],
        );
    }
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--slo",
        "ttft_p90_s=0.5",
        "--objectives",
        "speed",
    ]);
    assert_clean_failure(&o, &["--objectives", "speed", "cost, energy or carbon"]);
}

#[test]
fn capacity_search_refuses_what_it_cannot_answer() {
    // The sweep already varies the rate.
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/sweep-example.yaml",
        "--slo",
        "ttft_p90_s=0.5",
    ]);
    assert_clean_failure(&o, &["sweep-example.yaml", "axes.workload.arrival.rate"]);
    // A metric the summary does not have.
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "workload.requests=8",
        "--slo",
        "ttft_p95_s=0.5",
    ]);
    assert_clean_failure(&o, &["--slo", "ttft_p95_s", "not a metric", "ttft_p90_s"]);
    // Arrivals without a rate.
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "workload.arrival={type: all_at_once}",
        "--slo",
        "ttft_p90_s=0.5",
    ]);
    assert_clean_failure(&o, &["workload.arrival.type", "all_at_once", "poisson"]);
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--slo",
        "ttft_p90_s",
    ]);
    assert_clean_failure(&o, &["--slo", "METRIC=BOUND"]);
}

#[test]
fn capacity_search_is_not_optimistic_on_short_runs() {
    // The shipped example (128 requests) against the same search started from 4,000 requests: each
    // configuration's capacity agrees within 10%, or the short search says it is unconfirmed.
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let mut args = vec![
            "search",
            "capacity",
            "-c",
            "experiments/capacity-example.yaml",
            "--slo",
            "ttft_p90_s=0.5,itl_p99_s=0.2",
            "-o",
            out.to_str().unwrap(),
            "-q",
        ];
        args.extend_from_slice(extra);
        let o = simwatt(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        read_csv(&out.join("capacity.csv"))
    };
    let (h, short) = run("short", &[]);
    let (hl, long) = run("long", &["--set", "workload.requests=4000"]);
    assert_eq!(short.len(), 8);
    for (s, l) in short.iter().zip(&long) {
        let c = |h: &[String], r: &[String]| cell(h, r, "capacity_rps").parse::<f64>().unwrap();
        let (cs, cl) = (c(&h, s), c(&hl, l));
        let note = cell(&h, s, "steady_state");
        assert!(
            (cs / cl - 1.0).abs() <= 0.10 || note.starts_with("unconfirmed"),
            "point {}: {cs} req/s from 128 requests, {cl} from 4,000 ({note})",
            cell(&h, s, "point")
        );
        // A capacity found from 128 requests was confirmed on longer runs.
        assert!(cell(&h, s, "requests_at_capacity").parse::<u64>().unwrap() >= 256);
    }
}

#[test]
fn capacity_search_says_when_max_requests_was_too_few_to_confirm_a_rate() {
    // With no room to lengthen runs, no rate that meets the SLO can be confirmed in steady state.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cap");
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "workload.requests=128",
        "--max-requests",
        "128",
        "--slo",
        "ttft_p90_s=0.5,itl_p99_s=0.2",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = read_csv(&out.join("capacity.csv"));
    assert_eq!(cell(&h, &rows[0], "capacity_rps"), "");
    assert_eq!(cell(&h, &rows[0], "search_outcome"), "below_min_rate");
    assert!(cell(&h, &rows[0], "steady_state").starts_with("unconfirmed"));
    assert!(stderr(&o).contains("too few requests"), "{}", stderr(&o));
    let (ph, probes) = read_csv(&out.join("probes.csv"));
    assert!(probes.iter().all(|p| cell(&ph, p, "meets_slo") == "false"));
    // And a maximum below the config's own request count is refused.
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--max-requests",
        "100",
        "--slo",
        "ttft_p90_s=0.5",
    ]);
    assert_clean_failure(&o, &["--max-requests", "100", "workload.requests (512)"]);
}

#[test]
fn a_lower_bound_on_slo_attainment_finds_the_goodput_rate() {
    // DistServe's goodput: the highest rate at which 90% of requests meet the per-request SLO. The
    // capacity's probe keeps the bound and the first failing rate's probe misses it (or was not
    // confirmed in steady state).
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cap");
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "workload.requests=96",
        "--set",
        "slo.ttft_s=0.3",
        "--set",
        "slo.tpot_s=0.05",
        "--slo",
        "slo_attainment>=0.9",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(report.contains("slo_attainment >= 0.9"), "{report}");
    let (h, rows) = read_csv(&out.join("capacity.csv"));
    assert_eq!(cell(&h, &rows[0], "search_outcome"), "found");
    let cap: f64 = cell(&h, &rows[0], "capacity_rps").parse().unwrap();
    let fail: f64 = cell(&h, &rows[0], "first_fail_rps").parse().unwrap();
    assert!(cap < fail, "{cap} {fail}");
    let (ph, probes) = read_csv(&out.join("probes.csv"));
    let mut seen = (false, false);
    for p in &probes {
        let rate: f64 = cell(&ph, p, "rate_rps").parse().unwrap();
        let a: f64 = cell(&ph, p, "slo_attainment").parse().unwrap();
        let meets = cell(&ph, p, "meets_slo") == "true";
        assert!(!meets || a >= 0.9, "rate {rate}: attainment {a} passed");
        if rate == cap {
            assert!(meets && a >= 0.9, "capacity {rate}: attainment {a}");
            seen.0 = true;
        }
        if rate == fail {
            assert!(
                a < 0.9 || cell(&ph, p, "steady") != "true",
                "first fail {rate}: {a}"
            );
            seen.1 = true;
        }
    }
    assert_eq!(seen, (true, true));
    // Without a per-request SLO in the config, the bound is refused rather than failing every rate.
    let o = simwatt(&[
        "search",
        "capacity",
        "-c",
        "experiments/quickstart.yaml",
        "--slo",
        "slo_attainment>=0.9",
        "-o",
        tmp.path().join("none").to_str().unwrap(),
        "-q",
    ]);
    assert_clean_failure(&o, &["slo_attainment", "per-request SLO", "slo.ttft_s"]);
}
