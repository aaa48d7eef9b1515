//! Partial GPU offload (`hardware.gpu_layers` on `hardware.host_cpu`, llama.cpp's `-ngl`; docs/edge.md,
//! "Partial GPU offload (-ngl)"): where the weights and the KV cache lie, hand-checked; 0 layers is the
//! CPU run and every layer the GPU run, less the documented link crossings; decode faster with every
//! layer moved; batches of 32 tokens or more copying the CPU layers' weights; bad input named.

use crate::common::*;
use simwatt::catalog::ModelSpec;
use simwatt::config::{self, Scenario};
use simwatt::drivers::simulate::build_predictor;
use simwatt::predictor::BatchShape;

/// The shipped example: LLaMA 7B (Llama-2-7b-hf) in Q8_0 on an RTX 3060 and an i9-13900K host.
fn config() -> std::path::PathBuf {
    shipped_config("experiments/llama-cpp-offload-3060.yaml")
}

fn resolve(path: &std::path::Path, overrides: &[&str]) -> simwatt::error::Result<Scenario> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let raw = config::load(path, &overrides)?;
    Scenario::resolve(&caches().catalogs, path, raw)
}

/// The error text of a config the resolution must refuse.
fn refused(overrides: &[&str]) -> String {
    match resolve(&config(), overrides) {
        Ok(_) => panic!("{overrides:?} was accepted"),
        Err(e) => format!("{e:#}"),
    }
}

fn llama_7b() -> ModelSpec {
    let c = simwatt::catalog::Catalog::builtin().unwrap();
    let (_, m) = c
        .model("meta-llama/Llama-2-7b-hf")
        .expect("Llama-2-7b-hf in the model catalog");
    m.clone()
}

/// Linear weights of one LLaMA 7B layer: QKV and output projections (4 x 4096^2) and the gated MLP
/// (3 x 4096 x 11008).
const LAYER_PARAMS: f64 = 4.0 * 4096.0 * 4096.0 + 3.0 * 4096.0 * 11008.0;
/// Input embedding (or output head) of LLaMA 7B: 32000 x 4096.
const EMBED_PARAMS: f64 = 32000.0 * 4096.0;

/// At f16 (13.5 GB) LLaMA 7B does not fit the RTX 3060's 12 GB; with `-ngl 20` it runs, the weights
/// and the KV cache split as llama.cpp splits them (the output layer and the last 19 repeating layers
/// on the GPU), each figure checked by hand.
#[test]
fn f16_llama_7b_runs_on_a_12_gb_card_at_ngl_20() {
    let m = llama_7b();
    assert_eq!(
        (
            m.num_layers,
            m.hidden_size,
            m.intermediate_size,
            m.num_kv_heads,
            m.head_dim,
            m.vocab_size
        ),
        (32, 4096, 11008, 32, 128, 32000)
    );
    assert_eq!(m.linear_params_per_layer() as f64, LAYER_PARAMS);
    // Without the knob: refused, the model does not fit.
    let whole = refused(&[
        "precision={weights: bf16}",
        "hardware.host_cpu=null",
        "hardware.gpu_layers=null",
        "hardware.threads=null",
    ]);
    assert!(whole.contains("does not fit"), "{whole}");
    let s = resolve(
        &config(),
        &["precision={weights: bf16}", "hardware.gpu_layers=20"],
    )
    .expect("20 of 32 f16 layers fit the card");
    let o = s.offload.as_ref().expect("offload resolved");
    assert_eq!((o.layers_on_gpu, o.head_on_gpu), (19, true));
    // The GPU: 19 layers at 2 bytes per weight and the output head (llama.cpp keeps the input
    // embedding in host memory).
    let gpu_weights = 19.0 * LAYER_PARAMS * 2.0 + EMBED_PARAMS * 2.0;
    assert_eq!(s.memory.weight_bytes_per_gpu, gpu_weights);
    assert!((gpu_weights / 1e9 - 7.952).abs() < 0.001, "{gpu_weights}");
    // The host: 13 layers and the input embedding.
    let host_weights = 13.0 * LAYER_PARAMS * 2.0 + EMBED_PARAMS * 2.0;
    assert_eq!(o.host_weight_bytes, host_weights);
    assert_eq!(o.cpu_layer_weight_bytes, 13.0 * LAYER_PARAMS * 2.0);
    // KV cache on the GPU: 2 (K and V) x 19 layers x 32 heads x 128 x 2 bytes per token.
    assert_eq!(s.memory.kv_bytes_per_token_per_gpu, 2 * 19 * 32 * 128 * 2);
    // Blocks of 16 tokens: the tighter of the GPU (12 GB x 0.9, less weights and activations) and
    // the host (64 GB less its weights, 13 layers' KV cache per token).
    let usable = 12e9 * 0.9;
    assert_eq!(s.memory.usable_bytes_per_gpu, usable);
    let gpu_free = usable - gpu_weights - s.memory.activation_bytes_per_gpu;
    let gpu_blocks = (gpu_free / (2.0 * 19.0 * 32.0 * 128.0 * 2.0 * 16.0)).floor() as u64;
    let host_blocks =
        ((64e9 - host_weights) / (2.0 * 13.0 * 32.0 * 128.0 * 2.0 * 16.0)).floor() as u64;
    assert!(gpu_blocks < host_blocks);
    assert_eq!(s.memory.num_blocks, gpu_blocks);
    // And it runs.
    let out = simulate(
        &config(),
        &["precision={weights: bf16}", "hardware.gpu_layers=20"],
    );
    assert_eq!(out.summary.requests_completed, 4);
}

