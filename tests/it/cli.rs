//! End-to-end runs of the `simwatt` binary.

use crate::common::*;

fn summary(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn quickstart_completes_every_request_and_writes_the_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = simwatt(&[
        "simulate",
        "--config",
        "experiments/quickstart.yaml",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "config.resolved.yaml",
        "provenance.json",
        "requests.csv",
        "requests.parquet",
        "batches.parquet",
        "summary.json",
        "summary.md",
    ] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(meta.len() > 0, "{f} is empty");
    }
    let s = summary(&out);
    assert_eq!(s["requests_completed"], s["requests_total"]);
    assert_eq!(s["requests_total"], 512);
    for key in ["ttft", "tpot", "itl", "e2e"] {
        for q in ["mean", "p50", "p90", "p99"] {
            let name = format!("{key}_{q}_s");
            let v = s[&name].as_f64().unwrap_or_else(|| panic!("{name}"));
            assert!(v > 0.0, "{name} = {v}");
        }
        assert!(s[key]["p50"].as_f64() <= s[key]["p99"].as_f64());
    }
    assert!(s["makespan_s"].as_f64().unwrap() > 0.0);
    assert!(s["sim_requests_per_wall_s"].as_f64().unwrap() > 0.0);
    let prov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(prov["predictor"]["kind"], "profiles");
    assert_eq!(prov["seed"], 42);
    assert!(prov["inputs"][0]["sha256"].as_str().unwrap().len() == 64);
    // No temporary folder is left beside the run.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("run")]);
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let out = tmp.path().join(name);
        let o = simwatt(&[
            "simulate",
            "-c",
            "experiments/quickstart.yaml",
            "-o",
            out.to_str().unwrap(),
            "--seed",
            seed,
            "-q",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        (
            std::fs::read(out.join("requests.csv")).unwrap(),
            std::fs::read(out.join("requests.parquet")).unwrap(),
            std::fs::read(out.join("batches.parquet")).unwrap(),
        )
    };
    let a = run("a", "7");
    let b = run("b", "7");
    let c = run("c", "8");
    assert!(a.0 == b.0, "requests.csv differs between identical runs");
    assert!(
        a.1 == b.1,
        "requests.parquet differs between identical runs"
    );
    assert!(a.2 == b.2, "batches.parquet differs between identical runs");
    assert!(a.0 != c.0, "a different seed gave the same requests.csv");
}

#[test]
fn an_occupied_output_folder_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let args = |force: bool| {
        let mut v = vec![
            "simulate",
            "-c",
            "experiments/quickstart.yaml",
            "--set",
            "workload.requests=16",
            "-o",
            out.to_str().unwrap(),
            "-q",
        ];
        if force {
            v.push("--force");
        }
        simwatt(&v)
    };
    assert_clean_failure(&args(false), &["already exists", "--force"]);
    assert!(out.join("keep.txt").exists());
    // Not a previous run folder: --force refuses it too and removes nothing
    // (output_folders::force_refuses_a_folder_that_simwatt_did_not_write).
    assert_clean_failure(&args(true), &["keep.txt", "nothing was removed"]);
    assert!(out.join("keep.txt").exists());
    std::fs::remove_file(out.join("keep.txt")).unwrap();
    let o = args(false);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_clean_failure(&args(false), &["already exists", "--force"]);
    let o = args(true);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("summary.json").exists());
}

