//! Multi-head latent attention (DeepSeek-V3): weights of its projections, one cached latent per token
//! that tensor parallelism does not split, decode attention in the latent space, and no profile
//! predictor (docs/latency-model.md, "Multi-head latent attention").

use crate::common::*;
use simwatt::catalog::Catalog;
use simwatt::drivers::simulate;
use simwatt::predictor::roofline::Roofline;
use simwatt::predictor::{BatchShape, CostModel};

const DEEPSEEK: &str = "deepseek-ai/DeepSeek-V3";

/// DeepSeek-V3 served as ML.ENERGY v3 served it: 8 B200 with expert parallelism, FP8 weights and
/// arithmetic; `extra` YAML appended.
fn deepseek_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    write(
        dir,
        "c.yaml",
        &format!(
            "seed: 3\nmodel: {DEEPSEEK}\n\
             hardware: {{ gpu: b200, tensor_parallel: 8, expert_parallel: true, gpu_memory_utilization: 0.9 }}\n\
             scheduler: {{ policy: sarathi, max_num_seqs: 16, max_num_batched_tokens: 8192, chunk_size: 8192, block_size: 16 }}\n\
             precision: {{ weights: fp8, compute: fp8 }}\n\
             workload:\n  requests: 12\n  arrival: {{ type: poisson, rate: 4.0 }}\n  \
             lengths: {{ type: uniform, prompt: [128, 512], output: [16, 32] }}\n{extra}"
        ),
    )
}

/// DeepSeek-V3 at its catalog precision on `tp` tensor-parallel B200s, no overheads.
fn b200_roofline(tp: u32) -> Roofline {
    let c = Catalog::builtin().unwrap();
    bare_roofline(c.model(DEEPSEEK).unwrap().1, "b200", tp)
}

/// Attention per layer: query down 7,168 x 1,536 = 11,010,048; query up 1,536 x 128 x (128 + 64) =
/// 37,748,736; latent down with the rotary key 7,168 x (512 + 64) = 4,128,768; latent up 512 x 128 x
/// (128 + 128) = 16,777,216; output 128 x 128 x 7,168 = 117,440,512: 187,105,280. One expert 3 x
/// 7,168 x 2,048 = 44,040,192, the router 7,168 x 256 = 1,835,008, so an MoE layer with 256 routed
/// and 1 shared expert holds 11,507,269,632 and a dense layer 187,105,280 + 3 x 7,168 x 18,432 =
/// 583,467,008. Total 58 x 11,507,269,632 + 3 x 583,467,008 + 2 x 129,280 x 7,168 =
/// 671,025,397,760 (the model card: 671B); active, 8 routed and the shared expert per MoE layer,
/// 37,551,276,032 (card: 37B).
#[test]
fn deepseek_v3_counts_671b_total_and_37b_active_parameters() {
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model(DEEPSEEK).unwrap();
    assert_eq!(m.attention_params_per_layer(), 187_105_280);
    assert_eq!(m.moe_layer_params(), 11_507_269_632);
    assert_eq!(m.linear_params_per_layer(), 583_467_008);
    assert_eq!(m.total_params(), 671_025_397_760);
    assert_eq!(m.active_params(), 37_551_276_032);
    // The served releases are the same architecture.
    for alias in ["deepseek-ai/DeepSeek-V3.1", "deepseek-ai/DeepSeek-R1-0528"] {
        assert_eq!(c.model(alias).unwrap().0, DEEPSEEK);
    }
}

/// Each token caches one latent of 512 and a rotary key of 64 per layer: 61 x 576 x 2 B = 70,272 B,
/// on every GPU of the TP 8 group (a grouped-query model's cache would split eight ways). The weights:
/// 669,172,039,680 linear at 1 B (FP8) and the embedding and head's 1,853,358,080 at 2 B, over 8 GPUs:
/// 84,109,844,480 B each.
#[test]
fn the_latent_is_cached_whole_on_every_tensor_parallel_gpu() {
    let tmp = tempfile::tempdir().unwrap();
    let s = resolve(&deepseek_config(tmp.path(), "")).unwrap();
    assert_eq!(s.memory.kv_bytes_per_token_per_gpu, 70_272);
    assert!(
        (s.memory.weight_bytes_per_gpu - 84_109_844_480.0).abs() < 1.0,
        "{}",
        s.memory.weight_bytes_per_gpu
    );
    assert!(s.memory.num_blocks > 0);
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model(DEEPSEEK).unwrap();
    assert_eq!(m.kv_elements_per_token_per_layer(1), 576.0);
    assert_eq!(m.kv_elements_per_token_per_layer(8), 576.0);
    assert_eq!(m.kv_bytes_per_token_per_layer(), 1_152);
    let o = simulate::simulate(s, &caches().tables, &|_| {}).unwrap();
    assert_eq!(o.summary.requests_completed, 12);
    assert_eq!(o.predictor.kind, "roofline");
}

