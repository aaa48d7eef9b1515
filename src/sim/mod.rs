//! The discrete-event loop: it orders events and calls the cluster (routing, batching, finishing a
//! batch), the cost model and the energy models (through the traits of [`models`]) and the sinks.
//!
//! Input: a resolved [`Scenario`], its requests (sorted by arrival), a [`CostModel`] and, optionally,
//! the [`Energy`] models (and a second pair, [`PoolModels`], for a prefill pool of its own hardware). Output: each finished request's timeline (to a [`RequestSink`], in id order),
//! one row per batch stage (to a [`BatchSink`]), and a [`SimResult`] with the token-gap histogram and
//! counts. Time is integer nanoseconds; events at the same instant run in the order they were created
//! ([`queue::EventQueue`]), so a run is reproducible bit for bit. Imports nothing above the cluster.

mod log;
pub mod models;
pub mod queue;

pub use crate::cluster::window::{RequestSink, RequestWindow};
pub use log::{BatchLog, BatchRow, BatchSink, FanOut, KvTransfer};
pub use models::{CostModel, Energy, EnergySharing, StageCost, StagePower, StagePrice};

use crate::cluster::finish::{finish_batch, release_handoff, TokenGaps};
use crate::cluster::kv::KvCache;
pub use crate::cluster::kv::PrefixKeys;
use crate::cluster::policy::{form_batch, Ctx, Limits};
use crate::cluster::router::Router;
use crate::cluster::{Batch, Phase, Replica, Request, Role};
use crate::config::pools::KvLink;
use crate::config::Scenario;
use crate::error::{Error, Result};
use crate::rng::substream;
use crate::units::SimTime;
use crate::workload::{RequestSpec, SessionTurns};
use hdrhistogram::Histogram;
use queue::EventQueue;
use std::sync::Arc;

/// What happens at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Request `0` arrives at the server (its front end starts on it).
    Arrival(u32),
    /// Request `0` has passed the engine's front end and reaches the router.
    Admit(u32),
    /// Replica `0` forms batches (queued after same-instant arrivals, so they batch together).
    Schedule(u32),
    /// Pipeline stage `stage` of `replica` finishes its current batch.
    StageDone { replica: u32, stage: u32 },
    /// Turn `turn` (1 or later) of multi-turn session `session` arrives.
    FollowUp { session: u32, turn: u32 },
    /// Request `0`'s KV cache has reached its decode replica (disaggregated serving).
    Transferred(u32),
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
    /// Rows of the batch log (batches.parquet): one per batch stage, or per run of decode steps.
    pub batch_stages: u64,
    /// Batch stages run, each step of a run of decode steps counted.
    pub batch_steps: u64,
    /// Prompt tokens prefilled (recomputation included; prefix-cache hits are not prefilled).
    pub prefill_tokens: u64,
    /// Batches that left the last pipeline stage, and the requests they carried.
    pub batches_last_stage: u64,
    pub batch_requests_last_stage: u64,
    /// Events processed.
    pub events: u64,
    /// Time of the last event, nanoseconds.
    pub end_ns: SimTime,
    /// KV-cache units per replica (per decode replica when the prefill pool has hardware of its own).
    pub kv_units_per_replica: u64,
    /// KV-cache units per prefill replica when the prefill pool has hardware of its own.
    pub prefill_kv_units_per_replica: Option<u64>,
    /// Most requests the loop held at once: from the oldest unfinished to the newest arrival.
    pub peak_requests_held: u64,
    /// Disaggregated serving: KV caches moved from the prefill pool to the decode pool.
    pub kv: KvTransfers,
    /// Time each GPU group (replica x pipeline stage, in that order) ran batch stages, ns.
    pub group_busy_ns: Vec<u64>,
}

/// The KV-cache transfers of a disaggregated run (all zero for colocated serving).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KvTransfers {
    /// Transfers (one per request prefilled in the prefill pool and not finished there).
    pub count: u64,
    /// Bytes moved, all GPUs together.
    pub bytes: u128,
    /// Sum over transfers of the time from the end of the prefill to the cache's arrival (waiting for
    /// a busy link included), ns. (The links' energy is the energy sinks' to count, from each
    /// [`KvTransfer`].)
    pub delay_ns: u128,
}

/// Observer of progress: called with the number of requests finished (completed or rejected).
pub type Progress<'a> = &'a dyn Fn(u64);

