"""The server's limits, as a hostile or careless client meets them:
--max-connections refuses one connection too many with 53300 (and takes
connections again once one closes); a connection that never finishes its
startup is closed; a SUBSCRIBE cursor nobody fetches from is closed with an
error after its slow_reader_timeout, while the view it reads goes on.
Prints what it saw; exits non-zero on a failed check.

    python limits_check.py PORT MAX_CONNECTIONS
"""
import socket
import sys
import time

import psycopg

port = int(sys.argv[1])
limit = int(sys.argv[2])
dsn = f"host=127.0.0.1 port={port} dbname=sluice user=limits"

conns = [psycopg.connect(dsn, autocommit=True) for _ in range(limit)]
try:
    psycopg.connect(dsn, autocommit=True)
    raise AssertionError("one connection too many was accepted")
except psycopg.OperationalError as e:
    print("refused:", str(e).strip())
    assert "too many clients" in str(e), e
def sessions():
    return conns[0].execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0]


def wait_for_sessions(n):
    deadline = time.monotonic() + 10
    while sessions() != n:
        assert time.monotonic() < deadline, f"the server still counts {sessions()} sessions, not {n}"
        time.sleep(0.05)


conns.pop().close()
wait_for_sessions(limit - 1)
conns.append(psycopg.connect(dsn, autocommit=True))
print("accepted again after one closed")

# A startup that never comes: the server closes the connection itself.
conns.pop().close()
wait_for_sessions(limit - 1)
raw = socket.create_connection(("127.0.0.1", port))
raw.settimeout(10)
started = time.monotonic()
assert raw.recv(1) == b"", "the server sent something to a silent client"
waited = time.monotonic() - started
print("silent connection closed after", round(waited, 1), "s")
assert waited < 4, waited
raw.close()

main = conns[0]
main.execute(
    "CREATE SOURCE fast (k BIGINT, v BIGINT) WITH (connector = 'datagen', rows_per_second = '2000', "
    "fields.k.kind = 'sequence', fields.k.start = '1')"
)
main.execute("CREATE MATERIALIZED VIEW latest AS SELECT k, v FROM fast")
slow = conns[1]
slow.execute("BEGIN")
slow.execute("DECLARE c CURSOR FOR SUBSCRIBE TO latest WITH (slow_reader_timeout = '1s')")
first = slow.execute("FETCH 5 c").fetchall()
assert len(first) == 5, first
before = main.execute("SELECT count(*) FROM latest").fetchone()[0]
time.sleep(4)
after = main.execute("SELECT count(*) FROM latest").fetchone()[0]
print("view rows while the reader slept:", before, "->", after)
assert after > before + 100, (before, after)
try:
    while slow.execute("FETCH 1000 c").fetchall():
        pass
    raise AssertionError("the slow subscription was not closed")
except psycopg.Error as e:
    print("slow reader:", str(e).strip())
    assert "read nothing for" in str(e), e
print("ok")
