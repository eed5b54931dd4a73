"""Runs the introspection SQL that real clients send, copied from their
source into the .sql files beside this one, against `sluice serve`, each
statement over the protocol its client uses, and prints what came back as
one JSON object: {"file/name": {"columns": [...], "rows": [[text|null]]}},
values in PostgreSQL's text form. Exits non-zero after naming every
statement that failed.

    python run.py PORT [FILE.sql ...]   (default: every .sql file here)

A file names its client's protocol in a `-- protocol:` line:

  psycopg   psycopg 3's defaults (pgcli): %s parameters bound over the
            extended protocol, a statement without them as a simple query;
  jdbc      what pgJDBC does (pgJDBC's metadata, Metabase): the extended
            protocol, `?` or `$n` parameters, a str bound as varchar and an
            int as int8 (or as {"int4": 1186} says);
  extended  the extended protocol without parameters (psqlODBC, Grafana);
  asyncpg   through asyncpg itself: parameters bound, rows read in binary;
  psql      psql's own backslash commands, run by psql -X -E: the result is
            psql's output, the SQL it echoed included, in one row.

Each statement starts with `-- name: NAME`; the `--` lines right after it
say where it comes from (`-- source:`) and give its parameters as JSON
(`-- params: [...]`); the statement is everything up to the next name.
A known gap is marked `-- expect error: TEXT`: the statement must fail
with TEXT in its error (and the runner says so when it stops failing).
"""
import asyncio
import json
import pathlib
import re
import subprocess
import sys

import psycopg
from psycopg import pq

HERE = pathlib.Path(__file__).parent
VARCHAR, INT8, BOOL = 1043, 20, 16
# Parameters given as {"int4": 1186} are bound with that type.
TYPES = {"int4": 23, "int8": 20, "oid": 26, "varchar": 1043, "text": 25}


def statements(path):
    """(name, params, sql) for each statement of a file, and its protocol."""
    text = path.read_text()
    protocol = re.search(r"^-- protocol: (\w+)$", text, re.M).group(1)
    out, expected = [], {}
    for block in re.split(r"^-- name: ", text, flags=re.M)[1:]:
        lines = block.split("\n")
        name, params, i = lines[0].strip(), None, 1
        while i < len(lines) and lines[i].startswith("--"):
            if lines[i].startswith("-- params: "):
                params = json.loads(lines[i][len("-- params: "):])
            if lines[i].startswith("-- expect error: "):
                expected[name] = lines[i][len("-- expect error: "):].strip()
            i += 1
        out.append((name, params, "\n".join(lines[i:]).strip("\n")))
    return protocol, out, expected


def numbered(sql):
    """pgJDBC's rewrite of `?` placeholders to $1, $2… (not in quotes)."""
    out, n, quote = [], 0, None
    for c in sql:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "?":
            n += 1
            c = f"${n}"
        out.append(c)
    return "".join(out)


def jdbc_param(v):
    if isinstance(v, dict):
        [(ty, value)] = v.items()
        return str(value).encode(), TYPES[ty]
    if isinstance(v, bool):
        return (b"t" if v else b"f"), BOOL
    if isinstance(v, int):
        return str(v).encode(), INT8
    return str(v).encode(), VARCHAR


def text_rows(res):
    """Columns and rows of a PGresult, values as the server sent them."""
    columns = [res.fname(i).decode() for i in range(res.nfields)]
    rows = [
        [None if v is None else v.decode() for v in
         (res.get_value(r, c) for c in range(res.nfields))]
        for r in range(res.ntuples)
    ]
    return {"columns": columns, "rows": rows}


def check(res):
    if res.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK,
                          pq.ExecStatus.EMPTY_QUERY):
        state = res.error_field(pq.DiagnosticField.SQLSTATE) or b""
        raise RuntimeError(f"{state.decode()}: {res.error_message.decode().strip()}")
    return text_rows(res)


def run_libpq(conn, protocol, params, sql):
    pgconn = conn.pgconn
    if protocol == "psycopg":
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return check(cur.pgresult)
    if params is None and protocol == "simple":
        return check(pgconn.exec_(sql.encode()))
    values, types = zip(*map(jdbc_param, params or [])) if params else ((), ())
    return check(pgconn.exec_params(numbered(sql).encode(), list(values), list(types)))


def pg_text(v):
    """An asyncpg value in PostgreSQL's text form (enough to compare)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return "{" + ",".join("NULL" if x is None else str(pg_text(x)) for x in v) + "}"
    return str(v)


def run_psql(port, items):
    results, failures = {}, []
    for name, _, command in items:
        out = subprocess.run(
            ["psql", "-X", "-E", "-h", "127.0.0.1", "-p", str(port), "-d", "sluice",
             "-v", "VERBOSITY=verbose", "-P", "pager=off", "-c", command],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0 or "ERROR" in out.stderr:
            failures.append((name, out.stderr.strip()))
        else:
            results[name] = {"columns": ["output"], "rows": [[out.stdout]]}
    return results, failures


async def run_asyncpg(port, items):
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="sluice", database="sluice")
    results, failures = {}, []
    try:
        for name, params, sql in items:
            try:
                if params is None:
                    await conn.execute(sql)
                    results[name] = {"columns": [], "rows": []}
                else:
                    stmt = await conn.prepare(sql)
                    rows = await stmt.fetch(*params)
                    results[name] = {
                        "columns": [a.name for a in stmt.get_attributes()],
                        "rows": [[pg_text(v) for v in r] for r in rows],
                    }
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append((name, f"{type(e).__name__}: {e}"))
    finally:
        await conn.close()
    return results, failures


def main():
    port = int(sys.argv[1])
    files = [HERE / f for f in sys.argv[2:]] or sorted(HERE.glob("*.sql"))
    results, failures = {}, []
    for path in files:
        protocol, items, expected = statements(path)
        if protocol == "asyncpg":
            got, failed = asyncio.run(run_asyncpg(port, items))
        elif protocol == "psql":
            got, failed = run_psql(port, items)
        else:
            got, failed = {}, []
            conninfo = f"host=127.0.0.1 port={port} dbname=sluice user=sluice"
            with psycopg.connect(conninfo, autocommit=True) as conn:
                for name, params, sql in items:
                    try:
                        got[name] = run_libpq(conn, protocol, params, sql)
                    except Exception as e:  # noqa: BLE001
                        failed.append((name, f"{type(e).__name__}: {e}"))
        for name, error in failed:
            if expected.get(name, "\0") not in error:
                failures.append((f"{path.stem}/{name}", error))
        for name in expected:
            if name in got:
                failures.append((f"{path.stem}/{name}", "succeeds now: drop its `-- expect error`"))
                del got[name]
        results.update({f"{path.stem}/{k}": v for k, v in got.items()})
    print(json.dumps(results, indent=1))
    for name, error in failures:
        print(f"FAILED {name}: {error}", file=sys.stderr)
    sys.exit(1 if failures else 0)


main()
