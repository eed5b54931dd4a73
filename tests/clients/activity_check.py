"""pg_stat_activity, pg_cancel_backend and pg_terminate_backend, as an
operator uses them from psql or a GUI: one row per session with its
statement and state; cancel stops another session's running statement
and leaves the session usable; terminate closes it. Prints what it saw;
exits non-zero on a failed check.

    python activity_check.py PORT
"""
import sys
import threading
import time

import psycopg

port = int(sys.argv[1])
dsn = f"host=127.0.0.1 port={port} dbname=sluice user=ops"

SLOW = "SELECT count(*) FROM generate_series(1, 100000000000)"


def rows(conn):
    cur = conn.execute(
        "SELECT pid, usename, application_name, state, query, backend_start IS NOT NULL "
        "FROM pg_stat_activity ORDER BY pid"
    )
    return cur.fetchall()


def wait(what, check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


slow = psycopg.connect(dsn, autocommit=True, application_name="slowpoke")
ops = psycopg.connect(dsn, autocommit=True, application_name="console")
slow_pid = slow.execute("SELECT pg_backend_pid()").fetchone()[0]
ops_pid = ops.execute("SELECT pg_backend_pid()").fetchone()[0]
assert slow_pid != ops_pid, (slow_pid, ops_pid)

outcome = []


def run_slow():
    try:
        slow.execute(SLOW).fetchone()
        outcome.append("finished")
    except psycopg.errors.QueryCanceled as e:
        outcome.append(f"cancelled: {e.sqlstate}")
    except Exception as e:  # noqa: BLE001 - reported below
        outcome.append(repr(e))


thread = threading.Thread(target=run_slow)
thread.start()


def slow_active():
    for r in rows(ops):
        if r[0] == slow_pid and r[3] == "active" and "generate_series" in r[4]:
            return r
    return None


seen = wait("the slow query in pg_stat_activity", slow_active)
print("slow session:", seen)
everyone = rows(ops)
print("pg_stat_activity:", everyone)
assert len(everyone) == 2, everyone
mine = [r for r in everyone if r[0] == ops_pid][0]
assert mine[1] == "ops" and mine[2] == "console" and mine[3] == "active", mine
assert "pg_stat_activity" in mine[4] and mine[5], mine
assert seen[1] == "ops" and seen[2] == "slowpoke", seen

started = time.monotonic()
assert ops.execute("SELECT pg_cancel_backend(%s)", (slow_pid,)).fetchone() == (True,)
thread.join(10)
print("cancel took", round(time.monotonic() - started, 3), "s:", outcome)
assert outcome == ["cancelled: 57014"], outcome
assert slow.execute("SELECT 1").fetchone() == (1,)
idle = wait(
    "the slow session idle",
    lambda: [r for r in rows(ops) if r[0] == slow_pid and r[3] == "idle"],
)
print("after cancel:", idle)

assert ops.execute("SELECT pg_cancel_backend(999999)").fetchone() == (False,)
assert ops.execute("SELECT pg_terminate_backend(%s)", (slow_pid,)).fetchone() == (True,)
try:
    slow.execute("SELECT 1").fetchone()
    raise AssertionError("the terminated session still answers")
except psycopg.OperationalError as e:
    print("terminated session:", type(e).__name__)
wait("the terminated session gone", lambda: all(r[0] != slow_pid for r in rows(ops)))
assert [r[0] for r in rows(ops)] == [ops_pid]
print("ok")
