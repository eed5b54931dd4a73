//! Connectors end to end through the `sluice` binary: files, sockets and the
//! generator, bad input with dead letters, statement errors, and Ctrl-C.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::{
    final_counts, final_figure, free_port, growing_counts, json_lines, printed_tables, read_lines,
    wait_for, Sluice,
};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// Every malformed kind in one file, between good records: the good ones all
/// arrive, the bad ones are counted and dead-lettered verbatim, and the
/// positions are logged.
#[test]
fn bad_records_are_counted_and_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = |i: i64| format!("{{\"k\": \"key{}\", \"v\": {i}}}", i % 3).into_bytes();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("invalid JSON", b"{\"k\": \"a\", \"v\": ".to_vec()),
        ("wrong type", b"{\"k\": \"a\", \"v\": \"seven\"}".to_vec()),
        ("missing required field", b"{\"v\": 4}".to_vec()),
        ("not an object", b"[1, 2, 3]".to_vec()),
        ("invalid UTF-8", b"{\"k\": \"\xff\xfe\", \"v\": 1}".to_vec()),
        (
            "oversized",
            format!("{{\"k\": \"{}\", \"v\": 1}}", "x".repeat(300)).into_bytes(),
        ),
    ];
    let mut input = Vec::new();
    let mut expected_good = Vec::new();
    let mut bad_lines = Vec::new();
    let mut line = 0;
    for i in 0..60i64 {
        input.extend(good(i));
        input.push(b'\n');
        line += 1;
        expected_good.push(i);
        if i % 10 == 5 {
            let (_, record) = &bad[(i / 10) as usize];
            input.extend(record);
            input.push(b'\n');
            line += 1;
            bad_lines.push((line, record.clone()));
        }
    }
    std::fs::write(dir.path().join("input.jsonl"), &input).expect("input");
    let mut sluice = Sluice::run(
        dir.path(),
        "CREATE SOURCE events (k TEXT NOT NULL, v BIGINT) WITH (
             connector = 'file', path = 'input.jsonl', format = 'json',
             dead_letter = 'dead/letters.jsonl', max_record_bytes = 200);
         CREATE SINK out AS SELECT k, v * 10 AS v10 FROM events
             WITH (connector = 'file', path = 'out.jsonl');",
    );
    let status = sluice.wait(T);
    let stderr = sluice.stderr();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");

    let out = json_lines(&dir.path().join("out.jsonl"));
    let got: Vec<i64> = out
        .iter()
        .map(|r| r["v10"].as_i64().expect("v10") / 10)
        .collect();
    assert_eq!(got, expected_good, "every good record arrives, in order");

    let dead = std::fs::read(dir.path().join("dead/letters.jsonl")).expect("dead letters");
    let expected_dead: Vec<u8> = bad_lines
        .iter()
        .flat_map(|(_, r)| r.iter().copied().chain(std::iter::once(b'\n')))
        .collect();
    assert_eq!(
        dead, expected_dead,
        "bad records are dead-lettered verbatim"
    );
    for (line, _) in &bad_lines {
        assert!(
            stderr.contains(&format!("input.jsonl:{line}")),
            "position input.jsonl:{line} is logged; stderr:\n{stderr}"
        );
    }
    assert!(stderr.contains("exceeds max_record_bytes"), "{stderr}");
    assert_eq!(final_counts(&stderr, "out"), [66, 60, 6, 6], "{stderr}");
}

/// A file long enough for many batches decodes them on several cores at
/// once (`--parallelism 4`), and hands them on in the file's order: every
/// good record arrives in order, every bad one is dead-lettered in order.
#[test]
fn a_file_decoded_on_several_cores_keeps_its_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut input = String::new();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for i in 0..120_000i64 {
        if i % 9_973 == 17 {
            let record = format!("{{\"id\": {i}, \"pad\": \"broken\"");
            input.push_str(&record);
            bad.push(record);
        } else {
            input.push_str(&format!(
                "{{\"id\": {i}, \"pad\": \"{}\"}}",
                "x".repeat((i % 40) as usize)
            ));
            good.push(i);
        }
        input.push('\n');
    }
    std::fs::write(dir.path().join("input.jsonl"), &input).expect("input");
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        "CREATE SOURCE rows (id BIGINT NOT NULL, pad TEXT) WITH (
             connector = 'file', path = 'input.jsonl', dead_letter = 'dead.jsonl');
         CREATE SINK out AS SELECT id FROM rows WITH (connector = 'file', path = 'out.jsonl');",
    )
    .expect("script");
    let mut sluice = Sluice::start_with(
        dir.path(),
        Some(&script),
        &dir.path().join("data"),
        &["--parallelism", "4"],
    );
    let status = sluice.wait(T);
    let stderr = sluice.stderr();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    let got: Vec<i64> = read_lines(&dir.path().join("out.jsonl"))
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    assert_eq!(got.len(), good.len(), "every good record arrives");
    assert!(got == good, "records arrive in the file's order");
    let dead = read_lines(&dir.path().join("dead.jsonl"));
    assert_eq!(dead, bad, "bad records are dead-lettered in order");
}

