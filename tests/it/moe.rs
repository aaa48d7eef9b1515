//! Mixture-of-experts models: memory holds every expert, a step computes with the top-k and reads the
//! experts its batch touches (docs/latency-model.md, "Mixture of experts").

use crate::common::*;
use simwatt::catalog::Catalog;
use simwatt::drivers::simulate;
use simwatt::predictor::roofline::Roofline;
use simwatt::predictor::{BatchShape, CostModel};
use std::path::PathBuf;

const QWEN_MOE: &str = "Qwen/Qwen3-30B-A3B";

/// A small config of `model` on one `gpu`.
fn config(dir: &std::path::Path, model: &str, gpu: &str) -> PathBuf {
    config_with(dir, model, gpu, "")
}

/// [`config`] with `extra` YAML appended (a `precision` section).
fn config_with(dir: &std::path::Path, model: &str, gpu: &str, extra: &str) -> PathBuf {
    write(
        dir,
        "c.yaml",
        &format!(
            "seed: 3\nmodel: {model}\nhardware: {{ gpu: {gpu}, tensor_parallel: 1 }}\n\
             scheduler: {{ policy: vllm, max_num_seqs: 32, max_num_batched_tokens: 2048, block_size: 16 }}\n\
             workload:\n  requests: 20\n  arrival: {{ type: poisson, rate: 4.0 }}\n  \
             lengths: {{ type: uniform, prompt: [128, 512], output: [16, 32] }}\n{extra}"
        ),
    )
}

/// Qwen3-30B-A3B on an H100 at bf16, no overheads, efficiencies 0.6 and 0.8.
fn qwen_roofline() -> Roofline {
    qwen_roofline_tp(1)
}

/// [`qwen_roofline`] over `tp` tensor-parallel H100s.
fn qwen_roofline_tp(tp: u32) -> Roofline {
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model(QWEN_MOE).unwrap();
    h100_roofline(m, tp)
}

/// `m` at its catalog precision over `tp` tensor-parallel H100s, no overheads, efficiencies 0.6 and
/// 0.8.
fn h100_roofline(m: &simwatt::catalog::ModelSpec, tp: u32) -> Roofline {
    bare_roofline(m, "h100", tp)
}

/// Per layer: attention 2,048 x (4,096 + 2 x 512) + 4,096 x 2,048 = 18,874,368; one expert
/// 3 x 2,048 x 768 = 4,718,592; router 2,048 x 128 = 262,144; with all 128 experts 623,116,288.
/// Total 48 x 623,116,288 + 2 x 151,936 x 2,048 = 30,531,911,680 (the model card: 30.5B).
/// Active: 48 x (18,874,368 + 262,144 + 8 x 4,718,592) + 622,329,856 = 3,352,821,760 (card: 3.3B).
/// Mixtral-8x7B: 46,702,526,464 total, 12,879,659,008 active (card: 46.7B and 12.9B).
#[test]
fn moe_catalog_entries_count_total_and_active_parameters() {
    let c = Catalog::builtin().unwrap();
    let (_, q) = c.model(QWEN_MOE).unwrap();
    assert_eq!(q.moe_layer_params(), 623_116_288);
    assert_eq!(q.total_params(), 30_531_911_680);
    assert_eq!(q.active_params(), 3_352_821_760);
    let (_, mx) = c.model("mistralai/Mixtral-8x7B-v0.1").unwrap();
    assert_eq!(mx.total_params(), 46_702_526_464);
    assert_eq!(mx.active_params(), 12_879_659_008);
    // A dense model: active = total, and no expert or router weights.
    let (_, d) = c.model("Qwen/Qwen3-8B").unwrap();
    assert_eq!(d.active_params(), d.total_params());
    assert_eq!(d.router_params(), 0);
}

