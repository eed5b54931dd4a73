//! The changelog aggregate's checkpoint: its groups, their accumulators'
//! states, what each group showed last, and the changes still held back.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::{new_accumulator, new_accumulators, Calls, ChangelogAggregate, NO_SLOT};
use crate::error::Result;
use crate::runtime::rescale::Router;
use crate::runtime::state::{
    column, concat_rows, damaged, intern_group_keys, keep_group_keys, keep_groups_states,
    merge_states, state_batch, states_of, take_states, to_meta, StateSnapshot,
};

/// Checkpoint metadata; the batches are the group keys (with GROUP BY), a
/// row per group (its input row count, whether a row of it is shown,
/// whether its change is still to be emitted, its accumulators' states),
/// and the shown rows as last emitted, all in group order. A global
/// aggregate has at most one group, and no keys.
#[derive(Serialize, Deserialize)]
struct AggregateMeta {
    groups: usize,
    /// Vectorized: the rows added since the last flush (when the next one
    /// is due).
    #[serde(default)]
    pending_rows: usize,
}

impl ChangelogAggregate {
    pub(super) fn snapshot_state(&mut self) -> Result<StateSnapshot> {
        let n = self.counts.len();
        let mut batches = Vec::with_capacity(3);
        if let Some(groups) = self.groups.as_mut() {
            let keys = keep_group_keys(groups.as_mut())?;
            batches.push(RecordBatch::try_new(self.agg.group_schema.clone(), keys)?);
        }
        let (agg, retracting) = (&self.agg, self.retracting);
        let states = match &mut self.calls {
            Calls::PerGroup(per_group) => {
                take_states(per_group.iter_mut(), agg.calls.len(), |c| {
                    new_accumulator(agg, retracting, c)
                })?
            }
            Calls::Vectorized(accs) => keep_groups_states(accs, n)?,
        };
        let rows: ArrayRef = Arc::new(Int64Array::from(self.counts.clone()));
        let shown: ArrayRef = Arc::new(
            self.last
                .iter()
                .map(|r| Some(r.is_some()))
                .collect::<BooleanArray>(),
        );
        let mut columns = vec![("rows".into(), rows), ("shown".into(), shown)];
        if let Calls::Vectorized(_) = self.calls {
            let pending: ArrayRef = Arc::new(
                self.slot
                    .iter()
                    .map(|&s| Some(s != NO_SLOT))
                    .collect::<BooleanArray>(),
            );
            columns.push(("pending".into(), pending));
        }
        batches.push(state_batch(columns, states, n)?);
        let last = self
            .converter
            .convert_rows(self.last.iter().flatten().map(|r| r.row()))?;
        batches.push(RecordBatch::try_new(self.output_schema.clone(), last)?);
        Ok(StateSnapshot::new(
            to_meta(&AggregateMeta {
                groups: n,
                pending_rows: self.pending.rows,
            })?,
            batches,
        ))
    }

