//! Roofline execution-time model: each operation takes the longer of its compute time and its memory
//! time at the device's peak compute and bandwidth, scaled by achieved-efficiency factors, plus fixed
//! per-layer and per-iteration overheads and tensor/pipeline-parallel communication.
//!
//! Two roles (docs/latency-model.md): the whole predictor of a (model, device, tensor-parallel degree)
//! without profiles (`predictor.type: roofline`, or `auto` with no profile), and the part of the
//! profile-fitted model that no profile covers (the output head). Its efficiencies and overheads are the
//! config's `predictor.roofline` values, defaults unless set, and are not fitted here; the roofline
//! calibrated by least squares on a measured attention profile is [`super::attention`]. Every run's
//! provenance names which source priced each operation.
//!
//! Bytes per weight, activation and KV element and the peak of the linear layers come from the run's
//! [`Precision`] (docs/precision.md); attention and elementwise work stay at the device's bf16 peak.
//!
//! Input: the model and device specs, the precision, the parallelism and [`RooflineParams`]. Output: a
//! [`StageCost`] per batch shape. Reads no file and touches no state outside its own struct.

use super::{BatchShape, CostModel, DecodeRun, Predictor, PredictorInfo, StageCost};
use crate::catalog::{DeviceSpec, ModelSpec, MoeSpec};
use crate::config::engine_profile::{EngineProvenance, Fp8Linear, FusedMoe};
use crate::precision::Precision;
use crate::units::duration_ns;

/// Interconnect bandwidth assumed when the device catalog gives none, GB/s per direction (PCIe 4.0 x16).
pub const DEFAULT_INTERCONNECT_GB_S: f64 = 32.0;
/// Fixed cost of one collective or point-to-point transfer (launch and setup), microseconds; paid once
/// per transfer whatever the device, on top of the device's per-hop `interconnect_latency_us`.
pub const COMM_LATENCY_US: f64 = 10.0;

/// Roofline parameters, from the config's `predictor` section.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RooflineParams {
    pub compute_efficiency: f64,
    pub memory_efficiency: f64,
    pub layer_overhead_us: f64,
    pub iteration_overhead_ms: f64,
}

/// The roofline model of one (model, device, TP, PP) configuration.
#[derive(Debug, Clone)]
pub struct Roofline {
    params: RooflineParams,
    model: ModelSpec,
    tp: u32,
    /// Expert parallelism over the tensor-parallel group and its data-parallel ranks
    /// ([`Roofline::with_expert_parallel`]); `ep_asked`: what the run asked for, before checking the
    /// model has experts and the group more than one GPU.
    ep: bool,
    ep_asked: bool,
    /// Data-parallel attention ranks of `tp` GPUs each ([`Roofline::with_data_parallel`]); 1: none.
    dp: u32,
    /// A rank's tokens per iteration (its engine core's token budget).
    rank_token_budget: f64,
    stages: u32,
    flops_per_s: f64,
    bytes_per_s: f64,
    link_bytes_per_s: f64,
    /// Latency of one hop between two GPUs, seconds (0 when the catalog gives none).
    hop_latency_s: f64,
    device_name: String,
    precision: Precision,
    /// The linear layers as configured, and as the Vidur profiles measured them (16-bit weights and
    /// arithmetic at the bf16 peak), for [`Roofline::linear_scale`].
    linear: LinearPrecision,
    linear_profiled: LinearPrecision,
    /// The routed experts' linear layers when they are stored in a format of their own
    /// ([`Precision::experts`]).
    experts_linear: Option<LinearPrecision>,
    /// The engine's FP8 kernel cost, when it applies to this run ([`Roofline::with_fp8_linear`]).
    fp8_linear: Option<Fp8Linear>,
    /// The engine's fused mixture-of-experts kernel ([`Roofline::with_fused_moe`]), and what it
    /// costs this run: `None` where it does not apply.
    fused_moe: Option<FusedMoe>,
    fused_moe_cost: Option<FusedMoeCost>,
}

/// What the engine's fused mixture-of-experts kernel ([`FusedMoe`]) costs this run: the routed
/// experts take `device_factor` times their roofline time, and batches of more than
/// `local_experts` tokens `default_factor` times that again (1 where the shape is tuned).
#[derive(Debug, Clone, Copy, PartialEq)]
struct FusedMoeCost {
    local_experts: f64,
    device_factor: f64,
    default_factor: f64,
}

/// How a section of the engine profile with a provenance of its own was made, in a few words:
/// `fitted on case, case`, or that the profile's provenance covers it.
fn fitted_on(p: Option<&EngineProvenance>) -> String {
    match p {
        Some(p) => format!(
            "{} on {}",
            p.method,
            p.data
                .iter()
                .map(|d| d.split(": ").next().unwrap_or(d))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "as the profile's provenance says".into(),
    }
}

/// What prices the linear layers: bytes per weight and per input and output activation, achieved
/// FLOP/s, and dequantisation FLOPs per weight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LinearPrecision {
    weight_bytes: f64,
    input_bytes: f64,
    output_bytes: f64,
    flops_per_s: f64,
    dequant_flops_per_weight: f64,
    /// The engine's kernels for this precision, when it measured them ([`Roofline::with_fp8_linear`]):
    /// the roofline time is multiplied by `time_factor` and `layer_s` seconds are added per layer.
    kernel: Option<KernelCost>,
}

/// What an engine's kernels for a precision add to the roofline time of a layer's linear layers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct KernelCost {
    /// 1 / the achieved fraction of the roofline.
    time_factor: f64,
    /// Fixed seconds per layer.
    layer_s: f64,
}

impl LinearPrecision {
    /// FLOPs, bytes and seconds of a layer's linear work of `flops` and `bytes` at this precision:
    /// the roofline, then the engine's kernel cost when it has one (`per_layer`: its fixed per-layer
    /// part included). The kernels' extra time is work the roofline does not count (tiles padded
    /// past the tokens an expert receives, scales read, activations quantised), so FLOPs and bytes
    /// grow with the time: the stage keeps the roofline's utilisation, and the power model sees the
    /// GPU as busy through it as through the rest.
    #[inline]
    fn priced(&self, flops: f64, bytes: f64, bytes_per_s: f64, per_layer: bool) -> (f64, f64, f64) {
        let t = (flops / self.flops_per_s).max(bytes / bytes_per_s);
        match self.kernel {
            Some(k) if t > 0.0 => {
                let time = t * k.time_factor + if per_layer { k.layer_s } else { 0.0 };
                let grow = time / t;
                (flops * grow, bytes * grow, time)
            }
            _ => (flops, bytes, t),
        }
    }
}

