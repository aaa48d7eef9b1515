//! Each batching policy, run in memory, with the invariants every run must keep.

use crate::common::*;
use simwatt::drivers::simulate::RunOutcome;

const POLICIES: [&str; 5] = ["vllm", "orca", "sarathi", "faster_transformer", "lightllm"];

/// Invariants of any finished run: each request appears once, completed or rejected; times are
/// ordered; KV use never exceeds capacity; batches on a stage never overlap.
fn check_invariants(o: &RunOutcome) {
    let n = o.summary.requests_total as usize;
    assert_eq!(o.rows.len(), n);
    for (i, r) in o.rows.iter().enumerate() {
        assert_eq!(r.request_id, i as u64, "request ids are 0..n, each once");
        if r.status == "completed" {
            let (s, f, c) = (
                r.scheduled_s.unwrap(),
                r.first_token_s.unwrap(),
                r.completion_s.unwrap(),
            );
            assert!(r.arrival_s <= s && s < f && f <= c, "request {i}: {r:?}");
            assert!(r.itl_max_s.unwrap_or(0.0) >= r.tpot_s.unwrap_or(0.0) - 1e-12);
        } else {
            assert!(
                r.status.starts_with("rejected_"),
                "request {i}: {}",
                r.status
            );
            assert!(r.completion_s.is_none());
        }
    }
    let completed = o.rows.iter().filter(|r| r.status == "completed").count() as u64;
    assert_eq!(completed, o.summary.requests_completed);
    assert_eq!(
        o.summary.requests_completed + o.summary.requests_rejected,
        o.summary.requests_total,
        "no request lost"
    );
    // Every output token is produced exactly once: the batches' decode tokens plus one token per
    // completed prefill (the first token, and the next token after each recompute).
    let b = &o.result.batches;
    assert!(
        b.start_ns.windows(2).all(|w| w[0] <= w[1]),
        "batch stages are logged in order of start time (the trace reads only the first rows)"
    );
    let last = o.scenario.hardware.pipeline_stages - 1;
    let decode: u64 = b
        .stage
        .iter()
        .zip(&b.decode_tokens)
        .filter(|(s, _)| **s == last)
        .map(|(_, d)| *d as u64)
        .sum();
    let preemptions: u64 = o.result.requests.iter().map(|r| r.preemptions as u64).sum();
    let completed_outputs: u64 = o
        .rows
        .iter()
        .filter(|r| r.status == "completed")
        .map(|r| r.output_tokens as u64)
        .sum();
    // Tokens generated before a preemption are emitted again neither by decode nor prefill: a
    // recompute emits one new token, so decode steps + first tokens + recomputes = outputs.
    assert_eq!(
        decode + completed + preemptions,
        completed_outputs,
        "token accounting"
    );
    let cap = o.result.kv_units_per_replica;
    assert!(
        b.kv_blocks_used.iter().all(|u| *u <= cap),
        "KV over capacity"
    );
    for rep in 0..o.scenario.hardware.replicas {
        for st in 0..=last {
            let mut prev_end = 0u64;
            for i in 0..b.len() {
                if b.replica[i] == rep && b.stage[i] == st {
                    assert!(b.start_ns[i] >= prev_end, "overlapping batches on a stage");
                    assert!(b.end_ns[i] > b.start_ns[i]);
                    prev_end = b.end_ns[i];
                }
            }
        }
    }
}

#[test]
fn every_policy_completes_the_quickstart_workload() {
    for p in POLICIES {
        let o = simulate(&quickstart(), &[&format!("scheduler.policy={p}")]);
        assert_eq!(o.summary.requests_completed, 512, "policy {p}");
        check_invariants(&o);
    }
}

