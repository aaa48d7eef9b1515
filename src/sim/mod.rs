//! The discrete-event loop.
//!
//! Input: a resolved [`Scenario`], its requests (sorted by arrival) and a [`Predictor`]. Output: each
//! finished request's timeline (to a [`RequestSink`], in id order), one log row per batch stage (to a
//! [`BatchSink`]), and a [`SimResult`] with the token-gap histogram and counts. Time is integer nanoseconds; events at the same instant run in the order they were
//! created (a sequence number breaks ties), so a run is reproducible bit for bit.

mod log;

pub use crate::cluster::window::{RequestSink, RequestWindow};
pub use log::{BatchLog, BatchRow, BatchSink};

use crate::catalog::DeviceSpec;
use crate::cluster::kv::KvCache;
use crate::cluster::policy::{form_batch, Ctx, Limits};
use crate::cluster::router::Router;
use crate::cluster::{Batch, Phase, Replica, Request};
use crate::config::Scenario;
use crate::error::{Error, Result};
use crate::power::{PowerProfile, Utilisation};
use crate::predictor::{Predictor, StageCost};
use crate::rng::substream;
use crate::units::SimTime;
use crate::workload::RequestSpec;
use hdrhistogram::Histogram;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What happens at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Request `0` arrives at the router.
    Arrival(u32),
    /// Replica `0` forms batches (queued after same-instant arrivals, so they batch together).
    Schedule(u32),
    /// Pipeline stage `stage` of `replica` finishes its current batch.
    StageDone { replica: u32, stage: u32 },
}

/// Everything a run produces.
pub struct SimResult {
    /// Every request, by id (filled by [`run`]; empty from [`run_into`], whose sink gets them).
    pub requests: Vec<Request>,
    pub batches: BatchLog,
    /// Gaps between consecutive output tokens of every request, nanoseconds.
    pub tbt_ns: Histogram<u64>,
    /// Exact sum of the gaps in `tbt_ns`, nanoseconds.
    pub tbt_sum_ns: u128,
    /// Batch stages run (rows of batches.parquet).
    pub batch_stages: u64,
    /// Batches that left the last pipeline stage, and the requests they carried.
    pub batches_last_stage: u64,
    pub batch_requests_last_stage: u64,
    /// Events processed.
    pub events: u64,
    /// Time of the last event, nanoseconds.
    pub end_ns: SimTime,
    /// KV-cache units per replica.
    pub kv_units_per_replica: u64,
    /// Most requests the loop held at once: from the oldest unfinished to the newest arrival.
    pub peak_requests_held: u64,
}

/// What the loop needs to price a stage's energy: the power profile and the device of each GPU, and
/// how many GPUs run one stage (the tensor-parallel degree).
pub struct StageEnergy {
    pub profile: PowerProfile,
    pub device: DeviceSpec,
    pub gpus_per_stage: u32,
}

impl StageEnergy {
    /// Per-GPU power and all-GPU energy of a stage with cost `c`.
    pub fn price(&self, c: &StageCost) -> (f64, f64) {
        let t = c.time_ns as f64 / 1e9;
        let w = self
            .profile
            .busy_w(Utilisation::of(c.flops, c.bytes, t, &self.device));
        (w, w * t * self.gpus_per_stage as f64)
    }
}

/// Observer of progress: called with the number of requests finished (completed or rejected).
pub type Progress<'a> = &'a dyn Fn(u64);

struct Sim<'a> {
    now: SimTime,
    seq: u64,
    queue: BinaryHeap<Reverse<(SimTime, u64, Event)>>,
    requests: RequestWindow,
    replicas: Vec<Replica>,
    batches: Vec<Batch>,
    free_batches: Vec<u32>,
    limits: Limits,
    router: Router,
    predictor: &'a dyn Predictor,
    energy: Option<&'a StageEnergy>,
    stages: u32,
    sink: &'a mut dyn BatchSink,
    batch_stages: u64,
    batches_last_stage: u64,
    batch_requests_last_stage: u64,
    tbt: Histogram<u64>,
    tbt_sum: u128,
    finished: u64,
}

/// Runs the simulation of `scenario` over `specs` (sorted by arrival time), keeping the batch-stage
/// log in memory (`SimResult::batches`).
pub fn run(
    scenario: &Scenario,
    specs: &[RequestSpec],
    predictor: &dyn Predictor,
    energy: Option<&StageEnergy>,
    progress: Progress,
) -> Result<SimResult> {
    let mut log = BatchLog::default();
    let mut requests = Vec::with_capacity(specs.len());
    let mut res = run_into(
        scenario,
        specs,
        predictor,
        energy,
        progress,
        &mut log,
        &mut requests,
    )?;
    res.batches = log;
    res.requests = requests;
    Ok(res)
}

