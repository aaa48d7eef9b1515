//! KV-cache memory of a replica, in fixed-size blocks (paged attention) or single tokens, and the
//! prefix cache that keeps blocks of shared prompt prefixes for reuse (vLLM's automatic prefix caching).
//! For a model with sliding-window layers a unit may be a block of one KV-cache group, a sliding group
//! holding only its window's blocks (vLLM V1's hybrid manager; [`KvCache::with_groups`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What identifies block `b` of a request's shared prefix `p` (its `prefix_group`): blocks with the
/// same key hold the same tokens after the same prefix, so one copy serves every request that has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixKeys {
    /// Synthetic shared prefixes (`workload.shared_prefix`): block `b` of prefix group `p`.
    Groups,
    /// Hash chains, one per request (`p` is the request's index): Mooncake's hash ids, one per
    /// `per` KV blocks (its 512-token blocks); KV block `b` is sub-block `b % per` of hash id
    /// `chains[p][b / per]`. Equal ids mark identical prefixes, so equal keys do too.
    Chains { chains: Vec<Vec<u64>>, per: u32 },
}

/// Most KV blocks per hash block, and the largest hash id, that [`PrefixKeys::Chains`] keys hold.
pub const CHAIN_MAX_SUB_BLOCKS: u32 = 64;
pub const CHAIN_MAX_HASH_ID: u64 = (1 << 57) - 1;

impl PrefixKeys {
    fn key(&self, p: u32, b: u32) -> u64 {
        match self {
            PrefixKeys::Groups => ((p as u64) << 32) | b as u64,
            PrefixKeys::Chains { chains, per } => {
                match chains
                    .get(p as usize)
                    .and_then(|c| c.get((b / per) as usize))
                {
                    Some(&h) => (h << 6) | (b % per) as u64,
                    // Past the chain (callers never ask): a key of this request alone.
                    None => (1 << 63) | ((p as u64) << 31) | b as u64,
                }
            }
        }
    }
}

/// A replica's KV cache: a count of free units out of a fixed total. A unit is a block of
/// `block_size` tokens (block_size 1 for token-granular caches). With prefix caching, blocks of shared
/// prompt prefixes are also kept by key (a prefix cache); those no request references are reclaimed,
/// least recently released first, when an allocation needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvCache {
    pub block_size: u32,
    pub total: u64,
    pub free: u64,
    prefix: Option<PrefixCache>,
    /// Sliding-window groups ([`KvCache::with_groups`]): (full groups, sliding groups, most blocks a
    /// sliding group holds). `None`: a unit is a block of every layer.
    groups: Option<(u64, u64, u64)>,
}

/// Cached prefix blocks. A block is keyed by its prefix and its index in it (blocks of the same prefix
/// hold the same tokens: the hash chain of vLLM's cache, for prompts that share a prefix whole).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PrefixCache {
    keys: Arc<PrefixKeys>,
    /// References to each cached block.
    refs: HashMap<u64, u32>,
    /// Cached blocks no request references, in the order they may be evicted: (tick, key).
    evictable: BTreeSet<(u64, u64)>,
    /// The tick each evictable block was released at (its entry in `evictable`).
    released: HashMap<u64, u64>,
    tick: u64,
    /// Blocks evicted so far.
    evictions: u64,
}

impl KvCache {
    pub fn new(block_size: u32, total: u64) -> Self {
        KvCache {
            block_size,
            total,
            free: total,
            prefix: None,
            groups: None,
        }
    }

    /// The same cache split into KV-cache groups (vLLM's hybrid manager): `full` groups of
    /// full-attention layers hold a block per `block_size` tokens, `sliding` groups of sliding-window
    /// layers at most `window_blocks` blocks each; a unit is then a block of one group. Not combined
    /// with prefix caching, whose blocks are keyed per block of all layers.
    pub fn with_groups(mut self, full: u32, sliding: u32, window_blocks: u32) -> Self {
        self.groups = Some((full as u64, sliding as u64, window_blocks as u64));
        self
    }

