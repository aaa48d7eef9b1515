#!/usr/bin/env bash
# Mixed hardware against one device at equal GPU count (docs/disaggregation.md), as Splitwise compares
# them: Llama-2-7B under vLLM's policy on 8 GPUs, least-outstanding routing, KV caches over InfiniBand
# NDR, the workload and SLO of experiments/disaggregation.yaml (TTFT <= 0.5 s, TPOT <= 50 ms):
#   8 A100s colocated; 2 + 6 and 3 + 5 A100s split; 2 H100s prefilling for 6 A100s
#   (experiments/disaggregation-mixed.yaml); one H100 replica of tensor parallel 2 prefilling for 6 A100s.
# At 20 and 24 req/s (4,000 requests each): TTFT and TPOT (p50/p90), SLO attainment, J per output
# token, mean power of each pool, and cost (energy and GPU rental, each device at its catalog price)
# per million output tokens in region aws-us-east-1.
# Usage: scripts/disaggregation_mixed.sh   (from anywhere; builds the release binary first)
#        SIMWATT=path/to/simwatt scripts/disaggregation_mixed.sh   uses another build
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out

# row RATE LABEL CONFIG SETS...: one table row.
row() {
  local rate=$1 label=$2 config=$3; shift 3
  "$bin" simulate -c "$config" --set workload.arrival.rate="$rate" --set region=aws-us-east-1 "$@" \
    -o "$out/run" --force -q --no-plots --no-trace
  python3 - "$out/run/summary.json" "$label" "$rate" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); label = sys.argv[2]
w = lambda k: "-" if s.get(k) is None else f"{s[k]:.0f}"
print(f"| {sys.argv[3]} | {label} | {s['ttft_p50_s']:.3f} / {s['ttft_p90_s']:.3f} | "
      f"{s['tpot_p50_s']:.4f} / {s['tpot_p90_s']:.4f} | {s['slo_attainment']:.3f} | "
      f"{s['j_per_output_token']:.3f} | {w('prefill_pool_avg_power_w')} / {w('decode_pool_avg_power_w')} | "
      f"{s['cost_usd'] / s['output_tokens'] * 1e6:.2f} |")
PY
}

echo "| req/s | deployment (8 GPUs) | TTFT p50 / p90 s | TPOT p50 / p90 s | SLO attainment | J per output token | prefill / decode pool W | USD per 1M output tokens |"
echo "|---|---|---|---|---|---|---|---|"
for rate in 20 24; do
  row $rate "8 A100 colocated" experiments/disaggregation.yaml --set hardware.prefill_replicas=0
  row $rate "2 A100 prefill + 6 A100 decode" experiments/disaggregation.yaml --set hardware.prefill_replicas=2
  row $rate "3 A100 prefill + 5 A100 decode" experiments/disaggregation.yaml --set hardware.prefill_replicas=3
  row $rate "2 H100 prefill + 6 A100 decode" experiments/disaggregation-mixed.yaml
  row $rate "1 H100 TP 2 prefill + 6 A100 decode" experiments/disaggregation-mixed.yaml \
    --set hardware.replicas=7 --set hardware.prefill_replicas=1 --set hardware.prefill_pool.tensor_parallel=2
done
