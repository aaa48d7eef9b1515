//! The shape of a batch: what one iteration of a replica computes, summarised so that any cost model
//! can price it. Batching policies build it as they add work to a batch; the predictor reads it.
//! Pure data: no time, no cost, no reference to the layers above.

use serde::Serialize;

/// What one iteration of a replica computes, summarised so that any predictor can price it.
///
/// Attention work depends on each sequence's context; the sums below are exact for models linear in
/// per-sequence work (FLOPs and KV bytes are), and the largest values bound non-linear effects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BatchShape {
    /// Sequences that run a prefill (chunk) in this iteration.
    pub prefill_seqs: u32,
    /// Prompt tokens processed, summed over prefill sequences.
    pub prefill_tokens: u32,
    /// Sum over prefill sequences of query-key pairs: p*c + p*(p+1)/2 for a chunk of p tokens after c
    /// cached tokens (causal attention).
    pub prefill_attn_pairs: u64,
    /// Sum over prefill sequences of p^2 (for profile-fitted attention).
    pub prefill_tokens_sq: u64,
    /// Sum over prefill sequences of the tokens already cached before their chunk.
    pub prefill_cached_tokens: u64,
    /// Largest context (cached + chunk) of any prefill sequence.
    pub prefill_max_context: u32,
    /// Sequences that decode one token, including padding sequences of static batches.
    pub decode_seqs: u32,
    /// Sum of the decode sequences' context lengths (tokens read from the KV cache).
    pub decode_context_sum: u64,
    /// Largest decode context.
    pub decode_max_context: u32,
    /// Sequences that produce a token this iteration (logits computed).
    pub sampled_seqs: u32,
}

impl BatchShape {
    /// Adds a prefill chunk of `tokens` tokens after `cached` tokens already in the KV cache.
    pub fn add_prefill(&mut self, tokens: u32, cached: u32, samples: bool) {
        let (p, c) = (tokens as u64, cached as u64);
        self.prefill_seqs += 1;
        self.prefill_tokens += tokens;
        self.prefill_attn_pairs += p * c + p * (p + 1) / 2;
        self.prefill_tokens_sq += p * p;
        self.prefill_cached_tokens += c;
        self.prefill_max_context = self.prefill_max_context.max(tokens + cached);
        if samples {
            self.sampled_seqs += 1;
        }
    }

    /// Adds a decode step of a sequence with `context` tokens in the KV cache.
    pub fn add_decode(&mut self, context: u32) {
        self.decode_seqs += 1;
        self.decode_context_sum += context as u64 + 1;
        self.decode_max_context = self.decode_max_context.max(context + 1);
        self.sampled_seqs += 1;
    }

    /// Adds `n` padding slots (a CUDA graph captured for more tokens than the batch has): each runs
    /// through the linear layers as a decode token with an empty context and is not sampled.
    pub fn add_padding(&mut self, n: u32) {
        self.decode_seqs += n;
        self.decode_context_sum += n as u64;
        if n > 0 {
            self.decode_max_context = self.decode_max_context.max(1);
        }
    }

    /// Tokens processed by the linear layers.
    pub fn total_tokens(&self) -> u32 {
        self.prefill_tokens + self.decode_seqs
    }

    pub fn is_empty(&self) -> bool {
        self.total_tokens() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_pairs_count_causal_attention() {
        let mut s = BatchShape::default();
        s.add_prefill(4, 0, true);
        // Token i attends to i + 1 positions: 1 + 2 + 3 + 4.
        assert_eq!(s.prefill_attn_pairs, 10);
        s.add_prefill(2, 10, false);
        // 2 tokens after 10 cached: 11 + 12.
        assert_eq!(s.prefill_attn_pairs, 10 + 23);
        assert_eq!(s.sampled_seqs, 1);
        s.add_decode(99);
        assert_eq!(s.decode_context_sum, 100);
        assert_eq!(s.total_tokens(), 7);
    }
}
