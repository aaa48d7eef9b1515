//! Model and device catalogs: the architecture numbers and hardware peaks every model in simwatt needs,
//! and a device's power modes (a Jetson's `nvpmodel` clock tables).
//!
//! Built-in copies of `profiles/models.yaml` and `profiles/devices.yaml` are compiled into the binary so a
//! run works from any directory; a config may point at other files (`catalog: {models: .., devices: ..}`).
//! Lookups accept the catalog key or any listed alias, case-insensitively; a device is also found by its
//! name as nvidia-smi or rocm-smi prints it (`NVIDIA H100 80GB HBM3`, `NVIDIA A100-SXM4-40GB`), matched
//! after normalising both sides ([`normalise_device_name`]: no vendor prefix, case, spaces or
//! punctuation), never by a prefix, so a name whose memory size or form factor is not in the catalog
//! is not taken for one that is. [`Catalogs`] holds the
//! built-in pair parsed once, for a command to share between the configs it resolves.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const BUILTIN_MODELS: &str = include_str!("../profiles/models.yaml");
const BUILTIN_DEVICES: &str = include_str!("../profiles/devices.yaml");

/// A transformer decoder's architecture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub num_layers: u32,
    pub hidden_size: u32,
    pub num_attention_heads: u32,
    pub num_kv_heads: u32,
    pub head_dim: u32,
    pub intermediate_size: u32,
    pub vocab_size: u32,
    /// Gated MLP (SwiGLU: three matrices) rather than two.
    pub gated_mlp: bool,
    /// Bytes per weight and per KV-cache element of the published checkpoint: what a config without a
    /// `precision` section uses for weights, activations and KV cache ([`crate::precision`]).
    pub dtype_bytes: u32,
    pub max_position_embeddings: u32,
    /// Mixture-of-experts MLP; absent for a dense model (docs/latency-model.md, "Mixture of experts").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeSpec>,
    /// Sliding-window attention on some layers (Gemma 3, gpt-oss); absent: every layer attends to the
    /// whole context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<SlidingWindow>,
    /// Multi-head latent attention (DeepSeek-V2/V3): keys and values cached as one compressed latent
    /// per token; absent: multi-head or grouped-query attention of `num_kv_heads` x `head_dim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla: Option<MlaSpec>,
    /// The input embedding and the output head share one matrix (config.json: tie_word_embeddings),
    /// which the memory plan then holds once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// The mixture-of-experts MLP of a model: which layers route each token to `experts_per_token` of
/// `num_experts` routed experts (plus any shared experts every token passes through), chosen by a router
/// (gate) of `hidden_size x num_experts` weights. Each expert is an MLP of the model's `gated_mlp`
/// shape with `expert_intermediate_size` in place of `intermediate_size`; the first
/// `first_dense_layers` layers keep the dense MLP of `intermediate_size`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MoeSpec {
    /// Routed experts per MoE layer (config.json: num_experts, num_local_experts, n_routed_experts).
    pub num_experts: u32,
    /// Routed experts each token passes through, top-k (config.json: num_experts_per_tok).
    pub experts_per_token: u32,
    /// Width of one expert's up/gate projection (config.json: moe_intermediate_size, or
    /// intermediate_size where every expert has the dense width, as in Mixtral).
    pub expert_intermediate_size: u32,
    /// Experts every token passes through beside the routed ones, each of `expert_intermediate_size`.
    #[serde(default)]
    pub shared_experts: u32,
    /// Leading layers with the dense MLP (config.json: first_k_dense_replace); 0 = every layer is MoE.
    #[serde(default)]
    pub first_dense_layers: u32,
    /// How the published checkpoint stores the routed experts' weights when it differs from the rest
    /// of the model (gpt-oss: `mxfp4`, with attention, router and embeddings in bf16): the default of a
    /// config's `precision.experts` ([`crate::precision`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_weights: Option<String>,
}

/// Sliding-window attention (config.json: sliding_window, and sliding_window_pattern or layer_types):
/// every `pattern`-th layer, counting from 1, attends to the whole context; the others attend to the
/// last `window` tokens only, so their KV cache holds at most a window per sequence and their attention
/// reads at most a window per query.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SlidingWindow {
    /// Tokens a sliding layer attends to (config.json: sliding_window).
    pub window: u32,
    /// One layer in `pattern` is a full-attention layer, the last of each group (Gemma 3's
    /// sliding_window_pattern 6: layers 5, 11, ...; gpt-oss's alternating layer_types: 2). 1: none
    /// slides.
    pub pattern: u32,
}

/// Multi-head latent attention (DeepSeek-V2 paper, section 2.1; config.json of DeepseekV3ForCausalLM):
/// a token's keys and values are cached as one latent vector of `kv_lora_rank` elements plus a shared
/// rotary key of `qk_rope_head_dim`, and up-projected per head (`kv_b_proj`) to keys of
/// `qk_nope_head_dim + qk_rope_head_dim` and values of `v_head_dim`; queries pass through a low-rank
/// projection of `q_lora_rank` (0: a full-rank query projection, as DeepSeek-V2-Lite). How simwatt
/// prices it (docs/latency-model.md, "Multi-head latent attention"): prefill as multi-head attention on
/// the up-projected keys and values, decode in the latent space (vLLM's weight absorption), every head
/// reading the one latent per token; the latent is not split by tensor parallelism (each rank caches it
/// whole, as vLLM does).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MlaSpec {
    /// Rank of the query projection (config.json: q_lora_rank; 0 or absent: full rank).
    #[serde(default)]
    pub q_lora_rank: u32,
    /// Width of the cached key-value latent (config.json: kv_lora_rank).
    pub kv_lora_rank: u32,
    /// Per-head key width without rotary position (config.json: qk_nope_head_dim).
    pub qk_nope_head_dim: u32,
    /// Rotary key width, shared by the heads and cached beside the latent (config.json:
    /// qk_rope_head_dim).
    pub qk_rope_head_dim: u32,
    /// Per-head value width (config.json: v_head_dim).
    pub v_head_dim: u32,
}

impl MlaSpec {
    /// Elements one token caches per layer: the latent and the rotary key.
    pub fn cached_elements(&self) -> u64 {
        self.kv_lora_rank as u64 + self.qk_rope_head_dim as u64
    }