/// Numbers an integer column cannot hold are bad records like any other:
/// a fraction is not truncated, a number out of range is not wrapped, and a
/// missing NOT NULL field is named (not Arrow's words for it).
#[test]
fn numbers_an_integer_column_cannot_hold_are_bad_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = [
        r#"{"id": 1, "big": 7, "int": 7, "small": 7}"#,
        r#"{"id": 2, "big": 7.25}"#,
        r#"{"id": 3, "int": 7.25}"#,
        r#"{"id": 4, "small": 7.25}"#,
        r#"{"id": 5, "small": 70000}"#,
        r#"{"id": 6, "big": 1e400}"#,
        r#"{"big": 8}"#,
        r#"{"id": 8, "big": 8.0, "int": 1e3, "small": -32768}"#,
    ];
    std::fs::write(dir.path().join("input.jsonl"), lines.join("\n") + "\n").expect("input");
    let mut sluice = Sluice::run(
        dir.path(),
        "CREATE SOURCE nums (id BIGINT NOT NULL, big BIGINT, int INT, small SMALLINT) WITH (
             connector = 'file', path = 'input.jsonl', dead_letter = 'dead.jsonl');
         CREATE SINK out FROM nums WITH (connector = 'file', path = 'out.jsonl');",
    );
    let status = sluice.wait(T);
    let stderr = sluice.stderr();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");

    assert_eq!(
        json_lines(&dir.path().join("out.jsonl")),
        vec![
            json!({"id": 1, "big": 7, "int": 7, "small": 7}),
            json!({"id": 8, "big": 8, "int": 1000, "small": -32768}),
        ],
        "integral numbers pass, whatever their spelling"
    );
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).expect("dead letters");
    assert_eq!(
        dead,
        lines[1..7].join("\n") + "\n",
        "dead-lettered verbatim"
    );
    for (line, reason) in [
        (
            2,
            r#"field "big": 7.25 is not an integer for a column of type BIGINT"#,
        ),
        (
            3,
            r#"field "int": 7.25 is not an integer for a column of type INT"#,
        ),
        (
            4,
            r#"field "small": 7.25 is not an integer for a column of type SMALLINT"#,
        ),
        (
            5,
            r#"field "small": 70000 is out of range for a column of type SMALLINT"#,
        ),
        (
            6,
            r#"field "big": 1e400 is out of range for a column of type BIGINT"#,
        ),
        (7, r#"field "id" is missing but the column is NOT NULL"#),
    ] {
        let logged = stderr
            .lines()
            .find(|l| l.contains(&format!("input.jsonl:{line} ")))
            .unwrap_or_default();
        assert!(
            logged.contains(reason),
            "line {line}: {reason}; stderr:\n{stderr}"
        );
    }
    assert!(!stderr.contains("StructArray"), "{stderr}");
    assert_eq!(final_counts(&stderr, "out"), [8, 2, 6, 6], "{stderr}");
}