/// More layers than the card holds: refused naming the field, the value and how many fit.
#[test]
fn too_many_layers_for_the_card_name_the_field_and_the_most_that_fit() {
    let s = resolve(
        &config(),
        &["precision={weights: bf16}", "hardware.gpu_layers=20"],
    )
    .unwrap();
    let act = s.memory.activation_bytes_per_gpu;
    // The output head, then layers of 2 x LAYER_PARAMS bytes, beside the activations in 10.8 GB.
    let most = ((12e9 * 0.9 - act - 2.0 * EMBED_PARAMS) / (2.0 * LAYER_PARAMS)).floor() as u32 + 1;
    assert!(most < 32, "{most}");
    let e = refused(&[
        "precision={weights: bf16}",
        &format!("hardware.gpu_layers={}", most + 1),
    ]);
    for needle in [
        "llama-cpp-offload-3060.yaml",
        "hardware.gpu_layers",
        &(most + 1).to_string(),
        &format!("at most {most} fit"),
    ] {
        assert!(e.contains(needle), "expected `{needle}` in: {e}");
    }
    assert!(resolve(
        &config(),
        &[
            "precision={weights: bf16}",
            &format!("hardware.gpu_layers={most}")
        ]
    )
    .is_ok());
}

/// gpu_layers = 0 decodes as the host CPU alone, to the nanosecond (the calibrated i9-13900K run,
/// experiments/llama-cpp-13900k.yaml, at the same weights and threads): no layer, and no crossing,
/// on the GPU.
#[test]
fn zero_gpu_layers_decodes_as_the_cpu_run() {
    let cpu = root().join("experiments/llama-cpp-13900k.yaml");
    assert!(cpu.exists());
    let alone = simulate(
        &cpu,
        &["precision={weights: q8_0, dequant_flops_per_weight: 0}"],
    );
    let offload = simulate(&config(), &["hardware.gpu_layers=0"]);
    // The same to the nanosecond: the layers and the head are rounded to whole nanoseconds apart.
    let diff = summary_f64(&alone, "tpot_mean_s") - summary_f64(&offload, "tpot_mean_s");
    assert!(diff.abs() < 2e-9, "{diff} s");
    assert!(summary_f64(&alone, "tpot_mean_s") > 0.0);
}

