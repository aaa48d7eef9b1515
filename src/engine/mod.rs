//! The serving engine around the GPU work: what an engine (vLLM 0.5, vLLM V1, Vidur's model) adds to
//! each iteration of a replica.
//!
//! Input: the GPU cost model (a [`crate::predictor::Predictor`]) and the run's engine profile
//! ([`crate::config::EngineProfile`]). Output: a [`CostModel`] the event loop calls, whose stage costs
//! carry the GPU time of the batch as the engine launches it (CUDA-graph batches padded to the captured
//! size, eager batches paying a launch cost per layer) and the host time of the iteration that the GPU
//! waits through (`StageCost::host_ns`). The per-request front end (admission, streaming) is applied by
//! the loop itself from the same profile. Knows nothing of power, energy or requests.

use crate::cluster::{BatchShape, DecodeRun};
use crate::config::engine_profile::{EngineProfile, GraphBatches};
use crate::config::Scenario;
use crate::sim::{CostModel, StageCost};
use crate::units::duration_ns;

/// A GPU cost model seen through an engine profile.
pub struct EngineCost<'a> {
    gpu: &'a dyn CostModel,
    profile: EngineProfile,
    /// Transformer layers per pipeline stage.
    layers: u32,
    stages: u32,
    /// GPUs of a replica beyond the first.
    extra_gpus: u32,
    /// Data-parallel attention ranks of the replica (`hardware.data_parallel`): each runs its even
    /// share of the batch in an engine core of its own, all stepping together.
    dp: u32,
    /// Bytes of one sequence's fp32 logits on one GPU of the last stage (vocabulary split over TP).
    logit_bytes: f64,
    /// Bytes per second the sampler's passes achieve.
    sampler_bytes_per_s: f64,
}

impl<'a> EngineCost<'a> {
    pub fn new(gpu: &'a dyn CostModel, s: &Scenario) -> Self {
        EngineCost {
            gpu,
            profile: s.engine.profile.clone(),
            layers: s.model.num_layers / s.hardware.pipeline_stages.max(1),
            stages: s.hardware.pipeline_stages.max(1),
            extra_gpus: s.gpus_per_replica().saturating_sub(1),
            dp: s.hardware.data_parallel.max(1),
            logit_bytes: 4.0 * s.model.vocab_size as f64 / s.hardware.tensor_parallel.max(1) as f64,
            sampler_bytes_per_s: s.device.memory_bandwidth_bytes_s()
                * s.engine.profile.sampler.memory_efficiency,
        }
    }

    /// `shape` as the GPU runs it: padded to the captured graph size when it runs as a graph; and
    /// whether it runs eagerly.
    pub fn launched(&self, shape: &BatchShape) -> (BatchShape, bool) {
        let l = &self.profile.launch;
        let Some(&largest) = l.graph_sizes.last() else {
            return (*shape, true);
        };
        // With data-parallel ranks each rank pads its share to a captured size, and every rank runs
        // the same size (the experts' collectives need them in step): the batch pads to that size
        // times the ranks.
        let tokens = shape.total_tokens();
        let rank_tokens = tokens.div_ceil(self.dp);
        let eligible = rank_tokens <= largest
            && match l.graph_batches {
                GraphBatches::DecodeOnly => shape.prefill_seqs == 0,
                GraphBatches::All => true,
            };
        if !eligible {
            return (*shape, true);
        }
        let size = l
            .graph_sizes
            .iter()
            .copied()
            .find(|&g| g >= rank_tokens)
            .unwrap_or(largest);
        let mut padded = *shape;
        padded.add_padding(size.saturating_mul(self.dp) - tokens);
        (padded, false)
    }

    /// Host time of an iteration of `shape` before any overlap, nanoseconds (the engine's terms; the
    /// predictor's when the profile takes it from there).
    pub fn host_ns(&self, shape: &BatchShape, predictor_host_ns: u64) -> f64 {
        let it = &self.profile.iteration;
        if it.host_from_predictor {
            return predictor_host_ns as f64;
        }
        // A data-parallel rank's engine core handles its share, all ranks at once.
        let dp = self.dp as f64;
        let seqs = (shape.prefill_seqs + shape.decode_seqs) as f64 / dp;
        it.host_ms * 1e6
            + it.host_us_per_seq * 1e3 * seqs
            + it.host_us_per_token * 1e3 * shape.total_tokens() as f64 / dp
            + it.host_ms_per_extra_gpu * 1e6 * self.extra_gpus as f64
    }
}

