//! The built-in model and device catalogs: every entry valid, every multi-GPU device with an
//! interconnect, tensor-parallel collectives priced at the device's link, and every model servable.

use crate::common::{quickstart, simulate, write};
use simwatt::catalog::{self, Catalog};
use simwatt::precision::Precision;
use simwatt::predictor::roofline::{Roofline, RooflineParams, COMM_LATENCY_US};
use simwatt::predictor::{BatchShape, CostModel};

fn params() -> RooflineParams {
    RooflineParams {
        compute_efficiency: 0.6,
        memory_efficiency: 0.8,
        layer_overhead_us: 0.0,
        iteration_overhead_ms: 0.0,
    }
}

#[test]
fn every_builtin_entry_validates() {
    catalog::validate(&Catalog::builtin().unwrap()).unwrap();
}

#[test]
fn a_nonpositive_interconnect_is_refused_by_entry_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let text = include_str!("../../profiles/devices.yaml").replacen(
        "interconnect_gb_s: 450.0",
        "interconnect_gb_s: -450.0",
        1,
    );
    let devices = write(tmp.path(), "devices.yaml", &text);
    // Refused as the catalog is loaded.
    let err = Catalog::load(None, Some(devices.as_path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("devices.h100.interconnect_gb_s"), "{err}");
    assert!(err.contains("-450"), "{err}");
    assert!(err.contains("devices.yaml"), "{err}");
}

#[test]
fn every_gpu_has_an_interconnect_bandwidth_and_latency() {
    let c = Catalog::builtin().unwrap();
    let mut gpus = 0;
    for name in c.device_names() {
        let (_, d) = c.device(name).unwrap();
        if d.kind != "gpu" {
            continue;
        }
        gpus += 1;
        assert!(
            d.interconnect_gb_s.is_some(),
            "{name}: no interconnect_gb_s"
        );
        assert!(
            d.interconnect_latency_us.is_some(),
            "{name}: no interconnect_latency_us"
        );
        let notes = d.notes.as_deref().unwrap_or("");
        assert!(
            notes.contains("interconnect"),
            "{name}: the notes do not say what the interconnect figure assumes"
        );
    }
    assert!(gpus >= 12, "{gpus} GPUs");
}

#[test]
fn nvidia_smi_names_resolve() {
    let c = Catalog::builtin().unwrap();
    for (smi, key) in [
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("AMD Instinct MI300X", "mi300x"),
    ] {
        assert_eq!(c.device(smi).map(|(k, _)| k), Some(key), "{smi}");
    }
}

/// A decode stage of Llama-3.1-70B at TP 4 on HGX H100: each of its 160 all-reduces (two per layer)
/// moves 64 sequences x 8192 x 2 bytes = 1 MiB over NVLink 4 (450 GB/s per direction), in 6 ring
/// steps of 0.6 us each, plus the fixed 10 us: 6/4 x 1048576 / 450e9 + 6 x 0.6e-6 + 10e-6 = 17.095 us.
#[test]
fn llama_3_1_70b_tp4_on_h100_prices_its_all_reduce_over_nvlink() {
    let c = Catalog::builtin().unwrap();
    let (_, m) = c.model("meta-llama/Llama-3.1-70B-Instruct").unwrap();
    let (name, d) = c.device("h100").unwrap();
    let nvlink = Roofline::new(m, name, d, &Precision::from_catalog(2, d), 4, 1, params());
    let bytes = 64.0 * 8192.0 * 2.0;
    let hand = 1.5 * bytes / 450e9 + 6.0 * 0.6e-6 + COMM_LATENCY_US * 1e-6;
    assert!((hand - 17.095e-6).abs() < 1e-9, "{hand}");
    assert!((nvlink.all_reduce_s(bytes) - hand).abs() < 1e-12);

    // The whole stage: against the same device with a free link, the difference is the 160
    // all-reduces' link and hop time, 160 x (3.4953 + 3.6) us = 1135.2 us.
    let mut free = d.clone();
    free.interconnect_gb_s = Some(1e12);
    free.interconnect_latency_us = None;
    let free = Roofline::new(
        m,
        name,
        &free,
        &Precision::from_catalog(2, &free),
        4,
        1,
        params(),
    );
    let mut s = BatchShape::default();
    for _ in 0..64 {
        s.add_decode(1000);
    }
    let extra_ns = nvlink.stage_cost(&s, 0).time_ns - free.stage_cost(&s, 0).time_ns;
    let want_ns = 160.0 * (1.5 * bytes / 450e9 + 6.0 * 0.6e-6) * 1e9;
    assert!(
        (extra_ns as f64 - want_ns).abs() < 2.0,
        "{extra_ns} ns vs {want_ns} ns"
    );
    // Over PCIe 4.0 (the default when a device gives no interconnect) the same all-reduce costs
    // 1.5 x 1 MiB / 32 GB/s + 10 us = 59.2 us, 3.5 times the NVLink price.
    let mut pcie = d.clone();
    pcie.interconnect_gb_s = None;
    pcie.interconnect_latency_us = None;
    let pcie = Roofline::new(
        m,
        name,
        &pcie,
        &Precision::from_catalog(2, &pcie),
        4,
        1,
        params(),
    );
    assert!(pcie.all_reduce_s(bytes) > 3.4 * nvlink.all_reduce_s(bytes));
}

#[test]
fn qwen3_14b_on_h100_loads_and_serves() {
    let o = simulate(
        &quickstart(),
        &[
            "model=Qwen/Qwen3-14B",
            "hardware.gpu=h100",
            "workload.requests=20",
        ],
    );
    assert_eq!(o.predictor.kind, "roofline");
    assert_eq!(o.summary.requests_completed, 20);
}

