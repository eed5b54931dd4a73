"""Many sessions at once (#22): N sessions (200 by default) are open
together, each running `SELECT 1` about once a second (at random moments,
so about N queries a second in all, as a pool of application connections
does), while one more session runs a slow ad-hoc query. Prints the round
trips' p50, p99 and max, before and during the slow query; exits non-zero
if a session failed, the slow query was not running throughout, or the p99
during it is over MAX_P99_MS.

    python sessions_check.py PORT [SESSIONS] [SECONDS] [MAX_P99_MS] [PERIOD_S]
"""
import random
import sys
import threading
import time

import psycopg

port = sys.argv[1]
sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 200
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
max_p99_ms = float(sys.argv[4]) if len(sys.argv) > 4 else 50.0
period = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
dsn = f"host=127.0.0.1 port={port} dbname=sluice user=test"
SLOW = "SELECT count(*) FROM generate_series(1, 100000000000)"

conns = [psycopg.connect(dsn, autocommit=True) for _ in range(sessions)]
print(f"{sessions} sessions connected")


def measure():
    """Every session runs SELECT 1 now and then for `seconds`."""
    latencies = []
    failures = []
    lock = threading.Lock()
    start = threading.Barrier(sessions)
    deadline = [0.0]

    def work(conn):
        mine = []
        rng = random.Random(id(conn))
        try:
            start.wait()
            while True:
                time.sleep(rng.uniform(0, 2 * period))
                if time.monotonic() >= deadline[0]:
                    break
                t = time.perf_counter()
                assert conn.execute("SELECT 1").fetchone() == (1,)
                mine.append(time.perf_counter() - t)
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(repr(e))
        with lock:
            latencies.extend(mine)

    deadline[0] = time.monotonic() + seconds + 1.0
    threads = [threading.Thread(target=work, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    latencies.sort()
    return latencies


def summary(xs):
    pct = lambda q: xs[min(len(xs) - 1, int(len(xs) * q))] * 1000
    return f"{len(xs)} queries, p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {xs[-1] * 1000:.1f} ms", pct(0.99)


before, _ = summary(measure())
print("alone:", before)

slow = psycopg.connect(dsn, autocommit=True)
slow_error = []


def run_slow():
    try:
        slow.execute(SLOW).fetchone()
        slow_error.append("the slow query finished")
    except psycopg.errors.QueryCanceled:
        pass
    except Exception as e:  # noqa: BLE001
        slow_error.append(repr(e))


thread = threading.Thread(target=run_slow)
thread.start()
time.sleep(0.5)
during, p99 = summary(measure())
still_running = thread.is_alive()
slow.cancel()
thread.join(30)
print("with a slow query running:", during)
assert still_running, "the slow query ended before the sessions did"
assert not slow_error, slow_error
assert p99 <= max_p99_ms, f"p99 {p99:.1f} ms is over {max_p99_ms} ms"
for c in conns + [slow]:
    c.close()
print("ok")
