#!/usr/bin/env bash
# Can the measured data tell the engine's host time per sequence from GPU work at large batches?
# (docs/validation.md, "Power at large batches"). Two refits of vLLM 0.11's host terms, each checked
# on cases it was not fitted on, against the shipped profiles; nothing shipped is changed.
#
# 1. b200-host: the B200 nodes have other host CPUs than the H100 nodes the shipped engine profile was
#    fitted on. Refit iteration.host_ms, host_us_per_seq and overlap jointly with the B200 power
#    coefficients on the four dense B200 cases (the shipped B200 power fit holds the engine fixed);
#    replay every B200 case. Held out: the eight B200 mixture-of-experts cases.
# 2. h100-large-batch: the shipped engine fit sees no dense row above 256 sequences. Refit the shipped
#    fit's parameters (host terms, sampler passes, H100 power) on its dense H100 cases plus
#    gpt-oss-20b on H100 (rows up to 2,048 sequences); replay the H100 cases. Held out: the other H100
#    mixture-of-experts cases (the FP8 ones lose the fitted fp8_linear section: its template has none;
#    the template's fused_moe efficiency is set to the shipped fitted value, so the bf16 MoE cases keep
#    it).
#
# Prints, per case, mean |error| of four metrics as shipped -> refitted. About 5 minutes.
#   scripts/engine_host_study.sh [BIN]     (default: target/release/simwatt; run from the repository)
set -euo pipefail
BIN=${1:-target/release/simwatt}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
V=experiments/validation

# replay NAME ENGINE POWER GLOB...: the cases matching GLOB validated with engine profile ENGINE and
# power profile POWER, and as shipped; prints the comparison.
replay() {
  local name=$1 engine=$2 power=$3; shift 3
  mkdir -p "$tmp/$name/shipped" "$tmp/$name/refit"
  for f in "$@"; do
    cp "$f" "$tmp/$name/shipped/"
    sed -e 's|^  engine: { name: vllm, version: "0.11" }$|  engine: { name: vllm, version: "0.11", profile: '"$engine"' }\n  energy: { power_profile: '"$power"' }|' \
      "$f" > "$tmp/$name/refit/$(basename "$f")"
    grep -q "profile: $engine" "$tmp/$name/refit/$(basename "$f")" || { echo "$f: no engine line to replace" >&2; exit 1; }
  done
  "$BIN" validate --suite "$tmp/$name/shipped" --out "$tmp/$name/vs" --no-plots --quiet
  "$BIN" validate --suite "$tmp/$name/refit" --out "$tmp/$name/vr" --no-plots --quiet
  echo
  echo "#### $name: mean |error|, shipped -> refitted"
  echo
  python3 - "$tmp/$name/vs/validation.json" "$tmp/$name/vr/validation.json" <<'PY'
import json, sys
def table(path):
    out = {}
    for c in json.load(open(path))["cases"]:
        for p in c["points"]:
            for m, v in p["metrics"].items():
                if v.get("rel_error") is not None:
                    out.setdefault(c["name"], {}).setdefault(m, []).append(abs(v["rel_error"]))
    return out
s, r = table(sys.argv[1]), table(sys.argv[2])
show = ["itl_p50_s", "output_tokens_per_s", "mean_power_w", "j_per_output_token"]
print("| case | rows | " + " | ".join(f"`{m}`" for m in show) + " |")
print("|---|---|" + "---|" * len(show))
for case in sorted(r):
    cells = []
    for m in show:
        a, b = s.get(case, {}).get(m), r[case].get(m)
        cells.append(f"{100*sum(a)/len(a):.1f}% -> {100*sum(b)/len(b):.1f}%" if a and b else "-")
    rows = len(next(iter(r[case].values())))
    print(f"| {case} | {rows} | " + " | ".join(cells) + " |")
PY
}

# param_table REPORT: the fitted values from a fit report.
param_table() { sed -n '/^| parameter | value |/,/^$/p' "$1"; }
# shipped KEY...: the shipped vllm-0.11 profile's values of KEY (iteration and sampler fields).
shipped() {
  local out=() k
  for k in "$@"; do out+=("$k $(sed -n "s/^  $k: \(.*\)$/\1/p" profiles/engine/vllm-0.11.yaml | head -1)"); done
  local joined
  joined=$(printf '%s, ' "${out[@]}")
  echo "(shipped: ${joined%, })"
}

echo "## 1. b200-host"
b200_dense=("$V"/v3-b200-*.yaml)
cases=(); for f in "${b200_dense[@]}"; do cases+=(--cases "$f"); done
"$BIN" fit engine --template profiles/engine/vllm-0.11.yaml \
  --power-profile profiles/power/templates/b200.yaml --power-out "$tmp/b200.yaml" "${cases[@]}" \
  --param iteration.host_ms --param iteration.host_us_per_seq --param iteration.overlap \
  --param power.p0_w --param power.k_compute_w --param power.k_memory_w \
  --out "$tmp/engine-b200.yaml" --report "$tmp/fit-b200.md" --quiet >/dev/null
echo
param_table "$tmp/fit-b200.md"
echo "$(shipped host_ms host_us_per_seq overlap) and profiles/power/b200.yaml"
echo
echo "The fit's own report over the four dense models (before: the shipped engine with the unfitted"
echo "template power profile; held out: each model predicted by a fit on the other three):"
echo
sed -n '/^| metric | before | held out | in sample |/,/^$/p' "$tmp/fit-b200.md"
replay b200-host "$tmp/engine-b200.yaml" "$tmp/b200.yaml" "$V"/*b200*.yaml

echo
echo "## 2. h100-large-batch"
cases=()
for f in "$V"/mlenergy-v3-h100-*.yaml "$V"/heldout-v3-h100-gpt-oss-20b.yaml; do cases+=(--cases "$f"); done
eff=$(sed -n 's/^  default_config_efficiency: \(.*\)$/\1/p' profiles/engine/vllm-0.11.yaml)
[ -n "$eff" ] || { echo "no fused_moe.default_config_efficiency in the shipped profile" >&2; exit 1; }
sed "s/^  default_config_efficiency: .*$/  default_config_efficiency: $eff/" \
  profiles/engine/templates/vllm-0.11.yaml > "$tmp/template-h100.yaml"
grep -q "default_config_efficiency: $eff$" "$tmp/template-h100.yaml" || { echo "template has no fused_moe efficiency to set" >&2; exit 1; }
"$BIN" fit engine --template "$tmp/template-h100.yaml" \
  --power-profile profiles/power/templates/h100.yaml --power-out "$tmp/h100.yaml" "${cases[@]}" \
  --param iteration.host_ms --param iteration.host_us_per_seq --param iteration.overlap \
  --param sampler.logit_passes --param power.p0_w --param power.k_compute_w --param power.k_memory_w \
  --out "$tmp/engine-h100.yaml" --report "$tmp/fit-h100.md" --no-holdout --quiet >/dev/null
echo
param_table "$tmp/fit-h100.md"
echo "$(shipped host_ms host_us_per_seq overlap logit_passes) and profiles/power/h100.yaml"
replay h100-large-batch "$tmp/engine-h100.yaml" "$tmp/h100.yaml" "$V"/heldout-v3-h100-*.yaml "$V"/mlenergy-v3-h100-*.yaml
