#!/usr/bin/env bash
# Stops the server .ci/llama-server-start.sh started (by its pid file); the venv is kept for the next
# start.
set -uo pipefail
DIR=${SIMWATT_LLAMA_DIR:-/tmp/simwatt-llama}
if [ -f "$DIR/server.pid" ]; then
  pid=$(cat "$DIR/server.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/server.pid"
fi
