//! A Chrome / Perfetto trace of a run (`trace.json`), viewable in ui.perfetto.dev or chrome://tracing.
//!
//! Input: a [`RunFolder`] (batches.parquet, requests.parquet). Output: a JSON object in the Chrome Trace
//! Event Format (`{"traceEvents": [...], "displayTimeUnit": "ms", ...}`), timestamps in microseconds of
//! simulated time:
//! - one process per replica (`pid` = replica), one thread per pipeline stage (`tid` = stage), named by
//!   metadata (`M`) events;
//! - each batch stage a complete (`X`) event on its replica and stage, named `prefill`, `decode` or
//!   `mixed` after the tokens it processes, with its sizes in `args`;
//! - a counter (`C`) of KV-cache use per replica, at each batch formation;
//! - each completed request a nestable async span (`b` / `e`, `cat` `request`, `id` = request id) on its
//!   replica, from arrival to its last token, with nested `queued`, `prefill` and `decode` spans; each
//!   rejected request an instant (`i`) event at its arrival.
//!
//! Every event carries `name`, `ph`, `ts`, `pid` and `tid`. Events are written in a fixed order, so the
//! same run gives the same bytes. Very long runs are cut at a time so that the file stays loadable in a
//! browser (see [`MAX_BATCH_STAGES`], [`MAX_REQUESTS`]); `otherData` says where.

use crate::error::{Error, Result};
use crate::runfolder::RunFolder;
use serde_json::{json, Value};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Most batch stages written; later ones are cut (by time, together with the requests).
pub const MAX_BATCH_STAGES: usize = 250_000;
/// Most requests written; later arrivals are cut.
pub const MAX_REQUESTS: usize = 100_000;

/// Seconds to trace microseconds, rounded to the nanosecond.
fn us(s: f64) -> f64 {
    (s * 1e9).round() / 1e3
}

/// Writes the trace of `run` to `path`; returns the number of events.
pub fn write_trace(run: &RunFolder, path: &Path) -> Result<usize> {
    let events = trace_events(run)?;
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(f);
    let io = |e: std::io::Error| Error::io(path, e);
    let js = |e: serde_json::Error| Error::io(path, e.into());
    w.write_all(b"{\"displayTimeUnit\":\"ms\",\"otherData\":")
        .map_err(io)?;
    serde_json::to_writer(&mut w, &events.other).map_err(js)?;
    w.write_all(b",\"traceEvents\":[\n").map_err(io)?;
    for (i, ev) in events.events.iter().enumerate() {
        if i > 0 {
            w.write_all(b",\n").map_err(io)?;
        }
        serde_json::to_writer(&mut w, ev).map_err(js)?;
    }
    w.write_all(b"\n]}\n").map_err(io)?;
    w.flush().map_err(io)?;
    Ok(events.events.len())
}

/// The events of a trace and its `otherData`.
pub struct TraceEvents {
    pub events: Vec<Value>,
    pub other: Value,
}

