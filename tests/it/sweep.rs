//! Sweeps: planning, running (serial, threaded, sharded), merging and emitting job scripts.

use crate::common::*;
use std::path::{Path, PathBuf};

const EXAMPLE: &str = "experiments/sweep-example.yaml";

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn sweep_run(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "sweep",
        "run",
        "-c",
        EXAMPLE,
        "-o",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    simwatt(&args)
}

fn results(out: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(out.join("results.csv")).unwrap(),
        std::fs::read(out.join("results.parquet")).unwrap(),
    )
}

/// Writes a sweep over the quickstart config with `body` (axes and options) to `dir`.
fn sweep_file(dir: &Path, body: &str) -> PathBuf {
    let text = format!(
        "base: {}\nset:\n  workload.requests: 16\n{body}",
        quickstart().display()
    );
    write(dir, "sweep.yaml", &text)
}

#[test]
fn serial_threaded_and_sharded_sweeps_give_identical_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let serial = tmp.path().join("serial");
    let threaded = tmp.path().join("threaded");
    let sharded = tmp.path().join("sharded");
    ok(&sweep_run(&serial, &["--jobs", "1"]));
    ok(&sweep_run(&threaded, &["--jobs", "2"]));
    // Shards in a scrambled order, one of them through the batch-array environment variable.
    for i in ["2", "0"] {
        ok(&sweep_run(
            &sharded,
            &["--shard", &format!("{i}/3"), "--jobs", "2"],
        ));
    }
    let o = simwatt_command()
        .args([
            "sweep",
            "run",
            "-c",
            EXAMPLE,
            "-o",
            sharded.to_str().unwrap(),
        ])
        .args(["--shard", "auto/3", "--jobs", "1", "-q"])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "1")
        .current_dir(root())
        .output()
        .unwrap();
    ok(&o);
    ok(&simwatt(&[
        "sweep",
        "merge",
        "-c",
        EXAMPLE,
        "-o",
        sharded.to_str().unwrap(),
    ]));

    let a = results(&serial);
    assert!(
        a == results(&threaded),
        "the threaded table differs from the serial one"
    );
    assert!(
        a == results(&sharded),
        "the sharded table differs from the serial one"
    );
    // Strings (run ids, policies, summaries) as LargeUtf8, which older Parquet readers open.
    let types = assert_no_view_types(&serial.join("results.parquet"));
    assert!(
        types.contains(&("run_id".into(), "LargeUtf8".into())),
        "{types:?}"
    );
    assert_no_view_types(&serial.join("shard-00000-of-00001.parquet"));

    // 3 policies x 3 rates x 2 GPUs x 2 replicates, each run once, with its parameters and metrics.
    let csv = String::from_utf8(a.0).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for col in [
        "run",
        "run_id",
        "replicate",
        "seed",
        "scheduler.policy",
        "workload.arrival.rate",
        "hardware.gpu",
        "status",
        "requests_completed",
        "ttft_p90_s",
        "itl_p99_s",
    ] {
        assert!(header.contains(&col), "no column {col} in {header:?}");
    }
    assert!(!header.iter().any(|c| c.contains("wall")), "{header:?}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 36);
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(ids.len(), 36);
    assert!(rows.iter().enumerate().all(|(i, r)| r[0] == i.to_string()));
    let status = header.iter().position(|c| *c == "status").unwrap();
    assert!(rows.iter().all(|r| r[status] == "ok"));
    // Shared seeds: replicate 0 has one seed everywhere, replicate 1 another.
    let seeds: std::collections::BTreeSet<(&str, &str)> =
        rows.iter().map(|r| (r[2], r[3])).collect();
    assert_eq!(seeds.len(), 2);
}

