//! Regular joins (inner, outer, semi and anti) against DataFusion in batch. Input `a` is append-only;
//! input `bv` is an updating view (keyed by `k`): random upserts and
//! deletes, sent as a view sends them (the old row, then the new). Both
//! are cut into random batches that arrive interleaved in a random order.
//! Whatever the order, the join's changelog, folded, must be DataFusion's
//! join of `a` with `bv`'s final rows; and an aggregate over the join,
//! split across cores behind an exchange, must agree too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, UInt8Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use sluice::metrics::PipelineMetrics;
use sluice::runtime::split::SplitGraph;
use sluice::stream::{Message, Op, StreamBatch};
use sluice::Engine;

use super::rows_of;
use super::union::{rows_strategy, schedule, Scheduled};
use super::windows::{batch_of, Row};

fn a_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("x", DataType::Int64, true),
    ]))
}

fn bv_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("y", DataType::Int64, true),
    ]))
}

fn batch(schema: Arc<Schema>, rows: &[Pair]) -> RecordBatch {
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
        ],
    )
    .expect("batch")
}

/// A row of either input: its key and value.
type Pair = (Option<i64>, Option<i64>);

/// One change of `bv`: key `k` gets `Some(y)`, or is deleted (`None`).
type Change = (i64, Option<i64>);

/// What the view sends for `changes` (old row then new for an update),
/// and its final rows.
fn view_changelog(changes: &[Change]) -> (Vec<(Op, Pair)>, Vec<Pair>) {
    let mut current: BTreeMap<i64, i64> = BTreeMap::new();
    let mut sent = Vec::new();
    for &(k, y) in changes {
        match (current.get(&k).copied(), y) {
            (None, Some(y)) => {
                sent.push((Op::Insert, (Some(k), Some(y))));
                current.insert(k, y);
            }
            (Some(old), Some(y)) => {
                sent.push((Op::UpdateBefore, (Some(k), Some(old))));
                sent.push((Op::Update, (Some(k), Some(y))));
                current.insert(k, y);
            }
            (Some(old), None) => {
                sent.push((Op::Delete, (Some(k), Some(old))));
                current.remove(&k);
            }
            (None, None) => {}
        }
    }
    let last = current
        .into_iter()
        .map(|(k, y)| (Some(k), Some(y)))
        .collect();
    (sent, last)
}

async fn engine() -> Engine {
    let mut engine = Engine::new();
    for sql in [
        "CREATE SOURCE a (k BIGINT, x BIGINT) WITH (connector = 'file', path = 'unused')",
        "CREATE SOURCE b (k BIGINT, y BIGINT) WITH (connector = 'file', path = 'unused')",
        "CREATE MATERIALIZED VIEW bv AS SELECT k, sum(y) AS y FROM b GROUP BY k",
    ] {
        engine.execute(sql).await.expect(sql);
    }
    engine
}

/// What EXPLAIN says of the plan's (first) join.
pub(super) fn join_text(plan: &sluice::plan::StreamPlan) -> String {
    plan.graph
        .nodes()
        .iter()
        .find_map(|n| match &n.kind {
            sluice::plan::NodeKind::Join(j) => Some(j.text.clone()),
            _ => None,
        })
        .expect("a join")
}

/// DataFusion's sorted answer to `sql` over `tables` (name, rows).
pub(super) async fn oracle<const N: usize>(
    sql: &str,
    tables: [(&str, RecordBatch); N],
) -> Vec<Vec<String>> {
    let ctx = SessionContext::new();
    for (name, data) in tables {
        let table = MemTable::try_new(data.schema(), vec![vec![data]]).expect("table");
        ctx.register_table(name, Arc::new(table)).expect("register");
    }
    let out = ctx
        .sql(sql)
        .await
        .expect("oracle plan")
        .collect()
        .await
        .expect("oracle run");
    let mut rows: Vec<Vec<String>> = out.iter().flat_map(rows_of).collect();
    rows.sort();
    rows
}

