#!/usr/bin/env bash
# Builds the simwatt image from the repository's Containerfile and smoke-tests it: the binary runs, and
# a short quickstart simulation of a config outside the image's data (a copy on a mounted host folder),
# with --strict (no fallback allowed), finds the shipped data in /usr/local/share/simwatt by the install
# prefix and writes its run folder onto the host folder.
# Usage: scripts/container_build.sh [IMAGE]   (default simwatt:<version of Cargo.toml>; from anywhere)
#        ENGINE=docker scripts/container_build.sh   (default: podman if installed, else docker)
#        Extra build options (a mirror of the base images, a proxy) go in BUILD_ARGS, e.g.
#        BUILD_ARGS="--build-arg RUST_IMAGE=mirror.example/rust:1.95-slim-bookworm".
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
image=${1:-simwatt:$version}
engine=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}

echo "== $engine build -t $image ."
# shellcheck disable=SC2086 # BUILD_ARGS holds several words on purpose
"$engine" build ${BUILD_ARGS:-} -t "$image" -f Containerfile .

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
chmod 0777 "$out"

echo "== smoke test"
"$engine" run --rm "$image" --version | grep -qx "simwatt $version"
cp experiments/quickstart.yaml "$out/"
"$engine" run --rm -v "$out:/work/out" "$image" simulate --strict \
  --config out/quickstart.yaml --set workload.requests=32 \
  --out out/quickstart --quiet --no-plots --no-trace --no-csv
for f in summary.json summary.md requests.parquet batches.parquet power.parquet provenance.json; do
  test -s "$out/quickstart/$f" || { echo "missing $f in the run folder" >&2; exit 1; }
done
grep -q '"requests_completed": 32' "$out/quickstart/summary.json"
grep -q '/usr/local/share/simwatt (the install prefix' "$out/quickstart/provenance.json"
"$engine" run --rm -e SIMWATT_DATA_DIR=/usr/local/share/simwatt -v "$out:/work/out" "$image" \
  sweep plan --config /usr/local/share/simwatt/experiments/sweep-example.yaml >/dev/null
echo "ok: $image runs simwatt $version with its shipped data"