    /// Per-head query and key width.
    pub fn qk_head_dim(&self) -> u64 {
        self.qk_nope_head_dim as u64 + self.qk_rope_head_dim as u64
    }
}

impl SlidingWindow {
    /// Whether layer `index` (from 0) attends through the window.
    pub fn is_sliding(&self, index: u32) -> bool {
        self.pattern > 1 && (index + 1) % self.pattern != 0
    }

    /// Query-key pairs a sliding layer's prefill computes for a chunk of `tokens` queries whose
    /// causal pairs number `pairs`: at most a window per query. Exact for a chunk whose queries all
    /// lie past the window or all within it, an upper bound for one that straddles it.
    pub fn prefill_pairs(&self, pairs: u64, tokens: u32) -> u64 {
        pairs.min(tokens as u64 * self.window as u64)
    }

    /// Most KV-cache tokens a sliding layer's decode attention reads for `decode_seqs` sequences: a
    /// window each (exact when every sequence is past the window, an upper bound otherwise).
    pub fn decode_cap(&self, decode_seqs: u32) -> u64 {
        decode_seqs as u64 * self.window as u64
    }

    /// Sliding layers among `layers` consecutive layers starting at `first`.
    pub fn sliding_in(&self, first: u32, layers: u32) -> u32 {
        (first..first.saturating_add(layers))
            .filter(|&l| self.is_sliding(l))
            .count() as u32
    }
}

impl MoeSpec {
    /// Expected number of distinct routed experts one MoE layer reads when `tokens` tokens each pick
    /// `experts_per_token` of `num_experts`, under uniform, independent routing: an expert is missed by
    /// one token with probability 1 - k/E, so `E[distinct] = E (1 - (1 - k/E)^tokens)`. It is k for one
    /// token and rises toward E. Real routers are not uniform (popular experts are hit more often),
    /// which makes fewer experts distinct than this for the same batch.
    pub fn expected_distinct_experts(&self, tokens: f64) -> f64 {
        if tokens <= 0.0 {
            return 0.0;
        }
        let e = self.num_experts as f64;
        let miss = 1.0 - self.experts_per_token as f64 / e;
        e * (1.0 - miss.powf(tokens))
    }

    /// Expert parallelism over `ranks` GPUs, each holding `num_experts / ranks` whole experts: what the
    /// busiest GPU of one MoE layer does when `tokens` tokens are routed uniformly and independently.
    /// Returns (routed expert passes it runs per token of the batch, distinct experts it reads).
    ///
    /// A GPU's share of the `tokens x k` expert passes is binomial with p = 1/ranks, and its count of
    /// distinct experts hit binomial over its `num_experts / ranks` experts with the hit probability
    /// of [`MoeSpec::expected_distinct_experts`]; the busiest of `ranks` GPUs is taken at the mean plus
    /// the expected maximum of `ranks` standard normals times the standard deviation (a normal
    /// approximation), capped at all the passes and all its experts, and it reads no more experts than
    /// it runs passes. One GPU: the mean, exactly.
    pub fn busiest_expert_parallel_rank(&self, tokens: f64, ranks: u32) -> (f64, f64) {
        if tokens <= 0.0 {
            return (0.0, 0.0);
        }
        let r = ranks.max(1) as f64;
        let z = expected_max_of_normals(ranks.max(1));
        let k = self.experts_per_token as f64;
        let passes = tokens * k;
        let p = 1.0 / r;
        let busiest_passes = (passes * p + z * (passes * p * (1.0 - p)).sqrt()).min(passes);
        let local = self.num_experts as f64 / r;
        let hit = self.expected_distinct_experts(tokens) / self.num_experts as f64;
        let busiest_hit = (local * hit + z * (local * hit * (1.0 - hit)).sqrt())
            .min(local)
            .min(busiest_passes);
        (busiest_passes / tokens, busiest_hit)
    }
}

/// Expected maximum of `n` independent standard normal variables, from a table computed by numerical
/// integration of `x n phi(x) Phi(x)^(n-1)` (0 for one), interpolated linearly in `ln n` between its
/// entries and extended past 128 by the slope of its last two.
pub fn expected_max_of_normals(n: u32) -> f64 {
    const TABLE: [(u32, f64); 16] = [
        (1, 0.0),
        (2, 0.56419),
        (3, 0.84628),
        (4, 1.02938),
        (5, 1.16296),
        (6, 1.26721),
        (7, 1.35218),
        (8, 1.42360),
        (12, 1.62923),
        (16, 1.76599),
        (24, 1.94767),
        (32, 2.06967),
        (48, 2.23312),
        (64, 2.34373),
        (96, 2.49297),
        (128, 2.59460),
    ];
    let n = n.max(1);
    if let Some(&(_, v)) = TABLE.iter().find(|(m, _)| *m == n) {
        return v;
    }
    let i = TABLE
        .iter()
        .position(|(m, _)| *m > n)
        .unwrap_or(TABLE.len() - 1)
        .max(1);
    let ((a, va), (b, vb)) = (TABLE[i - 1], TABLE[i]);
    let (la, lb, ln) = ((a as f64).ln(), (b as f64).ln(), (n as f64).ln());
    va + (vb - va) * (ln - la) / (lb - la)
}

impl ModelSpec {
    /// Width of the query projection output.
    pub fn q_dim(&self) -> u64 {
        self.num_attention_heads as u64 * self.head_dim as u64
    }

    /// Width of one of the key / value projection outputs.
    pub fn kv_dim(&self) -> u64 {
        self.num_kv_heads as u64 * self.head_dim as u64
    }

    /// Matrices of one MLP (or one expert): 3 when gated, else 2.
    pub fn mlp_matrices(&self) -> u64 {
        if self.gated_mlp {
            3
        } else {
            2
        }
    }

