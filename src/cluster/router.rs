//! Global routers: which replica an arriving request goes to.

use super::Replica;
use crate::config::RouterKind;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// A router with its state (the round-robin cursor, the random stream).
pub struct Router {
    kind: RouterKind,
    next: u32,
    rng: ChaCha8Rng,
}

impl Router {
    pub fn new(kind: RouterKind, rng: ChaCha8Rng) -> Self {
        Router { kind, next: 0, rng }
    }

    /// The replica for the next arriving request.
    pub fn route(&mut self, replicas: &[Replica]) -> u32 {
        let n = replicas.len() as u32;
        match self.kind {
            RouterKind::RoundRobin => {
                let r = self.next;
                self.next = (self.next + 1) % n;
                r
            }
            RouterKind::LeastOutstanding => replicas
                .iter()
                .enumerate()
                .min_by_key(|(i, r)| (r.outstanding, *i))
                .map(|(i, _)| i as u32)
                .unwrap_or(0),
            RouterKind::Random => self.rng.random_range(0..n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kv::KvCache;
    use crate::rng::substream;

    fn replicas(outstanding: &[u32]) -> Vec<Replica> {
        outstanding
            .iter()
            .map(|o| {
                let mut r = Replica::new(KvCache::new(16, 10), 1);
                r.outstanding = *o;
                r
            })
            .collect()
    }

    #[test]
    fn round_robin_cycles() {
        let mut r = Router::new(RouterKind::RoundRobin, substream(0, "router"));
        let reps = replicas(&[0, 0, 0]);
        let got: Vec<u32> = (0..5).map(|_| r.route(&reps)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1]);
    }

    #[test]
    fn least_outstanding_picks_the_emptiest_lowest_index() {
        let mut r = Router::new(RouterKind::LeastOutstanding, substream(0, "router"));
        assert_eq!(r.route(&replicas(&[3, 1, 1])), 1);
        assert_eq!(r.route(&replicas(&[0, 1, 0])), 0);
    }

    #[test]
    fn random_covers_every_replica() {
        let mut r = Router::new(RouterKind::Random, substream(1, "router"));
        let reps = replicas(&[0, 0, 0, 0]);
        let mut seen = [0u32; 4];
        for _ in 0..4000 {
            seen[r.route(&reps) as usize] += 1;
        }
        assert!(seen.iter().all(|c| (850..1150).contains(c)), "{seen:?}");
    }
}
