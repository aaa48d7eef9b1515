#!/usr/bin/env bash
# The CPU-threads calibration of docs/edge.md ("CPU threads, calibrated on llama.cpp"):
# experiments/llama-cpp-13900k.yaml (LLaMA 7B, Q4_0, one stream, on an Intel Core i9-13900K with
# DDR5-6400) at the thread counts of the published measurement, next to it.
#
# Published figures: llama.cpp GitHub issue #34 "benchmarks?" (github.com/ggml-org/llama.cpp/issues/34),
# comment by slaren, 2023-08-12, "13900k, DDR5 6400", 7B: llama-bench tg128 (tokens/s generating 128
# tokens) and pp512 (tokens/s processing a 512-token prompt) at 4, 8, 16, 24 and 32 threads. The
# comment does not name the quantisation; Q4_0 is assumed (llama-bench's usual 7B test model then).
#
# Fitted on the 4-, 8- and 16-thread rows: memory_efficiency and compute_efficiency in the config,
# p_core_bandwidth_gb_s and e_core_bandwidth_gb_s in profiles/devices.yaml (i9-13900k.cpu). The 24- and
# 32-thread rows are held out.
# tg128 is simulated as a one-token prompt and 128 generated tokens (1 / mean time per output token);
# pp512 as a 512-token prompt and one generated token (512 / time to first token).
# Usage: scripts/cpu_threads.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
cfg=experiments/llama-cpp-13900k.yaml

# Runs $cfg with $1 threads and overrides ${@:2}; prints the summary's field picked by the Python
# expression in $PICK (s: the summary).
run() {
  local threads=$1
  shift
  local d="$out/run"
  "$bin" simulate -c "$cfg" -o "$d" --force -q --no-plots --no-trace \
    --set "hardware.threads=$threads" "$@" 2>/dev/null
  python3 -c "import json, sys; s = json.load(open(sys.argv[1])); print($PICK)" "$d/summary.json"
}

echo "| threads | cores used | row | tg128 published tok/s | tg128 simwatt | error | pp512 published tok/s | pp512 simwatt | error |"
echo "|---|---|---|---|---|---|---|---|---|"
# threads | cores those threads run on | fitted or held out | published tg128 | published pp512
while IFS='|' read -r t cores row tg pp; do
  stg=$(PICK='1 / s["tpot_mean_s"]' run "$t")
  spp=$(PICK='512 / s["ttft_mean_s"]' run "$t" --set "workload.lengths={type: fixed, prompt: 512, output: 1}")
  python3 -c 'import sys
t, c, r, tg, pp, stg, spp = sys.argv[1:]
tg, pp, stg, spp = map(float, (tg, pp, stg, spp))
e = lambda s, p: f"{(s - p) / p * 100:+.1f}%"
print(f"| {t} | {c} | {r} | {tg:.2f} | {stg:.2f} | {e(stg, tg)} | {pp:.2f} | {spp:.2f} | {e(spp, pp)} |")' \
    "$t" "$cores" "$row" "$tg" "$pp" "$stg" "$spp"
done <<'ROWS'
4|4 P|fitted|12.65|22.44
8|8 P|fitted|18.27|33.67
16|8 P + 8 E|fitted|15.66|36.73
24|8 P + 16 E|held out|16.71|47.04
32|8 P (2 threads each) + 16 E|held out|15.88|55.21
ROWS
