//! Published trace formats (`workload.trace_format`): each sample in tests/data/traces/ (sources in
//! its PROVENANCE.md) read with trace arrivals and lengths, checked against its rows, and bad input
//! refused with the file, column, row and value named.

use crate::common::root;
use simwatt::config::{ArrivalConfig, LengthsConfig, TraceFormat, WorkloadConfig};
use simwatt::workload::{generate, trace_block_hashes, RequestSpec};
use std::path::{Path, PathBuf};

fn sample(name: &str) -> PathBuf {
    root().join("tests/data/traces").join(name)
}

fn workload(trace: &Path, format: TraceFormat) -> WorkloadConfig {
    WorkloadConfig {
        requests: None,
        arrival: ArrivalConfig::Trace { time_scale: 1.0 },
        lengths: LengthsConfig::Trace,
        trace: Some(trace.to_path_buf()),
        trace_format: format,
        trace_model: None,
        trace_skip_failed: false,
        shared_prefix: None,
        sessions: None,
        deferrable: None,
    }
}

fn run(w: &WorkloadConfig) -> Vec<RequestSpec> {
    generate(Path::new("c.yaml"), w, 1).unwrap()
}

fn err(w: &WorkloadConfig) -> String {
    generate(Path::new("c.yaml"), w, 1).unwrap_err().to_string()
}

fn assert_says(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "`{n}` not in: {msg}");
    }
}

fn arrivals(r: &[RequestSpec]) -> Vec<u64> {
    r.iter().map(|r| r.arrival_ns).collect()
}

fn lengths(r: &[RequestSpec]) -> Vec<(u32, u32)> {
    r.iter()
        .map(|r| (r.prompt_tokens, r.output_tokens))
        .collect()
}

#[test]
fn azure_2023_code_sample_arrives_relative_to_its_first_row() {
    let r = run(&workload(
        &sample("AzureLLMInferenceTrace_code.csv"),
        TraceFormat::Azure,
    ));
    assert_eq!(r.len(), 12);
    // 18:17:03.9799600 is 0; 18:17:04.0319600 is 52 ms later; 18:17:05.3790470 is 1.399087 s later.
    assert_eq!(r[0].arrival_ns, 0);
    assert_eq!(r[1].arrival_ns, 52_000_000);
    assert_eq!(r[8].arrival_ns, 1_299_312_000);
    assert_eq!(r[9].arrival_ns, 1_299_337_000);
    assert_eq!(r[11].arrival_ns, 1_399_087_000);
    assert_eq!(
        lengths(&r),
        vec![
            (4808, 10),
            (3180, 8),
            (110, 27),
            (7433, 14),
            (34, 12),
            (374, 14),
            (6985, 9),
            (34, 23),
            (1145, 7),
            (201, 24),
            (137, 9),
            (7427, 8)
        ]
    );
}

#[test]
fn azure_2023_conv_sample_reads_every_row() {
    let r = run(&workload(
        &sample("AzureLLMInferenceTrace_conv.csv"),
        TraceFormat::Azure,
    ));
    assert_eq!(r.len(), 10);
    // 18:15:46.6805900 -> 18:15:50.9951690 and -> 18:15:55.1455750.
    assert_eq!(r[1].arrival_ns, 4_314_579_000);
    assert_eq!(r[9].arrival_ns, 8_464_985_000);
    assert_eq!(lengths(&r)[..3], [(374, 44), (396, 109), (879, 55)]);
    assert_eq!(r[9].prompt_tokens, 209);
    assert_eq!(r[9].output_tokens, 152);
}

#[test]
fn azure_2024_samples_with_utc_offsets_are_read() {
    let r = run(&workload(
        &sample("AzureLLMInferenceTrace_code_1week.notebook.csv"),
        TraceFormat::Azure,
    ));
    assert_eq!(
        arrivals(&r),
        vec![0, 7_405_000, 12_384_000, 27_915_000, 73_960_000]
    );
    assert_eq!(
        lengths(&r),
        vec![(2162, 5), (2399, 6), (76, 15), (2376, 1), (7670, 8)]
    );
    let r = run(&workload(
        &sample("AzureLLMInferenceTrace_conv_1week.notebook.csv"),
        TraceFormat::Azure,
    ));
    assert_eq!(
        arrivals(&r),
        vec![0, 40_520_000, 156_825_000, 157_769_000, 247_116_000]
    );
    assert_eq!(r[4].prompt_tokens, 617);
    assert_eq!(r[4].output_tokens, 104);
}

