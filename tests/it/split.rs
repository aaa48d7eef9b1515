//! The edge/cloud split point (`simwatt split`, docs/edge.md): w* at or above every output leaves the
//! server idle and equals the device run alone; w* = 0 puts nothing on the device; device energy grows
//! with w* while the server's requests fall; the optimum is the table's argmin; bad flags are named.

use crate::common::*;
use simwatt::drivers::split::{self, Network, SplitRow};

const DEVICE: &str = "experiments/jetson-battery.yaml";
const SERVER: &str = "experiments/split-server.yaml";

fn sweep(tokens: &[u32]) -> Vec<SplitRow> {
    sweep_device(DEVICE, &[], tokens)
}

/// The sweep with `device` as the device config, the server's config overridden by `server_set`.
fn sweep_device(device: &str, server_set: &[&str], tokens: &[u32]) -> Vec<SplitRow> {
    let c = caches();
    let device = split::load(
        "--device",
        &root().join(device),
        &["workload.requests=12".to_string()],
        c,
    )
    .unwrap();
    let server_set: Vec<String> = server_set.iter().map(|s| s.to_string()).collect();
    let server = split::load("--server", &root().join(SERVER), &server_set, c).unwrap();
    split::sweep(&device, &server, tokens, &Network::default(), &c.tables).unwrap()
}

#[test]
fn all_on_the_device_leaves_the_server_idle_and_equals_the_device_run() {
    // Outputs are at most 256 tokens in the device config.
    let rows = sweep(&[256, 1000]);
    let alone = simulate(&root().join(DEVICE), &["workload.requests=12"]);
    let e = &alone.summary.energy;
    let device_j = e.energy_j.unwrap() + e.host_energy_j.unwrap();
    for r in &rows {
        assert_eq!(r.server_requests, 0);
        assert_eq!(r.server_energy_j, 0.0);
        assert_eq!(r.radio_energy_j, 0.0);
        assert_eq!(r.server_output_tokens, 0);
        assert_eq!(r.device_output_tokens, alone.summary.output_tokens);
        let rel = (r.device_energy_j - device_j).abs() / device_j;
        assert!(rel < 1e-9, "{} vs {device_j}", r.device_energy_j);
        assert_eq!(r.total_energy_j, r.device_energy_j);
        assert_eq!(r.battery_drain_fraction, e.battery_drain_fraction);
        let e2e = alone.summary.latency.e2e_mean_s.unwrap();
        assert!(
            (r.e2e_mean_s - e2e).abs() < 1e-9,
            "{} vs {e2e}",
            r.e2e_mean_s
        );
    }
}

#[test]
fn nothing_on_the_device_at_zero() {
    let r = &sweep(&[0])[0];
    assert_eq!(r.device_output_tokens, 0);
    assert_eq!(r.device_energy_j, 0.0);
    assert_eq!(r.battery_drain_fraction, Some(0.0));
    assert_eq!(r.server_requests, r.requests);
    assert!(r.server_energy_j > 0.0 && r.radio_energy_j > 0.0);
}

#[test]
fn device_energy_grows_with_w_while_server_requests_fall() {
    let rows = sweep(&[0, 16, 64, 128, 256]);
    for p in rows.windows(2) {
        assert!(
            p[1].device_energy_j > p[0].device_energy_j,
            "{} -> {}",
            p[0].w_tokens,
            p[1].w_tokens
        );
        assert!(p[1].device_busy_energy_j > p[0].device_busy_energy_j);
        assert!(p[1].server_requests <= p[0].server_requests);
        assert!(p[1].server_output_tokens < p[0].server_output_tokens);
        // Every output token is generated once, on one side or the other.
        assert_eq!(
            p[1].device_output_tokens + p[1].server_output_tokens,
            p[0].device_output_tokens + p[0].server_output_tokens
        );
    }
    assert!(rows.last().unwrap().server_requests < rows[0].server_requests);
}

#[test]
fn optimum_is_the_argmin_of_total_energy() {
    let rows = sweep(&[0, 32, 128, 256]);
    let opt = split::optimum(&rows).unwrap();
    let best = rows
        .iter()
        .min_by(|a, b| a.total_energy_j.total_cmp(&b.total_energy_j))
        .unwrap();
    assert_eq!(opt.lowest_total_energy_tokens, best.w_tokens);
    let fastest = rows
        .iter()
        .min_by(|a, b| a.e2e_mean_s.total_cmp(&b.e2e_mean_s))
        .unwrap();
    assert_eq!(opt.lowest_e2e_mean_tokens, fastest.w_tokens);
    assert_eq!(opt.lowest_device_energy_tokens, 0);
    let csv = split::csv(&rows, &opt);
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("{},", best.w_tokens)))
        .unwrap();
    assert!(line.contains("total_energy"), "{line}");
}

#[test]
fn the_command_writes_its_folder_and_names_bad_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("split");
    let out_s = out.to_str().unwrap();
    let base = [
        "split",
        "--device",
        DEVICE,
        "--server",
        SERVER,
        "--set",
        "workload.requests=6",
        "--out",
        out_s,
    ];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        simwatt(&a)
    };
    let ok = run(&["--tokens", "0,64"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    for f in ["split.csv", "split.json", "split.png", "split.svg"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let text = std::fs::read_to_string(out.join("split.csv")).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    // The folder exists: refused without --force, replaced with it.
    assert_clean_failure(&run(&["--tokens", "0,64"]), &[out_s]);
    assert!(run(&["--tokens", "0,64", "--force"]).status.success());
    for (flag, value) in [
        ("--tokens", ""),
        ("--tokens", "a,b"),
        ("--bandwidth-mb-s", "-5"),
        ("--rtt-ms", "nan"),
    ] {
        let mut extra = vec!["--force"];
        if flag != "--tokens" {
            extra.extend(["--tokens", "0,64"]);
        }
        extra.extend([flag, value]);
        assert_clean_failure(&run(&extra), &[flag]);
    }
    let missing = simwatt(&[
        "split",
        "--device",
        "nope.yaml",
        "--server",
        SERVER,
        "--tokens",
        "0",
        "--out",
        out_s,
        "--force",
    ]);
    assert_clean_failure(&missing, &["--device", "nope.yaml"]);
}

#[test]
fn a_device_with_partial_offload_counts_its_host_cpu() {
    // All on a desktop whose GPU runs part of the model (llama.cpp -ngl): the device's energy is its
    // run's GPU, host and host CPU energy together.
    const OFFLOAD: &str = "experiments/llama-cpp-offload-3060.yaml";
    let rows = sweep_device(OFFLOAD, &["model=meta-llama/Llama-2-7b-hf"], &[100_000]);
    let alone = simulate(&root().join(OFFLOAD), &["workload.requests=12"]);
    let e = &alone.summary.energy;
    let cpu = e.host_cpu_energy_j.expect("host CPU energy");
    assert!(cpu > 0.0);
    let device_j = e.energy_j.unwrap() + e.host_energy_j.unwrap() + cpu;
    let r = &rows[0];
    assert_eq!(r.server_requests, 0);
    let rel = (r.device_energy_j - device_j).abs() / device_j;
    assert!(rel < 1e-9, "{} vs {device_j}", r.device_energy_j);
}
