"""Roles and privileges as clients meet them (#22 item 4), against a
`sluice serve --auth password --tls-cert … --tls-key …` started with
SLUICE_PASSWORD=PASSWORD:

* a read-only role for BI tools: a NOLOGIN role granted SELECT on one
  view, and a user who is a member of it, can SELECT and SUBSCRIBE that
  view, and gets 42501 on another view, on CREATE, DROP and INSERT
  (psycopg, node-postgres, pgJDBC with TLS and SCRAM);
* a developer granted CREATE on the database owns what they create, grants
  on it, and cannot drop what others own;
* psql's \\du and \\dp, and has_table_privilege, show the roles and grants;
  REVOKE takes a grant back; a NOLOGIN role cannot connect.

Prints what it saw; exits non-zero on a failed check.

    python roles_check.py PORT PASSWORD CA_FILE NODE_PATH JDBC_JAR JAVA_FILE
"""
import os
import subprocess
import sys

import psycopg

port, password, ca, node_path, jdbc_jar, java_file = sys.argv[1:7]


def connect(user="sluice", pw=password):
    return psycopg.connect(host="localhost", port=port, dbname="sluice", user=user, password=pw,
                           sslmode="verify-full", sslrootcert=ca, autocommit=True)


def denied(conn, sql, expect=None):
    try:
        conn.execute(sql)
    except psycopg.errors.InsufficientPrivilege as e:
        assert e.sqlstate == "42501", e.sqlstate
        if expect:
            assert expect in str(e), (sql, str(e))
        print(f"42501 for {sql!r}: {str(e).strip()}")
        return
    raise AssertionError(f"allowed: {sql}")


with connect() as admin:
    admin.execute("CREATE SOURCE clicks (k BIGINT, v BIGINT) WITH (connector = 'datagen', "
                  "rows_per_second = '200', seed = '3')")
    admin.execute("CREATE MATERIALIZED VIEW counts AS SELECT k % 3 AS bucket, count(*) AS n FROM clicks GROUP BY k % 3")
    admin.execute("CREATE MATERIALIZED VIEW payroll AS SELECT k, v FROM clicks WHERE v > 0")
    admin.execute("CREATE ROLE readonly")
    admin.execute("GRANT SELECT ON counts TO readonly")
    admin.execute("CREATE USER bi WITH PASSWORD 'bi-pass'")
    admin.execute("GRANT readonly TO bi")
    admin.execute("CREATE USER dev WITH PASSWORD 'dev-pass'")
    admin.execute("GRANT CREATE ON DATABASE sluice TO dev")
    admin.execute("GRANT SELECT ON clicks TO dev")

# The read-only user.
with connect("bi", "bi-pass") as bi:
    rows = bi.execute("SELECT bucket, n FROM counts ORDER BY bucket").fetchall()
    print("bi reads counts:", len(rows), "rows")
    denied(bi, "SELECT * FROM payroll", "permission denied for materialized view payroll")
    denied(bi, "SELECT count(*) FROM clicks", "permission denied for source clicks")
    denied(bi, "CREATE MATERIALIZED VIEW mine AS SELECT bucket FROM counts", "permission denied for database")
    denied(bi, "DROP MATERIALIZED VIEW counts", "must be owner of materialized view counts")
    denied(bi, "INSERT INTO counts VALUES (9, 9)", "permission denied for materialized view counts")
    denied(bi, "SUBSCRIBE payroll")
    denied(bi, "DECLARE c CURSOR FOR SUBSCRIBE payroll")
    denied(bi, "GRANT SELECT ON payroll TO bi", "must be owner")
    denied(bi, "CREATE USER eve WITH PASSWORD 'x'")
    denied(bi, "SELECT * FROM sluice.errors", "sluice.errors")
    with connect() as admin:
        admin.execute("SELECT 42")
        others = bi.execute("SELECT DISTINCT query FROM pg_stat_activity WHERE usename = 'sluice'").fetchall()
        assert others == [("<insufficient privilege>",)], others
        mine = bi.execute("SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()[0]
        assert "pg_stat_activity" in mine, mine
        distinct = bi.execute("SELECT count(DISTINCT pid) = count(*) FROM pg_stat_activity").fetchone()[0]
        assert distinct, "sessions that logged in with a password share a pid"
        print("pg_stat_activity hides other roles' statements from bi")
    cur = bi.cursor()
    cur.execute("DECLARE live CURSOR FOR SUBSCRIBE counts")
    cur.execute("FETCH 10 live WITH (timeout = '5s')")
    got = cur.fetchall()
    assert got, "SUBSCRIBE gave nothing"
    print("bi subscribes to counts:", got[0])
    cur.execute("CLOSE live")
    assert bi.execute("SELECT current_user, has_table_privilege('counts', 'SELECT'), "
                      "has_table_privilege('payroll', 'select'), "
                      "has_table_privilege('dev', 'payroll', 'select')").fetchone() == ("bi", True, False, False)

# The developer.
with connect("dev", "dev-pass") as dev:
    dev.execute("CREATE MATERIALIZED VIEW mine AS SELECT k, v FROM clicks WHERE k % 2 = 0")
    dev.execute("GRANT SELECT ON mine TO bi")
    denied(dev, "DROP MATERIALIZED VIEW counts", "must be owner of materialized view counts")
    denied(dev, "DROP SOURCE clicks", "must be owner of source clicks")
    denied(dev, "GRANT CREATE ON DATABASE sluice TO bi")
    denied(dev, "SELECT * FROM payroll")
with connect("bi", "bi-pass") as bi:
    bi.execute("SELECT count(*) FROM mine").fetchone()
    print("bi reads dev's view after dev's GRANT")

# psql: \du and \dp.
env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="verify-full", PGSSLROOTCERT=ca)
def psql(*commands):
    args = ["psql", "-X", "-h", "localhost", "-p", port, "-U", "sluice", "-d", "sluice"]
    for c in commands:
        args += ["-c", c]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and not out.stderr, (out.stdout, out.stderr)
    return out.stdout
