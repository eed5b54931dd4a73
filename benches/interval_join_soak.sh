#!/usr/bin/env bash
# An interval join soak, on the release build: Nexmark bids joined with
# their auction while it is at most 10 s old (both generators paced at
# EVENTS events/s of the Nexmark mix, so event time runs with the wall
# clock), for MINUTES minutes, into a blackhole sink. Prints the process's
# RSS, the join's rows in and out and its state every STEP seconds: the
# state is the rows inside the bound (plus the watermark's delay), so RSS
# stays flat however long it runs. A regular join of the same inputs keeps
# every row instead: run with `regular` as the fourth argument to see it
# grow.
#
#   bash benches/interval_join_soak.sh [MINUTES=10] [EVENTS=100000] [STEP=30] [interval|regular]
set -euo pipefail
MINUTES=${1:-10}
EVENTS=${2:-100000}
STEP=${3:-30}
KIND=${4:-interval}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
(cd "$HERE" && cargo build --release --quiet)
BIN=$TARGET/release/sluice
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --checkpoint-interval off serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
  >"$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  psql -h 127.0.0.1 -p "$PORT" -d sluice -Atc "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.1
done
BOUND="AND b.date_time BETWEEN a.date_time AND a.date_time + INTERVAL '10' SECOND"
[ "$KIND" = regular ] && BOUND=""
psql -h 127.0.0.1 -p "$PORT" -d sluice -q -v ON_ERROR_STOP=1 <<SQL
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = $EVENTS, seed = 7,
      max_out_of_orderness = '2 seconds');
CREATE SOURCE auction (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'auction', events_per_second = $EVENTS, seed = 7,
      max_out_of_orderness = '2 seconds');
CREATE SINK soak AS
    SELECT b.auction, b.price, a.seller, a.category
    FROM bid AS b JOIN auction AS a ON b.auction = a.id $BOUND
WITH (connector = 'blackhole');
SQL
printf '%8s %10s %14s %14s %14s %12s\n' elapsed rss_mb rows_in rows_out state_rows state_mb
START=$(date +%s)
END=$((START + MINUTES * 60))
while :; do
  sleep "$STEP"
  NOW=$(date +%s)
  RSS=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
  FIGS=$(psql -h 127.0.0.1 -p "$PORT" -d sluice -Atc \
    "SELECT records_in, records_out, state_rows, state_bytes FROM sluice.pipelines
     WHERE pipeline = 'soak' AND operator = 'join'" | tr '|' ' ')
  read -r IN OUT ROWS BYTES <<<"$FIGS"
  printf '%7ss %10.1f %14s %14s %14s %12.1f\n' $((NOW - START)) "$(echo "$RSS / 1024" | bc -l)" \
    "$IN" "$OUT" "$ROWS" "$(echo "$BYTES / 1048576" | bc -l)"
  [ "$NOW" -ge "$END" ] && break
done
