//! Hostile clients (issue #22): messages that once crashed or stalled the
//! server get a PostgreSQL answer, and the server goes on answering.

use super::Server;

/// Row limits of 2^31-1 and -1, parameter numbers past 65535, multi-byte
/// text in statements the server parses itself.
#[test]
fn wire_messages_that_once_crashed_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    super::define(&server, dir.path());
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .arg(super::client("wire_check.py"))
            .arg(server.port.to_string()),
    );
    assert!(out.contains("all checks passed"), "{out}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
    server.stop();
}

/// A 2,001-term sum (4 KB) once overflowed the stack and killed the server:
/// it is refused with 54001, a 1,000-term one is answered, and the server
/// goes on.
#[test]
fn an_operator_chain_too_long_to_plan_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let sum = |n: usize| format!("SELECT {};", vec!["1"; n].join("+"));
    let out = server.psql(&sum(2001));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR:  54001: statement too complex"),
        "{stderr}"
    );
    let out = server.psql_ok(&format!("\\pset tuples_only on\n{}", sum(1000)));
    assert!(out.contains("1000"), "{out}");
    let ors: Vec<String> = (0..3000).map(|i| format!("{i} = 1")).collect();
    let out = server.psql(&format!("SELECT {};", ors.join(" OR ")));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("54001"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.psql_ok("SELECT 1;");
    assert!(!server.log().contains("overflowed"), "{}", server.log());
    server.stop();
}

/// Nothing waits on a remote end while holding the engine (#22 item 9): a
/// Kafka sink to a broker that is not there and a socket sink to a closed
/// port are created at once, other sessions go on, and DROP returns
/// within seconds.
#[test]
fn unreachable_sinks_neither_freeze_create_nor_drop() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    server.psql_ok(
        "CREATE SOURCE g (k BIGINT, v BIGINT) WITH (connector = 'datagen', rows_per_second = '100');",
    );
    let started = Instant::now();
    server.psql_ok(
        "CREATE SINK to_nowhere FROM g WITH (connector = 'kafka', topic = 't', bootstrap_servers = '127.0.0.1:1', format = 'json');\n\
         CREATE SINK to_closed_port FROM g WITH (connector = 'socket', host = '127.0.0.1', port = '1', format = 'json');",
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "CREATE took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let out = server.psql_ok("\\pset tuples_only on\nSELECT 41 + 1;");
    assert!(out.contains("42"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "SELECT took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    server.psql_ok("DROP SINK to_nowhere;\nDROP SINK to_closed_port;");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "DROP took {:?}",
        started.elapsed()
    );
    let out = server.psql_ok("SHOW SINKS;");
    assert!(
        !out.contains("to_nowhere") && !out.contains("to_closed_port"),
        "{out}"
    );
    server.stop();
}

/// A client that goes away in the middle of a statement no longer leaves
/// it running (#22 item 9): its session leaves pg_stat_activity at once.
#[test]
fn a_disconnected_clients_statement_is_cancelled() {
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let mut slow = std::process::Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-d",
            "sluice",
        ])
        .args([
            "-c",
            "SELECT count(*) FROM generate_series(1, 100000000000)",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    let active = "\\pset tuples_only on\nSELECT count(*) FROM pg_stat_activity WHERE query LIKE '%generate_series%' AND state = 'active' AND pid <> pg_backend_pid();";
    crate::common::wait_for("the slow statement to run", Duration::from_secs(10), || {
        (server.psql_ok(active).trim() == "1").then_some(())
    });
    slow.kill().expect("kill psql");
    let _ = slow.wait();
    crate::common::wait_for(
        "the statement to be cancelled",
        Duration::from_secs(5),
        || (server.psql_ok(active).trim() == "0").then_some(()),
    );
    assert!(
        server
            .log()
            .contains("client disconnected; its running statement was cancelled"),
        "{}",
        server.log()
    );
    server.stop();
}

/// SIGTERM stops the server within seconds even while a sink waits on a
/// peer that never answers (#22 item 9).
#[test]
fn sigterm_stops_the_server_whatever_a_sink_waits_for() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path());
    server.psql_ok(
        "CREATE SOURCE g (k BIGINT, v BIGINT) WITH (connector = 'datagen', rows_per_second = '100');\n\
         CREATE SINK stuck FROM g WITH (connector = 'socket', host = '127.0.0.1', port = '1', format = 'json');",
    );
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    crate::common::signal(server.child.id(), "TERM");
    let status = crate::common::wait_for("the server to exit", Duration::from_secs(20), || {
        server.child.try_wait().expect("try_wait")
    });
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "exit took {:?} ({status})",
        started.elapsed()
    );
    assert!(server.log().contains("aborting it"), "{}", server.log());
}

