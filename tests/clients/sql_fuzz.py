"""SQL fuzz (#22): thousands of generated statements — expressions over
every type, casts, functions with wrong arguments, catalog queries, DDL
with bad options, half statements — against `sluice serve`. None may
panic the server, answer XX000 (our bug) for a user's mistake, or hang
(each gets a 10 s statement_timeout; DDL must answer within 10 s too).
Prints a summary; exits non-zero on a failed check.

    python sql_fuzz.py PORT ROUNDS SEED
"""
import random
import sys
import time
from collections import Counter

import psycopg

port, rounds, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
dsn = f"host=127.0.0.1 port={port} dbname=sluice user=fuzz"

LITERALS = [
    "1", "0", "-1", "2147483647", "9223372036854775807", "-9223372036854775808", "1.5", "1e400",
    "'abc'", "''", "'日本'", "NULL", "TRUE", "FALSE", "'2026-01-01'", "'2026-01-01 12:00:00'",
    "INTERVAL '1 hour'", "INTERVAL 'abc'", "INTERVAL '1 fortnight'", "'{\"a\": [1, 2]}'::jsonb",
    "ARRAY[1, 2, 3]", "ARRAY[]::int[]", "'1'::bigint", "'x'::int", "$1", "now()", "current_date",
    "'NaN'::float8", "'-infinity'::timestamp", "x'ff'", "'\\x00'::bytea",
]
TYPES = ["int", "bigint", "smallint", "text", "varchar(3)", "bool", "float4", "float8", "numeric(5,2)",
         "date", "timestamp", "timestamptz", "interval", "jsonb", "bytea", "int[]", "uuid", "time", "regclass"]
FUNCS = ["abs", "length", "upper", "substr", "lpad", "repeat", "to_char", "to_timestamp", "date_trunc",
         "generate_series", "unnest", "coalesce", "nullif", "greatest", "mod", "split_part", "regexp_matches",
         "jsonb_extract_path_text", "jsonb_typeof", "pg_typeof", "format", "array_length", "extract",
         "make_timestamptz", "percentile_disc", "count", "sum", "avg", "string_agg", "no_such_function",
         "date_format", "split_index", "regexp_extract", "approx_percentile", "proctime", "set_config",
         "pg_get_viewdef", "format_type", "pg_cancel_backend", "left", "right", "chr", "ascii", "md5"]
OPS = ["+", "-", "*", "/", "%", "||", "=", "<>", "<", ">=", "AND", "OR", "->", "->>", "#>>", "LIKE", "IS DISTINCT FROM", "^"]


def expr(depth=0):
    r = rng.random()
    if depth > 3 or r < 0.3:
        return rng.choice(LITERALS)
    if r < 0.5:
        return f"({expr(depth + 1)} {rng.choice(OPS)} {expr(depth + 1)})"
    if r < 0.65:
        return f"CAST({expr(depth + 1)} AS {rng.choice(TYPES)})"
    if r < 0.72:
        return f"{expr(depth + 1)}::{rng.choice(TYPES)}"
    if r < 0.8:
        return f"CASE WHEN {expr(depth + 1)} THEN {expr(depth + 1)} ELSE {expr(depth + 1)} END"
    args = ", ".join(expr(depth + 1) for _ in range(rng.randint(0, 3)))
    return f"{rng.choice(FUNCS)}({args})"