    /// Weights of the attention's linear layers of one transformer layer (QKV and output projection;
    /// with latent attention the query's down and up projections, the latent's down projection with
    /// the rotary key, the latent's up projection to every head's keys and values, and the output
    /// projection).
    pub fn attention_params_per_layer(&self) -> u64 {
        let h = self.hidden_size as u64;
        let Some(a) = &self.mla else {
            return h * (self.q_dim() + 2 * self.kv_dim()) + self.q_dim() * h;
        };
        let heads = self.num_attention_heads as u64;
        let q_out = heads * a.qk_head_dim();
        let q = match a.q_lora_rank as u64 {
            0 => h * q_out,
            r => h * r + r * q_out,
        };
        let kv_down = h * a.cached_elements();
        let kv_up = a.kv_lora_rank as u64 * heads * (a.qk_nope_head_dim + a.v_head_dim) as u64;
        let out = heads * a.v_head_dim as u64 * h;
        q + kv_down + kv_up + out
    }

    /// Width of the attention projections' outputs for one token, summed (what they write and the
    /// next operation reads): queries, keys and values; with latent attention the query latent,
    /// queries, the key-value latent with its rotary key, and the up-projected keys and values.
    pub fn attention_activation_width(&self) -> u64 {
        let Some(a) = &self.mla else {
            return self.q_dim() + 2 * self.kv_dim();
        };
        let heads = self.num_attention_heads as u64;
        a.q_lora_rank as u64
            + heads * a.qk_head_dim()
            + a.cached_elements()
            + heads * (a.qk_nope_head_dim + a.v_head_dim) as u64
    }

    /// Weights of the linear layers of one dense transformer layer (QKV, output projection, the MLP of
    /// `intermediate_size`). For a mixture-of-experts model this is one of its `first_dense_layers`;
    /// its MoE layers are [`ModelSpec::moe_layer_params`].
    pub fn linear_params_per_layer(&self) -> u64 {
        let h = self.hidden_size as u64;
        let i = self.intermediate_size as u64;
        self.attention_params_per_layer() + self.mlp_matrices() * h * i
    }

    /// KV-cache elements one token takes per layer on one GPU of a tensor-parallel group of `tp`:
    /// keys and values of the GPU's KV heads (at least one), or with latent attention the whole
    /// latent and rotary key, which every rank caches.
    pub fn kv_elements_per_token_per_layer(&self, tp: u32) -> f64 {
        match &self.mla {
            Some(a) => a.cached_elements() as f64,
            None => {
                2.0 * (self.num_kv_heads as f64 / tp.max(1) as f64).max(1.0) * self.head_dim as f64
            }
        }
    }

    /// Weights of one expert (an MLP of `expert_intermediate_size`); 0 for a dense model.
    pub fn expert_params(&self) -> u64 {
        self.moe.as_ref().map_or(0, |e| {
            self.mlp_matrices() * self.hidden_size as u64 * e.expert_intermediate_size as u64
        })
    }

    /// Weights of the router (gate) of one MoE layer, `hidden_size x num_experts`; 0 for a dense model.
    pub fn router_params(&self) -> u64 {
        self.moe
            .as_ref()
            .map_or(0, |e| self.hidden_size as u64 * e.num_experts as u64)
    }

    /// Layers with a mixture-of-experts MLP (0 for a dense model).
    pub fn moe_layers(&self) -> u32 {
        self.moe
            .as_ref()
            .map_or(0, |e| self.num_layers.saturating_sub(e.first_dense_layers))
    }

    /// Whether layer `index` (from 0) has a mixture-of-experts MLP.
    pub fn is_moe_layer(&self, index: u32) -> bool {
        self.moe
            .as_ref()
            .is_some_and(|e| index >= e.first_dense_layers)
    }

    /// Weights of the linear layers of one MoE layer, every expert resident: attention, router, routed
    /// and shared experts. 0 for a dense model.
    pub fn moe_layer_params(&self) -> u64 {
        self.moe.as_ref().map_or(0, |e| {
            self.attention_params_per_layer()
                + self.router_params()
                + (e.num_experts as u64 + e.shared_experts as u64) * self.expert_params()
        })
    }

    /// Weights of the linear layers of layer `index`: [`ModelSpec::moe_layer_params`] for an MoE layer,
    /// else [`ModelSpec::linear_params_per_layer`].
    pub fn layer_params(&self, index: u32) -> u64 {
        if self.is_moe_layer(index) {
            self.moe_layer_params()
        } else {
            self.linear_params_per_layer()
        }
    }

    /// Input embedding and output head weights: two matrices, one when tied.
    pub fn embedding_params(&self) -> u64 {
        let one = self.vocab_size as u64 * self.hidden_size as u64;
        if self.tie_word_embeddings {
            one
        } else {
            2 * one
        }
    }

    /// All weights: layers (every expert), plus input embedding and output head (one matrix when
    /// tied).
    pub fn total_params(&self) -> u64 {
        let dense_layers = (self.num_layers - self.moe_layers()) as u64;
        dense_layers * self.linear_params_per_layer()
            + self.moe_layers() as u64 * self.moe_layer_params()
            + self.embedding_params()
    }

    /// Routed-expert weights of the MoE layers among `layers` layers from `first`: what a separate
    /// expert precision stores ([`MoeSpec::expert_weights`]). 0 for a dense model.
    pub fn routed_expert_params_in(&self, first: u32, layers: u32) -> u64 {
        let Some(e) = &self.moe else {
            return 0;
        };
        let moe_layers = (first..first.saturating_add(layers))
            .filter(|&l| self.is_moe_layer(l))
            .count() as u64;
        moe_layers * e.num_experts as u64 * self.expert_params()
    }

    /// Sliding-window layers among `layers` layers from `first` (0 without sliding windows).
    pub fn sliding_layers_in(&self, first: u32, layers: u32) -> u32 {
        self.sliding_window
            .map_or(0, |w| w.sliding_in(first, layers))
    }

    /// Weights one token passes through: as [`ModelSpec::total_params`], but each MoE layer counts its
    /// router, its `experts_per_token` routed experts and its shared experts only. Equal to the total
    /// for a dense model.
    pub fn active_params(&self) -> u64 {
        let Some(e) = &self.moe else {
            return self.total_params();
        };
        let active_layer = self.attention_params_per_layer()
            + self.router_params()
            + (e.experts_per_token as u64 + e.shared_experts as u64) * self.expert_params();
        let dense_layers = (self.num_layers - self.moe_layers()) as u64;
        dense_layers * self.linear_params_per_layer()
            + self.moe_layers() as u64 * active_layer
            + self.embedding_params()
    }

