//! Windowed aggregates against DataFusion in batch. Random keys and values,
//! timestamps with bounded disorder plus some far-behind rows, cut into
//! random batches, each followed by a watermark of `max seen - 2 s` (what the
//! source's `WATERMARK FOR ts AS ts - INTERVAL '2 seconds'` produces). Rows
//! behind the watermark when they arrive are late: they must be counted, and
//! exactly they must be missing from the result. Every window must be
//! emitted once, by the watermark that passes its end (or at end of input).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use sluice::metrics::PipelineMetrics;
use sluice::runtime::pipeline::{build_operators, push};
use sluice::runtime::split::SplitGraph;
use sluice::stream::Message;
use sluice::Engine;

use super::rows_of;

pub(crate) const DELAY: i64 = 2_000;
pub(crate) const BASE: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) k: i64,
    pub(crate) v: i64,
    pub(crate) ts: i64,
}

fn rows_strategy() -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec(
        (
            0i64..4,
            -50i64..100,
            0i64..3_000,
            proptest::bool::weighted(0.03),
        ),
        1..400,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (k, v, jitter, far))| Row {
                k,
                v,
                ts: BASE + i as i64 * 137 - jitter - if far { 20_000 } else { 0 },
            })
            .collect()
    })
}

fn schema(extra: bool) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ];
    if extra {
        fields.push(Field::new(
            "ws",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ));
        fields.push(Field::new(
            "we",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ));
    }
    Arc::new(Schema::new(fields))
}

pub(crate) fn batch_of(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(false),
        vec![
            Arc::new(rows.iter().map(|r| r.k).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| Some(r.v)).collect::<Int64Array>()),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.ts))
                    .collect::<TimestampMillisecondArray>(),
            ),
        ],
    )
    .expect("batch")
}

/// Rows with their window bounds, as a table for the oracle.
pub(crate) fn windowed_batch(rows: &[(Row, i64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(true),
        vec![
            Arc::new(rows.iter().map(|r| r.0.k).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| Some(r.0.v)).collect::<Int64Array>()),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.0.ts))
                    .collect::<TimestampMillisecondArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.1))
                    .collect::<TimestampMillisecondArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.2))
                    .collect::<TimestampMillisecondArray>(),
            ),
        ],
    )
    .expect("batch")
}

/// Splits rows into batches at `cuts`; returns the batches and which rows
/// are late (behind the watermark when their batch arrives).
fn schedule(rows: &[Row], cuts: &[usize]) -> (Vec<Vec<Row>>, Vec<bool>) {
    schedule_with(rows, cuts, 0)
}

/// `schedule`, with rows up to `lateness` behind the watermark still on time.
fn schedule_with(rows: &[Row], cuts: &[usize], lateness: i64) -> (Vec<Vec<Row>>, Vec<bool>) {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (rows.len() + 1)).collect();
    bounds.extend([0, rows.len()]);
    bounds.sort();
    bounds.dedup();
    let mut batches = Vec::new();
    let mut late = Vec::new();
    let mut wm: Option<i64> = None;
    for w in bounds.windows(2) {
        let b = rows[w[0]..w[1]].to_vec();
        for r in &b {
            late.push(wm.is_some_and(|m| r.ts < m - lateness));
        }
        let max = b.iter().map(|r| r.ts).max().expect("non-empty");
        wm = Some(wm.map_or(max - DELAY, |m| m.max(max - DELAY)));
        batches.push(b);
    }
    (batches, late)
}

struct Streamed {
    rows: Vec<Vec<String>>,
    late: u64,
}

/// Runs `sql` through Sluice's operators over the scheduled batches, checking
/// that windows are emitted by the watermark that closes them.
/// On `parallelism` cores: keyed windows split across that many instances
/// behind a hash exchange, as a pipeline runs them.
async fn stream(
    engine: &Engine,
    sql: &str,
    batches: &[Vec<Row>],
    end_col: usize,
    parallelism: usize,
) -> Streamed {
    let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
    let metrics = Arc::new(PipelineMetrics::default());
    let mut ops = SplitGraph::build(&plan, &metrics, parallelism).expect("operators");
    let mut rows = Vec::new();
    let mut wm = i64::MIN;
    let end_of = |r: &Vec<String>| r[end_col].clone();
    for b in batches {
        let mut out = Vec::new();
        ops.push_input(
            0,
            Message::Batch(sluice::stream::StreamBatch::append(batch_of(b))),
            &mut out,
        )
        .expect("batch");
        assert!(
            out.is_empty(),
            "a window aggregate emits only on watermarks"
        );
        let previous = wm;
        wm = wm.max(b.iter().map(|r| r.ts).max().expect("rows") - DELAY);
        ops.push_input(0, Message::Watermark(wm), &mut out)
            .expect("watermark");
        for o in &out {
            for r in rows_of(&o.data) {
                // Emitted by the first watermark at or past its end.
                let end = millis(&end_of(&r));
                assert!(
                    end <= wm && end > previous,
                    "window ending {end} emitted at watermark {wm} (previous {previous})"
                );
                rows.push(r);
            }
        }
    }
    let mut held = Vec::new();
    ops.finish(&mut held).expect("end of input");
    for o in &held {
        for r in rows_of(&o.data) {
            assert!(
                millis(&end_of(&r)) > wm,
                "a window the watermark had closed was held to the end"
            );
            rows.push(r);
        }
    }
    rows.sort();
    Streamed {
        rows,
        late: metrics.late.load(std::sync::atomic::Ordering::Relaxed),
    }
}

