//! Helpers shared by the integration tests.
//!
//! The tests never write to the user's home: the fitted-table cache of in-process runs and of every
//! spawned `simwatt` is [`test_cache_dir`], under the build's target folder (spawn the binary with
//! [`simwatt_command`], or [`isolate`] any command that runs it).

use simwatt::config::{self, Scenario};
use simwatt::drivers::simulate::{self, RunOutcome};
use simwatt::drivers::Caches;
use simwatt::predictor::profile::TableCache;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The caches the in-process tests share, as the runs of one command do: the built-in catalogs parsed
/// once, and fitted tables loaded once.
pub fn caches() -> &'static Caches {
    static CACHES: OnceLock<Caches> = OnceLock::new();
    CACHES.get_or_init(|| Caches {
        catalogs: simwatt::catalog::Catalogs::new().expect("the built-in catalogs parse"),
        tables: TableCache::new(test_cache_dir()),
    })
}

/// The fitted-table cache folder of the tests (in-process and spawned): under the target folder,
/// never `~/.cache/simwatt`.
pub fn test_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("simwatt-cache")
}

/// Points a command that runs simwatt (the binary, or a script that calls it) at the tests' cache,
/// and GNU parallel, which some scripts run it under, at a state folder of the tests' own (it would
/// write `~/.parallel`).
pub fn isolate(c: &mut Command) -> &mut Command {
    let parallel_home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("parallel-home");
    let _ = std::fs::create_dir_all(&parallel_home);
    c.env("SIMWATT_CACHE_DIR", test_cache_dir())
        .env("PARALLEL_HOME", parallel_home)
}

/// The simwatt binary as a command, with the tests' cache.
pub fn simwatt_command() -> Command {
    simwatt_command_at(Path::new(env!("CARGO_BIN_EXE_simwatt")))
}

/// A copy of the simwatt binary at `bin` as a command, with the tests' cache.
pub fn simwatt_command_at(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    isolate(&mut c);
    c
}

/// The repository root (tests run with it as the working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn quickstart() -> PathBuf {
    root().join("experiments/quickstart.yaml")
}

/// Runs the simwatt binary with `args` from the repository root.
pub fn simwatt(args: &[&str]) -> Output {
    simwatt_command()
        .args(args)
        .current_dir(root())
        .output()
        .expect("the simwatt binary runs")
}

/// Called by a test whose data or tool is absent, just before it returns early. Where `required` (CI
/// sets `CI=true`: see [`in_ci`]), the absence is a failure naming `what`; elsewhere the test prints
/// `SKIPPED: <test>: <what>` and returns, so a missing input never passes silently.
///
/// The line goes to the process's standard error directly rather than through `eprintln!`, which the
/// test harness captures and shows only for failing tests: `cargo test` reports a skipped test as
/// `ok`, and this line beside it is what says that it did not run.
pub fn skip_or_fail(what: &str, required: bool) {
    if required {
        panic!("required here but absent: {what}");
    }
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {what}");
}

/// Whether the tests run under CI (`CI=true`, as CI services set it): there a test may not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts a failed run: exit code 1 (not a panic's 101), no panic message, and every `needle` in
/// the message.
pub fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

/// Loads and resolves the config at `path` as written (the error, for a config that must be refused).
pub fn resolve(path: &Path) -> simwatt::error::Result<Scenario> {
    let raw = config::load(path, &[])?;
    Scenario::resolve(&caches().catalogs, path, raw)
}

/// Loads a config with overrides and simulates it in memory.
pub fn simulate(config: &Path, overrides: &[&str]) -> RunOutcome {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let raw = config::load(config, &overrides).expect("config loads");
    let scenario = Scenario::resolve(&caches().catalogs, config, raw).expect("config resolves");
    simulate::simulate(scenario, &caches().tables, &|_| {}).expect("simulation runs")
}

/// The run's summary field `key` as a number (a panic naming it when it is absent or not a number).
pub fn summary_f64(o: &RunOutcome, key: &str) -> f64 {
    let v = serde_json::to_value(&o.summary).unwrap();
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}: {}", v[key]))
}

