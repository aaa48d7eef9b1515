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

/// Receives a trace as it is built: its `otherData` first, then each event in order.
trait TraceOut {
    fn other(&mut self, other: Value) -> Result<()>;
    fn event(&mut self, event: Value) -> Result<()>;
}

/// Writes the trace to a file as it is built, so a long run's events are never all in memory.
struct TraceWriter<'a> {
    path: &'a Path,
    w: BufWriter<std::fs::File>,
    events: usize,
}

impl TraceWriter<'_> {
    fn io(&self, e: std::io::Error) -> Error {
        Error::io(self.path, e)
    }
}

impl TraceOut for TraceWriter<'_> {
    fn other(&mut self, other: Value) -> Result<()> {
        self.w
            .write_all(b"{\"displayTimeUnit\":\"ms\",\"otherData\":")
            .map_err(|e| self.io(e))?;
        serde_json::to_writer(&mut self.w, &other).map_err(|e| self.io(e.into()))?;
        self.w
            .write_all(b",\"traceEvents\":[\n")
            .map_err(|e| self.io(e))
    }

    fn event(&mut self, event: Value) -> Result<()> {
        if self.events > 0 {
            self.w.write_all(b",\n").map_err(|e| self.io(e))?;
        }
        serde_json::to_writer(&mut self.w, &event).map_err(|e| self.io(e.into()))?;
        self.events += 1;
        Ok(())
    }
}

/// Writes the trace of `run` to `path`; returns the number of events.
pub fn write_trace(run: &RunFolder, path: &Path) -> Result<usize> {
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = TraceWriter {
        path,
        w: BufWriter::new(f),
        events: 0,
    };
    build(run, &mut out, (MAX_BATCH_STAGES, MAX_REQUESTS))?;
    out.w.write_all(b"\n]}\n").map_err(|e| out.io(e))?;
    out.w.flush().map_err(|e| out.io(e))?;
    Ok(out.events)
}

/// The events of a trace and its `otherData`.
pub struct TraceEvents {
    pub events: Vec<Value>,
    pub other: Value,
}

impl TraceOut for TraceEvents {
    fn other(&mut self, other: Value) -> Result<()> {
        self.other = other;
        Ok(())
    }

    fn event(&mut self, event: Value) -> Result<()> {
        self.events.push(event);
        Ok(())
    }
}

/// Builds the trace events of `run` in memory.
pub fn trace_events(run: &RunFolder) -> Result<TraceEvents> {
    trace_events_cut(run, MAX_BATCH_STAGES, MAX_REQUESTS)
}

/// [`trace_events`] with other limits on batch stages and requests (for tests of the cut).
pub fn trace_events_cut(
    run: &RunFolder,
    max_stages: usize,
    max_requests: usize,
) -> Result<TraceEvents> {
    let mut t = TraceEvents {
        events: Vec::new(),
        other: Value::Null,
    };
    build(run, &mut t, (max_stages, max_requests))?;
    Ok(t)
}

/// Builds the trace of `run` into `out`, cut after `max_stages` batch stages or `max_requests`
/// requests, whichever comes first in time.
fn build(
    run: &RunFolder,
    out: &mut dyn TraceOut,
    (max_stages, max_requests): (usize, usize),
) -> Result<()> {
    let (b, total_stages) = run.batches_head(
        &[
            "replica",
            "stage",
            "start_s",
            "end_s",
            "steps",
            "num_requests",
            "prefill_tokens",
            "decode_tokens",
            "kv_blocks_used",
        ],
        max_stages + 1,
    )?;
    let replica = b.u64s("replica")?;
    let stage = b.u64s("stage")?;
    let start = b.f64s_required("start_s")?;
    let end = b.f64s_required("end_s")?;
    let steps = b.u64s("steps")?;
    let nreq = b.u64s("num_requests")?;
    let prefill = b.u64s("prefill_tokens")?;
    let decode = b.u64s("decode_tokens")?;
    let kv = b.u64s("kv_blocks_used")?;

    let (r, total_requests) = run.requests_head(
        &[
            "request_id",
            "arrival_s",
            "replica",
            "status",
            "prompt_tokens",
            "output_tokens",
            "scheduled_s",
            "first_token_s",
            "completion_s",
            "preemptions",
        ],
        max_requests + 1,
    )?;
    let req = RequestColumns {
        id: r.u64s("request_id")?,
        arrival: r.f64s_required("arrival_s")?,
        replica: r.u64s("replica")?,
        status: r.strings("status")?,
        prompt: r.u64s("prompt_tokens")?,
        output: r.u64s("output_tokens")?,
        scheduled: r.f64s("scheduled_s")?,
        first: r.f64s("first_token_s")?,
        completion: r.f64s("completion_s")?,
        preemptions: r.u64s("preemptions")?,
    };
    let (arrival, status) = (&req.arrival, &req.status);

    // Cut very long runs at a time, so that the trace holds every event before it and none after.
    // Only the first rows of each table are read: batch stages are written in order of start time and
    // requests in order of arrival, so the rows past the cut are never needed.
    let mut cut = f64::INFINITY;
    if start.len() > max_stages {
        let mut s = start.clone();
        s.sort_by(f64::total_cmp);
        cut = cut.min(s[max_stages]);
    }
    if arrival.len() > max_requests {
        let mut a = arrival.to_vec();
        a.sort_by(f64::total_cmp);
        cut = cut.min(a[max_requests]);
    }

    let replicas = run.replicas() as u64;
    let stages = run.pipeline_stages() as u64;
    let requests_tid = stages;
    let rejected = (0..req.id.len())
        .filter(|&i| arrival[i] < cut && status[i] != "completed")
        .count();
    let other = json!({
        "generator": format!("simwatt {}", env!("CARGO_PKG_VERSION")),
        "time": "simulated time; ts and dur in microseconds",
        "batch_stages": total_stages,
        "requests": total_requests,
        "rejected_requests_shown": rejected,
        "cut_at_s": if cut.is_finite() { json!(cut) } else { Value::Null },
    });
    out.other(other)?;
    write_metadata(out, replicas, stages)?;
    for i in 0..start.len() {
        if start[i] >= cut {
            continue;
        }
        let name = match (prefill[i] > 0, decode[i] > 0) {
            (true, false) => "prefill",
            (false, _) => "decode",
            (true, true) => "mixed",
        };
        out.event(json!({
            "name": name, "cat": "batch", "ph": "X",
            "ts": us(start[i]), "dur": us((end[i] - start[i]).max(0.0)),
            "pid": replica[i], "tid": stage[i],
            "args": {"steps": steps[i], "requests": nreq[i], "prefill_tokens": prefill[i],
                     "decode_tokens": decode[i], "kv_blocks_used": kv[i]},
        }))?;
        if stage[i] == 0 {
            out.event(
                json!({"name": "kv_blocks_used", "ph": "C", "ts": us(start[i]),
                "pid": replica[i], "tid": 0, "args": {"blocks": kv[i]}}),
            )?;
        }
    }
    write_request_events(out, &req, &r.path, cut, requests_tid)
}

