"""Wire fuzz (#22): thousands of malformed and random PostgreSQL protocol
messages against `sluice serve` — startup packets of any length (2 GB
included), SSLRequest and CancelRequest with garbage around them, and after
a valid startup, Parse/Bind/Execute/Describe/Sync/Query/Close/CopyData …
with random bodies and lying lengths. Every so often, and at the end, a
real client must still connect and get an answer; the server's RSS must
come back down. Prints a summary; exits non-zero on a failed check.

    python wire_fuzz.py PORT SERVER_PID ROUNDS SEED
"""
import random
import socket
import struct
import sys
import time

import psycopg

port, pid, rounds, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
dsn = f"host=127.0.0.1 port={port} dbname=sluice user=fuzz"


def rss_mb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def alive(what):
    deadline = time.monotonic() + 20
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as c:
                assert c.execute("SELECT 40 + 2").fetchone() == (42,)
                return
        except Exception as e:  # noqa: BLE001 - retried, then reported
            if time.monotonic() > deadline:
                raise AssertionError(f"server not answering after {what}: {e!r}")
            time.sleep(0.2)


def startup(user="fuzz"):
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", "sluice")):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def cstr(n):
    return bytes(rng.choice(b"abcdefSELECT $1;()\xc3\xa9\xff") for _ in range(n)) + b"\0"


def random_body(kind):
    """A plausible-looking but broken body for message `kind`."""
    pick = rng.random()
    if kind == b"P":
        n = rng.choice([0, 1, 1000, 32767, 65535, -1 & 0xFFFF])
        body = cstr(rng.randint(0, 5)) + rng.choice([b"SELECT $1\0", b"SELECT 1\0", cstr(30), b"\0"])
        body += struct.pack("!H", n) + b"".join(struct.pack("!I", rng.getrandbits(32)) for _ in range(min(n, rng.randint(0, 3))))
        return body
    if kind == b"B":
        body = cstr(rng.randint(0, 3)) + cstr(rng.randint(0, 3))
        nf = rng.choice([0, 1, 2, 32767, 65535])
        body += struct.pack("!H", nf) + b"".join(struct.pack("!H", rng.randint(0, 2)) for _ in range(min(nf, 3)))
        npar = rng.choice([0, 1, 65535, 2])
        body += struct.pack("!H", npar)
        for _ in range(min(npar, 3)):
            ln = rng.choice([-1, 0, 4, 0x7FFFFFFF, -2])
            body += struct.pack("!i", ln) + bytes(rng.getrandbits(8) for _ in range(max(0, min(ln, 8))))
        body += struct.pack("!H", rng.choice([0, 1, 65535])) + struct.pack("!H", rng.randint(0, 1))
        return body
    if kind == b"E":
        return cstr(rng.randint(0, 3)) + struct.pack("!i", rng.choice([0, 1, -1, 2**31 - 1, -2**31]))
    if kind in (b"D", b"C"):
        return rng.choice([b"S", b"P", b"X", b"\0"]) + cstr(rng.randint(0, 4))
    if kind == b"Q":
        return rng.choice([
            b"SELECT " + b"+".join([b"1"] * rng.randint(1, 3000)),
            b"SELECT $99999999999",
            b"SET \xc3\xa9\xc3\xa9 = 1",
            b"SUBSCRIBE \xe6\x97\xa5\xe6\x9c\xac",
            b"SELECT INTERVAL 'abc'",
            bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))),
        ]) + b"\0"
    if pick < 0.5:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    return b""


def frame(kind, body):
    lie = rng.random()
    if lie < 0.1:
        length = rng.choice([0, 1, 3, 2**31 - 1, 2**32 - 1, 0x40000000])
    elif lie < 0.2:
        length = len(body) + 4 + rng.randint(1, 100)
    else:
        length = len(body) + 4
    return kind + struct.pack("!I", length & 0xFFFFFFFF) + body


def case():
    """One connection's bytes."""
    c = rng.random()
    if c < 0.15:  # a startup packet of any length, or noise
        return rng.choice([
            struct.pack("!I", rng.choice([0, 4, 7, 2**31 - 1, 0xFFFFFFFF, 10001])) + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))),
            bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))),
        ])
    if c < 0.25:  # SSLRequest / GSSENCRequest, then garbage
        code = rng.choice([80877103, 80877104])
        return struct.pack("!II", 8, code) + rng.choice([b"", startup(), bytes(rng.getrandbits(8) for _ in range(20))])
    if c < 0.32:  # CancelRequest with random keys, of any length
        return struct.pack("!II", rng.choice([16, 12, 100]), 80877102) + struct.pack("!ii", rng.getrandbits(31), rng.getrandbits(31))
    if c < 0.37:  # a startup with wrong protocol or broken parameters
        return struct.pack("!II", 8 + rng.randint(0, 30), rng.choice([0, 196607, 196610, 131072, 0xFFFFFFFF])) + cstr(rng.randint(0, 20))
    data = startup()
    for _ in range(rng.randint(1, 8)):
        kind = rng.choice([b"P", b"B", b"E", b"D", b"S", b"H", b"C", b"Q", b"X", b"F", b"d", b"c", b"f", b"p", b"z", b"\0"])
        data += frame(kind, random_body(kind))
    return data


def send(data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(1.0)
        got = 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += len(chunk)
            if got > 10_000_000:
                break
    except (socket.timeout, ConnectionError, OSError):
        pass
    finally:
        s.close()


alive("start")
# A first round warms the server up (session buffers, planner caches, the
# allocator's arenas and its 32 MB trim threshold): memory held after it
# is the baseline, and the cases after it must not add to it.
for i in range(500):
    send(case())
alive("the warm-up")
time.sleep(1.0)
before = rss_mb()
peak = before
started = time.monotonic()
for i in range(rounds):
    send(case())
    if i % 250 == 249:
        alive(f"{i + 1} cases")
        peak = max(peak, rss_mb())
alive("the last case")
time.sleep(2.0)
after = rss_mb()
print(f"{rounds} cases in {time.monotonic() - started:.1f}s; RSS {before:.1f} MB before, peak {peak:.1f}, {after:.1f} after")
assert after - before < 20, f"RSS grew by {after - before:.1f} MB"
print("ok")
