//! Partial GPU offload (llama.cpp's `-ngl`): a model's layers split between a GPU and its host CPU,
//! run one after the other, with the host link (PCIe) between them.
//!
//! llama.cpp with `-ngl N` keeps the output layer and the last `N - 1` repeating layers on the GPU, the
//! rest and the input embedding in host memory (`llama_model::load_tensors` in src/llama-model.cpp,
//! `i_gpu_start = n_layer + 1 - n_gpu_layers`, the output layer counted as layer `n_layer`), and
//! runs the layers in order, so a batch stage takes the CPU layers' time plus the GPU layers' time.
//! Which device runs an operation whose weights are in host memory is ggml's scheduler's choice
//! (`ggml_backend_sched_backend_id_from_cur` in ggml/src/ggml-backend.cpp): with `op_offload` on (the
//! default) it asks the GPU backend, and the CUDA backend takes it when the operation's batch is at
//! least 32 rows (`ggml_backend_cuda_device_offload_op` in ggml/src/ggml-cuda/ggml-cuda.cu, `min_batch_size
//! = 32`; for a matrix multiplication the batch is its `ne[1]`, the batch's tokens). The weights then
//! cross the host link for every batch. So, per batch stage of `t` tokens:
//!
//! - `t < 32` (decode, short prompts): the CPU layers priced by the host CPU's roofline (its
//!   `hardware.threads`), the GPU layers by the GPU's; the hidden state crosses the link where the
//!   layers change device (`t x hidden x 4` bytes: llama.cpp's activations are f32), and the sampled
//!   rows (or, with the output layer on the GPU, their logits) come back;
//! - `t >= 32` (prompt processing): every layer priced by the GPU's roofline, plus the CPU layers'
//!   weights copied over the link (their bytes as stored over `host_link_gb_s`), one after the other
//!   (the scheduler copies a split's inputs before it runs the split). Attention and norms of a CPU
//!   layer are priced on the GPU too (the scheduler's expansion puts the operations between two
//!   offloaded matrix multiplications on the same backend); the copies of its KV cache are not priced.
//!
//! The output head follows the same rule by its own batch, the sampled sequences. Each crossing also
//! pays the roofline's fixed transfer cost ([`super::roofline::COMM_LATENCY_US`]) and the GPU's
//! per-hop latency.
//!
//! The stage's FLOPs and bytes are the GPU's work, and its `idle_ns` the time the GPU waits on the
//! host CPU's layers and on the link's transfers, at its loaded-idle power (what its power profile
//! reads in the power model). The host CPU's share (its layers and, when it runs there, the output
//! head) is carried beside them as `cpu_ns`, `cpu_flops` and `cpu_bytes`, which the host CPU's power
//! profile prices (docs/edge.md, "Partial GPU offload (-ngl)").
//!
//! Input: two [`Roofline`]s (GPU and host CPU, each with its device and precision), the split and the
//! link. Output: a [`StageCost`] per batch shape. Reads no file and touches no state outside its own
//! struct.

use super::roofline::{Roofline, SpanEnd, COMM_LATENCY_US};
use super::{BatchShape, CostModel, Predictor, PredictorInfo, StageCost};
use crate::units::duration_ns;

/// The smallest batch (rows of a matrix multiplication) the CUDA backend takes over from the CPU:
/// `min_batch_size` of `ggml_backend_cuda_device_offload_op` (ggml/src/ggml-cuda/ggml-cuda.cu).
pub const MIN_OFFLOAD_BATCH: u32 = 32;

/// Bytes per element of the hidden state llama.cpp moves between devices (f32).
pub const HIDDEN_BYTES: f64 = 4.0;

