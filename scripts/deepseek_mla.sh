#!/usr/bin/env bash
# The DeepSeek table of docs/validation.md: the three held-out DeepSeek cases (V3.1 chat and GPQA,
# R1-0528 GPQA, 8 B200 with expert parallelism) replayed as shipped, with multi-head latent attention,
# and with the catalog entry's `mla` block removed (the same heads priced as multi-head attention of
# head_dim 192, to show what the latent changes): mean |error| over the rows with max_num_seqs up to
# 64, above 64, and all, then the signed mean error of every row (the direction of the misses).
# Usage: scripts/deepseek_mla.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
mkdir -p "$out/shipped" "$out/mha"
python3 - "$out" <<'PY'
import re, sys, pathlib
out = pathlib.Path(sys.argv[1])
root = pathlib.Path.cwd()
models = (root / "profiles/models.yaml").read_text()
# The DeepSeek entry without its mla section.
mha = re.sub(r"(  deepseek-ai/DeepSeek-V3:\n(?:    .*\n)*?)    mla:\n(?:      .*\n)+", r"\1", models)
assert mha != models and "\n    mla:\n" not in mha, "the DeepSeek entry still has its latent"
(out / "models-mha.yaml").write_text(mha)
for case in sorted((root / "experiments/validation").glob("heldout-v3-b200-deepseek-*.yaml")):
    text = case.read_text().replace("path: profiles/", f"path: {root}/profiles/")
    (out / "shipped" / case.name).write_text(text)
    engine = '  engine: { name: vllm, version: "0.11" }\n'
    assert engine in text, case
    (out / "mha" / case.name).write_text(
        text.replace(engine, engine + f"  catalog: {{ models: {out}/models-mha.yaml }}\n"))
PY
for v in shipped mha; do
  "$bin" validate --suite "$out/$v" --out "$out/$v-out" --force --no-plots -q
done
python3 - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
metrics = ["itl_p50_s", "output_tokens_per_s", "running_batch_mean", "mean_power_w", "j_per_output_token"]
print("| case | attention | rows | " + " | ".join(f"`{m}`" for m in metrics) + " |")
print("|---|---|---|" + "---|" * len(metrics))
for variant, label in [("shipped", "latent (MLA)"), ("mha", "as multi-head")]:
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
print()
print("| case | max_num_seqs | " + " | ".join(f"`{m}`" for m in metrics) + " |")
print("|---|---|" + "---|" * len(metrics))
for c in json.load(open(f"{out}/shipped-out/validation.json"))["cases"]:
    for p in sorted(c["points"], key=lambda p: int(re.search(r"max_num_seqs (\d+)", p["label"]).group(1))):
        n = re.search(r"max_num_seqs (\d+)", p["label"]).group(1)
        cells = []
        for m in metrics:
            e = p["metrics"].get(m, {}).get("rel_error")
            cells.append("-" if e is None else f"{100 * e:+.1f}%")
        print(f"| {c['name']} | {n} | " + " | ".join(cells) + " |")
PY
