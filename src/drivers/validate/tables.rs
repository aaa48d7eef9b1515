//! Measured benchmark tables replayed through simwatt: ML.ENERGY leaderboard v2 runs (all requests at
//! once under a batch cap) and LLM-Inference-Bench static batches (Argonne).
//!
//! Input: a config tree and the table's selection (GPU, task or framework, model). Each selected row is
//! simulated with the config's model, device, scheduler and power profile, its batch cap and
//! tensor-parallel degree taken from the row, its requests rebuilt as [`crate::drivers::fit_power::replay`] rebuilds
//! them for the power fit. Output: a [`CaseResult`] with one [`Point`] per row: throughput, mean power and
//! J per output token (with the two baselines), and the inter-token latency (ML.ENERGY) or batch
//! latency (Argonne).

use super::{
    replay_config, replay_scenario, simulated_setup, CaseResult, MetricValue, Point, PowerTimeline,
};
use crate::drivers::fit_power::replay::{
    mlenergy_requests, prompt_chars, prompt_tokens_of, tokens_by,
};
use crate::drivers::{simulate, Caches};
use crate::error::{Error, Result};
use crate::measured::logs;
use crate::measured::mlenergy_v3::{read_mlenergy_v3, MlEnergyV3Row};
use crate::power::PowerProfile;
use crate::units::ns_to_secs;
use crate::workload::RequestSpec;
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Rows of the ML.ENERGY leaderboard v2 table to replay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlEnergySpec {
    /// `mlenergy_v2_llm_configurations.csv`.
    pub path: PathBuf,
    /// The exact prompt set (ShareGPT JSON) whose first human turns were sent.
    pub prompts: PathBuf,
    /// Rows whose `GPU` is this.
    pub gpu_name: String,
    /// Rows whose `task` is this.
    pub task: String,
    /// Rows whose `Model` is this.
    pub model: String,
    /// Rows with these `max_num_seqs` (default: all).
    #[serde(default)]
    pub max_num_seqs: Vec<u32>,
    pub dup_factor: u32,
    pub chars_per_token: f64,
    pub template_tokens: u32,
    pub max_output_tokens: u32,
}

/// Rows of LLM-Inference-Bench's power table to replay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgonneSpec {
    /// `power_results.csv`.
    pub path: PathBuf,
    /// Rows whose `Hardware` is this.
    pub hardware: String,
    /// Rows whose `Framework` is this.
    pub framework: String,
    /// Rows whose `Model` is this.
    pub model: String,
    /// Idle time in the power window before and after the batch, seconds.
    #[serde(default = "one_s")]
    pub padding_s: f64,
}

/// Adds the point's mean power per GPU and J per output token over the simulated window `(t0, t1)`,
/// against the `measured` pair and the baselines, or a note saying why there is no power comparison
/// (no profile: the run's energy note).
fn add_power_metrics(
    p: &mut Point,
    o: &simulate::RunOutcome,
    (profile, energy_note): (Option<&PowerProfile>, Option<&String>),
    (t0, t1): (f64, f64),
    (mean_w, j_per_token): (f64, f64),
    tokens: f64,
) {
    let Some(prof) = profile else {
        p.notes.push(format!(
            "no power comparison: {}",
            energy_note.cloned().unwrap_or_default()
        ));
        return;
    };
    let tl = PowerTimeline::new(&o.scenario, &o.result.batches, prof);
    let e = tl.energy(t0, t1);
    let gpus = tl.gpus();
    let window_s = t1 - t0;
    p.add(
        "mean_power_w",
        MetricValue::with_baselines(mean_w, e, |x| x / (gpus * window_s)),
    );
    p.add(
        "j_per_output_token",
        MetricValue::with_baselines(j_per_token, e, |x| x / tokens),
    );
}