pub(crate) fn millis(text: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .expect("timestamp")
        .and_utc()
        .timestamp_millis()
}

pub(crate) async fn oracle(sql: &str, table: RecordBatch) -> Vec<Vec<String>> {
    let ctx = SessionContext::new();
    let schema = table.schema();
    ctx.register_table(
        "w",
        Arc::new(MemTable::try_new(schema, vec![vec![table]]).expect("table")),
    )
    .expect("register");
    let batches = ctx
        .sql(sql)
        .await
        .expect("oracle plan")
        .collect()
        .await
        .expect("oracle run");
    let mut rows: Vec<Vec<String>> = batches.iter().flat_map(rows_of).collect();
    rows.sort();
    rows
}

const AGGS: &str =
    "count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, round(avg(v), 6) AS a, \
                    count(DISTINCT v % 7) AS d, string_agg(CAST(v AS TEXT), ',' ORDER BY v) AS vs";

async fn engine() -> Engine {
    let mut engine = Engine::new();
    engine
        .execute(
            "CREATE SOURCE t (k BIGINT NOT NULL, v BIGINT, ts TIMESTAMP NOT NULL,
                 WATERMARK FOR ts AS ts - INTERVAL '2 seconds') WITH (connector = 'file', path = 'unused')",
        )
        .await
        .expect("source");
    engine
}

fn hop_windows(ts: i64, slide: i64, size: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut s = ts - ts.rem_euclid(slide);
    while s > ts - size {
        out.push((s, s + size));
        s -= slide;
    }
    out
}

