#!/usr/bin/env bash
# Recovery after kill -9, and what checkpoints cost, on the release build.
#
#   bash benches/recovery.sh [ROWS_PER_SECOND=20000] [KEYS=100000] [RUN_SECONDS=35] [DOWN_SECONDS=5]
#
# Needs the Kafka broker (bash ../shared/kafka/start-broker.sh; KAFKA_SERVERS
# picks another). One `sluice run` (checkpoints off) writes a generator's
# rows into a fresh topic at ROWS_PER_SECOND. A `sluice serve` with the
# default checkpoint interval (10 s) reads the topic into a keyed total
# (KEYS groups) and a 10-second tumbling window per key. After RUN_SECONDS
# the server is killed with SIGKILL, stays down DOWN_SECONDS while the topic
# grows, and is started again on the same data directory. Printed: the
# checkpoints before the kill (duration, state size), then the seconds from
# the restart until the server answers (state restored) and until it has
# caught up (Kafka lag below a tenth of a second's rows): it re-reads what
# came after the last checkpoint and what arrived while it was down.
set -euo pipefail
RATE=${1:-20000}
KEYS=${2:-100000}
RUN=${3:-35}
DOWN=${4:-5}
SERVERS=${KAFKA_SERVERS:-127.0.0.1:9092}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
(cd "$HERE" && cargo build --release --quiet)
BIN=$TARGET/release/sluice
WORK=$(mktemp -d)
TOPIC=recovery_$(date +%s)_$$
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
q() { psql -h 127.0.0.1 -p "$PORT" -d sluice -At -c "$1" 2>/dev/null; }
now() { date +%s.%N; }
start() {
  # Completed checkpoints are logged at debug level.
  RUST_LOG=${RUST_LOG:-warn,sluice=info,sluice::runtime::checkpoint=debug} \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >>"$WORK/serve.log" 2>&1 &
  PID=$!
}
PID=""; PRODUCER=""
trap 'kill -9 $PID $PRODUCER 2>/dev/null || true; rm -rf "$WORK"' EXIT

cat >"$WORK/produce.sql" <<SQL
CREATE SOURCE g (k BIGINT, v BIGINT, ts TIMESTAMP)
    WITH (connector = 'datagen', rows_per_second = $RATE, seed = 7,
          fields.k.max = $((KEYS - 1)), fields.ts.kind = 'sequence');
CREATE SINK to_kafka AS SELECT * FROM g
    WITH (connector = 'kafka', topic = '$TOPIC', bootstrap_servers = '$SERVERS', format = 'json');
SQL
"$BIN" --checkpoint-interval off run --no-progress --data-dir "$WORK/producer" "$WORK/produce.sql" \
  >"$WORK/producer.log" 2>&1 &
PRODUCER=$!
sleep 2
start
until q "SELECT 1" >/dev/null; do sleep 0.1; done
q "CREATE SOURCE ev (k BIGINT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1 second')
     WITH (connector = 'kafka', topic = '$TOPIC', bootstrap_servers = '$SERVERS', format = 'json')" >/dev/null
q "CREATE MATERIALIZED VIEW totals AS SELECT k, count(*) AS n, sum(v) AS s FROM ev GROUP BY k" >/dev/null
q "CREATE MATERIALIZED VIEW windows AS SELECT k, window_start, count(*) AS n
     FROM TUMBLE(ev, ts, INTERVAL '10 seconds') GROUP BY k, window_start, window_end" >/dev/null
echo "topic $TOPIC at $RATE rows/s, $KEYS keys; killed after ${RUN}s, down ${DOWN}s"
sleep "$RUN"
echo "before the kill (pipeline | records in | kafka lag | state rows | state bytes | last checkpoint | checkpoint ms):"
q "SELECT pipeline, records_in, backlog, state_rows, state_bytes, last_checkpoint, checkpoint_ms
     FROM sluice.pipelines WHERE operator = 'pipeline' ORDER BY pipeline"
grep -o 'checkpoint complete epoch=[0-9]* pipelines=[0-9]* took_ms=[0-9]*' "$WORK/serve.log" || true
du -sh "$WORK/data/checkpoints" | sed 's/^/checkpoint directory: /'

kill -9 "$PID"
wait "$PID" 2>/dev/null || true
sleep "$DOWN"
t0=$(now)
start
until q "SELECT 1" >/dev/null; do sleep 0.05; done
t1=$(now)
caught=""
while [ -z "$caught" ]; do
  b=$(q "SELECT max(backlog) FROM sluice.pipelines WHERE operator = 'pipeline'")
  if [ -n "$b" ] && [ "$b" -lt $((RATE / 10)) ]; then caught=$(now); else sleep 0.1; fi
done
grep -o 'restoring from checkpoint epoch=[0-9]*' "$WORK/serve.log" | tail -1
printf 'restart -> answering (state restored): %.2f s\n' "$(echo "$t1 - $t0" | bc)"
printf 'restart -> caught up (kafka lag < %d rows): %.2f s\n' $((RATE / 10)) "$(echo "$caught - $t0" | bc)"
q "SELECT pipeline, records_in FROM sluice.pipelines WHERE operator = 'pipeline' ORDER BY pipeline" \
  | sed 's/^/re-read since the restart: /'
