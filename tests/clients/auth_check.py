"""Passwords and TLS as clients meet them (#22 items 2 and 3), against a
`sluice serve --auth password --tls-cert … --tls-key … [--tls-required]`
started with SLUICE_PASSWORD=PASSWORD:

* psql, psycopg and node-postgres log in with SCRAM-SHA-256; a wrong
  password is 28P01, none is refused;
* the superuser creates a user, who can read but not manage users (42501)
  and may change their own password;
* with TLS: sslmode=require and verify-full (the test CA) work; with
  --tls-required, a plaintext client is refused (28000).

Prints what it saw; exits non-zero on a failed check.

    python auth_check.py PORT PASSWORD CA_FILE TLS_REQUIRED(0|1) NODE_PATH
"""
import json
import os
import subprocess
import sys

import psycopg

port, password, ca, tls_required, node_path = sys.argv[1:6]
tls_required = tls_required == "1"
host = "127.0.0.1"


def dsn(user="sluice", pw=password, sslmode="require", **more):
    parts = dict(host="localhost", port=port, dbname="sluice", user=user, sslmode=sslmode, **more)
    if pw is not None:
        parts["password"] = pw
    return parts


def refused(what, **kw):
    try:
        psycopg.connect(**dsn(**kw), autocommit=True).close()
    except psycopg.OperationalError as e:
        print(f"{what}: {str(e).strip().splitlines()[-1]}")
        return str(e)
    raise AssertionError(f"{what}: connected")


# psycopg: right, wrong and missing passwords.
with psycopg.connect(**dsn(), autocommit=True) as c:
    assert c.execute("SELECT current_user, 41 + 1").fetchone()[1] == 42
    assert c.pgconn.ssl_in_use, "not encrypted"
    print("psycopg: logged in over TLS")
err = refused("wrong password", pw="not-it")
assert "password authentication failed" in err, err
err = refused("no password", pw=None)
assert "password" in err, err
err = refused("unknown user", user="mallory", pw="x")
assert "password authentication failed" in err, err

# TLS modes.
with psycopg.connect(**dsn(sslmode="verify-full", sslrootcert=ca), autocommit=True) as c:
    assert c.pgconn.ssl_in_use
    print("verify-full against the test CA: ok")
if tls_required:
    err = refused("plaintext", sslmode="disable")
    assert "requires TLS" in err, err

# Users: created by the superuser; a plain user may read and change their
# own password, not manage users.
with psycopg.connect(**dsn(), autocommit=True) as admin:
    admin.execute("CREATE USER bi WITH PASSWORD 'bi-pass'")
    try:
        admin.execute("CREATE USER bi WITH PASSWORD 'again'")
        raise AssertionError("a second bi was created")
    except psycopg.errors.DuplicateObject as e:
        print("duplicate user:", e.sqlstate)
with psycopg.connect(**dsn(user="bi", pw="bi-pass"), autocommit=True) as bi:
    assert bi.execute("SELECT 1").fetchone() == (1,)
    try:
        bi.execute("CREATE USER eve WITH PASSWORD 'x'")
        raise AssertionError("a plain user created a user")
    except psycopg.errors.InsufficientPrivilege as e:
        print("plain user managing users:", e.sqlstate)
    bi.execute("ALTER USER bi WITH PASSWORD 'bi-new'")
refused("old password after ALTER", user="bi", pw="bi-pass")
with psycopg.connect(**dsn(user="bi", pw="bi-new"), autocommit=True):
    print("new password works")

# psql, with PGPASSWORD, over TLS.
env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="require")
out = subprocess.run(
    ["psql", "-X", "-h", "localhost", "-p", port, "-U", "sluice", "-d", "sluice", "-tA", "-c", "SELECT 6 * 7"],
    env=env, capture_output=True, text=True, timeout=30,
)
assert out.returncode == 0 and out.stdout.strip() == "42", (out.stdout, out.stderr)
out = subprocess.run(
    ["psql", "-X", "-w", "-h", "localhost", "-p", port, "-U", "sluice", "-d", "sluice", "-c", "SELECT 1"],
    env=dict(os.environ, PGSSLMODE="require"), capture_output=True, text=True, timeout=30,
)
assert out.returncode != 0 and "password" in out.stderr, out.stderr
print("psql: password from PGPASSWORD works; none is refused")

# node-postgres with SCRAM over TLS.
script = """
const { Client } = require('pg');
const fs = require('fs');
(async () => {
  const c = new Client({ host: 'localhost', port: %s, database: 'sluice', user: 'sluice',
                         password: process.env.PW, ssl: { ca: fs.readFileSync(process.env.CA) } });
  await c.connect();
  const r = await c.query('SELECT 7 * 6 AS n');
  console.log(JSON.stringify(r.rows));
  await c.end();
  const bad = new Client({ host: 'localhost', port: %s, database: 'sluice', user: 'sluice',
                           password: 'wrong', ssl: { ca: fs.readFileSync(process.env.CA) } });
  try { await bad.connect(); console.log('connected'); } catch (e) { console.log(e.code); }
})().catch(e => { console.error(e); process.exit(1); });
""" % (port, port)
out = subprocess.run(
    ["node", "-e", script], env=dict(os.environ, NODE_PATH=node_path, PW=password, CA=ca),
    capture_output=True, text=True, timeout=60,
)
assert out.returncode == 0, out.stderr
lines = out.stdout.split()
assert json.loads(lines[0]) == [{"n": "42"}], lines  # int8 comes as text
assert lines[1] == "28P01", lines
print("node-postgres: SCRAM over TLS ok; wrong password", lines[1])

with psycopg.connect(**dsn(), autocommit=True) as admin:
    admin.execute("DROP USER bi")
refused("dropped user", user="bi", pw="bi-new")
print("ok")