/// Runs `sql` over `a`'s batches and `bv`'s changelog batches, in the
/// order `order` picks, and folds its output: by key when the plan has
/// one, else as a multiset of whole rows (never below zero). After step
/// `restart`, the operators' state is checkpointed and fresh operators
/// restored from it go on.
#[allow(clippy::too_many_arguments)]
async fn stream(
    engine: &Engine,
    sql: &str,
    a: &[Pair],
    a_cuts: &[usize],
    bv: &[(Op, Pair)],
    bv_cuts: &[usize],
    order: &[bool],
    parallelism: usize,
    restart: usize,
) -> Vec<Vec<String>> {
    let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
    let metrics = Arc::new(PipelineMetrics::default());
    let mut graph = SplitGraph::build(&plan, &metrics, parallelism).expect("operators");
    assert_eq!(graph.inputs(), plan.sources().len());
    let cut = |len: usize, cuts: &[usize]| {
        let mut b: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
        b.extend([0, len]);
        b.sort();
        b.dedup();
        b.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>()
    };
    let a_batches: Vec<StreamBatch> = cut(a.len(), a_cuts)
        .into_iter()
        .map(|(s, e)| StreamBatch::append(batch(a_schema(), &a[s..e])))
        .collect();
    let bv_batches: Vec<StreamBatch> = cut(bv.len(), bv_cuts)
        .into_iter()
        .map(|(s, e)| {
            let rows: Vec<_> = bv[s..e].iter().map(|(_, r)| *r).collect();
            let ops = UInt8Array::from(bv[s..e].iter().map(|(o, _)| *o as u8).collect::<Vec<_>>());
            StreamBatch::changelog(batch(bv_schema(), &rows), ops)
        })
        .collect();
    // The graph's inputs are its source nodes, in the order the query
    // reads them (a relation read twice is two inputs with the same rows).
    let inputs: Vec<&Vec<StreamBatch>> = plan
        .sources()
        .iter()
        .map(|name| match *name {
            "a" => &a_batches,
            "bv" => &bv_batches,
            other => panic!("{sql} reads {other}"),
        })
        .collect();
    let n = inputs.len();
    let mut next = vec![0usize; n];
    let mut ended = vec![false; n];
    let mut out = Vec::new();
    let mut picks = order.iter().copied().cycle();
    let mut step = 0;
    while ended.iter().any(|e| !e) {
        step += 1;
        if step == restart {
            // Restored at the other parallelism (1 ↔ 2): the keyed state,
            // a split join's included, is re-split by key.
            let mut states = graph.snapshot().expect("snapshot");
            let again = 3 - parallelism;
            if let Some(x) = sluice::plan::Exchange::of(&plan.graph) {
                let rescaled =
                    sluice::runtime::rescale::rescale(&plan, &x, &mut states, parallelism, again)
                        .expect("rescale");
                assert!(rescaled, "{sql}: its state re-splits");
            }
            graph = SplitGraph::build(&plan, &metrics, again).expect("operators");
            graph.restore(states).expect("restore");
            for j in (0..n).filter(|&j| ended[j]) {
                graph.end_input(j, &mut out).expect("end");
            }
        }
        // The open inputs, in turn as `order` picks (a `true` moves on).
        let open: Vec<usize> = (0..n).filter(|&j| !ended[j]).collect();
        let i = open[(step + usize::from(picks.next().unwrap_or(true))) % open.len()];
        match inputs[i].get(next[i]) {
            Some(m) => {
                next[i] += 1;
                graph
                    .push_input(i, Message::Batch(m.clone()), &mut out)
                    .expect("batch");
            }
            None => {
                ended[i] = true;
                graph.end_input(i, &mut out).expect("end");
            }
        }
    }
    let mut keyed: HashMap<Vec<String>, Vec<String>> = HashMap::new();
    let mut counts: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for b in &out {
        for (r, row) in rows_of(&b.data).into_iter().enumerate() {
            if plan.key_columns.is_empty() {
                let n = counts.entry(row.clone()).or_default();
                *n += if b.is_addition(r) { 1 } else { -1 };
                assert!(*n >= 0, "{row:?} taken back more often than it was sent");
            } else {
                let key: Vec<String> = plan.key_columns.iter().map(|&c| row[c].clone()).collect();
                match b.op(r) {
                    Op::Delete => {
                        assert!(keyed.remove(&key).is_some(), "delete of an unshown key");
                    }
                    Op::UpdateBefore => {}
                    _ => {
                        keyed.insert(key, row);
                    }
                }
            }
        }
    }
    let mut rows: Vec<Vec<String>> = if plan.key_columns.is_empty() {
        counts
            .into_iter()
            .flat_map(|(row, n)| std::iter::repeat_n(row, n as usize))
            .collect()
    } else {
        keyed.into_values().collect()
    };
    rows.sort();
    rows
}

