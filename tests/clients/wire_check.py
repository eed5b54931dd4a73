"""Hostile messages at the wire level, each of which once crashed or
stalled `sluice serve`: row limits that wrap or ask for 2^31 rows, a
parameter number past the protocol's, and multi-byte text where the server
cut strings. Each must get a PostgreSQL answer, and the server must still
answer afterwards. A minimal protocol client (no driver would send these).

    python wire_check.py PORT
"""
import socket
import struct
import sys

port = int(sys.argv[1])


class Conn:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        params = b"user\0test\0database\0sluice\0\0"
        body = struct.pack("!i", 196608) + params
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        self.until_ready()

    def send(self, kind, payload=b""):
        self.sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def read(self):
        head = self.recv(5)
        kind, length = head[:1], struct.unpack("!i", head[1:])[0]
        return kind, self.recv(length - 4)

    def recv(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("server closed the connection")
            out += chunk
        return out

    def until_ready(self):
        """Messages up to ReadyForQuery, as (kind, payload)."""
        got = []
        while True:
            kind, payload = self.read()
            got.append((kind, payload))
            if kind == b"Z":
                return got

    def query(self, sql):
        self.send(b"Q", sql.encode() + b"\0")
        return self.until_ready()

    def extended(self, sql, max_rows):
        self.send(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
        self.send(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
        self.send(b"E", b"\0" + struct.pack("!i", max_rows))
        self.send(b"S")
        return self.until_ready()


def sqlstate(messages):
    for kind, payload in messages:
        if kind == b"E":
            for field in payload.split(b"\0"):
                if field[:1] == b"C":
                    return field[1:].decode()
    return None


def rows(messages):
    return [p for k, p in messages if k == b"D"]


conn = Conn()
# Row limits: 2^31-1 and -1 mean all rows; 1 suspends after one row.
for max_rows in (2147483647, -1, 0):
    got = conn.extended("SELECT k FROM counts ORDER BY k", max_rows)
    assert sqlstate(got) is None, (max_rows, got)
    assert len(rows(got)) == 3, (max_rows, got)
got = conn.extended("SELECT k FROM counts ORDER BY k", 1)
assert len(rows(got)) == 1 and any(k == b"s" for k, _ in got), got
# A parameter number no statement can have.
for sql in ("SELECT $99999999999", "SELECT $0", "SELECT $65536"):
    got = conn.extended(sql, 0)
    assert sqlstate(got) == "42P02", (sql, got)
# Multi-byte text where the server once cut strings at byte offsets.
for sql in ("SET ééééé = 1", "SUBSCRIBE 日本", "SHOW 日本語", "FETCH 日本 c", "DECLARE 日 CURSOR FOR SELECT 1"):
    got = conn.query(sql)
    assert all(k in (b"C", b"E", b"Z", b"T", b"D", b"S", b"N") for k, _ in got), (sql, got)
# Still answering.
got = conn.query("SELECT 1")
assert rows(got) and sqlstate(got) is None, got
print("wire: all checks passed")