/// Memory holds all 30,531,911,680 weights: x 2 B = 61.064 GB. H100: 80 x 0.9 = 72 GB usable, so it
/// fits with about 10 GB of KV cache; an A100 40GB (36 GB usable) and an RTX 4090 (21.6 GB) do not.
#[test]
fn moe_memory_holds_every_expert() {
    let tmp = tempfile::tempdir().unwrap();
    let s = resolve(&config(tmp.path(), QWEN_MOE, "h100")).unwrap();
    assert!((s.memory.weight_bytes_per_gpu - 61_063_823_360.0).abs() < 1.0);
    assert!(s.memory.num_blocks > 0);
    // 48 layers x 2 x 4 KV heads x 128 x 2 B = 98,304 B per token.
    assert_eq!(s.memory.kv_bytes_per_token_per_gpu, 98_304);
    for gpu in ["a100-40gb", "rtx4090"] {
        let e = resolve(&config(tmp.path(), QWEN_MOE, gpu))
            .expect_err("61 GB of weights do not fit")
            .to_string();
        assert!(e.contains("does not fit"), "{gpu}: {e}");
    }
    let o = simulate::simulate(s, &caches().tables, &|_| {}).unwrap();
    assert_eq!(o.summary.requests_completed, 20);
}

/// One decode of batch 1 (context 10) reads each layer's attention, router and its 8 experts:
/// 48 x 56,885,248 = 2,730,491,904 weights, plus the output head's 311,164,928: 3,041,656,832 x 2 B
/// = 6.083 GB (all experts would be 60.44 GB). Its FLOPs are 2 per active weight: 6.083 GFLOP.
#[test]
fn moe_decode_reads_the_experts_the_batch_touches() {
    let r = qwen_roofline();
    let step = |batch: u32| {
        let mut s = BatchShape::default();
        for _ in 0..batch {
            s.add_decode(10);
        }
        r.stage_cost(&s, 0)
    };
    let one = step(1);
    let active_bytes = 3_041_656_832.0 * 2.0;
    assert!(
        one.bytes > active_bytes && one.bytes < active_bytes * 1.01,
        "{} B",
        one.bytes
    );
    assert!(
        (one.flops / (2.0 * 3_041_656_832.0) - 1.0).abs() < 0.01,
        "{} FLOP",
        one.flops
    );
    // Weight bytes per step rise with the batch toward all experts (60.44 GB of weights read): at
    // 256 tokens 128 x (1 - (120/128)^256) = 127.99 experts are expected per layer.
    let all_bytes = (48.0 * 623_116_288.0 + 311_164_928.0) * 2.0;
    let mut last = 0.0;
    for b in [1, 2, 4, 8, 16, 32, 64, 128, 256] {
        let c = step(b);
        assert!(c.bytes > last, "batch {b}: {} after {last}", c.bytes);
        last = c.bytes;
    }
    // At 256 tokens the rest is activations (~1.3 GB) and the KV cache (0.25 GB).
    assert!(last > all_bytes && last < all_bytes * 1.05, "{last}");
    // FLOPs per token stay at the active parameters' (layers and output head, every decode token
    // samples) whatever the batch: 6.083 GFLOP, against 2 x 30.22e9 = 60.4 GFLOP for all experts.
    let per_token = step(64).flops / 64.0;
    assert!(
        (per_token / (2.0 * 3_041_656_832.0) - 1.0).abs() < 0.01,
        "{per_token}"
    );
}

/// E[distinct] = E (1 - (1 - k/E)^T): k for one token, monotone, bounded by E.
#[test]
fn expected_distinct_experts_under_uniform_routing() {
    let c = Catalog::builtin().unwrap();
    let (_, q) = c.model(QWEN_MOE).unwrap();
    let e = q.moe.as_ref().unwrap();
    assert!((e.expected_distinct_experts(1.0) - 8.0).abs() < 1e-9);
    // 128 x (1 - (15/16)^2) = 15.5
    assert!((e.expected_distinct_experts(2.0) - 15.5).abs() < 1e-9);
    assert_eq!(e.expected_distinct_experts(0.0), 0.0);
    let mut last = 0.0;
    for t in 1..2000 {
        let d = e.expected_distinct_experts(t as f64);
        assert!(d >= last && d <= 128.0, "{t}: {d}");
        last = d;
    }
}

/// The roofline's provenance says how an MoE model's linear layers were priced.
#[test]
fn moe_provenance_names_the_routing_assumption() {
    use simwatt::predictor::Predictor;
    let info = qwen_roofline().info();
    let (_, how) = info
        .sources
        .iter()
        .find(|(op, _)| op == "linear_layers")
        .unwrap();
    assert!(
        how.contains("mixture of experts") && how.contains("uniform routing"),
        "{how}"
    );
}

