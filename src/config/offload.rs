//! `hardware.host_cpu` and `hardware.gpu_layers` checked: partial GPU offload (llama.cpp's `-ngl`),
//! some of the model's layers on the GPU and the rest on its host CPU (docs/edge.md, "Partial GPU
//! offload (-ngl)").
//!
//! Input: the raw `hardware` section, the catalog, the model and the GPU. Output: an [`Offload`], the
//! host CPU as its threads price it and where each layer's weights lie, or an error naming the field
//! and the value. The memory plan and the predictor read it; it may not read files or run anything.

use super::raw::{HardwareConfig, PredictorConfig};
use crate::catalog::{Catalog, DeviceSpec, ModelSpec};
use crate::error::{Error, Result};
use crate::precision::Precision;
use std::path::Path;

/// A model split between a GPU and its host CPU.
#[derive(Debug, Clone)]
pub struct Offload {
    /// The host CPU's catalog name.
    pub host_cpu_name: String,
    /// The host CPU as the roofline prices it: its catalog entry, or, with `hardware.threads`, the
    /// peaks that many threads reach.
    pub host_cpu: DeviceSpec,
    /// `hardware.gpu_layers` as configured: 0 to `num_layers + 1` (llama.cpp's `-ngl`, the output layer
    /// counted as one).
    pub gpu_layers: u32,
    /// Repeating layers on the GPU: the last `gpu_layers - 1` (none at 0).
    pub layers_on_gpu: u32,
    /// The output layer is on the GPU (`gpu_layers` at least 1).
    pub head_on_gpu: bool,
    /// The GPU's host link, GB/s per direction (the catalog's `host_link_gb_s`).
    pub host_link_gb_s: f64,
    /// The GPU's per-hop latency, microseconds (the catalog's `interconnect_latency_us`, 0 without).
    pub hop_latency_us: f64,
    /// The precision as the host CPU runs it (its own peak for the arithmetic).
    pub cpu_precision: Precision,
    /// Bytes of the weights on the GPU: its layers' linear weights, and the output head when it is
    /// there.
    pub gpu_weight_bytes: f64,
    /// Bytes of the weights in host memory: the CPU layers' linear weights, the input embedding
    /// (always in host memory), and the output head when it is not on the GPU.
    pub host_weight_bytes: f64,
    /// Bytes of the CPU layers' linear weights: what a batch of 32 tokens or more copies to the GPU.
    pub cpu_layer_weight_bytes: f64,
    /// Bytes of the output head's weights.
    pub head_weight_bytes: f64,
}

