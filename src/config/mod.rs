//! Configs: read YAML, apply `--set` overrides, check every value, and resolve names against the catalogs.
//!
//! Input: a YAML file and `dotted.key=value` overrides, the catalogs, the power profile and region files
//! it names. Output: a [`Scenario`], the validated and resolved description of one run that the rest of
//! simwatt consumes (typed hardware and scheduler with every default filled in, the parsed start time,
//! the loaded power profile and regions), and the resolved YAML for `config.resolved.yaml`. Every error
//! names the file, the dotted field and the value. It may import only the foundation modules.

pub mod builtin;
pub mod carbon_aware;
pub mod data;
pub mod edge;
pub mod engine_profile;
pub mod microgrid;
pub mod offload;
pub mod pools;
pub mod power_profile;
pub mod raw;
pub mod region;
pub mod slo;
pub mod vllm_args;

use crate::catalog::{Catalog, Catalogs, DeviceSpec, ModelSpec};
use crate::error::{Error, Result};
pub use engine_profile::EngineProfile;
pub use power_profile::{PowerProfile, MIN_CLOCK};
pub use raw::*;
use region::{Embodied, Region};
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads `path` as YAML and applies the overrides, returning the merged YAML tree.
pub fn load_tree(path: &Path, overrides: &[String]) -> Result<Value> {
    let text = crate::input::read_text(path)?;
    crate::input::check_yaml_depth(path, &text)?;
    let mut tree: Value = serde_yaml::from_str(&text).map_err(|e| Error::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if tree.is_null() {
        tree = Value::Mapping(Default::default());
    }
    if !tree.is_mapping() {
        return Err(Error::Yaml {
            path: path.to_path_buf(),
            message: "the top level must be a mapping of keys to values".into(),
        });
    }
    for expr in overrides {
        apply_override(&mut tree, expr)?;
    }
    Ok(tree)
}

/// Applies one `dotted.key=value` override to a YAML tree. The value is read as YAML, so `2.0` is a
/// number, `[1, 2]` a list and `vllm` a string. Missing intermediate mappings are created; whether the
/// key exists is checked when the tree is parsed into a config.
pub fn apply_override(tree: &mut Value, expr: &str) -> Result<()> {
    let bad = |message: &str| Error::Override {
        expr: expr.to_string(),
        message: message.to_string(),
    };
    let (key, value) = expr
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE, e.g. hardware.replicas=4"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
        return Err(bad(
            "the key must be dotted names, e.g. scheduler.max_num_seqs",
        ));
    }
    if let Some(why) = crate::input::yaml_too_deep(value) {
        return Err(bad(&format!("the value is not accepted: {why}")));
    }
    let value: Value = serde_yaml::from_str(value)
        .map_err(|e| bad(&format!("the value is not valid YAML: {e}")))?;
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = tree;
    for (i, part) in parts.iter().enumerate() {
        let map = match node {
            Value::Mapping(m) => m,
            _ => {
                return Err(bad(&format!(
                    "`{}` is not a mapping, so it has no key `{part}`",
                    parts[..i].join(".")
                )))
            }
        };
        let k = Value::String(part.to_string());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(());
        }
        if !map.contains_key(&k) || map.get(&k).is_some_and(|v| v.is_null()) {
            map.insert(k.clone(), Value::Mapping(Default::default()));
        }
        node = map.get_mut(&k).expect("inserted above");
    }
    Ok(())
}

/// Parses a YAML tree into the typed config, naming the dotted field of any error.
pub fn parse_tree(path: &Path, mut tree: Value) -> Result<RawConfig> {
    // A predictor section without `type` is the default kind (auto), so `--set
    // predictor.iteration_overhead_ms=3` works on a config that never mentions the predictor.
    if let Some(Value::Mapping(p)) = tree.get_mut("predictor") {
        let key = Value::String("type".into());
        if !p.contains_key(&key) {
            p.insert(key, Value::String("auto".into()));
        }
    }
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let field = e.path().to_string();
        let mut message = e.inner().to_string();
        if let Some(h) = unknown_field_hint(&field, &message) {
            message = format!("{message}. {h}");
        }
        Error::Field {
            path: path.to_path_buf(),
            field,
            message,
        }
    })
}

/// The hint for serde's `unknown field `NAME`, expected ...` at `field` when NAME is one of vLLM's
/// engine arguments ([`vllm_args::hint`]).
fn unknown_field_hint(field: &str, message: &str) -> Option<String> {
    let name = message.strip_prefix("unknown field `")?.split_once('`')?.0;
    // The path may end at the unknown key or at the mapping that holds it.
    let section = field
        .strip_suffix(name)
        .map(|s| s.trim_end_matches('.'))
        .unwrap_or(field);
    let section = if section == "." { "" } else { section };
    vllm_args::hint(name, section)
}

/// Reads, overrides and parses a config file.
pub fn load(path: &Path, overrides: &[String]) -> Result<RawConfig> {
    parse_tree(path, load_tree(path, overrides)?)
}

/// A validated, resolved run description: every default filled in, every name looked up, every file it
/// names read. Nothing downstream reads the raw YAML; `config.resolved.yaml` is written from here
/// ([`Scenario::resolved_yaml`]).
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The config file the scenario came from (for error messages and provenance).
    pub source: PathBuf,
    /// The config with every default filled in, as written to `config.resolved.yaml`.
    raw: RawConfig,
    /// The shipped data directory the config's default files came from (`None`: none was found, so
    /// the run has no Vidur profiles, power profile or regions unless the config names them).
    pub data_dir: Option<data::DataDir>,
    /// Master seed; every random stream of the run is derived from it.
    pub seed: u64,
    pub model_name: String,
    pub model: ModelSpec,
    pub device_name: String,
    /// The device as the run's execution-time model prices it: the catalog's entry, or, with
    /// `hardware.threads` on a CPU, the peaks that many threads reach.
    pub device: DeviceSpec,
    /// The device as its power profile sees it: the catalog's entry, whole-chip peaks whatever
    /// `hardware.threads` says, so that a run on few threads reads as a partly used chip.
    pub power_device: DeviceSpec,
    /// The catalogs the names were looked up in (shared by every scenario resolved against the same
    /// [`Catalogs`] that names no catalog file).
    pub catalog: Arc<Catalog>,
    pub hardware: Hardware,
    pub memory: MemoryPlan,
    pub router: RouterKind,
    /// Disaggregated serving: which replicas prefill, which decode, and the link between them
    /// (`None`: colocated, every replica does both).
    pub disaggregation: Option<pools::Disaggregation>,
    /// Disaggregated serving with `hardware.prefill_pool`: the prefill replicas resolved as a
    /// colocated scenario of their own (device, parallelism, memory plan, power profile); `None`: the
    /// prefill replicas are laid out as this scenario's `hardware` says.
    pub prefill_pool: Option<Box<Scenario>>,
    pub scheduler: Scheduler,
    pub workload: WorkloadConfig,
    pub predictor: PredictorConfig,
    pub energy: Energy,
    pub engine: Engine,
    /// Weights, arithmetic and KV-cache precision, with every byte count the run uses.
    pub precision: crate::precision::Precision,
    /// The per-request latency SLO (`None`: none set; the SLO columns are null).
    pub slo: Option<raw::SloConfig>,
    /// On-site solar and battery (`None`: none); its solar file is read by the driver.
    pub microgrid: Option<raw::MicrogridConfig>,
    /// Carbon-aware holding of deferrable requests (`None`: each is released when submitted).
    pub carbon_aware: Option<raw::CarbonAwareConfig>,
    /// The hourly power limit that follows the grid's carbon intensity (checked against the device
    /// and its power profile; `None`: none).
    pub carbon_power_cap: Option<raw::CarbonPowerCapConfig>,
    /// An edge device's battery and thermal model (`None`: none).
    pub edge: Option<raw::EdgeConfig>,
    /// Partial GPU offload (`hardware.gpu_layers` on `hardware.host_cpu`; `None`: none).
    pub offload: Option<offload::Offload>,
}

/// The serving engine of a run, its profile read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    pub profile: EngineProfile,
    /// The profile's file as shown in outputs (`built-in` for the vidur engine,
    /// `built-in:profiles/engine/<name>-<version>.yaml` for a shipped profile built into the binary).
    pub profile_path: String,
    /// Where the profile was read from (`None`: the vidur engine, which is code).
    pub origin: Option<data::Origin>,
}

/// Devices and how the model is laid out on them, checked against the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hardware {
    /// GPUs per pipeline stage.
    pub tensor_parallel: u32,
    /// A mixture-of-experts model's experts spread whole over the tensor-parallel GPUs (and over
    /// the data-parallel ranks').
    pub expert_parallel: bool,
    /// Data-parallel attention ranks of `tensor_parallel` GPUs each in a replica, the experts spread
    /// over all of them (`hardware.data_parallel`; 1: none).
    pub data_parallel: u32,
    /// Pipeline-parallel stages per replica.
    pub pipeline_stages: u32,
    /// Independent model replicas.
    pub replicas: u32,
    /// Fraction of device memory the engine may use.
    pub gpu_memory_utilization: f64,
    /// The power limit set by `hardware.power_cap_w`, watts (`None`: the power profile's `cap_w`,
    /// which is then the limit in force). When set, the resolved power profile's `cap_w` holds it.
    pub power_cap_w: Option<f64>,
    /// The SM clock limit set by `hardware.sm_clock_mhz`, MHz.
    pub sm_clock_mhz: Option<f64>,
    /// The highest clock fraction the SM clock limit and the power mode allow: the lower of
    /// `sm_clock_mhz / max_sm_clock_mhz` and the mode's `gpu_max_mhz / max_sm_clock_mhz`, 1 without
    /// either.
    pub clock_limit: f64,
    /// The highest memory-clock fraction the power mode (`hardware.power_mode`) allows: its
    /// `emc_max_mhz / max_memory_clock_mhz` of the device, 1 without a mode. Memory-bound work slows
    /// by it (the power model stretches a stage's memory-bound share by its inverse).
    pub memory_clock: f64,
}

/// Replica-level batching settings with every default filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduler {
    pub policy: Policy,
    pub max_num_seqs: u32,
    pub max_num_batched_tokens: u32,
    /// Tokens per KV-cache block as configured (the cache itself: [`MemoryPlan::block_size`]).
    pub block_size: u32,
    /// sarathi: the largest prefill chunk of one request in one iteration (default: the token budget).
    pub chunk_size: u32,
    /// lightllm: decode iterations a waiting prefill may be held back (default 10, as LightLLM).
    pub max_waiting_iters: u32,
    /// KV-cache blocks per replica given by the config instead of sized from memory.
    pub num_gpu_blocks: Option<u64>,
    /// vllm and sarathi: prompt-prefix blocks are kept and reused (automatic prefix caching).
    pub enable_prefix_caching: bool,
}

