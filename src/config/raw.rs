//! The raw config: a serde mirror of the YAML a user writes.
//!
//! Every struct denies unknown fields, so a typo is an error rather than a silently ignored setting.
//! Defaults live here, next to the field they fill, and the resolved config written to each run folder
//! shows them all. Range checks, cross-field checks and the defaults that depend on other fields (a
//! policy's chunk size or waiting limit, the device's power profile) happen in
//! [`super::Scenario::resolve`], which writes those defaults back here.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The whole config file (`simwatt simulate --config FILE`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Master seed; every random stream of the run is derived from it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Model name, a key (or alias) of the model catalog.
    pub model: String,
    pub hardware: HardwareConfig,
    /// Global router that assigns arriving requests to replicas (with disaggregated serving: to the
    /// prefill replicas).
    #[serde(default)]
    pub router: RouterKind,
    /// Disaggregated serving (`hardware.prefill_replicas` > 0): the router that hands each prefilled
    /// request to a decode replica. Absent: the same kind as `router` (written back when resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_router: Option<RouterKind>,
    pub scheduler: SchedulerConfig,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub predictor: PredictorConfig,
    #[serde(default)]
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub energy: EnergyConfig,
    /// The serving engine around the GPU work (default: `vidur`, the engine model of Vidur).
    #[serde(default)]
    pub engine: EngineConfig,
    /// Region(s) to report carbon, cost and water for: one id, or several separated by commas
    /// (`--set region=aws-us-east-1,gcp-europe-north1`). The first is the headline in summary.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Regions as a list (instead of `region`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Folder of region files (`<id>.yaml`, `embodied.yaml`, `hourly/`).
    #[serde(default = "default_regions_dir")]
    pub regions_dir: PathBuf,
    /// The shipped data directory (Vidur profiles, power and engine profiles, regions), relative to
    /// the config file. Default: found as `config::data` describes (`$SIMWATT_DATA_DIR`, the checkout
    /// the config lies in, the current directory, the install prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Numeric precision of weights, arithmetic and KV cache (absent: the model catalog's
    /// `dtype_bytes` for all of them, at the device's bf16 peak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionConfig>,
    /// A per-request latency SLO (docs/metrics.md, `slo_met`, `slo_attainment`,
    /// `goodput_requests_per_s`): a request meets it when it completes within every bound given.
    /// Absent: those columns are null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloConfig>,
    /// On-site solar and a battery behind the meter (docs/microgrid.md): carbon and cost charged on
    /// grid import only. Absent: every kWh comes from the grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microgrid: Option<MicrogridConfig>,
    /// Carbon-aware holding (docs/microgrid.md): deferrable requests (`workload.deferrable`) wait for
    /// the cleanest (or cheapest, or sunniest) hours before their deadline. Absent: every request is
    /// released when it is submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon_aware: Option<CarbonAwareConfig>,
    /// An edge or desktop device (docs/edge.md): its battery and a first-order thermal model whose
    /// throttling slows work and lowers power. Absent: mains power, no heat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<EdgeConfig>,
    /// A per-GPU power limit that follows the grid's hourly carbon intensity (docs/microgrid.md):
    /// `clean_w` in hours at or below `clean_g_per_kwh`, `dirty_w` at or above `dirty_g_per_kwh`,
    /// linear between. Absent: the limit is `hardware.power_cap_w` (or the profile's) all day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon_power_cap: Option<CarbonPowerCapConfig>,
}

/// The `carbon_power_cap` section: an hourly power limit from the headline region's hourly intensity.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CarbonPowerCapConfig {
    /// The limit in clean hours, watts per GPU.
    pub clean_w: f64,
    /// The limit in dirty hours, watts per GPU (at most `clean_w`).
    pub dirty_w: f64,
    /// Hours at or below this intensity are clean, gCO2e/kWh.
    pub clean_g_per_kwh: f64,
    /// Hours at or above this intensity are dirty, gCO2e/kWh (above `clean_g_per_kwh`).
    pub dirty_g_per_kwh: f64,
}

impl CarbonPowerCapConfig {
    /// The limit in an hour of intensity `g`, watts.
    pub fn cap_at(&self, g: f64) -> f64 {
        if g <= self.clean_g_per_kwh {
            self.clean_w
        } else if g >= self.dirty_g_per_kwh {
            self.dirty_w
        } else {
            let x = (g - self.clean_g_per_kwh) / (self.dirty_g_per_kwh - self.clean_g_per_kwh);
            self.clean_w + (self.dirty_w - self.clean_w) * x
        }
    }
}

/// The `edge` section.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<BatteryPackConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thermal: Option<ThermalConfig>,
}

/// `edge.battery`: the pack the device runs from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatteryPackConfig {
    /// Nominal capacity, watt-hours.
    pub capacity_wh: f64,
    /// Share of the capacity that may be drawn (default 0.9: the pack's protection cuts off first).
    #[serde(default = "default_usable_fraction")]
    pub usable_fraction: f64,
    /// Share of the energy drawn that reaches the device through its DC-DC converter (default 0.9).
    #[serde(default = "default_converter_efficiency")]
    pub converter_efficiency: f64,
}

