#!/usr/bin/env bash
# Data-parallel attention against tensor parallelism on the same 8 GPUs (docs/latency-model.md,
# "Data-parallel attention: what the layouts trade"): DeepSeek-V3 in FP8 on 8 B200s under vLLM 0.11's
# engine (experiments/data-parallel-deepseek.yaml), the experts spread over all 8 GPUs in every layout,
# the attention as 1, 2, 4 or 8 data-parallel ranks of 8, 4, 2 or 1 tensor-parallel GPUs (each rank's
# token budget 8,192), at 6 and 10 requests per second. Prints KV-cache capacity, TTFT p50/p90, ITL
# p50/p99, throughput, mean running batch, mean power of the 8 GPUs together and J per output token.
# Usage: scripts/data_parallel_compare.sh   (from anywhere; builds the release binary first)
#        SIMWATT=path/to/simwatt scripts/data_parallel_compare.sh   uses another build
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out

echo "| req/s | layout | KV cache, tokens | TTFT p50 / p90 s | ITL p50 / p99 ms | output tokens/s | mean batch | power W (8 GPUs) | J per output token |"
echo "|---|---|---|---|---|---|---|---|---|"
for rate in 6 10; do
  for layout in "1 8" "2 4" "4 2" "8 1"; do
    read -r dp tp <<< "$layout"
    "$bin" simulate -c experiments/data-parallel-deepseek.yaml \
      --set hardware.data_parallel="$dp" --set hardware.tensor_parallel="$tp" \
      --set scheduler.max_num_batched_tokens=$((8192 * dp)) --set workload.arrival.rate="$rate" \
      -o "$out/run" --force -q --no-plots --no-trace
    python3 - "$out/run/summary.json" "$rate" "$dp" "$tp" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); rate, dp, tp = sys.argv[2:5]
layout = f"TP {tp}" if dp == "1" else f"DP {dp} x TP {tp}"
print(f"| {rate} | {layout} | {s['kv_blocks_per_replica'] * s['kv_block_size_tokens']:,} | "
      f"{s['ttft_p50_s']:.3f} / {s['ttft_p90_s']:.3f} | {1e3 * s['itl_p50_s']:.1f} / {1e3 * s['itl_p99_s']:.1f} | "
      f"{s['output_tokens_per_s']:,.0f} | {s['mean_batch_requests']:.1f} | {s['avg_power_w']:,.0f} | "
      f"{s['j_per_output_token']:.3f} |")
PY
  done
done