#[test]
fn burstgpt_sample_arrives_relative_to_its_first_row_and_filters_by_model() {
    let path = sample("BurstGPT_1.quoted.csv");
    let r = run(&workload(&path, TraceFormat::Burstgpt));
    assert_eq!(arrivals(&r), vec![0, 40_000_000_000, 113_000_000_000]);
    assert_eq!(lengths(&r), vec![(472, 18), (1087, 230), (417, 276)]);
    let mut w = workload(&path, TraceFormat::Burstgpt);
    w.trace_model = Some("GPT-4".into());
    let r = run(&w);
    assert_eq!(arrivals(&r), vec![0]);
    assert_eq!(lengths(&r), vec![(417, 276)]);
    w.trace_model = Some("Claude".into());
    assert_says(
        &err(&w),
        &["BurstGPT_1.quoted.csv", "Claude", "ChatGPT, GPT-4"],
    );
}

#[test]
fn mooncake_samples_read_lengths_arrivals_and_block_hashes() {
    let path = sample("conversation_trace.jsonl");
    let w = workload(&path, TraceFormat::Mooncake);
    let r = run(&w);
    assert_eq!(r.len(), 12);
    // Ten requests at 0 ms, then two at 3000 ms.
    assert!(r[..10].iter().all(|r| r.arrival_ns == 0));
    assert_eq!(r[10].arrival_ns, 3_000_000_000);
    assert_eq!(r[11].arrival_ns, 3_000_000_000);
    assert_eq!(
        lengths(&r)[..4],
        [(6758, 500), (7322, 490), (7236, 794), (2290, 316)]
    );
    assert_eq!(r[11].prompt_tokens, 87169);
    assert_eq!(r[11].output_tokens, 402);
    let h = trace_block_hashes(Path::new("c.yaml"), &w)
        .unwrap()
        .unwrap();
    assert_eq!(h.block_tokens, 512);
    assert_eq!(h.per_request.len(), 12);
    assert_eq!(h.per_request[3], vec![0, 42, 43, 44, 45]);
    // Every conversation shares its first block (id 0), the prefix reuse prefix caching finds.
    assert!(h.per_request.iter().all(|ids| ids[0] == 0));
    for (ids, r) in h.per_request.iter().zip(&r) {
        assert_eq!(ids.len(), r.prompt_tokens.div_ceil(512) as usize);
    }
    // The first `requests` only; none for other formats or synthetic lengths.
    let mut first = w.clone();
    first.requests = Some(2);
    let h2 = trace_block_hashes(Path::new("c.yaml"), &first)
        .unwrap()
        .unwrap();
    assert_eq!(h2.per_request, h.per_request[..2].to_vec());
    let mut synthetic = w.clone();
    synthetic.lengths = LengthsConfig::Fixed {
        prompt: 5,
        output: 5,
    };
    assert_eq!(
        trace_block_hashes(Path::new("c.yaml"), &synthetic).unwrap(),
        None
    );

    let r = run(&workload(
        &sample("synthetic_trace.jsonl"),
        TraceFormat::Mooncake,
    ));
    assert_eq!(
        arrivals(&r),
        vec![0, 0, 40_000_000, 277_000_000, 471_000_000]
    );
    assert_eq!(lengths(&r)[0], (40160, 6));
}

