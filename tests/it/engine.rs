//! The engine model and the power states it bills: the power cap lowering clocks, host waits at loaded
//! idle against measured duty cycles, engine profiles in configs, the front end's delays, and
//! `simwatt fit engine`.

use crate::common::{
    assert_clean_failure, caches, quickstart, root, simulate, simwatt, stderr, write,
};
use simwatt::cluster::BatchShape;
use simwatt::config::PowerProfile;
use simwatt::power::StageEnergy;
use simwatt::sim::{StageCost, StagePower};

// CostModel is used through the predictor's trait object.
#[allow(unused_imports)]
use simwatt::sim::CostModel as _;

fn h100_profile() -> PowerProfile {
    PowerProfile::load(&root().join("profiles/power/h100.yaml")).unwrap()
}

/// A prefill of 16 x 1024 tokens of Llama-3.1-8B on one H100, priced by the shipped roofline.
fn big_prefill_cost() -> (StageCost, simwatt::catalog::DeviceSpec) {
    let o = simulate(
        &quickstart(),
        &[
            "hardware.gpu=h100",
            "model=meta-llama/Llama-3.1-8B",
            "predictor.type=roofline",
            "workload.requests=2",
        ],
    );
    let p = simwatt::drivers::simulate::build_predictor(&o.scenario, &caches().tables).unwrap();
    let mut shape = BatchShape::default();
    for _ in 0..16 {
        shape.add_prefill(1024, 0, true);
    }
    (p.stage_cost(&shape, 0), o.scenario.device.clone())
}

#[test]
fn a_prefill_demanding_more_than_the_cap_runs_at_the_cap_and_takes_longer() {
    let (mut cost, device) = big_prefill_cost();
    // The GPU work alone (the host wait after it is priced separately).
    cost.host_ns = 0;
    let capped = StageEnergy::new(h100_profile(), device.clone(), 1, 1.0);
    let u =
        simwatt::power::Utilisation::of(cost.flops, cost.bytes, cost.time_ns as f64 / 1e9, &device);
    let demand = capped.profile.demand_w(u);
    assert!(demand > 700.0, "the prefill demands {demand} W");
    let p = capped.price(&cost);
    assert_eq!(p.power_w, 700.0);
    assert!(p.clock < 1.0, "clock {}", p.clock);
    assert!(p.gpu_ns > cost.time_ns, "{} vs {}", p.gpu_ns, cost.time_ns);
    // By hand: f = ((700 - P_0) / (demand - P_0))^(1/3); the compute share stretches by 1/f.
    let pr = &capped.profile;
    let f = ((700.0 - pr.p0_w) / (demand - pr.p0_w)).powf(1.0 / 3.0);
    let share = u.compute / (u.compute + u.memory);
    let expect = cost.time_ns as f64 * (share / f + 1.0 - share);
    assert!(
        (p.gpu_ns as f64 - expect).abs() <= 1.0,
        "{} vs {expect}",
        p.gpu_ns
    );
    assert!((p.energy_j - 700.0 * p.gpu_ns as f64 / 1e9).abs() < 1e-9);
    // Without a binding cap the same stage runs at full clocks and draws its demand.
    let mut free = h100_profile();
    free.cap_w = 2000.0;
    let uncapped = StageEnergy::new(free, device, 1, 1.0);
    let q = uncapped.price(&cost);
    assert_eq!(q.gpu_ns, cost.time_ns);
    assert_eq!(q.clock, 1.0);
    assert!((q.power_w - demand).abs() < 1e-9);
}

