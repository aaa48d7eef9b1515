//! The load generator: sends a workload's requests to an OpenAI-compatible server
//! (`/v1/completions` or `/v1/chat/completions`, streaming server-sent events) and records, per
//! request, when it was sent, when each token arrived, when it completed, the server's token counts
//! and any error.
//!
//! Input: the requests ([`crate::workload::RequestSpec`]: arrival and lengths, as the simulation
//! generates them), the endpoint and how to drive it ([`LoadOptions`]: open loop at the scheduled
//! arrivals, or closed loop with N users). Output: one [`Record`] per request. A blocking HTTP client
//! (`ureq`, plain HTTP) on std threads, every request under a timeout. It writes no file and knows
//! nothing of power.

use super::WallClock;
use crate::error::{Error, Result};
use crate::workload::RequestSpec;
use serde_json::{json, Value};
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// A server's base URL, `http://host:port` (any trailing `/` or `/v1` removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub base: String,
}

impl Endpoint {
    /// Parses `--endpoint`. Only plain `http://` is spoken (this build has no TLS); the error names
    /// the flag and the value.
    pub fn parse(url: &str) -> Result<Endpoint> {
        let bad = |m: &str| Error::invalid("--endpoint", "endpoint", url, m);
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(bad(
                "https is not supported (the client speaks plain HTTP; put the server on a \
                 loopback or private address, or behind a local proxy)",
            ));
        } else {
            return Err(bad(
                "not an http:// URL; give the server's base URL, e.g. http://127.0.0.1:8000",
            ));
        };
        let hostport = rest.split('/').next().unwrap_or("");
        if hostport.is_empty() || hostport.starts_with(':') {
            return Err(bad("no host in the URL"));
        }
        if let Some((_, port)) = hostport.rsplit_once(':') {
            if !hostport.ends_with(']') && port.parse::<u16>().is_err() {
                return Err(bad(&format!("`{port}` is not a port number")));
            }
        }
        let mut base = url.trim_end_matches('/').to_string();
        if let Some(b) = base.strip_suffix("/v1") {
            base = b.to_string();
        }
        Ok(Endpoint { base })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Which OpenAI route the requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/completions` with `prompt`.
    Completions,
    /// `/v1/chat/completions` with one user message (the server's chat template adds tokens).
    Chat,
}

impl Api {
    pub fn path(self) -> &'static str {
        match self {
            Api::Completions => "/v1/completions",
            Api::Chat => "/v1/chat/completions",
        }
    }
}

/// Open loop (each request sent at its scheduled arrival, whatever is in flight) or closed loop (N
/// users, each sending its next request when its last one completes; arrivals are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopMode {
    Open,
    Closed { users: u32 },
}

/// How to drive the server.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub endpoint: Endpoint,
    pub api: Api,
    pub mode: LoopMode,
    /// The `model` field of every request (default: the first model `/v1/models` lists).
    pub model: String,
    /// Longest a request may take, from sending to its last byte.
    pub request_timeout_s: f64,
    /// The words prompts are made of, one per prompt token asked, in turn; request `i` starts at word
    /// `i mod n`, so that consecutive requests share no prefix a server could reuse.
    pub prompt_words: Vec<String>,
    /// Ask for `ignore_eos` (vLLM) and `min_tokens` = `max_tokens`, so that outputs have the length asked.
    pub force_length: bool,
    /// Most requests in flight in open loop (a guard against an unbounded number of threads).
    pub max_in_flight: usize,
}

/// One request as sent and answered. Times are epoch seconds on the run's [`WallClock`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// Position in the workload.
    pub index: usize,
    /// When the workload scheduled it, seconds from the start of the load (open loop).
    pub scheduled_s: f64,
    pub sent: f64,
    /// When each chunk carrying text arrived.
    pub token_times: Vec<f64>,
    pub done: Option<f64>,
    pub prompt_tokens_asked: u32,
    pub output_tokens_asked: u32,
    /// The server's `usage.prompt_tokens`, when it gave one.
    pub prompt_tokens: Option<u32>,
    /// The server's `usage.completion_tokens`, when it gave one.
    pub output_tokens: Option<u32>,
    pub error: Option<String>,
    /// The server's own `timings` object (llama.cpp), when it sent one.
    pub server_timings: Option<Value>,
}

impl Record {
    pub fn ttft_s(&self) -> Option<f64> {
        self.token_times.first().map(|t| t - self.sent)
    }

    pub fn e2e_s(&self) -> Option<f64> {
        self.done.map(|d| d - self.sent)
    }

    /// Output tokens: the server's count, else the chunks that carried text.
    pub fn output_count(&self) -> u32 {
        self.output_tokens.unwrap_or(self.token_times.len() as u32)
    }

    pub fn ok(&self) -> bool {
        self.error.is_none() && self.done.is_some() && !self.token_times.is_empty()
    }
}

/// What the server says about itself: the models of `/v1/models`, as sent.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub models: Vec<String>,
    pub raw: Value,
}

/// An HTTP agent with the timeouts of `opts`; statuses are read, not turned into errors.
pub fn agent(timeout_s: f64) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(Duration::from_secs_f64(timeout_s)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}...", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

/// `GET /v1/models`. An unreachable server or an answer that is not the OpenAI model list is an error
/// naming `--endpoint` and the URL.
pub fn server_info(endpoint: &Endpoint, timeout_s: f64) -> Result<ServerInfo> {
    let url = endpoint.url("/v1/models");
    let bad = |m: String| Error::invalid("--endpoint", "endpoint", &endpoint.base, m);
    let mut resp = agent(timeout_s)
        .get(&url)
        .call()
        .map_err(|e| bad(format!("GET {url}: {e} (is the server running there?)")))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| bad(format!("GET {url}: reading the answer: {e}")))?;
    if status != 200 {
        return Err(bad(format!(
            "GET {url} answered HTTP {status}: {}",
            excerpt(&text)
        )));
    }
    let raw: Value = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "GET {url} answered what is not JSON ({e}): {}",
            excerpt(&text)
        ))
    })?;
    let models: Vec<String> = raw
        .get("data")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if models.is_empty() {
        return Err(bad(format!(
            "GET {url} lists no model (`data[].id`): {}",
            excerpt(&text)
        )));
    }
    Ok(ServerInfo { models, raw })
}

/// The body of request `index`.
pub fn request_body(
    opts: &LoadOptions,
    index: usize,
    prompt_tokens: u32,
    output_tokens: u32,
) -> Value {
    let words = prompt_tokens.max(1) as usize;
    let k = opts.prompt_words.len().max(1);
    let mut prompt = String::with_capacity(words * 8);
    for i in 0..words {
        if i > 0 {
            prompt.push(' ');
        }
        prompt.push_str(
            opts.prompt_words
                .get((index + i) % k)
                .map_or("hello", String::as_str),
        );
    }
    let mut body = json!({
        "model": opts.model,
        "max_tokens": output_tokens.max(1),
        "stream": true,
        "stream_options": { "include_usage": true },
        "temperature": 0.0,
    });
    match opts.api {
        Api::Completions => body["prompt"] = json!(prompt),
        Api::Chat => body["messages"] = json!([{ "role": "user", "content": prompt }]),
    }
    if opts.force_length {
        body["ignore_eos"] = json!(true);
        body["min_tokens"] = json!(output_tokens.max(1));
    }
    body
}

/// What the stream of one request told.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamSummary {
    pub token_times: Vec<f64>,
    pub prompt_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub timings: Option<Value>,
    /// Whether `data: [DONE]` was seen.
    pub done_marker: bool,
    /// Events read, and the last one's data (shortened), for messages.
    pub events: usize,
    pub last_event: String,
}

/// Reads a server-sent-event stream of OpenAI completion chunks from `r`, stamping each chunk that
/// carries text with `now()`. An event whose data is not JSON, or a JSON `error` object, is an error;
/// `: comments` and other fields are skipped.
pub fn read_stream(
    r: impl BufRead,
    now: &dyn Fn() -> f64,
) -> std::result::Result<StreamSummary, String> {
    let mut s = StreamSummary::default();
    for line in r.lines() {
        let line = line.map_err(|e| format!("reading the stream: {e}"))?;
        let t = now();
        let line = line.trim_end_matches('\r');
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data.is_empty() {
            continue;
        }
        s.events += 1;
        s.last_event = excerpt(data);
        if data == "[DONE]" {
            s.done_marker = true;
            break;
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            format!(
                "malformed server-sent event (its data is not JSON: {e}): {}",
                excerpt(data)
            )
        })?;
        if let Some(err) = v.get("error") {
            return Err(format!(
                "the server sent an error in the stream: {}",
                excerpt(&err.to_string())
            ));
        }
        let choice = v.get("choices").and_then(|c| c.get(0));
        let text = choice.and_then(|c| {
            c.get("text")
                .and_then(Value::as_str)
                .or_else(|| c.pointer("/delta/content").and_then(Value::as_str))
        });
        if text.is_some_and(|x| !x.is_empty()) {
            s.token_times.push(t);
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).map(|x| x as u32);
            s.prompt_tokens = n("prompt_tokens").or(s.prompt_tokens);
            s.output_tokens = n("completion_tokens").or(s.output_tokens);
        }
        if let Some(tm) = v.get("timings").filter(|x| x.is_object()) {
            s.timings = Some(tm.clone());
        }
    }
    Ok(s)
}

/// Sends one request and records it.
pub fn send_one(
    agent: &ureq::Agent,
    opts: &LoadOptions,
    clock: &WallClock,
    index: usize,
    spec: &RequestSpec,
    scheduled_s: f64,
) -> Record {
    let body = request_body(opts, index, spec.prompt_tokens, spec.output_tokens).to_string();
    let url = opts.endpoint.url(opts.api.path());
    let mut rec = Record {
        index,
        scheduled_s,
        prompt_tokens_asked: spec.prompt_tokens,
        output_tokens_asked: spec.output_tokens,
        ..Default::default()
    };
    rec.sent = clock.now();
    let resp = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "text/event-stream")
        .send(body.as_str());
    let mut resp = match resp {
        Ok(r) => r,
        Err(e) => {
            rec.error = Some(format!("POST {url}: {e}"));
            return rec;
        }
    };
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        rec.error = Some(format!("POST {url}: HTTP {status}: {}", excerpt(&text)));
        return rec;
    }
    let reader = std::io::BufReader::new(resp.body_mut().as_reader());
    match read_stream(reader, &|| clock.now()) {
        Ok(s) => {
            rec.done = Some(clock.now());
            rec.token_times = s.token_times;
            rec.prompt_tokens = s.prompt_tokens;
            rec.output_tokens = s.output_tokens;
            rec.server_timings = s.timings;
            if rec.token_times.is_empty() {
                rec.error = Some(format!(
                    "the stream carried no text ({} event(s){}{})",
                    s.events,
                    if s.done_marker {
                        ", ending with [DONE]"
                    } else {
                        ", no [DONE]"
                    },
                    if s.last_event.is_empty() {
                        String::new()
                    } else {
                        format!("; the last: {}", s.last_event)
                    }
                ));
            }
        }
        Err(e) => rec.error = Some(format!("POST {url}: {e}")),
    }
    rec
}

/// Sends `specs` as `opts.mode` says, starting now, and returns one record per request in workload
/// order. `progress` is called after each completion with (done, total).
pub fn run(
    specs: &[RequestSpec],
    opts: &LoadOptions,
    clock: &WallClock,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Record> {
    let agent = agent(opts.request_timeout_s);
    let n = specs.len();
    let t0 = std::time::Instant::now();
    let (tx, rx) = mpsc::channel::<Record>();
    let mut out: Vec<Option<Record>> = vec![None; n];
    std::thread::scope(|sc| {
        match opts.mode {
            LoopMode::Open => {
                let in_flight = Arc::new(AtomicUsize::new(0));
                let tx = tx.clone();
                let agent = &agent;
                sc.spawn(move || {
                    for (i, spec) in specs.iter().enumerate() {
                        let at = Duration::from_nanos(spec.arrival_ns);
                        let el = t0.elapsed();
                        if at > el {
                            std::thread::sleep(at - el);
                        }
                        while in_flight.load(Ordering::SeqCst) >= opts.max_in_flight {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        let (tx, in_flight) = (tx.clone(), in_flight.clone());
                        let spec = *spec;
                        sc.spawn(move || {
                            let r = send_one(agent, opts, clock, i, &spec, at.as_secs_f64());
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            let _ = tx.send(r);
                        });
                    }
                });
            }
            LoopMode::Closed { users } => {
                let next = Arc::new(AtomicUsize::new(0));
                for _ in 0..users.max(1) {
                    let (tx, next, agent) = (tx.clone(), next.clone(), &agent);
                    sc.spawn(move || loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            break;
                        }
                        let at = t0.elapsed().as_secs_f64();
                        let r = send_one(agent, opts, clock, i, &specs[i], at);
                        let _ = tx.send(r);
                    });
                }
            }
        }
        drop(tx);
        let mut done = 0;
        for r in rx {
            done += 1;
            let i = r.index;
            out[i] = Some(r);
            progress(done, n);
        }
    });
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_with_a_host() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8000/v1/").unwrap().base,
            "http://127.0.0.1:8000"
        );
        for bad in [
            "https://x",
            "127.0.0.1:8000",
            "http://",
            "http://:80",
            "http://h:port",
        ] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--endpoint") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_stream_gives_token_times_usage_and_timings() {
        let text = ": ping\n\ndata: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: {\"choices\":[{\"text\":\"\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2},\"timings\":{\"prompt_ms\":1.5}}\n\ndata: [DONE]\n\n";
        let t = std::cell::Cell::new(0.0);
        let s = read_stream(text.as_bytes(), &|| {
            t.set(t.get() + 1.0);
            t.get()
        })
        .unwrap();
        assert_eq!(s.token_times.len(), 2);
        assert_eq!((s.prompt_tokens, s.output_tokens), (Some(5), Some(2)));
        assert!(s.done_marker && s.timings.is_some());
        let e = read_stream("data: {not json\n\n".as_bytes(), &|| 0.0).unwrap_err();
        assert!(e.contains("malformed server-sent event"), "{e}");
    }
}
