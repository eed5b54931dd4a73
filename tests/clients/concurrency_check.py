"""Sessions never wait on each other: while one of 20 sessions runs a slow
ad-hoc query, the other 19 take turns running `SELECT 1` and a read of a
view, and the median round trip is no more than 50 ms longer than
before the slow query started (p90 and max are printed: on a shared
2-core machine they move with whatever else runs). Prints the latencies; exits non-zero on a
failed check.

    python concurrency_check.py PORT
"""
import statistics
import sys
import threading
import time

import psycopg

port = int(sys.argv[1])
dsn = f"host=127.0.0.1 port={port} dbname=sluice user=test"

# A query that runs for minutes on this machine (cancelled at the end).
SLOW = "SELECT count(*) FROM generate_series(1, 100000000000)"
ROUNDS = 5


def round_trips(conns):
    """Each session in turn: SELECT 1 and a view read; the latencies."""
    out = []
    for _ in range(ROUNDS):
        for conn in conns:
            started = time.perf_counter()
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM counts").fetchone() == (3,)
            out.append(time.perf_counter() - started)
    return out


slow = psycopg.connect(dsn, autocommit=True)
others = [psycopg.connect(dsn, autocommit=True) for _ in range(19)]
baseline = round_trips(others)

slow_error = []


def run_slow():
    try:
        slow.execute(SLOW).fetchone()
        slow_error.append("the slow query finished")
    except psycopg.errors.QueryCanceled:
        pass
    except Exception as e:  # noqa: BLE001 - reported below
        slow_error.append(repr(e))


thread = threading.Thread(target=run_slow)
thread.start()
time.sleep(1.0)  # the slow query is running now
during = round_trips(others)
still_running = thread.is_alive()
slow.cancel()
thread.join(30)


def ms(x):
    return f"{x * 1000:.1f} ms"


def p90(xs):
    return sorted(xs)[int(len(xs) * 0.9)]


print(f"before the slow query: median {ms(statistics.median(baseline))}, p90 {ms(p90(baseline))}; "
      f"during it: median {ms(statistics.median(during))}, p90 {ms(p90(during))}, max {ms(max(during))}")
assert still_running, "the slow query ended before the other sessions did: nothing was shown"
assert not slow_error, slow_error
delay = statistics.median(during) - statistics.median(baseline)
assert delay < 0.05, f"the slow query delays other sessions by {ms(delay)} (median)"
for c in others + [slow]:
    c.close()
print("ok")
