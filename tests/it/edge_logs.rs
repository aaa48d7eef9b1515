//! `simwatt validate` and `fit power` on measured runs whose power log is an edge or desktop device's
//! own log (SmartWatts CSV, tegrastats, PDU snmpget lines): the same known run as `validate.rs`'s
//! vLLM-protocol run gives the same measured numbers, what to read from the log comes from the measured
//! spec or the manifest source, and a malformed log fails the command naming file, line and value.

use crate::common::*;
use crate::validate::CONFIG;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Four requests from t = 1000 s, active window [1000, 1004] s, 100 output tokens.
const REQUESTS: &str = "timestamp,prompt_tokens,completion_tokens,latency,ttft\n\
1000.0,100,10,1.0,0.1\n\
1000.5,200,20,1.5,0.2\n\
1001.0,300,30,2.0,0.3\n\
1001.5,400,40,2.5,0.4\n";

/// Power every 0.5 s from 990 to 1006 s: 60 W, but 250 W for the readings covering (1000, 1004].
fn watts(t: f64) -> f64 {
    if t > 1000.0 && t <= 1004.0 {
        250.0
    } else {
        60.0
    }
}

fn times() -> impl Iterator<Item = f64> {
    (0..=32).map(|k| 990.0 + 0.5 * k as f64)
}

/// The run with SmartWatts' reports: the package (`rapl`) split over two sockets, and a container.
fn smartwatts_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    write(&run, "requests.csv", REQUESTS);
    let mut p = String::from("timestamp,sensor,target,power,socket\n");
    for t in times() {
        let ms = (t * 1e3) as u64;
        let w = watts(t);
        p.push_str(&format!(
            "{ms},hwpc,rapl,{},0\n{ms},hwpc,rapl,{},1\n",
            w * 0.6,
            w * 0.4
        ));
        p.push_str(&format!("{ms},hwpc,vllm,{},0\n", w * 0.5));
    }
    write(&run, "PowerReport.csv", &p);
    run
}

fn validate(tmp: &Path, measured: &Path) -> (std::process::Output, PathBuf) {
    let cfg = write(tmp, "cfg.yaml", CONFIG);
    let out = tmp.join("out");
    let o = simwatt(&[
        "validate",
        "--config",
        cfg.to_str().unwrap(),
        "--measured",
        measured.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--force",
        "--quiet",
    ]);
    (o, out)
}

fn measured(out: &Path, name: &str) -> f64 {
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("validation.json")).unwrap())
            .unwrap();
    j["points"][0]["metrics"][name]["measured"]
        .as_f64()
        .unwrap_or_else(|| panic!("{name} missing in {j}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + b.abs())
}

#[test]
fn validate_reads_a_smartwatts_run_with_the_target_named_in_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let run = smartwatts_run(tmp.path());
    // Two targets and none named: a clear error.
    let (o, _) = validate(tmp.path(), &run);
    assert_clean_failure(
        &o,
        &["PowerReport.csv", "several targets", "rapl, vllm", "target"],
    );
    let spec = write(
        tmp.path(),
        "measured.yaml",
        &format!("format: run\npath: {}\ntarget: rapl\n", run.display()),
    );
    let (o, out) = validate(tmp.path(), &spec);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The two sockets summed: as the vLLM-protocol run of the same numbers.
    assert!(close(measured(&out, "mean_power_w"), 250.0));
    assert!(close(measured(&out, "energy_j"), 1000.0));
    assert!(close(measured(&out, "idle_power_w"), 60.0));
    assert!(close(measured(&out, "j_per_output_token"), 10.0));
    // A field no log reads is refused, naming it.
    let bad = write(
        tmp.path(),
        "measured.yaml",
        &format!("format: run\npath: {}\ntargett: rapl\n", run.display()),
    );
    let (o, _) = validate(tmp.path(), &bad);
    assert_clean_failure(&o, &["measured.yaml", "targett"]);
}

