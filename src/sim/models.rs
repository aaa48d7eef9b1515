//! What the loop asks of the layers above it, as traits it defines (so it imports none of them): the
//! cost of a batch stage ([`CostModel`], implemented by the predictor), the power and energy of a stage
//! from its cost ([`StagePower`], implemented by the power model), and how a stage's energy is shared
//! among the requests in it ([`EnergySharing`], implemented by accounting). One `&dyn` call each per
//! stage, no allocation.

use crate::cluster::window::RequestWindow;
use crate::cluster::{BatchItem, BatchShape};
use serde::Serialize;

/// The predicted cost of one batch on one pipeline stage (per GPU of the stage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageCost {
    /// Wall time of the stage, nanoseconds (at least 1).
    pub time_ns: u64,
    /// Floating-point operations executed by one GPU of the stage.
    pub flops: f64,
    /// Bytes moved to and from device memory by one GPU of the stage.
    pub bytes: f64,
}

/// Prices a batch stage. Pure: the same shape and stage give the same cost.
pub trait CostModel {
    fn stage_cost(&self, shape: &BatchShape, stage: u32) -> StageCost;
}

/// The power and energy of a stage from its cost.
pub trait StagePower {
    /// Per-GPU power (watts) and the energy of all GPUs of the stage (joules) over a stage of cost `c`.
    fn price(&self, c: &StageCost) -> (f64, f64);
}

/// Shares a stage's energy among the requests of its batch.
pub trait EnergySharing {
    /// Adds to each request of `items` its share of `energy_j` (joules).
    fn share(&self, energy_j: f64, items: &[BatchItem], requests: &mut RequestWindow);
}

/// The loop's energy models: how a stage's energy is priced and how it is shared.
#[derive(Clone, Copy)]
pub struct Energy<'a> {
    pub power: &'a dyn StagePower,
    pub sharing: &'a dyn EnergySharing,
}