impl EngineCost<'_> {
    /// What the engine adds to the GPU's cost of a batch of shape `shape` on `stage` (`eager`: launched
    /// eagerly, not as a graph). Reads nothing of the decode context, so every step of a run of decode
    /// steps shares it.
    #[inline]
    fn around(&self, shape: &BatchShape, eager: bool, stage: u32) -> Around {
        let eager_ns = (eager && self.profile.launch.eager_us_per_layer > 0.0).then(|| {
            duration_ns(self.profile.launch.eager_us_per_layer * 1e3 * self.layers as f64)
        });
        // The sampler's passes over the logits run on the last stage's GPUs.
        let passes = self.profile.sampler.logit_passes;
        let sampler =
            (stage + 1 == self.stages && passes > 0.0 && shape.sampled_seqs > 0).then(|| {
                let bytes = passes * self.logit_bytes * shape.sampled_seqs as f64 / self.dp as f64;
                (bytes, duration_ns(bytes / self.sampler_bytes_per_s * 1e9))
            });
        // The iteration's host work runs once, around the last stage (sampling, output processing and
        // scheduling the next iteration).
        let host = if stage + 1 != self.stages {
            Host::Ns(0.0)
        } else if self.profile.iteration.host_from_predictor {
            Host::FromPredictor
        } else {
            Host::Ns(self.host_ns(shape, 0))
        };
        Around {
            eager_ns,
            sampler,
            host,
            overlap: self.profile.iteration.overlap,
        }
    }
}

/// What the engine adds to the GPU's cost of a batch ([`EngineCost::around`]).
#[derive(Debug, Clone, Copy)]
struct Around {
    /// Launch cost of an eager batch, ns.
    eager_ns: Option<u64>,
    /// The sampler's bytes and time, ns.
    sampler: Option<(f64, u64)>,
    host: Host,
    /// Share of the GPU time the host work hides behind.
    overlap: f64,
}

/// The host time of an iteration before any overlap.
#[derive(Debug, Clone, Copy)]
enum Host {
    /// The engine's terms, ns (0 off the last stage).
    Ns(f64),
    /// The predictor's.
    FromPredictor,
}

impl Around {
    /// The stage cost from the GPU's cost `c` of the batch as launched: the eager launches, the
    /// sampler and the exposed host time added.
    #[inline]
    fn apply(&self, mut c: StageCost) -> StageCost {
        if let Some(ns) = self.eager_ns {
            c.time_ns = c.time_ns.saturating_add(ns);
        }
        if let Some((bytes, ns)) = self.sampler {
            c.bytes += bytes;
            c.time_ns = c.time_ns.saturating_add(ns);
        }
        let host = match self.host {
            Host::Ns(ns) => ns,
            Host::FromPredictor => c.host_ns as f64,
        };
        let hidden = self.overlap * c.time_ns as f64;
        c.host_ns = crate::units::round_ns((host - hidden).max(0.0));
        c
    }
}