#[test]
fn a_static_prefill_run_on_an_h100_logs_throttled_stages_at_the_cap() {
    let o = simulate(
        &quickstart(),
        &[
            "hardware.gpu=h100",
            "model=meta-llama/Llama-3.1-8B",
            "predictor.type=roofline",
            "scheduler.policy=faster_transformer",
            "scheduler.max_num_seqs=16",
            "scheduler.max_num_batched_tokens=16384",
            "workload.requests=16",
            "workload.arrival.type=all_at_once",
            "workload.lengths.type=fixed",
            "workload.lengths.prompt=1024",
            "workload.lengths.output=2",
        ],
    );
    let b = &o.result.batches;
    let prefill = (0..b.len()).find(|&i| b.prefill_tokens[i] > 0).unwrap();
    assert_eq!(b.power_w[prefill], 700.0);
    assert!(b.clock[prefill] < 1.0);
}

/// The duty-cycle phases of the H200 measurement: (burst s, gap s, burst power W, measured mean W).
fn duty_cycles(kind: &str) -> Vec<(f64, f64, f64, f64)> {
    let text =
        std::fs::read_to_string(root().join("profiles/measured/h200-power-states/phases.json"))
            .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let phases = v["phases"].as_array().unwrap();
    let get = |name: &str| {
        phases
            .iter()
            .find(|p| p["phase"] == name)
            .unwrap_or_else(|| panic!("{name} in phases.json"))
    };
    let burst_w = get(&format!("duty_{kind}_0ms"))["mean_power_w"]
        .as_f64()
        .unwrap();
    [1, 2, 5, 10, 20, 50]
        .iter()
        .map(|g| {
            let p = get(&format!("duty_{kind}_{g}ms"));
            (
                p["burst_s"].as_f64().unwrap(),
                *g as f64 / 1e3,
                burst_w,
                p["mean_power_w"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn host_gaps_pull_mean_power_toward_loaded_idle_as_measured_on_an_h200() {
    // By hand first: 10 ms at 600 W then a 10 ms wait at a 100 W loaded idle with no tail: 350 W.
    let mut p = PowerProfile::load(&root().join("profiles/power/h200.yaml")).unwrap();
    let mut hand = p.clone();
    hand.loaded_idle_w = Some(100.0);
    hand.tail_ms = 0.0;
    assert!(((600.0 * 0.01 + hand.host_wait_j(600.0, 0.01)) / 0.02 - 350.0).abs() < 1e-9);
    // With a 1 ms tail the wait adds (600 - 100) x 1 ms x (1 - e^-10).
    hand.tail_ms = 1.0;
    let e = hand.host_wait_j(600.0, 0.01);
    assert!(
        (e - (1.0 + 0.5 * (1.0 - (-10.0f64).exp()))).abs() < 1e-12,
        "{e}"
    );

    // Against the measured duty cycles: mean power falls toward loaded idle as the gap grows, and the
    // model (loaded idle and tail of the shipped profile) follows it.
    let loaded = p.between_batches_w();
    let mut errs = Vec::new();
    for kind in ["gemm", "gemv"] {
        let mut last = f64::INFINITY;
        for (burst, gap, burst_w, measured) in duty_cycles(kind) {
            let mean = (burst_w * burst + p.host_wait_j(burst_w, gap)) / (burst + gap);
            assert!(mean < last && mean > loaded, "{kind} gap {gap}: {mean}");
            last = mean;
            errs.push((mean - measured) / measured);
        }
    }
    // Over the 12 phases: mean absolute error under 6.5%, none beyond 13%.
    let mape = errs.iter().map(|e| e.abs()).sum::<f64>() / errs.len() as f64;
    assert!(mape < 0.065, "{mape}: {errs:?}");
    assert!(errs.iter().all(|e| e.abs() < 0.13), "{errs:?}");
    // Without the tail the same waits are priced too low.
    p.tail_ms = 0.0;
    let (burst, gap, burst_w, measured) = duty_cycles("gemm")[2];
    let mean = (burst_w * burst + p.host_wait_j(burst_w, gap)) / (burst + gap);
    assert!((mean - measured) / measured < -0.15, "{mean} vs {measured}");
}

#[test]
fn a_run_whose_engine_waits_on_the_host_draws_less_as_the_wait_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let mut means = Vec::new();
    for host_ms in [0.0, 5.0, 20.0, 80.0] {
        let prof = write(
            tmp.path(),
            &format!("e{host_ms}.yaml"),
            &format!(
                "engine: test\niteration: {{ host_ms: {host_ms} }}\nprovenance: {{ method: published }}\n"
            ),
        );
        let set = format!("engine.profile={}", prof.display());
        let o = simulate(
            &quickstart(),
            &[
                set.as_str(),
                "workload.requests=64",
                "workload.arrival.type=all_at_once",
            ],
        );
        let e = &o.summary.energy;
        let span = o.result.end_ns as f64 / 1e9;
        let mean = e.energy_j.unwrap() / span;
        let b = &o.result.batches;
        let host: u64 = b.host_ns.iter().sum();
        if host_ms == 0.0 {
            assert_eq!(host, 0);
        } else {
            // Every iteration waits host_ms on the host (one stage, no overlap).
            assert!(b.host_ns.iter().all(|h| *h == (host_ms * 1e6) as u64));
            assert!(b
                .host_power_w
                .iter()
                .zip(&b.power_w)
                .all(|(h, w)| *h >= 75.4 - 1e-9 && h <= w));
        }
        means.push(mean);
    }
    assert!(means.windows(2).all(|w| w[1] < w[0]), "{means:?}");
    // With 80 ms of host per iteration, most of the time is loaded idle (75.4 W on the A100).
    assert!(means[3] < 0.5 * means[0] && means[3] > 75.4, "{means:?}");
}

#[test]
fn the_front_end_delays_admission_and_streaming() {
    let tmp = tempfile::tempdir().unwrap();
    let prof = write(
        tmp.path(),
        "e.yaml",
        "engine: test\nfront_end: { admission_ms: 7, stream_ms: 3 }\niteration: { host_ms: 0 }\n\
         provenance: { method: published }\n",
    );
    let set = format!("engine.profile={}", prof.display());
    let fe = simulate(&quickstart(), &[set.as_str(), "workload.requests=8"]);
    let b = &fe.result.requests;
    assert_eq!(b.len(), 8);
    // The first request meets an idle replica: its first token is 7 ms (admission) + its prefill + 3 ms
    // (streaming) after arrival, and its scheduling waits the 7 ms.
    let r = &b[0];
    assert_eq!(r.scheduled_ns.unwrap() - r.arrival_ns, 7_000_000);
    let ttft = r.first_token_ns.unwrap() - r.arrival_ns;
    assert!(ttft > 10_000_000, "{ttft}");
    // Token gaps are unchanged by the stream delay: the last token and completion move together.
    assert!(b.iter().all(|q| q.completion_ns == Some(q.last_token_ns)));
}

#[test]
fn engine_settings_are_checked_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = quickstart();
    let cfg = cfg.to_str().unwrap();
    for (set, needle) in [
        ("engine.name=vllm", "engine.version"),
        ("engine.version='9.9'", "no profile"),
        ("engine.name=../x", "engine.name"),
    ] {
        let o = simwatt(&[
            "simulate",
            "--config",
            cfg,
            "--set",
            set,
            "--set",
            "workload.requests=2",
            "--out",
            tmp.path().join("o").to_str().unwrap(),
            "--no-plots",
        ]);
        assert_clean_failure(&o, &[needle]);
    }
    let bad = write(
        tmp.path(),
        "bad.yaml",
        "engine: vllm\niteration: { overlap: 2 }\nprovenance: { method: published }\n",
    );
    let o = simwatt(&[
        "simulate",
        "--config",
        cfg,
        "--set",
        &format!("engine.profile={}", bad.display()),
        "--out",
        tmp.path().join("o2").to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["iteration.overlap", "bad.yaml"]);
    assert!(!tmp.path().join("o2").exists());
    let _ = stderr(&o);
}

#[test]
fn a_profile_without_a_sampler_section_reads_as_no_sampler_passes() {
    let path = std::path::Path::new("no-sampler.yaml");
    let p = simwatt::config::EngineProfile::parse(
        path,
        "engine: vllm\nversion: '0.5'\niteration: { host_ms: 10 }\nprovenance: { method: published }\n",
    )
    .expect("a profile without a sampler section parses");
    p.validate(path).expect("and validates");
    assert_eq!(p.sampler.logit_passes, 0.0);
    assert!(p.sampler.memory_efficiency > 0.0 && p.sampler.memory_efficiency <= 1.0);
}

#[test]
fn fit_engine_recovers_the_host_time_of_a_sweep_and_writes_a_valid_profile() {
    let tmp = tempfile::tempdir().unwrap();
    // Start from vLLM 0.5's profile with its per-sequence host time removed; refit it on one sweep.
    let shipped = std::fs::read_to_string(root().join("profiles/engine/vllm-0.5.yaml")).unwrap();
    let mut v: serde_yaml::Value = serde_yaml::from_str(&shipped).unwrap();
    let fitted_value = v["iteration"]["host_us_per_seq"].as_f64().unwrap();
    v["iteration"]["host_us_per_seq"] = 0.0.into();
    let start = write(
        tmp.path(),
        "start.yaml",
        &serde_yaml::to_string(&v).unwrap(),
    );
    let out = tmp.path().join("fitted.yaml");
    let o = simwatt(&[
        "fit",
        "engine",
        "--cases",
        "experiments/validation/mlenergy-h100-llama-3.1-8b.yaml",
        "--template",
        start.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--param",
        "host_us_per_seq",
        "--no-holdout",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = simwatt::config::EngineProfile::load(&out).unwrap();
    assert_eq!(p.provenance.method, "fitted");
    let got = p.iteration.host_us_per_seq;
    // One sweep alone pins the per-sequence cost near the value fitted on all of them.
    assert!(
        (got - fitted_value).abs() < 0.35 * fitted_value,
        "{got} vs {fitted_value}"
    );
    let itl = p.provenance.error["fit_tpot_mean_s_mape_pct"];
    assert!(itl < 20.0, "{itl}");
    // A parameter that is not one fails cleanly.
    let o = simwatt(&[
        "fit",
        "engine",
        "--cases",
        "experiments/validation/mlenergy-h100-llama-3.1-8b.yaml",
        "--out",
        out.to_str().unwrap(),
        "--param",
        "warp_speed",
    ]);
    assert_clean_failure(&o, &["warp_speed", "host_ms"]);
}

#[test]
fn a_joint_fit_takes_loaded_idle_from_the_power_log_before_load() {
    // The serving run of the validate tests idles at 60 W before its first request; the shipped A100
    // profile's loaded idle is 75.4 W. Fitting power.loaded_idle_w alone on that run must move it to
    // the measured idle, and the fitted profile must say it was fitted jointly.
    let tmp = tempfile::tempdir().unwrap();
    let run = crate::validate::vllm_protocol_run(tmp.path());
    let case = write(
        tmp.path(),
        "case.yaml",
        &format!(
            "description: synthetic serving run\nconfig:\n{}measured:\n  format: run\n  path: {}\n",
            crate::validate::CONFIG
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>(),
            run.display()
        ),
    );
    let power_out = tmp.path().join("a100.yaml");
    let o = simwatt(&[
        "fit",
        "engine",
        "--cases",
        case.to_str().unwrap(),
        "--template",
        "profiles/engine/vllm-0.11.yaml",
        "--power-profile",
        "profiles/power/a100.yaml",
        "--power-out",
        power_out.to_str().unwrap(),
        "--out",
        tmp.path().join("engine.yaml").to_str().unwrap(),
        "--param",
        "power.loaded_idle_w",
        "--no-holdout",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = PowerProfile::load(&power_out).unwrap();
    let idle = p.loaded_idle_w.expect("a fitted loaded idle");
    // Mean power (250 W measured) is fitted too and also moves with loaded idle through the host
    // waits, so the least-squares value sits near, not exactly at, the measured idle.
    assert!(
        (idle - 60.0).abs() < 0.05 * 60.0,
        "fitted loaded idle {idle} W, measured 60 W"
    );
    assert!(p
        .provenance
        .notes
        .as_deref()
        .unwrap_or("")
        .contains("jointly with the engine profile"));
}

/// Mean absolute relative error (percent) of `metric` over every point of a validation.json.
fn mape_of(j: &serde_json::Value, metric: &str) -> Option<f64> {
    let mut errs = Vec::new();
    for c in j["cases"].as_array().unwrap() {
        for p in c["points"].as_array().unwrap() {
            if let Some(e) = p["metrics"][metric]["rel_error"].as_f64() {
                errs.push(e.abs());
            }
        }
    }
    (!errs.is_empty()).then(|| 100.0 * errs.iter().sum::<f64>() / errs.len() as f64)
}

/// Validates the cases an engine profile was fitted on and checks the in-sample errors its provenance
/// records: the shipped numbers are what a rerun gives.
fn check_fitted_profile(profile: &str) {
    let p = simwatt::config::EngineProfile::load(&root().join(profile)).unwrap();
    assert_eq!(p.provenance.method, "fitted", "{profile}");
    assert!(p.provenance.data.len() >= 4, "{profile}: cases");
    check_recorded_fit(profile, &p.provenance);
}

/// Validates the cases `prov` lists (as `name: path`) and checks its recorded in-sample errors
/// (`fit_<metric>_mape_pct`) against the rerun's, to 0.011 percentage points.
fn check_recorded_fit(what: &str, prov: &simwatt::config::engine_profile::EngineProvenance) {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("suite");
    std::fs::create_dir(&suite).unwrap();
    for d in &prov.data {
        let (_, path) = d.split_once(": ").unwrap_or_else(|| panic!("{what}: {d}"));
        let f = root().join(path);
        std::fs::copy(&f, suite.join(f.file_name().unwrap())).unwrap();
    }
    let out = tmp.path().join("v");
    let o = simwatt(&[
        "validate",
        "--suite",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-plots",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("validation.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for (k, v) in &prov.error {
        let Some(metric) = k
            .strip_prefix("fit_")
            .and_then(|m| m.strip_suffix("_mape_pct"))
        else {
            continue;
        };
        let got = mape_of(&j, metric).unwrap_or_else(|| panic!("{what}: {metric}"));
        assert!(
            (got - v).abs() < 0.011,
            "{what}: {metric} recorded {v}, rerun {got}"
        );
        checked += 1;
    }
    assert!(checked >= 3, "{what}: {:?}", prov.error);
}

#[test]
fn the_vllm_0_5_profile_reproduces_its_recorded_fit_on_ml_energy_v2() {
    check_fitted_profile("profiles/engine/vllm-0.5.yaml");
}

#[test]
fn the_vllm_0_11_profile_reproduces_its_recorded_fit_on_ml_energy_v3() {
    check_fitted_profile("profiles/engine/vllm-0.11.yaml");
    // The H100 power profile was fitted jointly with it; its recorded errors are the same cases'.
    let w = PowerProfile::load(&root().join("profiles/power/h100.yaml")).unwrap();
    let e = simwatt::config::EngineProfile::load(&root().join("profiles/engine/vllm-0.11.yaml"))
        .unwrap()
        .provenance
        .error;
    assert_eq!(
        w.provenance.error["fit_mean_power_w_mape_pct"],
        e["fit_mean_power_w_mape_pct"]
    );
}

#[test]
fn the_vllm_0_11_fp8_kernels_reproduce_their_recorded_fit() {
    // The FP8 section was fitted apart from the rest of the profile and carries its own provenance:
    // its recorded in-sample errors are what a rerun of its cases gives.
    let p = simwatt::config::EngineProfile::load(&root().join("profiles/engine/vllm-0.11.yaml"))
        .unwrap();
    let f = p.fp8_linear.expect("an fp8_linear section");
    assert!(f.efficiency < 1.0 && f.us_per_layer > 0.0, "{f:?}");
    let prov = f.provenance.expect("its own provenance");
    assert_eq!(prov.method, "fitted");
    check_recorded_fit("vllm-0.11 fp8_linear", &prov);
}

/// Refits the parameters `params` of the shipped vLLM 0.11 profile, edited by `edit` first (the
/// fitted section removed or reset), on the case `case`; returns the starting and the fitted profile.
fn refit_shipped(
    edit: impl FnOnce(&mut serde_yaml::Value),
    case: &str,
    params: &[&str],
) -> (
    simwatt::config::EngineProfile,
    simwatt::config::EngineProfile,
) {
    let tmp = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(root().join("profiles/engine/vllm-0.11.yaml")).unwrap();
    let mut v: serde_yaml::Value = serde_yaml::from_str(&shipped).unwrap();
    edit(&mut v);
    let start = write(
        tmp.path(),
        "start.yaml",
        &serde_yaml::to_string(&v).unwrap(),
    );
    let out = tmp.path().join("fitted.yaml");
    let mut args = vec![
        "fit",
        "engine",
        "--cases",
        case,
        "--template",
        start.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    for q in params {
        args.extend(["--param", q]);
    }
    let o = simwatt(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    (
        simwatt::config::EngineProfile::load(&start).unwrap(),
        simwatt::config::EngineProfile::load(&out).unwrap(),
    )
}

/// The shipped vLLM 0.11 profile's value at `path` (keys), as a number.
fn shipped_value(path: &[&str]) -> f64 {
    let shipped = std::fs::read_to_string(root().join("profiles/engine/vllm-0.11.yaml")).unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(&shipped).unwrap();
    path.iter().fold(&v, |v, k| &v[*k]).as_f64().unwrap()
}

#[test]
fn a_fit_of_the_fp8_kernels_alone_keeps_the_profiles_provenance() {
    // Refit the FP8 section from the shipped profile with it removed: the fit writes the section's
    // own provenance and leaves every other parameter, and the profile's provenance, as they were.
    let recorded = shipped_value(&["fp8_linear", "efficiency"]);
    let (before, after) = refit_shipped(
        |v| {
            v.as_mapping_mut().unwrap().remove("fp8_linear");
        },
        "experiments/validation/heldout-v3-h100-qwen3-235b-a22b-fp8.yaml",
        &["fp8_linear.efficiency", "fp8_linear.us_per_layer"],
    );
    assert_eq!(after.provenance, before.provenance);
    assert_eq!(after.iteration, before.iteration);
    assert_eq!(after.sampler, before.sampler);
    let f = after.fp8_linear.unwrap();
    let prov = f.provenance.unwrap();
    assert!(prov.data[0].contains("heldout-v3-h100-qwen3-235b-a22b-fp8"));
    assert!(
        prov.error["fit_itl_p50_s_mape_pct"] < 10.0,
        "{:?}",
        prov.error
    );
    // The same cases and start give the shipped value.
    assert_eq!(f.efficiency, recorded);
}

#[test]
fn the_vllm_0_11_fused_moe_kernel_reproduces_its_recorded_fit() {
    // The fused-MoE section was fitted apart from the rest of the profile and carries its own
    // provenance: its recorded in-sample errors are what a rerun of its cases gives.
    let p = simwatt::config::EngineProfile::load(&root().join("profiles/engine/vllm-0.11.yaml"))
        .unwrap();
    let f = p.fused_moe.expect("a fused_moe section");
    assert!(f.default_config_efficiency < 1.0, "{f:?}");
    let prov = f.provenance.expect("its own provenance");
    assert_eq!(prov.method, "fitted");
    check_recorded_fit("vllm-0.11 fused_moe", &prov);
}

#[test]
fn a_fit_of_the_fused_moe_kernel_alone_keeps_every_other_section() {
    // Refit the fused-MoE efficiency from the shipped profile with it reset to 1 (the tuned shapes
    // kept): the fit writes the section's own provenance and leaves every other parameter, the FP8
    // section's provenance and the profile's provenance as they were.
    let recorded = shipped_value(&["fused_moe", "default_config_efficiency"]);
    let (before, after) = refit_shipped(
        |v| {
            v["fused_moe"]["default_config_efficiency"] = serde_yaml::Value::from(1.0);
            v["fused_moe"]
                .as_mapping_mut()
                .unwrap()
                .remove("provenance");
        },
        "experiments/validation/heldout-v3-h100-qwen3-235b-a22b.yaml",
        &["fused_moe.default_config_efficiency"],
    );
    assert_eq!(after.provenance, before.provenance);
    assert_eq!(after.iteration, before.iteration);
    assert_eq!(after.fp8_linear, before.fp8_linear);
    let f = after.fused_moe.unwrap();
    assert_eq!(f.tuned, before.fused_moe.unwrap().tuned);
    let prov = f.provenance.unwrap();
    assert!(prov.data[0].contains("heldout-v3-h100-qwen3-235b-a22b.yaml"));
    assert!(
        prov.error["fit_itl_p50_s_mape_pct"] < 10.0,
        "{:?}",
        prov.error
    );
    // The same cases and start give the shipped value.
    assert_eq!(f.default_config_efficiency, recorded);
}

#[test]
fn the_vllm_0_11_fused_moe_device_efficiency_reproduces_its_recorded_fit() {
    // The B200 efficiency of the fused-MoE kernel was fitted apart from the section's other
    // parameter and carries a provenance of its own.
    let p = simwatt::config::EngineProfile::load(&root().join("profiles/engine/vllm-0.11.yaml"))
        .unwrap();
    let f = p.fused_moe.expect("a fused_moe section");
    assert!(
        f.efficiency_on("b200") < 1.0 && f.efficiency_on("h100") == 1.0,
        "{f:?}"
    );
    let prov = f.device_provenance.expect("its own provenance");
    assert_eq!(prov.method, "fitted");
    assert!(prov.data[0].contains("heldout-v3-b200-qwen3-30b-a3b.yaml"));
    check_recorded_fit("vllm-0.11 fused_moe.device_efficiency", &prov);
}

#[test]
fn a_fit_of_the_device_efficiency_alone_keeps_the_sections_other_provenance() {
    let recorded = shipped_value(&["fused_moe", "device_efficiency", "b200"]);
    let (before, after) = refit_shipped(
        |v| {
            let f = v["fused_moe"].as_mapping_mut().unwrap();
            f.remove("device_efficiency");
            f.remove("device_provenance");
        },
        "experiments/validation/heldout-v3-b200-qwen3-30b-a3b.yaml",
        &["fused_moe.device_efficiency"],
    );
    assert_eq!(after.provenance, before.provenance);
    let (b, a) = (before.fused_moe.unwrap(), after.fused_moe.unwrap());
    assert_eq!(a.provenance, b.provenance);
    assert_eq!(a.default_config_efficiency, b.default_config_efficiency);
    assert_eq!(a.device_efficiency.keys().collect::<Vec<_>>(), ["b200"]);
    assert!(a.device_provenance.is_some());
    // The same cases and start give the shipped value.
    assert_eq!(a.efficiency_on("b200"), recorded);
}

#[test]
fn a_device_efficiency_fit_over_cases_on_two_devices_is_refused() {
    let o = simwatt(&[
        "fit",
        "engine",
        "--cases",
        "experiments/validation/heldout-v3-b200-qwen3-30b-a3b.yaml",
        "--cases",
        "experiments/validation/heldout-v3-h100-qwen3-30b-a3b.yaml",
        "--template",
        "profiles/engine/vllm-0.11.yaml",
        "--out",
        "/nonexistent/never-written.yaml",
        "--param",
        "fused_moe.device_efficiency",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("fused_moe.device_efficiency") && e.contains("b200") && e.contains("h100"),
        "{e}"
    );
}