    /// KV-cache bytes per token for one layer (keys and values, all KV heads) at the checkpoint's
    /// `dtype_bytes`; a run's own KV precision is in its memory plan.
    pub fn kv_bytes_per_token_per_layer(&self) -> u64 {
        match &self.mla {
            Some(a) => a.cached_elements() * self.dtype_bytes as u64,
            None => 2 * self.kv_dim() * self.dtype_bytes as u64,
        }
    }
}

/// A value with where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sourced {
    pub value: f64,
    pub source: String,
    #[serde(default)]
    pub year: Option<u32>,
}

/// An accelerator (or CPU) and its published peaks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// gpu | cpu | soc
    pub kind: String,
    /// Dense bf16/fp16 tensor throughput, TFLOP/s.
    pub peak_tflops: f64,
    /// Memory bandwidth, GB/s (1 GB = 1e9 bytes).
    pub memory_bandwidth_gb_s: f64,
    /// Device memory, GB (1 GB = 1e9 bytes).
    pub memory_gb: f64,
    pub tdp_w: f64,
    #[serde(default)]
    pub idle_w: Option<f64>,
    /// Lowest power limit an operator may set (`nvidia-smi -pl`), watts. `None`: not known, and
    /// `hardware.power_cap_w` may then not exceed the power profile's cap.
    #[serde(default)]
    pub power_limit_min_w: Option<f64>,
    /// Highest power limit an operator may set, watts.
    #[serde(default)]
    pub power_limit_max_w: Option<f64>,
    /// Highest SM clock (`nvidia-smi -q`, Max Clocks SM), MHz: the clock a `hardware.sm_clock_mhz`
    /// limit is a fraction of. `None`: not known, and a clock limit is refused.
    #[serde(default)]
    pub max_sm_clock_mhz: Option<f64>,
    /// Highest memory (EMC) clock, MHz: the clock at which the device moves `memory_bandwidth_gb_s`,
    /// and the one a power mode's `emc_max_mhz` is a fraction of. Needed with `power_modes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_clock_mhz: Option<f64>,
    /// The device's power modes (a Jetson's `nvpmodel` modes), chosen with `hardware.power_mode`.
    /// Absent: the device has none, and the knob is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_modes: Option<Vec<PowerMode>>,
    /// Per-direction bandwidth between devices of one server (NVLink / PCIe), GB/s, for tensor- and
    /// pipeline-parallel communication in the roofline.
    #[serde(default)]
    pub interconnect_gb_s: Option<f64>,
    /// Latency of one hop between two devices of one server (one step of a ring collective, or one
    /// point-to-point send), microseconds. A ring all-reduce over n devices pays it 2(n-1) times, on top
    /// of the roofline's fixed per-collective cost. `None`: no per-hop term.
    #[serde(default)]
    pub interconnect_latency_us: Option<f64>,
    /// Per-direction bandwidth between the host's memory and the device (its PCIe link), GB/s: what
    /// partial GPU offload (`hardware.gpu_layers`) moves the hidden state and the host's weights over.
    /// `None`: not known, and offload onto the device is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link_gb_s: Option<f64>,
    #[serde(default)]
    pub rental_usd_per_gpu_hour: Option<Sourced>,
    #[serde(default)]
    pub profile_dir: Option<String>,
    #[serde(default)]
    pub network_profile: Option<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub notes: Option<String>,
    // -- Precision (docs/precision.md) --
    /// Dense peaks of the lower-precision arithmetic the device has; bf16/fp16 is `peak_tflops`. A
    /// precision absent here falls back to `peak_tflops` (see [`crate::precision`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_tflops_by_precision: Option<PrecisionPeaks>,
    /// A CPU's cores and what each can do, for pricing `hardware.threads` (docs/edge.md, "CPU threads,
    /// calibrated on llama.cpp"). Absent: the knob is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuTopology>,
}

/// The cores of a hybrid (P-core + E-core) or plain CPU and the rates of one thread on each, for
/// pricing a run on `k` of its hardware threads ([`CpuTopology::thread_rates`]).
///
/// Threads take cores in the order a hybrid CPU's scheduler fills them: the P-cores one thread each,
/// then the E-cores, then the P-cores' second (SMT) threads, which add no FMA throughput or bandwidth
/// of their own and halve their core's rates for both of its threads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CpuTopology {
    /// Performance cores (two hardware threads each when `threads` says so).
    pub p_cores: u32,
    /// Efficiency cores (one hardware thread each); 0 on a CPU of one kind of core.
    #[serde(default)]
    pub e_cores: u32,
    /// Hardware threads: `p_cores` to `2 p_cores + e_cores`.
    pub threads: u32,
    /// FP32 FMA FLOP per clock of one P-core (2 FMA units x SIMD lanes x 2).
    pub p_core_flop_per_clock: f64,
    /// Clock of the P-cores under an all-core load, GHz.
    pub p_core_ghz: f64,
    /// FP32 FMA FLOP per clock of one E-core.
    #[serde(default)]
    pub e_core_flop_per_clock: f64,
    /// Clock of the E-cores, GHz.
    #[serde(default)]
    pub e_core_ghz: f64,
    /// Memory bandwidth one thread alone on a P-core draws, GB/s (before the roofline's memory
    /// efficiency). Absent: no per-core limit, every thread count reaches the device's bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_core_bandwidth_gb_s: Option<f64>,
    /// Memory bandwidth one thread on an E-core draws, GB/s. Absent: no per-core limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_core_bandwidth_gb_s: Option<f64>,
    /// Where the figures come from, and what the fitted ones were fitted on.
    pub source: String,
}

/// What one thread of a [`CpuTopology`] can do: FLOP/s and memory bandwidth, bytes/s (`None`: no
/// per-core bandwidth limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThreadRate {
    pub flops: f64,
    pub bytes_s: Option<f64>,
}