/// gpu_layers = 33 (every layer and the output layer) decodes as the GPU alone plus the two
/// crossings of the host link llama.cpp makes per token: the embedded token in (4096 x 4 bytes) and
/// the logits out (32000 x 4 bytes), each at 31.5 GB/s plus the 1 us hop and the roofline's fixed
/// 10 us.
#[test]
fn every_layer_on_the_gpu_decodes_as_the_gpu_run_plus_two_crossings() {
    let gpu = simulate(
        &config(),
        &[
            "hardware.host_cpu=null",
            "hardware.gpu_layers=null",
            "hardware.threads=null",
        ],
    );
    let offload = simulate(&config(), &["hardware.gpu_layers=33"]);
    let crossing = |bytes: f64| bytes / 31.5e9 + 1e-6 + 10e-6;
    let expected = crossing(4096.0 * 4.0) + crossing(32000.0 * 4.0);
    let diff = summary_f64(&offload, "tpot_mean_s") - summary_f64(&gpu, "tpot_mean_s");
    assert!(
        (diff - expected).abs() < 3e-9,
        "{diff} s against {expected} s"
    );
}

/// Decode (one token, below the 32-row offload threshold) gets faster with every layer moved to
/// the GPU, which reads its weights faster than the host CPU's threads do, and is fastest at full
/// offload.
#[test]
fn decode_is_faster_with_every_layer_on_the_gpu() {
    let s = resolve(&config(), &[]).unwrap();
    let mut last = f64::INFINITY;
    for n in 0..=33 {
        let s = resolve(&config(), &[&format!("hardware.gpu_layers={n}")]).unwrap();
        let p = build_predictor(&s, &caches().tables).unwrap();
        let mut shape = BatchShape::default();
        shape.add_decode(256);
        let t = p.stage_cost(&shape, 0).time_ns as f64;
        assert!(t < last, "gpu_layers {n}: {t} ns, not below {last} ns");
        last = t;
    }
    assert!(s.offload.is_some());
}

/// Prompt processing: a batch of 32 tokens or more runs every layer on the GPU and copies the CPU
/// layers' weights over the link (ggml's op offload, `min_batch_size = 32` in ggml-cuda.cu); 31 tokens
/// run the CPU layers on the CPU.
#[test]
fn batches_of_32_tokens_copy_the_cpu_layers_weights_to_the_gpu() {
    let cost = |n: u32, tokens: u32| {
        let s = resolve(&config(), &[&format!("hardware.gpu_layers={n}")]).unwrap();
        let p = build_predictor(&s, &caches().tables).unwrap();
        let mut shape = BatchShape::default();
        shape.add_prefill(tokens, 0, true);
        p.stage_cost(&shape, 0).time_ns as f64 * 1e-9
    };
    let crossing = |bytes: f64| bytes / 31.5e9 + 1e-6 + 10e-6;
    // Q8_0: 34 bytes per 32 weights.
    let q8 = 34.0 / 32.0;
    for tokens in [32, 512] {
        // -ngl 1 (only the output layer on the GPU) against 33 (everything): the same GPU work; the
        // weights of all 32 layers copied, instead of the prompt's hidden state sent in.
        let copied = crossing(32.0 * LAYER_PARAMS * q8) - crossing(tokens as f64 * 4096.0 * 4.0);
        let diff = cost(1, tokens) - cost(33, tokens);
        assert!(
            (diff - copied).abs() < 3e-9,
            "{tokens} tokens: {diff} s against {copied} s"
        );
        // -ngl 17, 16 repeating layers on the GPU: half of them.
        let copied = crossing(16.0 * LAYER_PARAMS * q8) - crossing(tokens as f64 * 4096.0 * 4.0);
        let diff = cost(17, tokens) - cost(33, tokens);
        assert!(
            (diff - copied).abs() < 3e-9,
            "{tokens} tokens: {diff} s against {copied} s"
        );
    }
    // 31 tokens at 0 layers: the host CPU's prefill, as the CPU alone prices it.
    let cpu = root().join("experiments/llama-cpp-13900k.yaml");
    let s = resolve(
        &cpu,
        &["precision={weights: q8_0, dequant_flops_per_weight: 0}"],
    )
    .unwrap();
    let p = build_predictor(&s, &caches().tables).unwrap();
    let mut shape = BatchShape::default();
    shape.add_prefill(31, 0, true);
    let alone = p.stage_cost(&shape, 0).time_ns as f64 * 1e-9;
    let offloaded = cost(0, 31);
    assert!(
        (alone - offloaded).abs() < 2e-9,
        "{alone} against {offloaded}"
    );
    // A 512-token prompt at 0 layers takes at least the copy: 6.9 GB at 31.5 GB/s, 0.22 s.
    assert!(cost(0, 512) > crossing(32.0 * LAYER_PARAMS * q8));
}