impl Roofline {
    pub fn new(
        model: &ModelSpec,
        device_name: &str,
        device: &DeviceSpec,
        precision: &Precision,
        tp: u32,
        stages: u32,
        params: RooflineParams,
    ) -> Self {
        let linear = LinearPrecision {
            weight_bytes: precision.weight_bytes,
            input_bytes: precision.gemm_input_bytes,
            output_bytes: precision.activation_bytes,
            flops_per_s: precision.peak_flops() * params.compute_efficiency,
            dequant_flops_per_weight: precision.dequant_flops_per_weight,
            kernel: None,
        };
        let linear_profiled = LinearPrecision {
            weight_bytes: 2.0,
            input_bytes: 2.0,
            output_bytes: 2.0,
            flops_per_s: device.peak_flops() * params.compute_efficiency,
            dequant_flops_per_weight: 0.0,
            kernel: None,
        };
        let experts_linear = precision.experts.as_ref().map(|e| LinearPrecision {
            weight_bytes: e.weight_bytes,
            dequant_flops_per_weight: e.dequant_flops_per_weight,
            ..linear
        });
        Roofline {
            precision: precision.clone(),
            linear,
            linear_profiled,
            experts_linear,
            fp8_linear: None,
            fused_moe: None,
            fused_moe_cost: None,
            params,
            model: model.clone(),
            tp,
            ep: false,
            ep_asked: false,
            dp: 1,
            rank_token_budget: f64::INFINITY,
            stages,
            flops_per_s: device.peak_flops() * params.compute_efficiency,
            bytes_per_s: device.memory_bandwidth_bytes_s() * params.memory_efficiency,
            link_bytes_per_s: device
                .interconnect_gb_s
                .unwrap_or(DEFAULT_INTERCONNECT_GB_S)
                * 1e9,
            hop_latency_s: device.interconnect_latency_us.unwrap_or(0.0) * 1e-6,
            device_name: device_name.to_string(),
        }
    }

    /// Spreads a mixture-of-experts model's routed experts whole over the tensor-parallel group
    /// (vLLM's `--enable-expert-parallel`) instead of splitting each expert across it: each GPU holds
    /// `num_experts / tp` experts and runs the tokens routed to them, and the layer waits for the
    /// busiest GPU ([`MoeSpec::busiest_expert_parallel_rank`]). Attention and dense layers stay tensor-parallel, and the
    /// layer's output is all-reduced over the group as with tensor parallelism (vLLM without data
    /// parallelism). No effect on a dense model or with one GPU.
    pub fn with_expert_parallel(mut self, ep: bool) -> Self {
        self.ep_asked = ep;
        self.resolve_parallelism()
    }

    /// Runs the attention data-parallel (vLLM's `--data-parallel-size` with expert parallelism): the
    /// batch is spread over `dp` ranks of `tp` GPUs, each running the attention, dense layers, shared
    /// experts, router and output head of its sequences (its own KV cache), while the routed experts
    /// are spread whole over all `dp x tp` GPUs and see every token of the batch, dispatched to them
    /// by an all-gather and combined by a reduce-scatter over the `dp x tp` GPUs (vLLM 0.11's default
    /// `allgather_reducescatter` all-to-all). The ranks step together, so a step takes the busiest
    /// rank's time: it holds an even share of the decode sequences and as many of the step's prefill
    /// tokens as its `rank_token_budget` allows (at least an even share): a lone prompt is prefilled
    /// on one rank while the others wait. A stage's cost is that rank's GPU's. Applies with expert
    /// parallelism on a mixture-of-experts model only; 1: none.
    pub fn with_data_parallel(mut self, dp: u32, rank_token_budget: u32) -> Self {
        self.dp = dp.max(1);
        self.rank_token_budget = rank_token_budget as f64;
        self.resolve_parallelism()
    }

    fn resolve_parallelism(mut self) -> Self {
        let moe = self.model.moe.is_some();
        self.ep = self.ep_asked && moe && self.tp * self.dp > 1;
        if !self.ep {
            self.dp = 1;
        }
        self.fused_moe_cost = self.resolve_fused_moe_cost();
        self
    }

    /// GPUs the routed experts are spread over: the tensor-parallel group times the data-parallel
    /// ranks under expert parallelism.
    fn ep_ranks(&self) -> u32 {
        self.tp * self.dp
    }

    /// Prices the routed experts of a mixture-of-experts model with the engine's fused kernel
    /// ([`FusedMoe`]): where its release has no tuned configuration for this layer's local shape on
    /// this device, a batch of more than as many tokens as the GPU holds experts takes the routed
    /// experts' roofline time / `default_config_efficiency` (as work); on a device with a
    /// `device_efficiency`, every batch's routed experts take their time / it (not as work).
    /// Applies to 16-bit experts only (bf16 or fp16 weights and arithmetic, stored as the other
    /// weights); no effect with `None`.
    pub fn with_fused_moe(mut self, fused: Option<&FusedMoe>) -> Self {
        self.fused_moe = fused.cloned();
        self.fused_moe_cost = self.resolve_fused_moe_cost();
        self
    }

    /// The local shape of a mixture-of-experts layer on one GPU, as the engine names it: routed
    /// experts held (E) and the width of one expert's up/gate projection (N). Under expert
    /// parallelism each GPU holds `num_experts / tp` whole experts; under tensor parallelism every
    /// expert, `1 / tp` of each.
    pub fn moe_local_shape(&self) -> Option<(u32, u32)> {
        let moe = self.model.moe.as_ref()?;
        Some(if self.ep {
            (
                moe.num_experts / self.ep_ranks(),
                moe.expert_intermediate_size,
            )
        } else {
            (moe.num_experts, moe.expert_intermediate_size / self.tp)
        })
    }

    fn resolve_fused_moe_cost(&self) -> Option<FusedMoeCost> {
        let f = self.fused_moe.as_ref()?;
        let sixteen_bit = |s: &str| matches!(s, "bf16" | "fp16");
        if self.experts_linear.is_some()
            || !sixteen_bit(&self.precision.weights)
            || !sixteen_bit(&self.precision.compute_used)
        {
            return None;
        }
        let (e, n) = self.moe_local_shape()?;
        let device_factor = 1.0 / f.efficiency_on(&self.device_name);
        let default_factor = if f.is_tuned(&self.device_name, e, n) {
            1.0
        } else {
            1.0 / f.default_config_efficiency
        };
        (device_factor != 1.0 || default_factor != 1.0).then_some(FusedMoeCost {
            local_experts: e as f64,
            device_factor,
            default_factor,
        })
    }

    /// Prices W8A8-FP8 linear layers (fp8 weights, fp8 arithmetic on a device with an fp8 peak) with
    /// the engine's measured FP8 kernels ([`Fp8Linear`]): roofline time / `efficiency` +
    /// `us_per_layer`. No effect at any other precision, or with `None`.
    pub fn with_fp8_linear(mut self, fp8: Option<&Fp8Linear>) -> Self {
        let w8a8 = self.precision.weights == "fp8" && self.precision.compute_used == "fp8";
        let kernel = fp8.filter(|_| w8a8).map(|f| KernelCost {
            time_factor: 1.0 / f.efficiency,
            layer_s: f.us_per_layer * 1e-6,
        });
        // Routed experts in a format of their own (copied from `linear` without a kernel in `new`)
        // run other kernels.
        self.linear.kernel = kernel;
        self.fp8_linear = kernel.and(fp8.cloned());
        self
    }

    fn op_time_s(&self, flops: f64, bytes: f64) -> f64 {
        (flops / self.flops_per_s).max(bytes / self.bytes_per_s)
    }

