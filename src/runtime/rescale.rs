//! Restoring keyed state at another parallelism. A checkpoint of a plan
//! with an exchange holds each keyed operator's state once per instance,
//! split by the hash of the exchange's key (`exchange.rs`). To restore it
//! on a different number of instances, each such operator re-splits its
//! instances' states by the same hash ([`Operator::rescale`]): the keys
//! of a state are the group keys besides the window, which are exactly
//! the values the exchange hashes, so every key lands in the instance
//! its rows will be sent to. Where an operator cannot re-split its state
//! (its instances disagree on their watermark), the pipeline keeps the
//! checkpoint's parallelism, as before.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;

use super::exchange::rows_by_part;
use super::graph::{operator, state_key};
use super::operator::Operator;
use super::state::StateSnapshot;
use crate::error::{Result, SluiceError};
use crate::metrics::PipelineMetrics;
use crate::plan::{Exchange, StreamPlan};

/// Assigns keys to instances as the exchange does.
pub struct Router {
    parts: usize,
    /// The exchange's key types: state keys of other types would hash
    /// differently.
    types: Vec<DataType>,
}

impl Router {
    pub fn new(parts: usize, types: Vec<DataType>) -> Router {
        Router {
            parts: parts.max(1),
            types,
        }
    }

    /// How many instances there are now.
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// The rows of `keys` (a state's key columns) each instance gets, in
    /// order.
    pub fn split(&self, keys: &[ArrayRef]) -> Result<Vec<Vec<u32>>> {
        let types: Vec<&DataType> = keys.iter().map(|k| k.data_type()).collect();
        if types.len() != self.types.len() || types.iter().zip(&self.types).any(|(a, b)| *a != b) {
            return Err(SluiceError::StateMismatch(format!(
                "state keys of types {types:?} where the exchange hashes {:?}",
                self.types
            )));
        }
        rows_by_part(keys, self.parts, &mut Vec::new())
    }
}

/// The value every instance's state holds (their watermark: every
/// instance sees every watermark), or `None` when they differ (the state
/// is then not re-split).
pub fn agreed<T: PartialEq>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut values = values.into_iter();
    let first = values.next()?;
    values.all(|v| v == first).then_some(first)
}

