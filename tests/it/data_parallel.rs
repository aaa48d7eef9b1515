//! Data-parallel attention with expert parallelism (`hardware.data_parallel`, vLLM's
//! `--data-parallel-size` with `--enable-expert-parallel`): each rank runs the attention of its own
//! sequences, the experts are spread over every GPU (docs/latency-model.md, "Data-parallel
//! attention").

use crate::common::*;
use simwatt::catalog::Catalog;
use simwatt::engine::EngineCost;
use simwatt::predictor::roofline::Roofline;
use simwatt::predictor::{BatchShape, CostModel};

const QWEN_MOE: &str = "Qwen/Qwen3-30B-A3B";

/// Qwen3-30B-A3B over `tp` H100s per rank, `dp` ranks, experts spread over all of them.
fn qwen(tp: u32, dp: u32, rank_budget: u32) -> Roofline {
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model(QWEN_MOE).unwrap();
    bare_roofline(m, "h100", tp)
        .with_expert_parallel(true)
        .with_data_parallel(dp, rank_budget)
}

fn decode(seqs: u32, context: u32) -> BatchShape {
    let mut s = BatchShape::default();
    for _ in 0..seqs {
        s.add_decode(context);
    }
    s
}

fn config(dir: &std::path::Path, hardware: &str) -> std::path::PathBuf {
    write(
        dir,
        "c.yaml",
        &format!(
            "seed: 3\nmodel: {QWEN_MOE}\nhardware: {hardware}\n\
             scheduler: {{ policy: vllm, max_num_seqs: 64, max_num_batched_tokens: 8192, block_size: 16 }}\n\
             workload:\n  requests: 40\n  arrival: {{ type: poisson, rate: 20.0 }}\n  \
             lengths: {{ type: uniform, prompt: [128, 512], output: [16, 64] }}\n"
        ),
    )
}

/// One rank is expert parallelism as before, bit for bit, at any batch.
#[test]
fn one_rank_changes_nothing() {
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model(QWEN_MOE).unwrap();
    let before = bare_roofline(m, "h100", 4).with_expert_parallel(true);
    let after = qwen(4, 1, 8192);
    let mut mixed = decode(40, 700);
    mixed.add_prefill(900, 0, true);
    for s in [decode(1, 10), decode(256, 3000), mixed] {
        assert_eq!(before.stage_cost(&s, 0), after.stage_cost(&s, 0));
    }
    assert_eq!(before.moe_local_shape(), after.moe_local_shape());
}

/// Four ranks of one H100: a GPU reads the KV cache of its quarter of the sequences only. Qwen3-30B-A3B
/// caches 4 KV heads x 128 x 2 (keys and values) x 2 B x 48 layers = 98,304 B per token; 64 decode
/// sequences whose contexts grow by 1,000 tokens each make the busiest GPU read 16 x 1,000 x 98,304 =
/// 1,572,864,000 B more, as one GPU serving 16 of them would. The experts are held 32 per GPU, as
/// expert parallelism over 4 GPUs holds them.
#[test]
fn a_rank_reads_the_kv_cache_of_its_share_of_the_sequences() {
    let dp = qwen(1, 4, 8192);
    let grow = |r: &Roofline, seqs: u32| {
        r.stage_cost(&decode(seqs, 2000), 0).bytes - r.stage_cost(&decode(seqs, 1000), 0).bytes
    };
    let got = grow(&dp, 64);
    assert!(
        (got / 1_572_864_000.0 - 1.0).abs() < 1e-9,
        "{got} B more per GPU"
    );
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model(QWEN_MOE).unwrap();
    let one = bare_roofline(m, "h100", 1);
    assert!((grow(&one, 16) / got - 1.0).abs() < 1e-9);
    assert_eq!(dp.moe_local_shape(), Some((32, 768)));
    assert_eq!(
        dp.moe_local_shape(),
        qwen(4, 1, 8192).moe_local_shape(),
        "experts spread over 4 GPUs either way"
    );
}

/// The busiest GPU's experts see the whole batch: with 4 ranks of one GPU it runs as many expert
/// passes and reads as many experts as under expert parallelism over 4 tensor-parallel GPUs, so the
/// two steps' expert work is the same while the attention's differs (a rank's projections are whole,
/// over a quarter of the tokens).
#[test]
fn the_experts_see_every_ranks_tokens() {
    // Without experts' work: a dense layer's share of the step (attention, norms) on each side.
    let s = decode(64, 500);
    let dp = qwen(1, 4, 8192).stage_cost(&s, 0);
    let ep = qwen(4, 1, 8192).stage_cost(&s, 0);
    // Attention projections per layer: 18,874,368 weights, whole on a rank of one GPU over 16
    // tokens, a quarter of them on a TP 4 GPU over 64 tokens: the FLOPs are the same
    // (2 x 18,874,368 x 16), and so are the expert passes, the router's (whole over 16 tokens against
    // whole over 64) aside: 2 x 262,144 x 48 layers x (64 - 16) router FLOPs fewer per rank. The
    // output head runs on 16 sequences whole against 64 over a quarter of the vocabulary: the same.
    let router = 2.0 * 262_144.0 * 48.0 * 48.0;
    assert!(
        ((ep.flops - dp.flops) / router - 1.0).abs() < 1e-6,
        "{} against {} FLOPs",
        dp.flops,
        ep.flops
    );
    // A rank's GPU reads whole attention weights (4 x a TP 4 GPU's quarter): 3/4 x 18,874,368 x 2 B
    // x 48 layers more, and the same KV cache (16 sequences' 4 KV heads against 64 sequences' one).
    let attention = 0.75 * 18_874_368.0 * 2.0 * 48.0;
    assert!(
        dp.bytes > ep.bytes + 0.9 * attention,
        "{} {}",
        dp.bytes,
        ep.bytes
    );
}