/// LightLLM's default for `scheduler.max_waiting_iters`.
pub const DEFAULT_MAX_WAITING_ITERS: u32 = 10;

/// The energy, carbon, cost and water inputs of a run, read and checked.
#[derive(Debug, Clone)]
pub struct Energy {
    /// The device's power profile, when there is one.
    pub power_profile: Option<PowerProfile>,
    /// Where it was read from, as shown in outputs (empty without one).
    pub power_profile_path: String,
    /// Where it was read from: the configured file, the data directory's, or the built-in copy.
    pub power_profile_origin: Option<data::Origin>,
    /// Why there is no power profile, when there is none, or why the one used may not fit the
    /// device (it was fitted on another).
    pub note: Option<String>,
    /// Host power per GPU, watts.
    pub host_power_w_per_gpu: f64,
    /// When the simulated run starts (for hourly series).
    pub start_time: chrono::DateTime<chrono::Utc>,
    /// The region files asked for, in order (`<regions_dir>/<id>.yaml`); read and checked by
    /// [`Scenario::load_regions`] once per run, so that a sweep checking thousands of configs does not
    /// read every hourly series each time.
    pub region_files: Vec<(String, PathBuf)>,
    /// Embodied carbon of the device (read only when there is a power profile; `None` when
    /// `embodied.yaml` or the device is absent).
    pub embodied: Option<Embodied>,
    /// Least length of the accounting window, seconds (`energy.min_span_s`).
    pub min_span_s: Option<f64>,
    /// Partial GPU offload: the host CPU's power profile (`None` without offload, or when the run
    /// has no power profile of its GPU and so no energy).
    pub host_cpu_power: Option<HostCpuProfile>,
}

/// The power profile of the host CPU of a partial GPU offload, and where it was read from.
#[derive(Debug, Clone)]
pub struct HostCpuProfile {
    pub profile: PowerProfile,
    /// Where it was read from (provenance.json's `inputs`).
    pub origin: data::Origin,
    /// Why it may not fit the CPU (it is another device's), when it may not.
    pub note: Option<String>,
}

/// How device memory is split on one GPU of a replica, and the resulting KV cache per replica.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemoryPlan {
    /// Memory the engine may use per GPU (device memory x gpu_memory_utilization), bytes.
    pub usable_bytes_per_gpu: f64,
    /// Weights held by one GPU (its share of the layers of its stage, embeddings on the first and last
    /// stage), bytes.
    pub weight_bytes_per_gpu: f64,
    /// Peak activation memory reserved per GPU for a batch of `max_num_batched_tokens`, bytes.
    pub activation_bytes_per_gpu: f64,
    /// KV-cache bytes one token takes on one GPU (its layers, its share of the KV heads).
    pub kv_bytes_per_token_per_gpu: u64,
    /// Tokens per block (1 for LightLLM's token-granular cache).
    pub block_size: u32,
    /// KV-cache blocks (of `block_size` tokens) per replica.
    pub num_blocks: u64,
    /// Whether `num_blocks` came from `scheduler.num_gpu_blocks` rather than from memory.
    pub blocks_overridden: bool,
    /// Sliding-window layers kept in KV-cache groups of their own (vLLM V1's hybrid KV cache
    /// manager); `None`: every layer holds every token, and a block holds all of a stage's layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_groups: Option<KvGroups>,
}

/// The memory plan of a partial GPU offload ([`offload::Offload`]): the GPU holds its layers' weights
/// (and the output head at full offload), the activations of one forward pass and its layers' KV
/// cache; host memory holds the other layers' weights, the input embedding, the head otherwise and
/// those layers' KV cache. The KV cache holds as many tokens as the tighter of the two sides allows.
/// Every layer holds every token (no hybrid KV-cache groups: llama.cpp has none).
#[allow(clippy::too_many_arguments)]
fn plan_offload_memory(
    path: &Path,
    raw: &RawConfig,
    (model_name, model): (&str, &ModelSpec),
    (device, precision): (&DeviceSpec, &crate::precision::Precision),
    o: &offload::Offload,
    (usable, activation_bytes_per_gpu): (f64, f64),
    kv_per_layer: f64,
    block_size: u32,
) -> Result<MemoryPlan> {
    let field = "hardware.gpu_layers";
    let layers = model.num_layers;
    let gpu_kv = (kv_per_layer * o.layers_on_gpu as f64).round() as u64;
    let host_kv = (kv_per_layer * (layers - o.layers_on_gpu) as f64).round() as u64;
    let free = usable - o.gpu_weight_bytes - activation_bytes_per_gpu;
    if free <= 0.0 {
        // The most layers whose weights fit beside the activations.
        let embed = model.vocab_size as f64 * model.hidden_size as f64 * precision.embedding_bytes;
        let fits = |n: u32| {
            let (on_gpu, head) = offload::placement(n, layers);
            let w = precision.layer_weight_bytes(model, layers - on_gpu, on_gpu)
                + if head { embed } else { 0.0 };
            w + activation_bytes_per_gpu < usable
        };
        let most = (0..=layers + 1).rev().find(|&n| fits(n));
        let hint = match most {
            Some(n) => format!("at most {n} fit"),
            None => "not even 0 fit: lower scheduler.max_num_batched_tokens or max_num_seqs".into(),
        };
        return Err(Error::invalid(
            path,
            field,
            o.gpu_layers,
            format!(
                "{model_name}'s weights on the GPU at this -ngl ({} repeating layers{}) take {:.2} GB, which with {:.2} GB of activations do not fit in the {:.2} GB usable on {} ({} GB x gpu_memory_utilization {}); {hint}",
                o.layers_on_gpu,
                if o.head_on_gpu { " and the output layer" } else { "" },
                o.gpu_weight_bytes / 1e9,
                activation_bytes_per_gpu / 1e9,
                usable / 1e9,
                device.name,
                device.memory_gb,
                raw.hardware.gpu_memory_utilization
            ),
        ));
    }
    let host = o.host_cpu.memory_bytes();
    let host_free = host - o.host_weight_bytes;
    if host_free <= 0.0 {
        return Err(Error::invalid(
            path,
            field,
            o.gpu_layers,
            format!(
                "the {} layers left on {} take {:.2} GB of host memory with the embeddings, more than its {} GB (the catalog's memory_gb); put more layers on the GPU",
                layers - o.layers_on_gpu,
                o.host_cpu_name,
                o.host_weight_bytes / 1e9,
                o.host_cpu.memory_gb
            ),
        ));
    }
    let (num_blocks, blocks_overridden) = match raw.scheduler.num_gpu_blocks {
        Some(n) => (n * (raw.scheduler.block_size / block_size) as u64, true),
        None => {
            let side = |free: f64, per_token: u64| {
                if per_token == 0 {
                    u64::MAX
                } else {
                    (free / (per_token as f64 * block_size as f64)).floor() as u64
                }
            };
            let blocks = side(free, gpu_kv).min(side(host_free, host_kv));
            if blocks == 0 {
                return Err(Error::invalid(
                    path,
                    "scheduler.block_size",
                    block_size,
                    format!(
                        "one KV-cache block of {block_size} tokens does not fit beside {model_name}'s weights on the GPU ({:.2} GB left) or in host memory ({:.2} GB left); use a smaller block_size",
                        free / 1e9,
                        host_free / 1e9
                    ),
                ));
            }
            (blocks, false)
        }
    };
    Ok(MemoryPlan {
        usable_bytes_per_gpu: usable,
        weight_bytes_per_gpu: o.gpu_weight_bytes,
        activation_bytes_per_gpu,
        kv_bytes_per_token_per_gpu: gpu_kv,
        block_size,
        num_blocks,
        blocks_overridden,
        kv_groups: None,
    })
}

/// vLLM V1's hybrid KV cache manager (docs/design/hybrid_kv_cache_manager.md in vLLM): the layers of a
/// model with full-attention and sliding-window layers are split into groups of `layers_per_group`
/// (the smaller of the two counts, the last group of a kind padded), every block of the pool holds
/// `block_size` tokens of one group, and a sliding group holds blocks only for the last window of
/// tokens, freeing those that fall out of it. `num_blocks` then counts such group blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KvGroups {
    pub layers_per_group: u32,
    /// Groups of full-attention layers: each holds a block for every `block_size` tokens.
    pub full: u32,
    /// Groups of sliding-window layers: each holds at most `window_blocks` blocks.
    pub sliding: u32,
    /// Blocks a sliding group holds at most: those the last `window - 1` tokens can span, and the
    /// one being written.
    pub window_blocks: u32,
}

