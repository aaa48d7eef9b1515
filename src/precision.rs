//! Numeric precision of a model deployment: how the weights are stored, which arithmetic the matrix
//! multiplications run in, and how the KV cache is stored, each with its bytes per element, and the
//! device peak that prices the arithmetic.
//!
//! Input: the config's `precision` section (format names), the model's catalog `dtype_bytes` (the
//! default for all three) and the device's per-precision peaks (`peak_tflops_by_precision`). Output: a
//! [`Precision`] that the memory plan and the predictors take every byte count and the compute peak
//! from. docs/precision.md gives the table of formats and their sources. Foundation module: it imports
//! only the catalog.

use crate::catalog::DeviceSpec;
use serde::Serialize;

/// How the weights of the linear layers are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    Bf16,
    Fp16,
    /// FP8 e4m3 with per-tensor or per-channel scales (vLLM `fp8` checkpoints).
    Fp8,
    /// INT8 with per-channel scales (SmoothQuant-style W8A8 checkpoints, or W8A16 weight-only).
    Int8,
    /// 4-bit integers with a 16-bit scale and a 4-bit zero point per group of 128 (AWQ, GPTQ).
    Int4,
    /// llama.cpp GGUF Q4_0: blocks of 32 4-bit weights and one fp16 scale.
    Q4_0,
    /// llama.cpp GGUF Q4_K_M: a Q4_K / Q6_K mix.
    Q4KM,
    /// llama.cpp GGUF Q5_1: blocks of 32 5-bit weights with an fp16 scale and minimum.
    Q5_1,
    /// llama.cpp GGUF Q6_K: super-blocks of 256 6-bit weights with 8-bit sub-block scales and an fp16
    /// scale; what llama.cpp's quantiser stores the output head in for most types.
    Q6K,
    /// llama.cpp GGUF Q8_0: blocks of 32 8-bit weights and one fp16 scale.
    Q8_0,
    /// OCP microscaling MXFP4: blocks of 32 FP4 (e2m1) weights sharing one 8-bit power-of-two (E8M0)
    /// scale, as gpt-oss stores its experts.
    Mxfp4,
}

/// Every weight format with its config name.
pub const WEIGHT_FORMATS: [(&str, WeightFormat); 11] = [
    ("bf16", WeightFormat::Bf16),
    ("fp16", WeightFormat::Fp16),
    ("fp8", WeightFormat::Fp8),
    ("int8", WeightFormat::Int8),
    ("int4", WeightFormat::Int4),
    ("q4_0", WeightFormat::Q4_0),
    ("q4_k_m", WeightFormat::Q4KM),
    ("q5_1", WeightFormat::Q5_1),
    ("q6_k", WeightFormat::Q6K),
    ("q8_0", WeightFormat::Q8_0),
    ("mxfp4", WeightFormat::Mxfp4),
];

impl WeightFormat {
    /// Stored bits per weight, scales and zero points included.
    pub fn bits(self) -> f64 {
        match self {
            WeightFormat::Bf16 | WeightFormat::Fp16 => 16.0,
            // Per-tensor or per-channel scales: a few bytes per matrix, left out.
            WeightFormat::Fp8 | WeightFormat::Int8 => 8.0,
            // 4 bits + (16-bit scale + 4-bit zero) / 128 weights.
            WeightFormat::Int4 => 4.0 + 20.0 / 128.0,
            // ggml-common.h block_q4_0: fp16 d + 16 bytes of nibbles per 32 weights = 18 bytes.
            WeightFormat::Q4_0 => 18.0 * 8.0 / 32.0,
            // llama.cpp tools/quantize/README.md, Llama 2 7B table.
            WeightFormat::Q4KM => 4.84,
            // block_q5_1: fp16 d and m, 4 bytes of fifth bits, 16 bytes of nibbles = 24 bytes / 32.
            WeightFormat::Q5_1 => 24.0 * 8.0 / 32.0,
            // block_q6_K: 128 bytes of low nibbles, 64 of high bits, 16 int8 sub-block scales and an
            // fp16 d = 210 bytes / 256 weights.
            WeightFormat::Q6K => 210.0 * 8.0 / 256.0,
            // block_q8_0: fp16 d + 32 int8 = 34 bytes / 32.
            WeightFormat::Q8_0 => 34.0 * 8.0 / 32.0,
            // OCP MX v1.0: 32 x 4-bit elements + one 8-bit shared scale = 136 bits / 32.
            WeightFormat::Mxfp4 => 4.0 + 8.0 / 32.0,
        }
    }