    /// FLOPs, bytes and seconds of one layer's linear layers (QKV, output projection, MLP) on one GPU
    /// over `tokens` tokens: 2 FLOPs per weight per token plus the dequantisation work, weights read
    /// once, activations read (at the arithmetic's input width) and written.
    fn linear_work(&self, tokens: f64, p: &LinearPrecision) -> (f64, f64, f64) {
        let m = &self.model;
        let tp = self.tp as f64;
        let h = m.hidden_size as f64;
        let w = m.linear_params_per_layer() as f64 / tp;
        let mut flops = 2.0 * w * tokens;
        if p.dequant_flops_per_weight > 0.0 {
            flops += p.dequant_flops_per_weight * w;
        }
        let act_width = m.attention_activation_width() as f64 / tp
            + h
            + m.intermediate_size as f64 * if m.gated_mlp { 3.0 } else { 2.0 } / tp;
        let bytes = w * p.weight_bytes + tokens * act_width * (p.input_bytes + p.output_bytes);
        p.priced(flops, bytes, self.bytes_per_s, true)
    }

    /// FLOPs and bytes of one layer's MLP on one GPU over `tokens` tokens: for a mixture-of-experts
    /// layer the router (gate, `hidden x experts`, replicated on every TP rank), the top-k and shared
    /// experts' FLOPs for every token, and the weights of the shared experts and of the expected number
    /// of distinct routed experts the batch touches ([`MoeSpec::expected_distinct_experts`]); each
    /// expert is split across the TP group. A dense layer (`moe` `None`) reads its MLP once. Under the
    /// engine's default fused-MoE configuration ([`Roofline::with_fused_moe`]) the routed experts'
    /// work grows by its time factor; the third value is the seconds the kernel adds on this device
    /// beyond its roofline time without doing work (its device efficiency), which the caller adds to
    /// the layer's time.
    ///
    /// `routed_tokens`: the tokens the routed experts see, the whole batch's under data-parallel
    /// attention (`tokens` are then the busiest rank's); `tokens` otherwise.
    fn mlp_work(
        &self,
        tokens: f64,
        routed_tokens: f64,
        p: &LinearPrecision,
        moe: Option<&MoeSpec>,
    ) -> (f64, f64, f64) {
        let m = &self.model;
        let tp = self.tp as f64;
        let mats = m.mlp_matrices() as f64;
        // The routed experts' share of the weights read (for an expert precision of their own and
        // the engine's fused kernel) and of the weights every token passes through.
        let mut expert_read = 0.0;
        let mut expert_flop = 0.0;
        let (flop_weights, read_weights, act_width) = match moe {
            Some(e) if self.ep => {
                // Whole experts, num_experts / (tp x dp) of them per GPU; the shared experts split
                // across the group as in tensor parallelism. The busiest GPU sets the layer's time.
                // With data-parallel attention `tokens` are the busiest rank's, and the experts see
                // the whole batch: the busiest GPU's expert passes are counted per token of the rank.
                let router = m.router_params() as f64;
                let expert = m.expert_params() as f64;
                let shared = e.shared_experts as f64;
                let (routed_per_token, touched) = if tokens > 0.0 {
                    let (per_token, touched) =
                        e.busiest_expert_parallel_rank(routed_tokens, self.ep_ranks());
                    if self.dp > 1 {
                        (per_token * routed_tokens / tokens, touched)
                    } else {
                        (per_token, touched)
                    }
                } else {
                    (0.0, 0.0)
                };
                expert_read = touched * expert;
                expert_flop = routed_per_token * expert;
                (
                    router + expert_flop + shared * expert / tp,
                    router + expert_read + shared * expert / tp,
                    e.num_experts as f64
                        + e.expert_intermediate_size as f64
                            * mats
                            * (routed_per_token + shared / tp),
                )
            }
            Some(e) => {
                let router = m.router_params() as f64;
                let expert = m.expert_params() as f64 / tp;
                let active = (e.experts_per_token + e.shared_experts) as f64;
                let distinct = if tokens > 0.0 {
                    e.expected_distinct_experts(tokens)
                } else {
                    0.0
                };
                let touched = if tokens > 0.0 {
                    distinct + e.shared_experts as f64
                } else {
                    0.0
                };
                expert_read = distinct * expert;
                expert_flop = e.experts_per_token as f64 * expert;
                (
                    router + active * expert,
                    router + touched * expert,
                    e.num_experts as f64 + e.expert_intermediate_size as f64 * mats / tp * active,
                )
            }
            None => {
                let w = mats * m.hidden_size as f64 * m.intermediate_size as f64 / tp;
                (w, w, m.intermediate_size as f64 * mats / tp)
            }
        };
        let (flops, bytes) = match self.experts_linear.as_ref().filter(|_| moe.is_some()) {
            // Router and shared experts as the other weights, routed experts in their own format,
            // read into the same arithmetic.
            Some(pe) => {
                let rest = read_weights - expert_read;
                let flops = 2.0 * flop_weights * tokens
                    + p.dequant_flops_per_weight.max(0.0) * rest
                    + pe.dequant_flops_per_weight.max(0.0) * expert_read;
                let bytes = rest * p.weight_bytes
                    + expert_read * pe.weight_bytes
                    + tokens * act_width * (p.input_bytes + p.output_bytes);
                (flops, bytes)
            }
            None => {
                let flops = 2.0 * flop_weights * tokens
                    + p.dequant_flops_per_weight.max(0.0) * read_weights;
                let bytes = read_weights * p.weight_bytes
                    + tokens * act_width * (p.input_bytes + p.output_bytes);
                (flops, bytes)
            }
        };
        match self
            .fused_moe_cost
            .filter(|_| moe.is_some() && tokens > 0.0)
        {
            // The engine's fused kernel. Under the default configuration above E tokens the
            // routed experts' matrix work takes the default factor times its roofline time; that
            // extra is work the roofline does not count (tiles padded past the tokens an expert
            // received), so FLOPs and bytes grow with it, as for the FP8 kernels. On a device with
            // an efficiency of its own, the kernel then takes the device factor times that time,
            // and the extra is returned as time without work.
            Some(d) => {
                // The kernel's configuration is chosen by the tokens it receives: every rank's.
                let factor = if routed_tokens > d.local_experts {
                    d.default_factor
                } else {
                    1.0
                };
                let grow = factor - 1.0;
                let (rf, rb) = (2.0 * expert_flop * tokens, expert_read * p.weight_bytes);
                let routed_s = factor * (rf / p.flops_per_s).max(rb / self.bytes_per_s);
                (
                    flops + grow * rf,
                    bytes + grow * rb,
                    (d.device_factor - 1.0) * routed_s,
                )
            }
            None => (flops, bytes, 0.0),
        }
    }

    /// As [`Roofline::linear_work`] for a layer of a mixture-of-experts model: the attention's
    /// projections as in a dense layer, the MLP by [`Roofline::mlp_work`].
    fn moe_linear_work(
        &self,
        tokens: f64,
        routed_tokens: f64,
        p: &LinearPrecision,
        moe: Option<&MoeSpec>,
    ) -> (f64, f64, f64) {
        let m = &self.model;
        let tp = self.tp as f64;
        let h = m.hidden_size as f64;
        let w = m.attention_params_per_layer() as f64 / tp;
        let act_width = m.attention_activation_width() as f64 / tp + h;
        let (mlp_flops, mlp_bytes, stall_s) = self.mlp_work(tokens, routed_tokens, p, moe);
        let flops = 2.0 * w * tokens + p.dequant_flops_per_weight.max(0.0) * w + mlp_flops;
        let bytes =
            w * p.weight_bytes + tokens * act_width * (p.input_bytes + p.output_bytes) + mlp_bytes;
        let (f, b, t) = p.priced(flops, bytes, self.bytes_per_s, true);
        (f, b, t + stall_s)
    }

