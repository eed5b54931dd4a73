//! The README's quickstart, run as the README says: `docs/quickstart.sql`'s
//! statements through real psql against `sluice serve`, each answer checked
//! for the shape the README shows (its columns, row counts and kinds of
//! line; the generated numbers differ from run to run).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Server, T};
use crate::common::{signal, wait_for};

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The statements of a SQL file, each as written (comment lines dropped),
/// ending at a line that ends with `;`.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in sql.lines() {
        if line.starts_with("--") || (current.is_empty() && line.trim().is_empty()) {
            continue;
        }
        current.push(line);
        if line.trim_end().ends_with(';') {
            out.push(current.join("\n"));
            current.clear();
        }
    }
    assert!(
        current.is_empty(),
        "a statement without its `;`: {current:?}"
    );
    out
}

/// The cells of a psql table line (`a | b | c`).
fn cells(line: &str) -> Vec<String> {
    line.split('|').map(|c| c.trim().to_string()).collect()
}

/// `COPY (SUBSCRIBE …) TO STDOUT` output: epoch ms, op, then the columns.
fn subscribe_line_shape(line: &str) -> bool {
    let fields: Vec<&str> = line.split('\t').collect();
    fields.len() == 5
        && fields[0].len() >= 13
        && fields[0].chars().all(|c| c.is_ascii_digit())
        && ["insert", "update", "delete"].contains(&fields[1])
        && fields[3..].iter().all(|f| f.parse::<u64>().is_ok())
}

/// The README shows the quickstart's statements as they are in the file.
#[test]
fn the_readme_shows_the_quickstart_statements() {
    let readme = read("README.md");
    let statements = statements(&read("docs/quickstart.sql"));
    assert_eq!(statements.len(), 5, "{statements:#?}");
    for statement in &statements {
        assert!(
            readme.contains(statement.as_str()),
            "README.md does not show, as written in docs/quickstart.sql:\n{statement}"
        );
    }
}

#[test]
fn the_quickstart_runs_through_psql_as_the_readme_shows() {
    let readme = read("README.md");
    let statements = statements(&read("docs/quickstart.sql"));
    let [source, view, select, subscribe, drop] = &statements[..] else {
        panic!("five statements: {statements:#?}");
    };
    assert!(source.starts_with("CREATE SOURCE clicks"), "{source}");
    assert!(
        view.starts_with("CREATE MATERIALIZED VIEW page_stats"),
        "{view}"
    );
    assert!(select.starts_with("SELECT"), "{select}");
    assert!(subscribe.starts_with("COPY (SUBSCRIBE"), "{subscribe}");
    assert!(drop.starts_with("DROP SOURCE"), "{drop}");

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let out = server.psql_ok(&format!("{source}\n{view}\n"));
    assert_eq!(out, "CREATE SOURCE\nCREATE MATERIALIZED VIEW\n");
    assert!(
        readme.contains("```\nCREATE SOURCE\nCREATE MATERIALIZED VIEW\n```"),
        "the README shows the two command tags"
    );

    // SELECT: the README's columns, one row per page.
    let out = wait_for("all three pages in the view", T, || {
        let out = server.psql_ok(select);
        out.contains("(3 rows)").then_some(out)
    });
    let lines: Vec<&str> = out.lines().collect();
    let header = cells(lines[0]);
    assert_eq!(header, ["page", "views", "users"], "{out}");
    assert!(
        readme.lines().any(|l| cells(l) == header),
        "the README shows the same columns: {header:?}"
    );
    assert!(readme.contains("(3 rows)"));
    let rows: Vec<Vec<String>> = lines[2..5].iter().map(|l| cells(l)).collect();
    let pages: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(pages, ["cart", "checkout", "home"], "{out}");
    for r in &rows {
        let views: u64 = r[1].parse().expect("views");
        let users: u64 = r[2].parse().expect("users");
        assert!(users >= 1 && users <= views && users <= 50, "{out}");
    }

    // SUBSCRIBE: the current rows as inserts, then updates as clicks
    // arrive, until Ctrl-C (psql sends a cancel request). psql writes what
    // it received when the COPY ends.
    let copied = dir.path().join("subscribe.out");
    let psql = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-d", "sluice", "-c", subscribe])
        .stdout(std::fs::File::create(&copied).expect("output file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql");
    std::thread::sleep(Duration::from_secs(2));
    signal(psql.id(), "INT");
    let out = psql.wait_with_output().expect("psql");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&copied).expect("subscribed lines");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 5, "{lines:#?}");
    assert!(lines.iter().all(|l| subscribe_line_shape(l)), "{lines:#?}");
    let ops: Vec<&str> = lines
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        ops[..3],
        ["insert"; 3],
        "the current rows first: {lines:#?}"
    );
    assert!(ops[3..].iter().all(|op| *op == "update"), "{lines:#?}");
    let shown: Vec<&str> = readme.lines().filter(|l| subscribe_line_shape(l)).collect();
    assert!(
        shown.len() >= 4
            && shown[..3].iter().all(|l| l.contains("\tinsert\t"))
            && shown[3..].iter().all(|l| l.contains("\tupdate\t")),
        "the README shows lines of the same shape: {shown:#?}"
    );

    let out = server.psql_ok(drop);
    assert_eq!(out, "DROP SOURCE\n");
    server.stop();
}
