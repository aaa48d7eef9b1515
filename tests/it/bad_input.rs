//! Bad input gets a clear error naming the key or column and the value, a non-zero exit, and no panic.

use crate::common::*;

/// Writes the quickstart config with `edit` applied to its text, runs simulate on it, and returns the
/// process output.
fn run_config(text: &str, extra: &[&str]) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "bad.yaml", text);
    let out = tmp.path().join("out");
    let mut args = vec![
        "simulate",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    let o = simwatt(&args);
    assert!(!out.exists(), "a failed run left an output folder");
    o
}

fn quickstart_text() -> String {
    std::fs::read_to_string(quickstart()).unwrap()
}

#[test]
fn unknown_key_is_named() {
    let text = quickstart_text().replace("max_num_seqs: 128", "max_num_seqz: 128");
    assert_clean_failure(
        &run_config(&text, &[]),
        &["scheduler", "max_num_seqz", "unknown field"],
    );
}

#[test]
fn unknown_key_through_set_is_named() {
    let o = run_config(&quickstart_text(), &["--set", "hardware.gpus=2"]);
    assert_clean_failure(&o, &["hardware", "gpus", "unknown field"]);
}

#[test]
fn wrong_type_is_named_with_the_value() {
    let text = quickstart_text().replace("requests: 512", "requests: many");
    assert_clean_failure(&run_config(&text, &[]), &["workload.requests", "many"]);
}

#[test]
fn negative_rate_is_named_with_the_value() {
    let o = run_config(&quickstart_text(), &["--set", "workload.arrival.rate=-2"]);
    assert_clean_failure(&o, &["workload.arrival.rate", "-2", "> 0"]);
}

#[test]
fn missing_trace_file_is_named() {
    let o = run_config(
        &quickstart_text(),
        &[
            "--set",
            "workload.arrival={type: trace}",
            "--set",
            "workload.trace=traces/no_such_trace.csv",
        ],
    );
    assert_clean_failure(&o, &["traces/no_such_trace.csv", "not found"]);
}

#[test]
fn trace_with_a_missing_column_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = write(
        tmp.path(),
        "t.csv",
        "arrived_at,num_prefill_tokens\n0.0,10\n1.0,20\n",
    );
    let o = run_config(
        &quickstart_text(),
        &[
            "--set",
            "workload.lengths={type: trace}",
            "--set",
            &format!("workload.trace={}", trace.display()),
            "--set",
            "workload.requests=2",
        ],
    );
    assert_clean_failure(&o, &["t.csv", "num_decode_tokens", "missing"]);
}

#[test]
fn trace_with_unsorted_arrivals_or_bad_cells_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "arrived_at,num_prefill_tokens,num_decode_tokens\n1.0,5,5\n0.5,5,5\n",
            "arrived_at",
        ),
        (
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,abc,5\n",
            "`abc` is not a number",
        ),
        (
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,0,5\n",
            "num_prefill_tokens",
        ),
    ];
    for (i, (csv, needle)) in cases.iter().enumerate() {
        let trace = write(tmp.path(), &format!("t{i}.csv"), csv);
        let o = run_config(
            &quickstart_text(),
            &[
                "--set",
                "workload.arrival={type: trace}",
                "--set",
                "workload.lengths={type: trace}",
                "--set",
                &format!("workload.trace={}", trace.display()),
            ],
        );
        assert_clean_failure(&o, &[needle, "row"]);
    }
}

#[test]
fn tensor_parallel_degree_that_does_not_divide_the_heads_is_named() {
    let o = run_config(&quickstart_text(), &["--set", "hardware.tensor_parallel=3"]);
    assert_clean_failure(
        &o,
        &["hardware.tensor_parallel", "= 3", "32 attention heads"],
    );
}

#[test]
fn model_that_does_not_fit_is_named() {
    let o = run_config(
        &quickstart_text(),
        &["--set", "model=meta-llama/Llama-2-70b-hf"],
    );
    assert_clean_failure(&o, &["does not fit", "Llama-2-70b-hf"]);
}

