//! The shipped data is found wherever simwatt runs: from another directory, from an installed binary
//! (laid out as `cargo install --path . --root PREFIX` lays it out), with the data directory named by
//! the environment; and a run that would fall back to less says so, or fails under `--strict`.

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
    assert!(
        e.contains("warning") && e.contains("roofline") && e.contains("no power profile"),
        "{e}"
    );
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