fn a_rows() -> impl Strategy<Value = Vec<Pair>> {
    proptest::collection::vec(
        (
            proptest::option::weighted(0.9, 0i64..6),
            proptest::option::weighted(0.9, -20i64..60),
        ),
        0..80,
    )
}

fn changes() -> impl Strategy<Value = Vec<Change>> {
    proptest::collection::vec((0i64..6, proptest::option::weighted(0.75, 0i64..40)), 0..60)
}

const QUERIES: &[&str] = &[
    "SELECT a.k, a.x, bv.y FROM a JOIN bv ON a.k = bv.k",
    "SELECT a.x, bv.y FROM a JOIN bv ON a.k = bv.k AND a.x < bv.y + 10 WHERE a.x > -15",
    "SELECT a.k, count(*) AS n, sum(bv.y) AS s, sum(a.x) AS sx FROM a JOIN bv ON a.k = bv.k GROUP BY a.k",
    "SELECT bv.y, count(*) AS n FROM a JOIN bv ON a.k = bv.k GROUP BY bv.y",
    "SELECT a.k, a.x, bv.k AS bk, bv.y FROM a LEFT JOIN bv ON a.k = bv.k AND a.x < bv.y + 10",
    "SELECT a.x, bv.k, bv.y FROM a RIGHT JOIN bv ON a.k = bv.k",
    "SELECT a.k, a.x, bv.k AS bk, bv.y FROM a FULL JOIN bv ON a.k = bv.k AND a.x > bv.y - 30",
    "SELECT bv.k, count(a.x) AS n, sum(a.x) AS s FROM a RIGHT JOIN bv ON a.k = bv.k GROUP BY bv.k",
    "SELECT a.k, a.x FROM a WHERE EXISTS (SELECT 1 FROM bv WHERE bv.k = a.k AND bv.y > a.x)",
    "SELECT a.k, a.x FROM a WHERE a.k IN (SELECT k FROM bv WHERE y > 10)",
    "SELECT a.k, a.x FROM a WHERE NOT EXISTS (SELECT 1 FROM bv WHERE bv.k = a.k AND bv.y < a.x + 20)",
    "SELECT bv.k, bv.y FROM bv WHERE bv.k IN (SELECT k FROM a WHERE x > 0)",
    "SELECT k, count(*) AS n FROM a WHERE NOT EXISTS (SELECT 1 FROM bv WHERE bv.k = a.k) GROUP BY k",
    // Three inputs: a join of a join.
    "SELECT a.k, a.x, bv.y, a2.x AS x2 FROM a JOIN bv ON a.k = bv.k JOIN a AS a2 ON a2.k = bv.k AND a2.x > a.x",
    "SELECT a.k, count(*) AS n FROM a LEFT JOIN bv ON a.k = bv.k JOIN a AS a2 ON a2.x = a.x GROUP BY a.k",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn joins_match_datafusion(
        a in a_rows(),
        changes in changes(),
        a_cuts in proptest::collection::vec(0usize..80, 0..6),
        bv_cuts in proptest::collection::vec(0usize..120, 0..6),
        order in proptest::collection::vec(any::<bool>(), 1..12),
        parallelism in 1usize..=2,
        restart in 0usize..12,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let engine = engine().await;
            let (sent, last) = view_changelog(&changes);
            for sql in QUERIES {
                let got = stream(&engine, sql, &a, &a_cuts, &sent, &bv_cuts, &order, parallelism, restart).await;
                let want = oracle(
                    sql,
                    [("a", batch(a_schema(), &a)), ("bv", batch(bv_schema(), &last))],
                )
                .await;
                assert_eq!(got, want, "{sql}");
            }
        });
    }
}