fn default_usable_fraction() -> f64 {
    0.9
}

fn default_converter_efficiency() -> f64 {
    0.9
}

/// `edge.thermal`: one thermal resistance and time constant per GPU (device), and its throttling.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ThermalConfig {
    /// Ambient temperature, degrees C.
    pub ambient_c: f64,
    /// Junction-to-ambient thermal resistance, degrees C per watt: the steady temperature at power P
    /// is `ambient_c + P x r_th_c_per_w`.
    pub r_th_c_per_w: f64,
    /// Thermal time constant, seconds (resistance x heat capacity).
    pub tau_s: f64,
    /// Temperature at or above which the device throttles, degrees C.
    pub throttle_c: f64,
    /// Clock while throttled, as a fraction of the maximum (default 0.6).
    #[serde(default = "default_throttle_clock")]
    pub throttle_clock: f64,
    /// Throttling ends once the temperature falls this far below `throttle_c` (default 5).
    #[serde(default = "default_hysteresis_c")]
    pub hysteresis_c: f64,
    /// Temperature at time 0 (default: ambient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_c: Option<f64>,
}

fn default_throttle_clock() -> f64 {
    0.6
}

fn default_hysteresis_c() -> f64 {
    5.0
}

/// The `carbon_aware` section: when held requests are released.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CarbonAwareConfig {
    /// What ranks the hours: `grid_carbon` (default; the headline region's hourly intensity),
    /// `price` (its hourly electricity price) or `solar` (the microgrid's solar output, most first).
    #[serde(default)]
    pub signal: HoldSignal,
    /// Held requests leave the hold at most this many per second (spaced `1/rate` apart within an
    /// hour), so that a clean hour is not flooded past what the cluster serves.
    pub max_release_rate: f64,
    /// A held request is released at least this many seconds before its deadline (default 1800),
    /// leaving that long to serve it.
    #[serde(default = "default_hold_margin_s")]
    pub margin_s: f64,
}

fn default_hold_margin_s() -> f64 {
    1800.0
}

/// The hourly signal carbon-aware holding ranks hours by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldSignal {
    /// The grid's carbon intensity, lowest first.
    #[default]
    GridCarbon,
    /// The electricity price, lowest first.
    Price,
    /// The microgrid's solar output, highest first.
    Solar,
}

/// The `microgrid` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MicrogridConfig {
    pub solar: SolarConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<BatteryConfig>,
    /// `self_consumption` (default), `carbon_threshold` or `price_threshold`.
    #[serde(default)]
    pub dispatch: DispatchConfig,
    /// The grid intensity, gCO2e/kWh, at or above which `carbon_threshold` discharges the battery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon_threshold_g_per_kwh: Option<f64>,
    /// The grid price, USD/kWh, at or above which `price_threshold` discharges the battery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_threshold_usd_per_kwh: Option<f64>,
    /// Whether surplus solar is exported to the grid (true, default) or curtailed.
    #[serde(default = "yes")]
    pub export: bool,
}

/// `microgrid.solar`: a PV array whose output either follows a measured series of an array's output
/// (`file` and `site`, Solcast via Vessim) or comes from a weather file through the PV model
/// (`weather_file` and `array`, [`crate::pv`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SolarConfig {
    /// CSV of 5-minute fractions of peak output per site (`datetime` and one column per site), as
    /// Solcast via Vessim publishes them; default, when there is no `weather_file`, the shipped
    /// `regions/solar/solcast2022_global_actual.csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The column (site) of `file` to use, e.g. `San Francisco`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// An NREL TMY3 weather file (irradiance, temperature, wind) whose hours, by the run's dates in the
    /// site's local standard time, drive the PV model; e.g. the shipped
    /// `regions/solar/tmy3/724839TYA.CSV` (Sacramento).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weather_file: Option<PathBuf>,
    /// The array the PV model prices (with `weather_file` only; defaults as [`ArrayConfig`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<ArrayConfig>,
    /// Peak (DC, standard test conditions) power of the array, kW. With `weather_file` it may be given
    /// instead as `array.area_m2 x array.module_efficiency` (1 kW/m^2 of sunlight); the config's
    /// resolution writes it here, so that it is always set on a resolved config ([`Self::peak`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_kw: Option<f64>,
    /// Share of the array's output the inverter delivers (default 0.96).
    #[serde(default = "default_inverter_efficiency")]
    pub inverter_efficiency: f64,
    /// Which day of `file` the run's first day replays (0: its first day); the run's start hour of
    /// day (UTC) picks the hour within it. Not with `weather_file`, whose date is the run's.
    #[serde(default)]
    pub day: u32,
    /// Embodied (manufacturing) carbon of the array, kgCO2e per kW of peak power (default
    /// [`SOLAR_EMBODIED_KG_PER_KWP`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embodied_kg_per_kwp: Option<f64>,
    /// Years the array's embodied carbon is amortised over (default [`SOLAR_LIFETIME_YEARS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_years: Option<f64>,
}

