#!/usr/bin/env bash
# Prefix caching on and off on the quick start with shared system prompts (4 prefixes of 1,024 tokens),
# for the two policies that model it: hit rate, prompt tokens prefilled, prefill energy, TTFT and J per
# output token, as docs/prefix-caching.md shows them.
# Usage: scripts/prefix_caching.sh   (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/simwatt
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| policy | prefix caching | hit rate | cached tokens | prefill energy (J) | TTFT p50 (s) | TTFT p90 (s) | J per output token |"
echo "|---|---|---|---|---|---|---|---|"
for policy in vllm sarathi; do
  for pc in false true; do
    "$bin" simulate -c experiments/quickstart.yaml -q --no-plots --no-trace -o "$out/$policy-$pc" \
      --set scheduler.policy=$policy --set scheduler.enable_prefix_caching=$pc \
      --set workload.shared_prefix.tokens=1024 --set workload.shared_prefix.groups=4
    python3 - "$out/$policy-$pc/summary.json" "$policy" "$pc" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {'on' if sys.argv[3] == 'true' else 'off'} | {s['prefix_hit_rate']:.3f} | "
      f"{s['prefix_cached_tokens']:,} | {s['prefill_energy_j']:,.0f} | {s['ttft_p50_s']:.4f} | "
      f"{s['ttft_p90_s']:.4f} | {s['j_per_output_token']:.4f} |")
PY
  done
done

echo
echo "Multi-turn sessions: 128 sessions of 2-6 turns, think time 5 s (exponential), new prompt tokens U[64, 256],"
echo "outputs U[32, 128], on the quick start's vllm:"
echo
echo "| prefix caching | turns | hit rate | cached tokens | prefill energy (J) | TTFT p50 (s) | TTFT p90 (s) | J per output token |"
echo "|---|---|---|---|---|---|---|---|"
for pc in false true; do
  "$bin" simulate -c experiments/quickstart.yaml -q --no-plots --no-trace -o "$out/sessions-$pc" \
    --set workload.requests=128 --set 'workload.sessions={turns: [2, 6], think_s: 5.0}' \
    --set 'workload.lengths={type: uniform, prompt: [64, 256], output: [32, 128]}' \
    --set scheduler.enable_prefix_caching=$pc
  python3 - "$out/sessions-$pc/summary.json" "$pc" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"| {'on' if sys.argv[2] == 'true' else 'off'} | {s['requests_completed']} | {s['prefix_hit_rate']:.3f} | "
      f"{s['prefix_cached_tokens']:,} | {s['prefill_energy_j']:,.0f} | {s['ttft_p50_s']:.4f} | "
      f"{s['ttft_p90_s']:.4f} | {s['j_per_output_token']:.4f} |")
PY
done
