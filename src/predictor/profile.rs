//! The profile-fitted execution-time model: per-operation regressions over Vidur's profiler CSVs,
//! tabulated over every token count a scenario can batch and cached on disk, so the event loop only
//! looks values up.
//!
//! Inputs: `compute/<gpu>/<model>/mlp.csv` (per-layer linear, norm, activation, rotary and add kernels
//! against `num_tokens`, per tensor-parallel degree) and `network/<sku>/{all_reduce,send_recv}.csv`
//! (collectives against message bytes), and the CPU-overhead profile (the host's scheduling, sampling,
//! input preparation, output processing and Ray communication per iteration against batch size, per
//! model and TP: `cpu_overheads/<gpu>/cpu_overheads.csv` with every model in one file, as shipped, or
//! Vidur's current `cpu_overhead/<network_sku>/<model>/cpu_overheads.csv`, same columns). The root is
//! the profiles folder or a Vidur checkout (its `data/profiling`). Attention has no per-model profile
//! here (a model's own `compute/<gpu>/<model>/attention.csv` is used where present): it comes from a
//! roofline calibrated on the one real attention profile (see [`super::attention`]). Output: a
//! [`ProfilePredictor`] and a [`FitReport`] of each operation's held-out error. Fitted tables are kept
//! in a [`TableCache`] that a driver makes and shares between its runs, and on disk between processes.
//! The profiles were taken in fp16: at another weight format or arithmetic the linear operations'
//! tables are scaled by the roofline's ratio ([`Roofline::linear_scale`], docs/precision.md). A
//! mixture-of-experts model's MLP operations come from the roofline ([`MOE_MLP_OPS`]).

use super::attention::{AttentionModel, AttentionParts};
use super::fit::{
    fold_split, mape, max_abs_err, quadratic_cv_mape, select_forest, Forest, ForestParams,
    Quadratic,
};
use super::roofline::{Roofline, StageParts};
use super::{BatchShape, CostModel, DecodeRun, Predictor, PredictorInfo, StageCost};
use crate::csvio::CsvTable;
use crate::digest::{sha256_hex, HashIndex};
use crate::error::{Error, Result};
use crate::units::duration_ns;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// Per-layer operations of mlp.csv that every profiled model has, in execution order.
pub const LAYER_OPS: [&str; 8] = [
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
];
/// Per-layer operations some models lack (phi-2 has parallel attention: no second norm).
pub const OPTIONAL_LAYER_OPS: [&str; 1] = ["post_attention_layernorm"];
/// Operations of mlp.csv that are linear layers (the held-out error target of the fit applies to them).
pub const LINEAR_OPS: [&str; 4] = [
    "attn_pre_proj",
    "attn_post_proj",
    "mlp_up_proj",
    "mlp_down_proj",
];

/// Operations of mlp.csv that a mixture-of-experts model takes from the roofline instead
/// ([`Roofline::mlp_s`]): the Vidur forests were fitted on dense MLPs, which read every weight for every
/// token, while a routed MLP reads only the experts its batch touches.
pub const MOE_MLP_OPS: [&str; 3] = ["mlp_up_proj", "mlp_act", "mlp_down_proj"];

/// The operations whose predictions are counted (in range or beyond the profile), in the order of
/// the indices below.
const COUNTED_OPS: [&str; 6] = [
    "linear_layers",
    "attention_prefill",
    "attention_decode",
    "all_reduce",
    "send_recv",
    "cpu_overhead",
];
const LINEAR_LAYERS: usize = 0;
const ATTENTION_PREFILL: usize = 1;
const ATTENTION_DECODE: usize = 2;
const SEND_RECV: usize = 4;
const CPU_OVERHEAD: usize = 5;

/// Host-side (CPU) components of one iteration, as Vidur models them: (operation, column of
/// cpu_overheads.csv), each regressed on batch size. Their sum is the iteration's host overhead.
pub const CPU_OVERHEAD_OPS: [(&str, &str); 5] = [
    ("cpu_schedule", "schedule_median"),
    ("cpu_sampler_e2e", "sampler_e2e_median"),
    ("cpu_prepare_inputs_e2e", "prepare_inputs_e2e_median"),
    ("cpu_process_model_outputs", "process_model_outputs_median"),
    ("cpu_ray_comm_time", "ray_comm_time_mean"),
];

/// Held-out error of one operation's regressions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpReport {
    pub op: String,
    pub source: String,
    pub rows: usize,
    pub feature: String,
    pub feature_max: f64,
    pub forest_params: ForestParams,
    pub forest_cv_mape_pct: f64,
    pub quadratic_cv_mape_pct: f64,
    /// The regression tabulated: `forest`, or `quadratic` where it was allowed to compete and won on
    /// cross-validated error.
    pub model: String,
    pub forest_test_mape_pct: f64,
    pub forest_test_max_err_ms: f64,
    pub quadratic_test_mape_pct: f64,
    pub quadratic_test_max_err_ms: f64,
}

/// What a fit produced and how well it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitReport {
    pub gpu: String,
    pub model: String,
    pub tensor_parallel: u32,
    pub ops: Vec<OpReport>,
    pub attention: super::attention::AttentionReport,
    pub fit_seconds: f64,
    pub cache_file: String,
    pub from_cache: bool,
}

/// A tabulated operation: time in milliseconds for 1..=len tokens (or table points).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpTable {
    pub op: String,
    /// Largest feature value seen in the profile; beyond it the table was extended in proportion to
    /// the work (see `extend`).
    pub profiled_max: f64,
    pub values_ms: Vec<f64>,
    /// Beyond `profiled_max`: time grows by this many ms per extra token (a straight line fitted to the
    /// upper half of the profile), starting from the table's last value.
    pub tail_ms_per_token: f64,
}

impl OpTable {
    /// Time at `tokens` (>= 1), ms: the table inside the profile, the linear tail beyond it.
    pub fn eval_ms(&self, tokens: u32) -> f64 {
        match self.values_ms.get(tokens as usize - 1) {
            Some(v) => *v,
            None => {
                let n = self.values_ms.len();
                self.values_ms[n - 1] + self.tail_ms_per_token * (tokens as usize - n) as f64
            }
        }
    }
}

/// Slope (ms per unit of x) of a straight line fitted by least squares to the rows in the upper
/// half of x's range, for extending a fit beyond the data. Falls back to the proportional slope
/// `edge_y / edge_x` when the rows are too few or the fitted slope is not positive.
pub fn tail_slope(x: &[f64], y: &[f64], edge_x: f64, edge_y: f64) -> f64 {
    let lo = 0.5 * edge_x;
    let (tx, ty): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(xi, _)| **xi >= lo)
        .map(|(a, b)| (*a, *b))
        .unzip();
    let fallback = edge_y / edge_x;
    if tx.len() < 3 {
        return fallback;
    }
    let n = tx.len() as f64;
    let (mx, my) = (tx.iter().sum::<f64>() / n, ty.iter().sum::<f64>() / n);
    let sxx: f64 = tx.iter().map(|v| (v - mx) * (v - mx)).sum();
    let sxy: f64 = tx.iter().zip(&ty).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    if slope > 0.0 {
        slope
    } else {
        fallback
    }
}

