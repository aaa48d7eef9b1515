#!/usr/bin/env bash
# The power-cap and clock-limit sweeps of docs/power-model.md ("Power and clock limits"): runs
# experiments/power-cap-sweep.yaml, draws J per output token against mean end-to-end latency, one point
# per cap, copies the figure to docs/img/power_cap_sweep.png and prints each cap's numbers from the
# merged results.csv; then runs experiments/clock-limit-sweep.yaml and prints its numbers the same way.
# Usage: scripts/power_cap_sweep.sh   (from anywhere; builds the release binary first)
#        SIMWATT=path/to/simwatt scripts/power_cap_sweep.sh   uses another build
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
"$bin" sweep run --config experiments/power-cap-sweep.yaml --out "$out/sweep" --quiet
"$bin" plot "$out/sweep" --x e2e_mean_s --y j_per_output_token --by hardware.power_cap_w
cp "$out/sweep/sweep_j_per_output_token_vs_e2e_mean_s_by_hardware_power_cap_w.png" \
  docs/img/power_cap_sweep.png
"$bin" sweep run --config experiments/clock-limit-sweep.yaml --out "$out/clock" --quiet
# One row per limit: the columns the doc's tables show.
table() {
python3 - "$1" "$2" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cols = [sys.argv[2], "j_per_output_token", "avg_power_w", "e2e_mean_s", "tpot_mean_s",
        "ttft_p90_s", "output_tokens_per_s"]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for r in rows:
    print("| " + " | ".join(f"{float(r[c]):.4g}" for c in cols) + " |")
PY
}
table "$out/sweep/results.csv" hardware.power_cap_w
echo
table "$out/clock/results.csv" hardware.sm_clock_mhz
