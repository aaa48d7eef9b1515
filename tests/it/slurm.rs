//! A sweep on a real Slurm cluster: the emitted sbatch array with one shard failing, the `afterany`
//! merge naming it, only that shard resubmitted, and the merged table complete.
//!
//! Needs `sbatch` and a running cluster (.ci/run starts a one-node one with .ci/slurm-start.sh).
//! Without one the test fails where a cluster is required ([`slurm_required`]: SIMWATT_REQUIRE_SLURM=1,
//! which .ci/run sets once its cluster is up, or CI=true as root, where one can be started), and
//! elsewhere prints `SKIPPED: ...` past the harness's output capture and returns (cargo reports it
//! `ok`; the SKIPPED line says it did not run). SIMWATT_REQUIRE_SLURM=0 never requires one.

use crate::common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether this test must run rather than skip: SIMWATT_REQUIRE_SLURM=1 (set by .ci/run after it
/// started a cluster) or =0 decides; unset, a CI job (CI=true) running as root requires it, since
/// .ci/slurm-start.sh can start a cluster there. A CI job that is not root cannot, and skips loudly.
fn slurm_required() -> bool {
    match std::env::var("SIMWATT_REQUIRE_SLURM").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => in_ci() && is_root(),
    }
}

/// Whether the test process runs as root (the owner of its own /proc entry; false where there is no
/// /proc).
fn is_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Whether a usable Slurm cluster answers; the reason when not.
fn slurm_available() -> Result<(), String> {
    if Command::new("sbatch").arg("--version").output().is_err() {
        return Err("sbatch is not on PATH".into());
    }
    // Every Slurm client reads slurm.conf first and waits a minute when it is missing.
    let conf = std::env::var_os("SLURM_CONF")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/etc/slurm/slurm.conf".into());
    if !conf.exists() {
        return Err(format!("no Slurm config at {}", conf.display()));
    }
    let ping = Command::new("timeout")
        .args(["20", "scontrol", "ping"])
        .output()
        .map_err(|e| format!("scontrol: {e}"))?;
    if !String::from_utf8_lossy(&ping.stdout).contains("is UP") {
        return Err(format!(
            "slurmctld does not answer: {}",
            String::from_utf8_lossy(&ping.stdout).trim()
        ));
    }
    Ok(())
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("command runs");
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Runs submit.sh with `args` and returns (shard array job, merge job).
fn submit(jobs: &Path, args: &[&str]) -> (String, String) {
    let text = run(isolate(
        Command::new("bash").arg(jobs.join("submit.sh")).args(args),
    ));
    // "shards: job 12; merge: job 13"
    let ids: Vec<String> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    assert_eq!(ids.len(), 2, "{text}");
    (ids[0].clone(), ids[1].clone())
}

/// Waits until the jobs have left the queue.
fn wait(jobs: &[&str]) {
    let t0 = Instant::now();
    loop {
        let q = run(Command::new("squeue").args(["-h", "-j", &jobs.join(",")]));
        if q.trim().is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "jobs {jobs:?} still queued after 300 s:\n{q}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The state of each task of a job (array tasks by index; a plain job as index "-").
fn states(job: &str) -> Vec<(String, String)> {
    let text = run(Command::new("scontrol").args(["-o", "show", "job", job]));
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or("-")
            .to_string()
    };
    let mut v: Vec<(String, String)> = text
        .lines()
        .map(|l| (field(l, "ArrayTaskId="), field(l, "JobState=")))
        .collect();
    v.sort();
    v
}

#[test]
fn a_slurm_array_sweep_with_a_failed_shard_is_completed_by_resubmitting_only_that_shard() {
    if let Err(why) = slurm_available() {
        let ci_note = if in_ci() && !is_root() {
            " [CI=true but not root: no cluster can be started here, so this test did not run]"
        } else {
            ""
        };
        skip_or_fail(
            &format!("no Slurm cluster ({why}); .ci/slurm-start.sh starts one, SIMWATT_REQUIRE_SLURM=1 requires one{ci_note}"),
            slurm_required(),
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The jobs run a copy of the binary, so a rebuild during the test cannot change it, through a
    // wrapper that fails array task 1 while the flag file exists: a real task exiting non-zero.
    let bin = dir.join("simwatt");
    std::fs::copy(env!("CARGO_BIN_EXE_simwatt"), &bin).unwrap();
    let flag = dir.join("fail-shard-1");
    let wrapper = write(
        dir,
        "simwatt-flaky",
        &format!(
            "#!/bin/bash\nif [ \"${{SLURM_ARRAY_TASK_ID:-}}\" = 1 ] && [ -e {flag} ]; then\n  echo \"shard 1 failing on purpose\" >&2\n  exit 3\nfi\nexec {bin} \"$@\"\n",
            flag = flag.display(),
            bin = bin.display()
        ),
    );
    run(Command::new("chmod").arg("+x").arg(&wrapper));
    let sweep = write(
        dir,
        "sweep.yaml",
        &format!(
            "base: {}\nset:\n  workload.requests: 16\naxes:\n  scheduler.policy: [vllm, sarathi, orca]\n  workload.arrival.rate: [2, 4]\n",
            quickstart().display()
        ),
    );
    let out = dir.join("out");
    let jobs = dir.join("jobs");
    let listed = run(simwatt_command_at(&bin)
        .args(["sweep", "emit", "slurm", "--shards", "3", "--config"])
        .arg(&sweep)
        .arg("--out")
        .arg(&out)
        .arg("--dir")
        .arg(&jobs)
        .arg("--simwatt")
        .arg(&wrapper)
        .current_dir(root()));
    assert!(listed.contains("sweep.sbatch"), "{listed}");

    // Round 1: shard 1 fails; the merge still runs (afterany), names it and fails.
    std::fs::write(&flag, "").unwrap();
    let (array, merge) = submit(&jobs, &[]);
    wait(&[&array, &merge]);
    assert_eq!(
        states(&array),
        [
            ("0".to_string(), "COMPLETED".to_string()),
            ("1".into(), "FAILED".into()),
            ("2".into(), "COMPLETED".into())
        ]
    );
    assert_eq!(states(&merge), [("-".to_string(), "FAILED".to_string())]);
    let merge_log =
        std::fs::read_to_string(jobs.join(format!("logs/merge-job-{merge}.out"))).unwrap();
    assert!(
        merge_log.contains("1 of 3 shards missing: 1"),
        "{merge_log}"
    );
    assert!(
        merge_log.contains(&format!(
            "sbatch --array=1 {}",
            jobs.join("sweep.sbatch").display()
        )),
        "{merge_log}"
    );
    let shard_log =
        std::fs::read_to_string(jobs.join(format!("logs/shard-1-job-{array}.out"))).unwrap();
    assert!(shard_log.contains("failing on purpose"), "{shard_log}");
    assert!(!out.join("shard-00001-of-00003.parquet").exists());
    assert!(!out.join("results.csv").exists());

    // What merge reports, taken as it is printed, is what gets resubmitted.
    let o = simwatt_command_at(&bin)
        .args(["sweep", "merge", "--config"])
        .arg(&sweep)
        .arg("--out")
        .arg(&out)
        .current_dir(root())
        .output()
        .unwrap();
    assert_clean_failure(&o, &["missing"]);
    let err = stderr(&o);
    let array_arg = err
        .split_whitespace()
        .find(|w| w.starts_with("--array="))
        .unwrap_or_else(|| panic!("no --array= in: {err}"))
        .to_string();
    assert_eq!(array_arg, "--array=1");

    // Round 2: only shard 1 again (its wrapper now passes), then the merge.
    std::fs::remove_file(&flag).unwrap();
    let (array2, merge2) = submit(&jobs, &[&array_arg]);
    wait(&[&array2, &merge2]);
    assert_eq!(
        states(&array2),
        [("1".to_string(), "COMPLETED".to_string())]
    );
    assert_eq!(
        states(&merge2),
        [("-".to_string(), "COMPLETED".to_string())]
    );
    let shard_log =
        std::fs::read_to_string(jobs.join(format!("logs/shard-1-job-{array2}.out"))).unwrap();
    // The resubmitted task is alone in its array, yet it computed shard 1 of 3, not 1 of 1.
    assert!(shard_log.contains("shard 1/3: 2 runs"), "{shard_log}");

    // Every run exactly once, and the table a local serial run gives, byte for byte.
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let runs: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(runs, ["0", "1", "2", "3", "4", "5"]);
    let local = dir.join("local");
    run(simwatt_command_at(&bin)
        .args(["sweep", "run", "-q", "--config"])
        .arg(&sweep)
        .arg("--out")
        .arg(&local)
        .current_dir(root()));
    assert_eq!(
        csv,
        std::fs::read_to_string(local.join("results.csv")).unwrap()
    );
    assert!(
        std::fs::read(out.join("results.parquet")).unwrap()
            == std::fs::read(local.join("results.parquet")).unwrap()
    );
}
