//! Materialized views against DataFusion's batch answer: after a bounded,
//! out-of-order input ends, every kind of view (append-only, one row per
//! group, windowed, with retention, and views chained over each of those)
//! holds exactly what DataFusion computes over the same rows.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use sluice::Engine;

use super::rows_of;

const BASE: i64 = 1_700_000_000_000;
/// The source's watermark delay; the input is never further out of order,
/// so no row is late and the batch answer is the whole answer.
const DELAY_MS: i64 = 3_000;

#[derive(Debug, Clone)]
struct Row {
    k: String,
    v: i64,
    ts: i64,
}

fn rows_strategy() -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec((0u8..6, -50i64..200, 0i64..DELAY_MS), 1..300).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (k, v, jitter))| Row {
                k: format!("k{k}"),
                v,
                // Time advances 250 ms a row; each row is up to the delay late.
                ts: BASE + i as i64 * 250 - jitter,
            })
            .collect()
    })
}

fn batch(rows: &[Row]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.k.clone()),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.v))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.ts),
            )),
        ],
    )
    .expect("batch")
}

const TOTALS: &str = "SELECT k, sum(v) AS s, count(*) AS n, max(v) AS mx FROM ev GROUP BY k";
const WIN: &str = "SELECT k, window_start, window_end, count(*) AS c, sum(v) AS s \
                   FROM TUMBLE(ev, ts, INTERVAL '10 seconds') GROUP BY k, window_start, window_end";
const WIN_ORACLE: &str = "SELECT k, date_bin(INTERVAL '10 seconds', ts, TIMESTAMP '1970-01-01') AS window_start, \
       date_bin(INTERVAL '10 seconds', ts, TIMESTAMP '1970-01-01') + INTERVAL '10 seconds' AS window_end, \
       count(*) AS c, sum(v) AS s FROM ev GROUP BY 1, 2, 3";

/// (view, its definition, DataFusion's query for the same rows)
fn views() -> Vec<(&'static str, String, String)> {
    let nested = |inner: &str, outer: &str, name: &str| {
        outer.replace(
            &format!("FROM {name}"),
            &format!("FROM ({inner}) AS {name}"),
        )
    };
    vec![
        (
            "filtered",
            "SELECT k, v, ts FROM ev WHERE v % 3 = 0".into(),
            "SELECT k, v, ts FROM ev WHERE v % 3 = 0".into(),
        ),
        ("totals", TOTALS.into(), TOTALS.into()),
        // Keys enter and leave the filter as their totals change.
        (
            "big",
            "SELECT k, s, n FROM totals WHERE s > 500".into(),
            nested(TOTALS, "SELECT k, s, n FROM totals WHERE s > 500", "totals"),
        ),
        // An aggregate over an aggregate: old rows are taken back.
        (
            "buckets",
            "SELECT n % 3 AS b, count(*) AS keys, sum(s) AS total, avg(n) AS avg_n FROM totals GROUP BY n % 3".into(),
            nested(
                TOTALS,
                "SELECT n % 3 AS b, count(*) AS keys, sum(s) AS total, avg(n) AS avg_n FROM totals GROUP BY n % 3",
                "totals",
            ),
        ),
        ("win", WIN.into(), WIN_ORACLE.into()),
        (
            "busy",
            "SELECT k, window_start, c FROM win WHERE c >= 3".into(),
            nested(WIN_ORACLE, "SELECT k, window_start, c FROM win WHERE c >= 3", "win"),
        ),
    ]
}

async fn oracle(rows: &[Row], sql: &str) -> Vec<Vec<String>> {
    let ctx = SessionContext::new();
    let data = batch(rows);
    let table = MemTable::try_new(data.schema(), vec![vec![data]]).expect("table");
    ctx.register_table("ev", Arc::new(table)).expect("register");
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("oracle {sql}: {e}"))
        .collect()
        .await
        .expect("oracle run");
    let mut out: Vec<Vec<String>> = batches.iter().flat_map(rows_of).collect();
    out.sort();
    out
}

/// Checks the views run on `parallelism` cores (an exchange splits their
/// keyed aggregates into that many instances).
async fn check(rows: Vec<Row>, parallelism: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ev.jsonl");
    let text: String = rows
        .iter()
        .map(|r| format!("{{\"k\":\"{}\",\"v\":{},\"ts\":{}}}\n", r.k, r.v, r.ts))
        .collect();
    std::fs::write(&path, text).expect("write input");
    let mut engine = Engine::new();
    engine
        .execute(&format!(
            "CREATE SOURCE ev (k TEXT, v BIGINT, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts - INTERVAL '{DELAY_MS} milliseconds') \
             WITH (connector = 'file', path = '{}', format = 'json')",
            path.display()
        ))
        .await
        .expect("source");
    let views = views();
    for (name, query, _) in &views {
        engine
            .execute(&format!(
                "CREATE MATERIALIZED VIEW {name} WITH (parallelism = {parallelism}) AS {query}"
            ))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    engine
        .execute(&format!(
            "CREATE MATERIALIZED VIEW recent WITH (retention = '30 seconds', \
             parallelism = {parallelism}) AS {WIN}"
        ))
        .await
        .expect("recent");
    for (name, _, oracle_sql) in &views {
        let got = engine
            .select(&format!("SELECT * FROM {name}"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut got = rows_of(&got);
        got.sort();
        let want = oracle(&rows, oracle_sql).await;
        assert_eq!(got, want, "view {name}");
    }
    // Retention keeps the windows that end within 30 s of the last watermark.
    let watermark = rows.iter().map(|r| r.ts).max().expect("rows") - DELAY_MS;
    let got = engine.select("SELECT * FROM recent").await.expect("recent");
    let mut got = rows_of(&got);
    got.sort();
    let cutoff = watermark - 30_000;
    let want = oracle(
        &rows,
        &format!("SELECT * FROM ({WIN_ORACLE}) WHERE window_end >= to_timestamp_millis({cutoff})"),
    )
    .await;
    assert_eq!(got, want, "view recent (retention, watermark {watermark})");
    // An ad-hoc join between views agrees with the same join in batch.
    let join = "SELECT t.k, t.n, count(w.c) AS windows FROM totals t JOIN win w ON t.k = w.k \
                GROUP BY t.k, t.n ORDER BY t.k";
    let got = rows_of(&engine.select(join).await.expect("join"));
    let want = oracle(
        &rows,
        &join
            .replace("totals t", &format!("({TOTALS}) t"))
            .replace("win w", &format!("({WIN_ORACLE}) w")),
    )
    .await;
    assert_eq!(got, want, "join of views");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn views_match_datafusion(rows in rows_strategy(), parallelism in 1usize..=3) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(check(rows, parallelism));
    }
}
