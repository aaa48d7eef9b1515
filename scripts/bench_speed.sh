#!/usr/bin/env bash
# Speed and memory of `simwatt simulate` as a user runs it, on the peers' workload
# (experiments/bench-10k.yaml: Poisson 4 req/s, prompts U[512, 2048], outputs U[128, 512], one A100 serving
# Llama-2-7B):
# - every batching policy on the 10k workload, plots and trace off (`--no-plots --no-trace`), everything
#   else written;
# - a million requests of the same lengths with default outputs (plots, trace, every table): the rate
#   scaled 100x over 160 replicas (2.5 req/s each, which one A100 sustains), and the same million on one
#   replica at 2.5 req/s (one long timeline).
# Each figure is the median [min-max] of REPS runs (default 5; REPS_1M, default 3, for the million rows),
# the rows of a table interleaved: each repetition runs every row once.
# "whole req/s" divides the requests by the command's wall time; "loop req/s" is summary.json's
# sim_requests_per_wall_s (the event loop alone, batches streamed to the writers included). Peak RSS is
# the largest resident set of the process; "written" the run folder's size.
# The execution-time model is fitted once before timing (its time is printed separately).
# Usage: [REPS=5] [REPS_1M=3] [ONLY=10k|1m] scripts/bench_speed.sh   (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/simwatt
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
reps=${REPS:-5}
reps_1m=${REPS_1M:-3}
only=${ONLY:-all}

t0=$(date +%s.%N)
$bin fit latency --gpu a100 --model meta-llama/Llama-2-7b-hf -q >/dev/null
t1=$(date +%s.%N)
echo "date: $(date -u +%Y-%m-%d)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "simwatt: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "predictor fit or cache load (one-time): %.2f s\n\n", b - a }'

# once KEY ARGS...: one run of `simulate` with ARGS, its figures appended to the rows of KEY.
once() {
  local key=$1; shift
  rm -rf "$out/run"
  t0=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$out/time" "$bin" simulate -o "$out/run" -q "$@"
  t1=$(date +%s%N)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  read -r rss < "$out/time"
  bytes=$(du -sb "$out/run" | cut -f1)
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(s["requests_total"], s["sim_requests_per_wall_s"], *sys.argv[2:])' \
    "$out/run/summary.json" "$wall" "$rss" "$bytes" >> "$out/rows.$key"
}

# report KEY NAME: one line of medians [min-max] over KEY's rows.
report() {
  local key=$1 name=$2
  python3 - "$name" "$out/rows.$key" <<'PY'
import statistics, sys
name, path = sys.argv[1], sys.argv[2]
rows = [[float(x) for x in l.split()] for l in open(path)]
n = rows[0][0]
def stat(vals, fmt):
    return f"{fmt(statistics.median(vals))} [{fmt(min(vals))}-{fmt(max(vals))}]"
whole = [n / r[2] for r in rows]
loop = [r[1] for r in rows]
wall = [r[2] for r in rows]
rss = [r[3] / 1024 for r in rows]
written = [r[4] / 1e6 for r in rows]
i = lambda v: f"{v:,.0f}"
print(f"| {name} | {n:,.0f} | {stat(whole, i)} | {stat(loop, i)} | {stat(wall, lambda v: f'{v:.3f}')} | "
      f"{stat(rss, i)} | {stat(written, lambda v: f'{v:,.1f}')} |")
PY
}

# The runs of one table are interleaved (each repetition runs every row once), so that a slow spell
# of the shared machine falls on every row alike rather than on the rows that happened to run then.
policies="vllm orca sarathi faster_transformer lightllm"
echo "| run | requests | whole req/s | loop req/s | wall s | peak RSS MB | written MB |"
echo "|---|---|---|---|---|---|---|"
if [ "$only" != 1m ]; then
  for _ in $(seq "$reps"); do
    for p in $policies; do
      once "$p" -c experiments/bench-10k.yaml --set scheduler.policy=$p --no-plots --no-trace
    done
  done
  for p in $policies; do
    report "$p" "10k $p, --no-plots --no-trace"
  done
fi
if [ "$only" != 10k ]; then
  for _ in $(seq "$reps_1m"); do
    once m160 -c experiments/bench-10k.yaml \
      --set workload.requests=1000000 --set workload.arrival.rate=400 --set hardware.replicas=160
    once m1 -c experiments/bench-10k.yaml \
      --set workload.requests=1000000 --set workload.arrival.rate=2.5
  done
  report m160 "1M vllm, 160 replicas, default outputs"
  report m1 "1M vllm, 1 replica, default outputs"
fi
