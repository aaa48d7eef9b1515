#!/usr/bin/env bash
# Speed and memory of the event loop on the peers' workload (experiments/bench-10k.yaml: Poisson 4 req/s,
# prompts U[512, 2048], outputs U[128, 512], one A100 serving Llama-2-7B), for every batching policy, and
# on 1,000,000 requests of the same lengths with the rate scaled 100x and 160 replicas, so each replica
# gets 2.5 req/s, which one A100 sustains (at 4 req/s per replica the queue grows all run: the last row
# is that overloaded case, to show memory under a growing backlog).
# The execution-time model is fitted once before timing (its time is reported separately); plots and the
# trace are off. Reports simulated requests and events per wall-second of the event loop (summary.json's
# sim_wall_s: workload generation and writing requests.csv excluded, batches streamed to disk included),
# the whole command's wall time, and peak RSS.
# Usage: [REPS=3] scripts/bench_speed.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/simwatt
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

t0=$(date +%s.%N)
$bin fit latency --gpu a100 --model meta-llama/Llama-2-7b-hf -q >/dev/null
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "predictor fit or cache load (one-time): %.2f s\n", b - a }'
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf "%-20s %10s %14s %14s %10s %12s\n" workload requests "sim req/s" "events/s" "wall s" "peak RSS MB"

# Each row is the median of REPS runs (default 3) by simulated requests per second; wall time is that
# run's, peak RSS the largest of the runs.
reps=${REPS:-3}
run() {
  local name=$1; shift
  : > "$out/rows"
  for _ in $(seq "$reps"); do
    /usr/bin/time -f "%e %M" -o "$out/time" $bin simulate -c experiments/bench-10k.yaml "$@" \
      -o "$out/run" --force -q --no-plots --no-trace
    read -r wall rss < "$out/time"
    python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(s["requests_total"], s["sim_requests_per_wall_s"], s["sim_events_per_wall_s"], sys.argv[2], sys.argv[3])' \
      "$out/run/summary.json" "$wall" "$rss" >> "$out/rows"
  done
  python3 - "$name" "$out/rows" <<'PY'
import sys
name, path = sys.argv[1], sys.argv[2]
rows = sorted((tuple(float(x) for x in l.split()) for l in open(path)), key=lambda r: r[1])
n, rps, eps, wall, _ = rows[len(rows) // 2]
rss = max(r[4] for r in rows)
print(f"{name:<20} {n:>10.0f} {rps:>14.0f} {eps:>14.0f} {wall:>10.2f} {rss / 1024:>12.0f}")
PY
}

for p in vllm orca sarathi faster_transformer lightllm; do
  run "10k $p" --set scheduler.policy=$p
done
run "1M vllm" --set workload.requests=1000000 --set workload.arrival.rate=400 --set hardware.replicas=160
run "1M vllm overloaded" --set workload.requests=1000000 --set workload.arrival.rate=400 --set hardware.replicas=100
