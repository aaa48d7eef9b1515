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
python3 - "$out" <<'PY'
import re, sys, pathlib
out = pathlib.Path(sys.argv[1])
models = pathlib.Path("profiles/models.yaml").read_text()
# The DeepSeek entry without its mla section.
mha = re.sub(r"(  deepseek-ai/DeepSeek-V3:\n(?:    .*\n)*?)    mla:\n(?:      .*\n)+", r"\1", models)
assert mha != models and "\n    mla:\n" not in mha, "the DeepSeek entry still has its latent"
(out / "models-mha.yaml").write_text(mha)
PY
python3 scripts/catalog_variant.py write "$out" "heldout-v3-b200-deepseek-*.yaml" mha "$out/models-mha.yaml"
for v in shipped mha; do
  "$bin" validate --suite "$out/$v" --out "$out/$v-out" --force --no-plots -q
done
metrics=itl_p50_s,output_tokens_per_s,running_batch_mean,mean_power_w,j_per_output_token
python3 scripts/catalog_variant.py bands "$out" "$metrics" "shipped=latent (MLA)" "mha=as multi-head"
# The signed error of every row as shipped (the direction of the misses).
python3 - "$out" "$metrics" <<'PY'
import json, sys
sys.path.insert(0, "scripts")
from catalog_variant import max_num_seqs
out, metrics = sys.argv[1], sys.argv[2].split(",")
print()
print("| case | max_num_seqs | " + " | ".join(f"`{m}`" for m in metrics) + " |")
print("|---|---|" + "---|" * len(metrics))
for c in json.load(open(f"{out}/shipped-out/validation.json"))["cases"]:
    for p in sorted(c["points"], key=max_num_seqs):
        n = max_num_seqs(p)
        cells = []
        for m in metrics:
            e = p["metrics"].get(m, {}).get("rel_error")
            cells.append("-" if e is None else f"{100 * e:+.1f}%")
        print(f"| {c['name']} | {n} | " + " | ".join(cells) + " |")
PY