/// A followed file: the pipeline keeps running past a bad record, keeps
/// a running aggregate, and on Ctrl-C flushes and exits 0.
#[test]
fn follow_mode_keeps_running_past_bad_records_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.jsonl");
    std::fs::write(
        &input,
        "{\"k\": \"a\", \"v\": 150}\n{\"k\": \"b\", \"v\": 50}\n",
    )
    .expect("input");
    let mut sluice = Sluice::run(
        dir.path(),
        "CREATE SOURCE events (k TEXT, v BIGINT) WITH (
             connector = 'file', path = 'input.jsonl', mode = 'follow', dead_letter = 'dead.jsonl');
         CREATE SINK sums AS SELECT k, sum(v * 2) AS total FROM events WHERE v > 100 GROUP BY k
             WITH (connector = 'file', path = 'sums.jsonl');",
    );
    let out = dir.path().join("sums.jsonl");
    let latest = |path: &std::path::Path| {
        let mut m = BTreeMap::new();
        for r in json_lines(path) {
            m.insert(
                r["k"].as_str().expect("k").to_string(),
                (r["total"].as_i64(), r["op"].clone()),
            );
        }
        m
    };
    wait_for("first sum", T, || {
        latest(&out).get("a").filter(|v| v.0 == Some(300)).cloned()
    });

    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .expect("append");
    f.write_all(b"this is not json\n{\"k\": \"a\", \"v\": 200}\n{\"k\": \"b\", \"v\": 101}\n")
        .expect("append");
    drop(f);
    wait_for("sums after the bad record", T, || {
        let m = latest(&out);
        (m.get("a").map(|v| v.0) == Some(Some(700)) && m.get("b").map(|v| v.0) == Some(Some(202)))
            .then_some(())
    });
    assert_eq!(
        read_lines(&dir.path().join("dead.jsonl")),
        vec!["this is not json"]
    );
    // A changelog orders the changes of each key (keys run on several
    // cores, so changes of different keys may interleave either way).
    let mut ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in json_lines(&out) {
        ops.entry(r["k"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(r["op"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(
        ops,
        BTreeMap::from([
            (
                "a".to_string(),
                vec!["insert".to_string(), "update".to_string()]
            ),
            ("b".to_string(), vec!["insert".to_string()]),
        ])
    );

    sluice.interrupt();
    let status = sluice.wait(T);
    assert!(
        status.success(),
        "Ctrl-C exits 0; stderr:\n{}",
        sluice.stderr()
    );
    assert!(
        sluice.stderr().contains("errors 1 (dead-lettered 1)"),
        "{}",
        sluice.stderr()
    );
}

#[test]
fn csv_file_to_csv_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut input = String::from("symbol,price,volume\n");
    let mut expected = vec!["symbol,notional".to_string()];
    for i in 0..500 {
        let (sym, price, vol) = (
            ["AAPL", "MSFT", "GOOG"][i % 3],
            100.0 + i as f64 / 4.0,
            i as i64 % 7,
        );
        input.push_str(&format!("{sym},{price},{vol}\n"));
        if vol > 3 {
            expected.push(format!("{sym},{:?}", price * vol as f64));
        }
    }
    std::fs::write(dir.path().join("trades.csv"), input).expect("input");
    let mut sluice = Sluice::run(
        dir.path(),
        "CREATE SOURCE trades (symbol TEXT, price DOUBLE PRECISION, volume BIGINT)
             WITH (connector = 'file', path = 'trades.csv', format = 'csv', header = 'true');
         CREATE SINK big AS SELECT symbol, price * volume AS notional FROM trades WHERE volume > 3
             WITH (connector = 'file', path = 'big.csv', format = 'csv', header = 'true');",
    );
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
    assert_eq!(read_lines(&dir.path().join("big.csv")), expected);
}

/// Socket source listening, socket sink connecting: lines in, lines out;
/// the listening source runs until Ctrl-C.
#[test]
fn socket_listen_source_to_socket_connect_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let in_port = free_port();
    let out = TcpListener::bind("127.0.0.1:0").expect("bind");
    let out_port = out.local_addr().expect("addr").port();
    let mut sluice = Sluice::run(
        dir.path(),
        &format!(
            "CREATE SOURCE readings (device TEXT, temp DOUBLE PRECISION)
                 WITH (connector = 'socket', mode = 'listen', port = {in_port});
             CREATE SINK hot AS SELECT device, temp FROM readings WHERE temp > 30
                 WITH (connector = 'socket', mode = 'connect', port = {out_port});"
        ),
    );
    let mut conn = wait_for("source listening", T, || {
        TcpStream::connect(("127.0.0.1", in_port)).ok()
    });
    let mut expected = Vec::new();
    for i in 0..200 {
        let temp = 20.0 + (i % 20) as f64;
        writeln!(conn, "{}", json!({"device": format!("d{i}"), "temp": temp})).expect("send");
        if temp > 30.0 {
            expected.push(json!({"device": format!("d{i}"), "temp": temp}));
        }
    }
    drop(conn);
    let (mut sink_conn, _) = out.accept().expect("sink connects");
    sink_conn
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut received = String::new();
    let mut buf = [0u8; 4096];
    while received.lines().count() < expected.len() {
        let n = sink_conn.read(&mut buf).expect("read");
        assert!(n > 0, "sink closed early; got {received}");
        received.push_str(std::str::from_utf8(&buf[..n]).expect("utf8"));
    }
    let got: Vec<serde_json::Value> = received
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(got, expected);
    sluice.interrupt();
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
}

/// A connecting socket source ends when the peer closes: the run finishes
/// by itself.
#[test]
fn socket_connect_source_ends_at_eof() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        for i in 0..1000 {
            writeln!(s, "{{\"n\": {i}}}").expect("write");
        }
    });
    let mut sluice = Sluice::run(
        dir.path(),
        &format!(
            "CREATE SOURCE nums (n BIGINT) WITH (connector = 'socket', mode = 'connect', port = {port});
             CREATE SINK stats AS SELECT n % 2 AS parity, count(*) AS c, sum(n) AS s FROM nums GROUP BY n % 2
                 WITH (connector = 'file', path = 'stats.jsonl');"
        ),
    );
    server.join().expect("server");
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
    let mut last = BTreeMap::new();
    for r in json_lines(&dir.path().join("stats.jsonl")) {
        last.insert(
            r["parity"].as_i64().expect("parity"),
            (r["c"].as_i64(), r["s"].as_i64()),
        );
    }
    let sum = |p: i64| (0..1000).filter(|n| n % 2 == p).sum::<i64>();
    assert_eq!(last[&0], (Some(500), Some(sum(0))));
    assert_eq!(last[&1], (Some(500), Some(sum(1))));
}