/// Sessions per key over the on-time rows: a reference implementation.
pub(crate) fn sessions(rows: &[Row], gap: i64) -> Vec<(Row, i64, i64)> {
    let mut by_key: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
    for r in rows {
        by_key.entry(r.k).or_default().push(r.clone());
    }
    let mut out = Vec::new();
    for (_, mut rs) in by_key {
        rs.sort_by_key(|r| r.ts);
        let mut i = 0;
        while i < rs.len() {
            let start = rs[i].ts;
            let mut end = start + gap;
            let mut j = i + 1;
            while j < rs.len() && rs[j].ts < end {
                end = end.max(rs[j].ts + gap);
                j += 1;
            }
            for r in &rs[i..j] {
                out.push((r.clone(), start, end));
            }
            i = j;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn windows_match_datafusion(rows in rows_strategy(), cuts in proptest::collection::vec(0usize..400, 0..25), parallelism in 1usize..=2) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let engine = engine().await;
            let (batches, late) = schedule(&rows, &cuts);
            let on_time: Vec<Row> = rows.iter().zip(&late).filter(|(_, l)| !**l).map(|(r, _)| r.clone()).collect();
            let late_count = late.iter().filter(|l| **l).count() as u64;

            // TUMBLE: the oracle bins with date_bin.
            let got = stream(&engine, &format!(
                "SELECT k, window_start, window_end, {AGGS} FROM TUMBLE(t, ts, INTERVAL '3 seconds') GROUP BY k, window_start, window_end"), &batches, 2, parallelism).await;
            let table = windowed_batch(&on_time.iter().map(|r| (r.clone(), 0, 0)).collect::<Vec<_>>());
            let want = oracle(&format!(
                "SELECT k, date_bin(INTERVAL '3 seconds', ts, TIMESTAMP '1970-01-01 00:00:00') AS window_start,
                        date_bin(INTERVAL '3 seconds', ts, TIMESTAMP '1970-01-01 00:00:00') + INTERVAL '3 seconds' AS window_end, {AGGS}
                 FROM w GROUP BY 1, 2, 3"), table).await;
            prop_assert_eq!(got.late, late_count, "late rows counted (tumble)");
            prop_assert_eq!(got.rows, want, "tumble");

            // TUMBLE without keys, with HAVING and a computed select list.
            let got = stream(&engine,
                "SELECT window_end, count(*) * 10 AS n10, max(v) AS hi FROM TUMBLE(t, ts, INTERVAL '5 seconds') GROUP BY window_start, window_end HAVING count(*) > 2",
                &batches, 0, parallelism).await;
            let table = windowed_batch(&on_time.iter().map(|r| (r.clone(), 0, 0)).collect::<Vec<_>>());
            let want = oracle(
                "SELECT date_bin(INTERVAL '5 seconds', ts, TIMESTAMP '1970-01-01 00:00:00') + INTERVAL '5 seconds' AS window_end, count(*) * 10 AS n10, max(v) AS hi
                 FROM w GROUP BY 1 HAVING count(*) > 2", table).await;
            prop_assert_eq!(got.rows, want, "tumble, no keys, HAVING");

            // HOP: the oracle expands each row into its windows.
            let got = stream(&engine, &format!(
                "SELECT k, window_start, window_end, {AGGS} FROM HOP(t, ts, INTERVAL '2 seconds', INTERVAL '6 seconds') GROUP BY k, window_start, window_end"), &batches, 2, parallelism).await;
            let expanded: Vec<(Row, i64, i64)> = on_time.iter()
                .flat_map(|r| hop_windows(r.ts, 2_000, 6_000).into_iter().map(move |(s, e)| (r.clone(), s, e)))
                .collect();
            let want = oracle(&format!("SELECT k, ws AS window_start, we AS window_end, {AGGS} FROM w GROUP BY k, ws, we"), windowed_batch(&expanded)).await;
            prop_assert_eq!(got.late, late_count, "late rows counted (hop)");
            prop_assert_eq!(got.rows, want, "hop");

            // SESSION: the oracle is a reference sessionizer.
            let got = stream(&engine, &format!(
                "SELECT k, window_start, window_end, {AGGS} FROM SESSION(t, ts, INTERVAL '400 milliseconds') GROUP BY k, window_start, window_end"), &batches, 2, parallelism).await;
            let want = oracle(&format!("SELECT k, ws AS window_start, we AS window_end, {AGGS} FROM w GROUP BY k, ws, we"), windowed_batch(&sessions(&on_time, 400))).await;
            prop_assert_eq!(got.late, late_count, "late rows counted (session)");
            prop_assert_eq!(got.rows, want, "session");

            // SESSION without GROUP BY: every on-time row, with the bounds of
            // its session over the whole stream.
            let got = stream(&engine, "SELECT k, v, ts, window_start, window_end FROM SESSION(t, ts, INTERVAL '300 milliseconds')", &batches, 4, parallelism).await;
            let mut sorted = on_time.clone();
            sorted.sort_by_key(|r| r.ts);
            let mut bounded = Vec::new();
            let mut i = 0;
            while i < sorted.len() {
                let (start, mut end, mut j) = (sorted[i].ts, sorted[i].ts + 300, i + 1);
                while j < sorted.len() && sorted[j].ts < end {
                    end = end.max(sorted[j].ts + 300);
                    j += 1;
                }
                bounded.extend(sorted[i..j].iter().map(|r| (r.clone(), start, end)));
                i = j;
            }
            let want = oracle("SELECT k, v, ts, ws AS window_start, we AS window_end FROM w", windowed_batch(&bounded)).await;
            prop_assert_eq!(got.rows, want, "session rows");
            Ok(())
        })?;
    }
}

/// State is freed when windows close: at a constant key count the number of
/// open windows stays bounded however long the input runs.
#[tokio::test]
async fn window_state_is_freed_on_close() {
    let engine = engine().await;
    let plan = Arc::new(
        engine
            .plan_select("SELECT k, window_start, window_end, count(*) FROM TUMBLE(t, ts, INTERVAL '1 second') GROUP BY k, window_start, window_end")
            .await
            .expect("plan"),
    );
    let metrics = Arc::new(PipelineMetrics::default());
    let mut ops = build_operators(&plan, &metrics).expect("operators");
    let mut emitted = 0;
    for step in 0..2_000i64 {
        let rows: Vec<Row> = (0..50)
            .map(|i| Row {
                k: i % 5,
                v: i,
                ts: BASE + step * 100 + i,
            })
            .collect();
        let mut out = Vec::new();
        push(
            &mut ops,
            Message::Batch(sluice::stream::StreamBatch::append(batch_of(&rows))),
            &mut out,
        )
        .expect("batch");
        push(
            &mut ops,
            Message::Watermark(BASE + step * 100 + 49 - DELAY),
            &mut out,
        )
        .expect("watermark");
        emitted += out.iter().map(|o| o.num_rows()).sum::<usize>();
    }
    // 200 s of input in 1 s windows, 5 keys: every closed window was emitted,
    // and only the windows within the 2 s delay are still held.
    assert!(emitted >= 5 * 197, "{emitted}");
    let described = format!(
        "{:?}",
        ops.operators().map(|o| o.name()).collect::<Vec<_>>()
    );
    assert!(described.contains("window aggregate"), "{described}");
}

/// A window closes when the watermark reaches its end exactly.
#[tokio::test]
async fn window_closes_when_watermark_reaches_its_end() {
    let engine = engine().await;
    for sql in [
        "SELECT k, window_start, window_end, count(*) FROM TUMBLE(t, ts, INTERVAL '1 second') GROUP BY k, window_start, window_end",
        "SELECT k, window_start, window_end, count(*) FROM SESSION(t, ts, INTERVAL '900 milliseconds') GROUP BY k, window_start, window_end",
    ] {
        let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
        let mut ops = build_operators(&plan, &Default::default()).expect("operators");
        let mut out = Vec::new();
        let rows = vec![Row { k: 1, v: 1, ts: BASE + 100 }];
        push(&mut ops, Message::Batch(sluice::stream::StreamBatch::append(batch_of(&rows))), &mut out).expect("batch");
        push(&mut ops, Message::Watermark(BASE + 999), &mut out).expect("watermark");
        assert!(out.is_empty(), "{sql}: still open at end - 1");
        push(&mut ops, Message::Watermark(BASE + 1000), &mut out).expect("watermark");
        assert_eq!(out.iter().map(|o| o.num_rows()).sum::<usize>(), 1, "{sql}: emitted at its end");
    }
}

/// Runs a windowed query with allowed lateness and applies its changelog
/// (keyed by the first three columns: key and window).
async fn stream_changelog(
    engine: &Engine,
    sql: &str,
    batches: &[Vec<Row>],
    lateness: i64,
    parallelism: usize,
) -> Streamed {
    let plan = engine
        .plan_select(sql)
        .await
        .expect("plan")
        .with_allowed_lateness(std::time::Duration::from_millis(lateness as u64))
        .expect("lateness");
    assert!(plan.changelog);
    let plan = Arc::new(plan);
    let metrics = Arc::new(PipelineMetrics::default());
    let mut ops = SplitGraph::build(&plan, &metrics, parallelism).expect("operators");
    let mut state: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    let mut inserted = std::collections::BTreeSet::new();
    let mut wm = i64::MIN;
    let mut apply = |out: Vec<sluice::stream::StreamBatch>, wm: i64| {
        for o in out {
            for (i, r) in rows_of(&o.data).into_iter().enumerate() {
                let key = r[..3].to_vec();
                assert!(
                    millis(&r[2]) <= wm,
                    "a window is only emitted once the watermark passed its end"
                );
                match o.op(i) {
                    sluice::stream::Op::Insert => {
                        assert!(
                            inserted.insert(key.clone()),
                            "one insert per window and key: {key:?} in {sql}"
                        );
                        state.insert(key, r);
                    }
                    sluice::stream::Op::Update => {
                        assert!(
                            state.insert(key.clone(), r).is_some(),
                            "update of a window never inserted: {key:?} in {sql}"
                        );
                    }
                    sluice::stream::Op::Delete => {
                        state.remove(&key);
                    }
                    sluice::stream::Op::UpdateBefore => panic!("a window emits no old rows"),
                }
            }
        }
    };
    for b in batches {
        let mut out = Vec::new();
        ops.push_input(
            0,
            Message::Batch(sluice::stream::StreamBatch::append(batch_of(b))),
            &mut out,
        )
        .expect("batch");
        apply(out, wm);
        let mut out = Vec::new();
        wm = wm.max(b.iter().map(|r| r.ts).max().expect("rows") - DELAY);
        ops.push_input(0, Message::Watermark(wm), &mut out)
            .expect("watermark");
        apply(out, wm);
    }
    let mut out = Vec::new();
    ops.finish(&mut out).expect("end of input");
    apply(out, i64::MAX);
    let mut rows: Vec<Vec<String>> = state.into_values().collect();
    rows.sort();
    Streamed {
        rows,
        late: metrics.late.load(std::sync::atomic::Ordering::Relaxed),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn allowed_lateness_updates_emitted_windows(rows in rows_strategy(), cuts in proptest::collection::vec(0usize..400, 0..25), parallelism in 1usize..=2) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(check_allowed_lateness(&rows, &cuts, parallelism))?;
    }
}

/// The input (rows and batch cuts) on which CI once saw an update for a
/// window that was never inserted.
#[tokio::test]
async fn allowed_lateness_regression_input() {
    let text = include_str!("data/lateness_regression.txt");
    let mut cuts = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# cuts:") {
            cuts = c
                .split_whitespace()
                .map(|n| n.parse().expect("cut"))
                .collect();
        } else if !line.starts_with('#') {
            let f: Vec<i64> = line
                .split(',')
                .map(|n| n.parse().expect("number"))
                .collect();
            rows.push(Row {
                k: f[0],
                v: f[1],
                ts: f[2],
            });
        }
    }
    assert_eq!(rows.len(), 381);
    for parallelism in [1, 2] {
        check_allowed_lateness(&rows, &cuts, parallelism)
            .await
            .expect("changelog equals the batch result");
    }
}