/// What a row of the batch log stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchRows {
    /// One row per batch stage, but one row for a static batch's run of decode steps between two
    /// completions of its members ([`crate::cluster::DecodeRun`]; one pipeline stage only). Each step
    /// is still priced on its own, so the requests' timelines and energies do not change.
    #[default]
    Runs,
    /// One row per batch stage, every decode step its own.
    Steps,
}

/// The price of a stage of cost `c` run by GPU group `group` from `start_ns`: by the energy model, or
/// unpriced without one.
fn priced(energy: Option<Energy>, c: &StageCost, group: usize, start_ns: u64) -> StagePrice {
    match energy {
        Some(e) => e.power.price_at(c, group, start_ns),
        None => StagePrice::unpriced(c),
    }
}

struct Sim<'a> {
    queue: EventQueue<Event>,
    requests: RequestWindow,
    replicas: Vec<Replica>,
    batches: Vec<Batch>,
    free_batches: Vec<u32>,
    limits: Limits,
    router: Router,
    cost: &'a dyn CostModel,
    energy: Option<Energy<'a>>,
    /// Disaggregated serving with the prefill pool's own hardware: its limits (the watermark of its
    /// KV cache) and its cost and energy models, for replicas `0..prefill`.
    prefill_pool: Option<(Limits, PoolModels<'a>)>,
    stages: u32,
    sink: &'a mut dyn BatchSink,
    batch_stages: u64,
    batch_steps: u64,
    prefill_tokens: u64,
    batches_last_stage: u64,
    batch_requests_last_stage: u64,
    gaps: TokenGaps,
    finished: u64,
    front_end: FrontEndNs,
    /// Later turns of multi-turn sessions, and each session's context so far (prompt and output of
    /// its latest completed turn).
    sessions: Option<Arc<SessionTurns>>,
    history: Vec<u32>,
    /// Disaggregated serving: the pools' split, the decode router, the link.
    pools: Option<Pools>,
    kv: KvTransfers,
    group_busy_ns: Vec<u64>,
    /// The costs of the steps of the run being priced (kept to reuse its allocation).
    step_costs: Vec<StageCost>,
}

/// The cost and energy models of a pool whose hardware is not the scenario's: the prefill pool of
/// `hardware.prefill_pool`.
#[derive(Clone, Copy)]
pub struct PoolModels<'a> {
    pub cost: &'a dyn CostModel,
    pub energy: Option<Energy<'a>>,
}

/// The decode side of disaggregated serving: replicas `0..prefill` prefill, the rest decode.
struct Pools {
    prefill: u32,
    router: Router,
    link: KvLink,
    /// KV-cache bytes one token takes on one GPU of a prefill replica, and GPUs per prefill replica.
    bytes_per_token_per_gpu: u64,
    gpus: u32,
    /// GPUs per decode replica: a cache crosses min(prefill GPUs, decode GPUs) links in parallel.
    decode_gpus: u32,
    /// When each replica's links are next free (a replica sends or receives one cache at a time).
    link_free_ns: Vec<SimTime>,
}

/// The engine's per-request front-end costs in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct FrontEndNs {
    admission_ns: f64,
    admission_ns_per_prompt_token: f64,
    stream_ns: u64,
}

impl FrontEndNs {
    fn of(s: &Scenario) -> Self {
        let f = &s.engine.profile.front_end;
        FrontEndNs {
            admission_ns: f.admission_ms * 1e6,
            admission_ns_per_prompt_token: f.admission_us_per_prompt_token * 1e3,
            stream_ns: (f.stream_ms * 1e6).round() as u64,
        }
    }

    /// From arrival to the scheduler's waiting queue for a prompt of `prompt_tokens`, nanoseconds.
    fn admission(&self, prompt_tokens: u32) -> u64 {
        (self.admission_ns + self.admission_ns_per_prompt_token * prompt_tokens as f64).round()
            as u64
    }
}

/// Runs the simulation of `scenario` over `specs` (sorted by arrival time), keeping the batch-stage
/// log in memory (`SimResult::batches`), one row per step ([`BatchRows::Steps`]).
pub fn run(
    scenario: &Scenario,
    specs: &[RequestSpec],
    cost: &dyn CostModel,
    energy: Option<Energy>,
    progress: Progress,
) -> Result<SimResult> {
    let mut log = BatchLog::default();
    let mut requests = Vec::with_capacity(specs.len());
    let mut res = run_into(
        scenario,
        specs,
        cost,
        energy,
        None,
        (
            progress,
            BatchRows::Steps,
            Arc::new(PrefixKeys::Groups),
            None,
        ),
        &mut log,
        &mut requests,
    )?;
    res.batches = log;
    res.requests = requests;
    Ok(res)
}

