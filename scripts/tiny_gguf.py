#!/usr/bin/env python3
"""Writes a tiny llama-architecture model with random weights as a GGUF file that llama.cpp loads.

Shape (the catalog entry `simwatt/tiny-llama-random` in profiles/models.yaml states the same numbers):
2 layers, hidden 64, 4 attention heads of 16, 4 key/value heads, SwiGLU MLP of 128, float32 weights,
context 2048. The tokenizer is a SentencePiece-style vocabulary (`tokenizer.ggml.model = llama`):
<unk>, <s>, </s>, the 256 byte tokens, and every substring of a few words (each with a leading "▁"), so
that a prompt of the words separated by spaces is one token per word after <s>.

The output rows of the control and byte tokens are zero and the word rows large, so greedy decoding
picks words: outputs are whole tokens of valid text and end-of-sequence is not chosen (the load
generator also asks for min_tokens).

Usage: tiny_gguf.py OUT.gguf [--seed N]. Prints the vocabulary size.
"""
import argparse
import sys

import numpy as np
import gguf

LAYERS, HIDDEN, HEADS, KV_HEADS, FFN, CTX = 2, 64, 4, 4, 128, 2048
WORDS = ["hello", "world", "energy", "token", "power", "watt", "joule", "batch",
         "server", "model", "light", "river", "stone", "cloud", "green", "quiet"]


def vocab():
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(6)
    seen = set()
    for w in WORDS:
        piece = "\u2581" + w
        for i in range(len(piece)):
            for j in range(i + 1, len(piece) + 1):
                s = piece[i:j]
                if s in seen:
                    continue
                seen.add(s)
                tokens.append(s)
                scores.append(float(len(s)))  # longer pieces merge first
                types.append(1)
    return tokens, scores, types


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    tokens, scores, types = vocab()
    n_vocab = len(tokens)
    head_dim = HIDDEN // HEADS
    kv_dim = head_dim * KV_HEADS

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("simwatt tiny llama (random weights)")
    w.add_context_length(CTX)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(0)  # all float32
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def mat(rows, cols, scale):
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    ones = np.ones(HIDDEN, dtype=np.float32)
    w.add_tensor("token_embd.weight", mat(n_vocab, HIDDEN, 1.0))
    w.add_tensor("output_norm.weight", ones.copy())
    out = mat(n_vocab, HIDDEN, 1.0)
    out[: 3 + 256] = 0.0  # control and byte tokens: logit 0, below the best word's
    w.add_tensor("output.weight", out)
    s = 1.0 / np.sqrt(HIDDEN)
    for i in range(LAYERS):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones.copy())
        w.add_tensor(p + "attn_q.weight", mat(HIDDEN, HIDDEN, s))
        w.add_tensor(p + "attn_k.weight", mat(kv_dim, HIDDEN, s))
        w.add_tensor(p + "attn_v.weight", mat(kv_dim, HIDDEN, s))
        w.add_tensor(p + "attn_output.weight", mat(HIDDEN, HIDDEN, s))
        w.add_tensor(p + "ffn_norm.weight", ones.copy())
        w.add_tensor(p + "ffn_gate.weight", mat(FFN, HIDDEN, s))
        w.add_tensor(p + "ffn_up.weight", mat(FFN, HIDDEN, s))
        w.add_tensor(p + "ffn_down.weight", mat(HIDDEN, FFN, 1.0 / np.sqrt(FFN)))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(n_vocab)


if __name__ == "__main__":
    sys.exit(main())
