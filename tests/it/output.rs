//! The files of a run folder: their formats, and which of them are written.

use crate::common::*;
use std::path::Path;

/// Runs the quickstart with 64 requests into `out`, with `extra` flags.
fn run(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "simulate",
        "-c",
        "experiments/quickstart.yaml",
        "--set",
        "workload.requests=64",
        "-o",
        out.to_str().unwrap(),
        "-q",
        "--no-plots",
        "--no-trace",
    ];
    args.extend_from_slice(extra);
    let o = simwatt(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn parquet_string_columns_are_written_as_large_utf8_not_string_view() {
    // Polars writes strings as Arrow string_view by default, which Spark and Arrow before 15 cannot
    // open; every Parquet table of a run folder must carry plain LargeUtf8 instead.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run(&out, &[]);
    let types = |f: &str| assert_no_view_types(&out.join(f));
    let requests = types("requests.parquet");
    assert!(
        requests.contains(&("status".into(), "LargeUtf8".into())),
        "{requests:?}"
    );
    assert!(
        requests.contains(&("request_id".into(), "UInt64".into())),
        "{requests:?}"
    );
    types("power.parquet");
    types("batches.parquet");
    // And simwatt reads its own files back, strings included.
    let run = simwatt::runfolder::RunFolder::read(&out).unwrap();
    let csv = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    assert_eq!(run.summary["requests_total"], 64);
    assert_eq!(csv.lines().count(), 65, "header and 64 rows");
    assert!(csv.lines().nth(1).unwrap().contains(",completed,"), "{csv}");
}

/// `summary.json` without the simulator's wall-clock timings, which differ from run to run.
fn summary_without_wall(dir: &Path) -> serde_json::Value {
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    s.as_object_mut()
        .unwrap()
        .retain(|k, _| !k.contains("wall"));
    s
}

/// `provenance.json` without the command line, which names the output folder.
fn provenance_without_command(dir: &Path) -> serde_json::Value {
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("provenance.json")).unwrap())
            .unwrap();
    p.as_object_mut().unwrap().remove("command");
    p
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn no_csv_writes_no_requests_csv_and_every_other_file_the_same() {
    // A million-request run wrote 721 MB, most of it requests.csv repeating requests.parquet.
    let tmp = tempfile::tempdir().unwrap();
    let (with, without) = (tmp.path().join("with"), tmp.path().join("without"));
    run(&with, &[]);
    run(&without, &["--no-csv"]);
    let mut expected = listing(&with);
    expected.retain(|f| f != "requests.csv");
    assert!(listing(&with).contains(&"requests.csv".to_string()));
    assert_eq!(listing(&without), expected);
    for f in [
        "requests.parquet",
        "batches.parquet",
        "power.parquet",
        "config.resolved.yaml",
    ] {
        assert!(
            std::fs::read(with.join(f)).unwrap() == std::fs::read(without.join(f)).unwrap(),
            "{f} differs with --no-csv"
        );
    }
    assert_eq!(summary_without_wall(&with), summary_without_wall(&without));
    // Provenance differs only in the command and in saying whether requests.csv was written.
    let (mut pw, mut po) = (
        provenance_without_command(&with),
        provenance_without_command(&without),
    );
    assert_eq!(pw["outputs"]["requests_csv"], true);
    assert_eq!(po["outputs"]["requests_csv"], false);
    pw["outputs"]["requests_csv"] = serde_json::Value::Null;
    po["outputs"]["requests_csv"] = serde_json::Value::Null;
    assert_eq!(pw, po);
    // summary.md lists the files the folder holds; its sections before the simulator's own timing
    // are the same.
    let md = |d: &Path| std::fs::read_to_string(d.join("summary.md")).unwrap();
    let (a, b) = (md(&with), md(&without));
    let head = |m: &str| m.split("## Simulator").next().unwrap().to_string();
    assert_eq!(head(&a), head(&b));
    assert!(a.contains("`requests.csv` / `requests.parquet`"), "{a}");
    assert!(
        !b.contains("requests.csv") && b.contains("`requests.parquet` (one row per request)"),
        "{b}"
    );
}