/// The layers of one model split between a GPU and its host CPU.
#[derive(Debug, Clone)]
pub struct OffloadRoofline {
    gpu: Roofline,
    cpu: Roofline,
    /// Repeating layers of the model.
    layers: u32,
    /// Repeating layers on the GPU (the last ones).
    gpu_layers: u32,
    /// The output layer is on the GPU.
    head_on_gpu: bool,
    /// Host link, bytes per second per direction, and its per-hop latency, seconds.
    link_bytes_per_s: f64,
    hop_latency_s: f64,
    /// Bytes of the CPU layers' weights as stored, and of the output head's.
    cpu_weight_bytes: f64,
    head_weight_bytes: f64,
    hidden: f64,
    vocab: f64,
    gpu_name: String,
    cpu_name: String,
}

/// What builds an [`OffloadRoofline`]: the split and the link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Repeating layers on the GPU (the last ones).
    pub layers_on_gpu: u32,
    /// The output layer is on the GPU.
    pub head_on_gpu: bool,
    /// The GPU's host link, GB/s per direction.
    pub host_link_gb_s: f64,
    /// The GPU's per-hop latency, microseconds (0 when the catalog gives none).
    pub hop_latency_us: f64,
}

impl OffloadRoofline {
    /// The split `split` of the model of `gpu` (which `cpu` prices the same model for) between them.
    /// `cpu_weight_bytes` and `head_weight_bytes`: the CPU layers' weights and the output head as
    /// stored, bytes.
    pub fn new(
        gpu: Roofline,
        cpu: Roofline,
        split: Split,
        cpu_weight_bytes: f64,
        head_weight_bytes: f64,
        cpu_name: &str,
        gpu_name: &str,
    ) -> Self {
        let m = gpu.model();
        let layers = m.num_layers;
        OffloadRoofline {
            layers,
            gpu_layers: split.layers_on_gpu.min(layers),
            head_on_gpu: split.head_on_gpu,
            link_bytes_per_s: split.host_link_gb_s * 1e9,
            hop_latency_s: split.hop_latency_us * 1e-6,
            cpu_weight_bytes,
            head_weight_bytes,
            hidden: m.hidden_size as f64,
            vocab: m.vocab_size as f64,
            gpu,
            cpu,
            gpu_name: gpu_name.to_string(),
            cpu_name: cpu_name.to_string(),
        }
    }

    /// One crossing of the host link with `bytes`, seconds.
    pub fn link_s(&self, bytes: f64) -> f64 {
        bytes / self.link_bytes_per_s + self.hop_latency_s + COMM_LATENCY_US * 1e-6
    }

