//! `sluice serve` with real clients: psql, psycopg 3 and SQLAlchemy (from the
//! virtualenv `.ci/run` prepares; `SLUICE_PYTHON` names its python), the
//! PostgreSQL JDBC driver (`SLUICE_JDBC_JAR`) and node-postgres
//! (`SLUICE_NODE_PATH`).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, signal, wait_for};

const T: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    port: u16,
    stderr: std::path::PathBuf,
}

impl Server {
    fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[])
    }

    /// `sluice serve` with more command-line options.
    fn start_with(dir: &Path, options: &[&str]) -> Server {
        Self::spawn(dir, options, &[], &[])
    }

    /// `sluice serve` with options of its own (`--max-connections 3`).
    fn start_serving(dir: &Path, serve_options: &[&str]) -> Server {
        Self::spawn(dir, &[], serve_options, &[])
    }

    /// `start_serving` with environment variables (`SLUICE_PASSWORD`).
    fn start_serving_env(dir: &Path, serve_options: &[&str], env: &[(&str, &str)]) -> Server {
        Self::spawn(dir, &[], serve_options, env)
    }

    /// `sluice serve` with exactly these options (no test defaults: the
    /// file sandbox at its default, `files/` in the data directory).
    fn start_exact(dir: &Path, serve_options: &[&str]) -> Server {
        Self::spawn_with(dir, &[], serve_options, &[])
    }

    /// The tests' servers let connectors use the test's directory.
    fn spawn(dir: &Path, options: &[&str], serve_options: &[&str], env: &[(&str, &str)]) -> Server {
        let allowed = dir.display().to_string();
        let mut serve_options = serve_options.to_vec();
        serve_options.extend(["--allow-file-dir", allowed.as_str()]);
        Self::spawn_with(dir, options, &serve_options, env)
    }

    fn spawn_with(
        dir: &Path,
        options: &[&str],
        serve_options: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let stderr = dir.join("serve.stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(options)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .args(serve_options)
            .current_dir(dir)
            .env("RUST_LOG", "warn,sluice=info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr"))
            .spawn()
            .expect("spawn sluice serve");
        let server = Server {
            child,
            port,
            stderr,
        };
        wait_for("the server to listen", T, || {
            server
                .log()
                .contains("listening for PostgreSQL clients")
                .then_some(())
        });
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Runs `sql` through psql (verbose errors, no psqlrc).
    fn psql(&self, sql: &str) -> Output {
        let mut child = Command::new("psql")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-d",
                "sluice",
            ])
            .args(["-v", "VERBOSITY=verbose", "-P", "pager=off"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql.as_bytes())
            .expect("write");
        child.wait_with_output().expect("psql output")
    }

    fn psql_ok(&self, sql: &str) -> String {
        let out = self.psql(sql);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("ERROR"),
            "psql failed on {sql}: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stop(mut self) {
        signal(self.child.id(), "TERM");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "serve exit: {status}\n{}", self.log());
    }
}

/// A file source with known contents and a view over it.
fn define(server: &Server, dir: &Path) {
    let lines: String = (0..300)
        .map(|n| format!("{{\"k\": \"k{}\", \"v\": {n}}}\n", n % 3))
        .collect();
    std::fs::write(dir.join("ev.jsonl"), lines).expect("input");
    server.psql_ok(
        "CREATE SOURCE ev (k TEXT, v BIGINT) WITH (connector = 'file', path = 'ev.jsonl');
         CREATE MATERIALIZED VIEW counts AS SELECT k, count(*) AS n, sum(v) AS s FROM ev GROUP BY k;
         CREATE SOURCE gen (k TEXT) WITH (connector = 'datagen', rows_per_second = 20, seed = 3,
             fields.k.values = 'a,b,c');
         CREATE MATERIALIZED VIEW live AS SELECT k, count(*) AS n FROM gen GROUP BY k;",
    );
    wait_for("the file in the view", T, || {
        let out = server.psql_ok("SELECT sum(n) FROM counts;");
        out.contains(" 300\n").then_some(())
    });
}

