//! FasterTransformer: static batching. A batch of up to max_num_seqs waiting requests (within the token
//! budget and the KV cache, reserved for each request's maximum length) is prefilled together and then
//! decodes until its longest request finishes. Requests that finish early stay in the batch as padding:
//! they still cost compute, and no new request joins until the whole batch is done. The decode steps
//! between two completions of its members change nothing but the contexts' lengths, so (when the
//! loop allows it: [`Limits::fold_decode_runs`](super::Limits)) they form one batch of a [`DecodeRun`]
//! of many steps: one event and one batch-log row instead of one per step.

use super::Ctx;
use crate::cluster::{Batch, DecodeRun, Phase};

pub(super) fn form(ctx: &mut Ctx, batch: &mut Batch) {
    let members = std::mem::take(&mut ctx.replica.policy_state.static_members);
    let all_done = members
        .iter()
        .all(|&r| ctx.requests[r as usize].phase == Phase::Completed);
    if !all_done {
        if members.iter().any(|&r| ctx.requests[r as usize].in_flight) {
            ctx.replica.policy_state.static_members = members;
            return;
        }
        let mut run = DecodeRun::default();
        let mut steps = u32::MAX;
        for &r in &members {
            let req = &ctx.requests[r as usize];
            if req.phase == Phase::Completed {
                batch.shape.add_decode(req.kv_tokens);
                batch.padding_seqs += 1;
                run.fixed_max_context = run.fixed_max_context.max(req.kv_tokens + 1);
            } else {
                steps = steps.min(req.remaining_output());
                run.growing += 1;
                run.growing_max_context = run.growing_max_context.max(req.kv_tokens + 1);
                ctx.push_decode(batch, r);
            }
        }
        // Nothing joins or leaves until the next member finishes: the steps up to then are one run.
        if ctx.limits.fold_decode_runs && run.growing > 0 {
            run.steps = steps;
            batch.run = run;
        }
        ctx.replica.policy_state.static_members = members;
        return;
    }

    // The old batch is done: its members may now leave the loop's request window.
    for &r in &members {
        ctx.requests[r as usize].pinned = false;
    }
    let mut new_members = members;
    new_members.clear();
    let mut tokens = 0u32;
    while (new_members.len() as u32) < ctx.limits.max_num_seqs {
        let Some(&r) = ctx.replica.waiting.front() else {
            break;
        };
        let req = &ctx.requests[r as usize];
        let need = req.prefill_target;
        if tokens + need > ctx.limits.max_num_batched_tokens {
            break;
        }
        let units = ctx.replica.kv.units_for(req.peak_kv_tokens());
        if !ctx.admit_head(units) {
            break;
        }
        ctx.push_prefill(batch, r, need);
        // Members that finish early are padding until the whole batch is done, so they stay.
        ctx.requests[r as usize].pinned = true;
        tokens += need;
        new_members.push(r);
    }
    ctx.replica.policy_state.static_members = new_members;
}
