//! The engine-profile file format (`profiles/engine/<engine>-<version>.yaml`): what a serving engine
//! adds around the GPU work of a batch, and where those numbers came from, read and checked.
//!
//! Input: a YAML file. Output: an [`EngineProfile`] whose parameters are finite and in range. The model
//! that applies these parameters to a batch lives in `engine/` (iteration cost) and `sim/` (front-end
//! delays); this module holds only the data and its checks, and may not compute a cost.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where an engine profile's parameters came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineProvenance {
    /// `fitted` (by `simwatt fit engine`), `published` (from the engine's source or documentation) or
    /// `derived` (from another profile or measurement, the notes say how).
    pub method: String,
    /// The data the parameters came from.
    #[serde(default)]
    pub data: Vec<String>,
    /// Fit error (metric name -> value), when fitted.
    #[serde(default)]
    pub error: std::collections::BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// Per-request costs outside the iteration loop: the API server, tokenisation and the hand-off to the
/// engine before a request can be scheduled, and detokenisation and streaming after each token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FrontEnd {
    /// From a request's arrival at the server to its entry into the scheduler's waiting queue,
    /// milliseconds (request parsing, tokenisation of a short prompt, hand-off to the engine).
    #[serde(default)]
    pub admission_ms: f64,
    /// Added to `admission_ms` per prompt token (tokenisation), microseconds.
    #[serde(default)]
    pub admission_us_per_prompt_token: f64,
    /// From a token's sampling to its arrival at the client (detokenisation, streaming), milliseconds.
    /// Shifts every token's time, so it adds to the time to first token and to the end-to-end latency
    /// but not to the gaps between tokens.
    #[serde(default)]
    pub stream_ms: f64,
    /// Where these values come from, when they are not fitted with the rest of the profile (a
    /// published measurement, say): `simwatt fit engine` keeps it unless it fits a front-end parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Host work of one iteration (schedule, prepare inputs, sample over the vocabulary, process outputs),
/// and how much of it the GPU waits through.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Iteration {
    /// Take the host time from the execution-time predictor (Vidur's `cpu_overheads.csv` fitted against
    /// batch size, or `predictor.iteration_overhead_ms`) instead of the terms below.
    #[serde(default)]
    pub host_from_predictor: bool,
    /// Fixed host time per iteration, milliseconds.
    #[serde(default)]
    pub host_ms: f64,
    /// Host time per sequence in the batch, microseconds.
    #[serde(default)]
    pub host_us_per_seq: f64,
    /// Host time per token scheduled (prefill and decode), microseconds.
    #[serde(default)]
    pub host_us_per_token: f64,
    /// Host time per GPU of the replica beyond the first, milliseconds (an engine that hands each
    /// iteration's inputs to one worker process per GPU pays for every worker).
    #[serde(default)]
    pub host_ms_per_extra_gpu: f64,
    /// Fraction of the GPU time of the same iteration the host work can hide behind, in [0, 1]: 0 for
    /// an engine that schedules and processes outputs while the GPU waits (vLLM 0.5), near 1 for one
    /// that prepares the next iteration while the GPU runs this one (vLLM V1 async scheduling). The GPU
    /// waits `max(0, host - overlap x gpu_time)`.
    #[serde(default)]
    pub overlap: f64,
}

/// How the engine launches a batch's kernels: CUDA graphs captured at fixed batch sizes (a smaller
/// batch runs padded to the next captured size), eager launches above the largest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// Token counts at which graphs are captured, ascending. Empty: no graphs (every batch eager).
    #[serde(default)]
    pub graph_sizes: Vec<u32>,
    /// Which batches run as graphs: `decode_only` (vLLM 0.5: batches without a prefill) or
    /// `all` (vLLM V1 piecewise graphs: any batch whose token count is within the largest size).
    #[serde(default)]
    pub graph_batches: GraphBatches,
    /// Extra launch cost per transformer layer of a batch run eagerly (kernel launches a graph
    /// avoids), microseconds.
    #[serde(default)]
    pub eager_us_per_layer: f64,
}

/// GPU work of the sampler beyond the output head: passes over each sampled sequence's fp32 logits
/// (softmax, penalties, top-k / top-p sorting), memory-bound, so they cost more for a larger vocabulary.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sampler {
    /// Passes over the logits (vocabulary x 4 bytes) per sampled sequence, read at the device's memory
    /// bandwidth x `memory_efficiency`.
    #[serde(default)]
    pub logit_passes: f64,
    /// Achieved fraction of peak memory bandwidth of those passes.
    #[serde(default = "default_sampler_efficiency")]
    pub memory_efficiency: f64,
}