/// Describes the simulated setup from the first point's run (the rows differ only in `batch_cap`).
fn describe_once(
    simulated: &mut BTreeMap<String, String>,
    o: &simulate::RunOutcome,
    profile_path: &str,
    batch_cap: &str,
) {
    if !simulated.is_empty() {
        return;
    }
    *simulated = simulated_setup(
        &o.scenario,
        (!profile_path.is_empty()).then_some(profile_path),
        &o.predictor.kind,
    );
    simulated.insert("batch cap".into(), batch_cap.into());
}

fn one_s() -> f64 {
    1.0
}

fn case(
    name: &str,
    config_label: &str,
    measured: String,
    simulated: BTreeMap<String, String>,
    notes: Vec<String>,
    points: Vec<Point>,
) -> CaseResult {
    CaseResult {
        name: name.to_string(),
        description: None,
        status: "ok".into(),
        message: None,
        config: config_label.to_string(),
        measured,
        simulated,
        notes,
        points,
        plots: Vec::new(),
    }
}

/// The rows of the ML.ENERGY table that `spec` selects (its GPU, task, model and `max_num_seqs`
/// values); none is an error naming the selection.
/// The batches (indices into the batch log) that decoded on replica 0's last pipeline stage and
/// ended in `(from_ns, to_ns]`: one per decode iteration the measured client would see.
fn decode_iterations(o: &simulate::RunOutcome, from_ns: u64, to_ns: u64) -> Vec<usize> {
    let b = &o.result.batches;
    let last = o.scenario.hardware.pipeline_stages - 1;
    (0..b.len())
        .filter(|&i| {
            b.replica[i] == 0
                && b.stage[i] == last
                && b.decode_tokens[i] > 0
                && b.end_ns[i] > from_ns
                && b.end_ns[i] <= to_ns
        })
        .collect()
}

fn select_mlenergy_rows(config_path: &Path, spec: &MlEnergySpec) -> Result<Vec<logs::MlEnergyRow>> {
    if !(spec.chars_per_token.is_finite() && spec.chars_per_token > 0.0) {
        return Err(Error::invalid(
            config_path,
            "measured.chars_per_token",
            spec.chars_per_token,
            "must be a finite number > 0",
        ));
    }
    let rows: Vec<logs::MlEnergyRow> = logs::read_mlenergy(&spec.path)?
        .into_iter()
        .filter(|r| r.gpu == spec.gpu_name && r.task == spec.task && r.model == spec.model)
        .filter(|r| spec.max_num_seqs.is_empty() || spec.max_num_seqs.contains(&r.max_num_seqs))
        .collect();
    if rows.is_empty() {
        return Err(Error::invalid(
            config_path,
            "measured",
            &spec.model,
            format!(
                "selects no row of {} (GPU `{}`, task `{}`)",
                spec.path.display(),
                spec.gpu_name,
                spec.task
            ),
        ));
    }
    Ok(rows)
}

/// What an ML.ENERGY replay assumes: the requests per row, the window and what is compared.
fn mlenergy_notes(prompts: usize, spec: &MlEnergySpec) -> Vec<String> {
    vec![
        format!(
            "{} requests per row: the {} prompts x {}, all at t = 0; prompt lengths estimated as \
             characters / {} + {} template tokens (no tokenizer here); only the mean output length is \
             published, so output lengths are drawn uniformly over [1, 2 x mean - 1] (seeded by the row)",
            prompts * spec.dup_factor as usize,
            prompts,
            spec.dup_factor,
            spec.chars_per_token,
            spec.template_tokens
        ),
        "window: the steady state, from the start until the waiting queue first empties (measured: \
         server-side, as ML.ENERGY aggregates; simulated: until the last request is admitted)"
            .into(),
        "mean power: ML.ENERGY's steady-state energy per token x token throughput / GPUs; \
         inter-token latency: ML.ENERGY's `Avg TPOT` (mean over iterations of the iteration's time \
         per output token) against the mean time between simulated decode iterations"
            .into(),
    ]
}

