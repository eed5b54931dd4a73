"""psycopg 3 against `sluice serve`: parameters (server-side binding, prepared
statements, binary results), transactions, settings, types, SUBSCRIBE through
COPY and through DECLARE / FETCH. Exits non-zero on the first failed check.

    python psycopg_check.py PORT
"""
import datetime
import decimal
import sys
import threading
import time

import psycopg

port = int(sys.argv[1])
dsn = f"host=127.0.0.1 port={port} dbname=sluice user=test"

# Not autocommit: psycopg wraps statements in BEGIN … COMMIT.
with psycopg.connect(dsn) as conn:
    cur = conn.cursor()
    cur.execute("SET application_name = 'psycopg-check'")
    cur.execute("SHOW application_name")
    assert cur.fetchone() == ("psycopg-check",), "SET / SHOW"
    # Server-side parameters, typed by psycopg (int8), text and binary.
    want = {("k0", 100), ("k1", 100), ("k2", 100)}
    for binary in (False, True):
        c = conn.cursor(binary=binary)
        c.execute("SELECT k, n FROM counts WHERE n >= %s AND k <> %s ORDER BY k", (100, "zz"))
        assert set(c.fetchall()) == want, f"params, binary={binary}"
    # Prepared: more than five executions (pgjdbc and psycopg switch to a
    # named server-side statement).
    for i in range(7):
        cur.execute("SELECT count(*) FROM counts WHERE n > %s", (i,), prepare=True)
        assert cur.fetchone() == (3,), "prepared execution"
    conn.commit()
    # Types, in both formats.
    query = """SELECT CAST(n AS SMALLINT) AS i2, CAST(n AS INT) AS i4, n AS i8,
                      CAST(n AS REAL) AS f4, CAST(n AS DOUBLE) AS f8,
                      CAST(s AS DECIMAL(20, 2)) AS num, n > 50 AS b, k AS t,
                      CAST('2024-01-02' AS DATE) AS d,
                      CAST('2024-01-02T03:04:05.250' AS TIMESTAMP) AS ts,
                      CAST(NULL AS BIGINT) AS nothing
               FROM counts WHERE k = 'k1'"""
    for binary in (False, True):
        c = conn.cursor(binary=binary)
        c.execute(query)
        row = c.fetchone()
        expect = (100, 100, 100, 100.0, 100.0, decimal.Decimal(sum(range(1, 300, 3))).quantize(decimal.Decimal("0.01")),
                  True, "k1", datetime.date(2024, 1, 2),
                  datetime.datetime(2024, 1, 2, 3, 4, 5, 250000), None)
        assert row == expect, f"types binary={binary}: {row!r} != {expect!r}"
        oids = [d.type_code for d in c.description]
        assert oids == [21, 23, 20, 700, 701, 1700, 16, 25, 1082, 1114, 20], f"oids {oids}"
    conn.commit()
    # Errors carry their SQLSTATE.
    for sql, state in [("SELECT * FROM nope", "42P01"), ("SELEC 1", "42601"),
                       ("SELECT nosuch FROM counts", "42703"), ("SELECT * FROM ev", "0A000")]:
        try:
            cur.execute(sql)
            raise AssertionError(f"{sql} did not fail")
        except psycopg.Error as e:
            assert e.sqlstate == state, f"{sql}: {e.sqlstate} {e}"
            conn.rollback()

# SUBSCRIBE, live: the snapshot first, then changes as they happen.
with psycopg.connect(dsn, autocommit=True) as conn:
    cur = conn.cursor()
    cur.execute("DECLARE c CURSOR FOR SUBSCRIBE TO live")
    cur.execute("FETCH 100 c")
    first = cur.fetchall()
    assert [d.name for d in cur.description][:2] == ["sluice_ts", "op"], cur.description
    assert first and all(r[1] == "insert" for r in first[:1]), first
    started = time.time()
    cur.execute("FETCH 100 c WITH (timeout = '10s')")
    later = cur.fetchall()
    assert later and time.time() - started < 10, "FETCH waits for new rows"
    assert any(r[1] == "update" for r in later), later
    cur.execute("CLOSE c")
    # FETCH with a timeout and nothing to read returns no rows.
    cur.execute("DECLARE q CURSOR FOR SUBSCRIBE (SELECT k, n FROM live WHERE k = 'none') WITH (snapshot = false)")
    started = time.time()
    cur.execute("FETCH 10 q WITH (timeout = '300ms')")
    assert cur.fetchall() == [] and time.time() - started >= 0.25, "timeout"

    # COPY (SUBSCRIBE …) TO STDOUT streams rows as they happen; cancel ends it.
    seen = []
    def cancel_later():
        time.sleep(2)
        conn.cancel()
    threading.Thread(target=cancel_later).start()
    try:
        with cur.copy("COPY (SUBSCRIBE (SELECT k, n FROM live WHERE n > 0)) TO STDOUT") as copy:
            for row in copy.rows():
                seen.append((time.time(), row))
        raise AssertionError("COPY ended without the cancel")
    except psycopg.errors.QueryCanceled:
        pass
    assert len(seen) >= 3, seen
    # Rows arrived over time, not all at the end.
    assert seen[-1][0] - seen[0][0] > 0.5, seen

# A statement of only comments (Grafana's health check) is an empty query.
with psycopg.connect(dsn, autocommit=True) as conn:
    cur = conn.cursor()
    cur.execute("-- ping")
    assert cur.description is None, "-- ping"
    cur.execute("/* ping */")
    assert cur.description is None, "/* ping */"
    cur.execute("SELECT pg_typeof(now()), pg_typeof(CAST(1 AS INT)), pg_typeof('a'::text)")
    assert cur.fetchone() == ("timestamp with time zone", "integer", "text")

# Bulk reads: COPY of a query or a view in every format, and server-side
# (named) cursors over a SELECT.
with psycopg.connect(dsn) as conn:
    cur = conn.cursor()
    want = [("k0", 100), ("k1", 100), ("k2", 100)]
    with cur.copy("COPY (SELECT k, n FROM counts ORDER BY k) TO STDOUT") as copy:
        copy.set_types(["text", "int8"])
        assert list(copy.rows()) == want, "COPY text"
    with cur.copy("COPY (SELECT k, n FROM counts ORDER BY k) TO STDOUT (FORMAT binary)") as copy:
        copy.set_types(["text", "int8"])
        assert list(copy.rows()) == want, "COPY binary"
    with cur.copy("COPY counts (k, n) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
        text = b"".join(bytes(b) for b in copy).decode()
    lines = text.splitlines()
    assert lines[0] == "k,n" and sorted(lines[1:]) == ["k0,100", "k1,100", "k2,100"], text
    conn.commit()
    named = conn.cursor(name="bulk")
    named.itersize = 2
    named.execute("SELECT k, n FROM counts ORDER BY k")
    assert named.fetchmany(2) == want[:2], "named cursor, first page"
    assert named.fetchall() == want[2:], "named cursor, the rest"
    named.close()
    conn.commit()
    # The cursor closed with its transaction: the name is free again.
    again = conn.cursor(name="bulk")
    again.execute("SELECT count(*) FROM counts")
    assert again.fetchone() == (3,)
    again.close()
print("psycopg: all checks passed")