#[test]
fn vllm_preempts_under_memory_pressure_and_still_completes_everything() {
    // 300 blocks of 16 tokens = 4,800 tokens of KV cache for 64 requests of up to 2,560 tokens each,
    // all arriving at once.
    for p in ["vllm", "sarathi"] {
        let o = simulate(
            &quickstart(),
            &[
                &format!("scheduler.policy={p}"),
                "scheduler.num_gpu_blocks=300",
                "workload.requests=64",
                "workload.arrival={type: all_at_once}",
            ],
        );
        assert!(
            o.summary.preemptions > 0,
            "{p}: no preemption under pressure"
        );
        assert_eq!(o.summary.requests_completed, 64, "{p}");
        check_invariants(&o);
        assert!(o.rows.iter().any(|r| r.preemptions > 0));
    }
}

#[test]
fn reserving_policies_never_preempt_under_memory_pressure() {
    for p in ["orca", "faster_transformer", "lightllm"] {
        let o = simulate(
            &quickstart(),
            &[
                &format!("scheduler.policy={p}"),
                "scheduler.num_gpu_blocks=300",
                "workload.requests=64",
                "workload.arrival={type: all_at_once}",
            ],
        );
        assert_eq!(o.summary.preemptions, 0, "{p}");
        assert_eq!(o.summary.requests_completed, 64, "{p}");
        check_invariants(&o);
    }
}

#[test]
fn requests_larger_than_the_kv_cache_are_rejected_with_a_reason() {
    let o = simulate(
        &quickstart(),
        &[
            "scheduler.num_gpu_blocks=100",
            "workload.requests=50",
            "workload.lengths={type: uniform, prompt: [512, 2048], output: [1, 8]}",
        ],
    );
    let rejected = o
        .summary
        .requests_rejected_by_reason
        .get("kv_capacity")
        .copied()
        .unwrap_or(0);
    // 100 blocks of 16 tokens minus the 1% watermark (1 block) hold 1,584 tokens.
    let expected = o
        .rows
        .iter()
        .filter(|r| r.prompt_tokens + r.output_tokens - 1 > 1584)
        .count();
    assert!(expected > 0);
    assert_eq!(rejected as usize, expected);
    check_invariants(&o);
}

#[test]
fn sarathi_chunks_prefills_within_the_token_budget() {
    let o = simulate(
        &quickstart(),
        &[
            "scheduler.policy=sarathi",
            "scheduler.max_num_batched_tokens=512",
            "scheduler.chunk_size=256",
            "workload.requests=64",
        ],
    );
    check_invariants(&o);
    let b = &o.result.batches;
    assert!(!b.is_empty());
    for i in 0..b.len() {
        assert!(
            b.prefill_tokens[i] + b.decode_tokens[i] <= 512,
            "budget exceeded at batch {i}"
        );
    }
    // Prompts of 512-2048 tokens need several chunks: some batches mix prefill and decode.
    assert!((0..b.len()).any(|i| b.prefill_tokens[i] > 0 && b.decode_tokens[i] > 0));
}

#[test]
fn vllm_batches_are_prefill_only_or_decode_only() {
    let o = simulate(&quickstart(), &["workload.requests=128"]);
    let b = &o.result.batches;
    assert!((0..b.len()).all(|i| b.prefill_tokens[i] == 0 || b.decode_tokens[i] == 0));
    assert!((0..b.len()).all(|i| b.prefill_tokens[i] <= 4096));
}

#[test]
fn faster_transformer_pads_static_batches() {
    let o = simulate(
        &quickstart(),
        &[
            "scheduler.policy=faster_transformer",
            "scheduler.max_num_seqs=8",
            "workload.requests=32",
            "workload.arrival={type: all_at_once}",
        ],
    );
    check_invariants(&o);
    let b = &o.result.batches;
    // Finished requests stay as padding until the batch's longest request ends.
    assert!(b.padding_seqs.iter().any(|p| *p > 0));
    assert!((0..b.len()).all(|i| b.num_requests[i] + b.padding_seqs[i] <= 8));
    // No request joins a static batch in progress: prefills only happen when no decode is running.
    assert!((0..b.len()).all(|i| b.prefill_tokens[i] == 0 || b.decode_tokens[i] == 0));
}