/// The columns of requests.parquet that the trace shows, one entry per request in arrival order.
struct RequestColumns {
    id: Vec<u64>,
    arrival: Vec<f64>,
    replica: Vec<u64>,
    status: Vec<String>,
    prompt: Vec<u64>,
    output: Vec<u64>,
    scheduled: Vec<Option<f64>>,
    first: Vec<Option<f64>>,
    completion: Vec<Option<f64>>,
    preemptions: Vec<u64>,
}

/// The names of the processes (one per replica) and threads (one per stage, and one for requests).
fn write_metadata(out: &mut dyn TraceOut, replicas: u64, stages: u64) -> Result<()> {
    let requests_tid = stages;
    for p in 0..replicas {
        out.event(
            json!({"name": "process_name", "ph": "M", "ts": 0, "pid": p, "tid": 0,
            "args": {"name": format!("replica {p}")}}),
        )?;
        out.event(
            json!({"name": "process_sort_index", "ph": "M", "ts": 0, "pid": p, "tid": 0,
            "args": {"sort_index": p}}),
        )?;
        for t in 0..stages {
            out.event(
                json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": p, "tid": t,
                "args": {"name": format!("stage {t}")}}),
            )?;
        }
        out.event(
            json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": p, "tid": requests_tid,
            "args": {"name": "requests"}}),
        )?;
    }
    Ok(())
}

/// Each request that arrived before `cut`: an instant for a rejected one, nested spans (request,
/// queued, prefill, decode) for a completed one. `path` is requests.parquet, for errors.
fn write_request_events(
    out: &mut dyn TraceOut,
    req: &RequestColumns,
    path: &Path,
    cut: f64,
    requests_tid: u64,
) -> Result<()> {
    for i in 0..req.id.len() {
        if req.arrival[i] >= cut {
            continue;
        }
        let (pid, rid) = (req.replica[i], req.id[i]);
        if req.status[i] != "completed" {
            out.event(json!({"name": req.status[i], "cat": "request", "ph": "i", "s": "p",
                "ts": us(req.arrival[i]), "pid": pid, "tid": requests_tid,
                "args": {"request_id": rid, "prompt_tokens": req.prompt[i], "output_tokens": req.output[i]}}))?;
            continue;
        }
        let (Some(sch), Some(ft), Some(done)) = (req.scheduled[i], req.first[i], req.completion[i])
        else {
            return Err(Error::Column {
                path: path.to_path_buf(),
                column: "scheduled_s, first_token_s, completion_s".into(),
                row: Some(i + 1),
                message: "a completed request needs all three times".into(),
            });
        };
        let span = |name: &str, ph: &str, t: f64| {
            json!({"name": name, "cat": "request", "ph": ph, "id": rid, "ts": us(t),
                "pid": pid, "tid": requests_tid})
        };
        let mut open = span("request", "b", req.arrival[i]);
        open["args"] = json!({"request_id": rid, "prompt_tokens": req.prompt[i],
            "output_tokens": req.output[i], "preemptions": req.preemptions[i]});
        out.event(open)?;
        for (name, t0, t1) in [
            ("queued", req.arrival[i], sch),
            ("prefill", sch, ft),
            ("decode", ft, done),
        ] {
            out.event(span(name, "b", t0))?;
            out.event(span(name, "e", t1.max(t0)))?;
        }
        out.event(span("request", "e", done))?;
    }
    Ok(())
}
