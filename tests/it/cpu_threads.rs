//! `hardware.threads` on a CPU device (docs/edge.md, "CPU threads, calibrated on llama.cpp"): the
//! i9-13900K of the shipped catalog against the published llama.cpp figures it was calibrated on, and
//! the default (no threads) unchanged.

use crate::common::*;
use simwatt::catalog::Catalog;

fn config() -> std::path::PathBuf {
    shipped_config("experiments/llama-cpp-13900k.yaml")
}

/// (threads, published tg128 tok/s, published pp512 tok/s, the documented bound on the error of
/// each): llama.cpp issue #34, slaren, 2023-08-12. The 4-, 8- and 16-thread rows were fitted, 24 and 32
/// held out; the bounds are the errors of scripts/cpu_threads.sh's table (docs/edge.md), rounded up.
const PUBLISHED: [(u32, f64, f64, f64, f64); 5] = [
    (4, 12.65, 22.44, 0.01, 0.09),
    (8, 18.27, 33.67, 0.01, 0.23),
    (16, 15.66, 36.73, 0.01, 0.11),
    (24, 16.71, 47.04, 0.10, 0.05),
    (32, 15.88, 55.21, 0.16, 0.19),
];

/// The calibrated i9-13900K decodes (tg128) and prefills (pp512) within the documented error of the
/// published rates at every published thread count. Reads the shipped catalog and config: a missing
/// entry fails the test.
#[test]
fn calibrated_13900k_matches_the_published_llama_cpp_rates() {
    let c = Catalog::builtin().unwrap();
    let (_, d) = c
        .device("i9-13900k")
        .expect("i9-13900k in the device catalog");
    let cpu = d.cpu.as_ref().expect("i9-13900k has a cpu topology");
    assert!(cpu.p_core_bandwidth_gb_s.is_some() && cpu.e_core_bandwidth_gb_s.is_some());
    for (t, tg, pp, tg_err, pp_err) in PUBLISHED {
        let threads = format!("hardware.threads={t}");
        let sim_tg = llama_bench_tg128(&config(), &[&threads]);
        let sim_pp = llama_bench_pp512(&config(), &[&threads]);
        let (e_tg, e_pp) = ((sim_tg - tg) / tg, (sim_pp - pp) / pp);
        assert!(
            e_tg.abs() <= tg_err,
            "{t} threads: tg128 {sim_tg:.2} against {tg} ({e_tg:+.3})"
        );
        assert!(
            e_pp.abs() <= pp_err,
            "{t} threads: pp512 {sim_pp:.2} against {pp} ({e_pp:+.3})"
        );
    }
}

/// Decode slows down when E-cores join (the equal split waits on them), as published: 16 threads
/// decode slower than 8.
#[test]
fn e_cores_joining_slow_decode_down() {
    let tpot = |t: u32| {
        summary_f64(
            &simulate(&config(), &[&format!("hardware.threads={t}")]),
            "tpot_mean_s",
        )
    };
    assert!(tpot(16) > tpot(8) * 1.1);
    assert!(tpot(8) < tpot(4));
}

/// Without `hardware.threads` the device is priced at its full peaks, as before the knob: all 32
/// threads' split peak is lower than the catalog's sum, so setting them changes the run, and leaving
/// the knob out gives the run with no thread model at all.
#[test]
fn no_threads_is_the_device_at_its_full_peaks() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(config())
        .unwrap()
        .replace(", threads: 8 }", " }");
    assert!(!text.contains("threads:"));
    let cfg = write(tmp.path(), "c.yaml", &text);
    let o = simulate(&cfg, &[]);
    assert_eq!(o.scenario.device.peak_tflops, 2.48);
    assert_eq!(o.scenario.device.memory_bandwidth_gb_s, 102.4);
    let o32 = simulate(&cfg, &["hardware.threads=32"]);
    assert!(o32.scenario.device.peak_tflops < 2.48);
}

/// The power model reads utilisation against the whole chip: a backlog of prompts on 4 threads draws
/// less than on 24, and each within the package's power limit.
#[test]
fn few_threads_draw_less_than_all_of_them() {
    let power = |t: u32| {
        let o = simulate(
            &config(),
            &[
                &format!("hardware.threads={t}"),
                "workload.arrival.rate=1000",
                "workload.lengths={type: fixed, prompt: 512, output: 1}",
            ],
        );
        summary_f64(&o, "avg_power_w")
    };
    let (p4, p24) = (power(4), power(24));
    assert!(p4 < p24, "{p4} W on 4 threads, {p24} W on 24");
    assert!(p24 <= 253.0, "{p24} W");
}

/// The i5-13600K's threads, priced by the i9-13900K's transferred per-thread bandwidths (its catalog
/// cpu block): 6 threads take the 6 P-cores, 6 x 32 x 5.1 = 979.2 GFLOP/s, and min(89.6, 6 x 17.7 =
/// 106.2) = 89.6 GB/s, the DRAM's; 14 threads add the 8 E-cores, and the equal split runs every thread
/// at an E-core's 16 x 3.9 = 62.4 GFLOP/s and 5.49 GB/s: 873.6 GFLOP/s and 76.86 GB/s. All 20
/// threads (the P-cores' second threads at half a P-core each, faster than an E-core) run at the
/// E-core pace too: 1,248 GFLOP/s and min(89.6, 109.8) = 89.6 GB/s.
#[test]
fn i5_13600k_threads_split_as_the_i9s_calibration_says() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("experiments/tiny-llama-cpu.yaml")).unwrap();
    let cfg = write(tmp.path(), "c.yaml", &text);
    for (threads, gflops, gb_s) in [(6, 979.2, 89.6), (14, 873.6, 76.86), (20, 1_248.0, 89.6)] {
        let o = simulate(&cfg, &[&format!("hardware.threads={threads}")]);
        let d = &o.scenario.device;
        assert!(
            (d.peak_tflops * 1e3 - gflops).abs() < 1e-6,
            "{threads} threads: {} GFLOP/s",
            d.peak_tflops * 1e3
        );
        assert!(
            (d.memory_bandwidth_gb_s - gb_s).abs() < 1e-9,
            "{threads} threads: {} GB/s",
            d.memory_bandwidth_gb_s
        );
        assert_eq!(o.summary.requests_completed, o.summary.requests_total);
    }
    let c = Catalog::builtin().unwrap();
    let (_, i5) = c.device("i5-13600k").unwrap();
    let (_, i9) = c.device("i9-13900k").unwrap();
    let (a, b) = (i5.cpu.as_ref().unwrap(), i9.cpu.as_ref().unwrap());
    assert_eq!(a.p_core_bandwidth_gb_s, b.p_core_bandwidth_gb_s);
    assert_eq!(a.e_core_bandwidth_gb_s, b.e_core_bandwidth_gb_s);
}