#[test]
fn psql_defines_queries_and_gets_postgres_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    define(&server, dir.path());
    // A second session sees what the first created.
    let out = server.psql_ok("SELECT k, n, s FROM counts ORDER BY k;");
    for (k, s) in [("k0", 14850), ("k1", 14950), ("k2", 15050)] {
        let want: i64 = (0..300).filter(|n| format!("k{}", n % 3) == k).sum();
        assert_eq!(want, s);
        assert!(out.contains(&format!(" {k} | 100 | {s}")), "{out}");
    }
    let out = server.psql_ok("SHOW SOURCES; SHOW MATERIALIZED VIEWS; DESCRIBE counts;");
    assert!(
        out.contains("ev") && out.contains("gen") && out.contains("one row per key"),
        "{out}"
    );
    let out = server.psql_ok("EXPLAIN SELECT k FROM counts WHERE n > 1;");
    assert!(out.to_lowercase().contains("filter"), "{out}");
    let out = server.psql_ok("BEGIN; SELECT count(*) FROM counts; COMMIT; SHOW TRANSACTION ISOLATION LEVEL; SET extra_float_digits = 3; SHOW extra_float_digits;");
    assert!(
        out.contains("read committed") && out.contains(" 3\n"),
        "{out}"
    );
    // Every failure is a Postgres error with its SQLSTATE.
    for (sql, state) in [
        ("SELECT * FROM nope;", "42P01"),
        ("SELEC 1;", "42601"),
        ("SELECT nosuch FROM counts;", "42703"),
        ("SELECT * FROM ev;", "0A000"),
        (
            "CREATE SOURCE x (a INT) WITH (connector = 'file', pathh = 'a');",
            "22023",
        ),
        ("DROP SOURCE ev;", "2BP01"),
        (
            "CREATE MATERIALIZED VIEW counts AS SELECT k FROM ev;",
            "42710",
        ),
        ("FETCH 1 nocursor;", "42P01"),
    ] {
        let out = server.psql(sql);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("ERROR:  {state}:")),
            "{sql} → {stderr}"
        );
    }
    let out = server.psql("SELEC 1;");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("LINE 1: SELEC 1"),
        "syntax errors point at the position"
    );
    server.stop();
}