/// Bad MoE values in a catalog name the file, the entry and the field.
#[test]
fn bad_moe_catalog_values_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let entry = |moe: &str| {
        format!(
            "models:\n  toy/moe:\n    num_layers: 4\n    hidden_size: 64\n    num_attention_heads: 4\n    \
             num_kv_heads: 4\n    head_dim: 16\n    intermediate_size: 128\n    vocab_size: 100\n    \
             gated_mlp: true\n    dtype_bytes: 2\n    max_position_embeddings: 512\n    moe: {moe}\n"
        )
    };
    let cases = [
        (
            "{ num_experts: 4, experts_per_token: 8, expert_intermediate_size: 32 }",
            "models.toy/moe.moe.experts_per_token",
            "8",
        ),
        (
            "{ num_experts: 0, experts_per_token: 1, expert_intermediate_size: 32 }",
            "models.toy/moe.moe.num_experts",
            "0",
        ),
        (
            "{ num_experts: 4, experts_per_token: 2, expert_intermediate_size: 32, first_dense_layers: 4 }",
            "models.toy/moe.moe.first_dense_layers",
            "4",
        ),
    ];
    for (moe, field, value) in cases {
        let p = write(tmp.path(), "models.yaml", &entry(moe));
        let e = Catalog::load(Some(&p), None).unwrap_err().to_string();
        assert!(
            e.contains(field) && e.contains(value) && e.contains("models.yaml"),
            "{moe}: {e}"
        );
    }
    let p = write(
        tmp.path(),
        "models.yaml",
        &entry("{ num_experts: 4, experts_per_token: 2, expert_intermediate_size: 32 }"),
    );
    assert!(Catalog::load(Some(&p), None).is_ok());
}

#[test]
fn a_profiled_model_made_mixture_of_experts_takes_only_its_mlp_from_the_roofline() {
    // Llama-2-7B has Vidur profiles on the A100. The same entry with a `moe` section (4 experts of the
    // dense MLP's size, 2 per token) keeps the profile predictor for every operation but the MLP's,
    // which the roofline prices (the profiles measured a dense MLP), and says so per operation.
    let tmp = tempfile::tempdir().unwrap();
    let models = std::fs::read_to_string(root().join("profiles/models.yaml")).unwrap();
    let anchor =
        "    max_position_embeddings: 4096\n    source: \"config.json of meta-llama/Llama-2-7b-hf";
    assert!(models.contains(anchor));
    let moe = models.replacen(
        anchor,
        &format!(
            "    max_position_embeddings: 4096\n    moe: {{ num_experts: 4, experts_per_token: 2, \
             expert_intermediate_size: 11008 }}\n{}",
            &anchor[anchor.find("    source").unwrap()..]
        ),
        1,
    );
    let catalog = write(tmp.path(), "models.yaml", &moe);
    let set = format!("catalog.models={}", catalog.display());
    let dense = simulate(&quickstart(), &["workload.requests=32"]);
    let sparse = simulate(&quickstart(), &["workload.requests=32", &set]);
    assert_eq!(dense.predictor.kind, sparse.predictor.kind);
    assert_ne!(
        dense.predictor.kind, "roofline",
        "the dense model runs on its profiles"
    );
    let source = |o: &simulate::RunOutcome, op: &str| {
        o.predictor
            .sources
            .iter()
            .find(|(k, _)| k == op)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no source for {op}: {:?}", o.predictor.sources))
    };
    for op in simwatt::predictor::profile::MOE_MLP_OPS {
        let s = source(&sparse, op);
        assert!(
            s.contains("roofline") && s.contains("mixture-of-experts"),
            "{op}: {s}"
        );
        assert!(
            !source(&dense, op).contains("roofline"),
            "{op} of the dense model"
        );
    }
    for (op, s) in &dense.predictor.sources {
        if !simwatt::predictor::profile::MOE_MLP_OPS.contains(&op.as_str()) {
            assert_eq!(&source(&sparse, op), s, "{op} keeps its source");
        }
    }
    // Two experts of the dense MLP's size per token: decoding reads more weights than the dense model.
    let (d, s) = (
        dense.summary.latency.tpot_mean_s.unwrap(),
        sparse.summary.latency.tpot_mean_s.unwrap(),
    );
    assert!(s > d, "TPOT {s} s with experts against {d} s dense");
}

