//! UNION ALL against DataFusion in batch. Two inputs, each with random
//! keys, values and disordered timestamps (some far behind), cut into
//! random batches that arrive interleaved in a random order; each batch is
//! followed by its input's watermark (`max seen - 2 s`). A row behind its
//! own input's watermark when it arrives is late: windows assigned on that
//! input drop it and count it. The union's watermark is the least of its
//! inputs', so a window after it closes only once both have passed its end;
//! an input that ends no longer holds it back.

use std::sync::Arc;

use proptest::prelude::*;
use sluice::metrics::PipelineMetrics;
use sluice::runtime::split::SplitGraph;
use sluice::stream::{Message, StreamBatch};
use sluice::Engine;

use super::rows_of;
use super::windows::{batch_of, millis, oracle, windowed_batch, Row, BASE, DELAY};

pub(super) fn rows_strategy() -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec(
        (
            0i64..4,
            -50i64..100,
            0i64..3_000,
            proptest::bool::weighted(0.05),
        ),
        0..200,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (k, v, jitter, far))| Row {
                k,
                v,
                ts: BASE + i as i64 * 211 - jitter - if far { 20_000 } else { 0 },
            })
            .collect()
    })
}

/// One input's batches, each with the watermark after it and which of its
/// rows are late.
pub(super) struct Scheduled {
    pub(super) batches: Vec<(Vec<Row>, i64)>,
    pub(super) late: Vec<bool>,
}

pub(super) fn schedule(rows: &[Row], cuts: &[usize]) -> Scheduled {
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
            late.push(wm.is_some_and(|m| r.ts < m));
        }
        let max = b.iter().map(|r| r.ts).max().expect("non-empty");
        let next = wm.map_or(max - DELAY, |m| m.max(max - DELAY));
        wm = Some(next);
        batches.push((b, next));
    }
    Scheduled { batches, late }
}

pub(super) async fn engine() -> Engine {
    let mut engine = Engine::new();
    for name in ["a", "b"] {
        engine
            .execute(&format!(
                "CREATE SOURCE {name} (k BIGINT NOT NULL, v BIGINT, ts TIMESTAMP NOT NULL,
                     WATERMARK FOR ts AS ts - INTERVAL '2 seconds') WITH (connector = 'file', path = 'unused')"
            ))
            .await
            .expect("source");
    }
    engine
}

struct Streamed {
    rows: Vec<Vec<String>>,
    late: u64,
}

