//! The batch-stage log: one row per batch per pipeline stage, kept as columns.

use crate::cluster::Batch;
use crate::predictor::StageCost;
use crate::units::SimTime;

/// Columns of the batch-stage log (see docs/metrics.md, batches.parquet).
#[derive(Debug, Default, Clone)]
pub struct BatchLog {
    pub replica: Vec<u32>,
    pub stage: Vec<u32>,
    pub start_ns: Vec<SimTime>,
    pub end_ns: Vec<SimTime>,
    pub num_requests: Vec<u32>,
    pub prefill_tokens: Vec<u32>,
    pub decode_tokens: Vec<u32>,
    pub padding_seqs: Vec<u32>,
    pub kv_blocks_used: Vec<u64>,
    pub flops: Vec<f64>,
    pub bytes: Vec<f64>,
    /// Power of each GPU of the stage while it runs this batch, watts (NaN without a power profile).
    pub power_w: Vec<f64>,
    /// Energy of all GPUs of the stage for this batch, joules (NaN without a power profile).
    pub energy_j: Vec<f64>,
}

impl BatchLog {
    pub fn push(
        &mut self,
        b: &Batch,
        stage: u32,
        start: SimTime,
        cost: &StageCost,
        power_w: f64,
        energy_j: f64,
    ) {
        self.replica.push(b.replica);
        self.stage.push(stage);
        self.start_ns.push(start);
        self.end_ns.push(start + cost.time_ns);
        self.num_requests.push(b.items.len() as u32);
        self.prefill_tokens.push(b.shape.prefill_tokens);
        self.decode_tokens
            .push(b.shape.decode_seqs - b.padding_seqs);
        self.padding_seqs.push(b.padding_seqs);
        self.kv_blocks_used.push(b.kv_used);
        self.flops.push(cost.flops);
        self.bytes.push(cost.bytes);
        self.power_w.push(power_w);
        self.energy_j.push(energy_j);
    }

    pub fn len(&self) -> usize {
        self.replica.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replica.is_empty()
    }
}
