"""Replays held-out validation cases as shipped and with a changed model catalog, for the study scripts
that show what a catalog feature changes (scripts/deepseek_mla.sh, scripts/gpt_oss_windows.sh).

  python3 scripts/catalog_variant.py write OUT GLOB VARIANT MODELS_FILE
      writes each case of experiments/validation/GLOB into OUT/shipped (as shipped) and OUT/VARIANT
      (reading its models from MODELS_FILE), their data paths made absolute; run from the repository root
  python3 scripts/catalog_variant.py bands OUT METRICS DIR=LABEL ...
      prints mean |error| over the rows with max_num_seqs up to 64 / above 64 / all, per case, of each
      OUT/DIR-out/validation.json, METRICS comma-separated
"""
import json
import pathlib
import re
import sys

ENGINE = '  engine: { name: vllm, version: "0.11" }\n'


def max_num_seqs(point):
    return int(re.search(r"max_num_seqs (\d+)", point["label"]).group(1))


def write(out, glob, variant, models_file):
    out, root = pathlib.Path(out), pathlib.Path.cwd()
    (out / "shipped").mkdir(parents=True, exist_ok=True)
    (out / variant).mkdir(parents=True, exist_ok=True)
    for case in sorted((root / "experiments/validation").glob(glob)):
        text = case.read_text().replace("path: profiles/", f"path: {root}/profiles/")
        (out / "shipped" / case.name).write_text(text)
        assert ENGINE in text, case
        (out / variant / case.name).write_text(
            text.replace(ENGINE, ENGINE + f"  catalog: {{ models: {models_file} }}\n"))


def bands(out, metrics, variants):
    print("| case | attention | rows | " + " | ".join(f"`{m}`" for m in metrics) + " |")
    print("|---|---|---|" + "---|" * len(metrics))
    for variant, label in variants:
        for c in json.load(open(f"{out}/{variant}-out/validation.json"))["cases"]:
            sel = [[p for p in c["points"] if lo <= max_num_seqs(p) <= hi]
                   for lo, hi in [(0, 64), (65, 1 << 40), (0, 1 << 40)]]

            def mean(pts, m):
                e = [abs(p["metrics"][m]["rel_error"]) for p in pts
                     if p["metrics"].get(m, {}).get("rel_error") is not None]
                return f"{100 * sum(e) / len(e):.1f}%" if e else "-"

            cells = [" / ".join(mean(pts, m) for pts in sel) for m in metrics]
            rows = " / ".join(str(len(pts)) for pts in sel)
            print(f"| {c['name']} | {label} | {rows} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(*sys.argv[2:6])
    elif sys.argv[1] == "bands":
        bands(sys.argv[2], sys.argv[3].split(","), [a.split("=", 1) for a in sys.argv[4:]])
    else:
        sys.exit(__doc__)