impl Scenario {
    /// Validates `raw` and resolves it against the catalogs it names, the built-in ones from
    /// `catalogs`. `path` names the config in errors.
    pub fn resolve(catalogs: &Catalogs, path: &Path, mut raw: RawConfig) -> Result<Self> {
        let inv = |field: &str, value: &dyn std::fmt::Display, msg: &str| {
            Error::invalid(path, field, value, msg)
        };
        refuse_empty_paths(path, &raw)?;
        // The config as read, for the prefill pool's own resolution.
        let original = raw.hardware.prefill_pool.is_some().then(|| raw.clone());
        let data = data::DataDir::find(path, raw.data_dir.as_deref());
        anchor_paths(path, data.as_ref(), &mut raw);
        let catalog = catalogs.load(
            raw.catalog.models.as_deref(),
            raw.catalog.devices.as_deref(),
        )?;
        let (model_name, model) = catalog.model(&raw.model).ok_or_else(|| {
            let known: Vec<&str> = catalog.model_names().collect();
            inv(
                "model",
                &raw.model,
                &format!(
                    "not in the model catalog; known models: {}",
                    known.join(", ")
                ),
            )
        })?;
        let (model_name, model) = (model_name.to_string(), model.clone());
        let (device_name, device) = catalog.device(&raw.hardware.gpu).ok_or_else(|| {
            let known: Vec<&str> = catalog.device_names().collect();
            inv(
                "hardware.gpu",
                &raw.hardware.gpu,
                &format!(
                    "not in the device catalog (names are matched as nvidia-smi prints them, e.g. \
                     `NVIDIA H100 80GB HBM3`, but a different memory size or form factor is a \
                     different device); known devices: {}",
                    known.join(", ")
                ),
            )
        })?;
        let (device_name, device) = (device_name.to_string(), device.clone());
        let power_device = device.clone();
        // Partial GPU offload: hardware.threads are the host CPU's.
        let host_cpu = offload::host_cpu(
            path,
            &raw.hardware,
            &raw.predictor,
            &catalog,
            (&device_name, &device),
            &model,
            |name, cpu| resolve_threads(path, &raw.hardware, name, cpu),
        )?;
        let device = match host_cpu {
            Some(_) => device,
            None => resolve_threads(path, &raw.hardware, &device_name, device)?,
        };

        validate_hardware(path, &raw.hardware, &model_name, &model)?;

        validate_scheduler(path, &raw.scheduler)?;
        validate_workload(path, &raw.workload)?;
        validate_predictor(path, &raw.predictor)?;
        validate_energy(path, &raw)?;
        let precision = resolve_precision(
            path,
            (&catalog.models_origin, &model_name),
            &mut raw,
            &model,
            &device,
        )?;

        let offload = match host_cpu {
            Some((name, cpu)) => {
                // The host CPU's own peak for the arithmetic; the config as resolved is the GPU's.
                let cpu_precision = resolve_precision(
                    path,
                    (&catalog.models_origin, &model_name),
                    &mut raw.clone(),
                    &model,
                    &cpu,
                )?;
                Some(offload::layout(
                    (name, cpu),
                    raw.hardware.gpu_layers.unwrap_or(0),
                    &device,
                    &model,
                    &precision,
                    cpu_precision,
                ))
            }
            None => None,
        };
        let memory = plan_memory(
            path,
            &raw,
            &model_name,
            &model,
            &device,
            &precision,
            offload.as_ref(),
        )?;
        fill_scheduler_defaults(&mut raw.scheduler);
        let disaggregation = pools::resolve(path, &mut raw)?;
        let prefill_pool = match &original {
            Some(o) => pools::prefill_pool(catalogs, &catalog, path, o, &mut raw)?,
            None => None,
        };
        let slo = slo::resolve(path, &raw)?;
        let microgrid = microgrid::resolve(path, raw.microgrid.as_ref())?;
        // The PV array's defaults, written so that config.resolved.yaml shows them.
        raw.microgrid.clone_from(&microgrid);
        let carbon_aware = carbon_aware::resolve(path, &raw)?;
        let edge = edge::resolve(path, raw.edge.as_ref())?;
        let mut energy = resolve_energy(path, &mut raw, &device_name, data.as_ref())?;
        energy.host_cpu_power = resolve_host_cpu_power(
            path,
            &mut raw,
            offload.as_ref().map(|o| o.host_cpu_name.as_str()),
            energy.power_profile.is_some(),
            data.as_ref(),
        )?;
        let clock_limit = resolve_limits(
            path,
            &raw.hardware,
            &device_name,
            &device,
            energy.power_profile.as_mut(),
        )?;
        let (mode_clock, memory_clock) = resolve_power_mode(
            path,
            &raw.hardware,
            &device_name,
            &device,
            energy.power_profile.is_some(),
        )?;
        let clock_limit = clock_limit.min(mode_clock);
        let carbon_power_cap = resolve_carbon_power_cap(
            path,
            &raw,
            &device_name,
            &device,
            energy.power_profile.as_ref(),
        )?;
        let engine = resolve_engine(path, &mut raw.engine, data.as_ref())?;
        let hw = &raw.hardware;
        let hardware = Hardware {
            tensor_parallel: hw.tensor_parallel,
            expert_parallel: hw.expert_parallel,
            data_parallel: hw.data_parallel,
            pipeline_stages: hw.pipeline_stages,
            replicas: hw.replicas,
            gpu_memory_utilization: hw.gpu_memory_utilization,
            power_cap_w: hw.power_cap_w,
            sm_clock_mhz: hw.sm_clock_mhz,
            clock_limit,
            memory_clock,
        };
        let sc = &raw.scheduler;
        let scheduler = Scheduler {
            policy: sc.policy,
            max_num_seqs: sc.max_num_seqs,
            max_num_batched_tokens: sc.max_num_batched_tokens,
            block_size: sc.block_size,
            chunk_size: sc.chunk_size.unwrap_or(sc.max_num_batched_tokens),
            enable_prefix_caching: sc.enable_prefix_caching,
            max_waiting_iters: sc.max_waiting_iters.unwrap_or(DEFAULT_MAX_WAITING_ITERS),
            num_gpu_blocks: sc.num_gpu_blocks,
        };
        Ok(Scenario {
            source: path.to_path_buf(),
            seed: raw.seed,
            model_name,
            model,
            device_name,
            device,
            power_device,
            catalog,
            hardware,
            memory,
            router: raw.router,
            disaggregation,
            prefill_pool,
            scheduler,
            workload: raw.workload.clone(),
            predictor: raw.predictor.clone(),
            energy,
            engine,
            precision,
            slo,
            microgrid,
            carbon_aware,
            carbon_power_cap,
            edge,
            offload,
            data_dir: data,
            raw,
        })
    }

    /// The power mode the run's device runs in (`hardware.power_mode`), as the catalog gives it.
    pub fn power_mode(&self) -> Option<&crate::catalog::PowerMode> {
        self.raw
            .hardware
            .power_mode
            .as_deref()
            .and_then(|m| self.device.power_mode(m))
    }

    /// What this run lacks that the shipped data would give the same config in the repository: a
    /// Vidur-profiles folder that does not exist (so an `auto` predictor falls back to the
    /// uncalibrated roofline; these profiles are too large to build into the binary), no power
    /// profile. Empty when nothing falls back. Power and engine profiles and regions missing from the
    /// data directory (or without one) come from the copies built into the binary, which is no
    /// fallback: provenance.json names which was read.
    pub fn fallbacks(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let PredictorConfig::Auto(p) = &self.predictor {
            if !p.dir.is_dir() {
                let hint = match &self.data_dir {
                    Some(_) => String::new(),
                    None => format!(
                        " (no data directory was found: set {} or the config's data_dir to the folder holding profiles/vidur)",
                        data::ENV
                    ),
                };
                v.push(format!(
                    "the Vidur profiles folder {} does not exist, so execution times come from the uncalibrated roofline{hint}",
                    p.dir.display()
                ));
            }
        }
        if let Some(n) = &self.energy.note {
            v.push(n.clone());
        }
        if let Some(n) = self
            .energy
            .host_cpu_power
            .as_ref()
            .and_then(|h| h.note.as_ref())
        {
            v.push(n.clone());
        }
        if let Some(f) = &self.precision.fallback {
            v.push(f.clone());
        }
        if let Some(p) = &self.prefill_pool {
            v.extend(
                p.fallbacks()
                    .into_iter()
                    .map(|f| format!("the prefill pool (hardware.prefill_pool): {f}")),
            );
        }
        v
    }

    /// Where the run's power profile was read from (`None`: no power profile).
    pub fn power_profile_origin(&self) -> Option<&data::Origin> {
        self.energy.power_profile_origin.as_ref()
    }

    /// The folder of region files the run reads.
    pub fn regions_dir(&self) -> &Path {
        &self.raw.regions_dir
    }

    /// Where the run's engine profile was read from (`None`: the `vidur` engine, which is code).
    pub fn engine_profile_origin(&self) -> Option<&data::Origin> {
        self.engine.origin.as_ref()
    }

    /// GPUs in one replica.
    pub fn gpus_per_replica(&self) -> u32 {
        self.gpus_per_stage() * self.hardware.pipeline_stages
    }

    /// GPUs in one pipeline stage of a replica: the tensor-parallel group, times the data-parallel
    /// ranks when the replica has them.
    pub fn gpus_per_stage(&self) -> u32 {
        self.hardware.tensor_parallel * self.hardware.data_parallel
    }

    /// The scenario whose hardware replica `r` runs on: the prefill pool's for a prefill replica
    /// when `hardware.prefill_pool` is set, else this one.
    pub fn pool_of(&self, r: u32) -> &Scenario {
        match (&self.prefill_pool, &self.disaggregation) {
            (Some(p), Some(d)) if r < d.prefill_replicas => p,
            _ => self,
        }
    }

    /// GPUs of every replica together (the prefill pool's replicas with their own GPUs).
    pub fn total_gpus(&self) -> u32 {
        match (&self.prefill_pool, &self.disaggregation) {
            (Some(p), Some(d)) => {
                d.prefill_replicas * p.gpus_per_replica()
                    + (self.hardware.replicas - d.prefill_replicas) * self.gpus_per_replica()
            }
            _ => self.hardware.replicas * self.gpus_per_replica(),
        }
    }

