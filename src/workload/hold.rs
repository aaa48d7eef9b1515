//! Carbon-aware holding: when each deferrable request is released to the cluster.
//!
//! Input: the requests in submission order (those with a deadline are deferrable), a score per hour
//! of the run (lower is better: the grid's carbon intensity, a price, or minus the solar output;
//! known ahead, as a forecast would give it), the release rate and the margin to keep before each
//! deadline. Output: the same requests, each deferrable one moved to its release time (`arrival_ns`,
//! with `held_ns` the wait), sorted by release time. It may not read files or look at a simulation.
//!
//! The plan, greedy in submission order: a deferrable request submitted at `s` with deadline `d` may
//! be released from `s` to `d - margin`. It goes to the best-scoring hour of that window (the earlier
//! of equal ones) that still has a free release slot; slots are `1 / max_release_rate` apart from each
//! hour's start, so no hour releases more than the rate allows. When the best hour is the one it was
//! submitted in (or its window is empty) it is released at once. Hours that fill up are skipped by
//! later requests; a request whose every later hour is full is released at once.

use super::RequestSpec;
use crate::error::{Error, Result};
use crate::units::SimTime;

/// Nanoseconds in an hour.
const HOUR_NS: SimTime = 3_600_000_000_000;

/// How holding is planned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldRule {
    /// Nanoseconds from the start of hour 0 (the hour the run starts in) to the run's time 0.
    pub offset_ns: SimTime,
    /// Released requests per second at most, from each hour's start.
    pub max_release_rate: f64,
    /// A request is released no later than this long before its deadline.
    pub margin_ns: SimTime,
}

impl HoldRule {
    /// The hour (from the run's first) that run time `t` falls in.
    pub fn hour_of(&self, t: SimTime) -> usize {
        (t.saturating_add(self.offset_ns) / HOUR_NS) as usize
    }

    /// Run time at which hour `h` starts (0 for the first hour, which may start before time 0).
    fn hour_start(&self, h: usize) -> SimTime {
        (h as SimTime)
            .saturating_mul(HOUR_NS)
            .saturating_sub(self.offset_ns)
    }
}

/// The hours a plan reads scores for: from the run's first to the one holding the latest deadline.
pub fn hours_needed(specs: &[RequestSpec], rule: &HoldRule) -> usize {
    specs
        .iter()
        .filter_map(|s| s.deadline_ns)
        .map(|d| rule.hour_of(d) + 1)
        .max()
        .unwrap_or(0)
}

/// What a plan did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HoldOutcome {
    /// Deferrable requests.
    pub deferrable: u64,
    /// Of them, those released later than submitted.
    pub held: u64,
}

