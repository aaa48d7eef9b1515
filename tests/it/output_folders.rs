//! Run folders and `--force` (nothing the run reads or did not write is ever deleted) and messages
//! about the output path (issue 17).

use crate::common::*;
use std::path::Path;
use std::process::Output;

/// `simulate` of the quick start cut to `requests`, into `out`, from `dir`, with `extra` flags.
fn run_in(dir: &Path, config: &str, out: &str, extra: &[&str]) -> Output {
    simwatt_command()
        .args([
            "simulate",
            "-c",
            config,
            "-o",
            out,
            "-q",
            "--no-plots",
            "--no-trace",
            "--set",
            "workload.requests=16",
        ])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("the simwatt binary runs")
}

/// A project folder `proj` holding its config and an unrelated file, as a user keeps them.
fn project(tmp: &Path) {
    std::fs::create_dir_all(tmp.join("proj/traces")).unwrap();
    std::fs::copy(quickstart(), tmp.join("proj/my.yaml")).unwrap();
    std::fs::write(tmp.join("proj/traces/notes.txt"), "notes").unwrap();
}

#[test]
fn force_never_deletes_the_config_inside_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let o = run_in(tmp.path(), "proj/my.yaml", "proj", &["--force"]);
    assert_clean_failure(&o, &["proj", "my.yaml", "input", "--out"]);
    assert!(tmp.path().join("proj/my.yaml").exists());
    assert!(tmp.path().join("proj/traces/notes.txt").exists());
}

#[test]
fn force_never_deletes_a_trace_inside_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    // A previous run folder that also holds the trace the run reads.
    let o = run_in(tmp.path(), "proj/my.yaml", "run", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let trace = "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,5\n1.0,20,5\n";
    std::fs::write(tmp.path().join("run/t.csv"), trace).unwrap();
    let o = run_in(
        tmp.path(),
        "proj/my.yaml",
        "run",
        &[
            "--force",
            "--set",
            "workload.arrival={type: trace}",
            "--set",
            "workload.lengths={type: trace}",
            "--set",
            "workload.trace=../run/t.csv",
            "--set",
            "workload.requests=2",
        ],
    );
    assert_clean_failure(&o, &["run", "trace", "t.csv"]);
    assert!(tmp.path().join("run/t.csv").exists());
    assert!(tmp.path().join("run/summary.json").exists());
}

#[test]
fn force_refuses_an_old_run_folder_holding_a_file_a_run_does_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let o = run_in(tmp.path(), "proj/my.yaml", "run", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(tmp.path().join("run/notes.txt"), "mine").unwrap();
    let o = run_in(tmp.path(), "proj/my.yaml", "run", &["--force"]);
    assert_clean_failure(&o, &["run", "notes.txt", "nothing was removed"]);
    assert!(tmp.path().join("run/notes.txt").exists());
    assert!(tmp.path().join("run/summary.json").exists());
}

#[test]
fn force_refuses_a_folder_that_simwatt_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    // Only names a run writes, but no provenance.json written by simwatt.
    std::fs::create_dir(tmp.path().join("run")).unwrap();
    std::fs::write(tmp.path().join("run/summary.json"), "{}").unwrap();
    std::fs::write(tmp.path().join("run/provenance.json"), "[1]").unwrap();
    let o = run_in(tmp.path(), "proj/my.yaml", "run", &["--force"]);
    assert_clean_failure(&o, &["run", "provenance.json", "nothing was removed"]);
    assert!(tmp.path().join("run/summary.json").exists());
}

#[test]
fn force_replaces_a_previous_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let o = run_in(tmp.path(), "proj/my.yaml", "run", &["--seed", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(tmp.path(), "proj/my.yaml", "run", &["--seed", "2"]);
    assert_clean_failure(&o, &["already exists", "--force"]);
    let o = run_in(
        tmp.path(),
        "proj/my.yaml",
        "run",
        &["--seed", "2", "--force"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("run/provenance.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(prov["seed"], 2);
    // A folder a run wrote with its plots and trace is replaced as well.
    let o = simwatt_command()
        .args(["simulate", "-c", "proj/my.yaml", "-o", "full", "-q"])
        .args(["--set", "workload.requests=16"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(tmp.path(), "proj/my.yaml", "full", &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!tmp.path().join("full/trace.json").exists());
}

#[test]
fn out_naming_an_existing_file_says_it_is_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    std::fs::write(tmp.path().join("results"), "x").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let o = run_in(tmp.path(), "proj/my.yaml", "results", extra);
        assert_clean_failure(&o, &["results", "is a file, not a folder"]);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("results")).unwrap(),
            "x"
        );
    }
}

#[test]
fn an_empty_path_field_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    for field in [
        "workload.trace",
        "energy.power_profile",
        "regions_dir",
        "data_dir",
    ] {
        let set = format!("{field}=\"\"");
        let o = run_in(tmp.path(), "proj/my.yaml", "run", &["--set", &set]);
        assert_clean_failure(&o, &["my.yaml", field, "empty path"]);
        assert!(!tmp.path().join("run").exists());
    }
    // An empty flag value is refused by the argument parser, naming the flag.
    let o = simwatt(&["simulate", "--config", ""]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--config"), "{}", stderr(&o));
}

#[test]
fn validate_force_never_deletes_its_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    std::fs::create_dir(tmp.path().join("proj/measured")).unwrap();
    let o = simwatt_command()
        .args([
            "validate",
            "--config",
            "proj/my.yaml",
            "--measured",
            "proj/measured",
        ])
        .args(["--out", "proj", "--force", "-q"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_clean_failure(&o, &["proj", "my.yaml", "input"]);
    assert!(tmp.path().join("proj/my.yaml").exists());
    assert!(tmp.path().join("proj/traces/notes.txt").exists());
}

#[test]
fn fit_power_force_never_replaces_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(tmp.path(), "manifest.yaml", "measured: keep\n");
    for flag in ["--out", "--report"] {
        let o = simwatt_command()
            .args(["fit", "power", "--gpu", "a100", "--data", "manifest.yaml"])
            .args([flag, "manifest.yaml", "--force", "-q"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert_clean_failure(&o, &["manifest.yaml", "input of the fit"]);
        assert_eq!(std::fs::read_to_string(&data).unwrap(), "measured: keep\n");
    }
}