#[test]
fn policy_parameters_are_validated() {
    let o = run_config(
        &quickstart_text(),
        &[
            "--set",
            "scheduler.policy=sarathi",
            "--set",
            "scheduler.chunk_size=8192",
        ],
    );
    assert_clean_failure(&o, &["scheduler.chunk_size", "8192", "token budget"]);
    let o = run_config(&quickstart_text(), &["--set", "scheduler.chunk_size=256"]);
    assert_clean_failure(&o, &["scheduler.chunk_size", "sarathi only"]);
}

#[test]
fn unknown_policy_model_and_gpu_are_named() {
    let o = run_config(&quickstart_text(), &["--set", "scheduler.policy=magic"]);
    assert_clean_failure(&o, &["scheduler.policy", "magic"]);
    let o = run_config(&quickstart_text(), &["--set", "model=acme/giant"]);
    assert_clean_failure(&o, &["model", "acme/giant", "not in the model catalog"]);
    let o = run_config(&quickstart_text(), &["--set", "hardware.gpu=tpu9"]);
    assert_clean_failure(&o, &["hardware.gpu", "tpu9"]);
}

#[test]
fn yaml_syntax_error_and_malformed_set_are_reported() {
    assert_clean_failure(&run_config("seed: [1, 2\n", &[]), &["invalid YAML"]);
    let o = run_config(&quickstart_text(), &["--set", "hardware.replicas"]);
    assert_clean_failure(&o, &["--set hardware.replicas", "KEY=VALUE"]);
}

#[test]
fn missing_config_file_is_named() {
    let o = simwatt(&["simulate", "--config", "experiments/nope.yaml", "-q"]);
    assert_clean_failure(&o, &["experiments/nope.yaml"]);
}

#[test]
fn empty_ranges_and_zero_counts_are_named() {
    let o = run_config(
        &quickstart_text(),
        &[
            "--set",
            "workload.lengths={type: uniform, prompt: [100, 10], output: [1, 2]}",
        ],
    );
    assert_clean_failure(&o, &["workload.lengths.prompt", "[100, 10]", "empty"]);
    let o = run_config(&quickstart_text(), &["--set", "hardware.replicas=0"]);
    assert_clean_failure(&o, &["hardware.replicas", "= 0"]);
    let o = run_config(&quickstart_text(), &["--set", "workload.requests=0"]);
    assert_clean_failure(&o, &["workload.requests", "= 0"]);
}

/// Regression: vLLM's own knob names were refused as unknown fields with no hint. Each is still
/// refused (the config stays strict), and the error names the field, where it was found, and the
/// simwatt field that means the same, or says that simwatt does not model it; the CLI's dashed
/// spelling gets the same hint.
#[test]
fn vllm_knob_names_are_refused_without_a_hint() {
    let cases: [(&str, &[&str]); 10] = [
        (
            "scheduler.enable_chunked_prefill=true",
            &[
                "scheduler",
                "enable_chunked_prefill",
                "scheduler.policy: sarathi",
            ],
        ),
        (
            "hardware.tensor_parallel_size=2",
            &[
                "in `hardware`",
                "tensor_parallel_size",
                "`hardware.tensor_parallel`",
            ],
        ),
        (
            "hardware.pipeline_parallel_size=2",
            &["pipeline_parallel_size", "`hardware.pipeline_stages`"],
        ),
        (
            "max_model_len=4096",
            &[
                "at the top level",
                "max_model_len",
                "does not model",
                "max_position_embeddings",
            ],
        ),
        (
            "max_num_seqs=64",
            &["at the top level", "`scheduler.max_num_seqs`"],
        ),
        (
            "hardware.max_num_batched_tokens=8192",
            &["in `hardware`", "`scheduler.max_num_batched_tokens`"],
        ),
        (
            "scheduler.gpu_memory_utilization=0.8",
            &["in `scheduler`", "`hardware.gpu_memory_utilization`"],
        ),
        ("hardware.block_size=32", &["`scheduler.block_size`"]),
        (
            "scheduler.--enable-chunked-prefill=true",
            &["--enable-chunked-prefill", "scheduler.policy: sarathi"],
        ),
        (
            "hardware.tensor-parallel-size=2",
            &["tensor-parallel-size", "`hardware.tensor_parallel`"],
        ),
    ];
    for (set, needles) in cases {
        let o = run_config(&quickstart_text(), &["--set", set]);
        let mut all = vec!["unknown field", "vLLM"];
        all.extend_from_slice(needles);
        assert_clean_failure(&o, &all);
    }
    // In the file itself, not only through --set.
    let text = quickstart_text().replace(
        "max_num_seqs: 128",
        "max_num_seqs: 128, enable_chunked_prefill: true",
    );
    assert_clean_failure(
        &run_config(&text, &[]),
        &[
            "bad.yaml",
            "scheduler",
            "enable_chunked_prefill",
            "scheduler.policy: sarathi",
        ],
    );
}