    /// Seconds of one layer's MLP alone (router and experts for an MoE layer) over `tokens` tokens
    /// at the run's precision: what the profile-fitted predictor uses in place of its MLP forests for
    /// a mixture-of-experts model, whose routed MLP no dense profile measured.
    pub fn mlp_s(&self, tokens: u32, moe_layer: bool) -> f64 {
        if tokens == 0 {
            return 0.0;
        }
        let moe = self.model.moe.as_ref().filter(|_| moe_layer);
        let (f, b, stall_s) = self.mlp_work(tokens as f64, tokens as f64, &self.linear, moe);
        // The per-layer kernel cost is the linear layers' (priced with the attention's projections
        // through `linear_scale`), not the MLP's alone.
        self.linear.priced(f, b, self.bytes_per_s, false).2 + stall_s
    }

    /// The model this roofline prices.
    pub fn model(&self) -> &ModelSpec {
        &self.model
    }

    /// How much longer (or shorter) one layer's linear layers over `tokens` tokens take at the run's
    /// precision than at the 16-bit precision the Vidur profiles were taken at, by this roofline:
    /// exactly 1 when the two are the same.
    pub fn linear_scale(&self, tokens: u32) -> f64 {
        if self.linear == self.linear_profiled || tokens == 0 {
            return 1.0;
        }
        let t = tokens as f64;
        self.linear_work(t, &self.linear).2 / self.linear_work(t, &self.linear_profiled).2
    }

    /// The precision the roofline prices.
    pub fn precision(&self) -> &Precision {
        &self.precision
    }

    /// One layer's work on one GPU for batch `s` up to the decode attention, which
    /// [`LayerParts::at`] adds for a given decode context; `moe_layer`: a mixture-of-experts layer of
    /// an MoE model (ignored for a dense model). Reads nothing of the decode context
    /// (`decode_context_sum`, `decode_max_context`), so every step of a run of decode steps shares it.
    /// `sliding`: a sliding-window layer, whose prefill queries attend to at most a window of keys
    /// each (the decode side is capped in [`StageParts::at`]).
    #[inline]
    fn layer_parts(&self, s: &BatchShape, moe_layer: bool, sliding: bool) -> LayerParts {
        let m = &self.model;
        let tp = self.tp as f64;
        let dt = self.precision.activation_bytes;
        let kvb = self.precision.kv_bytes;
        let h = m.hidden_size as f64;
        // With data-parallel attention, the busiest rank's share of the batch
        // ([`Self::with_data_parallel`]): an even share of the decode sequences and as many of the
        // prefill tokens as its token budget holds, at least an even share of them.
        let dp = self.dp as f64;
        let all_tokens = s.total_tokens() as f64;
        let (tokens, prefill_tokens, pair_share) = if self.dp > 1 {
            let p = s.prefill_tokens as f64;
            let busiest = p.min((p / dp).max(self.rank_token_budget));
            let decode = s.decode_seqs as f64 / dp;
            let share = if p > 0.0 { busiest / p } else { 0.0 };
            (decode + busiest, busiest, share)
        } else {
            (all_tokens, s.prefill_tokens as f64, 1.0)
        };

        let (lin_flops, lin_bytes, t_lin) = if m.moe.is_some() {
            let moe = m.moe.as_ref().filter(|_| moe_layer);
            self.moe_linear_work(tokens, all_tokens, &self.linear, moe)
        } else {
            self.linear_work(tokens, &self.linear)
        };

        // Norms, residual adds, rotary embedding, activation: memory-bound elementwise work.
        let elem_bytes = tokens * h * dt * 10.0;
        let t_elem = elem_bytes / self.bytes_per_s;

        // Attention: QK^T and AV, 4 FLOPs per query-key pair per head dimension, on this GPU's heads.
        let heads = m.num_attention_heads as f64 / tp;
        let kv_elements = m.kv_elements_per_token_per_layer(self.tp);
        let pairs = match self.model.sliding_window.filter(|_| sliding) {
            Some(w) => w.prefill_pairs(s.prefill_attn_pairs, s.prefill_tokens),
            None => s.prefill_attn_pairs,
        } as f64
            * pair_share;
        let (pre_flops, pre_bytes, dec_flops_per_token) = match &m.mla {
            None => {
                let hd = m.head_dim as f64;
                let kv_heads = (m.num_kv_heads as f64 / tp).max(1.0);
                (
                    4.0 * heads * hd * pairs,
                    // Queries read and keys and values written to the cache, and as many again read
                    // back.
                    prefill_tokens * (heads * dt + 2.0 * kv_heads * kvb) * hd * 2.0,
                    4.0 * heads * hd,
                )
            }
            Some(a) => {
                // Latent attention. Prefill: multi-head attention on the keys and values
                // up-projected from the latent (keys of qk_nope + qk_rope, values of v_head_dim per
                // head); queries, keys and values read and written, the latent written to the cache,
                // and as many again read back. Decode (weight absorption): each head's query scores
                // the cached latent and rotary key of every context token and gathers the latent, so
                // a context token costs 2 x (latent + rope) + 2 x latent FLOPs per head and its one
                // cached latent is read once for all heads.
                let qk = a.qk_head_dim() as f64;
                let v = a.v_head_dim as f64;
                let latent = a.kv_lora_rank as f64;
                (
                    2.0 * heads * (qk + v) * pairs,
                    prefill_tokens * (heads * (2.0 * qk + v) * dt + kv_elements * kvb) * 2.0,
                    2.0 * heads * (2.0 * latent + a.qk_rope_head_dim as f64),
                )
            }
        };
        let t_pre = if s.prefill_seqs > 0 {
            self.op_time_s(pre_flops, pre_bytes)
        } else {
            0.0
        };

        // Tensor parallelism: two all-reduces of the layer's activations. With data-parallel
        // attention an MoE layer's experts instead take every rank's tokens by an all-gather and give
        // them back by a reduce-scatter over all the GPUs, after the attention's all-reduce within
        // the rank.
        let t_ar = if self.dp > 1 && moe_layer {
            let within = if self.tp > 1 {
                self.all_reduce_s(tokens * h * dt)
            } else {
                0.0
            };
            within + 2.0 * self.ring_s(self.ep_ranks(), all_tokens * h * dt)
        } else if self.tp > 1 {
            2.0 * self.all_reduce_s(tokens * h * dt)
        } else {
            0.0
        };

        LayerParts {
            flops: lin_flops + pre_flops,
            bytes: lin_bytes + elem_bytes + pre_bytes,
            time: t_lin + t_elem + t_pre,
            decode: s.decode_seqs > 0,
            // A rank's decode sequences: an even share of the context.
            kv_elements: kv_elements / dp,
            kvb,
            dec_flops_per_token: dec_flops_per_token / dp,
            flops_per_s: self.flops_per_s,
            bytes_per_s: self.bytes_per_s,
            t_ar,
            overhead_s: self.params.layer_overhead_us * 1e-6,
        }
    }

    /// A stage's cost on one GPU for batch `s` but for the decode attention, which [`StageParts::at`]
    /// adds for a given decode context. Reads nothing of the decode context (`decode_context_sum`,
    /// `decode_max_context`), so every step of a run of decode steps shares it.
    #[inline]
    pub fn stage_parts(&self, s: &BatchShape, stage: u32) -> StageParts {
        let per_stage = self.model.num_layers / self.stages;
        let first = stage.saturating_mul(per_stage);
        let end = if stage + 1 == self.stages {
            SpanEnd::Head
        } else {
            SpanEnd::Send
        };
        self.span_parts(s, first, per_stage, end)
    }

