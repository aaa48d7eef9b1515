#!/usr/bin/env bash
# The battery and heat study of docs/edge.md: experiments/jetson-battery.yaml (TinyLlama on a Jetson
# AGX Orin from a 99 Wh pack, 0.5 req/s) with a fan (0.4 degC/W), in its closed box (1.2 degC/W) and in
# a sealed one (2.5 degC/W), and the same 600 requests all at once (a backlog), one table row each.
# Usage: scripts/edge_battery.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
echo "| load | cooling degC/W | output tok/s | tpot mean ms | mean power W | J/token | token EDP J s | battery runtime h | drain % | peak degC | throttled s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for load in "0.5 req/s" backlog; do
  for r in 0.4 1.2 2.5; do
      extra=(--set "edge.thermal.r_th_c_per_w=$r")
      if [ "$load" = backlog ]; then extra+=(--set workload.arrival.rate=1000); fi
      d="$out/run"
      "$bin" simulate -c experiments/jetson-battery.yaml -o "$d" --force -q --no-plots --no-trace "${extra[@]}" 2>/dev/null
      python3 - "$d/summary.json" "$load" "$r" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
w = (s["energy_j"] + s["host_energy_j"]) / (s["energy_j"] / s["avg_power_w"])
print(f"| {sys.argv[2]} | {sys.argv[3]} | {s['output_tokens_per_s']:.1f} | {s['tpot_mean_s'] * 1e3:.2f} | "
      f"{w:.1f} | {s['j_per_output_token']:.4f} | {s['token_edp_j_s']:.5f} | {s['battery_runtime_h']:.2f} | "
      f"{s['battery_drain_fraction'] * 100:.1f} | {s['max_temperature_c']:.1f} | {s['throttled_s']:.1f} |")
PY
  done
done