/// llama-bench's `tg128` as simwatt gives it for a one-stream config whose workload is a one-token
/// prompt and 128 generated tokens: 1 / the mean time per output token, tokens/s.
pub fn llama_bench_tg128(config: &Path, overrides: &[&str]) -> f64 {
    1.0 / summary_f64(&simulate(config, overrides), "tpot_mean_s")
}

/// llama-bench's `pp512` as simwatt gives it: a 512-token prompt priced as one batch and one generated
/// token, 512 / the time to first token, tokens/s.
pub fn llama_bench_pp512(config: &Path, overrides: &[&str]) -> f64 {
    let mut o = overrides.to_vec();
    o.push("workload.lengths={type: fixed, prompt: 512, output: 1}");
    512.0 / summary_f64(&simulate(config, &o), "ttft_mean_s")
}

/// The shipped config at `rel` under the repository root, which must exist: a test that reads a
/// shipped calibration fails, not skips, when it is gone.
pub fn shipped_config(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// Writes into `dir` the quick start as `c.yaml` on a device of its own catalog (`mygpu`, an A100 by
/// another name) that has no power profile, neither in the config's data directory `dir/data` (which
/// has no Vidur profiles either) nor built into the binary; returns the config's path.
pub fn config_without_power_profile(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("data/profiles/power")).unwrap();
    let devices = std::fs::read_to_string(root().join("profiles/devices.yaml"))
        .unwrap()
        .replace("\n  a100:\n", "\n  mygpu:\n");
    write(dir, "devices.yaml", &devices);
    let qs = std::fs::read_to_string(quickstart()).unwrap();
    assert!(qs.contains("gpu: a100,"));
    write(
        dir,
        "c.yaml",
        &format!(
            "{}\ndata_dir: data\ncatalog: {{devices: devices.yaml}}\n",
            qs.replace("gpu: a100,", "gpu: mygpu,")
        ),
    )
}

/// Writes `text` to a file in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Simulates a config with overrides as `simulate` does (streaming into a run folder, without plots or
/// trace) and returns the outcome and the folder's summary.md.
pub fn summary_md_of(config: &Path, overrides: &[&str]) -> (RunOutcome, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = simulate::SimulateArgs {
        config: config.to_path_buf(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        out: Some(out.clone()),
        seed: None,
        quiet: true,
        force: false,
        csv: simwatt::output::CsvPolicy::Always,
        power_interval_s: simwatt::output::DEFAULT_POWER_INTERVAL_S,
        batch_rows: Default::default(),
    };
    let opts = simwatt::report::ReportOptions {
        plots: false,
        trace: false,
    };
    let scenario = simulate::load_scenario(&args, &caches().catalogs).expect("config resolves");
    let (o, dir) = simulate::simulate_and_write(scenario, &args, &out, &opts, caches(), &())
        .expect("run folder written");
    (o, std::fs::read_to_string(dir.join("summary.md")).unwrap())
}

/// Checks a PNG: signature, IHDR, that it decodes to `w` x `h`, and that it has drawing on it (not a
/// blank page): some share of non-white pixels and several colours.
pub fn assert_valid_png(path: &Path, w: u32, h: u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{}: PNG signature",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR", "{}: IHDR first", path.display());
    assert!(
        bytes.len() > 20_000,
        "{}: only {} bytes",
        path.display(),
        bytes.len()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().expect("PNG header decodes");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG data decodes");
    assert_eq!((info.width, info.height), (w, h), "{}", path.display());
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{}: colour image", path.display());
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let mut non_white = 0usize;
    let mut colours = std::collections::HashSet::new();
    for px in pixels {
        if px[..3] != [255, 255, 255] {
            non_white += 1;
        }
        colours.insert((px[0] / 32, px[1] / 32, px[2] / 32));
    }
    let share = non_white as f64 / (w * h) as f64;
    assert!(
        share > 0.01 && share < 0.6,
        "{}: {:.1}% of pixels drawn",
        path.display(),
        share * 100.0
    );
    assert!(
        colours.len() >= 8,
        "{}: {} colours",
        path.display(),
        colours.len()
    );
}

/// Checks an SVG: parses as XML with an `<svg>` root of the given size, and holds text and shapes.
pub fn assert_valid_svg(path: &Path, w: u32, h: u32, must_say: &[&str]) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.len() > 5_000,
        "{}: only {} bytes",
        path.display(),
        text.len()
    );
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{}", path.display());
    assert_eq!(root.attribute("width"), Some(w.to_string().as_str()));
    assert_eq!(root.attribute("height"), Some(h.to_string().as_str()));
    let texts: Vec<String> = root
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect();
    for needle in must_say {
        assert!(
            texts.iter().any(|t| t.contains(needle)),
            "{}: no text `{needle}` among {texts:?}",
            path.display()
        );
    }
    let shapes = root
        .descendants()
        .filter(|n| {
            n.has_tag_name("polyline")
                || n.has_tag_name("path")
                || n.has_tag_name("circle")
                || n.has_tag_name("polygon")
        })
        .count();
    assert!(shapes > 3, "{}: {shapes} shapes", path.display());
}

