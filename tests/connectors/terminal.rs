//! `sluice run` on a terminal (under script(1)): the progress line is
//! redrawn in place, rows on stdout are written above it and never split
//! by it, and the run ends with a summary.

use std::path::Path;

/// Runs `sluice ARGS…` in `dir` on a pseudo-terminal that stdout and
/// stderr share; returns the bytes the terminal was sent.
fn on_a_terminal(dir: &Path, args: &str) -> String {
    let cmd = format!("{} --log-format text {args}", env!("CARGO_BIN_EXE_sluice"));
    let output = std::process::Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .output()
        .expect("script(1)");
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{screen}");
    screen
}

/// The lines a terminal shows for `sent`: carriage returns go back to the
/// start of the line, `ESC[2K` and `ESC[K` erase it.
fn shown_lines(sent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line: Vec<char> = Vec::new();
    let mut col = 0;
    let mut rest = sent;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("\x1b[2K") {
            line.clear();
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix("\x1b[K") {
            line.truncate(col);
            rest = after;
            continue;
        }
        match c {
            '\r' => col = 0,
            '\n' => {
                lines.push(line.drain(..).collect());
                col = 0;
            }
            c => {
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
        rest = &rest[c.len_utf8()..];
    }
    lines.push(line.into_iter().collect());
    lines
}

/// On a terminal the progress line is redrawn in place, and the run ends
/// with how it ended and a summary table.
#[test]
fn progress_line_redraws_in_place_on_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.sql"),
        "CREATE SOURCE g (k BIGINT) WITH (connector = 'datagen', rows_per_second = 1000, limit = 1500, seed = 1);
         CREATE SINK out FROM g WITH (connector = 'file', path = 'out.jsonl');",
    )
    .expect("script");
    let screen = on_a_terminal(dir.path(), "run p.sql");
    assert!(
        screen.contains("\r\x1b[2Kout: in "),
        "in-place redraw: {screen:?}"
    );
    let lines = shown_lines(&screen);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("done in ") && l.ends_with("every source was read to the end")),
        "{lines:?}"
    );
    let summary: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("out "))
        .map(|l| l.split('|').map(str::trim).collect())
        .unwrap_or_default();
    assert_eq!(summary.get(2..4), Some(&["1500", "1500"][..]), "{lines:?}");
}

/// Rows on stdout and the progress line on stderr share the screen: every
/// row shows whole on a line of its own, never with the progress line in
/// it, while the progress line is drawn between the rows.
#[test]
fn rows_on_stdout_are_never_split_by_the_progress_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rows.sql"),
        "CREATE SOURCE g (k TEXT, v BIGINT) WITH (connector = 'datagen', rows_per_second = 2000,
             limit = 5000, seed = 3, fields.k.values = 'a,b,c,d,e');
         CREATE SINK sums AS SELECT k, sum(v) AS total, count(*) AS n FROM g GROUP BY k
             WITH (connector = 'stdout');",
    )
    .expect("script");
    let screen = on_a_terminal(dir.path(), "run rows.sql");
    let drawn = screen.matches("\x1b[2Ksums: in ").count();
    assert!(
        drawn >= 4,
        "the progress line is drawn as rows arrive: {drawn}"
    );
    let lines = shown_lines(&screen);
    let rows: Vec<&String> = lines.iter().filter(|l| l.contains('{')).collect();
    assert!(rows.len() >= 20, "{lines:?}");
    for row in &rows {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(row);
        assert!(
            parsed.is_ok() && !row.contains("sums: in"),
            "a row split or joined on screen: {row:?}"
        );
    }
    // The progress line is gone once the run ends: nothing is left of it.
    assert!(
        !lines.iter().any(|l| l.starts_with("sums: in ")),
        "{lines:?}"
    );
}