/// Replays the selected ML.ENERGY rows. The measured window is the steady state (until the waiting queue
/// first empties); so is the simulated one (until the last request is admitted).
pub fn validate_mlenergy(
    caches: &Caches,
    name: &str,
    config_path: &Path,
    config_label: &str,
    tree: &Value,
    spec: &MlEnergySpec,
) -> Result<CaseResult> {
    let rows = select_mlenergy_rows(config_path, spec)?;
    let chars = prompt_chars(&spec.prompts)?;
    let prompt_tokens = prompt_tokens_of(&chars, spec.chars_per_token, spec.template_tokens);
    let mut points = Vec::new();
    let mut simulated = BTreeMap::new();
    let mut rows = rows;
    rows.sort_by_key(|r| (r.tp, r.pp, r.max_num_seqs));
    for row in &rows {
        let specs = mlenergy_requests(row, &prompt_tokens, spec.dup_factor, spec.max_output_tokens);
        let overrides = vec![
            format!("scheduler.max_num_seqs={}", row.max_num_seqs),
            format!("hardware.tensor_parallel={}", row.tp),
            format!("hardware.pipeline_stages={}", row.pp),
        ];
        let sc = replay_scenario(&caches.catalogs, config_path, tree, &overrides, specs.len())?;
        let (profile, profile_path, energy_note) = simulate::power_profile(&sc);
        let o = simulate::simulate_specs(sc, &specs, &caches.tables, &|_| {})?;
        let end_ns = o
            .result
            .requests
            .iter()
            .filter_map(|q| q.scheduled_ns)
            .max()
            .unwrap_or(o.result.end_ns)
            .max(1);
        let end_s = ns_to_secs(end_ns);
        let tokens = tokens_by(&o.scenario, &o.result, end_ns);
        let mut p = Point::new(
            format!("max_num_seqs {} (TP{})", row.max_num_seqs, row.tp),
            o.predictor.kind.clone(),
        );
        p.add(
            "output_tokens_per_s",
            MetricValue::new(row.token_tput, tokens / end_s),
        );
        if let Some(tpot) = row.avg_tpot_s {
            // Time between consecutive iterations of the last pipeline stage of replica 0 that
            // decoded, in the steady state: the time per output token of each running request.
            let b = &o.result.batches;
            let steady = decode_iterations(&o, 0, end_ns);
            if steady.len() > 1 {
                let (first, end) = (steady[0], steady[steady.len() - 1]);
                let gaps =
                    (b.end_ns[end] - b.end_ns[first]) as f64 / 1e9 / (steady.len() - 1) as f64;
                p.add("tpot_mean_s", MetricValue::new(tpot, gaps));
                let running = steady
                    .iter()
                    .map(|&i| b.num_requests[i] as f64)
                    .sum::<f64>()
                    / steady.len() as f64;
                p.add(
                    "running_batch_mean",
                    MetricValue::new(row.avg_batch, running),
                );
            }
        }
        add_power_metrics(
            &mut p,
            &o,
            (profile.as_ref(), energy_note.as_ref()),
            (0.0, end_s),
            (row.mean_w_per_gpu(), row.j_per_token()),
            tokens,
        );
        describe_once(
            &mut simulated,
            &o,
            &profile_path,
            "scheduler.max_num_seqs and hardware.tensor_parallel from each row",
        );
        points.push(p);
    }
    let notes = mlenergy_notes(chars.len(), spec);
    Ok(case(
        name,
        config_label,
        format!(
            "{} ({} rows: {}, {}, {}) with prompts {}",
            spec.path.display(),
            rows.len(),
            spec.model,
            spec.gpu_name,
            spec.task,
            spec.prompts.display()
        ),
        simulated,
        notes,
        points,
    ))
}

