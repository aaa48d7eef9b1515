//! Reports of a run folder: plots (PNG + SVG), trace.json (Chrome trace event format), summary.md, and
//! `simwatt report` remaking them from the files alone.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A small run (2 replicas, 40 requests) written by the binary to `dir/name`, with `extra` flags.
fn small_run(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec![
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "workload.requests=40",
        "--set",
        "hardware.replicas=2",
        "--set",
        "workload.arrival={type: poisson, rate: 4}",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    let o = simwatt(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// The latency and timeline figures a run with two replicas gets, with their size in pixels.
const FIGURES: [(&str, u32, u32); 5] = [
    ("ttft_cdf", 1200, 750),
    ("tpot_cdf", 1200, 750),
    ("e2e_cdf", 1200, 750),
    ("timeline_replica0", 1200, 1050),
    ("timeline_replica1", 1200, 1050),
];

/// The energy figures a run with a power profile and regions gets (their height depends on the run).
const ENERGY_FIGURES: [&str; 4] = [
    "power_timeline",
    "energy_by_replica",
    "energy_per_token",
    "regions",
];

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.len() > 24, "{}: too short", path.display());
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The stems of the plots in a run folder (`<stem>.png`), sorted.
fn plot_stems(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.strip_suffix(".png").map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_plot_renders_as_a_valid_png_and_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let run = small_run(tmp.path(), "run", &[]);
    for (stem, w, h) in FIGURES {
        assert_valid_png(&run.join(format!("{stem}.png")), w, h);
        let words: &[&str] = match stem {
            "ttft_cdf" => &[
                "time to first token (s)",
                "fraction of requests",
                "replica 1",
            ],
            "tpot_cdf" => &["token gap (s", "TPOT of a request"],
            "e2e_cdf" => &["end-to-end latency (s)", "all replicas"],
            _ => &[
                "simulated time (s)",
                "requests per batch",
                "KV cache (blocks)",
            ],
        };
        assert_valid_svg(&run.join(format!("{stem}.svg")), w, h, words);
    }
}

#[test]
fn summary_md_links_every_plot_and_the_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let run = small_run(tmp.path(), "run", &[]);
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    let stems = plot_stems(&run);
    assert_eq!(
        stems.len(),
        FIGURES.len() + ENERGY_FIGURES.len(),
        "{stems:?}"
    );
    for stem in &stems {
        assert!(
            md.contains(&format!("]({stem}.png)")),
            "{stem}.png not shown"
        );
        assert!(
            md.contains(&format!("[SVG]({stem}.svg)")),
            "{stem}.svg not linked"
        );
    }
    assert!(md.contains("(trace.json)"), "{md}");
    assert!(md.contains("ui.perfetto.dev"));
    // The key numbers, in tables with units.
    assert!(md.contains("| makespan (s) |"), "{md}");
    assert!(md.contains("## Latency (seconds)"), "{md}");
    assert!(
        md.contains("| time to first token, per request (`ttft_*_s`) | "),
        "{md}"
    );
}

#[test]
fn trace_json_follows_the_chrome_trace_event_format() {
    let tmp = tempfile::tempdir().unwrap();
    let run = small_run(tmp.path(), "run", &["--set", "hardware.pipeline_stages=2"]);
    let text = std::fs::read_to_string(run.join("trace.json")).unwrap();
    let trace: serde_json::Value = serde_json::from_str(&text).expect("trace.json is JSON");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let events = trace["traceEvents"]
        .as_array()
        .expect("a traceEvents array");
    assert!(!events.is_empty());
    let mut by_ph: BTreeMap<String, usize> = BTreeMap::new();
    // Open nestable async spans per (cat, id): each `b` is closed by an `e` of the same name, in order.
    let mut open: BTreeMap<(String, u64), Vec<String>> = BTreeMap::new();
    let mut process_names = Vec::new();
    for ev in events {
        let name = ev["name"].as_str().unwrap_or_else(|| panic!("name: {ev}"));
        let ph = ev["ph"].as_str().unwrap_or_else(|| panic!("ph: {ev}"));
        let ts = ev["ts"].as_f64().unwrap_or_else(|| panic!("ts: {ev}"));
        assert!(ts >= 0.0, "{ev}");
        assert!(ev["pid"].is_u64(), "pid: {ev}");
        assert!(ev["tid"].is_u64(), "tid: {ev}");
        *by_ph.entry(ph.to_string()).or_default() += 1;
        match ph {
            "X" => {
                let dur = ev["dur"].as_f64().unwrap_or_else(|| panic!("dur: {ev}"));
                assert!(dur >= 0.0, "{ev}");
                assert!(["prefill", "decode", "mixed"].contains(&name), "{ev}");
                assert!(ev["tid"].as_u64().unwrap() < 2, "a pipeline stage: {ev}");
            }
            "b" | "e" => {
                let key = (
                    ev["cat"].as_str().expect("cat").to_string(),
                    ev["id"].as_u64().expect("id"),
                );
                let stack = open.entry(key).or_default();
                if ph == "b" {
                    stack.push(name.to_string());
                } else {
                    assert_eq!(stack.pop().as_deref(), Some(name), "unbalanced: {ev}");
                }
            }
            "M" => {
                if name == "process_name" {
                    process_names.push(ev["args"]["name"].as_str().unwrap().to_string());
                }
            }
            "C" | "i" => assert!(ev["args"].is_object(), "{ev}"),
            other => panic!("unexpected phase {other}: {ev}"),
        }
    }
    assert!(open.values().all(Vec::is_empty), "spans left open");
    assert_eq!(process_names, vec!["replica 0", "replica 1"]);
    // One complete event per batch stage; four spans (request, queued, prefill, decode) per request.
    assert_eq!(by_ph["X"] as u64, summary["batch_stages"].as_u64().unwrap());
    assert_eq!(
        by_ph["b"] as u64,
        4 * summary["requests_completed"].as_u64().unwrap()
    );
    assert_eq!(by_ph["b"], by_ph["e"]);
}

#[test]
fn report_remakes_plots_trace_and_summary_from_the_run_folder_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let full = small_run(tmp.path(), "full", &[]);
    let bare = small_run(tmp.path(), "bare", &["--no-plots", "--no-trace"]);
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    assert!(
        !names(&bare)
            .iter()
            .any(|n| n.ends_with(".png") || n.ends_with(".svg") || n == "trace.json"),
        "{:?}",
        names(&bare)
    );
    let o = simwatt(&["report", bare.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("9 plots"), "{}", stderr(&o));
    assert_eq!(names(&bare), names(&full));
    // The same run gives the same report, whether made by simulate or later by report; only the
    // simulator's wall time in summary.md may differ.
    for stem in plot_stems(&full) {
        for ext in ["png", "svg"] {
            let f = format!("{stem}.{ext}");
            assert!(
                std::fs::read(full.join(&f)).unwrap() == std::fs::read(bare.join(&f)).unwrap(),
                "{f} differs"
            );
        }
    }
    assert!(
        std::fs::read(full.join("trace.json")).unwrap()
            == std::fs::read(bare.join("trace.json")).unwrap()
    );
    let strip = |dir: &Path| -> String {
        std::fs::read_to_string(dir.join("summary.md"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("wall time"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&full), strip(&bare));
    // The data files are untouched by the report.
    for f in ["requests.csv", "requests.parquet", "batches.parquet"] {
        assert!(
            std::fs::read(full.join(f)).unwrap() == std::fs::read(bare.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn report_of_a_folder_that_is_not_a_run_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let o = simwatt(&["report", missing.to_str().unwrap()]);
    assert_clean_failure(&o, &["nope", "not a run folder"]);
    std::fs::create_dir(&missing).unwrap();
    let o = simwatt(&["report", missing.to_str().unwrap()]);
    assert_clean_failure(&o, &["summary.json"]);
}

#[test]
fn a_run_with_no_completed_request_still_gets_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    // Llama-2-7B's context is 4,096 tokens: every request is rejected.
    let run = small_run(
        tmp.path(),
        "run",
        &[
            "--set",
            "workload.lengths={type: fixed, prompt: 5000, output: 10}",
        ],
    );
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(md.contains("rejected: context_length | 40"), "{md}");
    // No batch ran: no latency, timeline or batch-energy plots; the GPUs idled until the last arrival,
    // which the power and region plots show.
    assert_eq!(plot_stems(&run), vec!["power_timeline", "regions"]);
    assert!(!md.contains("### Latency"), "{md}");
    let trace: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("trace.json")).unwrap()).unwrap();
    let rejected = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "i" && e["name"] == "rejected_context_length")
        .count();
    assert_eq!(rejected, 40);
}

#[test]
fn help_lists_the_report_verb_and_the_report_flags() {
    let text = String::from_utf8_lossy(&simwatt(&["--help"]).stdout).to_string();
    assert!(text.contains("report"), "{text}");
    let text = String::from_utf8_lossy(&simwatt(&["simulate", "--help"]).stdout).to_string();
    for flag in ["--no-plots", "--no-trace"] {
        assert!(text.contains(flag), "{flag} missing from: {text}");
    }
    let text = String::from_utf8_lossy(&simwatt(&["report", "--help"]).stdout).to_string();
    assert!(text.contains("RUN_DIR"), "{text}");
}

#[test]
fn summary_values_added_later_show_with_their_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let run = small_run(tmp.path(), "run", &["--no-plots", "--no-trace"]);
    // A summary key this report does not know still shows, with the unit its name carries.
    let path = run.join("summary.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    s["cooling_energy_j"] = serde_json::json!(1234.5);
    s["power_w"] = serde_json::json!({"mean": 300.25, "p99": 400.0});
    std::fs::write(&path, serde_json::to_string_pretty(&s).unwrap()).unwrap();
    let o = simwatt(&["report", run.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(
        md.contains("| `cooling_energy_j` | 1234.5000 | J |"),
        "{md}"
    );
    assert!(md.contains("| `power_w.mean` | 300.2500 | W |"), "{md}");
    assert!(
        !md.contains("| `makespan_s` |"),
        "known keys stay in their own tables"
    );
}

/// Checks each energy figure of `run`: a valid PNG and an SVG of the same size holding `words`.
fn assert_energy_figures(run: &Path, words: &[(&str, &[&str])]) {
    for (stem, must_say) in words {
        let png = run.join(format!("{stem}.png"));
        let (w, h) = png_size(&png);
        assert_eq!(w, 1200, "{stem}");
        assert!((500..=3000).contains(&h), "{stem}: {h} pixels high");
        assert_valid_png(&png, w, h);
        assert_valid_svg(&run.join(format!("{stem}.svg")), w, h, must_say);
    }
}

#[test]
fn energy_plots_render_as_valid_png_and_svg() {
    let tmp = tempfile::tempdir().unwrap();
    // gcp-europe-north1 has no electricity price and no water figures: those show as n/a.
    let run = small_run(
        tmp.path(),
        "run",
        &["--set", "region=aws-us-east-1,gcp-europe-north1"],
    );
    assert_energy_figures(
        &run,
        &[
            (
                "power_timeline",
                &[
                    "power per GPU (W)",
                    "simulated time (s)",
                    "replica 1",
                    "idle",
                    "TDP (400 W)",
                ],
            ),
            (
                "energy_by_replica",
                &[
                    "GPU energy (",
                    "replica",
                    "prefill (all replicas: ",
                    "decode",
                    "idle",
                ],
            ),
            (
                "energy_per_token",
                &[
                    "energy per token (J/token)",
                    "requests in the batch",
                    "decode-only",
                ],
            ),
            (
                "regions",
                &[
                    "carbon (gCO2e)",
                    "cost (USD)",
                    "water (L)",
                    "gcp-europe-north1",
                    "n/a: no electricity price",
                    "n/a: no WUE or grid water intensity",
                    "embodied",
                ],
            ),
        ],
    );
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(md.contains("### Power and energy"), "{md}");
    assert!(md.contains("### Carbon, cost and water by region"), "{md}");
    for stem in ENERGY_FIGURES {
        assert!(md.contains(&format!("[SVG]({stem}.svg)")), "{stem}: {md}");
    }
}

#[test]
fn energy_plots_of_a_pipelined_chunked_run_show_stages_and_mixed_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let run = small_run(
        tmp.path(),
        "run",
        &[
            "--set",
            "hardware.pipeline_stages=2",
            "--set",
            "scheduler.policy=sarathi",
        ],
    );
    assert_energy_figures(
        &run,
        &[
            (
                "power_timeline",
                &["replica 0, stage 1", "replica 1, stage 0"],
            ),
            ("energy_per_token", &["mixed (prefill + decode)"]),
        ],
    );
}

#[test]
fn energy_per_replica_adds_up_to_the_summary_split() {
    // The plot splits each stage's energy between prefill and decode by tokens from batches.parquet; the
    // summary sums what the simulator charged each request. They agree, with mixed batches (sarathi),
    // padding (faster_transformer) and pipeline stages.
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("sarathi", ["--set", "scheduler.policy=sarathi"]),
        ("ft", ["--set", "scheduler.policy=faster_transformer"]),
        ("pp", ["--set", "hardware.pipeline_stages=2"]),
    ] {
        let dir = small_run(tmp.path(), name, &[&extra[..], &["--no-plots"]].concat());
        let run = simwatt::runfolder::RunFolder::read(&dir).unwrap();
        let e = simwatt::plots::energy_by_replica(&run)
            .unwrap()
            .expect("a run with a power profile");
        assert_eq!(e.prefill_j.len(), 2, "{name}");
        let close = |a: f64, key: &str| {
            let b = run.summary_f64(key).unwrap();
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "{name} {key}: {a} vs {b}"
            );
        };
        close(e.prefill_j.iter().sum(), "prefill_energy_j");
        close(e.decode_j.iter().sum(), "decode_energy_j");
        close(e.idle_j.iter().sum(), "idle_energy_j");
        assert!(e.prefill_j.iter().all(|v| *v > 0.0), "{name}: {e:?}");
    }
}

/// Rewrites the parquet file `path` in row groups of `rows` rows (the simulator writes 65,536).
fn rewrite_in_row_groups(path: &Path, rows: usize) {
    use polars::prelude::*;
    let mut df = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .with_row_group_size(Some(rows))
        .finish(&mut df)
        .unwrap();
}

#[test]
fn figures_folded_chunk_by_chunk_equal_figures_of_the_whole_tables() {
    // The figures read batches.parquet and requests.parquet in chunks of whole row groups and fold
    // them; cut into many small chunks (a batch's pipeline stages in different chunks), the tables
    // give the same figures as read in one chunk. Three replicas, so the CDFs have a line per replica.
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("pp", ["--set", "hardware.pipeline_stages=2"]),
        ("sarathi", ["--set", "scheduler.policy=sarathi"]),
    ] {
        let dir = small_run(
            tmp.path(),
            name,
            &[&extra[..], &["--set", "hardware.replicas=3", "--no-plots"]].concat(),
        );
        let whole = simwatt::runfolder::RunFolder::read(&dir).unwrap();
        let cut = tmp.path().join(format!("{name}-cut"));
        std::fs::create_dir(&cut).unwrap();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, cut.join(f.file_name().unwrap())).unwrap();
        }
        rewrite_in_row_groups(&cut.join("batches.parquet"), 37);
        rewrite_in_row_groups(&cut.join("requests.parquet"), 7);
        let mut chunked = simwatt::runfolder::RunFolder::read(&cut).unwrap();
        chunked.chunk_rows = 1;
        let mut chunks = 0;
        chunked
            .batches_chunks(&["replica"], |_| {
                chunks += 1;
                Ok(())
            })
            .unwrap();
        assert!(chunks > 10, "{name}: {chunks} chunks");
        let figures = |run: &simwatt::runfolder::RunFolder| {
            use simwatt::plots::*;
            format!(
                "{:?}\n{:?}\n{:?}\n{:?}",
                latency_cdfs(run).unwrap(),
                replica_timelines(run).unwrap(),
                energy_by_replica(run).unwrap().expect("a power profile"),
                energy_per_token(run)
                    .unwrap()
                    .expect("batches with decodes"),
            )
        };
        assert_eq!(figures(&chunked), figures(&whole), "{name}");
    }
}