    pub(super) fn restore_state(&mut self, state: StateSnapshot) -> Result<()> {
        let AggregateMeta {
            groups: n,
            pending_rows,
        } = state.meta_as()?;
        let mut batches = state.into_batches();
        let mut keys = None;
        if let Some(groups) = self.groups.as_mut() {
            let batch = batches.next("group keys")?;
            intern_group_keys(groups.as_mut(), &batch)?;
            keys = Some(batch);
        } else if n > 1 {
            return Err(damaged("a global aggregate with several groups"));
        }
        let per_group = batches.next("group states")?;
        let last = batches.next("emitted rows")?;
        let counts = column::<Int64Array>(&per_group, "rows")?;
        let shown = column::<BooleanArray>(&per_group, "shown")?;
        if per_group.num_rows() != n || shown.true_count() != last.num_rows() {
            return Err(damaged("group counts disagree"));
        }
        let states = states_of(&per_group, self.agg.calls.len())?;
        let last = self.converter.convert_columns(last.columns())?;
        let mut last = last.iter();
        for g in 0..n {
            if let Calls::PerGroup(per_group) = &mut self.calls {
                let mut accs = new_accumulators(&self.agg, self.retracting)?;
                merge_states(&states, g, &mut accs)?;
                per_group.push(accs);
            }
            self.counts.push(counts.value(g));
            self.last.push(match shown.value(g) {
                true => last.next().map(|r| r.owned()),
                false => None,
            });
            self.slot.push(NO_SLOT);
        }
        if let Calls::Vectorized(accs) = &mut self.calls {
            if states.len() != accs.len() {
                return Err(damaged("aggregate state columns"));
            }
            let ids: Vec<usize> = (0..n).collect();
            for (acc, state) in accs.iter_mut().zip(&states) {
                acc.merge_batch(state, &ids, n)?;
            }
            // Checkpoints from before the vectorized path have no pending
            // groups: every change was emitted with its batch.
            let pending = match per_group.column_by_name("pending") {
                Some(c) => c
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| damaged("column pending"))?
                    .clone(),
                None => BooleanArray::from(vec![false; n]),
            };
            let key_cols = keys.map(|k| k.columns().to_vec()).unwrap_or_default();
            for g in (0..n).filter(|&g| pending.value(g)) {
                self.slot[g] = self.pending.groups.len() as u32;
                self.pending.groups.push(g);
                self.pending.key_at.push((0, g));
            }
            self.pending.keys.push(key_cols);
            self.pending.rows = pending_rows;
        }
        // A global aggregate checkpointed before its first input row shows
        // its row over no input again.
        self.first_row_due = self.groups.is_none() && n == 0;
        Ok(())
    }
}