/// Re-splits the keyed state in `states`, taken on `from` instances, for
/// `to`. Returns whether every operator of the keyed part that holds state
/// could; only then are `states` rewritten (under the keys the instances
/// at `to` restore from), otherwise they are left as they were.
pub fn rescale(
    plan: &Arc<StreamPlan>,
    exchange: &Exchange,
    states: &mut BTreeMap<String, StateSnapshot>,
    from: usize,
    to: usize,
) -> Result<bool> {
    let entry = plan.graph.node(exchange.node)?;
    let input = entry
        .inputs
        .first()
        .ok_or_else(|| SluiceError::Internal("an exchange before a node without input".into()))?;
    let input = plan.graph.node(*input)?.schema.clone();
    // A join's inputs' keys have the same types: the first input's say.
    let types = exchange.inputs[0]
        .iter()
        .map(|k| Ok(k.data_type(&input)?))
        .collect::<Result<Vec<_>>>()?;
    let router = Router::new(to, types);
    let metrics = Arc::new(PipelineMetrics::new("rescale", ""));
    let mut taken = Vec::new();
    let mut put = Vec::new();
    for id in exchange.part(&plan.graph) {
        let op: Box<dyn Operator> = operator(plan, plan.graph.node(id)?, &metrics)?;
        let old: Vec<String> = (0..from)
            .map(|i| state_key(id, Some((i, from)), op.name()))
            .collect();
        let held = old.iter().filter(|k| states.contains_key(*k)).count();
        if held == 0 {
            continue;
        }
        if held != from {
            return Ok(false);
        }
        let snapshots = old.iter().filter_map(|k| states.get(k).cloned()).collect();
        let Some(parts) = op.rescale(snapshots, &router)? else {
            return Ok(false);
        };
        if parts.len() != to {
            return Err(SluiceError::Internal(format!(
                "{} re-split its state into {} parts, not {to}",
                op.name(),
                parts.len()
            )));
        }
        taken.extend(old);
        put.extend(
            parts
                .into_iter()
                .enumerate()
                .map(|(i, s)| (state_key(id, Some((i, to)), op.name()), s)),
        );
    }
    for key in taken {
        states.remove(&key);
    }
    states.extend(put);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::runtime::restore_check::{batch, plan, render, rows_strategy, AGGS, DELAY};
    use crate::runtime::split::SplitGraph;
    use crate::stream::{Message, StreamBatch};

    /// Runs `rows` in batches at `cuts` (each followed by its watermark)
    /// on `from` instances; with `at`, snapshots before batch `at`,
    /// re-splits the state for `to` instances and goes on with those.
    /// Returns what the emitted changes add up to (the rows by their
    /// first `key` columns: how often a flush coalesces changes depends on
    /// how many groups an instance holds, the result does not), and
    /// whether the state was re-split.
    fn run(
        sql: &str,
        key: usize,
        lateness: u64,
        rows: &[crate::runtime::restore_check::Row],
        cuts: &[usize],
        from: usize,
        at: Option<(usize, usize)>,
    ) -> (BTreeMap<Vec<String>, Vec<String>>, bool) {
        let p = plan(sql, lateness);
        let metrics = Arc::new(PipelineMetrics::new("t", ""));
        let mut g = SplitGraph::build(&p, &metrics, from).expect("operators");
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (rows.len() + 1)).collect();
        bounds.extend([0, rows.len()]);
        bounds.sort();
        bounds.dedup();
        // Before which batch the state is re-split (of those there are).
        let at = at.map(|(step, to)| (step % (bounds.len() - 1), to));
        let mut out = Vec::new();
        let mut highest = i64::MIN;
        let mut rescaled = false;
        for (n, w) in bounds.windows(2).enumerate() {
            if let Some((_, to)) = at.filter(|(step, _)| *step == n) {
                let mut states = g.snapshot().expect("snapshot");
                let exchange = Exchange::of(&p.graph).expect("exchange");
                rescaled = rescale(&p, &exchange, &mut states, from, to).expect("rescale");
                let parallelism = if rescaled { to } else { from };
                g = SplitGraph::build(&p, &metrics, parallelism).expect("operators");
                g.restore(states).expect("restore");
            }
            let part = &rows[w[0]..w[1]];
            highest = part.iter().map(|r| r.ts).fold(highest, i64::max);
            let b = StreamBatch::append(batch(part));
            g.push_input(0, Message::Batch(b), &mut out).expect("batch");
            g.push_input(0, Message::Watermark(highest - DELAY), &mut out)
                .expect("watermark");
        }
        g.finish(&mut out).expect("end");
        let mut result = BTreeMap::new();
        for b in &out {
            for row in render(std::slice::from_ref(b)) {
                let (op, values) = row.split_once(": ").expect("op");
                let values: Vec<String> = values.split(" | ").map(String::from).collect();
                let k = values[..key].to_vec();
                match op {
                    "insert" | "update" => {
                        result.insert(k, values);
                    }
                    "delete" | "update_before" => {
                        result.remove(&k);
                    }
                    other => panic!("op {other}"),
                }
            }
        }
        (result, rescaled)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// Keyed state checkpointed on 2 instances and restored on 1 or 3
        /// (and on 3, restored on 2) gives what one uninterrupted run
        /// gives: every group's rows and changes, once.
        #[test]
        fn keyed_state_restores_at_another_parallelism(
            rows in rows_strategy(137),
            cuts in proptest::collection::vec(0usize..250, 1..10),
            at in 0usize..10,
        ) {
            for (sql, key, lateness) in [
                (format!("SELECT k, tag, {AGGS} FROM t GROUP BY k, tag"), 2, 0),
                ("SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k HAVING count(*) % 3 <> 0".to_string(), 1, 0),
                (format!("SELECT k, tag, window_start, window_end, {AGGS} \
                          FROM TUMBLE(t, ts, INTERVAL '3 seconds') GROUP BY k, tag, window_start, window_end"), 4, 0),
                ("SELECT k, window_end, count(*) AS n, max(v) AS hi \
                  FROM HOP(t, ts, INTERVAL '1 second', INTERVAL '3 seconds') GROUP BY k, window_start, window_end".to_string(), 2, 4_000),
                ("SELECT k, window_start, window_end, count(*) AS n, sum(v) AS s \
                  FROM SESSION(t, ts, INTERVAL '2 seconds') GROUP BY k, window_start, window_end".to_string(), 3, 0),
                ("SELECT k, tag, window_start, window_end, count(*) AS n \
                  FROM SESSION(t, ts, INTERVAL '2 seconds') GROUP BY k, tag, window_start, window_end".to_string(), 4, 3_000),
            ] {
                let (straight, _) = run(&sql, key, lateness, &rows, &cuts, 1, None);
                for (from, to) in [(2, 1), (2, 3), (3, 2)] {
                    let (rescaled_run, rescaled) = run(&sql, key, lateness, &rows, &cuts, from, Some((at, to)));
                    // With allowed lateness, a late row can open a window
                    // in one instance that another already emitted: such a
                    // state is not re-split (the run goes on at `from`).
                    prop_assert!(rescaled || lateness > 0, "{sql}: not re-split {from} → {to}");
                    prop_assert_eq!(&rescaled_run, &straight, "{}: {} → {}", sql, from, to);
                }
            }
        }
    }
}