impl CostModel for EngineCost<'_> {
    fn stage_cost(&self, shape: &BatchShape, stage: u32) -> StageCost {
        let (launched, eager) = self.launched(shape);
        let c = self.gpu.stage_cost(&launched, stage);
        self.around(shape, eager, stage).apply(c)
    }

    /// The GPU prices the run as launched in one call: whether a step runs as a graph, and of which
    /// size, depends on its sequences and tokens, which a run's steps share; so does what the engine
    /// adds.
    fn run_costs(&self, first: &BatchShape, run: &DecodeRun, stage: u32, out: &mut Vec<StageCost>) {
        let (launched, eager) = self.launched(first);
        let padding = launched.decode_seqs - first.decode_seqs;
        let start = out.len();
        self.gpu
            .run_costs(&launched, &run.with_padding(padding), stage, out);
        let around = self.around(first, eager, stage);
        for c in &mut out[start..] {
            *c = around.apply(*c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::engine_profile::{EngineProvenance, FrontEnd, Iteration, Launch, Sampler};

    /// A GPU whose stage takes 1 us per token and reports 2 ms of host time.
    struct PerToken;
    impl CostModel for PerToken {
        fn stage_cost(&self, s: &BatchShape, _stage: u32) -> StageCost {
            StageCost {
                time_ns: 1000 * s.total_tokens() as u64,
                host_ns: 2_000_000,
                flops: 0.0,
                bytes: 0.0,
                idle_ns: 0,
                cpu_ns: 0,
                cpu_flops: 0.0,
                cpu_bytes: 0.0,
            }
        }
    }

    fn engine(it: Iteration, launch: Launch) -> EngineCost<'static> {
        EngineCost {
            gpu: &PerToken,
            profile: EngineProfile {
                engine: "t".into(),
                version: String::new(),
                front_end: FrontEnd::default(),
                iteration: it,
                launch,
                sampler: Default::default(),
                fp8_linear: None,
                fused_moe: None,
                provenance: EngineProvenance {
                    method: "published".into(),
                    data: vec![],
                    error: Default::default(),
                    notes: None,
                },
            },
            layers: 10,
            stages: 1,
            extra_gpus: 0,
            dp: 1,
            logit_bytes: 4000.0,
            sampler_bytes_per_s: 1e12,
        }
    }

    fn it(host_ms: f64, per_seq_us: f64, overlap: f64) -> Iteration {
        Iteration {
            host_from_predictor: false,
            host_ms,
            host_us_per_seq: per_seq_us,
            host_us_per_token: 0.0,
            host_ms_per_extra_gpu: 0.0,
            overlap,
        }
    }

    fn decode(n: u32) -> BatchShape {
        let mut s = BatchShape::default();
        for _ in 0..n {
            s.add_decode(100);
        }
        s
    }

    #[test]
    fn host_time_is_exposed_beyond_the_overlap() {
        // 1 ms + 10 us x 100 seqs = 2 ms of host work; 100 tokens = 0.1 ms of GPU work.
        let none = engine(it(1.0, 10.0, 0.0), Launch::default());
        assert_eq!(none.stage_cost(&decode(100), 0).host_ns, 2_000_000);
        // Overlap 1: 0.1 ms hidden behind the GPU.
        let all = engine(it(1.0, 10.0, 1.0), Launch::default());
        assert_eq!(all.stage_cost(&decode(100), 0).host_ns, 1_900_000);
        // Host from the predictor: its 2 ms.
        let mut v = it(0.0, 0.0, 0.0);
        v.host_from_predictor = true;
        assert_eq!(
            engine(v, Launch::default())
                .stage_cost(&decode(3), 0)
                .host_ns,
            2_000_000
        );
    }

    #[test]
    fn graphs_pad_decode_batches_and_eager_batches_pay_per_layer() {
        let launch = Launch {
            graph_sizes: vec![1, 2, 4, 8],
            graph_batches: GraphBatches::DecodeOnly,
            eager_us_per_layer: 5.0,
        };
        let e = engine(it(0.0, 0.0, 0.0), launch);
        // 3 sequences run as the graph of 4: 4 tokens of GPU work.
        assert_eq!(e.stage_cost(&decode(3), 0).time_ns, 4_000);
        // 9 sequences: eager, 9 tokens plus 10 layers x 5 us.
        assert_eq!(e.stage_cost(&decode(9), 0).time_ns, 9_000 + 50_000);
        // A prefill is never a graph under decode_only.
        let mut p = BatchShape::default();
        p.add_prefill(3, 0, true);
        assert_eq!(e.stage_cost(&p, 0).time_ns, 3_000 + 50_000);
        let (padded, eager) = e.launched(&decode(3));
        assert!(!eager);
        assert_eq!(padded.decode_seqs, 4);
        assert_eq!(padded.sampled_seqs, 3, "padding is not sampled");
    }

    #[test]
    fn the_sampler_reads_the_logits_of_each_sampled_sequence() {
        let mut e = engine(it(0.0, 0.0, 0.0), Launch::default());
        e.profile.sampler = Sampler {
            logit_passes: 5.0,
            memory_efficiency: 0.8,
        };
        // 10 sequences x 5 passes x 4000 bytes = 200 kB at 1 TB/s: 200 ns on top of 10 us.
        let c = e.stage_cost(&decode(10), 0);
        assert_eq!(c.time_ns, 10_000 + 200);
        assert_eq!(c.bytes, 200_000.0);
    }
}
