"""Memory and idle limits (#22 item 7), against `sluice serve
--query-memory-mb 32 --idle-timeout 2s`:

* an ad-hoc query whose result or aggregate would hold more than the query
  memory fails with 53200, and the next query runs;
* `lpad('', 2147483647, 'x')` is 54000 before any allocation;
* a connection idle for longer than --idle-timeout is closed, one that
  keeps working is not.

Prints what it saw; exits non-zero on a failed check.

    python memory_idle_check.py PORT
"""
import sys
import time

import psycopg

port = int(sys.argv[1])
dsn = f"host=127.0.0.1 port={port} dbname=sluice user=limits"


def fails(conn, sql, sqlstate):
    try:
        conn.execute(sql).fetchall()
    except psycopg.Error as e:
        assert e.sqlstate == sqlstate, (sql, e.sqlstate, str(e))
        print(f"{sqlstate}: {str(e).strip().splitlines()[0][:140]}")
        return
    raise AssertionError(f"ran: {sql}")


with psycopg.connect(dsn, autocommit=True) as c:
    # 100 MB of result.
    fails(c, "SELECT repeat('x', 1000) AS pad FROM generate_series(1, 100000)", "53200")
    # A hash aggregate over 100 MB of distinct keys.
    fails(c, "SELECT count(*) FROM (SELECT DISTINCT repeat(CAST(g AS TEXT), 100) AS p "
             "FROM generate_series(1, 200000) AS t(g)) s", "53200")
    assert c.execute("SELECT count(*) FROM generate_series(1, 1000)").fetchone()[0] == 1000
    print("the next query runs")
    fails(c, "SELECT lpad('', 2147483647, 'x')", "54000")
    fails(c, "SELECT repeat('ab', 1000000000)", "54000")
    assert c.execute("SELECT lpad('7', 3, '0')").fetchone()[0] == "007"

idle = psycopg.connect(dsn, autocommit=True)
busy = psycopg.connect(dsn, autocommit=True)
for _ in range(6):
    time.sleep(0.6)
    busy.execute("SELECT 1")
try:
    idle.execute("SELECT 1")
    raise AssertionError("an idle connection outlived --idle-timeout")
except psycopg.OperationalError as e:
    print("idle connection closed:", str(e).strip().splitlines()[0])
busy.execute("SELECT 1")
print("a working connection stays")
print("ok")
