#!/usr/bin/env bash
# The partial-offload sweep of docs/edge.md ("Partial GPU offload (-ngl)"): experiments/llama-cpp-offload-3060.yaml
# (LLaMA 7B in Q8_0, one stream, an RTX 3060 and an i9-13900K host with 8 threads) at hardware.gpu_layers
# from 0 (every layer on the CPU) to 33 (every layer and the output layer on the GPU).
#
# tg128 is simulated as a one-token prompt and 128 generated tokens (1 / mean time per output token);
# pp512 as a 512-token prompt and one generated token (512 / time to first token), as
# scripts/cpu_threads.sh does. Nothing is fitted here: no published -ngl sweep on the catalog's devices
# was found (docs/edge.md says which sweeps exist and why they do not serve).
# One request, arriving at time 0, is run per point (the example's four are identical and never
# overlap, so its latencies are those of the four): the run's span is then that request's stages.
# Energy per token: the GPU's busy energy (its power profile over every stage), the host CPU's
# (host_cpu_energy_j: its loaded idle over the span and its power above it while it runs its layers,
# by its power profile) and the two together. Both profiles (rtx3060, i9-13900k) are published-figure
# assumptions, not fits, so the energies are rough.
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
    --set "hardware.gpu_layers=$n" --set workload.requests=1 \
    --set "workload.arrival={type: all_at_once}" "$@" 2>/dev/null
  python3 -c "import json, sys
s = json.load(open(sys.argv[1] + '/summary.json'))
p = json.load(open(sys.argv[1] + '/provenance.json'))
print($PICK)" "$d"
}

echo "| gpu_layers | GPU weights GB | KV cache tokens | tg128 tok/s | tg128 GPU busy J/token | tg128 host CPU J/token | tg128 GPU+CPU J/token | pp512 tok/s | pp512 GPU busy J/token | pp512 host CPU J/token | pp512 GPU+CPU J/token |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in 0 4 8 12 16 20 24 28 30 31 32 33; do
  read -r gb tokens tg tgj tgc < <(PICK='p["memory"]["weight_bytes_per_gpu"] / 1e9, s["kv_blocks_per_replica"] * s["kv_block_size_tokens"], 1 / s["tpot_mean_s"], s["busy_energy_j"] / s["output_tokens"], s["host_cpu_energy_j"] / s["output_tokens"]' run "$n" | tr -d '(),')
  read -r pp ppj ppc < <(PICK='512 / s["ttft_mean_s"], s["busy_energy_j"] / s["prompt_tokens"], s["host_cpu_energy_j"] / s["prompt_tokens"]' run "$n" \
    --set "workload.lengths={type: fixed, prompt: 512, output: 1}" | tr -d '(),')
  python3 -c 'import sys
n, gb, tokens, tg, tgj, tgc, pp, ppj, ppc = sys.argv[1:]
tgj, tgc, ppj, ppc = map(float, (tgj, tgc, ppj, ppc))
print(f"| {n} | {float(gb):.2f} | {int(float(tokens))} | {float(tg):.2f} | {tgj:.3f} | {tgc:.3f} | {tgj + tgc:.3f} | {float(pp):.1f} | {ppj:.4f} | {ppc:.4f} | {ppj + ppc:.4f} |")' \
    "$n" "$gb" "$tokens" "$tg" "$tgj" "$tgc" "$pp" "$ppj" "$ppc"
done