#[test]
fn validate_reads_an_untimed_tegrastats_log_placed_by_its_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    write(&run, "requests.csv", REQUESTS);
    let mut log = String::new();
    for t in times() {
        let mw = (watts(t) * 1e3) as u64;
        log.push_str(&format!(
            "RAM 1766/3964MB (lfb 197x4MB) SWAP 0/2048MB (cached 0MB) CPU [24%@1224,15%@1224] \
             EMC_FREQ 0% GR3D_FREQ 0% GPU@23.5C POM_5V_IN {mw}/{mw} POM_5V_GPU 0/0\n"
        ));
    }
    write(&run, "tegrastats.log", &log);
    // Without its interval and start, the log cannot be placed.
    let (o, _) = validate(tmp.path(), &run);
    assert_clean_failure(
        &o,
        &["tegrastats.log", "line 1", "interval_ms", "log_start"],
    );
    let spec = write(
        tmp.path(),
        "measured.yaml",
        &format!(
            "format: run\npath: {}\ninterval_ms: 500\nlog_start: \"990\"\n",
            run.display()
        ),
    );
    let (o, out) = validate(tmp.path(), &spec);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(close(measured(&out, "mean_power_w"), 250.0));
    assert!(close(measured(&out, "energy_j"), 1000.0));
    assert!(close(measured(&out, "idle_power_w"), 60.0));
}

/// A manifest with one `pdu` source over `log` and a request log on the same epoch clock.
fn pdu_manifest(dir: &Path, log: &str, outlets: &str) -> PathBuf {
    write(dir, "pdu.log", log);
    write(
        dir,
        "req.csv",
        "request_timestamp_epoch_s,input_len_tokens,output_len_tokens\n1000,100,10\n1001,200,20\n",
    );
    write(
        dir,
        "m.yaml",
        &format!(
            "gpu: a100\nsources:\n  - name: rack\n    format: pdu\n    path: pdu.log\n    requests: req.csv\n    \
             outlets: {outlets}\n    model: meta-llama/Llama-2-7b-hf\n    max_num_seqs: 8\n    device: a100\n"
        ),
    )
}

#[test]
fn fit_power_replays_a_pdu_source_with_the_outlets_summed() {
    let tmp = tempfile::tempdir().unwrap();
    // Outlets 3 and 4 polled once a second from 998 to 1004 s: 100 + 50 W, 300 + 200 W while busy.
    let mut log = String::new();
    for t in 998..=1004 {
        let (a, b) = if (1000..=1002).contains(&t) {
            (300, 200)
        } else {
            (100, 50)
        };
        log.push_str(&format!(
            "{t} PowerNet-MIB::rPDU2OutletMeteredStatusPower.3 = INTEGER: {a}\n\
             {t} PowerNet-MIB::rPDU2OutletMeteredStatusPower.4 = INTEGER: {b}\n"
        ));
    }
    let m = pdu_manifest(tmp.path(), &log, "[\"3\", \"4\"]");
    let manifest = simwatt::measured::manifest::Manifest::load(&m).unwrap();
    let loaded = simwatt::drivers::fit_power::replay::load_observations(&m, &manifest).unwrap();
    assert_eq!(loaded.observations.len(), 1);
    let o = &loaded.observations[0];
    // Seven one-second readings: four at 150 W, three at 500 W.
    assert_eq!(o.windows.len(), 7);
    let j: f64 = o.windows.iter().map(|w| w.measured_j).sum();
    assert!(close(j, 4.0 * 150.0 + 3.0 * 500.0), "{j}");
    // A reading that is not a number fails the fit, naming the file, the line and the value.
    let bad = log.replacen("INTEGER: 300", "INTEGER: 3OO", 1);
    let m = pdu_manifest(tmp.path(), &bad, "[\"3\", \"4\"]");
    let out = tmp.path().join("p.yaml");
    let o = simwatt(&[
        "fit",
        "power",
        "--gpu",
        "a100",
        "--data",
        m.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["pdu.log", "line 5", "3OO"]);
    assert!(!out.exists());
}