    /// The cost on one GPU of the `per_stage` layers from layer `first` for batch `s`, but for the
    /// decode attention, and then what `end` says: the output head (with the iteration's host time),
    /// the send to the next pipeline stage, or nothing (a span of layers that another device's
    /// layers follow: partial offload, [`super::offload`]).
    #[inline]
    pub fn span_parts(
        &self,
        s: &BatchShape,
        first: u32,
        per_stage: u32,
        end: SpanEnd,
    ) -> StageParts {
        let m = &self.model;
        let layers = per_stage as f64;
        let sliding_here = m.sliding_layers_in(first, per_stage);
        let kinds = if let (Some(w), true) = (m.sliding_window, sliding_here > 0) {
            // Full and sliding layers, each MoE or dense: up to four kinds.
            let mut counts = [0.0; 4];
            for l in first..first.saturating_add(per_stage) {
                let moe_layer = m.moe.is_some() && m.is_moe_layer(l);
                counts[usize::from(!moe_layer) * 2 + usize::from(w.is_sliding(l))] += 1.0;
            }
            let kind = |moe_layer: bool| {
                let full = self.layer_parts(s, moe_layer, false);
                let sliding = self.layer_parts(s, moe_layer, true);
                (full, (sliding.flops, sliding.time))
            };
            let (moe, moe_sliding) = kind(true);
            let (dense, dense_sliding) = kind(false);
            LayerKinds::Windowed {
                moe,
                moe_sliding,
                dense,
                dense_sliding,
                counts,
                window_cap: w.decode_cap(s.decode_seqs),
            }
        } else if m.moe.is_some() {
            // This stage's MoE layers and dense layers (the model's first_dense_layers).
            let moe_layers = (first..first.saturating_add(per_stage))
                .filter(|&l| m.is_moe_layer(l))
                .count() as f64;
            LayerKinds::Mixed {
                moe: self.layer_parts(s, true, false),
                moe_layers,
                dense: self.layer_parts(s, false, false),
                dense_layers: layers - moe_layers,
            }
        } else {
            LayerKinds::Dense {
                layer: self.layer_parts(s, false, false),
                layers,
            }
        };
        let dt = self.precision.activation_bytes;
        let h = m.hidden_size as f64;
        let (end, host) = if end == SpanEnd::Nothing {
            (StageEnd::Nothing, 0.0)
        } else if end == SpanEnd::Head {
            // Output head on the sampled sequences (vocab split across TP); the host-side work of the
            // iteration (scheduling, sampling, preparing inputs), paid once per batch, is host time (the
            // engine model decides how much of it the GPU waits through).
            let head_w = m.vocab_size as f64 * h / self.tp as f64;
            let sampled = s.sampled_seqs as f64 / self.dp as f64;
            let hf = 2.0 * head_w * sampled;
            let hb = head_w * self.precision.embedding_bytes
                + sampled * m.vocab_size as f64 / self.tp as f64 * 4.0;
            (
                StageEnd::Head {
                    flops: hf,
                    bytes: hb,
                    time: self.op_time_s(hf, hb),
                },
                self.params.iteration_overhead_ms * 1e-3,
            )
        } else {
            // Send the activations to the next stage.
            let send = self.send_recv_s(s.total_tokens() as f64 * h * dt / self.tp as f64);
            (StageEnd::Send { time: send }, 0.0)
        };
        StageParts {
            kinds,
            end,
            host_ns: crate::units::round_ns(host * 1e9),
        }
    }
}

/// One layer's FLOPs, bytes and seconds on one GPU up to its decode attention
/// ([`Roofline::layer_parts`]), and what [`LayerParts::at`] needs to add it and the terms after it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LayerParts {
    /// Linear layers and prefill attention: FLOPs; and with the elementwise work, bytes and seconds.
    flops: f64,
    bytes: f64,
    time: f64,
    /// The batch has decode sequences (their attention takes time).
    decode: bool,
    /// KV-cache elements per token on this GPU ([`ModelSpec::kv_elements_per_token_per_layer`]) and
    /// bytes per element: what the decode attention reads.
    kv_elements: f64,
    kvb: f64,
    /// Decode-attention FLOPs per token of context (`4 x heads x head_dim`; latent attention:
    /// `2 x heads x (2 x kv_lora_rank + qk_rope_head_dim)`).
    dec_flops_per_token: f64,
    /// The roofline's achieved FLOP/s and bytes per second of attention.
    flops_per_s: f64,
    bytes_per_s: f64,
    /// Seconds of the tensor-parallel all-reduces and of the fixed per-layer overhead.
    t_ar: f64,
    overhead_s: f64,
}

impl LayerParts {
    /// The layer's FLOPs, bytes and seconds when its decode sequences' contexts sum to `context_sum`
    /// tokens: the parts and the decode attention added in one fixed order, so that every caller gets
    /// the same bits.
    #[inline]
    fn at(&self, context_sum: u64) -> (f64, f64, f64) {
        // Decode: each sequence reads its whole KV cache.
        let ctx = context_sum as f64;
        let dec_bytes = ctx * self.kv_elements * self.kvb;
        let dec_flops = self.dec_flops_per_token * ctx;
        let t_dec = if self.decode {
            (dec_flops / self.flops_per_s).max(dec_bytes / self.bytes_per_s)
        } else {
            0.0
        };
        (
            self.flops + dec_flops,
            self.bytes + dec_bytes,
            self.time + t_dec + self.t_ar + self.overhead_s,
        )
    }
}

/// The layers of a stage ([`Roofline::stage_parts`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum LayerKinds {
    /// A dense model's `layers` alike.
    Dense { layer: LayerParts, layers: f64 },
    /// A mixture-of-experts model's MoE and dense layers.
    Mixed {
        moe: LayerParts,
        moe_layers: f64,
        dense: LayerParts,
        dense_layers: f64,
    },
    /// A model with sliding-window layers: an MoE and a dense layer with full attention, the FLOPs
    /// and seconds of their sliding-window variants (which differ only in the prefill attention),
    /// and the stage's count of each kind: MoE full, MoE sliding, dense full, dense sliding. A
    /// sliding layer's decode sequences read at most a window each, so their contexts sum to at
    /// most `window_cap` (decode sequences x window): exact when every sequence is past the window,
    /// an upper bound otherwise.
    Windowed {
        moe: LayerParts,
        moe_sliding: (f64, f64),
        dense: LayerParts,
        dense_sliding: (f64, f64),
        counts: [f64; 4],
        window_cap: u64,
    },
}

/// What follows a stage's layers: the output head (last stage) or the send to the next stage.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StageEnd {
    Head { flops: f64, bytes: f64, time: f64 },
    Send { time: f64 },
    Nothing,
}

/// What a span of layers priced by [`Roofline::span_parts`] ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanEnd {
    /// The output head and the iteration's host time (the last pipeline stage).
    Head,
    /// The send of the activations to the next pipeline stage.
    Send,
    /// Nothing: layers another device's layers follow.
    Nothing,
}