/// Extrapolation error of one operation: fitted on rows up to half the profiled maximum, scored on
/// the rows above it.
#[derive(Debug, Clone, Serialize)]
pub struct ExtrapolationRow {
    pub op: String,
    pub train_max_tokens: f64,
    pub test_rows: usize,
    /// The forest alone (constant beyond its data), MAPE %.
    pub flat_forest_mape_pct: f64,
    /// The forest with simwatt's linear tail, MAPE %.
    pub tail_mape_pct: f64,
}

/// Held-back study of the extrapolation of each per-layer operation of `src` at TP `tp`.
pub fn extrapolation_study(
    src: &ProfileSources,
    tp: u32,
    seed: u64,
) -> Result<Vec<ExtrapolationRow>> {
    let rows = read_mlp(&src.mlp, tp)?;
    let max = rows.tokens.iter().cloned().fold(0.0, f64::max);
    let half = max / 2.0;
    let mut out = Vec::new();
    for (op, y) in &rows.ops {
        let (tr, te): (Vec<usize>, Vec<usize>) =
            (0..rows.tokens.len()).partition(|&i| rows.tokens[i] <= half);
        let pick = |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let (xtr, ytr) = (pick(&rows.tokens, &tr), pick(y, &tr));
        let (xte, yte) = (pick(&rows.tokens, &te), pick(y, &te));
        let (params, _) = select_forest(&xtr, &ytr, seed)?;
        let f = Forest::fit(&xtr, &ytr, params, seed)?;
        let edge_x = xtr.iter().cloned().fold(0.0, f64::max);
        let edge_y = f.predict(&[edge_x])?[0];
        let slope = tail_slope(&xtr, &ytr, edge_x, edge_y);
        let flat = f.predict(&xte)?;
        let tail: Vec<f64> = xte.iter().map(|t| edge_y + slope * (t - edge_x)).collect();
        out.push(ExtrapolationRow {
            op: op.clone(),
            train_max_tokens: edge_x,
            test_rows: xte.len(),
            flat_forest_mape_pct: mape(&flat, &yte),
            tail_mape_pct: mape(&tail, &yte),
        });
    }
    Ok(out)
}

/// A collective's time against message bytes, tabulated on a log grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommTable {
    pub op: String,
    pub source: String,
    /// Grid points (bytes), ascending.
    pub bytes: Vec<f64>,
    pub values_ms: Vec<f64>,
}

impl CommTable {
    /// Time for `b` bytes: linear interpolation on the grid; beyond it, in proportion to bytes.
    fn eval_ms(&self, b: f64) -> f64 {
        let n = self.bytes.len();
        if b <= self.bytes[0] {
            return self.values_ms[0];
        }
        if b >= self.bytes[n - 1] {
            return self.values_ms[n - 1] * b / self.bytes[n - 1];
        }
        let i = self.bytes.partition_point(|x| *x < b);
        let (x0, x1) = (self.bytes[i - 1], self.bytes[i]);
        let (y0, y1) = (self.values_ms[i - 1], self.values_ms[i]);
        y0 + (y1 - y0) * (b - x0) / (x1 - x0)
    }
}

/// Everything the fitted predictor needs; what is cached on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FittedTables {
    pub simwatt_version: String,
    pub layer_ops: Vec<OpTable>,
    /// Host overhead components against batch size ([`CPU_OVERHEAD_OPS`]); empty when the CPU-overhead
    /// profile has no rows for this model and TP (the constant `iteration_overhead_ms` applies).
    pub cpu_overheads: Vec<OpTable>,
    pub all_reduce: Option<CommTable>,
    pub send_recv: Option<CommTable>,
    pub attention: AttentionModel,
    pub report: FitReport,
}

/// Where the profiles for a (device, model, TP) are.
#[derive(Debug, Clone)]
pub struct ProfileSources {
    pub mlp: PathBuf,
    pub all_reduce: Option<PathBuf>,
    pub send_recv: Option<PathBuf>,
    pub attention: PathBuf,
    /// The catalog id of the device the attention profile was measured on, when that is not the
    /// scenario's own device (`None`: the model's own profile, measured on the device being modelled).
    pub attention_measured_on: Option<String>,
    /// The device's CPU-overhead profile, when it has one (it may still lack this model or TP).
    pub cpu_overheads: Option<PathBuf>,
}

/// The attention profile used for a model without one of its own, under the profiles root. The folder
/// it sits in is the catalog id of the device it was measured on.
pub const SHARED_ATTENTION_PROFILE: &str = "attention/a100/attention.csv";

impl ProfileSources {
    /// The device the attention profile was measured on, on which its roofline is calibrated:
    /// `device` for a model's own profile, else the catalog entry named by the shared profile's folder.
    pub fn attention_calibration_device<'a>(
        &self,
        catalog: &'a crate::catalog::Catalog,
        device: &'a crate::catalog::DeviceSpec,
    ) -> Result<&'a crate::catalog::DeviceSpec> {
        match &self.attention_measured_on {
            None => Ok(device),
            Some(id) => catalog.device(id).map(|(_, d)| d).ok_or_else(|| {
                Error::invalid(
                    &self.attention,
                    "device",
                    id,
                    "the attention profile was measured on a device the device catalog does not have",
                )
            }),
        }
    }

    /// The profile files for `model` on a device whose catalog entry names `profile_dir` and
    /// `network_profile`, under `root` (normally profiles/vidur; a Vidur checkout, whose profiles are
    /// under `data/profiling`, also works). `None` when the compute profile does not exist.
    ///
    /// Layouts: `compute/<profile_dir>/<model>/{mlp,attention}.csv` and
    /// `network/<network_profile>/{all_reduce,send_recv}.csv` in both; the CPU overheads as shipped
    /// (`cpu_overheads/<profile_dir>/cpu_overheads.csv`, every model in one file) or as Vidur reads
    /// them now (`cpu_overhead/<network_profile>/<model>/cpu_overheads.csv`; also under
    /// `<profile_dir>`), the first that exists in that order.
    pub fn locate(
        root: &Path,
        profile_dir: Option<&str>,
        network_profile: Option<&str>,
        model: &str,
        tp: u32,
    ) -> Option<Self> {
        let vidur_checkout = root.join("data").join("profiling");
        let root = if !root.join("compute").is_dir() && vidur_checkout.join("compute").is_dir() {
            vidur_checkout.as_path()
        } else {
            root
        };
        let dir = root.join("compute").join(profile_dir?).join(model);
        let mlp = dir.join("mlp.csv");
        if !mlp.exists() {
            return None;
        }
        let own = dir.join("attention.csv");
        let model_attention = own.exists().then_some(own);
        // Pairwise-NVLink profiles cover 2 and 4 GPUs; 8 GPUs need the DGX (NVSwitch) profile.
        let net = network_profile.map(|n| {
            if tp > 4 {
                n.replace("pairwise_nvlink", "dgx")
            } else {
                n.to_string()
            }
        });
        let file = |name: &str| {
            net.as_ref()
                .map(|n| root.join("network").join(n).join(name))
                .filter(|p| p.exists())
        };
        let vidur_cpu = |folder: &str| {
            root.join("cpu_overhead")
                .join(folder)
                .join(model)
                .join("cpu_overheads.csv")
        };
        let cpu = std::iter::once(
            root.join("cpu_overheads")
                .join(profile_dir?)
                .join("cpu_overheads.csv"),
        )
        .chain(net.as_deref().map(vidur_cpu))
        .chain(network_profile.map(vidur_cpu))
        .chain(std::iter::once(vidur_cpu(profile_dir?)))
        .find(|p| p.exists());
        let shared = root.join(SHARED_ATTENTION_PROFILE);
        let attention_measured_on = match model_attention {
            Some(_) => None,
            None => shared
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().to_string()),
        };
        Some(ProfileSources {
            mlp,
            cpu_overheads: cpu,
            all_reduce: file("all_reduce.csv"),
            send_recv: file("send_recv.csv"),
            attention: model_attention.unwrap_or(shared),
            attention_measured_on,
        })
    }
}

