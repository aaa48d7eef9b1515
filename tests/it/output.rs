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