fn default_sampler_efficiency() -> f64 {
    0.8
}

/// No sampler passes, at the default efficiency (what a profile without a `sampler` section reads as).
impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            logit_passes: 0.0,
            memory_efficiency: default_sampler_efficiency(),
        }
    }
}

/// The engine's FP8 linear-layer kernels (W8A8-FP8: fp8 weights and fp8 arithmetic), as measured
/// against the roofline: vLLM 0.11 runs FP8 checkpoints with block-scaled kernels (128 x 128 weight
/// scales, activations quantised per token group before each matrix multiplication, the fused-MoE
/// kernel tiled for more tokens than an expert receives at small batches), which reach less of the
/// device than the bytes and FLOPs alone say. A layer's linear time at W8A8-FP8 is its roofline time
/// divided by `efficiency`, plus `us_per_layer`. Other precisions are not affected.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fp8Linear {
    /// Achieved fraction of the roofline time of the linear layers, in (0, 1].
    #[serde(default = "one")]
    pub efficiency: f64,
    /// Fixed time per transformer layer per iteration (activation quantisation and the kernels'
    /// set-up), microseconds.
    #[serde(default)]
    pub us_per_layer: f64,
    /// Where these values come from when they are fitted apart from the rest of the profile (whose
    /// `provenance` then does not cover them): `simwatt fit engine` writes it when it fits only these
    /// parameters, keeps it when it fits none of them, and removes it when it fits them with others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<EngineProvenance>,
}

fn one() -> f64 {
    1.0
}

/// The engine's fused mixture-of-experts kernel for 16-bit routed experts (vLLM's Triton
/// `fused_moe`), as measured against the roofline. vLLM picks the kernel's tiles from a tuned
/// configuration for the layer's local shape (local experts E, expert width N per GPU) on the GPU
/// model when its release ships one, and otherwise from a default configuration; that default uses
/// small tiles while a batch has at most E tokens and 64-token tiles above. A 64-token tile over an
/// expert that received a few tokens reaches less of the device than the roofline says, so for an
/// untuned shape and a batch of more than E tokens, the routed experts' roofline time is divided by
/// `default_config_efficiency`; that extra time is work (tiles padded past the tokens an expert
/// received), so FLOPs and bytes grow with it. On a device listed in `device_efficiency` the kernel
/// reaches that fraction of the roofline at every batch size and shape, tuned or not, and its extra
/// time is not work (the GPU is less busy through it, so its utilisation, and power, fall). Dense
/// models and other expert formats (FP8, MXFP4, quantised) are not affected.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FusedMoe {
    /// Achieved fraction of the roofline time of the routed experts under the default
    /// configuration with 64-token tiles, in (0, 1].
    #[serde(default = "one")]
    pub default_config_efficiency: f64,
    /// Achieved fraction of the roofline time of the routed experts on a device (a device catalog
    /// name), in (0, 1]; 1 on a device not listed.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub device_efficiency: std::collections::BTreeMap<String, f64>,
    /// The local shapes the engine's release ships a tuned 16-bit configuration for.
    #[serde(default)]
    pub tuned: Vec<TunedMoeShape>,
    /// Where `tuned` was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where `default_config_efficiency` comes from when it is fitted apart from the rest of the
    /// profile, as for [`Fp8Linear::provenance`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<EngineProvenance>,
    /// Where `device_efficiency` comes from when it is fitted apart from the rest of the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_provenance: Option<EngineProvenance>,
}

/// One tuned fused-MoE configuration: a device of the catalog and a layer's local shape on it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TunedMoeShape {
    /// Device name as the device catalog writes it (`h100`, `b200`).
    pub device: String,
    /// Routed experts held by one GPU (vLLM's E).
    pub experts: u32,
    /// Width of one expert's up/gate projection on one GPU (vLLM's N).
    pub n: u32,
}

impl FusedMoe {
    /// The kernel's achieved fraction of the roofline on `device` at any batch (1 if not listed).
    pub fn efficiency_on(&self, device: &str) -> f64 {
        self.device_efficiency.get(device).copied().unwrap_or(1.0)
    }

