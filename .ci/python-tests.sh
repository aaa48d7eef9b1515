#!/usr/bin/env bash
# The Python package (python/, docs/python.md): builds the wheel with maturin from this checkout's
# release build (one build: the same target folder), installs it into a fresh virtual environment
# holding nothing else but pytest, then runs the pytest suite (python/tests: the quickstart's tables
# against the CLI's run folder, config errors, a 1,000-run loop with its speed, sweep, validate, the
# GIL), the README's Python example and the example notebook docs/python-example.ipynb.
#   usage: .ci/python-tests.sh        (CI runs it after the CLI is built; needs python3 >= 3.9)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
build_venv=target/python-build-venv
test_venv=target/python-test-venv

echo "-- maturin (in $build_venv)"
[ -x "$build_venv/bin/maturin" ] || { "$py" -m venv "$build_venv" && "$build_venv/bin/pip" install -q "maturin>=1.5,<2"; }

echo "-- wheel"
rm -rf target/wheels
"$build_venv/bin/maturin" build --release --quiet -m python/Cargo.toml --target-dir target \
  --out target/wheels -i "$py"
wheel=$(ls target/wheels/simwatt-*.whl)

echo "-- fresh virtual environment: pip install $(basename "$wheel") pytest"
rm -rf "$test_venv"
"$py" -m venv "$test_venv"
"$test_venv/bin/pip" install -q "$wheel" pytest

# The CLI the tests compare against: this checkout's release binary.
cargo build --release --quiet --bin simwatt

echo "-- pytest python/tests"
"$test_venv/bin/python" -m pytest python/tests -q

echo "-- the README's Python example"
"$test_venv/bin/python" - <<'PY'
import re
text = open("README.md", encoding="utf-8").read()
blocks = re.findall(r"```python\n(.*?)```", text, re.S)
assert blocks, "README.md has no ```python block"
exec(compile(blocks[0], "README.md (Python example)", "exec"), {"__name__": "__main__"})
PY

echo "-- docs/python-example.ipynb"
"$test_venv/bin/python" scripts/run_notebook.py docs/python-example.ipynb