impl CpuTopology {
    /// The rate of each of the first `k` threads, in the order they take cores: P-cores, E-cores, then
    /// the P-cores' SMT siblings (a P-core running two threads gives each half its rates).
    pub fn thread_rates(&self, k: u32) -> Vec<ThreadRate> {
        let p = self.p_cores;
        let e = self.e_cores;
        let p_rate = ThreadRate {
            flops: self.p_core_flop_per_clock * self.p_core_ghz * 1e9,
            bytes_s: self.p_core_bandwidth_gb_s.map(|b| b * 1e9),
        };
        let e_rate = ThreadRate {
            flops: self.e_core_flop_per_clock * self.e_core_ghz * 1e9,
            bytes_s: self.e_core_bandwidth_gb_s.map(|b| b * 1e9),
        };
        let siblings = k.saturating_sub(p + e).min(p);
        let half = |r: ThreadRate| ThreadRate {
            flops: r.flops / 2.0,
            bytes_s: r.bytes_s.map(|b| b / 2.0),
        };
        (0..k)
            .map(|i| {
                if i < p {
                    if i < siblings {
                        half(p_rate)
                    } else {
                        p_rate
                    }
                } else if i < p + e {
                    e_rate
                } else {
                    half(p_rate)
                }
            })
            .collect()
    }

    /// The FMA peak of `k` threads, FLOP/s: the sum over the cores they occupy, P-cores first; an SMT
    /// sibling adds nothing.
    pub fn peak_flops(&self, k: u32) -> f64 {
        self.thread_rates(k).iter().map(|r| r.flops).sum()
    }

    /// The FLOP/s `k` threads reach when the work is split into `k` equal shares, as llama.cpp splits
    /// each operation: every share waits for the slowest thread, so `k x` its rate.
    pub fn split_flops(&self, k: u32) -> f64 {
        let rates = self.thread_rates(k);
        rates.iter().map(|r| r.flops).fold(f64::INFINITY, f64::min) * k as f64
    }

    /// The memory bandwidth `k` threads reach, bytes/s: `min(device bandwidth, k x the slowest
    /// thread's bandwidth)` under the same equal split (the device's bandwidth where the catalog gives
    /// no per-core figure).
    pub fn split_bandwidth(&self, k: u32, device_bytes_s: f64) -> f64 {
        let slowest = self
            .thread_rates(k)
            .iter()
            .filter_map(|r| r.bytes_s)
            .fold(f64::INFINITY, f64::min);
        device_bytes_s.min(slowest * k as f64)
    }
}

/// One power mode of a device (a Jetson's `nvpmodel` mode): the clocks and cores it allows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PowerMode {
    /// The mode's name as `nvpmodel -q` prints it (`15W`, `MAXN_SUPER`).
    pub name: String,
    /// The module power budget the mode is named for, watts (`None`: the mode sets no budget, as
    /// MAXN does). Reported, not enforced: the mode holds it through its clock caps.
    #[serde(default)]
    pub power_budget_w: Option<f64>,
    /// Highest GPU clock the mode allows, MHz (at most the device's `max_sm_clock_mhz`).
    pub gpu_max_mhz: f64,
    /// Highest memory (EMC) clock the mode allows, MHz (at most the device's `max_memory_clock_mhz`).
    pub emc_max_mhz: f64,
    /// CPU cores the mode keeps online.
    pub cpu_cores_online: u32,
    /// Highest CPU clock the mode allows, MHz.
    pub cpu_max_mhz: f64,
    /// Where the figures come from.
    pub source: String,
}

