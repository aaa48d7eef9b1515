//! Precision: quantised weights, fp8/int8 arithmetic and KV cache change the memory plan, the step
//! times and the energy, and say what priced them (docs/precision.md).

use crate::common::*;
use simwatt::drivers::simulate;
use std::path::PathBuf;

/// A small config of `model` on one `gpu` with the given extra YAML (a `precision` section).
fn config(dir: &std::path::Path, model: &str, gpu: &str, tp: u32, extra: &str) -> PathBuf {
    write(
        dir,
        "c.yaml",
        &format!(
            "seed: 3\nmodel: {model}\nhardware: {{ gpu: {gpu}, tensor_parallel: {tp} }}\n\
             scheduler: {{ policy: vllm, max_num_seqs: 32, max_num_batched_tokens: 2048, block_size: 16 }}\n\
             workload:\n  requests: 40\n  arrival: {{ type: poisson, rate: 4.0 }}\n  \
             lengths: {{ type: uniform, prompt: [128, 512], output: [64, 128] }}\n{extra}"
        ),
    )
}

const INT4: &str = "precision: { weights: int4 }\n";

/// Llama-3.1-8B: linear weights 32 layers x 218,103,808 = 6,979,321,856; input embedding and output
/// head 2 x 128,256 x 4,096 = 1,050,673,152, kept at 16 bit.
/// bf16: 6,979,321,856 x 2 + 1,050,673,152 x 2 = 16.060 GB.
/// int4 (AWQ/GPTQ, 4 + 20/128 = 4.15625 bits): 6,979,321,856 x 0.51953125 + 2,101,346,304 = 5.727 GB.
/// Activations for 2,048 tokens: 2,048 x (2 x 4,096 + 6,144 + 28,672) x 2 = 176.2 MB, plus logits
/// 32 x 128,256 x 4 = 16.4 MB, 0.193 GB in all.
/// RTX 3060: 12 GB x 0.9 = 10.8 GB usable: bf16 does not fit; int4 leaves 10.8 - 5.727 - 0.193 =
/// 4.880 GB, at 131,072 B per token (2 x 32 x 8 x 128 x 2) 2,327 blocks of 16 tokens.
#[test]
fn llama_3_1_8b_in_int4_fits_an_rtx3060_where_bf16_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let m = "meta-llama/Llama-3.1-8B";
    let bf16 = resolve(&config(tmp.path(), m, "rtx3060", 1, ""));
    let e = bf16
        .expect_err("bf16 Llama-3.1-8B does not fit 12 GB")
        .to_string();
    assert!(e.contains("does not fit") && e.contains("16.06"), "{e}");

    let s = resolve(&config(tmp.path(), m, "rtx3060", 1, INT4)).unwrap();
    let w = 6_979_321_856.0 * 0.51953125 + 2_101_346_304.0;
    assert!((s.memory.weight_bytes_per_gpu - w).abs() < 1.0);
    assert!((s.memory.weight_bytes_per_gpu / 1e9 - 5.727).abs() < 0.001);
    assert_eq!(s.memory.kv_bytes_per_token_per_gpu, 131_072);
    assert_eq!(s.memory.num_blocks, 2327);
    let o = simulate::simulate(s, &caches().tables, &|_| {}).unwrap();
    assert_eq!(o.summary.requests_completed, 40);
}

