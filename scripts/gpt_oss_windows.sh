#!/usr/bin/env bash
# The gpt-oss table of docs/validation.md: the four held-out gpt-oss cases replayed as shipped and with
# the catalog entries' sliding windows removed (every layer attending to the whole context, the same
# MXFP4 experts), mean |error| over the rows with max_num_seqs up to 64, above 64, and all.
# Usage: scripts/gpt_oss_windows.sh   (from anywhere; builds the release binary first)
set -euo pipefail
# shellcheck source=scripts/study_env.sh
. "$(dirname "$0")/study_env.sh"   # cd to the repository root; $bin, $out
python3 - "$out" <<'PY'
import re, sys, pathlib
out = pathlib.Path(sys.argv[1])
models = pathlib.Path("profiles/models.yaml").read_text()
# The gpt-oss entries without their sliding_window section.
full = re.sub(r"(  openai/gpt-oss-[0-9]+b:\n(?:    .*\n)*?)    sliding_window:\n      window: 128\n      pattern: 2[^\n]*\n",
              r"\1", models)
full = re.sub(r"(  openai/gpt-oss-[0-9]+b:\n(?:    .*\n)*?)    sliding_window:\n      window: 128\n      pattern: 2[^\n]*\n",
              r"\1", full)
assert full.count("window: 128") == 0, "the gpt-oss entries still slide"
(out / "models-full.yaml").write_text(full)
PY
python3 scripts/catalog_variant.py write "$out" "heldout-v3-*-gpt-oss-*.yaml" full "$out/models-full.yaml"
for v in shipped full; do
  "$bin" validate --suite "$out/$v" --out "$out/$v-out" --force --no-plots -q
done
python3 scripts/catalog_variant.py bands "$out" itl_p50_s,output_tokens_per_s,mean_power_w,j_per_output_token \
  "shipped=sliding windows" "full=every layer full"
