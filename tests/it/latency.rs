//! The profile-fitted execution-time model: accuracy on held-out rows, determinism, sources.

use crate::common::*;
use simwatt::catalog::Catalog;
use simwatt::drivers::fit_latency::{fit_one, shipped_targets};
use simwatt::predictor::profile::{fit_tables, FitSettings, ProfileSources, LINEAR_OPS};

fn profiles() -> std::path::PathBuf {
    root().join("profiles/vidur")
}

#[test]
fn every_shipped_linear_layer_fit_is_within_5_percent_on_held_out_rows() {
    let catalog = Catalog::builtin().unwrap();
    let targets = shipped_targets(&catalog, &profiles()).unwrap();
    // 8 (device, model) pairs, most at TP 1, 2, 4 and 8.
    assert!(targets.len() >= 20, "{} targets", targets.len());
    for t in &targets {
        let r = fit_one(&catalog, &caches().tables, &profiles(), t, 0, false).unwrap();
        let linear: Vec<_> = r
            .ops
            .iter()
            .filter(|o| LINEAR_OPS.contains(&o.op.as_str()))
            .collect();
        assert_eq!(linear.len(), 4, "{t:?}");
        for o in linear {
            assert!(
                o.forest_test_mape_pct <= 5.0,
                "{} {} TP{} {}: {:.2}%",
                t.gpu,
                t.model,
                t.tp,
                o.op,
                o.forest_test_mape_pct
            );
        }
        assert!(r.attention.prefill_cv_mape_pct < 20.0);
        assert!(r.attention.decode_cv_mape_pct < 20.0);
    }
}

#[test]
fn same_seed_gives_the_same_tables_byte_for_byte() {
    let catalog = Catalog::builtin().unwrap();
    let (_, d) = catalog.device("h100").unwrap();
    let (_, a100) = catalog.device("a100").unwrap();
    let src = ProfileSources::locate(
        &profiles(),
        d.profile_dir.as_deref(),
        d.network_profile.as_deref(),
        "meta-llama/Llama-2-7b-hf",
        2,
    )
    .unwrap();
    let fit = |seed| {
        let s = FitSettings {
            gpu: "h100".into(),
            model: "meta-llama/Llama-2-7b-hf".into(),
            tensor_parallel: 2,
            seed,
        };
        let t = fit_tables(&caches().tables, &src, &s, a100, false).unwrap();
        serde_json::to_string(&(
            &t.layer_ops,
            &t.cpu_overheads,
            &t.all_reduce,
            &t.send_recv,
            &t.attention,
        ))
        .unwrap()
    };
    let a = fit(3);
    assert!(a == fit(3), "refit with the same seed differs");
    assert!(a != fit(4), "another forest seed gave identical tables");
}

#[test]
fn quickstart_uses_the_fitted_model_and_names_its_sources() {
    let o = simulate(&quickstart(), &["workload.requests=20"]);
    assert_eq!(o.predictor.kind, "profiles");
    assert_eq!(o.summary.predictor, "profiles");
    let sources: std::collections::BTreeMap<_, _> = o.predictor.sources.iter().cloned().collect();
    assert!(
        sources["mlp_up_proj"].contains("random forest"),
        "{sources:?}"
    );
    assert!(sources["mlp_up_proj"].contains("a100/meta-llama/Llama-2-7b-hf/mlp.csv"));
    assert!(sources["attention_decode"].contains("calibrated"));
    assert!(
        sources["cpu_overhead"].contains("cpu_overheads/a100/cpu_overheads.csv"),
        "{sources:?}"
    );
}

