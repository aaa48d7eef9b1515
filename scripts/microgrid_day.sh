#!/usr/bin/env bash
# The day of docs/microgrid.md: experiments/microgrid-day.yaml (two A100s, 24 hours, AWS us-west-1
# with CAISO's hourly intensity, 1.2 kW of San Francisco solar, a 3 kWh battery) with and without the
# solar and battery, a carbon-threshold dispatch beside them; prints one table row each and copies the
# microgrid figure to docs/img/microgrid_day.png. Then the same day in Sydney (AWS ap-southeast-2,
# AEMO's hourly NSW wholesale price), self-consumption against a price-threshold dispatch.
# Usage: scripts/microgrid_day.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
echo "| supply | facility kWh | solar kWh (used) | battery to load kWh | grid import kWh | export kWh | carbon gCO2e | all-grid carbon gCO2e | cost USD |"
echo "|---|---|---|---|---|---|---|---|---|"
row() {
  local name=$1; shift
  "$bin" simulate -c experiments/microgrid-day.yaml -o "$out/$name" --force -q --no-trace "$@" 2>/dev/null
  python3 - "$out/$name/summary.json" "$name" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
f = lambda k, d=2: "-" if s.get(k) is None else f"{s[k]:.{d}f}"
solar = "-" if s.get("solar_energy_kwh") is None else f"{s['solar_energy_kwh']:.2f} ({s['solar_used_kwh']:.2f})"
print(f"| {sys.argv[2]} | {f('energy_kwh_facility')} | {solar} | {f('battery_discharge_kwh')} | {f('grid_import_kwh')} | "
      f"{f('grid_export_kwh')} | {f('carbon_g', 0)} | {f('carbon_without_microgrid_g', 0)} | {f('cost_usd')} |")
PY
}
row "grid only" --set microgrid=null
row "solar only" --set microgrid.battery=null
row "solar + battery, self-consumption"
row "solar + battery, carbon threshold 100 g/kWh" --set microgrid.dispatch=carbon_threshold --set microgrid.carbon_threshold_g_per_kwh=100
cp "$out/solar + battery, self-consumption/microgrid.png" docs/img/microgrid_day.png
echo
echo "| Sydney | solar kWh (used) | battery to load kWh | grid import kWh | export kWh | carbon gCO2e | grid electricity USD | array + battery embodied gCO2e |"
echo "|---|---|---|---|---|---|---|---|"
sydney() {
  local name=$1; shift
  "$bin" simulate -c experiments/microgrid-day.yaml -o "$out/$name" --force -q --no-trace \
    --set region=aws-ap-southeast-2 --set microgrid.solar.site=Sydney "$@" 2>/dev/null
  python3 - "$out/$name/summary.json" "$name" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
f = lambda k, d=2: "-" if s.get(k) is None else f"{s[k]:.{d}f}"
solar = "-" if s.get("solar_energy_kwh") is None else f"{s['solar_energy_kwh']:.2f} ({s['solar_used_kwh']:.2f})"
energy = s["cost_usd"] - s["regions"][0]["rental_cost_usd"]
emb = "-" if s.get("solar_embodied_carbon_g") is None else \
    f"{s['solar_embodied_carbon_g'] + (s.get('battery_embodied_carbon_g') or 0):.1f}"
print(f"| {sys.argv[2]} | {solar} | {f('battery_discharge_kwh')} | {f('grid_import_kwh')} | "
      f"{f('grid_export_kwh')} | {f('carbon_g', 0)} | {energy:.3f} | {emb} |")
PY
}
sydney "grid only" --set microgrid=null
sydney "solar + battery, self-consumption"
sydney "solar + battery, price threshold 0.20 USD/kWh" --set microgrid.dispatch=price_threshold --set microgrid.price_threshold_usd_per_kwh=0.2

# Sacramento from NREL's TMY3 weather through the PV model (regions/solar/tmy3/724839TYA.CSV): the
# same day and battery in AWS us-west-1, the array at PVWatts' defaults (20 degrees, facing south).
tmy=(--set microgrid.solar.weather_file=regions/solar/tmy3/724839TYA.CSV --set microgrid.solar.site=null --set microgrid.solar.day=0)
echo
echo "| Sacramento TMY3 | solar kWh (used) | battery to load kWh | grid import kWh | export kWh | carbon gCO2e | all-grid carbon gCO2e |"
echo "|---|---|---|---|---|---|---|"
sacramento() {
  local name=$1; shift
  "$bin" simulate -c experiments/microgrid-day.yaml -o "$out/$name" --force -q --no-trace "${tmy[@]}" "$@" 2>/dev/null
  python3 - "$out/$name/summary.json" "$name" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
f = lambda k, d=2: "-" if s.get(k) is None else f"{s[k]:.{d}f}"
print(f"| {sys.argv[2]} | {s['solar_energy_kwh']:.2f} ({s['solar_used_kwh']:.2f}) | {f('battery_discharge_kwh')} | "
      f"{f('grid_import_kwh')} | {f('grid_export_kwh')} | {f('carbon_g', 0)} | {f('carbon_without_microgrid_g', 0)} |")
PY
}
sacramento "Sacramento, solar only" --set microgrid.battery=null
sacramento "Sacramento, solar + battery, self-consumption"
cp "$out/Sacramento, solar + battery, self-consumption/microgrid.png" docs/img/microgrid_sacramento.png
echo
echo "| array (1.2 kWp) | 15 June kWh | 15 December kWh |"
echo "|---|---|---|"
for a in "flat:{tilt_deg: 0}" "20 degrees south:{tilt_deg: 20}" "38.7 degrees south (latitude):{tilt_deg: 38.7}" \
         "vertical, south:{tilt_deg: 90}" "vertical, west:{tilt_deg: 90, azimuth_deg: 270}" \
         "38.7 degrees north:{tilt_deg: 38.7, azimuth_deg: 0}"; do
  name=${a%%:*}; arr=${a#*:}
  cells=""
  for day in 2024-06-15 2024-12-15; do
    "$bin" simulate -c experiments/microgrid-day.yaml -o "$out/tilt" --force -q --no-trace --no-plots "${tmy[@]}" \
      --set microgrid.battery=null --set "microgrid.solar.array=$arr" --set "energy.start_time=${day}T08:00:00Z" 2>/dev/null
    cells+=" $(python3 -c "import json; print(f\"{json.load(open('$out/tilt/summary.json'))['solar_energy_kwh']:.2f}\")") |"
  done
  echo "| $name |$cells"
done
