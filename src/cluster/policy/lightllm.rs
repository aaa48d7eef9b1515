//! LightLLM: token-granular KV cache (TokenAttention) and admission by projected peak memory. A new
//! request is admitted only if, with every running request growing to its full output length, the cache
//! never overflows (LightLLM's router check), so it never preempts. Prefill and decode iterations
//! alternate: waiting requests get a prefill-only batch once decodes have run max_waiting_iters
//! iterations in a row (or at once when nothing can decode).

use super::Ctx;
use crate::cluster::Batch;

/// Largest cache use over the future of a set of sequences, each (tokens cached now, tokens still to
/// add), given sorted by tokens to add, descending: the i-th finishes while the i+1 before it are still
/// growing. Sequences with equal tokens to add may come in any order: the last of them sets their
/// largest term.
fn peak_of_sorted(seqs: &[(u64, u64)]) -> u64 {
    let mut cum = 0u64;
    let mut peak = 0u64;
    for (i, (cur, left)) in seqs.iter().enumerate() {
        cum += cur;
        peak = peak.max(cum + left * (i as u64 + 1));
    }
    peak
}

pub(super) fn form(ctx: &mut Ctx, batch: &mut Batch) {
    let decodable = ctx.replica.running.iter().any(|&r| {
        let q = &ctx.requests[r as usize];
        !q.in_flight && !q.in_prefill()
    });
    let waiting = !ctx.replica.waiting.is_empty();
    if waiting
        && (!decodable || ctx.replica.policy_state.waiting_iters >= ctx.limits.max_waiting_iters)
    {
        // The projection's buffer is kept between batches (it is sorted in place: order is free).
        let mut seqs = std::mem::take(&mut ctx.replica.policy_state.projection);
        seqs.clear();
        seqs.extend(ctx.replica.running.iter().map(|&r| {
            let q = &ctx.requests[r as usize];
            (q.kv_tokens as u64, q.remaining_output() as u64)
        }));
        // Sorted once; each candidate is inserted in order rather than the whole set re-sorted.
        seqs.sort_unstable_by_key(|s| std::cmp::Reverse(s.1));
        let mut tokens = 0u32;
        while (ctx.replica.running.len() as u32) < ctx.limits.max_num_seqs {
            let Some(&r) = ctx.replica.waiting.front() else {
                break;
            };
            let q = &ctx.requests[r as usize];
            let need = q.prefill_target;
            if tokens + need > ctx.limits.max_num_batched_tokens {
                break;
            }
            let left = (q.output_tokens - q.generated - 1) as u64;
            let at = seqs.partition_point(|s| s.1 >= left);
            seqs.insert(at, (need as u64, left));
            if peak_of_sorted(&seqs) > ctx.replica.kv.total || !ctx.admit_head(need as u64) {
                break;
            }
            ctx.push_prefill(batch, r, need);
            tokens += need;
        }
        ctx.replica.policy_state.projection = seqs;
        if !batch.items.is_empty() {
            ctx.replica.policy_state.waiting_iters = 0;
            return;
        }
    }
    let mut budget = ctx.limits.max_num_batched_tokens;
    ctx.decode_pass(batch, &mut budget);
    if waiting && !batch.items.is_empty() {
        ctx.replica.policy_state.waiting_iters += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::peak_of_sorted;

    fn projected_peak(seqs: &mut [(u64, u64)]) -> u64 {
        seqs.sort_unstable_by_key(|s| std::cmp::Reverse(s.1));
        peak_of_sorted(seqs)
    }

    #[test]
    fn inserting_in_order_gives_the_peak_of_the_sorted_set() {
        // Deterministic pseudo-random sequences, inserted one by one as admission does.
        let mut x = 12345u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 40
        };
        let mut sorted: Vec<(u64, u64)> = Vec::new();
        for _ in 0..200 {
            let s = (next() % 4096, next() % 64);
            let at = sorted.partition_point(|q| q.1 >= s.1);
            sorted.insert(at, s);
            let mut all = sorted.clone();
            all.reverse();
            assert_eq!(peak_of_sorted(&sorted), projected_peak(&mut all));
        }
    }

    #[test]
    fn peak_counts_sequences_still_growing() {
        // One sequence: it grows to 10 + 5.
        assert_eq!(projected_peak(&mut [(10, 5)]), 15);
        // (10 now, 5 to add) and (20 now, 1 to add): after 1 step both are alive (10+1 + 20+1 = 32);
        // after 5 the second is gone (10+5 = 15).
        assert_eq!(projected_peak(&mut [(10, 5), (20, 1)]), 32);
    }
}
