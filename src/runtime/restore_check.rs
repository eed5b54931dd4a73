//! Test harness for operator checkpoints. A query's operators run over a
//! script of batches and watermarks three times: straight through; with
//! snapshots taken at chosen steps and the same operators going on; and
//! with fresh operators restored from each snapshot (through its encoded
//! bytes) taking over there. All three must emit the same rows, step by
//! step. The same query runs on DataFusion in batch in `tests/sql/`; here
//! only the checkpoint round trip is under test.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray, TimestampMillisecondArray, UInt8Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use proptest::prelude::*;

use super::graph::{build_operators, finish, push, OperatorGraph};
use super::state::StateSnapshot;
use crate::plan::StreamPlan;
use crate::stream::{Message, Op, StreamBatch};

pub(crate) const BASE: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z
/// The source's watermark delay (`WATERMARK FOR ts AS ts - INTERVAL '2 seconds'`).
pub(crate) const DELAY: i64 = 2_000;

/// Aggregates of every kind of state: counters, extremes, an average,
/// DISTINCT (a set) and an ordered string_agg (a list).
pub(crate) const AGGS: &str = "count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, \
    avg(v) AS a, count(DISTINCT v % 7) AS d, string_agg(CAST(v AS TEXT), ',' ORDER BY v) AS vs";

/// Plans `sql` over the test source
/// `t (k BIGINT NOT NULL, tag TEXT, v BIGINT, ts TIMESTAMP NOT NULL)`,
/// with `allowed_lateness` in ms when it is not zero.
pub(crate) fn plan(sql: &str, lateness: u64) -> Arc<StreamPlan> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let plan = rt.block_on(async {
        let mut engine = crate::Engine::new();
        engine
            .execute(
                "CREATE SOURCE t (k BIGINT NOT NULL, tag TEXT, v BIGINT, ts TIMESTAMP NOT NULL,
                     WATERMARK FOR ts AS ts - INTERVAL '2 seconds')
                 WITH (connector = 'file', path = 'unused')",
            )
            .await
            .expect("source");
        engine.plan_select(sql).await.expect("plan")
    });
    Arc::new(
        plan.with_allowed_lateness(std::time::Duration::from_millis(lateness))
            .expect("lateness"),
    )
}

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) k: i64,
    pub(crate) tag: Option<&'static str>,
    pub(crate) v: Option<i64>,
    pub(crate) ts: i64,
}

/// Rows `spacing` ms apart, each up to 3 s early (out of order, some late),
/// and a few 20 s behind (late past any allowance).
pub(crate) fn rows_strategy(spacing: i64) -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec(
        (
            0i64..4,
            proptest::sample::select(vec![Some("x"), Some("y"), None]),
            proptest::option::weighted(0.9, -20i64..60),
            0i64..3_000,
            proptest::bool::weighted(0.03),
        ),
        1..250,
    )
    .prop_map(move |raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (k, tag, v, jitter, far))| Row {
                k,
                tag,
                v,
                ts: BASE + i as i64 * spacing - jitter - if far { 20_000 } else { 0 },
            })
            .collect()
    })
}

pub(crate) fn batch(rows: &[Row]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("tag", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(rows.iter().map(|r| r.k).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.tag).collect::<StringArray>()),
            Arc::new(rows.iter().map(|r| r.v).collect::<Int64Array>()),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.ts),
            )),
        ],
    )
    .expect("batch")
}

/// Input to the operators, one message per step.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Rows(StreamBatch),
    Watermark(i64),
}

/// `rows` cut into batches at `cuts`, each followed by the watermark the
/// source sends after it (the highest time so far minus the delay).
pub(crate) fn script(rows: &[Row], cuts: &[usize]) -> Vec<Step> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (rows.len() + 1)).collect();
    bounds.extend([0, rows.len()]);
    bounds.sort();
    bounds.dedup();
    let mut steps = Vec::new();
    let mut highest = i64::MIN;
    for w in bounds.windows(2) {
        let part = &rows[w[0]..w[1]];
        highest = part.iter().map(|r| r.ts).fold(highest, i64::max);
        steps.push(Step::Rows(StreamBatch::append(batch(part))));
        steps.push(Step::Watermark(highest - DELAY));
    }
    steps
}

