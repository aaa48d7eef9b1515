#!/usr/bin/env bash
# Colocated against disaggregated serving at equal GPU count (docs/disaggregation.md): 8 A100s serving
# Llama-2-7B under vLLM's policy, least-outstanding routing, KV caches over InfiniBand NDR
# (experiments/disaggregation.yaml); hardware.prefill_replicas 0 (colocated) to 4.
# 1. At 20 req/s (4,000 requests): TTFT and TPOT (p50/p90), SLO attainment, J per output token and the
#    mean KV-transfer delay of each split.
# 2. SLO attainment against the request rate (experiments/disaggregation-sweep.yaml), drawn to
#    docs/img/disaggregation_slo_attainment.png.
# 3. Goodput, the highest rate at which 90% of requests meet the SLO, per split, under the config's SLO
#    (TTFT 0.5 s, TPOT 50 ms) and under a tight-decode one (TTFT 1 s, TPOT 25 ms), with J per output
#    token at that rate (experiments/disaggregation-split.yaml); the second's Pareto plot is copied to
#    docs/img/disaggregation_goodput_pareto.png.
# Usage: scripts/disaggregation_compare.sh   (from anywhere; builds the release binary first)
#        SIMWATT=path/to/simwatt scripts/disaggregation_compare.sh   uses another build
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out

echo "## 20 req/s, SLO: TTFT <= 0.5 s, TPOT <= 50 ms"
echo
echo "| prefill replicas | decode replicas | TTFT p50 / p90 s | TPOT p50 / p90 s | SLO attainment | J per output token | KV transfer delay mean s |"
echo "|---|---|---|---|---|---|---|"
for p in 0 1 2 3 4; do
  "$bin" simulate -c experiments/disaggregation.yaml --set hardware.prefill_replicas=$p \
    -o "$out/run" --force -q --no-plots --no-trace
  python3 - "$out/run/summary.json" "$p" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); p = int(sys.argv[2])
d = s["kv_transfer_delay_mean_s"]
print(f"| {p if p else '0 (colocated)'} | {8 - p if p else '-'} | {s['ttft_p50_s']:.3f} / {s['ttft_p90_s']:.3f} | "
      f"{s['tpot_p50_s']:.4f} / {s['tpot_p90_s']:.4f} | {s['slo_attainment']:.3f} | {s['j_per_output_token']:.3f} | "
      f"{'-' if d is None else f'{d:.4f}'} |")
PY
done

"$bin" sweep run --config experiments/disaggregation-sweep.yaml --out "$out/sweep" --quiet
"$bin" plot "$out/sweep" --x workload.arrival.rate --y slo_attainment --by hardware.prefill_replicas >/dev/null
cp "$out/sweep/sweep_slo_attainment_vs_workload_arrival_rate_by_hardware_prefill_replicas.png" \
  docs/img/disaggregation_slo_attainment.png

# goodput NAME SETS...: the capacity search under slo_attainment >= 0.9; one table row per split.
goodput() {
  local name=$1; shift
  rm -rf "$out/cap"
  "$bin" search capacity --config experiments/disaggregation-split.yaml --slo 'slo_attainment>=0.9' \
    "$@" --out "$out/cap" -q >/dev/null
  python3 - "$out/cap/capacity.csv" "$name" <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    p = int(r["hardware.prefill_replicas"])
    print(f"| {sys.argv[2]} | {p if p else '0 (colocated)'} | {float(r['capacity_rps']):.2f} | "
          f"{float(r['first_fail_rps']):.2f} | {float(r['slo_attainment_at_capacity']):.3f} | "
          f"{float(r['j_per_output_token']):.3f} |")
PY
}
echo
echo "## Goodput: the highest rate with SLO attainment >= 0.9"
echo
echo "| SLO | prefill replicas | goodput req/s | first failing req/s | attainment at goodput | J per output token at goodput |"
echo "|---|---|---|---|---|---|"
goodput "TTFT 0.5 s, TPOT 50 ms"
goodput "TTFT 1 s, TPOT 25 ms" --set slo.ttft_s=1 --set slo.tpot_s=0.025
cp "$out/cap/capacity_pareto.png" docs/img/disaggregation_goodput_pareto.png
