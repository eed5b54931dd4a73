//! What a running server says about its pipelines, checked against
//! pipelines whose true numbers are known: a file of 300 records, a
//! generator at 20 rows/s, Nexmark bids at 1,000 events/s, and a generator
//! at 20,000 rows/s into a socket sink whose reader takes 100 KB/s (so it
//! must fall behind).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{define, free_port, wait_for, Server, T};
use crate::common::{sample, scrape, slow_reader};

/// One column of a pipeline's row (stage NULL) or of one of its stages, as
/// psql prints it unaligned.
fn figure(server: &Server, pipeline: &str, operator: &str, column: &str) -> String {
    let out = server.psql_ok(&format!(
        "\\pset format unaligned\n\\pset tuples_only on\nSELECT {column} FROM sluice.pipelines WHERE pipeline = '{pipeline}' AND operator = '{operator}';"
    ));
    out.lines()
        .filter(|l| !l.starts_with("Output format") && !l.starts_with("Tuples only"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn number(text: &str) -> f64 {
    text.parse()
        .unwrap_or_else(|_| panic!("not a number: '{text}'"))
}

#[test]
fn pipeline_figures_from_sql_prometheus_and_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_port = free_port();
    let server = Server::start_with(
        dir.path(),
        &[
            "--log-format",
            "json",
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
        ],
    );
    define(&server, dir.path());
    let (reader_port, stop_reader) = slow_reader(2048);
    server.psql_ok(&format!(
        "CREATE SOURCE fast (k BIGINT, v TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1 second')
             WITH (connector = 'datagen', rows_per_second = 20000, seed = 1,
                   fields.k.max = 9, fields.v.length = 200, fields.ts.kind = 'sequence');
         CREATE SINK slow FROM fast WITH (connector = 'socket', mode = 'connect', port = {reader_port});
         CREATE SOURCE bids WITH (connector = 'nexmark', table = 'bid', events_per_second = 1000);
         CREATE MATERIALIZED VIEW bids_seen AS SELECT count(*) AS n FROM bids;"
    ));

    // The file's 300 records, grouped by 3 keys: known exactly.
    assert_eq!(figure(&server, "counts", "pipeline", "records_in"), "300");
    // The file is bounded: its pipeline stops at the end of it.
    assert_eq!(figure(&server, "counts", "pipeline", "state"), "stopped");
    assert_eq!(figure(&server, "live", "pipeline", "state"), "running");
    assert_eq!(
        figure(&server, "counts", "changelog aggregate", "state_rows"),
        "3"
    );
    assert_eq!(
        figure(&server, "counts", "materialized view sink", "state_rows"),
        "3"
    );
    assert_eq!(
        figure(&server, "counts", "file source", "records_in"),
        "300"
    );

    // A join's state per side: the file's 300 rows on the left, the view's
    // 3 current rows on the right (its older rows were taken back).
    server.psql_ok(
        "CREATE MATERIALIZED VIEW ev_joined AS SELECT e.k, e.v, c.n FROM ev e JOIN counts c ON e.k = c.k;",
    );
    let sides = wait_for("the join's state per side", T, || {
        let sides = figure(&server, "ev_joined", "join", "state_by_input");
        (sides.starts_with("left 300 rows ") && sides.contains(", right 3 rows ")).then_some(sides)
    });
    assert!(sides.ends_with("B"), "{sides}");
    wait_for("the join's state per side in Prometheus", T, || {
        let text = scrape(metrics_port);
        let side = |input: &str| {
            sample(
                &text,
                "sluice_operator_input_state_rows",
                &["pipeline=\"ev_joined\"", &format!("input=\"{input}\"")],
            )
        };
        (side("left") == Some(300.0) && side("right") == Some(3.0)).then_some(())
    });

    // The slow sink: after a full 10 s window the pipeline says it falls
    // behind, and its backlog and watermark lag grow.
    let note = wait_for("the slow pipeline to fall behind", T, || {
        let note = figure(&server, "slow", "pipeline", "note");
        note.starts_with("falling behind").then_some(note)
    });
    assert!(note.contains("socket sink"), "bottleneck named: {note}");
    let rho = number(&figure(&server, "slow", "pipeline", "utilisation"));
    assert!(rho > 1.0, "utilisation {rho}");
    let busy = number(&figure(&server, "slow", "socket sink", "utilisation"));
    assert!(busy > 0.8, "sink busy fraction {busy}");
    let blocked = number(&figure(&server, "slow", "pipeline", "backpressure"));
    assert!(blocked > 0.5, "source blocked fraction {blocked}");
    let arrival = number(&figure(&server, "slow", "pipeline", "arrival_rate"));
    assert!(
        (15_000.0..25_000.0).contains(&arrival),
        "the generator's 20,000 rows/s arrive: {arrival}"
    );
    let backlog_1 = number(&figure(&server, "slow", "pipeline", "backlog"));
    let lag_1 = number(&figure(&server, "slow", "pipeline", "watermark_lag_s"));
    // The 20 rows/s generator keeps up: ρ well below 1.
    let live_arrival = number(&figure(&server, "live", "pipeline", "arrival_rate"));
    assert!(
        (14.0..26.0).contains(&live_arrival),
        "live arrival {live_arrival}"
    );
    let live_rho = number(&figure(&server, "live", "pipeline", "utilisation"));
    assert!(live_rho < 0.5, "live utilisation {live_rho}");
    // Nexmark at 1,000 events/s, of which 46 in 50 are bids: 920 bids/s
    // arrive, and a pipeline that keeps up has at most a batch due.
    let bids = number(&figure(&server, "bids_seen", "pipeline", "arrival_rate"));
    assert!((700.0..1150.0).contains(&bids), "bid arrival {bids}");
    let bid_backlog = number(&figure(&server, "bids_seen", "pipeline", "backlog"));
    assert!(
        (0.0..500.0).contains(&bid_backlog),
        "bid backlog {bid_backlog}"
    );
    // Bytes out: what the socket sink sent, the pipeline's figure too.
    let sent = number(&figure(&server, "slow", "socket sink", "bytes_out"));
    let pipeline_sent = number(&figure(&server, "slow", "pipeline", "bytes_out"));
    assert!(
        sent > 0.0 && pipeline_sent >= sent,
        "bytes out: sink {sent}, pipeline {pipeline_sent}"
    );

    let first = scrape(metrics_port);
    std::thread::sleep(Duration::from_secs(3));
    let backlog_2 = number(&figure(&server, "slow", "pipeline", "backlog"));
    let lag_2 = number(&figure(&server, "slow", "pipeline", "watermark_lag_s"));
    assert!(
        backlog_2 > backlog_1 + 20_000.0,
        "backlog {backlog_1} → {backlog_2}"
    );
    assert!(lag_2 > lag_1 + 1.0, "watermark lag {lag_1} → {lag_2}");

    // Prometheus: the same figures, and counters that move.
    let second = scrape(metrics_port);
    let slow = ["pipeline=\"slow\""];
    let rho = sample(&second, "sluice_utilisation", &slow).expect("utilisation");
    assert!(rho > 1.0, "prometheus utilisation {rho}");
    assert_eq!(sample(&second, "sluice_falling_behind", &slow), Some(1.0));
    let live = ["pipeline=\"live\""];
    let (a, b) = (
        sample(&first, "sluice_records_in_total", &live).expect("records in"),
        sample(&second, "sluice_records_in_total", &live).expect("records in"),
    );
    assert!(b >= a + 40.0, "live records_in {a} → {b} in 3 s at 20/s");
    assert_eq!(
        sample(&second, "sluice_records_in_total", &["pipeline=\"counts\""]),
        Some(300.0)
    );
    let sink_out = |t: &str| {
        sample(
            t,
            "sluice_operator_records_out_total",
            &["pipeline=\"slow\"", "operator=\"socket sink\""],
        )
        .expect("sink rows")
    };
    let before = sink_out(&first);
    wait_for("the slow sink to write more", T, || {
        (sink_out(&scrape(metrics_port)) > before).then_some(())
    });
    assert!(
        sample(
            &second,
            "sluice_operator_state_rows",
            &["pipeline=\"counts\"", "operator=\"changelog aggregate\""]
        ) == Some(3.0)
    );
    assert!(
        sample(&second, "sluice_end_to_end_latency_seconds_count", &live).is_some_and(|n| n > 0.0),
        "latency histogram:\n{second}"
    );
    assert!(second.contains("sluice_operator_batch_duration_seconds_bucket{"));
    assert!(second.contains("# TYPE sluice_records_in counter"));
    assert!(
        sample(&second, "sluice_bytes_out_total", &slow).is_some_and(|b| b > 0.0),
        "bytes out:\n{second}"
    );

    // EXPLAIN ANALYZE: the plan tree with live figures.
    let analyzed = server.psql_ok("EXPLAIN ANALYZE SINK slow;");
    assert!(analyzed.contains("FALLING BEHIND"), "{analyzed}");
    assert!(analyzed.contains("Sink: socket sink"), "{analyzed}");
    assert!(analyzed.contains("Source: datagen source"), "{analyzed}");
    assert!(analyzed.contains("blocked"), "{analyzed}");
    assert!(analyzed.contains(", sent "), "{analyzed}");
    let analyzed = server.psql_ok("EXPLAIN ANALYZE MATERIALIZED VIEW counts;");
    assert!(analyzed.contains("rows in 300"), "{analyzed}");
    assert!(analyzed.contains("state 3 rows"), "{analyzed}");
    let err = server.psql("EXPLAIN ANALYZE nothing;");
    assert!(String::from_utf8_lossy(&err.stderr)
        .contains("no materialized view or sink named 'nothing'"));

    // Logs: JSON lines; the falling-behind warning once, with its figures.
    let warnings: Vec<serde_json::Value> = server
        .log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("pipeline is falling behind"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["level"], "WARN");
    assert_eq!(warnings[0]["fields"]["pipeline"], "slow");
    assert_eq!(warnings[0]["fields"]["bottleneck"], "socket sink");

    // DROP stops the pipeline (once the reader takes what was sent) and
    // forgets its figures.
    stop_reader.store(true, Ordering::Relaxed);
    server.psql_ok("DROP SINK slow;");
    assert_eq!(figure(&server, "slow", "pipeline", "state"), "");
    assert!(
        sample(&scrape(metrics_port), "sluice_utilisation", &slow).is_none(),
        "dropped pipeline still exported"
    );
    server.stop();
}

/// Without `--metrics-listen` nothing listens; a bad address is an error
/// that names it.
#[test]
fn metrics_listen_bad_address_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--metrics-listen", "256.0.0.1:1", "run", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg(write_script(dir.path()))
        .output()
        .expect("run sluice");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot serve metrics on 256.0.0.1:1"),
        "{stderr}"
    );
}

fn write_script(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("s.sql");
    std::fs::write(
        &script,
        "CREATE SOURCE g (k BIGINT) WITH (connector = 'datagen', limit = 10);
         SELECT count(*) FROM g;",
    )
    .expect("script");
    script
}