/// Runs the simulation, handing each batch-stage row to `sink` as it is produced and each request to
/// `finished` once it is done (in id order); `SimResult::batches` and `SimResult::requests` are left
/// empty, and the loop keeps only the requests in flight.
pub fn run_into(
    scenario: &Scenario,
    specs: &[RequestSpec],
    predictor: &dyn Predictor,
    energy: Option<&StageEnergy>,
    progress: Progress,
    sink: &mut dyn BatchSink,
    finished: &mut dyn RequestSink,
) -> Result<SimResult> {
    if specs.windows(2).any(|w| w[1].arrival_ns < w[0].arrival_ns) {
        return Err(Error::Internal("requests are not sorted by arrival".into()));
    }
    if specs.len() > u32::MAX as usize {
        return Err(Error::invalid(
            &scenario.source,
            "workload.requests",
            specs.len(),
            "at most 4294967295 requests per run",
        ));
    }
    let hw = &scenario.hardware;
    let mem = &scenario.memory;
    let kv = KvCache::new(mem.block_size, mem.num_blocks);
    let limits = Limits::new(&scenario.scheduler, kv.total);
    let replicas = (0..hw.replicas)
        .map(|_| Replica::new(kv.clone(), hw.pipeline_stages))
        .collect();
    let mut sim = Sim {
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        requests: RequestWindow::default(),
        replicas,
        batches: Vec::new(),
        free_batches: Vec::new(),
        limits,
        router: Router::new(scenario.router, substream(scenario.seed, "router")),
        predictor,
        energy,
        stages: hw.pipeline_stages,
        sink,
        batch_stages: 0,
        batches_last_stage: 0,
        batch_requests_last_stage: 0,
        // 1 ns to 2^50 ns (13 days) at 3 significant digits; longer gaps are recorded as 13 days.
        tbt: Histogram::new_with_bounds(1, 1 << 50, 3)
            .map_err(|e| Error::Internal(e.to_string()))?,
        tbt_sum: 0,
        finished: 0,
    };
    if let Some(first) = specs.first() {
        sim.push(first.arrival_ns, Event::Arrival(0));
    }
    let max_context = scenario.model.max_position_embeddings;
    let mut events = 0u64;
    while let Some(Reverse((t, _, ev))) = sim.queue.pop() {
        debug_assert!(t >= sim.now, "time went backwards");
        sim.now = t;
        events += 1;
        match ev {
            Event::Arrival(i) => {
                if let Some(next) = specs.get(i as usize + 1) {
                    sim.push(next.arrival_ns, Event::Arrival(i + 1));
                }
                let s = &specs[i as usize];
                let id =
                    sim.requests
                        .push(Request::new(s.arrival_ns, s.prompt_tokens, s.output_tokens));
                debug_assert_eq!(id, i);
                sim.arrive(i, max_context);
            }
            Event::Schedule(r) => {
                sim.replicas[r as usize].schedule_pending = false;
                sim.schedule(r)?;
            }
            Event::StageDone { replica, stage } => sim.stage_done(replica, stage)?,
        }
        sim.requests.retire(finished)?;
        if events % 4096 == 0 {
            progress(sim.finished);
        }
    }
    progress(sim.finished);

    let peak_requests_held = sim.requests.peak() as u64;
    let unfinished = sim.requests.drain(finished)?;
    if unfinished > 0 {
        return Err(Error::Internal(format!(
            "the event queue ran dry with {unfinished} requests neither completed nor rejected"
        )));
    }
    Ok(SimResult {
        requests: Vec::new(),
        batches: BatchLog::default(),
        batch_stages: sim.batch_stages,
        batches_last_stage: sim.batches_last_stage,
        batch_requests_last_stage: sim.batch_requests_last_stage,
        tbt_ns: sim.tbt,
        tbt_sum_ns: sim.tbt_sum,
        events,
        end_ns: sim.now,
        kv_units_per_replica: kv.total,
        peak_requests_held,
    })
}