#[test]
fn datagen_is_reproducible_and_honours_its_limit() {
    let run = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sluice = Sluice::run(
            dir.path(),
            "CREATE SOURCE g (id BIGINT, user_name TEXT, score DOUBLE PRECISION, ok BOOLEAN, at TIMESTAMP)
                 WITH (connector = 'datagen', rows_per_second = 0, limit = 5000, seed = 99,
                       fields.id.kind = 'sequence', fields.user_name.length = 5,
                       fields.score.min = 1, fields.score.max = 2, fields.ok.null_rate = 0.5);
             CREATE SINK out AS SELECT id, user_name, score, ok FROM g WITH (connector = 'file', path = 'g.jsonl');",
        );
        assert!(sluice.wait(T).success(), "{}", sluice.stderr());
        json_lines(&dir.path().join("g.jsonl"))
    };
    let a = run();
    assert_eq!(a.len(), 5000);
    assert_eq!(a, run(), "same seed, same rows");
    for (i, r) in a.iter().enumerate() {
        assert_eq!(r["id"].as_i64(), Some(i as i64));
        assert_eq!(r["user_name"].as_str().map(str::len), Some(5));
        let s = r["score"].as_f64().expect("score");
        assert!((1.0..=2.0).contains(&s));
    }
    let nulls = a.iter().filter(|r| r["ok"].is_null()).count();
    assert!(
        (2000..3000).contains(&nulls),
        "null_rate 0.5 gave {nulls} nulls"
    );
}

/// A script with a bad statement starts nothing and says which statement.
#[test]
fn statement_errors_are_reported_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.jsonl"), "{\"a\": 1}\n").expect("input");
    let mut sluice = Sluice::run(
        dir.path(),
        "CREATE SOURCE s (a BIGINT) WITH (connector = 'file', path = 'in.jsonl');\n\
         CREATE SINK ok FROM s WITH (connector = 'file', path = 'ok.jsonl');\n\
         \n\
         CREATE SINK bad AS SELECT b FROM s WITH (connector = 'file', path = 'bad.jsonl');\n",
    );
    let status = sluice.wait(T);
    assert_eq!(status.code(), Some(2));
    let stderr = sluice.stderr();
    assert!(stderr.contains("statement 3 (line 4) failed"), "{stderr}");
    assert!(stderr.contains("No field named b"), "{stderr}");
    assert!(!dir.path().join("ok.jsonl").exists(), "no pipeline started");
}