    /// The arithmetic a config that names only the weights gets: the format's own for fp8 and int8
    /// (W8A8), 16-bit for the others (weight-only formats dequantise into 16-bit arithmetic).
    pub fn default_compute(self) -> ComputeFormat {
        match self {
            WeightFormat::Fp16 => ComputeFormat::Fp16,
            WeightFormat::Fp8 => ComputeFormat::Fp8,
            WeightFormat::Int8 => ComputeFormat::Int8,
            _ => ComputeFormat::Bf16,
        }
    }

    /// Whether the linear layers can read these weights straight into `compute` arithmetic, without
    /// first unpacking and scaling them.
    fn native_to(self, compute: ComputeFormat) -> bool {
        match compute {
            ComputeFormat::Bf16 | ComputeFormat::Fp16 => {
                matches!(self, WeightFormat::Bf16 | WeightFormat::Fp16)
            }
            ComputeFormat::Fp8 => self == WeightFormat::Fp8,
            ComputeFormat::Int8 => matches!(self, WeightFormat::Int8 | WeightFormat::Q8_0),
        }
    }

    fn is_integer(self) -> bool {
        !matches!(
            self,
            WeightFormat::Bf16 | WeightFormat::Fp16 | WeightFormat::Fp8 | WeightFormat::Mxfp4
        )
    }
}

/// The arithmetic of the matrix multiplications (the tensor-core or SIMD format of their inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeFormat {
    Bf16,
    Fp16,
    /// FP8 e4m3 inputs, FP32 accumulation (W8A8-FP8).
    Fp8,
    /// INT8 inputs, INT32 accumulation (W8A8-INT8).
    Int8,
}

/// Every compute format with its config name.
pub const COMPUTE_FORMATS: [(&str, ComputeFormat); 4] = [
    ("bf16", ComputeFormat::Bf16),
    ("fp16", ComputeFormat::Fp16),
    ("fp8", ComputeFormat::Fp8),
    ("int8", ComputeFormat::Int8),
];

impl ComputeFormat {
    /// The config name.
    pub fn name(self) -> &'static str {
        COMPUTE_FORMATS
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("bf16")
    }

    /// Bytes of one activation as a linear layer reads it.
    fn input_bytes(self) -> f64 {
        match self {
            ComputeFormat::Bf16 | ComputeFormat::Fp16 => 2.0,
            ComputeFormat::Fp8 | ComputeFormat::Int8 => 1.0,
        }
    }

    /// The device's dense peak for this arithmetic, TFLOP/s (TOP/s for int8), if it has one: bf16 and
    /// fp16 are `peak_tflops`; fp8 and int8 come from `peak_tflops_by_precision`.
    pub fn device_peak_tflops(self, d: &DeviceSpec) -> Option<f64> {
        match self {
            ComputeFormat::Bf16 | ComputeFormat::Fp16 => Some(d.peak_tflops),
            ComputeFormat::Fp8 => d.peak_tflops_by_precision.as_ref().and_then(|p| p.fp8),
            ComputeFormat::Int8 => d.peak_tflops_by_precision.as_ref().and_then(|p| p.int8),
        }
    }
}

/// How the KV cache is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvFormat {
    Bf16,
    Fp16,
    /// FP8 (vLLM `kv_cache_dtype: fp8`, e4m3).
    Fp8,
    /// INT8 with per-head scales.
    Int8,
}

/// Every KV-cache format with its config name.
pub const KV_FORMATS: [(&str, KvFormat); 4] = [
    ("bf16", KvFormat::Bf16),
    ("fp16", KvFormat::Fp16),
    ("fp8", KvFormat::Fp8),
    ("int8", KvFormat::Int8),
];

