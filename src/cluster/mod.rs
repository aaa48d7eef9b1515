//! The simulated cluster: requests' serving state, replicas with their KV cache, routers and batching
//! policies.
//!
//! The event loop ([`crate::sim`]) holds the replicas and the requests in flight; policies form batches
//! from a replica's queues, and [`finish::finish_batch`] applies each batch that leaves the last stage
//! back to its requests and replica. All per-request state lives in one flat
//! array indexed by request id.

pub mod finish;
pub mod kv;
pub mod policy;
pub mod router;
pub mod shape;
pub mod window;

use crate::units::SimTime;
pub use shape::BatchShape;
use std::collections::VecDeque;

/// Why a request was turned away instead of served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Its prompt and output need more KV-cache blocks than the replica has.
    KvCapacity,
    /// Its tokens exceed the per-iteration token budget and the policy cannot split them.
    TokenBudget,
    /// Its prompt and output exceed the model's context length.
    ContextLength,
}

impl RejectReason {
    /// The request's status in requests.csv.
    pub fn status(self) -> &'static str {
        match self {
            RejectReason::KvCapacity => "rejected_kv_capacity",
            RejectReason::TokenBudget => "rejected_token_budget",
            RejectReason::ContextLength => "rejected_context_length",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RejectReason::KvCapacity => "kv_capacity",
            RejectReason::TokenBudget => "token_budget",
            RejectReason::ContextLength => "context_length",
        }
    }
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not yet arrived.
    Pending,
    /// In its replica's waiting queue (also after a preemption).
    Waiting,
    /// Admitted: holds KV cache and is in the replica's running list.
    Running,
    /// Prefilled on a prefill replica (disaggregated serving): its KV cache, still held there, is
    /// moving to a decode replica; it is in no replica's lists.
    Transferring,
    Completed,
    Rejected(RejectReason),
}

/// One request's serving state. Times are simulated nanoseconds.
#[derive(Debug, Clone)]
pub struct Request {
    pub arrival_ns: SimTime,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// The replica serving it (with disaggregated serving: its decode replica once prefilled).
    pub replica: u32,
    /// Disaggregated serving: the prefill replica it was prefilled on before moving to `replica`
    /// ([`NO_REPLICA`]: it never moved).
    pub prefill_replica: u32,
    pub phase: Phase,
    /// Tokens to prefill before decoding: the prompt, or after a preemption the prompt plus the tokens
    /// generated so far (recomputation).
    pub prefill_target: u32,
    /// Tokens of `prefill_target` already processed.
    pub prefilled: u32,
    /// Output tokens emitted.
    pub generated: u32,
    /// Tokens whose keys and values are in the KV cache.
    pub kv_tokens: u32,
    /// KV-cache units (blocks, or tokens for token-granular caches) held.
    pub kv_held: u64,
    /// Part of a batch that has not finished yet.
    pub in_flight: bool,
    /// Still referred to by its replica after finishing (a static batch's padding member), so the
    /// loop keeps it.
    pub pinned: bool,
    pub preemptions: u32,
    pub scheduled_ns: Option<SimTime>,
    pub first_token_ns: Option<SimTime>,
    pub last_token_ns: SimTime,
    pub completion_ns: Option<SimTime>,
    pub tbt_max_ns: u64,
    /// GPU energy of the batch stages this request took part in, shared by tokens processed: prefill
    /// chunks (recomputation included) and decode steps, joules.
    pub prefill_energy_j: f64,
    pub decode_energy_j: f64,
    /// The shared prefix its prompt starts with, and that prefix's tokens (0: none).
    pub prefix_group: u32,
    pub prefix_tokens: u32,
    /// Prompt tokens found in the prefix cache, summed over its admissions (a preempted request is
    /// admitted again): prefill work skipped.
    pub cached_tokens: u32,
    /// Leading blocks of its prefix that it references in the replica's prefix cache.
    pub prefix_refs: u32,
    /// The multi-turn session it is a turn of ([`NO_SESSION`]: none), and which turn (0: the first).
    pub session: u32,
    pub turn: u32,
    /// How long it was held between its submission and `arrival_ns` (carbon-aware holding).
    pub held_ns: SimTime,
    /// A deferrable request's deadline (`None`: an ordinary request).
    pub deadline_ns: Option<SimTime>,
}