def statement():
    r = rng.random()
    if r < 0.45:
        return f"SELECT {expr()}"
    if r < 0.55:
        return f"SELECT {expr()} AS a, {expr()} AS b FROM (VALUES (1), (2)) t(x) WHERE {expr()} GROUP BY 1, 2 ORDER BY 1 LIMIT {rng.choice(['1', '-1', '0', 'NULL', '99999999999'])}"
    if r < 0.62:
        return rng.choice([
            f"SELECT {expr()} FROM v",
            f"SELECT k, count(*) FROM v GROUP BY k HAVING {expr()}",
            f"SELECT * FROM v WHERE n {rng.choice(OPS)} {expr()}",
            "SELECT * FROM pg_catalog.pg_class WHERE relname = " + rng.choice(LITERALS),
            f"SELECT * FROM information_schema.columns WHERE table_name = {rng.choice(LITERALS)}",
            "SELECT * FROM sluice.pipelines", "SELECT * FROM sluice.errors",
            f"SELECT * FROM generate_series({rng.choice(LITERALS)}, {rng.choice(LITERALS)}) LIMIT 5",
        ])
    if r < 0.75:
        name = rng.choice(["s", "v2", "k", "日本", '"x y"', "select", ""])
        return rng.choice([
            f"CREATE SOURCE {name} (a {rng.choice(TYPES)}) WITH (connector = '{rng.choice(['file', 'kafka', 'datagen', 'nope', 'socket', ''])}', {rng.choice(['path', 'topic', 'port', 'rows_per_second', 'limit'])} = {rng.choice(LITERALS)})",
            f"CREATE MATERIALIZED VIEW {name} AS SELECT {expr()} FROM v",
            f"CREATE SINK {name} FROM v WITH (connector = 'blackhole', {rng.choice(['format', 'x', 'key'])} = {rng.choice(LITERALS)})",
            f"CREATE FUNCTION {name}(a int) RETURNS int RETURN {expr()}",
            f"DROP {rng.choice(['SOURCE', 'MATERIALIZED VIEW', 'SINK', 'FUNCTION', 'TABLE', 'USER'])} {name}",
            f"EXPLAIN SELECT {expr()} FROM v",
            f"DESCRIBE {name}",
            f"SHOW {rng.choice(['sources', 'pipelines', 'time zone', 'all', name, 'statement_timeout'])}",
            f"SET {rng.choice(['timezone', 'statement_timeout', 'application_name', name])} = {rng.choice(LITERALS)}",
        ])
    if r < 0.85:
        text = statement() if rng.random() < 0.5 else f"SELECT {expr()}"
        cut = rng.randint(0, len(text))
        return text[:cut]
    return rng.choice([
        "BEGIN", "COMMIT", "ROLLBACK", "DECLARE c CURSOR FOR SELECT 1", "FETCH 5 c", "CLOSE c",
        f"SUBSCRIBE TO {rng.choice(['v', 'nope', '日本'])} WITH (snapshot = {rng.choice(LITERALS)})",
        "SELECT " + "+".join(["1"] * rng.randint(100, 3000)),
        "SELECT " + "(" * rng.randint(10, 500) + "1" + ")" * rng.randint(10, 500),
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) SELECT count(*) FROM r",
        "VALUES (1, 'a'), (2)", "TABLE v", "SELECT * FROM v, v AS w", "SELECT $1, $2",
    ])


conn = psycopg.connect(dsn, autocommit=True)
conn.execute("SET statement_timeout = '10s'")
conn.execute("CREATE SOURCE IF NOT EXISTS src (k TEXT, n BIGINT) WITH (connector = 'datagen', rows_per_second = '50', limit = '1000', seed = '7')")
conn.execute("CREATE MATERIALIZED VIEW IF NOT EXISTS v AS SELECT k, count(*) AS n FROM src GROUP BY k")
codes = Counter()
internal = []
slow = []
started = time.monotonic()
for i in range(rounds):
    sql = statement()
    t0 = time.monotonic()
    try:
        cur = conn.execute(sql, prepare=False)
        if cur.description is not None:
            cur.fetchmany(10)
        codes["ok"] += 1
    except psycopg.errors.QueryCanceled:
        codes["57014"] += 1
    except psycopg.Error as e:
        code = e.sqlstate or "none"
        codes[code] += 1
        if code == "XX000" or code == "none":
            internal.append((sql[:200], str(e).strip()[:300]))
        if conn.closed or conn.broken:
            raise AssertionError(f"the connection died on: {sql[:300]!r}: {e}")
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    took = time.monotonic() - t0
    if took > 12:
        slow.append((round(took, 1), sql[:200]))
print(f"{rounds} statements in {time.monotonic() - started:.1f}s: {dict(codes.most_common())}")
for s, e in internal[:20]:
    print("XX000:", s, "->", e)
for t, s in slow[:10]:
    print("slow:", t, "s:", s)
assert not slow, "statements ran past their timeout"
assert not internal, f"{len(internal)} statements answered XX000"
print("ok")