impl KvFormat {
    fn bytes(self) -> f64 {
        match self {
            KvFormat::Bf16 | KvFormat::Fp16 => 2.0,
            KvFormat::Fp8 | KvFormat::Int8 => 1.0,
        }
    }
}

/// Dequantisation work per weight of a linear layer per forward pass, counted in FLOPs at the peak that
/// prices the layer, on a GPU (docs/precision.md): about 4 ALU operations per weight (unpack, convert,
/// scale, subtract the zero point), run on CUDA cores at about 1/8 of the tensor-core rate (H100 SXM:
/// 133.8 non-tensor fp16 against 989.4 tensor TFLOP/s), so about 32 tensor-FLOP equivalents.
pub const DEQUANT_FLOPS_PER_WEIGHT_GPU: f64 = 32.0;
/// The same on a CPU, whose peak counts the same SIMD units that unpack the weights: 4 operations.
pub const DEQUANT_FLOPS_PER_WEIGHT_CPU: f64 = 4.0;

/// The resolved precision of a deployment: names as configured and every figure derived from them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Precision {
    /// Weight format (`bf16` .. `q8_0`), or `catalog` when the config has no `precision` section and
    /// the model's `dtype_bytes` is not 2.
    pub weights: String,
    /// Arithmetic asked for.
    pub compute: String,
    /// Arithmetic used: `compute`, or the 16-bit arithmetic when the device has no peak for it.
    pub compute_used: String,
    pub kv_cache: String,
    /// Bytes per weight of the linear layers of the transformer blocks.
    pub weight_bytes: f64,
    /// Bytes per weight of the input embedding and the output head: 16-bit unless
    /// `precision.embeddings` names a format ([`Precision::with_embeddings`]).
    pub embedding_bytes: f64,
    /// The input embedding's and output head's format when `precision.embeddings` sets one (a GGUF
    /// file's Q6_K head); `None`: 16-bit, as every non-GGUF scheme modelled here keeps them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<String>,
    /// Bytes per KV-cache element.
    pub kv_bytes: f64,
    /// Bytes per activation between layers (residual stream, all-reduce, pipeline sends).
    pub activation_bytes: f64,
    /// Bytes per activation read by a linear layer (1 under fp8 / int8 arithmetic).
    pub gemm_input_bytes: f64,
    /// The device peak the linear layers run at, TFLOP/s (TOP/s for int8).
    pub peak_tflops: f64,
    /// Extra FLOPs per weight per forward pass for dequantising into `compute_used` (0: none).
    pub dequant_flops_per_weight: f64,
    /// Why the arithmetic differs from the one asked for, when it does.
    pub fallback: Option<String>,
    /// The routed experts of a mixture-of-experts model stored in a format of their own
    /// (`precision.experts`, or the catalog's `moe.expert_weights`); `None`: as the other weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experts: Option<ExpertPrecision>,
}

/// How the routed experts' weights are stored when they differ from the rest of the linear layers
/// (gpt-oss: MXFP4 experts beside bf16 attention, router and embeddings). They are read into the same
/// arithmetic as the other layers (`compute_used`), dequantised when that is not their own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpertPrecision {
    /// Weight format name (`bf16` .. `mxfp4`).
    pub weights: String,
    /// Bytes per expert weight.
    pub weight_bytes: f64,
    /// Extra FLOPs per expert weight per forward pass for dequantising into `compute_used` (0: none).
    pub dequant_flops_per_weight: f64,
}

/// A name that is not one of the formats a field accepts: (field, value, message).
pub type BadName = (&'static str, String, String);

fn lookup<T: Copy>(field: &'static str, name: &str, table: &[(&str, T)]) -> Result<T, BadName> {
    let key = name.trim().to_ascii_lowercase().replace('-', "_");
    table
        .iter()
        .find(|(n, _)| *n == key)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            (
                field,
                name.to_string(),
                format!("not a known format; one of {}", known.join(", ")),
            )
        })
}