#[test]
fn a_sweep_row_is_the_run_simulate_gives_with_its_values_and_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = sweep_file(dir, "axes:\n  scheduler.policy: [vllm, orca]\n");
    let out = dir.join("out");
    ok(&simwatt(&[
        "sweep",
        "run",
        "-c",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    let col = |name: &str| row[header.iter().position(|c| *c == name).unwrap()];
    assert_eq!(col("scheduler.policy"), "orca");
    let single = simulate(
        &quickstart(),
        &[
            "workload.requests=16",
            "scheduler.policy=orca",
            &format!("seed={}", col("seed")),
        ],
    );
    let ttft: f64 = col("ttft_p90_s").parse().unwrap();
    assert_eq!(ttft, single.summary.ttft().unwrap().p90);
    assert_eq!(col("events"), single.summary.events.to_string());
}

#[test]
fn a_finished_shard_is_skipped_and_a_shard_of_another_sweep_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = sweep_file(dir, "axes:\n  scheduler.max_num_seqs: [32, 64, 128]\n");
    let out = dir.join("out");
    let run = |cfg: &Path| {
        simwatt(&[
            "sweep",
            "run",
            "-c",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--shard",
            "1/2",
        ])
    };
    ok(&run(&cfg));
    let file = out.join("shard-00001-of-00002.parquet");
    let before = std::fs::read(&file).unwrap();
    let o = run(&cfg);
    ok(&o);
    assert!(stderr(&o).contains("already done"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // No temporary file is left beside the shard.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["shard-00001-of-00002.parquet"]);
    // The same output folder for a changed sweep: refused, the old file kept.
    let changed = sweep_file(dir, "axes:\n  scheduler.max_num_seqs: [32, 64, 256]\n");
    assert_clean_failure(
        &run(&changed),
        &["shard-00001-of-00002.parquet", "another sweep"],
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn merge_lists_the_missing_shards_in_sbatch_array_form() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for i in [0, 2, 3] {
        ok(&sweep_run(&out, &["--shard", &format!("{i}/6")]));
    }
    let merge = |extra: &[&str]| {
        let mut args = vec!["sweep", "merge", "-c", EXAMPLE, "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        simwatt(&args)
    };
    assert_clean_failure(
        &merge(&["--resubmit-script", "/jobs/sweep.sbatch"]),
        &[
            "3 of 6 shards missing",
            "sbatch --array=1,4-5 /jobs/sweep.sbatch",
        ],
    );
    assert!(!out.join("results.csv").exists());
    for i in [1, 4, 5] {
        ok(&sweep_run(&out, &["--shard", &format!("{i}/6")]));
    }
    ok(&merge(&[]));
    assert!(out.join("results.csv").exists() && out.join("results.parquet").exists());
    // Listing the missing shards of a count with no files at all.
    assert_clean_failure(&merge(&["--shards", "4"]), &["4 of 4 shards missing: 0-3"]);
}

#[test]
fn sweep_plan_lists_every_run_with_its_id_seed_and_shard() {
    let text = ok(&simwatt(&["sweep", "plan", "-c", EXAMPLE, "--shards", "5"]));
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines[0],
        "run\trun_id\treplicate\tseed\tshard\tscheduler.policy\tworkload.arrival.rate\thardware.gpu\tstatus"
    );
    assert_eq!(lines.len(), 37);
    let row: Vec<&str> = lines[8].split('\t').collect();
    assert_eq!(row[0], "7");
    assert_eq!(row[4], "2");
    assert!(
        text.contains("36 runs = 18 points x 2 replicates"),
        "{text}"
    );
    // Ids and seeds do not depend on the shard count.
    let plain = ok(&simwatt(&["sweep", "plan", "-c", EXAMPLE]));
    let ids = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').take(4).collect::<Vec<_>>().join("\t"))
            .collect()
    };
    assert_eq!(ids(&text), ids(&plain));
}

#[test]
fn bad_sweep_files_get_errors_naming_the_file_field_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 7] = [
        (
            "axes:\n  workload.arrival.rate: {from: 4, to: 1, step: 1}\n",
            &["sweep.yaml", "axes.workload.arrival.rate", "empty"],
        ),
        (
            "axes:\n  workload.arrival.rate: {from: 1, to: 4, step: 0}\n",
            &["sweep.yaml", "axes.workload.arrival.rate.step", "= 0"],
        ),
        (
            "axes:\n  workload.arrival.rate: {from: 1, to: 30, step: 1}\n  scheduler.policy: [vllm, orca]\nmax_runs: 50\n",
            &["sweep.yaml", "max_runs", "= 50", "60 runs"],
        ),
        (
            "axes:\n  scheduler.max_num_seqz: [1, 2]\n",
            &["sweep.yaml", "max_num_seqz", "unknown field"],
        ),
        ("axis:\n  seed: [1]\n", &["sweep.yaml", "axis", "unknown field"]),
        (
            "axes:\n  scheduler.max_num_seqs: [8, many]\n",
            &["sweep.yaml", "scheduler.max_num_seqs", "many"],
        ),
        (
            "axes:\n  hardware.tensor_parallel: [1, 3]\n",
            &["sweep.yaml", "hardware.tensor_parallel", "= 3", "does not divide", "skip_invalid"],
        ),
    ];
    for (body, needles) in cases {
        let cfg = sweep_file(tmp.path(), body);
        for verb in ["plan", "run"] {
            let out = tmp.path().join("out");
            let o = simwatt(
                &[
                    "sweep",
                    verb,
                    "-c",
                    cfg.to_str().unwrap(),
                    "-o",
                    out.to_str().unwrap(),
                ][..if verb == "plan" { 4 } else { 6 }],
            );
            assert_clean_failure(&o, needles);
            assert!(!out.exists(), "a refused sweep wrote {}", out.display());
        }
    }
    let o = simwatt(&[
        "sweep",
        "run",
        "-c",
        "experiments/quickstart.yaml",
        "--shard",
        "3/3",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("below the shard count"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn skip_invalid_records_rejected_combinations_in_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = sweep_file(
        tmp.path(),
        "axes:\n  hardware.tensor_parallel: [1, 3]\nskip_invalid: true\n",
    );
    let out = tmp.path().join("out");
    ok(&simwatt(&[
        "sweep",
        "run",
        "-c",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[1].contains(",1,ok,,"), "{}", rows[1]);
    assert!(
        rows[2].contains(",3,invalid,") && rows[2].contains("does not divide"),
        "{}",
        rows[2]
    );
}

#[test]
fn emitted_job_scripts_shard_the_sweep_with_a_fixed_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("jobs");
    let emit = |target: &str, sub: &str| {
        let d = dir.join(sub);
        ok(&simwatt(&[
            "sweep",
            "emit",
            target,
            "-c",
            EXAMPLE,
            "--shards",
            "4",
            "--dir",
            d.to_str().unwrap(),
            "--max-parallel",
            "2",
            "--simwatt",
            "/opt/simwatt/bin/simwatt",
            "--partition",
            "debug",
        ]))
    };
    let listed = emit("slurm", "slurm");
    let sbatch = std::fs::read_to_string(dir.join("slurm/sweep.sbatch")).unwrap();
    for needle in [
        "#SBATCH --array=0-3%2",
        "#SBATCH --partition=debug",
        "--shard auto/4",
        "exec /opt/simwatt/bin/simwatt sweep run --config ",
        "sweep-example.yaml",
    ] {
        assert!(sbatch.contains(needle), "no `{needle}` in:\n{sbatch}");
    }
    assert!(!sbatch.contains("SLURM_ARRAY_TASK_COUNT}"), "{sbatch}");
    let merge = std::fs::read_to_string(dir.join("slurm/merge.sbatch")).unwrap();
    assert!(
        merge.contains("sweep merge --config") && merge.contains("--shards 4"),
        "{merge}"
    );
    let submit = std::fs::read_to_string(dir.join("slurm/submit.sh")).unwrap();
    assert!(submit.contains("--dependency=afterany:"), "{submit}");
    for f in ["sweep.sbatch", "merge.sbatch", "submit.sh"] {
        assert!(listed.contains(f), "{listed}");
        let o = std::process::Command::new("bash")
            .arg("-n")
            .arg(dir.join("slurm").join(f))
            .output()
            .unwrap();
        assert!(o.status.success(), "{f}: {}", stderr(&o));
    }
    // Emitting again gives the same bytes.
    emit("slurm", "slurm2");
    assert_eq!(
        sbatch,
        std::fs::read_to_string(dir.join("slurm2/sweep.sbatch"))
            .unwrap()
            .replace("slurm2", "slurm")
    );

    emit("k8s", "k8s");
    let job: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("k8s/sweep-job.yaml")).unwrap())
            .unwrap();
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 4);
    assert_eq!(job["spec"]["parallelism"], 2);
    let cmd: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        &cmd[..7],
        [
            "/opt/simwatt/bin/simwatt",
            "sweep",
            "run",
            "--config",
            "/work/experiments/sweep-example.yaml",
            "--shard",
            "auto/4"
        ]
    );
    let merge_job: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("k8s/merge-job.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        merge_job["spec"]["template"]["spec"]["containers"][0]["command"][2],
        "merge"
    );

    let line = emit("shell", "shell");
    assert!(line.starts_with("mkdir -p "), "{line}");
    assert!(line.contains("parallel --jobs 2 --joblog "), "{line}");
    assert!(
        line.contains("--shard {}/4") && line.contains("::: $(seq 0 3)"),
        "{line}"
    );
    assert!(
        line.contains("sweep merge --config") && line.contains("--shards 4"),
        "{line}"
    );
    assert!(!dir.join("shell").exists());

    // More shards than runs is refused.
    let o = simwatt(&["sweep", "emit", "slurm", "-c", EXAMPLE, "--shards", "37"]);
    assert_clean_failure(&o, &["--shards", "37", "36 runs"]);
}

/// The shard and merge containers of emitted Kubernetes jobs in `dir`, each with its pod spec.
fn k8s_pods(dir: &Path) -> Vec<(serde_yaml::Value, serde_yaml::Value)> {
    ["sweep-job.yaml", "merge-job.yaml"]
        .iter()
        .map(|f| {
            let job: serde_yaml::Value =
                serde_yaml::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
            let pod = job["spec"]["template"]["spec"].clone();
            (pod["containers"][0].clone(), pod)
        })
        .collect()
}

/// The value that follows `flag` in a container's command.
fn arg_of<'a>(container: &'a serde_yaml::Value, flag: &str) -> &'a str {
    let cmd = container["command"].as_sequence().unwrap();
    let at = cmd
        .iter()
        .position(|v| v == flag)
        .unwrap_or_else(|| panic!("no {flag} in {cmd:?}"));
    cmd[at + 1].as_str().unwrap()
}

