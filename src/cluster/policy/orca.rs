//! Orca: iteration-level scheduling. Every running sequence decodes one token and new requests join the
//! same iteration with their whole prompt, up to max_num_seqs and the token budget. Orca reserves KV
//! memory for a request's maximum length when it is admitted, so it never preempts.

use super::Ctx;
use crate::cluster::Batch;

pub(super) fn form(ctx: &mut Ctx, batch: &mut Batch) {
    let mut budget = ctx.limits.max_num_batched_tokens;
    // Cache is reserved up front, so decode steps never need new units and never preempt.
    ctx.decode_pass(batch, &mut budget);
    while (ctx.replica.running.len() as u32) < ctx.limits.max_num_seqs {
        let Some(&r) = ctx.replica.waiting.front() else {
            break;
        };
        let req = &ctx.requests[r as usize];
        let need = req.prefill_target;
        if need > budget {
            break;
        }
        let units = ctx.replica.kv.units_for(req.peak_kv_tokens());
        if !ctx.admit_head(units) {
            break;
        }
        ctx.push_prefill(batch, r, need);
        budget -= need;
    }
}