/// The README's first command: the demo runs with no Kafka and ends by itself.
#[test]
fn demo_script_runs_to_completion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/demo.sql");
    let mut sluice = Sluice::run_file(dir.path(), &script);
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
    let changes = json_lines(&dir.path().join("sluice.stdout"));
    let mut last = BTreeMap::new();
    for c in &changes {
        last.insert(
            c["key"].as_str().expect("key").to_string(),
            c["events"].as_i64().expect("events"),
        );
    }
    assert_eq!(last.len(), 5, "five keys");
    let big = json_lines(&dir.path().join("out/demo_big_values.jsonl"));
    assert!(big
        .iter()
        .all(|r| r["value"].as_i64().expect("value") > 900));
    // Values are uniform in 0..=1000: about 90% pass `value > 100`, 10% `> 900`.
    let counted: i64 = last.values().sum();
    assert!((17_000..19_000).contains(&counted), "{counted}");
    assert!((1_500..2_500).contains(&big.len()), "{}", big.len());
}

/// A value an expression fails on (division by zero, a bad cast) drops its
/// row, counted as an error; the other rows of the batch go on, for plain
/// and aggregating queries alike.
#[test]
fn rows_that_fail_an_expression_are_dropped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut input = String::new();
    let mut expected_rows = Vec::new();
    let mut expected_sums: BTreeMap<String, i64> = BTreeMap::new();
    let mut bad = 0;
    for i in 0..100i64 {
        let v = i % 7; // 0 → division by zero
        let s = if i % 11 == 0 {
            "abc".to_string()
        } else {
            i.to_string()
        };
        input.push_str(&format!(
            "{{\"k\": \"k{}\", \"v\": {v}, \"s\": \"{s}\"}}\n",
            i % 3
        ));
        if v == 0 || s == "abc" {
            bad += 1;
        } else {
            expected_rows.push((i, 700 / v));
            *expected_sums.entry(format!("k{}", i % 3)).or_default() += 700 / v;
        }
    }
    std::fs::write(dir.path().join("in.jsonl"), input).expect("input");
    let mut sluice = Sluice::run(
        dir.path(),
        "CREATE SOURCE e (k TEXT, v BIGINT, s TEXT) WITH (connector = 'file', path = 'in.jsonl');
         CREATE SINK plain AS SELECT CAST(s AS BIGINT) AS i, 700 / v AS q FROM e
             WITH (connector = 'file', path = 'plain.jsonl');
         CREATE SINK sums AS SELECT k, sum(700 / v + CAST(s AS BIGINT) * 0) AS total FROM e GROUP BY k
             WITH (connector = 'file', path = 'sums.jsonl');",
    );
    let status = sluice.wait(T);
    let stderr = sluice.stderr();
    assert!(status.success(), "{stderr}");
    let plain: Vec<(i64, i64)> = json_lines(&dir.path().join("plain.jsonl"))
        .iter()
        .map(|r| (r["i"].as_i64().expect("i"), r["q"].as_i64().expect("q")))
        .collect();
    assert_eq!(plain, expected_rows);
    let mut sums = BTreeMap::new();
    for r in json_lines(&dir.path().join("sums.jsonl")) {
        sums.insert(
            r["k"].as_str().expect("k").to_string(),
            r["total"].as_i64().expect("total"),
        );
    }
    assert_eq!(sums, expected_sums);
    assert_eq!(
        final_counts(&stderr, "plain")[..3],
        [100, expected_rows.len() as u64, bad],
        "{stderr}"
    );
    assert_eq!(final_counts(&stderr, "sums")[2], bad, "{stderr}");
    assert!(stderr.contains("division by zero"), "{stderr}");
}

