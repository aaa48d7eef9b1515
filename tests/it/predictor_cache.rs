//! The fitted execution-time tables are the same whether they were just fitted or read back from the
//! on-disk cache.

use crate::common::*;
use simwatt::config::{self, PredictorConfig, Scenario};
use simwatt::drivers::simulate;
use simwatt::predictor::profile::FittedTables;

/// Regression: the cache is JSON, and serde_json's default float parser is off by one ulp on about one
/// value in eight of these tables (e.g. 0.009882663690476199 read back as 0.0098826636904762). A run
/// that loaded the tables could then differ from the run that fitted them, so a sweep's results
/// depended on which process fitted first. serde_json's `float_roundtrip` feature parses exactly.
#[test]
fn fitted_tables_survive_the_json_cache_bit_for_bit() {
    let raw = config::load(&quickstart(), &[]).unwrap();
    let s = Scenario::resolve(&quickstart(), raw).unwrap();
    let PredictorConfig::Auto(p) = &s.predictor else {
        panic!("the quickstart uses the auto predictor");
    };
    let mut p = p.clone();
    p.cache = false;
    p.dir = root().join(&p.dir);
    let src = simulate::profile_sources(&s, &p).expect("A100 profiles ship");
    let fresh = simulate::fit_for(&s, &src, &p).unwrap();
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
