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

/// The hidden folders beside `dir/run` (`.run.partial-<pid>`).
fn partial_folders(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".run.partial-"))
        .collect()
}

/// A process id that no process has: that of a child that has exited and been reaped.
#[cfg(unix)]
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[cfg(unix)]
#[test]
fn sigterm_removes_the_partial_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    // Two million requests: the loop runs for far longer than the test waits.
    let mut child = simwatt_command()
        .args(["simulate", "-c", "proj/my.yaml", "-o", "run", "-q"])
        .args(["--no-plots", "--no-trace"])
        .args(["--set", "workload.requests=2000000"])
        .args(["--set", "workload.arrival.rate=200"])
        .args(["--set", "hardware.replicas=100"])
        .current_dir(tmp.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while partial_folders(tmp.path()).is_empty() {
        assert!(
            started.elapsed().as_secs() < 60,
            "no partial folder appeared"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Let it write into the folder for a moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: sends SIGTERM to the child this test started and has not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(128 + libc::SIGTERM), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed the unfinished run folder"),
        "{}",
        stderr(&o)
    );
    assert_eq!(partial_folders(tmp.path()), Vec::<String>::new());
    assert!(!tmp.path().join("run").exists());
}

#[cfg(unix)]
#[test]
fn a_stale_partial_folder_of_a_dead_process_is_removed_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let stale = tmp.path().join(format!(".run.partial-{}", dead_pid()));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("batches.parquet"), "half").unwrap();
    // One of a process that still runs (this test's) is left alone.
    let live = tmp
        .path()
        .join(format!(".run.partial-{}", std::process::id()));
    std::fs::create_dir(&live).unwrap();
    let o = run_in(tmp.path(), "proj/my.yaml", "run", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("removed"), "{}", stderr(&o));
    assert!(stderr(&o).contains(".run.partial-"), "{}", stderr(&o));
    assert!(!stale.exists());
    assert!(live.exists());
    assert!(tmp.path().join("run/summary.json").exists());
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