/// [`Request::prefill_replica`] of a request that never moved between pools.
pub const NO_REPLICA: u32 = u32::MAX;

/// [`Request::session`] of a request outside any session.
pub const NO_SESSION: u32 = u32::MAX;

impl Request {
    pub fn new(arrival_ns: SimTime, prompt_tokens: u32, output_tokens: u32) -> Self {
        Request {
            arrival_ns,
            prompt_tokens,
            output_tokens,
            replica: 0,
            prefill_replica: NO_REPLICA,
            phase: Phase::Pending,
            prefill_target: prompt_tokens,
            prefilled: 0,
            generated: 0,
            kv_tokens: 0,
            kv_held: 0,
            in_flight: false,
            pinned: false,
            preemptions: 0,
            scheduled_ns: None,
            first_token_ns: None,
            last_token_ns: 0,
            completion_ns: None,
            tbt_max_ns: 0,
            prefill_energy_j: 0.0,
            decode_energy_j: 0.0,
            prefix_group: 0,
            prefix_tokens: 0,
            cached_tokens: 0,
            prefix_refs: 0,
            session: NO_SESSION,
            turn: 0,
            held_ns: 0,
            deadline_ns: None,
        }
    }

    /// Still prefilling (its next work is a prefill chunk).
    pub fn in_prefill(&self) -> bool {
        self.prefilled < self.prefill_target
    }

    /// Most tokens this request ever holds in the KV cache: the prompt and every output token but the
    /// last (whose keys are never needed). Saturates at `u32::MAX` tokens (far beyond any context the
    /// loop admits: the arrival check rejects a request longer than the model's context first).
    pub fn peak_kv_tokens(&self) -> u32 {
        self.prompt_tokens
            .saturating_add(self.output_tokens)
            .saturating_sub(1)
    }

    /// Whole blocks of `block_size` tokens of its shared prefix that can come from a prefix cache:
    /// the prefix leaves at least one token of its prefill target to compute.
    pub fn shareable_prefix_blocks(&self, block_size: u32) -> u32 {
        self.prefix_tokens
            .min(self.prefill_target.saturating_sub(1))
            / block_size
    }

    /// Output tokens still to produce.
    pub fn remaining_output(&self) -> u32 {
        self.output_tokens - self.generated
    }
}

/// One unit of work of a request in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchItem {
    pub request: u32,
    /// Prefill tokens processed (0 for a decode step).
    pub prefill_tokens: u32,
}

/// A batch formed by a replica's policy, travelling through its pipeline stages.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub replica: u32,
    pub items: Vec<BatchItem>,
    pub shape: BatchShape,
    /// Static-batch padding sequences (FasterTransformer), counted in `shape` but not in `items`.
    pub padding_seqs: u32,
    /// KV-cache units in use on the replica when the batch was formed.
    pub kv_used: u64,
    /// Decode steps the batch runs back to back: 1, or for a static batch's decode a whole run of
    /// steps between two completions of its members ([`DecodeRun`]).
    pub run: DecodeRun,
    /// Duration of each step of the run, ns (filled by the loop as it prices them).
    pub step_ns: Vec<u64>,
}

/// A run of identical decode steps: nothing joins or leaves the batch until its end, and each step
/// extends the context of the `growing` sequences by one token (the padding sequences of a static
/// batch keep theirs). Step `j` (0-based) has the shape of step 0 with `j` more tokens of context per
/// growing sequence ([`DecodeRun::shape_of_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeRun {
    /// Steps in the run (at least 1).
    pub steps: u32,
    /// Sequences whose context grows each step.
    pub growing: u32,
    /// Largest context of a growing sequence in step 0 (0: none grows).
    pub growing_max_context: u32,
    /// Largest context of a sequence that does not grow (0: none).
    pub fixed_max_context: u32,
}

