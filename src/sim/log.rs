//! The batch-stage log: one row per batch per pipeline stage, handed to a [`BatchSink`] as the loop
//! produces it ([`FanOut`] hands it to several). [`BatchLog`] keeps the rows in memory as columns (for
//! tests and replays); the `simulate` command streams them to disk instead, so memory does not grow
//! with the run's length.

use super::models::{StageCost, StagePrice};
use crate::cluster::Batch;
use crate::units::SimTime;

/// One batch on one pipeline stage (see docs/metrics.md, batches.parquet): one step, or a run of
/// identical decode steps ([`crate::cluster::DecodeRun`]) whose tokens, work, time and energy it sums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchRow {
    pub replica: u32,
    pub stage: u32,
    pub start_ns: SimTime,
    pub end_ns: SimTime,
    /// Steps the row covers (1 but for a run of decode steps).
    pub steps: u32,
    /// Requests with work in each step.
    pub num_requests: u32,
    pub prefill_tokens: u32,
    pub decode_tokens: u32,
    pub padding_seqs: u32,
    pub kv_blocks_used: u64,
    pub flops: f64,
    pub bytes: f64,
    /// Host time at the end of the stage that the GPU waits through (included in start..end), ns.
    pub host_ns: u64,
    /// Clock fraction the power cap allowed during the GPU work (1: unthrottled).
    pub clock: f64,
    /// Power of each GPU of the stage during its GPU work, watts (NaN without a power profile).
    pub power_w: f64,
    /// Mean power of each GPU during the host wait, watts (NaN without a power profile).
    pub host_power_w: f64,
    /// Energy of all GPUs of the stage for this batch, GPU work and host wait, joules (NaN without a
    /// power profile).
    pub energy_j: f64,
    /// Energy of the host CPU above its loaded idle while it ran its layers (partial GPU offload),
    /// joules; not part of `energy_j` and not written to batches.parquet (0 without offload).
    pub host_cpu_j: f64,
}

impl BatchRow {
    pub fn new(
        b: &Batch,
        stage: u32,
        start: SimTime,
        end: SimTime,
        cost: &StageCost,
        price: &StagePrice,
    ) -> Self {
        BatchRow {
            replica: b.replica,
            stage,
            start_ns: start,
            end_ns: end,
            steps: b.run.steps,
            num_requests: b.items.len() as u32,
            prefill_tokens: b.shape.prefill_tokens,
            decode_tokens: (b.shape.decode_seqs - b.padding_seqs) * b.run.steps,
            padding_seqs: b.padding_seqs,
            kv_blocks_used: b.kv_used,
            flops: cost.flops,
            bytes: cost.bytes,
            host_ns: cost.host_ns,
            clock: price.clock,
            power_w: price.power_w,
            host_power_w: price.host_power_w,
            energy_j: price.energy_j,
            host_cpu_j: price.host_cpu_j,
        }
    }
}

/// Receives batch-stage rows as the simulation produces them: the in-memory log, the files of a run
/// folder, the energy accumulator.
pub trait BatchSink {
    fn push(&mut self, row: &BatchRow) -> crate::error::Result<()>;

    /// A KV-cache transfer from a prefill replica to a decode replica (disaggregated serving); sinks
    /// that do not count them ignore it.
    fn transfer(&mut self, _t: &KvTransfer) -> crate::error::Result<()> {
        Ok(())
    }
}

/// One request's KV cache crossing the link from a prefill replica to a decode replica: every GPU of
/// the prefill replica sends its share to its peer, all in parallel, from `start_ns` to `end_ns`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvTransfer {
    /// The request whose cache moves.
    pub request: u32,
    pub from_replica: u32,
    pub to_replica: u32,
    pub start_ns: SimTime,
    pub end_ns: SimTime,
    /// Bytes each link carries: the prefill replica's cache over `gpus`, rounded up.
    pub bytes_per_gpu: u64,
    /// Links carrying it in parallel, one per GPU pair: the GPUs of the smaller replica (all of one
    /// replica's when both pools have the same GPUs per replica).
    pub gpus: u32,
    /// Power of the transfer per GPU, W; its energy is `power_w x gpus x (end - start)`.
    pub power_w: f64,
}

impl KvTransfer {
    /// Energy of the links during the transfer, joules.
    pub fn energy_j(&self) -> f64 {
        self.power_w * self.gpus as f64 * (self.end_ns - self.start_ns) as f64 / 1e9
    }
}

/// Hands each row to every sink, in the order they were given.
#[derive(Default)]
pub struct FanOut<'a> {
    sinks: Vec<&'a mut dyn BatchSink>,
}

impl<'a> FanOut<'a> {
    /// Adds `sink`, when there is one.
    pub fn with(mut self, sink: Option<&'a mut dyn BatchSink>) -> Self {
        self.sinks.extend(sink);
        self
    }
}