/// Settings of a fit that change its result (part of the cache key).
#[derive(Debug, Clone, Serialize)]
pub struct FitSettings {
    pub gpu: String,
    pub model: String,
    pub tensor_parallel: u32,
    pub seed: u64,
}

fn median_col(op: &str) -> String {
    format!("time_stats.{op}.median")
}

/// The times (ms) of column `col` at the rows `keep`; a negative one is an error naming the file, the
/// column and the row.
fn kept_times(t: &CsvTable, col: &str, keep: &[usize]) -> Result<Vec<f64>> {
    let v = t.f64_column(col)?;
    if let Some(&i) = keep.iter().find(|&&i| v[i] < 0.0) {
        return Err(Error::Column {
            path: t.path.clone(),
            column: col.to_string(),
            row: Some(i + 1),
            message: format!("negative time {} ms", v[i]),
        });
    }
    Ok(keep.iter().map(|&i| v[i]).collect())
}

/// Rows of mlp.csv for one TP degree: num_tokens and each op's median time (ms).
struct MlpRows {
    tokens: Vec<f64>,
    ops: Vec<(String, Vec<f64>)>,
}

fn read_mlp(path: &Path, tp: u32) -> Result<MlpRows> {
    let t = CsvTable::read(path)?;
    let tps = t.f64_column("num_tensor_parallel_workers")?;
    let tokens_all = t.f64_column("num_tokens")?;
    let keep: Vec<usize> = (0..t.rows()).filter(|&i| tps[i] == tp as f64).collect();
    if keep.is_empty() {
        let mut avail: Vec<u64> = tps.iter().map(|v| *v as u64).collect();
        avail.sort_unstable();
        avail.dedup();
        return Err(Error::Column {
            path: path.to_path_buf(),
            column: "num_tensor_parallel_workers".into(),
            row: None,
            message: format!("no rows for tensor_parallel = {tp} (the profile has {avail:?})"),
        });
    }
    let mut ops = Vec::new();
    for op in LAYER_OPS.iter().chain(OPTIONAL_LAYER_OPS.iter()) {
        let col = median_col(op);
        if !t.has_column(&col) && OPTIONAL_LAYER_OPS.contains(op) {
            continue;
        }
        ops.push((op.to_string(), kept_times(&t, &col, &keep)?));
    }
    let tokens: Vec<f64> = keep.iter().map(|&i| tokens_all[i]).collect();
    if let Some(i) = keep.iter().find(|&&i| tokens_all[i] < 1.0) {
        return Err(Error::Column {
            path: path.to_path_buf(),
            column: "num_tokens".into(),
            row: Some(i + 1),
            message: format!("{} is not a positive token count", tokens_all[*i]),
        });
    }
    Ok(MlpRows { tokens, ops })
}

/// Rows of a network profile for `workers` GPUs on one node: (bytes, median ms).
fn read_comm(path: &Path, op: &str, workers: u32) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
    let t = CsvTable::read(path)?;
    let nw = t.f64_column("num_workers")?;
    let dpn = t.f64_column("devices_per_node")?;
    let size = t.f64_column("size")?;
    let time = t.f64_column(&median_col(op))?;
    let mut rows: Vec<(f64, f64)> = (0..t.rows())
        .filter(|&i| nw[i] == workers as f64 && dpn[i] == workers as f64)
        .map(|i| (size[i], time[i]))
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(Some(rows.into_iter().unzip()))
}

/// Rows of cpu_overheads.csv for `model` at `tp`: batch sizes and each [`CPU_OVERHEAD_OPS`] column (ms).
/// `None` when the file has no rows for them.
#[allow(clippy::type_complexity)]
fn read_cpu_overheads(
    path: &Path,
    model: &str,
    tp: u32,
) -> Result<Option<(Vec<f64>, Vec<(String, Vec<f64>)>)>> {
    let t = CsvTable::read(path)?;
    let models = t.text_values("model_name")?;
    let tps = t.f64_column("tensor_parallel_degree")?;
    let batch = t.f64_column("batch_size")?;
    let keep: Vec<usize> = (0..t.rows())
        .filter(|&i| models[i] == model && tps[i] == tp as f64)
        .collect();
    if keep.is_empty() {
        return Ok(None);
    }
    if let Some(&i) = keep.iter().find(|&&i| batch[i] < 1.0) {
        return Err(Error::Column {
            path: path.to_path_buf(),
            column: "batch_size".into(),
            row: Some(i + 1),
            message: format!("{} is not a positive batch size", batch[i]),
        });
    }
    let mut ops = Vec::new();
    for (op, col) in CPU_OVERHEAD_OPS {
        ops.push((op.to_string(), kept_times(&t, col, &keep)?));
    }
    Ok(Some((keep.iter().map(|&i| batch[i]).collect(), ops)))
}

