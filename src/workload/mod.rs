//! The requests of a run, all generated before the event loop starts.
//!
//! Input: the workload section of a [`Scenario`](crate::config::Scenario). Output: requests sorted by
//! arrival time (ties keep generation order), each with its prompt and output length. Arrival gaps and
//! lengths draw from separate named random streams, so changing the length distribution leaves arrival
//! times as they were. Arrivals and lengths may instead come from a trace file in one of the published
//! layouts of [`TraceFormat`](crate::config::TraceFormat) (read by the `trace` submodule); a Mooncake
//! trace's prompt-block hash ids are read and checked too, and [`trace_block_hashes`] returns them.

use crate::config::{ArrivalConfig, LengthsConfig, WorkloadConfig};
use crate::error::{Error, Result};
use crate::rng::substream;
use crate::units::{arrival_ns, secs_to_ns, SimTime, MAX_ARRIVAL_S};
use rand::RngExt;
use rand_distr::{Distribution, Exp, Gamma, Zipf};
use std::path::Path;

pub mod hold;
mod trace;
use trace::Trace;
pub use trace::MOONCAKE_BLOCK_TOKENS;

/// One request to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestSpec {
    pub arrival_ns: SimTime,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// The shared prefix its prompt starts with (`workload.shared_prefix`; 0 when `prefix_tokens` is 0).
    pub prefix_group: u32,
    /// Tokens of the prompt that are that shared prefix (0: none).
    pub prefix_tokens: u32,
    /// How long it waited between its submission and `arrival_ns` (held for a better hour by
    /// [`hold::plan`]; 0 when released at submission).
    pub held_ns: SimTime,
    /// A deferrable request's deadline (`workload.deferrable`): it must complete by this time;
    /// `None` for an ordinary request.
    pub deadline_ns: Option<SimTime>,
}

/// Generates the requests of `w` from `seed`. `config_path` names the config in errors.
pub fn generate(config_path: &Path, w: &WorkloadConfig, seed: u64) -> Result<Vec<RequestSpec>> {
    let need_arrivals = matches!(w.arrival, ArrivalConfig::Trace { .. });
    let need_lengths = matches!(w.lengths, LengthsConfig::Trace);
    let trace = match (&w.trace, need_arrivals || need_lengths) {
        (Some(_), true) => Some(trace::read(w, need_arrivals, need_lengths)?),
        _ => None,
    };
    let n = match (w.requests, &trace) {
        (Some(n), Some(t)) if n as usize > t.rows() => {
            return Err(Error::invalid(
                config_path,
                "workload.requests",
                n,
                format!(
                    "the trace {} has only {} rows{}",
                    w.trace.as_deref().unwrap_or(Path::new("")).display(),
                    t.rows(),
                    if w.trace_skip_failed || w.trace_model.is_some() {
                        " left (after workload.trace_skip_failed / workload.trace_model)"
                    } else {
                        ""
                    }
                ),
            ))
        }
        (Some(n), _) => n as usize,
        (None, Some(t)) => t.rows(),
        (None, None) => {
            return Err(Error::Internal(
                "workload.requests unset without a trace".into(),
            ))
        }
    };

    check_memory(config_path, n)?;
    let arrivals = arrival_times(config_path, w, n, seed, trace.as_ref())?;
    let lengths = lengths(w, n, seed, trace.as_ref())?;
    // Prefix groups draw from their own stream: turning shared prefixes on changes no arrival or length.
    let mut prefix_rng = substream(seed, "workload.shared_prefix");
    let mut session_index = 0u32..;
    let deadlines = deadlines(config_path, w, &arrivals, seed)?;
    Ok(arrivals
        .into_iter()
        .zip(lengths)
        .zip(deadlines)
        .map(
            |((arrival_ns, (prompt_tokens, output_tokens)), deadline_ns)| {
                let (prefix_group, prefix_tokens) = match w.shared_prefix {
                    // A session's first turn: its prefix group is its session (later turns share it).
                    None if w.sessions.is_some() => (session_index.next().unwrap_or(0), 0),
                    // A prompt no longer than the prefix shares all but its last token.
                    Some(p) => (
                        prefix_rng.random_range(0..p.groups),
                        p.tokens.min(prompt_tokens.saturating_sub(1)),
                    ),
                    None => (0, 0),
                };
                RequestSpec {
                    arrival_ns,
                    prompt_tokens,
                    output_tokens,
                    prefix_group,
                    prefix_tokens,
                    held_ns: 0,
                    deadline_ns,
                }
            },
        )
        .collect())
}