impl SolarConfig {
    /// The array's peak power, kW (set on every resolved config; 0 before resolution without it).
    pub fn peak(&self) -> f64 {
        self.peak_kw.unwrap_or(0.0)
    }
}

/// `microgrid.solar.array`: the fixed array of the PV model ([`crate::pv::Array`]). The defaults
/// are PVWatts version 5's (Dobos 2014, NREL/TP-6A20-62641) where PVWatts has one: tilt 20°, facing
/// south, the premium (monocrystalline) module's -0.35 %/°C, 14.08% DC losses, open-rack mounting
/// and the glass cover's physical incidence loss; the sky model is Hay and Davies' (PVWatts uses
/// Perez's).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArrayConfig {
    /// Degrees from horizontal, 0 (flat) to 90 (vertical).
    #[serde(default = "default_tilt")]
    pub tilt_deg: f64,
    /// Degrees clockwise from north that the array faces: 180 south (the default), 0 north (for a
    /// site south of the equator), 90 east, 270 west.
    #[serde(default = "default_array_azimuth")]
    pub azimuth_deg: f64,
    /// Module area, m^2, with `module_efficiency` in place of `microgrid.solar.peak_kw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_m2: Option<f64>,
    /// Modules' efficiency at standard test conditions (0.2 for 20%), with `area_m2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_efficiency: Option<f64>,
    /// Ground albedo, 0 to 1; default the weather file's, hour by hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub albedo: Option<f64>,
    /// Relative change of DC power per °C of cell temperature above 25 °C.
    #[serde(default = "default_gamma")]
    pub temperature_coefficient_per_c: f64,
    /// Share of DC output lost before the inverter: soiling, shading, snow, mismatch, wiring,
    /// connections, light-induced degradation, nameplate rating, age and availability.
    #[serde(default = "default_dc_losses")]
    pub dc_losses: f64,
    /// Sandia cell-temperature mounting: `open_rack_glass_polymer` (default),
    /// `open_rack_glass_glass`, `close_mount_glass_glass` or `insulated_back_glass_polymer`.
    #[serde(default)]
    pub mounting: MountingConfig,
    /// `hay_davies` (default) or `isotropic`.
    #[serde(default)]
    pub sky_model: SkyModelConfig,
    /// Beam light lost off the cover at oblique incidence: `physical` (default) or `none`.
    #[serde(default)]
    pub incidence_loss: IncidenceLossConfig,
}

impl Default for ArrayConfig {
    fn default() -> Self {
        ArrayConfig {
            tilt_deg: default_tilt(),
            azimuth_deg: default_array_azimuth(),
            area_m2: None,
            module_efficiency: None,
            albedo: None,
            temperature_coefficient_per_c: default_gamma(),
            dc_losses: default_dc_losses(),
            mounting: MountingConfig::default(),
            sky_model: SkyModelConfig::default(),
            incidence_loss: IncidenceLossConfig::default(),
        }
    }
}

/// `microgrid.solar.array.mounting`: the four mountings of Sandia's cell-temperature model (King et
/// al. 2004), named as pvlib names them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MountingConfig {
    #[default]
    OpenRackGlassPolymer,
    OpenRackGlassGlass,
    CloseMountGlassGlass,
    InsulatedBackGlassPolymer,
}

/// `microgrid.solar.array.sky_model`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SkyModelConfig {
    #[default]
    HayDavies,
    Isotropic,
}

/// `microgrid.solar.array.incidence_loss`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum IncidenceLossConfig {
    #[default]
    Physical,
    None,
}

fn default_tilt() -> f64 {
    20.0
}
fn default_array_azimuth() -> f64 {
    180.0
}
fn default_gamma() -> f64 {
    -0.0035
}
fn default_dc_losses() -> f64 {
    0.1408
}

/// Default embodied carbon of a PV array, kgCO2e per kWp: a glass-backsheet mono-Si module made in
/// China (Müller et al. 2021; regions/PROVENANCE.md, section 11). Modules only: mounting, cabling
/// and inverter are not included.
pub const SOLAR_EMBODIED_KG_PER_KWP: f64 = 810.0;
/// Default lifetime of a PV array, years (the harmonised system lifetime of Hsu et al. 2012).
pub const SOLAR_LIFETIME_YEARS: f64 = 30.0;
/// Default embodied carbon of a lithium-ion battery, kgCO2e per kWh of capacity: the upper end of
/// IVL's 61-106 for NMC cells and packs (Emilsson and Dahllöf 2019; regions/PROVENANCE.md, section
/// 11), the end that does not assume near fossil-free electricity in production.
pub const BATTERY_EMBODIED_KG_PER_KWH: f64 = 106.0;
/// Default lifetime of a stationary lithium-ion battery, years (NREL ReEDS: battery energy
/// capacity retired or refurbished after 15 years).
pub const BATTERY_LIFETIME_YEARS: f64 = 15.0;

