#!/usr/bin/env python3
"""FP8 against bf16 on the same GPUs, measured and simulated (docs/precision.md, "FP8 mixture-of-experts
under vLLM 0.11: slower than bf16 at small batches").

Pairs the ML.ENERGY v3 rows of a model's bf16 and FP8 checkpoints served on the same GPU type, task,
GPU count, data-parallel degree and max_num_seqs, and prints the measured FP8 / bf16 ratio of median ITL beside simwatt's
ratio where both are in the validation suite run.

Usage: scripts/fp8_vs_bf16.py [VALIDATION_JSON]
       (default runs/validation/validation.json; run
        `simwatt validate --suite experiments/validation --out runs/validation --force` first)
"""
import csv
import json
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
table = root / "profiles/power/measured/mlenergy_v3/mlenergy_v3_llm_configurations.csv"
suite = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "runs/validation/validation.json"

measured = {}
for r in csv.DictReader(open(table)):
    m = r["model_id"]
    fp8 = m.endswith("-FP8")
    key = (m.removesuffix("-FP8"), r["task"], r["gpu_model"], int(r["num_gpus"]), int(r["data_parallel"]),
           int(r["max_num_seqs"]))
    measured.setdefault(key, {})[fp8] = float(r["median_itl_ms"])

# Simulated ITL by (gpu, GPUs, max_num_seqs, FP8, task), from the suite run (the chat cases, and the
# GPQA cases named with a -gpqa suffix).
simulated = {}
if suite.exists():
    for c in json.load(open(suite))["cases"]:
        if c["status"] != "ok":
            continue
        m = re.search(r"heldout-v3-(h100|b200)-(qwen3-235b-a22b)(-fp8)?(-gpqa)?$", c["name"])
        if not m:
            continue
        for p in c["points"]:
            n = re.search(r"max_num_seqs (\d+) \(TP\d+, (\d+) GPU\)", p["label"])
            e = p["metrics"].get("itl_p50_s")
            if n and e:
                task = "gpqa" if m.group(4) else "lm-arena-chat"
                simulated[(m.group(1).upper(), int(n.group(2)), int(n.group(1)), bool(m.group(3)), task)] = e["simulated"]
else:
    print(f"({suite} not found: measured ratios only)\n")

print("| model | task | GPU | GPUs | data parallel | max_num_seqs | bf16 ITL ms | FP8 ITL ms | FP8 / bf16 measured | FP8 / bf16 simwatt |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (model, task, gpu, gpus, dp, seqs), v in sorted(measured.items()):
    if True not in v or False not in v:
        continue
    sim = ""
    b, f = simulated.get((gpu, gpus, seqs, False, task)), simulated.get((gpu, gpus, seqs, True, task))
    if b and f and dp == 1:
        sim = f"{f / b:.2f}"
    print(f"| {model.split('/')[1]} | {task} | {gpu} | {gpus} | {dp} | {seqs} | {v[False]:.1f} | {v[True]:.1f} | "
          f"{v[True] / v[False]:.2f} | {sim or '-'} |")
