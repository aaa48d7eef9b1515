#!/usr/bin/env bash
# The partial-offload sweep of docs/edge.md ("Partial GPU offload (-ngl)"): experiments/llama-cpp-offload-3060.yaml
# (LLaMA 7B in Q8_0, one stream, an RTX 3060 and an i9-13900K host with 8 threads) at hardware.gpu_layers
# from 0 (every layer on the CPU) to 33 (every layer and the output layer on the GPU).
#
# tg128 is simulated as a one-token prompt and 128 generated tokens (1 / mean time per output token);
# pp512 as a 512-token prompt and one generated token (512 / time to first token), as
# scripts/cpu_threads.sh does. Nothing is fitted here: no published -ngl sweep on the catalog's devices
# was found (docs/edge.md says which sweeps exist and why they do not serve).
# Energy is the GPU's busy energy (its power profile over every stage, idle gaps left out) and, at the
# rtx3060's published-figures profile, rough; the host CPU's energy is not in it.
# Usage: scripts/offload_ngl.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
cfg=experiments/llama-cpp-offload-3060.yaml

# Runs $cfg with $1 layers on the GPU and overrides ${@:2}; prints the fields picked by the Python
# expression in $PICK (s: the summary, p: the provenance).
run() {
  local n=$1
  shift
  local d="$out/run"
  "$bin" simulate -c "$cfg" -o "$d" --force -q --no-plots --no-trace \
    --set "hardware.gpu_layers=$n" "$@" 2>/dev/null
  python3 -c "import json, sys
s = json.load(open(sys.argv[1] + '/summary.json'))
p = json.load(open(sys.argv[1] + '/provenance.json'))
print($PICK)" "$d"
}

echo "| gpu_layers | GPU weights GB | KV cache tokens | tg128 tok/s | tg128 GPU busy J/token | pp512 tok/s | pp512 GPU busy J/token |"
echo "|---|---|---|---|---|---|---|"
for n in 0 4 8 12 16 20 24 28 30 31 32 33; do
  read -r gb tokens tg tgj < <(PICK='p["memory"]["weight_bytes_per_gpu"] / 1e9, s["kv_blocks_per_replica"] * s["kv_block_size_tokens"], 1 / s["tpot_mean_s"], s["busy_energy_j"] / s["output_tokens"]' run "$n" | tr -d '(),')
  read -r pp ppj < <(PICK='512 / s["ttft_mean_s"], s["busy_energy_j"] / s["prompt_tokens"]' run "$n" \
    --set "workload.lengths={type: fixed, prompt: 512, output: 1}" | tr -d '(),')
  python3 -c 'import sys
n, gb, tokens, tg, tgj, pp, ppj = sys.argv[1:]
print(f"| {n} | {float(gb):.2f} | {int(float(tokens))} | {float(tg):.2f} | {float(tgj):.3f} | {float(pp):.1f} | {float(ppj):.4f} |")' \
    "$n" "$gb" "$tokens" "$tg" "$tgj" "$pp" "$ppj"
done