/// Each request's deadline: `workload.deferrable.fraction` of them, drawn one by one from a stream of
/// their own, must complete within `deadline_s` of their submission; the rest have none.
fn deadlines(
    config_path: &Path,
    w: &WorkloadConfig,
    arrivals: &[SimTime],
    seed: u64,
) -> Result<Vec<Option<SimTime>>> {
    let Some(d) = w.deferrable else {
        return Ok(vec![None; arrivals.len()]);
    };
    let mut rng = substream(seed, "workload.deferrable");
    let within = secs_to_ns(d.deadline_s);
    arrivals
        .iter()
        .map(|&a| {
            if rng.random::<f64>() >= d.fraction {
                return Ok(None);
            }
            a.checked_add(within).map(Some).ok_or_else(|| {
                Error::invalid(
                    config_path,
                    "workload.deferrable.deadline_s",
                    d.deadline_s,
                    "puts a deadline past the simulator's time horizon",
                )
            })
        })
        .collect()
}

/// The prompt-block hash ids of a Mooncake trace, one list per request in the order [`generate`]
/// returns the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHashes {
    /// Prompt tokens per block ([`MOONCAKE_BLOCK_TOKENS`]).
    pub block_tokens: u32,
    /// Request `i`'s block hash ids, `ceil(prompt_tokens / block_tokens)` of them; equal ids mark
    /// blocks of identical prompt prefixes.
    pub per_request: Vec<Vec<u64>>,
}

/// The prompt-block hash ids of the workload's trace: `Some` when `workload.trace_format` is
/// `mooncake` and lengths come from the trace (`lengths: {type: trace}`), so that the blocks describe
/// the prompts simulated; `None` otherwise. The ids are read and checked (one whole number per
/// 512-token block of `input_length`) with the rest of the trace; with prefix caching they identify
/// the prompt blocks requests share (the simulate driver's prefix keys). Rows are the ones [`generate`] uses (the first
/// `workload.requests`, after `workload.trace_skip_failed`).
pub fn trace_block_hashes(config_path: &Path, w: &WorkloadConfig) -> Result<Option<BlockHashes>> {
    if w.trace_format != crate::config::TraceFormat::Mooncake
        || !matches!(w.lengths, LengthsConfig::Trace)
        || w.trace.is_none()
    {
        return Ok(None);
    }
    let t = trace::read(w, false, true)?;
    let n = match w.requests {
        Some(n) if n as usize > t.rows() => {
            return Err(Error::invalid(
                config_path,
                "workload.requests",
                n,
                format!(
                    "the trace {} has only {} rows",
                    w.trace.as_deref().unwrap_or(Path::new("")).display(),
                    t.rows()
                ),
            ))
        }
        Some(n) => n as usize,
        None => t.rows(),
    };
    let mut per_request = t
        .block_hashes
        .ok_or_else(|| Error::Internal("Mooncake block hashes not loaded".into()))?;
    per_request.truncate(n);
    Ok(Some(BlockHashes {
        block_tokens: MOONCAKE_BLOCK_TOKENS,
        per_request,
    }))
}

/// A turn of a session after its first: the new prompt tokens, the output and the think time before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub new_tokens: u32,
    pub output_tokens: u32,
    /// Between the previous turn's completion and this turn's arrival, nanoseconds.
    pub think_ns: SimTime,
}

