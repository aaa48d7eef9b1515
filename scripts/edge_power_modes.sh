#!/usr/bin/env bash
# The power-mode comparison of docs/edge.md: experiments/jetson-nano-modes.yaml (one user on a Jetson
# Orin Nano 8GB in its Super configuration) in the power modes the published measurements used, next
# to those measurements. Nothing is fitted to them: each mode's speed comes from the device catalog's
# peaks and the mode's clock caps (profiles/devices.yaml, jetson-orin-nano-super.power_modes).
#
# Published figures (decode tokens/s, one user):
#  - NVIDIA, "NVIDIA Jetson Orin Nano Developer Kit Gets a Super Boost" (technical blog, Dec 2024), MLC
#    with INT4 weights, before the Super modes (the original 15 W configuration: GPU 625 MHz, EMC
#    2133 MHz, which the catalog's 15W mode matches but for a 612 MHz GPU cap) and in the Super
#    configuration's top mode (MAXN_SUPER), as transcribed in github.com/msmcs-robotics/WayfindR-driver
#    docs/jetson_orin_nano_llm_benchmarks.md (the blog itself was not readable here).
#  - smolhub.com, "Tiny LLM Benchmark: Jetson Orin Nano Super 8GB" (llama.cpp CUDA, -ngl 99, prompt
#    2048 and 256 generated for its headline): 25W gives 36-47% more output tokens/s than 15W over its
#    eight models (1.36-1.47x). Its per-model tables were not readable here, so the ratio range is
#    compared, with TinyLlama-1.1B in Q4_0 standing for its ~1B models.
# Usage: scripts/edge_power_modes.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
cfg=experiments/jetson-nano-modes.yaml

# Decode tokens/s (1 / mean time per output token) of $cfg in mode $1 with overrides ${@:2}.
tps() {
  local mode=$1
  shift
  local d="$out/run"
  "$bin" simulate -c "$cfg" -o "$d" --force -q --no-plots --no-trace --set "hardware.power_mode=$mode" "$@" 2>/dev/null
  python3 -c 'import json, sys; print(1 / json.load(open(sys.argv[1]))["tpot_mean_s"])' "$d/summary.json"
}

echo "NVIDIA's MLC INT4 figures, before the Super modes (15W) and in MAXN_SUPER:"
echo
echo "| model | mode | published tok/s | simwatt tok/s | error |"
echo "|---|---|---|---|---|"
# model id in the catalog | name in the blog | published 15W | published MAXN_SUPER
while IFS='|' read -r model name p15 pmax; do
  for pair in "15W:$p15" "MAXN_SUPER:$pmax"; do
    mode=${pair%%:*}
    pub=${pair#*:}
    sim=$(tps "$mode" --set "model=$model")
    python3 -c 'import sys; n, m, p, s = sys.argv[1:]; p, s = float(p), float(s)
print(f"| {n} | {m} | {p:.1f} | {s:.1f} | {(s - p) / p * 100:+.0f}% |")' "$name" "$mode" "$pub" "$sim"
  done
done <<'ROWS'
meta-llama/Llama-3.2-3B|Llama 3.2 3B|27.7|43.07
microsoft/Phi-3.5-mini-instruct|Phi 3.5 3B|24.7|38.1
meta-llama/Llama-3.1-8B|Llama 3.1 8B|14.0|19.14
ROWS

echo
echo "Speed-up of one mode over another (published against simwatt):"
echo
echo "| study | model | modes | published | simwatt |"
echo "|---|---|---|---|---|"
while IFS='|' read -r model name a b pub; do
  ta=$(tps "$a" --set "model=$model")
  tb=$(tps "$b" --set "model=$model")
  python3 -c 'import sys; n, a, b, p, ta, tb = sys.argv[1:]
print(f"| NVIDIA (MLC, INT4) | {n} | {b} over {a} | {p} | {float(tb) / float(ta):.2f}x |")' "$name" "$a" "$b" "$pub" "$ta" "$tb"
done <<'ROWS'
meta-llama/Llama-3.2-3B|Llama 3.2 3B|15W|MAXN_SUPER|1.55x
microsoft/Phi-3.5-mini-instruct|Phi 3.5 3B|15W|MAXN_SUPER|1.54x
meta-llama/Llama-3.1-8B|Llama 3.1 8B|15W|MAXN_SUPER|1.37x
ROWS
tiny=(--set "model=TinyLlama/TinyLlama-1.1B-Chat-v1.0" --set precision.weights=q4_0
      --set "workload.lengths={type: fixed, prompt: 1792, output: 256}")
t15=$(tps 15W "${tiny[@]}")
t25=$(tps 25W "${tiny[@]}")
python3 -c 'import sys; a, b = map(float, sys.argv[1:])
print(f"| smolhub.com (llama.cpp) | eight 0.1-1.2B models; simwatt: TinyLlama-1.1B Q4_0 | 25W over 15W | 1.36-1.47x | {b / a:.2f}x |")' "$t15" "$t25"

echo
echo "Every mode (Llama 3.2 3B, INT4; the 40 requests queued at once and served one at a time, so the"
echo "device is always busy and its mean power is its busy power):"
echo
echo "| mode | budget W | GPU MHz | EMC MHz | decode tok/s | mean power W | J per output token |"
echo "|---|---|---|---|---|---|---|"
for mode in 7W 15W 25W MAXN_SUPER; do
  d="$out/run"
  "$bin" simulate -c "$cfg" -o "$d" --force -q --no-plots --no-trace --set "hardware.power_mode=$mode" \
    --set workload.arrival.rate=1000 2>/dev/null
  python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
s = json.load(open(f"{d}/summary.json"))
p = json.load(open(f"{d}/provenance.json"))["limits"]["power_mode"]
budget = "-" if p["power_budget_w"] is None else f"{p['power_budget_w']:.0f}"
print(f"| {p['name']} | {budget} | {p['gpu_max_mhz']:.0f} | {p['emc_max_mhz']:.0f} | "
      f"{1 / s['tpot_mean_s']:.1f} | {s['avg_power_w']:.1f} | {s['j_per_output_token']:.3f} |")
PY
done
