//! Execution time of a batch stage: the interface the event loop calls, and its implementations.
//!
//! Input: a [`BatchShape`] (what one iteration computes) and a pipeline stage. Output: a [`StageCost`]
//! (time in nanoseconds, plus the FLOPs and bytes moved, which the power model uses). The event loop
//! only sees the [`Predictor`] trait, so the roofline and profile-fitted models are interchangeable.

pub mod attention;
pub mod fit;
pub mod offload;
pub mod profile;
pub mod roofline;

pub use crate::cluster::shape::BatchShape;
pub use crate::cluster::DecodeRun;
pub use crate::sim::{CostModel, StageCost};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a prediction comes from, per operation, for the run's provenance.
#[derive(Debug, Clone, Serialize)]
pub struct PredictorInfo {
    /// `roofline` or a profile-fitted model.
    pub kind: String,
    /// A sentence on what the numbers are worth.
    pub note: String,
    /// Operation name -> source (`roofline`, or a profile file).
    pub sources: Vec<(String, String)>,
    /// Parameters of the model.
    pub parameters: serde_json::Value,
    /// Per operation: predictions made, and how many fell outside the range the model was fitted on
    /// (extrapolated). Empty for models without a fitted range.
    pub out_of_range: Vec<RangeCount>,
}

/// Predictions of one operation and how many were extrapolated.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RangeCount {
    pub op: String,
    pub predictions: u64,
    pub beyond_profile: u64,
}

/// Counters of in-range and extrapolated predictions per operation.
///
/// A count is a relaxed load and store, not a locked read-modify-write: the loop prices every batch
/// stage through several of them, and locked increments cost as much as the rest of a prediction.
/// The counts are exact while one thread predicts at a time, as every run does (each builds its own
/// predictor); threads sharing one predictor would be memory-safe but could undercount.
#[derive(Debug)]
pub struct RangeCounts {
    ops: Vec<(&'static str, AtomicU64, AtomicU64)>,
}

impl RangeCounts {
    pub fn new(ops: &[&'static str]) -> Self {
        RangeCounts {
            ops: ops
                .iter()
                .map(|o| (*o, AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Counts one prediction, extrapolated or not, of the `i`-th operation given to
    /// [`RangeCounts::new`] (by index: the loop counts on every stage); an index out of range counts
    /// nothing.
    pub fn record_at(&self, i: usize, beyond: bool) {
        self.record_n(i, 1, beyond as u64);
    }

    /// Counts `n` predictions of the `i`-th operation, `beyond` of them extrapolated: as `n` calls of
    /// [`RangeCounts::record_at`] (for the steps of a run of decode steps priced at once).
    pub fn record_n(&self, i: usize, n: u64, beyond: u64) {
        if let Some((_, c, b)) = self.ops.get(i) {
            c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
            if beyond > 0 {
                b.store(b.load(Ordering::Relaxed) + beyond, Ordering::Relaxed);
            }
        }
    }

    /// The counts so far, operations with no prediction left out.
    pub fn snapshot(&self) -> Vec<RangeCount> {
        self.ops
            .iter()
            .map(|(o, n, b)| RangeCount {
                op: o.to_string(),
                predictions: n.load(Ordering::Relaxed),
                beyond_profile: b.load(Ordering::Relaxed),
            })
            .filter(|c| c.predictions > 0)
            .collect()
    }
}

/// Predicts batch-stage execution costs ([`CostModel`], which the event loop calls) and says where its
/// numbers come from. Implementations are pure: the same shape gives the same cost.
pub trait Predictor: CostModel + Send + Sync {
    fn info(&self) -> PredictorInfo;
}
