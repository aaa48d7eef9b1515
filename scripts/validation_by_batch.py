#!/usr/bin/env python3
"""Signed mean error of one metric per validation case, rows with max_num_seqs up to a split and above
it, from a suite run's validation.json (docs/validation.md, "Power at large batches").

Usage: scripts/validation_by_batch.py [VALIDATION_JSON] [METRIC] [SPLIT]
       (defaults: runs/validation/validation.json mean_power_w 64; run
        `simwatt validate --suite experiments/validation --out runs/validation --force` first)
"""
import json
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "runs/validation/validation.json"
metric = sys.argv[2] if len(sys.argv) > 2 else "mean_power_w"
split = int(sys.argv[3]) if len(sys.argv) > 3 else 64


def mean(v):
    return f"{100 * sum(v) / len(v):+.1f}% ({len(v)})" if v else "-"


print(f"| case | `{metric}`, max_num_seqs <= {split} (rows) | above {split} (rows) |")
print("|---|---|---|")
for case in json.load(open(path))["cases"]:
    if case["status"] != "ok":
        continue
    low, high = [], []
    for p in case["points"]:
        m = re.search(r"max_num_seqs (\d+)", p["label"])
        e = p["metrics"].get(metric, {}).get("rel_error")
        if m is None or e is None:
            continue
        (low if int(m.group(1)) <= split else high).append(e)
    if low or high:
        print(f"| {case['name']} | {mean(low)} | {mean(high)} |")
