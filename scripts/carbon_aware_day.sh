#!/usr/bin/env bash
# The carbon-aware holding study of docs/microgrid.md: experiments/carbon-aware-day.yaml (two A100s,
# 2 req/s for 24 hours in AWS us-west-1 with CAISO's hourly intensity, energy over the same 36 hours)
# with and without holding for several deferrable shares (one table row each), then
# experiments/carbon-aware-sweep.yaml (share x deadline) plotted to docs/img/carbon_aware_carbon.png
# and docs/img/carbon_aware_hold.png.
# Usage: scripts/carbon_aware_day.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
echo "| deferrable share | holding | held requests | mean hold h | deadline attainment | GPU energy kWh | busy kWh | carbon gCO2e | change | e2e p50 s (from release) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for share in 0.25 0.5 0.75 1.0; do
  for hold in off on; do
    extra=(--set "workload.deferrable.fraction=$share")
    if [ "$hold" = off ]; then extra+=(--set carbon_aware=null); fi
    "$bin" simulate -c experiments/carbon-aware-day.yaml -o "$out/$share-$hold" --force -q --no-plots --no-trace "${extra[@]}" 2>/dev/null
  done
  python3 - "$out/$share-off/summary.json" "$out/$share-on/summary.json" "$share" <<'PY'
import json, sys
off, on = (json.load(open(p)) for p in sys.argv[1:3])
for s, name in ((off, "off"), (on, "on")):
    change = "" if s is off else f"{(s['carbon_g'] / off['carbon_g'] - 1) * 100:+.1f}%"
    print(f"| {sys.argv[3]} | {name} | {s['held_requests']} | {s['hold_mean_s'] / 3600:.2f} | {s['deadline_attainment']:.3f} | "
          f"{s['energy_j'] / 3.6e6:.2f} | {s['busy_energy_j'] / 3.6e6:.2f} | {s['carbon_g']:.0f} | {change} | {s['e2e_p50_s']:.2f} |")
PY
done
"$bin" sweep run --config experiments/carbon-aware-sweep.yaml --out "$out/sweep" --quiet
echo
echo "| deferrable share | deadline h | GPU energy kWh | carbon gCO2e | change | mean hold h | deadline attainment |"
echo "|---|---|---|---|---|---|---|"
python3 - "$out/sweep/results.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
key = lambda r: (float(r["workload.deferrable.fraction"]), float(r["workload.deferrable.deadline_s"]))
base = {d: float(r["carbon_g"]) for r in rows for f, d in [key(r)] if f == 0}
for r in sorted(rows, key=key):
    f, d = key(r)
    c = float(r["carbon_g"])
    hold = "-" if not r["hold_mean_s"] else f"{float(r['hold_mean_s']) / 3600:.2f}"
    met = "-" if not r["deadline_attainment"] else f"{float(r['deadline_attainment']):.3f}"
    print(f"| {f:g} | {d / 3600:g} | {float(r['energy_j']) / 3.6e6:.2f} | {c:.0f} | {(c / base[d] - 1) * 100:+.1f}% | {hold} | {met} |")
PY
"$bin" plot "$out/sweep" --x workload.deferrable.deadline_s --y carbon_g --by workload.deferrable.fraction >/dev/null
"$bin" plot "$out/sweep" --x workload.deferrable.deadline_s --y hold_mean_s --by workload.deferrable.fraction >/dev/null
cp "$out/sweep/sweep_carbon_g_vs_workload_deferrable_deadline_s_by_workload_deferrable_fraction.png" docs/img/carbon_aware_carbon.png
cp "$out/sweep/sweep_hold_mean_s_vs_workload_deferrable_deadline_s_by_workload_deferrable_fraction.png" docs/img/carbon_aware_hold.png