impl Precision {
    /// What a config without a `precision` section gets: the catalog's `dtype_bytes` for weights, KV
    /// cache and activations, at the device's bf16 peak (byte for byte what simwatt computed before
    /// precisions existed).
    pub fn from_catalog(dtype_bytes: u32, device: &DeviceSpec) -> Precision {
        let b = dtype_bytes as f64;
        let name = if dtype_bytes == 2 { "bf16" } else { "catalog" };
        Precision {
            weights: name.into(),
            compute: "bf16".into(),
            compute_used: "bf16".into(),
            kv_cache: name.into(),
            weight_bytes: b,
            embedding_bytes: b,
            embeddings: None,
            kv_bytes: b,
            activation_bytes: b,
            gemm_input_bytes: b,
            peak_tflops: device.peak_tflops,
            dequant_flops_per_weight: 0.0,
            fallback: None,
            experts: None,
        }
    }

    /// Resolves the configured names (each `None`: the default) for a model whose catalog
    /// `dtype_bytes` is `dtype_bytes` on `device`. Errors name the `precision.*` field and value.
    pub fn resolve(
        weights: Option<&str>,
        compute: Option<&str>,
        kv_cache: Option<&str>,
        dtype_bytes: u32,
        device: &DeviceSpec,
    ) -> Result<Precision, BadName> {
        let base = Precision::from_catalog(dtype_bytes, device);
        let w = weights
            .map(|n| lookup("precision.weights", n, &WEIGHT_FORMATS))
            .transpose()?;
        let c = compute
            .map(|n| lookup("precision.compute", n, &COMPUTE_FORMATS))
            .transpose()?;
        let kv = kv_cache
            .map(|n| lookup("precision.kv_cache", n, &KV_FORMATS))
            .transpose()?;
        let wf = w.unwrap_or(WeightFormat::Bf16);
        let cf = c.unwrap_or_else(|| wf.default_compute());
        match cf {
            ComputeFormat::Fp8 if wf != WeightFormat::Fp8 => {
                return Err((
                    "precision.compute",
                    "fp8".into(),
                    format!(
                        "fp8 arithmetic needs fp8 weights (W8A8-FP8), but precision.weights is {}",
                        weight_name(wf)
                    ),
                ))
            }
            ComputeFormat::Int8 if !wf.is_integer() => {
                return Err((
                    "precision.compute",
                    "int8".into(),
                    format!(
                        "int8 arithmetic needs integer weights (int8, int4 or a GGUF type), but \
                         precision.weights is {}",
                        weight_name(wf)
                    ),
                ))
            }
            _ => {}
        }
        let (used, peak, fallback) = match cf.device_peak_tflops(device) {
            Some(p) => (cf, p, None),
            None => (
                ComputeFormat::Bf16,
                device.peak_tflops,
                Some(format!(
                    "precision.compute {} has no peak on {} (no `{}` in its peak_tflops_by_precision), \
                     so the linear layers run in 16-bit arithmetic at its bf16 peak of {} TFLOP/s, \
                     dequantising the weights as a weight-only format does",
                    cf.name(),
                    device.name,
                    cf.name(),
                    device.peak_tflops
                )),
            ),
        };
        let dequant = dequant_flops(wf, used, device);
        let (weight_name_s, weight_bytes) = match w {
            Some(f) => (weight_name(f).to_string(), f.bits() / 8.0),
            None => (base.weights.clone(), base.weight_bytes),
        };
        let (kv_name, kv_bytes) = match kv {
            Some(f) => (kv_format_name(f).to_string(), f.bytes()),
            None => (base.kv_cache.clone(), base.kv_bytes),
        };
        let gemm_input_bytes = match used {
            ComputeFormat::Fp8 | ComputeFormat::Int8 => used.input_bytes(),
            _ => base.activation_bytes,
        };
        Ok(Precision {
            weights: weight_name_s,
            compute: cf.name().into(),
            compute_used: used.name().into(),
            kv_cache: kv_name,
            weight_bytes,
            embedding_bytes: base.embedding_bytes,
            embeddings: None,
            kv_bytes,
            activation_bytes: base.activation_bytes,
            gemm_input_bytes,
            peak_tflops: peak,
            dequant_flops_per_weight: dequant,
            fallback,
            experts: None,
        })
    }

