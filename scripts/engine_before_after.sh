#!/usr/bin/env bash
# The before/after tables of docs/validation.md for the engine model: every ML.ENERGY case (v2 and v3)
# and the A100 serving run, validated as shipped ("after") and with the vidur engine and the power
# profiles of experiments/before-engine ("before"); prints one markdown table per dataset: mean absolute
# error per case and metric (ML.ENERGY v3: per model, its chat and GPQA cases together, as the fit's
# leave-one-model-out report groups them).
#   scripts/engine_before_after.sh [BIN]     (default: target/release/simwatt; run from the repository)
set -euo pipefail
BIN=${1:-target/release/simwatt}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/before" "$tmp/after"
for f in experiments/validation/mlenergy-*.yaml experiments/validation/a100-qwen3-8b-serving.yaml; do
  name=$(basename "$f")
  cp "$f" "$tmp/after/$name"
  gpu=$(sed -n 's/.*gpu: \([a-z0-9-]*\).*/\1/p' "$f" | head -1)
  sed -e 's/^  engine: {.*}$/  engine: { name: vidur }\n  energy: { power_profile: experiments\/before-engine\/'"$gpu"'.yaml }/' \
    "$f" > "$tmp/before/$name"
done
"$BIN" validate --suite "$tmp/before" --out "$tmp/vb" --no-plots --quiet
"$BIN" validate --suite "$tmp/after" --out "$tmp/va" --no-plots --quiet
python3 - "$tmp/vb/validation.json" "$tmp/va/validation.json" <<'PY'
import json, sys
def group(name):
    return name[: -len("-gpqa")] if name.startswith("mlenergy-v3") and name.endswith("-gpqa") else name
def table(path):
    out = {}
    for c in json.load(open(path))["cases"]:
        for p in c["points"]:
            for m, v in p["metrics"].items():
                e = v.get("rel_error")
                if e is not None:
                    out.setdefault((group(c["name"]), m), []).append(e)
    return out
b, a = table(sys.argv[1]), table(sys.argv[2])
show = ["tpot_mean_s", "itl_p50_s", "ttft_p50_s", "output_tokens_per_s", "idle_power_w",
        "mean_power_w", "j_per_output_token"]
groups = [("ML.ENERGY v2 (vLLM 0.5.4)", lambda n: n.startswith("mlenergy-") and not n.startswith("mlenergy-v3")),
          ("ML.ENERGY v3 (vLLM 0.11.1, H100)", lambda n: n.startswith("mlenergy-v3")),
          ("A100 serving run (vLLM 0.10.1.1)", lambda n: n.startswith("a100-"))]
for title, keep in groups:
    print(f"\n#### {title}\n")
    print("| case (v3: both tasks of a model) | metric | points | before | after |\n|---|---|---|---|---|")
    allb, alla = {}, {}
    for (case, m) in sorted(a):
        if not keep(case) or m not in show:
            continue
        eb, ea = b.get((case, m), []), a[(case, m)]
        mb = 100 * sum(map(abs, eb)) / len(eb) if eb else None
        ma = 100 * sum(map(abs, ea)) / len(ea)
        signed = (lambda v: f"{100*v[0]:+.1f}%") if len(ea) == 1 else None
        fb = (f"{100*eb[0]:+.1f}%" if len(eb) == 1 else f"{mb:.1f}%") if eb else "-"
        fa = f"{100*ea[0]:+.1f}%" if len(ea) == 1 else f"{ma:.1f}%"
        print(f"| {case} | `{m}` | {len(ea)} | {fb} | {fa} |")
        allb.setdefault(m, []).extend(eb); alla.setdefault(m, []).extend(ea)
    if sum(len(v) for v in alla.values()) > len(alla):
        print("| **all** | | | | |")
        for m in show:
            if m in alla and len(alla[m]) > 1:
                mb = 100 * sum(map(abs, allb.get(m, []))) / max(1, len(allb.get(m, [])))
                ma = 100 * sum(map(abs, alla[m])) / len(alla[m])
                print(f"| all | `{m}` | {len(alla[m])} | {mb:.1f}% | {ma:.1f}% |")
PY