/// Runs the simulation, handing each batch-stage row (as `rows` says) to `sink` as it is produced and
/// each request to `finished` once it is done (in id order); `SimResult::batches` and
/// `SimResult::requests` are left empty, and the loop keeps only the requests in flight. With prefix
/// caching, `prefix_keys` says which prompt blocks are alike. A scenario with its prefill pool's own
/// hardware (`Scenario::prefill_pool`) needs that pool's models in `prefill`, and only it takes them.
#[allow(clippy::too_many_arguments)] // the models of each pool, the options, and the two sinks
pub fn run_into(
    scenario: &Scenario,
    specs: &[RequestSpec],
    cost: &dyn CostModel,
    energy: Option<Energy>,
    prefill: Option<PoolModels>,
    (progress, rows, prefix_keys, sessions): (
        Progress,
        BatchRows,
        Arc<PrefixKeys>,
        Option<Arc<SessionTurns>>,
    ),
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
    if scenario.prefill_pool.is_some() != prefill.is_some() {
        return Err(Error::Internal(
            "the prefill pool's models are given exactly when the scenario has a prefill pool of its own"
                .into(),
        ));
    }
    let hw = &scenario.hardware;
    let mem = &scenario.memory;
    let cache = |mem: &crate::config::MemoryPlan| {
        let kv = KvCache::new(mem.block_size, mem.num_blocks);
        let kv = match mem.kv_groups {
            Some(g) => kv.with_groups(g.full, g.sliding, g.window_blocks),
            None => kv,
        };
        match scenario.scheduler.enable_prefix_caching {
            true => kv.with_prefix_caching(prefix_keys.clone()),
            false => kv,
        }
    };
    let kv = cache(mem);
    let fold = rows == BatchRows::Runs && hw.pipeline_stages == 1;
    let mut limits = Limits::new(&scenario.scheduler, kv.total);
    limits.fold_decode_runs = fold;
    // The prefill pool's own KV cache (its device and TP), limits and models.
    let pool_kv = scenario.prefill_pool.as_ref().map(|p| cache(&p.memory));
    let prefill_pool = pool_kv.as_ref().zip(prefill).map(|(kv, models)| {
        let mut l = Limits::new(&scenario.scheduler, kv.total);
        l.fold_decode_runs = fold;
        (l, models)
    });
    let prefill = scenario
        .disaggregation
        .as_ref()
        .map_or(0, |d| d.prefill_replicas);
    let replicas = (0..hw.replicas)
        .map(|r| {
            let kv = match &pool_kv {
                Some(p) if r < prefill => p.clone(),
                _ => kv.clone(),
            };
            let mut rep = Replica::new(kv, hw.pipeline_stages);
            rep.role = match (prefill, r < prefill) {
                (0, _) => Role::Both,
                (_, true) => Role::Prefill,
                (_, false) => Role::Decode,
            };
            rep
        })
        .collect();
    let pools = scenario.disaggregation.as_ref().map(|d| Pools {
        prefill: d.prefill_replicas,
        router: Router::new(d.decode_router, substream(scenario.seed, "decode_router")),
        link: d.link.clone(),
        bytes_per_token_per_gpu: scenario.pool_of(0).memory.kv_bytes_per_token_per_gpu,
        gpus: scenario.pool_of(0).gpus_per_replica(),
        decode_gpus: scenario.gpus_per_replica(),
        link_free_ns: vec![0; hw.replicas as usize],
    });
    let mut sim = Sim {
        queue: EventQueue::default(),
        requests: RequestWindow::default(),
        replicas,
        batches: Vec::new(),
        free_batches: Vec::new(),
        limits,
        router: Router::new(scenario.router, substream(scenario.seed, "router")),
        cost,
        energy,
        prefill_pool,
        stages: hw.pipeline_stages,
        sink,
        batch_stages: 0,
        batch_steps: 0,
        prefill_tokens: 0,
        batches_last_stage: 0,
        batch_requests_last_stage: 0,
        gaps: TokenGaps::new()?,
        finished: 0,
        front_end: FrontEndNs::of(scenario),
        history: vec![0; sessions.as_ref().map_or(0, |t| t.turns.len())],
        sessions,
        pools,
        kv: KvTransfers::default(),
        group_busy_ns: vec![0; (hw.replicas * hw.pipeline_stages) as usize],
        step_costs: Vec::new(),
    };
    if let Some(first) = specs.first() {
        sim.queue.push(first.arrival_ns, Event::Arrival(0))?;
    }
    let max_context = scenario.model.max_position_embeddings;
    let mut events = 0u64;
    while let Some((_, ev)) = sim.queue.pop() {
        events += 1;
        match ev {
            Event::Arrival(i) => {
                if let Some(next) = specs.get(i as usize + 1) {
                    sim.queue.push(next.arrival_ns, Event::Arrival(i + 1))?;
                }
                let s = &specs[i as usize];
                let mut req = Request::new(s.arrival_ns, s.prompt_tokens, s.output_tokens);
                req.prefix_group = s.prefix_group;
                req.prefix_tokens = s.prefix_tokens;
                req.held_ns = s.held_ns;
                req.deadline_ns = s.deadline_ns;
                if sim.sessions.is_some() {
                    req.session = i;
                }
                sim.enter(req, max_context)?;
            }
            Event::FollowUp { session, turn } => {
                let t = sim
                    .sessions
                    .as_ref()
                    .and_then(|ss| ss.turns.get(session as usize)?.get(turn as usize - 1))
                    .copied()
                    .ok_or_else(|| {
                        Error::Internal(format!("session {session} has no turn {turn}"))
                    })?;
                let history = sim.history[session as usize];
                let prompt = history.saturating_add(t.new_tokens);
                let mut req = Request::new(sim.queue.now(), prompt, t.output_tokens);
                req.prefix_group = session;
                req.prefix_tokens = history;
                req.session = session;
                req.turn = turn;
                sim.enter(req, max_context)?;
            }
            Event::Admit(i) => sim.arrive(i, max_context)?,
            Event::Schedule(r) => {
                sim.replicas[r as usize].schedule_pending = false;
                sim.schedule(r)?;
            }
            Event::StageDone { replica, stage } => sim.stage_done(replica, stage)?,
            Event::Transferred(i) => sim.transferred(i)?,
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
    // Every request has finished: every KV unit is free again (or a cached prefix nobody uses).
    if let Some((r, rep)) = sim
        .replicas
        .iter()
        .enumerate()
        .find(|(_, r)| r.kv.used() > 0)
    {
        return Err(Error::Internal(format!(
            "replica {r} ended with {} KV-cache units still held",
            rep.kv.used()
        )));
    }
    Ok(SimResult {
        requests: Vec::new(),
        batches: BatchLog::default(),
        batch_stages: sim.batch_stages,
        batch_steps: sim.batch_steps,
        prefill_tokens: sim.prefill_tokens,
        batches_last_stage: sim.batches_last_stage,
        batch_requests_last_stage: sim.batch_requests_last_stage,
        tbt_ns: sim.gaps.hist,
        tbt_sum_ns: sim.gaps.sum_ns,
        events,
        end_ns: sim.queue.now(),
        kv_units_per_replica: kv.total,
        prefill_kv_units_per_replica: pool_kv.as_ref().map(|k| k.total),
        peak_requests_held,
        kv: sim.kv,
        group_busy_ns: sim.group_busy_ns,
    })
}

impl<'a> Sim<'a> {
    /// Request `req` arrives now: it joins the request window and passes the front end.
    fn enter(&mut self, req: Request, max_context: u32) -> Result<()> {
        let (arrival, prompt) = (req.arrival_ns, req.prompt_tokens);
        let id = self.requests.push(req);
        let delay = self.front_end.admission(prompt);
        if delay == 0 {
            return self.arrive(id, max_context);
        }
        let at = arrival.checked_add(delay).ok_or_else(|| {
            Error::Internal(format!("request {id} admitted past the end of time"))
        })?;
        self.queue.push(at, Event::Admit(id))
    }

    /// Schedules the next turn of every session whose turn completed in batch `id`, its think time
    /// after the completion.
    fn follow_up(&mut self, id: u32) -> Result<()> {
        let Some(ss) = self.sessions.clone() else {
            return Ok(());
        };
        for k in 0..self.batches[id as usize].items.len() {
            let r = self.batches[id as usize].items[k].request;
            let req = &self.requests[r as usize];
            if req.phase != Phase::Completed || req.session == crate::cluster::NO_SESSION {
                continue;
            }
            let (s, next) = (req.session, req.turn + 1);
            let Some(t) = ss
                .turns
                .get(s as usize)
                .and_then(|t| t.get(next as usize - 1))
            else {
                continue;
            };
            let done = req.completion_ns.unwrap_or(req.arrival_ns);
            self.history[s as usize] = req.prompt_tokens.saturating_add(req.output_tokens);
            let at = done.checked_add(t.think_ns).ok_or_else(|| {
                Error::Horizon(format!(
                    "turn {next} of session {s} would arrive past the end of time"
                ))
            })?;
            self.queue.push(
                at,
                Event::FollowUp {
                    session: s,
                    turn: next,
                },
            )?;
        }
        Ok(())
    }

    fn arrive(&mut self, i: u32, max_context: u32) -> Result<()> {
        // With disaggregated serving, arrivals go to the prefill pool.
        let pool = self
            .pools
            .as_ref()
            .map_or(self.replicas.len(), |p| p.prefill as usize);
        let replica = self.router.route(&self.replicas[..pool]);
        let kv_total = self.replicas[replica as usize].kv.total;
        let peak = self.requests[i as usize].peak_kv_tokens();
        let units = self.replicas[replica as usize].kv.units_for(peak);
        // A prefill pool of its own has another cache size: the request must fit a decode replica too.
        let decode = self.prefill_pool.as_ref().map(|_| {
            let d = &self.replicas[pool].kv;
            (d.units_for(peak), d.total)
        });
        let limits = match &self.prefill_pool {
            Some((l, _)) => l,
            None => &self.limits,
        };
        let req = &mut self.requests[i as usize];
        req.replica = replica;
        // In u64: a prompt and output near u32::MAX each must not wrap around to a short request.
        let context = req.prompt_tokens as u64 + req.output_tokens as u64;
        let reason = if context > max_context as u64 {
            Some(crate::cluster::RejectReason::ContextLength)
        } else {
            limits.rejection(req, units, kv_total).or_else(|| {
                decode.and_then(|(units, total)| self.limits.rejection(req, units, total))
            })
        };
        if let Some(reason) = reason {
            req.phase = Phase::Rejected(reason);
            self.finished += 1;
            return Ok(());
        }
        req.phase = Phase::Waiting;
        let rep = &mut self.replicas[replica as usize];
        rep.waiting.push_back(i);
        rep.outstanding += 1;
        self.wake(replica)
    }

    /// Queues a schedule event for replica `r` now, unless one is queued already.
    fn wake(&mut self, r: u32) -> Result<()> {
        let rep = &mut self.replicas[r as usize];
        if !rep.schedule_pending {
            rep.schedule_pending = true;
            let now = self.queue.now();
            self.queue.push(now, Event::Schedule(r))?;
        }
        Ok(())
    }

    /// Sends the KV caches of the requests prefill replica `p` just prefilled to decode replicas: the
    /// decode router picks each one's replica now, and its cache arrives when both replicas' links are
    /// free and it has crossed them (bytes / bandwidth + latency).
    fn hand_off(&mut self, p: u32) -> Result<()> {
        let Some(pools) = self.pools.as_mut() else {
            return Ok(());
        };
        let handoffs = std::mem::take(&mut self.replicas[p as usize].handoffs);
        let now = self.queue.now();
        for &i in &handoffs {
            let d = pools.prefill + pools.router.route(&self.replicas[pools.prefill as usize..]);
            self.replicas[d as usize].outstanding += 1;
            let req = &self.requests[i as usize];
            // The prefill replica's whole cache crosses min(prefill GPUs, decode GPUs) links in
            // parallel, each carrying an equal share (rounded up to the byte).
            let links = pools.gpus.min(pools.decode_gpus).max(1);
            let bytes = (req.kv_tokens as u64)
                .checked_mul(pools.bytes_per_token_per_gpu)
                .and_then(|b| b.checked_mul(pools.gpus as u64))
                .ok_or_else(|| Error::Internal(format!("request {i}'s KV cache overflows")))?;
            let bytes_per_gpu = bytes.div_ceil(links as u64);
            let start = now
                .max(pools.link_free_ns[p as usize])
                .max(pools.link_free_ns[d as usize]);
            let end = pools
                .link
                .transfer_ns(bytes_per_gpu)
                .and_then(|t| start.checked_add(t))
                .ok_or_else(|| {
                    Error::Horizon(format!(
                        "request {i}'s KV cache ({bytes_per_gpu} bytes per GPU) would reach its decode replica past the end of time"
                    ))
                })?;
            pools.link_free_ns[p as usize] = end;
            pools.link_free_ns[d as usize] = end;
            let t = KvTransfer {
                request: i,
                from_replica: p,
                to_replica: d,
                start_ns: start,
                end_ns: end,
                bytes_per_gpu,
                gpus: links,
                power_w: pools.link.power_w,
            };
            self.sink.transfer(&t)?;
            self.kv.count += 1;
            self.kv.bytes += bytes as u128;
            self.kv.delay_ns += (end - now) as u128;
            // The request names its decode replica from now on, and its prefill replica.
            let req = &mut self.requests[i as usize];
            req.prefill_replica = p;
            req.replica = d;
            self.queue.push(end, Event::Transferred(i))?;
        }
        // The buffer goes back, empty, for the next batch.
        let rep = &mut self.replicas[p as usize];
        rep.handoffs = handoffs;
        rep.handoffs.clear();
        Ok(())
    }

    /// Request `i`'s KV cache has reached its decode replica: its prefill replica frees the cache
    /// (and may admit more prefills), and the decode replica admits it when it has room.
    fn transferred(&mut self, i: u32) -> Result<()> {
        let req = &mut self.requests[i as usize];
        let (p, d) = (req.prefill_replica, req.replica);
        release_handoff(req, &mut self.replicas[p as usize])?;
        self.wake(p)?;
        self.replicas[d as usize].incoming.push_back(i);
        self.wake(d)
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
            let limits = match &self.prefill_pool {
                Some((l, _)) if self.replicas[r as usize].role == Role::Prefill => l,
                _ => &self.limits,
            };
            let mut ctx = Ctx {
                replica: &mut self.replicas[r as usize],
                requests: &mut self.requests,
                limits,
                now: self.queue.now(),
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

    /// The cost and energy models of replica `r`: its pool's.
    fn models(&self, r: u32) -> PoolModels<'a> {
        match &self.prefill_pool {
            Some((_, m)) if self.replicas[r as usize].role == Role::Prefill => *m,
            _ => PoolModels {
                cost: self.cost,
                energy: self.energy,
            },
        }
    }

    /// The cost and price of one step of shape `shape` on `stage` of replica `r`, starting now.
    fn price_step(
        &self,
        r: u32,
        shape: &crate::cluster::BatchShape,
        stage: u32,
    ) -> (StageCost, StagePrice) {
        let m = self.models(r);
        let cost = m.cost.stage_cost(shape, stage);
        let g = (r * self.stages + stage) as usize;
        (cost, priced(m.energy, &cost, g, self.queue.now()))
    }

    /// The cost and price of batch `id`'s run of decode steps on `stage`, each step priced on its own
    /// shape (its durations go to the batch's `step_ns`): times, work and energy summed, power and
    /// clock weighted by the time they held. The cost model prices the run's steps in one call
    /// ([`CostModel::run_costs`]), which saves it recomputing per step what the growing context does
    /// not change.
    fn price_run(&mut self, id: u32, stage: u32) -> Result<(StageCost, StagePrice)> {
        let batch = &self.batches[id as usize];
        let (run, first, r) = (batch.run, batch.shape, batch.replica);
        let m = self.models(r);
        let mut step_ns = std::mem::take(&mut self.batches[id as usize].step_ns);
        step_ns.clear();
        let mut costs = std::mem::take(&mut self.step_costs);
        costs.clear();
        m.cost.run_costs(&first, &run, stage, &mut costs);
        if costs.len() != run.steps as usize {
            return Err(Error::Internal(format!(
                "the cost model priced {} steps of a run of {}",
                costs.len(),
                run.steps
            )));
        }
        let mut cost = StageCost::default();
        let mut price = StagePrice {
            gpu_ns: 0,
            power_w: 0.0,
            host_power_w: 0.0,
            energy_j: 0.0,
            clock: 0.0,
            host_cpu_j: 0.0,
        };
        let overflow = || Error::Internal(format!("a run of {} decode steps overflows", run.steps));
        let g = (r * self.stages + stage) as usize;
        let mut at = self.queue.now();
        for c in &costs {
            let p = priced(m.energy, c, g, at);
            at = at.saturating_add(p.gpu_ns).saturating_add(c.host_ns);
            let (g, h) = (p.gpu_ns as f64, c.host_ns as f64);
            step_ns.push(p.gpu_ns.checked_add(c.host_ns).ok_or_else(overflow)?);
            cost.time_ns = cost.time_ns.checked_add(c.time_ns).ok_or_else(overflow)?;
            cost.host_ns = cost.host_ns.checked_add(c.host_ns).ok_or_else(overflow)?;
            cost.flops += c.flops;
            cost.bytes += c.bytes;
            price.gpu_ns = price.gpu_ns.checked_add(p.gpu_ns).ok_or_else(overflow)?;
            price.power_w += p.power_w * g;
            price.host_power_w += p.host_power_w * h;
            price.energy_j += p.energy_j;
            price.host_cpu_j += p.host_cpu_j;
            price.clock += p.clock * g;
        }
        let g = price.gpu_ns as f64;
        price.power_w /= g;
        price.clock /= g;
        price.host_power_w = if cost.host_ns > 0 {
            price.host_power_w / cost.host_ns as f64
        } else {
            // No host wait: the power the row shows for it is the first step's, priced without
            // advancing any state over time.
            let c0 = m.cost.stage_cost(&first, stage);
            match m.energy {
                Some(e) => e.power.price(&c0).host_power_w,
                None => StagePrice::unpriced(&c0).host_power_w,
            }
        };
        self.batches[id as usize].step_ns = step_ns;
        self.step_costs = costs;
        Ok((cost, price))
    }

    fn start_stage(&mut self, id: u32, stage: u32) -> Result<()> {
        let now = self.queue.now();
        let (cost, price) = if self.batches[id as usize].run.steps > 1 {
            self.price_run(id, stage)?
        } else {
            let b = &self.batches[id as usize];
            self.price_step(b.replica, &b.shape, stage)
        };
        let batch = &self.batches[id as usize];
        let r = batch.replica;
        let end = price
            .gpu_ns
            .checked_add(cost.host_ns)
            .and_then(|d| now.checked_add(d))
            .ok_or_else(|| {
                Error::Horizon(format!(
                    "a batch stage starting at {:.4e} s takes {:.4e} s of GPU work and {:.4e} s of host time, which ends past the {:.0} years integer nanoseconds hold; a duration the config or the engine or latency profile sets (an iteration or host overhead, a time scale) is far too large",
                    crate::units::ns_to_secs(now),
                    crate::units::ns_to_secs(price.gpu_ns),
                    crate::units::ns_to_secs(cost.host_ns),
                    u64::MAX as f64 / 1e9 / 86_400.0 / 365.25
                ))
            })?;
        self.sink
            .push(&BatchRow::new(batch, stage, now, end, &cost, &price))?;
        self.batch_stages += 1;
        let g = (r * self.stages + stage) as usize;
        self.group_busy_ns[g] = self.group_busy_ns[g].saturating_add(end - now);
        let steps = batch.run.steps as u64;
        self.batch_steps += steps;
        if stage == 0 {
            self.prefill_tokens += batch.shape.prefill_tokens as u64;
        }
        if stage + 1 == self.stages {
            self.batches_last_stage += steps;
            self.batch_requests_last_stage += batch.items.len() as u64 * steps;
        }
        if let Some(e) = self.models(r).energy {
            e.sharing
                .share(price.energy_j, &batch.items, &mut self.requests);
        }
        self.replicas[r as usize].stages[stage as usize].current = Some(id);
        self.queue.push(end, Event::StageDone { replica: r, stage })
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
        let rep = &mut self.replicas[r as usize];
        let now = self.queue.now();
        self.finished += finish_batch(
            &self.batches[id as usize],
            &mut self.requests,
            rep,
            now,
            self.front_end.stream_ns,
            &mut self.gaps,
        )?;
        if !self.replicas[r as usize].handoffs.is_empty() {
            self.hand_off(r)?;
        }
        self.follow_up(id)?;
        self.free_batches.push(id);
        self.replicas[r as usize].batches_in_flight -= 1;
        self.schedule(r)
    }
}