    /// The config with every default filled in, as YAML: the text of `config.resolved.yaml`.
    pub fn resolved_yaml(&self) -> Result<String> {
        serde_yaml::to_string(&self.raw).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Reads and checks the regions asked for, in order (each region file and its hourly series).
    pub fn load_regions(&self) -> Result<Vec<Region>> {
        self.energy
            .region_files
            .iter()
            .map(|(id, _)| region::load_region(&self.raw.regions_dir, id))
            .collect()
    }
}

/// Writes the defaults a policy uses into the scheduler section, so `config.resolved.yaml` shows them:
/// sarathi's chunk size (the token budget) and lightllm's `max_waiting_iters`. Fields a policy does
/// not use stay absent (the config rejects them for that policy).
fn fill_scheduler_defaults(s: &mut SchedulerConfig) {
    match s.policy {
        Policy::Sarathi => {
            s.chunk_size.get_or_insert(s.max_num_batched_tokens);
        }
        Policy::Lightllm => {
            s.max_waiting_iters.get_or_insert(DEFAULT_MAX_WAITING_ITERS);
        }
        Policy::Vllm | Policy::Orca | Policy::FasterTransformer => {}
    }
}

/// Refuses a path field given as an empty string, naming the field (anchored, it would name the
/// config's own folder and fail later with a message that names no field).
fn refuse_empty_paths(path: &Path, raw: &RawConfig) -> Result<()> {
    let mut fields = vec![
        ("data_dir", raw.data_dir.as_deref()),
        ("catalog.models", raw.catalog.models.as_deref()),
        ("catalog.devices", raw.catalog.devices.as_deref()),
        ("workload.trace", raw.workload.trace.as_deref()),
        ("energy.power_profile", raw.energy.power_profile.as_deref()),
        (
            "energy.host_cpu_power_profile",
            raw.energy.host_cpu_power_profile.as_deref(),
        ),
        ("engine.profile", raw.engine.profile.as_deref()),
        ("regions_dir", Some(raw.regions_dir.as_path())),
    ];
    if let PredictorConfig::Auto(p) | PredictorConfig::Profiles(p) = &raw.predictor {
        fields.push(("predictor.dir", Some(p.dir.as_path())));
    }
    match fields
        .into_iter()
        .find(|(_, p)| p.is_some_and(|p| p.as_os_str().is_empty()))
    {
        Some((field, _)) => Err(Error::invalid(
            path,
            field,
            "\"\"",
            "an empty path; name a file or folder, or leave the field out",
        )),
        None => Ok(()),
    }
}

/// Anchors every relative path the config names (see [`data::anchor`]): the catalogs, the trace,
/// the Vidur profiles, the power and engine profiles and the regions folder.
fn anchor_paths(path: &Path, data: Option<&data::DataDir>, raw: &mut RawConfig) {
    let a = |p: &Path| data::anchor(p, path, data);
    for p in [
        &mut raw.catalog.models,
        &mut raw.catalog.devices,
        &mut raw.workload.trace,
        &mut raw.energy.power_profile,
        &mut raw.energy.host_cpu_power_profile,
        &mut raw.engine.profile,
    ]
    .into_iter()
    .flatten()
    {
        *p = a(p);
    }
    raw.regions_dir = a(&raw.regions_dir);
    if let Some(m) = &mut raw.microgrid {
        let s = &mut m.solar;
        if s.file.is_none() && s.weather_file.is_none() {
            s.file = Some(raw::default_solar_file());
        }
        for p in [&mut s.file, &mut s.weather_file].into_iter().flatten() {
            *p = a(p);
        }
    }
    if let PredictorConfig::Auto(p) | PredictorConfig::Profiles(p) = &mut raw.predictor {
        p.dir = a(&p.dir);
    }
}

/// Where shipped engine profiles live.
pub const ENGINE_PROFILES_DIR: &str = "profiles/engine";

/// Where shipped power profiles live.
pub const POWER_PROFILES_DIR: &str = "profiles/power";

/// Reads the engine profile: the configured file, else the built-in `vidur` engine, else the shipped
/// `profiles/engine/<name>-<version>.yaml` (whose path is then written into the resolved config).
fn resolve_engine(
    path: &Path,
    e: &mut EngineConfig,
    data: Option<&data::DataDir>,
) -> Result<Engine> {
    if let Some(p) = &e.profile {
        let profile = EngineProfile::load(p)?;
        return Ok(Engine {
            profile,
            profile_path: data::shown(p, data),
            origin: Some(data::Origin::File(p.clone())),
        });
    }
    let name = e.name.trim();
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::invalid(
            path,
            "engine.name",
            &e.name,
            "must be an engine name such as vidur or vllm",
        ));
    }
    if name == "vidur" && e.version.is_none() {
        return Ok(Engine {
            profile: EngineProfile::vidur(),
            profile_path: "built-in".into(),
            origin: None,
        });
    }
    let Some(version) = e.version.as_deref() else {
        return Err(Error::invalid(
            path,
            "engine.version",
            "(absent)",
            format!(
                "engine {name} needs a version (shipped profiles: {})",
                shipped_engine_profiles(data).join(", ")
            ),
        ));
    };
    if version.is_empty() || version.contains(['/', '\\']) || version.starts_with('.') {
        return Err(Error::invalid(
            path,
            "engine.version",
            version,
            "must be a version such as 0.11",
        ));
    }
    let rel = PathBuf::from(format!("{name}-{version}.yaml"));
    let Some(origin) = data::locate_shipped(data, ENGINE_PROFILES_DIR, &rel) else {
        return Err(Error::invalid(
            path,
            "engine",
            format!("{name} {version}"),
            format!(
                "no profile {} (shipped: {}; or set engine.profile to a file, e.g. from `simwatt fit engine`)",
                engine_profiles_dir(data).join(&rel).display(),
                shipped_engine_profiles(data).join(", ")
            ),
        ));
    };
    let profile = EngineProfile::parse(&origin.name(), &origin.text()?)?;
    if let data::Origin::File(p) = &origin {
        e.profile = Some(p.clone());
    }
    Ok(Engine {
        profile,
        profile_path: origin.shown(data),
        origin: Some(origin),
    })
}

/// The folder of shipped engine profiles, in the data directory when there is one.
fn engine_profiles_dir(data: Option<&data::DataDir>) -> PathBuf {
    data.map_or_else(
        || PathBuf::from(ENGINE_PROFILES_DIR),
        |d| d.join(ENGINE_PROFILES_DIR),
    )
}

