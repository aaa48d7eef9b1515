//! Attention time from a roofline calibrated on a measured attention profile.
//!
//! A model's own attention profile (`compute/<device>/<model>/attention.csv`, Vidur's format) is used
//! when it exists; the shipped data has none, and falls back on the one real profile available
//! (Vidur's historical A100 profile of a Llama-2-70B-shaped layer at TP 2, FlashAttention). The layer
//! shape of each row comes from the profile's own columns (n_q_head, n_kv_head, n_embd,
//! num_tensor_parallel_workers). Prefill time is modelled as
//! `a_p + FLOPs / (peak_flops x e_p) + t_p x tokens` and decode time as
//! `a_d + KV bytes / (bandwidth x e_d) + s_d x seqs`, with the coefficients fitted by least squares in
//! relative error on that profile's rows (FLOPs and bytes computed from the profiled shapes and the
//! A100's peaks). The fitted efficiencies then price any
//! model on any device from its own FLOPs, bytes and peaks. The profile's KV cache is 16-bit; a run's
//! decode bytes use its own KV-cache precision (docs/precision.md), and attention arithmetic stays at
//! the device's bf16 peak whatever the precision of the linear layers. Reported error is 5-fold
//! cross-validated.

use super::fit::{fold_split, mape, max_abs_err};
use super::BatchShape;
use crate::catalog::{DeviceSpec, ModelSpec};
use crate::csvio::CsvTable;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linalg::traits::qr::QRDecomposable;
use std::path::Path;

/// Calibrated attention coefficients.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct AttentionModel {
    /// Fixed cost of a prefill attention call, ms.
    pub prefill_fixed_ms: f64,
    /// Achieved fraction of peak compute in prefill attention.
    pub prefill_efficiency: f64,
    /// Cost per prefill token (reading and writing its queries, keys, values and output), ms.
    pub prefill_per_token_ms: f64,
    /// Fixed cost of a decode attention call, ms.
    pub decode_fixed_ms: f64,
    /// Achieved fraction of peak bandwidth reading the KV cache.
    pub decode_efficiency: f64,
    /// Cost per decoded sequence, ms.
    pub decode_per_seq_ms: f64,
}

/// How well the calibration reproduces the profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttentionReport {
    pub source: String,
    pub prefill_rows: usize,
    pub decode_rows: usize,
    pub prefill_cv_mape_pct: f64,
    pub prefill_cv_max_err_ms: f64,
    pub decode_cv_mape_pct: f64,
    pub decode_cv_max_err_ms: f64,
    /// Largest context (cached + new tokens) in the profile; longer contexts are extrapolated.
    pub max_context: f64,
    pub model: AttentionModel,
}

/// Bytes per KV-cache element in the profile the coefficients are calibrated on (fp16 / bf16): the
/// profile's, not a run's, which brings its own to [`AttentionModel::time_ms`].
const PROFILE_KV_BYTES: f64 = 2.0;

/// Least squares in relative error: minimises sum(((c . x_i) - y_i) / y_i)^2 over coefficients `c`,
/// where each row `x_i` starts with the constant 1. Relative error is what the fit is judged on, and
/// plain least squares would let the largest kernels (tens of times longer) decide alone.
fn rel_lstsq(rows: &[Vec<f64>], y: &[f64]) -> Result<Vec<f64>> {
    let k = rows[0].len();
    // Scale columns to a maximum of 1 for conditioning, then undo it on the coefficients.
    let scale: Vec<f64> = (0..k)
        .map(|j| {
            rows.iter()
                .map(|r| r[j].abs())
                .fold(0.0, f64::max)
                .max(1e-300)
        })
        .collect();
    let a: Vec<Vec<f64>> = rows
        .iter()
        .zip(y)
        .map(|(r, yi)| r.iter().zip(&scale).map(|(x, s)| x / s / yi).collect())
        .collect();
    let b: Vec<Vec<f64>> = vec![vec![1.0]; y.len()];
    let am = DenseMatrix::from_2d_vec(&a).map_err(|e| Error::Internal(e.to_string()))?;
    let bm = DenseMatrix::from_2d_vec(&b).map_err(|e| Error::Internal(e.to_string()))?;
    let w = am
        .qr_solve_mut(bm)
        .map_err(|e| Error::Internal(format!("attention calibration: {e}")))?;
    Ok((0..k).map(|j| *w.get((j, 0)) / scale[j]).collect())
}

