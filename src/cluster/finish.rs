//! A batch leaving the last pipeline stage: what it did to its requests (prefill progress, emitted
//! tokens, time to first token and gaps between tokens, completion) and to its replica (KV-cache
//! release, the running list).
//!
//! Input: the batch, the requests in flight, its replica and the time. Output: the requests and
//! replica updated, the token gaps recorded. Knows nothing of events, costs or energy.

use super::kv::KvCache;
use super::window::RequestWindow;
use super::{Batch, Phase, Replica, Request, Role};
use crate::error::{Error, Result};
use crate::units::SimTime;
use hdrhistogram::Histogram;

/// Gaps between consecutive output tokens of every request: a histogram and the exact sum.
pub struct TokenGaps {
    /// Gaps, nanoseconds (1 ns to 2^50 ns, 13 days, at 3 significant digits; longer gaps are recorded
    /// as 13 days).
    pub hist: Histogram<u64>,
    /// Exact sum of the gaps in `hist`, nanoseconds.
    pub sum_ns: u128,
}

impl TokenGaps {
    pub fn new() -> Result<Self> {
        Ok(TokenGaps {
            hist: Histogram::new_with_bounds(1, 1 << 50, 3)
                .map_err(|e| Error::Internal(e.to_string()))?,
            sum_ns: 0,
        })
    }
}

/// Gaps in a row that the histogram cannot tell apart (one bucket at its 3 significant digits),
/// recorded as one histogram entry with a count: the requests of a batch that also ran in the previous
/// one all wait the same time for their next token, and a run of decode steps' durations differ by
/// nanoseconds. Every figure read from the histogram (counts, percentiles, minimum, maximum, mean)
/// depends only on each value's bucket, so this records exactly what recording each gap would; the
/// sum is kept exact, gap by gap.
struct GapRun<'a> {
    gaps: &'a mut TokenGaps,
    /// The first gap of the run, and the bounds of its bucket.
    gap: u64,
    lo: u64,
    hi: u64,
    count: u64,
}

impl<'a> GapRun<'a> {
    fn new(gaps: &'a mut TokenGaps) -> Self {
        GapRun {
            gaps,
            gap: 0,
            lo: 0,
            hi: 0,
            count: 0,
        }
    }

    fn add(&mut self, gap: u64) {
        self.add_n(gap, 1);
    }

    fn add_n(&mut self, gap: u64, n: u64) {
        self.gaps.sum_ns += gap as u128 * n as u128;
        if self.count > 0 && self.lo <= gap && gap <= self.hi {
            self.count += n;
            return;
        }
        self.flush();
        let h = &self.gaps.hist;
        (self.lo, self.hi) = if gap <= h.high() {
            (h.lowest_equivalent(gap), h.highest_equivalent(gap))
        } else {
            // Beyond the histogram's range (recorded as its highest value): never merged.
            (gap, gap)
        };
        self.gap = gap;
        self.count = n;
    }

    fn flush(&mut self) {
        if self.count > 0 {
            self.gaps.hist.saturating_record_n(self.gap, self.count);
            self.count = 0;
        }
    }
}

