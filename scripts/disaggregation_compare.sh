#!/usr/bin/env bash
# Colocated against disaggregated serving at equal GPU count: 8 A100s serving Llama-2-7B under vLLM's
# policy, 4,000 requests of experiments/bench-10k.yaml's lengths at 20 req/s, least-outstanding routing,
# KV caches over InfiniBand NDR; hardware.prefill_replicas 0 (colocated) to 4. Prints TTFT and TPOT
# (p50/p90), J per output token and the mean KV-transfer delay of each split.
# Usage: scripts/disaggregation_compare.sh   (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| prefill replicas | decode replicas | TTFT p50 / p90 s | TPOT p50 / p90 s | J per output token | KV transfer delay mean s |"
echo "|---|---|---|---|---|---|"
for p in 0 1 2 3 4; do
  target/release/simwatt simulate -c experiments/bench-10k.yaml --set hardware.replicas=8 \
    --set workload.arrival.rate=20 --set workload.requests=4000 --set router=least_outstanding \
    --set hardware.prefill_replicas=$p --set hardware.kv_link=infiniband_ndr \
    -o "$out/run" --force -q --no-plots --no-trace
  python3 - "$out/run/summary.json" "$p" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); p = int(sys.argv[2])
d = s["kv_transfer_delay_mean_s"]
print(f"| {p if p else '0 (colocated)'} | {8 - p if p else '-'} | {s['ttft_p50_s']:.3f} / {s['ttft_p90_s']:.3f} | "
      f"{s['tpot_p50_s']:.4f} / {s['tpot_p90_s']:.4f} | {s['j_per_output_token']:.3f} | {'-' if d is None else f'{d:.4f}'} |")
PY
done