/// The host CPU and the GPU's layers as configured, checked, before the precision is known: `None`
/// without `hardware.gpu_layers` and `hardware.host_cpu`. The host CPU comes back priced at
/// `hardware.threads` by `threads`.
pub fn host_cpu(
    path: &Path,
    hw: &HardwareConfig,
    predictor: &PredictorConfig,
    catalog: &Catalog,
    (device_name, device): (&str, &DeviceSpec),
    model: &ModelSpec,
    threads: impl Fn(&str, DeviceSpec) -> Result<DeviceSpec>,
) -> Result<Option<(String, DeviceSpec)>> {
    let (cpu, n) = match (&hw.host_cpu, hw.gpu_layers) {
        (None, None) => return Ok(None),
        (Some(c), Some(n)) => (c, n),
        (Some(c), None) => {
            return Err(Error::invalid(
                path,
                "hardware.host_cpu",
                c,
                "needs hardware.gpu_layers beside it: how many of the model's layers the GPU runs (llama.cpp's -ngl)",
            ))
        }
        (None, Some(n)) => {
            return Err(Error::invalid(
                path,
                "hardware.gpu_layers",
                n,
                "needs hardware.host_cpu beside it: the CPU, from the device catalog, that runs the other layers",
            ))
        }
    };
    let field = "hardware.gpu_layers";
    let layers = model.num_layers;
    if n > layers + 1 {
        return Err(Error::invalid(
            path,
            field,
            n,
            format!(
                "must be from 0 to {}: the model's {layers} layers, and {} for the output layer too (llama.cpp's full offload)",
                layers + 1,
                layers + 1
            ),
        ));
    }
    if device.kind != "gpu" {
        return Err(Error::invalid(
            path,
            field,
            n,
            format!(
                "{device_name} is a {} device; partial offload needs a GPU (kind: gpu) as hardware.gpu",
                device.kind
            ),
        ));
    }
    let Some(_) = device.host_link_gb_s else {
        return Err(Error::invalid(
            path,
            field,
            n,
            format!(
                "the device catalog gives no host_link_gb_s (the PCIe link to host memory) for {device_name} (add it, with its source, to a catalog of your own: catalog.devices)"
            ),
        ));
    };
    let (cpu_name, cpu_spec) = catalog.device(cpu).ok_or_else(|| {
        let cpus: Vec<&str> = catalog
            .device_names()
            .filter(|d| catalog.device(d).is_some_and(|(_, s)| s.kind == "cpu"))
            .collect();
        Error::invalid(
            path,
            "hardware.host_cpu",
            cpu,
            format!("not in the device catalog; its CPUs: {}", cpus.join(", ")),
        )
    })?;
    if cpu_spec.kind != "cpu" {
        return Err(Error::invalid(
            path,
            "hardware.host_cpu",
            cpu,
            format!(
                "{cpu_name} is a {} device, not a CPU (kind: cpu)",
                cpu_spec.kind
            ),
        ));
    }
    let refuse = |f: &str, v: &dyn std::fmt::Display, what: &str| {
        Err(Error::invalid(
            path,
            f,
            v,
            format!(
                "{what}; partial GPU offload (hardware.gpu_layers) runs one GPU and its host CPU"
            ),
        ))
    };
    if hw.tensor_parallel != 1 {
        return refuse("hardware.tensor_parallel", &hw.tensor_parallel, "must be 1");
    }
    if hw.pipeline_stages != 1 {
        return refuse("hardware.pipeline_stages", &hw.pipeline_stages, "must be 1");
    }
    if hw.data_parallel != 1 {
        return refuse("hardware.data_parallel", &hw.data_parallel, "must be 1");
    }
    if hw.prefill_replicas != 0 {
        return refuse(
            "hardware.prefill_replicas",
            &hw.prefill_replicas,
            "must be 0 (no disaggregated serving)",
        );
    }
    if let PredictorConfig::Profiles(_) = predictor {
        return Err(Error::invalid(
            path,
            "predictor.type",
            "profiles",
            "partial GPU offload (hardware.gpu_layers) is priced by the roofline of each device; use roofline or auto",
        ));
    }
    let priced = threads(cpu_name, cpu_spec.clone())?;
    Ok(Some((cpu_name.to_string(), priced)))
}

/// llama.cpp's placement of `-ngl n` over a model of `layers` repeating layers: the repeating layers
/// on the GPU and whether the output layer is. `llama_model::load_tensors` (src/llama-model.cpp)
/// counts the output layer as layer `layers` and puts on the GPU every layer from
/// `i_gpu_start = max(layers + 1 - n, 0)`: the output layer first, then the last `n - 1` repeating
/// layers.
pub fn placement(n: u32, layers: u32) -> (u32, bool) {
    let n = n.min(layers + 1);
    (n.saturating_sub(1), n >= 1)
}

/// Where the weights lie for `gpu_layers` layers on the GPU: the [`Offload`] of the checked host CPU,
/// the model and the two precisions.
pub fn layout(
    (host_cpu_name, host_cpu): (String, DeviceSpec),
    gpu_layers: u32,
    device: &DeviceSpec,
    model: &ModelSpec,
    precision: &Precision,
    cpu_precision: Precision,
) -> Offload {
    let layers = model.num_layers;
    let (layers_on_gpu, head_on_gpu) = placement(gpu_layers, layers);
    let cpu_layers = layers - layers_on_gpu;
    let embed = model.vocab_size as f64 * model.hidden_size as f64 * precision.embedding_bytes;
    let cpu_layer_weight_bytes = precision.layer_weight_bytes(model, 0, cpu_layers);
    let gpu_layer_bytes = precision.layer_weight_bytes(model, cpu_layers, layers_on_gpu);
    let head = if head_on_gpu { embed } else { 0.0 };
    Offload {
        host_cpu_name,
        host_cpu,
        gpu_layers,
        layers_on_gpu,
        head_on_gpu,
        host_link_gb_s: device.host_link_gb_s.unwrap_or(0.0),
        hop_latency_us: device.interconnect_latency_us.unwrap_or(0.0),
        cpu_precision,
        gpu_weight_bytes: gpu_layer_bytes + head,
        // A tied head is the input embedding itself while both are in host memory.
        host_weight_bytes: cpu_layer_weight_bytes
            + embed
            + if head_on_gpu || model.tie_word_embeddings {
                0.0
            } else {
                embed
            },
        cpu_layer_weight_bytes,
        head_weight_bytes: embed,
    }
}
