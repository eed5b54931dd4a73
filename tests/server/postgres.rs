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

/// A regular join whose state nothing bounds raises a NOTICE when it is
/// created (psql shows it); one bounded by `state_ttl` does not.
#[test]
fn an_unbounded_join_raises_a_notice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let (_, stderr) = errors(
        &server,
        "CREATE SOURCE g (k BIGINT, v BIGINT) WITH (connector = 'datagen', rows_per_second = '0', limit = '1000', seed = '1');\n\
         CREATE MATERIALIZED VIEW j AS SELECT a.k, b.v FROM g a JOIN g b ON a.k = b.k;\n\
         CREATE MATERIALIZED VIEW jt WITH (state_ttl = '1 hour') AS SELECT a.k, b.v FROM g a JOIN g b ON a.k = b.k;",
    );
    assert_eq!(
        stderr
            .matches("NOTICE:  00000: the INNER join keeps every row of both inputs")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("state_ttl"),
        "the notice says how to bound it: {stderr}"
    );
    assert!(!stderr.contains("ERROR"), "{stderr}");
    // Seed 1's 1000 keys hold 997 distinct values (three twice): 1006
    // pairs.
    wait_for("the join's rows", T, || {
        let out = server.psql_ok("\\pset tuples_only on\nSELECT count(*) FROM j;");
        (out.trim() == "1006").then_some(())
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

/// 200 sessions open at once, each querying about once a second, while a
/// slow query runs (#22): every query is answered, none waits for the slow
/// one. The bound here only catches sessions waiting on each other (a lock
/// held by the slow query would hold them for seconds); the latency figures
/// themselves are measured on the release build by `benches/sessions.sh`.
#[test]
fn two_hundred_sessions_beside_a_slow_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_serving(dir.path(), &["--max-connections", "300"]);
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .args([super::client("sessions_check.py").display().to_string()])
            .args([&server.port.to_string(), "200", "4", "1000", "1.0"]),
    );
    println!("{out}");
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
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

/// JSON objects in a source's JSONB column, the JSON operators on a view,
/// and how psql sees jsonb, interval and time columns (#20 item 12).
#[test]
fn jsonb_interval_and_time_columns_over_psql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    std::fs::write(
        dir.path().join("ev.jsonl"),
        "{\"id\":1,\"doc\":{\"name\":\"ann\",\"tags\":[\"a\",\"b\"]},\"gap\":\"1 hour 30 minutes\",\"at\":\"09:15:00\"}\n\
         {\"id\":2,\"doc\":{\"name\":\"bob\",\"tags\":[]},\"gap\":\"2 days\",\"at\":\"23:59:59\"}\n",
    )
    .expect("input");
    server.psql_ok(
        "CREATE SOURCE ev (id BIGINT, doc JSONB, gap INTERVAL, at TIME) WITH (connector = 'file', path = 'ev.jsonl', format = 'json');\n\
         CREATE MATERIALIZED VIEW v AS SELECT id, doc, doc ->> 'name' AS name, doc -> 'tags' AS tags, gap, at FROM ev;",
    );
    let out = wait_for("both rows", T, || {
        let out = server.psql_ok(
            "\\pset tuples_only on\n\\pset format unaligned\nSELECT id, doc, name, tags, gap, at FROM v ORDER BY id;",
        );
        (out.lines().filter(|l| !l.is_empty()).count() >= 2).then_some(out)
    });
    assert!(
        out.contains(
            "1|{\"name\": \"ann\", \"tags\": [\"a\", \"b\"]}|ann|[\"a\", \"b\"]|01:30:00|09:15:00"
        ),
        "{out}"
    );
    assert!(
        out.contains("2|{\"name\": \"bob\", \"tags\": []}|bob|[]|2 days|23:59:59"),
        "{out}"
    );
    let described = server.psql_ok("\\d v");
    for (column, ty) in [
        ("doc", "jsonb"),
        ("tags", "jsonb"),
        ("name", "text"),
        ("gap", "interval"),
        ("at", "time without time zone"),
    ] {
        assert!(
            described
                .lines()
                .any(|l| l.split('|').map(str::trim).take(2).eq([column, ty])),
            "\\d v shows {column} as {ty}: {described}"
        );
    }
    // psql's own type of a result column: the jsonb OID.
    let typed = server.psql_ok(
        "\\pset tuples_only on\nSELECT pg_typeof(doc)::text, pg_typeof(doc ->> 'name')::text FROM v LIMIT 1;",
    );
    assert!(typed.contains("jsonb") && typed.contains("text"), "{typed}");
    server.stop();
}

/// pg_stat_activity shows each session with its statement and state;
/// pg_cancel_backend stops another session's statement (57014) and
/// pg_terminate_backend closes it (#20 item 10).
#[test]
fn pg_stat_activity_cancel_and_terminate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .arg(super::client("activity_check.py"))
            .arg(server.port.to_string()),
    );
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    println!("{out}");
    server.stop();
}

/// A SQL function is kept in the catalog: after a restart, the view that
/// calls it is back and the function still answers (#20 item 14).
#[test]
fn sql_functions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    server.psql_ok(
        "CREATE FUNCTION twice(n BIGINT) RETURNS BIGINT LANGUAGE sql AS $$ SELECT n * 2 $$;\n\
         CREATE SOURCE g (k BIGINT, v BIGINT) WITH (connector = 'datagen', rows_per_second = '0', limit = '100', seed = '1');\n\
         CREATE MATERIALIZED VIEW c AS SELECT twice(count(*)) AS n FROM g;",
    );
    let counted = || {
        wait_for("the doubled count", T, || {
            let out = server_rows(&server, "SELECT n, twice(21) FROM c;");
            out.contains("200|42").then_some(out)
        })
    };
    fn server_rows(server: &Server, sql: &str) -> String {
        server.psql_ok(&format!(
            "\\pset tuples_only on\n\\pset format unaligned\n{sql}"
        ))
    }
    counted();
    server.stop();
    let server = Server::start(dir.path());
    let out = wait_for("the view after restart", T, || {
        let out = server_rows(&server, "SELECT n, twice(21) FROM c;");
        out.contains("200|42").then_some(out)
    });
    assert!(out.contains("200|42"), "{out}");
    let refused = server.psql("DROP FUNCTION twice;");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("materialized view 'c' uses it"), "{stderr}");
    server.stop();
}