/// Dense (no 2:4 sparsity) tensor-core or SIMD peaks per arithmetic, TFLOP/s (TOP/s for int8).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrecisionPeaks {
    /// FP8 (e4m3/e5m2) inputs, FP32 accumulation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp8: Option<f64>,
    /// INT8 inputs, INT32 accumulation, TOP/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8: Option<f64>,
    /// FP4 (NVFP4 / MXFP4) inputs; catalogued, not used by any weight format simwatt models yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp4: Option<f64>,
    /// Where the figures come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl DeviceSpec {
    /// The power mode called `name` (`None`: the device has no such mode).
    pub fn power_mode(&self, name: &str) -> Option<&PowerMode> {
        self.power_modes.as_ref()?.iter().find(|m| m.name == name)
    }

    pub fn peak_flops(&self) -> f64 {
        self.peak_tflops * 1e12
    }

    pub fn memory_bandwidth_bytes_s(&self) -> f64 {
        self.memory_bandwidth_gb_s * 1e9
    }

    pub fn memory_bytes(&self) -> f64 {
        self.memory_gb * 1e9
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    models: BTreeMap<String, ModelSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicesFile {
    devices: BTreeMap<String, DeviceSpec>,
}

/// The model and device catalogs in use for a run, with where each came from.
#[derive(Debug, Clone)]
pub struct Catalog {
    models: BTreeMap<String, ModelSpec>,
    devices: BTreeMap<String, DeviceSpec>,
    /// `builtin:profiles/models.yaml` or the file's path.
    pub models_origin: String,
    pub devices_origin: String,
    /// The catalogs' text, for provenance hashes.
    pub models_text: String,
    pub devices_text: String,
}

fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    crate::input::check_yaml_depth(origin, text)?;
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Field {
        path: origin.to_path_buf(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

fn read_text(path: &Path) -> Result<String> {
    crate::input::read_text(path)
}

impl Catalog {
    /// Parses the built-in catalogs. A command that resolves many configs parses them once, through
    /// [`Catalogs`].
    pub fn builtin() -> Result<Self> {
        Self::load(None, None)
    }

    /// Loads the catalogs, each from `path` when given, else the built-in copy, and checks every entry
    /// ([`validate`]).
    pub fn load(models: Option<&Path>, devices: Option<&Path>) -> Result<Self> {
        let (models_text, models_origin) = match models {
            Some(p) => (read_text(p)?, p.display().to_string()),
            None => (
                BUILTIN_MODELS.to_string(),
                "builtin:profiles/models.yaml".to_string(),
            ),
        };
        let (devices_text, devices_origin) = match devices {
            Some(p) => (read_text(p)?, p.display().to_string()),
            None => (
                BUILTIN_DEVICES.to_string(),
                "builtin:profiles/devices.yaml".to_string(),
            ),
        };
        let mf: ModelsFile = parse_yaml(&models_text, &PathBuf::from(&models_origin))?;
        let df: DevicesFile = parse_yaml(&devices_text, &PathBuf::from(&devices_origin))?;
        let catalog = Catalog {
            models: mf.models,
            devices: df.devices,
            models_origin,
            devices_origin,
            models_text,
            devices_text,
        };
        // Every entry is checked at load: a model with no heads or a device with no bandwidth would
        // otherwise run, with every operation taking no time.
        validate(&catalog)?;
        Ok(catalog)
    }

    /// The model called `name` (key or alias, case-insensitive), with its canonical key.
    pub fn model(&self, name: &str) -> Option<(&str, &ModelSpec)> {
        find(&self.models, name, |m| &m.aliases)
    }

    /// The device called `name` (key or alias, case-insensitive, or an alias after
    /// [`normalise_device_name`]), with its canonical key. Keys are short ids (`a100`) and are matched
    /// as written only, so `NVIDIA A100` (no memory size; the A100 comes with 40 and 80 GB) is not
    /// taken for `a100`.
    pub fn device(&self, name: &str) -> Option<(&str, &DeviceSpec)> {
        find(&self.devices, name, |d| &d.aliases).or_else(|| {
            let n = normalise_device_name(name);
            if n.is_empty() {
                return None;
            }
            self.devices
                .iter()
                .find(|(_, d)| d.aliases.iter().any(|a| normalise_device_name(a) == n))
                .map(|(k, d)| (k.as_str(), d))
        })
    }

    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(|s| s.as_str())
    }

    pub fn device_names(&self) -> impl Iterator<Item = &str> {
        self.devices.keys().map(|s| s.as_str())
    }
}

/// Checks every entry of a catalog: every count and size of a model positive (and head counts that
/// divide), every peak, capacity and power of a device positive, and every optional figure (idle power,
/// interconnect bandwidth and latency, rental price) positive where given. The error names the catalog,
/// the entry and the field.
pub fn validate(catalog: &Catalog) -> Result<()> {
    for name in catalog.model_names() {
        if let Some((_, m)) = catalog.model(name) {
            check_model(m).map_err(|(field, value, message)| {
                Error::invalid(
                    &catalog.models_origin,
                    format!("models.{name}.{field}"),
                    value,
                    message,
                )
            })?;
        }
    }
    for name in catalog.device_names() {
        if let Some((_, d)) = catalog.device(name) {
            check_device(d).map_err(|(field, value, message)| {
                Error::invalid(
                    &catalog.devices_origin,
                    format!("devices.{name}.{field}"),
                    value,
                    message,
                )
            })?;
        }
    }
    Ok(())
}

/// A field that failed a check: its name, its value and why.
type Failed = (&'static str, String, &'static str);

fn check_model(m: &ModelSpec) -> std::result::Result<(), Failed> {
    let counts = [
        ("num_layers", m.num_layers),
        ("hidden_size", m.hidden_size),
        ("num_attention_heads", m.num_attention_heads),
        ("num_kv_heads", m.num_kv_heads),
        ("head_dim", m.head_dim),
        ("intermediate_size", m.intermediate_size),
        ("vocab_size", m.vocab_size),
        ("dtype_bytes", m.dtype_bytes),
        ("max_position_embeddings", m.max_position_embeddings),
    ];
    for (field, v) in counts {
        if v == 0 {
            return Err((field, v.to_string(), "must be positive"));
        }
    }
    if m.num_attention_heads % m.num_kv_heads != 0 {
        return Err((
            "num_kv_heads",
            m.num_kv_heads.to_string(),
            "must divide num_attention_heads (each KV head serves a whole group of query heads)",
        ));
    }
    if let Some(e) = &m.moe {
        let counts = [
            ("moe.num_experts", e.num_experts),
            ("moe.experts_per_token", e.experts_per_token),
            ("moe.expert_intermediate_size", e.expert_intermediate_size),
        ];
        for (field, v) in counts {
            if v == 0 {
                return Err((field, v.to_string(), "must be positive"));
            }
        }
        if e.experts_per_token > e.num_experts {
            return Err((
                "moe.experts_per_token",
                e.experts_per_token.to_string(),
                "must not exceed moe.num_experts (a token is routed to top-k of the experts)",
            ));
        }
        if e.first_dense_layers >= m.num_layers {
            return Err((
                "moe.first_dense_layers",
                e.first_dense_layers.to_string(),
                "must be below num_layers (at least one layer must be MoE; leave out `moe` for a dense model)",
            ));
        }
    }
    if let Some(a) = &m.mla {
        let counts = [
            ("mla.kv_lora_rank", a.kv_lora_rank),
            ("mla.qk_nope_head_dim", a.qk_nope_head_dim),
            ("mla.qk_rope_head_dim", a.qk_rope_head_dim),
            ("mla.v_head_dim", a.v_head_dim),
        ];
        for (field, v) in counts {
            if v == 0 {
                return Err((field, v.to_string(), "must be positive"));
            }
        }
        if m.sliding_window.is_some() {
            return Err((
                "mla",
                "set".into(),
                "latent attention with sliding windows is not modelled (no such model is known); leave one out",
            ));
        }
    }
    if let Some(w) = &m.sliding_window {
        if w.window == 0 {
            return Err(("sliding_window.window", "0".into(), "must be positive"));
        }
        if w.pattern == 0 {
            return Err((
                "sliding_window.pattern",
                "0".into(),
                "must be positive (one layer in `pattern` attends to the whole context; 1: none slides)",
            ));
        }
    }
    Ok(())
}

fn check_device(d: &DeviceSpec) -> std::result::Result<(), Failed> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let required = [
        ("peak_tflops", d.peak_tflops),
        ("memory_bandwidth_gb_s", d.memory_bandwidth_gb_s),
        ("memory_gb", d.memory_gb),
        ("tdp_w", d.tdp_w),
    ];
    for (field, v) in required {
        if !positive(v) {
            return Err((field, v.to_string(), "must be a positive number"));
        }
    }
    let optional = [
        ("idle_w", d.idle_w),
        ("interconnect_gb_s", d.interconnect_gb_s),
        ("interconnect_latency_us", d.interconnect_latency_us),
        ("host_link_gb_s", d.host_link_gb_s),
        ("power_limit_min_w", d.power_limit_min_w),
        ("power_limit_max_w", d.power_limit_max_w),
        ("max_sm_clock_mhz", d.max_sm_clock_mhz),
        ("max_memory_clock_mhz", d.max_memory_clock_mhz),
        (
            "rental_usd_per_gpu_hour",
            d.rental_usd_per_gpu_hour.as_ref().map(|r| r.value),
        ),
        // -- Precision --
        (
            "peak_tflops_by_precision.fp8",
            d.peak_tflops_by_precision.as_ref().and_then(|p| p.fp8),
        ),
        (
            "peak_tflops_by_precision.int8",
            d.peak_tflops_by_precision.as_ref().and_then(|p| p.int8),
        ),
        (
            "peak_tflops_by_precision.fp4",
            d.peak_tflops_by_precision.as_ref().and_then(|p| p.fp4),
        ),
    ];
    for (field, v) in optional {
        if let Some(v) = v.filter(|v| !positive(*v)) {
            return Err((field, v.to_string(), "must be a positive number when given"));
        }
    }
    if d.idle_w.is_some_and(|idle| idle >= d.tdp_w) {
        return Err(("idle_w", format!("{:?}", d.idle_w), "must be below tdp_w"));
    }
    match (d.power_limit_min_w, d.power_limit_max_w) {
        (Some(lo), Some(hi)) if lo >= hi => {
            return Err((
                "power_limit_min_w",
                lo.to_string(),
                "must be below power_limit_max_w",
            ))
        }
        (Some(lo), None) => {
            return Err((
                "power_limit_min_w",
                lo.to_string(),
                "needs power_limit_max_w beside it",
            ))
        }
        (None, Some(hi)) => {
            return Err((
                "power_limit_max_w",
                hi.to_string(),
                "needs power_limit_min_w beside it",
            ))
        }
        _ => {}
    }
    check_cpu(d)?;
    check_power_modes(d)
}

/// A CPU topology: on a `kind: cpu` device, at least one P-core, hardware threads from one per core to
/// two per P-core plus one per E-core, positive rates for every kind of core it has.
fn check_cpu(d: &DeviceSpec) -> std::result::Result<(), Failed> {
    let Some(c) = &d.cpu else {
        return Ok(());
    };
    if d.kind != "cpu" {
        return Err(("cpu", d.kind.clone(), "is only for kind: cpu devices"));
    }
    if c.p_cores == 0 {
        return Err(("cpu.p_cores", "0".into(), "must be at least 1"));
    }
    let cores = c.p_cores + c.e_cores;
    if c.threads < cores || c.threads > 2 * c.p_cores + c.e_cores {
        return Err((
            "cpu.threads",
            c.threads.to_string(),
            "must be from p_cores + e_cores to 2 p_cores + e_cores",
        ));
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let mut rates = vec![
        ("cpu.p_core_flop_per_clock", Some(c.p_core_flop_per_clock)),
        ("cpu.p_core_ghz", Some(c.p_core_ghz)),
        ("cpu.p_core_bandwidth_gb_s", c.p_core_bandwidth_gb_s),
        ("cpu.e_core_bandwidth_gb_s", c.e_core_bandwidth_gb_s),
    ];
    if c.e_cores > 0 {
        rates.push(("cpu.e_core_flop_per_clock", Some(c.e_core_flop_per_clock)));
        rates.push(("cpu.e_core_ghz", Some(c.e_core_ghz)));
    }
    for (field, v) in rates {
        if let Some(v) = v.filter(|v| !positive(*v)) {
            return Err((field, v.to_string(), "must be a positive number"));
        }
    }
    if c.p_core_bandwidth_gb_s.is_some() != (c.e_core_bandwidth_gb_s.is_some() || c.e_cores == 0) {
        return Err((
            "cpu.e_core_bandwidth_gb_s",
            format!("{:?}", c.e_core_bandwidth_gb_s),
            "give both per-core bandwidths or neither",
        ));
    }
    Ok(())
}

/// A device's power modes: named once each, every clock positive and at most the device's maximum
/// (so the device must give `max_sm_clock_mhz` and `max_memory_clock_mhz`), at least one CPU core.
fn check_power_modes(d: &DeviceSpec) -> std::result::Result<(), Failed> {
    let Some(modes) = &d.power_modes else {
        return Ok(());
    };
    if modes.is_empty() {
        return Err((
            "power_modes",
            "[]".into(),
            "must list at least one mode when given",
        ));
    }
    let (Some(max_gpu), Some(max_emc)) = (d.max_sm_clock_mhz, d.max_memory_clock_mhz) else {
        return Err((
            "power_modes",
            format!("{} modes", modes.len()),
            "need max_sm_clock_mhz and max_memory_clock_mhz beside them (the clocks a mode's caps are fractions of)",
        ));
    };
    for (i, m) in modes.iter().enumerate() {
        if modes[..i].iter().any(|o| o.name == m.name) {
            return Err(("power_modes.name", m.name.clone(), "names one mode twice"));
        }
        let clocks = [
            (
                "power_modes.gpu_max_mhz",
                m.gpu_max_mhz,
                max_gpu,
                "must be above 0 and at most the device's max_sm_clock_mhz",
            ),
            (
                "power_modes.emc_max_mhz",
                m.emc_max_mhz,
                max_emc,
                "must be above 0 and at most the device's max_memory_clock_mhz",
            ),
        ];
        for (field, v, max, what) in clocks {
            if !(v.is_finite() && v > 0.0 && v <= max) {
                return Err((field, format!("{v} (mode {})", m.name), what));
            }
        }
        if !(m.cpu_max_mhz.is_finite() && m.cpu_max_mhz > 0.0) || m.cpu_cores_online == 0 {
            return Err((
                "power_modes.cpu_cores_online",
                format!(
                    "{} cores at {} MHz (mode {})",
                    m.cpu_cores_online, m.cpu_max_mhz, m.name
                ),
                "a mode keeps at least one CPU core online at a clock above 0",
            ));
        }
        if let Some(w) = m.power_budget_w.filter(|w| !(w.is_finite() && *w > 0.0)) {
            return Err((
                "power_modes.power_budget_w",
                format!("{w} (mode {})", m.name),
                "must be a positive number of watts when given",
            ));
        }
    }
    Ok(())
}

/// The catalogs one command resolves its configs against: the built-in pair, parsed once when the
/// command starts and shared by every scenario that names no catalog file (a sweep resolves thousands).
#[derive(Debug, Clone)]
pub struct Catalogs {
    builtin: Arc<Catalog>,
}

impl Catalogs {
    /// Parses the built-in catalogs.
    pub fn new() -> Result<Self> {
        Ok(Catalogs {
            builtin: Arc::new(Catalog::builtin()?),
        })
    }

    /// The built-in catalogs.
    pub fn builtin(&self) -> &Arc<Catalog> {
        &self.builtin
    }

    /// The catalogs of a config: the shared built-in pair when it names no file, else each from `path`
    /// when given, else the built-in copy.
    pub fn load(&self, models: Option<&Path>, devices: Option<&Path>) -> Result<Arc<Catalog>> {
        if models.is_none() && devices.is_none() {
            return Ok(Arc::clone(&self.builtin));
        }
        Catalog::load(models, devices).map(Arc::new)
    }
}

/// A device name as compared across spellings: lower case, without a leading vendor or brand
/// (`NVIDIA`, `AMD`, `Tesla`) and without anything but letters and digits, so `NVIDIA A100-SXM4-80GB`,
/// `a100 sxm4 80gb` and `A100_SXM4_80GB` are one name.
pub fn normalise_device_name(name: &str) -> String {
    let mut s = name.trim().to_ascii_lowercase();
    for prefix in ["nvidia", "amd", "tesla"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            if rest.starts_with([' ', '-', '_']) {
                s = rest.trim_start_matches([' ', '-', '_']).to_string();
            }
        }
    }
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

fn find<'a, T>(
    map: &'a BTreeMap<String, T>,
    name: &str,
    aliases: impl Fn(&T) -> &Vec<String>,
) -> Option<(&'a str, &'a T)> {
    let lname = name.to_ascii_lowercase();
    map.iter()
        .find(|(k, v)| {
            k.to_ascii_lowercase() == lname
                || aliases(v).iter().any(|a| a.to_ascii_lowercase() == lname)
        })
        .map(|(k, v)| (k.as_str(), v))
}

#[cfg(test)]
mod tests {

    fn raptor_lake() -> CpuTopology {
        CpuTopology {
            p_cores: 8,
            e_cores: 16,
            threads: 32,
            p_core_flop_per_clock: 32.0,
            p_core_ghz: 5.0,
            e_core_flop_per_clock: 16.0,
            e_core_ghz: 4.0,
            p_core_bandwidth_gb_s: Some(20.0),
            e_core_bandwidth_gb_s: Some(5.0),
            source: "test".into(),
        }
    }

    /// The FMA peak grows with every thread up to the last core, P-cores first (each P-core thread
    /// adds a P-core's rate, each E-core thread an E-core's), and SMT siblings add nothing.
    #[test]
    fn compute_peak_takes_p_cores_first_and_smt_adds_nothing() {
        let c = raptor_lake();
        let (p, e) = (32.0 * 5.0e9, 16.0 * 4.0e9);
        for k in 1..=32 {
            let step = c.peak_flops(k) - c.peak_flops(k - 1);
            let want = match k {
                1..=8 => p,
                9..=24 => e,
                _ => 0.0,
            };
            assert!(
                (step - want).abs() < 1.0,
                "thread {k}: {step} against {want}"
            );
        }
        assert!((c.peak_flops(32) - (8.0 * p + 16.0 * e)).abs() < 1.0);
        // The equal split never beats the sum, and equals it on cores of one kind.
        for k in 1..=32 {
            assert!(c.split_flops(k) <= c.peak_flops(k) + 1.0);
        }
        assert!((c.split_flops(8) - c.peak_flops(8)).abs() < 1.0);
        assert!((c.split_flops(16) - 16.0 * e).abs() < 1.0);
    }

    /// Bandwidth grows with the threads until the device's bandwidth caps it, and an E-core joining
    /// the P-cores pulls every thread down to its rate under the equal split.
    #[test]
    fn bandwidth_saturates_at_the_devices() {
        let c = raptor_lake();
        let device = 100e9;
        assert_eq!(c.split_bandwidth(1, device), 20e9);
        assert_eq!(c.split_bandwidth(4, device), 80e9);
        for k in 5..=8 {
            assert_eq!(c.split_bandwidth(k, device), device);
        }
        assert_eq!(c.split_bandwidth(9, device), 45e9);
        assert_eq!(c.split_bandwidth(16, device), 80e9);
        for k in 20..=32 {
            assert_eq!(c.split_bandwidth(k, device), device);
        }
        let unlimited = CpuTopology {
            p_core_bandwidth_gb_s: None,
            e_core_bandwidth_gb_s: None,
            ..raptor_lake()
        };
        assert_eq!(unlimited.split_bandwidth(1, device), device);
    }

    /// The catalog's CPUs with a topology price their full thread count at no more than their listed
    /// peak (the sum of their cores), and the i9-13900K's sum is its peak_tflops.
    #[test]
    fn catalog_cpu_topologies_agree_with_their_peaks() {
        let c = Catalog::builtin().unwrap();
        let (_, d) = c.device("i9-13900k").unwrap();
        let cpu = d.cpu.as_ref().unwrap();
        let sum = cpu.peak_flops(cpu.threads) / 1e12;
        assert!(
            (sum - d.peak_tflops).abs() < 0.01,
            "{sum} against {}",
            d.peak_tflops
        );
    }
    use super::*;

    #[test]
    fn builtin_catalogs_parse_and_resolve_aliases() {
        let c = Catalog::builtin().unwrap();
        let (key, m) = c.model("META-LLAMA/llama-2-7b-hf").unwrap();
        assert_eq!(key, "meta-llama/Llama-2-7b-hf");
        assert_eq!(m.num_layers, 32);
        assert_eq!(m.hidden_size, 4096);
        assert!(c.device("a100").is_some());
        assert!(c.device("h100").is_some());
        assert!(c.model("no/such-model").is_none());
    }

    #[test]
    fn llama2_7b_has_about_6_7_billion_parameters() {
        let c = Catalog::builtin().unwrap();
        let (_, m) = c.model("meta-llama/Llama-2-7b-hf").unwrap();
        let p = m.total_params() as f64;
        assert!((6.6e9..6.8e9).contains(&p), "{p}");
        // 2 (K and V) x 4096 x 2 bytes per layer per token.
        assert_eq!(m.kv_bytes_per_token_per_layer(), 16384);
    }
}