/// The Solcast series a `microgrid.solar` without a `weather_file` reads.
pub fn default_solar_file() -> PathBuf {
    PathBuf::from("regions/solar/solcast2022_global_actual.csv")
}

fn default_inverter_efficiency() -> f64 {
    0.96
}

/// `microgrid.battery`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatteryConfig {
    pub capacity_kwh: f64,
    #[serde(default = "default_min_soc")]
    pub min_soc: f64,
    #[serde(default = "default_max_soc")]
    pub max_soc: f64,
    /// State of charge at the run's start (default 0.5).
    #[serde(default = "default_initial_soc")]
    pub initial_soc: f64,
    pub max_charge_kw: f64,
    pub max_discharge_kw: f64,
    /// Energy out over energy in for a full cycle (default 0.9).
    #[serde(default = "default_round_trip")]
    pub round_trip_efficiency: f64,
    /// Share of the stored energy lost per day (default 0).
    #[serde(default)]
    pub self_discharge_per_day: f64,
    /// Embodied (manufacturing) carbon, kgCO2e per kWh of capacity (default
    /// [`BATTERY_EMBODIED_KG_PER_KWH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embodied_kg_per_kwh: Option<f64>,
    /// Years the battery's embodied carbon is amortised over (default [`BATTERY_LIFETIME_YEARS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_years: Option<f64>,
}

fn default_min_soc() -> f64 {
    0.1
}
fn default_max_soc() -> f64 {
    0.9
}
fn default_initial_soc() -> f64 {
    0.5
}
fn default_round_trip() -> f64 {
    0.9
}

/// `microgrid.dispatch`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum DispatchConfig {
    /// Solar first, then the battery, then the grid; the battery charges from solar only.
    #[default]
    SelfConsumption,
    /// The battery discharges only at or above `carbon_threshold_g_per_kwh` and charges from the grid
    /// below it.
    CarbonThreshold,
    /// The battery discharges only in hours whose grid price is at or above
    /// `price_threshold_usd_per_kwh` and charges from the grid below it.
    PriceThreshold,
}

/// The `slo` section: upper bounds on one request's latencies, in seconds; at least one is given.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Time to first token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_s: Option<f64>,
    /// Time per output token after the first (a request with one output token has none and meets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_s: Option<f64>,
    /// End-to-end latency, arrival to last token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_s: Option<f64>,
}

// -- Precision (docs/precision.md) --

/// The `precision` section. Names are checked in [`super::Scenario::resolve`] against
/// [`crate::precision`]'s tables, which writes the defaults back here.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrecisionConfig {
    /// Storage of the linear layers' weights: bf16, fp16, fp8, int8, int4 (AWQ/GPTQ, group 128), or a
    /// llama.cpp GGUF type q4_0, q4_k_m, q5_1, q6_k, q8_0 (default: the catalog's `dtype_bytes`, bf16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Arithmetic of the matrix multiplications: bf16, fp16, fp8 (needs fp8 weights), int8 (needs
    /// integer weights) (default: fp8 for fp8 weights, int8 for int8, fp16 for fp16, else bf16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<String>,
    /// KV-cache storage: bf16, fp16, fp8, int8 (default: the catalog's `dtype_bytes`, bf16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache: Option<String>,
    /// Storage of a mixture-of-experts model's routed experts when it differs from `weights`: any
    /// weight format, e.g. mxfp4 (default: the catalog's `moe.expert_weights`, else `weights`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<String>,
    /// Storage of the input embedding and the output head: any weight format, e.g. q6_k, where
    /// llama.cpp's quantiser keeps the head of a q4_k_m file (default: 16-bit, as vLLM's quantised
    /// checkpoints keep them). Prices the head's weight reads and the memory plan's embedding bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<String>,
    /// Dequantisation work per weight of the linear layers per forward pass, FLOPs at the peak that
    /// prices them, in place of the built-in estimate (docs/precision.md). 0 for an engine whose
    /// kernels multiply the quantised weights without widening them first, as llama.cpp's CPU dot
    /// products do (their unpacking cost is then in the fitted compute efficiency: docs/edge.md, "CPU
    /// threads, calibrated on llama.cpp"). Absent: the built-in estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dequant_flops_per_weight: Option<f64>,
}

fn default_regions_dir() -> PathBuf {
    PathBuf::from("regions")
}

/// Which serving engine's profile prices the work around the GPU (front end, host time per
/// iteration, CUDA graphs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Engine name: `vidur` (built in: Vidur's host-overhead model, no front end) or the name of a
    /// shipped profile, `profiles/engine/<name>-<version>.yaml` (e.g. `vllm`).
    #[serde(default = "default_engine_name")]
    pub name: String,
    /// Engine version, which picks the shipped profile (e.g. `"0.11"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// An engine-profile file to use instead of the shipped one (e.g. from `simwatt fit engine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<PathBuf>,
}

fn default_engine_name() -> String {
    "vidur".to_string()
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            name: default_engine_name(),
            version: None,
            profile: None,
        }
    }
}