/// A stage's cost on one GPU but for the decode attention ([`Roofline::stage_parts`]): what every step
/// of a run of decode steps shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageParts {
    kinds: LayerKinds,
    end: StageEnd,
    host_ns: u64,
}

impl StageParts {
    /// The stage's cost when its decode sequences' contexts sum to `context_sum` tokens: bit for bit
    /// [`Roofline::stage_cost`] of a shape with that context.
    #[inline]
    pub fn at(&self, context_sum: u64) -> StageCost {
        let (mut flops, mut bytes, mut time) = match &self.kinds {
            LayerKinds::Dense { layer, layers } => {
                let (lf, lb, lt) = layer.at(context_sum);
                (lf * layers, lb * layers, lt * layers)
            }
            LayerKinds::Mixed {
                moe,
                moe_layers,
                dense,
                dense_layers,
            } => {
                let (mf, mb, mt) = moe.at(context_sum);
                let (df, db, dt) = dense.at(context_sum);
                (
                    mf * moe_layers + df * dense_layers,
                    mb * moe_layers + db * dense_layers,
                    mt * moe_layers + dt * dense_layers,
                )
            }
            LayerKinds::Windowed {
                moe,
                moe_sliding,
                dense,
                dense_sliding,
                counts,
                window_cap,
            } => {
                let windowed = context_sum.min(*window_cap);
                let slide =
                    |p: &LayerParts, (flops, time): (f64, f64)| LayerParts { flops, time, ..*p };
                let kinds = [
                    (*moe, context_sum),
                    (slide(moe, *moe_sliding), windowed),
                    (*dense, context_sum),
                    (slide(dense, *dense_sliding), windowed),
                ];
                let mut sum = (0.0, 0.0, 0.0);
                for ((part, ctx), count) in kinds.iter().zip(counts) {
                    if *count > 0.0 {
                        let (f, b, t) = part.at(*ctx);
                        sum.0 += f * count;
                        sum.1 += b * count;
                        sum.2 += t * count;
                    }
                }
                sum
            }
        };
        match self.end {
            StageEnd::Head {
                flops: hf,
                bytes: hb,
                time: ht,
            } => {
                flops += hf;
                bytes += hb;
                time += ht;
            }
            StageEnd::Send { time: send } => time += send,
            StageEnd::Nothing => {}
        }
        StageCost {
            time_ns: duration_ns(time * 1e9),
            host_ns: self.host_ns,
            flops,
            bytes,
            idle_ns: 0,
            cpu_ns: 0,
            cpu_flops: 0.0,
            cpu_bytes: 0.0,
        }
    }
}

impl Roofline {
    /// One ring all-reduce of `bytes` across the TP group of n GPUs, seconds: 2(n-1) steps (n-1 of
    /// reduce-scatter, n-1 of all-gather), each moving a chunk of bytes/n over one link and paying one hop
    /// latency, plus the fixed per-collective cost.
    pub fn all_reduce_s(&self, bytes: f64) -> f64 {
        let n = self.tp as f64;
        let steps = 2.0 * (n - 1.0);
        // steps x (bytes / n) / bandwidth, written as before so a device without a hop latency keeps
        // its exact figures.
        steps / n * bytes / self.link_bytes_per_s
            + steps * self.hop_latency_s
            + COMM_LATENCY_US * 1e-6
    }

    /// One ring all-gather (or reduce-scatter) of `bytes` in all over `n` GPUs, seconds: n-1 steps, each
    /// moving a chunk of bytes/n over one link and paying one hop latency, plus the fixed
    /// per-collective cost.
    pub fn ring_s(&self, n: u32, bytes: f64) -> f64 {
        let n = n as f64;
        (n - 1.0) / n * bytes / self.link_bytes_per_s
            + (n - 1.0) * self.hop_latency_s
            + COMM_LATENCY_US * 1e-6
    }

    /// Sending `bytes` to the next pipeline stage, seconds: one hop plus the fixed per-transfer cost.
    pub fn send_recv_s(&self, bytes: f64) -> f64 {
        bytes / self.link_bytes_per_s + self.hop_latency_s + COMM_LATENCY_US * 1e-6
    }

    /// The output head over the sampled sequences, seconds.
    pub fn lm_head_s(&self, s: &BatchShape) -> f64 {
        let (f, b) = self.lm_head_work(s);
        self.op_time_s(f, b)
    }

    fn lm_head_work(&self, s: &BatchShape) -> (f64, f64) {
        let m = &self.model;
        let head_w = m.vocab_size as f64 * m.hidden_size as f64 / self.tp as f64;
        let sampled = s.sampled_seqs as f64 / self.dp as f64;
        let flops = 2.0 * head_w * sampled;
        let bytes = head_w * self.precision.embedding_bytes
            + sampled * m.vocab_size as f64 / self.tp as f64 * 4.0;
        (flops, bytes)
    }
}

impl CostModel for Roofline {
    fn stage_cost(&self, s: &BatchShape, stage: u32) -> StageCost {
        self.stage_parts(s, stage).at(s.decode_context_sum)
    }

    /// The stage's parts once, the decode attention per step.
    fn run_costs(&self, first: &BatchShape, run: &DecodeRun, stage: u32, out: &mut Vec<StageCost>) {
        let parts = self.stage_parts(first, stage);
        out.extend(
            (0..run.steps).map(|j| parts.at(run.shape_of_step(first, j).decode_context_sum)),
        );
    }
}