/// The rows of power.parquet of each (replica, stage) group tile the span [0, end] without gaps or
/// overlaps, each row's states add up to its length, and the rows' energies add up to the run's
/// (`energy_j`, `idle_energy_j` of summary.json): with intervals (default and an odd width) and with
/// one row per segment.
#[test]
fn power_rows_tile_the_span_and_add_up_to_the_run_energy() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows_seen = Vec::new();
    for interval in ["0.1", "0.0137", "0"] {
        let out = tmp.path().join(format!("run-{interval}"));
        run(&out, &["--power-interval", interval]);
        let run = simwatt::runfolder::RunFolder::read(&out).unwrap();
        let t = run
            .power(simwatt::runfolder::POWER.columns)
            .unwrap()
            .unwrap();
        let col = |c: &str| t.f64s_required(c).unwrap();
        let (replica, stage) = (t.u64s("replica").unwrap(), t.u64s("stage").unwrap());
        let (start, end) = (col("start_s"), col("end_s"));
        let (busy, host, idle) = (col("busy_s"), col("host_s"), col("idle_s"));
        let (w, gpus) = (col("power_w"), t.u64s("gpus").unwrap());
        let (energy, idle_energy) = (col("energy_j"), col("idle_energy_j"));
        let span = run.summary["makespan_s"].as_f64().unwrap();
        let mut last_end = std::collections::BTreeMap::new();
        for i in 0..t.rows() {
            let len = end[i] - start[i];
            assert!(len > 0.0, "row {i}: empty");
            assert!((busy[i] + host[i] + idle[i] - len).abs() < 1e-9, "row {i}");
            assert!((w[i] * gpus[i] as f64 * len - energy[i]).abs() < 1e-9 * energy[i].max(1.0));
            let prev = last_end
                .insert((replica[i], stage[i]), end[i])
                .unwrap_or(0.0);
            assert!(
                (start[i] - prev).abs() < 1e-9,
                "row {i}: starts at {} after {prev}",
                start[i]
            );
            if interval == "0" {
                let states = [busy[i], host[i], idle[i]]
                    .iter()
                    .filter(|x| **x > 0.0)
                    .count();
                assert_eq!(states, 1, "row {i}: one segment, one state");
            } else {
                let width: f64 = interval.parse().unwrap();
                // A row lies within one interval, or is a run of whole idle intervals.
                let k = (start[i] / width).round();
                assert!(
                    (start[i] - k * width).abs() < 1e-6,
                    "row {i} starts off the grid"
                );
                assert!(
                    len <= width + 1e-9 || idle[i] == len,
                    "row {i}: {len} s not idle"
                );
            }
        }
        for e in last_end.values() {
            assert!(
                (e - span).abs() < 1e-6,
                "a group ends at {e}, the span at {span}"
            );
        }
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        let want = run.summary["energy_j"].as_f64().unwrap();
        assert!(
            (sum(&energy) - want).abs() < 1e-9 * want,
            "{} vs {want}",
            sum(&energy)
        );
        let want_idle = run.summary["idle_energy_j"].as_f64().unwrap();
        assert!((sum(&idle_energy) - want_idle).abs() < 1e-6 * want.max(1.0));
        let prov = run.provenance.as_ref().unwrap();
        assert_eq!(
            prov["outputs"]["power_interval_s"].as_f64().unwrap(),
            interval.parse::<f64>().unwrap()
        );
        rows_seen.push(t.rows());
    }
    // Intervals of 0.1 s hold fewer rows than one row per segment.
    assert!(rows_seen[0] < rows_seen[2], "{rows_seen:?}");
}

