#!/usr/bin/env bash
# The quick start from an installed binary: `cargo install --path . --root PREFIX` (reusing this
# checkout's release build, so it takes seconds after `cargo build --release`), the shipped data copied
# to PREFIX/share/simwatt as the README says, then the quick start run from an empty directory with
# --strict. Its summary.json must equal the one from the repository root, wall-clock fields aside.
#   usage: scripts/check_install.sh        (CI runs it; exits non-zero on any difference)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo install --quiet --offline --locked --path . --root "$work/prefix" --target-dir target
mkdir -p "$work/prefix/share/simwatt" "$work/elsewhere"
cp -r profiles regions traces experiments "$work/prefix/share/simwatt/"
cp experiments/quickstart.yaml "$work/elsewhere/my.yaml"
target/release/simwatt simulate --config experiments/quickstart.yaml --out "$work/repo" \
  --no-plots --no-trace --quiet --strict
(cd "$work/elsewhere" && env -u SIMWATT_DATA_DIR "$work/prefix/bin/simwatt" simulate --config my.yaml \
  --out "$work/installed" --no-plots --no-trace --quiet --strict)
grep -q "install prefix" "$work/installed/provenance.json" \
  || { echo "the installed binary did not use PREFIX/share/simwatt:"; grep data_dir "$work/installed/provenance.json"; exit 1; }
strip() { grep -v '"sim_.*wall' "$1/summary.json"; }
if diff <(strip "$work/repo") <(strip "$work/installed") >/dev/null; then
  echo "installed binary: same summary.json as the repository's quick start"
else
  echo "installed binary: summary.json differs from the repository's quick start:"
  diff <(strip "$work/repo") <(strip "$work/installed") | head -20
  exit 1
fi