/// The rows of the LLM-Inference-Bench table that `spec` selects, each measurement once, and the
/// notes on how they are replayed; none selected is an error naming the selection.
fn select_argonne_rows(
    config_path: &Path,
    spec: &ArgonneSpec,
) -> Result<(Vec<logs::ArgonneRow>, Vec<String>)> {
    let mut rows: Vec<logs::ArgonneRow> = logs::read_argonne(&spec.path)?
        .into_iter()
        .filter(|r| {
            r.hardware == spec.hardware && r.framework == spec.framework && r.model == spec.model
        })
        .collect();
    if rows.is_empty() {
        return Err(Error::invalid(
            config_path,
            "measured",
            &spec.model,
            format!(
                "selects no row of {} (hardware `{}`, framework `{}`)",
                spec.path.display(),
                spec.hardware,
                spec.framework
            ),
        ));
    }
    // The upstream table repeats some rows verbatim; count each measurement once.
    let before = rows.len();
    rows.dedup_by(|a, b| {
        (
            a.num_gpus,
            a.length,
            a.batch_size,
            a.latency_s,
            a.avg_power_w,
        ) == (
            b.num_gpus,
            b.length,
            b.batch_size,
            b.latency_s,
            b.avg_power_w,
        )
    });
    let mut notes = vec![
        format!(
            "each row: `Batch Size` requests of exactly `Input Output Length` prompt and output \
             tokens at t = 0; power window = the batch + {} s of idle on each side (the benchmark \
             averaged GPU 0's NVML power from 1 s before to 1 s after a `generate` call); J per output \
             token = mean power x that window / output tokens on both sides",
            spec.padding_s
        ),
        "batch latency = `duration_s`: measured wall time of one `generate` call, simulated time to \
         the last completion"
            .into(),
    ];
    if rows.len() < before {
        notes.push(format!(
            "{} duplicated row(s) of the table counted once",
            before - rows.len()
        ));
    }
    Ok((rows, notes))
}

/// Replays the selected LLM-Inference-Bench rows: `Batch Size` requests of `Input Output Length` prompt
/// and output tokens, all at t = 0. The power window is the batch plus `padding_s` of idle on each side,
/// as the benchmark averaged GPU 0's power.
pub fn validate_argonne(
    caches: &Caches,
    name: &str,
    config_path: &Path,
    config_label: &str,
    tree: &Value,
    spec: &ArgonneSpec,
) -> Result<CaseResult> {
    let (rows, notes) = select_argonne_rows(config_path, spec)?;
    let pad = spec.padding_s;
    let mut points = Vec::new();
    let mut simulated = BTreeMap::new();
    for row in &rows {
        let specs: Vec<RequestSpec> = (0..row.batch_size)
            .map(|_| RequestSpec {
                arrival_ns: 0,
                prompt_tokens: row.length,
                output_tokens: row.length,
                ..Default::default()
            })
            .collect();
        let overrides = vec![
            format!("scheduler.max_num_seqs={}", row.batch_size),
            format!("hardware.tensor_parallel={}", row.num_gpus),
        ];
        let sc = replay_scenario(&caches.catalogs, config_path, tree, &overrides, specs.len())?;
        let (profile, profile_path, energy_note) = simulate::power_profile(&sc);
        let o = simulate::simulate_specs(sc, &specs, &caches.tables, &|_| {})?;
        let t_sim = o.summary.makespan_s;
        let tokens = (row.batch_size * row.length) as f64;
        let mut p = Point::new(
            format!(
                "batch {} in/out {} (row {})",
                row.batch_size, row.length, row.row
            ),
            o.predictor.kind.clone(),
        );
        p.add("duration_s", MetricValue::new(row.latency_s, t_sim));
        p.add(
            "output_tokens_per_s",
            MetricValue::new(tokens / row.latency_s, tokens / t_sim),
        );
        add_power_metrics(
            &mut p,
            &o,
            (profile.as_ref(), energy_note.as_ref()),
            (-pad, t_sim + pad),
            (
                row.avg_power_w,
                row.avg_power_w * (row.latency_s + 2.0 * pad) * row.num_gpus as f64 / tokens,
            ),
            tokens,
        );
        describe_once(
            &mut simulated,
            &o,
            &profile_path,
            "scheduler.max_num_seqs = the row's batch size",
        );
        points.push(p);
    }
    Ok(case(
        name,
        config_label,
        format!(
            "{} ({} rows: {}, {}, {})",
            spec.path.display(),
            rows.len(),
            spec.model,
            spec.hardware,
            spec.framework
        ),
        simulated,
        notes,
        points,
    ))
}