#[test]
fn help_explains_every_verb_and_flag() {
    let o = simwatt(&["--help"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("simulate"), "{text}");
    let o = simwatt(&["simulate", "--help"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for flag in ["--config", "--set", "--out", "--seed", "--quiet", "--force"] {
        assert!(text.contains(flag), "{flag} missing from: {text}");
    }
}

#[test]
fn trace_replay_uses_the_trace_arrivals_and_lengths() {
    let o = simulate(
        &quickstart(),
        &[
            "workload.arrival={type: trace}",
            "workload.lengths={type: trace}",
            "workload.trace=traces/splitwise_conv.csv",
            "workload.requests=200",
        ],
    );
    assert_eq!(o.summary.requests_total, 200);
    // Llama-2-7B's context is 4,096 tokens: longer conversations are rejected, the rest complete.
    let too_long = o
        .rows
        .iter()
        .filter(|r| r.prompt_tokens + r.output_tokens > 4096)
        .count() as u64;
    assert!(too_long > 0);
    assert_eq!(o.summary.requests_rejected, too_long);
    assert_eq!(o.summary.requests_completed, 200 - too_long);
    assert!(o
        .rows
        .iter()
        .all(|r| (r.status == "completed") == (r.prompt_tokens + r.output_tokens <= 4096)));
    // The first rows of the trace: arrived_at 0.0 and 4.314579 s, prompts 374 and 396, outputs 44 and 109.
    assert_eq!(o.rows[0].arrival_s, 0.0);
    assert_eq!(o.rows[1].arrival_s, 4.314579);
    assert_eq!(
        (o.rows[0].prompt_tokens, o.rows[0].output_tokens),
        (374, 44)
    );
    assert_eq!(
        (o.rows[1].prompt_tokens, o.rows[1].output_tokens),
        (396, 109)
    );
}

#[test]
fn length_only_trace_with_synthetic_arrivals() {
    let o = simulate(
        &quickstart(),
        &[
            "workload.lengths={type: trace}",
            "workload.trace=traces/arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
            "workload.requests=100",
        ],
    );
    // The arXiv trace holds prompts up to ~4k tokens; Llama-2-7B's context is 4096, so longer requests
    // are rejected with a reason instead of being truncated.
    assert_eq!(o.summary.requests_total, 100);
    assert_eq!(
        o.summary.requests_completed + o.summary.requests_rejected,
        100
    );
    assert_eq!(
        (o.rows[0].prompt_tokens, o.rows[0].output_tokens),
        (3772, 54)
    );
}

#[test]
fn streamed_and_in_memory_runs_hold_the_same_tables() {
    // `simulate` streams batches, power and requests to disk while it runs; the in-memory path (used
    // by validation's replays) keeps them. Both must hold the same rows: the requests written by the
    // same writer give the same bytes, and the streamed batch log has the in-memory one's values.
    // A region of hourly intensity has the streamed requests spilled until the run's carbon per
    // joule is known; one of constant intensity has them written as they finish.
    let tmp = tempfile::tempdir().unwrap();
    for (policy, region) in [
        ("vllm", "aws-us-east-1"),
        ("vllm", "aws-us-west-2"),
        ("faster_transformer", "aws-us-west-2"),
    ] {
        let streamed = tmp.path().join(format!("streamed-{policy}-{region}"));
        let set = format!("scheduler.policy={policy}");
        let set_region = format!("region={region}");
        let o = simwatt(&[
            "simulate",
            "-c",
            "experiments/quickstart.yaml",
            "--set",
            &set,
            "--set",
            &set_region,
            "--set",
            "workload.requests=96",
            "-o",
            streamed.to_str().unwrap(),
            "-q",
            "--no-plots",
            "--no-trace",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        // In memory as on disk, a static batch's run of decode steps is one row.
        let mem = simulate(&quickstart(), &[&set, &set_region, "workload.requests=96"]);
        assert!(
            mem.rows.iter().all(|r| r.carbon_g.is_some_and(|g| g > 0.0)),
            "{policy} in {region}: every request has its carbon"
        );
        let in_memory = tmp.path().join(format!("memory-{policy}-{region}"));
        std::fs::create_dir(&in_memory).unwrap();
        let files = simwatt::output::RequestFiles::ParquetAndCsv;
        simwatt::output::write_requests(&in_memory, files, &mem.rows).unwrap();
        for f in ["requests.csv", "requests.parquet"] {
            let a = std::fs::read(streamed.join(f)).unwrap();
            let b = std::fs::read(in_memory.join(f)).unwrap();
            assert!(a == b, "{policy}: {f} differs");
        }
        let run = simwatt::runfolder::RunFolder::read(&streamed).unwrap();
        let cols = [
            "start_s",
            "end_s",
            "num_requests",
            "kv_blocks_used",
            "energy_j",
        ];
        let t = run.batches(&cols).unwrap();
        let log = &mem.result.batches;
        assert_eq!(t.rows(), log.len(), "{policy}: batch rows");
        let (start, end) = (t.f64s("start_s").unwrap(), t.f64s("end_s").unwrap());
        let (reqs, kv) = (
            t.u64s("num_requests").unwrap(),
            t.u64s("kv_blocks_used").unwrap(),
        );
        let energy = t.f64s("energy_j").unwrap();
        for i in 0..log.len() {
            let r = log.row(i);
            assert_eq!(
                start[i],
                Some(r.start_ns as f64 / 1e9),
                "{policy}: start_s, row {i}"
            );
            assert_eq!(
                end[i],
                Some(r.end_ns as f64 / 1e9),
                "{policy}: end_s, row {i}"
            );
            assert_eq!(
                reqs[i], r.num_requests as u64,
                "{policy}: num_requests, row {i}"
            );
            assert_eq!(kv[i], r.kv_blocks_used, "{policy}: kv_blocks_used, row {i}");
            assert_eq!(energy[i], Some(r.energy_j), "{policy}: energy_j, row {i}");
        }
        assert!(
            !streamed.join(".requests.spill").exists(),
            "the scratch file is removed"
        );
    }
}

#[test]
fn the_summary_only_run_of_sweeps_gives_the_same_summary() {
    // Sweeps and the capacity search keep neither the batch log nor the requests; their summary must
    // be the in-memory run's, number for number (wall-clock timings aside).
    for policy in ["vllm", "faster_transformer"] {
        let set = [
            format!("scheduler.policy={policy}"),
            "workload.requests=96".into(),
        ];
        let raw = simwatt::config::load(&quickstart(), &set).unwrap();
        let s = simwatt::config::Scenario::resolve(&caches().catalogs, &quickstart(), raw).unwrap();
        let mem = simwatt::drivers::simulate::simulate(s.clone(), &caches().tables, &|_| {})
            .unwrap()
            .summary;
        let only = simwatt::drivers::simulate::simulate_summary(s, &caches().tables).unwrap();
        let json = |v: &simwatt::metrics::Summary| {
            let mut j = serde_json::to_value(v).unwrap();
            for k in [
                "sim_wall_s",
                "sim_requests_per_wall_s",
                "sim_events_per_wall_s",
            ] {
                j.as_object_mut().unwrap().remove(k);
            }
            j
        };
        assert_eq!(json(&mem), json(&only), "{policy}");
        assert!(only.energy.energy_j.is_some_and(|e| e > 0.0));
    }
}

/// Records the phases a run reports.
#[derive(Default)]
struct Phases(std::cell::RefCell<Vec<String>>);

impl simwatt::drivers::simulate::RunProgress for Phases {
    fn started(&self, total: u64) {
        self.0.borrow_mut().push(format!("started {total}"));
    }
    fn finished(&self, n: u64) {
        self.0.borrow_mut().push(format!("finished {n}"));
    }
    fn writing(&self) {
        self.0.borrow_mut().push("writing".into());
    }
}

#[test]
fn progress_of_a_trace_run_knows_its_total_and_reaches_it_before_writing() {
    // A trace workload has no `requests`: the bar showed `22384/0 requests`; and a large run sat at
    // 999211/1000000 while its outputs were written, with no word of it.
    let tmp = tempfile::tempdir().unwrap();
    let rows: String = (0..7)
        .map(|i| format!("{}.0,{},{}\n", i, 64 + i, 8 + i))
        .collect();
    write(
        tmp.path(),
        "t.csv",
        &format!("arrived_at,num_prefill_tokens,num_decode_tokens\n{rows}"),
    );
    let text: String = std::fs::read_to_string(quickstart())
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("requests:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg = write(tmp.path(), "trace.yaml", &text);
    let out = tmp.path().join("run");
    let args = simwatt::drivers::simulate::SimulateArgs {
        config: cfg.clone(),
        overrides: vec![
            "workload.arrival={type: trace}".into(),
            "workload.lengths={type: trace}".into(),
            "workload.trace=t.csv".into(),
        ],
        out: Some(out.clone()),
        seed: None,
        quiet: true,
        force: false,
        csv: simwatt::output::CsvPolicy::Always,
        power_interval_s: simwatt::output::DEFAULT_POWER_INTERVAL_S,
        batch_rows: Default::default(),
    };
    let opts = simwatt::report::ReportOptions {
        plots: false,
        trace: false,
    };
    let scenario =
        simwatt::drivers::simulate::load_scenario(&args, &caches().catalogs).expect("resolves");
    assert_eq!(scenario.workload.requests, None);
    let phases = Phases::default();
    simwatt::drivers::simulate::simulate_and_write(scenario, &args, &out, &opts, caches(), &phases)
        .expect("runs");
    let p = phases.0.into_inner();
    assert_eq!(p.first().map(String::as_str), Some("started 7"), "{p:?}");
    let w = p
        .iter()
        .position(|e| e == "writing")
        .expect("a writing phase");
    assert_eq!(w, p.len() - 1, "writing is the last phase: {p:?}");
    assert_eq!(p[w - 1], "finished 7", "{p:?}");
}