/// On an RTX 4090 (24 GB x 0.9 = 21.6 GB usable) both fit: bf16 leaves 21.6 - 16.060 - 0.193 =
/// 5.347 GB (2,549 blocks), int4 15.680 GB (7,476 blocks). Decode reads the weights once per step:
/// 16.06 GB against 5.73 GB at the same bandwidth, so int4 decodes faster and, with the same power
/// profile, at fewer joules per output token.
#[test]
fn int4_decodes_faster_and_cheaper_than_bf16_on_an_rtx4090() {
    let tmp = tempfile::tempdir().unwrap();
    let m = "meta-llama/Llama-3.1-8B";
    let bf16 = resolve(&config(tmp.path(), m, "rtx4090", 1, "")).unwrap();
    let int4 = resolve(&config(tmp.path(), m, "rtx4090", 1, INT4)).unwrap();
    assert_eq!(bf16.memory.num_blocks, 2549);
    assert_eq!(int4.memory.num_blocks, 7476);
    let a = simulate::simulate(bf16, &caches().tables, &|_| {}).unwrap();
    let b = simulate::simulate(int4, &caches().tables, &|_| {}).unwrap();
    let (ta, tb) = (
        a.summary.latency.tpot_mean_s.unwrap(),
        b.summary.latency.tpot_mean_s.unwrap(),
    );
    assert!(tb < 0.6 * ta, "int4 TPOT {tb} s against bf16 {ta} s");
    let (ja, jb) = (
        a.summary.energy.j_per_output_token.unwrap(),
        b.summary.energy.j_per_output_token.unwrap(),
    );
    assert!(jb < ja, "int4 {jb} J/token against bf16 {ja}");
    // The roofline prices the linear layers at the int4 bytes and says so.
    let lin = &b
        .predictor
        .sources
        .iter()
        .find(|(o, _)| o == "linear_layers")
        .unwrap()
        .1;
    assert!(
        lin.contains("weights int4") && lin.contains("dequantisation"),
        "{lin}"
    );
    eprintln!("RTX 4090 Llama-3.1-8B: TPOT bf16 {ta:.5} s, int4 {tb:.5} s; J/token bf16 {ja:.3}, int4 {jb:.3}");
}

/// TinyLlama-1.1B as GGUF Q4_0 (4.5 bits per weight) on the i5-13600K: linear weights 22 x 44,040,192
/// = 968,884,224 x 0.5625 + embeddings 2 x 32,000 x 2,048 x 2 = 0.807 GB. The CPU has no int8 peak in
/// the catalog, so int8 arithmetic falls back to its FP32 FMA peak with a warning.
#[test]
fn gguf_q4_0_tinyllama_runs_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let m = "TinyLlama/TinyLlama-1.1B-Chat-v1.0";
    let s = resolve(&config(
        tmp.path(),
        m,
        "i5-13600k",
        1,
        "precision: { weights: q4_0 }\n",
    ))
    .unwrap();
    assert!((s.memory.weight_bytes_per_gpu / 1e9 - 0.807).abs() < 0.001);
    assert_eq!(s.precision.weight_bytes, 0.5625);
    assert!(s.fallbacks().is_empty(), "{:?}", s.fallbacks());
    let o = simulate::simulate(s, &caches().tables, &|_| {}).unwrap();
    assert_eq!(o.summary.requests_completed, 40);
    assert!(o.summary.energy.j_per_output_token.unwrap() > 0.0);

    let s = resolve(&config(
        tmp.path(),
        m,
        "i5-13600k",
        1,
        "precision: { weights: q8_0, compute: int8 }\n",
    ))
    .unwrap();
    assert_eq!(s.precision.compute_used, "bf16");
    assert_eq!(s.precision.peak_tflops, 1.48);
    let f = s.fallbacks().join(" ");
    assert!(
        f.contains("precision.compute int8") && f.contains("Intel Core i5-13600K"),
        "{f}"
    );
}

/// Llama-2-70B in FP8 at TP 2 on H100 (80 GB x 0.9 = 72 GB usable per GPU), with
/// max_num_batched_tokens 2048 and max_num_seqs 32: linear weights 80 x 855,638,016 =
/// 68,451,041,280 at 1 B, embeddings 2 x 32,000 x 8,192 x 2 B = 1,048,576,000, halved by TP: 34.750 GB
/// per GPU. Activations 2,048 x (2 x 8,192 + (10,240 + 57,344) / 2) x 2 = 205.5 MB plus logits
/// 32 x 16,000 x 4 = 2.0 MB. KV at fp8: 2 x 80 x 4 x 128 x 1 = 81,920 B per token per GPU, so
/// (72 - 34.750 - 0.2076) GB / (81,920 x 16) = 28,261 blocks. In bf16 the weights take 68.975 GB per
/// GPU, leaving 2.817 GB: 1,074 blocks of bf16 KV. The linear layers run at the fp8 peak, 1,979
/// TFLOP/s.
#[test]
fn llama_2_70b_in_fp8_at_tp2_on_h100_leaves_room_for_kv_and_uses_the_fp8_peak() {
    let tmp = tempfile::tempdir().unwrap();
    let m = "meta-llama/Llama-2-70b-hf";
    let fp8 = resolve(&config(
        tmp.path(),
        m,
        "h100",
        2,
        "precision: { weights: fp8, kv_cache: fp8 }\n",
    ))
    .unwrap();
    assert!((fp8.memory.weight_bytes_per_gpu / 1e9 - 34.750).abs() < 0.001);
    assert_eq!(fp8.memory.kv_bytes_per_token_per_gpu, 81_920);
    assert_eq!(fp8.memory.num_blocks, 28_261);
    assert_eq!(fp8.precision.compute_used, "fp8");
    assert_eq!(fp8.precision.peak_tflops, 1979.0);
    let bf16 = resolve(&config(tmp.path(), m, "h100", 2, "")).unwrap();
    assert_eq!(bf16.memory.num_blocks, 1074);

    let o = simulate::simulate(fp8, &caches().tables, &|_| {}).unwrap();
    assert_eq!(o.summary.requests_completed, 40);
    let src = |op: &str| {
        o.predictor
            .sources
            .iter()
            .find(|(o, _)| o == op)
            .map(|(_, s)| s.clone())
            .unwrap()
    };
    let up = src("mlp_up_proj");
    assert!(
        up.contains("random forest")
            && up.contains("scaled")
            && up.contains("fp8 arithmetic at 1979"),
        "{up}"
    );
    assert!(src("attention_decode").contains("KV cache fp8"));
    // The norms keep their forests unscaled: the residual stream stays 16-bit.
    assert!(!src("input_layernorm").contains("scaled"));
}