#[test]
fn host_overhead_is_fitted_against_batch_size_where_profiled_and_constant_elsewhere() {
    use simwatt::predictor::BatchShape;
    let catalog = Catalog::builtin().unwrap();
    let (_, a100) = catalog.device("a100").unwrap();
    let src = ProfileSources::locate(
        &profiles(),
        a100.profile_dir.as_deref(),
        a100.network_profile.as_deref(),
        "meta-llama/Llama-2-7b-hf",
        1,
    )
    .unwrap();
    let settings = FitSettings {
        gpu: "a100".into(),
        model: "meta-llama/Llama-2-7b-hf".into(),
        tensor_parallel: 1,
        seed: 0,
    };
    let t = fit_tables(&caches().tables, &src, &settings, a100, false).unwrap();
    let names: Vec<&str> = t.cpu_overheads.iter().map(|o| o.op.as_str()).collect();
    assert_eq!(
        names,
        [
            "cpu_schedule",
            "cpu_sampler_e2e",
            "cpu_prepare_inputs_e2e",
            "cpu_process_model_outputs",
            "cpu_ray_comm_time"
        ]
    );
    // The profile's five components sum to 1.39 ms at batch 8 and 7.23 ms at batch 128 (A100,
    // Llama-2-7B, TP 1); they grow almost linearly, so cross-validation picks the quadratic.
    let total = |b: u32| t.cpu_overheads.iter().map(|o| o.eval_ms(b)).sum::<f64>();
    assert!((total(8) - 1.39).abs() < 0.1, "batch 8: {}", total(8));
    assert!((total(128) - 7.23).abs() < 0.3, "batch 128: {}", total(128));
    assert!(total(256) > total(128), "the linear tail keeps growing");
    for r in t.report.ops.iter().filter(|o| o.op.starts_with("cpu_")) {
        assert_eq!(r.feature, "batch_size");
        let chosen_cv = match r.model.as_str() {
            "quadratic" => r.quadratic_cv_mape_pct,
            _ => r.forest_cv_mape_pct,
        };
        assert!(
            chosen_cv <= r.forest_cv_mape_pct.min(r.quadratic_cv_mape_pct),
            "{r:?}"
        );
    }

    // The fitted overhead reaches the stage time: a 128-sequence decode step costs more host time
    // than an 8-sequence one, and `cpu_overheads: constant` removes the difference from the host part.
    let step = |over: &[&str], seqs: u32| {
        let o = simulate(&quickstart(), &[&["workload.requests=4"], over].concat());
        let mut shape = BatchShape::default();
        for _ in 0..seqs {
            shape.add_decode(512);
        }
        let p = simwatt::drivers::simulate::build_predictor(&o.scenario, &caches().tables).unwrap();
        let c = p.stage_cost(&shape, 0);
        (c.time_ns + c.host_ns, o.predictor.sources.clone())
    };
    let (fit8, sources) = step(&[], 8);
    let (fit128, _) = step(&[], 128);
    let (const8, const_sources) = step(&["predictor.cpu_overheads=constant"], 8);
    let (const128, _) = step(&["predictor.cpu_overheads=constant"], 128);
    let host_growth_ms = ((fit128 - fit8) as f64 - (const128 - const8) as f64) / 1e6;
    assert!(
        (host_growth_ms - (total(128) - total(8))).abs() < 1e-3,
        "host part grows by {host_growth_ms} ms"
    );
    let find = |s: &[(String, String)]| {
        s.iter()
            .find(|(k, _)| k == "cpu_overhead")
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert!(find(&sources).contains("cpu_overheads.csv"));
    assert!(find(&const_sources).contains("constant iteration_overhead_ms"));

    // No CPU-overhead profile on the H100: the constant applies and provenance says so.
    let o = simulate(&quickstart(), &["hardware.gpu=h100", "workload.requests=4"]);
    assert!(find(&o.predictor.sources).contains("constant"));
}

#[test]
fn a_pair_without_profiles_runs_on_the_roofline_and_says_so() {
    let cfg = root().join("experiments/tinyllama-rtx3060.yaml");
    let (o, md) = summary_md_of(&cfg, &[]);
    assert_eq!(o.predictor.kind, "roofline");
    assert_eq!(o.summary.requests_completed, 200);
    assert!(o.predictor.sources.iter().all(|(_, s)| s == "roofline"));
    assert!(md.contains("roofline"), "{md}");
}

#[test]
fn requiring_profiles_where_none_exist_is_an_error() {
    let raw = simwatt::config::load(
        &root().join("experiments/tinyllama-rtx3060.yaml"),
        &["predictor={type: profiles}".to_string()],
    )
    .unwrap();
    let s =
        simwatt::config::Scenario::resolve(&caches().catalogs, std::path::Path::new("t.yaml"), raw)
            .unwrap();
    let e = simwatt::drivers::simulate::simulate(s, &caches().tables, &|_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("predictor.type") && e.contains("no profile"),
        "{e}"
    );
}

#[test]
fn fitted_ttft_grows_with_the_prompt() {
    // Prefill time grows with the prompt under the fitted model, and decode with the context.
    let o = simulate(
        &quickstart(),
        &[
            "workload.requests=64",
            "workload.arrival={type: static, rate: 0.2}",
        ],
    );
    let mut rows: Vec<_> = o
        .rows
        .iter()
        .map(|r| (r.prompt_tokens, r.ttft_s.unwrap()))
        .collect();
    rows.sort_by_key(|r| r.0);
    let n = rows.len();
    let short: f64 = rows[..n / 4].iter().map(|r| r.1).sum::<f64>() / (n / 4) as f64;
    let long: f64 = rows[n - n / 4..].iter().map(|r| r.1).sum::<f64>() / (n / 4) as f64;
    assert!(
        long > 1.5 * short,
        "TTFT short prompts {short}, long prompts {long}"
    );
}

#[test]
fn a_malformed_profile_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("compute/a100/meta-llama/Llama-2-7b-hf");
    std::fs::create_dir_all(&dir).unwrap();
    let src =
        std::fs::read_to_string(profiles().join("compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv"))
            .unwrap();
    // Drop the column of one operation's median.
    let mut lines = src.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let drop = header
        .iter()
        .position(|h| *h == "time_stats.mlp_up_proj.median")
        .unwrap();
    let keep = |l: &str| {
        l.split(',')
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, c)| c)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = keep(&header.join(","));
    out.push('\n');
    for l in lines {
        out.push_str(&keep(l));
        out.push('\n');
    }
    std::fs::write(dir.join("mlp.csv"), out).unwrap();
    std::fs::create_dir_all(tmp.path().join("attention/a100")).unwrap();
    std::fs::copy(
        profiles().join("attention/a100/attention.csv"),
        tmp.path().join("attention/a100/attention.csv"),
    )
    .unwrap();
    let o = simwatt(&[
        "fit",
        "latency",
        "--gpu",
        "a100",
        "--model",
        "meta-llama/Llama-2-7b-hf",
        "--profiles",
        tmp.path().to_str().unwrap(),
        "--no-cache",
        "-q",
    ]);
    assert_clean_failure(&o, &["mlp.csv", "time_stats.mlp_up_proj.median", "missing"]);
}