/// Builds the trace events of `run`.
pub fn trace_events(run: &RunFolder) -> Result<TraceEvents> {
    let b = run.batches()?;
    let replica = b.u64s("replica")?;
    let stage = b.u64s("stage")?;
    let start = b.f64s_required("start_s")?;
    let end = b.f64s_required("end_s")?;
    let nreq = b.u64s("num_requests")?;
    let prefill = b.u64s("prefill_tokens")?;
    let decode = b.u64s("decode_tokens")?;
    let kv = b.u64s("kv_blocks_used")?;

    let r = run.requests()?;
    let id = r.u64s("request_id")?;
    let arrival = r.f64s_required("arrival_s")?;
    let req_replica = r.u64s("replica")?;
    let status = r.strings("status")?;
    let prompt = r.u64s("prompt_tokens")?;
    let output = r.u64s("output_tokens")?;
    let scheduled = r.f64s("scheduled_s")?;
    let first = r.f64s("first_token_s")?;
    let completion = r.f64s("completion_s")?;
    let preemptions = r.u64s("preemptions")?;

    // Cut very long runs at a time, so that the trace holds every event before it and none after.
    let mut cut = f64::INFINITY;
    if start.len() > MAX_BATCH_STAGES {
        let mut s = start.clone();
        s.sort_by(f64::total_cmp);
        cut = cut.min(s[MAX_BATCH_STAGES]);
    }
    if arrival.len() > MAX_REQUESTS {
        let mut a = arrival.clone();
        a.sort_by(f64::total_cmp);
        cut = cut.min(a[MAX_REQUESTS]);
    }

    let replicas = run.replicas() as u64;
    let stages = run.pipeline_stages() as u64;
    let requests_tid = stages;
    let mut ev = Vec::new();
    for p in 0..replicas {
        ev.push(
            json!({"name": "process_name", "ph": "M", "ts": 0, "pid": p, "tid": 0,
            "args": {"name": format!("replica {p}")}}),
        );
        ev.push(
            json!({"name": "process_sort_index", "ph": "M", "ts": 0, "pid": p, "tid": 0,
            "args": {"sort_index": p}}),
        );
        for t in 0..stages {
            ev.push(
                json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": p, "tid": t,
                "args": {"name": format!("stage {t}")}}),
            );
        }
        ev.push(
            json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": p, "tid": requests_tid,
            "args": {"name": "requests"}}),
        );
    }
    for i in 0..start.len() {
        if start[i] >= cut {
            continue;
        }
        let name = match (prefill[i] > 0, decode[i] > 0) {
            (true, false) => "prefill",
            (false, _) => "decode",
            (true, true) => "mixed",
        };
        ev.push(json!({
            "name": name, "cat": "batch", "ph": "X",
            "ts": us(start[i]), "dur": us((end[i] - start[i]).max(0.0)),
            "pid": replica[i], "tid": stage[i],
            "args": {"requests": nreq[i], "prefill_tokens": prefill[i],
                     "decode_tokens": decode[i], "kv_blocks_used": kv[i]},
        }));
        if stage[i] == 0 {
            ev.push(
                json!({"name": "kv_blocks_used", "ph": "C", "ts": us(start[i]),
                "pid": replica[i], "tid": 0, "args": {"blocks": kv[i]}}),
            );
        }
    }
    let mut rejected = 0u64;
    for i in 0..id.len() {
        if arrival[i] >= cut {
            continue;
        }
        let (pid, rid) = (req_replica[i], id[i]);
        if status[i] != "completed" {
            rejected += 1;
            ev.push(json!({"name": status[i], "cat": "request", "ph": "i", "s": "p",
                "ts": us(arrival[i]), "pid": pid, "tid": requests_tid,
                "args": {"request_id": rid, "prompt_tokens": prompt[i], "output_tokens": output[i]}}));
            continue;
        }
        let (Some(sch), Some(ft), Some(done)) = (scheduled[i], first[i], completion[i]) else {
            return Err(Error::Column {
                path: r.path.clone(),
                column: "scheduled_s, first_token_s, completion_s".into(),
                row: Some(i + 1),
                message: "a completed request needs all three times".into(),
            });
        };
        let span = |name: &str, ph: &str, t: f64| {
            json!({"name": name, "cat": "request", "ph": ph, "id": rid, "ts": us(t),
                "pid": pid, "tid": requests_tid})
        };
        let mut open = span("request", "b", arrival[i]);
        open["args"] = json!({"request_id": rid, "prompt_tokens": prompt[i],
            "output_tokens": output[i], "preemptions": preemptions[i]});
        ev.push(open);
        for (name, t0, t1) in [
            ("queued", arrival[i], sch),
            ("prefill", sch, ft),
            ("decode", ft, done),
        ] {
            ev.push(span(name, "b", t0));
            ev.push(span(name, "e", t1.max(t0)));
        }
        ev.push(span("request", "e", done));
    }
    let other = json!({
        "generator": format!("simwatt {}", env!("CARGO_PKG_VERSION")),
        "time": "simulated time; ts and dur in microseconds",
        "batch_stages": start.len(),
        "requests": id.len(),
        "rejected_requests_shown": rejected,
        "cut_at_s": if cut.is_finite() { json!(cut) } else { Value::Null },
    });
    Ok(TraceEvents { events: ev, other })
}