#[test]
fn k8s_jobs_pass_the_in_pod_path_of_out_on_the_mounted_volume() {
    // The jobs passed --out as typed on the host: an absolute host path the pod could not see.
    let tmp = tempfile::tempdir().unwrap();
    let emit = |sub: &str, extra: &[&str]| {
        let d = tmp.path().join(sub);
        let mut args = vec![
            "sweep",
            "emit",
            "k8s",
            "-c",
            EXAMPLE,
            "--shards",
            "4",
            "--dir",
            d.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&simwatt(&args));
        k8s_pods(&d)
    };
    let check = |pods: &[(serde_yaml::Value, serde_yaml::Value)], out: &str, mount: &str| {
        for (container, pod) in pods {
            let volume = &pod["volumes"][0];
            let mounted = &container["volumeMounts"][0];
            assert_eq!(pod["volumes"].as_sequence().unwrap().len(), 1);
            assert_eq!(mounted["name"], volume["name"]);
            assert_eq!(mounted["mountPath"], mount);
            assert_eq!(container["workingDir"], mount);
            assert_eq!(arg_of(container, "--out"), out);
            assert!(out.starts_with(&format!("{mount}/")));
            assert_eq!(
                arg_of(container, "--config"),
                format!("{mount}/experiments/sweep-example.yaml")
            );
            assert_eq!(container["image"], "simwatt:0.1.0");
        }
    };
    // A claim: paths relative to its root, the default output folder included.
    let pods = emit("claim", &[]);
    check(&pods, "/work/runs/sweep-example", "/work");
    assert_eq!(
        pods[0].1["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "simwatt-work"
    );
    let pods = emit(
        "claim2",
        &["--pvc", "sims", "--workdir", "/data", "-o", "out/a"],
    );
    check(&pods, "/data/out/a", "/data");
    assert_eq!(
        pods[1].1["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "sims"
    );
    // A node folder: a host path under it is moved to the mount.
    let host = root();
    let out = host.join("runs/k8s-host");
    let pods = emit(
        "host",
        &[
            "--host-path",
            host.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    check(&pods, "/work/runs/k8s-host", "/work");
    let volume = &pods[0].1["volumes"][0];
    assert_eq!(volume["hostPath"]["path"], host.to_str().unwrap());
    assert_eq!(volume["hostPath"]["type"], "Directory");
    assert!(volume.get("persistentVolumeClaim").is_none());
}

#[test]
fn k8s_emit_refuses_a_host_path_the_pod_cannot_see() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("k8s");
    let base = [
        "sweep",
        "emit",
        "k8s",
        "--shards",
        "2",
        "--dir",
        d.to_str().unwrap(),
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        simwatt(&args)
    };
    let o = with(&["-c", EXAMPLE, "-o", "/home/someone/runs/x"]);
    assert_clean_failure(
        &o,
        &[
            "--out",
            "/home/someone/runs/x",
            "cannot see",
            "PersistentVolumeClaim `simwatt-work`",
            "mounted at /work",
        ],
    );
    // Even under the mount path: this machine's /work is not the pod's.
    let o = with(&["-c", EXAMPLE, "-o", "/work/runs/x"]);
    assert_clean_failure(&o, &["--out", "/work/runs/x", "cannot see"]);
    let config = root().join(EXAMPLE);
    let o = with(&["-c", config.to_str().unwrap()]);
    assert_clean_failure(&o, &["--config", config.to_str().unwrap(), "cannot see"]);
    // Under a node folder, a path outside it is refused too.
    let o = with(&[
        "-c",
        EXAMPLE,
        "--host-path",
        root().to_str().unwrap(),
        "-o",
        "/elsewhere/runs",
    ]);
    assert_clean_failure(&o, &["--out", "/elsewhere/runs", "hostPath"]);
    let o = with(&["-c", EXAMPLE, "--workdir", "work"]);
    assert_clean_failure(&o, &["--workdir", "absolute"]);
    assert!(!d.exists(), "nothing written after a refusal");
}

#[test]
fn a_shell_emitted_sweep_runs_under_gnu_parallel_when_it_is_installed() {
    if isolate(std::process::Command::new("parallel").arg("--version"))
        .output()
        .is_err()
    {
        skip_or_fail("GNU parallel (`parallel` on PATH)", in_ci());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let line = ok(&simwatt(&[
        "sweep",
        "emit",
        "shell",
        "-c",
        EXAMPLE,
        "--shards",
        "3",
        "-o",
        out.to_str().unwrap(),
        "--simwatt",
        env!("CARGO_BIN_EXE_simwatt"),
    ]));
    let o = isolate(std::process::Command::new("bash").args(["-c", line.trim()]))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let serial = tmp.path().join("serial");
    ok(&sweep_run(&serial, &[]));
    assert!(results(&out) == results(&serial));
}

#[test]
fn a_thousand_run_sweep_on_one_thread_completes() {
    // Regression: each run reads region CSVs through polars' own thread pool; a sweep worker waiting
    // on that pool used to pick up further runs while it waited, nesting them until the stack
    // overflowed (about 80 deep into this sweep). Runs now wait on a plain thread.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let o = simwatt(&[
        "sweep",
        "run",
        "--config",
        "experiments/sweep-1000.yaml",
        "--jobs",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = std::fs::read_to_string(out.join("results.csv"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(rows, 1001, "a header and 1,000 runs");
}

/// Copies `src` (a folder) into `dst`.
fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Replaces `from` by `to` in the file at `path` (which must hold it).
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn stale_sweep_results_editing_an_input_reruns_exactly_the_shards_that_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for d in ["profiles", "regions"] {
        copy_dir(&root().join(d), &data.join(d));
    }
    // Two runs, one per shard: shard 0 prices in aws-us-east-1, shard 1 in aws-eu-north-1; both read
    // the A100 power profile.
    let cfg = write(
        tmp.path(),
        "sweep.yaml",
        &format!(
            "base: {}\nset:\n  workload.requests: 16\n  data_dir: {}\naxes:\n  region: [aws-us-east-1, aws-eu-north-1]\n",
            quickstart().display(),
            data.display()
        ),
    );
    let out = tmp.path().join("out");
    let run = |shard: &str| {
        simwatt(&[
            "sweep",
            "run",
            "-c",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--shard",
            shard,
        ])
    };
    let merge = || {
        simwatt(&[
            "sweep",
            "merge",
            "-c",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let shard_file = |i: u32| out.join(format!("shard-0000{i}-of-00002.parquet"));
    let bytes = |i: u32| std::fs::read(shard_file(i)).unwrap();
    ok(&run("0/2"));
    ok(&run("1/2"));
    ok(&merge());
    let results_before = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let (s0, s1) = (bytes(0), bytes(1));
    for shard in ["0/2", "1/2"] {
        let o = run(shard);
        ok(&o);
        assert!(stderr(&o).contains("already done"), "{}", stderr(&o));
    }

    // A region file one shard reads: PUE 1.00 -> 1.50 in aws-eu-north-1.
    let region = data.join("regions/aws-eu-north-1.yaml");
    let pue = std::fs::read_to_string(&region).unwrap();
    let line = pue
        .lines()
        .find(|l| l.starts_with("pue:"))
        .unwrap()
        .to_string();
    edit(
        &region,
        &line,
        "pue: { value: 1.50, source: \"edited\", year: 2024 }",
    );
    // Merging now is refused: the table would mix in the old PUE.
    assert_clean_failure(
        &merge(),
        &[
            "1 of 2 shards to run (0 missing, 1 stale): 1",
            "aws-eu-north-1.yaml",
        ],
    );
    let o0 = run("0/2");
    ok(&o0);
    assert!(stderr(&o0).contains("already done"), "{}", stderr(&o0));
    assert_eq!(bytes(0), s0, "shard 0 does not read the edited region");
    let o1 = run("1/2");
    ok(&o1);
    assert!(
        stderr(&o1).contains("aws-eu-north-1.yaml") && stderr(&o1).contains("ran it again"),
        "{}",
        stderr(&o1)
    );
    assert_ne!(bytes(1), s1, "shard 1 reads the edited region");
    ok(&merge());
    let results_after = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let (b, a): (Vec<&str>, Vec<&str>) = (
        results_before.lines().collect(),
        results_after.lines().collect(),
    );
    assert_eq!(b[1], a[1], "the aws-us-east-1 row is unchanged");
    assert_ne!(b[2], a[2], "the aws-eu-north-1 row has the new PUE");

    // The power profile both shards read: both run again.
    let (s0, s1) = (bytes(0), bytes(1));
    let profile = data.join("profiles/power/a100.yaml");
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(&profile, format!("{text}\n# edited\n")).unwrap();
    for shard in ["0/2", "1/2"] {
        let o = run(shard);
        ok(&o);
        assert!(stderr(&o).contains("a100.yaml"), "{}", stderr(&o));
    }
    // The edit is a comment: the runs give the same rows, but the files record the new hash.
    assert!(bytes(0) != s0 && bytes(1) != s1);
    ok(&merge());
    assert_eq!(
        std::fs::read_to_string(out.join("results.csv")).unwrap(),
        results_after
    );
}

/// The `run` column of a merged results.csv.
fn result_runs(out: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "run").unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_truncated_shard_file_is_listed_by_merge_and_replaced_by_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for i in 0..3 {
        ok(&sweep_run(&out, &["--shard", &format!("{i}/3")]));
    }
    let file = out.join("shard-00001-of-00003.parquet");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let merge = || simwatt(&["sweep", "merge", "-c", EXAMPLE, "-o", out.to_str().unwrap()]);
    assert_clean_failure(
        &merge(),
        &[
            "1 of 3 shards to run (0 missing, 0 stale, 1 unreadable): 1",
            "shard 1 is unreadable",
            "shard-00001-of-00003.parquet",
            "sbatch --array=1 ",
        ],
    );
    assert!(!out.join("results.csv").exists());
    // A requeued task replaces the file instead of failing on it; --quiet still says so.
    let o = sweep_run(&out, &["--shard", "1/3"]);
    ok(&o);
    assert!(
        stderr(&o).contains("could not be used") && stderr(&o).contains("replaced it"),
        "{}",
        stderr(&o)
    );
    ok(&merge());
    let n = ok(&simwatt(&["sweep", "plan", "-c", EXAMPLE]))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
        - 1;
    assert_eq!(result_runs(&out), (0..n as u64).collect::<Vec<_>>());
}

#[test]
fn a_shard_file_renamed_to_another_shards_name_is_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for i in 0..3 {
        ok(&sweep_run(&out, &["--shard", &format!("{i}/3")]));
    }
    std::fs::rename(
        out.join("shard-00002-of-00003.parquet"),
        out.join("shard-00000-of-00003.parquet"),
    )
    .unwrap();
    let merge = || simwatt(&["sweep", "merge", "-c", EXAMPLE, "-o", out.to_str().unwrap()]);
    assert_clean_failure(
        &merge(),
        &[
            "2 of 3 shards to run (1 missing, 0 stale, 1 unreadable): 0,2",
            "written as shard 2/3",
            "sbatch --array=0,2 ",
        ],
    );
    let o = sweep_run(&out, &["--shard", "0/3"]);
    ok(&o);
    assert!(stderr(&o).contains("replaced it"), "{}", stderr(&o));
    ok(&sweep_run(&out, &["--shard", "2/3"]));
    ok(&merge());
    let runs = result_runs(&out);
    assert_eq!(runs, (0..runs.len() as u64).collect::<Vec<_>>());
    assert!(runs.len() >= 3);
}

/// `sweep emit TARGET` of the example into `dir` with `extra` flags.
fn emit_with(target: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "sweep",
        "emit",
        target,
        "-c",
        EXAMPLE,
        "--shards",
        "4",
        "--dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    simwatt(&args)
}

#[test]
fn a_newline_in_an_sbatch_value_is_refused_not_written_as_a_second_directive() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("slurm");
    for (flag, value) in [
        ("--partition", "gpu\n#SBATCH --wrap=id"),
        ("--time", "01:00:00 --wrap=id"),
        ("--account", "$(id)"),
    ] {
        assert_clean_failure(
            &emit_with("slurm", &dir, &[flag, value]),
            &[flag, "#SBATCH directive holds only"],
        );
        assert!(!dir.join("sweep.sbatch").exists(), "{flag}");
    }
    let e = stderr(&emit_with(
        "slurm",
        &dir,
        &["--partition", "gpu\n#SBATCH --wrap=id"],
    ));
    assert!(e.contains(r"gpu\n#SBATCH --wrap=id"), "{e}");
    // A logs folder with a blank cannot go into #SBATCH --output.
    assert_clean_failure(
        &emit_with("slurm", &tmp.path().join("my jobs"), &[]),
        &["--dir", "my jobs", "#SBATCH --output"],
    );
    // A newline in any word of a script is refused, for Slurm and the shell line.
    for target in ["slurm", "shell"] {
        assert_clean_failure(
            &emit_with(target, &dir, &["--simwatt", "simwatt\nid"]),
            &["--simwatt", r"simwatt\nid", "control character"],
        );
    }
}

#[test]
fn emitted_scripts_single_quote_paths_and_words_for_the_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("slurm");
    let exe = "/opt/it's here/simwatt; touch pwned";
    ok(&emit_with("slurm", &dir, &["--simwatt", exe]));
    let quoted = r"'/opt/it'\''s here/simwatt; touch pwned'";
    for f in ["sweep.sbatch", "merge.sbatch"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.contains(&format!("exec {quoted} sweep ")), "{text}");
    }
    let line = ok(&emit_with("shell", &dir, &["--simwatt", exe]));
    assert!(line.contains(&format!("{quoted} sweep run")), "{line}");
}

#[test]
fn max_parallel_zero_is_refused_not_written_as_a_zero_throttle() {
    let tmp = tempfile::tempdir().unwrap();
    for target in ["slurm", "shell"] {
        let dir = tmp.path().join(target);
        assert_clean_failure(
            &emit_with(target, &dir, &["--max-parallel", "0"]),
            &["--max-parallel", "= 0", "at least 1"],
        );
        assert!(!dir.exists());
    }
}