impl BatchSink for FanOut<'_> {
    fn push(&mut self, row: &BatchRow) -> crate::error::Result<()> {
        for s in self.sinks.iter_mut() {
            s.push(row)?;
        }
        Ok(())
    }

    fn transfer(&mut self, t: &KvTransfer) -> crate::error::Result<()> {
        for s in self.sinks.iter_mut() {
            s.transfer(t)?;
        }
        Ok(())
    }
}

/// Columns of the batch-stage log, in memory.
#[derive(Debug, Default, Clone)]
pub struct BatchLog {
    pub replica: Vec<u32>,
    pub stage: Vec<u32>,
    pub start_ns: Vec<SimTime>,
    pub end_ns: Vec<SimTime>,
    pub steps: Vec<u32>,
    pub num_requests: Vec<u32>,
    pub prefill_tokens: Vec<u32>,
    pub decode_tokens: Vec<u32>,
    pub padding_seqs: Vec<u32>,
    pub kv_blocks_used: Vec<u64>,
    pub flops: Vec<f64>,
    pub bytes: Vec<f64>,
    pub host_ns: Vec<u64>,
    pub clock: Vec<f64>,
    pub power_w: Vec<f64>,
    pub host_power_w: Vec<f64>,
    pub energy_j: Vec<f64>,
    /// The host CPU's energy above loaded idle per row (partial GPU offload; 0 without).
    pub host_cpu_j: Vec<f64>,
    /// KV-cache transfers between pools (disaggregated serving), in the order they were scheduled.
    pub transfers: Vec<KvTransfer>,
}

impl BatchSink for BatchLog {
    fn transfer(&mut self, t: &KvTransfer) -> crate::error::Result<()> {
        self.transfers.push(*t);
        Ok(())
    }

    fn push(&mut self, r: &BatchRow) -> crate::error::Result<()> {
        self.replica.push(r.replica);
        self.stage.push(r.stage);
        self.start_ns.push(r.start_ns);
        self.end_ns.push(r.end_ns);
        self.steps.push(r.steps);
        self.num_requests.push(r.num_requests);
        self.prefill_tokens.push(r.prefill_tokens);
        self.decode_tokens.push(r.decode_tokens);
        self.padding_seqs.push(r.padding_seqs);
        self.kv_blocks_used.push(r.kv_blocks_used);
        self.flops.push(r.flops);
        self.bytes.push(r.bytes);
        self.host_ns.push(r.host_ns);
        self.clock.push(r.clock);
        self.power_w.push(r.power_w);
        self.host_power_w.push(r.host_power_w);
        self.energy_j.push(r.energy_j);
        self.host_cpu_j.push(r.host_cpu_j);
        Ok(())
    }
}

impl BatchLog {
    /// An empty log with room for `rows` rows, so that filling it reallocates nothing.
    pub fn with_capacity(rows: usize) -> BatchLog {
        BatchLog {
            replica: Vec::with_capacity(rows),
            stage: Vec::with_capacity(rows),
            start_ns: Vec::with_capacity(rows),
            end_ns: Vec::with_capacity(rows),
            steps: Vec::with_capacity(rows),
            num_requests: Vec::with_capacity(rows),
            prefill_tokens: Vec::with_capacity(rows),
            decode_tokens: Vec::with_capacity(rows),
            padding_seqs: Vec::with_capacity(rows),
            kv_blocks_used: Vec::with_capacity(rows),
            flops: Vec::with_capacity(rows),
            bytes: Vec::with_capacity(rows),
            host_ns: Vec::with_capacity(rows),
            clock: Vec::with_capacity(rows),
            power_w: Vec::with_capacity(rows),
            host_power_w: Vec::with_capacity(rows),
            energy_j: Vec::with_capacity(rows),
            host_cpu_j: Vec::with_capacity(rows),
            transfers: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.replica.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replica.is_empty()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> BatchRow {
        BatchRow {
            replica: self.replica[i],
            stage: self.stage[i],
            start_ns: self.start_ns[i],
            end_ns: self.end_ns[i],
            steps: self.steps[i],
            num_requests: self.num_requests[i],
            prefill_tokens: self.prefill_tokens[i],
            decode_tokens: self.decode_tokens[i],
            padding_seqs: self.padding_seqs[i],
            kv_blocks_used: self.kv_blocks_used[i],
            flops: self.flops[i],
            bytes: self.bytes[i],
            host_ns: self.host_ns[i],
            clock: self.clock[i],
            power_w: self.power_w[i],
            host_power_w: self.host_power_w[i],
            energy_j: self.energy_j[i],
            host_cpu_j: self.host_cpu_j[i],
        }
    }
}