#[test]
fn extrapolating_past_the_profile_beats_a_flat_forest_by_far() {
    let catalog = Catalog::builtin().unwrap();
    for (gpu, model) in [
        ("a100", "meta-llama/Llama-2-7b-hf"),
        ("h100", "meta-llama/Llama-2-70b-hf"),
        ("a100", "meta-llama/Meta-Llama-3-8B"),
    ] {
        let (_, d) = catalog.device(gpu).unwrap();
        let src = ProfileSources::locate(
            &profiles(),
            d.profile_dir.as_deref(),
            d.network_profile.as_deref(),
            model,
            1,
        )
        .unwrap();
        let rows = simwatt::predictor::profile::extrapolation_study(&src, 1, 0).unwrap();
        assert!(rows.len() >= 8);
        for r in &rows {
            assert!(r.test_rows > 20, "{gpu} {model} {}", r.op);
            // A forest predicts its last value past its data: about 30% too fast on the upper half.
            assert!(
                r.flat_forest_mape_pct > 20.0,
                "{gpu} {model} {}: {r:?}",
                r.op
            );
            assert!(
                r.tail_mape_pct < r.flat_forest_mape_pct / 2.0,
                "{gpu} {model} {}: {r:?}",
                r.op
            );
        }
        let mean_tail = rows.iter().map(|r| r.tail_mape_pct).sum::<f64>() / rows.len() as f64;
        assert!(
            mean_tail < 10.0,
            "{gpu} {model}: mean tail MAPE {mean_tail}"
        );
    }
}