/// The ranks step together: a lone prompt is prefilled on one rank while the others wait, so its
/// step takes as long as one GPU prefilling it all; a burst of prompts filling every rank's token
/// budget is spread evenly.
#[test]
fn a_lone_prefill_runs_on_one_rank_and_holds_the_others() {
    let mut lone = decode(16, 300);
    lone.add_prefill(2048, 0, true);
    let held = qwen(1, 4, 8192).stage_cost(&lone, 0);
    let spread = qwen(1, 4, 0).stage_cost(&lone, 0);
    assert!(
        held.time_ns as f64 > 1.5 * spread.time_ns as f64,
        "{} ns held against {} ns spread evenly",
        held.time_ns,
        spread.time_ns
    );
    let mut burst = decode(16, 300);
    for _ in 0..4 {
        burst.add_prefill(2048, 0, true);
    }
    assert_eq!(
        qwen(1, 4, 2048).stage_cost(&burst, 0),
        qwen(1, 4, 0).stage_cost(&burst, 0)
    );
}

/// The experts' all-to-all (an all-gather and a reduce-scatter of the whole batch's activations over
/// every GPU): one ring pass over n GPUs moves (n - 1) / n of the bytes over a link, with a hop
/// latency per step and the fixed per-collective cost.
#[test]
fn the_all_to_all_is_an_all_gather_and_a_reduce_scatter() {
    let c = Catalog::builtin().unwrap();
    let (_, d) = c.device("h100").unwrap();
    let r = qwen(1, 8, 8192);
    let link = d.interconnect_gb_s.unwrap() * 1e9;
    let hop = d.interconnect_latency_us.unwrap_or(0.0) * 1e-6;
    let bytes = 64.0 * 2048.0 * 2.0;
    let want = 7.0 / 8.0 * bytes / link + 7.0 * hop + 10e-6;
    assert!((r.ring_s(8, bytes) / want - 1.0).abs() < 1e-12);
    // A decode step of 8 ranks pays it twice per layer (48 layers) and no tensor-parallel all-reduce.
    let one = r.stage_cost(&decode(64, 100), 0).time_ns as f64;
    assert!(one > 2.0 * 48.0 * want * 1e9 * 0.99);
}

/// Memory: each GPU holds the attention, router and embeddings whole and a quarter of the routed
/// experts; the replica caches four ranks' worth of blocks. Qwen3-30B-A3B: 30,531,911,680 weights, of
/// which 48 x 128 x 4,718,592 = 28,991,029,248 in routed experts, so a GPU holds 1,540,882,432 +
/// 7,247,757,312 = 8,788,639,744 weights, 17,577,279,488 B in bf16.
#[test]
fn memory_holds_a_share_of_the_experts_and_four_ranks_of_cache() {
    let dir = tempfile::tempdir().unwrap();
    let p = config(
        dir.path(),
        "{ gpu: h100, tensor_parallel: 1, data_parallel: 4, expert_parallel: true }",
    );
    let s = resolve(&p).unwrap();
    let m = &s.memory;
    assert_eq!(m.weight_bytes_per_gpu, 17_577_279_488.0);
    assert_eq!(s.gpus_per_stage(), 4);
    assert_eq!(s.gpus_per_replica(), 4);
    // A rank's GPU caches its sequences' 4 KV heads: 98,304 B per token; its free memory in blocks of
    // 16 tokens, times 4 ranks.
    assert_eq!(m.kv_bytes_per_token_per_gpu, 98_304);
    let free = m.usable_bytes_per_gpu - m.weight_bytes_per_gpu - m.activation_bytes_per_gpu;
    let per_rank = (free / (98_304.0 * 16.0)).floor() as u64;
    assert_eq!(m.num_blocks, 4 * per_rank);
}

/// A whole run: it completes every request, its energy counts all four GPUs, and it is repeatable.
#[test]
fn a_data_parallel_run_counts_every_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let p = config(
        dir.path(),
        "{ gpu: h100, tensor_parallel: 1, data_parallel: 4, expert_parallel: true }",
    );
    let a = simulate(&p, &[]);
    assert_eq!(a.summary.requests_completed, 40);
    assert_eq!(a.summary.gpus_per_replica, 4);
    let b = simulate(&p, &[]);
    // Everything but the wall-clock speed.
    let simulated = |o: &simwatt::drivers::simulate::RunOutcome| {
        let mut v = serde_json::to_value(&o.summary).unwrap();
        let m = v.as_object_mut().unwrap();
        for k in [
            "sim_wall_s",
            "sim_requests_per_wall_s",
            "sim_events_per_wall_s",
        ] {
            assert!(m.remove(k).is_some(), "{k}");
        }
        v
    };
    assert_eq!(simulated(&a), simulated(&b));
    // Idle energy alone, over the run, is at least 4 GPUs' idle power x the makespan.
    let idle = a.idle_w.unwrap();
    let e = a.summary.energy.energy_j.unwrap();
    assert!(e > 4.0 * idle * a.summary.makespan_s, "{e} J");
}

