//! Non-windowed `GROUP BY` over an unbounded stream, emitted as a changelog.
//!
//! Groups are interned by DataFusion's vectorized `GroupValues`; each group
//! keeps one DataFusion `Accumulator` per aggregate call, so every built-in
//! (and user-defined) aggregate works, DISTINCT and ORDER BY included. Per
//! batch the rows are sorted by group with one counting sort and one `take`
//! per argument, and each touched group's accumulators get a zero-copy slice.
//!
//! After a batch, every touched group's row is re-evaluated, passed through
//! the post-aggregate stages (select list, HAVING) and compared with what was
//! emitted last for that group (kept in Arrow's row format): a new visible
//! row is an `insert`, a changed one an `update`, and a row that HAVING now
//! hides a `delete` of the last emitted row. Unchanged rows emit nothing.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, UInt32Array, UInt8Array,
};
use datafusion::arrow::compute::{cast, take, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use serde::{Deserialize, Serialize};

use super::operator::Operator;
use super::state::{
    column, damaged, intern_group_keys, keep_group_keys, merge_states, state_batch, states_of,
    take_states, to_meta, StateSnapshot,
};
use super::stateless::{drop_failing_rows, post_stages, predicate_mask};
use crate::error::{Result, SluiceError};
use crate::metrics::PipelineMetrics;
use crate::plan::{AggregatePlan, StreamPlan};
use crate::stream::{Op, StreamBatch};

const NO_SLOT: u32 = u32::MAX;

pub struct ChangelogAggregate {
    agg: Arc<AggregatePlan>,
    output_schema: SchemaRef,
    /// `None` for a global aggregate (no GROUP BY): every row is group 0.
    groups: Option<Box<dyn GroupValues>>,
    /// `[group][call]`
    accumulators: Vec<Vec<Box<dyn Accumulator>>>,
    /// The row last emitted per group, `None` while the group is not shown.
    last: Vec<Option<OwnedRow>>,
    /// Input rows per group (an updating input can take them away again).
    counts: Vec<i64>,
    /// The input is an updating view: rows may be taken back.
    retracting: bool,
    converter: RowConverter,
    metrics: Arc<PipelineMetrics>,
    /// Scratch: a group's position among this batch's groups.
    slot: Vec<u32>,
    group_indices: Vec<usize>,
}

/// Aggregate call `call`'s accumulator for one group; `retracting`: one
/// that can take rows back.
fn new_accumulator(
    agg: &AggregatePlan,
    retracting: bool,
    call: usize,
) -> Result<Box<dyn Accumulator>> {
    let func = &agg.calls[call].func;
    Ok(if retracting {
        func.create_sliding_accumulator()?
    } else {
        func.create_accumulator()?
    })
}

impl ChangelogAggregate {
    pub fn new(plan: Arc<StreamPlan>, metrics: Arc<PipelineMetrics>) -> Result<Self> {
        let agg = plan
            .aggregate
            .clone()
            .ok_or_else(|| SluiceError::Internal("aggregate operator without aggregate".into()))?;
        let groups = if agg.group_exprs.is_empty() {
            None
        } else {
            Some(new_group_values(
                agg.group_schema.clone(),
                &GroupOrdering::None,
            )?)
        };
        let converter = RowConverter::new(
            plan.output_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        Ok(ChangelogAggregate {
            agg,
            output_schema: plan.output_schema.clone(),
            groups,
            accumulators: Vec::new(),
            last: Vec::new(),
            counts: Vec::new(),
            retracting: plan.input_changelog,
            converter,
            metrics,
            slot: Vec::new(),
            group_indices: Vec::new(),
        })
    }

    /// A group's accumulators: ones that can take rows back when the input
    /// is an updating view.
    fn new_accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        (0..self.agg.calls.len())
            .map(|c| new_accumulator(&self.agg, self.retracting, c))
            .collect()
    }

    /// Number of groups held.
    pub fn group_count(&self) -> usize {
        self.accumulators.len()
    }

    /// Adds the batch's rows to their groups; rows where `retract` is true
    /// are taken away instead.
    fn update(
        &mut self,
        batch: &RecordBatch,
        retract: Option<&BooleanArray>,
        touched: &mut Vec<usize>,
        first_row: &mut Vec<u32>,
    ) -> Result<Vec<ArrayRef>> {
        let agg = Arc::clone(&self.agg);
        let n = batch.num_rows();
        let group_cols = agg
            .group_exprs
            .iter()
            .map(|e| Ok(e.evaluate(batch)?.into_array(n)?))
            .collect::<Result<Vec<_>>>()?;
        self.group_indices.clear();
        let group_count = match self.groups.as_mut() {
            Some(groups) => {
                groups.intern(&group_cols, &mut self.group_indices)?;
                groups.len()
            }
            None => {
                self.group_indices.resize(n, 0);
                1
            }
        };
        while self.accumulators.len() < group_count {
            let accs = self.new_accumulators()?;
            self.accumulators.push(accs);
            self.last.push(None);
            self.counts.push(0);
            self.slot.push(NO_SLOT);
        }
        for (row, &g) in self.group_indices.iter().enumerate() {
            if self.slot[g] == NO_SLOT {
                self.slot[g] = touched.len() as u32;
                touched.push(g);
                first_row.push(row as u32);
            }
            self.counts[g] += if retract.is_some_and(|r| r.value(row)) {
                -1
            } else {
                1
            };
        }
        let unfiltered = self.sort_by_group(touched.len(), None, retract);
        for (ci, call) in agg.calls.iter().enumerate() {
            let filtered;
            let (perm, offsets) = match &call.filter {
                None => (&unfiltered.0, &unfiltered.1),
                Some(f) => {
                    let mask = predicate_mask(f, batch)?;
                    filtered = self.sort_by_group(touched.len(), Some(&mask), retract);
                    (&filtered.0, &filtered.1)
                }
            };
            let args = call
                .args
                .iter()
                .map(|e| Ok(take(&e.evaluate(batch)?.into_array(n)?, perm, None)?))
                .collect::<Result<Vec<_>>>()?;
            for (s, &g) in touched.iter().enumerate() {
                for (bucket, take_back) in [(2 * s, false), (2 * s + 1, true)] {
                    let (start, end) = (offsets[bucket] as usize, offsets[bucket + 1] as usize);
                    if start == end {
                        continue;
                    }
                    let slices: Vec<ArrayRef> =
                        args.iter().map(|a| a.slice(start, end - start)).collect();
                    let acc = &mut self.accumulators[g][ci];
                    if take_back {
                        acc.retract_batch(&slices)?;
                    } else {
                        acc.update_batch(&slices)?;
                    }
                }
            }
        }
        // A group whose rows have all been taken back starts afresh.
        for &g in touched.iter() {
            if self.counts[g] <= 0 {
                self.counts[g] = 0;
                self.accumulators[g] = self.new_accumulators()?;
            }
        }
        Ok(group_cols)
    }

    /// Evaluates the group, argument and FILTER expressions on `batch`.
    fn check_inputs(&self, batch: &RecordBatch) -> Result<()> {
        let agg = &self.agg;
        let exprs = agg.group_exprs.iter().chain(
            agg.calls
                .iter()
                .flat_map(|c| c.args.iter().chain(c.filter.iter())),
        );
        for e in exprs {
            e.evaluate(batch)?.into_array(batch.num_rows())?;
        }
        Ok(())
    }

    /// Row indices ordered by their group's slot, added rows before taken
    /// back ones, and where each (slot, added / taken back) bucket starts:
    /// slot `s` has buckets `2s` and `2s + 1`.
    fn sort_by_group(
        &self,
        slots: usize,
        mask: Option<&BooleanArray>,
        retract: Option<&BooleanArray>,
    ) -> (UInt32Array, Vec<u32>) {
        let keep = |row: usize| mask.is_none_or(|m| m.value(row));
        let bucket = |row: usize, g: usize| {
            2 * self.slot[g] as usize + retract.is_some_and(|r| r.value(row)) as usize
        };
        let buckets = 2 * slots;
        let mut offsets = vec![0u32; buckets + 1];
        for (row, &g) in self.group_indices.iter().enumerate() {
            if keep(row) {
                offsets[bucket(row, g) + 1] += 1;
            }
        }
        for i in 0..buckets {
            offsets[i + 1] += offsets[i];
        }
        let mut next = offsets.clone();
        let mut perm = vec![0u32; offsets[buckets] as usize];
        for (row, &g) in self.group_indices.iter().enumerate() {
            if keep(row) {
                let b = bucket(row, g);
                perm[next[b] as usize] = row as u32;
                next[b] += 1;
            }
        }
        (UInt32Array::from(perm), offsets)
    }

    /// The current output rows of `touched` groups and whether each is shown.
    fn current_rows(
        &mut self,
        group_cols: &[ArrayRef],
        touched: &[usize],
        first_row: Vec<u32>,
    ) -> Result<(RecordBatch, Option<BooleanArray>)> {
        let agg = Arc::clone(&self.agg);
        let first = UInt32Array::from(first_row);
        let mut columns = group_cols
            .iter()
            .map(|c| Ok(take(c, &first, None)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        for ci in 0..agg.calls.len() {
            let values = touched
                .iter()
                .map(|&g| Ok(self.accumulators[g][ci].evaluate()?))
                .collect::<Result<Vec<ScalarValue>>>()?;
            let array = ScalarValue::iter_to_array(values)?;
            let want = agg.schema.field(group_cols.len() + ci).data_type();
            columns.push(if array.data_type() == want {
                array
            } else {
                cast(&array, want)?
            });
        }
        let rows = RecordBatch::try_new(agg.schema.clone(), columns)?;
        post_stages(&agg.post, rows)
    }

    fn diff(
        &mut self,
        rows: &RecordBatch,
        visible: Option<&BooleanArray>,
        touched: &[usize],
        out: &mut Vec<StreamBatch>,
    ) -> Result<()> {
        let converted = self.converter.convert_columns(rows.columns())?;
        let mut emit = Vec::new();
        let mut ops = Vec::new();
        let mut deleted = Vec::new();
        let grouped = self.groups.is_some();
        for (i, &g) in touched.iter().enumerate() {
            let shown = visible.is_none_or(|v| v.value(i)) && (!grouped || self.counts[g] > 0);
            let row = converted.row(i);
            match (&self.last[g], shown) {
                (Some(prev), true) if prev.row() == row => {}
                (prev, true) => {
                    ops.push(if prev.is_some() {
                        Op::Update
                    } else {
                        Op::Insert
                    } as u8);
                    emit.push(i as u32);
                    self.last[g] = Some(row.owned());
                }
                (Some(_), false) => deleted.extend(self.last[g].take()),
                (None, false) => {}
            }
        }
        if !emit.is_empty() {
            let data = take_record_batch(rows, &UInt32Array::from(emit))?;
            out.push(StreamBatch::changelog(data, UInt8Array::from(ops)));
        }
        if !deleted.is_empty() {
            let columns = self
                .converter
                .convert_rows(deleted.iter().map(|r| r.row()))?;
            let data = RecordBatch::try_new(self.output_schema.clone(), columns)?;
            let ops = UInt8Array::from(vec![Op::Delete as u8; deleted.len()]);
            out.push(StreamBatch::changelog(data, ops));
        }
        Ok(())
    }
}

/// Checkpoint metadata; the batches are the group keys (with GROUP BY), a
/// row per group (its input row count, whether a row of it is shown, its
/// accumulators' states), and the shown rows as last emitted, all in group
/// order. A global aggregate has at most one group, and no keys.
#[derive(Serialize, Deserialize)]
struct AggregateMeta {
    groups: usize,
}

impl ChangelogAggregate {
    fn snapshot_state(&mut self) -> Result<StateSnapshot> {
        let n = self.accumulators.len();
        let mut batches = Vec::with_capacity(3);
        if let Some(groups) = self.groups.as_mut() {
            let keys = keep_group_keys(groups.as_mut())?;
            batches.push(RecordBatch::try_new(self.agg.group_schema.clone(), keys)?);
        }
        let (agg, retracting) = (&self.agg, self.retracting);
        let states = take_states(self.accumulators.iter_mut(), agg.calls.len(), |c| {
            new_accumulator(agg, retracting, c)
        })?;
        let rows: ArrayRef = Arc::new(Int64Array::from(self.counts.clone()));
        let shown: ArrayRef = Arc::new(
            self.last
                .iter()
                .map(|r| Some(r.is_some()))
                .collect::<BooleanArray>(),
        );
        batches.push(state_batch(
            vec![("rows".into(), rows), ("shown".into(), shown)],
            states,
            n,
        )?);
        let last = self
            .converter
            .convert_rows(self.last.iter().flatten().map(|r| r.row()))?;
        batches.push(RecordBatch::try_new(self.output_schema.clone(), last)?);
        Ok(StateSnapshot::new(
            to_meta(&AggregateMeta { groups: n })?,
            batches,
        ))
    }

    fn restore_state(&mut self, state: StateSnapshot) -> Result<()> {
        let AggregateMeta { groups: n } = state.meta_as()?;
        let mut batches = state.into_batches();
        if let Some(groups) = self.groups.as_mut() {
            intern_group_keys(groups.as_mut(), &batches.next("group keys")?)?;
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
            let mut accs = self.new_accumulators()?;
            merge_states(&states, g, &mut accs)?;
            self.accumulators.push(accs);
            self.counts.push(counts.value(g));
            self.last.push(match shown.value(g) {
                true => last.next().map(|r| r.owned()),
                false => None,
            });
            self.slot.push(NO_SLOT);
        }
        Ok(())
    }
}

impl Operator for ChangelogAggregate {
    fn name(&self) -> &'static str {
        "changelog aggregate"
    }

    fn detail(&self) -> String {
        let mut text = format!(
            "{}; emits an insert, update or delete per changed group",
            self.agg.describe()
        );
        if self.retracting {
            text.push_str("; input is an updating view (its old rows are retracted)");
        }
        text
    }

    fn state_size(&self) -> Option<(u64, u64)> {
        let groups = self.accumulators.len();
        let mut bytes = self.groups.as_ref().map_or(0, |g| g.size());
        bytes += self
            .accumulators
            .iter()
            .flatten()
            .map(|a| a.size())
            .sum::<usize>();
        bytes += self
            .last
            .iter()
            .flatten()
            .map(|r| r.row().as_ref().len())
            .sum::<usize>();
        Some((groups as u64, bytes as u64))
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        self.snapshot_state().map(Some)
    }

    fn restore(&mut self, state: StateSnapshot) -> Result<()> {
        self.restore_state(state)
    }

    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // Evaluate every input expression first, so a value that makes one
        // fail drops its row instead of leaving the groups half updated.
        let batch = if self.check_inputs(&batch.data).is_ok() {
            batch
        } else {
            drop_failing_rows(&batch, &self.metrics, |b| self.check_inputs(&b.data))?
        };
        let retract = batch.ops.as_ref().map(|_| {
            (0..batch.num_rows())
                .map(|i| Some(!batch.is_addition(i)))
                .collect::<BooleanArray>()
        });
        let mut touched = Vec::new();
        let mut first_row = Vec::new();
        let result = self
            .update(&batch.data, retract.as_ref(), &mut touched, &mut first_row)
            .and_then(|group_cols| self.current_rows(&group_cols, &touched, first_row))
            .and_then(|(rows, visible)| self.diff(&rows, visible.as_ref(), &touched, out));
        for &g in &touched {
            self.slot[g] = NO_SLOT;
        }
        result
    }
}

impl std::fmt::Debug for ChangelogAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChangelogAggregate({} groups)", self.group_count())
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
                // stddev's state goes back in through DataFusion's merge
                // formula, which is exact only to the last bits.
                "SELECT k, count(*) AS n, sum(v) AS s, count(v) AS nv, avg(v) AS a, round(stddev(v), 6) AS sd FROM t GROUP BY k",
                "SELECT count(*) AS n, sum(v) AS s FROM t",
            ] {
                let mut p = plan(sql, 0);
                // As planning over an updating view marks it.
                std::sync::Arc::get_mut(&mut p).expect("plan").input_changelog = true;
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