/// Cross-validated predictions of [`rel_lstsq`].
fn cv_predict(rows: &[Vec<f64>], y: &[f64]) -> Result<Vec<f64>> {
    let mut pred = vec![0.0; y.len()];
    for fold in 0..5 {
        let (tr, te) = fold_split(y.len(), 5, fold);
        let r: Vec<Vec<f64>> = tr.iter().map(|&i| rows[i].clone()).collect();
        let t: Vec<f64> = tr.iter().map(|&i| y[i]).collect();
        let w = rel_lstsq(&r, &t)?;
        for &i in &te {
            pred[i] = rows[i].iter().zip(&w).map(|(x, c)| x * c).sum::<f64>();
        }
    }
    Ok(pred)
}

fn optional_col(t: &CsvTable, name: &str) -> Result<Vec<f64>> {
    // Reshape and KV-cache-save kernels are absent in some profile versions, and empty where they did
    // not run: both cost nothing.
    if !t.has_column(name) {
        return Ok(vec![0.0; t.rows()]);
    }
    t.f64_column_or(name, 0.0)
}

impl AttentionModel {
    /// Calibrates on the attention profile at `path`, measured on `device`.
    pub fn calibrate(path: &Path, device: &DeviceSpec) -> Result<(Self, AttentionReport)> {
        let t = CsvTable::read(path)?;
        let is_prefill = t.text_values("is_prefill")?;
        let batch = t.f64_column("batch_size")?;
        let chunk = t.f64_column("prefill_chunk_size")?;
        let kv = t.f64_column("kv_cache_size")?;
        let pre = t.f64_column_or("time_stats.attn_prefill.median", f64::NAN)?;
        let dec = t.f64_column_or("time_stats.attn_decode.median", f64::NAN)?;
        let rin = optional_col(&t, "time_stats.attn_input_reshape.median")?;
        let rout = optional_col(&t, "time_stats.attn_output_reshape.median")?;
        // Writing the new tokens' keys and values to the paged cache (newer Vidur profiles time it
        // separately; the historical A100 profile has no such column).
        let kv_save = optional_col(&t, "time_stats.attn_kv_cache_save.median")?;
        // Each row's layer shape, per GPU: the profile says which model and TP degree it measured.
        let q_heads = t.f64_column("n_q_head")?;
        let kv_heads = t.f64_column("n_kv_head")?;
        let embd = t.f64_column("n_embd")?;
        let tp = t.f64_column("num_tensor_parallel_workers")?;
        if let Some(i) = (0..t.rows())
            .find(|&i| q_heads[i] < 1.0 || kv_heads[i] < 1.0 || tp[i] < 1.0 || embd[i] < q_heads[i])
        {
            return Err(Error::Column {
                path: path.to_path_buf(),
                column: "n_q_head".into(),
                row: Some(i + 1),
                message: format!(
                    "inconsistent layer shape: n_q_head {}, n_kv_head {}, n_embd {}, num_tensor_parallel_workers {}",
                    q_heads[i], kv_heads[i], embd[i], tp[i]
                ),
            });
        }
        let peak = device.peak_flops();
        let bw = device.memory_bandwidth_bytes_s();

        let (mut px, mut py, mut dx, mut dy) = (vec![], vec![], vec![], vec![]);
        let mut max_context = 0.0f64;
        for i in 0..t.rows() {
            let extra = rin[i] + rout[i] + kv_save[i];
            let head_dim = embd[i] / q_heads[i];
            let q_per_gpu = q_heads[i] / tp[i];
            let kv_per_gpu = (kv_heads[i] / tp[i]).max(1.0);
            max_context = max_context.max(kv[i] + chunk[i]);
            if is_prefill[i].eq_ignore_ascii_case("true") {
                if !pre[i].is_finite() {
                    continue;
                }
                let (p, c) = (chunk[i], kv[i]);
                let pairs = batch[i] * (p * c + p * (p + 1.0) / 2.0);
                let flops = 4.0 * q_per_gpu * head_dim * pairs;
                px.push(vec![1.0, flops / peak * 1e3, batch[i] * p]);
                py.push(pre[i] + extra);
            } else {
                if !dec[i].is_finite() {
                    continue;
                }
                let bytes =
                    batch[i] * (kv[i] + 1.0) * 2.0 * kv_per_gpu * head_dim * PROFILE_KV_BYTES;
                dx.push(vec![1.0, bytes / bw * 1e3, batch[i]]);
                dy.push(dec[i] + extra);
            }
        }
        if px.len() < 10 || dx.len() < 10 {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: format!(
                    "too few rows to calibrate attention: {} prefill and {} decode rows with times",
                    px.len(),
                    dx.len()
                ),
            });
        }
        let pw = rel_lstsq(&px, &py)?;
        let dw = rel_lstsq(&dx, &dy)?;
        if pw[1] <= 0.0 || dw[1] <= 0.0 {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: "attention times do not grow with work; cannot calibrate".into(),
            });
        }
        let model = AttentionModel {
            prefill_fixed_ms: pw[0].max(0.0),
            prefill_efficiency: (1.0 / pw[1]).min(1.0),
            prefill_per_token_ms: pw[2].max(0.0),
            decode_fixed_ms: dw[0].max(0.0),
            decode_efficiency: (1.0 / dw[1]).min(1.0),
            decode_per_seq_ms: dw[2].max(0.0),
        };
        let pcv = cv_predict(&px, &py)?;
        let dcv = cv_predict(&dx, &dy)?;
        let report = AttentionReport {
            source: path.display().to_string(),
            prefill_rows: px.len(),
            decode_rows: dx.len(),
            prefill_cv_mape_pct: mape(&pcv, &py),
            prefill_cv_max_err_ms: max_abs_err(&pcv, &py),
            decode_cv_mape_pct: mape(&dcv, &dy),
            decode_cv_max_err_ms: max_abs_err(&dcv, &dy),
            max_context,
            model,
        };
        Ok((model, report))
    }

    /// Attention time of one layer on one GPU for batch `s` with `kv_bytes` bytes per KV-cache
    /// element, ms.
    pub fn time_ms(
        &self,
        s: &BatchShape,
        m: &ModelSpec,
        d: &DeviceSpec,
        tp: u32,
        kv_bytes: f64,
    ) -> f64 {
        self.parts(s, m, d, tp, kv_bytes).at(s.decode_context_sum)
    }

    /// [`AttentionModel::time_ms`] but for the decode sequences' reading of their KV cache, which
    /// [`AttentionParts::at`] adds for a given decode context. Reads nothing of the decode context
    /// (`decode_context_sum`, `decode_max_context`), so every step of a run of decode steps shares it.
    #[inline]
    pub fn parts(
        &self,
        s: &BatchShape,
        m: &ModelSpec,
        d: &DeviceSpec,
        tp: u32,
        kv_bytes: f64,
    ) -> AttentionParts {
        let heads = m.num_attention_heads as f64 / tp as f64;
        let kv_heads = (m.num_kv_heads as f64 / tp as f64).max(1.0);
        let hd = m.head_dim as f64;
        let mut prefill_ms = 0.0;
        if s.prefill_seqs > 0 {
            let flops = 4.0 * heads * hd * s.prefill_attn_pairs as f64;
            prefill_ms +=
                self.prefill_fixed_ms + flops / (d.peak_flops() * self.prefill_efficiency) * 1e3;
            prefill_ms += self.prefill_per_token_ms * s.prefill_tokens as f64;
        }
        AttentionParts {
            prefill_ms,
            decode: s.decode_seqs > 0,
            kv_heads,
            hd,
            kv_bytes,
            decode_fixed_ms: self.decode_fixed_ms,
            decode_bytes_per_s: d.memory_bandwidth_bytes_s() * self.decode_efficiency,
            decode_seqs_ms: self.decode_per_seq_ms * s.decode_seqs as f64,
        }
    }
}