/// Two append-only inputs: the output is append-only, and a row arriving
/// on either side meets every row the other side kept.
#[tokio::test]
async fn append_only_inputs_give_append_only_matches() {
    let engine = engine().await;
    let plan = engine
        .plan_select("SELECT a.k, a.x, b.y FROM a JOIN b ON a.k = b.k")
        .await
        .expect("plan");
    assert!(!plan.changelog, "a join of append-only inputs appends");
    let plan = Arc::new(plan);
    let mut graph = SplitGraph::build(&plan, &Default::default(), 1).expect("operators");
    let mut out = Vec::new();
    let send = |graph: &mut SplitGraph, i: usize, rows: &[Pair], out: &mut Vec<StreamBatch>| {
        let schema = if i == 0 { a_schema() } else { bv_schema() };
        graph
            .push_input(
                i,
                Message::Batch(StreamBatch::append(batch(schema, rows))),
                out,
            )
            .expect("batch");
    };
    send(
        &mut graph,
        0,
        &[(Some(1), Some(10)), (None, Some(11)), (Some(2), Some(12))],
        &mut out,
    );
    assert!(out.is_empty(), "nothing on the other side yet");
    send(
        &mut graph,
        1,
        &[(Some(1), Some(100)), (None, Some(101))],
        &mut out,
    );
    send(&mut graph, 0, &[(Some(1), Some(13))], &mut out);
    let mut rows: Vec<Vec<String>> = out.iter().flat_map(|b| rows_of(&b.data)).collect();
    rows.sort();
    assert_eq!(rows, [["1", "10", "100"], ["1", "13", "100"]]);
    assert!(out.iter().all(|b| b.ops.is_none()));
}

// ---- Interval joins ----

/// Runs `sql` (a join of `a` and `b`, which `super::union::engine` declares
/// with `WATERMARK FOR ts AS ts - INTERVAL '2 seconds'`) over both
/// inputs' batches, each followed by its watermark, in the order `order`
/// picks. Returns the output rows, whether any output carried ops, and
/// each input's rows that were on time at the join (not behind its
/// watermark — the least of its inputs' — when they arrived).
pub(super) async fn stream_interval(
    engine: &Engine,
    sql: &str,
    inputs: [&Scheduled; 2],
    order: &[bool],
    restart: usize,
    parallelism: usize,
) -> (Vec<Vec<String>>, bool, [Vec<Row>; 2]) {
    let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
    assert!(!plan.changelog, "{sql}: an interval join appends");
    // The graph's inputs in the order the query reads the sources.
    let swapped = match plan.sources().as_slice() {
        ["a", "b"] => false,
        ["b", "a"] => true,
        other => panic!("{sql} reads {other:?}"),
    };
    let inputs = if swapped {
        [inputs[1], inputs[0]]
    } else {
        inputs
    };
    let metrics = Arc::new(PipelineMetrics::default());
    let mut graph = SplitGraph::build(&plan, &metrics, parallelism).expect("operators");
    let mut step = 0;
    let mut next = [0usize; 2];
    let mut ended = [false; 2];
    let mut join_wm: Option<i64> = None;
    let mut on_time: [Vec<Row>; 2] = [Vec::new(), Vec::new()];
    let mut out = Vec::new();
    let mut picks = order.iter().copied().cycle();
    while !(ended[0] && ended[1]) {
        let i = match (ended[0], ended[1]) {
            (false, false) => usize::from(!picks.next().unwrap_or(true)),
            (false, true) => 0,
            _ => 1,
        };
        step += 1;
        if step == restart {
            let states = graph.snapshot().expect("snapshot");
            graph = SplitGraph::build(&plan, &metrics, parallelism).expect("operators");
            graph.restore(states).expect("restore");
            // An input that had ended ends again at once (a file read to
            // its end).
            for j in (0..2).filter(|&j| ended[j]) {
                graph.end_input(j, &mut out).expect("end");
            }
        }
        let reached = match inputs[i].batches.get(next[i]) {
            Some((rows, wm)) => {
                next[i] += 1;
                on_time[i].extend(
                    rows.iter()
                        .filter(|r| join_wm.is_none_or(|w| r.ts >= w))
                        .cloned(),
                );
                graph
                    .push_input(
                        i,
                        Message::Batch(StreamBatch::append(batch_of(rows))),
                        &mut out,
                    )
                    .expect("batch");
                graph
                    .push_input(i, Message::Watermark(*wm), &mut out)
                    .expect("watermark")
            }
            None => {
                ended[i] = true;
                graph.end_input(i, &mut out).expect("end")
            }
        };
        if let Some(w) = reached {
            join_wm = Some(w);
        }
    }
    let updating = out.iter().any(|b| b.ops.is_some());
    let mut rows: Vec<Vec<String>> = out.iter().flat_map(|b| rows_of(&b.data)).collect();
    rows.sort();
    if swapped {
        on_time.swap(0, 1);
    }
    (rows, updating, on_time)
}