/// Energy accounting settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyConfig {
    /// Power profile of the device (default: `profiles/power/<device id>.yaml`). Without one, energy
    /// outputs are left empty and the run says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_profile: Option<PathBuf>,
    /// Power profile of the host CPU of a partial GPU offload (`hardware.host_cpu`; default:
    /// `profiles/power/<host_cpu>.yaml`), which prices the CPU's energy (`host_cpu_energy_j`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu_power_profile: Option<PathBuf>,
    /// Host (CPU, memory, fans, network) power per GPU, watts, drawn over the whole span.
    #[serde(default)]
    pub host_power_w_per_gpu: f64,
    /// When the simulated run starts, for hourly carbon and price series (ISO 8601, UTC).
    #[serde(default = "default_start_time")]
    pub start_time: String,
    /// Hardware lifetime over which embodied carbon is amortised, years (default: regions/embodied.yaml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_years: Option<f64>,
    /// Least length of the accounting window, seconds: energy, carbon and cost count the cluster from
    /// 0 to the later of its last completion and this (idle included), so that runs ending at
    /// different times compare over the same window. Absent: the window ends at the last completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_span_s: Option<f64>,
}

fn default_start_time() -> String {
    "2024-06-01T00:00:00Z".to_string()
}

impl Default for EnergyConfig {
    fn default() -> Self {
        EnergyConfig {
            power_profile: None,
            host_cpu_power_profile: None,
            host_power_w_per_gpu: 0.0,
            start_time: default_start_time(),
            lifetime_years: None,
            min_span_s: None,
        }
    }
}

fn default_seed() -> u64 {
    DEFAULT_SEED
}

/// The master seed of a config that gives none.
pub const DEFAULT_SEED: u64 = 42;

/// Devices and how the model is laid out on them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareConfig {
    /// Device id (or alias) from the device catalog, e.g. `a100`, `h100`.
    pub gpu: String,
    /// Tensor-parallel degree: GPUs per pipeline stage.
    #[serde(default = "one")]
    pub tensor_parallel: u32,
    /// A mixture-of-experts model's routed experts spread whole over the tensor-parallel GPUs instead
    /// of split across them (vLLM's `--enable-expert-parallel`); attention stays tensor-parallel.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expert_parallel: bool,
    /// Data-parallel attention ranks of a replica (vLLM's `--data-parallel-size` with
    /// `--enable-expert-parallel`): each of `data_parallel` ranks of `tensor_parallel` GPUs runs the
    /// attention of its own share of the sequences, and the routed experts are spread whole over all
    /// `data_parallel x tensor_parallel` GPUs, with tokens dispatched to them and combined back. The
    /// scheduler's `max_num_seqs` and `max_num_batched_tokens` are then the replica's, all ranks
    /// together. 1: no data parallelism inside a replica (independent copies are `replicas`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub data_parallel: u32,
    /// Pipeline-parallel stages per replica.
    #[serde(default = "one")]
    pub pipeline_stages: u32,
    /// Independent model replicas.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Fraction of device memory the engine may use (weights + activations + KV cache), as vLLM's
    /// `gpu_memory_utilization`.
    #[serde(default = "default_gpu_memory_utilization")]
    pub gpu_memory_utilization: f64,
    /// Power limit of each GPU, watts, as an operator sets it with `nvidia-smi -pl`: replaces the power
    /// profile's `cap_w` when pricing and throttling stages. Absent: the profile's cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_cap_w: Option<f64>,
    /// SM clock limit of each GPU, MHz, as `nvidia-smi -lgc` sets it: the clock fraction never exceeds
    /// this over the device's `max_sm_clock_mhz`. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<f64>,
    /// A power mode of the device (a Jetson's `nvpmodel` mode, by name, from the catalog's
    /// `power_modes`): caps the SM clock at the mode's GPU clock and the memory bandwidth at its memory
    /// clock, both as fractions of the device's maxima (docs/edge.md). Absent: the device's maxima.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mode: Option<String>,
    /// Threads a CPU device runs the model on (llama.cpp's `-t`), from 1 to the device's hardware
    /// threads: prices the run at the compute and bandwidth that many threads reach under an equal
    /// split of the work (the catalog's `cpu` topology; docs/edge.md, "CPU threads, calibrated on
    /// llama.cpp"). Absent: the device's full peaks, as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Partial GPU offload (llama.cpp's `-ngl`): the CPU, from the device catalog, that holds and
    /// runs the layers `gpu_layers` leaves off the GPU (`hardware.threads` is then its threads).
    /// Needs `gpu_layers` (docs/edge.md, "Partial GPU offload (-ngl)"). Absent: no offload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu: Option<String>,
    /// Partial GPU offload: how many of the model's layers `hardware.gpu` holds and runs, as
    /// llama.cpp's `-ngl` counts them: the output layer first, then the last `gpu_layers - 1`
    /// repeating layers; the rest on `host_cpu`. From 0 to `num_layers + 1`. Needs `host_cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_layers: Option<u32>,
    /// Disaggregated serving: the first `prefill_replicas` of `replicas` only prefill, the others only
    /// decode, each prefilled request's KV cache moving over `kv_link` (docs/disaggregation.md).
    /// 0 (default): every replica does both (colocated serving).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prefill_replicas: u32,
    /// The link a prefill replica's KV cache crosses to a decode replica, per GPU: a preset name
    /// (`nvlink4`, `infiniband_ndr`, ...) or `{bandwidth_gb_s, latency_us, power_w}`. Required with
    /// `prefill_replicas` > 0; written back resolved (a preset as its numbers and name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_link: Option<KvLinkConfig>,
    /// Disaggregated serving: the prefill pool's own hardware (Splitwise's mixed devices, DistServe's
    /// per-phase parallelism). Absent: the prefill pool is laid out as `hardware` says, as the decode
    /// pool is. Needs `prefill_replicas` > 0; written back resolved, every field filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_pool: Option<PoolHardwareConfig>,
}

