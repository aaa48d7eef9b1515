#!/usr/bin/env bash
# Measures the wall time of a 1,000-run sweep of small runs (experiments/sweep-1000.yaml) on this
# machine: the whole `simwatt sweep run` (checking every run's config, simulating, writing the shard
# file and merging the table), with --jobs 1 and with every CPU. Prints one line per case.
#   usage: scripts/bench_sweep.sh [SWEEP=experiments/sweep-1000.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."
sweep=${1:-experiments/sweep-1000.yaml}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/simwatt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cpus=$(nproc)
runs=$("$bin" sweep plan --config "$sweep" | grep -vc '^#' || true)
runs=$((runs - 1))   # the header line
echo "# $sweep: $runs runs; $cpus CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
# Fit (or load) the execution-time tables once, so every case starts from the same cache.
"$bin" sweep run --config "$sweep" --shard 0/"$runs" --out "$work/warm" --quiet
for jobs in 1 "$cpus"; do
  t0=$(date +%s.%N)
  "$bin" sweep run --config "$sweep" --jobs "$jobs" --out "$work/jobs-$jobs" --quiet
  t1=$(date +%s.%N)
  rows=$(($(wc -l <"$work/jobs-$jobs/results.csv") - 1))
  awk -v a="$t0" -v b="$t1" -v j="$jobs" -v r="$rows" \
    'BEGIN { printf "sweep run --jobs %d: %d runs in %.1f s wall (%.0f runs/s)\n", j, r, b - a, r / (b - a) }'
done
cmp -s "$work/jobs-1/results.csv" "$work/jobs-$cpus/results.csv" && echo "tables identical: yes" || echo "tables identical: NO"
