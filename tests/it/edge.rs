//! Edge devices (`edge`, docs/edge.md): a battery's runtime is its usable energy over the run's mean
//! power; a device's temperature approaches ambient + P x R_th; throttling above the limit lowers both
//! power and speed; the energy-delay products follow their definitions; a Jetson power mode's memory
//! clock slows memory-bound decode by its ratio.

use crate::common::*;
use simwatt::drivers::simulate::RunOutcome;

const CONFIG: &str = "experiments/jetson-battery.yaml";

fn run(extra: &[&str]) -> RunOutcome {
    simulate(&root().join(CONFIG), extra)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[test]
fn battery_runtime_is_usable_energy_over_mean_power() {
    let o = run(&["workload.requests=200"]);
    let usable = summary_f64(&o, "battery_usable_wh");
    assert!(close(usable, 99.0 * 0.9 * 0.9, 1e-12), "{usable}");
    // The pack feeds the GPU (here the whole module) and the host.
    let drawn_j = summary_f64(&o, "energy_j") + summary_f64(&o, "host_energy_j");
    let span_s = span(&o);
    let mean_w = drawn_j / span_s;
    let runtime_h = summary_f64(&o, "battery_runtime_h");
    assert!(
        close(runtime_h, usable / mean_w, 1e-9),
        "runtime {runtime_h} h, usable {usable} Wh, mean {mean_w} W"
    );
    let drain = summary_f64(&o, "battery_drain_fraction");
    assert!(close(drain, drawn_j / 3600.0 / usable, 1e-9), "{drain}");
    // Drain x runtime is the span: the run drew its share of the pack in its own duration.
    assert!(close(drain * runtime_h * 3600.0, span_s, 1e-9));
    // Twice the pack lasts twice as long and is drained half as much by the same run.
    let big = run(&["workload.requests=200", "edge.battery.capacity_wh=198"]);
    assert!(close(
        summary_f64(&big, "battery_runtime_h"),
        2.0 * runtime_h,
        1e-9
    ));
    assert!(close(
        summary_f64(&big, "battery_drain_fraction"),
        drain / 2.0,
        1e-9
    ));
    // Without an edge section none of the figures appears.
    let none = run(&["workload.requests=200", "edge=null"]);
    for k in [
        "battery_usable_wh",
        "battery_runtime_h",
        "max_temperature_c",
        "throttled_s",
    ] {
        let v = serde_json::to_value(&none.summary).unwrap();
        assert!(v[k].is_null(), "{k}: {}", v[k]);
    }
}

/// The span the energy figures cover: GPU energy over its mean power.
fn span(o: &RunOutcome) -> f64 {
    summary_f64(o, "energy_j") / summary_f64(o, "avg_power_w")
}

#[test]
fn temperature_approaches_ambient_plus_power_times_resistance() {
    // A saturated device (a long backlog at once) for many time constants, no throttling: its peak
    // temperature is the steady one at its busy power, which the power table gives.
    let o = run(&[
        "workload.requests=400",
        "workload.arrival.rate=1000",
        "workload.lengths.output=[400,400]",
        "edge.thermal.tau_s=2",
        "edge.thermal.throttle_c=200",
    ]);
    let busy_w = summary_f64(&o, "busy_energy_j") / busy_s(&o);
    let peak = summary_f64(&o, "max_temperature_c");
    let steady = 25.0 + busy_w * 1.2;
    assert!(
        close(peak - 25.0, steady - 25.0, 0.08),
        "peak {peak} C, ambient + P x R_th = {steady} C at {busy_w} W"
    );
    assert_eq!(summary_f64(&o, "throttled_s"), 0.0);
    // A time constant far longer than the run: the device barely warms.
    let slow = run(&[
        "workload.requests=50",
        "workload.arrival.rate=1000",
        "edge.thermal.tau_s=1000000",
    ]);
    let rise = summary_f64(&slow, "max_temperature_c") - 25.0;
    let bound = (summary_f64(&slow, "energy_j") / 1e6) * 1.2 * 1.01;
    assert!(
        rise > 0.0 && rise <= bound,
        "rise {rise} C, bound {bound} C"
    );
}

/// The time the device spent running stages (GPU work and host wait), seconds.
fn busy_s(o: &RunOutcome) -> f64 {
    o.result.group_busy_ns.iter().map(|&n| n as f64 / 1e9).sum()
}

#[test]
fn throttling_lowers_power_and_speed() {
    let base = [
        "workload.requests=300",
        "workload.arrival.rate=1000",
        "edge.thermal.tau_s=5",
    ];
    let cool = run(&[&base[..], &["edge.thermal.throttle_c=200"]].concat());
    let hot = run(&[&base[..], &["edge.thermal.throttle_c=40"]].concat());
    assert_eq!(summary_f64(&cool, "throttled_s"), 0.0);
    let throttled = summary_f64(&hot, "throttled_s");
    assert!(
        throttled > 0.5 * summary_f64(&hot, "makespan_s"),
        "{throttled} s"
    );
    // Slower: a longer makespan, fewer tokens per second, a longer time per output token. Only a
    // little: the throttle lowers the SM clock, and decode is bound by memory bandwidth.
    assert!(summary_f64(&hot, "makespan_s") > 1.02 * summary_f64(&cool, "makespan_s"));
    assert!(
        summary_f64(&hot, "output_tokens_per_s") < 0.98 * summary_f64(&cool, "output_tokens_per_s")
    );
    assert!(summary_f64(&hot, "tpot_mean_s") > summary_f64(&cool, "tpot_mean_s"));
    // Lower power while busy, and a cooler peak.
    let busy_w = |o: &RunOutcome| summary_f64(o, "busy_energy_j") / busy_s(o);
    assert!(
        busy_w(&hot) < 0.95 * busy_w(&cool),
        "busy power throttled {} W, not {} W",
        busy_w(&hot),
        busy_w(&cool)
    );
    assert!(summary_f64(&hot, "max_temperature_c") < summary_f64(&cool, "max_temperature_c"));
    // Hysteresis: it cycles around the limit, not far above it.
    assert!(summary_f64(&hot, "max_temperature_c") < 40.0 + 10.0);
}

#[test]
fn energy_delay_products_follow_their_definitions() {
    let o = run(&["workload.requests=100"]);
    let (jr, e2e) = (
        summary_f64(&o, "j_per_request"),
        summary_f64(&o, "e2e_mean_s"),
    );
    assert!(close(summary_f64(&o, "edp_j_s"), jr * e2e, 1e-12));
    assert!(close(summary_f64(&o, "ed2p_j_s2"), jr * e2e * e2e, 1e-12));
    let (jt, tpot) = (
        summary_f64(&o, "j_per_output_token"),
        summary_f64(&o, "tpot_mean_s"),
    );
    assert!(close(summary_f64(&o, "token_edp_j_s"), jt * tpot, 1e-12));
}

/// The Orin Nano Super example (one user, Llama 3.2 3B in 4-bit weights: decode bound by memory
/// bandwidth) in `mode`.
fn nano(mode: &str) -> RunOutcome {
    simulate(
        &root().join("experiments/jetson-nano-modes.yaml"),
        &[
            "workload.requests=12",
            &format!("hardware.power_mode={mode}"),
        ],
    )
}

#[test]
fn a_power_modes_memory_clock_slows_memory_bound_decode_by_its_ratio() {
    let maxn = nano("MAXN_SUPER");
    let m25 = nano("25W");
    let m15 = nano("15W");
    // 15W caps the memory clock at 2133 of 3199 MHz: decode, bound by memory bandwidth, takes about
    // 3199 / 2133 = 1.50 times as long per token (a little less: the host's share is not stretched).
    let emc_ratio = 3199.0 / 2133.0;
    let slower = summary_f64(&m15, "tpot_mean_s") / summary_f64(&maxn, "tpot_mean_s");
    assert!(
        slower > 0.95 * emc_ratio && slower <= emc_ratio * 1.02,
        "15W decode {slower}x MAXN_SUPER's, memory clock ratio {emc_ratio}"
    );
    // 25W keeps the full memory clock and caps only the GPU clock (918 of 1020 MHz): decode barely
    // slows, as it did when only the SM clock was modelled.
    let slower25 = summary_f64(&m25, "tpot_mean_s") / summary_f64(&maxn, "tpot_mean_s");
    assert!(
        (1.0..1.03).contains(&slower25),
        "25W decode {slower25}x MAXN_SUPER's"
    );
    // The lower memory clock lowers the busy power too (the same bytes move over a longer time).
    let busy_w = |o: &RunOutcome| summary_f64(o, "busy_energy_j") / busy_s(o);
    assert!(
        busy_w(&m15) < 0.8 * busy_w(&maxn),
        "busy power 15W {} W, MAXN_SUPER {} W",
        busy_w(&m15),
        busy_w(&maxn)
    );
    // The run records the mode and the memory-clock fraction it ran under.
    assert!((m15.scenario.hardware.memory_clock - 2133.0 / 3199.0).abs() < 1e-12);
    assert!((m15.scenario.hardware.clock_limit - 612.0 / 1020.0).abs() < 1e-12);
    assert_eq!(maxn.scenario.hardware.memory_clock, 1.0);
    assert_eq!(
        m15.scenario.power_mode().map(|m| m.power_budget_w),
        Some(Some(15.0))
    );
}
