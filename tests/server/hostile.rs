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