/// Every new field refused with the file, the field and the value, never a panic.
#[test]
fn bad_offload_input_is_named() {
    let cases: [(&[&str], &[&str]); 10] = [
        (
            &["hardware.gpu_layers=null"],
            &[
                "hardware.host_cpu",
                "i9-13900k",
                "needs hardware.gpu_layers",
            ],
        ),
        (
            &["hardware.host_cpu=null"],
            &["hardware.gpu_layers", "20", "needs hardware.host_cpu"],
        ),
        (
            &["hardware.gpu_layers=34"],
            &["hardware.gpu_layers", "34", "from 0 to 33"],
        ),
        (
            &["hardware.host_cpu=rtx4090"],
            &["hardware.host_cpu", "rtx4090", "not a CPU"],
        ),
        (
            &["hardware.host_cpu=no-such-cpu"],
            &["hardware.host_cpu", "no-such-cpu", "i9-13900k"],
        ),
        (
            &["hardware.gpu=i5-13600k"],
            &["hardware.gpu_layers", "i5-13600k", "needs a GPU"],
        ),
        (
            &["hardware.gpu=a100"],
            &["hardware.gpu_layers", "host_link_gb_s"],
        ),
        (
            &["hardware.tensor_parallel=2"],
            &["hardware.tensor_parallel", "2", "must be 1"],
        ),
        (
            &["predictor={type: profiles}"],
            &["predictor.type", "profiles", "roofline"],
        ),
        (
            &["hardware.threads=64"],
            &["hardware.threads", "64", "i9-13900k"],
        ),
    ];
    for (overrides, needles) in cases {
        let e = refused(overrides);
        assert!(e.contains("llama-cpp-offload-3060.yaml"), "{e}");
        for n in needles {
            assert!(e.contains(n), "{overrides:?}: expected `{n}` in: {e}");
        }
    }
    // From the command line: a clean failure.
    let o = simwatt(&[
        "simulate",
        "-c",
        config().to_str().unwrap(),
        "--set",
        "hardware.gpu_layers=99",
        "-q",
        "--no-plots",
        "-o",
        std::env::temp_dir()
            .join("simwatt-offload-refused")
            .to_str()
            .unwrap(),
    ]);
    assert_clean_failure(&o, &["hardware.gpu_layers", "99", "from 0 to 33"]);
}

/// The GPU draws its loaded-idle power while it waits on the host CPU's layers and the link (the
/// stage cost's `idle_ns`), and its busy power, as for any stage, over the rest.
#[test]
fn the_gpu_draws_loaded_idle_while_it_waits_on_the_cpu() {
    use simwatt::power::{PowerProfile, StageEnergy};
    use simwatt::sim::{StageCost, StagePower};
    let profile = PowerProfile::load(&root().join("profiles/power/rtx3060.yaml")).unwrap();
    let device = caches()
        .catalogs
        .builtin()
        .device("rtx3060")
        .expect("rtx3060 in the device catalog")
        .1
        .clone();
    let idle_w = profile.between_batches_w();
    assert!(idle_w > 0.0 && idle_w < profile.p0_w);
    let e = StageEnergy::new(profile, device.clone(), 1, 1.0);
    // A stage the GPU only waits through: loaded idle all along.
    let wait = StageCost {
        time_ns: 100_000_000,
        idle_ns: 100_000_000,
        ..Default::default()
    };
    let p = e.price(&wait);
    assert_eq!(p.gpu_ns, 100_000_000);
    assert!((p.energy_j - idle_w * 0.1).abs() < 1e-9, "{}", p.energy_j);
    // 40 ms of work reading at the card's full bandwidth, then 60 ms waiting: the work priced alone,
    // and the wait at loaded idle.
    let work = StageCost {
        time_ns: 40_000_000,
        bytes: 0.04 * device.memory_bandwidth_bytes_s(),
        ..Default::default()
    };
    let alone = e.price(&work);
    let p = e.price(&StageCost {
        time_ns: 100_000_000,
        idle_ns: 60_000_000,
        ..work
    });
    assert_eq!(p.gpu_ns, alone.gpu_ns + 60_000_000);
    assert!(
        (p.energy_j - (alone.energy_j + idle_w * 0.06)).abs() < 1e-9,
        "{} against {}",
        p.energy_j,
        alone.energy_j + idle_w * 0.06
    );
    assert!(p.power_w < alone.power_w && p.power_w > idle_w);
}