/// Expert parallelism over 4 GPUs, one token, top-8 of 128 experts: 8 passes, each GPU's share
/// binomial(8, 1/4): mean 2, sd sqrt(8 x 1/4 x 3/4) = 1.2247; the busiest of 4 at mean + 1.02938 sd
/// = 3.2607 passes. Its 32 experts are each hit with probability 8/128: mean 2, sd 1.3693, busiest
/// 3.4096, capped at its 3.2607 passes. One GPU: the means exactly.
#[test]
fn the_busiest_expert_parallel_gpu_runs_and_reads_more_than_its_share() {
    let c = Catalog::builtin().unwrap();
    let (_, q) = c.model(QWEN_MOE).unwrap();
    let e = q.moe.as_ref().unwrap();
    let (passes, touched) = e.busiest_expert_parallel_rank(1.0, 4);
    assert!((passes - 3.2607).abs() < 1e-3, "{passes}");
    assert!((touched - 3.2607).abs() < 1e-3, "{touched}");
    for t in [1.0, 7.0, 300.0] {
        let (p, d) = e.busiest_expert_parallel_rank(t, 1);
        assert_eq!(p, 8.0);
        assert!((d - e.expected_distinct_experts(t)).abs() < 1e-9);
    }
    // The imbalance fades as the batch grows: at 4,096 tokens the busiest GPU runs within 3% of its
    // share (8 / 4 passes per token) and reads all its 32 experts.
    let (p, d) = e.busiest_expert_parallel_rank(4096.0, 4);
    assert!(p > 2.0 && p < 2.0 * 1.03, "{p}");
    assert!((d - 32.0).abs() < 1e-6, "{d}");
    // The normal approximation against routing drawn at random (each token picks 8 distinct experts
    // uniformly; expert i lives on GPU i / (128 / ranks)): the mean over 4,000 draws of the busiest
    // GPU's passes and distinct experts, within 12%.
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for ranks in [2u32, 4, 8] {
        for tokens in [1usize, 4, 16, 64] {
            let per = 128 / ranks as usize;
            let (mut sum_p, mut sum_d) = (0.0, 0.0);
            let draws = 4000;
            for _ in 0..draws {
                let mut passes = vec![0u32; ranks as usize];
                let mut hit = [false; 128];
                for _ in 0..tokens {
                    let mut picked = [false; 128];
                    let mut n = 0;
                    while n < 8 {
                        let x = rng.random_range(0..128usize);
                        if !picked[x] {
                            picked[x] = true;
                            hit[x] = true;
                            passes[x / per] += 1;
                            n += 1;
                        }
                    }
                }
                sum_p += *passes.iter().max().unwrap() as f64;
                sum_d += (0..ranks as usize)
                    .map(|r| hit[r * per..(r + 1) * per].iter().filter(|h| **h).count())
                    .max()
                    .unwrap() as f64;
            }
            let (p, d) = e.busiest_expert_parallel_rank(tokens as f64, ranks);
            let (mp, md) = (sum_p / draws as f64 / tokens as f64, sum_d / draws as f64);
            assert!(
                (p / mp - 1.0).abs() < 0.12,
                "{ranks} GPUs, {tokens} tokens: passes {p} vs {mp}"
            );
            assert!(
                (d / md - 1.0).abs() < 0.12,
                "{ranks} GPUs, {tokens} tokens: experts {d} vs {md}"
            );
        }
    }
}

#[test]
fn expected_maximum_of_normals_follows_its_table_and_grows_with_n() {
    use simwatt::catalog::expected_max_of_normals as z;
    assert_eq!(z(1), 0.0);
    assert_eq!(z(2), 0.56419);
    assert_eq!(z(8), 1.4236);
    let mut last = -1.0;
    for n in 1..300 {
        let v = z(n);
        assert!(v > last, "{n}: {v} after {last}");
        last = v;
    }
    // Between entries, within 0.01 of the integral: 10 -> 1.53875, 100 -> 2.50759.
    assert!((z(10) - 1.53875).abs() < 0.01, "{}", z(10));
    assert!((z(100) - 2.50759).abs() < 0.01, "{}", z(100));
}