/// fp8 on an A100 (no fp8 tensor cores) runs at the bf16 peak, weight-only, and says so.
#[test]
fn fp8_on_an_a100_falls_back_to_the_bf16_peak_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let s = resolve(&config(
        tmp.path(),
        "meta-llama/Llama-2-7b-hf",
        "a100",
        1,
        "precision: { weights: fp8 }\n",
    ))
    .unwrap();
    assert_eq!(s.precision.peak_tflops, 312.0);
    let f = s.fallbacks().join(" ");
    assert!(
        f.contains("precision.compute fp8") && f.contains("312"),
        "{f}"
    );
    // The resolved config shows the defaults the section left out.
    let y = s.resolved_yaml().unwrap();
    assert!(
        y.contains("compute: fp8") && y.contains("kv_cache: bf16"),
        "{y}"
    );
}

/// A config without a precision section and one that spells out the catalog's bf16 give the same
/// run, to the byte of its summary's figures.
#[test]
fn spelling_out_bf16_changes_nothing() {
    let plain = simulate(&quickstart(), &["workload.requests=40"]);
    let spelt = simulate(
        &quickstart(),
        &[
            "workload.requests=40",
            "precision={weights: bf16, compute: bf16, kv_cache: bf16}",
        ],
    );
    assert_eq!(plain.summary.makespan_s, spelt.summary.makespan_s);
    assert_eq!(plain.summary.energy.energy_j, spelt.summary.energy.energy_j);
    assert_eq!(
        plain.summary.kv_blocks_per_replica,
        spelt.summary.kv_blocks_per_replica
    );
    assert_eq!(plain.predictor.sources, spelt.predictor.sources);
}

/// Every catalogued per-precision peak has a source and is at least the bf16 peak; Hopper, Ada and
/// Blackwell have fp8, Ampere has int8 but no fp8, and only Blackwell has fp4.
#[test]
fn the_device_catalog_gives_sourced_peaks_per_precision() {
    let c = simwatt::catalog::Catalog::builtin().unwrap();
    for name in c.device_names() {
        let (_, d) = c.device(name).unwrap();
        if let Some(p) = &d.peak_tflops_by_precision {
            assert!(p.source.as_deref().is_some_and(|s| !s.is_empty()), "{name}");
            for v in [p.fp8, p.int8, p.fp4].into_iter().flatten() {
                assert!(
                    v >= d.peak_tflops,
                    "{name}: {v} below bf16 {}",
                    d.peak_tflops
                );
            }
        }
    }
    let peaks = |n: &str| {
        let p = c.device(n).unwrap().1.peak_tflops_by_precision.clone();
        p.map(|p| (p.fp8.is_some(), p.int8.is_some(), p.fp4.is_some()))
    };
    for n in ["h100", "h200", "rtx4090", "l4", "l40s"] {
        assert_eq!(peaks(n), Some((true, true, false)), "{n}");
    }
    for n in ["a100", "a100-40gb", "rtx3060", "a40"] {
        assert_eq!(peaks(n), Some((false, true, false)), "{n}");
    }
    assert_eq!(peaks("b200"), Some((true, true, true)));
    assert_eq!(peaks("i5-13600k"), None);
}