/// Which rows a time-bounded join's answer is over.
#[derive(Clone, Copy)]
pub(super) enum Kept {
    /// Those on time at the join (not behind its watermark).
    AtJoin,
    /// Those on time at their own input (window assignment drops the rest
    /// there).
    AtInputs,
}

/// Runs each `(sql, batch_sql)` over `a` and `b` cut at `cuts`, arriving
/// as `(order, restart, parallelism)` say (see `stream_interval`), and
/// checks the output is append-only and DataFusion's answer to `batch_sql`
/// over the rows `kept` says; `kind` says what the plan's join must be.
pub(super) fn time_joins_match(
    queries: &[(&str, &str)],
    [a, b]: [&[Row]; 2],
    [cuts_a, cuts_b]: [&[usize]; 2],
    (order, restart, parallelism): (&[bool], usize, usize),
    kept: Kept,
    kind: fn(&sluice::plan::JoinNode) -> bool,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let engine = super::union::engine().await;
        let (sa, sb) = (schedule(a, cuts_a), schedule(b, cuts_b));
        let at_inputs = |rows: &[Row], s: &Scheduled| -> Vec<Row> {
            rows.iter()
                .zip(&s.late)
                .filter(|(_, l)| !**l)
                .map(|(r, _)| r.clone())
                .collect()
        };
        for (sql, batch_sql) in queries {
            let plan = engine.plan_select(sql).await.expect("plan");
            assert!(
                plan.graph.nodes().iter().any(|n| matches!(&n.kind,
                    sluice::plan::NodeKind::Join(j) if kind(j))),
                "{sql}: not the join expected"
            );
            let (got, updating, [on_a, on_b]) =
                stream_interval(&engine, sql, [&sa, &sb], order, restart, parallelism).await;
            assert!(!updating, "{sql}: the join takes nothing back");
            let (rows_a, rows_b) = match kept {
                Kept::AtJoin => (on_a, on_b),
                Kept::AtInputs => (at_inputs(a, &sa), at_inputs(b, &sb)),
            };
            let want = oracle(
                batch_sql,
                [("a", batch_of(&rows_a)), ("b", batch_of(&rows_b))],
            )
            .await;
            assert_eq!(got, want, "{sql}");
        }
    });
}

