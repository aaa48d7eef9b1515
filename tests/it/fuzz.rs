//! Property tests over arbitrary input to the config, CSV, trace and nvidia-smi readers, and over the
//! model and device catalogs, region files and sweep files with any number put in any numeric field:
//! whatever the bytes, they return a value or an error, never a panic (and a catalog that loads runs a
//! few requests to a clean end). CI runs the default number of cases; the fuzzing campaign reported
//! in docs/robustness.md ran them with PROPTEST_CASES=1000000 (see scripts/fuzz.sh).

use proptest::prelude::*;
use simwatt::config;
use std::path::Path;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// YAML-looking text: keys of the real config, punctuation and numbers in any order.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("seed".to_string()),
        Just("model".to_string()),
        Just("hardware".to_string()),
        Just("scheduler".to_string()),
        Just("workload".to_string()),
        Just("arrival".to_string()),
        Just("lengths".to_string()),
        Just("type".to_string()),
        Just("poisson".to_string()),
        Just("rate".to_string()),
        Just("policy".to_string()),
        Just("vllm".to_string()),
        Just("requests".to_string()),
        Just(": ".to_string()),
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just("- ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!".to_string()),
        Just(".nan".to_string()),
        Just("-1e308".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

fn parse_config(text: &str, overrides: &[String]) {
    let tmp = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(tmp.path(), text).unwrap();
    if let Ok(raw) = config::load(tmp.path(), overrides) {
        let _ = config::Scenario::resolve(
            &crate::common::caches().catalogs,
            Path::new("fuzz.yaml"),
            raw,
        );
    }
}

/// A CSV row: numbers (ordinary, huge, negative, NaN-like), text and empty cells, quotes.
fn csv_row() -> impl Strategy<Value = String> {
    let cell = prop_oneof![
        any::<u32>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        (0.0..1e4f64).prop_map(|v| format!("{v:.3}")),
        Just("".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-1".to_string()),
        Just("\"1,2\"".to_string()),
        "[-0-9a-zA-Z.eE ]{0,8}",
    ];
    prop::collection::vec(cell, 0..5).prop_map(|v| v.join(","))
}

/// An nvidia-smi row: timestamps well- and ill-formed, GPU index, power with and without a unit.
fn smi_row() -> impl Strategy<Value = String> {
    let ts = prop_oneof![
        (0u32..60, 0u32..1000).prop_map(|(s, ms)| format!("2024/05/01 10:00:{s:02}.{ms:03}")),
        Just("2024/13/45 99:99:99.999".to_string()),
        "[0-9/:. ]{0,24}",
    ];
    let power = prop_oneof![
        (0.0..1000.0f64).prop_map(|v| format!("{v:.2} W")),
        (0.0..1000.0f64).prop_map(|v| format!("{v:.2}")),
        any::<f64>().prop_map(|v| v.to_string()),
        Just("[N/A]".to_string()),
        Just("".to_string()),
    ];
    (ts, 0u32..3, power, 0u32..120).prop_map(|(t, i, p, u)| format!("{t}, {i}, {p}, {u} %"))
}

/// A number as a hostile file might hold it: ordinary, zero, negative, huge, tiny, NaN, infinite.
fn hostile_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        (0.0..1e4f64).prop_map(|v| format!("{v:.3}")),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e308".to_string()),
        Just("1e-300".to_string()),
        Just(".nan".to_string()),
        Just(".inf".to_string()),
        Just("-.inf".to_string()),
        Just("4294967296".to_string()),
    ]
}