#[test]
fn trace_arrivals_and_trace_lengths_work_alone_with_every_format() {
    for (name, format) in [
        ("AzureLLMInferenceTrace_code.csv", TraceFormat::Azure),
        ("BurstGPT_1.quoted.csv", TraceFormat::Burstgpt),
        ("conversation_trace.jsonl", TraceFormat::Mooncake),
    ] {
        let both = run(&workload(&sample(name), format));
        let mut w = workload(&sample(name), format);
        w.lengths = LengthsConfig::Fixed {
            prompt: 7,
            output: 3,
        };
        let a = run(&w);
        assert_eq!(arrivals(&a), arrivals(&both), "{name}");
        assert!(lengths(&a).iter().all(|l| *l == (7, 3)), "{name}");
        let mut w = workload(&sample(name), format);
        w.arrival = ArrivalConfig::AllAtOnce;
        let l = run(&w);
        assert_eq!(lengths(&l), lengths(&both), "{name}");
        assert!(l.iter().all(|r| r.arrival_ns == 0), "{name}");
    }
}

#[test]
fn time_scale_applies_to_published_formats() {
    let mut w = workload(&sample("BurstGPT_1.quoted.csv"), TraceFormat::Burstgpt);
    w.arrival = ArrivalConfig::Trace { time_scale: 0.5 };
    assert_eq!(arrivals(&run(&w)), vec![0, 20_000_000_000, 56_500_000_000]);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn zero_output_rows_are_refused_naming_the_row_unless_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "b.csv",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
         5,ChatGPT,472,18,490,Conversation log\n\
         7,GPT-4,300,0,300,API log\n\
         9,ChatGPT,30,2,32,Conversation log\n",
    );
    let mut w = workload(&p, TraceFormat::Burstgpt);
    assert_says(
        &err(&w),
        &[
            "b.csv",
            "Response tokens",
            "row 2",
            "0 output tokens",
            "trace_skip_failed",
        ],
    );
    w.trace_skip_failed = true;
    let r = run(&w);
    assert_eq!(arrivals(&r), vec![0, 4_000_000_000]);
    assert_eq!(lengths(&r), vec![(472, 18), (30, 2)]);
    // The first row used sets time 0 when it is the one left out.
    let p = write(
        tmp.path(),
        "m.jsonl",
        "{\"timestamp\": 100, \"input_length\": 10, \"output_length\": 0, \"hash_ids\": [1]}\n\
         {\"timestamp\": 600, \"input_length\": 600, \"output_length\": 4, \"hash_ids\": [1, 2]}\n",
    );
    let mut w = workload(&p, TraceFormat::Mooncake);
    assert_says(
        &err(&w),
        &["m.jsonl", "output_length", "row 1", "0 output tokens"],
    );
    w.trace_skip_failed = true;
    let r = run(&w);
    assert_eq!(arrivals(&r), vec![0]);
    assert_eq!(lengths(&r), vec![(600, 4)]);
    let h = trace_block_hashes(Path::new("c.yaml"), &w)
        .unwrap()
        .unwrap();
    assert_eq!(h.per_request, vec![vec![1, 2]]);
}