/// Fits forest and quadratic to (x, y); returns the report and the chosen forest fitted on all rows.
fn fit_op(
    op: &str,
    source: &Path,
    feature: &str,
    x: &[f64],
    y: &[f64],
    seed: u64,
) -> Result<(OpReport, Forest)> {
    // Held-out test: every 5th row (deterministic), never seen by model selection.
    let (train, test) = fold_split(x.len(), 5, 2);
    let pick = |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let (xtr, ytr, xte, yte) = (
        pick(x, &train),
        pick(y, &train),
        pick(x, &test),
        pick(y, &test),
    );
    let (params, cv) = select_forest(&xtr, &ytr, seed)?;
    let f = Forest::fit(&xtr, &ytr, params, seed)?;
    let fp = f.predict(&xte)?;
    let q = Quadratic::fit(&xtr, &ytr)?;
    let qp: Vec<f64> = xte.iter().map(|v| q.eval(*v)).collect();
    let report = OpReport {
        op: op.to_string(),
        source: source.display().to_string(),
        rows: x.len(),
        feature: feature.to_string(),
        feature_max: x.iter().cloned().fold(0.0, f64::max),
        forest_params: params,
        forest_cv_mape_pct: cv,
        quadratic_cv_mape_pct: quadratic_cv_mape(&xtr, &ytr)?,
        model: "forest".into(),
        forest_test_mape_pct: mape(&fp, &yte),
        forest_test_max_err_ms: max_abs_err(&fp, &yte),
        quadratic_test_mape_pct: mape(&qp, &yte),
        quadratic_test_max_err_ms: max_abs_err(&qp, &yte),
    };
    Ok((report, Forest::fit(x, y, params, seed)?))
}

/// Which regressions may be tabulated for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidates {
    /// The forest (hundreds of profile rows: it follows any shape).
    Forest,
    /// Forest or quadratic, whichever has the lower cross-validated error: with a dozen rows a forest
    /// is a staircase that cannot follow a linear trend, and a low-order polynomial often does better.
    ForestOrQuadratic,
}

/// Fits one operation against an integer feature (tokens, batch size) and tabulates the chosen
/// regression at every value from 1 to the largest profiled one, with a linear tail beyond.
fn fit_table(
    op: &str,
    source: &Path,
    feature: &str,
    (x, y): (&[f64], &[f64]),
    seed: u64,
    candidates: Candidates,
) -> Result<(OpTable, OpReport)> {
    let (mut report, forest) = fit_op(op, source, feature, x, y, seed)?;
    let profiled_max = report.feature_max;
    let grid: Vec<f64> = (1..=profiled_max.max(1.0) as usize)
        .map(|t| t as f64)
        .collect();
    let values = if candidates == Candidates::ForestOrQuadratic
        && report.quadratic_cv_mape_pct < report.forest_cv_mape_pct
    {
        report.model = "quadratic".into();
        let q = Quadratic::fit(x, y)?;
        // Below the smallest profiled value the time is held at its value there, as the forest's is:
        // the data say nothing about how much cheaper a smaller batch is.
        let lo = x.iter().cloned().fold(f64::INFINITY, f64::min);
        grid.iter().map(|v| q.eval(v.max(lo)).max(0.0)).collect()
    } else {
        forest.predict(&grid)?
    };
    let edge = values.last().copied().unwrap_or(0.0);
    let table = OpTable {
        op: op.to_string(),
        profiled_max,
        tail_ms_per_token: tail_slope(x, y, profiled_max, edge),
        values_ms: values,
    };
    Ok((table, report))
}

/// Log-spaced grid from `lo` to `hi` (inclusive), `n` points.
fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64))
        .collect()
}

fn fit_comm(
    path: &Path,
    op: &str,
    workers: u32,
    seed: u64,
) -> Result<Option<(CommTable, OpReport)>> {
    let Some((x, y)) = read_comm(path, op, workers)? else {
        return Ok(None);
    };
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let (report, forest) = fit_op(op, path, "ln(size_bytes)", &lx, &y, seed)?;
    let grid = log_grid(x[0], x[x.len() - 1], 256);
    let lg: Vec<f64> = grid.iter().map(|v| v.ln()).collect();
    let values_ms = forest.predict(&lg)?;
    Ok(Some((
        CommTable {
            op: op.to_string(),
            source: path.display().to_string(),
            bytes: grid,
            values_ms,
        },
        report,
    )))
}

/// The cache folder: $SIMWATT_CACHE_DIR, else $XDG_CACHE_HOME/simwatt, else $HOME/.cache/simwatt.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SIMWATT_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("simwatt");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/simwatt"))
        .unwrap_or_else(|| std::env::temp_dir().join("simwatt-cache"))
}

fn cache_key(cache: &TableCache, src: &ProfileSources, settings: &FitSettings) -> Result<String> {
    let mut text = serde_json::to_string(settings).map_err(|e| Error::Internal(e.to_string()))?;
    text.push_str(env!("CARGO_PKG_VERSION"));
    text.push_str(&serde_json::to_string(&super::fit::FOREST_GRID).unwrap_or_default());
    for p in [
        Some(&src.mlp),
        src.all_reduce.as_ref(),
        src.send_recv.as_ref(),
        Some(&src.attention),
        src.cpu_overheads.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        text.push_str(&cache.key_sha(p)?);
    }
    Ok(sha256_hex(text.as_bytes()))
}

/// A profile file's length, modification time and SHA-256.
type FileStamp = (u64, Option<SystemTime>, String);

/// The fitted execution-time tables and profile-file hashes one command shares between its runs. A
/// driver makes one, passes it by reference to every run (it is `Sync`: a sweep's threads share it) and
/// may warm it first, so that tables are fitted once per (device, model, TP) and not once per run. Behind
/// it sits the on-disk cache of fitted tables, a folder of `latency-<key>.json` files.
#[derive(Debug)]
pub struct TableCache {
    /// The on-disk cache folder.
    dir: PathBuf,
    /// SHA-256 of each profile file read, kept while its length and modification time stay the same: a
    /// sweep prices thousands of runs from the same few files, and hashing them for every run took most
    /// of its time.
    hashes: Mutex<HashMap<PathBuf, FileStamp>>,
    /// Tables loaded or fitted so far, by cache key; a key's slot is held while its tables are fitted,
    /// so two runs that need the same tables at once fit them once.
    tables: Mutex<HashMap<String, Arc<Mutex<Option<FittedTables>>>>>,
    /// Tables fitted from the profiles (not loaded from memory or disk).
    fits: AtomicUsize,
    /// The on-disk index of profile files' hashes, when cache keys may be taken from it
    /// ([`TableCache::with_hash_index`]).
    index: Option<Mutex<HashIndex>>,
    /// Hashes taken from the index for cache keys, each being checked by hashing its file on a
    /// background thread: the hash taken, and the thread.
    verifying: Mutex<HashMap<PathBuf, Verifying>>,
}

/// A hash taken from the [`HashIndex`], and the background thread hashing its file.
type Verifying = (String, std::thread::JoinHandle<std::io::Result<String>>);

/// The file in the cache folder that holds the [`HashIndex`] of profile files.
const HASH_INDEX: &str = "profile-hashes.json";

