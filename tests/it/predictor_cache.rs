//! The caches a command shares between its runs: the fitted execution-time tables are the same whether
//! they were just fitted or read back from the on-disk cache, a sweep fits each once, and scenarios
//! share the parsed built-in catalogs.

use crate::common::*;
use simwatt::catalog::Catalogs;
use simwatt::config::{self, PredictorConfig, Scenario};
use simwatt::drivers::simulate;
use simwatt::drivers::sweep::shard::{run_specs, Shard};
use simwatt::drivers::sweep::spec::Plan;
use simwatt::drivers::Caches;
use simwatt::predictor::profile::{FittedTables, TableCache};
use std::sync::Arc;

/// Regression: the cache is JSON, and serde_json's default float parser is off by one ulp on about one
/// value in eight of these tables (e.g. 0.009882663690476199 read back as 0.0098826636904762). A run
/// that loaded the tables could then differ from the run that fitted them, so a sweep's results
/// depended on which process fitted first. serde_json's `float_roundtrip` feature parses exactly.
#[test]
fn fitted_tables_survive_the_json_cache_bit_for_bit() {
    let raw = config::load(&quickstart(), &[]).unwrap();
    let s = Scenario::resolve(&caches().catalogs, &quickstart(), raw).unwrap();
    let PredictorConfig::Auto(p) = &s.predictor else {
        panic!("the quickstart uses the auto predictor");
    };
    let mut p = p.clone();
    p.cache = false;
    p.dir = root().join(&p.dir);
    let src = simulate::profile_sources(&s, &p).expect("A100 profiles ship");
    let fresh = simulate::fit_for(&s, &src, &p, &caches().tables).unwrap();
    assert_eq!(
        fresh.cpu_overheads.len(),
        5,
        "the A100 CPU-overhead profile covers Llama-2-7B TP 1"
    );
    let text = serde_json::to_string(&fresh).unwrap();
    let back: FittedTables = serde_json::from_str(&text).unwrap();
    let again = serde_json::to_string(&back).unwrap();
    assert!(
        text == again,
        "a float changed on its way through the JSON cache"
    );
    let exact: f64 = "0.009882663690476199".parse().unwrap();
    let json: f64 = serde_json::from_str("0.009882663690476199").unwrap();
    assert_eq!(exact.to_bits(), json.to_bits());
}

/// Scenarios resolved with one `Catalogs` share its built-in catalogs instead of each parsing or copying
/// them; a config that names its own catalog file gets catalogs of its own.
#[test]
fn scenarios_resolved_with_one_catalogs_share_it() {
    let catalogs = Catalogs::new().unwrap();
    let resolve = |set: &[String]| {
        let raw = config::load(&quickstart(), set).unwrap();
        Scenario::resolve(&catalogs, &quickstart(), raw).unwrap()
    };
    let a = resolve(&[]);
    let b = resolve(&["hardware.gpu=h100".to_string()]);
    assert!(Arc::ptr_eq(&a.catalog, &b.catalog));
    assert!(Arc::ptr_eq(&a.catalog, catalogs.builtin()));
    assert_eq!(b.device_name, "h100");
    let devices = root().join("profiles/devices.yaml");
    let own = resolve(&[format!("catalog.devices={}", devices.display())]);
    assert!(!Arc::ptr_eq(&own.catalog, catalogs.builtin()));
    assert_eq!(own.catalog.devices_origin, devices.display().to_string());
}

/// A sweep with a fresh table cache fits each distinct (device, model, TP) once, however many runs
/// need it; a second sweep with the same cache fits nothing, and a fresh cache over the same folder
/// reads the tables back from disk instead of fitting them.
#[test]
fn a_sweep_with_a_fresh_cache_fits_each_table_once() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = write(
        tmp.path(),
        "sweep.yaml",
        &format!(
            "base: {}\nset:\n  workload.requests: 8\naxes:\n  hardware.gpu: [a100, h100]\n  \
             scheduler.policy: [vllm, sarathi]\nreplicates: 2\n",
            quickstart().display()
        ),
    );
    let caches = Caches {
        catalogs: Catalogs::new().unwrap(),
        tables: TableCache::new(tmp.path().join("cache")),
    };
    let plan = Plan::load(&sweep, &caches.catalogs).unwrap();
    let specs = Shard::ALL.runs(&plan);
    assert_eq!(specs.len(), 8);
    let records = run_specs(&plan, &caches, &specs, 2, &|| {}).unwrap();
    assert!(records.iter().all(|r| r.status == "ok"), "{records:?}");
    assert_eq!(caches.tables.fits(), 2, "one fit per GPU");
    run_specs(&plan, &caches, &specs, 2, &|| {}).unwrap();
    assert_eq!(
        caches.tables.fits(),
        2,
        "the second sweep takes the fitted tables"
    );
    let cached = std::fs::read_dir(tmp.path().join("cache")).unwrap().count();
    assert_eq!(cached, 2, "one cache file per fit");
    let later = Caches {
        catalogs: Catalogs::new().unwrap(),
        tables: TableCache::new(tmp.path().join("cache")),
    };
    let again = run_specs(&plan, &later, &specs, 2, &|| {}).unwrap();
    assert_eq!(later.tables.fits(), 0, "the tables come from disk");
    let summaries = |r: &[simwatt::drivers::sweep::table::RunRecord]| {
        r.iter().map(|x| x.summary_json.clone()).collect::<Vec<_>>()
    };
    let strip = |v: Vec<Option<String>>| -> Vec<serde_json::Value> {
        v.into_iter()
            .map(|s| {
                let mut j: serde_json::Value = serde_json::from_str(&s.unwrap()).unwrap();
                for k in [
                    "sim_wall_s",
                    "sim_requests_per_wall_s",
                    "sim_events_per_wall_s",
                ] {
                    j.as_object_mut().unwrap().remove(k);
                }
                j
            })
            .collect()
    };
    assert_eq!(strip(summaries(&records)), strip(summaries(&again)));
}

#[test]
fn test_harness_keeps_the_fitted_table_cache_out_of_the_home_directory() {
    // `cargo test` used to fill the user's ~/.cache/simwatt: the binary the tests spawn caches its
    // fitted tables in the tests' own folder instead, whatever HOME says.
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let o = simwatt_command()
        .args(["simulate", "--config"])
        .arg(quickstart())
        .args(["--out"])
        .arg(&out)
        .args([
            "--quiet",
            "--no-plots",
            "--no-trace",
            "--set",
            "workload.requests=4",
        ])
        .env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let in_home: Vec<_> = std::fs::read_dir(home.path()).unwrap().collect();
    assert!(in_home.is_empty(), "written under HOME: {in_home:?}");
    let cached = std::fs::read_dir(test_cache_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("latency-"));
    assert!(cached, "no fitted table in {}", test_cache_dir().display());
}