#[test]
fn a_power_profile_of_another_device_is_said_and_refused_under_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let h100 = root().join("profiles/power/h100.yaml");
    let set = format!("energy.power_profile={}", h100.display());
    let run = |out: &str, strict: bool| {
        let out = tmp.path().join(out);
        let mut args = vec![
            "simulate",
            "-c",
            "experiments/quickstart.yaml",
            "--set",
            &set,
            "--set",
            "workload.requests=8",
            "-o",
            out.to_str().unwrap(),
            "-q",
            "--no-plots",
        ];
        if strict {
            args.push("--strict");
        }
        (simwatt(&args), out)
    };
    let (o, out) = run("plain", false);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = "is for device `h100`, not this run's `a100`";
    assert!(stderr(&o).contains(said), "{}", stderr(&o));
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains(said), "{summary}");
    let (o, out) = run("strict", true);
    assert_clean_failure(&o, &["--strict", said]);
    assert!(!out.exists());
}

/// A power mode the device does not have, and a power mode on a device whose catalog entry lists none,
/// are refused naming `hardware.power_mode` and the value (and, for the first, the modes there are).
#[test]
fn unknown_power_mode_and_a_mode_on_a_device_without_modes_are_named() {
    let nano = std::fs::read_to_string(root().join("experiments/jetson-nano-modes.yaml")).unwrap();
    let o = run_config(&nano, &["--set", "hardware.power_mode=40W"]);
    assert_clean_failure(
        &o,
        &[
            "hardware.power_mode",
            "40W",
            "not a power mode of jetson-orin-nano-super",
            "7W, 15W, 25W, MAXN_SUPER",
        ],
    );
    let o = run_config(&quickstart_text(), &["--set", "hardware.power_mode=15W"]);
    assert_clean_failure(
        &o,
        &["hardware.power_mode", "15W", "gives no power_modes for"],
    );
}

/// A catalog's power modes are checked when it is read: a mode's memory clock above the device's
/// maximum, and modes on a device that gives no maximum memory clock, are refused naming the catalog
/// file, the field and the value.
#[test]
fn a_catalog_power_mode_beyond_the_devices_clocks_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let device = |extra: &str, emc: &str| {
        format!(
            "devices:\n  g:\n    name: G\n    kind: soc\n    peak_tflops: 10\n    memory_bandwidth_gb_s: 100\n    memory_gb: 8\n    tdp_w: 25\n    max_sm_clock_mhz: 1000\n{extra}    power_modes:\n      - {{ name: low, gpu_max_mhz: 500, emc_max_mhz: {emc}, cpu_cores_online: 4, cpu_max_mhz: 1000, source: test }}\n"
        )
    };
    let cases = [
        (
            device("    max_memory_clock_mhz: 3000\n", "3200"),
            vec![
                "power_modes.emc_max_mhz",
                "3200 (mode low)",
                "max_memory_clock_mhz",
            ],
        ),
        (
            device("", "2000"),
            vec![
                "power_modes",
                "need max_sm_clock_mhz and max_memory_clock_mhz",
            ],
        ),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let catalog = write(tmp.path(), &format!("d{i}.yaml"), text);
        let set = format!("catalog.devices={}", catalog.display());
        let o = run_config(
            &quickstart_text(),
            &["--set", &set, "--set", "hardware.gpu=g"],
        );
        let mut needles = needles.clone();
        let name = format!("d{i}.yaml");
        needles.push(&name);
        assert_clean_failure(&o, &needles);
    }
}