du = psql("\\du")
print(du)
bi_line = next(l for l in du.splitlines() if l.strip().startswith("bi "))
assert "{readonly}" in bi_line, bi_line
readonly_line = next(l for l in du.splitlines() if l.strip().startswith("readonly "))
assert "Cannot login" in readonly_line, readonly_line
assert "Superuser" in next(l for l in du.splitlines() if l.strip().startswith("sluice "))
dp = psql("\\dp")
print(dp)
assert "readonly=r/sluice" in dp and "dev=arwd/dev" in dp and "bi=r/dev" in dp, dp

# A role without LOGIN cannot connect.
try:
    connect("readonly", "x").close()
    raise AssertionError("a NOLOGIN role connected")
except psycopg.OperationalError as e:
    print("NOLOGIN role:", str(e).strip().splitlines()[-1])

# node-postgres as the read-only user.
script = """
const { Client } = require('pg');
const fs = require('fs');
(async () => {
  const c = new Client({ host: 'localhost', port: %s, database: 'sluice', user: 'bi',
                         password: 'bi-pass', ssl: { ca: fs.readFileSync(process.env.CA) } });
  await c.connect();
  const r = await c.query('SELECT count(*) AS n FROM counts');
  console.log(r.rows.length);
  try { await c.query('DROP MATERIALIZED VIEW counts'); console.log('dropped'); } catch (e) { console.log(e.code); }
  await c.end();
})().catch(e => { console.error(e); process.exit(1); });
""" % port
out = subprocess.run(["node", "-e", script], env=dict(os.environ, NODE_PATH=node_path, CA=ca),
                     capture_output=True, text=True, timeout=60)
assert out.returncode == 0, out.stderr
assert out.stdout.split() == ["1", "42501"], out.stdout
print("node-postgres: bi reads, DROP is 42501")

# pgJDBC with TLS (verify-full against the test CA) and SCRAM.
out = subprocess.run(["java", "-cp", jdbc_jar, java_file, port, ca, "bi", "bi-pass"],
                     capture_output=True, text=True, timeout=120)
assert out.returncode == 0, (out.stdout, out.stderr)
lines = out.stdout.split()
assert lines == ["ssl=true", "rows=1", "create=42501"], lines
print("pgJDBC: verify-full + SCRAM; bi reads, CREATE is 42501")

# REVOKE takes the grant back.
with connect() as admin:
    admin.execute("REVOKE SELECT ON counts FROM readonly")
with connect("bi", "bi-pass") as bi:
    denied(bi, "SELECT * FROM counts")
with connect() as admin:
    admin.execute("GRANT pg_read_all_data TO bi")
with connect("bi", "bi-pass") as bi:
    bi.execute("SELECT count(*) FROM payroll").fetchone()
    print("pg_read_all_data reads everything")
    denied(bi, "DROP MATERIALIZED VIEW payroll")
print("ok")