#[test]
fn every_new_model_serves_a_few_requests_on_a_new_device() {
    for (model, gpu, tp) in [
        ("Qwen/Qwen3-32B", "h200", 1),
        ("google/gemma-3-12b-it", "l40s", 1),
        ("google/gemma-3-27b-it", "b200", 1),
        ("meta-llama/Llama-3.1-70B", "h100", 4),
        ("meta-llama/Llama-3.3-70B-Instruct", "mi300x", 1),
        ("meta-llama/Llama-3.2-1B-Instruct", "l4", 1),
        ("meta-llama/Llama-3.2-3B", "h100-pcie", 2),
        ("mistralai/Mistral-7B-Instruct-v0.1", "h100-nvl", 2),
    ] {
        let o = simulate(
            &quickstart(),
            &[
                &format!("model={model}"),
                &format!("hardware.gpu={gpu}"),
                &format!("hardware.tensor_parallel={tp}"),
                "workload.requests=5",
            ],
        );
        assert_eq!(o.summary.requests_completed, 5, "{model} on {gpu} TP {tp}");
    }
}

/// Regression: a device name as nvidia-smi prints it resolved only when it was listed verbatim as an
/// alias; other spellings of the same name (no vendor, spaces for dashes, another case) did not.
/// Names are now matched after normalising both sides, never by prefix, so a memory size or form
/// factor the catalog does not have is an error listing the known devices, not the nearest device.
#[test]
fn nvidia_smi_device_names_resolve_to_the_catalog_device() {
    let c = Catalog::builtin().unwrap();
    for (smi, key) in [
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("nvidia a100 sxm4 80gb", "a100"),
        ("A100_SXM4_80GB", "a100"),
        ("NVIDIA A100-SXM-80GB", "a100"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb"),
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H100-SXM5-80GB", "h100"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA A40", "a40"),
        ("NVIDIA GeForce RTX 4090", "rtx4090"),
    ] {
        assert_eq!(c.device(smi).map(|(k, _)| k), Some(key), "{smi}");
    }
    // Other memory sizes and form factors are other devices.
    for other in [
        "NVIDIA A100 80GB PCIe",
        "NVIDIA A100-PCIE-40GB",
        "NVIDIA H200 NVL",
        "NVIDIA A100",
    ] {
        assert!(c.device(other).is_none(), "{other} resolved");
    }
    let o = simulate_err(&["hardware.gpu=NVIDIA A100 80GB PCIe"]);
    for needle in [
        "hardware.gpu",
        "NVIDIA A100 80GB PCIe",
        "known devices",
        "a100-40gb",
        "h100",
    ] {
        assert!(o.contains(needle), "{needle}: {o}");
    }
}

/// No two catalog devices share a name once names are normalised, so a lookup cannot depend on the
/// catalog's order.
#[test]
fn normalised_device_names_are_unambiguous() {
    let c = Catalog::builtin().unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for key in c.device_names() {
        let (_, d) = c.device(key).unwrap();
        for n in std::iter::once(key).chain(d.aliases.iter().map(String::as_str)) {
            let norm = catalog::normalise_device_name(n);
            if let Some(prev) = seen.insert(norm.clone(), key) {
                assert_eq!(prev, key, "`{n}` ({norm}) names both {prev} and {key}");
            }
        }
    }
    assert!(seen.len() > 20, "{} names", seen.len());
}

/// The error of a simulate run with `sets` applied to the quickstart config.
fn simulate_err(sets: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![
        "simulate".into(),
        "--config".into(),
        quickstart().to_str().unwrap().to_string(),
        "--out".into(),
        tmp.path().join("out").to_str().unwrap().to_string(),
        "-q".into(),
    ];
    for s in sets {
        args.push("--set".into());
        args.push(s.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = crate::common::simwatt(&args);
    crate::common::assert_clean_failure(&o, &[]);
    crate::common::stderr(&o)
}

/// Gemma 3's entries carry the architecture its config.json states: five of every six layers attend
/// through a 1,024-token window (sliding_window_pattern 6) and the embedding is tied to the output head.
/// Text weights by hand: per layer q and o (hidden x 4096 each), k and v (hidden x 2048 each) and a
/// GeGLU MLP (3 x hidden x intermediate), plus one vocab x hidden matrix: 11.77 B (12B) and 27.01 B
/// (27B), the published 12.2 B and 27.4 B less the ~0.4 B vision tower the entries leave out.
#[test]
fn gemma_3_entries_carry_their_sliding_windows_and_tied_embeddings() {
    let c = Catalog::builtin().unwrap();
    for (name, layers, sliding, params) in [
        ("google/gemma-3-12b-it", 48, 40, 11_765_268_480u64),
        ("google/gemma-3-27b-it", 62, 52, 27_007_991_808),
    ] {
        let (_, m) = c.model(name).unwrap();
        let w = m.sliding_window.expect(name);
        assert_eq!((w.window, w.pattern), (1024, 6), "{name}");
        assert_eq!(m.num_layers, layers, "{name}");
        assert_eq!(w.sliding_in(0, m.num_layers), sliding, "{name}");
        assert!(
            !w.is_sliding(5) && w.is_sliding(0) && w.is_sliding(4),
            "{name}"
        );
        assert!(m.tie_word_embeddings, "{name}");
        assert_eq!(m.total_params(), params, "{name}");
    }
}