#[test]
fn a_bad_power_interval_is_refused_naming_the_flag() {
    for bad in ["-1", "nan", "inf", "1e-9"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let o = simwatt(&[
            "simulate",
            "-c",
            "experiments/quickstart.yaml",
            "-o",
            out.to_str().unwrap(),
            "-q",
            &format!("--power-interval={bad}"),
        ]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--power-interval"), "{}", stderr(&o));
        assert!(!out.exists());
    }
}

#[test]
fn a_static_batchs_decode_steps_as_one_row_change_no_request_and_no_total() {
    // faster_transformer's steps between two completions of a static batch's members are one row of
    // batches.parquet (column `steps`) unless `--step-rows` asks for one row per step. Each step is
    // still priced on its own: the requests' timelines are the same to the nanosecond, tokens and
    // steps add up, and energies agree to rounding (only the order of the sums differs).
    let tmp = tempfile::tempdir().unwrap();
    let (runs, steps) = (tmp.path().join("runs"), tmp.path().join("steps"));
    let set = ["--set", "scheduler.policy=faster_transformer"];
    run(&runs, &set);
    run(&steps, &[set[0], set[1], "--step-rows"]);
    let read = |d: &Path| simwatt::runfolder::RunFolder::read(d).unwrap();
    let (a, b) = (read(&runs), read(&steps));

    let timeline = [
        "request_id",
        "arrival_s",
        "scheduled_s",
        "first_token_s",
        "completion_s",
        "ttft_s",
        "e2e_s",
        "tpot_s",
        "itl_max_s",
        "output_tokens",
    ];
    let (ra, rb) = (
        a.requests(&timeline).unwrap(),
        b.requests(&timeline).unwrap(),
    );
    for c in timeline {
        assert_eq!(ra.f64s(c).unwrap(), rb.f64s(c).unwrap(), "requests.{c}");
    }
    let (ea, eb) = (ra_energy(&a), ra_energy(&b));
    assert_eq!(ea.len(), eb.len());
    for (x, y) in ea.iter().zip(&eb) {
        assert!(
            (x - y).abs() <= 1e-9 * y.abs(),
            "request energy {x} against {y}"
        );
    }

    let cols = [
        "steps",
        "start_s",
        "end_s",
        "decode_tokens",
        "prefill_tokens",
        "energy_j",
    ];
    let (ba, bb) = (a.batches(&cols).unwrap(), b.batches(&cols).unwrap());
    let sum = |t: &simwatt::runfolder::Table, c: &str| -> f64 {
        t.f64s_required(c).unwrap().iter().sum()
    };
    assert!(bb.u64s("steps").unwrap().iter().all(|&s| s == 1));
    assert!(
        ba.rows() * 3 < bb.rows(),
        "runs of steps fold the log: {} rows against {}",
        ba.rows(),
        bb.rows()
    );
    assert_eq!(
        sum(&ba, "steps") as usize,
        bb.rows(),
        "every step is in a run"
    );
    for c in ["decode_tokens", "prefill_tokens"] {
        assert_eq!(sum(&ba, c), sum(&bb, c), "{c}");
    }
    let (ja, jb) = (sum(&ba, "energy_j"), sum(&bb, "energy_j"));
    assert!(
        (ja - jb).abs() <= 1e-9 * jb,
        "batch energy {ja} against {jb}"
    );
    let last = |t: &simwatt::runfolder::Table| {
        t.f64s_required("end_s")
            .unwrap()
            .into_iter()
            .fold(0.0, f64::max)
    };
    assert_eq!(last(&ba), last(&bb));

    // The power table tiles the same span with the same energy.
    let power = |d: &Path| {
        let t = read(d)
            .power(&["energy_j", "busy_s", "host_s"])
            .unwrap()
            .expect("the quickstart has a power profile");
        (sum(&t, "energy_j"), sum(&t, "busy_s"), sum(&t, "host_s"))
    };
    let (pa, pb) = (power(&runs), power(&steps));
    assert!(
        (pa.0 - pb.0).abs() <= 1e-9 * pb.0,
        "power energy {pa:?} against {pb:?}"
    );
    assert!(
        (pa.1 - pb.1).abs() <= 1e-6 * pb.1,
        "busy time {pa:?} against {pb:?}"
    );
    assert!(
        (pa.2 - pb.2).abs() <= 1e-6 * pb.2.max(1e-9),
        "host time {pa:?} against {pb:?}"
    );

    // The summaries agree but for the events the loop needed and the wall-clock figures.
    let summary = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap()
    };
    let (sa, sb) = (summary(&runs), summary(&steps));
    assert!(sa["events"].as_u64().unwrap() * 3 < sb["events"].as_u64().unwrap());
    for (k, v) in sb.as_object().unwrap() {
        if k == "vidur_baseline_energy_j" {
            // Vidur's power curve is not linear in utilisation, and a run's row has its steps' mean.
            let (x, y) = (sa[k].as_f64().unwrap(), v.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-5 * y, "{k}: {x} against {y}");
        } else if !(k.starts_with("sim_") || k == "events") {
            assert_json_close(&sa[k], v, k);
        }
    }
}

/// `a` and `b` are the same JSON but for numbers, which agree to 1e-9 relative.
fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * y.abs(), "{at}: {x} against {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_json_close(p, q, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (k, q) in y {
                assert_json_close(&x[k], q, &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

fn ra_energy(run: &simwatt::runfolder::RunFolder) -> Vec<f64> {
    run.requests(&["energy_j"])
        .unwrap()
        .f64s_required("energy_j")
        .unwrap()
}
