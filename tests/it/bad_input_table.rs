//! The bad-input table: every malformed config, trace, profile, power profile and region file, and
//! every bad sweep or job-script flag below, must end with exit code 1, a message naming the file,
//! field, flag or column and the bad value, no panic, and no output folder.

use crate::common::*;

/// One malformed input: files to create (name, text; `{qs}` is replaced by the quickstart config's
/// text), the command (`{d}` is the case's folder), and words the error must contain.
struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    needles: &'static [&'static str],
}

const TRACE_OK: &str = "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,5\n1.0,20,5\n";

fn sim(extra: &'static [&'static str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "simulate",
        "-c",
        "{d}/c.yaml",
        "-o",
        "{d}/out",
        "-q",
        "--no-plots",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

macro_rules! case {
    ($name:expr, [$($f:expr),*], $args:expr, [$($n:expr),*]) => {
        Case { name: $name, files: &[$($f),*], args: $args, needles: &[$($n),*] }
    };
}

const QS: (&str, &str) = ("c.yaml", "{qs}");
/// The partial-offload example (llama.cpp -ngl on an RTX 3060 and an i9-13900K host).
const NGL: (&str, &str) = (
    "c.yaml",
    include_str!("../../experiments/llama-cpp-offload-3060.yaml"),
);
/// The real attention profile, so a profile case fails on its mlp.csv alone.
const ATTN: (&str, &str) = ("p/attention/a100/attention.csv", "{attention}");

fn cases() -> Vec<Case> {
    vec![
        // Configs.
        case!("yaml syntax", [("c.yaml", "seed: [1, 2\n")], &[], ["c.yaml", "invalid YAML"]),
        case!("top level not a mapping", [("c.yaml", "- 1\n- 2\n")], &[], ["c.yaml", "mapping"]),
        case!("unknown top-level key", [QS], &["--set", "colour=blue"], ["colour", "unknown field"]),
        case!("unknown nested key", [QS], &["--set", "scheduler.max_seqs=4"], ["scheduler", "max_seqs"]),
        case!("seed not a number", [QS], &["--set", "seed=abc"], ["seed", "abc"]),
        case!("fractional request count", [QS], &["--set", "workload.requests=1.5"], ["workload.requests", "1.5"]),
        case!("negative rate", [QS], &["--set", "workload.arrival.rate=-1"], ["workload.arrival.rate", "-1"]),
        case!("zero rate", [QS], &["--set", "workload.arrival.rate=0"], ["workload.arrival.rate", "= 0"]),
        case!("NaN rate", [QS], &["--set", "workload.arrival.rate=.nan"], ["workload.arrival.rate", "NaN"]),
        case!("gamma cv zero", [QS], &["--set", "workload.arrival={type: gamma, rate: 1, cv: 0}"], ["workload.arrival.cv", "= 0"]),
        case!("empty prompt range", [QS], &["--set", "workload.lengths={type: uniform, prompt: [9, 3], output: [1, 2]}"], ["workload.lengths.prompt", "[9, 3]"]),
        case!("zero output tokens", [QS], &["--set", "workload.lengths={type: fixed, prompt: 5, output: 0}"], ["workload.lengths.output", "= 0"]),
        case!("zipf min above max", [QS], &["--set", "workload.lengths={type: zipf, min: 90, max: 10, theta: 1}"], ["workload.lengths.max", "10"]),
        case!("zipf negative theta", [QS], &["--set", "workload.lengths={type: zipf, min: 10, max: 90, theta: -1}"], ["workload.lengths.theta", "-1"]),
        case!("TP not dividing heads", [QS], &["--set", "hardware.tensor_parallel=3"], ["hardware.tensor_parallel", "= 3", "heads"]),
        case!("PP not dividing layers", [QS], &["--set", "hardware.pipeline_stages=5"], ["hardware.pipeline_stages", "= 5", "layers"]),
        case!("zero replicas", [QS], &["--set", "hardware.replicas=0"], ["hardware.replicas", "= 0"]),
        case!("zero data-parallel ranks", [QS], &["--set", "hardware.data_parallel=0"], ["hardware.data_parallel", "= 0"]),
        case!("data parallelism without experts to spread", [QS], &["--set", "hardware.data_parallel=2"], ["hardware.data_parallel", "= 2", "expert_parallel"]),
        case!("prefill pool as large as the cluster", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=2", "--set", "hardware.kv_link=nvlink4"], ["hardware.prefill_replicas", "= 2", "less than"]),
        case!("disaggregation without a link", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=1"], ["hardware.kv_link", "needed"]),
        case!("unknown link preset", [QS], &["--set", "hardware.kv_link=smoke_signals"], ["hardware.kv_link", "smoke_signals", "presets"]),
        case!("zero link bandwidth", [QS], &["--set", "hardware.kv_link.bandwidth_gb_s=0"], ["hardware.kv_link.bandwidth_gb_s", "= 0"]),
        case!("negative link latency", [QS], &["--set", "hardware.kv_link.bandwidth_gb_s=50", "--set", "hardware.kv_link.latency_us=-1"], ["hardware.kv_link.latency_us", "= -1"]),
        case!("disaggregation under static batching", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=1", "--set", "hardware.kv_link=nvlink4", "--set", "scheduler.policy=faster_transformer"], ["hardware.prefill_replicas", "faster_transformer"]),
        case!("expert parallelism on a dense model", [QS], &["--set", "hardware.tensor_parallel=2", "--set", "hardware.expert_parallel=true"], ["hardware.expert_parallel", "not a mixture-of-experts"]),
        case!("expert parallelism not dividing the experts", [QS], &["--set", "model=mistralai/Mixtral-8x7B-v0.1", "--set", "hardware.gpu=h100", "--set", "hardware.tensor_parallel=16", "--set", "hardware.expert_parallel=true"], ["hardware.expert_parallel", "8 experts", "= 16"]),
        case!("battery max_soc below min_soc", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, battery: {capacity_kwh: 2, min_soc: 0.5, max_soc: 0.4, initial_soc: 0.5, max_charge_kw: 1, max_discharge_kw: 1}}"], ["microgrid.battery.max_soc", "= 0.4", "above battery.min_soc"]),
        case!("carbon threshold without its dispatch", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, carbon_threshold_g_per_kwh: 200}"], ["microgrid.carbon_threshold_g_per_kwh", "= 200", "carbon_threshold"]),
        case!("price threshold without its dispatch", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, price_threshold_usd_per_kwh: 0.3}"], ["microgrid.price_threshold_usd_per_kwh", "= 0.3", "price_threshold"]),
        case!("price threshold dispatch without its threshold", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, battery: {capacity_kwh: 2, max_charge_kw: 1, max_discharge_kw: 1}, dispatch: price_threshold}"], ["microgrid.price_threshold_usd_per_kwh", "absent", "price_threshold"]),
        case!("price threshold not a finite number", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, battery: {capacity_kwh: 2, max_charge_kw: 1, max_discharge_kw: 1}, dispatch: price_threshold, price_threshold_usd_per_kwh: .inf}"], ["microgrid.price_threshold_usd_per_kwh", "inf", "USD/kWh"]),
        case!("price threshold dispatch without a battery", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, dispatch: price_threshold, price_threshold_usd_per_kwh: 0.2}"], ["microgrid.dispatch", "price_threshold", "microgrid.battery"]),
        case!("price threshold dispatch in a region without a price", [QS], &["--set", "region=aws-eu-west-1", "--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, battery: {capacity_kwh: 2, max_charge_kw: 1, max_discharge_kw: 1}, dispatch: price_threshold, price_threshold_usd_per_kwh: 0.2}"], ["microgrid.dispatch", "price_threshold", "aws-eu-west-1", "price"]),
        case!("negative solar embodied carbon", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1, embodied_kg_per_kwp: -5}}"], ["microgrid.solar.embodied_kg_per_kwp", "-5", "kgCO2e"]),
        case!("zero solar lifetime", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1, lifetime_years: 0}}"], ["microgrid.solar.lifetime_years", "= 0", "years"]),
        case!("battery embodied carbon not a number", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, battery: {capacity_kwh: 2, max_charge_kw: 1, max_discharge_kw: 1, embodied_kg_per_kwh: .nan}}"], ["microgrid.battery.embodied_kg_per_kwh", "NaN"]),
        case!("negative battery lifetime", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1}, battery: {capacity_kwh: 2, max_charge_kw: 1, max_discharge_kw: 1, lifetime_years: -15}}"], ["microgrid.battery.lifetime_years", "-15", "years"]),
        case!("deferrable share above 1", [QS], &["--set", "workload.deferrable={fraction: 1.5, deadline_s: 3600}"], ["workload.deferrable.fraction", "1.5", "from 0 to 1"]),
        case!("deferrable deadline of zero", [QS], &["--set", "workload.deferrable={fraction: 0.5, deadline_s: 0}"], ["workload.deferrable.deadline_s", "= 0"]),
        case!("deferrable sessions", [QS], &["--set", "workload.sessions={turns: [2, 3], think_s: 5}", "--set", "workload.deferrable={fraction: 0.5, deadline_s: 3600}"], ["workload.deferrable", "workload.sessions"]),
        case!("carbon-aware holding with nothing deferrable", [QS], &["--set", "carbon_aware={max_release_rate: 1}"], ["carbon_aware", "workload.deferrable"]),
        case!("hold release rate of zero", [QS], &["--set", "workload.deferrable={fraction: 0.5, deadline_s: 3600}", "--set", "carbon_aware={max_release_rate: 0}"], ["carbon_aware.max_release_rate", "= 0"]),
        case!("hold margin as long as the deadline", [QS], &["--set", "workload.deferrable={fraction: 0.5, deadline_s: 3600}", "--set", "carbon_aware={max_release_rate: 1, margin_s: 3600}"], ["carbon_aware.margin_s", "= 3600", "deadline_s (3600)"]),
        case!("hold by solar without a microgrid", [QS], &["--set", "workload.deferrable={fraction: 0.5, deadline_s: 3600}", "--set", "carbon_aware={signal: solar, max_release_rate: 1}"], ["carbon_aware.signal", "solar", "microgrid"]),
        case!("hold by price in a region without prices", [QS], &["--set", "workload.deferrable={fraction: 0.5, deadline_s: 3600}", "--set", "carbon_aware={signal: price, max_release_rate: 1}"], ["carbon_aware.signal", "price", "aws-us-east-1", "hourly series"]),
        case!("hold by carbon in a region of constant intensity", [QS], &["--set", "region=aws-us-west-2", "--set", "workload.deferrable={fraction: 0.5, deadline_s: 3600}", "--set", "carbon_aware={max_release_rate: 1}"], ["carbon_aware.signal", "grid_carbon", "aws-us-west-2", "hourly series"]),
        case!("deadlines past the hourly series", [QS], &["--set", "energy.start_time=2024-12-31T20:00:00Z", "--set", "workload.deferrable={fraction: 0.5, deadline_s: 86400}", "--set", "carbon_aware={max_release_rate: 1}"], ["workload.deferrable.deadline_s", "86400", "US-MIDA-PJM_2024.csv", "outside the series"]),
        case!("carbon power cap rising with carbon", [QS], &["--set", "carbon_power_cap={clean_w: 250, dirty_w: 300, clean_g_per_kwh: 100, dirty_g_per_kwh: 300}"], ["carbon_power_cap.dirty_w", "= 300", "at most carbon_power_cap.clean_w (250 W)"]),
        case!("carbon power cap beside a fixed one", [QS], &["--set", "hardware.power_cap_w=300", "--set", "carbon_power_cap={clean_w: 400, dirty_w: 250, clean_g_per_kwh: 100, dirty_g_per_kwh: 300}"], ["hardware.power_cap_w", "carbon_power_cap"]),
        case!("carbon power cap below idle", [QS], &["--set", "carbon_power_cap={clean_w: 400, dirty_w: 10, clean_g_per_kwh: 100, dirty_g_per_kwh: 300}"], ["carbon_power_cap.dirty_w", "= 10", "no clock brings"]),
        case!("carbon power cap in a region of constant intensity", [QS], &["--set", "region=aws-us-west-2", "--set", "carbon_power_cap={clean_w: 400, dirty_w: 250, clean_g_per_kwh: 100, dirty_g_per_kwh: 300}"], ["carbon_power_cap", "aws-us-west-2", "hourly"]),
        case!("battery of zero capacity", [QS], &["--set", "edge.battery={capacity_wh: 0}"], ["edge.battery.capacity_wh", "= 0", "watt-hours"]),
        case!("battery converter efficiency above 1", [QS], &["--set", "edge.battery={capacity_wh: 50, converter_efficiency: 1.2}"], ["edge.battery.converter_efficiency", "1.2"]),
        case!("throttle limit below ambient", [QS], &["--set", "edge.thermal={ambient_c: 30, r_th_c_per_w: 1, tau_s: 60, throttle_c: 20}"], ["edge.thermal.throttle_c", "= 20", "ambient_c (30)"]),
        case!("thermal time constant of NaN", [QS], &["--set", "edge.thermal={ambient_c: 25, r_th_c_per_w: 1, tau_s: .nan, throttle_c: 90}"], ["edge.thermal.tau_s", "NaN"]),
        case!("unknown edge field", [QS], &["--set", "edge.battery={capacity_wh: 50, usable: 0.8}"], ["edge.battery", "usable"]),
        case!("accounting window of zero", [QS], &["--set", "energy.min_span_s=0"], ["energy.min_span_s", "= 0"]),
        case!("solar site not in the file", [QS], &["--set", "microgrid={solar: {site: Atlantis, peak_kw: 1}}"], ["solcast2022_global_actual.csv", "Atlantis", "San Francisco"]),
        case!("solar file and weather file both", [QS], &["--set", "microgrid={solar: {file: x.csv, site: Berlin, weather_file: regions/solar/tmy3/724839TYA.CSV, peak_kw: 1}}"], ["microgrid.solar.weather_file", "724839TYA.CSV", "not both"]),
        case!("solar site with a weather file", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, site: Berlin, peak_kw: 1}}"], ["microgrid.solar.site", "Berlin", "weather file"]),
        case!("solar day with a weather file", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, day: 3, peak_kw: 1}}"], ["microgrid.solar.day", "= 3", "energy.start_time"]),
        case!("array tilt past vertical", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, peak_kw: 1, array: {tilt_deg: 95}}}"], ["microgrid.solar.array.tilt_deg", "= 95", "90"]),
        case!("array azimuth of 360", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, peak_kw: 1, array: {azimuth_deg: 360}}}"], ["microgrid.solar.array.azimuth_deg", "= 360", "north"]),
        case!("array DC losses of one", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, peak_kw: 1, array: {dc_losses: 1}}}"], ["microgrid.solar.array.dc_losses", "= 1", "[0, 1)"]),
        case!("array temperature coefficient positive", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, peak_kw: 1, array: {temperature_coefficient_per_c: 0.4}}}"], ["microgrid.solar.array.temperature_coefficient_per_c", "0.4", "-0.0035"]),
        case!("unknown array mounting", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, peak_kw: 1, array: {mounting: roof}}}"], ["microgrid.solar.array.mounting", "roof", "open_rack_glass_polymer"]),
        case!("unknown sky model", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, peak_kw: 1, array: {sky_model: perez}}}"], ["sky_model", "perez", "hay_davies"]),
        case!("array peak and area both", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, peak_kw: 1, array: {area_m2: 5, module_efficiency: 0.2}}}"], ["microgrid.solar.peak_kw", "= 1", "not both"]),
        case!("array area without efficiency", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, array: {area_m2: 5}}}"], ["microgrid.solar.array.module_efficiency", "absent", "area_m2"]),
        case!("array efficiency above a half", [QS], &["--set", "microgrid={solar: {weather_file: regions/solar/tmy3/724839TYA.CSV, array: {area_m2: 5, module_efficiency: 0.9}}}"], ["microgrid.solar.array.module_efficiency", "0.9", "(0, 0.5]"]),
        case!("solar without a peak", [QS], &["--set", "microgrid={solar: {site: Berlin}}"], ["microgrid.solar.peak_kw", "absent", "kW"]),
        case!("array without a weather file", [QS], &["--set", "microgrid={solar: {site: Berlin, peak_kw: 1, array: {tilt_deg: 30}}}"], ["microgrid.solar.array", "weather_file"]),
        case!("weather file not TMY3", [QS, ("w.csv", "datetime,Berlin\n2022-06-08 00:05:00,0\n")], &["--set", "microgrid={solar: {weather_file: \"{d}/w.csv\", peak_kw: 1}}"], ["w.csv", "line 1", "quoted station name"]),
        case!("weather file of one day", [QS, ("w.csv", "1,\"X\",CA,-8,38,-121,7\nDate (MM/DD/YYYY),Time (HH:MM),GHI (W/m^2)\n01/01/1994,01:00,0\n")], &["--set", "microgrid={solar: {weather_file: \"{d}/w.csv\", peak_kw: 1}}"], ["w.csv", "1 hourly rows", "8,760"]),
        case!("prefill pool on an unknown device", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=1", "--set", "hardware.kv_link=nvlink4", "--set", "hardware.prefill_pool.gpu=abacus"], ["hardware.prefill_pool.gpu", "abacus", "device catalog"]),
        case!("prefill pool the model does not fit", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=1", "--set", "hardware.kv_link=nvlink4", "--set", "hardware.prefill_pool.gpu_memory_utilization=0.1"], ["hardware.prefill_pool.gpu", "does not fit"]),
        case!("prefill pool of another pipeline depth", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=1", "--set", "hardware.kv_link=nvlink4", "--set", "hardware.prefill_pool.pipeline_stages=2"], ["hardware.prefill_pool.pipeline_stages", "= 2", "one pipeline depth"]),
        case!("prefill pool tensor parallelism zero", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=1", "--set", "hardware.kv_link=nvlink4", "--set", "hardware.prefill_pool.tensor_parallel=0"], ["hardware.prefill_pool.tensor_parallel", "= 0"]),
        case!("prefill pool power cap above its device's", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=1", "--set", "hardware.kv_link=nvlink4", "--set", "hardware.prefill_pool={gpu: h100, power_cap_w: 5000}"], ["hardware.prefill_pool.power_cap_w", "5000"]),
        case!("prefill pool without prefill replicas", [QS], &["--set", "hardware.prefill_pool.gpu=h100"], ["hardware.prefill_pool", "prefill_replicas"]),
        case!("prefill pool unknown key", [QS], &["--set", "hardware.replicas=2", "--set", "hardware.prefill_replicas=1", "--set", "hardware.kv_link=nvlink4", "--set", "hardware.prefill_pool.colour=blue"], ["prefill_pool", "colour"]),
        case!("SLO bound negative", [QS], &["--set", "slo.ttft_s=-0.5"], ["slo.ttft_s", "= -0.5", "above 0"]),
        case!("SLO bound zero", [QS], &["--set", "slo.tpot_s=0"], ["slo.tpot_s", "= 0", "above 0"]),
        case!("SLO section with no bound", [QS], &["--set", "slo={}"], ["slo", "no bound", "ttft_s"]),
        case!("SLO unknown bound", [QS], &["--set", "slo.ttft_p90_s=0.5"], ["slo", "ttft_p90_s"]),
        case!("goodput search without an SLO", [QS], &["search", "capacity", "-c", "{d}/c.yaml", "--slo", "slo_attainment>=0.9", "-o", "{d}/out", "-q"], ["--slo", "slo_attainment", "per-request SLO"]),
        case!("memory utilisation above 1", [QS], &["--set", "hardware.gpu_memory_utilization=1.5"], ["gpu_memory_utilization", "1.5"]),
        case!("model does not fit", [QS], &["--set", "model=meta-llama/Llama-2-70b-hf"], ["does not fit", "Llama-2-70b-hf"]),
        case!("chunk above token budget", [QS], &["--set", "scheduler.policy=sarathi", "--set", "scheduler.chunk_size=9999"], ["scheduler.chunk_size", "9999"]),
        case!("chunk size for vllm", [QS], &["--set", "scheduler.chunk_size=256"], ["scheduler.chunk_size", "sarathi only"]),
        case!("waiting iters for vllm", [QS], &["--set", "scheduler.max_waiting_iters=3"], ["scheduler.max_waiting_iters", "lightllm only"]),
        case!("unknown policy", [QS], &["--set", "scheduler.policy=fifo"], ["scheduler.policy", "fifo"]),
        case!("unknown router", [QS], &["--set", "router=smart"], ["router", "smart"]),
        case!("unknown model", [QS], &["--set", "model=acme/x"], ["model", "acme/x"]),
        case!("unknown gpu", [QS], &["--set", "hardware.gpu=tpu9"], ["hardware.gpu", "tpu9"]),
        case!("unknown region", [QS], &["--set", "region=moon-1"], ["region", "moon-1"]),
        case!("bad start time", [QS], &["--set", "energy.start_time=noon"], ["energy.start_time", "noon"]),
        case!("region and regions", [QS], &["--set", "regions=[aws-us-east-1]"], ["regions", "not both"]),
        case!("unknown predictor", [QS], &["--set", "predictor={type: oracle}"], ["predictor", "oracle"]),
        case!("efficiency above 1", [QS], &["--set", "predictor={type: roofline, compute_efficiency: 2}"], ["predictor.compute_efficiency", "2"]),
        case!("malformed --set", [QS], &["--set", "hardware.replicas"], ["--set hardware.replicas", "KEY=VALUE"]),
        case!("requests missing", [QS], &["--set", "workload.requests=null"], ["workload.requests", "missing"]),
        case!("trace type without file", [QS], &["--set", "workload.arrival={type: trace}"], ["workload.trace", "missing"]),
        // Time and size bounds: refused up front, naming the field.
        case!("rate so low arrivals pass the time horizon", [QS], &["--set", "workload.arrival.rate=1e-300"], ["workload.arrival.rate", "= 1e-300", "horizon"]),
        case!("static rate past the horizon", [QS], &["--set", "workload.arrival={type: static, rate: 1e-9}"], ["workload.arrival.rate", "horizon"]),
        case!("request count overflowing memory", [QS], &["--set", "workload.requests=18446744073709551615"], ["workload.requests", "18446744073709551615", "GB available"]),
        case!("request count of a trillion", [QS], &["--set", "workload.requests=1000000000000"], ["workload.requests", "GB available"]),
        case!("gamma cv vanishing", [QS], &["--set", "workload.arrival={type: gamma, rate: 2, cv: 1e-200}"], ["workload.arrival.cv", "1e-200", "between 0.001"]),
        case!("gamma cv huge", [QS], &["--set", "workload.arrival={type: gamma, rate: 2, cv: 1e9}"], ["workload.arrival.cv", "between 0.001"]),
        case!("trace arrival past the horizon", [QS, ("t.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,5\n1e300,5,5\n")], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/t.csv", "--set", "workload.requests=null"], ["t.csv", "arrived_at", "row 2", "horizon"]),
        case!("time scale past the horizon", [QS, ("t.csv", TRACE_OK)], &["--set", "workload.arrival={type: trace, time_scale: 1e300}", "--set", "workload.trace={d}/t.csv", "--set", "workload.requests=null"], ["t.csv", "arrived_at", "time_scale", "horizon"]),
        case!("iteration overhead absurd", [QS], &["--set", "predictor.iteration_overhead_ms=1e300"], ["predictor.iteration_overhead_ms", "1e300", "one hour"]),
        // Memory plans blame the setting that does not fit.
        case!("block size too large for the KV cache", [QS], &["--set", "scheduler.block_size=1000000000"], ["scheduler.block_size", "1000000000", "one KV-cache block"]),
        case!("max_num_seqs logits do not fit", [QS], &["--set", "scheduler.max_num_seqs=4294967295"], ["scheduler.max_num_seqs", "4294967295", "logits"]),
        case!("token budget activations do not fit", [QS], &["--set", "scheduler.max_num_batched_tokens=400000000"], ["scheduler.max_num_batched_tokens", "400000000", "activations"]),
        // Huge values are not echoed whole.
        case!("a long model name is cut in the message", [QS], &["--set", "model=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"], ["model", "characters)"]),
        // Catalogs are checked at load, naming the entry and field.
        case!("catalog model with zero heads", [QS, ("m.yaml", "models:\n  tiny:\n    num_layers: 2\n    hidden_size: 64\n    num_attention_heads: 0\n    num_kv_heads: 1\n    head_dim: 16\n    intermediate_size: 128\n    vocab_size: 100\n    gated_mlp: true\n    dtype_bytes: 2\n    max_position_embeddings: 512\n")], &["--set", "catalog.models={d}/m.yaml", "--set", "model=tiny"], ["m.yaml", "models.tiny.num_attention_heads", "= 0"]),
        case!("catalog MoE model routing to more experts than it has", [QS, ("m.yaml", "models:\n  tiny:\n    num_layers: 2\n    hidden_size: 64\n    num_attention_heads: 4\n    num_kv_heads: 1\n    head_dim: 16\n    intermediate_size: 128\n    vocab_size: 100\n    gated_mlp: true\n    dtype_bytes: 2\n    max_position_embeddings: 512\n    moe: {num_experts: 4, experts_per_token: 8, expert_intermediate_size: 32}\n")], &["--set", "catalog.models={d}/m.yaml", "--set", "model=tiny"], ["m.yaml", "models.tiny.moe.experts_per_token", "= 8", "num_experts"]),
        case!("catalog MoE model with zero experts", [QS, ("m.yaml", "models:\n  tiny:\n    num_layers: 2\n    hidden_size: 64\n    num_attention_heads: 4\n    num_kv_heads: 1\n    head_dim: 16\n    intermediate_size: 128\n    vocab_size: 100\n    gated_mlp: true\n    dtype_bytes: 2\n    max_position_embeddings: 512\n    moe: {num_experts: 0, experts_per_token: 1, expert_intermediate_size: 32}\n")], &["--set", "catalog.models={d}/m.yaml", "--set", "model=tiny"], ["m.yaml", "models.tiny.moe.num_experts", "= 0"]),
        case!("catalog device with zero bandwidth", [QS, ("d.yaml", "devices:\n  g:\n    name: G\n    kind: gpu\n    peak_tflops: 100\n    memory_bandwidth_gb_s: 0\n    memory_gb: 80\n    tdp_w: 400\n")], &["--set", "catalog.devices={d}/d.yaml", "--set", "hardware.gpu=g"], ["d.yaml", "devices.g.memory_bandwidth_gb_s", "= 0"]),
        case!("catalog device with NaN peak", [QS, ("d.yaml", "devices:\n  g:\n    name: G\n    kind: gpu\n    peak_tflops: .nan\n    memory_bandwidth_gb_s: 2000\n    memory_gb: 80\n    tdp_w: 400\n")], &["--set", "catalog.devices={d}/d.yaml", "--set", "hardware.gpu=g"], ["d.yaml", "devices.g.peak_tflops", "NaN"]),
        case!("unknown weight precision", [QS], &["--set", "precision.weights=int3"], ["c.yaml", "precision.weights", "int3", "q4_k_m"]),
        case!("unknown KV-cache precision", [QS], &["--set", "precision.kv_cache=fp4"], ["c.yaml", "precision.kv_cache", "fp4"]),
        case!("fp8 arithmetic on int4 weights", [QS], &["--set", "precision={weights: int4, compute: fp8}"], ["c.yaml", "precision.compute", "fp8", "int4"]),
        case!("precision not a string", [QS], &["--set", "precision.weights=[4]"], ["c.yaml", "precision.weights"]),
        case!("unknown expert precision", [QS], &["--set", "model=openai/gpt-oss-20b", "--set", "hardware.gpu=h100", "--set", "precision.experts=fp3"], ["c.yaml", "precision.experts", "fp3", "mxfp4"]),
        case!("unknown embeddings precision", [QS], &["--set", "precision.embeddings=q7_k"], ["c.yaml", "precision.embeddings", "q7_k", "q6_k"]),
        case!("expert precision for a dense model", [QS], &["--set", "precision.experts=mxfp4"], ["c.yaml", "precision.experts", "mxfp4", "dense model"]),
        case!("catalog MoE model with an unknown expert format", [QS, ("m.yaml", "models:\n  tiny:\n    num_layers: 2\n    hidden_size: 64\n    num_attention_heads: 4\n    num_kv_heads: 1\n    head_dim: 16\n    intermediate_size: 128\n    vocab_size: 100\n    gated_mlp: true\n    dtype_bytes: 2\n    max_position_embeddings: 512\n    moe: {num_experts: 4, experts_per_token: 2, expert_intermediate_size: 32, expert_weights: fp3}\n")], &["--set", "catalog.models={d}/m.yaml", "--set", "model=tiny"], ["m.yaml", "models.tiny.moe.expert_weights", "fp3"]),
        case!("catalog latent-attention model with a zero latent", [QS, ("m.yaml", "models:\n  tiny:\n    num_layers: 2\n    hidden_size: 64\n    num_attention_heads: 4\n    num_kv_heads: 4\n    head_dim: 16\n    intermediate_size: 128\n    vocab_size: 100\n    gated_mlp: true\n    dtype_bytes: 2\n    max_position_embeddings: 512\n    mla: {q_lora_rank: 32, kv_lora_rank: 0, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16}\n")], &["--set", "catalog.models={d}/m.yaml", "--set", "model=tiny"], ["m.yaml", "models.tiny.mla.kv_lora_rank", "= 0"]),
        case!("profile predictor for a latent-attention model", [QS], &["--set", "model=deepseek-ai/DeepSeek-V3", "--set", "hardware={gpu: b200, tensor_parallel: 8, expert_parallel: true}", "--set", "precision={weights: fp8, compute: fp8}", "--set", "predictor={type: profiles}"], ["c.yaml", "predictor.type", "profiles", "latent attention"]),
        case!("catalog model with a zero sliding-window pattern", [QS, ("m.yaml", "models:\n  tiny:\n    num_layers: 2\n    hidden_size: 64\n    num_attention_heads: 4\n    num_kv_heads: 1\n    head_dim: 16\n    intermediate_size: 128\n    vocab_size: 100\n    gated_mlp: true\n    dtype_bytes: 2\n    max_position_embeddings: 512\n    sliding_window: {window: 64, pattern: 0}\n")], &["--set", "catalog.models={d}/m.yaml", "--set", "model=tiny"], ["m.yaml", "models.tiny.sliding_window.pattern", "0"]),
        case!("catalog device with negative fp8 peak", [QS, ("d.yaml", "devices:\n  g:\n    name: G\n    kind: gpu\n    peak_tflops: 100\n    memory_bandwidth_gb_s: 2000\n    memory_gb: 80\n    tdp_w: 400\n    peak_tflops_by_precision: {fp8: -1}\n")], &["--set", "catalog.devices={d}/d.yaml", "--set", "hardware.gpu=g"], ["d.yaml", "devices.g.peak_tflops_by_precision.fp8", "-1"]),
        case!("GPU layers without a host CPU", [NGL], &["--set", "hardware.host_cpu=null"], ["c.yaml", "hardware.gpu_layers", "host_cpu"]),
        case!("host CPU without GPU layers", [NGL], &["--set", "hardware.gpu_layers=null"], ["c.yaml", "hardware.host_cpu", "gpu_layers"]),
        case!("more GPU layers than the model has", [NGL], &["--set", "hardware.gpu_layers=34"], ["c.yaml", "hardware.gpu_layers", "34", "from 0 to 33"]),
        case!("host CPU that is a GPU", [NGL], &["--set", "hardware.host_cpu=rtx4090"], ["c.yaml", "hardware.host_cpu", "rtx4090", "not a CPU"]),
        case!("unknown host CPU", [NGL], &["--set", "hardware.host_cpu=no-such-cpu"], ["c.yaml", "hardware.host_cpu", "no-such-cpu"]),
        case!("offload to a GPU without a host link", [NGL], &["--set", "hardware.gpu=a100"], ["c.yaml", "host_link_gb_s", "a100"]),
        case!("offload with tensor parallelism", [NGL], &["--set", "hardware.tensor_parallel=2"], ["c.yaml", "hardware.tensor_parallel", "2", "must be 1"]),
        case!("offload with the profile predictor", [NGL], &["--set", "predictor={type: profiles}"], ["c.yaml", "predictor.type", "profiles"]),
        case!("more GPU layers than the card holds", [NGL], &["--set", "precision={weights: bf16}", "--set", "hardware.gpu_layers=30"], ["c.yaml", "hardware.gpu_layers", "30", "at most 26"]),
        case!("host CPU power profile without offload", [QS], &["--set", "energy.host_cpu_power_profile=profiles/power/i9-13900k.yaml"], ["c.yaml", "energy.host_cpu_power_profile", "hardware.host_cpu"]),
        case!("empty host CPU power profile path", [NGL], &["--set", "energy.host_cpu_power_profile=\"\""], ["c.yaml", "energy.host_cpu_power_profile", "empty path"]),
        case!("missing host CPU power profile", [NGL], &["--set", "energy.host_cpu_power_profile=nofile.yaml"], ["nofile.yaml"]),
        case!("zero tensor parallel", [QS], &["--set", "hardware.tensor_parallel=0"], ["hardware.tensor_parallel", "= 0"]),
        case!("zero pipeline stages", [QS], &["--set", "hardware.pipeline_stages=0"], ["hardware.pipeline_stages", "= 0"]),
        case!("zero block size", [QS], &["--set", "scheduler.block_size=0"], ["scheduler.block_size", "= 0"]),
        case!("zero max_num_seqs", [QS], &["--set", "scheduler.max_num_seqs=0"], ["scheduler.max_num_seqs", "= 0"]),
        case!("zero token budget", [QS], &["--set", "scheduler.max_num_batched_tokens=0"], ["scheduler.max_num_batched_tokens", "= 0"]),
        case!("zero KV blocks", [QS], &["--set", "scheduler.num_gpu_blocks=0"], ["scheduler.num_gpu_blocks", "= 0"]),
        case!("zero-token prompts in a range", [QS], &["--set", "workload.lengths={type: uniform, prompt: [0, 5], output: [1, 2]}"], ["workload.lengths.prompt", "[0, 5]"]),
        case!("negative host power", [QS], &["--set", "energy.host_power_w_per_gpu=-5"], ["energy.host_power_w_per_gpu", "-5"]),
        case!("zero device lifetime", [QS], &["--set", "energy.lifetime_years=0"], ["energy.lifetime_years", "= 0"]),
        case!("negative seed", [QS], &["--set", "seed=-1"], ["seed", "-1"]),
        case!("empty model", [QS], &["--set", "model="], ["model", "expected a string"]),
        case!("infinite rate", [QS], &["--set", "workload.arrival.rate=.inf"], ["workload.arrival.rate", "inf"]),
        case!("zero memory utilisation", [QS], &["--set", "hardware.gpu_memory_utilization=0"], ["hardware.gpu_memory_utilization", "= 0"]),
        case!("impossible start date", [QS], &["--set", "energy.start_time=2024-13-45T00:00:00Z"], ["energy.start_time", "2024-13-45"]),
        case!("zipf NaN theta", [QS], &["--set", "workload.lengths={type: zipf, min: 10, max: 90, theta: .nan}"], ["workload.lengths.theta", "NaN"]),
        case!("a hundred million replicas (hung)", [QS], &["--set", "hardware.replicas=100000000"], ["hardware.replicas", "100000000", "at most 1000000"]),
        // Power and clock limits.
        case!("power cap NaN", [QS], &["--set", "hardware.power_cap_w=.nan"], ["hardware.power_cap_w", "NaN", "finite"]),
        case!("power cap as text", [QS], &["--set", "hardware.power_cap_w=lots"], ["hardware.power_cap_w", "lots"]),
        case!("power cap below idle power", [QS], &["--set", "hardware.power_cap_w=50"], ["hardware.power_cap_w", "= 50", "no work"]),
        case!("power cap above the device's range", [QS], &["--set", "hardware.power_cap_w=900"], ["hardware.power_cap_w", "= 900", "100 to 400 W"]),
        case!("power cap below the device's range", [QS], &["--set", "hardware.gpu=h100", "--set", "hardware.power_cap_w=150"], ["hardware.power_cap_w", "= 150", "h100 accepts, 200 to 700 W"]),
        case!("power cap above the profile's cap, no range in the catalog", [QS], &["--set", "hardware.gpu=l40s", "--set", "hardware.power_cap_w=500"], ["hardware.power_cap_w", "= 500", "no settable power-limit range for l40s"]),
        case!("SM clock above the maximum", [QS], &["--set", "hardware.sm_clock_mhz=2000"], ["hardware.sm_clock_mhz", "= 2000", "1410 MHz"]),
        case!("SM clock zero", [QS], &["--set", "hardware.sm_clock_mhz=0"], ["hardware.sm_clock_mhz", "= 0", "above 0"]),
        case!("SM clock below the lowest modelled", [QS], &["--set", "hardware.sm_clock_mhz=10"], ["hardware.sm_clock_mhz", "= 10", "lowest clock"]),
        case!("SM clock on a device without a max clock", [QS], &["--set", "hardware.gpu=l40s", "--set", "hardware.sm_clock_mhz=1000"], ["hardware.sm_clock_mhz", "no max_sm_clock_mhz for l40s"]),
        case!("catalog power-limit range inverted", [QS, ("d.yaml", "devices:\n  g:\n    name: G\n    kind: gpu\n    peak_tflops: 100\n    memory_bandwidth_gb_s: 2000\n    memory_gb: 80\n    tdp_w: 400\n    power_limit_min_w: 500\n    power_limit_max_w: 400\n")], &["--set", "catalog.devices={d}/d.yaml", "--set", "hardware.gpu=g"], ["d.yaml", "devices.g.power_limit_min_w", "500"]),
        case!("unknown engine version", [QS], &["--set", "engine={name: vllm, version: '9.9'}"], ["engine", "vllm 9.9", "vllm-0.11"]),
        case!("search max rate infinite (blamed min-rate)", [QS], &["search", "capacity", "-c", "{d}/c.yaml", "--slo", "ttft_p90_s=0.5", "--max-rate", "inf", "-q"], ["--max-rate", "inf", "finite"]),
        // Traces.
        case!("trace not found", [QS], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/none.csv"], ["none.csv", "not found"]),
        case!("trace missing column", [QS, ("t.csv", "arrived_at,num_prefill_tokens\n0,5\n")], &["--set", "workload.lengths={type: trace}", "--set", "workload.trace={d}/t.csv", "--set", "workload.requests=1"], ["t.csv", "num_decode_tokens", "missing"]),
        case!("trace unsorted", [QS, ("t.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n2,5,5\n1,5,5\n")], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/t.csv"], ["t.csv", "arrived_at", "row 2"]),
        case!("trace zero-length prompt", [QS, ("t.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0,0,5\n")], &["--set", "workload.arrival={type: trace}", "--set", "workload.lengths={type: trace}", "--set", "workload.trace={d}/t.csv"], ["t.csv", "num_prefill_tokens", "row 1", "0"]),
        case!("trace text cell", [QS, ("t.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,five\n")], &["--set", "workload.lengths={type: trace}", "--set", "workload.trace={d}/t.csv", "--set", "workload.requests=1"], ["t.csv", "num_decode_tokens", "`five`"]),
        case!("trace with arrived_at twice", [QS, ("t.csv", "arrived_at,num_prefill_tokens,num_decode_tokens,arrived_at\n0,5,5,9\n1,5,5,0\n")], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/t.csv", "--set", "workload.requests=null"], ["t.csv", "arrived_at", "more than once"]),
        case!("trace empty", [QS, ("t.csv", "")], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/t.csv"], ["t.csv", "empty"]),
        case!("trace header only", [QS, ("t.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n")], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/t.csv"], ["t.csv", "no data rows"]),
        case!("more requests than trace rows", [QS, ("t.csv", TRACE_OK)], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/t.csv", "--set", "workload.requests=5"], ["workload.requests", "5", "2 rows"]),
        case!("unknown trace format", [QS, ("t.csv", TRACE_OK)], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/t.csv", "--set", "workload.trace_format=sharegpt"], ["workload.trace_format", "sharegpt", "burstgpt"]),
        case!("trace model outside burstgpt", [QS], &["--set", "workload.trace_model=GPT-4"], ["workload.trace_model", "GPT-4", "burstgpt only"]),
        case!("azure trace bad timestamp", [QS, ("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n16/11/2023 18:15,396,109\n")], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/a.csv", "--set", "workload.trace_format=azure"], ["a.csv", "TIMESTAMP", "row 2", "16/11/2023 18:15"]),
        case!("burstgpt trace failed request", [QS, ("b.csv", "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,472,0,472,Conversation log\n")], &["--set", "workload.lengths={type: trace}", "--set", "workload.trace={d}/b.csv", "--set", "workload.trace_format=burstgpt", "--set", "workload.requests=null", "--set", "workload.arrival={type: trace}"], ["b.csv", "Response tokens", "row 1", "trace_skip_failed"]),
        case!("mooncake trace hash ids short", [QS, ("m.jsonl", "{\"timestamp\": 0, \"input_length\": 1025, \"output_length\": 5, \"hash_ids\": [0, 1]}\n")], &["--set", "workload.lengths={type: trace}", "--set", "workload.trace={d}/m.jsonl", "--set", "workload.trace_format=mooncake", "--set", "workload.requests=1"], ["m.jsonl", "hash_ids", "row 1", "3 blocks"]),
        // Power profiles.
        case!("power cap below idle", [QS, ("p.yaml", "device: a100\nidle_w: 90\np0_w: 100\nk_compute_w: 1\nk_memory_w: 1\ncap_w: 50\nprovenance: {method: published, data: []}\n")], &["--set", "energy.power_profile={d}/p.yaml"], ["p.yaml", "cap_w", "50"]),
        case!("power profile field missing", [QS, ("p.yaml", "device: a100\nidle_w: 90\nk_compute_w: 1\nk_memory_w: 1\ncap_w: 500\nprovenance: {method: published, data: []}\n")], &["--set", "energy.power_profile={d}/p.yaml"], ["p.yaml", "p0_w"]),
        case!("power profile NaN", [QS, ("p.yaml", "device: a100\nidle_w: .nan\np0_w: 100\nk_compute_w: 1\nk_memory_w: 1\ncap_w: 500\nprovenance: {method: published, data: []}\n")], &["--set", "energy.power_profile={d}/p.yaml"], ["p.yaml", "idle_w", "NaN"]),
        // Region files.
        case!("region file unknown key", [QS, ("r/x.yaml", "id: x\nname: X\nprovider: p\nlocation: L\ncarbon_intensity_g_per_kwh: {value: 1, source: s}\npue: {value: 1.1, source: s}\nsunshine: 3\n")], &["--set", "regions_dir={d}/r", "--set", "region=x"], ["x.yaml", "sunshine"]),
        case!("region PUE below 1", [QS, ("r/x.yaml", "id: x\nname: X\nprovider: p\nlocation: L\ncarbon_intensity_g_per_kwh: {value: 1, source: s}\npue: {value: 0.5, source: s}\n")], &["--set", "regions_dir={d}/r", "--set", "region=x"], ["x.yaml", "pue", "0.5"]),
        case!("region id differs from its file name", [QS, ("r/x.yaml", "id: y\nname: X\nprovider: p\nlocation: L\ncarbon_intensity_g_per_kwh: {value: 1, source: s}\npue: {value: 1.1, source: s}\n")], &["--set", "regions_dir={d}/r", "--set", "region=x"], ["x.yaml", "id", "= y", "x.yaml"]),
        case!("region intensity 1e308", [QS, ("r/x.yaml", "id: x\nname: X\nprovider: p\nlocation: L\ncarbon_intensity_g_per_kwh: {value: 1e308, source: s}\npue: {value: 1.1, source: s}\n")], &["--set", "regions_dir={d}/r", "--set", "region=x"], ["x.yaml", "carbon_intensity_g_per_kwh.value", "1e308"]),
        case!("region PUE 1e308", [QS, ("r/x.yaml", "id: x\nname: X\nprovider: p\nlocation: L\ncarbon_intensity_g_per_kwh: {value: 1, source: s}\npue: {value: 1e308, source: s}\n")], &["--set", "regions_dir={d}/r", "--set", "region=x"], ["x.yaml", "pue.value", "between 1 and 5"]),
        case!("region price 1e308", [QS, ("r/x.yaml", "id: x\nname: X\nprovider: p\nlocation: L\ncarbon_intensity_g_per_kwh: {value: 1, source: s}\npue: {value: 1.1, source: s}\nelectricity_price_usd_per_kwh: {value: 1e308, source: s}\n")], &["--set", "regions_dir={d}/r", "--set", "region=x"], ["x.yaml", "electricity_price_usd_per_kwh.value", "1e308"]),
        case!("hourly series with a gap", [QS, ("r/x.yaml", "id: x\nname: X\nprovider: p\nlocation: L\ncarbon_intensity_g_per_kwh: {value: 1, source: s}\npue: {value: 1.1, source: s}\nhourly_carbon: {file: h.csv, source: s}\n"), ("r/h.csv", "hour_utc,carbon_g_per_kwh\n2024-06-01T00:00:00Z,100\n2024-06-01T02:00:00Z,100\n")], &["--set", "regions_dir={d}/r", "--set", "region=x"], ["h.csv", "hour_utc", "row 2"]),
        // Profiler CSVs.
        case!("profile missing column", [ATTN, ("p/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv", "num_tokens,num_tensor_parallel_workers\n1,1\n")], &["fit", "latency", "--gpu", "a100", "--model", "meta-llama/Llama-2-7b-hf", "--profiles", "{d}/p", "--no-cache", "-q"], ["mlp.csv", "time_stats.", "missing"]),
        case!("profile empty", [ATTN, ("p/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv", "")], &["fit", "latency", "--gpu", "a100", "--model", "meta-llama/Llama-2-7b-hf", "--profiles", "{d}/p", "--no-cache", "-q"], ["mlp.csv", "empty"]),
        case!("profile TP absent", [ATTN, ("p/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv", "num_tokens,num_tensor_parallel_workers\n1,2\n")], &["fit", "latency", "--gpu", "a100", "--model", "meta-llama/Llama-2-7b-hf", "--profiles", "{d}/p", "--no-cache", "-q"], ["mlp.csv", "num_tensor_parallel_workers", "tensor_parallel = 1"]),
        // Inputs that used to hang, or take long to be refused: YAML nested 100,000 deep ({deep}),
        // FIFOs with no writer ({fifo}), tens of thousands of threads.
        case!("config nested too deep", [("c.yaml", "{deep}")], &[], ["c.yaml", "line 1", "more than 64 levels"]),
        case!("--set value nested too deep", [QS], &["--set", "seed={deep}"], ["--set seed=", "more than 64 levels"]),
        case!("config is a FIFO", [("c.yaml", "{fifo}")], &[], ["c.yaml", "FIFO", "not a regular file"]),
        case!("trace is a FIFO", [QS, ("t.csv", "{fifo}")], &["--set", "workload.arrival={type: trace}", "--set", "workload.trace={d}/t.csv"], ["t.csv", "FIFO", "not a regular file"]),
        case!("power profile nested too deep", [QS, ("p.yaml", "{deep}")], &["--set", "energy.power_profile={d}/p.yaml"], ["p.yaml", "more than 64 levels"]),
        case!("region file nested too deep", [QS, ("r/x.yaml", "{deep}")], &["--set", "regions_dir={d}/r", "--set", "region=x"], ["x.yaml", "more than 64 levels"]),
        case!("sweep file nested too deep", [("s.yaml", "{deep}")], &["sweep", "plan", "-c", "{d}/s.yaml"], ["s.yaml", "more than 64 levels"]),
        case!("sweep file is a FIFO", [("s.yaml", "{fifo}")], &["sweep", "run", "-c", "{d}/s.yaml", "-o", "{d}/out"], ["s.yaml", "FIFO"]),
        case!("sweep run --jobs 0", [], &["sweep", "run", "-c", "experiments/sweep-example.yaml", "-o", "{d}/out", "--jobs", "0"], ["--jobs", "= 0", "at least 1"]),
        case!("sweep run --jobs 100000", [], &["sweep", "run", "-c", "experiments/sweep-example.yaml", "-o", "{d}/out", "--jobs", "100000"], ["--jobs", "= 100000", "at most 1024"]),
        case!("search capacity --jobs 0", [QS], &["search", "capacity", "-c", "{d}/c.yaml", "--slo", "ttft_p90_s=0.5", "-o", "{d}/out", "-q", "--jobs", "0"], ["--jobs", "= 0"]),
        case!("search capacity --jobs 100000", [QS], &["search", "capacity", "-c", "{d}/c.yaml", "--slo", "ttft_p90_s=0.5", "-o", "{d}/out", "-q", "--jobs", "100000"], ["--jobs", "= 100000", "at most 1024"]),
        // Values written into job scripts.
        case!("sbatch partition with a newline", [], &["sweep", "emit", "slurm", "-c", "experiments/sweep-example.yaml", "--shards", "2", "--dir", "{d}/out", "--partition", "gpu\n#SBATCH --wrap=id"], ["--partition", "gpu\\n#SBATCH --wrap=id", "#SBATCH directive holds only"]),
        case!("sbatch account with a command", [], &["sweep", "emit", "slurm", "-c", "experiments/sweep-example.yaml", "--shards", "2", "--dir", "{d}/out", "--account", "$(id)"], ["--account", "$(id)", "#SBATCH directive holds only"]),
        case!("emit --max-parallel 0", [], &["sweep", "emit", "slurm", "-c", "experiments/sweep-example.yaml", "--shards", "2", "--dir", "{d}/out", "--max-parallel", "0"], ["--max-parallel", "= 0"]),
        case!("shell line with a newline in --simwatt", [], &["sweep", "emit", "shell", "-c", "experiments/sweep-example.yaml", "--shards", "2", "--dir", "{d}/out", "--simwatt", "simwatt\nid"], ["--simwatt", "simwatt\\nid", "control character"]),
    ]
}

/// A FIFO at `path` with no writer: reading it would block forever.
fn make_fifo(path: &std::path::Path) {
    let o = std::process::Command::new("mkfifo")
        .arg(path)
        .output()
        .expect("mkfifo runs");
    assert!(o.status.success(), "mkfifo {}", path.display());
}

#[test]
fn every_malformed_input_fails_cleanly_naming_what_is_wrong() {
    let qs = std::fs::read_to_string(quickstart()).unwrap();
    let attention =
        std::fs::read_to_string(root().join("profiles/vidur/attention/a100/attention.csv"))
            .unwrap();
    // 100,000 unclosed `[`: the parser alone took 32 s to refuse it.
    let deep = "[".repeat(100_000);
    let table = cases();
    assert!(table.len() >= 100, "{} cases", table.len());
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for case in &table {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().to_str().unwrap().to_string();
        for (name, text) in case.files {
            let p = tmp.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let text = match *text {
                "{attention}" => attention.clone(),
                "{deep}" => deep.clone(),
                "{fifo}" => {
                    make_fifo(&p);
                    continue;
                }
                t => t.replace("{qs}", &qs).replace("{d}", &d),
            };
            std::fs::write(&p, text).unwrap();
        }
        let whole = ["fit", "sweep", "search"];
        let mut args: Vec<String> = if case.args.first().is_some_and(|a| whole.contains(a)) {
            case.args.iter().map(|a| a.to_string()).collect()
        } else {
            sim(case.args)
        };
        for a in args.iter_mut() {
            *a = a.replace("{d}", &d).replace("{deep}", &deep);
        }
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = simwatt(&refs);
        let err = stderr(&o);
        rows.push(doc_row(case.name, o.status.code(), &err, &d));
        let ok = o.status.code() == Some(1)
            && !err.contains("panicked")
            && case.needles.iter().all(|n| err.contains(n))
            && !tmp.path().join("out").exists();
        if !ok {
            failures.push(format!(
                "{}: exit {:?}, out exists {}, stderr: {}",
                case.name,
                o.status.code(),
                tmp.path().join("out").exists(),
                err.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
    check_doc_table(&rows);
}

/// One row of the table in docs/robustness.md: the case, its exit code and the first line of its
/// message, with the case's temporary folder written `<dir>` and the repository `<repo>`.
fn doc_row(name: &str, code: Option<i32>, err: &str, d: &str) -> String {
    let line = err.lines().next().unwrap_or("").trim();
    let line = line
        .replace(d, "<dir>")
        .replace(root().to_str().unwrap(), "<repo>");
    let mut line: String = line.chars().take(200).collect();
    if err.lines().next().unwrap_or("").trim().chars().count() > 200 {
        line.push_str(" ...");
    }
    format!(
        "| {} | {} | `` {} `` |",
        name.replace('|', "\\|"),
        code.map(|c| c.to_string())
            .unwrap_or_else(|| "signal".into()),
        line.replace('|', "\\|").replace('`', "'")
    )
}

const DOC_BEGIN: &str = "<!-- bad-input table: begin (written by SIMWATT_WRITE_DOCS=1 cargo test --release bad_input_table) -->";
const DOC_END: &str = "<!-- bad-input table: end -->";

/// The table in docs/robustness.md lists every case of [`cases`], in order, with the exit code it
/// gets here; with SIMWATT_WRITE_DOCS=1 the table is rewritten from this run (messages included).
fn check_doc_table(rows: &[String]) {
    let path = root().join("docs/robustness.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (doc.find(DOC_BEGIN), doc.find(DOC_END)) else {
        panic!("docs/robustness.md has no bad-input table between its markers");
    };
    let header = "| input | exit | message (first line) |\n|---|---|---|\n";
    let table = format!("{header}{}\n", rows.join("\n"));
    if std::env::var("SIMWATT_WRITE_DOCS").as_deref() == Ok("1") {
        let new = format!("{}{DOC_BEGIN}\n{table}{}", &doc[..a], &doc[b..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    let cells = |r: &str| -> (String, String) {
        let c: Vec<&str> = r.split(" | ").collect();
        (
            c[0].trim_start_matches("| ").to_string(),
            c.get(1).unwrap_or(&"").to_string(),
        )
    };
    let listed: Vec<(String, String)> = doc[a + DOC_BEGIN.len()..b]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| input |"))
        .map(cells)
        .collect();
    let run: Vec<(String, String)> = rows.iter().map(|r| cells(r)).collect();
    assert_eq!(
        listed, run,
        "docs/robustness.md's bad-input table is not this table's cases and exit codes; rewrite it with SIMWATT_WRITE_DOCS=1"
    );
}

fn run_summary(config: &str) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = simwatt(&[
        "simulate",
        "-c",
        config,
        "-o",
        out.to_str().unwrap(),
        "-q",
        "--no-plots",
        "--no-trace",
    ]);
    assert!(o.status.success(), "{config}: {}", stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn overload_runs_to_a_clean_end_with_queues_and_preemptions_counted() {
    let s = run_summary("experiments/overload.yaml");
    assert_eq!(s["requests_completed"], 3000);
    assert!(s["preemptions"].as_u64().unwrap() > 0, "{s}");
    // Arrivals end after about 60 s; the backlog takes far longer to serve.
    assert!(s["makespan_s"].as_f64().unwrap() > 600.0);
    assert!(s["scheduling_delay_p90_s"].as_f64().unwrap() > 300.0);
}

#[test]
fn oversized_requests_are_rejected_and_counted_not_looped_on() {
    let s = run_summary("experiments/oversized.yaml");
    let rejected = s["requests_rejected_by_reason"]["kv_capacity"]
        .as_u64()
        .unwrap();
    assert!(rejected > 0, "{s}");
    assert_eq!(s["requests_rejected"].as_u64().unwrap(), rejected);
    assert_eq!(
        s["requests_completed"].as_u64().unwrap() + rejected,
        s["requests_total"].as_u64().unwrap()
    );
}