/// The turns after the first of every session (`workload.sessions`), by session: session `i` is the
/// `i`-th request [`generate`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionTurns {
    pub turns: Vec<Vec<Turn>>,
}

/// The later turns of `sessions` sessions of `w`, drawn from streams of their own (the first turns'
/// arrivals and lengths are [`generate`]'s, unchanged): turn counts uniform over
/// `workload.sessions.turns`, new prompt tokens and outputs from `lengths`, think times exponential.
/// `None` without `workload.sessions`.
pub fn session_turns(
    config_path: &Path,
    w: &WorkloadConfig,
    seed: u64,
    sessions: usize,
) -> Result<Option<SessionTurns>> {
    let Some(ss) = w.sessions else {
        return Ok(None);
    };
    let mut count_rng = substream(seed, "workload.sessions.turns");
    let counts: Vec<usize> = (0..sessions)
        .map(|_| count_rng.random_range(ss.turns[0]..=ss.turns[1]) as usize - 1)
        .collect();
    let total: usize = counts.iter().sum();
    check_memory(config_path, total.saturating_add(sessions))?;
    // The turns' lengths: the same distribution as the first turns', from a seed of their own.
    let lengths_seed = substream(seed, "workload.sessions.lengths").random::<u64>();
    let drawn = lengths(w, total, lengths_seed, None)?;
    let mut think_rng = substream(seed, "workload.sessions.think");
    let think = (ss.think_s > 0.0)
        .then(|| Exp::new(1.0 / ss.think_s))
        .transpose()
        .map_err(|e| Error::Internal(format!("think-time distribution: {e}")))?;
    let mut it = drawn.into_iter();
    let turns = counts
        .into_iter()
        .map(|c| {
            (0..c)
                .map(|_| {
                    let (new_tokens, output_tokens) = it.next().unwrap_or((1, 1));
                    let think_ns = think.map_or(0, |d| secs_to_ns(d.sample(&mut think_rng)));
                    Turn {
                        new_tokens,
                        output_tokens,
                        think_ns,
                    }
                })
                .collect()
        })
        .collect();
    Ok(Some(SessionTurns { turns }))
}

/// Bytes a run holds per request while it simulates (the request spec, its state in the simulator and
/// its output row), rounded up: the bound `workload.requests` is held to against the memory available.
pub const BYTES_PER_REQUEST: u64 = 512;

/// Refuses a request count whose requests alone would not fit in the memory the machine has available
/// (`MemAvailable` of /proc/meminfo where there is one), before anything is allocated.
fn check_memory(config_path: &Path, n: usize) -> Result<()> {
    let need = (n as u64).saturating_mul(BYTES_PER_REQUEST);
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    });
    // Without /proc/meminfo, the bound is what an address space can index at all.
    let limit = available.unwrap_or(isize::MAX as u64);
    if need > limit {
        return Err(Error::invalid(
            config_path,
            "workload.requests",
            n,
            format!(
                "needs about {:.1} GB of memory to simulate ({BYTES_PER_REQUEST} bytes per request) but this machine has {:.1} GB available; run fewer requests (or several runs of them)",
                need as f64 / 1e9,
                limit as f64 / 1e9
            ),
        ));
    }
    Ok(())
}