/// Runs `sql` over both inputs' batches in the order `order` picks (`true`:
/// the next batch of input 0); each input ends after its last batch.
/// With `window_end`, checks each window is emitted once the union's
/// watermark passes its end, and not before.
async fn stream(
    engine: &Engine,
    sql: &str,
    inputs: [&Scheduled; 2],
    order: &[bool],
    window_end: Option<usize>,
    parallelism: usize,
) -> Streamed {
    let plan = Arc::new(engine.plan_select(sql).await.expect("plan"));
    let metrics = Arc::new(PipelineMetrics::default());
    // On `parallelism` cores: a keyed aggregate after the union runs as
    // that many instances behind a hash exchange.
    let mut graph = SplitGraph::build(&plan, &metrics, parallelism).expect("operators");
    assert_eq!(graph.inputs(), 2);
    let mut next = [0usize; 2];
    let mut wms: [Option<i64>; 2] = [None, None];
    let mut ended = [false; 2];
    let mut rows = Vec::new();
    let mut picks = order.iter().copied().cycle();
    while !(ended[0] && ended[1]) {
        let i = match (ended[0], ended[1]) {
            (false, false) => usize::from(!picks.next().unwrap_or(true)),
            (false, true) => 0,
            _ => 1,
        };
        let mut out = Vec::new();
        let reached = match inputs[i].batches.get(next[i]) {
            Some((batch, wm)) => {
                next[i] += 1;
                graph
                    .push_input(
                        i,
                        Message::Batch(StreamBatch::append(batch_of(batch))),
                        &mut out,
                    )
                    .expect("batch");
                wms[i] = Some(*wm);
                graph
                    .push_input(i, Message::Watermark(*wm), &mut out)
                    .expect("watermark")
            }
            None => {
                ended[i] = true;
                graph.end_input(i, &mut out).expect("end")
            }
        };
        // The union's watermark: the least of the open inputs'.
        let open: Vec<Option<i64>> = (0..2).filter(|&j| !ended[j]).map(|j| wms[j]).collect();
        let expected = if open.iter().any(Option::is_none) {
            None
        } else {
            open.into_iter().flatten().min()
        };
        if let (Some(reached), Some(expected)) = (reached, expected) {
            assert_eq!(reached, expected, "the union's watermark");
        }
        for o in &out {
            for r in rows_of(&o.data) {
                if let Some(col) = window_end {
                    let end = millis(&r[col]);
                    if !(ended[0] && ended[1]) {
                        let wm = reached.or(expected).expect("a watermark emitted it");
                        assert!(end <= wm, "window ending {end} emitted at watermark {wm}");
                    }
                }
                rows.push(r);
            }
        }
    }
    rows.sort();
    Streamed {
        rows,
        late: metrics.late.load(std::sync::atomic::Ordering::Relaxed),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A TUMBLE window on each input, grouped after the union.
    #[test]
    fn windows_over_a_union_match_datafusion(
        a in rows_strategy(),
        b in rows_strategy(),
        cuts_a in proptest::collection::vec(0usize..200, 0..8),
        cuts_b in proptest::collection::vec(0usize..200, 0..8),
        order in proptest::collection::vec(any::<bool>(), 1..16),
        parallelism in 1usize..=2,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let engine = engine().await;
            let (sa, sb) = (schedule(&a, &cuts_a), schedule(&b, &cuts_b));
            let sql = "SELECT k, window_start, window_end, count(*) AS n, sum(v) AS s, min(v) AS lo
                FROM (SELECT k, v, window_start, window_end FROM TUMBLE(a, ts, INTERVAL '1 second')
                      UNION ALL
                      SELECT k, v + 1000 AS v, window_start, window_end FROM TUMBLE(b, ts, INTERVAL '1 second') WHERE v > -40) u
                GROUP BY k, window_start, window_end";
            let streamed = stream(&engine, sql, [&sa, &sb], &order, Some(2), parallelism).await;
            // The oracle: every row on time, with its window.
            let mut on_time = Vec::new();
            let mut late = 0u64;
            for (rows, s, shift, keep) in [(&a, &sa, 0, i64::MIN), (&b, &sb, 1000, -40)] {
                for (r, is_late) in rows.iter().zip(&s.late) {
                    if *is_late {
                        late += 1;
                        continue;
                    }
                    if r.v <= keep {
                        continue;
                    }
                    let start = r.ts - r.ts.rem_euclid(1000);
                    on_time.push((Row { k: r.k, v: r.v + shift, ts: r.ts }, start, start + 1000));
                }
            }
            let expected = oracle(
                "SELECT k, ws AS window_start, we AS window_end, count(*) AS n, sum(v) AS s, min(v) AS lo
                 FROM w GROUP BY k, ws, we",
                windowed_batch(&on_time),
            ).await;
            prop_assert_eq!(streamed.late, late, "late rows counted");
            prop_assert_eq!(streamed.rows, expected);
            Ok(())
        })?;
    }

    /// Rows of both inputs pass a union unchanged, however they interleave,
    /// and nothing is late without windows.
    #[test]
    fn a_union_passes_every_row(
        a in rows_strategy(),
        b in rows_strategy(),
        cuts_a in proptest::collection::vec(0usize..200, 0..8),
        cuts_b in proptest::collection::vec(0usize..200, 0..8),
        order in proptest::collection::vec(any::<bool>(), 1..16),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let engine = engine().await;
            let (sa, sb) = (schedule(&a, &cuts_a), schedule(&b, &cuts_b));
            let sql = "SELECT k, v, ts FROM a UNION ALL SELECT k * 10 AS k, v, ts FROM b";
            let streamed = stream(&engine, sql, [&sa, &sb], &order, None, 1).await;
            let all: Vec<(Row, i64, i64)> = a
                .iter()
                .map(|r| (Row { k: r.k, v: r.v, ts: r.ts }, 0, 0))
                .chain(b.iter().map(|r| (Row { k: r.k * 10, v: r.v, ts: r.ts }, 0, 0)))
                .collect();
            let expected = oracle("SELECT k, v, ts FROM w", windowed_batch(&all)).await;
            prop_assert_eq!(streamed.late, 0);
            prop_assert_eq!(streamed.rows, expected);
            Ok(())
        })?;
    }
}