    /// The cost of one batch stage, and what of it crossed the link, seconds.
    fn cost(&self, s: &BatchShape) -> (StageCost, f64) {
        let tokens = s.total_tokens();
        let cpu_layers = self.layers - self.gpu_layers;
        let big = tokens >= MIN_OFFLOAD_BATCH;
        let head_big = s.sampled_seqs >= MIN_OFFLOAD_BATCH;
        let ctx = s.decode_context_sum;
        let mut time = 0.0;
        let mut link = 0.0;
        // Seconds the host CPU computes (the GPU waits), and its work.
        let mut cpu = 0.0;
        let (mut cpu_flops, mut cpu_bytes) = (0.0, 0.0);
        let (mut flops, mut bytes) = (0.0, 0.0);
        // The head is priced with whichever span ends on its device.
        let head_where_gpu = self.head_on_gpu || head_big;
        if cpu_layers > 0 {
            if big {
                let c = self
                    .gpu
                    .span_parts(s, 0, cpu_layers, SpanEnd::Nothing)
                    .at(ctx);
                let copy = self.link_s(self.cpu_weight_bytes);
                time += c.time_ns as f64 * 1e-9 + copy;
                link += copy;
                flops += c.flops;
                bytes += c.bytes;
            } else {
                let c = self
                    .cpu
                    .span_parts(s, 0, cpu_layers, SpanEnd::Nothing)
                    .at(ctx);
                time += c.time_ns as f64 * 1e-9;
                cpu += c.time_ns as f64 * 1e-9;
                cpu_flops += c.flops;
                cpu_bytes += c.bytes;
            }
        }
        // The GPU's layers, their input coming over the link when the CPU ran the layers before
        // them (or only the embedding).
        let mut on_gpu = big && cpu_layers > 0;
        if self.gpu_layers > 0 {
            if !on_gpu {
                let x = self.link_s(tokens as f64 * self.hidden * HIDDEN_BYTES);
                time += x;
                link += x;
                on_gpu = true;
            }
            let g = self
                .gpu
                .span_parts(
                    s,
                    self.layers - self.gpu_layers,
                    self.gpu_layers,
                    SpanEnd::Nothing,
                )
                .at(ctx);
            time += g.time_ns as f64 * 1e-9;
            flops += g.flops;
            bytes += g.bytes;
        }
        // The output head: on the GPU when it lives there, or when its batch is large enough to be
        // taken over (its weights then copied); on the CPU otherwise. The iteration's host time comes
        // with it.
        let sampled = s.sampled_seqs as f64;
        // The head alone: a span of no layers that ends with it.
        let head_shape = |r: &Roofline| r.span_parts(s, 0, 0, SpanEnd::Head).at(0);
        let head = if head_where_gpu {
            if !on_gpu {
                let x = self.link_s(sampled * self.hidden * HIDDEN_BYTES);
                time += x;
                link += x;
            }
            let h = head_shape(&self.gpu);
            if !self.head_on_gpu {
                let copy = self.link_s(self.head_weight_bytes);
                time += copy;
                link += copy;
            }
            // The logits come back to the host for sampling.
            let back = self.link_s(sampled * self.vocab * HIDDEN_BYTES);
            time += back;
            link += back;
            flops += h.flops;
            bytes += h.bytes;
            h
        } else {
            if on_gpu {
                let x = self.link_s(sampled * self.hidden * HIDDEN_BYTES);
                time += x;
                link += x;
            }
            let h = head_shape(&self.cpu);
            cpu += h.time_ns as f64 * 1e-9;
            cpu_flops += h.flops;
            cpu_bytes += h.bytes;
            h
        };
        time += head.time_ns as f64 * 1e-9;
        let time_ns = duration_ns(time * 1e9);
        (
            StageCost {
                time_ns,
                host_ns: head.host_ns,
                flops,
                bytes,
                // The GPU waits through the CPU's work and the link's transfers.
                idle_ns: duration_ns((cpu + link) * 1e9).min(time_ns),
                // The host CPU's share of that wait: its layers and the head when it runs it.
                cpu_ns: if cpu > 0.0 {
                    duration_ns(cpu * 1e9).min(time_ns)
                } else {
                    0
                },
                cpu_flops,
                cpu_bytes,
            },
            link,
        )
    }

    /// Seconds of one batch stage spent on the host link (weight copies and hidden-state crossings).
    pub fn link_time_s(&self, s: &BatchShape) -> f64 {
        self.cost(s).1
    }
}

impl CostModel for OffloadRoofline {
    fn stage_cost(&self, s: &BatchShape, _stage: u32) -> StageCost {
        self.cost(s).0
    }
}

impl Predictor for OffloadRoofline {
    fn info(&self) -> PredictorInfo {
        let mut info = self.gpu.info();
        info.kind = "roofline-offload".into();
        info.note = format!(
            "partial GPU offload (llama.cpp -ngl): {} of {} layers{} on {} priced by its roofline, the \
             rest on {} by its roofline (its hardware.threads), run one after the other; the hidden \
             state crosses the host link where the layers change device, and batches of {} tokens \
             or more run every layer on the GPU with the CPU layers' weights copied over the link \
             (ggml's op offload); uncalibrated efficiencies, so latencies are indicative only",
            self.gpu_layers,
            self.layers,
            if self.head_on_gpu {
                " and the output layer"
            } else {
                ""
            },
            self.gpu_name,
            self.cpu_name,
            MIN_OFFLOAD_BATCH
        );
        info.sources.push((
            "host_link".into(),
            format!(
                "{} GB/s per direction (the device catalog's host_link_gb_s of {}), no efficiency",
                self.link_bytes_per_s / 1e9,
                self.gpu_name
            ),
        ));
        info
    }
}
