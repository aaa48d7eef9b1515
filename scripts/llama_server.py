#!/usr/bin/env python3
"""llama-cpp-python's OpenAI-compatible server, with the per-request numbers it does not stream added
to the last event of each streamed completion, under the names llama.cpp's own server uses:

- `usage`: prompt_tokens (the prompt as the model's tokenizer splits it, with <s>) and
  completion_tokens (the text chunks streamed, one per generated token);
- `timings`: llama.cpp's perf counters for the request (prompt_n, prompt_ms, predicted_n,
  predicted_ms: `llama_perf_context`, reset when the request starts), and the server's wall clock from
  the start of the completion to its first text chunk (`server_ttft_ms`) and to its last
  (`server_total_ms`).

Everything else is the package's server as it is (`python -m llama_cpp.server`); the arguments are its
arguments.
"""
import sys
import time

import llama_cpp
from llama_cpp import Llama
from llama_cpp.server.__main__ import main as server_main

_create_completion = Llama.create_completion


def create_completion(self, prompt, *args, **kwargs):
    res = _create_completion(self, prompt, *args, **kwargs)
    if not kwargs.get("stream", False):
        return res
    if isinstance(prompt, str):
        n_prompt = len(self.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
    else:
        n_prompt = len(prompt)

    def stream():
        t0 = time.perf_counter()
        llama_cpp.llama_perf_context_reset(self._ctx.ctx)
        first = None
        n = 0
        last = None
        for chunk in res:
            if chunk["choices"] and chunk["choices"][0].get("text"):
                n += 1
                if first is None:
                    first = time.perf_counter()
            last = chunk
            yield chunk
        end = time.perf_counter()
        if last is None:
            return
        perf = llama_cpp.llama_perf_context(self._ctx.ctx)
        yield {
            "id": last["id"],
            "object": last["object"],
            "created": last["created"],
            "model": last["model"],
            "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": None}],
            "usage": {
                "prompt_tokens": n_prompt,
                "completion_tokens": n,
                "total_tokens": n_prompt + n,
            },
            "timings": {
                "prompt_n": perf.n_p_eval,
                "prompt_ms": perf.t_p_eval_ms,
                "predicted_n": perf.n_eval,
                "predicted_ms": perf.t_eval_ms,
                "server_ttft_ms": ((first or end) - t0) * 1e3,
                "server_total_ms": (end - t0) * 1e3,
            },
        }

    return stream()


Llama.create_completion = create_completion

if __name__ == "__main__":
    sys.exit(server_main())