impl Sim<'_> {
    fn push(&mut self, t: SimTime, ev: Event) {
        self.queue.push(Reverse((t, self.seq, ev)));
        self.seq += 1;
    }

    fn arrive(&mut self, i: u32, max_context: u32) {
        let replica = self.router.route(&self.replicas);
        let kv_total = self.replicas[replica as usize].kv.total;
        let units = self.replicas[replica as usize]
            .kv
            .units_for(self.requests[i as usize].peak_kv_tokens());
        let req = &mut self.requests[i as usize];
        req.replica = replica;
        let reason = if req.prompt_tokens + req.output_tokens > max_context {
            Some(crate::cluster::RejectReason::ContextLength)
        } else {
            self.limits.rejection(req, units, kv_total)
        };
        if let Some(reason) = reason {
            req.phase = Phase::Rejected(reason);
            self.finished += 1;
            return;
        }
        req.phase = Phase::Waiting;
        let rep = &mut self.replicas[replica as usize];
        rep.waiting.push_back(i);
        rep.outstanding += 1;
        if !rep.schedule_pending {
            rep.schedule_pending = true;
            self.push(self.now, Event::Schedule(replica));
        }
    }

    /// Forms batches on replica `r` while its pipeline has room for another.
    fn schedule(&mut self, r: u32) -> Result<()> {
        while self.replicas[r as usize].batches_in_flight < self.stages {
            let id = match self.free_batches.pop() {
                Some(id) => id,
                None => {
                    self.batches.push(Batch::default());
                    (self.batches.len() - 1) as u32
                }
            };
            let batch = &mut self.batches[id as usize];
            batch.replica = r;
            let mut ctx = Ctx {
                replica: &mut self.replicas[r as usize],
                requests: &mut self.requests,
                limits: &self.limits,
                now: self.now,
            };
            if !form_batch(&mut ctx, batch) {
                self.free_batches.push(id);
                break;
            }
            self.replicas[r as usize].batches_in_flight += 1;
            self.enter_stage(id, 0)?;
        }
        Ok(())
    }

    /// Batch `id` reaches `stage`: it starts now if the stage is idle, else it queues.
    fn enter_stage(&mut self, id: u32, stage: u32) -> Result<()> {
        let r = self.batches[id as usize].replica;
        let st = &mut self.replicas[r as usize].stages[stage as usize];
        if st.current.is_some() {
            st.queue.push_back(id);
            Ok(())
        } else {
            self.start_stage(id, stage)
        }
    }

    fn start_stage(&mut self, id: u32, stage: u32) -> Result<()> {
        let batch = &self.batches[id as usize];
        let r = batch.replica;
        let cost = self.predictor.stage_cost(&batch.shape, stage);
        let end = self.now + cost.time_ns;
        let (power_w, energy_j) = match self.energy {
            Some(e) => e.price(&cost),
            None => (f64::NAN, f64::NAN),
        };
        self.sink.push(&BatchRow::new(
            batch, stage, self.now, &cost, power_w, energy_j,
        ))?;
        self.batch_stages += 1;
        if stage + 1 == self.stages {
            self.batches_last_stage += 1;
            self.batch_requests_last_stage += batch.items.len() as u64;
        }
        if energy_j.is_finite() {
            // Share the stage's energy among its requests by tokens processed (padding sequences of
            // static batches are paid for by the real ones).
            let tokens: u64 = batch
                .items
                .iter()
                .map(|i| i.prefill_tokens.max(1) as u64)
                .sum();
            for item in &batch.items {
                let share = energy_j * item.prefill_tokens.max(1) as f64 / tokens as f64;
                let req = &mut self.requests[item.request as usize];
                if item.prefill_tokens > 0 {
                    req.prefill_energy_j += share;
                } else {
                    req.decode_energy_j += share;
                }
            }
        }
        self.replicas[r as usize].stages[stage as usize].current = Some(id);
        self.push(end, Event::StageDone { replica: r, stage });
        Ok(())
    }

    fn stage_done(&mut self, r: u32, stage: u32) -> Result<()> {
        let st = &mut self.replicas[r as usize].stages[stage as usize];
        let id = st.current.take().ok_or_else(|| {
            Error::Internal(format!("replica {r} stage {stage} finished with no batch"))
        })?;
        if let Some(next) = st.queue.pop_front() {
            self.start_stage(next, stage)?;
        }
        if stage + 1 < self.stages {
            return self.enter_stage(id, stage + 1);
        }
        self.finish_batch(id)?;
        self.free_batches.push(id);
        self.replicas[r as usize].batches_in_flight -= 1;
        self.schedule(r)
    }

    /// Applies a batch that has left the last stage: prefill progress, emitted tokens, completions.
    fn finish_batch(&mut self, id: u32) -> Result<()> {
        let now = self.now;
        let batch = &self.batches[id as usize];
        let r = batch.replica as usize;
        let mut completed_any = false;
        for item in &batch.items {
            let req = &mut self.requests[item.request as usize];
            if req.phase != Phase::Running || !req.in_flight {
                return Err(Error::Internal(format!(
                    "request {} finished a batch in phase {:?} (in flight: {})",
                    item.request, req.phase, req.in_flight
                )));
            }
            req.in_flight = false;
            let emits = if item.prefill_tokens > 0 {
                req.prefilled += item.prefill_tokens;
                req.kv_tokens += item.prefill_tokens;
                !req.in_prefill()
            } else {
                req.kv_tokens += 1;
                true
            };
            if !emits {
                continue;
            }
            req.generated += 1;
            if req.first_token_ns.is_none() {
                req.first_token_ns = Some(now);
            } else {
                let gap = now - req.last_token_ns;
                req.tbt_max_ns = req.tbt_max_ns.max(gap);
                self.tbt.saturating_record(gap);
                self.tbt_sum += gap as u128;
            }
            req.last_token_ns = now;
            if req.generated == req.output_tokens {
                req.phase = Phase::Completed;
                req.completion_ns = Some(now);
                self.replicas[r].kv.release(req.kv_held);
                req.kv_held = 0;
                self.replicas[r].outstanding -= 1;
                self.finished += 1;
                completed_any = true;
            }
        }
        if completed_any {
            let requests = &self.requests;
            self.replicas[r]
                .running
                .retain(|&q| requests[q as usize].phase != Phase::Completed);
        }
        Ok(())
    }
}