impl Default for TableCache {
    fn default() -> Self {
        Self::new(cache_dir())
    }
}

impl TableCache {
    /// An empty cache over the on-disk cache folder `dir` (normally [`cache_dir`]).
    pub fn new(dir: PathBuf) -> Self {
        TableCache {
            dir,
            hashes: Mutex::default(),
            tables: Mutex::default(),
            fits: AtomicUsize::new(0),
            index: None,
            verifying: Mutex::default(),
        }
    }

    /// The same, taking the hashes of profile files that name fitted tables from the cache folder's
    /// index of hashes (by size, modification time and inode) where it holds them, so a run need not
    /// read megabytes of profiles before it starts. Each hash so taken is checked by hashing its file
    /// on a background thread, and [`TableCache::verify`] (or [`TableCache::file_sha`] of the file)
    /// waits for that check: a driver calls it before it reports anything the tables priced.
    pub fn with_hash_index(mut self) -> Self {
        self.index = Some(Mutex::new(HashIndex::load(&self.dir.join(HASH_INDEX))));
        self
    }

    /// Waits for the checks of the hashes taken from the index: an error names a file whose contents
    /// are no longer those its recorded hash was taken from (its entry is dropped; a rerun hashes it).
    pub fn verify(&self) -> Result<()> {
        let files: Vec<PathBuf> = match self.verifying.lock() {
            Ok(v) => v.keys().cloned().collect(),
            Err(_) => return Err(Error::Internal("the table cache is poisoned".into())),
        };
        for f in files {
            self.file_sha(&f)?;
        }
        Ok(())
    }

    /// SHA-256 of `p` for a cache key: from the index when it holds it (the file then hashed on a
    /// background thread, for [`TableCache::verify`]), else [`TableCache::file_sha`].
    fn key_sha(&self, p: &Path) -> Result<String> {
        let Some(index) = &self.index else {
            return self.file_sha(p);
        };
        let taken = self.verifying.lock().ok();
        if let Some(sha) = taken.and_then(|v| v.get(p).map(|(sha, _)| sha.clone())) {
            return Ok(sha);
        }
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
        let recorded = index
            .lock()
            .ok()
            .and_then(|i| i.get(&abs, &meta).map(str::to_string));
        let Some(sha) = recorded else {
            let (sha, hashed_at) = self.hash(p)?;
            if let Some(at) = hashed_at {
                if let Ok(mut i) = index.lock() {
                    // Only a cache: a failed write costs a hash next time.
                    if i.put(&abs, &meta, &sha, at) {
                        let _ = i.save();
                    }
                }
            }
            return Ok(sha);
        };
        let file = p.to_path_buf();
        let check = std::thread::spawn(move || crate::digest::sha256_file_hex(&file));
        if let Ok(mut v) = self.verifying.lock() {
            v.insert(p.to_path_buf(), (sha.clone(), check));
        }
        Ok(sha)
    }

    /// How many tables this cache has fitted from the profiles.
    pub fn fits(&self) -> usize {
        self.fits.load(Ordering::Relaxed)
    }

    /// SHA-256 of the file `p`, hashed once while its length and modification time stay the same.
    /// A hash taken from the index for `p` is first checked (waiting for its background hashing).
    pub fn file_sha(&self, p: &Path) -> Result<String> {
        self.hash(p).map(|(sha, _)| sha)
    }

    /// [`TableCache::file_sha`], and when the file was read for it, the moment before.
    fn hash(&self, p: &Path) -> Result<(String, Option<SystemTime>)> {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        let stamp = (meta.len(), meta.modified().ok());
        let pending = self.verifying.lock().ok().and_then(|mut v| v.remove(p));
        if let Some((taken, check)) = pending {
            let sha = check
                .join()
                .map_err(|_| Error::Internal(format!("{}: hashing panicked", p.display())))?
                .map_err(|e| Error::io(p, e))?;
            if sha != taken {
                if let (Some(index), Ok(abs)) = (&self.index, std::path::absolute(p)) {
                    if let Ok(mut i) = index.lock() {
                        i.remove(&abs);
                        let _ = i.save();
                    }
                }
                return Err(Error::io(
                    p,
                    std::io::Error::other(format!(
                        "its SHA-256 is {sha}, not the {taken} recorded in {} for its size and \
                         modification time, so the run may have used tables fitted on other \
                         contents; the entry is dropped: run it again",
                        self.dir.join(HASH_INDEX).display()
                    )),
                ));
            }
            if let Ok(mut m) = self.hashes.lock() {
                m.insert(p.to_path_buf(), (stamp.0, stamp.1, sha.clone()));
            }
            return Ok((sha, None));
        }
        if let Ok(m) = self.hashes.lock() {
            if let Some((len, modified, sha)) = m.get(p) {
                if (*len, *modified) == stamp {
                    return Ok((sha.clone(), None));
                }
            }
        }
        let hashed_at = SystemTime::now();
        let sha = crate::digest::sha256_file_hex(p).map_err(|e| Error::io(p, e))?;
        if let Ok(mut m) = self.hashes.lock() {
            m.insert(p.to_path_buf(), (stamp.0, stamp.1, sha.clone()));
        }
        Ok((sha, Some(hashed_at)))
    }

    /// The slot of cache key `key`, made empty when new.
    fn slot(&self, key: &str) -> Result<Arc<Mutex<Option<FittedTables>>>> {
        let mut m = self
            .tables
            .lock()
            .map_err(|_| Error::Internal("the table cache is poisoned".into()))?;
        Ok(Arc::clone(m.entry(key.to_string()).or_default()))
    }
}

/// Fits every table for `settings` from `src`, or takes them from `cache`: from its memory, else from
/// its folder on disk (`use_cache` false: fitted afresh, and neither kept nor written).
/// `calibration_device` is the device the attention profile was measured on.
pub fn fit_tables(
    cache: &TableCache,
    src: &ProfileSources,
    settings: &FitSettings,
    calibration_device: &crate::catalog::DeviceSpec,
    use_cache: bool,
) -> Result<FittedTables> {
    let key = cache_key(cache, src, settings)?;
    let file = cache.dir.join(format!("latency-{}.json", &key[..32]));
    if !use_cache {
        return fit_afresh(cache, src, settings, calibration_device, &file);
    }
    let slot = cache.slot(&key)?;
    let mut slot = slot
        .lock()
        .map_err(|_| Error::Internal("the table cache is poisoned".into()))?;
    if let Some(t) = slot.as_ref() {
        return Ok(t.clone());
    }
    if let Ok(text) = std::fs::read_to_string(&file) {
        if let Ok(mut t) = serde_json::from_str::<FittedTables>(&text) {
            t.report.from_cache = true;
            *slot = Some(t.clone());
            return Ok(t);
        }
    }
    let fitted = fit_afresh(cache, src, settings, calibration_device, &file)?;
    // A failed cache write costs only a refit next time; write to a temp file and rename so a
    // concurrent reader never sees half a file.
    let dir = &cache.dir;
    let _ = std::fs::create_dir_all(dir);
    let tmp = dir.join(format!(
        ".latency-{}.{}.tmp",
        &key[..32],
        std::process::id()
    ));
    if let Ok(text) = serde_json::to_string(&fitted) {
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &file);
        }
    }
    // Later runs take the tables as they would from the disk cache.
    let mut cached = fitted.clone();
    cached.report.from_cache = true;
    *slot = Some(cached);
    Ok(fitted)
}