/// Rows of the ML.ENERGY benchmark v3 table to replay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlEnergyV3Spec {
    /// `mlenergy_v3_llm_configurations.csv`.
    pub path: PathBuf,
    /// Rows whose `gpu_model` is this (`H100`, `B200`).
    pub gpu: String,
    /// Rows whose `task` is this.
    pub task: String,
    /// Rows whose `model_id` is this.
    pub model: String,
    /// Rows whose `weight_precision` is this.
    #[serde(default = "bfloat16")]
    pub precision: String,
    /// Rows with these `max_num_seqs` (default: all).
    #[serde(default)]
    pub max_num_seqs: Vec<u32>,
    /// Mean prompt length in tokens (chat template included): the table does not record prompt
    /// lengths, so they are drawn from a log-normal distribution with this mean.
    pub prompt_tokens_mean: f64,
    /// Shape (sigma) of that log-normal distribution.
    #[serde(default = "one")]
    pub prompt_tokens_sigma: f64,
    /// Unique prompts of the benchmark.
    #[serde(default = "unique_prompts")]
    pub unique_prompts: u32,
}

fn bfloat16() -> String {
    "bfloat16".into()
}

fn one() -> f64 {
    1.0
}

fn unique_prompts() -> u32 {
    1024
}

/// Requests of a v3 configuration: `unique_prompts`, repeated until there are at least three times the
/// batch cap (so a steady state exists), all at t = 0; prompt lengths log-normal with the spec's mean,
/// output lengths uniform over [1, 2 x mean - 1], both seeded by the row.
fn mlenergy_v3_requests(row: &MlEnergyV3Row, spec: &MlEnergyV3Spec) -> Vec<RequestSpec> {
    use rand::RngExt;
    use rand_distr::{Distribution, LogNormal};
    let u = spec.unique_prompts.max(1) as usize;
    let n = u * (3 * row.max_num_seqs as usize).div_ceil(u).max(1);
    let sigma = spec.prompt_tokens_sigma;
    let mu = spec.prompt_tokens_mean.ln() - sigma * sigma / 2.0;
    let dist = LogNormal::new(mu, sigma).expect("checked finite and positive");
    let mut prng = crate::rng::substream(row.row as u64, "validate.mlenergy_v3.prompt");
    let prompts: Vec<u32> = (0..u)
        .map(|_| (dist.sample(&mut prng).round() as u32).clamp(1, 16_384))
        .collect();
    let mut orng = crate::rng::substream(row.row as u64, "validate.mlenergy_v3.output");
    let hi = ((2.0 * row.avg_output_len).round() as u32)
        .saturating_sub(1)
        .max(1);
    (0..n)
        .map(|i| RequestSpec {
            arrival_ns: 0,
            prompt_tokens: prompts[i % u],
            output_tokens: orng.random_range(1..=hi),
            ..Default::default()
        })
        .collect()
}