/// SIGTERM stops as cleanly as Ctrl-C; `sluice check` validates without
/// running.
#[test]
fn sigterm_stops_cleanly_and_check_runs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = "CREATE SOURCE g (k BIGINT, v BIGINT) WITH (connector = 'datagen', rows_per_second = 500, seed = 1,
                   fields.k.min = 1, fields.k.max = 3);
               CREATE SINK sums AS SELECT k, count(*) AS n FROM g GROUP BY k WITH (connector = 'file', path = 'sums.jsonl');";
    std::fs::write(dir.path().join("check.sql"), sql).expect("script");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "check.sql"])
        .current_dir(dir.path())
        .output()
        .expect("sluice check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stderr).contains("check.sql: OK (1 pipelines)"));
    assert!(
        !dir.path().join("sums.jsonl").exists(),
        "check starts nothing"
    );

    let mut sluice = Sluice::run(dir.path(), sql);
    let out = dir.path().join("sums.jsonl");
    sluice.wait_for("some counts", T, || {
        (json_lines(&out).len() >= 3).then_some(())
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &sluice.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
    // Every generated row was counted once the sink flushed.
    let stderr = sluice.stderr();
    assert!(stderr.contains("stopped after "), "{stderr}");
    let [generated, ..] = final_counts(&stderr, "sums");
    let mut last = BTreeMap::new();
    for r in json_lines(&out) {
        last.insert(r["k"].as_i64().expect("k"), r["n"].as_u64().expect("n"));
    }
    assert_eq!(last.values().sum::<u64>(), generated, "{stderr}");
}

/// Event time end to end on a followed file: windows close as the watermark
/// passes them, a late row inside `allowed_lateness` updates its window, one
/// beyond it is dropped and counted.
#[test]
fn windows_close_on_watermark_and_late_rows_update_within_allowance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("clicks.jsonl");
    let line = |user: &str, sec: u32| {
        format!("{{\"user_id\": \"{user}\", \"ts\": \"2026-03-01T12:00:{sec:02}Z\"}}\n")
    };
    std::fs::write(&input, [line("a", 1), line("a", 3), line("b", 4)].concat()).expect("input");
    let mut sluice = Sluice::run(
        dir.path(),
        "CREATE SOURCE clicks (user_id TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1 second')
             WITH (connector = 'file', path = 'clicks.jsonl', mode = 'follow');
         CREATE SINK counts AS
             SELECT user_id, window_start, window_end, count(*) AS n
             FROM TUMBLE(clicks, ts, INTERVAL '5 seconds') GROUP BY user_id, window_start, window_end
         WITH (connector = 'file', path = 'counts.jsonl', allowed_lateness = '10 seconds');",
    );
    let out = dir.path().join("counts.jsonl");
    let append = |text: String| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&input)
            .expect("append");
        f.write_all(text.as_bytes()).expect("append");
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(json_lines(&out).is_empty(), "window [0, 5) is still open");
    // 12:00:07 moves the watermark to 12:00:06: [00, 05) closes.
    append(line("b", 7));
    sluice.wait_for("the first window", T, || {
        (json_lines(&out).len() == 2).then_some(())
    });
    let rows = json_lines(&out);
    let summary: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}",
                r["user_id"].as_str().unwrap_or(""),
                r["n"],
                r["op"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        summary.iter().filter(|s| s.ends_with(":insert")).count(),
        2,
        "{summary:?}"
    );
    assert!(
        summary.contains(&"a:2:insert".to_string()) && summary.contains(&"b:1:insert".to_string()),
        "{summary:?}"
    );
    // Late for the watermark, within the allowance: the window is updated.
    append(line("a", 2));
    sluice.wait_for("the update", T, || {
        json_lines(&out)
            .iter()
            .any(|r| r["op"] == "update" && r["user_id"] == "a" && r["n"] == 3)
            .then_some(())
    });
    // 12:00:30 → watermark 12:00:29: [00, 05) is beyond the allowance now.
    append(line("c", 30));
    sluice.wait_for("the watermark to pass 12:00:10", T, || {
        json_lines(&out)
            .iter()
            .any(|r| r["user_id"] == "b" && r["window_start"] == "2026-03-01T12:00:05")
            .then_some(())
    });
    append(line("a", 1));
    std::thread::sleep(Duration::from_millis(500));
    sluice.interrupt();
    assert!(sluice.wait(T).success(), "{}", sluice.stderr());
    assert_eq!(
        final_figure(&sluice.stderr(), "counts", "late"),
        1,
        "the too-late row is counted: {}",
        sluice.stderr()
    );
    let rows = json_lines(&out);
    assert!(
        !rows.iter().any(|r| r["user_id"] == "a" && r["n"] == 4),
        "the too-late row changed nothing: {rows:?}"
    );
}

