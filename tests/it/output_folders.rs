//! Run folders and `--force` (nothing the run reads or did not write is ever deleted), interrupted
//! runs (no hidden folder left behind) and messages about the output path (issue 17).

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