/// `hardware.prefill_pool`: the hardware of the prefill replicas. Each field absent takes the value
/// `hardware` gives, except the power cap and clock limit, which are the device's own: absent, they
/// are `hardware`'s only when the pool's device is `hardware.gpu`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolHardwareConfig {
    /// Device id (or alias) from the device catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// Tensor-parallel degree of each prefill replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_parallel: Option<u32>,
    /// Pipeline stages of each prefill replica: must equal `hardware.pipeline_stages` (the loop runs
    /// one pipeline depth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_stages: Option<u32>,
    /// Fraction of each prefill GPU's memory the engine may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_utilization: Option<f64>,
    /// Power limit of each prefill GPU, watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_cap_w: Option<f64>,
    /// SM clock limit of each prefill GPU, MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<f64>,
    /// Power mode of each prefill GPU (the device's `power_modes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mode: Option<String>,
    /// Power profile of the prefill pool's device (default: `energy.power_profile` when the pool's
    /// device is `hardware.gpu`, else `profiles/power/<device id>.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_profile: Option<PathBuf>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// `hardware.kv_link`: a preset of [`crate::config::pools::LINK_PRESETS`] by name, or the numbers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KvLinkConfig {
    Preset(String),
    Custom(KvLinkNumbers),
}

/// A link's numbers, per GPU and direction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KvLinkNumbers {
    /// The preset these numbers came from (written by the resolved config; informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Bandwidth of each GPU's link, GB/s (1e9 bytes per second), one direction.
    pub bandwidth_gb_s: f64,
    /// Fixed time of each transfer before its bytes flow (connection, handshake, first byte), us.
    #[serde(default)]
    pub latency_us: f64,
    /// Power each GPU's link (its NIC) draws while a transfer is in flight above its idle, W.
    #[serde(default)]
    pub power_w: f64,
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

fn default_gpu_memory_utilization() -> f64 {
    0.9
}

/// Global routing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterKind {
    /// Replica i, i+1, ... in turn.
    #[default]
    RoundRobin,
    /// The replica with the fewest requests assigned and not yet finished (ties: lowest index).
    LeastOutstanding,
    /// A uniformly random replica, from the run's `router` random stream.
    Random,
}

impl RouterKind {
    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            RouterKind::RoundRobin => "round_robin",
            RouterKind::LeastOutstanding => "least_outstanding",
            RouterKind::Random => "random",
        }
    }
}

/// Batching policy of each replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// vLLM (v0 scheduler): prefill-first, paged KV cache, preempt-and-recompute.
    Vllm,
    /// Orca: iteration-level batching, prefills and decodes mixed, memory reserved for the whole request.
    Orca,
    /// Sarathi-Serve: chunked prefills piggybacked on decodes under a per-iteration token budget.
    Sarathi,
    /// FasterTransformer: static batches that run until their longest request finishes.
    FasterTransformer,
    /// LightLLM: token-granular KV cache, admission by projected peak memory, no preemption.
    Lightllm,
}

impl Policy {
    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Vllm => "vllm",
            Policy::Orca => "orca",
            Policy::Sarathi => "sarathi",
            Policy::FasterTransformer => "faster_transformer",
            Policy::Lightllm => "lightllm",
        }
    }
}

/// Replica-level batching settings. Fields that a policy does not use are rejected for that policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    pub policy: Policy,
    /// Most requests in one batch (vLLM's `max_num_seqs`).
    #[serde(default = "default_max_num_seqs")]
    pub max_num_seqs: u32,
    /// Most tokens (prefill + decode) in one iteration; for sarathi, the per-iteration token budget.
    #[serde(default = "default_max_num_batched_tokens")]
    pub max_num_batched_tokens: u32,
    /// Tokens per KV-cache block (paged attention). LightLLM allocates single tokens and ignores it.
    #[serde(default = "default_block_size")]
    pub block_size: u32,
    /// sarathi only: the largest prefill chunk of one request in one iteration (default: the token budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u32>,
    /// lightllm only: decode iterations a waiting prefill may be held back (default 10, as LightLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting_iters: Option<u32>,
    /// Use exactly this many KV-cache blocks (of `block_size` tokens) per replica instead of sizing the
    /// cache from device memory (vLLM's `num_gpu_blocks_override`). LightLLM gets as many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_gpu_blocks: Option<u64>,
    /// vllm and sarathi: keep the KV blocks of prompt prefixes after their requests finish and reuse
    /// them for later prompts with the same prefix (vLLM's automatic prefix caching), evicting the
    /// least recently used unreferenced blocks when memory is needed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_prefix_caching: bool,
}

