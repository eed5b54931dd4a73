//! EXPLAIN of continuous queries: the streaming plan as operators with their
//! window, watermark and emit settings, snapshot-tested with `insta` (the
//! snapshots live in `tests/sql/snapshots/`).

use datafusion::arrow::array::AsArray;
use sluice::{Engine, Outcome};

async fn engine() -> Engine {
    let mut engine = Engine::new();
    for sql in [
        "CREATE SOURCE bids (auction BIGINT NOT NULL, bidder BIGINT, price BIGINT, ts TIMESTAMP NOT NULL,
             WATERMARK FOR ts AS ts - INTERVAL '2 seconds')
         WITH (connector = 'kafka', topic = 'bids', bootstrap_servers = 'localhost:9092', format = 'json',
               dead_letter_topic = 'bad-bids')",
        "CREATE MATERIALIZED VIEW totals AS SELECT bidder, sum(price) AS spent, count(*) AS n FROM bids GROUP BY bidder",
        "CREATE SOURCE old_bids (auction BIGINT NOT NULL, bidder BIGINT, price BIGINT, ts TIMESTAMP NOT NULL,
             WATERMARK FOR ts AS ts - INTERVAL '5 seconds')
         WITH (connector = 'file', path = 'bids.jsonl')",
    ] {
        engine.execute(sql).await.expect(sql);
    }
    engine
}

/// The streaming plan EXPLAIN prints for `sql`.
async fn streaming_plan(engine: &mut Engine, sql: &str) -> String {
    let Ok(Outcome::Rows(batch)) = engine.execute(&format!("EXPLAIN {sql}")).await else {
        panic!("EXPLAIN {sql} gave no rows");
    };
    let kinds = batch.column(0).as_string::<i32>();
    let plans = batch.column(1).as_string::<i32>();
    (0..batch.num_rows())
        .find(|&i| kinds.value(i) == "streaming_plan")
        .map(|i| plans.value(i).to_string())
        .unwrap_or_else(|| panic!("no streaming plan for {sql}: {batch:?}"))
}

#[tokio::test]
async fn explain_shows_operators_windows_watermarks_and_emit() {
    let mut engine = engine().await;
    let cases = [
        ("filter_project", "SELECT auction, price * 2 AS doubled FROM bids WHERE price > 100"),
        (
            "tumble",
            "CREATE MATERIALIZED VIEW per_minute AS SELECT auction, window_start, window_end, count(*) AS bids, max(price) AS top
             FROM TUMBLE(bids, ts, INTERVAL '1 minute') GROUP BY auction, window_start, window_end",
        ),
        (
            "hop_lateness_having",
            "CREATE MATERIALIZED VIEW hot WITH (allowed_lateness = '30 seconds') AS
             SELECT auction, window_start, window_end, count(*) AS bids
             FROM HOP(bids, ts, INTERVAL '10 seconds', INTERVAL '1 minute')
             GROUP BY auction, window_start, window_end HAVING count(*) > 5",
        ),
        (
            "session",
            "SELECT bidder, window_start, window_end, count(*) AS bids
             FROM SESSION(bids, ts, INTERVAL '30 seconds') GROUP BY bidder, window_start, window_end",
        ),
        (
            "session_rows",
            "SELECT bidder, price, window_start, window_end FROM SESSION(bids, ts, INTERVAL '30 seconds')",
        ),
        (
            "changelog_aggregate",
            "SELECT bidder, sum(price) AS spent FROM bids WHERE price > 0 GROUP BY bidder HAVING sum(price) > 1000",
        ),
        (
            "kafka_sink_of_view",
            "CREATE SINK big_spenders AS SELECT bidder, spent FROM totals WHERE spent > 5000
             WITH (connector = 'kafka', topic = 'big', bootstrap_servers = 'localhost:9092', format = 'json')",
        ),
        (
            "union_window",
            "SELECT auction, window_start, window_end, count(*) AS bids
             FROM (SELECT auction, window_start, window_end FROM TUMBLE(bids, ts, INTERVAL '1 minute') WHERE price > 10
                   UNION ALL
                   SELECT auction, window_start, window_end FROM TUMBLE(old_bids, ts, INTERVAL '1 minute'))
             GROUP BY auction, window_start, window_end",
        ),
        (
            "join_aggregate",
            "SELECT t.bidder, t.spent, count(*) AS bids
             FROM old_bids o JOIN totals t ON o.bidder = t.bidder AND o.price > 10
             GROUP BY t.bidder, t.spent",
        ),
        (
            // No aggregate: the join itself is split by each input's keys.
            "join_split",
            "SELECT o.auction, o.price, b.price AS later FROM old_bids o JOIN bids b
             ON o.auction = b.auction AND b.ts BETWEEN o.ts AND o.ts + INTERVAL '10' SECOND",
        ),
        (
            // The window aggregates in its inputs run before the split.
            "window_join_split",
            "SELECT x.auction, x.window_start, x.n, y.n AS old_n
             FROM (SELECT auction, window_start, window_end, count(*) AS n
                   FROM TUMBLE(bids, ts, INTERVAL '10' SECOND) GROUP BY auction, window_start, window_end) x
             JOIN (SELECT auction, window_start, window_end, count(*) AS n
                   FROM TUMBLE(old_bids, ts, INTERVAL '10' SECOND) GROUP BY auction, window_start, window_end) y
             ON x.auction = y.auction AND x.window_start = y.window_start AND x.window_end = y.window_end",
        ),
    ];
    for (name, sql) in cases {
        let plan = streaming_plan(&mut engine, sql).await;
        insta::assert_snapshot!(name, plan, sql);
    }
}