    /// The same precision with the routed experts stored as `f` (from [`weight_format`]), read into
    /// this precision's arithmetic on `device`.
    pub fn with_experts(mut self, f: WeightFormat, device: &DeviceSpec) -> Precision {
        let used = COMPUTE_FORMATS
            .iter()
            .find(|(n, _)| *n == self.compute_used)
            .map_or(ComputeFormat::Bf16, |(_, c)| *c);
        self.experts = Some(ExpertPrecision {
            weights: weight_name(f).to_string(),
            weight_bytes: f.bits() / 8.0,
            dequant_flops_per_weight: dequant_flops(f, used, device),
        });
        self
    }

    /// The same precision with the input embedding and the output head stored as `f` (from
    /// [`weight_format`]). Only their bytes change: the head's matrix multiplication stays in this
    /// precision's arithmetic, and a lookup in the embedding reads one row whatever its format.
    pub fn with_embeddings(mut self, f: WeightFormat) -> Precision {
        self.embedding_bytes = f.bits() / 8.0;
        self.embeddings = Some(weight_name(f).to_string());
        self
    }

    /// The peak that prices the linear layers, FLOP/s.
    pub fn peak_flops(&self) -> f64 {
        self.peak_tflops * 1e12
    }

    /// Bytes the linear-layer weights of the `layers` transformer layers from layer `first` take as
    /// stored: every weight at [`Precision::weight_bytes`], a mixture-of-experts model's routed
    /// experts at their own format's bytes when they have one. Partial GPU offload places and copies
    /// layers by these bytes.
    pub fn layer_weight_bytes(
        &self,
        model: &crate::catalog::ModelSpec,
        first: u32,
        layers: u32,
    ) -> f64 {
        let all: u64 = (first..first.saturating_add(layers))
            .map(|l| model.layer_params(l))
            .sum();
        match &self.experts {
            Some(e) => {
                let experts = model.routed_expert_params_in(first, layers);
                (all - experts) as f64 * self.weight_bytes + experts as f64 * e.weight_bytes
            }
            None => all as f64 * self.weight_bytes,
        }
    }

    /// Whether the linear layers run as the Vidur profiles measured them: 16-bit weights in 16-bit
    /// arithmetic (the profiles were taken in fp16).
    pub fn linear_layers_as_profiled(&self) -> bool {
        self.weight_bytes == 2.0
            && self.gemm_input_bytes == 2.0
            && self.dequant_flops_per_weight == 0.0
            && self.compute_used != "fp8"
            && self.compute_used != "int8"
    }

    /// A one-line description: `weights int4 (0.52 B), compute bf16 at 165.2 TFLOP/s, KV fp8 (1 B)`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "weights {} ({} B per weight), {} arithmetic at {} TFLOP/s, KV cache {} ({} B per element)",
            self.weights,
            self.weight_bytes,
            self.compute_used,
            self.peak_tflops,
            self.kv_cache,
            self.kv_bytes
        );
        if self.dequant_flops_per_weight > 0.0 {
            s.push_str(&format!(
                ", dequantisation {} FLOPs per weight per pass",
                self.dequant_flops_per_weight
            ));
        }
        if let Some(e) = &self.experts {
            s.push_str(&format!(
                ", routed experts {} ({} B per weight",
                e.weights, e.weight_bytes
            ));
            if e.dequant_flops_per_weight > 0.0 {
                s.push_str(&format!(
                    ", dequantised at {} FLOPs per weight per pass",
                    e.dequant_flops_per_weight
                ));
            }
            s.push(')');
        }
        s
    }
}

/// The weight format called `name` (case and `-`/`_` ignored); `field` names the setting in errors.
pub fn weight_format(field: &'static str, name: &str) -> Result<WeightFormat, BadName> {
    lookup(field, name, &WEIGHT_FORMATS)
}

/// Dequantisation FLOPs per weight of format `f` read into `used` arithmetic on `device`: none when
/// the arithmetic reads it natively.
fn dequant_flops(f: WeightFormat, used: ComputeFormat, device: &DeviceSpec) -> f64 {
    if f.native_to(used) {
        0.0
    } else if device.kind == "cpu" {
        DEQUANT_FLOPS_PER_WEIGHT_CPU
    } else {
        DEQUANT_FLOPS_PER_WEIGHT_GPU
    }
}