/// Every scenario under `queries/scenarios/` runs on its generators, and each
/// of its queries over the views has an answer. Run again on the same data
/// directory, the restored definitions (seeded generators) give the same
/// answers.
#[test]
fn scenario_scripts_answer_their_questions_and_restart_the_same() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/scenarios");
    for name in ["finance", "ecommerce", "security", "iot"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = root.join(format!("{name}.sql"));
        let data = dir.path().join("data");
        let mut first = Sluice::start(dir.path(), Some(&script), &data);
        assert!(first.wait(T).success(), "{name}: {}", first.stderr());
        let stdout = std::fs::read_to_string(dir.path().join("sluice.stdout")).expect("stdout");
        let tables = printed_tables(&stdout);
        assert!(!tables.is_empty(), "{name} printed no result:\n{stdout}");
        for t in &tables {
            assert!(!t.is_empty(), "{name}: a query has no rows:\n{stdout}");
        }
        let mut again = Sluice::start(dir.path(), Some(&script), &data);
        assert!(
            again.wait(T).success(),
            "{name} (restart): {}",
            again.stderr()
        );
        let second = std::fs::read_to_string(dir.path().join("sluice.stdout")).expect("stdout");
        assert_eq!(
            printed_tables(&second),
            tables,
            "{name}: same answers after a restart"
        );
    }
}

/// File sources restart from the last checkpoint's byte offsets, with the
/// aggregates' and open windows' state. Restarted on the same data
/// directory, every sink goes on with what was appended and writes nothing
/// it wrote before; a file read once to its end writes nothing again.
/// Output files are added to, not replaced.
#[test]
fn file_sources_resume_across_restarts_without_loss_or_duplicates() {
    file_restart_test(true);
}

/// The same without checkpoints: positions kept in the data directory, and
/// state rebuilt by re-reading.
#[test]
fn file_sources_without_checkpoints_rebuild_state_by_re_reading() {
    file_restart_test(false);
}