fn arrival_times(
    config_path: &Path,
    w: &WorkloadConfig,
    n: usize,
    seed: u64,
    trace: Option<&Trace>,
) -> Result<Vec<SimTime>> {
    let mut rng = substream(seed, "workload.arrival");
    let mut out = Vec::with_capacity(n);
    let past_horizon = |field: &str, value: &dyn std::fmt::Display, i: usize, t: f64| {
        Error::invalid(
            config_path,
            field,
            value,
            format!(
                "request {i} would arrive at {t:.4e} s, past the simulator's horizon of {MAX_ARRIVAL_S:.4e} s (100 years; time is kept in integer nanoseconds); use a higher rate or fewer requests"
            ),
        )
    };
    // Refused before drawing anything when the mean span already passes the horizon.
    let rate = match &w.arrival {
        ArrivalConfig::Poisson { rate }
        | ArrivalConfig::Gamma { rate, .. }
        | ArrivalConfig::Static { rate } => Some(*rate),
        _ => None,
    };
    if let Some(rate) = rate {
        let span = n as f64 / rate;
        if span.is_nan() || span > MAX_ARRIVAL_S {
            return Err(past_horizon("workload.arrival.rate", &rate, n - 1, span));
        }
    }
    // Gaps accumulate in f64 seconds and each arrival is rounded once, so rounding errors do not add up.
    let mut t = 0.0f64;
    let mut push_gaps = |gap: &mut dyn FnMut() -> f64| -> Result<()> {
        for i in 0..n {
            t += gap();
            match arrival_ns(t) {
                Some(ns) => out.push(ns),
                None => {
                    return Err(past_horizon(
                        "workload.arrival.rate",
                        &rate.unwrap_or(f64::NAN),
                        i,
                        t,
                    ))
                }
            }
        }
        Ok(())
    };
    match &w.arrival {
        ArrivalConfig::Poisson { rate } => {
            let exp = Exp::new(*rate).map_err(|e| Error::Internal(e.to_string()))?;
            push_gaps(&mut || exp.sample(&mut rng))?;
        }
        ArrivalConfig::Gamma { rate, cv } => {
            // Mean 1/rate and coefficient of variation cv: shape 1/cv^2, scale cv^2/rate.
            let shape = 1.0 / (cv * cv);
            let gamma =
                Gamma::new(shape, cv * cv / rate).map_err(|e| Error::Internal(e.to_string()))?;
            push_gaps(&mut || gamma.sample(&mut rng))?;
        }
        ArrivalConfig::Static { rate } => {
            let gap = 1.0 / rate;
            let mut i = 0u64;
            // Exactly i/rate, not a running sum.
            out.extend((0..n).map(|_| {
                i += 1;
                secs_to_ns(i as f64 * gap)
            }));
        }
        ArrivalConfig::AllAtOnce => out.resize(n, 0),
        ArrivalConfig::Trace { time_scale } => {
            let tr = trace.ok_or_else(|| Error::Internal("trace not loaded".into()))?;
            let a = tr
                .arrivals_s
                .as_ref()
                .ok_or_else(|| Error::Internal("trace arrivals not loaded".into()))?;
            for (i, s) in a[..n].iter().enumerate() {
                let t = s * time_scale;
                match arrival_ns(t) {
                    Some(ns) => out.push(ns),
                    None => {
                        return Err(Error::invalid(
                            w.trace.as_deref().unwrap_or(config_path),
                            tr.time_column,
                            s,
                            format!(
                                "row {} arrives at {t:.4e} s (x workload.arrival.time_scale = {time_scale}), outside [0, {MAX_ARRIVAL_S:.4e}] s (the simulator's horizon of 100 years; time is kept in integer nanoseconds)",
                                tr.file_rows[i]
                            ),
                        ))
                    }
                }
            }
        }
    }
    Ok(out)
}