/// Qwen3-30B-A3B over 4 H100s: with expert parallelism a one-sequence decode step's busiest GPU
/// reads 3.26 whole experts per layer instead of a quarter of each of 8 (2 expert-equivalents); at 256
/// sequences every GPU reads all its experts either way and the steps are within 5%.
#[test]
fn expert_parallelism_prices_the_busiest_gpu() {
    let tp = qwen_roofline_tp(4);
    let ep = qwen_roofline_tp(4).with_expert_parallel(true);
    let step = |r: &Roofline, batch: u32| {
        let mut s = BatchShape::default();
        for _ in 0..batch {
            s.add_decode(10);
        }
        r.stage_cost(&s, 0)
    };
    let (a, b) = (step(&tp, 1), step(&ep, 1));
    // Expert weights per layer read by the busiest GPU: 2 (TP) against 3.2607 (EP) experts of
    // 4,718,592 weights, x 2 B x 48 layers.
    let extra = (3.2607 - 2.0) * 4_718_592.0 * 2.0 * 48.0;
    assert!(
        ((b.bytes - a.bytes) / extra - 1.0).abs() < 0.01,
        "{} - {} against {extra}",
        b.bytes,
        a.bytes
    );
    assert!(b.time_ns > a.time_ns);
    let (a, b) = (step(&tp, 256), step(&ep, 256));
    assert!(
        (b.time_ns as f64 / a.time_ns as f64 - 1.0).abs() < 0.05,
        "{} against {}",
        b.time_ns,
        a.time_ns
    );
    // A dense model ignores it.
    let c = Catalog::builtin().unwrap();
    let (_, dense) = c.model("Qwen/Qwen3-8B").unwrap();
    let x = h100_roofline(dense, 4);
    let y = h100_roofline(dense, 4).with_expert_parallel(true);
    assert_eq!(step(&x, 3), step(&y, 3));
}

const GPT_OSS_120B: &str = "openai/gpt-oss-120b";

/// gpt-oss-120b per layer: attention 2,880 x (4,096 + 2 x 512) + 4,096 x 2,880 = 26,542,080; one
/// expert 3 x 2,880 x 2,880 = 24,883,200; router 2,880 x 128 = 368,640; with all 128 experts
/// 3,211,960,320. Total 36 x 3,211,960,320 + 2 x 201,088 x 2,880 = 116,788,838,400 (the model card:
/// 116.8B, biases aside); active 36 x (26,542,080 + 368,640 + 4 x 24,883,200) + 1,158,266,880 =
/// 5,710,233,600 (the card's 5.1B counts one embedding matrix).
#[test]
fn gpt_oss_catalog_entries_count_total_and_active_parameters() {
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model(GPT_OSS_120B).unwrap();
    assert_eq!(m.moe_layer_params(), 3_211_960_320);
    assert_eq!(m.total_params(), 116_788_838_400);
    assert_eq!(m.active_params(), 5_710_233_600);
    let (_, s) = c.model("openai/gpt-oss-20b").unwrap();
    // 24 x (26,542,080 + 92,160 + 32 x 24,883,200) + 1,158,266,880 = 20,907,786,240 (card: 20.9B).
    assert_eq!(s.total_params(), 20_907_786_240);
    // Tied embeddings are held once.
    let mut g = s.clone();
    g.tie_word_embeddings = true;
    assert_eq!(g.total_params(), 20_907_786_240 - 201_088 * 2_880);
}

