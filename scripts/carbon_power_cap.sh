#!/usr/bin/env bash
# The power limit that follows the grid (docs/microgrid.md): experiments/carbon-aware-day.yaml without
# holding (two A100s, 2 req/s around the clock from midnight UTC on 2024-06-15 in AWS us-west-1 with
# CAISO's hourly intensity, energy over 36 hours), with no limit and with carbon_power_cap at two
# settings, one table row each.
# Usage: scripts/carbon_power_cap.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
echo "| power limit | GPU energy kWh | busy kWh | carbon gCO2e | change | TTFT p90 s | TPOT mean ms | e2e mean s |"
echo "|---|---|---|---|---|---|---|---|"
i=0
for cap in none "{clean_w: 400, dirty_w: 250, clean_g_per_kwh: 100, dirty_g_per_kwh: 200}" "{clean_w: 400, dirty_w: 150, clean_g_per_kwh: 100, dirty_g_per_kwh: 200}"; do
  extra=(--set workload.deferrable=null --set carbon_aware=null)
  if [ "$cap" != none ]; then extra+=(--set "carbon_power_cap=$cap"); fi
  "$bin" simulate -c experiments/carbon-aware-day.yaml -o "$out/$i" --force -q --no-plots --no-trace "${extra[@]}" 2>/dev/null
  python3 - "$out/0/summary.json" "$out/$i/summary.json" "$cap" <<'PY'
import json, sys
base, s = (json.load(open(p)) for p in sys.argv[1:3])
change = "" if sys.argv[3] == "none" else f"{(s['carbon_g'] / base['carbon_g'] - 1) * 100:+.1f}%"
label = "none (the A100's 400 W)" if sys.argv[3] == "none" else "`" + sys.argv[3] + "`"
print(f"| {label} | {s['energy_j'] / 3.6e6:.2f} | {s['busy_energy_j'] / 3.6e6:.2f} | {s['carbon_g']:.0f} | {change} | "
      f"{s['ttft_p90_s']:.3f} | {s['tpot_mean_s'] * 1e3:.2f} | {s['e2e_mean_s']:.2f} |")
PY
  i=$((i + 1))
done