/// One layer's attention time for a batch but for reading the decode sequences' KV cache
/// ([`AttentionModel::parts`]): what every step of a run of decode steps shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionParts {
    /// The prefill attention, ms (0 without prefill sequences).
    prefill_ms: f64,
    /// The batch has decode sequences.
    decode: bool,
    /// KV heads on this GPU, head dimension and bytes per KV-cache element.
    kv_heads: f64,
    hd: f64,
    kv_bytes: f64,
    /// Fixed cost of the decode attention call, ms; achieved bytes per second reading the KV cache;
    /// and the cost of the decode sequences, ms.
    decode_fixed_ms: f64,
    decode_bytes_per_s: f64,
    decode_seqs_ms: f64,
}

impl AttentionParts {
    /// The layer's attention time when its decode sequences' contexts sum to `context_sum` tokens,
    /// ms: bit for bit [`AttentionModel::time_ms`] of a shape with that context.
    #[inline]
    pub fn at(&self, context_sum: u64) -> f64 {
        let mut ms = self.prefill_ms;
        if self.decode {
            let bytes = context_sum as f64 * 2.0 * self.kv_heads * self.hd * self.kv_bytes;
            ms +=
                self.decode_fixed_ms + bytes / self.decode_bytes_per_s * 1e3 + self.decode_seqs_ms;
        }
        ms
    }
}
