//! Batching policies: how a replica picks the next iteration's work from its waiting and running requests.
//!
//! Each policy lives in its own file and follows the engine it is named after. They share the mechanics
//! here: admitting a request (taking KV cache), preempting one (vLLM's recompute: free its cache and put
//! it back at the head of the queue), and the decode pass that grows each running sequence's cache by a
//! token, preempting the most recently admitted sequences when the cache runs out.

mod faster_transformer;
mod lightllm;
mod orca;
mod sarathi;
mod vllm;

use super::window::RequestWindow;
use super::{Batch, BatchItem, Phase, RejectReason, Replica, Request};
use crate::config::{Policy, Scheduler};
use crate::units::SimTime;

/// Policy-specific state kept per replica.
#[derive(Debug, Clone, Default)]
pub struct PolicyState {
    /// LightLLM: decode iterations since a prefill was last scheduled while requests waited.
    pub waiting_iters: u32,
    /// FasterTransformer: members of the static batch in progress.
    pub static_members: Vec<u32>,
    /// LightLLM: (tokens cached, tokens to add) of the sequences its admission check projects, kept
    /// between batches so that forming one allocates nothing.
    pub projection: Vec<(u64, u64)>,
}

/// A policy's limits, resolved from the scheduler config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub policy: Policy,
    pub max_num_seqs: u32,
    pub max_num_batched_tokens: u32,
    pub chunk_size: u32,
    pub max_waiting_iters: u32,
    /// KV units kept free when admitting new requests (vLLM's 1% watermark), so that running sequences
    /// can grow without immediate preemption.
    pub watermark: u64,
    /// Whether a batch may be a run of several identical decode steps ([`crate::cluster::DecodeRun`]):
    /// a static batch's steps between completions of its members. The loop prices each step, so the
    /// requests' timelines are the same either way; only the batch log has fewer rows.
    pub fold_decode_runs: bool,
}

impl Limits {
    pub fn new(s: &Scheduler, kv_total: u64) -> Self {
        let watermark = match s.policy {
            Policy::Vllm | Policy::Sarathi => kv_total / 100,
            _ => 0,
        };
        Limits {
            policy: s.policy,
            max_num_seqs: s.max_num_seqs,
            max_num_batched_tokens: s.max_num_batched_tokens,
            chunk_size: s.chunk_size,
            max_waiting_iters: s.max_waiting_iters,
            watermark,
            fold_decode_runs: false,
        }
    }

    /// Why this policy can never serve `r` on a replica with `kv_total` units, if it cannot.
    pub fn rejection(
        &self,
        r: &Request,
        kv_units_for_peak: u64,
        kv_total: u64,
    ) -> Option<RejectReason> {
        if kv_units_for_peak > kv_total.saturating_sub(self.watermark) {
            return Some(RejectReason::KvCapacity);
        }
        let budget = self.max_num_batched_tokens;
        match self.policy {
            // A preempted vLLM request re-prefills its prompt and generated tokens in one iteration.
            Policy::Vllm if r.peak_kv_tokens() > budget => Some(RejectReason::TokenBudget),
            Policy::Orca | Policy::FasterTransformer | Policy::Lightllm
                if r.prompt_tokens > budget =>
            {
                Some(RejectReason::TokenBudget)
            }
            _ => None,
        }
    }
}

/// What a policy works on: one replica and the request table.
pub struct Ctx<'a> {
    pub replica: &'a mut Replica,
    pub requests: &'a mut RequestWindow,
    pub limits: &'a Limits,
    pub now: SimTime,
}