impl Drop for GapRun<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Applies `batch`, which has just left the last stage of `replica` at `now`, to its requests; returns
/// how many requests it completed. Tokens reach the client `stream_ns` later (the engine's
/// detokenisation and streaming): token times and completion are recorded then, while the KV cache is
/// released now.
pub fn finish_batch(
    batch: &Batch,
    requests: &mut RequestWindow,
    replica: &mut Replica,
    now: SimTime,
    stream_ns: u64,
    gaps: &mut TokenGaps,
) -> Result<u64> {
    if batch.run.steps > 1 {
        return finish_run(batch, requests, replica, now, stream_ns, gaps);
    }
    let emitted = now.checked_add(stream_ns).ok_or_else(|| {
        Error::Internal(format!("a token at {now} ns streamed past the end of time"))
    })?;
    let mut completed = 0;
    let mut run = GapRun::new(gaps);
    for item in &batch.items {
        let req = &mut requests[item.request as usize];
        if req.phase != Phase::Running || !req.in_flight {
            return Err(Error::Internal(format!(
                "request {} finished a batch in phase {:?} (in flight: {})",
                item.request, req.phase, req.in_flight
            )));
        }
        req.in_flight = false;
        let emits = if item.prefill_tokens > 0 {
            req.prefilled += item.prefill_tokens;
            req.kv_tokens += item.prefill_tokens;
            let done = !req.in_prefill();
            if done && req.prefix_tokens > 0 && replica.kv.prefix_caching() {
                // Its prefix blocks are computed: they join the prefix cache.
                let to = req.shareable_prefix_blocks(replica.kv.block_size);
                cache_blocks(req, &mut replica.kv, to);
            }
            done
        } else {
            req.kv_tokens += 1;
            true
        };
        if !emits {
            continue;
        }
        req.generated += 1;
        if req.first_token_ns.is_none() {
            req.first_token_ns = Some(emitted);
        } else {
            let gap = emitted - req.last_token_ns;
            req.tbt_max_ns = req.tbt_max_ns.max(gap);
            run.add(gap);
        }
        req.last_token_ns = emitted;
        if req.generated == req.output_tokens {
            complete(req, replica, emitted);
            completed += 1;
        } else if replica.role == Role::Prefill {
            // Its prefill is done: it leaves for the decode pool, its cache held until moved.
            req.phase = Phase::Transferring;
            replica.handoffs.push(item.request);
        }
    }
    if completed > 0 || !replica.handoffs.is_empty() {
        drop_finished(replica, requests);
    }
    Ok(completed)
}

/// Request `req`, handed off by prefill replica `replica`, has moved its KV cache to the decode pool:
/// the prefill replica releases its cache (and its references to cached prefix blocks) and has one
/// request fewer outstanding; the request waits for a decode replica's admission.
pub fn release_handoff(req: &mut Request, replica: &mut Replica) -> Result<()> {
    if req.phase != Phase::Transferring {
        return Err(Error::Internal(format!(
            "a KV transfer ended for a request in phase {:?}",
            req.phase
        )));
    }
    replica.kv.release(req.kv_held);
    replica.kv.unref_prefix(req.prefix_group, req.prefix_refs);
    req.prefix_refs = 0;
    req.kv_held = 0;
    replica.outstanding -= 1;
    req.phase = Phase::Waiting;
    Ok(())
}

/// Hands blocks `prefix_refs..to` of `req`'s prefix, which it computed and holds, to the prefix cache
/// (up to the first one another request cached already): it references them instead of holding them.
fn cache_blocks(req: &mut Request, kv: &mut KvCache, to: u32) {
    if to > req.prefix_refs {
        let n = kv.insert_prefix(req.prefix_group, req.prefix_refs, to);
        req.prefix_refs += n;
        req.kv_held -= n as u64;
    }
}

/// `req`, which emitted its last token at `at`, is complete: its KV cache is released (a session
/// turn's whole context kept in the prefix cache for the next turn) and its replica has one request
/// fewer outstanding.
fn complete(req: &mut Request, replica: &mut Replica, at: SimTime) {
    req.phase = Phase::Completed;
    req.completion_ns = Some(at);
    if req.session != super::NO_SESSION && replica.kv.prefix_caching() {
        let to = req.kv_tokens / replica.kv.block_size;
        cache_blocks(req, &mut replica.kv, to);
    }
    replica.kv.release(req.kv_held);
    replica.kv.unref_prefix(req.prefix_group, req.prefix_refs);
    req.prefix_refs = 0;
    req.kv_held = 0;
    replica.outstanding -= 1;
}

/// Takes the requests that just left the running phase (completed, or handed off to the decode
/// pool) off their replica's running list.
fn drop_finished(replica: &mut Replica, requests: &RequestWindow) {
    replica
        .running
        .retain(|&q| requests[q as usize].phase == Phase::Running);
}