impl Default for DecodeRun {
    fn default() -> Self {
        DecodeRun {
            steps: 1,
            growing: 0,
            growing_max_context: 0,
            fixed_max_context: 0,
        }
    }
}

impl DecodeRun {
    /// The shape of step `j` of a run whose step 0 has shape `first`.
    pub fn shape_of_step(&self, first: &BatchShape, j: u32) -> BatchShape {
        let mut s = *first;
        s.decode_context_sum += self.growing as u64 * j as u64;
        if self.growing > 0 {
            s.decode_max_context = (self.growing_max_context + j).max(self.fixed_max_context);
        }
        s
    }

    /// This run with every step padded by [`BatchShape::add_padding`]`(n)` (a CUDA graph captured for
    /// more sequences than the batch has): from step 0 padded, step `j` of the returned run is step
    /// `j` of this run padded. The padding slots' context does not grow.
    pub fn with_padding(&self, n: u32) -> DecodeRun {
        let mut r = *self;
        if n > 0 {
            r.fixed_max_context = r.fixed_max_context.max(1);
        }
        r
    }
}

/// A pipeline stage of a replica: the batch it runs and those queued for it.
#[derive(Debug, Clone, Default)]
pub struct Stage {
    pub current: Option<u32>,
    pub queue: VecDeque<u32>,
}

/// What a replica does with the requests routed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Prefill and decode (colocated serving).
    #[default]
    Both,
    /// Prefill only: a request whose prefill completes leaves for a decode replica
    /// ([`Replica::handoffs`]).
    Prefill,
    /// Decode only: requests arrive prefilled ([`Replica::incoming`]); one preempted here is
    /// recomputed here.
    Decode,
}

/// One model replica: its queues, KV cache and pipeline stages.
#[derive(Debug, Clone)]
pub struct Replica {
    pub role: Role,
    pub waiting: VecDeque<u32>,
    /// Decode replicas: prefilled requests whose KV cache has arrived, waiting for cache and a seat in
    /// the running list (admitted before the policy forms a batch).
    pub incoming: VecDeque<u32>,
    /// Prefill replicas: requests whose prefill completed in the batch just finished, for the loop to
    /// move to the decode pool.
    pub handoffs: Vec<u32>,
    /// Admitted requests in admission order.
    pub running: Vec<u32>,
    pub kv: kv::KvCache,
    pub stages: Vec<Stage>,
    /// Batches formed and not yet through the last stage.
    pub batches_in_flight: u32,
    /// Requests routed here and not yet finished (for least-outstanding routing).
    pub outstanding: u32,
    /// A schedule event is queued for this replica.
    pub schedule_pending: bool,
    /// Policy-specific state.
    pub policy_state: policy::PolicyState,
}

impl Replica {
    pub fn new(kv: kv::KvCache, stages: u32) -> Self {
        Replica {
            role: Role::Both,
            waiting: VecDeque::new(),
            incoming: VecDeque::new(),
            handoffs: Vec::new(),
            running: Vec::new(),
            kv,
            stages: vec![Stage::default(); stages as usize],
            batches_in_flight: 0,
            outstanding: 0,
            schedule_pending: false,
            policy_state: policy::PolicyState::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_run_steps_as_its_steps_padded() {
        for (growing, fixed) in [
            (&[5u32, 90][..], &[200u32][..]),
            (&[0], &[]),
            (&[7], &[0, 3]),
        ] {
            let mut first = BatchShape::default();
            let mut run = DecodeRun {
                steps: 50,
                ..Default::default()
            };
            for &c in growing {
                first.add_decode(c);
                run.growing += 1;
                run.growing_max_context = run.growing_max_context.max(c + 1);
            }
            for &c in fixed {
                first.add_decode(c);
                run.fixed_max_context = run.fixed_max_context.max(c + 1);
            }
            for n in [0, 1, 6] {
                let mut padded = first;
                padded.add_padding(n);
                for j in 0..run.steps {
                    let mut want = run.shape_of_step(&first, j);
                    want.add_padding(n);
                    assert_eq!(run.with_padding(n).shape_of_step(&padded, j), want);
                }
            }
        }
    }
}
