//! vLLM (v0 scheduler): prefill-first. If any waiting request can be admitted, the iteration is a
//! prefill-only batch of whole prompts (FCFS, within max_num_seqs, the token budget and the KV cache
//! above a 1% watermark). Otherwise every running sequence decodes one token; when a sequence needs a
//! new block and none is free, the most recently admitted sequences are preempted and later recomputed.

use super::Ctx;
use crate::cluster::Batch;

pub(super) fn form(ctx: &mut Ctx, batch: &mut Batch) {
    let mut tokens = 0u32;
    while let Some(&r) = ctx.replica.waiting.front() {
        if ctx.replica.running.len() as u32 >= ctx.limits.max_num_seqs {
            break;
        }
        let need = ctx.requests[r as usize].prefill_target;
        if tokens + need > ctx.limits.max_num_batched_tokens {
            break;
        }
        let units = ctx.replica.kv.units_for(need);
        if !ctx.admit_head(units) {
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