/// Plans the release of every deferrable request of `specs` (in submission order) against
/// `scores` (one per hour from the run's first; at least [`hours_needed`] of them), then sorts the
/// requests by release time (ties keep submission order).
pub fn plan(specs: &mut [RequestSpec], scores: &[f64], rule: &HoldRule) -> Result<HoldOutcome> {
    let need = hours_needed(specs, rule);
    if scores.len() < need {
        return Err(Error::Internal(format!(
            "hold plan: {} hourly scores for {need} hours",
            scores.len()
        )));
    }
    if let Some((h, v)) = scores.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::Internal(format!("hold plan: hour {h} scores {v}")));
    }
    if !(rule.max_release_rate.is_finite() && rule.max_release_rate > 0.0) {
        return Err(Error::Internal(format!(
            "hold plan: release rate {}",
            rule.max_release_rate
        )));
    }
    let gap_ns = ((1e9 / rule.max_release_rate).round() as SimTime).max(1);
    // Free slots are counted per hour; an hour with none left scores +inf in the tree.
    let slots_per_hour = HOUR_NS.div_ceil(gap_ns);
    let mut used = vec![0u64; need];
    let mut tree = MinTree::new(&scores[..need]);
    let mut out = HoldOutcome::default();
    for s in specs.iter_mut() {
        let Some(deadline) = s.deadline_ns else {
            continue;
        };
        out.deferrable += 1;
        let submitted = s.arrival_ns;
        let latest = deadline.saturating_sub(rule.margin_ns);
        if latest <= submitted {
            continue;
        }
        let (h0, h1) = (rule.hour_of(submitted), rule.hour_of(latest));
        let slot = |h: usize, used: &[u64]| rule.hour_start(h) + used[h] * gap_ns;
        // The best later hour with a free slot; the last hour of the window only when its next
        // slot comes before `latest`.
        let mut best = tree.min(h0 + 1, h1 + 1);
        if let Some((_, h)) = best {
            if h == h1 && slot(h, &used) > latest {
                best = tree.min(h0 + 1, h1);
            }
        }
        let Some((score, h)) = best else {
            continue;
        };
        if score >= scores[h0] {
            continue;
        }
        let at = slot(h, &used);
        used[h] += 1;
        if used[h] == slots_per_hour {
            tree.set(h, f64::INFINITY);
        }
        s.arrival_ns = at;
        s.held_ns = at - submitted;
        out.held += 1;
    }
    specs.sort_by_key(|s| s.arrival_ns);
    Ok(out)
}

/// A segment tree over hourly scores: the lowest score in a range of hours, and its hour (the
/// earliest of equal ones), in O(log hours).
struct MinTree {
    n: usize,
    /// (score, hour) per node; leaves from `n`.
    node: Vec<(f64, usize)>,
}

impl MinTree {
    fn new(scores: &[f64]) -> Self {
        let n = scores.len().max(1);
        let mut node = vec![(f64::INFINITY, usize::MAX); 2 * n];
        for (h, &v) in scores.iter().enumerate() {
            node[n + h] = (v, h);
        }
        for i in (1..n).rev() {
            node[i] = Self::better(node[2 * i], node[2 * i + 1]);
        }
        MinTree { n, node }
    }

