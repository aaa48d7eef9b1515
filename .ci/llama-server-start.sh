#!/usr/bin/env bash
# Starts llama.cpp's OpenAI-compatible server (the PyPI package llama-cpp-python, through
# scripts/llama_server.py) on 127.0.0.1 serving the tiny random-weight model that scripts/tiny_gguf.py
# writes, for the measurement test (tests/it/measure.rs). Installs the Python packages into a venv
# first when they are missing there (llama-cpp-python compiles llama.cpp from source: minutes). Then
# `. $SIMWATT_LLAMA_DIR/env.sh` exports SIMWATT_LLAMA_SERVER_URL (and SIMWATT_LLAMA_SERVER_LOG).
# Idempotent: a server of ours that still answers is kept. Stop with .ci/llama-server-stop.sh.
# Settings: SIMWATT_LLAMA_DIR (default /tmp/simwatt-llama), SIMWATT_LLAMA_PORT (default 18437).
# PIP_NO_CACHE_DIR=1 makes pip compile llama.cpp again even where it cached a wheel (a cold install).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${SIMWATT_LLAMA_DIR:-/tmp/simwatt-llama}
PORT=${SIMWATT_LLAMA_PORT:-18437}
LLAMA_CPP_PYTHON=${SIMWATT_LLAMA_CPP_PYTHON_VERSION:-0.3.36}
GGUF=${SIMWATT_GGUF_VERSION:-0.19.0}
URL="http://127.0.0.1:$PORT"
log() { echo "llama-server-start: $*" >&2; }
mkdir -p "$DIR"
t0=$(date +%s)

answers() {
  "$DIR/venv/bin/python" - "$URL" <<'PY' 2>/dev/null
import sys, urllib.request, json
with urllib.request.urlopen(sys.argv[1] + "/v1/models", timeout=5) as r:
    sys.exit(0 if json.load(r).get("data") else 1)
PY
}

# -- 1. the venv
if ! "$DIR/venv/bin/python" -c 'import llama_cpp.server, gguf, numpy' 2>/dev/null; then
  log "installing llama-cpp-python[server]==$LLAMA_CPP_PYTHON gguf==$GGUF into $DIR/venv (compiles llama.cpp)"
  rm -rf "$DIR/venv"
  python3 -m venv "$DIR/venv"
  ti=$(date +%s)
  # CMake builds llama.cpp with one job unless told otherwise: use every core.
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
  "$DIR/venv/bin/pip" install -q --disable-pip-version-check \
    "llama-cpp-python[server]==$LLAMA_CPP_PYTHON" "gguf==$GGUF" >"$DIR/pip.log" 2>&1 \
    || { tail -40 "$DIR/pip.log" >&2; log "pip install failed (log: $DIR/pip.log)"; exit 1; }
  log "installed in $(( $(date +%s) - ti )) s"
else
  log "llama-cpp-python already installed in $DIR/venv"
fi

# -- 2. the model
"$DIR/venv/bin/python" "$ROOT/scripts/tiny_gguf.py" "$DIR/tiny.gguf" >"$DIR/vocab_size"
log "wrote $DIR/tiny.gguf (vocabulary $(cat "$DIR/vocab_size"))"

# -- 3. the server
if [ -f "$DIR/server.pid" ] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null && answers; then
  log "server already running at $URL (pid $(cat "$DIR/server.pid"))"
else
  if [ -f "$DIR/server.pid" ] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
    kill "$(cat "$DIR/server.pid")" 2>/dev/null || true
    sleep 1
  fi
  # One thread: the host has two cores, and the tests run beside the server. A request that arrives
  # while another runs waits for it (the package's default cancels the running one).
  nohup "$DIR/venv/bin/python" "$ROOT/scripts/llama_server.py" \
    --model "$DIR/tiny.gguf" --model_alias simwatt/tiny-llama-random \
    --host 127.0.0.1 --port "$PORT" --n_ctx 2048 --n_threads 1 --n_threads_batch 1 \
    --interrupt_requests false \
    >"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$DIR/server.pid"
  for _ in $(seq 1 120); do
    if answers; then break; fi
    if ! kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
      tail -30 "$DIR/server.log" >&2
      log "the server exited (log: $DIR/server.log)"
      exit 1
    fi
    sleep 0.5
  done
  answers || { tail -30 "$DIR/server.log" >&2; log "the server does not answer at $URL"; exit 1; }
  log "server up at $URL (pid $(cat "$DIR/server.pid"))"
fi
cat >"$DIR/env.sh" <<ENV
export SIMWATT_LLAMA_SERVER_URL=$URL
export SIMWATT_LLAMA_SERVER_LOG=$DIR/server.log
ENV
log "ready in $(( $(date +%s) - t0 )) s; . $DIR/env.sh"