/// gpt-oss-120b on one H100, its experts MXFP4 (4.25 bits: 0.53125 B per weight) as the checkpoint
/// stores them, everything else bf16: routed experts 36 x 128 x 24,883,200 = 114,661,785,600 x
/// 0.53125 = 60,914,073,600 B; attention and routers 36 x 26,910,720 x 2 = 1,937,571,840 B;
/// embedding and head 1,158,266,880 x 2 = 2,316,533,760 B: 65.168 GB of the 72 GB usable. In bf16 the
/// experts alone would take 229 GB.
///
/// The KV cache: activations for 2,048 tokens 2,048 x (2 x 2,880 + 5,120 + 2,880 x 4 x 2 + 128) x 2 =
/// 139,460,608 B, logits 32 x 201,088 x 4 = 25,739,264 B, leaving 6,666,620,928 B. vLLM's hybrid
/// manager groups the 18 sliding and 18 full layers in groups of 18: a block of 16 tokens of one
/// group takes 18 x 16 x 2 x 8 x 64 x 2 = 589,824 B, so 11,302 blocks; a sliding group holds at most
/// (128 - 1) / 16 rounded up + 1 = 9 of them per sequence.
#[test]
fn gpt_oss_120b_fits_one_h100_with_mxfp4_experts_and_windowed_kv_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let s = resolve(&config(tmp.path(), GPT_OSS_120B, "h100")).unwrap();
    let e = s
        .precision
        .experts
        .as_ref()
        .expect("the catalog's MXFP4 experts");
    assert_eq!((e.weights.as_str(), e.weight_bytes), ("mxfp4", 0.53125));
    assert_eq!(s.precision.weights, "bf16");
    assert_eq!(s.memory.weight_bytes_per_gpu, 65_168_179_200.0);
    let g = s.memory.kv_groups.expect("sliding and full layers grouped");
    assert_eq!(
        (g.layers_per_group, g.full, g.sliding, g.window_blocks),
        (18, 1, 1, 9)
    );
    assert_eq!(s.memory.num_blocks, 11_302);
    assert!(s
        .precision
        .describe()
        .contains("routed experts mxfp4 (0.53125 B per weight"));
    let o = simulate::simulate(s, &caches().tables, &|_| {}).unwrap();
    assert_eq!(o.summary.requests_completed, 20);

    // Experts in bf16 do not fit.
    let p = config_with(
        tmp.path(),
        GPT_OSS_120B,
        "h100",
        "precision: { experts: bf16 }\n",
    );
    let e = resolve(&p).unwrap_err().to_string();
    assert!(e.contains("does not fit"), "{e}");
    // A dense model has no experts to store apart.
    let p = config_with(
        tmp.path(),
        "Qwen/Qwen3-8B",
        "h100",
        "precision: { experts: mxfp4 }\n",
    );
    let e = resolve(&p).unwrap_err().to_string();
    assert!(
        e.contains("precision.experts") && e.contains("dense"),
        "{e}"
    );
}

/// Without vLLM V1's hybrid manager (Orca, LightLLM) or with prefix caching, every layer holds every
/// token: blocks of all 36 layers, half as many (5,651).
#[test]
fn kv_groups_only_under_a_paged_cache_that_frees_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let p = config(tmp.path(), GPT_OSS_120B, "h100");
    let base = std::fs::read_to_string(&p).unwrap();
    for (from, to) in [
        ("policy: vllm", "policy: orca"),
        (
            "block_size: 16 }",
            "block_size: 16, enable_prefix_caching: true }",
        ),
    ] {
        std::fs::write(&p, base.replace(from, to)).unwrap();
        let s = resolve(&p).unwrap();
        assert!(s.memory.kv_groups.is_none(), "{to}");
        assert_eq!(s.memory.num_blocks, 5_651, "{to}");
    }
}

/// Sliding-window layers read at most a window of keys per decode sequence: at contexts within the
/// window a step costs what it would without windows; past it, it reads less, and the saving is the
/// sliding layers' KV bytes beyond the window.
#[test]
fn sliding_window_layers_read_at_most_a_window_of_kv_cache() {
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model(GPT_OSS_120B).unwrap();
    let windowed = h100_roofline(m, 1);
    let mut full_model = m.clone();
    full_model.sliding_window = None;
    let full = h100_roofline(&full_model, 1);
    let step = |r: &Roofline, ctx: u32| {
        let mut s = BatchShape::default();
        for _ in 0..8 {
            s.add_decode(ctx);
        }
        r.stage_cost(&s, 0)
    };
    let (a, b) = (step(&windowed, 100), step(&full, 100));
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(a.time_ns, b.time_ns);
    let (a, b) = (step(&windowed, 4_000), step(&full, 4_000));
    // 18 sliding layers x 8 sequences x (4,001 - 128) tokens x 2 x 8 x 64 x 2 B fewer.
    let saved = 18.0 * 8.0 * (4_001.0 - 128.0) * 2048.0;
    assert!(
        ((b.bytes - a.bytes) - saved).abs() < 1.0,
        "{} {}",
        b.bytes - a.bytes,
        saved
    );
    assert!(a.time_ns < b.time_ns);
}