#[test]
fn long_prompts_past_the_profile_complete_and_ttft_keeps_growing() {
    // A long-context model with Llama-2-7B's shape (whose profiles stop at 4,096 tokens), serving
    // prompts up to 32k tokens with max_num_seqs 512.
    let tmp = tempfile::tempdir().unwrap();
    let models = std::fs::read_to_string(root().join("profiles/models.yaml")).unwrap();
    let long = models.replacen(
        "max_position_embeddings: 4096",
        "max_position_embeddings: 40960",
        1,
    );
    assert_ne!(long, models);
    let catalog = write(tmp.path(), "models.yaml", &long);
    let catalog_set = format!("catalog.models={}", catalog.display());
    let overrides = [
        catalog_set.as_str(),
        "scheduler.policy=sarathi",
        "scheduler.max_num_seqs=512",
        "scheduler.max_num_batched_tokens=8192",
        "scheduler.chunk_size=8192",
        "workload.requests=40",
        "workload.arrival={type: static, rate: 0.05}",
        "workload.lengths={type: uniform, prompt: [1024, 32768], output: [4, 8]}",
    ];
    let o = simulate(&quickstart(), &overrides);
    assert_eq!(
        o.summary.requests_completed, 40,
        "{:?}",
        o.summary.requests_rejected_by_reason
    );
    let counts: std::collections::BTreeMap<_, _> = o
        .predictor
        .out_of_range
        .iter()
        .map(|c| (c.op.clone(), (c.predictions, c.beyond_profile)))
        .collect();
    assert!(counts["linear_layers"].1 > 0, "{counts:?}");
    assert!(counts["attention_prefill"].1 > 0, "{counts:?}");
    assert!(summary_md_of(&quickstart(), &overrides)
        .1
        .contains("outside the profiled range"));
    // Requests arrive 20 s apart, so each prefills alone: TTFT must keep rising with the prompt, also
    // between 16k and 32k tokens where everything is extrapolated.
    let mut rows: Vec<_> = o
        .rows
        .iter()
        .map(|r| (r.prompt_tokens, r.ttft_s.unwrap()))
        .collect();
    rows.sort_by_key(|r| r.0);
    let band = |lo: u32, hi: u32| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.0 >= lo && r.0 < hi)
            .map(|r| r.1)
            .collect();
        assert!(!v.is_empty(), "no prompt in [{lo}, {hi})");
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (a, b, c) = (band(1024, 4096), band(8192, 16384), band(24576, 32769));
    assert!(
        b > 2.0 * a && c > 1.5 * b,
        "TTFT by prompt band: {a} {b} {c}"
    );
}

#[test]
fn a_models_own_attention_profile_is_used_instead_of_the_fallback() {
    // Put an attention profile (here: the historical one, under another name) beside a model's mlp.csv.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("compute/h100/meta-llama/Llama-2-7b-hf");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        profiles().join("compute/h100/meta-llama/Llama-2-7b-hf/mlp.csv"),
        dir.join("mlp.csv"),
    )
    .unwrap();
    std::fs::copy(
        profiles().join("attention/a100/attention.csv"),
        dir.join("attention.csv"),
    )
    .unwrap();
    let o = simulate(
        &quickstart(),
        &[
            "hardware.gpu=h100",
            &format!(
                "predictor={{type: profiles, dir: {}, cache: false}}",
                tmp.path().display()
            ),
            "workload.requests=8",
        ],
    );
    let sources: std::collections::BTreeMap<_, _> = o.predictor.sources.iter().cloned().collect();
    let own = dir.join("attention.csv").display().to_string();
    assert!(sources["attention_decode"].contains(&own), "{sources:?}");
    assert!(sources["attention_prefill"].contains(&own));
    // Calibrated against the H100's peaks rather than the A100's: other efficiencies than the fallback.
    let fallback = simulate(&quickstart(), &["hardware.gpu=h100", "workload.requests=8"]);
    let e = |x: &simwatt::drivers::simulate::RunOutcome| x.predictor.parameters.to_string();
    assert_ne!(e(&o), "");
    assert!(fallback
        .predictor
        .sources
        .iter()
        .any(|(_, s)| s.contains("attention/a100/attention.csv")));
}