/// Replays the selected v3 rows over the benchmark's steady state: from when `max_num_seqs` requests
/// have their first token until all but `max_num_seqs + 1` have finished.
pub fn validate_mlenergy_v3(
    caches: &Caches,
    name: &str,
    config_path: &Path,
    config_label: &str,
    tree: &Value,
    spec: &MlEnergyV3Spec,
) -> Result<CaseResult> {
    for (field, v) in [
        ("measured.prompt_tokens_mean", spec.prompt_tokens_mean),
        ("measured.prompt_tokens_sigma", spec.prompt_tokens_sigma),
    ] {
        if !(v.is_finite() && v > 0.0 && v < 1e6) {
            return Err(Error::invalid(
                config_path,
                field,
                v,
                "must be a finite number > 0",
            ));
        }
    }
    let mut rows: Vec<MlEnergyV3Row> = read_mlenergy_v3(&spec.path)?
        .into_iter()
        .filter(|r| {
            r.gpu == spec.gpu
                && r.task == spec.task
                && r.model_id == spec.model
                && r.weight_precision == spec.precision
        })
        .filter(|r| spec.max_num_seqs.is_empty() || spec.max_num_seqs.contains(&r.max_num_seqs))
        .collect();
    if rows.is_empty() {
        return Err(Error::invalid(
            config_path,
            "measured",
            &spec.model,
            format!(
                "selects no row of {} (gpu `{}`, task `{}`, precision `{}`)",
                spec.path.display(),
                spec.gpu,
                spec.task,
                spec.precision
            ),
        ));
    }
    rows.sort_by_key(|r| (r.tensor_parallel, r.max_num_seqs));
    let mut points = Vec::new();
    let mut simulated = BTreeMap::new();
    // A data-parallel row's replica gets the case's token budget per rank: read it once, as the
    // case's config gives it.
    let rank_budget = match rows.iter().any(|r| r.data_parallel > 1) {
        true => Some(
            replay_config(config_path, tree, &[], 1)?
                .scheduler
                .max_num_batched_tokens,
        ),
        false => None,
    };
    for row in &rows {
        let specs = mlenergy_v3_requests(row, spec);
        // A row whose experts are spread over several GPUs (vLLM's --enable-expert-parallel) without
        // data parallelism is replayed with hardware.expert_parallel over as many GPUs: attention
        // and dense layers tensor-parallel over them, each GPU holding its share of whole experts.
        // With data parallelism (vLLM's --data-parallel-size, the benchmark giving each rank
        // max_num_seqs / ranks) it is replayed with hardware.data_parallel: ranks of
        // tensor_parallel GPUs, the scheduler's limits the ranks' together.
        let dp = row.data_parallel.max(1);
        let (tp, ep) = if dp > 1 {
            (row.tensor_parallel, true)
        } else {
            (
                row.tensor_parallel.max(row.expert_parallel),
                row.expert_parallel > row.tensor_parallel,
            )
        };
        let mut overrides = vec![
            format!("scheduler.max_num_seqs={}", row.max_num_seqs),
            format!("hardware.tensor_parallel={tp}"),
            format!("hardware.replicas={}", (row.num_gpus / (tp * dp)).max(1)),
        ];
        if ep {
            overrides.push("hardware.expert_parallel=true".into());
        }
        if let Some(budget) = rank_budget.filter(|_| dp > 1) {
            // Each rank's engine core has the case's per-iteration token budget (a request's chunk
            // stays on one rank: the chunk size is unchanged).
            overrides.push(format!("hardware.data_parallel={dp}"));
            overrides.push(format!(
                "scheduler.max_num_batched_tokens={}",
                budget.saturating_mul(dp)
            ));
        }
        let sc = replay_scenario(&caches.catalogs, config_path, tree, &overrides, specs.len())?;
        let (profile, profile_path, energy_note) = simulate::power_profile(&sc);
        let o = simulate::simulate_specs(sc, &specs, &caches.tables, &|_| {})?;
        let cap = row.max_num_seqs as usize;
        let mut firsts: Vec<u64> = o
            .result
            .requests
            .iter()
            .filter_map(|q| q.first_token_ns)
            .collect();
        let mut done: Vec<u64> = o
            .result
            .requests
            .iter()
            .filter_map(|q| q.completion_ns)
            .collect();
        firsts.sort_unstable();
        done.sort_unstable();
        let (Some(&a_ns), Some(&b_ns)) = (
            firsts.get(cap.saturating_sub(1)),
            done.get(done.len().saturating_sub(cap + 2)),
        ) else {
            continue;
        };
        let mut p = Point::new(
            format!(
                "max_num_seqs {} (TP{}, {} GPU)",
                row.max_num_seqs, row.tensor_parallel, row.num_gpus
            ),
            o.predictor.kind.clone(),
        );
        if dp > 1 {
            p.notes.push(format!(
                "measured with {dp} data-parallel ranks of TP{tp} and expert parallelism over {} GPUs; replayed with hardware.data_parallel {dp}: the decode sequences spread evenly over the ranks, a step's prompts on as few ranks as their token budgets hold",
                row.expert_parallel
            ));
        } else if ep {
            p.notes.push(format!(
                "measured with expert parallelism over {} GPUs (MoE TP{}); replayed with hardware.expert_parallel, attention TP{tp}",
                row.expert_parallel, row.tensor_parallel
            ));
        }
        if b_ns <= a_ns {
            p.notes.push("the simulated run has no steady state (it never holds max_num_seqs requests before they start finishing)".into());
            points.push(p);
            continue;
        }
        let (a, b) = (ns_to_secs(a_ns), ns_to_secs(b_ns));
        let tokens =
            tokens_by(&o.scenario, &o.result, b_ns) - tokens_by(&o.scenario, &o.result, a_ns);
        p.add(
            "output_tokens_per_s",
            MetricValue::new(row.output_tokens_per_s, tokens / (b - a)),
        );
        // Gaps between consecutive decode iterations of replica 0's last stage in the window, each
        // weighted by the tokens it delivered; the weighted median is the median token gap.
        let bl = &o.result.batches;
        let steady = decode_iterations(&o, a_ns, b_ns);
        if steady.len() > 1 {
            let mut gaps: Vec<(u64, u64)> = steady
                .windows(2)
                .map(|w| {
                    (
                        bl.end_ns[w[1]] - bl.end_ns[w[0]],
                        bl.decode_tokens[w[1]] as u64,
                    )
                })
                .collect();
            gaps.sort_unstable();
            let total: u64 = gaps.iter().map(|g| g.1).sum();
            let mut acc = 0;
            let median = gaps
                .iter()
                .find(|g| {
                    acc += g.1;
                    2 * acc >= total
                })
                .map_or(0, |g| g.0);
            p.add(
                "itl_p50_s",
                MetricValue::new(row.median_itl_ms / 1e3, median as f64 / 1e9),
            );
            let (mut busy, mut weighted) = (0.0, 0.0);
            for &i in &steady {
                let d = (bl.end_ns[i] - bl.start_ns[i]) as f64;
                busy += d;
                weighted += d * bl.num_requests[i] as f64;
            }
            p.add(
                "running_batch_mean",
                MetricValue::new(row.avg_batch_size, weighted / busy.max(1.0)),
            );
        }
        add_power_metrics(
            &mut p,
            &o,
            (profile.as_ref(), energy_note.as_ref()),
            (a, b),
            (row.power_per_gpu_w(), row.j_per_token),
            tokens,
        );
        describe_once(
            &mut simulated,
            &o,
            &profile_path,
            "scheduler.max_num_seqs, hardware.tensor_parallel, hardware.expert_parallel and data_parallel, and replicas (num_gpus / (TP x DP)) from each row; with data parallelism max_num_batched_tokens x DP",
        );
        points.push(p);
    }
    let notes = vec![
        format!(
            "requests per row: {} unique prompts, repeated up to at least 3 x max_num_seqs, all at t = 0; \
             the table records no prompt lengths, so they are drawn log-normal with mean {} tokens \
             (sigma {}), an assumption; output lengths uniform over [1, 2 x mean - 1] (the table's \
             mean per row), seeded by the row",
            spec.unique_prompts, spec.prompt_tokens_mean, spec.prompt_tokens_sigma
        ),
        "window: the benchmark's steady state, measured and simulated alike: from when max_num_seqs \
         requests have their first token until all but max_num_seqs + 1 requests have finished"
            .into(),
        "mean power: the table's steady-state GPU power / GPUs; inter-token latency: the client's \
         median token gap against the token-weighted median gap between simulated decode iterations"
            .into(),
    ];
    Ok(case(
        name,
        config_label,
        format!(
            "{} ({} rows: {}, {}, {}, {})",
            spec.path.display(),
            rows.len(),
            spec.model,
            spec.gpu,
            spec.task,
            spec.precision
        ),
        simulated,
        notes,
        points,
    ))
}