/// Disaggregated serving keeps every layer's cache (the hybrid manager off, as vLLM turns it off for
/// a KV connector without support for it): blocks of all 36 layers, whose transfer moves them all.
#[test]
fn kv_groups_are_off_under_disaggregation() {
    let tmp = tempfile::tempdir().unwrap();
    let p = config(tmp.path(), GPT_OSS_120B, "h100");
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "tensor_parallel: 1 }",
        "tensor_parallel: 1, replicas: 2, prefill_replicas: 1, kv_link: infiniband_ndr }",
    );
    std::fs::write(&p, text).unwrap();
    let s = resolve(&p).unwrap();
    assert!(s.memory.kv_groups.is_none());
    assert_eq!(s.memory.num_blocks, 5_651);
}

/// Gemma 3 27B on one H100 (bf16, `gpu_memory_utilization` 0.9: 72 GB usable), with its sliding
/// windows. Weights: 27,007,991,808 (embedding tied, held once) x 2 = 54,015,983,616 B. Activations for
/// 2,048 tokens: 2,048 x (2 x 5,376 + (4,096 + 2 x 2,048) + 21,504 x 2) x 2 = 253,755,392 B, logits
/// 32 x 262,208 x 4 = 33,562,624 B, leaving 17,696,698,368 B for the KV cache. The 10 full and 52
/// sliding layers group in tens (vLLM V1's hybrid manager): one full group and six sliding ones, a
/// block of 16 tokens of one group 10 x 16 x 2 x 16 x 128 x 2 = 1,310,720 B, so 13,501 blocks; a
/// sliding group holds at most (1,024 - 1) / 16 rounded up + 1 = 65 of them per sequence. A sequence of
/// 8,000 tokens then takes 500 + 6 x 65 = 890 blocks: 15 fit at once. With every layer holding every
/// token (no windows), a block of all 62 layers takes 8,126,464 B: 2,177 blocks, 34,832 tokens, 4
/// such sequences.
#[test]
fn gemma_3_27b_holds_about_four_times_the_long_sequences_with_its_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let s = resolve(&config(tmp.path(), "google/gemma-3-27b-it", "h100")).unwrap();
    assert_eq!(s.memory.weight_bytes_per_gpu, 54_015_983_616.0);
    let g = s.memory.kv_groups.expect("sliding and full layers grouped");
    assert_eq!(
        (g.layers_per_group, g.full, g.sliding, g.window_blocks),
        (10, 1, 6, 65)
    );
    assert_eq!(s.memory.num_blocks, 13_501);
    let per_sequence = 500 + 6 * 65;
    assert_eq!(s.memory.num_blocks / per_sequence, 15);

    // The same entry without its windows, from a catalog of one's own.
    let text = include_str!("../../profiles/models.yaml").replacen(
        "    sliding_window:\n      window: 1024\n      pattern: 6                 # sliding_window_pattern: every sixth layer attends to the whole context\n    tie_word_embeddings: true\n    source: \"config.json of google/gemma-3-27b-it",
        "    tie_word_embeddings: true\n    source: \"config.json of google/gemma-3-27b-it",
        1,
    );
    assert_ne!(text, include_str!("../../profiles/models.yaml"));
    let models = write(tmp.path(), "models.yaml", &text);
    let p = config_with(
        tmp.path(),
        "google/gemma-3-27b-it",
        "h100",
        &format!("catalog: {{ models: {} }}\n", models.display()),
    );
    let s = resolve(&p).unwrap();
    assert!(s.memory.kv_groups.is_none());
    assert_eq!(s.memory.num_blocks, 2_177);
    assert_eq!(s.memory.num_blocks / 500, 4);
    let o = simulate::simulate(
        resolve(&config(tmp.path(), "google/gemma-3-27b-it", "h100")).unwrap(),
        &caches().tables,
        &|_| {},
    )
    .unwrap();
    assert_eq!(o.summary.requests_completed, 20);
}