/// With `allowed_lateness`, rows up to that far behind the watermark update
/// windows already emitted; the changelog's final state equals the batch
/// result over every row that was not too late.
async fn check_allowed_lateness(
    rows: &[Row],
    cuts: &[usize],
    parallelism: usize,
) -> Result<(), TestCaseError> {
    let engine = engine().await;
    let lateness = 1_500;
    let (batches, late) = schedule_with(rows, cuts, lateness);
    let on_time: Vec<Row> = rows
        .iter()
        .zip(&late)
        .filter(|(_, l)| !**l)
        .map(|(r, _)| r.clone())
        .collect();
    let late_count = late.iter().filter(|l| **l).count() as u64;
    let got = stream_changelog(&engine, &format!(
        "SELECT k, window_start, window_end, {AGGS} FROM TUMBLE(t, ts, INTERVAL '3 seconds') GROUP BY k, window_start, window_end"), &batches, lateness, parallelism).await;
    let table = windowed_batch(
        &on_time
            .iter()
            .map(|r| (r.clone(), 0, 0))
            .collect::<Vec<_>>(),
    );
    let want = oracle(&format!(
        "SELECT k, date_bin(INTERVAL '3 seconds', ts, TIMESTAMP '1970-01-01 00:00:00') AS window_start,
                date_bin(INTERVAL '3 seconds', ts, TIMESTAMP '1970-01-01 00:00:00') + INTERVAL '3 seconds' AS window_end, {AGGS}
         FROM w GROUP BY 1, 2, 3"), table).await;
    prop_assert_eq!(got.late, late_count, "too-late rows counted");
    prop_assert_eq!(got.rows, want, "tumble with allowed lateness");

    let got = stream_changelog(&engine,
        "SELECT k, window_start, window_end, count(*) AS n, max(v) AS hi FROM HOP(t, ts, INTERVAL '2 seconds', INTERVAL '6 seconds') GROUP BY k, window_start, window_end HAVING count(*) > 1",
        &batches, lateness, parallelism).await;
    let expanded: Vec<(Row, i64, i64)> = on_time
        .iter()
        .flat_map(|r| {
            hop_windows(r.ts, 2_000, 6_000)
                .into_iter()
                .map(move |(s, e)| (r.clone(), s, e))
        })
        .collect();
    let want = oracle("SELECT k, ws AS window_start, we AS window_end, count(*) AS n, max(v) AS hi FROM w GROUP BY k, ws, we HAVING count(*) > 1", windowed_batch(&expanded)).await;
    prop_assert_eq!(got.rows, want, "hop with allowed lateness and HAVING");

    // SESSION: late rows may extend a closed session or merge two;
    // the replaced sessions are deleted.
    let got = stream_changelog(&engine, &format!(
        "SELECT k, window_start, window_end, {AGGS} FROM SESSION(t, ts, INTERVAL '400 milliseconds') GROUP BY k, window_start, window_end"), &batches, lateness, parallelism).await;
    let want = oracle(
        &format!(
            "SELECT k, ws AS window_start, we AS window_end, {AGGS} FROM w GROUP BY k, ws, we"
        ),
        windowed_batch(&sessions(&on_time, 400)),
    )
    .await;
    prop_assert_eq!(got.late, late_count, "too-late rows counted (session)");
    prop_assert_eq!(got.rows, want, "session with allowed lateness");
    Ok(())
}