const INTERVAL_QUERIES: &[&str] = &[
    "SELECT a.k, a.v, b.v AS bv FROM a JOIN b
     ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '2' SECOND",
    "SELECT a.k, a.v, b.v AS bv, b.ts FROM a LEFT JOIN b
     ON a.k = b.k AND b.ts >= a.ts AND b.ts <= a.ts + INTERVAL '3' SECOND AND b.v > a.v",
    "SELECT a.v, b.k, b.v AS bv FROM a RIGHT JOIN b
     ON a.k = b.k AND a.ts > b.ts - INTERVAL '500' MILLISECOND AND a.ts <= b.ts + INTERVAL '1' SECOND",
    "SELECT a.k, a.v, b.k AS bk, b.v AS bv FROM a FULL JOIN b
     ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL '2' SECOND AND a.ts - INTERVAL '1' SECOND",
    "SELECT a.k, a.v FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.k = a.k
     AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '1' SECOND)",
    "SELECT b.k, b.v FROM b WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.k = b.k
     AND a.ts >= b.ts AND a.ts <= b.ts + INTERVAL '2' SECOND AND a.v > b.v)",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Interval joins (inner, outer, semi and anti) against DataFusion over the rows
    /// that were on time at the join: disordered inputs, far-behind rows,
    /// random batches and interleaving, a checkpoint and restore at a
    /// random step. Their output is append-only: an
    /// outer row goes out once, when the watermark shows no match can come.
    #[test]
    fn interval_joins_match_datafusion(
        a in rows_strategy(),
        b in rows_strategy(),
        cuts_a in proptest::collection::vec(0usize..200, 0..8),
        cuts_b in proptest::collection::vec(0usize..200, 0..8),
        order in proptest::collection::vec(any::<bool>(), 1..16),
        restart in 0usize..20,
        parallelism in 1usize..=2,
    ) {
        let queries: Vec<(&str, &str)> = INTERVAL_QUERIES.iter().map(|q| (*q, *q)).collect();
        time_joins_match(
            &queries,
            [&a, &b],
            [&cuts_a, &cuts_b],
            (&order, restart, parallelism),
            Kept::AtJoin,
            |j| j.interval.is_some(),
        );
    }
}

/// EXPLAIN names the interval and what bounds the state; a join whose ON
/// does not bound both ways stays a regular join.
#[tokio::test]
async fn the_interval_bounds_the_state() {
    let engine = super::union::engine().await;
    let text = |sql: &'static str| {
        let engine = &engine;
        async move {
            let plan = engine.plan_select(sql).await.expect("plan");
            join_text(&plan)
        }
    };
    let interval = text(
        "SELECT a.k FROM a JOIN b ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '2' SECOND",
    )
    .await;
    assert!(
        interval.contains("interval: right time - left time in [-1s, 2s]"),
        "{interval}"
    );
    let open = text("SELECT a.k FROM a JOIN b ON a.k = b.k AND b.ts >= a.ts").await;
    assert!(open.contains("nothing bounds it"), "{open}");
    // state_ttl bounds a regular join, and EXPLAIN says how.
    let mut engine = engine;
    let Ok(sluice::Outcome::Rows(batch)) = engine
        .execute(
            "EXPLAIN CREATE MATERIALIZED VIEW v WITH (state_ttl = '10 minutes') AS
             SELECT a.k FROM a JOIN b ON a.k = b.k",
        )
        .await
    else {
        panic!("EXPLAIN gave no rows");
    };
    let shown: Vec<String> = rows_of(&batch).into_iter().flatten().collect();
    assert!(
        shown
            .iter()
            .any(|p| p.contains("state_ttl 10m after it arrived")
                && !p.contains("nothing bounds it")),
        "{shown:?}"
    );
}

