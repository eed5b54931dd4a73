//! PostgreSQL's answers where clients depend on them, through real psql:
//! SQLSTATEs of errors on data, a failed transaction block, statement
//! timeouts, the session's TimeZone, and a global aggregate's one row.

use super::{Server, T};
use crate::common::wait_for;

/// psql's stderr for `sql` (run as one script, statement by statement).
fn errors(server: &Server, sql: &str) -> (String, String) {
    let out = server.psql(sql);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn errors_transactions_timeouts_and_time_zones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());

    // Errors on data carry PostgreSQL's SQLSTATE, never XX000.
    for (sql, state) in [
        ("SELECT 1/0;", "22012"),
        ("SELECT CAST('abc' AS BIGINT);", "22P02"),
        ("SELECT no_such_function(1);", "42883"),
        ("SET TIME ZONE 'Mars/Olympus';", "22023"),
    ] {
        let (_, stderr) = errors(&server, sql);
        assert!(
            stderr.contains(&format!("ERROR:  {state}:")),
            "{sql} → {stderr}"
        );
    }

    // After an error inside BEGIN, statements are refused until ROLLBACK;
    // COMMIT of a failed block rolls back.
    let (stdout, stderr) = errors(
        &server,
        "BEGIN;\nSELECT 1/0;\nSELECT 41;\nROLLBACK;\nSELECT 42;\nBEGIN;\nSELECT 1/0;\nCOMMIT;\nSELECT 43;",
    );
    assert!(
        stderr.contains("ERROR:  25P02: current transaction is aborted"),
        "{stderr}"
    );
    assert!(!stdout.contains(" 41\n"), "{stdout}");
    assert!(
        stdout.contains(" 42\n") && stdout.contains(" 43\n"),
        "{stdout}"
    );
    assert!(stdout.contains("ROLLBACK\n"), "{stdout}");
    assert_eq!(stdout.matches("COMMIT").count(), 0, "{stdout}");

    // statement_timeout cancels a long query (57014); the session goes on.
    let started = std::time::Instant::now();
    let (stdout, stderr) = errors(
        &server,
        "SET statement_timeout = 300;\nSELECT count(*) FROM generate_series(1, 50000000000);\nSELECT 'still here';",
    );
    assert!(
        stderr.contains("ERROR:  57014: canceling statement due to statement timeout"),
        "{stderr}"
    );
    assert!(stdout.contains("still here"), "{stdout}");
    assert!(started.elapsed() < T, "the timeout cut the query short");

    // now() is a timestamptz; SET TIME ZONE changes how one is shown.
    let out = server.psql_ok(
        "SELECT now() AS t \\gdesc\n\
         SELECT CAST('2026-07-01T12:00:00Z' AS TIMESTAMPTZ) AS utc;\n\
         SET TIME ZONE 'Europe/Paris';\nSHOW TIME ZONE;\n\
         SELECT CAST('2026-07-01T12:00:00Z' AS TIMESTAMPTZ) AS paris;\n\
         SET timezone = '-03:00';\n\
         SELECT CAST('2026-07-01T12:00:00Z' AS TIMESTAMPTZ) AS minus3;",
    );
    assert!(out.contains("timestamp with time zone"), "{out}");
    assert!(out.contains("2026-07-01 12:00:00+00"), "{out}");
    assert!(out.contains("Europe/Paris"), "{out}");
    assert!(out.contains("2026-07-01 14:00:00+02"), "{out}");
    assert!(out.contains("2026-07-01 09:00:00-03"), "{out}");

    server.stop();
}

/// A view with an aggregate and no GROUP BY holds one row, from the start.
#[test]
fn a_global_aggregate_view_holds_one_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    std::fs::write(dir.path().join("idle.jsonl"), "").expect("empty input");
    server.psql_ok(
        "CREATE SOURCE g (k BIGINT, v BIGINT) WITH (connector = 'datagen', rows_per_second = '0', limit = '50000', seed = '1');\n\
         CREATE MATERIALIZED VIEW c AS SELECT count(*) AS n FROM g;\n\
         CREATE SOURCE idle (k BIGINT) WITH (connector = 'file', path = 'idle.jsonl', mode = 'follow');\n\
         CREATE MATERIALIZED VIEW quiet AS SELECT count(*) AS n, sum(k) AS s FROM idle;",
    );
    wait_for("the count to reach 50000", T, || {
        let out = server.psql_ok("\\pset tuples_only on\nSELECT * FROM c;");
        out.contains("50000").then_some(())
    });
    let out = server.psql_ok("\\pset tuples_only on\nSELECT count(*) FROM c;");
    assert!(out.contains("     1\n"), "one row: {out}");
    wait_for("the empty input's row", T, || {
        let out =
            server.psql_ok("\\pset tuples_only on\n\\pset null NULL\nSELECT n, s FROM quiet;");
        out.contains(" 0 | NULL").then_some(())
    });
    server.stop();
}

/// No session waits on another's query (the engine is not one lock).
#[test]
fn a_slow_query_does_not_hold_other_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    super::define(&server, dir.path());
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .arg(super::client("concurrency_check.py"))
            .arg(server.port.to_string()),
    );
    assert!(out.contains("ok"), "{out}");
    println!("{out}");
    server.stop();
}

/// psql's bulk reads: `\copy` of a view and of a query, COPY in CSV, and
/// FETCH_COUNT (a cursor over a SELECT, fetched in pages).
#[test]
fn psql_copy_and_fetch_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    super::define(&server, dir.path());
    let file = dir.path().join("counts.csv");
    server.psql_ok(&format!(
        "\\copy counts TO '{}' WITH (FORMAT csv, HEADER)\n",
        file.display()
    ));
    let text = std::fs::read_to_string(&file).expect("copied file");
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.remove(0), "k,n,s", "{text}");
    lines.sort();
    assert_eq!(lines, ["k0,100,14850", "k1,100,14950", "k2,100,15050"]);
    let out =
        server.psql_ok("COPY (SELECT k, n FROM counts WHERE k <> 'k1' ORDER BY k) TO STDOUT;");
    assert_eq!(out, "k0\t100\nk2\t100\n");
    let out = server
        .psql_ok("\\set FETCH_COUNT 2\n\\pset tuples_only on\nSELECT k, n FROM counts ORDER BY k;");
    let rows: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows[0].contains("k0") && rows[2].contains("k2"), "{out}");
    // Writing COPY to a server file, or COPY FROM, is refused with the reason.
    let (_, stderr) = errors(&server, "COPY counts TO '/tmp/x';");
    assert!(
        stderr.contains("0A000") && stderr.contains("STDOUT"),
        "{stderr}"
    );
    server.stop();
}

/// asyncpg: a pool, and parameters typed by their use in the query.
#[test]
fn asyncpg_pool_and_typed_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    super::define(&server, dir.path());
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .arg(super::client("asyncpg_check.py"))
            .arg(server.port.to_string()),
    );
    assert!(out.contains("all checks passed"), "{out}");
    server.stop();
}