/// Fits every table for `settings` from `src`; `file` is where the cache keeps them (for the report).
fn fit_afresh(
    cache: &TableCache,
    src: &ProfileSources,
    settings: &FitSettings,
    calibration_device: &crate::catalog::DeviceSpec,
    file: &Path,
) -> Result<FittedTables> {
    cache.fits.fetch_add(1, Ordering::Relaxed);
    let t0 = Instant::now();
    let rows = read_mlp(&src.mlp, settings.tensor_parallel)?;
    let mut ops = Vec::new();
    let mut tables = Vec::new();
    // Tables cover every token count up to the largest profiled one; larger batches follow each
    // operation's linear tail at lookup time.
    for (op, y) in &rows.ops {
        let (table, report) = fit_table(
            op,
            &src.mlp,
            "num_tokens",
            (&rows.tokens, y),
            settings.seed,
            Candidates::Forest,
        )?;
        tables.push(table);
        ops.push(report);
    }
    let mut cpu_overheads = Vec::new();
    if let Some(path) = &src.cpu_overheads {
        if let Some((batch, cols)) =
            read_cpu_overheads(path, &settings.model, settings.tensor_parallel)?
        {
            for (op, y) in &cols {
                let (table, report) = fit_table(
                    op,
                    path,
                    "batch_size",
                    (&batch, y),
                    settings.seed,
                    Candidates::ForestOrQuadratic,
                )?;
                cpu_overheads.push(table);
                ops.push(report);
            }
        }
    }
    let mut all_reduce = None;
    if settings.tensor_parallel > 1 {
        if let Some(p) = &src.all_reduce {
            if let Some((t, r)) =
                fit_comm(p, "all_reduce", settings.tensor_parallel, settings.seed)?
            {
                ops.push(r);
                all_reduce = Some(t);
            }
        }
    }
    let mut send_recv = None;
    if let Some(p) = &src.send_recv {
        if let Some((t, r)) = fit_comm(p, "send_recv", 2, settings.seed)? {
            ops.push(r);
            send_recv = Some(t);
        }
    }
    let (attention, attention_report) =
        AttentionModel::calibrate(&src.attention, calibration_device)?;
    let fitted = FittedTables {
        simwatt_version: env!("CARGO_PKG_VERSION").to_string(),
        layer_ops: tables,
        cpu_overheads,
        all_reduce,
        send_recv,
        attention,
        report: FitReport {
            gpu: settings.gpu.clone(),
            model: settings.model.clone(),
            tensor_parallel: settings.tensor_parallel,
            ops,
            attention: attention_report,
            fit_seconds: t0.elapsed().as_secs_f64(),
            cache_file: file.display().to_string(),
            from_cache: false,
        },
    };
    Ok(fitted)
}

/// Execution times from fitted tables; FLOPs and bytes (for power) and the output head from the
/// roofline of the same configuration.
pub struct ProfilePredictor {
    tables: FittedTables,
    roofline: Roofline,
    model: crate::catalog::ModelSpec,
    device: crate::catalog::DeviceSpec,
    tp: u32,
    stages: u32,
    iteration_overhead_ms: f64,
    counts: super::RangeCounts,
}

impl ProfilePredictor {
    pub fn new(
        tables: FittedTables,
        roofline: Roofline,
        model: &crate::catalog::ModelSpec,
        device: &crate::catalog::DeviceSpec,
        tp: u32,
        stages: u32,
        iteration_overhead_ms: f64,
    ) -> Self {
        ProfilePredictor {
            tables,
            roofline,
            model: model.clone(),
            device: device.clone(),
            tp,
            stages,
            iteration_overhead_ms,
            counts: super::RangeCounts::new(&COUNTED_OPS),
        }
    }

    /// Host overhead of an iteration of `batch_size` sequences, ms: the fitted components' sum, else
    /// the constant; and whether the prediction is beyond the profile (`None`: not a prediction to
    /// count, the constant).
    fn cpu_overhead_ms(&self, batch_size: u32) -> (f64, Option<bool>) {
        let Some(first) = self.tables.cpu_overheads.first() else {
            return (self.iteration_overhead_ms, None);
        };
        let b = batch_size.max(1);
        let ms = self.tables.cpu_overheads.iter().map(|t| t.eval_ms(b)).sum();
        (ms, Some(b as f64 > first.profiled_max))
    }

    pub fn report(&self) -> &FitReport {
        &self.tables.report
    }

    /// Sum of the per-layer op tables at `tokens`, ms, and whether `tokens` is beyond the tables
    /// (`None` for no tokens: nothing predicted). The linear layers' tables (profiled with 16-bit
    /// weights and arithmetic) are scaled by the roofline's ratio of their time at the run's precision
    /// to their time at 16 bits ([`Roofline::linear_scale`], exactly 1 at 16 bits).
    fn layer_ops_ms(&self, tokens: u32) -> (f64, Option<bool>) {
        if tokens == 0 {
            return (0.0, None);
        }
        let beyond = self
            .tables
            .layer_ops
            .first()
            .is_some_and(|t| tokens as usize > t.values_ms.len());
        let scale = self.roofline.linear_scale(tokens);
        let ms = if self.model.moe.is_some() {
            // A mixture-of-experts model's MLP comes from the roofline ([`MOE_MLP_OPS`]).
            self.tables
                .layer_ops
                .iter()
                .filter(|t| !MOE_MLP_OPS.contains(&t.op.as_str()))
                .map(|t| {
                    let ms = t.eval_ms(tokens);
                    if LINEAR_OPS.contains(&t.op.as_str()) {
                        ms * scale
                    } else {
                        ms
                    }
                })
                .sum()
        } else if scale == 1.0 {
            self.tables
                .layer_ops
                .iter()
                .map(|t| t.eval_ms(tokens))
                .sum()
        } else {
            self.tables
                .layer_ops
                .iter()
                .map(|t| {
                    let ms = t.eval_ms(tokens);
                    if LINEAR_OPS.contains(&t.op.as_str()) {
                        ms * scale
                    } else {
                        ms
                    }
                })
                .sum()
        };
        (ms, Some(beyond))
    }

