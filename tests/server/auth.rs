//! Passwords, users and TLS on the wire server (#22 items 2 and 3), with
//! real psql, psycopg and node-postgres.

use std::path::Path;
use std::process::Command;

use super::Server;

/// A throwaway CA and a certificate for localhost / 127.0.0.1 signed by it.
fn certificates(dir: &Path) -> (String, String, String) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=sluice test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    let path = |f: &str| dir.join(f).display().to_string();
    (path("server.pem"), path("server.key"), path("ca.pem"))
}

fn node_path() -> String {
    std::env::var("SLUICE_NODE_PATH").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sluice/node/node_modules",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

fn check(tls_required: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = certificates(dir.path());
    let mut options = vec!["--auth", "password", "--tls-cert", &cert, "--tls-key", &key];
    if tls_required {
        options.push("--tls-required");
    }
    let server =
        Server::start_serving_env(dir.path(), &options, &[("SLUICE_PASSWORD", "s3cret pass")]);
    let out = super::run_client(
        &server,
        Command::new(super::python())
            .arg(super::client("auth_check.py"))
            .arg(server.port.to_string())
            .arg("s3cret pass")
            .arg(&ca)
            .arg(if tls_required { "1" } else { "0" })
            .arg(node_path()),
    );
    println!("{out}");
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    let users = std::fs::read_to_string(dir.path().join("data/users.json")).expect("users.json");
    assert!(
        !users.contains("s3cret"),
        "the password itself is stored: {users}"
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
    server.stop();
}

#[test]
fn passwords_and_tls() {
    check(false);
}

#[test]
fn tls_required_refuses_plaintext() {
    check(true);
}

/// Off loopback, the server does not start without being told who may
/// connect; `--auth password` needs a first user.
#[test]
fn a_public_address_needs_an_auth_choice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(args)
            .env_remove("SLUICE_PASSWORD")
            .output()
            .expect("sluice")
    };
    let out = run(&["--listen", "0.0.0.0:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("is not a loopback address") && stderr.contains("--auth password"),
        "{stderr}"
    );
    let out = run(&["--listen", "127.0.0.1:0", "--auth", "password"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("SLUICE_PASSWORD"), "{stderr}");
}

/// Roles and privileges (#22 item 4): a read-only role for BI tools, a
/// developer who owns what they create, `\du`, `\dp`,
/// `has_table_privilege`, REVOKE, with psql, psycopg, node-postgres and
/// pgJDBC over TLS with SCRAM passwords.
#[test]
fn roles_and_privileges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = certificates(dir.path());
    let options = ["--auth", "password", "--tls-cert", &cert, "--tls-key", &key];
    let server =
        Server::start_serving_env(dir.path(), &options, &[("SLUICE_PASSWORD", "root pass")]);
    let jar = std::env::var("SLUICE_JDBC_JAR")
        .unwrap_or_else(|_| "/usr/share/java/postgresql.jar".into());
    let out = super::run_client(
        &server,
        Command::new(super::python())
            .arg(super::client("roles_check.py"))
            .arg(server.port.to_string())
            .arg("root pass")
            .arg(&ca)
            .arg(node_path())
            .arg(&jar)
            .arg(super::client("JdbcAuthCheck.java")),
    );
    println!("{out}");
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
    server.stop();
}

/// Secrets (#22 items 5 and 6): Kafka SASL passwords from `secret('ENV')`
/// or literals, masked in pg_stat_activity and kept out of the log and
/// the catalog; `--allow-hosts`; what only a superuser may use.
#[test]
fn secrets_stay_secret_and_hosts_are_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_serving_env(
        dir.path(),
        &["--allow-hosts", "127.0.0.1,localhost"],
        &[("SLUICE_TEST_KAFKA_PW", "hunter2-from-env")],
    );
    let out = super::run_client(
        &server,
        Command::new(super::python())
            .arg(super::client("secrets_check.py"))
            .arg(server.port.to_string()),
    );
    println!("{out}");
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    let catalog = std::fs::read_to_string(dir.path().join("data/catalog.json")).expect("catalog");
    assert!(
        !catalog.contains("hunter2-from-env") && catalog.contains("secret('SLUICE_TEST_KAFKA_PW')"),
        "the catalog keeps the reference, not the secret: {catalog}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/catalog.json"))
            .expect("catalog")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "catalog.json is owner-only");
    }
    let log = server.log();
    server.stop();
    assert!(
        !log.contains("hunter2-from-env") && !log.contains("hunter3-literal"),
        "a secret in the log:\n{log}"
    );
}
