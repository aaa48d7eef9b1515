//! Writing what the load generator recorded, in the layouts [`crate::measured::logs`] reads: the request
//! log (`requests.csv`, a benchmark client's columns `request_timestamp_epoch_s, input_len_tokens,
//! output_len_tokens, ttft_s, latency_s`, then columns of our own that the reader skips), every
//! token's arrival (`tokens.jsonl`, one JSON object per request) and the failed requests
//! (`request-errors.csv`, columns no reader takes for a request log).
//!
//! Input: [`Record`]s. Output: the files' text. It does not touch the folder itself.

use super::load::Record;
use serde_json::json;
use std::fmt::Write as _;

/// The request log of the requests that completed, by send time. Lengths are the server's counts
/// (`usage`) where it gave them; `tokens_from` says which.
pub fn request_log(records: &[Record]) -> String {
    let mut s = String::from(
        "request_timestamp_epoch_s,input_len_tokens,output_len_tokens,ttft_s,latency_s,index,\
         scheduled_s,prompt_tokens_asked,output_tokens_asked,tokens_from,server_prompt_ms,\
         server_predicted_ms,server_ttft_ms,server_total_ms\n",
    );
    let mut ok: Vec<&Record> = records.iter().filter(|r| r.ok()).collect();
    ok.sort_by(|a, b| a.sent.total_cmp(&b.sent));
    for r in ok {
        let t = |k: &str| {
            r.server_timings
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(serde_json::Value::as_f64)
                .map(|x| x.to_string())
                .unwrap_or_default()
        };
        let from = match (r.prompt_tokens, r.output_tokens) {
            (Some(_), Some(_)) => "usage",
            (None, None) => "asked_and_chunks",
            _ => "partial_usage",
        };
        let _ = writeln!(
            s,
            "{:.6},{},{},{:.6},{:.6},{},{:.6},{},{},{},{},{},{},{}",
            r.sent,
            r.prompt_tokens.unwrap_or(r.prompt_tokens_asked).max(1),
            r.output_count().max(1),
            r.ttft_s().unwrap_or(0.0),
            r.e2e_s().unwrap_or(0.0),
            r.index,
            r.scheduled_s,
            r.prompt_tokens_asked,
            r.output_tokens_asked,
            from,
            t("prompt_ms"),
            t("predicted_ms"),
            t("server_ttft_ms"),
            t("server_total_ms"),
        );
    }
    s
}

/// One JSON line per request: its index, send time and each text chunk's arrival in seconds after it.
pub fn token_times(records: &[Record]) -> String {
    let mut s = String::new();
    for r in records {
        let v = json!({
            "index": r.index,
            "sent_epoch_s": r.sent,
            "token_times_s": r.token_times.iter().map(|t| t - r.sent).collect::<Vec<_>>(),
            "error": r.error,
            "server_timings": r.server_timings,
        });
        let _ = writeln!(s, "{v}");
    }
    s
}

/// The failed requests, or `None` when every request completed.
pub fn errors(records: &[Record]) -> Option<String> {
    let bad: Vec<&Record> = records.iter().filter(|r| !r.ok()).collect();
    if bad.is_empty() {
        return None;
    }
    let mut s = String::from("index,sent_epoch_s,prompt_tokens_asked,output_tokens_asked,error\n");
    for r in bad {
        let msg = r
            .error
            .clone()
            .unwrap_or_else(|| "no completion".into())
            .replace(['"', '\n', '\r'], " ");
        let _ = writeln!(
            s,
            "{},{:.6},{},{},\"{}\"",
            r.index, r.sent, r.prompt_tokens_asked, r.output_tokens_asked, msg
        );
    }
    Some(s)
}