/// A changelog batch (what an updating view sends its subscribers).
pub(crate) fn changes(rows: &[(Op, Row)]) -> StreamBatch {
    let data = batch(&rows.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>());
    let ops = UInt8Array::from(rows.iter().map(|(o, _)| *o as u8).collect::<Vec<_>>());
    StreamBatch::changelog(data, ops)
}

/// Runs `steps` straight through, then snapshotting before each step in
/// `at` (an index past the end: before the end of input), and checks that
/// the operators going on and the ones restored from the snapshots emit
/// what the straight run did. Then the same with a snapshot before every
/// step, so every state the operators pass through is restored once.
pub(crate) fn check_restores(plan: &Arc<StreamPlan>, steps: &[Step], at: &[usize]) {
    let straight = run(plan, steps, &[], false);
    let every: Vec<usize> = (0..=steps.len()).collect();
    let at: Vec<usize> = at.iter().map(|a| a % (steps.len() + 1)).collect();
    for at in [at, every] {
        let going_on = run(plan, steps, &at, false);
        assert_eq!(
            going_on, straight,
            "taking snapshots before steps {at:?} changed the output"
        );
        let restored = run(plan, steps, &at, true);
        assert_eq!(
            restored, straight,
            "restored before steps {at:?}: the output differs"
        );
    }
}

/// What the operators emit per step (and at the end), each step's rows
/// rendered as `op: values` and sorted: the order of rows within one
/// step's output is not part of the contract.
fn run(plan: &Arc<StreamPlan>, steps: &[Step], at: &[usize], restore: bool) -> Vec<Vec<String>> {
    let mut ops = build_operators(plan, &Default::default()).expect("operators");
    let mut emitted = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if at.contains(&i) {
            checkpoint(plan, &mut ops, restore);
        }
        let message = match step {
            Step::Rows(b) => Message::Batch(b.clone()),
            Step::Watermark(w) => Message::Watermark(*w),
        };
        let mut out = Vec::new();
        push(&mut ops, message, &mut out).expect("step");
        emitted.push(render(&out));
    }
    if at.contains(&steps.len()) {
        checkpoint(plan, &mut ops, restore);
    }
    let mut out = Vec::new();
    finish(&mut ops, &mut out).expect("end of input");
    emitted.push(render(&out));
    emitted
}

/// Snapshots every operator through its encoded bytes; with `restore`,
/// fresh operators loaded from them (by node) replace the running ones.
fn checkpoint(plan: &Arc<StreamPlan>, ops: &mut OperatorGraph, restore: bool) {
    let snapshots = ops.snapshot().expect("snapshot");
    if !restore {
        return;
    }
    let mut fresh = build_operators(plan, &Default::default()).expect("operators");
    let states = snapshots
        .into_iter()
        .filter_map(|(key, bytes)| Some((key, StateSnapshot::decode(&bytes?).expect("decode"))))
        .collect();
    fresh.restore("check", states).expect("restore");
    for (op, old) in fresh.operators().zip(ops.operators()) {
        assert_eq!(
            op.state_size().map(|s| s.0),
            old.state_size().map(|s| s.0),
            "{}: rows of state after restore",
            op.name()
        );
    }
    *ops = fresh;
}

/// Rows as `op: values`, sorted.
pub(crate) fn render(batches: &[StreamBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let columns: Vec<_> = b
            .data
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for i in 0..b.num_rows() {
            let values: Vec<String> = columns.iter().map(|c| c.value(i).to_string()).collect();
            rows.push(format!("{}: {}", b.op(i).as_str(), values.join(" | ")));
        }
    }
    rows.sort();
    rows
}
