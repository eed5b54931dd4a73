"""asyncpg against `sluice serve`: a pool (its connection reset between
uses), and parameterised queries whose parameter types the server infers
from their use (asyncpg encodes each argument by the type Describe gives:
int, timestamp, array). Exits non-zero on the first failed check.

    python asyncpg_check.py PORT
"""
import asyncio
import datetime
import sys

import asyncpg

port = int(sys.argv[1])


async def main():
    pool = await asyncpg.create_pool(
        host="127.0.0.1", port=port, database="sluice", user="test", min_size=2, max_size=4
    )
    # Several uses of few connections: each release resets the connection
    # (pg_advisory_unlock_all, CLOSE ALL, UNLISTEN *, RESET ALL).
    for _ in range(3):
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT k, n FROM counts WHERE n >= $1 AND k <> $2 ORDER BY k", 100, "zz"
            )
            assert [tuple(r) for r in rows] == [("k0", 100), ("k1", 100), ("k2", 100)], rows
    async with pool.acquire() as conn:
        # Types from the use: a cast, a comparison, ANY over an array.
        assert await conn.fetchval("SELECT $1::bigint + 1", 41) == 42
        assert await conn.fetchval("SELECT count(*) FROM counts WHERE n = $1", 100) == 3
        assert await conn.fetchval("SELECT count(*) FROM counts WHERE s > $1", 14900.5) == 2
        assert (
            await conn.fetchval("SELECT count(*) FROM counts WHERE k = ANY($1)", ["k0", "k2"]) == 2
        )
        stamp = datetime.datetime(2026, 3, 5, 14, 7, 9, 250000)
        assert await conn.fetchval("SELECT $1::timestamp", stamp) == stamp
        day = datetime.date(2026, 3, 5)
        assert await conn.fetchval("SELECT $1::date + 1", day) == datetime.date(2026, 3, 6)
        # A parameter nothing types is text, as in PostgreSQL.
        assert await conn.fetchval("SELECT $1", "hello") == "hello"
        # A prepared statement, run many times with other arguments.
        stmt = await conn.prepare("SELECT n FROM counts WHERE k = $1")
        for k in ("k0", "k1", "k2"):
            assert await stmt.fetchval(k) == 100
        assert await stmt.fetchval("none") is None
        # Errors keep their SQLSTATE.
        try:
            await conn.fetchval("SELECT 1 / $1::bigint", 0)
            raise AssertionError("1/0 did not fail")
        except asyncpg.PostgresError as e:
            assert e.sqlstate == "22012", e.sqlstate
    await pool.close()

    # SQLAlchemy's async engine over asyncpg: its dialect's setup on connect
    # (type codecs for json/jsonb, found through pg_type) and bound
    # parameters of each type.
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"postgresql+asyncpg://test@127.0.0.1:{port}/sluice")
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT k, n FROM counts WHERE n >= :n AND k = ANY(:ks) ORDER BY k"),
            {"n": 100, "ks": ["k1", "k2"]},
        )
        assert [tuple(r) for r in result] == [("k1", 100), ("k2", 100)]
        when = datetime.datetime(2026, 1, 2, 3, 4, 5)
        result = await conn.execute(text("SELECT CAST(:t AS TIMESTAMP) AS t"), {"t": when})
        assert result.scalar() == when
    await engine.dispose()
    print("asyncpg: all checks passed")


asyncio.run(main())
