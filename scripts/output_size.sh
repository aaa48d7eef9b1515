#!/usr/bin/env bash
# Size on disk of a large run's folder, file by file: with requests.csv (`--csv`), without it
# (`--no-csv`, the default above 100,000 requests), and without it with power.parquet written as one row
# per busy, host and idle segment (`--power-interval 0`) instead of per 0.1 s interval.
# The workload is experiments/bench-10k.yaml's (prompts U[512, 2048], outputs U[128, 512], Llama-2-7B on
# A100s) scaled as scripts/bench_speed.sh's 1M row: N requests at N/2500 req/s over N/6250 replicas
# (2.5 req/s each, a stable load). Plots and the trace are off; every table a run writes is written.
# Usage: scripts/output_size.sh [N]   (default 200000; from the repository root)
#        SIMWATT=path/to/simwatt scripts/output_size.sh [N]   measures another build (one without
#        --csv or --power-interval gets the tables it can write).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
if [ -z "${SIMWATT:-}" ]; then
  cargo build --release --quiet
fi
bin=${SIMWATT:-target/release/simwatt}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rate=$((n / 2500)); replicas=$((n / 6250))
echo "simwatt simulate -c experiments/bench-10k.yaml --set workload.requests=$n --set workload.arrival.rate=$rate --set hardware.replicas=$replicas --no-plots --no-trace [--csv | --no-csv] [--power-interval 0]"
for mode in csv no-csv segments; do
  case $mode in
    csv) flag=--csv; flags=(--csv) ;;
    no-csv) flag=--no-csv; flags=(--no-csv) ;;
    segments) flag=--power-interval; flags=(--no-csv --power-interval 0) ;;
  esac
  "$bin" simulate --help | grep -q -- "$flag" || continue
  "$bin" simulate -c experiments/bench-10k.yaml --set workload.requests="$n" \
    --set workload.arrival.rate="$rate" --set hardware.replicas="$replicas" \
    -o "$out/$mode" -q --no-plots --no-trace "${flags[@]}"
  echo "== $mode (bytes)"
  for f in "$out/$mode"/*; do
    printf "%14d  %s\n" "$(stat -c %s "$f")" "$(basename "$f")"
  done
  total=$(cat "$out/$mode"/* | wc -c)
  awk -v t="$total" 'BEGIN { printf "%14d  total (%.1f MB)\n", t, t / 1e6 }'
done
