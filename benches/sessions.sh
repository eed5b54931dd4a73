#!/usr/bin/env bash
# Many sessions at once, on the release build: SESSIONS connections open
# together, each running `SELECT 1` about once every PERIOD seconds (at
# random moments), first alone and then while one more session runs a slow
# ad-hoc query. Prints p50, p99 and max round trips for both; the target is
# a p99 under 50 ms with 200 sessions and the slow query running.
#
#   bash benches/sessions.sh [SESSIONS=200] [SECONDS=10] [PERIOD=1.0]
#
# The client is Python (psycopg, from .ci/run's venv or SLUICE_PYTHON), on
# the same machine: its own threads share the cores with the server.
set -euo pipefail
SESSIONS=${1:-200}
SECONDS_=${2:-10}
PERIOD=${3:-1.0}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
PYTHON=${SLUICE_PYTHON:-$HOME/.cache/sluice/venv/bin/python}
(cd "$HERE" && cargo build --release --quiet)
BIN=$TARGET/release/sluice
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --max-connections $((SESSIONS + 50)) \
  >"$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do
  psql -h 127.0.0.1 -p "$PORT" -d sluice -Atc "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.1
done
# No pass/fail bound here (a huge one): the figures are the result.
"$PYTHON" "$HERE/tests/clients/sessions_check.py" "$PORT" "$SESSIONS" "$SECONDS_" 1000000 "$PERIOD"