#[test]
fn copy_subscribe_in_psql_streams_until_cancelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    define(&server, dir.path());
    let out_path = dir.path().join("copy.out");
    let psql = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-d",
            "sluice",
        ])
        .args(["-c", "COPY (SUBSCRIBE TO live) TO STDOUT"])
        .stdout(std::fs::File::create(&out_path).expect("out"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql");
    std::thread::sleep(Duration::from_secs(3));
    // Ctrl-C: psql sends a cancel request.
    signal(psql.id(), "INT");
    let out = psql.wait_with_output().expect("psql");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    let rows: Vec<Vec<String>> = std::fs::read_to_string(&out_path)
        .expect("copy output")
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    assert!(rows.len() >= 10, "{rows:?}");
    assert!(rows.iter().all(|r| r.len() == 4), "{rows:?}");
    assert_eq!(rows[0][1], "insert", "the snapshot first: {rows:?}");
    assert!(
        rows.iter().any(|r| r[1] == "update"),
        "then changes: {rows:?}"
    );
    // Per key the count only grows, and timestamps never go back.
    let mut last = std::collections::HashMap::new();
    let mut ts = 0i64;
    for r in &rows {
        let n: i64 = r[3].parse().expect("n");
        let t: i64 = r[0].parse().expect("ts");
        assert!(t >= ts, "{rows:?}");
        ts = t;
        if let Some(prev) = last.insert(r[2].clone(), n) {
            assert!(n > prev, "{rows:?}");
        }
    }
    // The subscription's pipeline is gone with the cancel.
    wait_for("the subscription to stop", T, || {
        server
            .log()
            .contains("pipeline finished pipeline=subscribe_")
            .then_some(())
    });
    server.stop();
}

#[test]
fn psycopg_parameters_types_cursors_and_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    define(&server, dir.path());
    let python = std::env::var("SLUICE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/psycopg_check.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(server.port.to_string())
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e} (bash .ci/run sets up psycopg)"));
    assert!(
        out.status.success(),
        "{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    server.stop();
}

/// psql's describe commands read pg_catalog: views are materialized views
/// of schema `public` with PostgreSQL types, and their definitions.
#[test]
fn psql_describe_commands_read_the_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    define(&server, dir.path());
    let databases = server.psql_ok("\\l");
    assert!(
        databases.contains(" sluice ") && databases.contains("UTF8"),
        "{databases}"
    );
    for plain in ["\\dt", "\\dv"] {
        let out = server.psql(plain);
        assert!(out.status.success(), "{plain}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Did not find any relations."),
            "{plain}: only materialized views exist: {stderr}"
        );
    }
    let views = server.psql_ok("\\dm");
    for v in ["counts", "live"] {
        assert!(
            views.contains(&format!(" public | {v} ")) && views.contains("materialized view"),
            "{views}"
        );
    }
    assert!(server.psql_ok("\\dn").contains(" public "));
    let describe = server.psql_ok("\\d counts");
    assert!(
        describe.contains("Materialized view \"public.counts\""),
        "{describe}"
    );
    let columns: Vec<Vec<String>> = describe
        .lines()
        .filter(|l| l.matches('|').count() >= 4 && !l.contains("Column"))
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect();
    assert_eq!(
        columns
            .iter()
            .map(|c| (c[0].as_str(), c[1].as_str(), c[3].as_str()))
            .collect::<Vec<_>>(),
        [
            ("k", "text", ""),
            ("n", "bigint", "not null"),
            ("s", "bigint", "")
        ],
        "{describe}"
    );
    let verbose = server.psql_ok("\\d+ counts");
    assert!(
        verbose.contains("View definition:")
            && verbose.contains("SELECT k, count(*) AS n, sum(v) AS s FROM ev GROUP BY k;"),
        "{verbose}"
    );
    // What drivers and BI tools call on the way.
    let functions = server.psql_ok(
        "\\pset format unaligned
         SELECT version() LIKE 'PostgreSQL 16.6 %' AS v, current_schema(), current_database(),
                current_catalog, has_table_privilege('counts', 'SELECT') AS p,
                format_type(1700, 655366) AS f, pg_get_expr(NULL, 0) IS NULL AS e,
                'counts'::regclass = c.oid AS r
         FROM pg_catalog.pg_class c WHERE c.relname = 'counts';
         SHOW TRANSACTION ISOLATION LEVEL;
         SELECT column_name, data_type, is_nullable FROM information_schema.columns
         WHERE table_name = 'counts' ORDER BY ordinal_position;",
    );
    let lines: Vec<&str> = functions.lines().collect();
    assert!(
        lines.contains(&"v|current_schema|current_database|current_catalog|p|f|e|r")
            && lines.contains(&"t|public|sluice|sluice|t|numeric(10,2)|t|t"),
        "{functions}"
    );
    assert!(lines.contains(&"read committed"), "{functions}");
    for column in ["k|text|YES", "n|bigint|NO", "s|bigint|YES"] {
        assert!(lines.contains(&column), "{functions}");
    }
    server.stop();
}

/// What Superset does: SQLAlchemy's inspector lists schemas, views and
/// typed columns, reflects a view as a Table and selects from it.
#[test]
fn sqlalchemy_inspector_reflects_views() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    define(&server, dir.path());
    let out = run_client(
        &server,
        Command::new(python())
            .arg(client("sqlalchemy_check.py"))
            .arg(server.port.to_string())
            .arg("counts"),
    );
    let got: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(got["schemas"]
        .as_array()
        .expect("schemas")
        .contains(&"public".into()));
    assert_eq!(got["tables"], serde_json::json!([]));
    assert_eq!(
        got["materialized_views"],
        serde_json::json!(["counts", "live"])
    );
    assert_eq!(
        got["columns"]["counts"],
        serde_json::json!([
            {"name": "k", "type": "TEXT", "nullable": true},
            {"name": "n", "type": "BIGINT", "nullable": false},
            {"name": "s", "type": "BIGINT", "nullable": true},
        ])
    );
    assert_eq!(
        got["definition"],
        "SELECT k, count(*) AS n, sum(v) AS s FROM ev GROUP BY k;"
    );
    assert_eq!(
        got["rows"],
        serde_json::json!([
            ["k0", "100", "14850"],
            ["k1", "100", "14950"],
            ["k2", "100", "15050"]
        ])
    );
    server.stop();
}