/// Decode in the latent space: 1,000 more tokens of context for each of 8 sequences read 61 x 8,000 x
/// 576 x 2 B = 562,176,000 B more on every GPU whatever the TP degree, and cost 2 x heads x
/// (2 x 512 + 64) FLOPs per token per layer: 61 x 8,000 x 278,528 = 135,921,664,000 at TP 1, an
/// eighth at TP 8 (16 heads per GPU).
#[test]
fn latent_decode_reads_one_latent_per_token_for_all_heads() {
    let step = |r: &Roofline, ctx: u32| {
        let mut s = BatchShape::default();
        for _ in 0..8 {
            s.add_decode(ctx);
        }
        r.stage_cost(&s, 0)
    };
    for (tp, flops) in [(1, 135_921_664_000.0), (8, 16_990_208_000.0)] {
        let r = b200_roofline(tp);
        let (a, b) = (step(&r, 1_000), step(&r, 2_000));
        assert!(
            ((b.bytes - a.bytes) - 562_176_000.0).abs() < 1.0,
            "TP {tp}: {}",
            b.bytes - a.bytes
        );
        assert!(
            ((b.flops - a.flops) - flops).abs() < 1.0,
            "TP {tp}: {}",
            b.flops - a.flops
        );
        assert!(b.time_ns > a.time_ns);
    }
}

/// Prefill is multi-head attention on the up-projected keys (192 wide) and values (128): a 1,024-token
/// prompt's 524,800 causal pairs cost 2 x 128 x (192 + 128) FLOPs each per layer, 61 x 524,800 x
/// 81,920 = 2,622,488,576,000 more than the linear layers' 2 FLOPs per active weight per token.
#[test]
fn latent_prefill_attends_with_up_projected_keys_and_values() {
    let r = b200_roofline(1);
    let mut s = BatchShape::default();
    s.add_prefill(1_024, 0, false);
    let c = r.stage_cost(&s, 0);
    let mut one = BatchShape::default();
    one.add_prefill(1, 0, false);
    let c1 = r.stage_cost(&one, 0);
    // Per token the linear layers' FLOPs are the same (no token samples, so no head); the
    // attention's pairs are what is left.
    let linear_per_token = c1.flops - 61.0 * 81_920.0;
    let attention = c.flops - 1_024.0 * linear_per_token;
    assert!(
        (attention - 2_622_488_576_000.0).abs() / 2_622_488_576_000.0 < 1e-9,
        "{attention}"
    );
}

/// Vidur's attention profiles time multi-head and grouped-query kernels: asking for the profile
/// predictor on a latent-attention model is an error naming the field, not a silent misprice.
#[test]
fn profiles_are_refused_for_latent_attention() {
    let tmp = tempfile::tempdir().unwrap();
    let s = resolve(&deepseek_config(
        tmp.path(),
        "predictor: { type: profiles }\n",
    ))
    .unwrap();
    let e = match simulate::simulate(s, &caches().tables, &|_| {}) {
        Ok(_) => panic!("a latent-attention model priced from attention profiles"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("predictor.type") && e.contains("latent attention"),
        "{e}"
    );
}

#[test]
fn bad_latent_attention_catalog_values_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let entry = |extra: &str| {
        format!(
            "models:\n  toy/mla:\n    num_layers: 4\n    hidden_size: 64\n    num_attention_heads: 4\n    \
             num_kv_heads: 4\n    head_dim: 16\n    intermediate_size: 128\n    vocab_size: 100\n    \
             gated_mlp: true\n    dtype_bytes: 2\n    max_position_embeddings: 512\n{extra}"
        )
    };
    let mla = |kv: u32| {
        format!(
            "    mla: {{ q_lora_rank: 32, kv_lora_rank: {kv}, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16 }}\n"
        )
    };
    let p = write(tmp.path(), "models.yaml", &entry(&mla(0)));
    let e = Catalog::load(Some(&p), None).unwrap_err().to_string();
    assert!(
        e.contains("models.toy/mla.mla.kv_lora_rank") && e.contains("must be positive"),
        "{e}"
    );
    let p = write(
        tmp.path(),
        "models.yaml",
        &entry(&format!(
            "{}    sliding_window: {{ window: 8, pattern: 2 }}\n",
            mla(32)
        )),
    );
    let e = Catalog::load(Some(&p), None).unwrap_err().to_string();
    assert!(
        e.contains("models.toy/mla.mla") && e.contains("sliding windows"),
        "{e}"
    );
    let p = write(tmp.path(), "models.yaml", &entry(&mla(32)));
    let c = Catalog::load(Some(&p), None).unwrap();
    let (_, m) = c.model("toy/mla").unwrap();
    // A query down 64 x 32 and up 32 x 4 x 24, latent down 64 x 40, latent up 32 x 4 x 32, output
    // 4 x 16 x 64.
    assert_eq!(
        m.attention_params_per_layer(),
        64 * 32 + 32 * 4 * 24 + 64 * 40 + 32 * 4 * 32 + 4 * 16 * 64
    );
}