#[test]
fn tensor_and_pipeline_parallel_replicas_behind_each_router() {
    for router in ["round_robin", "least_outstanding", "random"] {
        let o = simulate(
            &quickstart(),
            &[
                "hardware.tensor_parallel=2",
                "hardware.pipeline_stages=2",
                "hardware.replicas=3",
                &format!("router={router}"),
                "workload.requests=150",
                "workload.arrival={type: poisson, rate: 6.0}",
            ],
        );
        assert_eq!(o.summary.requests_completed, 150, "{router}");
        check_invariants(&o);
        let used: std::collections::BTreeSet<u32> = o.rows.iter().map(|r| r.replica).collect();
        assert_eq!(used.len(), 3, "{router} used replicas {used:?}");
        // Two stages: every batch appears once per stage.
        let b = &o.result.batches;
        let s0 = b.stage.iter().filter(|s| **s == 0).count();
        assert_eq!(s0 * 2, b.len());
    }
}

#[test]
fn round_robin_assigns_replicas_in_turn() {
    let o = simulate(
        &quickstart(),
        &["hardware.replicas=4", "workload.requests=40"],
    );
    assert!(o
        .rows
        .iter()
        .all(|r| r.replica == (r.request_id % 4) as u32));
}

#[test]
fn pipeline_parallelism_keeps_several_batches_in_flight() {
    let o = simulate(
        &quickstart(),
        &[
            "hardware.pipeline_stages=4",
            "workload.requests=64",
            "workload.arrival={type: all_at_once}",
        ],
    );
    check_invariants(&o);
    let b = &o.result.batches;
    // Several batches are in flight at once: rows of different stages overlap in time.
    let overlap = (0..b.len()).any(|i| {
        (0..b.len()).any(|j| {
            b.stage[i] != b.stage[j] && b.start_ns[i] < b.end_ns[j] && b.start_ns[j] < b.end_ns[i]
        })
    });
    assert!(overlap, "pipeline stages never overlapped");
}

#[test]
fn the_loop_holds_the_requests_in_flight_not_every_request() {
    // 3,000 requests of the speed benchmark's lengths at a rate one A100 sustains (static batching
    // sustains far less): the loop's request window stays a small fraction of the run.
    let config = root().join("experiments/bench-10k.yaml");
    for policy in POLICIES {
        let rate = if policy == "faster_transformer" {
            0.35
        } else {
            2.5
        };
        let o = simulate(
            &config,
            &[
                "workload.requests=3000",
                &format!("workload.arrival.rate={rate}"),
                &format!("scheduler.policy={policy}"),
            ],
        );
        check_invariants(&o);
        let held = o.result.peak_requests_held;
        assert!(
            held > 0 && held < 150,
            "{policy}: held {held} of 3000 requests at once"
        );
    }
}

/// A prompt and an output whose sum does not fit in 32 bits are a request far longer than any model's
/// context: every policy rejects it for its context length (the sum once wrapped around to a short
/// request that no policy could schedule, and the run stopped with an internal error).
#[test]
fn a_request_longer_than_u32_tokens_is_rejected_for_its_context_by_every_policy() {
    for policy in ["vllm", "orca", "sarathi", "faster_transformer", "lightllm"] {
        let o = simulate(
            &quickstart(),
            &[
                "workload.requests=3",
                "workload.lengths={type: fixed, prompt: 100, output: 4294967295}",
                &format!("scheduler.policy={policy}"),
            ],
        );
        assert_eq!(o.summary.requests_rejected, 3, "{policy}");
        assert_eq!(
            o.summary.requests_rejected_by_reason.get("context_length"),
            Some(&3),
            "{policy}: {:?}",
            o.summary.requests_rejected_by_reason
        );
    }
}