#[test]
fn a_kv_cache_save_column_is_part_of_attention_time() {
    // Newer Vidur attention profiles time the KV-cache write separately; when a profile has it, the
    // calibrated attention includes it.
    use simwatt::predictor::attention::AttentionModel;
    use simwatt::predictor::BatchShape;
    let catalog = Catalog::builtin().unwrap();
    let (_, a100) = catalog.device("a100").unwrap();
    let (_, model) = catalog.model("meta-llama/Llama-2-7b-hf").unwrap();
    let src = profiles().join("attention/a100/attention.csv");
    let text = std::fs::read_to_string(&src).unwrap();
    let mut lines = text.lines();
    let mut out = format!(
        "{},time_stats.attn_kv_cache_save.median\n",
        lines.next().unwrap()
    );
    for l in lines {
        out.push_str(l);
        out.push_str(",0.05\n");
    }
    let tmp = tempfile::tempdir().unwrap();
    let with = write(tmp.path(), "attention.csv", &out);
    let (plain, _) = AttentionModel::calibrate(&src, a100).unwrap();
    let (saved, _) = AttentionModel::calibrate(&with, a100).unwrap();
    let mut decode = BatchShape::default();
    for _ in 0..16 {
        decode.add_decode(1024);
    }
    let added =
        saved.time_ms(&decode, model, a100, 1, 2.0) - plain.time_ms(&decode, model, a100, 1, 2.0);
    assert!(
        (added - 0.05).abs() < 0.02,
        "a 0.05 ms KV save added {added} ms to a decode step"
    );
}

/// Regression: the profiles were found only in simwatt's shipped layout; Vidur's current
/// `data/profiling` (CPU overheads at `cpu_overhead/<network_sku>/<model>/cpu_overheads.csv`, one file
/// per model) and a Vidur checkout as the profiles folder were not read. Both layouts are read now,
/// and the CPU overheads found in Vidur's layout are fitted into the host time per iteration.
#[test]
fn vidur_current_profiling_layout_is_not_read() {
    let model = "meta-llama/Llama-2-7b-hf";
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("vidur");
    let data = checkout.join("data/profiling");
    let copy = |from: &str, to: &str| {
        let dst = data.join(to);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(profiles().join(from), &dst).unwrap();
    };
    let compute = format!("compute/a100/{model}");
    copy(&format!("{compute}/mlp.csv"), &format!("{compute}/mlp.csv"));
    copy(
        "attention/a100/attention.csv",
        &format!("{compute}/attention.csv"),
    );
    for f in ["all_reduce.csv", "send_recv.csv"] {
        let p = format!("network/a100_pairwise_nvlink/{f}");
        copy(&p, &p);
    }
    let cpu = format!("cpu_overhead/a100_pairwise_nvlink/{model}/cpu_overheads.csv");
    copy("cpu_overheads/a100/cpu_overheads.csv", &cpu);

    let catalog = Catalog::builtin().unwrap();
    let (_, a100) = catalog.device("a100").unwrap();
    for root in [&data, &checkout] {
        let src = ProfileSources::locate(
            root,
            a100.profile_dir.as_deref(),
            a100.network_profile.as_deref(),
            model,
            1,
        )
        .unwrap_or_else(|| panic!("no profiles found under {}", root.display()));
        assert_eq!(src.mlp, data.join(&compute).join("mlp.csv"));
        assert_eq!(src.attention, data.join(&compute).join("attention.csv"));
        assert_eq!(src.attention_measured_on, None);
        assert_eq!(
            src.all_reduce.as_deref(),
            Some(
                data.join("network/a100_pairwise_nvlink/all_reduce.csv")
                    .as_path()
            )
        );
        assert_eq!(
            src.cpu_overheads.as_deref(),
            Some(data.join(&cpu).as_path())
        );
    }
    let src = ProfileSources::locate(
        &checkout,
        Some("a100"),
        Some("a100_pairwise_nvlink"),
        model,
        1,
    )
    .unwrap();
    let s = FitSettings {
        gpu: "a100".into(),
        model: model.into(),
        tensor_parallel: 1,
        seed: 0,
    };
    let t = fit_tables(&caches().tables, &src, &s, a100, true).unwrap();
    assert_eq!(
        t.cpu_overheads.len(),
        5,
        "one table per CPU-overhead operation"
    );
    assert!(t
        .cpu_overheads
        .iter()
        .all(|o| o.values_ms.iter().all(|v| *v > 0.0)));
}

/// A cost model that prices a run of decode steps one step at a time (the trait's default), for
/// comparison with a model's own `run_costs`.
struct StepByStep<'a>(&'a dyn simwatt::sim::CostModel);

impl simwatt::sim::CostModel for StepByStep<'_> {
    fn stage_cost(&self, s: &simwatt::cluster::BatchShape, stage: u32) -> simwatt::sim::StageCost {
        self.0.stage_cost(s, stage)
    }
}