fn default_max_num_seqs() -> u32 {
    128
}

fn default_max_num_batched_tokens() -> u32 {
    4096
}

fn default_block_size() -> u32 {
    16
}

/// The requests to serve.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Number of requests. Optional when arrivals or lengths come from a trace (then: every row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    pub arrival: ArrivalConfig,
    pub lengths: LengthsConfig,
    /// Trace file for `arrival: {type: trace}` and/or `lengths: {type: trace}`, in the layout
    /// `trace_format` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<PathBuf>,
    /// Layout of `trace`: `vidur` (default), `azure`, `burstgpt` or `mooncake` (see [`TraceFormat`]).
    #[serde(default, skip_serializing_if = "TraceFormat::is_default")]
    pub trace_format: TraceFormat,
    /// `burstgpt` only: keep only the rows whose `Model` is this (e.g. `ChatGPT`, `GPT-4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_model: Option<String>,
    /// Leave out the trace rows with 0 output tokens (BurstGPT logs a failed request so) instead of
    /// refusing the trace; a simulated request needs at least one output token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trace_skip_failed: bool,
    /// Shared prompt prefixes (system prompts): each request's prompt starts with one of `groups`
    /// prefixes of `tokens` tokens (shorter prompts share all but their last token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_prefix: Option<SharedPrefixConfig>,
    /// Multi-turn conversations: `requests` sessions arrive by `arrival`; each has a number of turns
    /// uniform in `turns`, and each turn after the first arrives `think_s` (exponential mean) after the
    /// previous one completes, its prompt the whole history plus new tokens drawn from `lengths`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionsConfig>,
    /// Offline work: a share of the requests may wait (with `carbon_aware`) and must complete within
    /// a deadline of their submission; `deadline_met`, `deadline_attainment` report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferrable: Option<DeferrableConfig>,
}

/// Deferrable requests of a workload.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeferrableConfig {
    /// Share of the requests that are deferrable, in [0, 1]; each request is drawn independently
    /// (a stream of its own: arrivals and lengths stay as they are).
    pub fraction: f64,
    /// Each deferrable request must complete within this many seconds of its submission.
    pub deadline_s: f64,
}

/// Multi-turn sessions of a workload.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// Turns per session, uniform over this inclusive range.
    pub turns: [u32; 2],
    /// Mean think time between a turn's completion and the next turn's arrival, seconds (exponential;
    /// 0: at once).
    pub think_s: f64,
}

/// Shared prompt prefixes of a workload.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefixConfig {
    /// Tokens of each prefix.
    pub tokens: u32,
    /// Distinct prefixes; each request draws one uniformly (default 1: one system prompt for all).
    #[serde(default = "one_group")]
    pub groups: u32,
}

fn one_group() -> u32 {
    1
}

/// The layouts a request trace is read in, each as its publisher releases it. Arrival times of the
/// published formats (all but `vidur`) are taken relative to the first row used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// CSV with `arrived_at` (seconds, used as they are), `num_prefill_tokens`, `num_decode_tokens`
    /// (Vidur's and simwatt's own request traces).
    #[default]
    Vidur,
    /// Azure LLM inference traces 2023 and 2024 (Azure/AzurePublicDataset): CSV with `TIMESTAMP` (a
    /// date and time such as `2023-11-16 18:15:46.6805900` or `2024-05-12 00:00:00.001163+00:00`),
    /// `ContextTokens`, `GeneratedTokens`.
    Azure,
    /// BurstGPT (HPMLL/BurstGPT): CSV with `Timestamp` (seconds), `Model`, `Request tokens`,
    /// `Response tokens`, `Total tokens`, `Log Type`.
    Burstgpt,
    /// Mooncake (kvcache-ai/Mooncake): JSON lines `{"timestamp": ms, "input_length": n,
    /// "output_length": m, "hash_ids": [..]}`, one hash id per 512-token prompt block.
    Mooncake,
}

impl TraceFormat {
    fn is_default(&self) -> bool {
        *self == TraceFormat::Vidur
    }

    /// The name the config uses.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Vidur => "vidur",
            TraceFormat::Azure => "azure",
            TraceFormat::Burstgpt => "burstgpt",
            TraceFormat::Mooncake => "mooncake",
        }
    }
}

/// Inter-arrival process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalConfig {
    /// Exponential gaps with mean 1/rate (requests per second).
    Poisson { rate: f64 },
    /// Gamma gaps with mean 1/rate and coefficient of variation `cv` (burstiness; cv = 1 is Poisson).
    Gamma { rate: f64, cv: f64 },
    /// Constant gaps of exactly 1/rate.
    Static { rate: f64 },
    /// Every request arrives at time 0.
    AllAtOnce,
    /// Arrival times from the trace's time column (seconds; see [`TraceFormat`]), multiplied by
    /// `time_scale`.
    Trace {
        #[serde(default = "unit_scale")]
        time_scale: f64,
    },
}