    /// A stage's cost for batch `s` but for the decode attention, which [`ProfileParts::at`] adds for
    /// a given decode context, and which predictions it makes. Reads nothing of the decode context
    /// (`decode_context_sum`, `decode_max_context`), so every step of a run of decode steps shares it.
    #[inline]
    fn parts(&self, s: &BatchShape, stage: u32) -> ProfileParts {
        let mut counted = [None; COUNTED_OPS.len()];
        let layers = (self.model.num_layers / self.stages) as f64;
        let tokens = s.total_tokens();
        let act_bytes = tokens as f64
            * self.model.hidden_size as f64
            * self.roofline.precision().activation_bytes;
        if s.prefill_seqs > 0 {
            counted[ATTENTION_PREFILL] =
                Some(s.prefill_max_context as f64 > self.tables.report.attention.max_context);
        }
        let (layer_ops_ms, linear) = self.layer_ops_ms(tokens);
        counted[LINEAR_LAYERS] = linear;
        let attention = self.tables.attention.parts(
            s,
            &self.model,
            &self.device,
            self.tp,
            self.roofline.precision().kv_bytes,
        );
        // Sliding-window layers of this stage: their prefill queries attend to at most a window of
        // keys each, their decode sequences read at most a window each (as in the roofline).
        let per_stage = self.model.num_layers / self.stages;
        let sliding_layers = self
            .model
            .sliding_layers_in(stage.saturating_mul(per_stage), per_stage);
        let sliding = self
            .model
            .sliding_window
            .filter(|_| sliding_layers > 0)
            .map(|w| {
                let mut windowed = *s;
                windowed.prefill_attn_pairs =
                    w.prefill_pairs(s.prefill_attn_pairs, s.prefill_tokens);
                SlidingAttention {
                    parts: self.tables.attention.parts(
                        &windowed,
                        &self.model,
                        &self.device,
                        self.tp,
                        self.roofline.precision().kv_bytes,
                    ),
                    layers: sliding_layers as f64,
                    window_cap: w.decode_cap(s.decode_seqs),
                }
            });
        let all_reduce_ms = (self.tp > 1).then(|| {
            2.0 * match &self.tables.all_reduce {
                Some(t) => t.eval_ms(act_bytes),
                None => self.roofline.all_reduce_s(act_bytes) * 1e3,
            }
        });
        let moe_ms = self.model.moe.is_some().then(|| {
            let per_stage = self.model.num_layers / self.stages;
            let first = stage.saturating_mul(per_stage);
            (first..first.saturating_add(per_stage))
                .map(|l| self.roofline.mlp_s(tokens, self.model.is_moe_layer(l)) * 1e3)
                .sum::<f64>()
        });
        let mut host_ms = 0.0;
        let end_ms = if stage + 1 == self.stages {
            let (ms, cpu) = self.cpu_overhead_ms(s.prefill_seqs + s.decode_seqs);
            host_ms = ms;
            counted[CPU_OVERHEAD] = cpu;
            self.roofline.lm_head_s(s) * 1e3
        } else {
            let b = act_bytes / self.tp as f64;
            match &self.tables.send_recv {
                Some(t) => {
                    counted[SEND_RECV] = Some(b > t.bytes[t.bytes.len() - 1]);
                    t.eval_ms(b)
                }
                None => self.roofline.send_recv_s(b) * 1e3,
            }
        };
        ProfileParts {
            roofline: self.roofline.stage_parts(s, stage),
            layer_ops_ms,
            attention,
            sliding,
            all_reduce_ms,
            layers,
            moe_ms,
            end_ms,
            host_ns: crate::units::round_ns(host_ms * 1e6),
            counted,
            decode: s.decode_seqs > 0,
        }
    }

    /// Counts the predictions of `steps` stages priced from `p`, `decode_beyond` of whose decode
    /// contexts are beyond the attention profile.
    fn count(&self, p: &ProfileParts, steps: u64, decode_beyond: u64) {
        for (i, c) in p.counted.iter().enumerate() {
            if let Some(beyond) = *c {
                self.counts
                    .record_n(i, steps, if beyond { steps } else { 0 });
            }
        }
        if p.decode {
            self.counts.record_n(ATTENTION_DECODE, steps, decode_beyond);
        }
    }

    /// Whether a decode context of at most `max_context` tokens is beyond the attention profile.
    fn decode_beyond(&self, max_context: u32) -> bool {
        max_context as f64 > self.tables.report.attention.max_context
    }
}

/// The attention of a stage's sliding-window layers ([`ProfilePredictor::parts`]).
#[derive(Debug, Clone, Copy)]
struct SlidingAttention {
    parts: AttentionParts,
    /// Sliding layers in the stage.
    layers: f64,
    /// Decode sequences x window: the most KV-cache tokens their decode attention reads.
    window_cap: u64,
}

/// A stage's cost but for the decode attention ([`ProfilePredictor::parts`]): what every step of a
/// run of decode steps shares, and the predictions each step counts.
#[derive(Debug, Clone, Copy)]
struct ProfileParts {
    /// FLOPs and bytes (for power) from the roofline.
    roofline: StageParts,
    /// Per-layer operation tables, ms.
    layer_ops_ms: f64,
    attention: AttentionParts,
    /// The stage's sliding-window layers' attention, when it has any.
    sliding: Option<SlidingAttention>,
    /// Per layer, the tensor-parallel all-reduces (with TP), ms.
    all_reduce_ms: Option<f64>,
    layers: f64,
    /// The stage's mixture-of-experts MLPs, ms (an MoE model).
    moe_ms: Option<f64>,
    /// The output head (last stage) or the send to the next stage, ms.
    end_ms: f64,
    host_ns: u64,
    /// Per operation of [`COUNTED_OPS`] predicted (the decode attention aside, whose range depends on
    /// the context): whether beyond the profile.
    counted: [Option<bool>; COUNTED_OPS.len()],
    /// The batch has decode sequences (the decode attention is predicted).
    decode: bool,
}

impl ProfileParts {
    /// The stage's cost when its decode sequences' contexts sum to `context_sum` tokens: the parts
    /// and the decode attention added in one fixed order, so that every caller gets the same bits.
    #[inline]
    fn at(&self, context_sum: u64) -> StageCost {
        let rl = self.roofline.at(context_sum);
        let mut ms = match &self.sliding {
            None => {
                let mut per_layer_ms = self.layer_ops_ms + self.attention.at(context_sum);
                if let Some(ar) = self.all_reduce_ms {
                    per_layer_ms += ar;
                }
                per_layer_ms * self.layers
            }
            Some(w) => {
                let mut per_layer_ms = self.layer_ops_ms;
                if let Some(ar) = self.all_reduce_ms {
                    per_layer_ms += ar;
                }
                per_layer_ms * self.layers
                    + self.attention.at(context_sum) * (self.layers - w.layers)
                    + w.parts.at(context_sum.min(w.window_cap)) * w.layers
            }
        };
        if let Some(moe) = self.moe_ms {
            ms += moe;
        }
        ms += self.end_ms;
        StageCost {
            time_ns: duration_ns(ms * 1e6),
            host_ns: self.host_ns,
            flops: rl.flops,
            bytes: rl.bytes,
            idle_ns: 0,
            cpu_ns: 0,
            cpu_flops: 0.0,
            cpu_bytes: 0.0,
        }
    }
}