#[test]
fn a_run_without_a_power_profile_has_no_energy_plots_and_no_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_without_power_profile(tmp.path());
    let o = simwatt_command()
        .args([
            "simulate",
            "-c",
            cfg.to_str().unwrap(),
            "--set",
            "workload.requests=20",
            "--set",
            "region=null",
            "-o",
            "run",
            "-q",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run = tmp.path().join("run");
    assert!(!run.join("power.parquet").exists());
    let stems = plot_stems(&run);
    assert_eq!(
        stems,
        vec!["e2e_cdf", "timeline_replica0", "tpot_cdf", "ttft_cdf"],
        "only the latency and timeline plots"
    );
    // Remade from the files, still without them and without an error.
    let o = simwatt(&["report", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("4 plots"), "{}", stderr(&o));
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(!md.contains("Power and energy"), "{md}");
    assert!(!md.contains("regions.png"), "{md}");
}

#[test]
fn a_run_with_a_power_profile_and_no_region_has_no_region_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let run = small_run(tmp.path(), "run", &["--set", "region=null"]);
    let stems = plot_stems(&run);
    for stem in ["power_timeline", "energy_by_replica", "energy_per_token"] {
        assert!(stems.iter().any(|s| s == stem), "{stem} missing: {stems:?}");
    }
    assert!(!stems.iter().any(|s| s == "regions"), "{stems:?}");
}

#[test]
fn a_sweep_plot_draws_a_metric_against_an_axis_with_a_line_per_value() {
    let tmp = tempfile::tempdir().unwrap();
    // As a merged sweep writes it: ids, axes, status, metrics.
    let csv = "run,scheduler.policy,workload.arrival.rate,status,ttft_p90_s,j_per_output_token\n\
               0,vllm,2,ok,0.10,0.40\n1,vllm,4,ok,0.15,0.35\n2,orca,2,ok,0.12,\n3,orca,4,ok,0.20,0.30\n\
               4,vllm,4,ok,0.17,0.36\n5,orca,8,failed,,\n";
    std::fs::write(tmp.path().join("results.csv"), csv).unwrap();
    let chart = simwatt::plots::sweep::sweep_chart(
        tmp.path(),
        "workload.arrival.rate",
        "ttft_p90_s",
        Some("scheduler.policy"),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(chart.runs, 5);
    let vllm = chart.series.iter().find(|s| s.label == "vllm").unwrap();
    // Two replicates at rate 4: mean 0.16, range 0.15-0.17.
    let p = vllm.points[1];
    assert_eq!(p.0, 4.0);
    assert!(
        (p.1 - 0.16).abs() < 1e-12 && p.2 == 0.15 && p.3 == 0.17,
        "{p:?}"
    );
    let o = simwatt(&[
        "plot",
        tmp.path().to_str().unwrap(),
        "--x",
        "workload.arrival.rate",
        "--y",
        "ttft_p90_s",
        "--by",
        "scheduler.policy",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stem = "sweep_ttft_p90_s_vs_workload_arrival_rate_by_scheduler_policy";
    let png = std::fs::read(tmp.path().join(format!("{stem}.png"))).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000);
    let svg = std::fs::read_to_string(tmp.path().join(format!("{stem}.svg"))).unwrap();
    assert_eq!(
        roxmltree::Document::parse(&svg)
            .unwrap()
            .root_element()
            .tag_name()
            .name(),
        "svg"
    );
    let md = std::fs::read_to_string(tmp.path().join("sweep.md")).unwrap();
    assert!(md.contains(&format!("![{stem}]({stem}.png)")), "{md}");
    assert!(md.contains("| vllm | 4 | 0.16 | 0.15 | 0.17 |"), "{md}");
    // The key numbers of every point, with units: the two replicates of (vllm, 4) averaged, the failed
    // run counted but not averaged, metrics the table lacks named.
    assert!(
        md.contains(
            "| scheduler.policy | workload.arrival.rate | runs ok | TTFT p90 (s) | energy per output token (J/token) |"
        ),
        "{md}"
    );
    assert!(md.contains("| vllm | 4 | 2/2 | 0.16 | 0.355 |"), "{md}");
    assert!(md.contains("| orca | 2 | 1/1 | 0.12 | - |"), "{md}");
    assert!(md.contains("| orca | 8 | 0/1 | - | - |"), "{md}");
    assert!(md.contains("not shown: `requests_per_s`"), "{md}");
    let o = simwatt(&[
        "plot",
        tmp.path().to_str().unwrap(),
        "--x",
        "rate",
        "--y",
        "ttft_p90_s",
    ]);
    assert_clean_failure(&o, &["results.csv", "`--x` = rate", "missing"]);
}

#[test]
fn sweep_plot_never_averages_over_another_axis_silently() {
    let tmp = tempfile::tempdir().unwrap();
    // Two GPUs at each rate: one line would merge them.
    let csv = "run,hardware.gpu,workload.arrival.rate,status,ttft_p90_s\n\
               0,a100,2,ok,0.20\n1,h100,2,ok,0.10\n2,a100,4,ok,0.40\n3,h100,4,ok,0.12\n";
    std::fs::write(tmp.path().join("results.csv"), csv).unwrap();
    let dir = tmp.path().to_str().unwrap();
    let plot = |extra: &[&str]| {
        let mut args = vec![
            "plot",
            dir,
            "--x",
            "workload.arrival.rate",
            "--y",
            "ttft_p90_s",
        ];
        args.extend_from_slice(extra);
        simwatt(&args)
    };
    assert_clean_failure(
        &plot(&[]),
        &[
            "results.csv",
            "`hardware.gpu` has 2 values among the runs plotted (a100, h100)",
            "--where hardware.gpu=a100",
            "--by hardware.gpu",
            "--average",
        ],
    );
    // One GPU: its own numbers, the filter in the file name and the caption, units on the axes.
    let o = plot(&["--where", "hardware.gpu=a100"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stem = "sweep_ttft_p90_s_vs_workload_arrival_rate_where_hardware_gpu_a100";
    let md = std::fs::read_to_string(tmp.path().join("sweep.md")).unwrap();
    assert!(md.contains("| - | 4 | 0.4 | 0.4 | 0.4 |"), "{md}");
    assert!(md.contains("runs with hardware.gpu = a100"), "{md}");
    assert_valid_svg(
        &tmp.path().join(format!("{stem}.svg")),
        1200,
        750,
        &["workload.arrival.rate (requests/s)", "ttft_p90_s (s)"],
    );
    // Averaging when asked, and said.
    let o = plot(&["--average"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(tmp.path().join("sweep.md")).unwrap();
    assert!(md.contains("and over hardware.gpu (a100, h100)"), "{md}");
    assert!(md.contains("| - | 4 | 0.26 | 0.12 | 0.4 |"), "{md}");
    // A value no run has, a retired metric name.
    assert_clean_failure(
        &plot(&["--where", "hardware.gpu=b200"]),
        &["hardware.gpu=b200", "a100, h100"],
    );
    let o = simwatt(&[
        "plot",
        dir,
        "--x",
        "workload.arrival.rate",
        "--y",
        "ttft_s_p90",
    ]);
    assert_clean_failure(&o, &["`ttft_s_p90` is now called `ttft_p90_s`"]);
}

#[test]
fn a_cut_trace_holds_every_event_before_the_cut_and_none_after() {
    // The trace reads only the first rows of each table; with small limits, compare it with the full
    // tables: every batch stage and request before the cut is in, none after.
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_run(tmp.path(), "cut", &["--no-plots", "--no-trace"]);
    let run = simwatt::runfolder::RunFolder::read(&dir).unwrap();
    let batches = run.batches(&["start_s"]).unwrap();
    let starts = batches.f64s_required("start_s").unwrap();
    let arrivals = run
        .requests(&["arrival_s"])
        .unwrap()
        .f64s_required("arrival_s")
        .unwrap();
    for (max_stages, max_requests) in [(50, 1000), (1_000_000, 10), (120, 25)] {
        let t = simwatt::trace::trace_events_cut(&run, max_stages, max_requests).unwrap();
        let cut = t.other["cut_at_s"].as_f64().expect("the trace is cut");
        let mut sorted = starts.clone();
        sorted.sort_by(f64::total_cmp);
        let mut a = arrivals.clone();
        a.sort_by(f64::total_cmp);
        let expect_cut = sorted
            .get(max_stages)
            .copied()
            .unwrap_or(f64::INFINITY)
            .min(a.get(max_requests).copied().unwrap_or(f64::INFINITY));
        assert_eq!(cut, expect_cut, "limits {max_stages}, {max_requests}");
        let shown = t.events.iter().filter(|e| e["cat"] == "batch").count();
        assert_eq!(shown, starts.iter().filter(|s| **s < cut).count());
        let requests = t
            .events
            .iter()
            .filter(|e| {
                e["cat"] == "request"
                    && (e["ph"] == "i" || (e["ph"] == "b" && e["name"] == "request"))
            })
            .count();
        assert_eq!(requests, arrivals.iter().filter(|s| **s < cut).count());
        assert_eq!(t.other["batch_stages"], starts.len());
        assert_eq!(t.other["requests"], arrivals.len());
    }
}