/// Window joins: rows of two TUMBLE windows joined on their window (and a
/// key), freed once the watermark passes the window's end. The batch
/// form bins the rows each input kept on time with `date_bin`.
const WINDOW_JOINS: &[(&str, &str)] = &[
    (
        "SELECT x.k, x.v, y.v AS bv, x.window_start FROM TUMBLE(a, ts, INTERVAL '2' SECOND) x
         JOIN TUMBLE(b, ts, INTERVAL '2' SECOND) y
         ON x.k = y.k AND x.window_start = y.window_start AND x.window_end = y.window_end",
        "SELECT x.k, x.v, y.v AS bv, x.ws FROM
         (SELECT k, v, date_bin(INTERVAL '2 seconds', ts, TIMESTAMP '1970-01-01 00:00:00') AS ws FROM a) x
         JOIN (SELECT k, v, date_bin(INTERVAL '2 seconds', ts, TIMESTAMP '1970-01-01 00:00:00') AS ws FROM b) y
         ON x.k = y.k AND x.ws = y.ws",
    ),
    (
        "SELECT x.k, x.n, y.n AS bn, x.window_start FROM
         (SELECT k, count(*) AS n, window_start, window_end FROM TUMBLE(a, ts, INTERVAL '1' SECOND) GROUP BY k, window_start, window_end) x
         LEFT JOIN
         (SELECT k, count(*) AS n, window_start, window_end FROM TUMBLE(b, ts, INTERVAL '1' SECOND) GROUP BY k, window_start, window_end) y
         ON x.k = y.k AND x.window_start = y.window_start",
        "SELECT x.k, x.n, y.n AS bn, x.ws FROM
         (SELECT k, count(*) AS n, date_bin(INTERVAL '1 second', ts, TIMESTAMP '1970-01-01 00:00:00') AS ws FROM a GROUP BY 1, 3) x
         LEFT JOIN
         (SELECT k, count(*) AS n, date_bin(INTERVAL '1 second', ts, TIMESTAMP '1970-01-01 00:00:00') AS ws FROM b GROUP BY 1, 3) y
         ON x.k = y.k AND x.ws = y.ws",
    ),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn window_joins_match_datafusion(
        a in rows_strategy(),
        b in rows_strategy(),
        cuts_a in proptest::collection::vec(0usize..200, 0..8),
        cuts_b in proptest::collection::vec(0usize..200, 0..8),
        order in proptest::collection::vec(any::<bool>(), 1..16),
        restart in 0usize..20,
        parallelism in 1usize..=2,
    ) {
        time_joins_match(
            WINDOW_JOINS,
            [&a, &b],
            [&cuts_a, &cuts_b],
            (&order, restart, parallelism),
            Kept::AtInputs,
            |j| j.interval.is_some(),
        );
    }
}

/// A lookup join (`FOR SYSTEM_TIME AS OF` a processing-time column): each
/// stream row is matched once, when it arrives, against the view's rows of
/// that moment; a later change of the view changes nothing emitted, and the
/// output is append-only. A LEFT lookup join pads a row without a match.
#[tokio::test]
async fn a_lookup_join_matches_each_row_once_against_the_current_rows() {
    let mut engine = engine().await;
    // The looked-up view reads a topic (unbounded: a bounded one is read
    // whole before any stream row is matched, below).
    for sql in [
        "CREATE SOURCE s (k BIGINT, x BIGINT, p AS PROCTIME()) WITH (connector = 'file', path = 'unused')",
        "CREATE SOURCE t (k BIGINT, y BIGINT) WITH (connector = 'kafka', topic = 't',
             bootstrap_servers = 'localhost:9092', format = 'json')",
        "CREATE MATERIALIZED VIEW tv AS SELECT k, sum(y) AS y FROM t GROUP BY k",
    ] {
        engine.execute(sql).await.expect(sql);
    }
    for (sql, left) in [
        (
            "SELECT s.k, s.x, tv.y FROM s JOIN tv FOR SYSTEM_TIME AS OF s.p ON s.k = tv.k",
            false,
        ),
        (
            "SELECT s.k, s.x, tv.y FROM s LEFT JOIN tv FOR SYSTEM_TIME AS OF s.p ON s.k = tv.k",
            true,
        ),
    ] {
        let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
        assert!(!plan.changelog, "{sql}: a lookup join appends");
        assert_eq!(plan.sources(), ["s", "tv"]);
        let mut graph = SplitGraph::build(&plan, &Default::default(), 1).expect("operators");
        let (stream, view) = (stream_rows, view_rows);
        let mut out = Vec::new();
        graph
            .push_input(1, view(&[(Op::Insert, (1, 10))]), &mut out)
            .expect("view");
        graph
            .push_input(0, stream(&[(1, 100), (2, 200)]), &mut out)
            .expect("stream");
        // The view's row changes: what was emitted stays.
        graph
            .push_input(
                1,
                view(&[
                    (Op::UpdateBefore, (1, 10)),
                    (Op::Update, (1, 11)),
                    (Op::Insert, (2, 20)),
                ]),
                &mut out,
            )
            .expect("view");
        graph
            .push_input(0, stream(&[(1, 101), (2, 201)]), &mut out)
            .expect("stream");
        graph
            .push_input(1, view(&[(Op::Delete, (1, 11))]), &mut out)
            .expect("view");
        graph
            .push_input(0, stream(&[(1, 102)]), &mut out)
            .expect("stream");
        assert!(out.iter().all(|b| b.ops.is_none()), "{sql}: append-only");
        let mut rows: Vec<Vec<String>> = out.iter().flat_map(|b| rows_of(&b.data)).collect();
        rows.sort();
        let mut want = vec![
            vec!["1", "100", "10"],
            vec!["1", "101", "11"],
            vec!["2", "201", "20"],
        ];
        if left {
            want.extend([vec!["1", "102", "NULL"], vec!["2", "200", "NULL"]]);
        }
        want.sort();
        assert_eq!(rows, want, "{sql}");
    }
}