fn weight_name(f: WeightFormat) -> &'static str {
    WEIGHT_FORMATS
        .iter()
        .find(|(_, x)| *x == f)
        .map(|(n, _)| *n)
        .unwrap_or("bf16")
}

fn kv_format_name(f: KvFormat) -> &'static str {
    KV_FORMATS
        .iter()
        .find(|(_, x)| *x == f)
        .map(|(n, _)| *n)
        .unwrap_or("bf16")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn gguf_bits_per_weight_follow_the_block_layouts() {
        assert_eq!(WeightFormat::Q4_0.bits(), 4.5);
        assert_eq!(WeightFormat::Q5_1.bits(), 6.0);
        assert_eq!(WeightFormat::Q6K.bits(), 6.5625);
        assert_eq!(WeightFormat::Q8_0.bits(), 8.5);
        assert_eq!(WeightFormat::Int4.bits(), 4.15625);
        // OCP MX: 32 FP4 elements and one E8M0 scale.
        assert_eq!(WeightFormat::Mxfp4.bits(), 4.25);
    }

    #[test]
    fn mxfp4_experts_dequantise_into_the_arithmetic_of_the_other_weights() {
        let c = Catalog::builtin().unwrap();
        let (_, h100) = c.device("h100").unwrap();
        let mxfp4 = weight_format("precision.experts", "MXFP4").unwrap();
        let p = Precision::from_catalog(2, h100).with_experts(mxfp4, h100);
        let e = p.experts.as_ref().unwrap();
        assert_eq!((e.weights.as_str(), e.weight_bytes), ("mxfp4", 0.53125));
        assert_eq!(e.dequant_flops_per_weight, DEQUANT_FLOPS_PER_WEIGHT_GPU);
        assert_eq!((p.weight_bytes, p.compute_used.as_str()), (2.0, "bf16"));
        // bf16 experts in bf16 arithmetic need no dequantisation.
        let bf16 = weight_format("precision.experts", "bf16").unwrap();
        let p = Precision::from_catalog(2, h100).with_experts(bf16, h100);
        assert_eq!(p.experts.unwrap().dequant_flops_per_weight, 0.0);
        let e = weight_format("precision.experts", "fp4").unwrap_err();
        assert_eq!((e.0, e.1.as_str()), ("precision.experts", "fp4"));
        assert!(e.2.contains("mxfp4"), "{}", e.2);
    }

    #[test]
    fn fp8_on_ampere_falls_back_to_the_bf16_peak() {
        let c = Catalog::builtin().unwrap();
        let (_, a100) = c.device("a100").unwrap();
        let p = Precision::resolve(Some("fp8"), None, None, 2, a100).unwrap();
        assert_eq!(p.compute, "fp8");
        assert_eq!(p.compute_used, "bf16");
        assert_eq!(p.peak_tflops, 312.0);
        assert_eq!(p.dequant_flops_per_weight, DEQUANT_FLOPS_PER_WEIGHT_GPU);
        assert!(p.fallback.as_deref().unwrap().contains("fp8"));
        let (_, h100) = c.device("h100").unwrap();
        let p = Precision::resolve(Some("fp8"), None, None, 2, h100).unwrap();
        assert_eq!((p.compute_used.as_str(), p.peak_tflops), ("fp8", 1979.0));
        assert_eq!((p.gemm_input_bytes, p.dequant_flops_per_weight), (1.0, 0.0));
        assert!(p.fallback.is_none());
    }

    #[test]
    fn bad_names_and_combinations_name_the_field() {
        let c = Catalog::builtin().unwrap();
        let (_, d) = c.device("h100").unwrap();
        let e = Precision::resolve(Some("int3"), None, None, 2, d).unwrap_err();
        assert_eq!((e.0, e.1.as_str()), ("precision.weights", "int3"));
        assert!(e.2.contains("q4_k_m"), "{}", e.2);
        let e = Precision::resolve(Some("int4"), Some("fp8"), None, 2, d).unwrap_err();
        assert_eq!(e.0, "precision.compute");
        let e = Precision::resolve(None, None, Some("fp4"), 2, d).unwrap_err();
        assert_eq!(e.0, "precision.kv_cache");
    }
}