/// A power profile of the i9-13900K with round numbers, written into `dir`: loaded idle 10 W, busy
/// floor 20 W, 100 W more at full compute and 50 W more at full memory bandwidth, cap 1000 W.
fn round_cpu_profile(dir: &std::path::Path, k_compute_w: f64, k_memory_w: f64) -> String {
    let p = write(
        dir,
        "cpu.yaml",
        &format!(
            "device: i9-13900k\nidle_w: 10\np0_w: 20\nk_compute_w: {k_compute_w}\nk_memory_w: {k_memory_w}\ncap_w: 1000\n\
             provenance: {{method: published, data: [round numbers for a test]}}\n"
        ),
    );
    format!("energy.host_cpu_power_profile={}", p.display())
}

/// The host CPU's energy of a stage above its loaded idle, by hand: its layers' time, and its
/// utilisations against the i9-13900K's catalog peaks (not the 8 threads' peaks), priced by the
/// profile's P_0 + k_c u_c + k_m u_m less its idle; the GPU's price of the stage is unchanged by it.
#[test]
fn the_host_cpu_above_idle_is_its_profile_over_its_share_of_the_stage() {
    use simwatt::power::{HostCpuPower, PowerProfile, StageEnergy};
    use simwatt::sim::{StageCost, StagePower};
    let tmp = tempfile::tempdir().unwrap();
    round_cpu_profile(tmp.path(), 100.0, 50.0);
    let cpu_profile = PowerProfile::load(&tmp.path().join("cpu.yaml")).unwrap();
    let catalog = caches().catalogs.builtin();
    let cpu = catalog.device("i9-13900k").unwrap().1.clone();
    let gpu = catalog.device("rtx3060").unwrap().1.clone();
    let gpu_profile = PowerProfile::load(&root().join("profiles/power/rtx3060.yaml")).unwrap();
    let plain = StageEnergy::new(gpu_profile.clone(), gpu.clone(), 1, 1.0);
    let with_cpu = StageEnergy::new(gpu_profile, gpu, 1, 1.0).with_host_cpu(Some(HostCpuPower {
        profile: cpu_profile,
        device: cpu.clone(),
    }));
    // 80 ms of CPU layers at 30% of the CPU's peak FLOP/s and 60% of its bandwidth, in a 100 ms stage.
    let c = StageCost {
        time_ns: 100_000_000,
        idle_ns: 90_000_000,
        cpu_ns: 80_000_000,
        cpu_flops: 0.3 * 0.08 * cpu.peak_flops(),
        cpu_bytes: 0.6 * 0.08 * cpu.memory_bandwidth_bytes_s(),
        flops: 1e9,
        bytes: 1e8,
        ..Default::default()
    };
    let p = with_cpu.price(&c);
    let expected: f64 = (20.0 + 100.0 * 0.3 + 50.0 * 0.6 - 10.0) * 0.08;
    assert!((expected - 5.6).abs() < 1e-12);
    assert!((p.host_cpu_j - expected).abs() < 1e-9, "{}", p.host_cpu_j);
    // The GPU's side is as without the CPU's profile.
    let q = plain.price(&c);
    assert_eq!(
        (p.energy_j, p.gpu_ns, p.power_w),
        (q.energy_j, q.gpu_ns, q.power_w)
    );
    assert_eq!(q.host_cpu_j, 0.0);
    // A stage without CPU work costs the CPU nothing above idle.
    let gpu_only = with_cpu.price(&StageCost {
        time_ns: 100_000_000,
        flops: 1e9,
        bytes: 1e8,
        ..Default::default()
    });
    assert_eq!(gpu_only.host_cpu_j, 0.0);
}