impl CostModel for ProfilePredictor {
    fn stage_cost(&self, s: &BatchShape, stage: u32) -> StageCost {
        let p = self.parts(s, stage);
        let beyond = p.decode && self.decode_beyond(s.decode_max_context);
        self.count(&p, 1, beyond as u64);
        p.at(s.decode_context_sum)
    }

    /// The stage's parts once, the decode attention per step.
    fn run_costs(&self, first: &BatchShape, run: &DecodeRun, stage: u32, out: &mut Vec<StageCost>) {
        let p = self.parts(first, stage);
        let mut beyond = 0u64;
        out.extend((0..run.steps).map(|j| {
            let s = run.shape_of_step(first, j);
            beyond += (p.decode && self.decode_beyond(s.decode_max_context)) as u64;
            p.at(s.decode_context_sum)
        }));
        self.count(&p, run.steps as u64, beyond);
    }
}

impl Predictor for ProfilePredictor {
    fn info(&self) -> PredictorInfo {
        let p = self.roofline.precision();
        let kv_note = if p.kv_bytes == 2.0 {
            String::new()
        } else {
            format!(
                "; KV cache {} ({} B per element) in place of the profile's 2",
                p.kv_cache, p.kv_bytes
            )
        };
        let mut sources: Vec<(String, String)> = self
            .tables
            .report
            .ops
            .iter()
            .map(|r| {
                if self.model.moe.is_some() && MOE_MLP_OPS.contains(&r.op.as_str()) {
                    return (
                        r.op.clone(),
                        format!(
                            "roofline at {}: a mixture-of-experts MLP (router, top-k and shared \
                             experts' FLOPs, weights of the expected distinct experts the batch \
                             touches under uniform routing), not the forest on {}, which was \
                             fitted on a dense MLP",
                            p.describe(),
                            r.source
                        ),
                    );
                }
                let mut how = format!("random forest on {}", r.source);
                if LINEAR_OPS.contains(&r.op.as_str()) && !p.linear_layers_as_profiled() {
                    how.push_str(&format!(
                        ", profiled with 16-bit weights and arithmetic, so scaled by the roofline's \
                         ratio of this layer's time at {} to its time at 16 bits",
                        p.describe()
                    ));
                }
                (r.op.clone(), how)
            })
            .collect();
        sources.push((
            "attention_prefill".into(),
            format!(
                "roofline calibrated on {}",
                self.tables.report.attention.source
            ),
        ));
        sources.push((
            "attention_decode".into(),
            format!(
                "roofline calibrated on {}{kv_note}",
                self.tables.report.attention.source
            ),
        ));
        if self.tp > 1 && self.tables.all_reduce.is_none() {
            sources.push(("all_reduce".into(), "roofline".into()));
        }
        if self.stages > 1 && self.tables.send_recv.is_none() {
            sources.push(("send_recv".into(), "roofline".into()));
        }
        sources.push(("lm_head".into(), "roofline".into()));
        let cpu = match self.tables.report.ops.iter().find(|o| o.op == "cpu_schedule") {
            Some(o) => format!(
                "forest or quadratic (by cross-validated error) on {} (schedule, sampler, input \
                 preparation, output processing, Ray communication) against batch size",
                o.source
            ),
            None => format!(
                "constant iteration_overhead_ms ({} ms): no CPU-overhead profile covers this model at \
                 TP {} on this device, or predictor.cpu_overheads is constant",
                self.iteration_overhead_ms, self.tp
            ),
        };
        sources.push(("cpu_overhead".into(), cpu));
        PredictorInfo {
            kind: "profiles".into(),
            note: format!(
                "per-operation random forests fitted on Vidur profiles of {} on {} (TP {}); attention from a \
                 roofline calibrated on a measured A100 attention profile",
                self.tables.report.model, self.tables.report.gpu, self.tp
            ),
            sources,
            parameters: serde_json::json!({
                "iteration_overhead_ms": self.iteration_overhead_ms,
                "fit_seconds": self.tables.report.fit_seconds,
                "from_cache": self.tables.report.from_cache,
                "cache_file": self.tables.report.cache_file,
            }),
            out_of_range: self.counts.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_taken_from_the_index_is_checked_and_a_wrong_one_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mlp.csv");
        let bytes = b"num_tokens,time_ms\n1,2\n";
        std::fs::write(&f, bytes).unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        let h = std::fs::File::options().write(true).open(&f).unwrap();
        h.set_modified(old).unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        let abs = std::path::absolute(&f).unwrap();
        let real = sha256_hex(bytes);
        let wrong = "0".repeat(64);
        let mut index = HashIndex::load(&dir.path().join(HASH_INDEX));
        index.put(&abs, &meta, &wrong, SystemTime::now());
        index.save().unwrap();
        let cache = || TableCache::new(dir.path().to_path_buf()).with_hash_index();

        // The key takes the recorded hash; the check finds it wrong, names both and drops it.
        let c = cache();
        assert_eq!(c.key_sha(&f).unwrap(), wrong);
        let e = c.verify().unwrap_err().to_string();
        assert!(
            e.contains("mlp.csv") && e.contains(&real) && e.contains(&wrong),
            "{e}"
        );
        assert_eq!(
            HashIndex::load(&dir.path().join(HASH_INDEX)).get(&abs, &meta),
            None
        );

        // The next run hashes the file and records it ...
        let c = cache();
        assert_eq!(c.key_sha(&f).unwrap(), real);
        assert!(c.verifying.lock().unwrap().is_empty());
        c.verify().unwrap();
        let index = HashIndex::load(&dir.path().join(HASH_INDEX));
        assert_eq!(index.get(&abs, &meta), Some(real.as_str()));

        // ... and the one after takes it from the index, checked on a thread.
        let c = cache();
        assert_eq!(c.key_sha(&f).unwrap(), real);
        assert!(c.verifying.lock().unwrap().contains_key(&f));
        assert_eq!(c.file_sha(&f).unwrap(), real);
        assert!(c.verifying.lock().unwrap().is_empty());
        c.verify().unwrap();

        // Without the index, nothing is recorded or taken from it.
        let plain = TableCache::new(dir.path().join("other"));
        assert_eq!(plain.key_sha(&f).unwrap(), real);
        assert!(!dir.path().join("other").join(HASH_INDEX).exists());
    }
}