    /// The same cache keeping prefix blocks, identified by `keys`, for reuse.
    pub fn with_prefix_caching(mut self, keys: Arc<PrefixKeys>) -> Self {
        self.prefix = Some(PrefixCache {
            keys,
            refs: HashMap::new(),
            evictable: BTreeSet::new(),
            released: HashMap::new(),
            tick: 0,
            evictions: 0,
        });
        self
    }

    /// Whether prefix blocks are kept for reuse.
    pub fn prefix_caching(&self) -> bool {
        self.prefix.is_some()
    }

    /// Units needed to hold `tokens` tokens of one sequence. With sliding-window groups this grows
    /// with `tokens` until the window is full, then by the full groups alone.
    #[inline]
    pub fn units_for(&self, tokens: u32) -> u64 {
        let blocks = (tokens as u64).div_ceil(self.block_size as u64);
        match self.groups {
            None => blocks,
            Some((full, sliding, window)) => full * blocks + sliding * blocks.min(window),
        }
    }

    /// Units an allocation can get: the free ones and the cached blocks nobody references.
    pub fn available(&self) -> u64 {
        self.free + self.prefix.as_ref().map_or(0, |p| p.evictable.len() as u64)
    }

    /// Units in use by requests (cached blocks nobody references count as reclaimable, not used).
    pub fn used(&self) -> u64 {
        self.total - self.available()
    }

    /// Cached prefix blocks evicted so far.
    pub fn evictions(&self) -> u64 {
        self.prefix.as_ref().map_or(0, |p| p.evictions)
    }

    /// Takes `n` units if that many are available, evicting unreferenced cached blocks (least
    /// recently released first) when the free ones do not suffice.
    pub fn try_alloc(&mut self, n: u64) -> bool {
        if n > self.available() {
            return false;
        }
        if let Some(p) = self.prefix.as_mut() {
            while self.free < n {
                let Some((_, k)) = p.evictable.pop_first() else {
                    break;
                };
                p.refs.remove(&k);
                p.released.remove(&k);
                p.evictions += 1;
                self.free += 1;
            }
        }
        if n <= self.free {
            self.free -= n;
            true
        } else {
            false
        }
    }

    /// Returns `n` units. Freeing more than is used is a bug in the caller.
    pub fn release(&mut self, n: u64) {
        debug_assert!(self.free + n <= self.total, "KV cache over-released");
        self.free = (self.free + n).min(self.total);
    }

    /// How many leading blocks of prefix `group`'s first `blocks` are cached.
    pub fn prefix_hit(&self, group: u32, blocks: u32) -> u32 {
        let Some(p) = self.prefix.as_ref() else {
            return 0;
        };
        (0..blocks)
            .take_while(|&b| p.refs.contains_key(&p.keys.key(group, b)))
            .count() as u32
    }

    /// References the leading cached blocks of prefix `group`'s first `blocks` (they can no longer be
    /// evicted) and returns how many there are.
    pub fn ref_prefix(&mut self, group: u32, blocks: u32) -> u32 {
        let hit = self.prefix_hit(group, blocks);
        if let Some(p) = self.prefix.as_mut() {
            for b in 0..hit {
                let k = p.keys.key(group, b);
                let r = p.refs.entry(k).or_default();
                if *r == 0 {
                    if let Some(t) = p.released.remove(&k) {
                        p.evictable.remove(&(t, k));
                    }
                }
                *r += 1;
            }
        }
        hit
    }

    /// Drops one reference to each of prefix `group`'s first `blocks` blocks; those left unreferenced
    /// become evictable, the deepest first (a prefix is evicted from its end, as vLLM's evictor
    /// prefers the blocks with the most tokens before them among equally recent ones).
    pub fn unref_prefix(&mut self, group: u32, blocks: u32) {
        let Some(p) = self.prefix.as_mut() else {
            return;
        };
        for b in (0..blocks).rev() {
            let k = p.keys.key(group, b);
            let Some(r) = p.refs.get_mut(&k) else {
                debug_assert!(false, "unreferencing a prefix block that is not cached");
                continue;
            };
            *r = r.saturating_sub(1);
            if *r == 0 {
                p.tick += 1;
                p.evictable.insert((p.tick, k));
                p.released.insert(k, p.tick);
            }
        }
    }