impl Ctx<'_> {
    /// Moves the request at the head of the waiting queue into the running list, taking `units` of KV
    /// cache. Returns false (and changes nothing) when the cache cannot spare them above the watermark.
    fn admit_head(&mut self, units: u64) -> bool {
        let Some(&r) = self.replica.waiting.front() else {
            return false;
        };
        if !self.reserve(units) {
            return false;
        }
        self.replica.waiting.pop_front();
        self.replica.running.push(r);
        let req = &mut self.requests[r as usize];
        req.kv_held += units;
        req.phase = Phase::Running;
        req.scheduled_ns.get_or_insert(self.now);
        true
    }

    /// Allocates `units` of KV cache for a request being admitted, if the cache can spare them above
    /// the watermark; returns whether it did.
    fn reserve(&mut self, units: u64) -> bool {
        let kv = &mut self.replica.kv;
        kv.available() >= units + self.limits.watermark && kv.try_alloc(units)
    }

    /// Decode replicas (disaggregated serving): admits prefilled requests whose KV cache has arrived,
    /// in arrival order, while the running list has a seat and the cache the units for their context
    /// (above the watermark). They join the running list with their prefill done, so the policy's
    /// decode pass takes them. Every policy admits them the same way, first come first served.
    fn admit_incoming(&mut self) {
        while let Some(&r) = self.replica.incoming.front() {
            if self.replica.running.len() as u32 >= self.limits.max_num_seqs {
                return;
            }
            // Orca and LightLLM hold a request's whole cache from admission on (they never preempt
            // a running request for memory); vLLM and Sarathi grow it a block at a time.
            let req = &self.requests[r as usize];
            let tokens = match self.limits.policy {
                Policy::Orca | Policy::Lightllm => req.peak_kv_tokens(),
                _ => req.kv_tokens,
            };
            let units = self.replica.kv.units_for(tokens);
            if !self.reserve(units) {
                return;
            }
            self.replica.incoming.pop_front();
            self.replica.running.push(r);
            let req = &mut self.requests[r as usize];
            req.kv_held = units;
            req.phase = Phase::Running;
        }
    }

    /// Whole blocks of the head request's shared prefix it may take from the prefix cache: its prefix
    /// leaves at least one prompt token to compute (none without prefix caching).
    fn shareable_blocks(&self, r: u32) -> u32 {
        let req = &self.requests[r as usize];
        if !self.replica.kv.prefix_caching() || req.prefix_tokens == 0 {
            return 0;
        }
        req.shareable_prefix_blocks(self.replica.kv.block_size)
    }

    /// Prefill tokens request `r` would compute if admitted now: its prefill target less the prefix
    /// tokens the cache holds.
    fn uncached_tokens(&self, r: u32) -> u32 {
        let req = &self.requests[r as usize];
        let hit = self
            .replica
            .kv
            .prefix_hit(req.prefix_group, self.shareable_blocks(r));
        req.prefill_target - hit * self.replica.kv.block_size
    }

    /// [`Ctx::admit_head`] with KV cache for the head request's prefill target, its shared prefix's
    /// cached blocks referenced instead of allocated: it starts with those tokens prefilled.
    fn admit_head_reusing_prefix(&mut self) -> bool {
        let Some(&r) = self.replica.waiting.front() else {
            return false;
        };
        let (group, target) = {
            let req = &self.requests[r as usize];
            (req.prefix_group, req.prefill_target)
        };
        let shareable = self.shareable_blocks(r);
        // Referenced first, so the allocation cannot evict the blocks the request reuses.
        let hit = self.replica.kv.ref_prefix(group, shareable);
        let units = self.replica.kv.units_for(target) - hit as u64;
        if !self.admit_head(units) {
            self.replica.kv.unref_prefix(group, hit);
            return false;
        }
        let cached = hit * self.replica.kv.block_size;
        let req = &mut self.requests[r as usize];
        req.prefix_refs = hit;
        req.prefilled = cached;
        req.kv_tokens = cached;
        req.cached_tokens += cached;
        true
    }

    /// Preempts the running request at `running[idx]`: its cache is freed (its references to cached
    /// prefix blocks dropped), its progress is to be recomputed, and it goes back to the head of the
    /// waiting queue.
    fn preempt(&mut self, idx: usize) {
        let r = self.replica.running.remove(idx);
        let req = &mut self.requests[r as usize];
        debug_assert!(!req.in_flight, "preempting a request in flight");
        self.replica.kv.release(req.kv_held);
        self.replica
            .kv
            .unref_prefix(req.prefix_group, req.prefix_refs);
        req.prefix_refs = 0;
        req.kv_held = 0;
        req.kv_tokens = 0;
        req.prefilled = 0;
        req.prefill_target = req.prompt_tokens + req.generated;
        req.preemptions += 1;
        req.phase = Phase::Waiting;
        self.replica.waiting.push_front(r);
    }

    /// Adds a prefill chunk of `tokens` for request `r` to the batch.
    fn push_prefill(&mut self, batch: &mut Batch, r: u32, tokens: u32) {
        let req = &mut self.requests[r as usize];
        let samples = req.prefilled + tokens == req.prefill_target;
        batch.shape.add_prefill(tokens, req.kv_tokens, samples);
        batch.items.push(BatchItem {
            request: r,
            prefill_tokens: tokens,
        });
        req.in_flight = true;
    }

    /// Adds a decode step for request `r` to the batch.
    fn push_decode(&mut self, batch: &mut Batch, r: u32) {
        let req = &mut self.requests[r as usize];
        batch.shape.add_decode(req.kv_tokens);
        batch.items.push(BatchItem {
            request: r,
            prefill_tokens: 0,
        });
        req.in_flight = true;
    }

    /// Adds a decode step for every running request that is ready for one (not in flight, prefill done),
    /// in admission order, while the batch has room and `budget` tokens last. Each step needs cache for
    /// one more token; when none is free the most recently admitted request not in flight is preempted
    /// (the request itself, if no other can be).
    fn decode_pass(&mut self, batch: &mut Batch, budget: &mut u32) {
        let mut i = 0;
        while i < self.replica.running.len() {
            if batch.items.len() as u32 >= self.limits.max_num_seqs || *budget == 0 {
                return;
            }
            let r = self.replica.running[i];
            let req = &self.requests[r as usize];
            if req.in_flight || req.in_prefill() {
                i += 1;
                continue;
            }
            // Its cached prefix blocks hold part of its context too.
            let need = self
                .replica
                .kv
                .units_for(req.kv_tokens + 1)
                .saturating_sub(req.kv_held + req.prefix_refs as u64);
            if self.replica.kv.try_alloc(need) {
                self.requests[r as usize].kv_held += need;
                self.push_decode(batch, r);
                *budget -= 1;
                i += 1;
                continue;
            }
            let victim = (i + 1..self.replica.running.len())
                .rev()
                .find(|&j| !self.requests[self.replica.running[j] as usize].in_flight);
            match victim {
                // Retry request i with the victim's cache freed.
                Some(j) => self.preempt(j),
                // Nothing else can give way: this request yields its own cache.
                None => self.preempt(i),
            }
        }
    }
}

/// Forms the next batch of `ctx.replica` under `ctx.limits.policy` into `batch` (cleared first).
/// Returns whether the batch has any work.
pub fn form_batch(ctx: &mut Ctx, batch: &mut Batch) -> bool {
    batch.items.clear();
    batch.shape = Default::default();
    batch.padding_seqs = 0;
    batch.run = Default::default();
    if !ctx.replica.incoming.is_empty() {
        ctx.admit_incoming();
    }
    match ctx.limits.policy {
        Policy::Vllm => vllm::form(ctx, batch),
        Policy::Orca => orca::form(ctx, batch),
        Policy::Sarathi => sarathi::form(ctx, batch),
        Policy::FasterTransformer => faster_transformer::form(ctx, batch),
        Policy::Lightllm => lightllm::form(ctx, batch),
    }
    batch.kv_used = ctx.replica.kv.used();
    !batch.items.is_empty()
}
