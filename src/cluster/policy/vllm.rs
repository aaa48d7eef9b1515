//! vLLM (v0 scheduler): prefill-first. If any waiting request can be admitted, the iteration is a
//! prefill-only batch of whole prompts (FCFS, within max_num_seqs, the token budget and the KV cache
//! above a 1% watermark). Otherwise every running sequence decodes one token; when a sequence needs a
//! new block and none is free, the most recently admitted sequences are preempted and later recomputed.
//! With prefix caching a prompt's cached prefix blocks are reused and only the rest is prefilled.

use super::Ctx;
use crate::cluster::Batch;

pub(super) fn form(ctx: &mut Ctx, batch: &mut Batch) {
    let mut tokens = 0u32;
    while let Some(&r) = ctx.replica.waiting.front() {
        if ctx.replica.running.len() as u32 >= ctx.limits.max_num_seqs {
            break;
        }
        // The prompt (and any tokens to recompute) less what the prefix cache holds.
        let need = ctx.uncached_tokens(r);
        if tokens + need > ctx.limits.max_num_batched_tokens {
            break;
        }
        if !ctx.admit_head_reusing_prefix() {
            break;
        }
        ctx.push_prefill(batch, r, need);
        tokens += need;
    }
    if !batch.items.is_empty() {
        return;
    }
    let mut budget = ctx.limits.max_num_batched_tokens;
    ctx.decode_pass(batch, &mut budget);
}
