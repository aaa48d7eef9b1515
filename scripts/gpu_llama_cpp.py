#!/usr/bin/env python3
"""The desktop-GPU llama.cpp calibration of docs/edge.md ("Desktop GPUs, calibrated on llama.cpp").

Runs experiments/llama-cpp-vulkan-gpus.yaml on each published row (GPU x model x test) and prints
simwatt's rate next to the published one, with the error. With --fit it first fits the roofline's
memory_efficiency and layer_overhead_us on the decode rows marked `fitted` (least squares on the
logarithm of the time per token) and compute_efficiency on the prefill row marked `fitted`, and says
whether the config holds those values.

Published figures: Jeff Geerling's ai-benchmarks (github.com/geerlingguy/ai-benchmarks), README at
commit bdf9441 ("Findings": the llama.cpp "Eval Rate", llama-bench tg128, of the "Intel 265K Custom PC"
rows: an Intel Core Ultra 7 265K with 64 GB DDR5-6000 under Ubuntu 25.10, llama.cpp builds of
December 2025), and, for TinyLlama and pp512, the tables of that repository's issues #43 (RTX 4090,
build 086a63e3a) and #46 (RTX 2080 Ti, build f9ec8858e). Every row was run with
`llama-bench -n 128 -p 512,4096 -pg 4096,128 -ngl 99 -r 2` on the Vulkan backend (the issues' tables
name it). Models as published: Llama-3.2-3B-Instruct-Q4_K_M (1.87 GiB), DeepSeek-R1-Distill-Qwen-14B-
Q4_K_M, tinyllama-1.1b-1t-openorca.Q4_K_M (636 MiB).

tg128 is simulated as a one-token prompt and 128 generated tokens (1 / mean time per output token);
pp512 as a 512-token prompt and one generated token (512 / time to first token).

Usage: scripts/gpu_llama_cpp.py [--fit]   (from anywhere; builds the release binary first unless
SIMWATT names one)
"""
import json
import math
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CFG = "experiments/llama-cpp-vulkan-gpus.yaml"

LLAMA3B = "meta-llama/Llama-3.2-3B"
QWEN14B = "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B"
TINY = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
SHORT = {LLAMA3B: "Llama-3.2-3B", QWEN14B: "R1-Distill-Qwen-14B", TINY: "TinyLlama-1.1B"}

# gpu, model, test, published tokens/s, fitted or held out, source
ROWS = [
    ("rtx4090", LLAMA3B, "tg128", 334.67, "fitted", "README"),
    ("rtx3080ti", LLAMA3B, "tg128", 263.24, "fitted", "README"),
    ("rtx2080ti", LLAMA3B, "tg128", 180.38, "fitted", "README"),
    ("rtx4090", QWEN14B, "tg128", 92.49, "fitted", "README"),
    ("rtx3080ti", QWEN14B, "tg128", 70.74, "fitted", "README"),
    ("rtx2080ti", QWEN14B, "tg128", 45.06, "fitted", "README"),
    ("rtx3060", LLAMA3B, "tg128", 122.85, "held out", "README"),
    ("rtx4070ti", LLAMA3B, "tg128", 196.15, "held out", "README"),
    ("rtxa4000", LLAMA3B, "tg128", 149.44, "held out", "README"),
    ("rtx3060", QWEN14B, "tg128", 29.77, "held out", "README"),
    ("rtx4070ti", QWEN14B, "tg128", 49.74, "held out", "README"),
    ("rtx4090", TINY, "tg128", 762.37, "held out", "issue #43"),
    ("rtx2080ti", TINY, "tg128", 424.32, "held out", "issue #46"),
    ("rtx4090", LLAMA3B, "pp512", 20323.29, "fitted", "issue #43"),
    ("rtx2080ti", LLAMA3B, "pp512", 4418.37, "held out", "issue #46"),
    ("rtx2080ti", TINY, "pp512", 7094.19, "held out", "issue #46"),
]


def binary():
    if os.environ.get("SIMWATT"):
        return os.environ["SIMWATT"]
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "simwatt")


def rate(bin_, out, gpu, model, test, sets=()):
    """simwatt's tokens/s for one row, with extra --set overrides."""
    args = [bin_, "simulate", "-c", CFG, "-o", out, "--force", "-q", "--no-plots", "--no-trace",
            "--set", f"hardware.gpu={gpu}", "--set", f"model={model}"]
    if test == "pp512":
        args += ["--set", "workload.lengths={type: fixed, prompt: 512, output: 1}"]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    return 1.0 / s["tpot_mean_s"] if test == "tg128" else 512.0 / s["ttft_mean_s"]