fn file_restart_test(checkpoints: bool) {
    // With checkpoints, each run asks for another parallelism (3, 2, 1):
    // the keyed aggregates' state, split three ways by the first run, is
    // re-split for each later one.
    let options = |run: usize| -> Vec<&str> {
        let mut o = vec![
            "--checkpoint-interval",
            if checkpoints { "1s" } else { "off" },
        ];
        if checkpoints {
            o.extend(["--parallelism", ["3", "2", "1"][run]]);
        }
        o
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Event time: line n is at 12:00:00 + n × 100 ms.
    let line = |n: u64| {
        format!(
            "{{\"k\": \"k{}\", \"v\": {n}, \"ts\": \"2026-03-01T12:00:{:02}.{:03}Z\"}}\n",
            n % 5,
            n / 10,
            (n % 10) * 100
        )
    };
    let append = |file: &str, range: std::ops::Range<u64>| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join(file))
            .expect("input");
        f.write_all(range.map(line).collect::<String>().as_bytes())
            .expect("append");
    };
    append("live.jsonl", 0..100);
    append("grows.jsonl", 0..50);
    append("fixed.jsonl", 0..50);
    let script = dir.path().join("pipeline.sql");
    let source = |name: &str, mode: &str| {
        format!(
            "CREATE SOURCE {name} (k TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)
                 WITH (connector = 'file', path = '{name}.jsonl', mode = '{mode}');"
        )
    };
    let copy = |name: &str| {
        format!(
            "CREATE SINK {name}_copy AS SELECT v FROM {name}
                 WITH (connector = 'file', path = '{name}_copy.jsonl');"
        )
    };
    let per_key = |name: &str| {
        format!(
            "CREATE SINK {name}_keys AS SELECT k, count(*) AS n FROM {name} GROUP BY k
                 WITH (connector = 'file', path = '{name}_keys.jsonl');"
        )
    };
    let windows = |name: &str| {
        format!(
            "CREATE SINK {name}_windows AS SELECT window_start, count(*) AS n
                 FROM TUMBLE({name}, ts, INTERVAL '2 seconds') GROUP BY window_start, window_end
                 WITH (connector = 'file', path = '{name}_windows.jsonl');"
        )
    };
    std::fs::write(
        &script,
        [
            source("live", "follow"),
            copy("live"),
            per_key("live"),
            windows("live"),
            source("grows", "once"),
            copy("grows"),
            per_key("grows"),
            source("fixed", "once"),
            windows("fixed"),
        ]
        .concat(),
    )
    .expect("script");
    let out = |name: &str| json_lines(&dir.path().join(format!("{name}.jsonl")));
    let values = |name: &str| -> Vec<u64> {
        let mut v: Vec<u64> = out(name)
            .iter()
            .map(|r| r["v"].as_u64().expect("v"))
            .collect();
        v.sort();
        v
    };
    let counts = |name: &str| growing_counts(&dir.path().join(format!("{name}.jsonl")));
    let total = |name: &str| counts(name).values().sum::<i64>();
    let window_counts = |name: &str| -> Vec<(String, i64)> {
        out(name)
            .iter()
            .map(|r| {
                (
                    r["window_start"].as_str().expect("start").to_string(),
                    r["n"].as_i64().expect("n"),
                )
            })
            .collect()
    };
    let full_windows = |count: u64| -> Vec<(String, i64)> {
        (0..count)
            .map(|w| (format!("2026-03-01T12:00:{:02}", w * 2), 20))
            .collect()
    };

    // Run 1: live has 100 lines (windows up to [06, 08) close; [08, 10) is
    // open at the stop), grows and fixed are read to their end.
    let mut first = Sluice::start_with(dir.path(), Some(&script), &data, &options(0));
    first.wait_for("every input in every sink", T, || {
        (values("live_copy").len() == 100
            && total("live_keys") == 100
            && window_counts("live_windows").len() == 4
            && values("grows_copy").len() == 50
            && total("grows_keys") == 50
            && window_counts("fixed_windows").len() == 3)
            .then_some(())
    });
    first.interrupt();
    assert!(first.wait(T).success(), "{}", first.stderr());
    assert_eq!(window_counts("live_windows"), full_windows(4));
    // fixed ended: its last window [04, 06) was flushed with 10 rows.
    let fixed = window_counts("fixed_windows");
    assert_eq!(fixed.last(), Some(&("2026-03-01T12:00:04".to_string(), 10)));

    // Run 2, from the data directory alone, after more lines arrived.
    append("live.jsonl", 100..200);
    append("grows.jsonl", 50..80);
    let mut second = Sluice::start_with(dir.path(), None, &data, &options(1));
    second.wait_for("the appended lines in every sink", T, || {
        (values("live_copy").len() == 200
            && total("live_keys") == 200
            && window_counts("live_windows").len() == 9
            && values("grows_copy").len() == 80
            && total("grows_keys") == 80)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    second.interrupt();
    assert!(second.wait(T).success(), "{}", second.stderr());
    assert_eq!(values("live_copy"), (0..200).collect::<Vec<_>>());
    assert_eq!(values("grows_copy"), (0..80).collect::<Vec<_>>());
    let per_key_want = |n: u64| -> BTreeMap<String, i64> {
        (0..5).map(|k| (format!("k{k}"), (n / 5) as i64)).collect()
    };
    assert_eq!(counts("live_keys"), per_key_want(200));
    assert_eq!(counts("grows_keys"), per_key_want(80));
    assert_eq!(window_counts("live_windows"), full_windows(9));
    if checkpoints {
        // The per-key sinks' state, taken split three ways, came back
        // split two ways.
        let stderr = second.stderr();
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("re-split its checkpoint's keyed state")
                    && l.contains("from=3 to=2")),
            "{stderr}"
        );
    }
    assert_eq!(
        window_counts("fixed_windows"),
        fixed,
        "fixed wrote nothing again"
    );

    // Run 3: nothing new anywhere; nothing is written.
    let outputs = || -> Vec<Vec<String>> {
        [
            "live_copy",
            "live_keys",
            "live_windows",
            "grows_copy",
            "grows_keys",
            "fixed_windows",
        ]
        .iter()
        .map(|n| read_lines(&dir.path().join(format!("{n}.jsonl"))))
        .collect()
    };
    let before = outputs();
    let mut third = Sluice::start_with(dir.path(), None, &data, &options(2));
    third.wait_for(
        "the live pipelines to catch up, the others to end",
        T,
        || {
            let stderr = third.stderr();
            let resumed = if checkpoints {
                stderr.matches("pipeline restored from checkpoint").count() == 6
            } else {
                stderr.matches("caught up with the last run").count() == 2
            };
            (resumed && stderr.matches("pipeline finished").count() == 3).then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    third.interrupt();
    assert!(third.wait(T).success(), "{}", third.stderr());
    let after = outputs();
    assert_eq!(before, after, "a restart with no new input writes nothing");
    if checkpoints {
        let stderr = third.stderr();
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("re-split its checkpoint's keyed state")
                    && l.contains("from=2 to=1")),
            "{stderr}"
        );
    }
}

#[path = "connectors/checkpoints.rs"]
mod checkpoints;
#[path = "connectors/script_state.rs"]
mod script_state;
#[path = "connectors/terminal.rs"]
mod terminal;