fn lengths(
    w: &WorkloadConfig,
    n: usize,
    seed: u64,
    trace: Option<&Trace>,
) -> Result<Vec<(u32, u32)>> {
    let mut rng = substream(seed, "workload.lengths");
    Ok(match &w.lengths {
        LengthsConfig::Uniform { prompt, output } => (0..n)
            .map(|_| {
                (
                    rng.random_range(prompt[0]..=prompt[1]),
                    rng.random_range(output[0]..=output[1]),
                )
            })
            .collect(),
        LengthsConfig::Fixed { prompt, output } => vec![(*prompt, *output); n],
        LengthsConfig::Zipf {
            min,
            max,
            theta,
            prefill_to_decode_ratio,
        } => {
            let zipf = Zipf::new((max - min + 1) as f64, *theta)
                .map_err(|e| Error::Internal(e.to_string()))?;
            (0..n)
                .map(|_| {
                    let total = min - 1 + zipf.sample(&mut rng) as u32;
                    split_total(total, *prefill_to_decode_ratio)
                })
                .collect()
        }
        LengthsConfig::Trace => {
            let l = trace
                .and_then(|t| t.lengths.as_ref())
                .ok_or_else(|| Error::Internal("trace lengths not loaded".into()))?;
            l[..n].to_vec()
        }
    })
}