/// --max-connections, the startup timeout and a bounded SUBSCRIBE buffer
/// (#22 item 7).
#[test]
fn connection_startup_and_subscriber_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_serving(
        dir.path(),
        &["--max-connections", "4", "--startup-timeout", "1s"],
    );
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .arg(super::client("limits_check.py"))
            .arg(server.port.to_string())
            .arg("4"),
    );
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    println!("{out}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
    server.stop();
}

/// The memory of ad-hoc queries, lengths of built text, and idle
/// connections (#22 item 7).
#[test]
fn query_memory_and_idle_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_serving(
        dir.path(),
        &["--query-memory-mb", "32", "--idle-timeout", "2s"],
    );
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .arg(super::client("memory_idle_check.py"))
            .arg(server.port.to_string()),
    );
    println!("{out}");
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    assert!(
        server.log().contains("idle longer than --idle-timeout"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
    server.stop();
}

/// Wire fuzz (#22): thousands of malformed startup, SSL, cancel and
/// extended-protocol messages. The server stays up and answering, a
/// session that chokes is closed alone, and memory comes back down.
#[test]
fn wire_fuzz_leaves_the_server_answering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .arg(super::client("wire_fuzz.py"))
            .arg(server.port.to_string())
            .arg(server.child.id().to_string())
            .arg("3000")
            .arg("7"),
    );
    println!("{out}");
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    // No panic at all: pgwire's decoding is patched (vendor/pgwire).
    let log = server.log();
    assert!(!log.contains("panicked"), "a panic:\n{log}");
    server.stop();
}

/// SQL fuzz (#22): thousands of generated statements; no XX000 for a
/// user's mistake, no hang, no panic.
#[test]
fn sql_fuzz_gets_postgres_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let out = super::run_client(
        &server,
        std::process::Command::new(super::python())
            .arg(super::client("sql_fuzz.py"))
            .arg(server.port.to_string())
            .arg("2000")
            .arg("11"),
    );
    println!("{out}");
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
    server.stop();
}

/// Clients' connectors reach only the allowed directories (#22 item 5):
/// `/etc/passwd` as a file source, a file sink or dead-letter file outside
/// them and a librdkafka property naming a local file are refused with
/// 42501; a file under the data directory's `files/` works.
#[test]
fn connectors_reach_only_the_allowed_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_exact(dir.path(), &[]);
    let files = dir.path().join("data/files");
    std::fs::write(files.join("in.jsonl"), "{\"k\": 1}\n{\"k\": 2}\n").expect("input");
    for sql in [
        "CREATE SOURCE p (line TEXT) WITH (connector = 'file', path = '/etc/passwd', format = 'csv');",
        "CREATE SOURCE e (line TEXT) WITH (connector = 'file', path = '/proc/self/environ', format = 'csv');",
        "CREATE SOURCE up (line TEXT) WITH (connector = 'file', path = 'data/files/../../../../etc/passwd', format = 'csv');",
        "CREATE SOURCE d (k BIGINT) WITH (connector = 'file', path = 'data/files/in.jsonl', dead_letter = '/tmp/sluice-dead.jsonl');",
        "CREATE SOURCE k (k BIGINT) WITH (connector = 'kafka', topic = 't', bootstrap_servers = '127.0.0.1:9092', properties.ssl.ca.location = '/etc/ssl/certs/ca-certificates.crt');",
    ] {
        let out = server.psql(sql);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("42501") && stderr.contains("--allow-file-dir"), "{sql}: {stderr}");
        assert!(stderr.contains(&files.canonicalize().expect("files").display().to_string()), "{stderr}");
    }
    server.psql_ok(
        "CREATE SOURCE ok (k BIGINT) WITH (connector = 'file', path = 'data/files/in.jsonl');\n\
         CREATE MATERIALIZED VIEW n AS SELECT count(*) AS n FROM ok;",
    );
    let out = server
        .psql("CREATE SINK s FROM ok WITH (connector = 'file', path = '/tmp/sluice-out.jsonl');");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("42501"),
        "{out:?}"
    );
    assert!(!std::path::Path::new("/tmp/sluice-out.jsonl").exists());
    crate::common::wait_for(
        "the allowed file's rows",
        std::time::Duration::from_secs(10),
        || {
            (server
                .psql_ok("\\pset tuples_only on\nSELECT n FROM n;")
                .trim()
                == "2")
                .then_some(())
        },
    );
    server.stop();
}
