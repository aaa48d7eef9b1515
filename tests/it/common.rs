//! Helpers shared by the integration tests.

use simwatt::config::{self, Scenario};
use simwatt::run::{self, RunOutcome};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (tests run with it as the working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn quickstart() -> PathBuf {
    root().join("experiments/quickstart.yaml")
}

/// Runs the simwatt binary with `args` from the repository root.
pub fn simwatt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simwatt"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the simwatt binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts a failed run: exit code 1 (not a panic's 101), no panic message, and every `needle` in
/// the message.
pub fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

/// Loads a config with overrides and simulates it in memory.
pub fn simulate(config: &Path, overrides: &[&str]) -> RunOutcome {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let raw = config::load(config, &overrides).expect("config loads");
    let scenario = Scenario::resolve(config, raw).expect("config resolves");
    run::simulate(scenario, &|_| {}).expect("simulation runs")
}

/// Writes `text` to a file in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Writes the run folder of an in-memory outcome (without plots or trace) and returns its summary.md.
pub fn summary_md_of(o: &RunOutcome) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = run::SimulateArgs {
        config: quickstart(),
        overrides: vec![],
        out: Some(out.clone()),
        seed: None,
        quiet: true,
        force: false,
    };
    let opts = simwatt::report::ReportOptions {
        plots: false,
        trace: false,
    };
    run::write_run_with(o, &args, &out, &opts).expect("run folder written");
    std::fs::read_to_string(out.join("summary.md")).unwrap()
}