fn unit_scale() -> f64 {
    1.0
}

/// Prompt and output lengths, in tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LengthsConfig {
    /// Prompt and output each uniform over an inclusive range `[min, max]`.
    Uniform { prompt: [u32; 2], output: [u32; 2] },
    /// Every request has the same lengths.
    Fixed { prompt: u32, output: u32 },
    /// Total tokens Zipf-distributed over `[min, max]` with exponent `theta` (rank 1 = `min`), split into
    /// prompt and output by `prefill_to_decode_ratio` (as Vidur's Zipf generator).
    Zipf {
        min: u32,
        max: u32,
        theta: f64,
        #[serde(default = "default_pd_ratio")]
        prefill_to_decode_ratio: f64,
    },
    /// Lengths from the trace's prompt and output token columns (see [`TraceFormat`]), in row order.
    Trace,
}

fn default_pd_ratio() -> f64 {
    20.0
}

/// Execution-time model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PredictorConfig {
    /// Profile-fitted model when profiles exist for the (device, model, TP), else the roofline. The run's
    /// provenance and summary say which was used.
    Auto(ProfilesConfig),
    /// Profile-fitted model; an error when no profile exists for the (device, model, TP).
    Profiles(ProfilesConfig),
    /// Roofline from the model's FLOPs and bytes against the device's peaks, scaled by efficiencies.
    Roofline(RooflineConfig),
}

/// Settings of the profile-fitted predictor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesConfig {
    /// Folder with Vidur-format profiles (`compute/<device>/<model>/mlp.csv`, `network/..`,
    /// `attention/a100/attention.csv`).
    #[serde(default = "default_profiles_dir")]
    pub dir: PathBuf,
    /// Seed of the forests (independent of the run seed, so runs share one fitted model).
    #[serde(default)]
    pub forest_seed: u64,
    /// Reuse fitted tables from the on-disk cache.
    #[serde(default = "yes")]
    pub cache: bool,
    /// Host cost per iteration (scheduling, sampling, input preparation, output processing):
    /// `profile` fits it against batch size from the device's cpu_overheads.csv when that has rows for
    /// the model and TP (else the constant below applies); `constant` always uses the constant.
    #[serde(default)]
    pub cpu_overheads: CpuOverheads,
    /// Fixed cost per iteration on the host when no CPU-overhead profile applies, milliseconds.
    #[serde(default = "default_iteration_overhead_ms")]
    pub iteration_overhead_ms: f64,
}

/// Where the host cost of an iteration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuOverheads {
    /// Fitted from the CPU-overhead profile when it covers the model and TP.
    #[default]
    Profile,
    /// `iteration_overhead_ms` for every iteration.
    Constant,
}

impl Default for ProfilesConfig {
    fn default() -> Self {
        ProfilesConfig {
            dir: default_profiles_dir(),
            forest_seed: 0,
            cache: true,
            cpu_overheads: CpuOverheads::default(),
            iteration_overhead_ms: default_iteration_overhead_ms(),
        }
    }
}

fn default_profiles_dir() -> PathBuf {
    PathBuf::from("profiles/vidur")
}

fn yes() -> bool {
    true
}

/// Settings of the roofline predictor.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RooflineConfig {
    /// Achieved fraction of peak compute in dense matrix work.
    #[serde(default = "default_compute_efficiency")]
    pub compute_efficiency: f64,
    /// Achieved fraction of peak memory bandwidth.
    #[serde(default = "default_memory_efficiency")]
    pub memory_efficiency: f64,
    /// Fixed cost of each transformer layer (kernel launches, small ops), microseconds.
    #[serde(default = "default_layer_overhead_us")]
    pub layer_overhead_us: f64,
    /// Fixed cost per iteration on the host (scheduling, sampling, input preparation), milliseconds.
    #[serde(default = "default_iteration_overhead_ms")]
    pub iteration_overhead_ms: f64,
}

impl Default for RooflineConfig {
    fn default() -> Self {
        RooflineConfig {
            compute_efficiency: default_compute_efficiency(),
            memory_efficiency: default_memory_efficiency(),
            layer_overhead_us: default_layer_overhead_us(),
            iteration_overhead_ms: default_iteration_overhead_ms(),
        }
    }
}

impl Default for PredictorConfig {
    fn default() -> Self {
        PredictorConfig::Auto(ProfilesConfig::default())
    }
}

fn default_compute_efficiency() -> f64 {
    0.6
}

fn default_memory_efficiency() -> f64 {
    0.8
}

fn default_layer_overhead_us() -> f64 {
    20.0
}

fn default_iteration_overhead_ms() -> f64 {
    2.0
}

/// Where the model and device catalogs come from (default: the ones built into simwatt, copies of
/// `profiles/models.yaml` and `profiles/devices.yaml`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<PathBuf>,
}
