#!/usr/bin/env bash
# The gpt-oss table of docs/validation.md: the four held-out gpt-oss cases replayed as shipped and with
# the catalog entries' sliding windows removed (every layer attending to the whole context, the same
# MXFP4 experts), mean |error| over the rows with max_num_seqs up to 64, above 64, and all.
# Usage: scripts/gpt_oss_windows.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
mkdir -p "$out/shipped" "$out/full"
python3 - "$out" <<'PY'
import re, sys, pathlib
out = pathlib.Path(sys.argv[1])
root = pathlib.Path.cwd()
models = (root / "profiles/models.yaml").read_text()
# The gpt-oss entries without their sliding_window section.
full = re.sub(r"(  openai/gpt-oss-[0-9]+b:\n(?:    .*\n)*?)    sliding_window:\n      window: 128\n      pattern: 2[^\n]*\n",
              r"\1", models)
full = re.sub(r"(  openai/gpt-oss-[0-9]+b:\n(?:    .*\n)*?)    sliding_window:\n      window: 128\n      pattern: 2[^\n]*\n",
              r"\1", full)
assert full.count("window: 128") == 0, "the gpt-oss entries still slide"
(out / "models-full.yaml").write_text(full)
for case in sorted((root / "experiments/validation").glob("heldout-v3-*-gpt-oss-*.yaml")):
    text = case.read_text().replace("path: profiles/", f"path: {root}/profiles/")
    (out / "shipped" / case.name).write_text(text)
    engine = '  engine: { name: vllm, version: "0.11" }\n'
    assert engine in text, case
    (out / "full" / case.name).write_text(
        text.replace(engine, engine + f"  catalog: {{ models: {out}/models-full.yaml }}\n"))
PY
for v in shipped full; do
  "$bin" validate --suite "$out/$v" --out "$out/$v-out" --force --no-plots -q
done
python3 - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
metrics = ["itl_p50_s", "output_tokens_per_s", "mean_power_w", "j_per_output_token"]
print("| case | attention | rows | " + " | ".join(f"`{m}`" for m in metrics) + " |")
print("|---|---|---|" + "---|" * len(metrics))
for variant, label in [("shipped", "sliding windows"), ("full", "every layer full")]:
    for c in json.load(open(f"{out}/{variant}-out/validation.json"))["cases"]:
        bands = [(0, 64), (65, 1 << 40), (0, 1 << 40)]
        sel = [[p for p in c["points"]
                if lo <= int(re.search(r"max_num_seqs (\d+)", p["label"]).group(1)) <= hi]
               for lo, hi in bands]
        def mean(pts, m):
            e = [abs(p["metrics"][m]["rel_error"]) for p in pts
                 if p["metrics"].get(m, {}).get("rel_error") is not None]
            return f"{100 * sum(e) / len(e):.1f}%" if e else "-"
        cells = [" / ".join(mean(pts, m) for pts in sel) for m in metrics]
        rows = " / ".join(str(len(pts)) for pts in sel)
        print(f"| {c['name']} | {label} | {rows} | " + " | ".join(cells) + " |")
PY