/// The Arrow schema stored in a Parquet file's `ARROW:schema` metadata, as written (Polars' own reader
/// turns every string type into `Utf8View` when it reads it, so it cannot tell which was written).
pub fn written_arrow_schema(path: &Path) -> polars_arrow::datatypes::ArrowSchema {
    use base64::Engine;
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let meta = polars_parquet::read::read_metadata(&mut f)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let encoded = meta
        .key_value_metadata()
        .iter()
        .flatten()
        .find(|kv| kv.key == "ARROW:schema")
        .and_then(|kv| kv.value.clone())
        .unwrap_or_else(|| panic!("{}: no ARROW:schema metadata", path.display()));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    // An IPC message: a 0xFFFFFFFF continuation marker and a length, then the flatbuffer.
    let message = if bytes[..4] == [0xff; 4] {
        &bytes[8..]
    } else {
        &bytes[..]
    };
    polars_arrow::io::ipc::read::deserialize_schema(message)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

/// Asserts that no column of the Parquet file at `path` is written as an Arrow view type
/// (`Utf8View`, `BinaryView`), which readers older than Arrow 15 cannot open, and returns its
/// columns' types by name.
pub fn assert_no_view_types(path: &Path) -> Vec<(String, String)> {
    let schema = written_arrow_schema(path);
    let types: Vec<(String, String)> = schema
        .iter_values()
        .map(|f| (f.name.to_string(), format!("{:?}", f.dtype)))
        .collect();
    assert!(!types.is_empty(), "{}: no columns", path.display());
    for (name, t) in &types {
        assert!(
            !t.contains("View"),
            "{}: column `{name}` is written as {t}",
            path.display()
        );
    }
    types
}

/// The roofline of `m` at its catalog precision over `tp` tensor-parallel GPUs of catalog device
/// `gpu`, without fixed overheads, at efficiencies 0.6 (compute) and 0.8 (memory): what the
/// hand-checked FLOP and byte counts of the model tests are computed against.
pub fn bare_roofline(
    m: &simwatt::catalog::ModelSpec,
    gpu: &str,
    tp: u32,
) -> simwatt::predictor::roofline::Roofline {
    let c = simwatt::catalog::Catalog::builtin().unwrap();
    let (name, d) = c.device(gpu).unwrap();
    let prec = simwatt::precision::Precision::from_catalog(m.dtype_bytes, d);
    let p = simwatt::predictor::roofline::RooflineParams {
        compute_efficiency: 0.6,
        memory_efficiency: 0.8,
        layer_overhead_us: 0.0,
        iteration_overhead_ms: 0.0,
    };
    simwatt::predictor::roofline::Roofline::new(m, name, d, &prec, tp, 1, p)
}