/// `text` with its `which`-th number written after a `: ` (modulo how many it has) replaced by `with`.
fn replace_number(text: &str, which: usize, with: &str) -> String {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b':' && b[i + 1] == b' ' {
            let start = i + 2;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_digit() || b".-+eE".contains(&b[j])) {
                j += 1;
            }
            if j > start && b[start..j].iter().any(|c| c.is_ascii_digit()) {
                spans.push((start, j));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    if spans.is_empty() {
        return text.to_string();
    }
    let (a, z) = spans[which % spans.len()];
    format!("{}{with}{}", &text[..a], &text[z..])
}

/// Loads a catalog pair and, when it loads, simulates four requests of the quickstart on the roofline
/// (no profile fit) with `model` and `gpu` from it: an error is fine, a panic or hang is not.
fn run_with_catalog(models: Option<&Path>, devices: Option<&Path>, model: &str, gpu: &str) {
    if simwatt::catalog::Catalog::load(models, devices).is_err() {
        return;
    }
    let mut overrides = vec![
        format!("model={model}"),
        format!("hardware.gpu={gpu}"),
        "workload.requests=4".to_string(),
        "predictor={type: roofline}".to_string(),
        "region=null".to_string(),
    ];
    if let Some(m) = models {
        overrides.push(format!("catalog.models={}", m.display()));
    }
    if let Some(d) = devices {
        overrides.push(format!("catalog.devices={}", d.display()));
    }
    let Ok(raw) = config::load(&crate::common::quickstart(), &overrides) else {
        return;
    };
    let catalogs = &crate::common::caches().catalogs;
    if let Ok(s) = config::Scenario::resolve(catalogs, &crate::common::quickstart(), raw) {
        let _ = simwatt::drivers::simulate::simulate_summary(s, &crate::common::caches().tables);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn config_reader_never_panics_on_yamlish_text(text in yamlish()) {
        parse_config(&text, &[]);
    }

    #[test]
    fn config_reader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        parse_config(&String::from_utf8_lossy(&bytes), &[]);
    }

    #[test]
    fn overrides_never_panic_on_the_quickstart(key in "[a-z_.]{0,30}", value in yamlish()) {
        let text = std::fs::read_to_string(crate::common::quickstart()).unwrap();
        parse_config(&text, &[format!("{key}={value}")]);
    }

    #[test]
    fn trace_reader_never_panics(rows in prop::collection::vec(csv_row(), 0..20), header in 0usize..3) {
        // The real trace path: CSV parsing, column checks, sorting checks and length limits.
        let headers = [
            "arrived_at,num_prefill_tokens,num_decode_tokens",
            "arrived_at,num_prefill_tokens",
            "num_prefill_tokens,num_decode_tokens",
        ];
        let tmp = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        std::fs::write(tmp.path(), format!("{}\n{}", headers[header], rows.join("\n"))).unwrap();
        let w = simwatt::config::WorkloadConfig {
            requests: None,
            arrival: simwatt::config::ArrivalConfig::Trace { time_scale: 1.0 },
            lengths: simwatt::config::LengthsConfig::Trace,
            trace: Some(tmp.path().to_path_buf()),
            trace_format: Default::default(),
            trace_model: None,
            trace_skip_failed: false,
            shared_prefix: None,
            sessions: None,
            deferrable: None,
        };
        let _ = simwatt::workload::generate(Path::new("fuzz.yaml"), &w, 1);
    }

    #[test]
    fn nvidia_smi_reader_never_panics(rows in prop::collection::vec(smi_row(), 0..20)) {
        let tmp = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        let text = format!("timestamp, index, power.draw [W], utilization.gpu [%]\n{}", rows.join("\n"));
        std::fs::write(tmp.path(), text).unwrap();
        let _ = simwatt::measured::logs::read_nvidia_smi(tmp.path(), None);
        let _ = simwatt::measured::logs::read_nvidia_smi(tmp.path(), Some(0.1));
    }

    #[test]
    fn csv_reader_never_panics(rows in prop::collection::vec("[-0-9a-zA-Z.,eE\"\\n ]{0,40}", 0..20)) {
        let tmp = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        let text = format!("arrived_at,num_prefill_tokens,num_decode_tokens\n{}", rows.join("\n"));
        std::fs::write(tmp.path(), text).unwrap();
        if let Ok(t) = simwatt::csvio::CsvTable::read(tmp.path()) {
            let _ = t.f64_column("arrived_at");
            let _ = t.u32_column("num_prefill_tokens", 1);
            let _ = t.f64_column_or("num_decode_tokens", 0.0);
        }
    }

    #[test]
    fn model_catalog_with_any_number_anywhere_never_panics(which in 0usize..400, n in hostile_number()) {
        let text = std::fs::read_to_string(crate::common::root().join("profiles/models.yaml")).unwrap();
        let tmp = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::fs::write(tmp.path(), replace_number(&text, which, &n)).unwrap();
        run_with_catalog(Some(tmp.path()), None, "meta-llama/Llama-2-7b-hf", "a100");
    }

    #[test]
    fn device_catalog_with_any_number_anywhere_never_panics(which in 0usize..400, n in hostile_number()) {
        let text = std::fs::read_to_string(crate::common::root().join("profiles/devices.yaml")).unwrap();
        let tmp = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::fs::write(tmp.path(), replace_number(&text, which, &n)).unwrap();
        run_with_catalog(None, Some(tmp.path()), "meta-llama/Llama-2-7b-hf", "a100");
    }

    #[test]
    fn region_file_with_any_number_anywhere_never_panics(which in 0usize..20, n in hostile_number()) {
        let text = std::fs::read_to_string(crate::common::root().join("regions/aws-us-east-1.yaml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aws-us-east-1.yaml"), replace_number(&text, which, &n)).unwrap();
        let _ = simwatt::config::region::load_region(dir.path(), "aws-us-east-1");
    }

    #[test]
    fn sweep_file_of_yamlish_axes_never_panics(axes in yamlish(), n in hostile_number()) {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "base: {}\nreplicates: {n}\naxes:\n  {axes}\n",
            crate::common::quickstart().display()
        );
        let p = dir.path().join("sweep.yaml");
        std::fs::write(&p, text).unwrap();
        let _ = simwatt::drivers::sweep::Plan::load(&p, &crate::common::caches().catalogs);
    }
}