/// Splits `total` tokens into (prompt, output) with prompt/output close to `ratio`, each at least 1.
fn split_total(total: u32, ratio: f64) -> (u32, u32) {
    let output = ((total as f64 / (1.0 + ratio)).round() as u32).clamp(1, total - 1);
    (total - output, output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ArrivalConfig, LengthsConfig};

    fn workload(arrival: ArrivalConfig, lengths: LengthsConfig, n: u64) -> WorkloadConfig {
        WorkloadConfig {
            requests: Some(n),
            arrival,
            lengths,
            trace: None,
            trace_format: Default::default(),
            trace_model: None,
            trace_skip_failed: false,
            shared_prefix: None,
            sessions: None,
            deferrable: None,
        }
    }

    fn gaps_s(reqs: &[RequestSpec]) -> Vec<f64> {
        let mut prev = 0u64;
        reqs.iter()
            .map(|r| {
                let g = (r.arrival_ns - prev) as f64 / 1e9;
                prev = r.arrival_ns;
                g
            })
            .collect()
    }

    fn mean_var(x: &[f64]) -> (f64, f64) {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let v = x.iter().map(|g| (g - m) * (g - m)).sum::<f64>() / (x.len() - 1) as f64;
        (m, v)
    }

    #[test]
    fn poisson_gaps_have_mean_and_variance_of_the_exponential_and_are_not_clipped() {
        let rate = 2.0;
        let n = 200_000;
        let w = workload(
            ArrivalConfig::Poisson { rate },
            LengthsConfig::Fixed {
                prompt: 1,
                output: 1,
            },
            n,
        );
        let reqs = generate(Path::new("t.yaml"), &w, 42).unwrap();
        let g = gaps_s(&reqs);
        let (m, v) = mean_var(&g);
        // Standard error of the mean is 1/(rate sqrt(n)) ~ 0.0011 s; allow 4 sigma.
        assert!((m - 0.5).abs() < 4.0 * 0.5 / (n as f64).sqrt(), "mean {m}");
        // Exponential variance is 1/rate^2 = 0.25.
        assert!((v - 0.25).abs() < 0.01, "variance {v}");
        // Vidur clips gaps at 3x the mean; an exponential exceeds that with probability e^-3 ~ 5%.
        let above = g.iter().filter(|x| **x > 1.5).count() as f64 / n as f64;
        assert!(
            (above - (-3.0f64).exp()).abs() < 0.003,
            "tail share {above}"
        );
        let max = g.iter().cloned().fold(0.0, f64::max);
        assert!(
            max > 4.0,
            "largest gap {max} should exceed 8x the mean at n = {n}"
        );
    }

    #[test]
    fn gamma_gaps_have_the_requested_mean_and_cv() {
        let w = workload(
            ArrivalConfig::Gamma { rate: 4.0, cv: 3.0 },
            LengthsConfig::Fixed {
                prompt: 1,
                output: 1,
            },
            200_000,
        );
        let g = gaps_s(&generate(Path::new("t.yaml"), &w, 1).unwrap());
        let (m, v) = mean_var(&g);
        assert!((m - 0.25).abs() < 0.01, "mean {m}");
        let cv = v.sqrt() / m;
        assert!((cv - 3.0).abs() < 0.15, "cv {cv}");
    }

    #[test]
    fn static_arrivals_are_evenly_spaced() {
        let w = workload(
            ArrivalConfig::Static { rate: 3.0 },
            LengthsConfig::Fixed {
                prompt: 5,
                output: 7,
            },
            4,
        );
        let r = generate(Path::new("t.yaml"), &w, 0).unwrap();
        let t: Vec<u64> = r.iter().map(|r| r.arrival_ns).collect();
        assert_eq!(
            t,
            vec![333_333_333, 666_666_667, 1_000_000_000, 1_333_333_333]
        );
        assert!(r
            .iter()
            .all(|r| r.prompt_tokens == 5 && r.output_tokens == 7));
    }

    #[test]
    fn uniform_lengths_stay_in_range_and_cover_it() {
        let w = workload(
            ArrivalConfig::AllAtOnce,
            LengthsConfig::Uniform {
                prompt: [512, 2048],
                output: [128, 512],
            },
            50_000,
        );
        let r = generate(Path::new("t.yaml"), &w, 3).unwrap();
        assert!(r.iter().all(|r| r.arrival_ns == 0));
        let (pmin, pmax) = r.iter().fold((u32::MAX, 0), |(a, b), r| {
            (a.min(r.prompt_tokens), b.max(r.prompt_tokens))
        });
        let (omin, omax) = r.iter().fold((u32::MAX, 0), |(a, b), r| {
            (a.min(r.output_tokens), b.max(r.output_tokens))
        });
        assert_eq!((pmin, pmax), (512, 2048));
        assert_eq!((omin, omax), (128, 512));
        let mean = r.iter().map(|r| r.prompt_tokens as f64).sum::<f64>() / r.len() as f64;
        assert!((mean - 1280.0).abs() < 5.0, "mean prompt {mean}");
    }

    #[test]
    fn zipf_totals_stay_in_range_and_favour_small_values() {
        let (min, max) = (100, 4000);
        let w = workload(
            ArrivalConfig::AllAtOnce,
            LengthsConfig::Zipf {
                min,
                max,
                theta: 1.2,
                prefill_to_decode_ratio: 4.0,
            },
            50_000,
        );
        let r = generate(Path::new("t.yaml"), &w, 9).unwrap();
        let totals: Vec<u32> = r
            .iter()
            .map(|r| r.prompt_tokens + r.output_tokens)
            .collect();
        assert!(totals.iter().all(|t| (min..=max).contains(t)));
        assert!(r
            .iter()
            .all(|r| r.prompt_tokens >= 1 && r.output_tokens >= 1));
        // Rank 1 (the minimum) is the most frequent value, with probability 1/H(n, theta).
        let h: f64 = (1..=(max - min + 1)).map(|k| (k as f64).powf(-1.2)).sum();
        let share_min = totals.iter().filter(|t| **t == min).count() as f64 / totals.len() as f64;
        assert!(
            (share_min - 1.0 / h).abs() < 0.01,
            "share {share_min} vs {}",
            1.0 / h
        );
    }

    #[test]
    fn same_seed_same_requests_other_seed_other_requests() {
        let w = workload(
            ArrivalConfig::Poisson { rate: 1.0 },
            LengthsConfig::Uniform {
                prompt: [1, 100],
                output: [1, 100],
            },
            100,
        );
        let a = generate(Path::new("t.yaml"), &w, 5).unwrap();
        assert_eq!(a, generate(Path::new("t.yaml"), &w, 5).unwrap());
        assert_ne!(a, generate(Path::new("t.yaml"), &w, 6).unwrap());
    }

    #[test]
    fn split_keeps_both_parts_positive() {
        assert_eq!(split_total(2, 20.0), (1, 1));
        assert_eq!(split_total(21, 20.0), (20, 1));
        assert_eq!(split_total(100, 1.0), (50, 50));
    }
}
