//! What the loop asks of the layers above it, as traits it defines (so it imports none of them): the
//! cost of a batch stage ([`CostModel`], implemented by the predictor), the power and energy of a stage
//! from its cost ([`StagePower`], implemented by the power model), and how a stage's energy is shared
//! among the requests in it ([`EnergySharing`], implemented by accounting). One `&dyn` call each per
//! stage, no allocation.

use crate::cluster::window::RequestWindow;
use crate::cluster::{BatchItem, BatchShape, DecodeRun};
use serde::Serialize;

/// The predicted cost of one batch on one pipeline stage (per GPU of the stage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageCost {
    /// GPU time of the stage at full clocks, nanoseconds (at least 1).
    pub time_ns: u64,
    /// Host time after the GPU work that the GPU waits through (the part of the engine's per-iteration
    /// host work not hidden behind GPU work), nanoseconds. The stage occupies its GPUs for
    /// `time_ns + host_ns` (longer when the power cap lowers clocks).
    pub host_ns: u64,
    /// Floating-point operations executed by one GPU of the stage.
    pub flops: f64,
    /// Bytes moved to and from device memory by one GPU of the stage.
    pub bytes: f64,
    /// Of `time_ns`, nanoseconds the GPU waits on another device's work inside the stage and draws
    /// its loaded-idle power (partial GPU offload: the host CPU's layers); its FLOPs and bytes are
    /// those of the rest. 0 otherwise.
    #[serde(skip_serializing_if = "is_zero")]
    pub idle_ns: u64,
    /// Of `idle_ns`, nanoseconds the host CPU runs its layers (partial GPU offload), and the
    /// floating-point operations and bytes of that work, which the host CPU's power profile prices
    /// (`StagePrice::host_cpu_j`). 0 otherwise.
    #[serde(skip_serializing_if = "is_zero")]
    pub cpu_ns: u64,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub cpu_flops: f64,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub cpu_bytes: f64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

/// Prices a batch stage. Pure: the same shape and stage give the same cost.
pub trait CostModel {
    fn stage_cost(&self, shape: &BatchShape, stage: u32) -> StageCost;

    /// Appends to `out` the cost on `stage` of each step of `run`, in step order, step 0 having shape
    /// `first`: bit for bit [`CostModel::stage_cost`] of each step's shape
    /// ([`DecodeRun::shape_of_step`]), with the same side effects (prediction counts) as pricing the
    /// steps one by one. The default does just that. A static batch's run is hundreds of steps that
    /// differ only in their decode context, so a model overrides it to compute once what the context
    /// does not change (the linear layers, the output head, the host time) and per step only the
    /// attention over the context.
    fn run_costs(&self, first: &BatchShape, run: &DecodeRun, stage: u32, out: &mut Vec<StageCost>) {
        out.extend((0..run.steps).map(|j| self.stage_cost(&run.shape_of_step(first, j), stage)));
    }
}

/// A stage priced by the power model: how long its GPU work takes at the clocks the power cap allows,
/// the power during the GPU work and during the host wait after it, and the energy of both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StagePrice {
    /// GPU time, nanoseconds: the cost's `time_ns`, stretched when the cap lowers clocks.
    pub gpu_ns: u64,
    /// Per-GPU power during the GPU work, watts.
    pub power_w: f64,
    /// Mean per-GPU power during the host wait, watts (loaded idle plus the decay after the burst).
    pub host_power_w: f64,
    /// Energy of all GPUs of the stage over GPU work and host wait, joules.
    pub energy_j: f64,
    /// Clock fraction the cap allowed (1: unthrottled).
    pub clock: f64,
    /// Energy of the host CPU above its loaded idle while it runs its layers in the stage (partial
    /// GPU offload, the cost's `cpu_ns`), joules: not part of `energy_j` (0 without offload; NaN
    /// without an energy model).
    pub host_cpu_j: f64,
}

impl StagePrice {
    /// The price of a stage without an energy model: full clocks, no power.
    pub fn unpriced(c: &StageCost) -> Self {
        StagePrice {
            gpu_ns: c.time_ns,
            power_w: f64::NAN,
            host_power_w: f64::NAN,
            energy_j: f64::NAN,
            clock: 1.0,
            host_cpu_j: f64::NAN,
        }
    }
}

/// The power, energy and throttled time of a stage from its cost.
pub trait StagePower {
    fn price(&self, c: &StageCost) -> StagePrice;

    /// The price of `c` run by GPU group `group` (replica x pipeline stage) from `start_ns`: for a
    /// model with state over time (a device that heats and throttles). Stages of one group come in
    /// time order. The default is [`StagePower::price`].
    fn price_at(&self, c: &StageCost, group: usize, start_ns: u64) -> StagePrice {
        let _ = (group, start_ns);
        self.price(c)
    }
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
