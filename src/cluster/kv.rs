//! KV-cache memory of a replica, in fixed-size blocks (paged attention) or single tokens.

/// A replica's KV cache: a count of free units out of a fixed total. A unit is a block of
/// `block_size` tokens (block_size 1 for token-granular caches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvCache {
    pub block_size: u32,
    pub total: u64,
    pub free: u64,
}

impl KvCache {
    pub fn new(block_size: u32, total: u64) -> Self {
        KvCache {
            block_size,
            total,
            free: total,
        }
    }

    /// Units needed to hold `tokens` tokens.
    pub fn units_for(&self, tokens: u32) -> u64 {
        (tokens as u64).div_ceil(self.block_size as u64)
    }

    pub fn used(&self) -> u64 {
        self.total - self.free
    }

    /// Takes `n` units if that many are free.
    pub fn try_alloc(&mut self, n: u64) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