/// `hardware.threads` is refused, naming the field and the value, on a GPU, on a CPU whose catalog
/// entry gives no cpu topology, and for 0 or more threads than the CPU has.
#[test]
fn bad_threads_are_named() {
    let o = run_config(&quickstart_text(), &["--set", "hardware.threads=8"]);
    assert_clean_failure(
        &o,
        &["hardware.threads", "8", "a100 is a gpu device", "kind: cpu"],
    );
    // A CPU of one's own catalog without a cpu topology.
    let tmp = tempfile::tempdir().unwrap();
    let catalog = write(
        tmp.path(),
        "d.yaml",
        "devices:\n  c:\n    name: C\n    kind: cpu\n    peak_tflops: 1\n    memory_bandwidth_gb_s: 80\n    memory_gb: 64\n    tdp_w: 125\n",
    );
    let cpu = std::fs::read_to_string(root().join("experiments/tiny-llama-cpu.yaml")).unwrap();
    let set = format!("catalog.devices={}", catalog.display());
    let o = run_config(
        &cpu,
        &[
            "--set",
            &set,
            "--set",
            "hardware.gpu=c",
            "--set",
            "hardware.threads=4",
        ],
    );
    assert_clean_failure(
        &o,
        &["hardware.threads", "4", "gives no cpu topology for c"],
    );
    let i9 = std::fs::read_to_string(root().join("experiments/llama-cpp-13900k.yaml")).unwrap();
    for bad in ["0", "33"] {
        let set = format!("hardware.threads={bad}");
        let o = run_config(&i9, &["--set", &set]);
        assert_clean_failure(
            &o,
            &[
                "hardware.threads",
                bad,
                "must be from 1 to 32, the hardware threads of i9-13900k",
            ],
        );
    }
    let o = run_config(&i9, &["--set", "hardware.threads=-2"]);
    assert_clean_failure(&o, &["hardware.threads", "-2"]);
    let o = run_config(&i9, &["--set", "precision.dequant_flops_per_weight=-1"]);
    assert_clean_failure(&o, &["precision.dequant_flops_per_weight", "-1"]);
}

/// A catalog's cpu topology is checked when it is read: more hardware threads than two per P-core and
/// one per E-core, and a topology on a GPU, are refused naming the catalog file, field and value.
#[test]
fn a_catalog_cpu_topology_that_cannot_be_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let device = |kind: &str, threads: u32| {
        format!(
            "devices:\n  c:\n    name: C\n    kind: {kind}\n    peak_tflops: 1\n    memory_bandwidth_gb_s: 50\n    memory_gb: 32\n    tdp_w: 100\n    cpu: {{ p_cores: 4, e_cores: 4, threads: {threads}, p_core_flop_per_clock: 32, p_core_ghz: 5, e_core_flop_per_clock: 16, e_core_ghz: 4, source: test }}\n"
        )
    };
    let cases = [
        (
            device("cpu", 13),
            vec!["cpu.threads", "13", "2 p_cores + e_cores"],
        ),
        (device("gpu", 8), vec!["cpu", "gpu", "only for kind: cpu"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let catalog = write(tmp.path(), &format!("d{i}.yaml"), text);
        let set = format!("catalog.devices={}", catalog.display());
        let o = run_config(
            &quickstart_text(),
            &["--set", &set, "--set", "hardware.gpu=c"],
        );
        let mut needles = needles.clone();
        let name = format!("d{i}.yaml");
        needles.push(&name);
        assert_clean_failure(&o, &needles);
    }
}
