#!/usr/bin/env bash
# Measures the execution-time model's fit: a cold fit (empty cache) of every shipped (device, model, TP),
# a cold fit of one (device, model), and a cached start of a simulation that uses it.
# Usage: scripts/bench_fit.sh   (from the repository root; builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/simwatt
cache=$(mktemp -d)
trap 'rm -rf "$cache" "$out"' EXIT
out=$(mktemp -d)
export SIMWATT_CACHE_DIR=$cache

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
t0=$(now); $bin fit latency --gpu a100 --model meta-llama/Llama-2-7b-hf --tp 1 -q >/dev/null; t1=$(now)
echo "cold fit, a100 + Llama-2-7b-hf TP 1 (all tables):       $(elapsed "$t0" "$t1") s"
rm -rf "${cache:?}"/*
t0=$(now); $bin fit latency --all -q >/dev/null; t1=$(now)
echo "cold fit, every shipped (device, model, TP) ($(ls "$cache" | wc -l) tables): $(elapsed "$t0" "$t1") s"
t0=$(now); $bin simulate -c experiments/quickstart.yaml --set workload.requests=1 -o "$out/run" -q --force; t1=$(now)
echo "cached start: simulate 1 request with fitted tables:   $(elapsed "$t0" "$t1") s"