    /// Whether the engine has a tuned configuration for `experts` local experts `n` wide on `device`.
    pub fn is_tuned(&self, device: &str, experts: u32, n: u32) -> bool {
        self.tuned
            .iter()
            .any(|t| t.device == device && t.experts == experts && t.n == n)
    }
}

/// Which batches are eligible for a CUDA graph.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum GraphBatches {
    #[default]
    DecodeOnly,
    All,
}

/// What one serving engine (name and version) adds around the GPU work.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineProfile {
    /// Engine name (`vidur`, `vllm`, ...).
    pub engine: String,
    /// The engine version(s) the profile describes.
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub front_end: FrontEnd,
    pub iteration: Iteration,
    #[serde(default)]
    pub launch: Launch,
    #[serde(default)]
    pub sampler: Sampler,
    /// FP8 linear-layer kernels (`None`: priced by the roofline's bytes and FLOPs alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp8_linear: Option<Fp8Linear>,
    /// The fused mixture-of-experts kernel for 16-bit experts (`None`: priced by the roofline's
    /// bytes and FLOPs alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fused_moe: Option<FusedMoe>,
    pub provenance: EngineProvenance,
}

impl EngineProfile {
    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::input::read_text(path)?;
        Self::parse(path, &text)
    }

    /// Parses and checks profile text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        crate::input::check_yaml_depth(path, text)?;
        let de = serde_yaml::Deserializer::from_str(text);
        let p: EngineProfile = serde_path_to_error::deserialize(de).map_err(|e| Error::Field {
            path: path.to_path_buf(),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        p.validate(path)?;
        Ok(p)
    }

    /// Every time finite and non-negative, the overlap in [0, 1], graph sizes ascending and non-zero.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let f = &self.front_end;
        let it = &self.iteration;
        for (field, v) in [
            ("front_end.admission_ms", f.admission_ms),
            (
                "front_end.admission_us_per_prompt_token",
                f.admission_us_per_prompt_token,
            ),
            ("front_end.stream_ms", f.stream_ms),
            ("iteration.host_ms", it.host_ms),
            ("iteration.host_us_per_seq", it.host_us_per_seq),
            ("iteration.host_us_per_token", it.host_us_per_token),
            ("iteration.host_ms_per_extra_gpu", it.host_ms_per_extra_gpu),
            ("launch.eager_us_per_layer", self.launch.eager_us_per_layer),
            ("sampler.logit_passes", self.sampler.logit_passes),
        ] {
            // Ten minutes bounds every per-request and per-iteration time here far above any engine's.
            if !(v.is_finite() && (0.0..=600_000.0).contains(&v)) {
                return Err(Error::invalid(
                    path,
                    field,
                    v,
                    "must be a finite number from 0 to 600000",
                ));
            }
        }
        if !(it.overlap.is_finite() && (0.0..=1.0).contains(&it.overlap)) {
            return Err(Error::invalid(
                path,
                "iteration.overlap",
                it.overlap,
                "must be a number from 0 to 1",
            ));
        }
        if let Some(f) = &self.fp8_linear {
            if !(f.efficiency.is_finite() && f.efficiency > 0.0 && f.efficiency <= 1.0) {
                return Err(Error::invalid(
                    path,
                    "fp8_linear.efficiency",
                    f.efficiency,
                    "must be a number in (0, 1]",
                ));
            }
            if !(f.us_per_layer.is_finite() && (0.0..=600_000.0).contains(&f.us_per_layer)) {
                return Err(Error::invalid(
                    path,
                    "fp8_linear.us_per_layer",
                    f.us_per_layer,
                    "must be a finite number from 0 to 600000",
                ));
            }
        }
        if let Some(f) = &self.fused_moe {
            let e = f.default_config_efficiency;
            if !(e.is_finite() && e > 0.0 && e <= 1.0) {
                return Err(Error::invalid(
                    path,
                    "fused_moe.default_config_efficiency",
                    e,
                    "must be a number in (0, 1]",
                ));
            }
            for (device, e) in &f.device_efficiency {
                if !(e.is_finite() && *e > 0.0 && *e <= 1.0) {
                    return Err(Error::invalid(
                        path,
                        format!("fused_moe.device_efficiency.{device}"),
                        e,
                        "must be a number in (0, 1]",
                    ));
                }
            }
            for (i, t) in f.tuned.iter().enumerate() {
                if t.device.trim().is_empty() || t.experts == 0 || t.n == 0 {
                    return Err(Error::invalid(
                        path,
                        format!("fused_moe.tuned[{i}]"),
                        format!(
                            "{{ device: {:?}, experts: {}, n: {} }}",
                            t.device, t.experts, t.n
                        ),
                        "must name a device and give positive experts and n",
                    ));
                }
            }
        }
        let e = self.sampler.memory_efficiency;
        if !(e.is_finite() && e > 0.0 && e <= 1.0) {
            return Err(Error::invalid(
                path,
                "sampler.memory_efficiency",
                e,
                "must be a number in (0, 1]",
            ));
        }
        let g = &self.launch.graph_sizes;
        if g.first() == Some(&0) || g.windows(2).any(|w| w[1] <= w[0]) {
            return Err(Error::invalid(
                path,
                "launch.graph_sizes",
                format!("{g:?}"),
                "must be positive and strictly ascending",
            ));
        }
        if self.engine.trim().is_empty() {
            return Err(Error::invalid(
                path,
                "engine",
                "\"\"",
                "must name the engine",
            ));
        }
        Ok(())
    }

    /// The built-in profile of the `vidur` engine: host time from the execution-time predictor (Vidur's
    /// CPU-overhead profiles, or the predictor's constant), none of it hidden behind GPU work, no
    /// front-end cost and no graph padding: what simwatt did before it modelled engines.
    pub fn vidur() -> Self {
        EngineProfile {
            engine: "vidur".into(),
            version: String::new(),
            front_end: FrontEnd::default(),
            iteration: Iteration {
                host_from_predictor: true,
                host_ms: 0.0,
                host_us_per_seq: 0.0,
                host_us_per_token: 0.0,
                host_ms_per_extra_gpu: 0.0,
                overlap: 0.0,
            },
            launch: Launch::default(),
            sampler: Sampler {
                logit_passes: 0.0,
                memory_efficiency: default_sampler_efficiency(),
            },
            fp8_linear: None,
            fused_moe: None,
            provenance: EngineProvenance {
                method: "published".into(),
                data: vec!["Vidur's cpu_overheads profiles (profiles/vidur/cpu_overheads), where they cover the model; else predictor.iteration_overhead_ms".into()],
                error: Default::default(),
                notes: Some("Vidur's engine model: the host time of an iteration is added to its GPU time, none of it overlapped; no per-request front-end cost; no CUDA-graph padding.".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EngineProfile> {
        EngineProfile::parse(Path::new("e.yaml"), text)
    }

    const OK: &str = "engine: vllm\nversion: '0.11'\nfront_end: { admission_ms: 3 }\n\
                      iteration: { host_ms: 1, host_us_per_seq: 5, overlap: 0.9 }\n\
                      launch: { graph_sizes: [1, 2, 4, 8], graph_batches: all }\n\
                      provenance: { method: published }\n";

    #[test]
    fn a_valid_profile_parses() {
        let p = parse(OK).unwrap();
        assert_eq!(p.front_end.admission_ms, 3.0);
        assert_eq!(p.iteration.overlap, 0.9);
        assert_eq!(p.launch.graph_batches, GraphBatches::All);
        assert_eq!(p.launch.graph_sizes, vec![1, 2, 4, 8]);
    }

    #[test]
    fn bad_values_name_the_field() {
        for (from, to, field) in [
            ("overlap: 0.9", "overlap: 1.5", "iteration.overlap"),
            ("host_ms: 1", "host_ms: -1", "iteration.host_ms"),
            (
                "admission_ms: 3",
                "admission_ms: .nan",
                "front_end.admission_ms",
            ),
            ("[1, 2, 4, 8]", "[1, 4, 2]", "launch.graph_sizes"),
            ("[1, 2, 4, 8]", "[0, 4]", "launch.graph_sizes"),
            ("engine: vllm", "engine: ' '", "engine"),
        ] {
            let e = parse(&OK.replace(from, to)).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("e.yaml"), "{to}: {e}");
        }
        let e = parse(&OK.replace("overlap", "overlapp"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlapp"), "{e}");
    }

    #[test]
    fn fp8_kernel_values_are_checked_and_named() {
        let with = |f: &str| format!("{OK}fp8_linear: {{ {f} }}\n");
        let p = parse(&with("us_per_layer: 50")).unwrap();
        let f = p.fp8_linear.unwrap();
        // Efficiency defaults to 1: the roofline's.
        assert_eq!((f.efficiency, f.us_per_layer), (1.0, 50.0));
        for (bad, field) in [
            ("efficiency: 0", "fp8_linear.efficiency"),
            ("efficiency: 1.5", "fp8_linear.efficiency"),
            ("efficiency: .nan", "fp8_linear.efficiency"),
            ("us_per_layer: -1", "fp8_linear.us_per_layer"),
            ("us_per_layer: .inf", "fp8_linear.us_per_layer"),
        ] {
            let e = parse(&with(bad)).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("e.yaml"), "{bad}: {e}");
        }
    }

    #[test]
    fn fused_moe_values_are_checked_and_named() {
        let with = |f: &str| format!("{OK}fused_moe: {{ {f} }}\n");
        let p = parse(&with(
            "default_config_efficiency: 0.6, tuned: [{ device: h100, experts: 16, n: 768 }]",
        ))
        .unwrap();
        let f = p.fused_moe.unwrap();
        assert_eq!(f.default_config_efficiency, 0.6);
        assert!(f.is_tuned("h100", 16, 768));
        assert!(!f.is_tuned("h100", 16, 1536) && !f.is_tuned("b200", 16, 768));
        assert_eq!(
            (f.efficiency_on("h100"), f.efficiency_on("b200")),
            (1.0, 1.0)
        );
        let f = parse(&with("device_efficiency: { b200: 0.7 }"))
            .unwrap()
            .fused_moe
            .unwrap();
        assert_eq!(
            (f.efficiency_on("b200"), f.efficiency_on("h100")),
            (0.7, 1.0)
        );
        // Efficiency defaults to 1: the roofline's.
        let f = parse(&with("tuned: []")).unwrap().fused_moe.unwrap();
        assert_eq!(f.default_config_efficiency, 1.0);
        for (bad, field) in [
            (
                "default_config_efficiency: 0",
                "fused_moe.default_config_efficiency",
            ),
            (
                "default_config_efficiency: 1.5",
                "fused_moe.default_config_efficiency",
            ),
            (
                "default_config_efficiency: .nan",
                "fused_moe.default_config_efficiency",
            ),
            (
                "tuned: [{ device: h100, experts: 0, n: 768 }]",
                "fused_moe.tuned[0]",
            ),
            (
                "tuned: [{ device: ' ', experts: 16, n: 768 }]",
                "fused_moe.tuned[0]",
            ),
            (
                "tuned: [{ device: h100, experts: 16, n: 0 }]",
                "fused_moe.tuned[0]",
            ),
            (
                "tuned: [{ device: h100, experts: -1, n: 8 }]",
                "fused_moe.tuned[0].experts",
            ),
            (
                "tuned: [{ device: h100, experts: 16 }]",
                "fused_moe.tuned[0]",
            ),
            ("tuned: [{ device: h100, expert: 16, n: 8 }]", "expert"),
            (
                "device_efficiency: { b200: 0 }",
                "fused_moe.device_efficiency.b200",
            ),
            (
                "device_efficiency: { b200: 1.2 }",
                "fused_moe.device_efficiency.b200",
            ),
            (
                "device_efficiency: { b200: .nan }",
                "fused_moe.device_efficiency.b200",
            ),
        ] {
            let e = parse(&with(bad)).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("e.yaml"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_shipped_vllm_profile_lists_tuned_shapes_and_a_fitted_efficiency() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let p = EngineProfile::load(&root.join("profiles/engine/vllm-0.11.yaml")).unwrap();
        let f = p.fused_moe.expect("vllm-0.11 has a fused_moe section");
        // Qwen3-30B-A3B on one GPU is tuned; Qwen3-235B-A22B expert-parallel over 8 is not.
        assert!(f.is_tuned("h100", 128, 768) && f.is_tuned("b200", 128, 768));
        assert!(!f.is_tuned("h100", 16, 1536) && !f.is_tuned("b200", 32, 1536));
        assert!(f.default_config_efficiency < 1.0);
        let prov = f
            .provenance
            .expect("the efficiency carries its own provenance");
        assert_eq!(prov.method, "fitted");
        assert!(prov
            .data
            .iter()
            .any(|d| d.contains("heldout-v3-h100-qwen3-235b-a22b.yaml")));
    }

    #[test]
    fn the_vidur_profile_is_valid() {
        EngineProfile::vidur().validate(Path::new("x")).unwrap();
    }
}
