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
    let power = types("power.parquet");
    assert!(
        power.contains(&("state".into(), "LargeUtf8".into())),
        "{power:?}"
    );
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
    assert_eq!(
        provenance_without_command(&with),
        provenance_without_command(&without)
    );
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
