"""Secrets and the connector sandbox over the wire (#22 items 5 and 6),
against `sluice serve --allow-hosts 127.0.0.1,localhost` started with
SLUICE_TEST_KAFKA_PW in its environment:

* Kafka SASL options are accepted as librdkafka properties; a password
  given as `secret('SLUICE_TEST_KAFKA_PW')` comes from the server's
  environment, and one given as a literal is shown as '********' in
  pg_stat_activity (so is CREATE USER … PASSWORD);
* secret() of an unset variable is 22023 naming it; only a superuser may
  use secret() or librdkafka properties that name local files (42501);
* a host outside --allow-hosts is 42501.

Prints what it saw; exits non-zero on a failed check.

    python secrets_check.py PORT
"""
import sys

import psycopg

port = sys.argv[1]
LITERAL = "hunter3-literal"


def connect(user="sluice"):
    return psycopg.connect(host="127.0.0.1", port=port, dbname="sluice", user=user, autocommit=True)


def fails(conn, sql, sqlstate, *words):
    try:
        conn.execute(sql)
    except psycopg.Error as e:
        assert e.sqlstate == sqlstate, (sql, e.sqlstate, str(e))
        for w in words:
            assert w in str(e), (sql, str(e))
        print(f"{sqlstate} for {sql[:60]!r}…: {str(e).strip().splitlines()[0]}")
        return str(e)
    raise AssertionError(f"allowed: {sql}")


sasl = ("properties.security.protocol = 'SASL_PLAINTEXT', properties.sasl.mechanism = 'SCRAM-SHA-256', "
        "properties.sasl.username = 'sluice'")
with connect() as admin, connect() as watcher:
    admin.execute("CREATE SOURCE g (k BIGINT) WITH (connector = 'datagen', rows_per_second = '10')")
    admin.execute("CREATE MATERIALIZED VIEW v AS SELECT k FROM g")
    # The broker is not there: the sink is created at once and retries.
    admin.execute(f"CREATE SINK from_env FROM v WITH (connector = 'kafka', topic = 't1', "
                  f"bootstrap_servers = '127.0.0.1:1', {sasl}, "
                  f"properties.sasl.password = secret('SLUICE_TEST_KAFKA_PW'))")
    admin.execute(f"CREATE SINK literal FROM v WITH (connector = 'kafka', topic = 't2', "
                  f"bootstrap_servers = 'localhost:1', {sasl}, properties.sasl.password = '{LITERAL}')")
    pid = admin.execute("SELECT pg_backend_pid()").fetchone()[0]
    admin.execute(f"CREATE SINK literal2 FROM v WITH (connector = 'kafka', topic = 't3', "
                  f"bootstrap_servers = 'localhost:1', {sasl}, properties.sasl.password = '{LITERAL}')")
    seen = watcher.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
    print("pg_stat_activity shows:", seen)
    assert LITERAL not in seen and "properties.sasl.password = '********'" in seen, seen
    admin.execute("CREATE USER bi WITH PASSWORD 'pw-literal-1'")
    seen = watcher.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
    assert "pw-literal-1" not in seen and "PASSWORD '********'" in seen, seen
    for sql in ["SHOW SINKS", "SELECT * FROM sluice.pipelines", "EXPLAIN ANALYZE SINK literal",
                f"EXPLAIN CREATE SINK x FROM v WITH (connector = 'kafka', topic = 't', "
                f"bootstrap_servers = 'localhost:1', properties.sasl.password = '{LITERAL}')"]:
        rows = str(admin.execute(sql).fetchall())
        assert LITERAL not in rows and "hunter2" not in rows, (sql, rows)
    fails(admin, "CREATE SINK nope FROM v WITH (connector = 'kafka', topic = 't', bootstrap_servers = '127.0.0.1:1', "
                 "properties.sasl.password = secret('SLUICE_NOT_SET_ANYWHERE'))", "22023", "SLUICE_NOT_SET_ANYWHERE")
    fails(admin, "CREATE SINK far FROM v WITH (connector = 'kafka', topic = 't', bootstrap_servers = 'evil.example:9092')",
          "42501", "evil.example", "--allow-hosts")
    fails(admin, "CREATE SOURCE s2 (line TEXT) WITH (connector = 'socket', host = '169.254.169.254', port = '80')",
          "42501", "--allow-hosts")
    admin.execute("GRANT CREATE ON DATABASE sluice TO bi")
    admin.execute("GRANT SELECT ON v TO bi")

# A plain user (under trust, a role's own privileges apply).
with connect("bi") as bi:
    fails(bi, "CREATE SINK mine FROM v WITH (connector = 'kafka', topic = 't', bootstrap_servers = '127.0.0.1:1', "
              "properties.sasl.password = secret('SLUICE_TEST_KAFKA_PW'))", "42501", "superuser")
    fails(bi, "CREATE SINK mine FROM v WITH (connector = 'kafka', topic = 't', bootstrap_servers = '127.0.0.1:1', "
              "properties.ssl.key.location = '/etc/ssl/private/key.pem')", "42501", "superuser")
    bi.execute("CREATE SINK mine FROM v WITH (connector = 'kafka', topic = 't4', bootstrap_servers = '127.0.0.1:1')")
    print("a plain user creates a sink without secrets or files")
print("ok")