/// Rows of `s` (k, x, and its processing time).
fn stream_rows(rows: &[(i64, i64)]) -> Message {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("x", DataType::Int64, true),
        Field::new(
            "p",
            DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Millisecond,
                Some("+00:00".into()),
            ),
            false,
        ),
    ]));
    let p = datafusion::arrow::array::TimestampMillisecondArray::from(vec![0; rows.len()])
        .with_timezone("+00:00");
    Message::Batch(StreamBatch::append(
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(rows.iter().map(|r| Some(r.0)).collect::<Int64Array>()),
                Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int64Array>()),
                Arc::new(p),
            ],
        )
        .expect("batch"),
    ))
}

/// A keyed view's changes (k, y).
fn view_rows(changes: &[(Op, (i64, i64))]) -> Message {
    let rows: Vec<Pair> = changes
        .iter()
        .map(|(_, (k, y))| (Some(*k), Some(*y)))
        .collect();
    let ops = UInt8Array::from(changes.iter().map(|(o, _)| *o as u8).collect::<Vec<_>>());
    Message::Batch(StreamBatch::changelog(batch(bv_schema(), &rows), ops))
}

/// A lookup join of a bounded input (a view over a file) reads it whole
/// first: stream rows that arrive before its end wait, then each is matched
/// once against all of it; later ones are matched as they arrive.
#[tokio::test]
async fn a_lookup_join_reads_a_bounded_input_whole_first() {
    let mut engine = engine().await;
    engine
        .execute("CREATE SOURCE s (k BIGINT, x BIGINT, p AS PROCTIME()) WITH (connector = 'file', path = 'unused')")
        .await
        .expect("source");
    let sql = "SELECT s.k, s.x, bv.y FROM s LEFT JOIN bv FOR SYSTEM_TIME AS OF s.p ON s.k = bv.k";
    let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
    let text = join_text(&plan);
    assert!(text.contains("it is bounded"), "{text}");
    for parallelism in [1, 2] {
        let mut graph =
            SplitGraph::build(&plan, &Default::default(), parallelism).expect("operators");
        let mut out = Vec::new();
        graph
            .push_input(0, stream_rows(&[(1, 100), (2, 200), (3, 300)]), &mut out)
            .expect("stream");
        graph
            .push_input(
                1,
                view_rows(&[(Op::Insert, (1, 10)), (Op::Insert, (2, 20))]),
                &mut out,
            )
            .expect("view");
        graph
            .push_input(
                1,
                view_rows(&[(Op::UpdateBefore, (1, 10)), (Op::Update, (1, 11))]),
                &mut out,
            )
            .expect("view");
        assert!(
            out.is_empty(),
            "nothing before the bounded input is read whole"
        );
        graph.end_input(1, &mut out).expect("end");
        graph
            .push_input(0, stream_rows(&[(2, 201)]), &mut out)
            .expect("stream");
        let mut rows: Vec<Vec<String>> = out.iter().flat_map(|b| rows_of(&b.data)).collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                ["1", "100", "11"],
                ["2", "200", "20"],
                ["2", "201", "20"],
                ["3", "300", "NULL"]
            ],
            "at parallelism {parallelism}"
        );
    }
}