def fit(bin_, out):
    """Least squares on log time per token over the fitted decode rows of
    t = A / memory_efficiency + B * layer_overhead_us + C * iteration_overhead_ms, with A (the time at
    memory_efficiency 1 and no overheads), B and C read from three simwatt runs per row; the overheads
    at least 0. Then compute_efficiency from the fitted prefill row."""
    zero = ("predictor.memory_efficiency=1.0", "predictor.layer_overhead_us=0",
            "predictor.iteration_overhead_ms=0")
    terms = []
    for gpu, model, test, pub, role, _ in ROWS:
        if role != "fitted" or test != "tg128":
            continue
        t = lambda sets: 1.0 / rate(bin_, out, gpu, model, test, sets)
        a = t(zero)
        b = (t(zero[:1] + ("predictor.layer_overhead_us=100",) + zero[2:]) - a) / 100.0
        c = t(zero[:2] + ("predictor.iteration_overhead_ms=1",)) - a
        terms.append((a, b, c, math.log(1.0 / pub)))

    def loss(p):
        eff, u, ms = p
        return sum((math.log(a / eff + b * u + c * ms) - y) ** 2 for a, b, c, y in terms)

    # A coarse grid, then finer grids around the best point: memory_efficiency to 0.001,
    # layer_overhead_us to 0.1 us, iteration_overhead_ms to 0.001 ms.
    steps = [(0.01, 1.0, 0.01), (0.001, 0.1, 0.001)]
    lo, hi = (0.3, 0.0, 0.0), (1.2, 50.0, 2.0)
    best = None
    for k, step in enumerate(steps):
        axes = []
        for d in range(3):
            if k == 0:
                a0, a1 = lo[d], hi[d]
            else:
                a0 = max(lo[d], best[1][d] - 2 * steps[0][d])
                a1 = min(hi[d], best[1][d] + 2 * steps[0][d])
            n = int(round((a1 - a0) / step[d]))
            axes.append([round(a0 + i * step[d], 6) for i in range(n + 1)])
        for eff in axes[0]:
            for u in axes[1]:
                for ms in axes[2]:
                    l = loss((eff, u, ms))
                    if best is None or l < best[0]:
                        best = (l, (eff, u, ms))
    eff, u, ms = best[1]
    # Prefill: the one fitted row, at the fitted decode terms; time scales as 1 / compute_efficiency
    # where prefill is compute-bound, so a few correction steps converge.
    sets = (f"predictor.memory_efficiency={eff}", f"predictor.layer_overhead_us={u}",
            f"predictor.iteration_overhead_ms={ms}")
    ce = 0.6
    for gpu, model, test, pub, role, _ in ROWS:
        if role == "fitted" and test == "pp512":
            for _ in range(6):
                sim = rate(bin_, out, gpu, model, test, sets + (f"predictor.compute_efficiency={ce}",))
                ce = round(ce * pub / sim, 3)
    return eff, u, ms, ce


def main():
    bin_ = binary()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        if "--fit" in sys.argv[1:]:
            eff, u, ms, ce = fit(bin_, out)
            print(f"fitted: memory_efficiency {eff:g}, layer_overhead_us {u:g}, "
                  f"iteration_overhead_ms {ms:g}, compute_efficiency {ce:g}")
            with open(os.path.join(ROOT, CFG)) as f:
                text = f.read()
            shipped = all(s in text for s in (f"memory_efficiency: {eff:g}\n",
                                               f"layer_overhead_us: {u:g}\n",
                                               f"iteration_overhead_ms: {ms:g}\n",
                                               f"compute_efficiency: {ce:g}\n"))
            print(f"{CFG} holds these values: {'yes' if shipped else 'NO, update it'}")
            print()
        print("| GPU | model | test | row | published tok/s | source | simwatt tok/s | error |")
        print("|---|---|---|---|---|---|---|---|")
        for gpu, model, test, pub, role, src in ROWS:
            sim = rate(bin_, out, gpu, model, test)
            print(f"| {gpu} | {SHORT[model]} | {test} | {role} | {pub:.2f} | {src} | {sim:.2f} | "
                  f"{(sim - pub) / pub * 100:+.1f}% |")


if __name__ == "__main__":
    main()