/// The shipped engine profiles, as `name-version`: those of the data directory and those built in.
fn shipped_engine_profiles(data: Option<&data::DataDir>) -> Vec<String> {
    let dir = engine_profiles_dir(data);
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| {
            d.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".yaml"))
                .map(str::to_string)
        })
        .chain(
            builtin::stems(ENGINE_PROFILES_DIR, ".yaml")
                .into_iter()
                .map(String::from),
        )
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Reads the power profile (the configured file, else the data directory's
/// `profiles/power/<device>.yaml` when it exists, which is then written into the resolved config, else
/// the built-in copy), the start time, the regions and, with a power profile, the device's embodied
/// carbon.
fn resolve_energy(
    path: &Path,
    raw: &mut RawConfig,
    device_name: &str,
    data: Option<&data::DataDir>,
) -> Result<Energy> {
    let found = load_power_profile(
        &mut raw.energy.power_profile,
        device_name,
        "the power profile",
        data,
    )?;
    let origin = found.as_ref().map(|(_, o, _)| o.clone());
    let (power_profile, power_profile_path, note) = match found {
        Some((profile, o, note)) => (Some(profile), o.shown(data), note),
        None => {
            let note = format!(
                "no power profile for {device_name} (none in the data directory{} and none built in; set energy.power_profile), so energy, carbon, cost and water are not computed",
                data.map_or_else(String::new, |d| format!(" {}", d.shown()))
            );
            (None, String::new(), Some(note))
        }
    };
    let start_time = chrono::DateTime::parse_from_rfc3339(&raw.energy.start_time)
        .map_err(|_| {
            Error::invalid(
                path,
                "energy.start_time",
                &raw.energy.start_time,
                "not an ISO 8601 / RFC 3339 time such as 2024-06-01T00:00:00Z",
            )
        })?
        .with_timezone(&chrono::Utc);
    let region_files = raw
        .region_ids()
        .into_iter()
        .map(|id| {
            let file = raw.regions_dir.join(format!("{id}.yaml"));
            (id, file)
        })
        .collect();
    let embodied = match &power_profile {
        Some(_) => region::load_embodied(&raw.regions_dir, device_name, raw.energy.lifetime_years)?,
        None => None,
    };
    Ok(Energy {
        power_profile,
        power_profile_path,
        power_profile_origin: origin,
        note,
        host_power_w_per_gpu: raw.energy.host_power_w_per_gpu,
        start_time,
        region_files,
        embodied,
        min_span_s: raw.energy.min_span_s,
        host_cpu_power: None,
    })
}

/// The power profile of `device`: the file `configured` names, else the data directory's
/// `profiles/power/<device>.yaml` when it exists, else the built-in copy; `None` when there is none.
/// A file read is written into `configured`, so the resolved config names it. A profile of another
/// device is used as it is (there may be no better) but comes with a note, `what` naming it, that the
/// run states and `--strict` refuses.
fn load_power_profile(
    configured: &mut Option<PathBuf>,
    device: &str,
    what: &str,
    data: Option<&data::DataDir>,
) -> Result<Option<(PowerProfile, data::Origin, Option<String>)>> {
    let origin = match configured {
        Some(p) => data::Origin::File(p.clone()),
        None => match data::locate_shipped(
            data,
            POWER_PROFILES_DIR,
            Path::new(&format!("{device}.yaml")),
        ) {
            Some(o) => o,
            None => return Ok(None),
        },
    };
    let profile = PowerProfile::load_from(&origin)?;
    if let data::Origin::File(p) = &origin {
        *configured = Some(p.clone());
    }
    let note = (!profile.device.eq_ignore_ascii_case(device)).then(|| {
        format!(
            "{what} {} is for device `{}`, not this run's `{device}`: its power figures are used as they are",
            origin.shown(data),
            profile.device
        )
    });
    Ok(Some((profile, origin, note)))
}

/// Reads the power profile of the host CPU `host_cpu` of a partial GPU offload as the GPU's is read:
/// `energy.host_cpu_power_profile`, else the data directory's `profiles/power/<host_cpu>.yaml`
/// (then written into the resolved config), else the built-in copy. Without offload the field is
/// refused; without a profile for the CPU, a run that prices its GPU's energy (`gpu_priced`) is
/// refused, naming `hardware.host_cpu`.
fn resolve_host_cpu_power(
    path: &Path,
    raw: &mut RawConfig,
    host_cpu: Option<&str>,
    gpu_priced: bool,
    data: Option<&data::DataDir>,
) -> Result<Option<HostCpuProfile>> {
    let Some(cpu) = host_cpu else {
        return match &raw.energy.host_cpu_power_profile {
            Some(p) => Err(Error::invalid(
                path,
                "energy.host_cpu_power_profile",
                p.display(),
                "needs hardware.host_cpu and hardware.gpu_layers beside it: it prices the host CPU of a partial GPU offload",
            )),
            None => Ok(None),
        };
    };
    let found = load_power_profile(
        &mut raw.energy.host_cpu_power_profile,
        cpu,
        "the host CPU's power profile",
        data,
    )?;
    let Some((profile, origin, note)) = found else {
        if !gpu_priced {
            return Ok(None);
        }
        return Err(Error::invalid(
            path,
            "hardware.host_cpu",
            cpu,
            format!(
                "there is no power profile for it (no {POWER_PROFILES_DIR}/{cpu}.yaml in the data directory{} and none built in), so the host CPU's energy under offload cannot be priced; set energy.host_cpu_power_profile to one",
                data.map_or_else(String::new, |d| format!(" {}", d.shown()))
            ),
        ));
    };
    Ok(Some(HostCpuProfile {
        note,
        profile,
        origin,
    }))
}

/// Checks a per-GPU power limit `w` (config field `field`) against the power profile and the device:
/// finite, above what the GPU draws with no work, and within the device's settable range (or, without
/// one in the catalog, not above the profile's own cap).
pub fn check_power_cap(
    path: &Path,
    field: &str,
    w: f64,
    device_name: &str,
    device: &DeviceSpec,
    profile: &PowerProfile,
) -> Result<()> {
    let inv = |field: &str, value: f64, msg: String| Error::invalid(path, field, value, msg);
    if !w.is_finite() {
        return Err(inv(field, w, "must be a finite number of watts".into()));
    }
    let floor = profile
        .idle_w
        .max(profile.p0_w)
        .max(profile.between_batches_w());
    if w <= floor {
        return Err(inv(
            field,
            w,
            format!(
                "must be above {floor} W, the most the power profile's GPU draws with no work (idle_w {}, loaded idle {}, p0_w {}): no clock brings a GPU below them",
                profile.idle_w,
                profile.between_batches_w(),
                profile.p0_w
            ),
        ));
    }
    match (device.power_limit_min_w, device.power_limit_max_w) {
        (Some(lo), Some(hi)) => {
            if !(lo..=hi).contains(&w) {
                return Err(inv(
                    field,
                    w,
                    format!(
                        "outside the power limits {device_name} accepts, {lo} to {hi} W (the device catalog's power_limit_min_w and power_limit_max_w)"
                    ),
                ));
            }
        }
        _ => {
            if w > profile.cap_w {
                return Err(inv(
                    field,
                    w,
                    format!(
                        "above the power profile's cap_w ({} W); the device catalog gives no settable power-limit range for {device_name} (power_limit_min_w, power_limit_max_w), so a limit above the profile's cap is refused",
                        profile.cap_w
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks the `carbon_power_cap` section: both limits valid for the device (as
/// `hardware.power_cap_w` would be), `dirty_w` at most `clean_w`, the clean intensity below the dirty
/// one; a power profile to act through, and neither a fixed `hardware.power_cap_w` nor a prefill pool
/// of its own hardware beside it. The hourly intensity it follows is read by the driver.
fn resolve_carbon_power_cap(
    path: &Path,
    raw: &RawConfig,
    device_name: &str,
    device: &DeviceSpec,
    profile: Option<&PowerProfile>,
) -> Result<Option<raw::CarbonPowerCapConfig>> {
    let Some(c) = raw.carbon_power_cap else {
        return Ok(None);
    };
    let inv = |field: &str, value: f64, msg: &str| {
        Error::invalid(path, format!("carbon_power_cap.{field}"), value, msg)
    };
    let Some(profile) = profile else {
        return Err(inv(
            "clean_w",
            c.clean_w,
            "needs a power profile (there is none for this device; set energy.power_profile): a power limit acts through the power model",
        ));
    };
    if let Some(w) = raw.hardware.power_cap_w {
        return Err(Error::invalid(
            path,
            "hardware.power_cap_w",
            w,
            "a fixed power limit cannot be set beside carbon_power_cap, which sets the limit hour by hour: remove one",
        ));
    }
    if raw.hardware.prefill_pool.is_some() {
        return Err(Error::invalid(
            path,
            "carbon_power_cap",
            "set",
            "is not modelled for a prefill pool of its own hardware (hardware.prefill_pool)",
        ));
    }
    check_power_cap(
        path,
        "carbon_power_cap.clean_w",
        c.clean_w,
        device_name,
        device,
        profile,
    )?;
    check_power_cap(
        path,
        "carbon_power_cap.dirty_w",
        c.dirty_w,
        device_name,
        device,
        profile,
    )?;
    if c.dirty_w > c.clean_w {
        return Err(inv(
            "dirty_w",
            c.dirty_w,
            &format!("must be at most carbon_power_cap.clean_w ({} W): the limit falls as the grid gets dirtier", c.clean_w),
        ));
    }
    if !(c.clean_g_per_kwh.is_finite() && c.clean_g_per_kwh >= 0.0) {
        return Err(inv(
            "clean_g_per_kwh",
            c.clean_g_per_kwh,
            "must be an intensity of at least 0 gCO2e/kWh",
        ));
    }
    if !(c.dirty_g_per_kwh.is_finite() && c.dirty_g_per_kwh > c.clean_g_per_kwh) {
        return Err(inv(
            "dirty_g_per_kwh",
            c.dirty_g_per_kwh,
            &format!(
                "must be an intensity above carbon_power_cap.clean_g_per_kwh ({})",
                c.clean_g_per_kwh
            ),
        ));
    }
    Ok(Some(c))
}

/// Checks the operator's limits of the hardware section against the device and its power profile,
/// writes a power limit into the profile (it replaces `cap_w`), and returns the clock fraction the SM
/// clock limit allows (1 without one).
///
/// `hardware.power_cap_w` must be finite, above every power the profile's GPU draws with no work (idle,
/// loaded idle, P_0: no clock brings a GPU below them) and within the device's settable range
/// (`power_limit_min_w`..`power_limit_max_w` of the catalog), or, where the catalog gives none, not
/// above the profile's own cap. `hardware.sm_clock_mhz` must be finite, at most the device's
/// `max_sm_clock_mhz` (a device without one refuses the knob) and at least [`MIN_CLOCK`] of it. Both
/// act only through the power model, so both need a power profile.
fn resolve_limits(
    path: &Path,
    hw: &HardwareConfig,
    device_name: &str,
    device: &DeviceSpec,
    profile: Option<&mut PowerProfile>,
) -> Result<f64> {
    let (field, value) = match (hw.power_cap_w, hw.sm_clock_mhz) {
        (Some(w), _) => ("hardware.power_cap_w", w),
        (None, Some(mhz)) => ("hardware.sm_clock_mhz", mhz),
        (None, None) => return Ok(1.0),
    };
    let inv = |field: &str, value: f64, msg: String| Error::invalid(path, field, value, msg);
    let Some(profile) = profile else {
        return Err(inv(
            field,
            value,
            format!(
                "needs a power profile for {device_name} (there is none; set energy.power_profile): a power or clock limit acts through the power model"
            ),
        ));
    };
    if let Some(w) = hw.power_cap_w {
        check_power_cap(
            path,
            "hardware.power_cap_w",
            w,
            device_name,
            device,
            profile,
        )?;
        profile.cap_w = w;
    }
    let Some(mhz) = hw.sm_clock_mhz else {
        return Ok(1.0);
    };
    let field = "hardware.sm_clock_mhz";
    if !(mhz.is_finite() && mhz > 0.0) {
        return Err(inv(
            field,
            mhz,
            "must be a finite number of MHz above 0".into(),
        ));
    }
    let Some(max) = device.max_sm_clock_mhz else {
        return Err(inv(
            field,
            mhz,
            format!(
                "the device catalog gives no max_sm_clock_mhz for {device_name}, so a clock limit cannot be set for it (add the device's maximum SM clock, with a source, to a catalog of your own: catalog.devices)"
            ),
        ));
    };
    if mhz > max {
        return Err(inv(
            field,
            mhz,
            format!("above {device_name}'s maximum SM clock, {max} MHz"),
        ));
    }
    let lowest = MIN_CLOCK * max;
    if mhz < lowest {
        return Err(inv(
            field,
            mhz,
            format!(
                "below {lowest} MHz, {}% of {device_name}'s maximum SM clock ({max} MHz), the lowest clock the power model goes to",
                MIN_CLOCK * 100.0
            ),
        ));
    }
    Ok(mhz / max)
}

/// The device as `hardware.threads` threads see it (the device itself without the knob): its peak
/// compute is `k x` the slowest thread's FMA rate and its bandwidth `min(device bandwidth, k x` the
/// slowest thread's bandwidth`)`, llama.cpp's equal split of each operation over its threads
/// ([`crate::catalog::CpuTopology`]). Refused on a device that is not a CPU, whose catalog entry gives
/// no `cpu` topology, or for 0 or more threads than the device has.
fn resolve_threads(
    path: &Path,
    hw: &HardwareConfig,
    device_name: &str,
    mut device: DeviceSpec,
) -> Result<DeviceSpec> {
    let Some(k) = hw.threads else {
        return Ok(device);
    };
    let field = "hardware.threads";
    if device.kind != "cpu" {
        return Err(Error::invalid(
            path,
            field,
            k,
            format!(
                "{device_name} is a {} device; threads are for CPU devices (kind: cpu)",
                device.kind
            ),
        ));
    }
    let Some(cpu) = device.cpu.clone() else {
        return Err(Error::invalid(
            path,
            field,
            k,
            format!(
                "the device catalog gives no cpu topology for {device_name} (add cores, clocks and hardware threads under its cpu:, with sources, to a catalog of your own: catalog.devices)"
            ),
        ));
    };
    if k == 0 || k > cpu.threads {
        return Err(Error::invalid(
            path,
            field,
            k,
            format!(
                "must be from 1 to {}, the hardware threads of {device_name}",
                cpu.threads
            ),
        ));
    }
    device.peak_tflops = cpu.split_flops(k) / 1e12;
    device.memory_bandwidth_gb_s = cpu.split_bandwidth(k, device.memory_bandwidth_bytes_s()) / 1e9;
    Ok(device)
}

/// The SM and memory clock fractions `hardware.power_mode` allows (both 1 without one): the mode's
/// `gpu_max_mhz / max_sm_clock_mhz` and `emc_max_mhz / max_memory_clock_mhz`. The mode must be one of
/// the device's `power_modes`, and, like a clock limit, needs a power profile to act through.
fn resolve_power_mode(
    path: &Path,
    hw: &HardwareConfig,
    device_name: &str,
    device: &DeviceSpec,
    has_profile: bool,
) -> Result<(f64, f64)> {
    let Some(name) = &hw.power_mode else {
        return Ok((1.0, 1.0));
    };
    let field = "hardware.power_mode";
    let (Some(modes), Some(max_gpu), Some(max_emc)) = (
        &device.power_modes,
        device.max_sm_clock_mhz,
        device.max_memory_clock_mhz,
    ) else {
        return Err(Error::invalid(
            path,
            field,
            name,
            format!(
                "the device catalog gives no power_modes for {device_name}, so no power mode can be set for it (add its modes, with max_sm_clock_mhz, max_memory_clock_mhz and sources, to a catalog of your own: catalog.devices)"
            ),
        ));
    };
    let Some(mode) = device.power_mode(name) else {
        let known: Vec<&str> = modes.iter().map(|m| m.name.as_str()).collect();
        return Err(Error::invalid(
            path,
            field,
            name,
            format!(
                "not a power mode of {device_name}; its modes: {}",
                known.join(", ")
            ),
        ));
    };
    if !has_profile {
        return Err(Error::invalid(
            path,
            field,
            name,
            format!(
                "needs a power profile for {device_name} (there is none; set energy.power_profile): a power mode's clocks act through the power model"
            ),
        ));
    }
    Ok((
        (mode.gpu_max_mhz / max_gpu).max(MIN_CLOCK),
        (mode.emc_max_mhz / max_emc).max(MIN_CLOCK),
    ))
}

/// Parallelism and memory share of the hardware section, checked against the model's shape.
fn validate_hardware(
    path: &Path,
    hw: &HardwareConfig,
    model_name: &str,
    model: &ModelSpec,
) -> Result<()> {
    let inv = |field: &str, value: &dyn std::fmt::Display, msg: &str| {
        Error::invalid(path, field, value, msg)
    };
    if hw.tensor_parallel == 0 {
        return Err(inv("hardware.tensor_parallel", &0, "must be at least 1"));
    }
    if hw.pipeline_stages == 0 {
        return Err(inv("hardware.pipeline_stages", &0, "must be at least 1"));
    }
    if hw.replicas == 0 {
        return Err(inv("hardware.replicas", &0, "must be at least 1"));
    }
    if hw.data_parallel == 0 {
        return Err(inv("hardware.data_parallel", &0, "must be at least 1"));
    }
    // A bound on the cluster: each GPU carries simulator state, and the largest clusters on record
    // hold on the order of 100,000 GPUs.
    let gpus = hw.replicas as u64
        * hw.tensor_parallel as u64
        * hw.data_parallel as u64
        * hw.pipeline_stages as u64;
    if gpus > MAX_GPUS {
        let dp = match hw.data_parallel {
            1 => String::new(),
            d => format!(", data_parallel {d}"),
        };
        return Err(inv(
            "hardware.replicas",
            &hw.replicas,
            &format!(
                "with tensor_parallel {}{dp} and pipeline_stages {} that is {gpus} GPUs; simwatt simulates at most {MAX_GPUS} (the largest clusters on record hold about 100,000)",
                hw.tensor_parallel, hw.pipeline_stages
            ),
        ));
    }
    let tp = hw.tensor_parallel;
    if model.num_attention_heads % tp != 0 {
        return Err(inv(
            "hardware.tensor_parallel",
            &tp,
            &format!(
                "does not divide the {} attention heads of {model_name}",
                model.num_attention_heads
            ),
        ));
    }
    if model.num_kv_heads % tp != 0 && tp % model.num_kv_heads != 0 {
        return Err(inv(
            "hardware.tensor_parallel",
            &tp,
            &format!(
                "neither divides nor is a multiple of the {} KV heads of {model_name}",
                model.num_kv_heads
            ),
        ));
    }
    if hw.expert_parallel {
        let Some(e) = &model.moe else {
            return Err(inv(
                "hardware.expert_parallel",
                &true,
                &format!(
                    "{model_name} is not a mixture-of-experts model: it has no experts to spread"
                ),
            ));
        };
        let ep = tp * hw.data_parallel;
        if e.num_experts % ep != 0 {
            let over = match hw.data_parallel {
                1 => format!("hardware.tensor_parallel = {tp} GPUs"),
                d => format!("hardware.data_parallel x tensor_parallel = {d} x {tp} = {ep} GPUs"),
            };
            return Err(inv(
                "hardware.expert_parallel",
                &true,
                &format!(
                    "spreads the {} experts of {model_name} over {over}, which does not divide them",
                    e.num_experts
                ),
            ));
        }
    }
    if hw.data_parallel > 1 {
        // Data parallelism inside a replica is the attention's, around experts spread over every
        // rank; without them the ranks would be independent copies of the model.
        if !hw.expert_parallel {
            return Err(inv(
                "hardware.data_parallel",
                &hw.data_parallel,
                "needs hardware.expert_parallel: true (data-parallel attention around experts spread over every rank); independent copies of the model are hardware.replicas",
            ));
        }
        if hw.pipeline_stages != 1 {
            return Err(inv(
                "hardware.data_parallel",
                &hw.data_parallel,
                &format!(
                    "is modelled with one pipeline stage only, not hardware.pipeline_stages = {}",
                    hw.pipeline_stages
                ),
            ));
        }
        if hw.prefill_pool.is_some() || hw.prefill_replicas > 0 {
            return Err(inv(
                "hardware.data_parallel",
                &hw.data_parallel,
                "is not modelled with a prefill pool (disaggregated prefill); use replicas of data_parallel 1 there",
            ));
        }
    }
    if model.num_layers % hw.pipeline_stages != 0 {
        return Err(inv(
            "hardware.pipeline_stages",
            &hw.pipeline_stages,
            &format!(
                "does not divide the {} layers of {model_name}",
                model.num_layers
            ),
        ));
    }
    if !(hw.gpu_memory_utilization > 0.0 && hw.gpu_memory_utilization <= 1.0) {
        return Err(inv(
            "hardware.gpu_memory_utilization",
            &hw.gpu_memory_utilization,
            "must be in (0, 1]",
        ));
    }
    Ok(())
}

fn validate_scheduler(path: &Path, s: &SchedulerConfig) -> Result<()> {
    let inv = |field: &str, value: &dyn std::fmt::Display, msg: &str| {
        Error::invalid(path, field, value, msg)
    };
    if s.max_num_seqs == 0 {
        return Err(inv("scheduler.max_num_seqs", &0, "must be at least 1"));
    }
    if s.max_num_batched_tokens == 0 {
        return Err(inv(
            "scheduler.max_num_batched_tokens",
            &0,
            "must be at least 1",
        ));
    }
    if s.block_size == 0 {
        return Err(inv("scheduler.block_size", &0, "must be at least 1"));
    }
    if s.num_gpu_blocks == Some(0) {
        return Err(inv("scheduler.num_gpu_blocks", &0, "must be at least 1"));
    }
    let policy = s.policy.name();
    if s.enable_prefix_caching && !matches!(s.policy, Policy::Vllm | Policy::Sarathi) {
        return Err(inv(
            "scheduler.enable_prefix_caching",
            &true,
            &format!("is modelled for policies vllm and sarathi only, not {policy}"),
        ));
    }
    if let Some(c) = s.chunk_size {
        if s.policy != Policy::Sarathi {
            return Err(inv(
                "scheduler.chunk_size",
                &c,
                &format!("applies to policy sarathi only, not {policy}"),
            ));
        }
        if c == 0 {
            return Err(inv("scheduler.chunk_size", &c, "must be at least 1"));
        }
        if c > s.max_num_batched_tokens {
            return Err(inv(
                "scheduler.chunk_size",
                &c,
                &format!(
                    "is larger than the per-iteration token budget scheduler.max_num_batched_tokens = {}",
                    s.max_num_batched_tokens
                ),
            ));
        }
    }
    if let Some(w) = s.max_waiting_iters {
        if s.policy != Policy::Lightllm {
            return Err(inv(
                "scheduler.max_waiting_iters",
                &w,
                &format!("applies to policy lightllm only, not {policy}"),
            ));
        }
    }
    if s.policy == Policy::Sarathi && s.max_num_batched_tokens < s.max_num_seqs {
        return Err(inv(
            "scheduler.max_num_batched_tokens",
            &s.max_num_batched_tokens,
            &format!(
                "sarathi needs a token budget of at least max_num_seqs = {} so every running request can decode",
                s.max_num_seqs
            ),
        ));
    }
    Ok(())
}

/// Most GPUs one run may simulate (replicas x tensor_parallel x pipeline_stages).
pub const MAX_GPUS: u64 = 1_000_000;

/// The longest deadline a deferrable request may have, seconds (a year).
pub const MAX_DEADLINE_S: f64 = 31_536_000.0;

fn positive_finite(path: &Path, field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            path,
            field,
            v,
            "must be a finite number > 0",
        ))
    }
}

fn validate_workload(path: &Path, w: &WorkloadConfig) -> Result<()> {
    let inv = |field: &str, value: &dyn std::fmt::Display, msg: &str| {
        Error::invalid(path, field, value, msg)
    };
    if let Some(p) = &w.shared_prefix {
        if p.tokens == 0 {
            return Err(inv(
                "workload.shared_prefix.tokens",
                &0,
                "must be at least 1",
            ));
        }
        if p.groups == 0 {
            return Err(inv(
                "workload.shared_prefix.groups",
                &0,
                "must be at least 1",
            ));
        }
    }
    if let Some(d) = &w.deferrable {
        if !(d.fraction.is_finite() && (0.0..=1.0).contains(&d.fraction)) {
            return Err(inv(
                "workload.deferrable.fraction",
                &d.fraction,
                "must be a share of the requests from 0 to 1",
            ));
        }
        if !(d.deadline_s.is_finite() && d.deadline_s > 0.0 && d.deadline_s <= MAX_DEADLINE_S) {
            return Err(inv(
                "workload.deferrable.deadline_s",
                &d.deadline_s,
                "must be a number of seconds above 0 and at most 31536000 (a year)",
            ));
        }
        if w.sessions.is_some() {
            return Err(inv(
                "workload.deferrable",
                &"set",
                "cannot be combined with workload.sessions (a session's turns follow each other, they cannot wait for other hours)",
            ));
        }
    }
    if let Some(ss) = &w.sessions {
        let [lo, hi] = ss.turns;
        if lo == 0 || lo > hi || hi > 1_000_000 {
            return Err(inv(
                "workload.sessions.turns",
                &format!("[{lo}, {hi}]"),
                "must be [min, max] with 1 <= min <= max <= 1000000",
            ));
        }
        if !(ss.think_s.is_finite()
            && ss.think_s >= 0.0
            && ss.think_s <= crate::units::MAX_ARRIVAL_S)
        {
            return Err(inv(
                "workload.sessions.think_s",
                &ss.think_s,
                "must be a finite number of seconds >= 0",
            ));
        }
        if w.shared_prefix.is_some() {
            return Err(inv(
                "workload.shared_prefix",
                &"set",
                "cannot be combined with workload.sessions (a turn's prefix is its session's history)",
            ));
        }
        if matches!(w.lengths, LengthsConfig::Trace) {
            return Err(inv(
                "workload.sessions",
                &"set",
                "needs lengths drawn from a distribution, not a trace (each turn draws new tokens)",
            ));
        }
    }
    let uses_trace = matches!(w.arrival, ArrivalConfig::Trace { .. })
        || matches!(w.lengths, LengthsConfig::Trace);
    match w.requests {
        Some(0) => return Err(inv("workload.requests", &0, "must be at least 1")),
        None if !uses_trace => {
            return Err(Error::Field {
                path: path.to_path_buf(),
                field: "workload.requests".into(),
                message: "missing: the number of requests is required unless arrivals or lengths come from a trace".into(),
            })
        }
        _ => {}
    }
    if uses_trace && w.trace.is_none() {
        return Err(Error::Field {
            path: path.to_path_buf(),
            field: "workload.trace".into(),
            message: "missing: arrival or lengths of type trace need a trace file".into(),
        });
    }
    if let Some(model) = &w.trace_model {
        if w.trace_format != TraceFormat::Burstgpt {
            return Err(inv(
                "workload.trace_model",
                model,
                &format!(
                    "applies to trace_format burstgpt only (its Model column), not {}",
                    w.trace_format.name()
                ),
            ));
        }
        if model.trim().is_empty() {
            return Err(inv(
                "workload.trace_model",
                &"\"\"",
                "an empty model name; name one the trace's Model column holds (e.g. ChatGPT, GPT-4), or leave the field out",
            ));
        }
    }
    match &w.arrival {
        ArrivalConfig::Poisson { rate } | ArrivalConfig::Static { rate } => {
            positive_finite(path, "workload.arrival.rate", *rate)?
        }
        ArrivalConfig::Gamma { rate, cv } => {
            positive_finite(path, "workload.arrival.rate", *rate)?;
            positive_finite(path, "workload.arrival.cv", *cv)?;
            // Shape 1/cv^2 and scale cv^2/rate must both be positive finite numbers.
            if !(1e-3..=1e3).contains(cv) {
                return Err(inv(
                    "workload.arrival.cv",
                    cv,
                    "must be between 0.001 (nearly evenly spaced; use static arrivals for exactly even) and 1000",
                ));
            }
        }
        ArrivalConfig::Trace { time_scale } => {
            positive_finite(path, "workload.arrival.time_scale", *time_scale)?
        }
        ArrivalConfig::AllAtOnce => {}
    }
    match &w.lengths {
        LengthsConfig::Uniform { prompt, output } => {
            for (name, r) in [("prompt", prompt), ("output", output)] {
                let field = format!("workload.lengths.{name}");
                let shown = format!("[{}, {}]", r[0], r[1]);
                if r[0] == 0 {
                    return Err(inv(&field, &shown, "lengths must be at least 1 token"));
                }
                if r[0] > r[1] {
                    return Err(inv(&field, &shown, "the range is empty: min > max"));
                }
            }
        }
        LengthsConfig::Fixed { prompt, output } => {
            if *prompt == 0 {
                return Err(inv(
                    "workload.lengths.prompt",
                    &0,
                    "must be at least 1 token",
                ));
            }
            if *output == 0 {
                return Err(inv(
                    "workload.lengths.output",
                    &0,
                    "must be at least 1 token",
                ));
            }
        }
        LengthsConfig::Zipf {
            min,
            max,
            theta,
            prefill_to_decode_ratio,
        } => {
            if *min < 2 {
                return Err(inv(
                    "workload.lengths.min",
                    min,
                    "must be at least 2 tokens (one prompt and one output token)",
                ));
            }
            if min > max {
                return Err(inv(
                    "workload.lengths.max",
                    max,
                    &format!("is below workload.lengths.min = {min}"),
                ));
            }
            if !(theta.is_finite() && *theta >= 0.0) {
                return Err(inv(
                    "workload.lengths.theta",
                    theta,
                    "must be a finite number >= 0",
                ));
            }
            positive_finite(
                path,
                "workload.lengths.prefill_to_decode_ratio",
                *prefill_to_decode_ratio,
            )?;
        }
        LengthsConfig::Trace => {}
    }
    Ok(())
}

fn validate_energy(path: &Path, raw: &RawConfig) -> Result<()> {
    let e = &raw.energy;
    if !(e.host_power_w_per_gpu.is_finite() && e.host_power_w_per_gpu >= 0.0) {
        return Err(Error::invalid(
            path,
            "energy.host_power_w_per_gpu",
            e.host_power_w_per_gpu,
            "must be a finite number >= 0",
        ));
    }
    if let Some(y) = e.lifetime_years {
        positive_finite(path, "energy.lifetime_years", y)?;
    }
    if let Some(m) = e.min_span_s {
        if !(m.is_finite() && m > 0.0 && m <= 1e9) {
            return Err(Error::invalid(
                path,
                "energy.min_span_s",
                m,
                "must be a number of seconds above 0 and at most 1e9",
            ));
        }
    }
    if chrono::DateTime::parse_from_rfc3339(&e.start_time).is_err() {
        return Err(Error::invalid(
            path,
            "energy.start_time",
            &e.start_time,
            "not an ISO 8601 / RFC 3339 time such as 2024-06-01T00:00:00Z",
        ));
    }
    if raw.region.is_some() && !raw.regions.is_empty() {
        return Err(Error::invalid(
            path,
            "regions",
            format!("{:?}", raw.regions),
            "give either `region` or `regions`, not both",
        ));
    }
    Ok(())
}

impl RawConfig {
    /// The region ids asked for, in order (from `region`, comma-separated, or `regions`).
    pub fn region_ids(&self) -> Vec<String> {
        match &self.region {
            Some(r) => r
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => self.regions.clone(),
        }
    }
}

fn validate_predictor(path: &Path, p: &PredictorConfig) -> Result<()> {
    let overhead = match p {
        PredictorConfig::Roofline(r) => {
            for (field, v) in [
                ("predictor.compute_efficiency", r.compute_efficiency),
                ("predictor.memory_efficiency", r.memory_efficiency),
            ] {
                if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                    return Err(Error::invalid(path, field, v, "must be in (0, 1]"));
                }
            }
            if !(r.layer_overhead_us.is_finite() && (0.0..=3.6e9).contains(&r.layer_overhead_us)) {
                return Err(Error::invalid(
                    path,
                    "predictor.layer_overhead_us",
                    r.layer_overhead_us,
                    "must be a number from 0 to 3,600,000,000 (one hour per layer)",
                ));
            }
            r.iteration_overhead_ms
        }
        PredictorConfig::Auto(p) | PredictorConfig::Profiles(p) => p.iteration_overhead_ms,
    };
    if !(overhead.is_finite() && (0.0..=3.6e6).contains(&overhead)) {
        return Err(Error::invalid(
            path,
            "predictor.iteration_overhead_ms",
            overhead,
            "must be a number from 0 to 3,600,000 (one hour per iteration)",
        ));
    }
    Ok(())
}

// -- Precision (docs/precision.md) --

/// Resolves the `precision` section against the model's catalog dtype and the device's peaks, and
/// writes the defaults back so `config.resolved.yaml` shows them. Without the section: the catalog's
/// `dtype_bytes` for everything, at the bf16 peak.
fn resolve_precision(
    path: &Path,
    (models_origin, model_name): (&str, &str),
    raw: &mut RawConfig,
    model: &ModelSpec,
    device: &DeviceSpec,
) -> Result<crate::precision::Precision> {
    // The catalog's expert format, checked once: a bad name is the catalog's error, whatever the
    // config says.
    let catalog_experts = match model.moe.as_ref().and_then(|e| e.expert_weights.as_deref()) {
        Some(name) => Some(
            crate::precision::weight_format("moe.expert_weights", name).map_err(
                |(_, value, message)| {
                    Error::invalid(
                        Path::new(models_origin),
                        format!("models.{model_name}.moe.expert_weights"),
                        value,
                        message,
                    )
                },
            )?,
        ),
        None => None,
    };
    let Some(pc) = raw.precision.as_mut() else {
        let p = crate::precision::Precision::from_catalog(model.dtype_bytes, device);
        return Ok(match catalog_experts {
            Some(f) => p.with_experts(f, device),
            None => p,
        });
    };
    // A bad format name in the config: the error names the config file, the field and the value.
    let bad = |(field, value, message): crate::precision::BadName| {
        Error::invalid(path, field, value, message)
    };
    let p = crate::precision::Precision::resolve(
        pc.weights.as_deref(),
        pc.compute.as_deref(),
        pc.kv_cache.as_deref(),
        model.dtype_bytes,
        device,
    )
    .map_err(bad)?;
    if pc.experts.is_some() && model.moe.is_none() {
        return Err(Error::invalid(
            path,
            "precision.experts",
            pc.experts.as_deref().unwrap_or_default(),
            format!(
                "{} is a dense model: it has no routed experts to store apart; leave precision.experts out",
                raw.model
            ),
        ));
    }
    let format = |field: &'static str, name: Option<&str>| {
        name.map(|n| crate::precision::weight_format(field, n))
            .transpose()
            .map_err(bad)
    };
    let p = match format("precision.experts", pc.experts.as_deref())?.or(catalog_experts) {
        Some(f) => p.with_experts(f, device),
        None => p,
    };
    let p = match format("precision.embeddings", pc.embeddings.as_deref())? {
        Some(f) => p.with_embeddings(f),
        None => p,
    };
    // `catalog` (a catalog dtype other than 2 bytes) is no format name: left unset.
    for (slot, name) in [
        (&mut pc.weights, &p.weights),
        (&mut pc.compute, &p.compute),
        (&mut pc.kv_cache, &p.kv_cache),
    ] {
        if name != "catalog" {
            *slot = Some(name.clone());
        }
    }
    if let Some(e) = &p.experts {
        pc.experts = Some(e.weights.clone());
    }
    let mut p = p;
    if let Some(d) = pc.dequant_flops_per_weight {
        if !(d.is_finite() && d >= 0.0) {
            return Err(Error::invalid(
                path,
                "precision.dequant_flops_per_weight",
                d,
                "must be a number of FLOPs, 0 or more",
            ));
        }
        if p.dequant_flops_per_weight > 0.0 {
            p.dequant_flops_per_weight = d;
        }
        if let Some(e) = p
            .experts
            .as_mut()
            .filter(|e| e.dequant_flops_per_weight > 0.0)
        {
            e.dequant_flops_per_weight = d;
        }
    }
    Ok(p)
}

/// Splits one GPU's memory into weights, activations and KV cache, as vLLM's profiling run does, and
/// sizes the replica's KV cache in blocks.
fn plan_memory(
    path: &Path,
    raw: &RawConfig,
    model_name: &str,
    model: &ModelSpec,
    device: &DeviceSpec,
    precision: &crate::precision::Precision,
    offload: Option<&offload::Offload>,
) -> Result<MemoryPlan> {
    let hw = &raw.hardware;
    let tp = hw.tensor_parallel as f64;
    let stages = hw.pipeline_stages as f64;
    // Bytes per activation, per weight of the blocks' linear layers, per embedding and head weight,
    // per KV element (all the catalog's dtype_bytes without a precision section).
    let dtype = precision.activation_bytes;
    let layers_per_stage = model.num_layers as f64 / stages;
    let embed = model.vocab_size as f64 * model.hidden_size as f64;
    // The heaviest stage: the first holds the input embedding and the last the output head; with one
    // stage, both.
    let embed_on_heaviest = if hw.pipeline_stages == 1 && !model.tie_word_embeddings {
        2.0
    } else {
        1.0
    };
    // A mixture-of-experts model holds every expert (all its parameters), though a token passes
    // through only its top-k: the heaviest stage is the one with the most layer weights, its routed
    // experts at their own format's bytes when they have one (`precision.experts`).
    let stage_linear_bytes = if model.moe.is_some() {
        let per_stage = model.num_layers / hw.pipeline_stages;
        (0..hw.pipeline_stages)
            .map(|st| precision.layer_weight_bytes(model, st * per_stage, per_stage))
            .fold(0.0, f64::max)
    } else {
        layers_per_stage * model.linear_params_per_layer() as f64 * precision.weight_bytes
    };
    // With data-parallel attention each rank of `tp` GPUs holds the attention, dense and shared
    // weights, and the routed experts are spread over all `dp x tp` GPUs.
    let dp = hw.data_parallel as f64;
    let routed_bytes_spread = if hw.data_parallel > 1 {
        let routed = model.routed_expert_params_in(0, model.num_layers) as f64;
        let bytes = precision
            .experts
            .as_ref()
            .map_or(precision.weight_bytes, |e| e.weight_bytes);
        routed * bytes * (1.0 - 1.0 / dp)
    } else {
        0.0
    };
    let weight_bytes_per_gpu = (stage_linear_bytes - routed_bytes_spread
        + embed_on_heaviest * embed * precision.embedding_bytes)
        / tp;
    // Activations of one forward pass over max_num_batched_tokens: the residual stream and its
    // normalised copy, the QKV output, the MLP intermediate (two for gated MLPs) and the logits of the
    // sequences that sample, each on this GPU's shard.
    // The scheduler's limits are the replica's; with data-parallel attention a rank forwards its
    // share of them.
    let tokens = raw.scheduler.max_num_batched_tokens as f64 / dp;
    let h = model.hidden_size as f64;
    let mut mlp_inter = model.intermediate_size as f64 * if model.gated_mlp { 2.0 } else { 1.0 };
    if let Some(e) = &model.moe {
        // An MoE layer's intermediate: each token's top-k and shared experts' up (and gate) outputs,
        // beside the router's logits; the larger of it and a dense layer's (if the model has any).
        let moe_inter = e.expert_intermediate_size as f64
            * (e.experts_per_token + e.shared_experts) as f64
            * if model.gated_mlp { 2.0 } else { 1.0 }
            + e.num_experts as f64 * tp;
        mlp_inter = if e.first_dense_layers > 0 {
            mlp_inter.max(moe_inter)
        } else {
            moe_inter
        };
    }
    let qkv = model.attention_activation_width() as f64;
    let per_token = 2.0 * h + (qkv + mlp_inter) / tp;
    let logits = raw.scheduler.max_num_seqs as f64 / dp * model.vocab_size as f64 / tp * 4.0;
    let activation_bytes_per_gpu = tokens * per_token * dtype + logits;

    let usable = device.memory_bytes() * hw.gpu_memory_utilization;
    // Keys and values of this GPU's KV heads, or the whole latent of latent attention.
    let kv_elements = model.kv_elements_per_token_per_layer(hw.tensor_parallel);
    let kv_bytes_per_token_per_gpu =
        (layers_per_stage * kv_elements * precision.kv_bytes).round() as u64;
    let block_size = if raw.scheduler.policy == Policy::Lightllm {
        1
    } else {
        raw.scheduler.block_size
    };
    if let Some(o) = offload {
        let kv_per_layer = kv_elements * precision.kv_bytes;
        return plan_offload_memory(
            path,
            raw,
            (model_name, model),
            (device, precision),
            o,
            (usable, activation_bytes_per_gpu),
            kv_per_layer,
            block_size,
        );
    }
    let kv_groups = kv_groups(raw, model, block_size);
    // Bytes one block takes per GPU per token: all the stage's layers, or one group's.
    let unit_bytes_per_token = match kv_groups {
        Some(g) => (g.layers_per_group as f64 * kv_elements * precision.kv_bytes).round() as u64,
        None => kv_bytes_per_token_per_gpu,
    };
    let free = usable - weight_bytes_per_gpu - activation_bytes_per_gpu;
    let (num_blocks, blocks_overridden) = match raw.scheduler.num_gpu_blocks {
        // The override counts blocks of scheduler.block_size tokens; a token-granular cache gets the
        // same number of tokens.
        Some(n) => (n * (raw.scheduler.block_size / block_size) as u64, true),
        None => {
            if free <= 0.0 && weight_bytes_per_gpu < usable {
                // The weights fit; the activations beside them do not: name the scheduler setting
                // that sizes the larger part of them.
                let (field, value) = if logits > tokens * per_token * dtype {
                    (
                        "scheduler.max_num_seqs",
                        raw.scheduler.max_num_seqs.to_string(),
                    )
                } else {
                    (
                        "scheduler.max_num_batched_tokens",
                        raw.scheduler.max_num_batched_tokens.to_string(),
                    )
                };
                return Err(Error::invalid(
                    path,
                    field,
                    value,
                    format!(
                        "{model_name}'s activations for one forward pass ({:.2} GB per GPU: {:.2} GB for max_num_batched_tokens tokens, {:.2} GB of logits for max_num_seqs sequences) do not fit beside its {:.2} GB of weights in the {:.2} GB usable per GPU; lower it",
                        activation_bytes_per_gpu / 1e9,
                        tokens * per_token * dtype / 1e9,
                        logits / 1e9,
                        weight_bytes_per_gpu / 1e9,
                        usable / 1e9
                    ),
                ));
            }
            if free <= 0.0 {
                return Err(Error::invalid(
                    path,
                    "hardware.gpu",
                    &raw.hardware.gpu,
                    format!(
                        "{model_name} does not fit: per GPU it needs {:.2} GB of weights and {:.2} GB of activations, \
                         but only {:.2} GB is usable ({} GB x gpu_memory_utilization {}); \
                         raise tensor_parallel or pipeline_stages, store the weights in fewer bytes \
                         (precision.weights, e.g. fp8 or int4), or use a larger device",
                        weight_bytes_per_gpu / 1e9,
                        activation_bytes_per_gpu / 1e9,
                        usable / 1e9,
                        device.memory_gb,
                        hw.gpu_memory_utilization
                    ),
                ));
            }
            let blocks = (free / (unit_bytes_per_token as f64 * block_size as f64)).floor() as u64;
            if blocks == 0 {
                return Err(Error::invalid(
                    path,
                    "scheduler.block_size",
                    block_size,
                    format!(
                        "one KV-cache block of {block_size} tokens takes {:.2} GB per GPU, more than the {:.2} GB left for the KV cache after {model_name}'s weights and activations; use a smaller block_size (vLLM's default is 16) or a larger device",
                        unit_bytes_per_token as f64 * block_size as f64 / 1e9,
                        free / 1e9
                    ),
                ));
            }
            // Each data-parallel rank caches its own sequences: the replica holds a rank's blocks
            // times the ranks.
            (blocks * hw.data_parallel as u64, false)
        }
    };
    Ok(MemoryPlan {
        usable_bytes_per_gpu: usable,
        weight_bytes_per_gpu,
        activation_bytes_per_gpu,
        kv_bytes_per_token_per_gpu,
        block_size,
        num_blocks,
        blocks_overridden,
        kv_groups,
    })
}

/// The KV-cache groups of a model with sliding-window layers under a paged cache that frees the
/// blocks a window has passed (vLLM V1's hybrid manager: the vllm and sarathi policies), counted on
/// the first pipeline stage. `None` (every layer holds every token, as before such managers) for a
/// model without sliding layers, for Orca, FasterTransformer and LightLLM, with prefix caching,
/// whose blocks simwatt keys per block of all layers, and under disaggregation: vLLM turns the hybrid
/// manager off for a KV connector that does not support it (`disable_hybrid_kv_cache_manager`), and
/// the transfer then moves every layer's cache.
fn kv_groups(raw: &RawConfig, model: &ModelSpec, block_size: u32) -> Option<KvGroups> {
    let w = model.sliding_window?;
    if !matches!(raw.scheduler.policy, Policy::Vllm | Policy::Sarathi)
        || raw.scheduler.enable_prefix_caching
        || raw.hardware.prefill_replicas > 0
    {
        return None;
    }
    let layers = model.num_layers / raw.hardware.pipeline_stages.max(1);
    let sliding = model.sliding_layers_in(0, layers);
    let full = layers - sliding;
    if sliding == 0 || full == 0 {
        return None;
    }
    let per = full.min(sliding);
    Some(KvGroups {
        layers_per_group: per,
        full: full.div_ceil(per),
        sliding: sliding.div_ceil(per),
        window_blocks: w.window.saturating_sub(1).div_ceil(block_size.max(1)) + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(y: &str) -> Value {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn override_sets_nested_keys_with_yaml_values() {
        let mut t = tree("a: {b: 1}\n");
        apply_override(&mut t, "a.b=2.5").unwrap();
        apply_override(&mut t, "a.c=[1, 2]").unwrap();
        apply_override(&mut t, "d.e=vllm").unwrap();
        assert_eq!(t, tree("a: {b: 2.5, c: [1, 2]}\nd: {e: vllm}\n"));
    }

    #[test]
    fn override_without_equals_or_through_a_scalar_is_an_error() {
        let mut t = tree("a: 1\n");
        let e = apply_override(&mut t, "a").unwrap_err().to_string();
        assert!(e.contains("KEY=VALUE"), "{e}");
        let e = apply_override(&mut t, "a.b=3").unwrap_err().to_string();
        assert!(e.contains("`a` is not a mapping"), "{e}");
        let e = apply_override(&mut t, "a..b=3").unwrap_err().to_string();
        assert!(e.contains("dotted"), "{e}");
    }
}