#[test]
fn bad_published_traces_name_file_column_row_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let azure_head = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
    let burst_head = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n";
    let m = |ts: &str, i: &str, o: &str, h: &str| {
        format!("{{\"timestamp\": {ts}, \"input_length\": {i}, \"output_length\": {o}, \"hash_ids\": {h}}}\n")
    };
    let ok = m("0", "10", "2", "[7]");
    let cases: Vec<(&str, TraceFormat, String, Vec<&str>)> = vec![
        // Missing columns.
        (
            "a.csv",
            TraceFormat::Azure,
            "TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,5\n".into(),
            vec!["GeneratedTokens", "missing", "TIMESTAMP, ContextTokens"],
        ),
        (
            "b.csv",
            TraceFormat::Burstgpt,
            "Timestamp,Model,Request tokens\n5,ChatGPT,4\n".into(),
            vec!["Response tokens", "missing"],
        ),
        // A Vidur trace read as Azure names what Azure needs.
        (
            "v.csv",
            TraceFormat::Azure,
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,5\n".into(),
            vec!["TIMESTAMP", "missing", "arrived_at"],
        ),
        // Bad timestamps.
        (
            "a.csv",
            TraceFormat::Azure,
            format!("{azure_head}2023-11-16 18:15:46.6805900,5,5\n2023-11-16 18:61:00,5,5\n"),
            vec![
                "TIMESTAMP",
                "row 2",
                "`2023-11-16 18:61:00`",
                "not a date and time",
            ],
        ),
        (
            "a.csv",
            TraceFormat::Azure,
            format!("{azure_head}1700000000,5,5\n"),
            vec!["TIMESTAMP", "row 1", "`1700000000`"],
        ),
        (
            "b.csv",
            TraceFormat::Burstgpt,
            format!("{burst_head}soon,ChatGPT,4,5,9,API log\n"),
            vec!["Timestamp", "row 1", "`soon`", "not a number"],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            format!("{ok}{}", m("\"noon\"", "10", "2", "[7]")),
            vec!["timestamp", "row 2", "\"noon\"", "milliseconds"],
        ),
        // Decreasing time.
        (
            "a.csv",
            TraceFormat::Azure,
            format!(
                "{azure_head}2023-11-16 18:15:47.0000000,5,5\n2023-11-16 18:15:46.6805900,5,5\n"
            ),
            vec!["TIMESTAMP", "row 2", "must not decrease"],
        ),
        (
            "b.csv",
            TraceFormat::Burstgpt,
            format!("{burst_head}45,ChatGPT,4,5,9,API log\n5,ChatGPT,4,5,9,API log\n"),
            vec!["Timestamp", "row 2", "must not decrease", "5 follows 45"],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            format!("{}{ok}", m("3000", "10", "2", "[7]")),
            vec!["timestamp", "row 2", "must not decrease"],
        ),
        // Zero prompt tokens.
        (
            "a.csv",
            TraceFormat::Azure,
            format!("{azure_head}2023-11-16 18:15:46.6805900,0,5\n"),
            vec!["ContextTokens", "row 1", "0 is not a whole number >= 1"],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            m("0", "0", "2", "[]"),
            vec!["input_length", "row 1", "0 is not a whole number >= 1"],
        ),
        // Zero output tokens.
        (
            "a.csv",
            TraceFormat::Azure,
            format!("{azure_head}2023-11-16 18:15:46.6805900,5,0\n"),
            vec!["GeneratedTokens", "row 1", "0 output tokens"],
        ),
        // Mooncake: malformed lines and hash ids.
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            format!("{ok}not json\n"),
            vec!["m.jsonl", "line 2", "not valid JSON"],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            format!("{ok}[1, 2]\n"),
            vec!["line 2", "not a JSON object"],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2}\n".into(),
            vec![
                "hash_ids",
                "row 1",
                "missing",
                "input_length, output_length, timestamp",
            ],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            m("0", "1025", "2", "[1, 2]"),
            vec![
                "hash_ids",
                "row 1",
                "has 2 ids",
                "input_length 1025 takes 3 blocks",
            ],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            m("0", "10", "2", "[-1]"),
            vec!["hash_ids", "row 1", "entry 1 is -1"],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            m("0", "10", "2", "\"abc\""),
            vec!["hash_ids", "row 1", "\"abc\"", "not a list"],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            m("0", "10.5", "2", "[1]"),
            vec!["input_length", "row 1", "10.5"],
        ),
        (
            "m.jsonl",
            TraceFormat::Mooncake,
            "\n\n".into(),
            vec!["m.jsonl", "no requests"],
        ),
    ];
    for (i, (name, format, text, needles)) in cases.iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        std::fs::create_dir(&dir).unwrap();
        let p = write(&dir, name, text);
        let msg = err(&workload(&p, *format));
        assert_says(&msg, &[name]);
        assert_says(&msg, needles);
    }
    let missing = tmp.path().join("none.jsonl");
    assert_says(
        &err(&workload(&missing, TraceFormat::Mooncake)),
        &["none.jsonl", "not found"],
    );
}

#[test]
fn trace_model_outside_burstgpt_is_refused_in_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(crate::common::quickstart()).unwrap();
    let c = write(tmp.path(), "c.yaml", &base);
    let out = tmp.path().join("out");
    let o = crate::common::simwatt(&[
        "simulate",
        "--config",
        c.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--set",
        "workload.trace_model=GPT-4",
    ]);
    crate::common::assert_clean_failure(&o, &["workload.trace_model", "GPT-4", "burstgpt only"]);
}