impl ChangelogAggregate {
    /// The groups of every instance's state, re-split by the exchange's
    /// hash of their keys (`rescale.rs`). A global aggregate runs as one
    /// instance and is never re-split.
    pub(super) fn rescale_states(
        &self,
        states: Vec<StateSnapshot>,
        router: &Router,
    ) -> Result<Option<Vec<StateSnapshot>>> {
        if self.groups.is_none() || states.is_empty() {
            return Ok(None);
        }
        let (mut keys, mut groups, mut last) = (Vec::new(), Vec::new(), Vec::new());
        let mut pending_rows = 0;
        for state in states {
            let meta: AggregateMeta = state.meta_as()?;
            let mut batches = state.into_batches();
            let (k, g, l) = (
                batches.next("group keys")?,
                batches.next("group states")?,
                batches.next("emitted rows")?,
            );
            let shown = column::<BooleanArray>(&g, "shown")?;
            if k.num_rows() != meta.groups
                || g.num_rows() != meta.groups
                || shown.true_count() != l.num_rows()
            {
                return Err(damaged("group counts disagree"));
            }
            pending_rows += meta.pending_rows;
            keys.push(k);
            groups.push(g);
            last.push(l);
        }
        let keys = concat_rows(keys)?;
        let groups = concat_rows(groups)?;
        let last = concat_rows(last)?;
        // The emitted rows are those of the shown groups, in group order.
        let shown = column::<BooleanArray>(&groups, "shown")?;
        let mut row_of = Vec::with_capacity(shown.len());
        let mut next = 0u32;
        for g in 0..shown.len() {
            row_of.push(shown.value(g).then(|| {
                next += 1;
                next - 1
            }));
        }
        if next as usize != last.num_rows() {
            return Err(damaged("group counts disagree"));
        }
        router
            .split(keys.columns())?
            .into_iter()
            .map(|part| {
                let emitted = UInt32Array::from(
                    part.iter()
                        .filter_map(|&g| row_of[g as usize])
                        .collect::<Vec<u32>>(),
                );
                let part = UInt32Array::from(part);
                Ok(StateSnapshot::new(
                    to_meta(&AggregateMeta {
                        groups: part.len(),
                        // When the next flush is due: as soon as before.
                        pending_rows,
                    })?,
                    vec![
                        take_record_batch(&keys, &part)?,
                        take_record_batch(&groups, &part)?,
                        take_record_batch(&last, &emitted)?,
                    ],
                ))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::runtime::restore_check::{
        batch, changes, check_restores, plan, rows_strategy, script, Row, Step, AGGS, BASE,
    };
    use crate::stream::Op;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn restores_groups_and_what_they_showed(
            rows in rows_strategy(137),
            cuts in proptest::collection::vec(0usize..250, 0..12),
            at in proptest::collection::vec(0usize..40, 1..4),
        ) {
            let steps = script(&rows, &cuts);
            for sql in [
                format!("SELECT k, tag, {AGGS} FROM t GROUP BY k, tag"),
                // HAVING hides and shows groups again: deletes and inserts.
                "SELECT k, max(v) - min(v) AS spread FROM t GROUP BY k HAVING count(*) % 3 <> 0".into(),
                // Vectorized: every call's state goes back in exactly.
                "SELECT k, tag, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, avg(v) AS a, \
                 count(v) FILTER (WHERE v > 10) AS big, max(tag) AS t FROM t GROUP BY k, tag".into(),
                "SELECT k, sum(v) AS s FROM t GROUP BY k HAVING count(*) % 3 <> 0".into(),
                "SELECT count(*) AS n, max(v) AS hi FROM t".into(),
                // One group, no keys.
                format!("SELECT {AGGS} FROM t"),
                "SELECT count(*) AS n FROM t HAVING sum(v) % 2 = 0".into(),
            ] {
                check_restores(&plan(&sql, 0), &steps, &at);
            }
        }

        /// Over an updating view: rows come and go (insert, the old row of
        /// an update then the new one, delete), and groups empty out.
        #[test]
        fn restores_over_an_updating_input(
            events in proptest::collection::vec((0usize..6, 0u8..3, 0i64..3, proptest::option::weighted(0.9, -20i64..60)), 1..120),
            cuts in proptest::collection::vec(0usize..120, 0..10),
            at in proptest::collection::vec(0usize..25, 1..4),
        ) {
            let steps = updating_script(&events, &cuts);
            for sql in [
                // The variance's state goes back in through DataFusion's
                // merge formula, which is exact only to the last bits. The
                // variance, not stddev: a square root turns an error of
                // 1e-12 into 1e-6 (two equal values gave stddev 1e-6); abs:
                // a variance of -1e-15 rounds to -0.0.
                "SELECT k, count(*) AS n, sum(v) AS s, count(v) AS nv, avg(v) AS a, abs(round(var_samp(v), 4)) AS var FROM t GROUP BY k",
                "SELECT count(*) AS n, sum(v) AS s FROM t",
            ] {
                let mut p = plan(sql, 0);
                // As planning over an updating view marks it.
                std::sync::Arc::get_mut(&mut p)
                    .expect("plan")
                    .graph
                    .aggregate_mut()
                    .expect("aggregate")
                    .retracting = true;
                check_restores(&p, &steps, &at);
            }
        }
    }

    /// The changes of a keyed upstream view (ids 0..6), cut into batches.
    /// `kind` 0 deletes a present id, otherwise it is updated; absent ids
    /// are inserted.
    fn updating_script(events: &[(usize, u8, i64, Option<i64>)], cuts: &[usize]) -> Vec<Step> {
        let mut upstream: Vec<Option<Row>> = vec![None; 6];
        let mut all = Vec::new();
        for (i, &(id, kind, k, v)) in events.iter().enumerate() {
            let new = Row {
                k,
                tag: None,
                v,
                ts: BASE + i as i64,
            };
            match (upstream[id].take(), kind) {
                (None, _) => {
                    all.push((Op::Insert, new.clone()));
                    upstream[id] = Some(new);
                }
                (Some(old), 0) => all.push((Op::Delete, old)),
                (Some(old), _) => {
                    all.push((Op::UpdateBefore, old));
                    all.push((Op::Update, new.clone()));
                    upstream[id] = Some(new);
                }
            }
        }
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (all.len() + 1)).collect();
        bounds.extend([0, all.len()]);
        bounds.sort();
        bounds.dedup();
        bounds
            .windows(2)
            .map(|w| Step::Rows(changes(&all[w[0]..w[1]])))
            .collect()
    }

    /// A snapshot taken before any input restores an empty operator.
    #[test]
    fn restores_before_any_input() {
        let rows = [Row {
            k: 1,
            tag: Some("x"),
            v: Some(5),
            ts: BASE,
        }];
        let steps = [Step::Rows(crate::stream::StreamBatch::append(batch(&rows)))];
        for sql in [
            format!("SELECT k, {AGGS} FROM t GROUP BY k"),
            format!("SELECT {AGGS} FROM t"),
        ] {
            check_restores(&plan(&sql, 0), &steps, &[0, 1]);
        }
    }
}