    /// Caches blocks `from..to` of prefix `group`, which a request computed and holds (one unit each),
    /// each referenced once by it, up to the first block already cached (another request's copy).
    /// Returns how many were cached: the units the request hands over to the cache.
    pub fn insert_prefix(&mut self, group: u32, from: u32, to: u32) -> u32 {
        let Some(p) = self.prefix.as_mut() else {
            return 0;
        };
        let mut n = 0;
        for b in from..to {
            let k = p.keys.key(group, b);
            if p.refs.contains_key(&k) {
                break;
            }
            p.refs.insert(k, 1);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_groups_stop_growing_at_the_window() {
        // One full group and five sliding groups (Gemma 3 12B), blocks of 16, at most 65 blocks a
        // sliding group (window 1,024).
        let kv = KvCache::new(16, 10_000).with_groups(1, 5, 65);
        assert_eq!(kv.units_for(0), 0);
        assert_eq!(kv.units_for(1), 6);
        assert_eq!(kv.units_for(16 * 65), 6 * 65);
        assert_eq!(kv.units_for(16 * 65 + 1), 6 * 65 + 1);
        assert_eq!(kv.units_for(16 * 200), 200 + 5 * 65);
        // Without groups a unit is a block of every layer.
        assert_eq!(KvCache::new(16, 10).units_for(33), 3);
    }

    #[test]
    fn blocks_round_up_and_never_exceed_capacity() {
        let mut kv = KvCache::new(16, 10);
        assert_eq!(kv.units_for(1), 1);
        assert_eq!(kv.units_for(16), 1);
        assert_eq!(kv.units_for(17), 2);
        assert!(kv.try_alloc(7));
        assert!(!kv.try_alloc(4));
        assert_eq!(kv.used(), 7);
        kv.release(7);
        assert_eq!(kv.free, 10);
    }

    #[test]
    fn cached_prefix_blocks_are_reused_and_evicted_least_recent_and_deepest_first() {
        let mut kv = KvCache::new(16, 10).with_prefix_caching(Arc::new(PrefixKeys::Groups));
        // A request computes 4 blocks, 3 of them prefix blocks of group 7, and caches them.
        assert!(kv.try_alloc(4));
        assert_eq!(kv.insert_prefix(7, 0, 3), 3);
        assert_eq!(kv.prefix_hit(7, 5), 3);
        assert_eq!(kv.prefix_hit(8, 5), 0);
        // Another request shares them while the first still runs.
        assert_eq!(kv.ref_prefix(7, 2), 2);
        // The first finishes: its private block is freed, its prefix blocks stay cached.
        kv.release(1);
        kv.unref_prefix(7, 3);
        assert_eq!((kv.free, kv.available(), kv.used()), (7, 8, 2));
        // The second finishes: every prefix block is evictable, still cached.
        kv.unref_prefix(7, 2);
        assert_eq!((kv.available(), kv.used(), kv.prefix_hit(7, 3)), (10, 0, 3));
        // An allocation that needs one of them evicts the deepest block first.
        assert!(kv.try_alloc(8));
        assert_eq!((kv.prefix_hit(7, 3), kv.evictions()), (2, 1));
        assert!(kv.try_alloc(2));
        assert_eq!((kv.prefix_hit(7, 3), kv.evictions(), kv.free), (0, 3, 0));
        assert!(!kv.try_alloc(1));
    }

    #[test]
    fn hash_chains_share_the_blocks_of_their_common_ids_only() {
        // Requests 0 and 1 share their first hash block (ids 5) and differ in the second (6, 7); two
        // KV blocks per hash block.
        let keys = PrefixKeys::Chains {
            chains: vec![vec![5, 6], vec![5, 7]],
            per: 2,
        };
        let mut kv = KvCache::new(16, 10).with_prefix_caching(Arc::new(keys));
        assert!(kv.try_alloc(4));
        assert_eq!(kv.insert_prefix(0, 0, 4), 4);
        assert_eq!(kv.prefix_hit(1, 4), 2);
        assert_eq!(kv.prefix_hit(0, 4), 4);
    }
}
