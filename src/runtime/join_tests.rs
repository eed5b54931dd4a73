//! The join operator's own tests: compaction, interval freeing,
//! `state_ttl`. Its answers against DataFusion are in `tests/sql/joins.rs`.

use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::physical_expr::expressions::Column;

use super::*;

/// A join of kind `kind` on column `k` (the first) of both inputs.
fn node(kind: JoinKind, interval: Option<Interval>, state_ttl: Option<i64>) -> JoinNode {
    JoinNode {
        kind,
        left_keys: vec![Arc::new(Column::new("k", 0))],
        right_keys: vec![Arc::new(Column::new("k", 0))],
        filter: None,
        nulls_equal: false,
        interval,
        lookup: None,
        lookup_loads_first: false,
        temporal: None,
        state_ttl,
        text: String::new(),
    }
}

fn schema(names: [&str; 2]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Int64, true))
            .collect::<Vec<_>>(),
    ))
}

fn rows(schema: &SchemaRef, rows: &[(i64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        Arc::clone(schema),
        vec![
            Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
        ],
    )
    .expect("batch")
}

fn join() -> (JoinOperator, SchemaRef, SchemaRef) {
    let (left, right) = (schema(["k", "x"]), schema(["k", "y"]));
    let out = Arc::new(Schema::new(
        [left.fields().to_vec(), right.fields().to_vec()].concat(),
    ));
    let node = node(JoinKind::Inner, None, None);
    let op = JoinOperator::new(
        node,
        [Arc::clone(&left), Arc::clone(&right)],
        out,
        true,
        Default::default(),
    )
    .expect("join");
    (op, left, right)
}

fn changes(batch: RecordBatch, op: Op) -> StreamBatch {
    let ops = UInt8Array::from(vec![op as u8; batch.num_rows()]);
    StreamBatch::changelog(batch, ops)
}

/// Taken-back rows are dropped once they outnumber the live ones, and
/// the one-row batches an input sends are merged as they come: the
/// join still finds every live row, and only those.
#[test]
fn a_side_stays_small_under_churn() {
    let (mut op, left, right) = join();
    let mut out = Vec::new();
    for i in 0..3 * COMPACT_AT as i64 {
        let row = rows(&left, &[(i % 5, i)]);
        op.process_batch_at(0, changes(row.clone(), Op::Insert), &mut out)
            .expect("insert");
        if i % 10 != 0 {
            op.process_batch_at(0, changes(row, Op::Delete), &mut out)
                .expect("delete");
        }
    }
    assert!(out.is_empty(), "nothing on the right yet");
    let side = &op.sides[0];
    let live = (3 * COMPACT_AT).div_ceil(10);
    assert_eq!(side.live, live);
    assert!(
        side.rows() - side.live <= side.live.max(COMPACT_AT),
        "dead rows dropped"
    );
    assert!(
        side.batches.len() <= 16,
        "{} batches kept",
        side.batches.len()
    );
    op.process_batch_at(1, changes(rows(&right, &[(0, -1)]), Op::Insert), &mut out)
        .expect("probe");
    let matched: usize = out.iter().map(StreamBatch::num_rows).sum();
    // The live rows are those with x % 10 = 0, all of key 0.
    assert_eq!(matched, live);
    for b in &out {
        let x = b.data.column(1).as_primitive::<Int64Type>();
        assert!(x.values().iter().all(|v| v % 10 == 0));
    }
}

/// An interval join frees each row once the watermark passes its time
/// plus the interval, emits a LEFT row that never matched then, and
/// drops (and counts) a row behind the watermark.
#[test]
fn an_interval_join_frees_its_rows() {
    use datafusion::arrow::array::TimestampMillisecondArray;
    use datafusion::arrow::datatypes::TimeUnit;
    let side = |names: [&str; 2]| -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(names[0], DataType::Int64, true),
            Field::new(
                names[1],
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
        ]))
    };
    let (left, right) = (side(["k", "t"]), side(["k", "u"]));
    let out = Arc::new(Schema::new(
        [left.fields().to_vec(), right.fields().to_vec()].concat(),
    ));
    let interval = Interval {
        left_time: 1,
        left_shift: 0,
        right_time: 1,
        right_shift: 0,
        lo: -1_000,
        hi: 1_000,
        checked: false,
    };
    let node = node(JoinKind::Left, Some(interval), None);
    let metrics = Arc::new(PipelineMetrics::default());
    let mut op = JoinOperator::new(
        node,
        [Arc::clone(&left), Arc::clone(&right)],
        out,
        false,
        Arc::clone(&metrics),
    )
    .expect("join");
    let rows = |schema: &SchemaRef, rows: &[(i64, i64)]| {
        StreamBatch::append(
            RecordBatch::try_new(
                Arc::clone(schema),
                vec![
                    Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
                    Arc::new(
                        rows.iter()
                            .map(|r| Some(r.1))
                            .collect::<TimestampMillisecondArray>(),
                    ),
                ],
            )
            .expect("batch"),
        )
    };
    let mut out = Vec::new();
    op.process_batch_at(0, rows(&left, &[(1, 10_000), (2, 10_000)]), &mut out)
        .expect("left");
    op.process_batch_at(1, rows(&right, &[(1, 10_500)]), &mut out)
        .expect("right");
    assert_eq!(out.iter().map(StreamBatch::num_rows).sum::<usize>(), 1);
    assert_eq!(op.state_size().map(|s| s.0), Some(3));
    // Left rows go at 11 s (their time + 1 s), the right one at 11.5 s.
    out.clear();
    op.on_watermark(11_001, &mut out).expect("watermark");
    assert_eq!(op.state_size().map(|s| s.0), Some(1));
    let padded: Vec<i64> = out
        .iter()
        .flat_map(|b| {
            b.data
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(
        padded,
        [2],
        "key 2 never matched: emitted padded once freed"
    );
    assert!(out.iter().all(|b| b.ops.is_none()));
    op.on_watermark(11_501, &mut out).expect("watermark");
    assert_eq!(op.state_size().map(|s| s.0), Some(0));
    assert_eq!(
        metrics.evicted.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    // A row behind the watermark is late.
    out.clear();
    op.process_batch_at(0, rows(&left, &[(1, 11_000)]), &mut out)
        .expect("late");
    assert!(out.is_empty());
    assert_eq!(metrics.late.load(std::sync::atomic::Ordering::Relaxed), 1);
}

/// `state_ttl`: a kept row is forgotten once its time is up, and then
/// matches nothing; it emits nothing when it goes.
#[test]
fn state_ttl_forgets_kept_rows() {
    let (left, right) = (schema(["k", "x"]), schema(["k", "y"]));
    let out = Arc::new(Schema::new(
        [left.fields().to_vec(), right.fields().to_vec()].concat(),
    ));
    let node = node(JoinKind::Inner, None, Some(50));
    let mut op = JoinOperator::new(
        node,
        [Arc::clone(&left), Arc::clone(&right)],
        out,
        false,
        Default::default(),
    )
    .expect("join");
    let mut out = Vec::new();
    op.process_batch_at(
        0,
        StreamBatch::append(rows(&left, &[(1, 1), (2, 2)])),
        &mut out,
    )
    .expect("left");
    op.process_batch_at(1, StreamBatch::append(rows(&right, &[(1, 10)])), &mut out)
        .expect("right");
    assert_eq!(out.iter().map(StreamBatch::num_rows).sum::<usize>(), 1);
    std::thread::sleep(std::time::Duration::from_millis(80));
    out.clear();
    op.process_batch_at(1, StreamBatch::append(rows(&right, &[(2, 20)])), &mut out)
        .expect("right");
    assert!(out.is_empty(), "the left row of key 2 was forgotten");
    assert_eq!(
        op.state_size().map(|s| s.0),
        Some(1),
        "only the new right row"
    );
}
