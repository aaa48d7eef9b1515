//! The shipped data is found wherever simwatt runs: from another directory, from an installed binary
//! (laid out as `cargo install --path . --root PREFIX` lays it out), with the data directory named by
//! the environment, and from a bare binary with no data directory at all (the power and engine
//! profiles and the regions are built in; a data directory's file wins over the built-in copy); a
//! run that would fall back to less says so, or fails under `--strict`; `validate --suite` and
//! `fit power` anchor their paths as `simulate` does.

use crate::common::{quickstart, root, simwatt_command_at, stderr, write};
use std::path::Path;
use std::process::Output;

/// The quick start's summary.json, less the wall-clock fields (which differ between any two runs).
fn summary_without_wall_time(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let mut j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let m = j.as_object_mut().unwrap();
    m.retain(|k, _| !k.starts_with("sim_") || !k.contains("wall"));
    j
}

fn run(bin: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = simwatt_command_at(bin);
    c.args(args).current_dir(cwd).env_remove("SIMWATT_DATA_DIR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the simwatt binary runs")
}

fn quickstart_in(
    bin: &Path,
    cwd: &Path,
    config: &Path,
    env: &[(&str, &str)],
    out: &Path,
) -> serde_json::Value {
    let o = run(
        bin,
        cwd,
        &[
            "simulate",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-plots",
            "--no-trace",
            "--quiet",
            "--strict",
        ],
        env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("warning"),
        "a run with the shipped data warns: {}",
        stderr(&o)
    );
    summary_without_wall_time(out)
}

#[test]
fn runs_anywhere_the_quickstart_gives_the_same_summary_from_any_directory_and_installed_binary() {
    let bin = Path::new(env!("CARGO_BIN_EXE_simwatt"));
    let tmp = tempfile::tempdir().unwrap();
    let reference = quickstart_in(bin, &root(), &quickstart(), &[], &tmp.path().join("q0"));
    assert!(reference["energy_j"].as_f64().is_some_and(|e| e > 0.0));

    // Another working directory, the repository's config.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    assert_eq!(
        quickstart_in(bin, &elsewhere, &quickstart(), &[], &tmp.path().join("q1")),
        reference
    );

    // The user's own copy of the config, outside the repository, the data named by the environment.
    let mine = write(
        &elsewhere,
        "mine.yaml",
        &std::fs::read_to_string(quickstart()).unwrap(),
    );
    let data = root();
    assert_eq!(
        quickstart_in(
            bin,
            &elsewhere,
            &mine,
            &[("SIMWATT_DATA_DIR", data.to_str().unwrap())],
            &tmp.path().join("q2"),
        ),
        reference
    );

    // An installed binary: PREFIX/bin/simwatt with the data in PREFIX/share/simwatt.
    let prefix = tmp.path().join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(prefix.join("share")).unwrap();
    let installed = prefix.join("bin/simwatt");
    std::fs::copy(bin, &installed).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root(), prefix.join("share/simwatt")).unwrap();
    assert_eq!(
        quickstart_in(&installed, &elsewhere, &mine, &[], &tmp.path().join("q3")),
        reference
    );
    let prov = std::fs::read_to_string(tmp.path().join("q3/provenance.json")).unwrap();
    assert!(prov.contains("install prefix"), "{prov}");
    // provenance.json hashes every input the run read, the Vidur profile CSVs included.
    for role in [
        "profile_mlp",
        "profile_attention",
        "power_profile",
        "region",
        "embodied",
    ] {
        assert!(
            prov.contains(&format!("\"role\": \"{role}\"")),
            "{role}: {prov}"
        );
    }
}