/// What Metabase, DBeaver and Tableau do: pgjdbc's DatabaseMetaData, and a
/// PreparedStatement past pgjdbc's threshold of five, when it prepares on
/// the server and reads rows in binary.
#[test]
fn jdbc_metadata_and_server_prepared_statements() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    define(&server, dir.path());
    let jar = std::env::var("SLUICE_JDBC_JAR")
        .unwrap_or_else(|_| "/usr/share/java/postgresql.jar".into());
    let out = run_client(
        &server,
        Command::new("java")
            .arg("-cp")
            .arg(&jar)
            .arg(client("JdbcCheck.java"))
            .arg(server.port.to_string())
            .arg("counts"),
    );
    let facts: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let of = |kind: &str| -> Vec<Vec<&str>> {
        facts
            .iter()
            .filter(|f| f[0] == kind)
            .map(|f| f[1..].to_vec())
            .collect()
    };
    assert!(of("schema").contains(&vec!["public"]), "{out}");
    assert_eq!(
        of("table"),
        [
            vec!["counts", "MATERIALIZED VIEW"],
            vec!["live", "MATERIALIZED VIEW"]
        ],
        "{out}"
    );
    // java.sql.Types: VARCHAR 12, BIGINT -5.
    assert_eq!(
        of("column"),
        [
            vec!["k", "text", "12", "1"],
            vec!["n", "int8", "-5", "2"],
            vec!["s", "int8", "-5", "3"]
        ],
        "{out}"
    );
    let executions = of("execution");
    assert_eq!(executions.len(), 8, "{out}");
    for e in &executions {
        assert_eq!(e[1], "3", "{out}");
    }
    assert_eq!(executions[0][2], "client", "{out}");
    for e in &executions[4..] {
        assert_eq!(e[2], "server-prepared", "{out}");
    }
    assert_eq!(
        of("fetched"),
        [vec!["k0"], vec!["k1"], vec!["k2"]],
        "a row per Execute: {out}"
    );
    let rows = of("row");
    for i in 0..8 {
        let run: Vec<Vec<&str>> = rows
            .iter()
            .filter(|r| r[0] == i.to_string())
            .map(|r| r[1..].to_vec())
            .collect();
        assert_eq!(
            run,
            [
                vec!["k0", "100", "14850"],
                vec!["k1", "100", "14950"],
                vec!["k2", "100", "15050"]
            ],
            "execution {i}: {out}"
        );
    }
    server.stop();
}

/// node-postgres: parameters over the extended protocol, named statements,
/// errors with their SQLSTATE.
#[test]
fn node_pg_parameterized_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    define(&server, dir.path());
    let node_path = std::env::var("SLUICE_NODE_PATH").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sluice/node/node_modules",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let out = run_client(
        &server,
        Command::new("node")
            .env("NODE_PATH", node_path)
            .arg(client("node_pg_check.js"))
            .arg(server.port.to_string())
            .arg("counts"),
    );
    let got: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        got["all"],
        serde_json::json!([["k0", 100], ["k1", 100], ["k2", 100]])
    );
    assert_eq!(got["some"], serde_json::json!([["k1", 100], ["k2", 100]]));
    assert_eq!(got["named"], serde_json::json!([100, 100, 100]));
    assert_eq!(
        got["text"],
        serde_json::json!({"t": "it's", "i": "42", "db": "sluice"})
    );
    assert_eq!(got["error"]["code"], "42P01");
    server.stop();
}

#[path = "server/auth.rs"]
mod auth;
#[path = "server/hostile.rs"]
mod hostile;
#[path = "server/introspection.rs"]
mod introspection;
#[path = "server/operability.rs"]
mod operability;
#[path = "server/postgres.rs"]
mod postgres;
#[path = "server/quickstart.rs"]
mod quickstart;

fn python() -> String {
    std::env::var("SLUICE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn client(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Runs a client program to success and returns its stdout.
fn run_client(server: &Server, command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e} (bash .ci/run installs the clients)"));
    assert!(
        out.status.success(),
        "{command:?}\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