/// `host_cpu_energy_j` of a run, by hand: at 0 layers on the GPU every stage of the example (one-token
/// prompts and decode steps, all below the 32-row threshold) runs on the host CPU alone, so with a
/// profile whose busy power is a flat 20 W (no utilisation terms) and whose idle is 10 W the CPU's
/// energy is 10 W over the span plus 10 W over the stages' time.
#[test]
fn host_cpu_energy_is_its_idle_over_the_span_and_its_stages_above_idle() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = round_cpu_profile(tmp.path(), 0.0, 0.0);
    let o = simulate(&config(), &["hardware.gpu_layers=0", &profile]);
    let b = &o.result.batches;
    assert!(b.len() >= 4 * 128 / 2, "{} rows", b.len());
    // The stages' CPU time: each row's time less its host time (the GPU waits through all of it).
    let stages_s: f64 = (0..b.len())
        .map(|i| (b.end_ns[i] - b.start_ns[i] - b.host_ns[i]) as f64 / 1e9)
        .sum();
    assert!(stages_s > 1.0, "{stages_s} s");
    let span_s = o.result.end_ns as f64 / 1e9;
    let expected = 10.0 * span_s + (20.0 - 10.0) * stages_s;
    let got = summary_f64(&o, "host_cpu_energy_j");
    assert!(
        (got - expected).abs() < 1e-9 * expected,
        "{got} J against {expected} J"
    );
    // Not in the GPU's energy, which the CPU's profile does not change; the total per token is both.
    let real = simulate(&config(), &["hardware.gpu_layers=0"]);
    assert_eq!(summary_f64(&o, "energy_j"), summary_f64(&real, "energy_j"));
    let tokens = summary_f64(&o, "output_tokens");
    assert_eq!(tokens, 4.0 * 128.0);
    let total = summary_f64(&o, "gpu_and_host_cpu_j_per_output_token");
    assert!(((total - (summary_f64(&o, "energy_j") + got) / tokens) / total).abs() < 1e-12);
    // The shipped i9-13900K profile draws more: above its 25.3 W idle while it computes.
    assert!(summary_f64(&real, "host_cpu_energy_j") > 25.0 * span_s);
}

/// Every layer and the output layer on the GPU: the host CPU runs nothing, and its energy is its
/// loaded idle over the span alone; without offload there is no host CPU energy at all (null), and
/// summary.json says nothing of it.
#[test]
fn with_every_layer_on_the_gpu_the_host_cpu_only_idles_and_without_offload_it_is_null() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = round_cpu_profile(tmp.path(), 100.0, 50.0);
    let o = simulate(&config(), &["hardware.gpu_layers=33", &profile]);
    let span_s = o.result.end_ns as f64 / 1e9;
    assert!(span_s > 100.0, "{span_s}");
    let got = summary_f64(&o, "host_cpu_energy_j");
    assert!(
        (got - 10.0 * span_s).abs() < 1e-9 * got,
        "{got} J against {} J",
        10.0 * span_s
    );
    let b = &o.result.batches;
    assert!((0..b.len()).all(|i| b.host_cpu_j[i] == 0.0));
    // Without offload: null, and absent from summary.json.
    let gpu = simulate(
        &config(),
        &[
            "hardware.host_cpu=null",
            "hardware.gpu_layers=null",
            "hardware.threads=null",
        ],
    );
    assert!(gpu.summary.energy.energy_j.unwrap() > 0.0);
    assert_eq!(gpu.summary.energy.host_cpu_energy_j, None);
    assert_eq!(gpu.summary.energy.gpu_and_host_cpu_j_per_output_token, None);
    assert_eq!(gpu.summary.column("host_cpu_energy_j"), None);
    let v = serde_json::to_value(&gpu.summary).unwrap();
    assert!(v.get("host_cpu_energy_j").is_none() && v["energy"].get("host_cpu_energy_j").is_none());
}

