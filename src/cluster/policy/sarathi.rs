//! Sarathi-Serve: stall-free batching with chunked prefills. Each iteration has a token budget
//! (max_num_batched_tokens). Running sequences decode first (one token each, preempting as vLLM when
//! the cache runs out); then partially prefilled requests continue with chunks of at most chunk_size
//! tokens; then new requests are admitted (cache for the whole prompt) and start their first chunk,
//! until the budget or max_num_seqs is reached. With prefix caching a new request's cached prefix
//! blocks are reused and its chunks start after them.

use super::Ctx;
use crate::cluster::Batch;

pub(super) fn form(ctx: &mut Ctx, batch: &mut Batch) {
    let mut budget = ctx.limits.max_num_batched_tokens;
    ctx.decode_pass(batch, &mut budget);

    let chunk = ctx.limits.chunk_size;
    let mut i = 0;
    while i < ctx.replica.running.len() && budget > 0 {
        let r = ctx.replica.running[i];
        let req = &ctx.requests[r as usize];
        if !req.in_flight && req.in_prefill() {
            let tokens = (req.prefill_target - req.prefilled).min(chunk).min(budget);
            ctx.push_prefill(batch, r, tokens);
            budget -= tokens;
        }
        i += 1;
    }

    while budget > 0 && (ctx.replica.running.len() as u32) < ctx.limits.max_num_seqs {
        let Some(&r) = ctx.replica.waiting.front() else {
            break;
        };
        if !ctx.admit_head_reusing_prefix() {
            break;
        }
        let req = &ctx.requests[r as usize];
        let tokens = (req.prefill_target - req.prefilled).min(chunk).min(budget);
        ctx.push_prefill(batch, r, tokens);
        budget -= tokens;
    }
}