/// The engine pads each rank's share to a captured graph size, every rank to the same one: 10
/// decode sequences over 4 ranks are 3 on the busiest, padded to a graph of 4, so 16 in all.
#[test]
fn each_rank_pads_to_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let p = config(
        dir.path(),
        "{ gpu: h100, tensor_parallel: 1, data_parallel: 4, expert_parallel: true }",
    );
    let mut s = resolve(&p).unwrap();
    s.engine.profile.launch.graph_sizes = vec![1, 2, 4, 8, 16];
    let gpu = qwen(1, 4, 2048);
    let e = EngineCost::new(&gpu, &s);
    let (padded, eager) = e.launched(&decode(10, 50));
    assert!(!eager);
    assert_eq!(padded.decode_seqs, 16);
    // 70 sequences are 18 on the busiest rank: past the largest graph, eager.
    let (_, eager) = e.launched(&decode(70, 50));
    assert!(eager);
}

/// What the layout cannot be: each refused with the field and the value.
#[test]
fn bad_layouts_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "{ gpu: h100, data_parallel: 2 }",
            vec!["hardware.data_parallel", "= 2", "expert_parallel"],
        ),
        (
            "{ gpu: h100, data_parallel: 3, expert_parallel: true }",
            vec!["hardware.expert_parallel", "3 x 1 = 3 GPUs", "128 experts"],
        ),
        (
            "{ gpu: h100, data_parallel: 2, expert_parallel: true, pipeline_stages: 2 }",
            vec!["hardware.data_parallel", "pipeline_stages = 2"],
        ),
        (
            "{ gpu: h100, data_parallel: 2, expert_parallel: true, replicas: 2, prefill_replicas: 1, kv_link: nvlink4 }",
            vec!["hardware.data_parallel", "prefill pool"],
        ),
        ("{ gpu: h100, data_parallel: 0 }", vec!["hardware.data_parallel", "= 0"]),
    ];
    for (hw, needles) in cases {
        let p = config(dir.path(), hw);
        let e = resolve(&p).unwrap_err().to_string();
        for n in needles {
            assert!(e.contains(n), "{hw}: expected `{n}` in: {e}");
        }
    }
    // The profile-fitted predictor does not split a batch over ranks.
    let p = config(
        dir.path(),
        "{ gpu: h100, data_parallel: 2, expert_parallel: true }\npredictor: { type: profiles }",
    );
    let s = resolve(&p).unwrap();
    let e = simwatt::drivers::simulate::build_predictor(&s, &caches().tables)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("predictor.type") && e.contains("data_parallel = 2"),
        "{e}"
    );
}

/// The shipped example (experiments/data-parallel-deepseek.yaml, docs/latency-model.md): 8 ranks of
/// one GPU against tensor parallelism over the 8 at 6 req/s. The latents cached once per rank give
/// more than 6 times the tokens of cache; a GPU reading only its rank's latents decodes faster at the
/// median; a prompt prefilled by one rank while the others wait lengthens the tail; every GPU priced
/// busy through the busiest rank's work costs energy per token.
#[test]
fn the_deepseek_example_trades_cache_and_median_itl_for_tail_latency_and_energy() {
    let p = root().join("experiments/data-parallel-deepseek.yaml");
    let dp = simulate(&p, &["workload.arrival.rate=6"]);
    let tp = simulate(
        &p,
        &[
            "workload.arrival.rate=6",
            "hardware.data_parallel=1",
            "hardware.tensor_parallel=8",
            "scheduler.max_num_batched_tokens=8192",
        ],
    );
    let (a, b) = (&dp.summary, &tp.summary);
    assert_eq!(a.requests_completed, 3000);
    assert_eq!(b.requests_completed, 3000);
    assert!(a.kv_blocks_per_replica > 6 * b.kv_blocks_per_replica);
    let l = |s: &simwatt::metrics::Summary| {
        let l = &s.latency;
        (
            l.itl_p50_s.unwrap(),
            l.itl_p99_s.unwrap(),
            l.ttft_p90_s.unwrap(),
        )
    };
    let (x, y) = (l(a), l(b));
    assert!(x.0 < 0.95 * y.0, "ITL p50 {} against {}", x.0, y.0);
    assert!(x.1 > 2.0 * y.1, "ITL p99 {} against {}", x.1, y.1);
    assert!(x.2 > y.2, "TTFT p90 {} against {}", x.2, y.2);
    let j = |s: &simwatt::metrics::Summary| s.energy.j_per_output_token.unwrap();
    assert!(j(a) > 1.05 * j(b));
}