/// Step 0 of a static batch: decode sequences of `growing` contexts and padding sequences of
/// `fixed` contexts, and its run of `steps` steps.
fn static_run(
    growing: &[u32],
    fixed: &[u32],
    steps: u32,
) -> (simwatt::cluster::BatchShape, simwatt::cluster::DecodeRun) {
    let mut shape = simwatt::cluster::BatchShape::default();
    let mut run = simwatt::cluster::DecodeRun {
        steps,
        ..Default::default()
    };
    for &c in growing {
        shape.add_decode(c);
        run.growing += 1;
        run.growing_max_context = run.growing_max_context.max(c + 1);
    }
    for &c in fixed {
        shape.add_decode(c);
        run.fixed_max_context = run.fixed_max_context.max(c + 1);
    }
    (shape, run)
}

#[test]
fn a_run_of_decode_steps_priced_at_once_costs_bit_for_bit_its_steps_priced_one_by_one() {
    use simwatt::sim::{CostModel, StageCost};
    let bits = |c: &[StageCost]| -> Vec<(u64, u64, u64, u64)> {
        c.iter()
            .map(|c| (c.time_ns, c.host_ns, c.flops.to_bits(), c.bytes.to_bits()))
            .collect()
    };
    // Runs of static batches: a few sequences (a CUDA graph pads them), many (eager beyond the largest
    // graph), contexts growing past the attention profile's longest, padding sequences longer than
    // any growing one, and a prefill-free batch of one sequence.
    let runs = [
        static_run(&[100, 2000, 4000], &[50], 300),
        static_run(&[4090; 7], &[], 40),
        static_run(&[10], &[9000, 20], 25),
        static_run(
            &(1..700).map(|i| i * 5).collect::<Vec<_>>(),
            &[3, 3000],
            130,
        ),
        static_run(&[1], &[], 2),
    ];
    let configs: [&[&str]; 8] = [
        &[],
        &["engine.name=vllm", "engine.version=\"0.11\""],
        &["predictor.type=roofline"],
        &["hardware.tensor_parallel=2"],
        &["hardware.pipeline_stages=2"],
        &["hardware.tensor_parallel=2", "predictor.type=roofline"],
        &["precision.weights=int8"],
        &[
            "hardware.gpu=h100",
            "model=Qwen/Qwen3-30B-A3B",
            "predictor.type=roofline",
        ],
    ];
    for set in configs {
        let o = simulate(&quickstart(), &[&["workload.requests=2"], set].concat());
        let s = &o.scenario;
        let predictor =
            || simwatt::drivers::simulate::build_predictor(s, &caches().tables).unwrap();
        let (fast, slow, default) = (predictor(), predictor(), predictor());
        let (fast_engine, slow_engine, default_engine) = (
            simwatt::engine::EngineCost::new(&*fast, s),
            simwatt::engine::EngineCost::new(&*slow, s),
            simwatt::engine::EngineCost::new(&*default, s),
        );
        for stage in 0..s.hardware.pipeline_stages {
            for (first, run) in &runs {
                let one_by_one = |m: &dyn CostModel| -> Vec<StageCost> {
                    (0..run.steps)
                        .map(|j| m.stage_cost(&run.shape_of_step(first, j), stage))
                        .collect()
                };
                let mut at_once = Vec::new();
                fast.run_costs(first, run, stage, &mut at_once);
                assert_eq!(bits(&at_once), bits(&one_by_one(&*slow)), "{set:?} {run:?}");
                at_once.clear();
                fast_engine.run_costs(first, run, stage, &mut at_once);
                let steps = one_by_one(&slow_engine);
                assert_eq!(bits(&at_once), bits(&steps), "{set:?} {run:?}");
                // The trait's default, through the engine.
                let mut by_default = Vec::new();
                StepByStep(&default_engine).run_costs(first, run, stage, &mut by_default);
                assert_eq!(bits(&by_default), bits(&steps), "{set:?} {run:?}");
            }
        }
        // The same predictions counted, in range and beyond it (the profiles' attention was
        // measured to contexts of a few thousand tokens: the runs above go beyond).
        let counts = fast.info().out_of_range;
        assert_eq!(counts, slow.info().out_of_range, "{set:?}");
        if set.is_empty() {
            let decode = counts.iter().find(|c| c.op == "attention_decode").unwrap();
            assert!(
                decode.beyond_profile > 0 && decode.beyond_profile < decode.predictions,
                "{decode:?}"
            );
        }
    }
}