#[test]
fn runs_anywhere_a_run_without_shipped_data_warns_and_strict_refuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty-data");
    std::fs::create_dir_all(empty.join("profiles/power")).unwrap();
    let cfg = write(
        tmp.path(),
        "cfg.yaml",
        &format!(
            "{}\ndata_dir: empty-data\nregion: null\n",
            std::fs::read_to_string(quickstart())
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("region:"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_simwatt"));
    let args = |strict: bool| {
        let mut a = vec![
            "simulate".to_string(),
            "--config".into(),
            cfg.display().to_string(),
            "--out".into(),
            tmp.path().join("o").display().to_string(),
            "--force".into(),
            "--quiet".into(),
            "--no-plots".into(),
            "--no-trace".into(),
            "--set".into(),
            "workload.requests=8".into(),
        ];
        if strict {
            a.push("--strict".into());
        }
        a
    };
    let a: Vec<String> = args(false);
    let o = run(
        bin,
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("warning") && e.contains("roofline"), "{e}");
    // The data directory has no A100 power profile: the built-in copy prices the energy, and says so.
    assert!(!e.contains("no power profile"), "{e}");
    let built_in = power_profile_input(&tmp.path().join("o"));
    assert_eq!(built_in.0, "built-in:profiles/power/a100.yaml");
    assert_eq!(
        built_in.1,
        sha256_of(&root().join("profiles/power/a100.yaml"))
    );
    let energy = summary_without_wall_time(&tmp.path().join("o"))["energy_j"]
        .as_f64()
        .unwrap();
    assert!(energy > 0.0);
    // A profile in the data directory wins over the built-in one.
    let shipped = std::fs::read_to_string(root().join("profiles/power/a100.yaml")).unwrap();
    let mine = shipped.replace("\nloaded_idle_w: 75.4\n", "\nloaded_idle_w: 200.0\n");
    assert_ne!(mine, shipped);
    let mine = write(&empty.join("profiles/power"), "a100.yaml", &mine);
    let o = run(
        bin,
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (path, sha) = power_profile_input(&tmp.path().join("o"));
    assert_eq!(Path::new(&path), mine);
    assert_eq!(sha, sha256_of(&mine));
    let overridden = summary_without_wall_time(&tmp.path().join("o"))["energy_j"]
        .as_f64()
        .unwrap();
    assert!(overridden > energy, "{overridden} vs {energy}");
    let a: Vec<String> = args(true);
    let o = run(
        bin,
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--strict"), "{}", stderr(&o));
}

/// The power profile's (path, sha256) in a run folder's provenance.json.
fn power_profile_input(dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("provenance.json")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let p = j["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["role"] == "power_profile")
        .unwrap_or_else(|| panic!("no power_profile input: {text}"));
    (
        p["path"].as_str().unwrap().to_string(),
        p["sha256"].as_str().unwrap().to_string(),
    )
}

fn sha256_of(p: &Path) -> String {
    simwatt::digest::sha256_hex(&std::fs::read(p).unwrap())
}

#[test]
fn runs_anywhere_a_bare_binary_with_no_data_directory_computes_energy_from_the_built_in_data() {
    // A copy of the binary alone in an empty folder, the search for a data directory turned off (else
    // it would find the source tree it was built from): the power profile, the engine profile, the
    // region with its hourly series and the embodied-carbon table come from the binary, and give the
    // numbers the repository's files give.
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    let bin = bare.join("simwatt");
    std::fs::copy(env!("CARGO_BIN_EXE_simwatt"), &bin).unwrap();
    let cfg = write(
        &bare,
        "cfg.yaml",
        &std::fs::read_to_string(quickstart()).unwrap(),
    );
    let args = |out: &Path| {
        vec![
            "simulate".to_string(),
            "--config".into(),
            cfg.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--quiet".into(),
            "--no-plots".into(),
            "--no-trace".into(),
            "--set".into(),
            "workload.requests=16".into(),
            "--set".into(),
            "engine={name: vllm, version: \"0.11\"}".into(),
            "--set".into(),
            "energy.start_time=2024-03-01T00:00:00Z".into(),
            "--set".into(),
            "predictor={type: roofline}".into(),
        ]
    };
    let strs = |v: &[String]| v.iter().map(String::to_string).collect::<Vec<_>>();
    let bare_out = bare.join("run");
    let a = strs(&args(&bare_out));
    let o = run(
        &bin,
        &bare,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("SIMWATT_DATA_DIR", "none")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let prov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bare_out.join("provenance.json")).unwrap())
            .unwrap();
    assert!(prov["data_dir"].is_null(), "{prov}");
    let inputs = prov["inputs"].as_array().unwrap();
    for (role, file) in [
        ("power_profile", "profiles/power/a100.yaml"),
        ("engine_profile", "profiles/engine/vllm-0.11.yaml"),
        ("region", "regions/aws-us-east-1.yaml"),
        ("region", "regions/hourly/US-MIDA-PJM_2024.csv"),
        ("embodied", "regions/embodied.yaml"),
    ] {
        let sha = sha256_of(&root().join(file));
        assert!(
            inputs.iter().any(|i| i["role"] == role
                && i["path"] == format!("built-in:{file}")
                && i["sha256"] == sha),
            "{role} {file}: {prov}"
        );
    }
    let bare_summary = summary_without_wall_time(&bare_out);
    assert!(bare_summary["energy_j"].as_f64().is_some_and(|e| e > 0.0));
    assert_eq!(
        bare_summary["regions"][0]["carbon_intensity_kind"],
        "hourly"
    );

    // The same config beside the repository's data (with the roofline too, so only where the data
    // came from differs) gives the same energy, carbon, cost and water.
    let cfg_repo = write(
        tmp.path(),
        "repo.yaml",
        &format!(
            "{}\ndata_dir: {}\n",
            std::fs::read_to_string(quickstart()).unwrap(),
            root().display()
        ),
    );
    let repo_out = tmp.path().join("repo-run");
    let mut a = strs(&args(&repo_out));
    a[2] = cfg_repo.display().to_string();
    let o = run(
        &bin,
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let repo_summary = summary_without_wall_time(&repo_out);
    for key in ["energy_j", "carbon_g", "regions", "ttft_p90_s"] {
        assert!(!bare_summary[key].is_null(), "{key}");
        assert_eq!(bare_summary[key], repo_summary[key], "{key}");
    }
}

#[test]
fn runs_anywhere_validate_suite_anchors_case_paths_from_another_directory() {
    // A suite outside the repository whose case names the measured data relative to the data
    // directory, run from a third folder: the data is found (it used to be looked up in the current
    // directory only).
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("suite");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let case =
        std::fs::read_to_string(root().join("experiments/validation/argonne-a100-llama-2-7b.yaml"))
            .unwrap();
    assert!(case.contains("path: profiles/power/measured/argonne/power_results.csv"));
    write(&suite, "argonne.yaml", &case);
    let bin = Path::new(env!("CARGO_BIN_EXE_simwatt"));
    let out = tmp.path().join("v");
    let o = run(
        bin,
        &elsewhere,
        &[
            "validate",
            "--suite",
            suite.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-plots",
            "--quiet",
        ],
        &[("SIMWATT_DATA_DIR", root().to_str().unwrap())],
    );
    // A non-optional case whose data is absent is an error, so success means the data was read.
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("validation.md")).unwrap();
    assert!(md.contains("power_results.csv"), "{md}");
}
