#!/usr/bin/env bash
# The edge/cloud split study of docs/edge.md: experiments/jetson-battery.yaml (TinyLlama on a Jetson AGX
# Orin from a 99 Wh pack, 600 requests at 0.5 req/s) generating the first w* tokens of each request on
# the device and the rest on experiments/split-server.yaml (the same model on one A100), over the
# default network (Wi-Fi uplink 10 MB/s, 20 ms round trip, 0.1 J/MB on the device's radio, 4 bytes per
# token of text), then over a slow cellular link. Prints the two tables and writes the Wi-Fi figure to
# docs/img/edge_split.png.
# Usage: scripts/edge_split.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
table() {
python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("| w* | server requests | device kJ | radio J | server kJ | total kJ | J/token | e2e mean s | e2e p90 s | TTFT mean ms | battery drain % | battery runtime h | lowest |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
f = lambda r, k: float(r[k]) if r[k] else None
for r in rows:
    rt = f(r, "battery_runtime_h")
    print(f"| {r['w_tokens']} | {r['server_requests']} | {f(r, 'device_energy_j') / 1e3:.1f} | "
          f"{f(r, 'radio_energy_j'):.3f} | {f(r, 'server_energy_j') / 1e3:.1f} | {f(r, 'total_energy_j') / 1e3:.1f} | "
          f"{f(r, 'j_per_output_token'):.3f} | {f(r, 'e2e_mean_s'):.2f} | {f(r, 'e2e_p90_s'):.2f} | "
          f"{f(r, 'ttft_mean_s') * 1e3:.1f} | {f(r, 'battery_drain_fraction') * 100:.2f} | "
          f"{'-' if rt is None else f'{rt:.2f}'} | {r['optimum'].replace('+', ', ')} |")
PY
}
split() {
  "$bin" split --device experiments/jetson-battery.yaml --server experiments/split-server.yaml \
    --tokens 0,16,32,64,128,256 --out "$out/$1" -q "${@:2}"
}
echo "Wi-Fi (the defaults: 10 MB/s, 20 ms, 0.1 J/MB):"
split wifi
cp "$out/wifi/split.png" docs/img/edge_split.png
table "$out/wifi/split.csv"
echo
echo "A slow cellular link (1 MB/s, 80 ms, 5 J/MB):"
split cell --bandwidth-mb-s 1 --rtt-ms 80 --radio-j-per-mb 5
table "$out/cell/split.csv"
