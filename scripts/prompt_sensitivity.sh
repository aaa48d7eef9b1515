#!/usr/bin/env bash
# How much a validation case's errors depend on its assumed prompt length (a measured spec's
# `prompt_tokens_mean`, for tables such as ML.ENERGY v3 that do not publish it): replays the case
# with each given mean (the spread `prompt_tokens_sigma` kept) and prints the mean |error| per metric.
#   scripts/prompt_sensitivity.sh CASE.yaml MEAN... [BIN=target/release/simwatt]
# e.g. scripts/prompt_sensitivity.sh experiments/validation/heldout-v3-b200-qwen3-coder-480b-a35b.yaml 500 1500 3000 6000
# (run from the repository).
set -euo pipefail
case_file=$1; shift
[ -f "$case_file" ] || { echo "no case file $case_file" >&2; exit 2; }
grep -q '^  prompt_tokens_mean: ' "$case_file" || { echo "$case_file has no measured.prompt_tokens_mean" >&2; exit 2; }
[ $# -gt 0 ] || { echo "give one or more prompt means" >&2; exit 2; }
BIN=${BIN:-target/release/simwatt}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| prompt_tokens_mean | rows | \`itl_p50_s\` | \`output_tokens_per_s\` | \`mean_power_w\` | \`j_per_output_token\` |"
echo "|---|---|---|---|---|---|"
for mean in "$@"; do
  [[ $mean =~ ^[0-9]+$ ]] || { echo "prompt mean $mean is not a whole number of tokens" >&2; exit 2; }
  mkdir -p "$tmp/$mean/suite"
  sed "s/^  prompt_tokens_mean: .*$/  prompt_tokens_mean: $mean/" "$case_file" > "$tmp/$mean/suite/$(basename "$case_file")"
  "$BIN" validate --suite "$tmp/$mean/suite" --out "$tmp/$mean/out" --no-plots --quiet
  python3 - "$tmp/$mean/out/validation.json" "$mean" <<'PY'
import json, sys
case = json.load(open(sys.argv[1]))["cases"][0]
cells = []
for m in ["itl_p50_s", "output_tokens_per_s", "mean_power_w", "j_per_output_token"]:
    e = [abs(p["metrics"][m]["rel_error"]) for p in case["points"] if p["metrics"].get(m, {}).get("rel_error") is not None]
    cells.append(f"{100 * sum(e) / len(e):.1f}%" if e else "-")
print(f"| {sys.argv[2]} | {len(case['points'])} | " + " | ".join(cells) + " |")
PY
done