/// [`finish_batch`] for a batch of a run of decode steps ([`crate::cluster::DecodeRun`]) that ends at
/// `now`: each request emits one token at the end of each step (`batch.step_ns` long), exactly as the
/// steps one by one would have it.
fn finish_run(
    batch: &Batch,
    requests: &mut RequestWindow,
    replica: &mut Replica,
    now: SimTime,
    stream_ns: u64,
    gaps: &mut TokenGaps,
) -> Result<u64> {
    let steps = &batch.step_ns;
    let k = batch.run.steps;
    let internal = |what: String| Error::Internal(format!("a run of {k} decode steps {what}"));
    if steps.len() != k as usize {
        return Err(internal(format!("has {} step times", steps.len())));
    }
    let total = steps
        .iter()
        .try_fold(0u64, |a, &d| a.checked_add(d))
        .ok_or_else(|| internal("lasts past the end of time".into()))?;
    let first_emitted = now
        .checked_sub(total)
        .and_then(|start| start.checked_add(steps[0]))
        .and_then(|t| t.checked_add(stream_ns))
        .ok_or_else(|| internal(format!("ending at {now} ns starts before time 0")))?;
    let last_emitted = now
        .checked_add(stream_ns)
        .ok_or_else(|| internal(format!("streams past the end of time at {now} ns")))?;
    let later_max = steps[1..].iter().copied().max().unwrap_or(0);
    let mut run = GapRun::new(gaps);
    // The gap before each step's token after the first is that step's duration, for every request.
    for &d in &steps[1..] {
        run.add_n(d, batch.items.len() as u64);
    }
    let mut completed = 0;
    for item in &batch.items {
        let req = &mut requests[item.request as usize];
        if req.phase != Phase::Running || !req.in_flight || item.prefill_tokens > 0 {
            return Err(internal(format!(
                "finished request {} in phase {:?} (in flight: {}, prefill tokens: {})",
                item.request, req.phase, req.in_flight, item.prefill_tokens
            )));
        }
        if req.first_token_ns.is_none() || req.remaining_output() < k {
            return Err(internal(format!(
                "ran request {} with {} of {} tokens out",
                item.request, req.generated, req.output_tokens
            )));
        }
        req.in_flight = false;
        req.kv_tokens += k;
        req.generated += k;
        let gap = first_emitted
            .checked_sub(req.last_token_ns)
            .ok_or_else(|| internal(format!("emitted request {}'s token early", item.request)))?;
        req.tbt_max_ns = req.tbt_max_ns.max(gap).max(later_max);
        run.add(gap);
        req.last_token_ns = last_emitted;
        if req.generated == req.output_tokens {
            complete(req, replica, last_emitted);
            completed += 1;
        }
    }
    if completed > 0 {
        drop_finished(replica, requests);
    }
    Ok(completed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_merged_by_bucket_read_back_as_gaps_recorded_one_by_one() {
        // Runs of nearly equal gaps (a run of decode steps), equal gaps with counts (a batch's
        // requests), a zero gap, gaps beyond the histogram's range, and a spread of values.
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        for k in 0..500u64 {
            gaps.push((20_000_000 + 7 * k, 1));
        }
        gaps.extend([
            (0, 1),
            (1, 3),
            (2, 1),
            (1 << 52, 2),
            ((1 << 50) + 1, 1),
            (999, 4),
        ]);
        let mut x = 12_345u64;
        for _ in 0..2_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            gaps.push((x % 400_000_000, 1 + x % 3));
        }
        let mut merged = TokenGaps::new().unwrap();
        {
            let mut run = GapRun::new(&mut merged);
            for &(g, n) in &gaps {
                run.add_n(g, n);
            }
        }
        let mut one_by_one = TokenGaps::new().unwrap();
        for &(g, n) in &gaps {
            for _ in 0..n {
                one_by_one.hist.saturating_record(g);
                one_by_one.sum_ns += g as u128;
            }
        }
        let (a, b) = (&merged.hist, &one_by_one.hist);
        assert_eq!(merged.sum_ns, one_by_one.sum_ns);
        assert_eq!(a.len(), b.len());
        assert_eq!(
            (a.min(), a.min_nz(), a.max()),
            (b.min(), b.min_nz(), b.max())
        );
        assert_eq!(a.mean().to_bits(), b.mean().to_bits());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q), "q {q}");
        }
        let buckets = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        assert_eq!(buckets(a), buckets(b));
    }
}
