#!/usr/bin/env bash
# Two builds of simwatt on the same workload, interleaved, for every batching policy: the before/after
# figure of a change that must not slow the loop. Each run is a whole `simulate` of
# experiments/bench-10k.yaml (10,000 requests, Poisson 4 req/s, one A100, Llama-2-7B) with
# --no-plots --no-trace. Reports, per policy and build, the median, min and max over REPS runs of
# (a) simulated requests per wall-second of the whole process and (b) the loop-only figure
# (summary.json's sim_requests_per_wall_s), and the change of the medians.
# Usage: [REPS=5] scripts/bench_compare.sh BEFORE_BINARY AFTER_BINARY   (from the repository root)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2; exit 2; }
before=$1; after=$2
for b in "$before" "$after"; do [ -x "$b" ] || { echo "$b: not an executable" >&2; exit 2; }; done
cd "$(dirname "$0")/.."
reps=${REPS:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Warm the fitted-table cache once, so neither build pays the fit.
"$after" fit latency --gpu a100 --model meta-llama/Llama-2-7b-hf -q >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d); $reps runs each"
: > "$out/rows"
for p in vllm orca sarathi faster_transformer lightllm; do
  for _ in $(seq "$reps"); do
    for which in before after; do
      bin=$before; [ "$which" = after ] && bin=$after
      t0=$(date +%s.%N)
      "$bin" simulate -c experiments/bench-10k.yaml --set scheduler.policy=$p -o "$out/run" --force -q \
        --no-plots --no-trace
      t1=$(date +%s.%N)
      python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], s["requests_total"] / (float(sys.argv[5]) - float(sys.argv[4])), s["sim_requests_per_wall_s"])' \
        "$out/run/summary.json" "$p" "$which" "$t0" "$t1" >> "$out/rows"
    done
  done
done
python3 - "$out/rows" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
pols = list(dict.fromkeys(r[0] for r in rows))
def stat(p, w, i):
    v = [float(r[i]) for r in rows if r[0] == p and r[1] == w]
    return statistics.median(v), min(v), max(v)
print(f"{'policy':<20} {'build':<7} {'whole-process req/s (median [min-max])':>40} {'loop-only req/s (median [min-max])':>40}")
for p in pols:
    for w in ("before", "after"):
        a, b = stat(p, w, 2), stat(p, w, 3)
        print(f"{p:<20} {w:<7} {a[0]:>20,.0f} [{a[1]:,.0f}-{a[2]:,.0f}] {b[0]:>20,.0f} [{b[1]:,.0f}-{b[2]:,.0f}]")
    da = stat(p, "after", 2)[0] / stat(p, "before", 2)[0] - 1
    db = stat(p, "after", 3)[0] / stat(p, "before", 3)[0] - 1
    print(f"{p:<20} {'change':<7} {da:>+20.1%} {db:>+32.1%}")
PY