impl Predictor for Roofline {
    fn info(&self) -> PredictorInfo {
        let ops = [
            "linear_layers",
            "elementwise",
            "attention_prefill",
            "attention_decode",
            "all_reduce",
            "send_recv",
            "lm_head",
            "cpu_overhead",
        ];
        PredictorInfo {
            kind: "roofline".into(),
            note: format!(
                "roofline on {}: peak compute and bandwidth from the device catalog scaled by \
                 uncalibrated efficiencies; not fitted to profiles, so latencies are indicative only",
                self.device_name
            ),
            sources: ops
                .iter()
                .map(|o| {
                    let p = &self.precision;
                    let how = match *o {
                        "linear_layers" if self.model.moe.is_some() => format!(
                            "roofline at {}, mixture of experts: FLOPs of the router and the top-k \
                             and shared experts per token, weights of the shared experts and of the \
                             expected distinct routed experts the batch touches under uniform routing",
                            p.describe()
                        ),
                        "linear_layers" if !p.linear_layers_as_profiled() => {
                            format!("roofline at {}", p.describe())
                        }
                        "attention_decode" | "attention_prefill" if p.kv_bytes != 2.0 => format!(
                            "roofline, KV cache {} ({} B per element), bf16 arithmetic",
                            p.kv_cache, p.kv_bytes
                        ),
                        _ => "roofline".to_string(),
                    };
                    let how = match (&self.fp8_linear, *o) {
                        (Some(f), "linear_layers") => format!(
                            "{how}; the engine's FP8 kernels: that time / {} + {} us per layer \
                             (engine profile fp8_linear, {})",
                            f.efficiency,
                            f.us_per_layer,
                            fitted_on(f.provenance.as_ref())
                        ),
                        _ => how,
                    };
                    let how = match (&self.fused_moe, self.fused_moe_cost, *o) {
                        (Some(f), Some(d), "linear_layers") => {
                            let (e, n) = self.moe_local_shape().unwrap_or((0, 0));
                            let mut parts = Vec::new();
                            if d.default_factor != 1.0 {
                                parts.push(format!(
                                    "no tuned configuration for E={e},N={n} on {}: batches of \
                                     more than {e} tokens take the routed experts' time / {} \
                                     (fused_moe.default_config_efficiency, {})",
                                    self.device_name,
                                    f.default_config_efficiency,
                                    fitted_on(f.provenance.as_ref())
                                ));
                            }
                            if d.device_factor != 1.0 {
                                parts.push(format!(
                                    "on {} every batch's routed experts take that time / {}, \
                                     the GPU less busy through it \
                                     (fused_moe.device_efficiency, {})",
                                    self.device_name,
                                    f.efficiency_on(&self.device_name),
                                    fitted_on(f.device_provenance.as_ref())
                                ));
                            }
                            format!(
                                "{how}; the engine's fused-MoE kernel (engine profile): {}",
                                parts.join("; ")
                            )
                        }
                        _ => how,
                    };
                    (o.to_string(), how)
                })
                .collect(),
            parameters: serde_json::to_value(self.params).unwrap_or_default(),
            out_of_range: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn roofline(tp: u32, stages: u32) -> Roofline {
        let c = Catalog::builtin().unwrap();
        let (_, m) = c.model("meta-llama/Llama-2-7b-hf").unwrap();
        let (name, d) = c.device("a100").unwrap();
        let prec = Precision::from_catalog(m.dtype_bytes, d);
        let p = RooflineParams {
            compute_efficiency: 0.6,
            memory_efficiency: 0.8,
            layer_overhead_us: 0.0,
            iteration_overhead_ms: 0.0,
        };
        Roofline::new(m, name, d, &prec, tp, stages, p)
    }

    #[test]
    fn single_decode_is_bound_by_reading_the_weights() {
        let r = roofline(1, 1);
        let mut s = BatchShape::default();
        s.add_decode(100);
        let c = r.stage_cost(&s, 0);
        // ~13.5 GB of weights at 0.8 x 2039 GB/s is ~8.3 ms.
        let ms = c.time_ns as f64 / 1e6;
        assert!((7.5..9.5).contains(&ms), "{ms} ms");
    }

    #[test]
    fn cost_grows_with_work() {
        let r = roofline(1, 1);
        let mut small = BatchShape::default();
        small.add_prefill(512, 0, true);
        let mut big = BatchShape::default();
        big.add_prefill(4096, 0, true);
        let (a, b) = (r.stage_cost(&small, 0), r.stage_cost(&big, 0));
        assert!(b.time_ns > 4 * a.time_ns, "{} vs {}", b.time_ns, a.time_ns);
        assert!(b.flops > 7.0 * a.flops);
        let mut d1 = BatchShape::default();
        d1.add_decode(1000);
        let mut d2 = BatchShape::default();
        d2.add_decode(100_000);
        assert!(r.stage_cost(&d2, 0).time_ns > r.stage_cost(&d1, 0).time_ns);
    }

    #[test]
    fn tensor_parallelism_cuts_per_gpu_work() {
        let mut s = BatchShape::default();
        s.add_prefill(2048, 0, true);
        let one = roofline(1, 1).stage_cost(&s, 0);
        let two = roofline(2, 1).stage_cost(&s, 0);
        assert!(two.flops < 0.55 * one.flops);
        assert!(two.time_ns < one.time_ns);
    }
}

#[cfg(test)]
mod fp8_kernel_tests {
    use super::*;
    use crate::catalog::Catalog;

    /// Llama-2-7B on one H100 at `weights` (and its default arithmetic), with the engine's FP8 kernel
    /// cost `fp8` applied.
    fn h100(weights: &str, gpu: &str, fp8: Option<(f64, f64)>) -> Roofline {
        let c = Catalog::builtin().unwrap();
        let (_, m) = c.model("meta-llama/Llama-2-7b-hf").unwrap();
        let (name, d) = c.device(gpu).unwrap();
        let prec = Precision::resolve(Some(weights), None, None, 2, d).unwrap();
        let p = test_params();
        let f = fp8.map(|(efficiency, us_per_layer)| Fp8Linear {
            efficiency,
            us_per_layer,
            provenance: None,
        });
        Roofline::new(m, name, d, &prec, 1, 1, p).with_fp8_linear(f.as_ref())
    }

    /// The roofline parameters of these tests: 60% of peak compute, 80% of bandwidth, no overheads.
    pub(super) fn test_params() -> RooflineParams {
        RooflineParams {
            compute_efficiency: 0.6,
            memory_efficiency: 0.8,
            layer_overhead_us: 0.0,
            iteration_overhead_ms: 0.0,
        }
    }

    /// `n` decode sequences of 100 tokens of context each.
    pub(super) fn decode(n: u32) -> BatchShape {
        let mut s = BatchShape::default();
        for _ in 0..n {
            s.add_decode(100);
        }
        s
    }

    #[test]
    fn fp8_kernels_divide_the_linear_time_by_their_efficiency_and_add_a_cost_per_layer() {
        let s = decode(8);
        let base = h100("fp8", "h100", None).stage_cost(&s, 0);
        // Efficiency 1 and no per-layer cost: the roofline, bit for bit.
        assert_eq!(
            h100("fp8", "h100", Some((1.0, 0.0))).stage_cost(&s, 0),
            base
        );
        // 100 us per layer: 32 layers add 3.2 ms.
        let c = h100("fp8", "h100", Some((1.0, 100.0))).stage_cost(&s, 0);
        assert!(
            (c.time_ns as i64 - base.time_ns as i64 - 3_200_000).abs() <= 1,
            "{} vs {}",
            c.time_ns,
            base.time_ns
        );
        // Half the roofline: each layer's linear time again. A decode of 8 tokens reads the
        // 202,375,168 one-byte weights of a layer at 0.8 x 3350 GB/s (75.5 us) and a few kB of
        // activations; 32 layers, 2.42 ms.
        let r = h100("fp8", "h100", None);
        let t_lin = r.linear_work(8.0, &r.linear).2;
        assert!(
            (t_lin / (202_375_168.0 / (0.8 * 3350e9)) - 1.0).abs() < 0.01,
            "{t_lin}"
        );
        let c = h100("fp8", "h100", Some((0.5, 0.0))).stage_cost(&s, 0);
        let added = c.time_ns as f64 - base.time_ns as f64;
        assert!((added - 32.0 * t_lin * 1e9).abs() <= 1.0, "{added}");
        // The kernels' extra time is work at the roofline's rate: bytes grow with the linear time.
        let lin_bytes = r.linear_work(8.0, &r.linear).1;
        assert!((c.bytes - base.bytes - 32.0 * lin_bytes).abs() < 1e-6 * c.bytes);
    }

    #[test]
    fn fp8_kernels_price_only_fp8_weights_in_fp8_arithmetic() {
        let s = decode(8);
        for (weights, gpu) in [("bf16", "h100"), ("int4", "h100"), ("fp8", "a100")] {
            let plain = h100(weights, gpu, None).stage_cost(&s, 0);
            let with = h100(weights, gpu, Some((0.5, 100.0))).stage_cost(&s, 0);
            assert_eq!(plain, with, "{weights} on {gpu}");
        }
        // fp8 on an A100 falls back to 16-bit arithmetic (weight-only): not these kernels.
        assert_eq!(
            h100("fp8", "a100", None).precision().compute_used,
            "bf16".to_string()
        );
    }
}

#[cfg(test)]
mod fused_moe_tests {
    use super::fp8_kernel_tests::{decode, test_params};
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::engine_profile::TunedMoeShape;

    /// Qwen3-235B-A22B (128 experts 1,536 wide, top 8, 94 layers) over 8 H100s at `weights`,
    /// expert-parallel or not, with the engine's fused-MoE kernel `fused` applied.
    fn qwen(weights: &str, ep: bool, fused: Option<&FusedMoe>) -> Roofline {
        let c = Catalog::builtin().unwrap();
        let (_, m) = c.model("Qwen/Qwen3-235B-A22B").unwrap();
        let (name, d) = c.device("h100").unwrap();
        let prec = Precision::resolve(Some(weights), None, None, 2, d).unwrap();
        Roofline::new(m, name, d, &prec, 8, 1, test_params())
            .with_fused_moe(fused)
            .with_expert_parallel(ep)
    }

    fn fused(efficiency: f64, tuned: &[(&str, u32, u32)]) -> FusedMoe {
        FusedMoe {
            default_config_efficiency: efficiency,
            device_efficiency: Default::default(),
            tuned: tuned
                .iter()
                .map(|&(device, experts, n)| TunedMoeShape {
                    device: device.into(),
                    experts,
                    n,
                })
                .collect(),
            source: None,
            provenance: None,
            device_provenance: None,
        }
    }

    #[test]
    fn the_local_shape_is_whole_experts_under_expert_parallelism_and_slices_under_tensor_parallelism(
    ) {
        assert_eq!(qwen("bf16", true, None).moe_local_shape(), Some((16, 1536)));
        assert_eq!(
            qwen("bf16", false, None).moe_local_shape(),
            Some((128, 192))
        );
    }

    #[test]
    fn an_untuned_shape_takes_the_routed_experts_time_over_the_efficiency_above_e_tokens() {
        let half = fused(0.5, &[]);
        let plain = qwen("bf16", true, None);
        let slow = qwen("bf16", true, Some(&half));
        // At most E = 16 tokens: the small-tile configuration, the roofline bit for bit. Either
        // order of the builder calls gives the same roofline.
        assert_eq!(
            slow.stage_cost(&decode(16), 0),
            plain.stage_cost(&decode(16), 0)
        );
        let other_order = Roofline::new(
            &plain.model,
            "h100",
            Catalog::builtin().unwrap().device("h100").unwrap().1,
            &plain.precision,
            8,
            1,
            plain.params,
        )
        .with_expert_parallel(true)
        .with_fused_moe(Some(&half));
        assert_eq!(
            other_order.stage_cost(&decode(32), 0),
            slow.stage_cost(&decode(32), 0)
        );
        // 32 tokens: the busiest GPU's routed experts take twice their roofline time. A decode
        // step reads weights, so the routed experts' bytes double: 94 layers x the experts the
        // busiest GPU touches x 18,874,368 weights x 2 bytes more.
        let base = plain.stage_cost(&decode(32), 0);
        let c = slow.stage_cost(&decode(32), 0);
        let moe = plain.model.moe.as_ref().unwrap();
        let (_, touched) = moe.busiest_expert_parallel_rank(32.0, 8);
        assert_eq!(plain.model.expert_params(), 3 * 4096 * 1536);
        let expected = 94.0 * touched * 18_874_368.0 * 2.0;
        assert!(
            ((c.bytes - base.bytes) / expected - 1.0).abs() < 1e-9,
            "{} vs {expected}",
            c.bytes - base.bytes
        );
        assert!(c.time_ns > base.time_ns);
    }

    #[test]
    fn a_device_efficiency_adds_time_at_every_batch_without_adding_work() {
        // Tuned, so only the device's efficiency applies: half the roofline.
        let mut f = fused(1.0, &[("h100", 16, 1536)]);
        f.device_efficiency.insert("h100".into(), 0.5);
        let plain = qwen("bf16", true, None);
        let slow = qwen("bf16", true, Some(&f));
        for n in [8, 16, 32] {
            let (base, c) = (
                plain.stage_cost(&decode(n), 0),
                slow.stage_cost(&decode(n), 0),
            );
            // The work is the roofline's; the time grows by the routed experts' roofline time of
            // the busiest GPU in each of the 94 layers (a decode step reads their weights).
            assert_eq!((c.flops, c.bytes), (base.flops, base.bytes), "{n} tokens");
            let moe = plain.model.moe.as_ref().unwrap();
            let (per_token, touched) = moe.busiest_expert_parallel_rank(n as f64, 8);
            let expert = plain.model.expert_params() as f64;
            let routed_s = (2.0 * per_token * expert * n as f64 / plain.linear.flops_per_s)
                .max(touched * expert * 2.0 / plain.bytes_per_s);
            let added = c.time_ns as f64 - base.time_ns as f64;
            assert!(
                (added - 94.0 * routed_s * 1e9).abs() <= 2.0,
                "{n} tokens: {added} ns against {}",
                94.0 * routed_s * 1e9
            );
        }
        // Another device's efficiency does not apply here.
        let mut elsewhere = fused(1.0, &[]);
        elsewhere.device_efficiency.insert("b200".into(), 0.5);
        assert_eq!(
            qwen("bf16", true, Some(&elsewhere)).stage_cost(&decode(8), 0),
            plain.stage_cost(&decode(8), 0)
        );
    }

    #[test]
    fn tuned_shapes_other_formats_and_efficiency_one_keep_the_roofline() {
        let s = decode(32);
        let plain = qwen("bf16", true, None).stage_cost(&s, 0);
        // A tuned configuration for this device and shape.
        let tuned = fused(0.5, &[("h100", 16, 1536)]);
        assert_eq!(qwen("bf16", true, Some(&tuned)).stage_cost(&s, 0), plain);
        // Tuned on another device only: the default configuration here.
        let elsewhere = fused(0.5, &[("b200", 16, 1536)]);
        assert!(
            qwen("bf16", true, Some(&elsewhere))
                .stage_cost(&s, 0)
                .time_ns
                > plain.time_ns
        );
        // Efficiency 1.
        assert_eq!(
            qwen("bf16", true, Some(&fused(1.0, &[]))).stage_cost(&s, 0),
            plain
        );
        // FP8 experts run other kernels (the engine's fp8_linear section prices them).
        let fp8 = qwen("fp8", true, None).stage_cost(&s, 0);
        assert_eq!(
            qwen("fp8", true, Some(&fused(0.5, &[]))).stage_cost(&s, 0),
            fp8
        );
    }

    #[test]
    fn without_expert_parallelism_the_shape_and_the_token_threshold_are_all_experts() {
        let half = fused(0.5, &[]);
        let plain = qwen("bf16", false, None);
        let slow = qwen("bf16", false, Some(&half));
        assert_eq!(
            slow.stage_cost(&decode(128), 0),
            plain.stage_cost(&decode(128), 0)
        );
        assert!(
            slow.stage_cost(&decode(129), 0).time_ns > plain.stage_cost(&decode(129), 0).time_ns
        );
        // E=128,N=192 tuned on the H100.
        let tuned = fused(0.5, &[("h100", 128, 192)]);
        assert_eq!(
            qwen("bf16", false, Some(&tuned)).stage_cost(&decode(129), 0),
            plain.stage_cost(&decode(129), 0)
        );
    }
}