    fn better(a: (f64, usize), b: (f64, usize)) -> (f64, usize) {
        match a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)) {
            std::cmp::Ordering::Greater => b,
            _ => a,
        }
    }

    fn set(&mut self, h: usize, v: f64) {
        let mut i = self.n + h;
        self.node[i].0 = v;
        while i > 1 {
            i /= 2;
            self.node[i] = Self::better(self.node[2 * i], self.node[2 * i + 1]);
        }
    }

    /// The lowest finite score in hours `[a, b)` and its hour.
    fn min(&self, a: usize, b: usize) -> Option<(f64, usize)> {
        let (mut l, mut r) = (a.min(self.n) + self.n, b.min(self.n) + self.n);
        let mut best = (f64::INFINITY, usize::MAX);
        while l < r {
            if l & 1 == 1 {
                best = Self::better(best, self.node[l]);
                l += 1;
            }
            if r & 1 == 1 {
                r -= 1;
                best = Self::better(best, self.node[r]);
            }
            l /= 2;
            r /= 2;
        }
        best.0.is_finite().then_some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: SimTime = 1_000_000_000;

    fn spec(at_s: u64, deadline_s: Option<u64>) -> RequestSpec {
        RequestSpec {
            arrival_ns: at_s * S,
            prompt_tokens: 1,
            output_tokens: 1,
            deadline_ns: deadline_s.map(|d| (at_s + d) * S),
            ..Default::default()
        }
    }

    fn rule(rate: f64) -> HoldRule {
        HoldRule {
            offset_ns: 0,
            max_release_rate: rate,
            margin_ns: 600 * S,
        }
    }

    #[test]
    fn goes_to_the_cleanest_hour_of_its_window() {
        // Hours 0..4 score 5, 9, 1, 3, 0: a request at 10 s with a 3-hour deadline may go up to hour
        // 2 (10 800 + 10 - 600 s lies in hour 2), whose score 1 beats hour 0's 5.
        let mut v = vec![spec(10, Some(3 * 3600)), spec(20, None)];
        let out = plan(&mut v, &[5.0, 9.0, 1.0, 3.0, 0.0], &rule(1.0)).unwrap();
        assert_eq!(
            out,
            HoldOutcome {
                deferrable: 1,
                held: 1
            }
        );
        // Sorted by release: the ordinary request first.
        assert_eq!(v[0].arrival_ns, 20 * S);
        assert_eq!(v[0].held_ns, 0);
        assert_eq!(v[1].arrival_ns, 2 * 3600 * S);
        assert_eq!(v[1].held_ns, (2 * 3600 - 10) * S);
    }

    #[test]
    fn stays_when_its_own_hour_is_best_or_the_window_is_empty() {
        let mut v = vec![spec(10, Some(3 * 3600)), spec(30, Some(300))];
        let out = plan(&mut v, &[1.0, 2.0, 3.0, 4.0], &rule(1.0)).unwrap();
        assert_eq!(
            out,
            HoldOutcome {
                deferrable: 2,
                held: 0
            }
        );
        assert_eq!((v[0].arrival_ns, v[1].arrival_ns), (10 * S, 30 * S));
    }

    #[test]
    fn full_hours_spill_to_the_next_best_and_slots_keep_the_rate() {
        // 0.001 requests/s: 4 slots per hour (1000 s apart). Five requests all prefer hour 1; the
        // fifth goes to hour 2, the next best.
        let mut v: Vec<_> = (0..5).map(|i| spec(i, Some(4 * 3600))).collect();
        let out = plan(&mut v, &[9.0, 1.0, 2.0, 8.0, 8.0], &rule(0.001)).unwrap();
        assert_eq!(out.held, 5);
        let at: Vec<u64> = v.iter().map(|s| s.arrival_ns / S).collect();
        assert_eq!(at, vec![3600, 4600, 5600, 6600, 7200]);
        for s in &v {
            assert!(s.arrival_ns <= s.deadline_ns.unwrap() - 600 * S);
        }
    }

    #[test]
    fn the_last_hour_is_used_only_before_the_margin() {
        // Deadline at 2 h 5 min with a 10-minute margin: the latest release is 1 h 55 min, in hour 1;
        // hour 2 (score 0) is out of reach, hour 1 (score 1) is used.
        let mut v = vec![spec(0, Some(7500))];
        plan(&mut v, &[5.0, 1.0, 0.0], &rule(1.0)).unwrap();
        assert_eq!(v[0].arrival_ns, 3600 * S);
        // An offset puts time 0 half an hour into hour 0: hour 2 starts at 5400 s, before the latest
        // release (6900 s), and is taken.
        let r = HoldRule {
            offset_ns: 1800 * S,
            ..rule(1.0)
        };
        let mut v = vec![spec(0, Some(7500))];
        plan(&mut v, &[5.0, 1.0, 0.0], &r).unwrap();
        assert_eq!(v[0].arrival_ns, 5400 * S);
    }

    #[test]
    fn needs_a_score_for_every_hour_up_to_the_latest_deadline() {
        let mut v = vec![spec(0, Some(3 * 3600))];
        assert_eq!(hours_needed(&v, &rule(1.0)), 4);
        assert!(plan(&mut v, &[1.0, 2.0], &rule(1.0)).is_err());
    }

    #[test]
    fn min_tree_finds_the_earliest_lowest() {
        let mut t = MinTree::new(&[3.0, 1.0, 2.0, 1.0]);
        assert_eq!(t.min(0, 4), Some((1.0, 1)));
        assert_eq!(t.min(2, 4), Some((1.0, 3)));
        t.set(1, f64::INFINITY);
        assert_eq!(t.min(0, 4), Some((1.0, 3)));
        assert_eq!(t.min(1, 2), None);
        assert_eq!(t.min(3, 3), None);
    }
}