/// The host CPU's energy counts toward the facility energy (and so carbon, cost and water), as the
/// KV links' does: facility kWh = (GPU + host + host CPU) J x PUE.
#[test]
fn host_cpu_energy_is_part_of_the_facility_energy() {
    let o = simulate(&config(), &["region=aws-us-east-1"]);
    let e = &o.summary.energy;
    let cpu = e
        .host_cpu_energy_j
        .expect("an offload run has host CPU energy");
    assert!(cpu > 0.0);
    let pue = e.regions[0].pue;
    assert!(pue >= 1.0);
    let it_j = e.energy_j.unwrap() + e.host_energy_j.unwrap() + cpu;
    let facility_kwh = e.energy_kwh_facility.unwrap();
    assert!(
        (facility_kwh - it_j / 3.6e6 * pue).abs() < 1e-12 * facility_kwh,
        "{facility_kwh} kWh against {} kWh",
        it_j / 3.6e6 * pue
    );
    // The GPU's energy alone is well short of it.
    assert!(e.energy_j.unwrap() / 3.6e6 * pue < facility_kwh * 0.9);
}

/// A host CPU with no power profile is refused (naming `hardware.host_cpu` and its name) when the
/// run prices energy; `energy.host_cpu_power_profile` without offload is refused.
#[test]
fn a_host_cpu_without_a_power_profile_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let devices = std::fs::read_to_string(root().join("profiles/devices.yaml"))
        .unwrap()
        .replace("\n  i9-13900k:\n", "\n  mycpu:\n");
    assert!(devices.contains("\n  mycpu:\n"));
    let d = write(tmp.path(), "devices.yaml", &devices);
    let e = refused(&[
        &format!("catalog={{devices: {}}}", d.display()),
        "hardware.host_cpu=mycpu",
    ]);
    for needle in [
        "llama-cpp-offload-3060.yaml",
        "hardware.host_cpu",
        "mycpu",
        "no power profile",
        "energy.host_cpu_power_profile",
    ] {
        assert!(e.contains(needle), "expected `{needle}` in: {e}");
    }
    let p = round_cpu_profile(tmp.path(), 0.0, 0.0);
    let e = refused(&[
        &p,
        "hardware.host_cpu=null",
        "hardware.gpu_layers=null",
        "hardware.threads=null",
    ]);
    for needle in [
        "energy.host_cpu_power_profile",
        "cpu.yaml",
        "needs hardware.host_cpu",
    ] {
        assert!(e.contains(needle), "expected `{needle}` in: {e}");
    }
    // With a profile of its own, the renamed CPU runs, the profile's other device named among the
    // run's fallbacks (as a GPU's profile of another device is).
    let s = resolve(
        &config(),
        &[
            &format!("catalog={{devices: {}}}", d.display()),
            "hardware.host_cpu=mycpu",
            &p,
        ],
    )
    .expect("a host CPU with a power profile resolves");
    let notes = s.fallbacks().join("\n");
    for needle in ["host CPU's power profile", "cpu.yaml", "i9-13900k", "mycpu"] {
        assert!(notes.contains(needle), "expected `{needle}` in: {notes}");
    }
    // The i9-13900K with its own shipped profile says nothing.
    assert!(resolve(&config(), &[]).unwrap().fallbacks().is_empty());
}

/// One battery runs the whole device: under partial offload its drain is the GPU's, the host's and
/// the host CPU's energy together over its usable energy.
#[test]
fn a_battery_runs_the_host_cpu_too() {
    let o = simulate(
        &config(),
        &["edge={battery: {capacity_wh: 99.0, usable_fraction: 0.9, converter_efficiency: 0.9}}"],
    );
    let e = &o.summary.energy;
    let usable_wh = 99.0 * 0.9 * 0.9;
    assert_eq!(e.battery_usable_wh, Some(usable_wh));
    let cpu = e
        .host_cpu_energy_j
        .expect("an offload run has host CPU energy");
    let device_j = e.energy_j.unwrap() + e.host_energy_j.unwrap() + cpu;
    let drain = e.battery_drain_fraction.unwrap();
    assert!(
        (drain - device_j / 3600.0 / usable_wh).abs() < 1e-12 * drain,
        "{drain} against {}",
        device_j / 3600.0 / usable_wh
    );
    // The CPU is a large share of this machine's energy: without it the drain would be far lower.
    assert!(drain > 1.2 * (device_j - cpu) / 3600.0 / usable_wh);
    let runtime = e.battery_runtime_h.unwrap();
    let mean_w = device_j / (o.result.end_ns as f64 / 1e9);
    assert!(
        (runtime - usable_wh / mean_w).abs() < 1e-9 * runtime,
        "{runtime}"
    );
}
